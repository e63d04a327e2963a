"""TLS the same way for every engine: the keys tls, ca_file, cert_file,
key_file and key_password mapped to each engine's own settings.

- postgresql (libpq): sslmode, sslrootcert, sslcert, sslkey, sslpassword.
- mssql (FreeTDS): encrypt (disable: off, require: require, verify-ca:
  require with check_hostname off, verify-full: strict) and ca_file.
  Refused: prefer (FreeTDS's request encrypts only the login unless the
  server forces encryption) and client certificates (FreeTDS cannot
  present one).
- mysql (MariaDB Connector/C): ssl_mode (disable: disabled, prefer:
  preferred, require: required, verify-ca: verify_ca, verify-full:
  verify_identity), ssl_ca, ssl_cert, ssl_key. Refused: key_password and
  ca_file = "system" (not wired to the connector yet).
- redis (the driver's own OpenSSL): the same keys. Refused: prefer (a
  Redis port speaks TLS or not; nothing negotiates it).
- sqlite: embedded, no network: only tls = "disable" is accepted.

What cannot be mapped exactly is refused, never weakened; a uniform key and
the engine's own one given with different meanings are refused too. One
function (plan) serves both the configuration model (problems with their
paths) and create_pool's keywords (a ConfigurationError). Values of files
and passwords are never shown.
"""

from __future__ import annotations

from typing import Mapping
from urllib.parse import unquote

from ._config_keys import engine_key
from ._files import unreadable
from .errors import ConfigProblem, ConfigurationError

UNIFORM = ("tls", "ca_file", "cert_file", "key_file", "key_password")
MODES = ("disable", "prefer", "require", "verify-ca", "verify-full")
_VERIFY = ("verify-ca", "verify-full")
_FILES = ("ca_file", "cert_file", "key_file")

#: (the key a problem is about, what is wrong)
Problem = tuple[str, str]

_PG_NAMES = {"tls": "sslmode", "ca_file": "sslrootcert", "cert_file": "sslcert",
             "key_file": "sslkey", "key_password": "sslpassword"}
_MSSQL_ENCRYPT = {"disable": "off", "require": "require", "verify-ca": "require",
                  "verify-full": "strict"}
_MYSQL_NAMES = {"tls": "ssl_mode", "ca_file": "ssl_ca", "cert_file": "ssl_cert",
                "key_file": "ssl_key"}
_MYSQL_MODES = {"disable": "disabled", "prefer": "preferred", "require": "required",
                "verify-ca": "verify_ca", "verify-full": "verify_identity"}
_YES = ("on", "yes", "true", "1")
_NO = ("off", "no", "false", "0")


def _q(value: str) -> str:
    return f'"{value}"'


def plan(engine: str, given: Mapping[str, str], check_files: bool = True
         ) -> tuple[dict[str, str], list[Problem]]:
    """The engine settings the uniform TLS keys among ``given`` (canonical
    names, values as text) stand for, and the problems. Settings the engine
    already has under its own names are checked against them."""
    uniform = {k: given[k] for k in UNIFORM if k in given}
    if not uniform:
        return {}, []
    problems: list[Problem] = []
    tls = uniform.get("tls")
    if tls is not None:
        tls = tls.strip().lower()
        if tls not in MODES:
            return {}, [("tls", "expected one of " + ", ".join(_q(m) for m in MODES))]
    if check_files:
        for k in _FILES:
            path = uniform.get(k)
            if path is not None and not (k == "ca_file" and path == "system"):
                why = unreadable(path)
                if why:
                    problems.append((k, why))
    _pairs(uniform, problems)
    if engine == "sqlite":
        for k in uniform:
            if not (k == "tls" and tls == "disable"):
                problems.append((k, "sqlite is embedded (no network connection): TLS does not "
                                 'apply (only tls = "disable" is accepted)'))
        return {}, problems
    if engine == "redis" and tls == "prefer":
        return {}, [("tls", 'redis: a Redis port speaks TLS or it does not (nothing '
                     'negotiates it): give tls = "verify-full" (recommended), "require" '
                     'or "disable"')]
    if tls is not None:
        # libpq's own sslrootcert is a CA file as good as ca_file for the rules
        ca = uniform.get("ca_file", given.get("sslrootcert") if engine == "postgresql" else None)
        _mode_rules(tls, uniform, ca, problems)
    if engine == "postgresql":
        return _postgresql(tls, uniform, given, problems), problems
    if engine == "mssql":
        return _mssql(tls, uniform, given, problems), problems
    if engine == "mysql":
        return _mysql(tls, uniform, given, problems), problems
    if engine == "redis":  # the driver's own keys are the uniform ones
        return {k: tls if k == "tls" and tls else v for k, v in uniform.items()}, problems
    return {}, problems


