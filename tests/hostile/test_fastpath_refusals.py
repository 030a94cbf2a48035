"""Heads the fast path must not replay: it refuses them exactly as aiohttp does (issue 16,
item 12). Each request names a file the fast path holds a stored answer for."""

from __future__ import annotations

import asyncio

import pytest

from peerweb.config import ServerLimits
from peerweb.http import gateway, limits
from peerweb.tools.testnet import Testnet


async def exchange(address: tuple[str, int], data: bytes) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), 5)
    writer.write(data)
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def without_date(answer: bytes) -> bytes:
    return b"\r\n".join(line for line in answer.split(b"\r\n") if not line.startswith(b"Date:"))


CASES = {
    "bare LF": (b"GET /assets/file01.js HTTP/1.1\nHost: {host}\n\n",
                b"Bad status line:\n  Expected CRLF after version:"),
    "two Host fields": (b"GET /assets/file01.js HTTP/1.1\r\nHost: {host}\r\nHost: {host}"
                        b"\r\n\r\n", b"Duplicate 'Host' header found."),
    "space before the colon": (b"GET /assets/file01.js HTTP/1.1\r\nhost : {host}\r\n\r\n",
                               b"Invalid header token:"),
    "a name that is not a token": (b"GET /assets/file01.js HTTP/1.1\r\nHost: {host}\r\n"
                                   b"X\x01: y\r\n\r\n", b"Invalid header token:"),
}


@pytest.mark.parametrize("case", CASES)
async def test_the_fast_path_refuses_what_aiohttp_refuses(small_site, case: str) -> None:
    folder, contents = small_site
    template, body_start = CASES[case]
    async with Testnet(1) as net:
        (running,) = net.nodes
        result = await running.node.publish(folder, "site")
        host = f"{result.site_id}.localhost:{running.gateway_address[1]}".encode()
        good = b"GET /assets/file01.js HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive\r\n\r\n"
        # Twice on one connection: the second is replayed by the fast path.
        reader, writer = await asyncio.open_connection(*running.gateway_address)
        for _ in range(2):
            writer.write(good % host)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            expected = contents["assets/file01.js"]
            assert await asyncio.wait_for(reader.readexactly(len(expected)), 5) == expected
        writer.close()

        # aiohttp alone (the same gateway without the fast path) answers ...
        plain = await limits.serve(gateway.make_app(running.node), "127.0.0.1", 0,
                                   ServerLimits())
        try:
            request = template.replace(b"{host}", host)
            alone = await exchange(plain.address, request)
            fronted = await exchange(running.gateway_address, request)
        finally:
            await plain.close()
        head, _, body = fronted.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 400 Bad Request\r\n")
        assert body.startswith(body_start)
        assert without_date(fronted) == without_date(alone)
