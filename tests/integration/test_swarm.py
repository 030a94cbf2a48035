"""Publish on one node, browse through others: real nodes, private DHT, real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import replace

import aiohttp
import libtorrent as lt
import pytest
from yarl import URL

from peerweb.config import NodeConfig
from peerweb.swarm.engine import Swarm
from peerweb.tools.testnet import Testnet

from ..conftest import digest
from ..waiting import wait_until


async def fetch_all(gw, site_id, contents):
    async def one(name):
        status, _, body = await gw.site(site_id, "/" + name)
        return name, status, body

    results = await asyncio.gather(*(one(n) for n in contents))
    for name, status, body in results:
        assert status == 200, name
        assert digest(body) == digest(contents[name]), name


async def test_three_nodes_fetch_verify_and_survive_the_publisher(big_site, http):
    folder, contents = big_site
    async with Testnet(3) as net:
        a, b, c = net.nodes
        result = await a.node.publish(folder, "site")
        assert result.version == 1 and result.dht_stored > 0
        sid = result.site_id
        gb, gc = http(b), http(c)

        await fetch_all(gb, sid, contents)

        # Folder index, path form, HEAD, validators, the site's 404 page.
        status, headers, body = await gb.site(sid, "/")
        assert status == 200 and body == contents["index.html"]
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        etag = headers["ETag"]
        status, _, _ = await gb.site(sid, "/", headers={"If-None-Match": etag})
        assert status == 304
        status, headers, body = await gb.site(sid, "/index.html", method="HEAD")
        assert status == 200 and body == b""
        assert headers["Content-Length"] == str(len(contents["index.html"]))
        status, headers, body = await gb.raw(f"/s/{sid}/assets/file01.js")
        assert status == 200 and body == contents["assets/file01.js"]
        assert "sandbox" in headers["Content-Security-Policy"]
        status, _, body = await gb.site(sid, "/no/such/page")
        assert status == 404 and body == contents["404.html"]
        status, _, _ = await gb.site(sid, "/assets/file00.css",
                                     headers={"Range": "bytes=999999-"})
        assert status == 416
        status, _, _ = await gb.site(sid, "/%2e%2e/%2e%2e/etc/passwd")
        assert status == 400
        status, headers, _ = await gb.raw(f"/s/{sid}")
        assert status == 301 and headers["Location"] == f"/s/{sid}/"

        # The snapshot is addressable by info-hash too, and immutable there.
        status, headers, body = await gb.raw(f"/ih/{result.infohash}/index.html")
        assert status == 200 and body == contents["index.html"]
        assert "immutable" in headers["Cache-Control"]

        # The publisher leaves; C, cold, streams from B alone and then fetches everything.
        await net.stop_node(a)
        # A streaming read into the middle of the 40 MB file from a cold node.
        big = contents["media/big.bin"]
        start = len(big) * 9 // 10
        status, headers, body = await gc.site(
            sid, "/media/big.bin", headers={"Range": f"bytes={start}-{start + 1048575}"})
        assert status == 206
        assert headers["Content-Range"] == f"bytes {start}-{start + 1048575}/{len(big)}"
        assert body == big[start:start + 1048576]

        await fetch_all(gc, sid, contents)
        # B served C; libtorrent folds transfer counters into its totals once a second.
        async def served_c() -> bool:
            uploaded = (await b.node.status())["sites"][0]["uploaded"]
            return bool(uploaded >= len(contents["media/big.bin"]))

        await wait_until(served_c, 10, "B's upload counter to count what C fetched")


async def test_ten_nodes_all_serve_the_site(small_site, http):
    folder, contents = small_site
    async with Testnet(10) as net:
        result = await net.nodes[0].node.publish(folder, "site")
        await asyncio.gather(*(fetch_all(http(n), result.site_id, contents) for n in net.nodes[1:]))
        seeds = [n for n in net.nodes if (await n.node.status())["sites"][0].get("progress") == 1.0]
        assert len(seeds) == 10


async def test_gateway_errors_are_clear(small_site, http):
    async with Testnet(2, template=NodeConfig(fetch_timeout=2.0)) as net:
        gw = http(net.nodes[1])
        status, _, body = await gw.raw("/s/not-a-site/")
        assert status == 400 and b"site id" in body
        status, _, _ = await gw.raw("/", headers={"Host": "evil.example"})
        assert status == 421
        status, _, _ = await gw.raw("/", method="POST")
        assert status == 405
        # A well-formed id nobody published: the DHT has no pointer.
        from peerweb.content.identity import SiteKey

        status, _, body = await gw.site(SiteKey.generate("x").site_id, "/")
        assert status == 404 and b"no signed pointer" in body
        # A well-formed info-hash nobody seeds: the swarm times out.
        status, _, _ = await gw.raw("/ih/" + "ab" * 20 + "/")
        assert status == 504


async def test_replayed_and_forged_pointers_are_ignored(small_site, tmp_path, http):
    from peerweb.content import pointer as ptr

    folder, contents = small_site
    async with Testnet(3) as net:
        a, b, _ = net.nodes
        v1 = await a.node.publish(folder, "site")
        gb = http(b)
        assert (await gb.site(v1.site_id, "/"))[2] == contents["index.html"]
        (folder2 := tmp_path / "v2").mkdir()
        (folder2 / "index.html").write_text("version two")
        v2 = await a.node.publish(folder2, "site")
        assert v2.version == 2
        for _ in range(10):  # bounded: the put may still be settling on a tiny DHT
            found = await b.node.refresh_pointer(v2.site_id)
            if found is not None and found.version == 2:
                break
        assert found is not None and found.version == 2
        # An old pointer, validly signed, handed to B again: ignored.
        key = a.node.keys.get("site")
        replay = ptr.sign(key, bytes.fromhex(v1.infohash), 1, seq=1000)
        assert not b.node.accept_pointer(replay)
        status, _, body = await gb.site(v2.site_id, "/")
        assert status == 200 and body == b"version two"

    # A state file edited to point elsewhere fails its signature and is dropped on load.
    async with Testnet(1, root=tmp_path / "net") as net:
        node = net.nodes[0]
        result = await node.node.publish(folder, "site")
    state_path = tmp_path / "net" / "node-0" / "state.json"
    saved = json.loads(state_path.read_text())
    record = saved["sites"][result.site_id]["pointer"]
    record["value"] = ptr.wrap(ptr.encode_record(bytes(20), 9)).hex()
    state_path.write_text(json.dumps(saved))
    async with Testnet(1, root=tmp_path / "net") as net:
        assert result.site_id not in net.nodes[0].node.state.sites


async def read_until_cut(running, site_id, path):
    """Status and every byte the gateway sent before it finished or cut the connection."""
    url = URL(running.gateway_url + path, encoded=True)
    headers = {"Host": f"{site_id}.localhost"}
    received = bytearray()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(
        url, headers=headers
    ) as response:
        try:
            async for chunk in response.content.iter_any():
                received += chunk
        except aiohttp.ClientPayloadError:
            pass
        return response.status, bytes(received)


async def test_tampered_pieces_are_rejected(small_site, tmp_path, http):
    folder, contents = small_site
    big = contents["media/big.bin"]
    root = tmp_path / "net"
    net = Testnet(2, root=root, template=NodeConfig(fetch_timeout=4.0))
    async with net:
        a, c = net.nodes
        result = await a.node.publish(folder, "site")
        sid = result.site_id
        status, _, body = await http(c).site(sid, "/media/big.bin")
        assert status == 200 and body == big  # C holds a good copy
        c_config = c.config
        await net.stop_node(c)

        # Corrupt the publisher's stored copy behind libtorrent's back.
        stored = root / "node-0" / "content" / result.infohash / "site" / "media" / "big.bin"
        with open(stored, "r+b") as f:
            f.write(bytes(b ^ 0xFF for b in big[: len(big)]))

        d = await net.add_node(replace(net.config_for(2)))
        status, received = await read_until_cut(d, sid, "/media/big.bin")
        # Either nothing verified arrived in time (504), or the stream began with pieces A
        # still had intact and was cut where the bad ones began: never a tampered byte.
        assert status in (200, 504)
        if status == 200:
            assert len(received) < len(big) and big.startswith(received)
        assert d.node.swarm.hash_failures > 0

        # The good copy comes back (restarted from its resume data) and D gets true bytes.
        c2 = await net.add_node(c_config)
        d.node.swarm.add_dht_node((c2.config.listen[0], c2.node.swarm.listen_port))
        handle = d.node.swarm.find(result.infohash)
        handle.connect_peer((c2.config.listen[0], c2.node.swarm.listen_port))
        # Until the tampering peer is banned, a stream may still be cut where a piece could
        # not be verified in time (4 s here); a reload finishes it. No attempt ever shows a
        # byte that differs from the original.
        for _ in range(5):
            status, received = await read_until_cut(d, sid, "/media/big.bin")
            assert status == 200 and big.startswith(received)
            if received == big:
                break
        assert received == big


async def test_a_copy_altered_on_the_nodes_own_disk_is_not_served(small_site, tmp_path, http):
    """Held pieces are read straight from the file and checked again: one altered behind the
    node's back is caught, the torrent re-checked and the piece fetched afresh from a peer."""
    folder, contents = small_site
    big = contents["media/big.bin"]
    root = tmp_path / "net"
    async with Testnet(2, root=root) as net:
        a, b = net.nodes
        result = await a.node.publish(folder, "site")
        sid = result.site_id
        gb = http(b)
        status, _, body = await gb.site(sid, "/media/big.bin")
        assert status == 200 and body == big
        stored = root / "node-1" / "content" / result.infohash / "site" / "media" / "big.bin"
        offset = len(big) // 2
        with open(stored, "r+b") as f:
            f.seek(offset)
            f.write(bytes([big[offset] ^ 0xFF]))

        start = offset - 100_000
        status, _, body = await gb.site(
            sid, "/media/big.bin", headers={"Range": f"bytes={start}-{start + 199_999}"})
        assert status == 206 and body == big[start:start + 200_000]
        assert stored.read_bytes() == big  # the fresh piece was written back over the bad one
        status, _, body = await gb.site(sid, "/media/big.bin")
        assert status == 200 and body == big


