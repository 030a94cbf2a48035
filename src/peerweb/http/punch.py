"""TCP hole punching brokered by a relay (``RENDEZVOUS``), DCUtR-style: two peers that cannot
connect to each other meet at a relay under a shared token, learn from it the address and
port each one's connection came from, and then each *listens on* and *dials from* the very
local port it used to reach the relay, at the same moment.

Why that can work: a NAT that keeps the mapping of a local port whatever the destination
(endpoint-independent mapping, what Linux ``masquerade`` does when the port is free) shows
the other peer the port the relay saw; the outgoing SYN opens the NAT's or firewall's filter
for the other's address, so the other's SYN (sent at the same time) gets in, and the
kernels complete a TCP simultaneous open, or one side accepts. Against a NAT that picks a
fresh port per destination ("symmetric") it fails unless the other side lets in any port
from that address (address-restricted or full cone, or no NAT): then a relay carries the
bytes (``http.relay`` ``CONNECT``).

Both ends may end up with more than one connection (A's dial accepted by B *and* B's by
A): the peer that came first to the relay (``first`` in the relay's answer) picks the first
connection it has and says so (``PICK``) on it; the other keeps the one that says it.
"""

from __future__ import annotations

import asyncio
import socket

from .relay import split_hostport

Endpoint = tuple[str, int]
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]

RENDEZVOUS_WAIT = 10.0
"""How long the relay holds the first peer of a meeting, waiting for the second."""
PUNCH_TIMEOUT = 3.0
"""Time for the punch itself: a SYN dropped by a filter not yet open is sent again after
1 s (Linux's initial retransmission timeout), so 3 s allows two more tries."""
REDIAL = 0.1
"""Pause before dialling again after a refused or reset dial."""
PICK = b"PICK\n"


def _bound(local: str | None, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET)
    # The relay connection, the listener and the dial share one local port: the port the
    # NAT mapped for the relay is the one the other peer is told about.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setblocking(False)
    try:
        sock.bind((local or "", port))
    except OSError:
        sock.close()
        raise
    return sock


async def rendezvous(relay: Endpoint, token: str, local: str | None = None,
                     wait: float = RENDEZVOUS_WAIT) -> tuple[socket.socket, Endpoint, bool]:
    """Meet the other peer at ``relay``: the connected control socket (keep it open while
    punching: it holds the port), the other's endpoint as the relay saw it, and whether
    this peer came first."""
    loop = asyncio.get_running_loop()
    control = _bound(local, 0)
    try:
        await asyncio.wait_for(loop.sock_connect(control, relay), PUNCH_TIMEOUT)
        await loop.sock_sendall(control, f"RENDEZVOUS {token} PEERWEB/1\r\n\r\n".encode())
        answer = b""
        async with asyncio.timeout(wait):
            while not answer.endswith(b"\n"):
                data = await loop.sock_recv(control, 256)
                if not data or len(answer) > 256:
                    raise ConnectionError("the relay closed the meeting")
                answer += data
        words = answer.decode("latin-1").split()
        if len(words) != 5 or words[:2] != ["PEERWEB/1", "200"] or \
                words[4] not in ("first", "second"):
            raise ConnectionRefusedError(f"rendezvous refused: {answer[:80]!r}")
        other = split_hostport(f"{words[2]}:{words[3]}")
        return control, other, words[4] == "first"
    except BaseException:
        control.close()
        raise


async def punch(relay: Endpoint, token: str, local: str | None = None,
                timeout: float = PUNCH_TIMEOUT, wait: float = RENDEZVOUS_WAIT) -> Streams:
    """A direct TCP connection to the peer that meets us at ``relay`` under ``token``
    (within ``wait``); raises ``TimeoutError`` (or ``OSError``) when the NATs in between
    do not allow one."""
    control, other, first = await rendezvous(relay, token, local, wait)
    try:
        return await _race(control.getsockname()[1], other, first, local, timeout)
    finally:
        control.close()


async def _race(port: int, other: Endpoint, first: bool, local: str | None,
                timeout: float) -> Streams:
    loop = asyncio.get_running_loop()
    listener = _bound(local, port)
    listener.listen(4)
    dials: list[socket.socket] = []
    got: asyncio.Queue[socket.socket] = asyncio.Queue()

    async def dialled() -> None:
        # A SYN that reaches the other peer before its listener and dial are set up is
        # answered with a reset (and the reset closes our filter's entry again): dial again
        # shortly, from the same port, until one connects or time is up.
        while True:
            dial = _bound(local, port)
            dials.append(dial)
            try:
                await loop.sock_connect(dial, other)
            except OSError:
                dial.close()
                await asyncio.sleep(REDIAL)
                continue
            await got.put(dial)
            return

    async def accepted() -> None:
        while True:
            conn, _ = await loop.sock_accept(listener)
            conn.setblocking(False)
            await got.put(conn)

    tasks = [asyncio.ensure_future(dialled()), asyncio.ensure_future(accepted())]
    held: list[socket.socket] = []
    chosen: socket.socket | None = None
    try:
        async with asyncio.timeout(timeout):
            chosen = await (_pick(got, held) if first else _picked(got, held))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        listener.close()
        while not got.empty():  # connections that came after the choice
            held.append(got.get_nowait())
        for sock in [*dials, *held]:
            if sock is not chosen:
                sock.close()
    return await asyncio.open_connection(sock=chosen)


async def _pick(got: asyncio.Queue[socket.socket], held: list[socket.socket]) -> socket.socket:
    sock = await got.get()
    held.append(sock)
    await asyncio.get_running_loop().sock_sendall(sock, PICK)
    return sock


async def _picked(got: asyncio.Queue[socket.socket],
                  held: list[socket.socket]) -> socket.socket:
    """The connection on which the first peer says ``PICK`` (reading all that come)."""
    loop = asyncio.get_running_loop()
    readers: dict[asyncio.Future[bytes], socket.socket] = {}
    waiting: asyncio.Future[socket.socket] = asyncio.ensure_future(got.get())
    try:
        while True:
            pending: set[asyncio.Future[object]] = {waiting, *readers}  # type: ignore[arg-type]
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if waiting in done:
                sock = waiting.result()
                held.append(sock)
                # PICK comes in one segment: one read tells (a short one is no pick).
                readers[asyncio.ensure_future(loop.sock_recv(sock, len(PICK)))] = sock
                waiting = asyncio.ensure_future(got.get())
            for reader in [r for r in readers if r in done]:
                sock = readers.pop(reader)
                if not reader.cancelled() and reader.exception() is None and \
                        reader.result() == PICK:
                    return sock
    finally:
        waiting.cancel()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(waiting, *readers, return_exceptions=True)

