"""Holders lying to a publisher that asks them for its last version: forged pointers with
huge versions, pointers of another site, and holders that never answer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiohttp import web

from peerweb.content import pointer as ptr
from peerweb.content.identity import SiteKey, public_key_from_site_id
from peerweb.policy import propagation
from peerweb.tools.testnet import Testnet

from ..waiting import wait_until

FAKE_HOLDER_HOST = "127.0.0.12"  # the second testnet node's address: it announces for them


def lying_holder(site_id: str) -> web.Application:
    """Answers a pointer request with v99 signed by another key, or re-labelled as ours."""
    other = ptr.sign(SiteKey.generate("attacker"), bytes(20), 99, seq=99)
    forged = dict(other.to_json(), public_key=public_key_from_site_id(site_id).hex())
    answers = 0

    async def pointer(request: web.Request) -> web.Response:
        nonlocal answers
        answers += 1  # in turn: a bad signature for our key, and another site's pointer
        return web.json_response({"pointer": forged if answers % 2 else other.to_json()})

    app = web.Application()
    app.router.add_get("/peerweb/v1/pointer/{site_id}", pointer)
    return app


def silent_holder(stop: asyncio.Event) -> web.Application:
    async def pointer(request: web.Request) -> web.Response:
        await stop.wait()  # never answers while the publish runs
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/peerweb/v1/pointer/{site_id}", pointer)
    return app


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, FAKE_HOLDER_HOST, 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def write_page(folder: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_text(f"<h1>{text}</h1>")


async def test_lying_and_silent_holders_move_no_version_and_stall_no_publish(tmp_path):
    stop = asyncio.Event()
    async with Testnet(2, root=tmp_path / "net") as net:
        publisher, other = net.nodes
        write_page(tmp_path / "site", "one")
        v1 = await publisher.node.publish(tmp_path / "site", "site")
        runners = []
        try:
            ports = []
            for app in (lying_holder(v1.site_id), silent_holder(stop)):
                runner, port = await serve(app)
                runners.append(runner)
                ports.append(port)
                holders_key = propagation.holders_key(public_key_from_site_id(v1.site_id))
                other.node.swarm.announce(holders_key, port)
            fakes = {(FAKE_HOLDER_HOST, p) for p in ports}

            async def announced() -> bool:
                found = await publisher.node.holders(v1.site_id, max_age=0)
                return fakes <= set(found)

            await wait_until(announced, 30, "the fake holders in the DHT")
            write_page(tmp_path / "site", "two")
            started = time.monotonic()
            v2 = await publisher.node.publish(tmp_path / "site", "site")
            write_page(tmp_path / "site", "three")
            v3 = await publisher.node.publish(tmp_path / "site", "site")  # the other lie
            assert v3.version == 3
            elapsed = time.monotonic() - started
            assert (v2.site_id, v2.version, v2.previous_version) == (v1.site_id, 2, 1)
            assert v2.version_from == "state"
            # The silent holder costs at most the bounded wait for holders, not a hang.
            assert elapsed < publisher.node.timings.dht_get_timeout + 5.0, elapsed
            assert publisher.node.state.sites[v1.site_id].pointer.version == 3
        finally:
            stop.set()
            for runner in runners:
                await runner.cleanup()
