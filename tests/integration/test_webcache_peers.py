"""The web cache's peer client (peerweb.webcache.peers) against a real HTTP server on
loopback: bodies and manifests larger than one socket read arrive whole (an honest holder is
not taken for a liar), and requests leave from the node's own address."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from peerweb.webcache.copies import Manifest, Resource
from peerweb.webcache.peers import BODY_PATH, COPY_PATH, Peers, source_address

URL = "http://example.org/index.html"
BODY = random.Random(18).randbytes(600_000)  # many socket reads
RESOURCE = Resource(URL, (("content-type", "text/html"),), hashlib.sha256(BODY).hexdigest(),
                    len(BODY))
# A manifest of 64 resources: its JSON is larger than one read too.
MANIFEST = Manifest((RESOURCE, *(Resource(f"http://example.org/assets/file{i:02d}.css",
                                          (("content-type", "text/css"),), "a" * 64, i)
                                 for i in range(63))))


@pytest.fixture
async def holder() -> AsyncIterator[tuple[tuple[str, int], list[str]]]:
    """A holder's peer port on 127.0.0.1 that sends in small chunks; yields its endpoint and
    the source addresses it saw."""
    seen: list[str] = []

    async def chunked(request: web.Request, data: bytes) -> web.StreamResponse:
        seen.append(request.remote or "")
        response = web.StreamResponse()
        await response.prepare(request)
        for offset in range(0, len(data), 1000):
            await response.write(data[offset:offset + 1000])
        await response.write_eof()
        return response

    async def copy(request: web.Request) -> web.StreamResponse:
        answer = {"manifest": MANIFEST.to_json(), "fetched_at": 1_800_000_000}
        return await chunked(request, json.dumps(answer).encode())

    async def body(request: web.Request) -> web.StreamResponse:
        return await chunked(request, BODY)

    app = web.Application()
    app.router.add_get(COPY_PATH, copy)
    app.router.add_get(BODY_PATH + "{sha}", body)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield ("127.0.0.1", port), seen
    finally:
        await runner.cleanup()


async def test_a_large_body_and_manifest_arrive_whole_from_the_nodes_address(
        holder: tuple[tuple[str, int], list[str]]) -> None:
    endpoint, seen = holder
    peers = Peers(5.0, local=lambda: "127.0.0.2")
    try:
        got = await peers.copy(endpoint, URL)
        assert got == (MANIFEST, 1_800_000_000)
        assert await peers.body(endpoint, RESOURCE, 5.0) == BODY
    finally:
        await peers.close()
    assert seen == ["127.0.0.2", "127.0.0.2"]


def test_the_source_address_is_the_swarm_address_unless_it_is_a_wildcard() -> None:
    assert source_address("127.0.0.12") == ("127.0.0.12", 0)
    assert source_address("192.0.2.7") == ("192.0.2.7", 0)
    assert source_address("0.0.0.0") is None
    assert source_address("::") is None
    assert source_address("") is None
