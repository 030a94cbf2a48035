"""The guard's decisions with plain values: request framing, deadlines, connection counts."""

from __future__ import annotations

import pytest

from peerweb.config import ServerLimits
from peerweb.http.limits import (
    Admission,
    ConnectionTable,
    Phase,
    RequestFraming,
    address_key,
)

LIMITS = ServerLimits(header_timeout=10.0, body_timeout=30.0, idle_timeout=60.0)
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def fed(*chunks: bytes, start: float = 0.0) -> RequestFraming:
    framing = RequestFraming(since=start, last_byte=start)
    for i, chunk in enumerate(chunks):
        framing.feed(chunk, start + i + 1)
    return framing


def test_a_fresh_connection_waits_the_idle_timeout_for_its_first_request() -> None:
    framing = fed()
    assert framing.phase is Phase.IDLE
    assert framing.deadline(LIMITS, owns_idle=False) == 60.0


def test_a_head_must_end_header_timeout_after_its_first_byte_however_it_dribbles() -> None:
    framing = fed(b"G", b"E", b"T", b" / HTTP/1.1\r\n", b"Host: x\r\n")
    assert framing.phase is Phase.HEAD
    assert framing.deadline(LIMITS, owns_idle=True) == 1.0 + 10.0


def test_a_head_split_inside_its_final_crlf_is_complete() -> None:
    framing = fed(b"GET / HTTP/1.1\r\nHost: x\r\n\r", b"\n")
    assert framing.phase is Phase.IDLE and framing.requests == 1


def test_pipelined_requests_are_counted_and_leave_the_server_the_idle_wait() -> None:
    framing = fed(GET * 3)
    assert framing.phase is Phase.IDLE and framing.requests == 3
    assert framing.deadline(LIMITS, owns_idle=False) is None  # aiohttp's keep-alive does it
    assert framing.deadline(LIMITS, owns_idle=True) == 1.0 + 60.0  # the fast path's own


def test_a_content_length_body_waits_at_most_body_timeout_between_bytes() -> None:
    head = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
    framing = fed(head + b"12345", b"678")
    assert framing.phase is Phase.BODY
    assert framing.deadline(LIMITS, owns_idle=False) == 2.0 + 30.0
    framing.feed(b"90" + GET[:3], 3.0)
    assert framing.requests == 1 and framing.phase is Phase.HEAD and framing.since == 3.0


def test_a_chunked_body_is_followed_to_its_last_chunk_and_trailers() -> None:
    head = b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"5;ext=1\r\nhello\r\n1A\r\n" + b"z" * 26 + b"\r\n0\r\nTrailer: t\r\n\r\n"
    for split in range(len(body)):
        framing = fed(head + body[:split], body[split:])
        assert (framing.phase, framing.requests) == (Phase.IDLE, 1), split
    framing = fed(head + body[:-1])
    assert framing.phase is Phase.BODY


@pytest.mark.parametrize("head", [
    b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: \xd9\xa3\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
])
def test_heads_that_frame_no_body_are_left_to_the_server(head: bytes) -> None:
    framing = fed(head, b"more")
    assert framing.phase is Phase.UNFRAMED
    assert framing.deadline(LIMITS, owns_idle=True) == 2.0 + 30.0


def test_a_bare_lf_head_ends_at_its_empty_line() -> None:
    assert fed(b"GET / HTTP/1.1\nHost: x\n\n").requests == 1


def test_a_head_that_never_ends_stops_being_tracked_past_64_kib() -> None:
    framing = fed(b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000)
    assert framing.phase is Phase.UNFRAMED


def test_the_table_limits_each_address_and_the_total() -> None:
    table = ConnectionTable(max_total=3, max_per_address=2)
    assert [table.admit("a") for _ in range(3)] == [
        Admission.ADMIT, Admission.ADMIT, Admission.ADDRESS_FULL]
    assert table.admit("b") is Admission.ADMIT
    assert table.admit("c") is Admission.SERVER_FULL
    table.release("a")
    assert table.admit("c") is Admission.ADMIT
    table.release("nobody")
    assert table.total == 3 and table.by_address == {"a": 1, "b": 1, "c": 1}


@pytest.mark.parametrize(("peername", "key"), [
    (("127.0.0.5", 4000), "127.0.0.5"),
    (("2001:db8:1:2:3:4:5:6", 4000, 0, 0), "2001:db8:1:2::/64"),
    (("2001:db8:1:2:ffff::1", 4000, 0, 0), "2001:db8:1:2::/64"),
    (("::ffff:10.0.0.1", 4000, 0, 0), "10.0.0.1"),
    ("/run/peerweb.sock", "/run/peerweb.sock"),
    (None, "None"),
])
def test_address_key(peername: object, key: str) -> None:
    assert address_key(peername) == key
