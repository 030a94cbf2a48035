"""Nodes sharing a machine reach each other's peer ports from their own addresses.

A peer port admits at most ``PEER_PORT_PER_ADDRESS`` connections per source address. Nodes
of a testnet each listen on their own 127.0.0.x; their peer clients must connect from it
too, or every node's connections come from 127.0.0.1 and a popular holder (of a DNS proof,
a pointer) turns the 17th node away. bench/dns.py on 50 nodes answered 48% of names during
the outage that way, 100% with the binding.
"""

from __future__ import annotations

from dataclasses import replace

from peerweb.config import PEER_PORT_PER_ADDRESS, Network, NodeConfig
from peerweb.http.peer_client import PeerClient
from peerweb.swarm.settings import outgoing_host
from peerweb.tools.testnet import Testnet, write_sample_site

ASKERS = PEER_PORT_PER_ADDRESS + 4


def test_a_private_node_connects_from_its_listen_address_a_public_one_where_routed():
    private = NodeConfig(listen=("127.0.0.23", 0))
    assert outgoing_host(private) == "127.0.0.23"
    assert outgoing_host(replace(private, listen=("0.0.0.0", 0))) is None
    assert outgoing_host(replace(private, network=Network.PUBLIC)) is None


async def test_more_askers_than_one_address_may_hold_all_reach_one_holder(tmp_path):
    write_sample_site(tmp_path / "site", small_files=1, big_size=0)
    async with Testnet(1, root=tmp_path / "net") as net:
        holder = net.nodes[0]
        site = await holder.node.publish(tmp_path / "site", "site")
        endpoint = (holder.config.listen[0], holder.node.peer_port)

        async def ask_all(clients: list[PeerClient]) -> int:
            """Each client fetches the pointer and keeps its connection open, as the nodes
            of a testnet do while they ask one holder."""
            answered = 0
            for client in clients:
                pointer = await client.fetch(endpoint, site.site_id)
                answered += pointer is not None and pointer.version == site.version
            return answered

        bound = [PeerClient(f"127.0.0.{100 + i}") for i in range(ASKERS)]
        unbound = [PeerClient() for _ in range(ASKERS)]
        try:
            assert await ask_all(bound) == ASKERS
            # The same askers from one address: the holder admits only its per-address share.
            assert await ask_all(unbound) == PEER_PORT_PER_ADDRESS
        finally:
            for client in bound + unbound:
                await client.close()
