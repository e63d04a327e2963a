"""Session state: init_sql on every new connection, and the reset on release
that keeps one caller's SET, temporary tables and advisory locks from
reaching the next caller (reset_on_release: auto, always, never)."""

from __future__ import annotations

from typing import Any

import pytest

from db_pool import ConfigurationError, DatabasePool, ProgrammingError

from .conftest import POOL_ID, assert_healthy, pool_kwargs


async def make(api: Any, server: Any, schema: str, **options: Any) -> None:
    await api.create_pool(POOL_ID, **pool_kwargs(server, schema), max_size=1, **options)


async def setting(api: Any, name: str) -> str:
    return str((await api.query(POOL_ID, f"SELECT current_setting('{name}') AS v")).item())


async def test_init_sql_runs_on_every_new_connection(api: Any, pg_server: Any, schema: str) -> None:
    await api.create_pool(POOL_ID, **pool_kwargs(pg_server, schema), min_size=2, max_size=2,
                          init_sql="SET application_name = 'from-init'")
    names = await api.query(
        POOL_ID, "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'from-init'")
    assert names.item() == 2
    assert await setting(api, "application_name") == "from-init"


async def test_init_sql_failure_fails_the_connect(api: Any, pg_server: Any, schema: str) -> None:
    with pytest.raises(ProgrammingError, match="init_sql failed") as info:
        await make(api, pg_server, schema, init_sql="SET no_such_setting_at_all = 1")
    assert info.value.sqlstate == "42704"
    with pytest.raises(ConfigurationError, match="init_sql"):
        await make(api, pg_server, schema, init_sql="  ")


async def test_set_does_not_leak_to_the_next_caller(api: Any, pg_server: Any, schema: str) -> None:
    await make(api, pg_server, schema)
    await api.execute(POOL_ID, "SET statement_timeout = 4321")
    assert await setting(api, "statement_timeout") == "0"
    await api.query(POOL_ID, "SELECT set_config('work_mem', '7MB', false) AS v")
    assert await setting(api, "work_mem") != "7MB"
    await assert_healthy(api)


async def test_reset_keeps_init_sql_settings(api: Any, pg_server: Any, schema: str) -> None:
    await make(api, pg_server, schema, init_sql="SET application_name = 'keep-me'")
    await api.execute(POOL_ID, "SET application_name = 'caller'")
    assert await setting(api, "application_name") == "keep-me"


async def test_temp_tables_and_advisory_locks_do_not_leak(api: Any, pg_server: Any, schema: str,
                                                          admin: Any) -> None:
    await make(api, pg_server, schema)
    await api.execute(POOL_ID, "CREATE TEMP TABLE scratch (a int)")
    assert (await api.query(POOL_ID, "SELECT to_regclass('pg_temp.scratch')::text AS t")).item() is None
    await api.query(POOL_ID, "SELECT pg_advisory_lock(4242) AS l")
    assert admin.execute("SELECT pg_try_advisory_lock(4242)").fetchone()[0] is True
    admin.execute("SELECT pg_advisory_unlock(4242)")


async def test_reset_keeps_the_statement_cache(api: Any, pg_server: Any, schema: str) -> None:
    await make(api, pg_server, schema)
    assert (await api.query(POOL_ID, "SELECT $1::int4 + 1 AS v", [1])).item() == 2
    await api.execute(POOL_ID, "SET work_mem = '8MB'")
    assert (await api.query(POOL_ID, "SELECT $1::int4 + 1 AS v", [2])).item() == 3
    cached = (await api.query(POOL_ID, "SELECT count(*) AS n FROM pg_prepared_statements")).item()
    assert cached >= 1  # the driver's named statements survived the reset


async def test_change_inside_a_function_needs_always(apg: DatabasePool, pg_server: Any,
                                                     schema: str, admin: Any) -> None:
    admin.execute("CREATE FUNCTION quiet_set() RETURNS int LANGUAGE plpgsql AS "
                  "$$ BEGIN PERFORM set_config('work_mem', '9MB', false); RETURN 1; END $$")
    for mode, leaks in (("auto", True), ("always", False)):
        pool_id = f"p_{mode}"
        await apg.create_pool(pool_id, **pool_kwargs(pg_server, schema), max_size=1,
                              reset_on_release=mode)
        await apg.query(pool_id, "SELECT quiet_set() AS v")
        value = (await apg.query(pool_id, "SELECT current_setting('work_mem') AS v")).item()
        assert (value == "9MB") is leaks, (mode, value)


async def test_reset_never_keeps_the_session(api: Any, pg_server: Any, schema: str) -> None:
    await make(api, pg_server, schema, reset_on_release="never")
    await api.execute(POOL_ID, "SET statement_timeout = 4321")
    assert await setting(api, "statement_timeout") == "4321ms"
    with pytest.raises(ConfigurationError, match="reset_on_release"):
        await api.create_pool("bad", **pool_kwargs(pg_server, schema), reset_on_release="sometimes")


async def test_init_sql_is_the_baseline_not_a_change(apg: DatabasePool, pg_server: Any,
                                                     schema: str, admin: Any) -> None:
    """A SET in init_sql is not undone on release: no reset round trip
    follows plain statements (the backend's count of RESET ALL stays 0)."""
    await apg.create_pool("b", **pool_kwargs(pg_server, schema), max_size=1,
                          init_sql="SET application_name = 'baseline'")
    pid = (await apg.query("b", "SELECT pg_backend_pid() AS p")).item()
    for _ in range(3):
        assert (await apg.query("b", "SELECT 1 AS one")).item() == 1
    row = admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    # the last thing the backend ran is the caller's query, not a reset
    # followed by init_sql again
    assert row is not None and "SELECT 1 AS one" in row[0], row


async def test_set_local_needs_no_reset(apg: DatabasePool, pg_server: Any, schema: str) -> None:
    """SET LOCAL ends with its transaction: the connection comes back at once
    (no reset through a worker), and the setting is gone."""
    await apg.create_pool("l", **pool_kwargs(pg_server, schema), max_size=1)
    async with apg.transaction("l") as tx:
        await tx.execute("SET LOCAL work_mem = '5MB'")
    assert apg.stats("l")["in_use"] == 0
    assert (await apg.query("l", "SELECT current_setting('work_mem') AS v")).item() != "5MB"


@pytest.mark.parametrize("sql", [
    "UPDATE s SET temp = temp + 1",                    # SET and temp as plain words
    "SELECT temp FROM s WHERE temp > 0",
    "INSERT INTO s (temp) VALUES (1) ON CONFLICT DO NOTHING",
])
async def test_plain_statements_need_no_reset(apg: DatabasePool, pg_server: Any, schema: str,
                                              admin: Any, sql: str) -> None:
    """No reset round trip after statements that only look like session
    changes: the backend's last statement is the caller's own, and the
    connection is back in the pool at once."""
    admin.execute("CREATE TABLE s (temp int)")
    await apg.create_pool("n", **pool_kwargs(pg_server, schema), max_size=1)
    pid = (await apg.query("n", "SELECT pg_backend_pid() AS p")).item()
    async with apg.transaction("n") as tx:
        await tx.execute(sql)
    assert apg.stats("n")["in_use"] == 0
    last = admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    assert last is not None and "RESET" not in last[0], last
