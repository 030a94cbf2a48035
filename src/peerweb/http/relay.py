"""The relay port: a reachable node forwarding bounded connections for peers that cannot
connect themselves, and telling peers how they look from outside.

One request per connection, a head of lines ending in an empty line (like HTTP/1.1)::

    CONNECT 198.18.1.10:8080 HTTP/1.1      a tunnel (RFC 9110 section 9.3.6) to a public
                                            address, or to a NATed node holding a reservation
    RESERVE 6881,7000 PEERWEB/1             keep me reachable on these ports through you;
                                            the relay answers, then sends "INCOMING <token>"
                                            lines on this connection when someone connects
    ACCEPT <token> PEERWEB/1                (a reserving node) this connection is the one for
                                            <token>: splice it to the waiting tunnel
    WHOAMI PEERWEB/1                        answers "PEERWEB/1 200 <ip> <port>": the address
                                            and port this connection came from
    DIALBACK <port> PEERWEB/1               the relay tries to connect to the asker's own
                                            address on <port> (nobody else's) and answers
                                            "PEERWEB/1 200 ok" or "PEERWEB/1 200 fail"
    RENDEZVOUS <token> PEERWEB/1            meet the other peer asking with <token>: both
                                            get "PEERWEB/1 200 <ip> <port> first|second",
                                            the other's address as seen here, at once
                                            (hole punching, ``http.punch``)
    INVITE <ip>:<port> <token> PEERWEB/1    ask the node holding a reservation for that
                                            address and port to meet the asker under
                                            <token> ("PUNCH <token> <port>" on its
                                            reservation); "PEERWEB/1 200 invited" or 404

The relay decides with ``policy.relaying.RelayBook`` (destinations, per-peer and total
limits, bytes, age, idleness). A tunnel carries bytes only: TLS inside it stays end to end,
so the relay sees which address and how much, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..config import RelayConfig
from ..policy.relaying import Circuit, Destinations, Refusal, RelayBook, RelayLimits

log = logging.getLogger(__name__)

MAX_HEAD = 4096
HEAD_TIMEOUT = 5.0
"""A request head must arrive within this; a stranger cannot hold a slot by dribbling."""
DIAL_TIMEOUT = 3.0
ACCEPT_TIMEOUT = 5.0
"""How long a tunnel to a reserved node waits for that node's ACCEPT."""
CHUNK = 64 * 1024
WATCH_TICK = 0.5
MEETINGS = 64
"""Rendezvous waiting at once; beyond this a relay refuses new ones (429)."""
RENDEZVOUS_WAIT = 10.0
MAX_TOKEN = 64
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def read_head(reader: asyncio.StreamReader) -> list[str]:
    """The lines of a request or response head (without the empty line)."""
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
    if len(raw) > MAX_HEAD:
        raise ValueError("head too large")
    return raw.decode("latin-1").split("\r\n")[:-2]


def split_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"not host:port: {text!r}")
    return host.strip("[]"), int(port)


async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter,
               count: Callable[[int], bool], over: asyncio.Event) -> None:
    """Copy ``src`` to ``dst`` while ``count`` (told each chunk's size) allows; a refusal
    sets ``over`` (the chunk is not forwarded)."""
    try:
        while data := await src.read(CHUNK):
            if not count(len(data)):
                over.set()
                return
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            if dst.can_write_eof():
                dst.write_eof()


def _unbounded(_count: int) -> bool:
    return True


async def splice(a: Streams, b: Streams, count: Callable[[int], bool] = _unbounded,
                 stop: Callable[[], Awaitable[None]] | None = None) -> None:
    """Copy both ways until both sides end, ``count`` refuses a chunk, or ``stop``
    returns; then close both."""
    over = asyncio.Event()
    tasks: list[asyncio.Future[Any]] = [asyncio.ensure_future(pipe(a[0], b[1], count, over)),
                                        asyncio.ensure_future(pipe(b[0], a[1], count, over))]
    both: asyncio.Future[Any] = asyncio.gather(*tasks)
    watchers: list[asyncio.Future[Any]] = [asyncio.ensure_future(over.wait())]
    if stop is not None:
        watchers.append(asyncio.ensure_future(stop()))
    try:
        either: set[asyncio.Future[Any]] = {both, *watchers}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in [*tasks, *watchers]:
            t.cancel()
        await asyncio.gather(*tasks, *watchers, return_exceptions=True)
        for _, w in (a, b):
            w.close()
            with contextlib.suppress(ConnectionError, OSError):
                await w.wait_closed()


