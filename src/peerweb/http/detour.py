"""Detours for a node's own connections: direct when the path works, else one hop through
a relay (``http.relay``), chosen and watched by ``policy.paths``.

``Detours.connect(host, port)`` opens a connection: directly, unless the direct path failed
recently (then it is tried again after a back-off), else through the relays that reached the
destination lately, then the others, each bounded by ``CONNECT_TIMEOUT``. ``Detours.get``
is a small HTTP/1.0 GET on top that watches the transfer (``PathWatch``: a stall or reset
within seconds) and, on failure, resumes with a Range request through the next path, so a
transfer survives a path cut under it and its bytes are exactly the origin's. ``https`` URLs
are wrapped in TLS *inside* the tunnel: the relay sees only the address and the byte count.

``Reservation`` is the other half, for a NATed node: it keeps a connection open to a relay
(``RESERVE``) and, for every tunnel someone opens to it there, opens a fresh connection to
the relay (``ACCEPT``) and splices it to its own local service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import PeerwebError
from ..policy.paths import CONNECT_TIMEOUT, STALL_AFTER, PathBook, PathWatch
from .punch import punch
from .relay import CHUNK, read_head, splice, split_hostport

log = logging.getLogger(__name__)

Endpoint = tuple[str, int]
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
MAX_ATTEMPTS = 6
"""Paths one ``get`` tries before it gives up (the direct one and a few relays, twice)."""
RESERVE_RETRY = 2.0


class Unreachable(PeerwebError):
    """No path (direct or through a relay) reached the destination."""

    http_status = 504


@dataclass(frozen=True)
class PathEvent:
    """A failure of a path in use and what replaced it (for status and the bench)."""

    destination: Endpoint
    failed: Endpoint | None
    """The relay that failed, None for the direct path."""
    reason: str
    detected: float
    """When the detector fired (monotonic seconds)."""
    recovered: float | None = None
    """When bytes flowed again on the next path; None if none did."""
    via: Endpoint | None = None
    """The path that took over (None: direct)."""


@dataclass
class Fetched:
    status: int
    headers: dict[str, str]
    body: bytes
    paths: list[Endpoint | None] = field(default_factory=list)
    """Every path the body came over, in order (None: direct)."""


async def open_via(relay: Endpoint, host: str, port: int, timeout: float,
                   local: str | None = None) -> Streams:
    """A tunnel to ``host``:``port`` through ``relay`` (HTTP CONNECT)."""
    async def go() -> Streams:
        reader, writer = await asyncio.open_connection(
            relay[0], relay[1], local_addr=(local, 0) if local else None)
        try:
            writer.write(f"CONNECT {_hostport(host, port)} HTTP/1.1\r\n"
                         f"Host: {_hostport(host, port)}\r\n\r\n".encode())
            head = await read_head(reader)
            words = head[0].split(None, 2) if head else []
            if len(words) < 2 or words[1] != "200":
                raise ConnectionRefusedError(f"relay refused: {head[0] if head else 'nothing'}")
        except BaseException:
            writer.close()
            raise
        return reader, writer
    return await asyncio.wait_for(go(), timeout)


class Detours:
    """A node's connections, direct or through one relay, with what it learnt of paths."""

    def __init__(self, relays: Sequence[Endpoint] = (), local: str | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT, stall_after: float = STALL_AFTER,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.relays = list(relays)
        self.local = local
        self.connect_timeout = connect_timeout
        self.stall_after = stall_after
        self.clock = clock
        self.book = PathBook()
        self.events: list[PathEvent] = []
        self.punch = False
        """Whether to try a hole punch (through the first relay) before relaying: set by
        the owner when its own NAT keeps ports (``Reachability.punchable``)."""
        self.punched = 0
        """Connections made by a punch (they count as direct: no relay carries them)."""

    async def _direct(self, dest: Endpoint) -> Streams:
        """The direct connection to ``dest``, its outcome recorded in the book."""
        try:
            streams = await asyncio.wait_for(asyncio.open_connection(
                *dest, local_addr=(self.local, 0) if self.local else None),
                self.connect_timeout)
        except (OSError, TimeoutError):
            self.book.direct_failed(dest, self.clock())
            raise
        self.book.direct_worked(dest)
        return streams

    async def connect(self, host: str, port: int) -> tuple[Streams, Endpoint | None]:
        """A connection and the relay it goes through (None: direct)."""
        dest = (host, port)
        tried_direct = False
        if self.book.try_direct(dest, self.clock()):
            tried_direct = True
            try:
                return await self._direct(dest), None
            except (OSError, TimeoutError) as exc:
                log.info("direct path to %s:%d failed: %s", host, port, exc)
        if self.punch and self.relays:
            punched = await self._punch(self.relays[0], dest)
            if punched is not None:
                return punched, None
        for relay in self.book.detours(dest, self.relays, self.clock()):
            try:
                streams = await open_via(relay, host, port, self.connect_timeout, self.local)
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
                log.info("relay %s:%d did not reach %s:%d: %s", *relay, host, port, exc)
                self.book.relay_failed(dest, relay, self.clock())
                continue
            self.book.relay_worked(dest, relay, self.clock())
            return streams, relay
        if not tried_direct:  # every relay failed: the direct path, in back-off or not
            with contextlib.suppress(OSError, TimeoutError):
                return await self._direct(dest), None
        raise Unreachable(f"no path reached {host}:{port} (direct and {len(self.relays)} "
                          "relays tried)")

    async def _punch(self, relay: Endpoint, dest: Endpoint) -> Streams | None:
        """A punched connection to a destination that holds a reservation at ``relay``
        (it is invited to meet us there), or None (no reservation, or the NATs refuse)."""
        token = secrets.token_hex(8)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                *relay, local_addr=(self.local, 0) if self.local else None),
                self.connect_timeout)
            try:
                writer.write(f"INVITE {_hostport(*dest)} {token} PEERWEB/1\r\n\r\n".encode())
                answer = await asyncio.wait_for(reader.readline(), self.connect_timeout)
            finally:
                writer.close()
            if answer.split()[:2] != [b"PEERWEB/1", b"200"]:
                return None
            # The invited node is told at once: a meeting it does not join in a few seconds
            # will not happen.
            streams = await punch(relay, token, self.local, wait=2 * self.connect_timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            log.info("no punch to %s:%d: %s", *dest, exc)
            return None
        self.punched += 1
        return streams

    def _failed(self, dest: Endpoint, via: Endpoint | None) -> None:
        if via is None:
            self.book.direct_failed(dest, self.clock())
        else:
            self.book.relay_failed(dest, via, self.clock())

    async def get(self, url: str, headers: dict[str, str] | None = None,
                  tls: ssl.SSLContext | None = None,
                  progress: Callable[[int], None] | None = None) -> Fetched:
        """GET ``url`` (http or https), resuming on another path when one fails;
        ``progress`` is told the bytes received so far after each read."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        dest = (parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        body = bytearray()
        status, got_headers, total = 0, {}, None
        paths: list[Endpoint | None] = []
        pending: PathEvent | None = None
        for _attempt in range(MAX_ATTEMPTS):
            watch = PathWatch(self.clock(), self.connect_timeout, self.stall_after)
            try:
                (reader, writer), via = await self.connect(*dest)
            except Unreachable:
                break
            paths.append(via)
            try:
                if parts.scheme == "https":
                    await writer.start_tls(tls or ssl.create_default_context(),
                                           server_hostname=parts.hostname)
                watch.on_connected(self.clock())
                lines = [f"GET {target} HTTP/1.0", f"Host: {parts.netloc}",
                         *(f"{k}: {v}" for k, v in (headers or {}).items())]
                if body:
                    lines.append(f"Range: bytes={len(body)}-")
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
                await writer.drain()
                head = await self._read(reader.readuntil(b"\r\n\r\n"), watch)
                code, fields = _parse_head(head)
                if body and code == 200:
                    body.clear()  # the server ignored the Range: start again
                elif body and code != 206:
                    raise ConnectionError(f"resume answered {code}")
                if not body:
                    status, got_headers = code, fields
                    total = _int(fields.get("content-length"))
                while total is None or len(body) < total:
                    data = await self._read(reader.read(CHUNK), watch)
                    if not data:
                        break
                    if pending is not None:
                        self.events.append(_recovered(pending, self.clock(), via))
                        pending = None
                    watch.on_bytes(len(data), self.clock())
                    body += data
                    if progress is not None:
                        progress(len(body))
                if total is not None and len(body) < total:
                    raise ConnectionError("the connection ended early")
                return Fetched(status, got_headers, bytes(body), paths)
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError,
                    ssl.SSLError) as exc:
                reason = watch.verdict(self.clock()) or f"{type(exc).__name__}: {exc}"
                log.info("path %s to %s:%d failed: %s", via or "direct", *dest, reason)
                if pending is None:
                    pending = PathEvent(dest, via, reason, self.clock())
                self._failed(dest, via)
            finally:
                writer.close()
        if pending is not None:
            self.events.append(pending)
        raise Unreachable(f"GET {url} failed on every path tried ({len(paths)})")

    async def _read(self, pending: Awaitable[bytes], watch: PathWatch) -> bytes:
        """One read, bounded by the failure detector's deadline."""
        try:
            timeout = max(0.01, watch.deadline(self.clock()) - self.clock())
            return await asyncio.wait_for(pending, timeout)
        except TimeoutError:
            raise TimeoutError(watch.verdict(self.clock()) or "stalled") from None


def _recovered(event: PathEvent, now: float, via: Endpoint | None) -> PathEvent:
    return PathEvent(event.destination, event.failed, event.reason, event.detected, now, via)


def _parse_head(raw: bytes) -> tuple[int, dict[str, str]]:
    lines = raw.decode("latin-1").split("\r\n")
    words = lines[0].split(None, 2)
    if len(words) < 2 or not words[0].startswith("HTTP/") or not words[1].isdigit():
        raise ValueError(f"not an HTTP response: {lines[0][:80]!r}")
    fields = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return int(words[1]), fields


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Reservation:
    """Keeps a NATed node reachable on ``ports`` through ``relay``: tunnels opened to this
    node's external address at the relay arrive at ``local_host``:port here."""

    def __init__(self, relay: Endpoint, local_host: str, ports: Sequence[int],
                 bind: str | None = None) -> None:
        self.relay = relay
        self.local_host = local_host
        self.ports = tuple(ports)
        self.bind = bind
        self.seen_as: str | None = None
        self.tunnels = 0
        self.punches = 0
        """Connections punched to this node at peers' invitation (no relay carries them)."""
        self.ready = asyncio.Event()
        self._splices: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Hold the reservation, renewing it when the connection drops; cancel to stop."""
        try:
            while True:
                try:
                    await self._hold()
                except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
                    log.info("reservation at %s:%d lost: %s", *self.relay, exc)
                self.ready.clear()
                await asyncio.sleep(RESERVE_RETRY)
        finally:
            for task in self._splices:
                task.cancel()
            await asyncio.gather(*self._splices, return_exceptions=True)

    async def _open(self) -> Streams:
        return await asyncio.wait_for(asyncio.open_connection(
            *self.relay, local_addr=(self.bind, 0) if self.bind else None), CONNECT_TIMEOUT)

    async def _hold(self) -> None:
        reader, writer = await self._open()
        try:
            writer.write(f"RESERVE {','.join(map(str, self.ports))} PEERWEB/1\r\n\r\n".encode())
            answer = (await asyncio.wait_for(reader.readline(), CONNECT_TIMEOUT)).split()
            if answer[:2] != [b"PEERWEB/1", b"200"]:
                raise ValueError(f"reservation refused: {answer!r}")
            self.seen_as = answer[-1].decode()
            self.ready.set()
            while line := await reader.readline():
                words = line.split()
                if len(words) == 3 and words[0] in (b"INCOMING", b"PUNCH") and \
                        words[2].isdigit() and int(words[2]) in self.ports:
                    meet = self._answer if words[0] == b"INCOMING" else self._punched
                    task = asyncio.ensure_future(meet(words[1].decode(), int(words[2])))
                    self._splices.add(task)
                    task.add_done_callback(self._splices.discard)
        finally:
            writer.close()

    async def _answer(self, token: str, port: int) -> None:
        try:
            local = await asyncio.wait_for(asyncio.open_connection(self.local_host, port),
                                           CONNECT_TIMEOUT)
        except (OSError, TimeoutError):
            return
        try:
            remote = await self._open()
        except (OSError, TimeoutError):
            local[1].close()
            return
        remote[1].write(f"ACCEPT {token} PEERWEB/1\r\n\r\n".encode())
        self.tunnels += 1
        await splice(local, remote)

    async def _punched(self, token: str, port: int) -> None:
        """Meet a peer the relay says wants to punch through to ``port``; splice the
        punched connection to the local service."""
        try:
            remote = await punch(self.relay, token, self.bind)
        except (OSError, TimeoutError, ValueError) as exc:
            log.info("punch for port %d through %s:%d failed: %s", port, *self.relay, exc)
            return
        try:
            local = await asyncio.wait_for(asyncio.open_connection(self.local_host, port),
                                           CONNECT_TIMEOUT)
        except (OSError, TimeoutError):
            remote[1].close()
            return
        self.punches += 1
        await splice(local, remote)


async def whoami(relay: Endpoint, local: str | None = None, local_port: int = 0,
                 timeout: float = CONNECT_TIMEOUT) -> tuple[str, int, int]:
    """The address and port a relay sees a connection from here come from, and the local
    port it left from (``local_port``, or the one the system chose for 0)."""
    sock = socket.socket(socket.AF_INET6 if ":" in relay[0] else socket.AF_INET)
    try:
        # A fixed local port is bound again for each relay asked (SO_REUSEADDR lets it out
        # of TIME_WAIT): the same port seen from two peers tells the NAT's mapping.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if local or local_port:
            sock.bind((local or "", local_port))
        sock.setblocking(False)
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, relay), timeout)
    except BaseException:
        sock.close()
        raise
    chosen = int(sock.getsockname()[1])
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        writer.write(b"WHOAMI PEERWEB/1\r\n\r\n")
        words = (await asyncio.wait_for(reader.readline(), timeout)).split()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if len(words) != 4 or words[:2] != [b"PEERWEB/1", b"200"]:
        raise ValueError(f"not a WHOAMI answer: {words!r}")
    host, port = split_hostport(f"{words[2].decode()}:{words[3].decode()}")
    return host, port, chosen


async def dialback(relay: Endpoint, port: int, local: str | None = None,
                   timeout: float = 2 * CONNECT_TIMEOUT) -> bool:
    """Whether the relay could open a connection back to this node's ``port``."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(
        *relay, local_addr=(local, 0) if local else None), timeout)
    try:
        writer.write(f"DIALBACK {port} PEERWEB/1\r\n\r\n".encode())
        words = (await asyncio.wait_for(reader.readline(), timeout)).split()
    finally:
        writer.close()
    return words == [b"PEERWEB/1", b"200", b"ok"]


class Forwarder:
    """A local port whose every connection is carried to ``destination`` by ``Detours``
    (direct, else through a relay): how libtorrent, which dials peers itself, reaches a
    peer only a relay can reach (``connect_peer`` to this port)."""

    def __init__(self, detours: Detours, destination: Endpoint, host: str) -> None:
        self.detours = detours
        self.destination = destination
        self.host = host
        self.port = 0
        self.via: Endpoint | None = None
        self.punched = False
        """Whether the last connection was punched (then ``via`` is None: no relay)."""
        self.carried = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            try:
                before = self.detours.punched
                remote, self.via = await self.detours.connect(*self.destination)
                self.punched = self.detours.punched > before
            except Unreachable as exc:
                log.info("forwarder to %s:%d: %s", *self.destination, exc)
                writer.close()
                return

            def count(n: int) -> bool:
                self.carried += n
                return True

            await splice((reader, writer), remote, count)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