def _pairs(uniform: Mapping[str, str], problems: list[Problem]) -> None:
    if "cert_file" in uniform and "key_file" not in uniform:
        problems.append(("cert_file", "needs key_file (the client certificate's private key)"))
    if "key_file" in uniform and "cert_file" not in uniform:
        problems.append(("key_file", "needs cert_file (the client certificate)"))
    if "key_password" in uniform and "key_file" not in uniform:
        problems.append(("key_password", "is the passphrase of key_file: give key_file too"))


def _mode_rules(tls: str, uniform: Mapping[str, str], ca: str | None,
                problems: list[Problem]) -> None:
    """What each mode needs and excludes, the same for every engine."""
    if tls == "disable":
        for k in uniform:
            if k != "tls":
                problems.append((k, f'tls = "disable" makes no TLS connection: {k} '
                                 "contradicts it"))
        return
    if tls in ("prefer", "require") and ca is not None:
        at = "ca_file" if "ca_file" in uniform else "tls"
        problems.append((at, f"a CA file is for verifying the server's certificate, which "
                         f'tls = "{tls}" does not do: give tls = "verify-full" (recommended) '
                         'or "verify-ca", or drop the CA file'))
    if tls in _VERIFY and ca is None:
        problems.append(("tls", f'tls = "{tls}" needs ca_file: the CA certificates that '
                         'signed the server\'s ("system": the system\'s trusted CAs)'))
    if tls == "verify-ca" and ca == "system":
        problems.append(("ca_file", 'tls = "verify-ca" with the system\'s CAs would accept '
                         "any publicly trusted certificate, for any host: give "
                         'tls = "verify-full", or the ca_file of your own CA'))


def _disagree(problems: list[Problem], uniform_key: str, native_key: str,
              shown: tuple[str, str] | None = None) -> None:
    what = (f"{uniform_key} = {_q(shown[0])} and {native_key} = {_q(shown[1])}" if shown
            else f"{uniform_key} and {native_key}")
    problems.append((uniform_key, f"{what} disagree: give one ({uniform_key} is the same "
                     "for every engine)"))


def _postgresql(tls: str | None, uniform: Mapping[str, str], given: Mapping[str, str],
                problems: list[Problem]) -> dict[str, str]:
    native: dict[str, str] = {}
    for k, value in uniform.items():
        name = _PG_NAMES[k]
        value = tls if k == "tls" and tls is not None else value
        own = given.get(name)
        if own is not None and own != value:
            _disagree(problems, k, name, (value, own) if k == "tls" else None)
        native[name] = value
    return native


def _encrypt_word(value: str) -> str:
    v = value.strip().lower()
    return "require" if v in _YES else "off" if v in _NO else v


def _mssql(tls: str | None, uniform: Mapping[str, str], given: Mapping[str, str],
           problems: list[Problem]) -> dict[str, str]:
    native: dict[str, str] = {}
    for k in ("cert_file", "key_file", "key_password"):
        if k in uniform:
            problems.append((k, "mssql: FreeTDS cannot present a client certificate (SQL "
                             "Server logins do not use one)"))
    if "ca_file" in uniform:
        native["ca_file"] = uniform["ca_file"]  # the driver's own key of the same name
    if tls is None:
        return native
    if tls == "prefer":
        problems.append(("tls", 'mssql: FreeTDS\'s nearest mode, encrypt = "request", '
                         "encrypts only the login unless the server forces encryption; "
                         'give tls = "verify-full" (recommended) or "require", or '
                         'encrypt = "request" if the login is enough'))
        return native
    encrypt = _MSSQL_ENCRYPT[tls]
    own = given.get("encrypt")
    if own is not None and _encrypt_word(own) != encrypt:
        _disagree(problems, "tls", "encrypt", (tls, own))
    native["encrypt"] = encrypt
    check = given.get("check_hostname")
    if check is not None:
        on = check.strip().lower() in _YES
        if tls in _VERIFY and on != (tls == "verify-full"):
            _disagree(problems, "tls", "check_hostname", (tls, "true" if on else "false"))
        elif tls not in _VERIFY and on:
            problems.append(("check_hostname", f'tls = "{tls}" does not verify the '
                             "certificate: check_hostname = true contradicts it"))
    if tls in _VERIFY:
        native["check_hostname"] = "on" if tls == "verify-full" else "off"
    return native


