"""A replay cache in front of the gateway for the small files that make up most of a page.

aiohttp spends tens of microseconds per request on parsing, routing and response objects; for
a small file already verified and held in memory that is nearly all the cost, and it held the
gateway to about a fifth of nginx's request rate. When the full gateway answers such a request
(GET, 200, the whole file from memory, no Range or conditional header, keep-alive), it stores
the exact response it sent, with a check from the gateway: is the snapshot it came from still
the one a visit gets (the same signed version, still held)? This protocol answers a request
whose Host and target match a stored response whose check passes by writing those bytes
again (the check also counts the visit, as the gateway would); on a connection's first
request that does not match, it hands the connection, with what it has buffered, to aiohttp
for good. A replayed answer is byte for byte one the gateway produced for the same version.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from aiohttp import HttpVersion11, web

# Entries nobody asked for in this long are dropped when the store is full.
IDLE_SECONDS = 60.0
MAX_ENTRIES = 4096
MAX_HEAD = 8192
# A request carrying any of these needs the full gateway (ranges, revalidation, bodies, ...).
_NEEDS_GATEWAY = frozenset({
    b"range", b"if-range", b"if-none-match", b"if-modified-since", b"if-match",
    b"if-unmodified-since", b"content-length", b"transfer-encoding", b"expect", b"upgrade",
})
# RFC 9110 section 5.6.2: a field name is a token.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DROPPED = frozenset({"date", "connection", "content-length", "keep-alive"})
# Request key under which the gateway leaves, on a whole small-file answer, the check that says
# whether that answer still stands.
REPLAYABLE: Any = (web.RequestKey("peerweb_replayable", object)
                   if hasattr(web, "RequestKey") else "peerweb_replayable")  # aiohttp < 3.12


@dataclass
class _Entry:
    head: bytes  # status line and headers, without Date and the final blank line
    body: bytes
    still_current: Callable[[], bool]
    used: float


class ReplayStore:
    """Responses the gateway produced, by (Host, target), while their snapshot is current."""

    def __init__(self, capacity: int = MAX_ENTRIES) -> None:
        self.capacity = capacity
        self._entries: dict[tuple[bytes, bytes], _Entry] = {}
        self._date = b""
        self._date_second = -1

    def get(self, host: bytes, target: bytes) -> _Entry | None:
        entry = self._entries.get((host, target))
        if entry is None:
            return None
        if not entry.still_current():
            del self._entries[(host, target)]
            return None
        entry.used = time.monotonic()
        return entry

    def put(self, host: bytes, target: bytes, status: int, reason: str,
            headers: list[tuple[str, str]], body: bytes,
            still_current: Callable[[], bool]) -> None:
        now = time.monotonic()
        if len(self._entries) >= self.capacity:
            self._entries = {k: e for k, e in self._entries.items()
                             if now - e.used < IDLE_SECONDS}
            if len(self._entries) >= self.capacity:
                return
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{name}: {value}" for name, value in headers if name.lower() not in _DROPPED]
        lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        self._entries[(host, target)] = _Entry(head, body, still_current, now)

    def clear(self) -> None:
        self._entries.clear()

    def date_header(self) -> bytes:
        second = int(time.time())
        if second != self._date_second:
            self._date_second = second
            self._date = f"Date: {formatdate(second, usegmt=True)}\r\n\r\n".encode()
        return self._date


async def record(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: keep a whole small-file answer for replay."""
    store: ReplayStore | None = request.app.get(STORE_KEY)
    still_current = request.get(REPLAYABLE)
    if (store is None or still_current is None or request.method != "GET"
            or request.version != HttpVersion11 or not request.keep_alive
            or not isinstance(response, web.Response) or response.status != 200
            or not isinstance(response.body, bytes)
            or "Transfer-Encoding" in response.headers):
        return
    host = request.headers.get("Host", "").lower().encode("latin-1", "replace")
    store.put(host, request.raw_path.encode("latin-1", "replace"), response.status,
              response.reason, list(response.headers.items()), response.body, still_current)


STORE_KEY = web.AppKey("replay_store", ReplayStore)


class ReplayProtocol(asyncio.Protocol):
    """Answers replayable requests itself; gives the connection to aiohttp otherwise.

    Anything it is not sure aiohttp would accept as it reads it (a bare LF, a repeated Host,
    whitespace before a colon, a name that is not a token) goes to aiohttp, which refuses it:
    the fast path never answers a request the full gateway would not.
    """

    def __init__(self, store: ReplayStore, fallback: Callable[[], asyncio.Protocol],
                 switch: Callable[[asyncio.Protocol], None] | None = None) -> None:
        self.store = store
        self.fallback = fallback
        self.switch = switch
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.buffer:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                # A bare LF may end a head aiohttp refuses; waiting for CRLF CRLF would hang.
                if (len(self.buffer) > MAX_HEAD
                        or self.buffer.count(b"\n") != self.buffer.count(b"\r\n")):
                    self._hand_over()
                return
            answer = self._replay(self.buffer[:end])
            if answer is None:
                self._hand_over()
                return
            assert self.transport is not None
            self.transport.write(answer)
            self.buffer = self.buffer[end + 4:]

    def _replay(self, head: bytes) -> bytes | None:
        if head.count(b"\n") != head.count(b"\r\n") or b"\r" in head.replace(b"\r\n", b""):
            return None  # a bare LF or CR inside the head: aiohttp answers 400
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or parts[2] != b"HTTP/1.1" or parts[0] not in (b"GET", b"HEAD"):
            return None
        host = None
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            # RFC 9112 section 5.1: no whitespace between a field name and its colon; a
            # folded or malformed line, or an odd name, is aiohttp's to judge (and refuse).
            if not colon or not _TOKEN.fullmatch(name):
                return None
            name = name.lower()
            if name == b"host":
                if host is not None:
                    return None  # two Host fields: RFC 9112 section 3.2 says 400
                host = value.strip().lower()
            elif name in _NEEDS_GATEWAY or (
                    name == b"connection" and value.strip().lower() != b"keep-alive"):
                return None
        entry = self.store.get(host or b"", parts[1])
        if entry is None:
            return None
        if parts[0] == b"HEAD":
            return entry.head + self.store.date_header()
        return entry.head + self.store.date_header() + entry.body

    def _hand_over(self) -> None:
        assert self.transport is not None
        protocol = self.fallback()
        if self.switch is not None:
            self.switch(protocol)  # the connection's guard passes bytes on from now
        else:
            self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        if self.buffer:
            protocol.data_received(self.buffer)
        self.buffer = b""

    def pause_writing(self) -> None:
        # A client that sends requests but does not read the answers: stop reading it.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()
