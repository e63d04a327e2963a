"""The commands of command()/pipeline() flattened for the driver: the fast
path for tuples and lists of plain arguments must give what the checked
path gives, and everything else must still be checked; and a pipeline of
such commands must reach the server intact."""

from __future__ import annotations

from collections import UserList
from enum import Enum
from typing import Any

import pytest

from db_pool import SyncDatabasePool
from db_pool._redis import flatten
from db_pool.errors import ProgrammingError


class Name(str, Enum):
    GET = "GET"


def test_plain_commands_flatten_as_count_then_arguments() -> None:
    flat, n, reads = flatten([("GET", "k"), ["HGET", b"h", "f"], ("INCRBY", "n", 5),
                              ("SET", "f", 1.5), ("SETBIT", "b", 1, True)])
    assert flat == [2, "GET", "k", 3, "HGET", b"h", "f", 3, "INCRBY", "n", 5,
                    3, "SET", "f", 1.5, 4, "SETBIT", "b", 1, True]
    assert n == 5 and reads is False


def test_reads_only_when_every_command_reads() -> None:
    assert flatten([("GET", "a"), (b"hgetall", "h")])[2] is True
    assert flatten([("GET", "a"), ("SET", "a", "1"), ("GET", "a")])[2] is False


def test_other_sequences_and_buffers_take_the_checked_path() -> None:
    flat, n, _ = flatten([UserList(["SET", bytearray(b"k"), memoryview(b"v")]),
                          (Name.GET, "k")])
    assert flat == [3, "SET", b"k", b"v", 2, Name.GET, "k"]
    assert type(flat[2]) is bytes and type(flat[3]) is bytes
    assert n == 2


@pytest.mark.parametrize("commands", [
    [("GET", None)], [("SET", "k", {"a": 1})], [("SET", "k", ["v"])], ["GET k"], [b"GET"],
    [()], [[]], [42], [],
])
def test_bad_commands_are_refused(commands: Any) -> None:
    with pytest.raises(ProgrammingError):
        flatten(commands)


def test_a_pipeline_of_mixed_commands_round_trips(redis_url: str, redis_prefix: str) -> None:
    k = f"{redis_prefix}flat"
    with SyncDatabasePool() as pool:
        pool.create_pool("r", url=redis_url)
        replies = pool.pipeline("r", [("SET", k, bytearray(b"v1")), [b"GET", k],
                                      ("APPEND", k, 2), ("GET", k), ("DEL", k)])
    assert replies == ["OK", b"v1", 3, b"v12", 1]