@pytest.mark.parametrize("form", ["subdomain", "path"])
async def test_small_file_served_from_memory_is_byte_exact(small_site, http, form):
    folder, contents = small_site
    async with Testnet(2) as net:
        result = await net.nodes[0].node.publish(folder, "site")
        gw = http(net.nodes[1])
        for _ in range(3):
            if form == "subdomain":
                status, _, body = await gw.site(result.site_id, "/assets/file03.txt")
            else:
                status, _, body = await gw.raw(f"/s/{result.site_id}/assets/file03.txt")
            assert status == 200 and body == contents["assets/file03.txt"]


@contextlib.asynccontextmanager
async def two_sites_and_a_small_cache(tmp_path, seeds):
    """A publisher with two ~1 MB sites, and a visitor whose cache holds only 1.5 MB."""
    from peerweb.tools.testnet import write_sample_site

    sites = []
    for seed in seeds:
        folder = tmp_path / f"site{seed}"
        sites.append((folder, write_sample_site(folder, small_files=4,
                                                big_size=1024 * 1024, seed=seed)))
    net = Testnet(1, root=tmp_path / "net")
    async with net:
        publisher = net.nodes[0]
        published = [await publisher.node.publish(f, f.name) for f, _ in sites]
        visitor = await net.add_node(replace(net.config_for(1), disk_quota=1_500_000))
        yield publisher, visitor, published, [contents for _, contents in sites]


