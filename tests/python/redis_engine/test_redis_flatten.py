"""The commands of command()/pipeline() as the binding takes them: tuples
and lists go as they are (the binding checks every argument in C), other
sequences are copied into lists, reads are told from writes; and a
pipeline of such commands reaches the server intact."""

from __future__ import annotations

from collections import UserList
from enum import Enum
from typing import Any

import pytest

from db_pool import SyncDatabasePool
from db_pool._redis import command_list
from db_pool.errors import ProgrammingError


class Name(str, Enum):
    GET = "GET"


def test_tuples_and_lists_go_as_they_are() -> None:
    cmds = [("GET", "k"), ["HGET", b"h", "f"], ("INCRBY", "n", 5)]
    out, route = command_list(cmds, None)
    assert out == cmds and all(a is b for a, b in zip(out, cmds))
    assert route == 0  # INCRBY writes


def test_reads_only_when_every_command_reads() -> None:
    assert command_list([("GET", "a"), (b"hgetall", "h")], None)[1] == 1
    assert command_list([("GET", "a"), ("SET", "a", "1"), ("GET", "a")], None)[1] == 0
    assert command_list([("SET", "a", "1")], True)[1] == 1
    assert command_list([("GET", "a")], False)[1] == 0


def test_other_sequences_and_buffers_become_lists() -> None:
    out, _ = command_list([UserList(["SET", bytearray(b"k"), memoryview(b"v")]),
                           (Name.GET, "k")], None)
    assert out == [["SET", b"k", b"v"], (Name.GET, "k")]
    assert type(out[0][1]) is bytes and type(out[0][2]) is bytes


@pytest.mark.parametrize("commands", [["GET k"], [b"GET"], [42], []])
def test_commands_that_are_no_sequence_are_refused(commands: Any) -> None:
    with pytest.raises(ProgrammingError):
        command_list(commands, None)


@pytest.mark.parametrize("commands", [
    [("GET", None)], [("SET", "k", {"a": 1})], [("SET", "k", ["v"])], [()], [[]],
])
def test_bad_arguments_are_refused_by_the_binding(redis_url: str, commands: Any) -> None:
    with SyncDatabasePool() as pool:
        pool.create_pool("r", url=redis_url)
        with pytest.raises(ProgrammingError):
            pool.pipeline("r", commands)
        assert pool.command("r", "PING") == "PONG"  # the pool is intact


def test_a_pipeline_of_mixed_commands_round_trips(redis_url: str, redis_prefix: str) -> None:
    k = f"{redis_prefix}flat"
    with SyncDatabasePool() as pool:
        pool.create_pool("r", url=redis_url)
        replies = pool.pipeline("r", [("SET", k, bytearray(b"v1")), [b"GET", k],
                                      ("APPEND", k, 2), ("GET", k), ("SETBIT", f"{k}b", 1, True),
                                      ("INCRBY", f"{k}n", 2**70), ("DEL", k, f"{k}b")],
                                raise_on_error=False)
    assert replies[:5] == ["OK", b"v1", 3, b"v12", 0]
    assert isinstance(replies[5], Exception)  # past 64 bits: sent as digits, the server refuses
    assert replies[6] == 2
