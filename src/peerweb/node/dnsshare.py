"""The DNS resolver's view of the swarm and the peer port (``peerweb.dns.service.Sharing``).

A holder of a validated RRset announces its peer port in the DHT under the RRset's share
key; a node whose upstreams fail looks the key up and asks those peer ports for the proof
(``GET /peerweb/v1/rrset/<name>/<type>``), which it validates itself.
"""

from __future__ import annotations

from collections.abc import Callable

from ..http.peer_client import PeerClient
from ..swarm.engine import Swarm

Endpoint = tuple[str, int]


class NodeSharing:
    def __init__(self, swarm: Swarm, peers: PeerClient, peer_port: Callable[[], int]) -> None:
        self._swarm = swarm
        self._peers = peers
        self._peer_port = peer_port

    def announce(self, key: bytes) -> None:
        port = self._peer_port()
        if port and self._swarm.session is not None:
            self._swarm.announce(key, port)

    async def holders(self, key: bytes, timeout: float) -> list[Endpoint]:
        if self._swarm.session is None:
            return []
        return await self._swarm.find_peers(key, timeout)

    async def fetch(self, endpoint: Endpoint, qname: str, qtype: str) -> bytes | None:
        return await self._peers.fetch_rrset(endpoint, qname, qtype)
