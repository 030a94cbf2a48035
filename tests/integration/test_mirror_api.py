"""What a volunteer's gateway offers a visitor's verifying worker besides the files."""

from __future__ import annotations

import aiohttp
import pytest

from peerweb.config import NodeConfig
from peerweb.content import bencode
from peerweb.node import node as node_module
from peerweb.tools.testnet import Testnet, write_sample_site

from ..waiting import wait_until


async def test_a_volunteer_bundles_a_snapshots_small_files_in_file_tree_order(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    contents = write_sample_site(tmp_path / "site", small_files=6, big_size=3_000_000)
    async with Testnet(2, root=tmp_path / "net", template=NodeConfig(volunteer=True)) as net, \
            aiohttp.ClientSession() as session:
        published = await net.nodes[0].node.publish(tmp_path / "site", "site")
        path = f"/peerweb/v1/bundle/{published.infohash}"
        async with session.get(net.nodes[0].gateway_url + path) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            body = await response.read()
        # Every file that fits in one 64 KiB piece (not media/big.bin), keys in byte order
        # at every level of the file tree: "404.html" < "assets/..." < "index.html".
        assets = sorted(p for p in contents if p.startswith("assets/"))
        assert body == b"".join(contents[p] for p in ["404.html", *assets, "index.html"])
        # A node that does not hold the whole snapshot has no bundle to give.
        async with session.get(net.nodes[1].gateway_url + path) as response:
            assert response.status == 404
        # Past the size limit the worker is told to fetch files one by one.
        monkeypatch.setattr(node_module, "BUNDLE_LIMIT", 1000)
        async with session.get(net.nodes[0].gateway_url + path) as response:
            assert response.status == 413
            assert "one by one" in await response.text()


async def test_a_volunteer_makes_the_torrent_once_it_holds_a_snapshot(tmp_path) -> None:
    write_sample_site(tmp_path / "site", small_files=3, big_size=300_000)
    async with Testnet(2, root=tmp_path / "net", template=NodeConfig(volunteer=True)) as net, \
            aiohttp.ClientSession() as session:
        published = await net.nodes[0].node.publish(tmp_path / "site", "site")
        volunteer = net.nodes[1].node
        await volunteer.mirror(published.site_id)
        # Made when the last piece arrives, so a verifying visitor's first request for it
        # does not wait on libtorrent's resume data (0.5 s on a busy machine).
        await wait_until(lambda: volunteer.kept_torrent(published.infohash), 30,
                         "the volunteer to make the snapshot's .torrent")
        base = net.nodes[1].gateway_url + "/peerweb/v1"
        async with session.get(f"{base}/torrent/{published.infohash}") as response:
            assert response.status == 200
            torrent = await response.read()
            assert torrent == volunteer.kept_torrent(published.infohash)
        # A worker's first request: the record with that torrent, in one bencoded answer.
        async with session.get(f"{base}/record/{published.site_id}") as response:
            record = await response.read()
        async with session.get(f"{base}/current/{published.site_id}") as response:
            assert response.status == 200
            assert response.headers["Cache-Control"] == "no-cache"
            assert bencode.decode(await response.read()) == {b"record": record,
                                                             b"torrent": torrent}
        # The bundle by site id is the current snapshot's, which a header names.
        async with session.get(f"{base}/bundle/{published.infohash}") as response:
            bundle = await response.read()
        async with session.get(f"{base}/bundle/{published.site_id}") as response:
            assert response.headers["X-Peerweb-Snapshot"] == published.infohash
            assert response.headers["Cache-Control"] == "no-cache"  # the next version's, later
            assert await response.read() == bundle and len(bundle) > 0
        # A site this node does not hold: nothing.
        async with session.get(f"{base}/current/{'a' * 52}") as response:
            assert response.status == 404
