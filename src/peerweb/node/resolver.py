"""Which version of a site a node serves: signed pointers from the DHT, from pushes, and from
the holders of a site, never going back a version.

A site known here is served at once and its pointer refreshed behind (stale-while-revalidate,
``Timings.pointer_fresh``); the watch loop polls the DHT for held sites
(``propagation.poll_interval``). A new version is pushed on to a few other holders, and a
holder fetches it at once (only the files that changed). Holders announce their peer port
under the site's holders key, so that pushes and lookups find them.

Pushes are someone else's idea (``policy.admission``): each source address has a token
bucket, and a pushed pointer is kept only for a site this node knows or asked about a moment
ago. One kept for a site not yet visited is *unconfirmed*: before a visit is served from it,
the DHT and the site's holders are asked, so a genuine but superseded pointer pushed to a
fresh node cannot roll its first visit back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from ..config import NodeConfig
from ..content import pointer as ptr
from ..content.identity import public_key_from_site_id
from ..errors import NotFound, PeerwebError, SwarmTimeout
from ..http.peer_client import PeerClient
from ..policy import admission, cooldowns, propagation, versions
from ..policy import retention as retention_rule
from ..policy.propagation import Endpoint
from ..swarm.engine import Swarm
from . import state
from .jobs import Jobs
from .persistence import Persistence
from .snapshots import Snapshot, SnapshotStore

log = logging.getLogger(__name__)


class Resolver:
    """Pointers of the sites this node knows, and the holders of each.

    ``announce_soon`` is set when there is something new to announce (a snapshot, a port)."""

    def __init__(self, config: NodeConfig, swarm: Swarm, peers: PeerClient, jobs: Jobs,
                 disk: Persistence, store: SnapshotStore, announce_soon: asyncio.Event) -> None:
        self._config = config
        self._timings = config.timings
        self._swarm = swarm
        self._peers = peers
        self._jobs = jobs
        self._disk = disk
        self._store = store
        self._announce_soon = announce_soon
        self._peer_port = 0
        self._refreshing: dict[str, asyncio.Task[ptr.Pointer | None]] = {}
        self._checked: dict[str, float] = {}
        """When each site's pointer was last looked up (``time.monotonic``)."""
        self._next_poll: dict[str, float] = {}
        self._holders: dict[str, tuple[float, list[Endpoint]]] = {}
        self._refreshed: dict[str, tuple[float, list[Endpoint]]] = {}
        """Per site: this holder's own list of other holders, refreshed at each announce
        and forwarded to without a lookup (``propagation.must_look_up(warm=True)``)."""
        self._holder_shards: dict[str, int] = {}
        """The holders shard this node announces each site under, drawn once per site for
        the life of the process, moved only when the site's count changes
        (``propagation.reshard``)."""
        self._shard_counts: dict[str, int] = {}
        """Per site: how many holders shards this node reckons the site uses, from what its
        lookups found (``propagation.holder_shards``; ``HOLDER_SHARDS`` until one did)."""
        self._estimates: dict[str, int] = {}
        """Per site: holders its last lookup suggests (``propagation.holder_estimate``),
        which stretches the poll of a large site (``propagation.poll_interval``)."""
        self._pushes = admission.TokenBucket(admission.PUSH_RATE, admission.PUSH_BURST)
        self.volunteer_shard = propagation.volunteer_shard()
        """The volunteers shard this node announces under if it is a volunteer, kept for
        the life of the process (``propagation.VOLUNTEER_SHARDS``)."""

    @property
    def peer_port(self) -> int:
        return self._peer_port

    @peer_port.setter
    def peer_port(self, port: int) -> None:
        self._peer_port = port
        self._announce_soon.set()  # now there is a port to announce

    @property
    def peer_endpoint(self) -> Endpoint:
        """This node's peer service as others find it in the DHT."""
        return self._config.listen[0], self._peer_port

    def seeds(self, site_id: str) -> bool:
        """Whether this node offers a site to others (a metered node: only pinned and own)."""
        record = self._disk.state.sites.get(site_id)
        return retention_rule.seeds(self._config.metered, site_id in self._disk.state.published,
                                    record is not None and record.pinned)

    # -- pointers --------------------------------------------------------------------------

    def admit_push(self, address: str, now: float) -> float:
        """A push from ``address`` at ``now`` (``time.monotonic``): 0 if it may go on, else the
        seconds it should wait (its token bucket is empty)."""
        if self._pushes.take(address, now):
            return 0.0
        return max(self._pushes.retry_after(address, now), 1e-3)

    def accept_pointer(self, candidate: ptr.Pointer, force: bool = False,
                       source: Endpoint | None = None, unsolicited: bool = False,
                       holders: Sequence[Endpoint] = (), planned: bool = False,
                       forward: bool = True) -> bool:
        """Keep ``candidate`` if it is newer than what we hold; never go back a version.

        ``force`` replaces a pointer of the same version (our own re-signed pointer). A new
        version is pushed on to other holders (not back to ``source``, who sent it), unless
        ``forward`` is False (the publisher's own, which ``push_wave`` sends).
        ``unsolicited``: pushed to the peer port, kept only for a site known here or asked
        about a moment ago (``admission.store_unsolicited``). ``holders``: other holders
        the push named, to forward to (``_push``); ``planned``: this node's share of a
        planned flood, forwarded to as such (``forward_share``)."""
        site_id = candidate.site_id
        sites = self._disk.state.sites
        record = sites.get(site_id)
        current = record.pointer if record else None
        if unsolicited and not admission.store_unsolicited(
                record is not None, self._asked_at(site_id), time.monotonic()):
            log.debug("ignored a pushed pointer for %s: not a site this node knows",
                      site_id[:12])
            return False
        if not versions.pointer_update(current, candidate, force):
            if current is not None and candidate.version < current.version:
                log.info("ignored pointer v%d for %s: v%d already seen", candidate.version,
                         site_id[:12], current.version)
            return False
        if record is None:
            record = sites[site_id] = state.SiteRecord(candidate, last_used=time.time(),
                                                       unconfirmed=unsolicited)
            self._disk.save_state_soon()  # a site learned is not forgotten by a crash
        else:
            record.pointer = candidate
        record.remember(candidate, time.time())
        self._disk.mark_dirty()
        if current is not None and current.infohash != candidate.infohash:
            log.info("site %s moved to v%d", site_id[:12], candidate.version)
            self._disk.save_state_soon()
            if planned:
                self._jobs.spawn(self.forward_share(candidate, source, holders))
            elif forward:
                self._jobs.spawn(self._push(candidate, source, holders))
            if (self._store.held_versions(site_id) and site_id not in self._disk.state.published
                    and self.seeds(site_id)):
                # A holder fetches the new version at once (only the files that changed),
                # so it can serve it, and the old one goes when the new one is complete.
                self._jobs.spawn(self._follow(candidate))
        return True

    async def _follow(self, pointer: ptr.Pointer) -> None:
        await self._store.open(pointer.infohash.hex(), pointer.site_id)

    def held_pointer(self, site_id: str) -> ptr.Pointer | None:
        """The newest pointer held for a site, None if none is."""
        record = self._disk.state.sites.get(site_id)
        return record.pointer if record is not None else None

    def signed_pointer(self, site_id: str) -> ptr.Pointer:
        """The newest signed pointer held for a site, as mirrors hand it to visitors' workers."""
        public_key_from_site_id(site_id)  # BadAddress for a malformed id
        record = self._disk.state.sites.get(site_id)
        if record is None:
            raise NotFound(f"this node does not hold site {site_id}")
        return record.pointer

    async def refresh_pointer(self, site_id: str) -> ptr.Pointer | None:
        """Ask the DHT for the site's newest pointer; one query per site at a time."""
        return await self._jobs.single_flight(self._refreshing, site_id,
                                              lambda: self._refresh(site_id))

    def _asked_at(self, site_id: str) -> float | None:
        """When this node last looked a site up itself (now, if a lookup is running)."""
        if site_id in self._refreshing:
            return time.monotonic()
        return self._checked.get(site_id)

    async def _refresh(self, site_id: str) -> ptr.Pointer | None:
        public_key = public_key_from_site_id(site_id)
        # A pointer known only from a push is checked with the holders too, whatever the
        # DHT says: either may hold a newer version than the one pushed.
        known = self._disk.state.sites.get(site_id)
        thorough = known is not None and known.unconfirmed
        if not await self._swarm.wait_dht_ready(timeout=min(self._timings.dht_get_timeout,
                                                            self._config.fetch_timeout)):
            raise SwarmTimeout("this node has no DHT peers yet; check --bootstrap")
        found = None
        # For a site we do not know, keep asking (backing off) for a bounded time
        # (cooldowns.lookup_wait).
        loop = asyncio.get_running_loop()
        patience = loop.time() + min(self._timings.dht_find_patience,
                                     self._config.fetch_timeout)
        for attempt in range(self._timings.dht_get_max_attempts):
            found = await self._swarm.get_pointer(public_key, self._timings.dht_get_timeout)
            if found is not None or site_id in self._disk.state.sites:
                break
            delay = cooldowns.lookup_wait(attempt, loop.time(), patience,
                                          self._timings.dht_get_attempts)
            if delay is None:
                break
            await asyncio.sleep(delay)
        if found is None or thorough:
            # The publisher may be offline and its DHT item expired: holders keep the
            # signed pointer and hand it over themselves.
            offered = await self._peers.fetch_any(await self.holders(site_id), site_id)
            for candidate in offered:
                if ptr.is_newer(candidate, found):
                    found = candidate
        self._checked[site_id] = time.monotonic()
        if found is not None:
            self.accept_pointer(found)
        record = self._disk.state.sites.get(site_id)
        if record is not None and record.unconfirmed:
            record.unconfirmed = False
            self._disk.mark_dirty()
        return record.pointer if record else None

    async def poll(self, now: float) -> None:
        """The safety net under pushes: check the DHT for new versions of the held sites due
        a check (``now``: ``time.monotonic``), more often for sites in use."""
        published = self._disk.state.published
        for site_id, record in list(self._disk.state.sites.items()):
            if site_id in published or not self._store.held_versions(site_id):
                continue
            if not cooldowns.poll_due(self._next_poll.get(site_id, 0.0), now):
                continue
            idle = max(0.0, time.time() - record.last_used)
            self._next_poll[site_id] = now + propagation.poll_interval(
                idle, holders=self._estimates.get(site_id, 0))
            self._checked[site_id] = now
            with contextlib.suppress(PeerwebError):
                await self.refresh_pointer(site_id)

    # -- visits ----------------------------------------------------------------------------

    async def open_site(self, site_id: str,
                        admit: Callable[[int], None] | None = None) -> Snapshot:
        """The snapshot to serve for a site: the cached version at once, refreshed behind
        (``admit``: as for ``SnapshotStore.open``)."""
        public_key_from_site_id(site_id)  # BadAddress for a malformed id
        record = self._visit_site(site_id)
        if record is None or record.unconfirmed:
            found = await self.refresh_pointer(site_id)
            if found is None:
                raise NotFound(
                    f"no signed pointer for site {site_id} was found in the DHT; the publisher "
                    "and every node holding it may be offline"
                )
            record = self._disk.state.sites[site_id]
            record.last_used = time.time()
        return await self._store.open(record.pointer.infohash.hex(), site_id, admit=admit)

    def _visit_site(self, site_id: str) -> state.SiteRecord | None:
        """A visit to a known site: mark it used and check for a newer version now and then."""
        record = self._disk.state.sites.get(site_id)
        if record is None or record.unconfirmed:
            return None
        if (site_id not in self._disk.state.published
                and not cooldowns.pointer_fresh(self._checked.get(site_id, 0.0),
                                                time.monotonic(), self._timings.pointer_fresh)):
            self._checked[site_id] = time.monotonic()
            self._jobs.spawn(self.refresh_pointer(site_id))
        record.last_used = time.time()
        return record

    def serving(self, site_id: str | None, tid: str) -> bool:
        """Whether a visit to the site (or, without ``site_id``, to the snapshot) is served
        from snapshot ``tid`` right now; counts as a visit, as opening it would."""
        if site_id is not None:
            record = self._visit_site(site_id)
            if record is None or record.pointer.infohash.hex() != tid:
                return False
        return self._store.visit(tid) is not None

    # -- holders ---------------------------------------------------------------------------

    def shard_count(self, site_id: str) -> int:
        return self._shard_counts.get(site_id, propagation.HOLDER_SHARDS)

    def holder_shard(self, site_id: str) -> int:
        shard = self._holder_shards.get(site_id)
        if shard is None:
            shard = self._holder_shards[site_id] = propagation.holder_shard(
                shards=self.shard_count(site_id))
        return shard

    def _counted(self, site_id: str, found: Sequence[int]) -> None:
        """What a lookup says of the site's size (``found``: holders each shard named): the
        shard count (this node's own shard moved with it) and the estimate."""
        old = self.shard_count(site_id)
        new = propagation.holder_shards(found, old)
        self._estimates[site_id] = propagation.holder_estimate(found, old)
        if new == old:
            return
        self._shard_counts[site_id] = new
        own = self._holder_shards.get(site_id)
        if own is not None:
            self._holder_shards[site_id] = propagation.reshard(own, old, new)
        log.info("holders of %s: %d shards (was %d; found %s)", site_id[:12], new, old,
                 list(found))

    async def holders(self, site_id: str, max_age: float | None = None,
                      grace: float | None = None) -> list[Endpoint]:
        """Peer ports of nodes that announced they hold a site (a list at most ``max_age``
        seconds old). A new lookup asks this node's own holders shard and one other
        (``propagation.holder_refresh``), all shards if they name too few
        (``holders_widen``), each round gathering answers for ``grace`` after the first
        (see Dht.find_peers_many)."""
        cached = self._holders.get(site_id)
        if max_age is None:
            max_age = self._timings.holders_ttl
        if cached is not None and cooldowns.still_fresh(cached[0], time.monotonic(), max_age):
            return cached[1]
        public_key = public_key_from_site_id(site_id)
        loop = asyncio.get_running_loop()
        # Both rounds together stay within holders_lookup_timeout: a shard nobody announced
        # under names nobody, and its lookup runs to the deadline.
        deadline = loop.time() + self._timings.holders_lookup_timeout
        shards = self.shard_count(site_id)
        tried = propagation.holder_refresh(
            self.holder_shard(site_id), shards=shards,
            ahead=propagation.looks_full(self._estimates.get(site_id, 0), shards))
        each = await self._swarm.find_peers_each(
            [propagation.holders_key(public_key, s) for s in tried],
            min(self._timings.holders_probe_timeout, self._timings.holders_lookup_timeout),
            grace)
        me = {self.peer_endpoint}
        self._counted(site_id, propagation.counted_shards(
            tried, [len(named - me) for named in each], shards))
        found = sorted(set().union(*each))
        others = len(set(found) - me)
        more = propagation.holders_widen(others, tried, shards)
        left = deadline - loop.time()
        if more and left > 0:
            # And the one key of before, where nodes of the previous version announce.
            keys = [propagation.holders_key(public_key, s) for s in more]
            found = sorted({*found, *await self._swarm.find_peers_many(
                [*keys, propagation.holders_key(public_key)], left, grace)})
        self._holders[site_id] = (time.monotonic(), found)
        return found

    async def refresh_holders(self, site_id: str) -> None:
        """This holder's own list of the site's other holders, looked up now (at its
        announce) and kept for forwarding new versions for ``FORWARD_LIST_AGE``."""
        found = await self.holders(site_id, max_age=0.0)
        self._refreshed[site_id] = (time.monotonic(), found)

    async def _push(self, pointer: ptr.Pointer, exclude: Endpoint | None,
                    named: Sequence[Endpoint] = ()) -> None:
        """Hand a newer pointer to a few other holders of the site (each forwards it once),
        naming in each push a few more holders it knows.

        To the holders the push named (and a fresh cached list) without a DHT lookup, unless
        they are too few or this node is one of the forwarders that look up anyway
        (``propagation.must_look_up``). What a push named is used for this forward only,
        never cached: ``holders()`` answers from the DHT, not from what peers claim."""
        me, skip = self.peer_endpoint, [exclude] if exclude else []
        remembered, warm = self._known_holders(pointer.site_id)
        known = [*named, *remembered]
        usable = len(set(known) - {me, *skip})
        if propagation.must_look_up(usable, warm=warm):
            known = [*await self.holders(pointer.site_id), *named]
        targets = propagation.push_targets(known, me, skip)
        known = [h for h in known if h != me]  # the receiver knows who sent it
        if not targets:
            return
        results = await asyncio.gather(*(
            self._peers.push(t, pointer, self._peer_port, propagation.holders_to_send(known, t))
            for t in targets))
        log.info("pushed v%d of %s to %d holders (%d took it as news)", pointer.version,
                 pointer.site_id[:12], len(targets), sum(results))

    def _known_holders(self, site_id: str) -> tuple[list[Endpoint], bool]:
        """The holders this node already knows of (a fresh lookup's answer, its own list
        refreshed at its last announce), and whether that own list is warm enough to forward
        to without a lookup."""
        now = time.monotonic()
        known: list[Endpoint] = []
        cached = self._holders.get(site_id)
        if cached is not None and cooldowns.still_fresh(cached[0], now,
                                                        self._timings.holders_ttl):
            known += cached[1]
        own = self._refreshed.get(site_id)
        warm = own is not None and cooldowns.still_fresh(own[0], now,
                                                         propagation.FORWARD_LIST_AGE)
        if own is not None and warm:
            known += own[1]
        return known, warm

    # -- planned pushes (propagation.plan_pushes) -------------------------------------------

    async def push_wave(self, pointer: ptr.Pointer) -> None:
        """The publisher's pushes of its new version: to ``PUBLISH_WAVE`` holders itself,
        each handed a share of the others to forward, from the list its publish just looked
        up; then once more to those a lookup that gathers for the full ``peers_grace``
        finds and that list missed (the publish gathered for 50 ms only). The lookup runs
        beside the first wave, not after it: a holder it alone found waited ~1.5 s."""
        site_id, me = pointer.site_id, self.peer_endpoint
        # A warm list (refreshed at this node's last announce) goes out at once; the lookup
        # beside the wave finds whom it lacks.
        known, warm = self._known_holders(site_id)
        usable = sorted(set(known) - {me})
        first = usable if warm and usable else await self.holders(site_id)
        _, found = await asyncio.gather(
            self._send_plan(pointer, propagation.plan_pushes(
                first, me, fanout=propagation.PUBLISH_WAVE)),
            self.holders(site_id, max_age=0))
        missed = set(found) - set(first)
        if missed:
            await self._send_plan(pointer, propagation.plan_pushes(
                sorted(missed), me, fanout=propagation.PUBLISH_WAVE))

    async def forward_share(self, pointer: ptr.Pointer, source: Endpoint | None,
                            share: Sequence[Endpoint]) -> None:
        """A new version handed to this node with its ``share`` of the holders: pushed on to
        them, planned again; then, for a few receivers (``propagation.looks_further``), to
        the holders a lookup finds beyond the share, whom the publisher's list may lack."""
        me, skip = self.peer_endpoint, [source] if source else []
        await self._send_plan(pointer, propagation.plan_pushes(share, me, skip))
        if propagation.looks_further():
            found = set(await self.holders(pointer.site_id)) - set(share)
            await self._send_plan(pointer, propagation.plan_pushes(sorted(found), me, skip))

    async def _send_plan(self, pointer: ptr.Pointer, plan: list[propagation.Push]) -> None:
        """Hand each target its share; a share whose target did not get it (gone, or its
        push limit reached) is planned again from here, so it is not lost with the target."""
        if not plan:
            return
        results = await asyncio.gather(*(
            self._peers.hand_over(target, pointer, self._peer_port, share)
            for target, share in plan))
        log.info("pushed v%d of %s to %d holders, %d more in their shares (%d took it as "
                 "news)", pointer.version, pointer.site_id[:12], len(plan),
                 sum(len(share) for _, share in plan), sum(r is True for r in results))
        lost = [h for (_, share), got in zip(plan, results, strict=True) if got is None
                for h in share]
        if lost:
            await self._send_plan(pointer, propagation.plan_pushes(
                lost, self.peer_endpoint, fanout=len(lost)))

    async def announce_loop(self) -> None:
        """Announce this node's peer port under the holders key of every site it holds (and,
        a volunteer, under its volunteers shard's key).

        Not under the one volunteers key of before too: that would keep the hot spot the
        shards remove (every volunteer's announce at the same 8 DHT nodes), and no release
        has shipped origins that look only there; origins of this version still read it when
        they widen, for volunteers of the previous one."""
        while True:
            if self._peer_port and await self._swarm.wait_dht_ready(
                    timeout=self._timings.watch_tick):
                if self._config.volunteer:
                    self._swarm.announce(propagation.volunteer_key(self.volunteer_shard),
                                         self._peer_port)
                for site_id in list(self._disk.state.sites):
                    if self._store.held_versions(site_id) and self.seeds(site_id):
                        key = propagation.holders_key(public_key_from_site_id(site_id),
                                                      self.holder_shard(site_id))
                        self._swarm.announce(key, self._peer_port)
                        self._jobs.spawn(self.refresh_holders(site_id))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._timings.holder_announce_interval):
                    await self._announce_soon.wait()
            self._announce_soon.clear()
