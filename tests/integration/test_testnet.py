"""Testnet(parallel=N): nodes started in batches form one private DHT, in index order."""

from __future__ import annotations

from peerweb.content.identity import public_key_from_site_id
from peerweb.tools.testnet import SEEDS, Testnet, node_host, write_sample_site


async def test_nodes_started_in_batches_are_in_order_and_find_each_others_pointers(tmp_path):
    write_sample_site(tmp_path / "site", small_files=1, big_size=0)
    async with Testnet(SEEDS + 6, root=tmp_path / "net", parallel=4) as net:
        assert [n.config.listen[0] for n in net.nodes] == [node_host(i) for i in
                                                           range(SEEDS + 6)]
        assert all([await n.node.swarm.dht_node_count() > 0 for n in net.nodes])
        site = await net.nodes[-1].node.publish(tmp_path / "site", "site")
        assert site.dht_stored > 0
        # A node of the first batch finds the last batch's pointer through the DHT.
        found = await net.nodes[SEEDS].node.swarm.get_pointer(
            public_key_from_site_id(site.site_id), 10.0)
        assert found is not None and found.version == site.version
