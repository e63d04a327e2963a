"""One client connection: PRELOGIN (and TLS), LOGIN7, then requests until
the client leaves. A reader task receives messages while a request is being
answered, so an ATTENTION can stop it; the sqlite work runs in the session's
own worker thread."""

from __future__ import annotations

import asyncio
import logging
import struct
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Iterator

from . import bulk, login as L, packets as P, rpc, tokens as tk
from .engine import Engine, EngineSettings, Event, ResultSet, Send, Sleep, StatementDone
from .errors import SqlError, login_failed
from .packets import ConnectionClosed, Message, MessageWriter, PacketStream, PlainChannel
from .tls import handshake_in_prelogin
from .types import DEFAULT_COLLATION
from .wire import ProtocolError, Reader

if TYPE_CHECKING:
    from .server import TdsServer

log = logging.getLogger("tds_server")

_END = object()


class Cancelled(Exception):
    """The client sent ATTENTION while the request was being answered."""


# TRANSACTION_MANAGER request types.
TM_BEGIN_XACT = 5
TM_PROMOTE_XACT = 6
TM_COMMIT_XACT = 7
TM_ROLLBACK_XACT = 8
TM_SAVE_XACT = 9


def parse_all_headers(payload: bytes) -> tuple[int, bytes | None]:
    """Returns (offset of the request body, transaction descriptor or None).
    Clients before TDS 7.2 send no ALL_HEADERS; then the offset is 0."""
    if len(payload) < 4:
        return 0, None
    total = struct.unpack_from("<I", payload)[0]
    if total < 4 or total > len(payload):
        return 0, None
    pos = 4
    descriptor = None
    while pos + 6 <= total:
        hlen, htype = struct.unpack_from("<IH", payload, pos)
        if hlen < 6 or pos + hlen > total:
            raise ProtocolError("malformed ALL_HEADERS")
        if htype == 2 and hlen >= 6 + 8:
            descriptor = payload[pos + 6 : pos + 14]
        pos += hlen
    return total, descriptor


class TokenSink:
    """Writes the token stream of one response: holds each statement's DONE
    back until it knows whether more follows (DONE_MORE), streams rows, and
    checks for ATTENTION and the drop fault between packets."""

    def __init__(self, session: "Session", writer: MessageWriter, in_proc: bool) -> None:
        self.session = session
        self.writer = writer
        self.in_proc = in_proc
        self.pending: tuple[int, int, int, int] | None = None  # token, status, curcmd, count
        self.any_error = False

    def _release(self, more: bool) -> None:
        if self.pending is not None:
            token, status, cmd, count = self.pending
            self.writer.write(tk.done(status | (tk.DONE_MORE if more else 0), cmd, count, token))
            self.pending = None

    def send(self, data: bytes) -> None:
        self._release(True)
        self.writer.write(data)

    def statement_done(self, ev: StatementDone) -> None:
        self._release(True)
        status = 0
        if ev.rowcount is not None:
            status |= tk.DONE_COUNT
        if ev.error:
            status |= tk.DONE_ERROR
            self.any_error = True
        token = tk.DONEINPROC if self.in_proc else tk.DONE
        self.pending = (token, status, ev.curcmd, ev.rowcount or 0)

    async def result(self, rs: ResultSet) -> None:
        self._release(True)
        w = self.writer
        w.write(tk.colmetadata(rs.columns))
        drop_after = self.session.faults.drop_after_rows
        chunk = w.packet_size
        for i, row in enumerate(rs.rows):
            if drop_after is not None and i == drop_after:
                await w.send_partial()
                self.session.stats.bump("dropped_mid_result")
                self.session.channel_abort()
                raise ConnectionClosed()
            w.write(tk.row(rs.columns, row))
            if w.pending() >= chunk:
                await w.flush_full_packets()
                await asyncio.sleep(0)
                if self.session.cancel.is_set():
                    raise Cancelled()

    def finish_batch(self) -> None:
        """End of a SQL batch / bulk load: the last DONE goes out without DONE_MORE."""
        if self.pending is None:
            self.writer.write(tk.done(tk.DONE_ERROR if self.any_error else 0))
        else:
            self._release(False)

    def proc_end(self, outcome: rpc.ProcOutcome, more: bool, error: bool) -> None:
        self._release(True)
        self.writer.write(tk.returnstatus(outcome.return_status))
        for ordinal, name, wire, value in outcome.return_values:
            self.writer.write(tk.returnvalue(ordinal, ("@" + name) if name else "", wire, value))
        status = (tk.DONE_MORE if more else 0) | (tk.DONE_ERROR if error else 0)
        self.writer.write(tk.done(status, tk.CMD_EXECUTE, 0, tk.DONEPROC))


