"""Publishing as a user meets it: which key signs, which version, and what a failed or
cancelled publish leaves behind (issue 16 item 5, issue 17 "keys cannot be mixed up")."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from peerweb.errors import PublishError, UsageError
from peerweb.tools.testnet import Testnet

from ..waiting import wait_until

# Generous bound for a version to reach a holder on a loaded 2-core machine.
UPDATE_TIMEOUT = 60.0


def write_page(folder: Path, text: str) -> bytes:
    folder.mkdir(parents=True, exist_ok=True)
    body = f"<h1>{text}</h1>".encode()
    (folder / "index.html").write_bytes(body)
    return body


async def holder_has(holder, site_id: str, version: int) -> bool:
    record = holder.node.state.sites.get(site_id)
    if record is None or record.pointer.version < version:
        await holder.node.refresh_pointer(site_id)  # the poll a holder does anyway, sooner
        record = holder.node.state.sites.get(site_id)
    return record is not None and record.pointer.version == version


async def restart(net: Testnet, running, forget: tuple[str, ...]):
    """Stop a node, delete ``forget`` (paths in its data dir), start it again on that dir."""
    config = running.config
    await net.stop_node(running)
    for name in forget:
        (config.data_dir / name).unlink()
    others = tuple((n.config.listen[0], n.node.swarm.listen_port) for n in net.nodes)
    started = await net.add_node(replace(config, bootstrap=others))
    assert await started.node.swarm.wait_dht_ready(timeout=30)
    return started


async def test_a_publisher_that_lost_its_state_signs_past_its_last_version(tmp_path, http):
    """Issue 16 item 5: v1 and v2, then state.json wiped (keys kept): the next is v3, and a
    holder takes it; with the counter beside the key gone too, the DHT and holders say v3."""
    async with Testnet(2, root=tmp_path / "net") as net:
        publisher, holder = net.nodes
        write_page(tmp_path / "site", "one")
        v1 = await publisher.node.publish(tmp_path / "site", "site")
        site = v1.site_id
        assert (await http(holder).site(site, "/"))[2] == b"<h1>one</h1>"
        write_page(tmp_path / "site", "two")
        assert (await publisher.node.publish(tmp_path / "site", "site")).version == 2
        await wait_until(lambda: holder_has(holder, site, 2), UPDATE_TIMEOUT, "v2 on holder")

        publisher = await restart(net, publisher, forget=("state.json",))
        assert not publisher.node.state.sites
        page = write_page(tmp_path / "site", "three")
        v3 = await publisher.node.publish(tmp_path / "site", "site")
        assert (v3.site_id, v3.version) == (site, 3)  # before the fix: v1, ignored by all
        assert v3.previous_version == 2
        assert v3.version_from == "key" and not v3.key_created and not v3.unchanged
        await wait_until(lambda: holder_has(holder, site, 3), UPDATE_TIMEOUT, "v3 on holder")
        assert (await http(holder).site(site, "/"))[2] == page

        # A key copied to a fresh data dir has no counter beside it: the network knows.
        publisher = await restart(net, publisher, forget=("state.json", "keys/site.signed"))
        page = write_page(tmp_path / "site", "four")
        v4 = await publisher.node.publish(tmp_path / "site", "site")
        assert (v4.version, v4.previous_version) == (4, 3)
        assert v4.version_from in ("dht", "holders")
        await wait_until(lambda: holder_has(holder, site, 4), UPDATE_TIMEOUT, "v4 on holder")
        assert (await http(holder).site(site, "/"))[2] == page


async def test_two_folders_named_www_are_two_sites(tmp_path):
    async with Testnet(1, root=tmp_path / "net") as net:
        node = net.nodes[0].node
        write_page(tmp_path / "x1" / "www", "x1")
        write_page(tmp_path / "x2" / "www", "x2")
        first = await node.publish(tmp_path / "x1" / "www")
        second = await node.publish(tmp_path / "x2" / "www")
        assert first.site_id != second.site_id
        assert (first.key, first.key_created, first.version) == ("www", True, 1)
        assert (second.key, second.key_created, second.version) == ("www-2", True, 1)
        assert node.keys.names() == ["www", "www-2"]

        # The same folder again (by another path to it) is its site's next version.
        write_page(tmp_path / "x1" / "www", "x1 again")
        again = await node.publish(tmp_path / "x2" / ".." / "x1" / "www")
        assert (again.site_id, again.key, again.key_created, again.version) == (
            first.site_id, "www", False, 2)

        # Another folder under an existing key: only when named.
        named = await node.publish(tmp_path / "x2" / "www", "www")
        assert (named.site_id, named.version, named.key_created) == (first.site_id, 3, False)
        node.keys.create("blog")
        write_page(tmp_path / "blog", "blog")
        with pytest.raises(UsageError, match="--key blog"):
            await node.publish(tmp_path / "blog")
        assert (await node.publish(tmp_path / "blog", "blog")).key == "blog"
        assert len(node.keys.names()) == 3


async def test_a_failed_publish_creates_no_key_and_no_copy(tmp_path):
    async with Testnet(1, root=tmp_path / "net") as net:
        node = net.nodes[0].node
        (tmp_path / "empty").mkdir()
        with pytest.raises(PublishError, match="no files to publish"):
            await node.publish(tmp_path / "empty")
        (tmp_path / "noindex").mkdir()
        (tmp_path / "noindex" / "a.txt").write_text("x")
        with pytest.raises(PublishError, match="--no-index"):
            await node.publish(tmp_path / "noindex")
        with pytest.raises(PublishError):
            await node.publish(tmp_path / "noindex", "named")
        assert node.keys.names() == []
        assert list(node.content_dir.iterdir()) == []
        assert not node.state.published and not node.state.folders


def large_folder(root: Path, files: int = 4, size: int = 128 * 1024 * 1024) -> Path:
    """Sparse files: a big publish to hash without writing the source bytes first."""
    root.mkdir(parents=True)
    (root / "index.html").write_text("<h1>big</h1>")
    for i in range(files):
        with open(root / f"part{i}.bin", "wb") as handle:
            handle.truncate(size)
    return root


async def test_a_publish_cancelled_by_its_client_leaves_nothing(tmp_path, caplog):
    """The CLI's Ctrl-C closes the connection of ``POST /v1/publish``: mid-hash, the node
    stops, removes its copy and creates no key."""
    folder = large_folder(tmp_path / "big")
    caplog.set_level(logging.INFO, logger="peerweb")
    async with Testnet(1, root=tmp_path / "net") as net:
        running = net.nodes[0]
        state_file = running.config.data_dir / "state.json"
        state_before = state_file.read_bytes() if state_file.exists() else None
        headers = {"Authorization": f"Bearer {running.token}"}
        async with aiohttp.ClientSession() as session:
            response = await session.post(f"{running.api_url}/v1/publish",
                                          json={"path": str(folder)}, headers=headers)
            line = json.loads(await response.content.readline())
            assert "progress" in line and line["progress"] < line["total"], line
            assert any(p.name.startswith(".staging-")
                       for p in running.node.content_dir.iterdir())
            response.close()  # drops the connection, as a killed CLI does

        await wait_until(lambda: any("cancelled: its copy is removed" in r.getMessage()
                                     for r in caplog.records), 30, "the publish to stop")
        assert list(running.node.content_dir.iterdir()) == []
        assert running.node.keys.names() == []
        assert not running.node.state.published and not running.node.state.folders
        assert (state_file.read_bytes() if state_file.exists() else None) == state_before
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_republishing_the_same_bytes_is_unchanged_and_quick(tmp_path):
    """With a node gone from the routing table a put waits seconds on it (measured: 10.0 s,
    then 5.1 s); the DHT already holding the pointer, an unchanged site is not put again."""
    write_page(tmp_path / "site", "same")
    async with Testnet(4, root=tmp_path / "net") as net:
        publisher = net.nodes[0].node
        first = await publisher.publish(tmp_path / "site")
        assert not first.unchanged and first.dht_stored > 0
        await net.stop_node(net.nodes[3])
        started = time.monotonic()
        again = await publisher.publish(tmp_path / "site")
        elapsed = time.monotonic() - started
        assert (again.unchanged, again.version, again.site_id) == (True, 1, first.site_id)
        assert again.dht_stored == 0 and not again.key_created
        assert elapsed < publisher.timings.dht_put_timeout / 2, elapsed
        assert publisher.state.published[first.site_id].version == 1
