"""Volunteer mirrors: nodes that mirror signed sites whose origin asks for help, and the
origin's side, which finds volunteers in the DHT and sends visitors to them.

A volunteer pins a site it mirrors for a lease (``NodeConfig.mirror_lease``), renewed by each
request for help, so the disk quota does not evict it mid-crowd. Which volunteers are asked
and where visitors go is ``policy.volunteers``'.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from ..config import NodeConfig
from ..content import pointer as ptr
from ..errors import NotFound, UsageError
from ..http.peer_client import PeerClient
from ..policy import propagation
from ..policy import retention as retention_rule
from ..policy import volunteers as rule
from ..swarm.engine import Swarm
from .persistence import Persistence
from .resolver import Resolver
from .retention import Retention

log = logging.getLogger(__name__)


class Volunteer:
    """Mirroring for others, and asking others to mirror.

    ``gateway`` gives this node's gateway base URL, as load reports name it."""

    def __init__(self, config: NodeConfig, swarm: Swarm, peers: PeerClient, disk: Persistence,
                 resolver: Resolver, retention: Retention, held: Callable[[str], bool],
                 gateway: Callable[[], str]) -> None:
        self._config = config
        self._swarm = swarm
        self._peers = peers
        self._disk = disk
        self._resolver = resolver
        self._retention = retention
        self._held = held
        self._gateway = gateway

    async def mirror(self, site_id: str) -> ptr.Pointer:
        """Volunteer: start mirroring a site that asked for help (signed sites only).

        The site is pinned while mirrored, so the quota does not evict it mid-crowd."""
        if not self._config.volunteer:
            raise UsageError("this node is not a volunteer mirror")
        pointer = await self._resolver.refresh_pointer(site_id)
        if pointer is None:
            raise NotFound(f"no signed pointer for site {site_id}; nothing to mirror")
        await self._resolver.open_site(site_id)
        record = self._disk.state.sites[site_id]
        if not record.pinned or record.mirrored_until:  # never take over a user's own pin
            self._retention.set_pinned(site_id, True)
            record.mirrored_until = time.time() + self._config.mirror_lease
        return pointer

    def end_mirror_leases(self) -> None:
        """Volunteer: a site nobody asked help for within the lease is no longer pinned (the
        disk quota may then evict it)."""
        leases = {sid: r.mirrored_until for sid, r in self._disk.state.sites.items()}
        for site_id in retention_rule.expired_leases(leases, time.time()):
            log.info("volunteer: %s no longer needs help; unpinned", site_id[:12])
            self._retention.set_pinned(site_id, False)

    async def load_report(self) -> dict[str, Any]:
        """What a volunteer tells origins: its load and the versions it holds."""
        stats = await self._swarm.statistics()
        capacity = self._config.upload_limit
        sites = {sid: r.pointer.version for sid, r in self._disk.state.sites.items()
                 if self._held(r.pointer.infohash.hex())}
        return {"gateway": self._gateway(),
                "upload_rate": stats.upload_rate, "capacity": capacity,
                "load": round(stats.upload_rate / capacity, 3) if capacity else None,
                "sites": sites}

    async def ask_for_help(self, site_id: str, wanted: int = 3) -> list[dict[str, Any]]:
        """For an origin in need: find volunteers in the DHT, ask the least loaded to mirror
        the site, and return the gateways that hold its current version, least loaded first."""
        sites = self._disk.state.sites
        record = sites.get(site_id)
        if record is None and await self._resolver.refresh_pointer(site_id) is not None:
            record = sites.get(site_id)
        if record is None:
            raise NotFound(f"no signed pointer for site {site_id} was found")
        volunteers = await self._swarm.find_peers(propagation.VOLUNTEERS_KEY,
                                                  self._config.timings.holders_lookup_timeout)
        me = self._resolver.peer_endpoint
        reports = await self._peers.loads([v for v in volunteers if v != me])
        current = record.pointer.version
        ready = rule.holding(reports, site_id, current)
        asked = rule.to_ask(reports, site_id, current, wanted)
        if asked:
            answers = await asyncio.gather(*(self._peers.ask_help(tuple(r["endpoint"]), site_id)
                                             for r in asked))
            # A volunteer answers once it holds the version it names: usable at once.
            ready += rule.took(asked, answers, current)
        return [{"mirror": f"{r['gateway']}/s/{site_id}", "load": r["load"],
                 "version": current} for r in rule.ranked(ready)]