class Session:
    def __init__(self, server: "TdsServer", reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.config = server.config
        self.stats = server.stats
        self.plain = PlainChannel(reader, writer)
        self.stream = PacketStream(self.plain)
        self.spid = server.next_spid()
        self.stream.spid = self.spid
        self.packet_size = P.DEFAULT_PACKET_SIZE
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"tds-spid{self.spid}")
        self.engine: Engine | None = None
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.cancel = asyncio.Event()
        self.busy = False
        self.user = ""

    @property
    def faults(self):  # type: ignore[no-untyped-def]
        return self.config.faults

    def channel_abort(self) -> None:
        self.stream.channel.abort()

    async def in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # -- lifecycle ---------------------------------------------------------------------

    async def run(self) -> None:
        reader_task: asyncio.Task[None] | None = None
        try:
            if self.faults.refuse_connections:
                self.stats.bump("connections_refused")
                self.plain.abort()
                return
            self.stats.bump("connections")
            if not await self.prelogin_and_login():
                return
            reader_task = asyncio.create_task(self.read_loop())
            await self.process_loop()
        except (ConnectionClosed, ConnectionError):
            pass
        except ProtocolError as exc:
            log.warning("spid %d: protocol error: %s", self.spid, exc)
            self.stats.bump("protocol_errors")
        except Exception:  # keep serving other sessions
            log.exception("spid %d: internal error", self.spid)
            self.stats.bump("internal_errors")
        finally:
            if reader_task is not None:
                reader_task.cancel()
            if self.engine is not None:
                try:
                    await self.in_thread(self.engine.close)
                except Exception:
                    pass
            self.executor.shutdown(wait=False)
            try:
                self.plain.writer.close()
            except Exception:
                pass

    # -- PRELOGIN / TLS / LOGIN7 ----------------------------------------------------------

    async def prelogin_and_login(self) -> bool:
        msg = await self.stream.read_message()
        if msg.type != P.PRELOGIN:
            raise ProtocolError(f"expected PRELOGIN, got {msg.type_name}")
        options = L.parse_prelogin(msg.payload)
        client_enc = options.get(L.PL_ENCRYPTION, bytes((L.ENCRYPT_NOT_SUP,)))[:1] or bytes((L.ENCRYPT_NOT_SUP,))
        reply, mode = L.negotiate_encryption(client_enc[0], self.config.tls)
        await self.stream.send_message(P.TABULAR_RESULT, L.build_prelogin_response(reply), P.DEFAULT_PACKET_SIZE)
        if mode == "refuse":
            return False
        if mode in ("login", "full"):
            tls = await handshake_in_prelogin(self.stream, self.server.tls_context())
            self.stream.channel = tls
            self.stats.bump("tls_" + mode)
        msg = await self.stream.read_message()
        if mode == "login":
            self.stream.channel = self.plain  # only the LOGIN7 message was encrypted
        if msg.type != P.LOGIN7:
            raise ProtocolError(f"expected LOGIN7, got {msg.type_name}")
        return await self.login(L.parse_login7(msg.payload))

    async def login(self, lg: L.Login7) -> bool:
        self.user = lg.username
        self.stats.log(self.spid, "LOGIN7", f"user={lg.username} db={lg.database} app={lg.app_name} "
                       f"tds={lg.tds_version:#x} packet={lg.packet_size}")
        cfg = self.config
        name = cfg.server_name
        if self.faults.refuse_logins or lg.sspi:
            return await self.login_error([login_failed(lg.username, state=1)])
        if lg.username.lower() != cfg.user.lower():
            return await self.login_error([login_failed(lg.username, state=5)])
        if lg.password != cfg.password:
            return await self.login_error([login_failed(lg.username, state=8)])
        database = lg.database or "master"
        if self.server.databases.path(database) is None:
            return await self.login_error([
                SqlError(4060, f'Cannot open database "{database}" requested by the login. The login failed.',
                         severity=11, state=1),
                login_failed(lg.username, state=1),
            ])
        settings = EngineSettings(server_name=name, version=self.server.version_string,
                                  lock_timeout_s=cfg.lock_timeout_s,
                                  read_only=lambda: cfg.faults.read_only)
        self.engine = await self.in_thread(
            lambda: Engine(self.server.databases, self.spid, lg.username, database, settings))
        size = lg.packet_size
        if size == 0:
            size = P.DEFAULT_PACKET_SIZE
        size = max(P.MIN_PACKET_SIZE, min(P.MAX_PACKET_SIZE, size))
        out = bytearray()
        out += tk.envchange_str(tk.ENV_DATABASE, database, "master")
        out += tk.info(5701, 2, 0, f"Changed database context to '{database}'.", name)
        out += tk.envchange_bytes(tk.ENV_COLLATION, DEFAULT_COLLATION, b"")
        out += tk.envchange_str(tk.ENV_LANGUAGE, "us_english", "")
        out += tk.info(5703, 1, 0, "Changed language setting to us_english.", name)
        out += tk.loginack(L.reply_tds_version(lg.tds_version), "Microsoft SQL Server", L.SERVER_VERSION)
        out += tk.envchange_str(tk.ENV_PACKETSIZE, str(size), str(P.DEFAULT_PACKET_SIZE))
        out += tk.done(0)
        await self.stream.send_message(P.TABULAR_RESULT, bytes(out), P.DEFAULT_PACKET_SIZE)
        self.packet_size = size
        self.stats.bump("logins")
        return True

    async def login_error(self, errs: list[SqlError]) -> bool:
        out = bytearray()
        for e in errs:
            out += tk.error(e.number, e.state, e.severity, e.message, self.config.server_name, "", 1)
        out += tk.done(tk.DONE_ERROR)
        self.stats.bump("login_failures")
        await self.stream.send_message(P.TABULAR_RESULT, bytes(out), P.DEFAULT_PACKET_SIZE)
        return False

    # -- request loop ------------------------------------------------------------------------

    async def read_loop(self) -> None:
        try:
            while True:
                msg = await self.stream.read_message()
                self.stats.maximum("max_client_packet", self.stream.max_packet_len)
                if msg.type == P.ATTENTION:
                    self.stats.bump("attentions")
                    self.cancel.set()
                    if self.busy and self.engine is not None:
                        self.engine.interrupt()
                    self.queue.put_nowait(("attention", None))
                else:
                    self.queue.put_nowait(("message", msg))
        except (ConnectionClosed, ConnectionError, ProtocolError) as exc:
            self.queue.put_nowait(("closed", exc))
        except asyncio.CancelledError:
            raise

    async def process_loop(self) -> None:
        while True:
            kind, item = await self.queue.get()
            if kind == "closed":
                if isinstance(item, ProtocolError):
                    raise item
                return
            if kind == "attention":
                if self.cancel.is_set():  # nothing was running: acknowledge on its own
                    self.cancel.clear()
                    await self.stream.send_message(P.TABULAR_RESULT, tk.done(tk.DONE_ATTN), self.packet_size)
                continue
            await self.handle(item)

    async def handle(self, msg: Message) -> None:
        writer = MessageWriter(self.stream, self.packet_size)
        engine = self.engine
        assert engine is not None
        self.busy = True
        try:
            if msg.status & (P.STATUS_RESETCONNECTION | P.STATUS_RESETCONNECTIONSKIPTRAN):
                await self.in_thread(engine.reset)
                writer.write(tk.envchange_bytes(tk.ENV_RESETCONNECTION_ACK, b"", b""))
                self.stats.bump("resets")
            if self.faults.delay_ms:
                await self.sleep(self.faults.delay_ms / 1000)
            if msg.type == P.SQL_BATCH:
                await self.sql_batch(msg, writer)
            elif msg.type == P.RPC:
                await self.rpc(msg, writer)
            elif msg.type == P.BULK_LOAD:
                await self.bulk_load(msg, writer)
            elif msg.type == P.TRANSACTION_MANAGER:
                await self.transaction_manager(msg, writer)
            else:
                raise ProtocolError(f"unexpected {msg.type_name} message after login")
            await writer.finish()
        except Cancelled:
            self.cancel.clear()
            self.stats.bump("attentions_acknowledged")
            writer.write(tk.done(tk.DONE_ATTN))
            await writer.finish()
        finally:
            self.busy = False

    async def sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.cancel.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            return
        raise Cancelled()

    def check_descriptor(self, descriptor: bytes | None) -> SqlError | None:
        engine = self.engine
        assert engine is not None
        if descriptor is None:
            return None
        if descriptor != engine.descriptor:
            self.stats.bump("descriptor_mismatches")
            if self.faults.strict_transaction_descriptor:
                return SqlError(3989, "New request is not allowed to start because it should come with valid "
                                "transaction descriptor.", severity=16, state=1)
        return None

    async def drain_events(self, gen: Iterator[Event], sink: TokenSink) -> None:
        """Run an engine generator in the worker thread, one event at a time."""
        try:
            while True:
                if self.cancel.is_set():
                    raise Cancelled()
                ev = await self.in_thread(next, gen, _END)
                if self.cancel.is_set():
                    raise Cancelled()
                if ev is _END:
                    return
                if isinstance(ev, ResultSet):
                    await sink.result(ev)
                elif isinstance(ev, StatementDone):
                    sink.statement_done(ev)
                elif isinstance(ev, Send):
                    sink.send(ev.data)
                elif isinstance(ev, Sleep):
                    await self.sleep(ev.seconds)
                if sink.writer.pending() >= sink.writer.packet_size:
                    await sink.writer.flush_full_packets()
        finally:
            await self.in_thread(gen.close)

    async def sql_batch(self, msg: Message, writer: MessageWriter) -> None:
        engine = self.engine
        assert engine is not None
        pos, descriptor = parse_all_headers(msg.payload)
        text = msg.payload[pos:].decode("utf-16-le", errors="replace")
        self.stats.bump("batches")
        self.stats.log(self.spid, "SQL", text)
        sink = TokenSink(self, writer, in_proc=False)
        err = self.check_descriptor(descriptor)
        if err is not None:
            sink.send(tk.error(err.number, err.state, err.severity, err.message, self.config.server_name))
            sink.statement_done(StatementDone(tk.CMD_OTHER, None, error=True))
        else:
            await self.drain_events(engine.run_batch(text), sink)
        sink.finish_batch()

    async def rpc(self, msg: Message, writer: MessageWriter) -> None:
        engine = self.engine
        assert engine is not None
        pos, descriptor = parse_all_headers(msg.payload)
        calls = rpc.parse_rpc(msg.payload, pos)
        self.stats.bump("rpcs")
        sink = TokenSink(self, writer, in_proc=True)
        err = self.check_descriptor(descriptor)
        for i, call in enumerate(calls):
            more = i + 1 < len(calls)
            self.stats.log(self.spid, "RPC", f"{call.proc} " + " ".join(
                f"@{p.name}:{p.wire.sql_type()}" for p in call.params) + " | " +
                (str(call.params[0].value) if call.params and isinstance(call.params[0].value, str) else ""))
            outcome = rpc.ProcOutcome()
            sink.any_error = False
            try:
                if err is not None:
                    raise err
                await self.drain_events(rpc.run_call(engine, call, outcome), sink)
            except SqlError as exc:
                sink.send(tk.error(exc.number, exc.state, exc.severity, exc.message, self.config.server_name,
                                   call.proc))
                sink.any_error = True
            sink.proc_end(outcome, more, sink.any_error)

    async def bulk_load(self, msg: Message, writer: MessageWriter) -> None:
        engine = self.engine
        assert engine is not None
        self.stats.bump("bulk_loads")
        sink = TokenSink(self, writer, in_proc=False)
        try:
            count = await self.in_thread(bulk.load, engine, msg.payload)
            self.stats.log(self.spid, "BULK", f"{count} rows")
            sink.statement_done(StatementDone(tk.CMD_INSERT, count))
        except SqlError as exc:
            sink.send(tk.error(exc.number, exc.state, exc.severity, exc.message, self.config.server_name))
            sink.statement_done(StatementDone(tk.CMD_INSERT, None, error=True))
        sink.finish_batch()

    async def transaction_manager(self, msg: Message, writer: MessageWriter) -> None:
        """TM requests (pytds uses them for BEGIN/COMMIT/ROLLBACK)."""
        engine = self.engine
        assert engine is not None
        pos, _descriptor = parse_all_headers(msg.payload)
        r = Reader(msg.payload, pos)
        kind = r.u16()
        self.stats.log(self.spid, "TM", str(kind))
        sink = TokenSink(self, writer, in_proc=False)

        def run() -> list[bytes]:
            out: list[bytes] = []
            if kind == TM_BEGIN_XACT:
                r.u8()
                r.b_varchar()
                out += [ev.data for ev in engine.begin() if isinstance(ev, Send)]
            elif kind in (TM_COMMIT_XACT, TM_ROLLBACK_XACT):
                r.b_varchar()
                flags = r.u8() if not r.at_end() else 0
                if kind == TM_COMMIT_XACT:
                    out += [ev.data for ev in engine.commit() if isinstance(ev, Send)]
                else:
                    out += [ev.data for ev in engine.rollback() if isinstance(ev, Send)]
                if flags & 0x01:
                    out += [ev.data for ev in engine.begin() if isinstance(ev, Send)]
            elif kind == TM_SAVE_XACT:
                raise SqlError(40000, "TM_SAVE_XACT is not supported by this test server")
            else:
                raise SqlError(40000, f"transaction manager request {kind} is not supported by this test server")
            return out

        try:
            for data in await self.in_thread(run):
                sink.send(data)
            sink.statement_done(StatementDone(tk.CMD_OTHER, None))
        except SqlError as exc:
            sink.send(tk.error(exc.number, exc.state, exc.severity, exc.message, self.config.server_name))
            sink.statement_done(StatementDone(tk.CMD_OTHER, None, error=True))
        sink.finish_batch()
