"""Timeouts and connection limits shared by every server peerweb listens with.

aiohttp waits for a request head for as long as its keep-alive timeout allows (an hour by
default), never times out a body, and accepts any number of connections from one address, so
150 half-sent requests could hold every file descriptor a node had. Each listening socket is
therefore fronted by ``GuardedProtocol``, which

- counts connections per source address and in all (``ConnectionTable``), answering those over
  the limit ``503`` and closing them before a server ever sees them;
- follows where each connection is in its request sequence (``RequestFraming``, RFC 9112
  section 6: a head, then a Content-Length or chunked body) and closes it when a head is not
  complete ``header_timeout`` after its first byte, when a body stops arriving for
  ``body_timeout``, or when nothing is in flight for ``idle_timeout``.

The decisions (``address_key``, ``ConnectionTable``, ``RequestFraming.deadline``) take values
and the current time; ``GuardedProtocol`` and ``serve`` are the asyncio adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import resource
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from aiohttp import web

from ..config import ServerLimits

# Past this many bytes a head is not one any of our servers accepts (aiohttp refuses lines over
# 8 KiB): stop looking for its end and let the server refuse it.
MAX_TRACKED_HEAD = 64 * 1024
# A chunk-size line longer than this is not one (RFC 9112 section 7.1: hex digits, extensions).
MAX_CHUNK_LINE = 1024
# Without an open-file limit to go by, a server holds at most this many connections.
FALLBACK_MAX_CONNECTIONS = 4096
MIN_MAX_CONNECTIONS = 16

BUSY_ANSWER = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
               b"Retry-After: 5\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s")
TOO_MANY_FROM_YOU = b"too many connections from your address\n"
TOO_MANY = b"too many connections\n"
TIMEOUT_ANSWER = (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  b"Connection: close\r\nContent-Length: 28\r\n\r\nrequest took too long, sorry\n")


def address_key(peername: object) -> str:
    """Whom a connection counts against: its IPv4 address, or the /64 of an IPv6 one."""
    host = peername[0] if isinstance(peername, tuple) and peername else peername
    try:
        ip = ipaddress.ip_address(str(host))
    except ValueError:
        return str(host)  # a Unix socket, or something else without an IP address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def max_connections(limits: ServerLimits) -> int:
    """``limits.max_connections``, or a quarter of the open-file limit when that is None."""
    if limits.max_connections is not None:
        return limits.max_connections
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return FALLBACK_MAX_CONNECTIONS
    return min(FALLBACK_MAX_CONNECTIONS, max(MIN_MAX_CONNECTIONS, soft // 4))


class Admission(Enum):
    ADMIT = "admit"
    ADDRESS_FULL = "address_full"
    SERVER_FULL = "server_full"


class ConnectionTable:
    """Connections held, per source address and in all."""

    def __init__(self, max_total: int, max_per_address: int) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.total = 0
        self.by_address: dict[str, int] = {}

    def admit(self, key: str) -> Admission:
        held = self.by_address.get(key, 0)
        if held >= self.max_per_address:
            return Admission.ADDRESS_FULL
        if self.total >= self.max_total:
            return Admission.SERVER_FULL
        self.by_address[key] = held + 1
        self.total += 1
        return Admission.ADMIT

    def release(self, key: str) -> None:
        held = self.by_address.get(key, 0)
        if held <= 0:
            return
        self.total -= 1
        if held == 1:
            del self.by_address[key]
        else:
            self.by_address[key] = held - 1


class Phase(Enum):
    IDLE = "idle"  # no byte of the next request yet
    HEAD = "head"  # part of a request head
    BODY = "body"  # a Content-Length or chunked body
    UNFRAMED = "unframed"  # bytes we cannot frame (the server will refuse them)


class _Chunk(Enum):
    SIZE = "size"
    DATA = "data"
    DATA_END = "data_end"
    TRAILER = "trailer"


@dataclass
class RequestFraming:
    """Where a connection's incoming bytes stand in its sequence of HTTP/1.1 requests.

    Only framing: where a head ends (the first empty line) and how long its body is
    (``Transfer-Encoding: chunked`` or ``Content-Length``, RFC 9112 section 6.3). Whether the
    request is valid is the server's business; bytes that cannot be framed are UNFRAMED.
    """

    phase: Phase = Phase.IDLE
    since: float = 0.0
    """When the phase started: the first byte of a head, the end of a request or connect."""
    last_byte: float = 0.0
    requests: int = 0
    """Requests received whole so far."""
    _head: bytearray = field(default_factory=bytearray)
    _remaining: int = 0
    _chunked: bool = False
    _chunk: _Chunk = _Chunk.SIZE
    _line: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes, now: float) -> None:
        if data:
            self.last_byte = now
        if self.phase is Phase.IDLE and self._whole_heads(data, now):
            return
        view = memoryview(data)
        while view and self.phase is not Phase.UNFRAMED:
            if self.phase is Phase.IDLE:
                self.phase, self.since = Phase.HEAD, now
            if self.phase is Phase.HEAD:
                view = self._feed_head(view, now)
            elif self._chunked:
                view = self._feed_chunked(view, now)
            else:
                taken = min(self._remaining, len(view))
                self._remaining -= taken
                view = view[taken:]
                if self._remaining == 0:
                    self._finish(now)

    def deadline(self, limits: ServerLimits, owns_idle: bool) -> float | None:
        """When the connection has waited too long on its client, or None (the server is
        answering, and closes an idle keep-alive itself unless ``owns_idle``)."""
        if self.phase is Phase.HEAD:
            return self.since + limits.header_timeout
        if self.phase in (Phase.BODY, Phase.UNFRAMED):
            return self.last_byte + limits.body_timeout
        if owns_idle or self.requests == 0:
            return self.since + limits.idle_timeout
        return None

    def _whole_heads(self, data: bytes, now: float) -> bool:
        """The common case, cheaply: ``data`` is whole bodiless requests (a browser's GETs, a
        pipelined batch). False, having changed nothing, when it is anything else."""
        if not data.endswith(b"\r\n\r\n") or b"\n\n" in data:
            return False
        lowered = data.lower()
        if b"content-length" in lowered or b"transfer-encoding" in lowered:
            return False
        self.requests += data.count(b"\r\n\r\n")
        self.since = now
        return True

    def _finish(self, now: float) -> None:
        self.requests += 1
        self.phase, self.since = Phase.IDLE, now

    def _feed_head(self, view: memoryview, now: float) -> memoryview:
        start = max(0, len(self._head) - 3)
        self._head += view
        end, size = self._head.find(b"\r\n\r\n", start), 4
        bare = self._head.find(b"\n\n", start)
        if bare >= 0 and (end < 0 or bare < end):
            end, size = bare, 2
        if end < 0:
            if len(self._head) > MAX_TRACKED_HEAD:
                self.phase = Phase.UNFRAMED
            return view[len(view):]
        rest = len(self._head) - (end + size)
        head = bytes(self._head[:end])
        self._head.clear()
        framing = _body_framing(head)
        if framing is None:
            self.phase = Phase.UNFRAMED
            return view[len(view):]
        self._chunked, self._remaining = framing == -1, max(framing, 0)
        self._chunk = _Chunk.SIZE
        if self._chunked or self._remaining:
            self.phase = Phase.BODY
        else:
            self._finish(now)
        return view[len(view) - rest:]

    def _feed_chunked(self, view: memoryview, now: float) -> memoryview:
        if self._chunk is _Chunk.DATA:
            taken = min(self._remaining, len(view))
            self._remaining -= taken
            if self._remaining == 0:
                self._chunk = _Chunk.DATA_END
            return view[taken:]
        newline = bytes(view).find(b"\n")
        if newline < 0:
            self._line += view
            if len(self._line) > MAX_CHUNK_LINE:
                self.phase = Phase.UNFRAMED
            return view[len(view):]
        self._line += view[:newline]
        line = bytes(self._line).rstrip(b"\r")
        self._line.clear()
        if self._chunk is _Chunk.SIZE:
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16) if size_text else -1
            except ValueError:
                size = -1
            if size < 0:
                self.phase = Phase.UNFRAMED
            elif size == 0:
                self._chunk = _Chunk.TRAILER
            else:
                self._chunk, self._remaining = _Chunk.DATA, size
        elif self._chunk is _Chunk.DATA_END:
            if line:
                self.phase = Phase.UNFRAMED
            self._chunk = _Chunk.SIZE
        elif not line:  # the empty line that ends the trailer section
            self._chunked = False
            self._finish(now)
        return view[newline + 1:]


def _body_framing(head: bytes) -> int | None:
    """-1 for a chunked body, else its length; None when the head frames no body we can
    follow (conflicting or malformed lengths: the server will refuse the request)."""
    lengths = set()
    chunked = False
    for line in head.split(b"\n")[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        name = name.strip().lower()
        if name == b"transfer-encoding":
            chunked = value.strip().lower().endswith(b"chunked")
            if not chunked:
                return None
        elif name == b"content-length":
            lengths.add(value.strip())
    if chunked:
        return None if lengths else -1
    if not lengths:
        return 0
    if len(lengths) > 1:
        return None
    (text,) = lengths
    return int(text) if text.isdigit() and text.isascii() else None


Switch = Callable[[asyncio.Protocol], None]
Fallback = Callable[[], asyncio.Protocol]
Front = Callable[[Fallback, Switch], asyncio.Protocol]
"""Makes a connection's first protocol (the fast path) from the full server's factory and the
guard's ``switch``, through which it hands the connection on."""


