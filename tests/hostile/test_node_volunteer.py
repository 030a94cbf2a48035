"""Strangers asking a volunteer for help: it gives only what its disk and upload allow."""

from __future__ import annotations

from dataclasses import replace

import aiohttp

from peerweb.config import NodeConfig
from peerweb.http.peer_client import HELP_PATH
from peerweb.policy.admission import HELP_BURST
from peerweb.policy.volunteers import MAX_LEASE_RENEWALS
from peerweb.tools.testnet import Testnet, write_sample_site

from ..waiting import wait_until


async def ask(running: object, site_id: str) -> tuple[int, dict[str, object]]:
    config, node = running.config, running.node  # type: ignore[attr-defined]
    url = f"http://{config.listen[0]}:{node.peer_port}{HELP_PATH}"
    async with aiohttp.ClientSession() as session, session.post(
            url, json={"site_id": site_id}) as response:
        return response.status, await response.json()


async def test_a_volunteer_refuses_a_site_bigger_than_its_disk_and_keeps_nothing(
        tmp_path) -> None:
    write_sample_site(tmp_path / "site", small_files=4, big_size=3_000_000)
    async with Testnet(1, root=tmp_path / "net") as net:
        published = await net.nodes[0].node.publish(tmp_path / "site", "site")
        volunteer = await net.add_node(replace(net.config_for(1), volunteer=True,
                                               disk_quota=1_000_000))
        status, answer = await ask(volunteer, published.site_id)
        assert status == 507, answer
        assert "needs 3" in str(answer["error"]) and "1000000" in str(answer["error"])
        node = volunteer.node
        assert published.site_id not in node.state.sites
        assert not node.holds(published.infohash)
        await wait_until(lambda: node.swarm.find(published.infohash) is None, 10,
                         "the refused torrent to leave the session")
        await wait_until(lambda: not (node.content_dir / published.infohash).exists(), 10,
                         "its files to go")
        assert (await node.status())["disk_used"] == 0


async def test_a_volunteer_bounds_the_help_one_address_gets_and_how_long_a_lease_lasts(
        tmp_path) -> None:
    write_sample_site(tmp_path / "site", small_files=2, big_size=0)
    async with Testnet(1, root=tmp_path / "net") as net:
        published = await net.nodes[0].node.publish(tmp_path / "site", "site")
        volunteer = await net.add_node(replace(net.config_for(1), volunteer=True,
                                               mirror_lease=60.0))
        answers = [await ask(volunteer, published.site_id) for _ in range(int(HELP_BURST) + 1)]
        assert [s for s, _ in answers] == [200] * int(HELP_BURST) + [429]
        assert answers[0][1] == {"site_id": published.site_id, "version": 1}
        record = volunteer.node.state.sites[published.site_id]
        assert record.pinned
        # However often it is renewed, the chain of leases ends MAX_LEASE_RENEWALS leases
        # after it began.
        assert record.mirrored_until <= record.mirrored_since + MAX_LEASE_RENEWALS * 60.0


def test_the_volunteer_template_is_a_volunteer() -> None:
    assert NodeConfig(volunteer=True).volunteer
