"""What a node keeps: the disk quota, superseded versions, idle torrents in metered mode, and
pins. The decisions are ``policy.retention``'s; this applies them to the held snapshots."""

from __future__ import annotations

import logging

from ..config import NodeConfig
from ..errors import NotFound
from ..policy import retention as rule
from ..swarm.engine import Swarm
from .persistence import Persistence
from .snapshots import SnapshotStore

log = logging.getLogger(__name__)


class Retention:
    """Evicts and pauses snapshots of ``store``; ``quota`` is set at ``Node.start``."""

    def __init__(self, config: NodeConfig, swarm: Swarm, disk: Persistence,
                 store: SnapshotStore) -> None:
        self._config = config
        self._swarm = swarm
        self._disk = disk
        self._store = store
        self.quota = 0
        """Bytes of visited (neither published nor pinned) snapshots to keep."""

    def protected(self) -> set[str]:
        """Snapshots never evicted: what this node publishes, and pinned sites."""
        state = self._disk.state
        return rule.protected((r.infohash for r in state.published.values()),
                              (r.pointer.infohash.hex() for r in state.sites.values()
                               if r.pinned))

    def enforce_quota(self) -> list[str]:
        """Evict the least recently used visited snapshots until the cache fits the quota.

        The most recently used snapshot stays even when it alone exceeds the quota: the
        visitor is looking at it. Returns the evicted info-hashes.
        """
        keep = self.protected()
        sizes = {s.tid: int(s.handle.status().total_wanted_done)
                 for s in self._store.all() if s.tid not in keep}
        evicted = rule.to_evict(sizes, self._store.last_used, self.quota)
        for tid in evicted:
            self._store.evict(tid, "disk quota")
        return evicted

    def drop_superseded(self, tid: str) -> None:
        """Once a site's current version is complete, older ones go (unless pinned)."""
        snapshot = self._store.get(tid)
        # "Finished" also means "nothing more wanted", as for a version held before its
        # unchanged files are in place: only a complete copy replaces the old one.
        if snapshot is None or not snapshot.handle.status().is_seeding:
            return
        snapshot.handle.set_max_connections(-1)  # complete: open to every peer again
        keep = self.protected()
        for record in self._disk.state.sites.values():
            versions = {entry.infohash: entry.version for entry in record.history}
            for old in rule.superseded(tid, record.pointer.infohash.hex(), record.pinned,
                                       list(versions), self._store, keep):
                log.info("dropping v%d of %s: v%d is complete", versions[old],
                         record.pointer.site_id[:12], record.pointer.version)
                self._store.evict(old, "superseded")

    def pause_idle(self, now: float) -> None:
        """Metered mode: stop the torrents of visited sites nobody is looking at (``now``:
        ``time.monotonic``)."""
        held = list(self._store)
        busy = {tid for tid in held if self._swarm.reading(tid)}
        for tid in rule.idle_to_pause(self._store.last_used, held, self.protected(),
                                      self._store.paused, busy, now,
                                      self._config.metered_idle):
            log.info("metered: pausing %s (idle %.0f s)", tid[:12],
                     now - self._store.last_used.get(tid, 0.0))
            self._store.pause(tid)

    def set_pinned(self, site_id: str, pinned: bool) -> None:
        """Pinned sites are kept whatever the disk quota."""
        record = self._disk.state.sites.get(site_id)
        if record is None:
            raise NotFound(f"this node does not know site {site_id}; visit it first")
        record.pinned = pinned
        record.mirrored_until = 0.0  # an explicit pin or unpin ends any mirror lease
        record.mirrored_since = 0.0
        self._disk.save_state_soon()
        tid = record.pointer.infohash.hex()
        if pinned and tid in self._store.paused:
            self._store.resume(tid)  # metered mode seeds pinned sites