async def test_disk_quota_evicts_the_least_recently_used_site(tmp_path, http):
    async with two_sites_and_a_small_cache(tmp_path, (10, 11)) as (
        publisher, visitor, published, contents
    ):
        gw = http(visitor)
        await fetch_all(gw, published[0].site_id, contents[0])
        await fetch_all(gw, published[1].site_id, contents[1])
        # Both complete: 2.1 MB in a 1.5 MB cache; the first site, used least recently, goes.
        def evicted() -> bool:
            visitor.node.enforce_quota()
            return not visitor.node.holds(published[0].infohash)

        await wait_until(evicted, 10, "the least recently used site to be evicted")
        assert not visitor.node.holds(published[0].infohash)
        assert visitor.node.holds(published[1].infohash)
        big = tmp_path / "net" / "node-1" / "content" / published[0].infohash / "site10"
        assert not (big / "media" / "big.bin").exists()
        # The publisher's own copy is never evicted, and an evicted site comes back on demand.
        assert publisher.node.holds(published[0].infohash)
        await fetch_all(gw, published[0].site_id, contents[0])


async def test_pinned_sites_survive_the_quota(tmp_path, http):
    async with two_sites_and_a_small_cache(tmp_path, (20, 21)) as (
        _, visitor, published, contents
    ):
        gw = http(visitor)
        await fetch_all(gw, published[0].site_id, contents[0])
        visitor.node.set_pinned(published[0].site_id, True)
        await fetch_all(gw, published[1].site_id, contents[1])
        assert visitor.node.enforce_quota() == []  # over quota, but pinned + most recent
        assert all(visitor.node.holds(p.infohash) for p in published)


