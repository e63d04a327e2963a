"""Real certificates for TLS tests, made at test time with the openssl
command line (every call bounded by a timeout):

- ``ca_cert``: a CA; ``other_ca_cert``: another CA that signed nothing here;
- ``server_cert`` / ``server_key``: signed by the CA for CN=localhost with
  subjectAltName DNS:localhost and IP:127.0.0.1 (nothing else);
- ``client_cert`` / ``client_key``: signed by the CA for CN=``client_cn``,
  the key encrypted with ``key_password`` (mode 0600, as libpq wants).

EC P-256 keys: quick to make.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL_TIMEOUT = 30.0
_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]


@dataclass(frozen=True)
class CertificateSet:
    directory: Path
    ca_cert: Path
    other_ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_cn: str
    key_password: str


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise FileNotFoundError("the openssl command is needed to make test certificates")
    proc = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=OPENSSL_TIMEOUT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr[-2000:]}")


def _ca(d: Path, name: str) -> tuple[Path, Path]:
    cert, key = d / f"{name}.crt", d / f"{name}.key"
    _openssl("req", "-x509", *_EC, "-nodes", "-keyout", key.name, "-out", cert.name,
             "-days", "3", "-subj", f"/CN=db-pool test {name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return cert, key


def _signed(d: Path, name: str, cn: str, ca: tuple[Path, Path], ext: str,
            key_password: str | None = None) -> tuple[Path, Path]:
    cert, key, csr, extfile = d / f"{name}.crt", d / f"{name}.key", d / f"{name}.csr", d / f"{name}.ext"
    if key_password is None:
        _openssl("req", "-new", *_EC, "-nodes", "-keyout", key.name, "-out", csr.name,
                 "-subj", f"/CN={cn}", cwd=d)
    else:
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-aes-256-cbc", "-pass", f"pass:{key_password}", "-out", key.name, cwd=d)
        _openssl("req", "-new", "-key", key.name, "-passin", f"pass:{key_password}",
                 "-out", csr.name, "-subj", f"/CN={cn}", cwd=d)
    extfile.write_text(ext + "\n")
    _openssl("x509", "-req", "-in", csr.name, "-CA", ca[0].name, "-CAkey", ca[1].name,
             "-CAcreateserial", "-out", cert.name, "-days", "3", "-extfile", extfile.name, cwd=d)
    key.chmod(0o600)
    return cert, key


def make_certificates(directory: Path, client_cn: str = "dbpool_client",
                      key_password: str = "Key-Pass-Marker-7q") -> CertificateSet:
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca(directory, "ca")
    other, _ = _ca(directory, "other-ca")
    server = _signed(directory, "server", "localhost", ca,
                     "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                     "extendedKeyUsage=serverAuth")
    client = _signed(directory, "client", client_cn, ca, "extendedKeyUsage=clientAuth",
                     key_password)
    return CertificateSet(directory, ca[0], other, server[0], server[1], client[0], client[1],
                            client_cn, key_password)
