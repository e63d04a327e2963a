"""A TDS 7.4 (Microsoft SQL Server wire protocol) test server backed by sqlite.

It lets the MSSQL driver be tested, through the real FreeTDS client, on a
machine where no SQL Server can run. Run it standalone with
``python -m tests.tds_server --port N`` (from the repository root), or start
it from pytest with ``TdsTestServer``::

    from tests.tds_server import TdsTestServer

    with TdsTestServer() as srv:           # 127.0.0.1:srv.port, sa / db-pool-test
        ...

Modules: packets (framing), wire (byte helpers), login (PRELOGIN, LOGIN7),
tls (certificate, TLS inside PRELOGIN), types and temporal (types and value
encodings), tokens (token stream), sql (T-SQL translation), engine (sqlite
execution), rpc (sp_executesql & co), bulk (BULK LOAD), session (one
connection), server (listener, background-thread wrapper), config (settings,
fault knobs), __main__ (command line).
"""

from .config import DEFAULT_PASSWORD, DEFAULT_USER, Faults, ServerConfig, Stats
from .server import TdsServer, TdsTestServer

__all__ = ["DEFAULT_PASSWORD", "DEFAULT_USER", "Faults", "ServerConfig", "Stats", "TdsServer", "TdsTestServer"]
