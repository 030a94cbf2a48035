"""Hostile pushes to the peer port: floods of validly signed junk, and stale pointers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import aiohttp

from peerweb.config import Timings
from peerweb.content import pointer as ptr
from peerweb.content.identity import SiteKey
from peerweb.http.peer_client import POINTER_PATH
from peerweb.tools.testnet import Testnet, write_sample_site

from ..waiting import wait_until

FLOOD = 3000
SOURCES = 10  # flooding addresses, 127.0.0.200 ... : each gets its own bucket


def junk(count: int) -> list[dict[str, object]]:
    """Pushes of validly signed pointers, each for a site of its own (a fresh key)."""
    return [{"pointer": ptr.sign(SiteKey.generate("junk"), bytes(range(20)), 1, seq=1).to_json(),
             "port": 0} for _ in range(count)]


async def flood(url: str, bodies: list[dict[str, object]]) -> dict[int, int]:
    """POST every body, 32 at a time per source address; the count of each answer status."""
    statuses: dict[int, int] = {}
    per_source = [bodies[i::SOURCES] for i in range(SOURCES)]

    async def from_source(index: int, mine: list[dict[str, object]]) -> None:
        connector = aiohttp.TCPConnector(local_addr=(f"127.0.0.{200 + index}", 0), limit=32)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def one(body: dict[str, object]) -> None:
                async with session.post(url, json=body) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
            await asyncio.gather(*(one(b) for b in mine))

    await asyncio.gather(*(from_source(i, mine) for i, mine in enumerate(per_source)))
    return statuses


async def test_a_flood_of_pushes_stores_nothing_and_does_not_slow_visits(tmp_path) -> None:
    write_sample_site(tmp_path / "site", small_files=4, big_size=1_000_000)
    async with Testnet(1, root=tmp_path / "net") as net:
        node = net.nodes[0]
        published = await node.node.publish(tmp_path / "site", "site")
        state_file = node.config.data_dir / "state.json"
        await wait_until(state_file.exists, 10, "the first state write")
        size_before = state_file.stat().st_size
        url = f"http://{node.config.listen[0]}:{node.node.peer_port}{POINTER_PATH}"
        bodies = junk(FLOOD)
        headers = {"Host": f"{published.site_id}.localhost", "Range": "bytes=0-3"}
        latencies: list[float] = []

        async def visit_during(flooding: asyncio.Future[dict[int, int]]) -> None:
            async with aiohttp.ClientSession() as session:
                while not flooding.done():
                    started = time.monotonic()
                    async with session.get(node.gateway_url + "/media/big.bin",
                                           headers=headers) as response:
                        assert response.status == 206 and len(await response.read()) == 4
                    latencies.append(time.monotonic() - started)
                    await asyncio.sleep(0.05)

        # The flood runs on an event loop of its own (another thread): the latencies measured
        # are the node's, not those of a client loop busy sending 3,000 requests.
        flooding = asyncio.create_task(asyncio.to_thread(asyncio.run, flood(url, bodies)))
        await visit_during(flooding)
        statuses = flooding.result()
        sites = set(node.node.state.sites)
    size_after = state_file.stat().st_size  # written on stop, every pending change in it
    print(f"\nflood of {FLOOD}: answers {statuses}; state.json {size_before} -> "
          f"{size_after} bytes; 4-byte Range max {max(latencies) * 1000:.0f} ms, "
          f"median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms over "
          f"{len(latencies)} requests")
    # Not one junk site kept; past each address's burst a 429, and past its connection
    # limit (http/limits.py) a 503 before anything is read.
    assert sites == {published.site_id}
    assert set(statuses) <= {200, 429, 503}
    assert sum(statuses.values()) == FLOOD
    assert statuses.get(429, 0) + statuses.get(503, 0) >= FLOOD - SOURCES * 40
    assert size_after < size_before * 1.5
    assert sorted(latencies)[len(latencies) // 2] < 0.25 and max(latencies) < 2.0


async def push(url: str, pointer: ptr.Pointer) -> dict[str, object]:
    async with aiohttp.ClientSession() as session, session.post(
            url, json={"pointer": pointer.to_json(), "port": 0}) as response:
        assert response.status == 200
        answer: dict[str, object] = await response.json()
        return answer


async def test_a_stale_pointer_pushed_to_a_fresh_node_does_not_roll_back_its_first_visit(
        tmp_path) -> None:
    for name, text in (("a1", "a one"), ("a2", "a two"), ("b1", "b one"), ("b2", "b two")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.html").write_text(text)
    async with Testnet(2, root=tmp_path / "net") as net, aiohttp.ClientSession() as session:
        publisher, fresh = net.nodes

        async def superseded(site: str) -> tuple[str, ptr.Pointer]:
            """Publish two versions of a site: its id and its genuine, superseded v1."""
            first = await publisher.node.publish(tmp_path / f"{site}1", site)
            stale = publisher.node.signed_pointer(first.site_id)
            await publisher.node.publish(tmp_path / f"{site}2", site)
            return first.site_id, stale

        async def visit(running: object, site_id: str) -> bytes:
            headers = {"Host": f"{site_id}.localhost"}
            async with session.get(running.gateway_url + "/",  # type: ignore[attr-defined]
                                   headers=headers) as response:
                assert response.status == 200
                return await response.read()

        def peer_url(running: object) -> str:
            config, node = running.config, running.node  # type: ignore[attr-defined]
            return f"http://{config.listen[0]}:{node.peer_port}{POINTER_PATH}"

        # A node that never heard of the site keeps nothing pushed to it.
        site_a, stale_a = await superseded("a")
        assert await push(peer_url(fresh), stale_a) == {"accepted": False}
        assert site_a not in fresh.node.state.sites
        assert await visit(fresh, site_a) == b"a two"

        # A node that looked the site up a moment ago (and found nothing then) keeps the
        # push, but asks the DHT and the holders before its first visit is served from it.
        site_b = publisher.node.keys.create("b").site_id
        asked = await net.add_node(replace(net.config_for(2), timings=Timings(
            dht_find_patience=0.5, dht_get_attempts=1, dht_get_timeout=1.0)))
        await wait_until(lambda: asked.node.swarm.wait_dht_ready(1.0), 10, "a DHT peer")
        assert await asked.node.refresh_pointer(site_b) is None  # not published yet
        assert (stale_b := await superseded("b"))[0] == site_b
        assert await push(peer_url(asked), stale_b[1]) == {"accepted": True}
        assert asked.node.state.sites[site_b].unconfirmed
        assert await visit(asked, site_b) == b"b two"
        assert asked.node.state.sites[site_b].pointer.version == 2
        assert not asked.node.state.sites[site_b].unconfirmed
