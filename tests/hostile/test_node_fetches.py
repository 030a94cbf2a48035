"""Fetches by info-hash that fail, and what the node holds: every torrent accounted for."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from peerweb.errors import SwarmTimeout
from peerweb.node.snapshots import torrent_size
from peerweb.tools.testnet import Testnet, write_sample_site

from ..waiting import wait_until


async def test_a_fetch_that_times_out_leaves_no_torrent_behind(tmp_path) -> None:
    async with Testnet(1, root=tmp_path / "net") as net:
        await net.stop_node(net.nodes[0])
        running = await net.add_node(replace(net.config_for(0), fetch_timeout=1.0))
        node = running.node
        tid = os.urandom(32).hex()  # nobody has it
        with pytest.raises(SwarmTimeout):
            await node.open_snapshot(tid)
        await wait_until(lambda: node.swarm.find(tid) is None, 10,
                         "the failed fetch to leave the session")
        assert not node.holds(tid)
        assert tid not in (await node.status())["snapshots"]


async def test_status_counts_every_torrent_held_including_ih_fetches_and_restored_ones(
        tmp_path) -> None:
    write_sample_site(tmp_path / "site", small_files=4, big_size=2_000_000)
    async with Testnet(2, root=tmp_path / "net") as net:
        publisher, visitor = net.nodes
        published = await publisher.node.publish(tmp_path / "site", "site")
        snapshot = await visitor.node.open_snapshot(published.infohash)  # an /ih/ fetch
        size = torrent_size(snapshot.handle)  # pad files are never written
        await wait_until(lambda: snapshot.handle.status().is_seeding, 60, "the whole snapshot")
        status = await visitor.node.status()
        assert status["sites"] == [] and status["snapshots"] == [published.infohash]
        assert status["disk_used"] == size
        # After a restart, the snapshot restored from its resume data is held and counted
        # before anyone visits it again.
        config = visitor.config
        await net.stop_node(visitor)
        restarted = await net.add_node(config)
        assert restarted.node.holds(published.infohash)
        status = await restarted.node.status()
        assert status["snapshots"] == [published.infohash] and status["disk_used"] == size