def test_a_default_session_stays_local_and_chokes_local_peers(tmp_path):
    """The default network profile reaches nothing beyond this host by itself, and the
    unchoke slots apply to LAN and loopback peers too (libtorrent would never choke them)."""
    swarm = Swarm(NodeConfig(data_dir=tmp_path, listen=("127.0.0.1", 0)))
    try:
        settings = swarm.session.get_settings()
        assert settings["dht_bootstrap_nodes"] == ""
        assert not (settings["enable_upnp"] or settings["enable_natpmp"]
                    or settings["enable_lsd"])
        local = swarm.session.get_peer_class(lt.session.local_peer_class_id)
        assert local["ignore_unchoke_slots"] is False
        assert local["upload_limit"] == 0  # still exempt from the user's rate limits
    finally:
        swarm.session = None


async def test_a_v1_only_snapshot_altered_on_disk_is_not_served(small_site, tmp_path, http):
    """Pieces of a v1-only torrent are read back through libtorrent, which does not check
    them again: the node checks each against its v1 hash, re-checks the torrent and fetches
    the piece afresh from a peer (issue 16, item 7)."""
    folder, contents = small_site
    big = contents["media/big.bin"]
    root = tmp_path / "net"
    async with Testnet(2, root=root) as net:
        a, b = net.nodes
        result = await a.node.publish(folder, "site")
        exported = await a.node.export(result.site_id, tmp_path / "v1.torrent", v1_only=True)
        v1 = exported["infohash"]
        gb = http(b)
        status, _, body = await gb.raw(f"/ih/{v1}/media/big.bin")
        assert status == 200 and body == big
        stored = root / "node-1" / "content" / v1 / "site" / "media" / "big.bin"
        assert stored.read_bytes() == big
        offset = len(big) // 2
        with open(stored, "r+b") as f:
            f.seek(offset)
            f.write(bytes([big[offset] ^ 0xFF]))

        start = offset - 100_000
        status, _, body = await gb.raw(f"/ih/{v1}/media/big.bin",
                                       headers={"Range": f"bytes={start}-{start + 199_999}"})
        assert status == 206 and body == big[start:start + 200_000]
        assert stored.read_bytes() == big  # the fresh piece was written back over the bad one


async def test_a_first_visit_reads_the_page_into_memory_before_the_browser_asks(small_site,
                                                                                http):
    """Asked for index.html alone, a fresh node reads the page's other files into memory
    too (the browser asks for them next), byte-exact, and leaves bulk media alone."""
    folder, contents = small_site
    async with Testnet(2) as net:
        result = await net.nodes[0].node.publish(folder, "site")
        visitor = net.nodes[1].node
        status, _, body = await http(net.nodes[1]).site(result.site_id, "/")
        assert status == 200 and body == contents["index.html"]
        snapshot = await visitor.open_site(result.site_id)
        page = {i: contents[p] for i, p in enumerate(snapshot.sitemap.paths)
                if p in contents and len(contents[p]) < 1 << 20}
        assert len(page) == len(contents) - 1  # all but media/big.bin

        def in_memory() -> bool:
            return all(visitor.small_files.get((snapshot.tid, i)) == data
                       for i, data in page.items())

        await wait_until(in_memory, timeout=20)
        big = snapshot.sitemap.paths.index("media/big.bin")
        assert visitor.small_files.get((snapshot.tid, big)) is None