class RelayServer:
    """The relay port of one node."""

    def __init__(self, config: RelayConfig, host: str) -> None:
        self.config = config
        self.host = host
        limits = RelayLimits(circuits=config.circuits, per_peer=config.per_peer,
                             max_bytes=config.max_bytes, max_age=config.max_age)
        self.book = RelayBook(Destinations.parse(config.allow, config.ports), limits)
        self._server: asyncio.Server | None = None
        self._reserved: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self._pending: dict[str, asyncio.Future[tuple[asyncio.StreamReader,
                                                      asyncio.StreamWriter]]] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._closing = False
        self._meetings: dict[str, tuple[tuple[str, int], asyncio.Future[tuple[str, int]]]] = {}
        self.rendezvous = 0
        """Meetings brokered (both peers came)."""
        self.address: tuple[str, int] = (host, config.port)

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._handle, self.host, self.config.port,
                                                  limit=MAX_HEAD * 2)
        sock = self._server.sockets[0].getsockname()
        self.address = (sock[0], sock[1])
        return self.address

    async def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def status(self) -> dict[str, object]:
        return {"address": f"{self.address[0]}:{self.address[1]}",
                **self.book.status(time.monotonic()), "rendezvous": self.rendezvous,
                "meetings_waiting": len(self._meetings)}

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        peer = writer.get_extra_info("peername") or ("", 0)
        keep = False
        try:
            head = await read_head(reader)
            words = head[0].split() if head else []
            verb = words[0] if words else ""
            if verb == "CONNECT" and len(words) == 3:
                await self._connect(peer[0], words[1], reader, writer)
            elif verb == "RESERVE" and len(words) == 3:
                await self._reserve(peer[0], words[1], reader, writer)
            elif verb == "ACCEPT" and len(words) == 3:
                keep = self._accept(words[1], reader, writer)  # the tunnel owns it now
            elif verb == "WHOAMI":
                writer.write(f"PEERWEB/1 200 {peer[0]} {peer[1]}\r\n".encode())
            elif verb == "INVITE" and len(words) == 4:
                await self._invite(words[1], words[2], writer)
            elif verb == "RENDEZVOUS" and len(words) == 3:
                await self._rendezvous((peer[0], int(peer[1])), words[1], writer)
            elif verb == "DIALBACK" and len(words) == 3 and words[1].isdigit() and \
                    1024 <= int(words[1]) <= 65535:
                # Only to the asker's own address, and never a privileged port.
                ok = await _can_connect(peer[0], int(words[1]))
                writer.write(f"PEERWEB/1 200 {'ok' if ok else 'fail'}\r\n".encode())
            else:
                _refuse(writer, Refusal(400, "not a relay request"))
        except (ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError, ConnectionError, OSError) as exc:
            log.debug("relay request from %s ended: %s", peer[0], exc)
        except asyncio.CancelledError:
            # close() cancels the handlers; Python 3.11's start_server callback logs a
            # cancelled handler as an unhandled error, so a closing relay ends them quietly.
            if not self._closing:
                raise
        finally:
            self._handlers.discard(task)
            if not keep:
                writer.close()

    async def _connect(self, peer: str, target: str, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        host, port = split_hostport(target)
        now = time.monotonic()
        admitted = self.book.admit(peer, host, port, now)
        if isinstance(admitted, Refusal):
            log.info("relay refused %s -> %s:%d: %s", peer, host, port, admitted.reason)
            _refuse(writer, admitted)
            await writer.drain()
            return
        circuit = admitted
        try:
            try:
                if circuit.via_reservation:
                    other = await self._through_reservation(host, port)
                else:
                    other = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                   DIAL_TIMEOUT)
            except (OSError, TimeoutError, LookupError) as exc:
                _refuse(writer, Refusal(502, f"could not reach {host}:{port}: {exc}"))
                await writer.drain()
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            def carry(count: int) -> bool:
                now = time.monotonic()
                if circuit.sent + count > self.book.limits.max_bytes:
                    return False
                circuit.carried(count, now)
                return True

            await splice((reader, writer), other, carry, lambda: self._watch(circuit))
        finally:
            self.book.close(circuit)

    async def _watch(self, circuit: Circuit) -> None:
        while (why := circuit.over(self.book.limits, time.monotonic())) is None:
            await asyncio.sleep(WATCH_TICK)
        log.info("relay closed %s -> %s:%d: %s", circuit.peer, *circuit.destination, why)

    async def _through_reservation(self, host: str, port: int
                                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        control = self._reserved.get((host, port))
        if control is None or control.is_closing():
            raise LookupError("its reservation is gone")
        token = secrets.token_hex(8)
        waiting = asyncio.get_running_loop().create_future()
        self._pending[token] = waiting
        try:
            control.write(f"INCOMING {token} {port}\n".encode())
            await control.drain()
            return await asyncio.wait_for(waiting, ACCEPT_TIMEOUT)
        finally:
            self._pending.pop(token, None)

    async def _reserve(self, peer: str, ports_text: str, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        try:
            ports = tuple(int(p) for p in ports_text.split(","))
        except ValueError:
            ports = ()
        made = self.book.reserve(peer, ports, time.monotonic())
        if isinstance(made, Refusal):
            _refuse(writer, made)
            await writer.drain()
            return
        for port in made.ports:
            old = self._reserved.get((peer, port))
            if old is not None and old is not writer:
                old.close()
            self._reserved[(peer, port)] = writer
        writer.write(f"PEERWEB/1 200 reserved {peer}\r\n".encode())
        await writer.drain()
        try:
            # The reserving node sends nothing more; its end (or the TTL) ends the reservation.
            await asyncio.wait_for(reader.read(1), self.book.limits.reservation_ttl)
        except TimeoutError:
            pass
        finally:
            self.book.unreserve(made)
            for port in made.ports:
                if self._reserved.get((peer, port)) is writer:
                    del self._reserved[(peer, port)]

    async def _invite(self, target: str, token: str, writer: asyncio.StreamWriter) -> None:
        host, port = split_hostport(target)
        control = self._reserved.get((host, port))
        if control is None or control.is_closing() or len(token) > MAX_TOKEN or \
                not token.isalnum():
            _refuse(writer, Refusal(404, "no reservation for that address"))
            return
        control.write(f"PUNCH {token} {port}\n".encode())
        await control.drain()
        writer.write(b"PEERWEB/1 200 invited\r\n")
        await writer.drain()

    async def _rendezvous(self, peer: tuple[str, int], token: str,
                          writer: asyncio.StreamWriter) -> None:
        """Hold the first peer of a meeting until the second comes; tell each the other's
        address and port as this relay sees them. Only addresses, no bytes: cheap, but
        bounded all the same (``MEETINGS``, ``RENDEZVOUS_WAIT``)."""
        if len(token) > MAX_TOKEN:
            _refuse(writer, Refusal(400, "token too long"))
            return
        met = self._meetings.pop(token, None)
        if met is not None:
            other, waiting = met
            if not waiting.done():
                waiting.set_result(peer)
                self.rendezvous += 1
                writer.write(f"PEERWEB/1 200 {other[0]} {other[1]} second\r\n".encode())
                await writer.drain()
                return
        if len(self._meetings) >= MEETINGS:
            _refuse(writer, Refusal(429, "too many meetings waiting"))
            return
        future: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        entry = (peer, future)
        self._meetings[token] = entry
        try:
            other = await asyncio.wait_for(future, RENDEZVOUS_WAIT)
        except TimeoutError:
            _refuse(writer, Refusal(408, "nobody came"))
            return
        finally:
            if self._meetings.get(token) is entry:
                del self._meetings[token]
        writer.write(f"PEERWEB/1 200 {other[0]} {other[1]} first\r\n".encode())
        await writer.drain()

    def _accept(self, token: str, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> bool:
        waiting = self._pending.get(token)
        if waiting is None or waiting.done():
            _refuse(writer, Refusal(404, "no tunnel waits for that token"))
            return False
        waiting.set_result((reader, writer))
        return True


def _refuse(writer: asyncio.StreamWriter, refusal: Refusal) -> None:
    body = refusal.reason.encode()
    writer.write(f"HTTP/1.1 {refusal.status} Refused\r\nContent-Length: {len(body)}\r\n"
                 f"Connection: close\r\n\r\n".encode() + body)


async def _can_connect(host: str, port: int) -> bool:
    try:
        _, w = await asyncio.wait_for(asyncio.open_connection(host, port), DIAL_TIMEOUT)
    except (OSError, TimeoutError):
        return False
    w.close()
    with contextlib.suppress(OSError):
        await w.wait_closed()
    return True
