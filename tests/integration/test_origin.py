"""Origin mode on loopback: an upstream web server, the origin in front, a peerweb mirror."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path

import aiohttp
from yarl import URL

from peerweb.content.identity import SiteKey, site_id_from_public_key
from peerweb.spike.handoff import LoadPolicy, Mode, Thresholds
from peerweb.spike.loader import CONFIG_PATH, SW_PATH, WORKER_HEADER
from peerweb.spike.origin import STATUS_PATH, Origin, OriginConfig, sitemap_of
from peerweb.tools.testnet import Testnet, write_sample_site

from ..servers import DYNAMIC_PAGE, serving, upstream_app
from ..waiting import wait_until

BANNER = '<div id="peerweb-help">Help host this site</div>'


async def first_redirect(session: aiohttp.ClientSession, url: str, seconds: float,
                         clients: int = 16) -> str:
    """A burst of ``clients`` fetching ``url`` over and over until one is redirected."""
    found: list[str] = []

    async def visitor() -> None:
        async with asyncio.timeout(seconds):
            while not found:
                async with session.get(url, allow_redirects=False) as response:
                    await response.read()
                    if response.status == 302:
                        found.append(response.headers["Location"])

    await asyncio.gather(*(visitor() for _ in range(clients)))
    return found[0]


def origin_for(folder: Path, upstream: str, mirror: str, site_id: str, policy: LoadPolicy,
               banner: str | None) -> Origin:
    return Origin(OriginConfig(upstream, site_id, [mirror], banner), sitemap_of(folder), policy)


async def test_overload_hands_static_files_to_a_mirror_and_the_calm_takes_them_back(tmp_path):
    folder = tmp_path / "site"
    contents = write_sample_site(folder, small_files=4, big_size=256 * 1024)
    big = contents["media/big.bin"]
    async with Testnet(1, root=tmp_path / "net") as net, \
            serving(upstream_app(folder)) as upstream, aiohttp.ClientSession() as session:
        result = await net.nodes[0].node.publish(folder, "site")
        mirror = f"{net.nodes[0].gateway_url}/s/{result.site_id}"
        policy = LoadPolicy(Thresholds(capacity=1_000_000, enter_after=0.3, leave_after=1.0))
        origin = origin_for(folder, upstream, mirror, result.site_id, policy, BANNER)
        async with serving(origin.make_app()) as base:
            async def get(path: str) -> tuple[int, dict[str, str], bytes]:
                async with session.get(base + path, allow_redirects=False) as response:
                    return response.status, dict(response.headers), await response.read()

            # Normal load: everything passes through, untouched.
            status, _, body = await get("/media/big.bin")
            assert status == 200 and body == big
            status, _, body = await get("/api/now")
            assert status == 200 and body == DYNAMIC_PAGE

            # A burst of 16 clients: the origin starts handing the big file off.
            location = await first_redirect(session, base + "/media/big.bin", seconds=20)
            assert location == f"{mirror}/media/big.bin"
            async with session.get(location) as response:  # the mirror: verified bytes
                assert response.status == 200 and await response.read() == big
            # Dynamic requests are never redirected; while handing off they carry the banner.
            status, headers, body = await get("/api/now")
            assert status in (200, 503) and "Location" not in headers
            if status == 200:
                assert BANNER.encode() in body
            else:
                assert headers["Retry-After"] == "5"
            async with session.get(base + STATUS_PATH) as response:
                state = await response.json()
            assert state["mode"] == "handing off" and state["handed_off"] >= 1
            assert state["handed_off_to"][mirror] == state["handed_off"]
            cli = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "peerweb", "status", "--origin", base,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            async with asyncio.timeout(30):
                out, err = await cli.communicate()
            assert cli.returncode == 0, err.decode()
            assert "handing off" in out.decode() and mirror in out.decode()

            # The burst is over: after the calm period, visitors are served directly again.
            async def served_directly() -> bool:
                status, _, body = await get("/api/now")
                return status == 200 and body == DYNAMIC_PAGE

            await wait_until(served_directly, 15, "the origin to serve directly again")
            status, _, body = await get("/media/big.bin")
            assert status == 200 and body == big
            assert policy.mode is Mode.NORMAL and policy.changes == 2


async def test_the_banner_appears_only_when_enabled(tmp_path):
    folder = tmp_path / "site"
    write_sample_site(folder, small_files=2, big_size=0)
    async with serving(upstream_app(folder)) as upstream, aiohttp.ClientSession() as session:
        for banner in (None, BANNER):
            # Held in hand-off mode: a long calm is needed to leave it.
            policy = LoadPolicy(Thresholds(capacity=1e9, leave_after=3600), mode=Mode.HANDOFF)
            origin = origin_for(folder, upstream, "http://127.0.0.1:1/s/x", "x" * 52, policy,
                                banner)
            async with serving(origin.make_app()) as base, session.get(base + "/api/now") as r:
                body = await r.read()
            assert r.status == 200
            assert (BANNER.encode() in body) is (banner is not None)
            async with serving(origin.make_app()) as base, session.get(
                    base + "/index.html", allow_redirects=False) as r:
                assert r.status == 302 and r.headers["Location"].endswith("/index.html")


async def test_volunteers_found_through_the_dht_take_the_handed_off_visitors(tmp_path):
    folder = tmp_path / "site"
    contents = write_sample_site(folder, small_files=4, big_size=256 * 1024)
    big = contents["media/big.bin"]
    async with Testnet(1, root=tmp_path / "net") as net, \
            serving(upstream_app(folder)) as upstream, aiohttp.ClientSession() as session:
        publisher = net.nodes[0]
        volunteers = [await net.add_node(replace(net.config_for(i), volunteer=True,
                                                 upload_limit=10_000_000)) for i in (1, 2)]
        result = await publisher.node.publish(folder, "site")
        gateways = {v.gateway_url for v in volunteers}

        async def find() -> list[str]:
            return [m["mirror"] for m in await publisher.node.ask_for_help(result.site_id)]

        policy = LoadPolicy(Thresholds(capacity=1_000_000, enter_after=0.3, leave_after=60))
        origin = Origin(OriginConfig(upstream, result.site_id, [], None), sitemap_of(folder),
                        policy, find)
        async with serving(origin.make_app()) as base:
            location = await first_redirect(session, base + "/media/big.bin", seconds=40)
        # Sent to a volunteer that mirrors the signed site, which serves it to anyone.
        assert any(location.startswith(g + f"/s/{result.site_id}/") for g in gateways)
        async with session.get(location) as response:
            assert response.status == 200 and await response.read() == big
            assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert any(v.node.state.sites.get(result.site_id) and
                   v.node.state.sites[result.site_id].pinned for v in volunteers)


async def test_a_volunteer_asked_for_help_is_named_a_mirror_in_the_same_answer(tmp_path):
    """The origin does not wait for its next ask to use a volunteer that took the job."""
    folder = tmp_path / "site"
    write_sample_site(folder, small_files=2, big_size=0)
    async with Testnet(1, root=tmp_path / "net") as net:
        publisher = net.nodes[0]
        volunteer = await net.add_node(replace(net.config_for(1), volunteer=True))
        result = await publisher.node.publish(folder, "site")
        found: list[dict[str, object]] = []
        async with asyncio.timeout(30):  # until the DHT names the volunteer
            while not found:
                held_before = result.site_id in volunteer.node.state.sites
                found = await publisher.node.ask_for_help(result.site_id, 1)
                await asyncio.sleep(0 if found else 0.2)
        assert not held_before  # it was asked in this very call...
        assert found == [{"mirror": f"{volunteer.gateway_url}/s/{result.site_id}",
                          "load": found[0]["load"], "version": 1}]  # ...and is named at once
        assert volunteer.node.state.sites[result.site_id].pinned


async def test_the_redirector_sends_visitors_to_a_volunteer_that_has_the_site(tmp_path):
    from peerweb.content.identity import SiteKey
    from peerweb.spike.redirector import make_app as redirector_app

    folder = tmp_path / "site"
    contents = write_sample_site(folder, small_files=2, big_size=64 * 1024)
    async with Testnet(1, root=tmp_path / "net") as net, aiohttp.ClientSession() as session:
        publisher = net.nodes[0]
        volunteer = await net.add_node(replace(net.config_for(1), volunteer=True,
                                               upload_limit=10_000_000))
        other = await net.add_node(net.config_for(2))  # knows nothing of the site yet
        result = await publisher.node.publish(folder, "site")
        async with serving(redirector_app(other.node)) as base:
            location = None
            async with asyncio.timeout(30):  # until the volunteer has been found and asked
                while location is None:
                    async with session.get(f"{base}/{result.site_id}/media/big.bin",
                                           allow_redirects=False) as response:
                        if response.status == 302:
                            location = response.headers["Location"]
                        else:
                            assert response.status == 503 and "Retry-After" in response.headers
                            await asyncio.sleep(0.5)
            assert location == f"{volunteer.gateway_url}/s/{result.site_id}/media/big.bin"
            async with session.get(location) as response:
                assert await response.read() == contents["media/big.bin"]
            async with session.get(f"{base}/not-a-site/x", allow_redirects=False) as response:
                assert response.status == 400
            unknown = SiteKey.generate("x").site_id
            async with session.get(f"{base}/{unknown}/", allow_redirects=False) as response:
                assert response.status == 404


async def test_the_origin_is_a_web_seed_the_swarm_fills_from(tmp_path):
    folder = tmp_path / "site"
    contents = write_sample_site(folder, small_files=3, big_size=1024 * 1024)
    big = contents["media/big.bin"]
    async with Testnet(1, root=tmp_path / "net") as net, \
            serving(upstream_app(folder)) as upstream, aiohttp.ClientSession() as session:
        publisher = net.nodes[0]
        visitor = await net.add_node(net.config_for(1))
        policy = LoadPolicy(Thresholds(capacity=1e9))
        origin = Origin(OriginConfig(upstream, None, [], None), sitemap_of(folder), policy)
        async with serving(origin.make_app()) as base:
            seed = f"{base}/.peerweb/seed/"
            result = await publisher.node.publish(folder, "site", web_seeds=(seed,))
            assert publisher.node.state.sites[result.site_id].pointer.web_seeds == (seed,)
            async with session.get(seed + "site/media/big.bin",
                                   headers={"Range": "bytes=1000-1999"}) as response:
                assert response.status == 206 and await response.read() == big[1000:2000]
            escape = URL(seed + "site/../../etc/passwd", encoded=True)  # sent as written
            async with session.get(escape) as response:
                assert response.status == 404

            # A visitor that got only the metadata from the publisher, which then went away,
            # fills the whole site from the origin (BEP 19), verified piece by piece.
            handle = visitor.node.swarm.add_magnet(
                result.infohash, visitor.node.content_dir / result.infohash, hold=True,
                web_seeds=(seed,))
            await visitor.node.swarm.wait_metadata(handle, 20)
            await net.stop_node(publisher)
            before = policy.total_sent
            visitor.node.swarm.release(handle)
            await wait_until(lambda: handle.status().is_seeding, 30,
                             "the visitor to complete the site from the web seed")
            assert policy.total_sent - before >= len(big)
            stored = visitor.node.content_dir / result.infohash / "site" / "media" / "big.bin"
            assert stored.read_bytes() == big


async def test_watch_publishes_the_changed_site_and_hands_off_its_new_files(tmp_path):
    folder = tmp_path / "site"
    write_sample_site(folder, small_files=2, big_size=0)
    async with Testnet(1, root=tmp_path / "net") as net, serving(upstream_app(folder)) as up:
        node = net.nodes[0].node
        first = await node.publish(folder, "site")

        async def publish() -> None:
            await node.publish(folder, "site")

        policy = LoadPolicy(Thresholds(capacity=1e9))
        origin = Origin(OriginConfig(up, first.site_id, [], None), sitemap_of(folder), policy,
                        watch=(folder, publish))
        async with serving(origin.make_app()):
            assert not origin.handoff.is_static("/news.html")
            (folder / "news.html").write_text("<p>fresh</p>")
            # polled every 2 s, published once it settles
            await wait_until(lambda: origin.handoff.is_static("/news.html"), 30,
                             "the watcher to publish the new file")
            assert node.state.sites[first.site_id].pointer.version == 2
            history = node.state.sites[first.site_id].history
            assert history[-1].changed == ["news.html"]


async def test_a_volunteer_lets_go_of_a_site_once_no_one_asks_for_help(tmp_path):
    folder = tmp_path / "site"
    write_sample_site(folder, small_files=2, big_size=0)
    async with Testnet(1, root=tmp_path / "net") as net:
        result = await net.nodes[0].node.publish(folder, "site")
        volunteer = await net.add_node(replace(net.config_for(1), volunteer=True,
                                               mirror_lease=0.5))
        await volunteer.node.mirror(result.site_id)
        record = volunteer.node.state.sites[result.site_id]
        assert record.pinned and record.mirrored_until > 0
        # the lease runs out: unpinned, evictable again
        await wait_until(lambda: not record.pinned, 10, "the mirror lease to run out")
        # A site the volunteer's owner pinned stays pinned, whatever the help requests.
        volunteer.node.set_pinned(result.site_id, True)
        await volunteer.node.mirror(result.site_id)
        volunteer.node._volunteer.end_mirror_leases()  # the watch loop's lease check, now
        assert record.pinned and record.mirrored_until == 0


async def test_handing_off_a_page_load_serves_the_verifying_loader_first(tmp_path):
    folder = tmp_path / "site"
    contents = write_sample_site(folder, small_files=2, big_size=0)
    site_id = site_id_from_public_key(SiteKey.generate("s").public_key)
    mirror = f"http://127.0.0.1:1/s/{site_id}"
    page_load = {"Sec-Fetch-Dest": "document", "Accept": "text/html"}
    async with serving(upstream_app(folder)) as upstream, aiohttp.ClientSession() as session:
        for loader_on in (True, False):
            policy = LoadPolicy(Thresholds(capacity=1e9, leave_after=3600), mode=Mode.HANDOFF)
            origin = Origin(OriginConfig(upstream, site_id, [mirror], None, loader_on),
                            sitemap_of(folder), policy)
            async with serving(origin.make_app()) as base:
                async with session.get(base + "/", headers=page_load,
                                       allow_redirects=False) as r:
                    body = await r.read()
                if loader_on:  # a first-party page that installs the worker
                    assert r.status == 200 and b"navigator.serviceWorker" in body
                    assert SW_PATH.encode() in body
                    assert f"{mirror}/".encode() in body  # the plain redirect, as fallback
                else:
                    assert r.status == 302 and r.headers["Location"] == f"{mirror}/"
                # Scripts and images are redirected as before; the worker's own requests
                # are answered by the origin itself.
                async with session.get(base + "/index.html", allow_redirects=False) as r:
                    assert r.status == 302
                async with session.get(base + "/index.html", allow_redirects=False,
                                       headers={**page_load, WORKER_HEADER: "1"}) as r:
                    assert r.status == 200 and await r.read() == contents["index.html"]
                async with session.get(base + CONFIG_PATH) as r:
                    config = await r.json()
                assert config["mode"] == "handoff" and config["site_id"] == site_id
                assert config["mirrors"] == ["http://127.0.0.1:1"]
                async with session.get(base + SW_PATH) as r:
                    assert r.status == 200 and r.headers["Service-Worker-Allowed"] == "/"
