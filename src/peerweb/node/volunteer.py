"""Volunteer mirrors: nodes that mirror signed sites whose origin asks for help, and the
origin's side, which finds volunteers in the DHT and sends visitors to them.

A volunteer pins a site it mirrors for a lease (``NodeConfig.mirror_lease``), renewed by each
request for help, so the disk quota does not evict it mid-crowd. Anyone can ask, so it agrees
only to what it can give (``policy.volunteers``): a site that fits its disk quota beside what
it already keeps (checked once the metadata is in, before any file is downloaded), while its
upload has room, for at most a few sites per requester address and a few requests a minute
(``policy.admission``); and a chain of renewed leases ends after ``MAX_LEASE_RENEWALS``
leases. Which volunteers are asked and where visitors go is ``policy.volunteers``' too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from ..config import NodeConfig
from ..content import pointer as ptr
from ..errors import NotFound, PeerwebError, StorageError, UsageError
from ..http.peer_client import PeerClient
from ..policy import admission, propagation
from ..policy import retention as retention_rule
from ..policy import volunteers as rule
from ..policy.propagation import Endpoint
from ..swarm.engine import Swarm
from .persistence import Persistence
from .resolver import Resolver
from .retention import Retention
from .snapshots import SnapshotStore, torrent_size

log = logging.getLogger(__name__)


class Volunteer:
    """Mirroring for others, and asking others to mirror.

    ``gateway`` gives this node's gateway base URL, as load reports name it."""

    def __init__(self, config: NodeConfig, swarm: Swarm, peers: PeerClient, disk: Persistence,
                 resolver: Resolver, retention: Retention, store: SnapshotStore,
                 gateway: Callable[[], str]) -> None:
        self._config = config
        self._store = store
        self._held: Callable[[str], bool] = store.__contains__
        self._asks = admission.TokenBucket(admission.HELP_RATE, admission.HELP_BURST)
        self._requesters: dict[str, set[str]] = {}
        """Per requester address: the sites mirrored at its request (leases still live)."""
        self._swarm = swarm
        self._peers = peers
        self._disk = disk
        self._resolver = resolver
        self._retention = retention
        self._gateway = gateway

    async def mirror(self, site_id: str, requester: str | None = None) -> ptr.Pointer:
        """Volunteer: start mirroring a site that asked for help (signed sites only).

        The site is pinned while mirrored, so the quota does not evict it mid-crowd.
        ``requester``: the address asking (None: this node's own user, unbounded). Refuses
        (429) a requester past its share, (503) while upload is near capacity, and (507) a
        site that does not fit the disk quota, removing what it fetched to find out."""
        if not self._config.volunteer:
            raise UsageError("this node is not a volunteer mirror")
        now = time.monotonic()
        if requester is not None:
            asked_for = self._live(requester)
            if not self._asks.take(requester, now):
                raise _refusal("too many requests for help from this address; try later", 429)
            if not rule.requester_may_ask(asked_for, site_id):
                raise _refusal(f"this volunteer already mirrors {len(asked_for)} sites for "
                               "this address; it helps others too", 429)
        known = site_id in self._disk.state.sites
        pointer = await self._resolver.refresh_pointer(site_id)
        if pointer is None:
            raise NotFound(f"no signed pointer for site {site_id}; nothing to mirror")
        tid = pointer.infohash.hex()
        held = self._held(tid)
        if not held:
            stats = await self._swarm.statistics()
            if not rule.has_upload_room(stats.upload_rate, self._config.upload_limit):
                self._forget_site(site_id, known)
                raise _refusal("this volunteer's upload is at capacity; ask another", 503)
        try:
            await self._resolver.open_site(site_id, admit=lambda size: self._check_disk(tid, size))
        except StorageError:
            self._forget_site(site_id, known)
            raise
        record = self._disk.state.sites[site_id]
        if not record.pinned or record.mirrored_until:  # never take over a user's own pin
            if not record.pinned:  # held as a visit: it must fit beside the pins from now on
                snapshot = self._store.get(tid)
                if snapshot is not None:
                    self._check_disk(tid, torrent_size(snapshot.handle))
            since, until = rule.renew_lease(record.mirrored_since, record.mirrored_until,
                                            time.time(), self._config.mirror_lease)
            self._retention.set_pinned(site_id, True)
            record.mirrored_since, record.mirrored_until = since, until
            if requester is not None:
                self._requesters.setdefault(requester, set()).add(site_id)
        return pointer

    def _check_disk(self, tid: str, size: int) -> None:
        """StorageError unless a snapshot of ``size`` bytes fits the quota beside everything
        the quota cannot evict (published and pinned snapshots, whole once complete)."""
        keep = self._retention.protected() - {tid}
        committed = sum(torrent_size(s.handle) for s in self._store.all() if s.tid in keep)
        quota = self._retention.quota
        if not rule.fits_disk(size, committed, quota):
            raise StorageError(f"this site needs {size} bytes; this volunteer keeps "
                               f"{committed} of its {quota} bytes of disk already")

    def _forget_site(self, site_id: str, known: bool) -> None:
        """A refused site this node learned of only to mirror it: forget it again."""
        record = self._disk.state.sites.get(site_id)
        if not known and record is not None and not self._store.held_versions(site_id):
            del self._disk.state.sites[site_id]
            self._disk.save_state_soon()

    def _live(self, requester: str) -> set[str]:
        """The sites still mirrored at ``requester``'s request (ended leases dropped)."""
        sites = self._disk.state.sites
        asked_for = {sid for sid in self._requesters.get(requester, set())
                     if sid in sites and sites[sid].mirrored_until}
        if asked_for:
            self._requesters[requester] = asked_for
        else:
            self._requesters.pop(requester, None)
        return asked_for

    def end_mirror_leases(self) -> None:
        """Volunteer: a site nobody asked help for within the lease is no longer pinned (the
        disk quota may then evict it)."""
        leases = {sid: r.mirrored_until for sid, r in self._disk.state.sites.items()}
        for site_id in retention_rule.expired_leases(leases, time.time()):
            log.info("volunteer: %s no longer needs help; unpinned", site_id[:12])
            self._retention.set_pinned(site_id, False)
            self._disk.state.sites[site_id].mirrored_since = 0.0

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
        """For an origin in need: find volunteers in the DHT, ask some of the least loaded to
        mirror the site (``policy.volunteers.to_ask``), and return the gateways that hold
        its current version, least loaded first."""
        sites = self._disk.state.sites
        record = sites.get(site_id)
        if record is None and await self._resolver.refresh_pointer(site_id) is not None:
            record = sites.get(site_id)
        if record is None:
            raise NotFound(f"no signed pointer for site {site_id} was found")
        reports = await self._peers.loads(await self.find_volunteers(wanted))
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


    async def find_volunteers(self, wanted: int) -> list[Endpoint]:
        """Volunteers' peer ports from the DHT: ``propagation.VOLUNTEER_PROBES`` shards at
        random, in parallel, then every other shard (and the unsharded key of before) only if
        those named fewer than ``wanted``."""
        me = self._resolver.peer_endpoint
        tried = propagation.volunteer_probes()
        found = await self._look_up([propagation.volunteer_key(s) for s in tried],
                                    self._config.timings.volunteer_probe_timeout)
        found.discard(me)
        more = propagation.volunteer_widen(len(found), wanted, tried)
        if more:
            keys = [propagation.volunteer_key(s) for s in more] + [propagation.VOLUNTEERS_KEY]
            found |= await self._look_up(keys, self._config.timings.holders_lookup_timeout)
            found.discard(me)
        return sorted(found)

    async def _look_up(self, keys: list[bytes], timeout: float) -> set[Endpoint]:
        answers = await asyncio.gather(*(self._swarm.find_peers(k, timeout) for k in keys))
        return {endpoint for answer in answers for endpoint in answer}


def _refusal(message: str, status: int) -> PeerwebError:
    """A request for help this volunteer declines, with the HTTP status the peer port sends."""
    error = PeerwebError(message)
    error.http_status = status
    return error
