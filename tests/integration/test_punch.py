"""A relay's RENDEZVOUS and ``http.punch`` on loopback (no NAT: the punch must always
connect, and both peers must end up on the same connection)."""

from __future__ import annotations

import asyncio

from peerweb.config import RelayConfig
from peerweb.http.punch import punch
from peerweb.http.relay import RelayServer

from ..waiting import wait_until


async def exchange(relay: tuple[str, int], token: str, name: bytes) -> bytes:
    reader, writer = await punch(relay, token, "127.0.0.1")
    try:
        writer.write(name + b"\n")
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()


async def test_two_peers_meet_at_a_relay_and_talk_on_one_direct_connection() -> None:
    server = RelayServer(RelayConfig(), "127.0.0.1")
    relay = await server.start()
    try:
        for round_ in range(5):  # the race between dial and accept differs from run to run
            heard = await asyncio.gather(exchange(relay, f"t{round_}", b"alice"),
                                         exchange(relay, f"t{round_}", b"bob"))
            assert sorted(heard) == [b"alice\n", b"bob\n"]
        assert server.status()["rendezvous"] == 5
        assert server.status()["meetings_waiting"] == 0
    finally:
        await server.close()


async def test_a_relay_refuses_a_long_token_and_pairs_only_equal_tokens() -> None:
    server = RelayServer(RelayConfig(), "127.0.0.1")
    relay = await server.start()
    try:
        reader, writer = await asyncio.open_connection(*relay)
        writer.write(b"RENDEZVOUS " + b"x" * 65 + b" PEERWEB/1\r\n\r\n")
        assert (await reader.readline()).startswith(b"HTTP/1.1 400")
        writer.close()
        # Two peers with different tokens both wait: neither meets the other.
        lonely = [asyncio.ensure_future(exchange(relay, token, b"x")) for token in ("a", "b")]
        await wait_until(lambda: server.status()["meetings_waiting"] == 2, 5,
                         "both peers at the relay")
        assert not any(task.done() for task in lonely)
        assert server.status()["rendezvous"] == 0
        for task in lonely:
            task.cancel()
        await asyncio.gather(*lonely, return_exceptions=True)
    finally:
        await server.close()
