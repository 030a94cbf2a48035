"""A real node on loopback whose state file was damaged: it starts, keeps and serves its valid
site, drops the bad entries alone and keeps the original file (issue 16, item 9)."""

from __future__ import annotations

import json

import aiohttp

from peerweb.content import bencode
from peerweb.content import pointer as ptr
from peerweb.content.identity import SiteKey
from peerweb.http.peer_client import POINTER_PATH
from peerweb.tools.testnet import Testnet, write_sample_site


def hand_edited(pointer: ptr.Pointer, version: int) -> dict[str, object]:
    """A genuine pointer whose signed version was edited in the file, signature kept."""
    inner = bencode.decode(bencode.decode(pointer.value))
    assert isinstance(inner, dict)
    inner[b"v"] = version
    return {**pointer.to_json(), "value": ptr.wrap(bencode.encode(inner)).hex()}


async def test_a_node_with_a_damaged_state_file_starts_and_serves_its_valid_site(tmp_path, http):
    contents = write_sample_site(tmp_path / "site", small_files=3, big_size=64 * 1024)
    other = SiteKey("other", bytes([7]) * 32)
    async with Testnet(1, root=tmp_path / "net") as net:
        first = net.nodes[0]
        published = await first.node.publish(tmp_path / "site", "site")
        config = first.config
        await net.stop_node(first)

        path = config.data_dir / "state.json"
        raw = json.loads(path.read_bytes())
        raw["sites"][other.site_id] = {"pointer": hand_edited(ptr.sign(other, bytes(20), 1, 1), 5)}
        raw["sites"]["junk"] = None
        raw["published"]["junk"] = []
        raw["exports"] = ["not", "an", "object"]
        damaged = json.dumps(raw).encode()
        path.write_bytes(damaged)

        second = await net.add_node(config)  # the same data dir: no traceback, it starts
        assert set(second.node.state.sites) == {published.site_id}
        assert set(second.node.state.published) == {published.site_id}
        [copy] = config.data_dir.glob("state.json.damaged-*")
        assert copy.read_bytes() == damaged

        status, _, body = await http(second).site(published.site_id, "/")
        assert (status, body) == (200, contents["index.html"])
        # The peer port takes the site id in any case, as the gateway does.
        host, port = second.peer_address
        async with aiohttp.ClientSession() as session, session.get(
                f"http://{host}:{port}{POINTER_PATH}/{published.site_id.upper()}") as response:
            answer = await response.json()
        assert response.status == 200
        assert ptr.Pointer.from_json(answer["pointer"]).site_id == published.site_id
