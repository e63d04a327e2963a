"""Type stubs of the CPython binding (internal; use the db_pool package)."""

from typing import Any, final

OP_QUERY: int
OP_EXECUTE: int
OP_EXECUTE_MANY: int
OP_LEASE: int
OP_BEGIN: int
OP_COMMIT: int
OP_ROLLBACK: int
OP_CURSOR_OPEN: int
OP_CURSOR_FETCH: int
OP_CURSOR_CLOSE: int
OP_WRITE_FRAME: int
OP_COMMAND: int
TYPE_IDS: dict[str, int]
COPY_AUTO: int
COPY_ALWAYS: int
COPY_NEVER: int

def engines() -> list[str]: ...
@final
class ResultStream:
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

@final
class Request:
    future: Any
    @property
    def cursor_done(self) -> bool: ...
    def wait(self, timeout: float = ..., /) -> bool: ...
    def cancel(self) -> None: ...
    def done(self) -> bool: ...
    def check(self) -> None: ...
    def result(self) -> ResultStream: ...
    def rows_affected(self) -> int: ...
    def reply(self) -> Any: ...
    def take_lease(self) -> Lease: ...
    def notices(self) -> list[str]: ...

@final
class Lease:
    @property
    def in_transaction(self) -> bool: ...
    @property
    def endpoint(self) -> str | None: ...
    def submit(
        self,
        op: int,
        sql: str | None = None,
        params: Any = None,
        *,
        many: int = False,
        batch_rows: int = 0,
        copy: int = 0,
        input: object = None,
        queue: CompletionQueue | None = None,
        future: Any = None,
        timeout: float | None = None,
    ) -> Request: ...
    def release(self) -> None: ...

@final
class CompletionQueue:
    def __init__(self) -> None: ...
    def fileno(self) -> int: ...
    def drain(self) -> list[Request]: ...
    @property
    def pending(self) -> int: ...

@final
class Manager:
    def __init__(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def create_pool(
        self,
        pool_id: str,
        engine: str,
        settings: dict[str, str] | list[dict[str, str]],
        options: dict[str, Any],
        /,
    ) -> None: ...
    def reconfigure_pool(
        self,
        pool_id: str,
        settings: dict[str, str] | list[dict[str, str]],
        options: dict[str, Any],
        /,
    ) -> dict[str, Any]: ...
    def probe_now(self, pool_id: str, /) -> None: ...
    def close_pool(self, pool_id: str, timeout: float | None = None, /) -> bool: ...
    def list_pools(self) -> list[str]: ...
    def stats(self, pool_id: str, /) -> dict[str, Any]: ...
    def metrics(self, pool_id: str, /) -> dict[str, Any]: ...
    def wait_events(self, timeout: float, /) -> list[dict[str, Any]] | None: ...
    def submit(
        self,
        pool_id: str,
        op: int,
        sql: str | None = None,
        params: Any = None,
        *,
        many: int = False,
        batch_rows: int = 0,
        copy: int = 0,
        input: object = None,
        queue: CompletionQueue | None = None,
        future: Any = None,
        engine: str | None = None,
        readonly: int = -1,
        timeout: float | None = None,
    ) -> Request: ...
    def close(self, timeout: float | None = None, /) -> bool: ...
