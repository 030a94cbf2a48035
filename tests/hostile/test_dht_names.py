"""A hostile DHT node serving a zone's records: a replayed older record and a forged one
are refused by a real node whose only DHT contact it is.

The records are real: Bob's node publishes ``blog`` twice in a private DHT and the test
captures both versions as the DHT hands them out. A victim node then joins a DHT made of
the hostile node alone (tests/hostile/krpc.py), which answers every lookup of ``blog``
with what the test chooses: first the genuine version 2, then the genuine but older version
1 (a replay: validly signed by Bob, once true), then version 2's bytes pointing elsewhere
under version 2's signature (a forgery).
"""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from peerweb.content.addressing import Address, Target
from peerweb.content.identity import SiteKey, public_key_from_site_id
from peerweb.content.item import SignedItem
from peerweb.errors import UnknownName
from peerweb.names import records as rec
from peerweb.names.resolution import Query
from peerweb.names.service import NameService
from peerweb.tools.testnet import Testnet

from ..waiting import wait_until
from . import krpc

HOSTILE_HOST = "127.0.0.90"
VICTIM_FIRST_HOST = 70  # 127.0.0.70: apart from the honest testnet's addresses
TTL = 1  # seconds the victim caches a record: each step below looks it up again
TIMEOUT = 30.0


async def _version(store, public_key: bytes, salt: bytes, version: int) -> SignedItem | None:
    """The item the DHT holds for (key, salt) once it is ``version``."""
    for item in await store.get_items(public_key, salt, 5.0):
        if rec.verify_record(item, salt).version == version:
            return item
    return None


async def _looked_up_again(names: NameService, name: str) -> bool:
    """Whether the victim's cached record expired (its next resolve asks the DHT)."""
    return names.resolve_nowait(name) is None


async def _cli_resolve(name: str, data_dir) -> dict[str, object]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "peerweb", "--json", "name", "resolve", name, "--data-dir",
        str(data_dir), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    found: dict[str, object] = json.loads(out.decode().splitlines()[-1])
    return found


async def test_a_hostile_dht_node_replaying_or_forging_a_record_is_refused(tmp_path):
    first, second, forger = (SiteKey.generate(f"t{i}").site_id for i in range(3))
    salt = rec.label_salt("blog")
    async with Testnet(3, root=tmp_path / "net") as net:
        owner, reader, _ = net.nodes
        bob = owner.node.keys.create("bob")
        assert (await owner.node.publish_name("bob", "blog", first, TTL)).stored
        v1 = await wait_until(lambda: _version(reader.node.swarm, bob.public_key, salt, 1),
                              TIMEOUT, "version 1 in the DHT")
        assert (await owner.node.publish_name("bob", "blog", second, TTL)).stored
        v2 = await wait_until(lambda: _version(reader.node.swarm, bob.public_key, salt, 2),
                              TIMEOUT, "version 2 in the DHT")
    assert v1.seq < v2.seq

    hostile, transport, port = await krpc.start(HOSTILE_HOST)
    try:
        hostile.serve(v2)
        async with Testnet(1, root=tmp_path / "victim", first_host=VICTIM_FIRST_HOST) as alone:
            victim = alone.nodes[0]
            victim.node.swarm.add_dht_node((HOSTILE_HOST, port))
            await wait_until(victim.node.swarm.dht_node_count, TIMEOUT,
                             "the hostile node in the victim's routing table")
            names = victim.node.names
            names.book.add("bob", Address(Target.SITE, bob.site_id))

            # The genuine version 2, through the hostile node: the victim does ask it.
            found = await names.resolve("blog.bob")
            assert found.ident == second and "version 2" in found.chain[-1]
            assert hostile.served >= 1

            # A replay of version 1: validly signed by Bob, but older than what the victim
            # saw. Refused, counted, and version 2 still answers, through the CLI too.
            hostile.serve(v1)
            await wait_until(lambda: _looked_up_again(names, "blog.bob"), TIMEOUT,
                             "the victim's cached record to expire")
            served, refused = hostile.served, names.refused
            found = await names.resolve("blog.bob")
            assert hostile.served > served, "the victim did not ask the hostile node again"
            assert found.ident == second and "version 2" in found.chain[-1]
            assert names.refused == refused + 1
            resolved = await _cli_resolve("blog.bob", victim.config.data_dir)
            assert resolved["ident"] == second

            # A forgery: version 2's bytes pointing at the forger's site, with a higher
            # sequence number, under version 2's signature. Not accepted: with nothing
            # valid left in the DHT the name names nothing, never the forger's site.
            value = v2.value.replace(public_key_from_site_id(second),
                                     public_key_from_site_id(forger))
            assert value != v2.value
            hostile.serve(SignedItem(v2.public_key, salt, v2.seq + 10, value, v2.signature))
            await wait_until(lambda: _looked_up_again(names, "blog.bob"), TIMEOUT,
                             "the victim's cached record to expire")
            served = hostile.served
            with pytest.raises(UnknownName, match="not published"):
                await names.resolve("blog.bob")
            assert hostile.served > served, "the victim did not ask the hostile node again"
            # Version 2 stays the floor: a replay of 1 is refused even now.
            newest = names.cache.newest(Query(bob.public_key, "blog"))
            assert newest is not None and newest.version == 2
    finally:
        transport.close()