class GuardedProtocol(asyncio.Protocol):
    """Admits a connection against the table, then passes everything to the inner protocol
    while keeping its deadlines. ``front``, when given, makes the connection's first protocol
    (the fast path), which hands it on through ``switch``; until then this guard also closes
    the connection when idle."""

    def __init__(self, fallback: Fallback, limits: ServerLimits, table: ConnectionTable,
                 guards: set[GuardedProtocol], front: Front | None = None) -> None:
        self.fallback = fallback
        self.limits = limits
        self.table = table
        self.guards = guards
        self.front = front
        self.inner: asyncio.Protocol | None = None
        self.owns_idle = front is not None
        self.transport: asyncio.Transport | None = None
        self.framing = RequestFraming()
        self._key: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for = 0.0
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        key = address_key(transport.get_extra_info("peername"))
        admission = self.table.admit(key)
        if admission is not Admission.ADMIT:
            text = TOO_MANY_FROM_YOU if admission is Admission.ADDRESS_FULL else TOO_MANY
            transport.write(BUSY_ANSWER % (len(text), text))
            transport.close()
            return
        self._key = key
        self.guards.add(self)
        now = self._loop.time()
        self.framing.since = self.framing.last_byte = now
        self.inner = (self.front(self.fallback, self.switch) if self.front is not None
                      else self.fallback())
        self._arm()
        self.inner.connection_made(transport)

    def switch(self, protocol: asyncio.Protocol) -> None:
        """The fast path gives the connection to the full server, which closes idle
        keep-alives itself."""
        self.inner = protocol
        self.owns_idle = False

    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            return
        self.framing.feed(data, self._loop.time())
        self._arm()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._key is not None:
            self.table.release(self._key)
            self._key = None
        self.guards.discard(self)
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _arm(self) -> None:
        # One timer per connection. It is moved only when a deadline comes earlier (a head
        # begins, a body starts); a later one is found when the timer fires and re-arms, so
        # most requests cost a comparison here, not a cancel and a new timer.
        deadline = self.framing.deadline(self.limits, self.owns_idle)
        if deadline is None or (self._timer is not None and self._armed_for <= deadline):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._armed_for = deadline
        self._timer = self._loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        now = self._loop.time()
        deadline = self.framing.deadline(self.limits, self.owns_idle)
        if deadline is None:
            return  # the server is answering; data_received arms the timer again
        if not transport.is_reading():
            # The server stopped reading (flow control), not the client: look again later.
            deadline = max(deadline, now + self.limits.body_timeout)
        if deadline > now:
            self._armed_for = deadline
            self._timer = self._loop.call_at(deadline, self._expire)
            return
        if self.framing.phase is Phase.HEAD and (self.framing.requests == 0 or self.owns_idle):
            # No answer is in flight on this connection, so a 408 cannot interleave with one.
            transport.write(TIMEOUT_ANSWER)
        transport.close()


@dataclass
class Listening:
    """A server listening with limits: its bound address, and how to stop it."""

    address: tuple[str, int]
    server: asyncio.Server
    runner: web.AppRunner
    guards: set[GuardedProtocol]
    table: ConnectionTable

    async def close(self) -> None:
        self.server.close()
        for guard in list(self.guards):
            if guard.owns_idle:  # still on the fast path: aiohttp does not know it
                guard.close()
        await self.runner.cleanup()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), 5.0)


async def serve(app: web.Application, host: str, port: int, limits: ServerLimits,
                front: Front | None = None) -> Listening:
    """Serve ``app`` on host:port behind a GuardedProtocol; raises OSError as bind does."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           keepalive_timeout=limits.idle_timeout)
    await runner.setup()
    server = runner.server
    assert server is not None
    table = ConnectionTable(max_connections(limits), limits.max_per_address)
    guards: set[GuardedProtocol] = set()
    try:
        listening = await asyncio.get_running_loop().create_server(
            lambda: GuardedProtocol(server, limits, table, guards, front),
            host, port, reuse_address=True)
    except BaseException:
        await runner.cleanup()
        raise
    bound = listening.sockets[0].getsockname()
    return Listening((str(bound[0]), int(bound[1])), listening, runner, guards, table)
