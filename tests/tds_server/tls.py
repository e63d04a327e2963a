"""TLS for TDS: a self-signed certificate made at start, and the TLS 1.2
handshake wrapped in PRELOGIN packets (MS-TDS 2.2.6.5: during the handshake
TLS records travel as the payload of TDS packets of type 0x12; afterwards TLS
runs directly on the TCP stream with TDS packets inside it).

TLS is capped at 1.2: FreeTDS 1.3 hangs on a TLS 1.3 handshake inside PRELOGIN.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass

from .packets import DEFAULT_PACKET_SIZE, PRELOGIN, STATUS_EOM, ConnectionClosed, PacketStream, PlainChannel
from .wire import ProtocolError


@dataclass
class Certificate:
    directory: str
    cert_file: str
    key_file: str
    generated_by: str  # "openssl" or "builtin"

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def make_certificate(common_name: str = "localhost") -> Certificate:
    """A fresh self-signed certificate (CN=localhost, SAN localhost and
    127.0.0.1) in a temporary directory; made with the openssl CLI when it is
    there, else the built-in test certificate is written out."""
    directory = tempfile.mkdtemp(prefix="tds-server-tls-")
    cert_file = os.path.join(directory, "cert.pem")
    key_file = os.path.join(directory, "key.pem")
    openssl = shutil.which("openssl")
    if openssl:
        proc = subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key_file, "-out", cert_file,
             "-days", "30", "-subj", f"/CN={common_name}",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            capture_output=True, timeout=60,
        )
        if proc.returncode == 0:
            return Certificate(directory, cert_file, key_file, "openssl")
    with open(cert_file, "w") as f:
        f.write(BUILTIN_CERT)
    with open(key_file, "w") as f:
        f.write(BUILTIN_KEY)
    return Certificate(directory, cert_file, key_file, "builtin")


def server_context(cert: Certificate) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert.cert_file, cert.key_file)
    return ctx


class TlsChannel:
    """TLS records straight on the TCP stream (after the wrapped handshake)."""

    def __init__(self, plain: PlainChannel, sslobj: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO):
        self.plain = plain
        self.sslobj = sslobj
        self.incoming = incoming
        self.outgoing = outgoing
        self.buf = bytearray()

    async def read_exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            try:
                data = self.sslobj.read(65536)
                if not data:
                    raise ConnectionClosed()
                self.buf += data
            except ssl.SSLWantReadError:
                self.incoming.write(await self.plain.read_some(65536))
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError) as exc:
                raise ConnectionClosed() from exc
            except ssl.SSLError as exc:
                raise ProtocolError(f"TLS error: {exc}") from exc
            await self._flush()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def write(self, data: bytes) -> None:
        self.sslobj.write(data)
        await self._flush()

    async def _flush(self) -> None:
        pending = self.outgoing.read()
        if pending:
            await self.plain.write(pending)

    def abort(self) -> None:
        self.plain.abort()


async def handshake_in_prelogin(stream: PacketStream, ctx: ssl.SSLContext) -> TlsChannel:
    """Run the server side of the handshake with records wrapped in PRELOGIN
    packets; returns the channel to use afterwards."""
    plain = stream.channel
    assert isinstance(plain, PlainChannel)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    sslobj = ctx.wrap_bio(incoming, outgoing, server_side=True)
    while True:
        ptype, status, payload = await stream.read_packet()
        if ptype != PRELOGIN:
            raise ProtocolError(f"expected a TLS handshake packet (PRELOGIN), got type {ptype:#x}")
        incoming.write(payload)
        if not status & STATUS_EOM:
            continue
        try:
            sslobj.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        except ssl.SSLError as exc:
            raise ProtocolError(f"TLS handshake failed: {exc}") from exc
        out = outgoing.read()
        if out:
            await stream.send_message(PRELOGIN, out, DEFAULT_PACKET_SIZE)
        if done:
            return TlsChannel(plain, sslobj, incoming, outgoing)


# A long-lived self-signed certificate for machines without the openssl CLI
# (CN=localhost; test use only, the key is public).
BUILTIN_CERT = """\
-----BEGIN CERTIFICATE-----
MIIDJzCCAg+gAwIBAgIUS0cnTkGvdG5ZJ66WpdgSuvQwCmwwDQYJKoZIhvcNAQEL
BQAwFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNjE4MTg1MVoYDzIxMjYx
MTAyMTgxODUxWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwggEiMA0GCSqGSIb3DQEB
AQUAA4IBDwAwggEKAoIBAQDIMZfXP8t98j7X9bRbKAsTajAMfqOHbZxIADJ8eAzn
KfBbNjgcKyF1IwCQClZMBiPWrRydgi5h0CaiLyJ6orlA6q0gm1L8U4aF8J70tl0K
xe7n0IIJYxE5MRBBCNsee8Le3k9SpZPlpsEZua7bl8eNHRfAk1cWX0ym3g5n0zm8
6O/tQeRbYTIUCzQL+/PahZdjdBCiI+NLVlTa3USPScy+JcW71Ilhwy2ZyBdmljjt
+u3XHUDl+kA60uC+f+oceqRHuJVMnF7USNve4LywpuAp10GlgwVD7uxbYnxE6a+z
5siLOAkwYgSGKfFt7Va9pU290SxZ85JIfWKi3GC3Ji57AgMBAAGjbzBtMB0GA1Ud
DgQWBBRF9Mv/0NrtsSbFOAVcjU+MxSZlYjAfBgNVHSMEGDAWgBRF9Mv/0NrtsSbF
OAVcjU+MxSZlYjAPBgNVHRMBAf8EBTADAQH/MBoGA1UdEQQTMBGCCWxvY2FsaG9z
dIcEfwAAATANBgkqhkiG9w0BAQsFAAOCAQEAYvdimRGSbBfb21PkmWs5OuirAEdp
mQItWTuAy3Fs/xtqqf4cxcm6OTnM+t6iRTcpVkDb9oMmgjBdE7HKRwMvF6eYg6Nf
ixUck8BhqjMGqBjBf9NAZMB+8v3MVZI0WEt/D4dtH6zwKVjNBBTthE5k6vebVBI/
xS2Do7HulYWi3BgTae6IvM1T9rC+VjunfTSQ1UpCVZXPZSeGyDWgignmUv2ofMhB
mSx/0FnM2BtuTvBh3hJ4daKFlILsmPPCU88sBs4a7Qo3RvlNRtYHFruFJPUyPy3F
wbZKnYlsoVTsVNKnxLcVoO1pGInY+D3tlquRd0klzscq+mql+st1BXfUWw==
-----END CERTIFICATE-----
"""

BUILTIN_KEY = """\
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDIMZfXP8t98j7X
9bRbKAsTajAMfqOHbZxIADJ8eAznKfBbNjgcKyF1IwCQClZMBiPWrRydgi5h0Cai
LyJ6orlA6q0gm1L8U4aF8J70tl0Kxe7n0IIJYxE5MRBBCNsee8Le3k9SpZPlpsEZ
ua7bl8eNHRfAk1cWX0ym3g5n0zm86O/tQeRbYTIUCzQL+/PahZdjdBCiI+NLVlTa
3USPScy+JcW71Ilhwy2ZyBdmljjt+u3XHUDl+kA60uC+f+oceqRHuJVMnF7USNve
4LywpuAp10GlgwVD7uxbYnxE6a+z5siLOAkwYgSGKfFt7Va9pU290SxZ85JIfWKi
3GC3Ji57AgMBAAECggEAVELvfrWG0KGkSuDLw2yE0Oyqga/R48BCfdm7ZkFfaPLx
jGqzTkPnJrcPVxFKxl/1OLgPacpv/FKQ2EXPlN+l6sl8ClPmJ3d+kSS4uxaA7fZm
uqK8APh2OOTKSx1PoTKFUKowqAAyUoCQGWRa0Wm+n8olg7RgfPWqvTeMx62TyUth
IkAiGJDIhmtzKeoBrnNq69HAnwbgIjEIeswRDfah3bck3MXET7qrxrPX5m8sBEQh
Oe+/uVigvGs9U884XjRMsOzy+rMqJlGsgW9fR7w52Q5niInfs5gymsOp1vToGTfZ
ERgHyTFlkyY16EGXPSKGb3C1eRB0UAfSK4f7Cy8xsQKBgQDyR3vAs/WgE8aU1m//
LajGzMCM/x3oRo8UDJQWQwpD2nlaULQ3fRijLlR8UmUwgubwC7i23Dq7rQRWGp3r
Qz6RfnXp7DRLWGbAVGzuMCAB/ozF3Lxm51lYlD+PEGHxEtn50XiSxWZ5gD0TZAHW
ePyMWfB5IxU01ukQfTv5OxV+8QKBgQDTh/ZZQIlwYopQSKYw6UTWWYbWi/+PwM98
8gxR+gs0AYieex/wSOpEBeqWIAc6n0LrLoOeTSPv/qUXnJQbTIMCqxoWHHBddHN9
SZdxKpRRu5sukzfxA8ZXFoGM4+mJxmszxeQAVZ30jCgmr/j9i2lu9K0yxMYe41p0
Y5dxch+cKwKBgQCD0HB7/2z7ksbP43s7klPpFS0NiR90aC8f8VgAZKkJEaxEfvQN
3HmzDlnY6dsz8YRDxZzRoDA0O4XIcuLIROWdsvfkNSaed5Ivwb8iN/yyGRPt8pJu
SiBKGR4bcAZZarA9QsIe2FdQc3zHN/nn/hspISW8QmIfRW24Euq2RncDgQKBgQCj
aB27Nuq1Qbo9aNHRaPI/b+uE46NppnXivI0d6r4qz6B9ZPn4QiuOns9oZ5eOBqfI
TCdq64Z+iEV6pv+W0xVFw22kdRWsbCAnQelWh6EKPpYTdbC6Y8MdVYqAjzPCtd/s
n8uRIpKh7n+52yjKnJ63ExaU6INwKwuea6z6+0FF/wKBgGy1GgxBjUaAzwEQwji+
WxX+Q891e2NTBhBX5rsd+XdteJYgQnXkFZHXbLGUheS2bIKDJ1BpI/dygiMLkioN
Mage+TU3ROsDpgwXKLiz9fdIGOdXonNJQcPn9k/RwGGdn05TSSQWeFMZBTJDEEaa
eKOT/cKdRgrnPh1CbQFGpZ4l
-----END PRIVATE KEY-----
"""