def _mysql(tls: str | None, uniform: Mapping[str, str], given: Mapping[str, str],
           problems: list[Problem]) -> dict[str, str]:
    native: dict[str, str] = {}
    if "key_password" in uniform:
        problems.append(("key_password", "mysql: a passphrase-protected client key is not "
                         "supported yet; give an unencrypted key_file"))
    if uniform.get("ca_file") == "system":
        problems.append(("ca_file", 'mysql: ca_file = "system" is not supported yet; give '
                         "the CA file"))
    for k, name in _MYSQL_NAMES.items():
        if k not in uniform:
            continue
        value = _MYSQL_MODES[tls] if k == "tls" and tls is not None else uniform[k]
        own = given.get(name)
        if own is not None and own != value:
            _disagree(problems, k, name, (value, own) if k == "tls" else None)
        native[name] = value
    return native


# ---- create_pool's keywords ----------------------------------------------------------


def split_pg_url(url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """(the postgresql:// URL without its uniform TLS parameters, which libpq
    would not know, those parameters, the URL's other parameters)."""
    head, sep, query = url.partition("?")
    if not sep:
        return url, {}, {}
    kept: list[str] = []
    uniform: dict[str, str] = {}
    other: dict[str, str] = {}
    for item in query.split("&"):
        k, _, v = item.partition("=")
        name = unquote(k)
        if name in UNIFORM:
            uniform[name] = unquote(v)
        else:
            kept.append(item)
            other[name] = unquote(v)
    return head + ("?" + "&".join(kept) if kept else ""), uniform, other


def native_settings(engine: str, settings: Mapping[str, str]) -> dict[str, str]:
    """One endpoint's create_pool settings with the uniform TLS keys replaced
    by the engine's own (a PostgreSQL URL's ?tls=... too). Raises
    ConfigurationError naming every problem's key."""
    out = dict(settings)
    if engine == "redis" and out.pop("rediss", "").strip().lower() in _YES:
        # rediss://: TLS, checked as redis-py checks it unless the settings
        # choose another mode or CA
        out.setdefault("tls", "verify-full")
        if out["tls"].strip().lower() in _VERIFY:
            out.setdefault("ca_file", "system")
    given: dict[str, str] = {}
    names: dict[str, str] = {}
    if engine == "postgresql":
        for url_key in ("dsn", "url"):
            if "://" in out.get(url_key, ""):
                out[url_key], from_url, other = split_pg_url(out[url_key])
                given.update(other)
                for k, v in from_url.items():
                    out.setdefault(k, v)  # a keyword wins over the URL
    for name, value in out.items():
        key = engine_key(engine, name)
        canon = key.name if key is not None else name
        given[canon] = value
        names[canon] = name
    native, problems = plan(engine, given)
    if problems:
        raise_problems(problems, names)
    if not any(k in out for k in UNIFORM):
        return out
    for k in UNIFORM:
        out.pop(k, None)
    out.update(native)
    return out


def raise_problems(problems: list[Problem], names: Mapping[str, str]) -> None:
    """One ConfigurationError listing every problem, each under its key."""
    found = [ConfigProblem(names.get(k, k), message) for k, message in problems]
    n = len(found)
    lines = "\n".join(f"  {p}" for p in found)
    exc = ConfigurationError(f"invalid TLS settings ({n} problem{'s' * (n != 1)}):\n{lines}")
    exc.problems = tuple(found)
    raise exc
