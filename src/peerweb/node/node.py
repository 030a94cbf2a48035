"""A peerweb node: the swarm engine, the sites it knows, and the jobs that keep them fresh.

The node owns every background task it starts (pointer refreshes, periodic re-puts, resume
data saves) and cancels them all on ``stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..config import NodeConfig
from ..content import pointer as ptr
from ..content.identity import KeyStore, public_key_from_site_id
from ..content.sitemap import SiteMap
from ..errors import (
    BadAddress,
    NotFound,
    PeerwebError,
    StorageError,
    SwarmTimeout,
    TooLarge,
    UsageError,
)
from ..http.peer_client import PeerClient
from ..policy import propagation, stepback
from ..policy.propagation import Endpoint
from ..swarm import build as bundle
from ..swarm.engine import (
    DISK_ADVICE,
    Swarm,
    is_pad_file,
    magnet_of,
    torrent_file_id,
    torrent_id,
)
from . import state
from .memcache import BytesLRU

log = logging.getLogger(__name__)
T = TypeVar("T")

# Small files are kept in memory once verified: most page assets are small and re-requested.
SMALL_FILE_LIMIT = 1024 * 1024
SMALL_CACHE_BYTES = 64 * 1024 * 1024
# Connections a torrent may use while fetching a new version's changed files.
UPDATE_CONNECTIONS = 2


MAX_KEPT_TORRENTS = 64
# The most a bundle of a snapshot's small files may hold (see Node.bundle).
BUNDLE_LIMIT = 4 * 1024 * 1024
_INFOHASH_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


@dataclass(frozen=True)
class Snapshot:
    """One torrent with its metadata: an immutable version of a site."""

    tid: str
    handle: Any
    sitemap: SiteMap
    sizes: tuple[int, ...]
    etags: tuple[str, ...]
    """Per-file validators: the BEP 52 merkle root where there is one (content-addressed)."""

    def file_complete(self, index: int) -> bool:
        return bool(self.handle.file_progress()[index] == self.sizes[index])


@dataclass(frozen=True)
class PublishResult:
    site_id: str
    version: int
    infohash: str
    magnet: str
    url: str
    files: int
    size: int
    dht_stored: int
    """How many DHT nodes accepted the pointer (0: the node re-puts it later)."""

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def magnet_for(site_id: str) -> str:
    """BEP 46 magnet link of a site."""
    return f"magnet:?xs=urn:btpk:{public_key_from_site_id(site_id).hex()}"


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.timings = config.timings
        self.data_dir = config.data_dir
        self.keys = KeyStore(self.data_dir / "keys")
        self.swarm = Swarm(config)
        self.state = state.NodeState()
        self.small_files = BytesLRU(SMALL_CACHE_BYTES)
        self.gateway_port = config.gateway[1]
        self.started = time.time()
        self._snapshots: dict[str, Snapshot] = {}
        self._torrent_files: dict[str, bytes] = {}
        # Torrents metered mode paused while idle (kept here: asking libtorrent for a
        # torrent's flags on every request waits on its busy network thread).
        self._idle_paused: set[str] = set()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="peerweb-write")
        self._opening: dict[str, asyncio.Task[Snapshot]] = {}
        self._refreshing: dict[str, asyncio.Task[ptr.Pointer | None]] = {}
        self._checked: dict[str, float] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_used: dict[str, float] = {}
        self.quota = 0
        self._state_dirty = False
        self._reput_soon = asyncio.Event()
        self.peers = PeerClient()
        self._peer_port = 0
        self._holders: dict[str, tuple[float, list[Endpoint]]] = {}
        self._announce_soon = asyncio.Event()
        self._next_poll: dict[str, float] = {}
        self._resume_pending: set[str] = set()
        self._stepped_back: set[str] = set()

    @property
    def peer_port(self) -> int:
        """Port of this node's peer service (set by whoever serves it; 0: none)."""
        return self._peer_port

    @peer_port.setter
    def peer_port(self, port: int) -> None:
        self._peer_port = port
        self._announce_soon.set()  # now there is a port to announce

    @property
    def peer_endpoint(self) -> Endpoint:
        """This node's peer service as others find it in the DHT."""
        return self.config.listen[0], self._peer_port

    # -- paths ---------------------------------------------------------------------------

    @property
    def content_dir(self) -> Path:
        return self.data_dir / "content"

    @property
    def resume_dir(self) -> Path:
        return self.data_dir / "resume"

    def gateway_url(self, site_id: str) -> str:
        return f"http://{site_id}.localhost:{self.gateway_port}/"

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        for folder in (self.data_dir, self.content_dir, self.resume_dir):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.state = state.load(self.data_dir / "state.json")
        self.quota = self.config.effective_quota()
        self.swarm.on_torrent_finished = self._on_finished
        self.swarm.on_file_completed = self._on_file_completed
        await self.swarm.start()
        self._restore()
        self._spawn(self._republish_loop())
        self._spawn(self._resume_loop())
        self._spawn(self._announce_loop())
        self._spawn(self._watch_loop())
        self._spawn(self._stepback_loop())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._save_all_resume()
        self._save_state()
        await asyncio.to_thread(self._writer.shutdown, wait=True)
        await self.peers.close()
        await self.swarm.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    async def _single_flight(self, running: dict[str, asyncio.Task[T]], key: str,
                             start: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run one job per key at a time; concurrent callers share its result. The job is
        shielded: a visitor who gives up does not cancel it for the others."""
        task = running.get(key)
        if task is None:
            task = self._spawn(start())
            running[key] = task
            task.add_done_callback(lambda _t: running.pop(key, None))
        return await asyncio.shield(task)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if isinstance(exc, PeerwebError):
                log.info("background job ended: %s", exc)
            else:
                log.error("background job failed", exc_info=exc)

    def _restore(self) -> None:
        """Re-add every torrent saved in resume data: no peers or recheck needed."""
        for path in sorted(self.resume_dir.glob("*.resume")):
            tid = path.stem
            try:
                # A v1 export is seeded from the files of the snapshot it was made from.
                folder = self.content_dir / self.state.exports.get(tid, tid)
                self.swarm.add_resume(path.read_bytes(), folder)
            except (PeerwebError, RuntimeError, OSError) as exc:
                log.warning("could not restore %s (%s); it will be fetched again", tid, exc)

    # -- background jobs -------------------------------------------------------------------

    async def _republish_loop(self) -> None:
        """Keep our own pointers in the DHT: at start, every ``reput_interval``, sooner on
        failure."""
        while True:
            if not await self.swarm.wait_dht_ready(timeout=self.timings.reput_interval):
                continue
            # Torrents added while the DHT was empty announced to nobody: announce them now.
            for snapshot in list(self._snapshots.values()):
                snapshot.handle.force_dht_announce()
            failed = False
            for site_id in list(self.state.published):
                record = self.state.sites.get(site_id)
                if record is not None:
                    stored = await self._put(site_id, record.pointer.infohash,
                                             record.pointer.version)
                    failed = failed or stored == 0
            with contextlib.suppress(TimeoutError):
                wait = self.timings.reput_retry if failed else self.timings.reput_interval
                async with asyncio.timeout(wait):
                    await self._reput_soon.wait()
            self._reput_soon.clear()

    async def _announce_loop(self) -> None:
        """Announce this node's peer port under the holders key of every site it holds."""
        while True:
            if self.peer_port and await self.swarm.wait_dht_ready(timeout=self.timings.watch_tick):
                if self.config.volunteer:
                    self.swarm.announce(propagation.VOLUNTEERS_KEY, self.peer_port)
                for site_id in list(self.state.sites):
                    if self._held_versions(site_id) and self._seeds(site_id):
                        key = propagation.holders_key(public_key_from_site_id(site_id))
                        self.swarm.announce(key, self.peer_port)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timings.holder_announce_interval):
                    await self._announce_soon.wait()
            self._announce_soon.clear()

    async def _stepback_loop(self) -> None:
        """Lower the upload of a published site while a crowd holds each of its pieces at
        least twice, and restore it when the crowd thins out (stepback.py)."""
        while True:
            await asyncio.sleep(self.timings.stepback_tick)
            current: set[str] = set()
            for site_id in list(self.state.published):
                record = self.state.sites.get(site_id)
                tid = record.pointer.infohash.hex() if record else ""
                handle = self.swarm.find(tid) if tid else None
                if handle is not None:
                    current.add(tid)
                    self._step_back_or_return(site_id, tid, handle)
            for tid in self._stepped_back - current:  # superseded by a new version
                self._stepped_back.discard(tid)
                handle = self.swarm.find(tid)
                if handle is not None:
                    handle.set_upload_limit(-1)

    def _step_back_or_return(self, site_id: str, tid: str, handle: Any) -> None:
        stepped = tid in self._stepped_back
        status = handle.status()
        if not status.is_seeding or (not stepped and status.num_peers < stepback.MIN_PEERS):
            return
        pieces = [peer.pieces for peer in handle.get_peer_info()]
        counts = stepback.availability(pieces, status.num_pieces)  # a seed holds them all
        if not stepped and stepback.should_step_back(counts, len(pieces)):
            limit = stepback.stepped_back_rate(int(status.upload_payload_rate))
            handle.set_upload_limit(limit)
            self._stepped_back.add(tid)
            log.info("%s: %d peers hold every piece at least %d times; upload lowered to "
                     "%d B/s", site_id[:12], len(pieces), stepback.HOLDERS, limit)
        elif stepped and stepback.should_return(counts, len(pieces)):
            handle.set_upload_limit(-1)
            self._stepped_back.discard(tid)
            log.info("%s: upload restored (%d peers)", site_id[:12], len(pieces))

    async def _watch_loop(self) -> None:
        """The safety net under pushes: check the DHT for new versions of held sites, more
        often for sites in use (propagation.poll_interval)."""
        tick = self.timings.watch_tick
        if self.config.metered:
            tick = min(tick, self.config.metered_idle)
        if self.config.volunteer:
            tick = min(tick, self.config.mirror_lease)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if self.config.metered:
                self._pause_idle(now)
            if self.config.volunteer:
                self._end_mirror_leases()
            for site_id, record in list(self.state.sites.items()):
                if site_id in self.state.published or not self._held_versions(site_id):
                    continue
                if now < self._next_poll.get(site_id, 0.0):
                    continue
                idle = max(0.0, time.time() - record.last_used)
                self._next_poll[site_id] = now + propagation.poll_interval(idle)
                self._checked[site_id] = now
                with contextlib.suppress(PeerwebError):
                    await self.refresh_pointer(site_id)

    async def mirror(self, site_id: str) -> ptr.Pointer:
        """Volunteer: start mirroring a site that asked for help (signed sites only).

        The site is pinned while mirrored, so the quota does not evict it mid-crowd."""
        if not self.config.volunteer:
            raise UsageError("this node is not a volunteer mirror")
        pointer = await self.refresh_pointer(site_id)
        if pointer is None:
            raise NotFound(f"no signed pointer for site {site_id}; nothing to mirror")
        await self.open_site(site_id)
        record = self.state.sites[site_id]
        if not record.pinned or record.mirrored_until:  # never take over a user's own pin
            self.set_pinned(site_id, True)
            record.mirrored_until = time.time() + self.config.mirror_lease
        return pointer

    def _end_mirror_leases(self) -> None:
        """Volunteer: a site nobody asked help for within the lease is no longer pinned (the
        disk quota may then evict it)."""
        now = time.time()
        for site_id, record in self.state.sites.items():
            if record.mirrored_until and now > record.mirrored_until:
                log.info("volunteer: %s no longer needs help; unpinned", site_id[:12])
                self.set_pinned(site_id, False)

    async def load_report(self) -> dict[str, Any]:
        """What a volunteer tells origins: its load and the versions it holds."""
        stats = await self.swarm.statistics()
        capacity = self.config.upload_limit
        sites = {sid: r.pointer.version for sid, r in self.state.sites.items()
                 if r.pointer.infohash.hex() in self._snapshots}
        host = self.config.gateway[0]
        return {"gateway": f"http://{host}:{self.gateway_port}",
                "upload_rate": stats.upload_rate, "capacity": capacity,
                "load": round(stats.upload_rate / capacity, 3) if capacity else None,
                "sites": sites}

    async def ask_for_help(self, site_id: str, wanted: int = 3) -> list[dict[str, Any]]:
        """For an origin in need: find volunteers in the DHT, ask the least loaded to mirror
        the site, and return the gateways that hold its current version, least loaded first."""
        record = self.state.sites.get(site_id)
        if record is None and await self.refresh_pointer(site_id) is not None:
            record = self.state.sites.get(site_id)
        if record is None:
            raise NotFound(f"no signed pointer for site {site_id} was found")
        volunteers = await self.swarm.find_peers(propagation.VOLUNTEERS_KEY,
                                                 self.timings.holders_lookup_timeout)
        reports = await self.peers.loads([v for v in volunteers if v != self.peer_endpoint])
        current = record.pointer.version
        ready = [(r["load"] or 0.0, r) for r in reports if r["sites"].get(site_id) == current]
        if len(ready) < wanted:
            spare = sorted((r["load"] or 0.0, i) for i, r in enumerate(reports)
                           if r["sites"].get(site_id) != current)
            asked = [reports[i] for _, i in spare[:wanted - len(ready)]]
            took = await asyncio.gather(*(self.peers.ask_help(tuple(r["endpoint"]), site_id)
                                          for r in asked))
            # A volunteer answers once it holds the version it names: usable at once.
            ready += [(r["load"] or 0.0, r) for r, version in zip(asked, took, strict=True)
                      if version == current]
        ready.sort(key=lambda pair: pair[0])
        return [{"mirror": f"{r['gateway']}/s/{site_id}", "load": r["load"],
                 "version": current} for _, r in ready]

    def _seeds(self, site_id: str) -> bool:
        """Whether this node offers a site to others (a metered node: only pinned and own)."""
        record = self.state.sites.get(site_id)
        return (not self.config.metered or site_id in self.state.published
                or (record is not None and record.pinned))

    def _pause_idle(self, now: float) -> None:
        """Metered mode: stop the torrents of visited sites nobody is looking at."""
        keep = self._protected()
        for tid, snapshot in self._snapshots.items():
            idle = now - self._last_used.get(tid, 0.0)
            if (tid in keep or idle < self.config.metered_idle or tid in self._idle_paused
                    or self.swarm.reading(tid)):
                continue
            log.info("metered: pausing %s (idle %.0f s)", tid[:12], idle)
            snapshot.handle.pause()
            self._idle_paused.add(tid)

    def _resume_idle(self, tid: str) -> None:
        self._idle_paused.discard(tid)
        snapshot = self._snapshots.get(tid)
        if snapshot is not None and snapshot.handle.is_valid():
            snapshot.handle.resume()

    async def _push(self, pointer: ptr.Pointer, exclude: Endpoint | None) -> None:
        """Hand a newer pointer to a few other holders of the site (each forwards it once)."""
        holders = await self.holders(pointer.site_id)
        targets = propagation.push_targets(holders, self.peer_endpoint,
                                           [exclude] if exclude else [])
        if not targets:
            return
        results = await asyncio.gather(*(self.peers.push(t, pointer, self.peer_port)
                                         for t in targets))
        log.info("pushed v%d of %s to %d holders (%d took it as news)", pointer.version,
                 pointer.site_id[:12], len(targets), sum(results))

    async def holders(self, site_id: str, max_age: float | None = None) -> list[Endpoint]:
        """Peer ports of nodes that announced they hold a site (a list at most ``max_age``
        seconds old)."""
        cached = self._holders.get(site_id)
        if max_age is None:
            max_age = self.timings.holders_ttl
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1]
        key = propagation.holders_key(public_key_from_site_id(site_id))
        found = await self.swarm.find_peers(key, self.timings.holders_lookup_timeout)
        self._holders[site_id] = (time.monotonic(), found)
        return found

    async def _resume_loop(self) -> None:
        while True:
            await asyncio.sleep(self.timings.resume_save_interval)
            await self._save_all_resume()
            if self._state_dirty:
                self._save_state()

    async def _save_all_resume(self) -> None:
        for snapshot in list(self._snapshots.values()):
            await self._save_resume(snapshot.handle)

    async def _save_resume(self, handle: Any) -> None:
        if not handle.is_valid() or handle.torrent_file() is None:
            return
        data = await self.swarm.save_resume(handle)
        if data:
            await self._write(self.resume_dir / f"{torrent_id(handle)}.resume", data)

    def _save_state(self) -> None:
        self._state_dirty = False
        self._write(self.data_dir / "state.json", state.encode(self.state))

    def _write(self, path: Path, data: bytes) -> asyncio.Future[None]:
        """Replace a file atomically, off the event loop (an fsync can take long enough to
        stall every visitor), one write at a time in the order asked."""
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._writer, state.write_atomic, path, data)
        except RuntimeError:  # the node has stopped: its writer is gone
            future = loop.create_future()
            try:
                state.write_atomic(path, data)
                future.set_result(None)
            except OSError as exc:
                future.set_exception(exc)
        future.add_done_callback(_log_write_error)
        return future

    def _on_file_completed(self, tid: str) -> None:
        # Resume data records which pieces are verified: written soon after each completed
        # file (coalesced), a kill -9 never costs a complete file.
        if tid in self._resume_pending or tid not in self._snapshots:
            return
        self._resume_pending.add(tid)
        self._spawn(self._save_resume_later(tid))

    async def _save_resume_later(self, tid: str) -> None:
        try:
            await asyncio.sleep(self.timings.resume_coalesce)
        finally:
            self._resume_pending.discard(tid)
        snapshot = self._snapshots.get(tid)
        if snapshot is not None:
            await self._save_resume(snapshot.handle)

    def _on_finished(self, tid: str) -> None:
        snapshot = self._snapshots.get(tid)
        if snapshot is not None:
            self._spawn(self._save_resume(snapshot.handle))
            if self.config.volunteer:  # made now, not while a verifying visitor waits on it
                self._spawn(self.torrent_bytes(tid))
        self._drop_superseded(tid)
        self.enforce_quota()

    def _drop_superseded(self, tid: str) -> None:
        """Once a site's current version is complete, older ones go (unless pinned)."""
        snapshot = self._snapshots.get(tid)
        # "Finished" also means "nothing more wanted", as for a version held before its
        # unchanged files are in place: only a complete copy replaces the old one.
        if snapshot is None or not snapshot.handle.status().is_seeding:
            return
        snapshot.handle.set_max_connections(-1)  # complete: open to every peer again
        keep = self._protected()
        for record in self.state.sites.values():
            if record.pointer.infohash.hex() != tid or record.pinned:
                continue
            for entry in record.history:
                if entry.infohash != tid and entry.infohash in self._snapshots \
                        and entry.infohash not in keep:
                    log.info("dropping v%d of %s: v%d is complete", entry.version,
                             record.pointer.site_id[:12], record.pointer.version)
                    self._evict(entry.infohash, "superseded")

    def _protected(self) -> set[str]:
        """Snapshots never evicted: what this node publishes, and pinned sites."""
        keep = {r.infohash for r in self.state.published.values()}
        keep.update(r.pointer.infohash.hex() for r in self.state.sites.values() if r.pinned)
        return keep

    def enforce_quota(self) -> list[str]:
        """Evict the least recently used visited snapshots until the cache fits the quota.

        The most recently used snapshot stays even when it alone exceeds the quota: the
        visitor is looking at it. Returns the evicted info-hashes.
        """
        keep = self._protected()
        sizes = {tid: int(s.handle.status().total_wanted_done)
                 for tid, s in self._snapshots.items() if tid not in keep}
        evicted = []
        for tid in sorted(sizes, key=lambda t: self._last_used.get(t, 0.0))[:-1]:
            if sum(sizes.values()) <= self.quota:
                break
            self._evict(tid, "disk quota")
            del sizes[tid]
            evicted.append(tid)
        return evicted

    def holds(self, tid: str) -> bool:
        """Whether this node has the snapshot (an info-hash in hex) open and on disk."""
        return tid in self._snapshots

    def _evict(self, tid: str, reason: str) -> None:
        snapshot = self._snapshots.pop(tid)
        self._idle_paused.discard(tid)
        self._last_used.pop(tid, None)
        log.info("%s: removing snapshot %s", reason, tid)
        self.swarm.remove(snapshot.handle, delete_files=True)
        (self.resume_dir / f"{tid}.resume").unlink(missing_ok=True)
        for index in range(len(snapshot.sizes)):
            self.small_files.discard((tid, index))

    # -- publishing ------------------------------------------------------------------------

    async def publish(self, folder: Path, key_name: str | None = None, require_index: bool = True,
                      progress: Callable[[int, int], None] | None = None,
                      trackers: tuple[str, ...] = (),
                      web_seeds: tuple[str, ...] = ()) -> PublishResult:
        """Publish a folder as the next version of the site signed by ``key_name``.

        ``trackers`` and ``web_seeds`` (BEP 19) are listed in the torrent and in the signed
        pointer, so visitors announce to the trackers and fetch from the web seeds as well."""
        try:
            ptr.check_urls(trackers, web_seeds)  # before the hashing, not after
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        name = key_name or _key_name_for(folder)
        key = self.keys.get_or_create(name)
        site_id = key.site_id
        built = await asyncio.to_thread(bundle.build, folder, self.content_dir, require_index,
                                        progress, trackers, web_seeds)
        tid = built.infohash.hex()
        handle = self.swarm.find(tid)
        if handle is None:
            handle = self.swarm.add_seed(built.torrent, built.content_dir)
        await self._register_snapshot(handle)

        current = self.state.sites.get(site_id)
        published = self.state.published.get(site_id)
        if (current is not None and current.pointer.infohash == built.infohash
                and current.pointer.trackers == trackers
                and current.pointer.web_seeds == web_seeds):
            version = current.pointer.version  # same bytes: same version, just re-announced
        else:
            known = max(current.pointer.version if current else 0,
                        published.version if published else 0)
            version = known + 1
        # A locally signed pointer serves this node at once; the DHT gets its own signature
        # (libtorrent picks the BEP 44 sequence number).
        local = ptr.sign(key, built.infohash, version, seq=version, trackers=trackers,
                         web_seeds=web_seeds)
        self.accept_pointer(local, force=True)
        self._note_changes(self._snapshots[tid])
        self.state.published[site_id] = state.PublishedRecord(name, version, tid, trackers,
                                                              web_seeds)
        self._save_state()
        await self._save_resume(handle)
        stored = await self._put(site_id, built.infohash, version)
        if stored == 0:
            self._reput_soon.set()
        return PublishResult(site_id, version, tid, magnet_for(site_id),
                             self.gateway_url(site_id), built.file_count, built.total_size, stored)

    async def _put(self, site_id: str, infohash: bytes, version: int) -> int:
        published = self.state.published.get(site_id)
        if published is None or await self.swarm.dht_node_count() == 0:
            return 0
        key = self.keys.get(published.key_name)
        signed, stored = await self.swarm.put_pointer(key, infohash, version,
                                                      self.timings.dht_put_timeout,
                                                      published.trackers, published.web_seeds)
        if signed is not None:
            self.accept_pointer(signed, force=True)
        log.info("put pointer v%d of %s on %d DHT nodes", version, site_id[:12], stored)
        return stored

    async def export(self, site_id: str, output: Path, v1_only: bool = False) -> dict[str, Any]:
        """Write the current version of a site held here as a .torrent for other clients.

        ``v1_only`` makes a v1 torrent of the same files (for clients that fail on hybrid
        torrents) and seeds it too, from the same files."""
        snapshot = await self.open_site(site_id)
        handle = snapshot.handle
        if not handle.status().is_seeding:
            raise UsageError(f"this node does not hold all of {site_id} yet; pin it and wait "
                             "until `peerweb status` shows progress 1.0")
        trackers = self.state.sites[site_id].pointer.trackers
        if v1_only:
            torrent = await asyncio.to_thread(self.swarm.make_v1_torrent, handle, trackers)
            tid = torrent_file_id(torrent)
            if self.swarm.find(tid) is None:
                added = self.swarm.add_seed(torrent, Path(handle.status().save_path))
                self.state.exports[tid] = snapshot.tid
                self._save_state()
                await self._save_resume(added)
        else:
            torrent = await self.swarm.torrent_file(handle, trackers)
            tid = snapshot.tid
        state.write_atomic(output, torrent, mode=0o644)
        return {"path": str(output), "infohash": tid,
                "magnet": magnet_of(torrent), "v1_only": v1_only}

    def history(self, site_id: str) -> list[dict[str, Any]]:
        """The versions of a site this node knows, oldest first, for `peerweb log`."""
        public_key_from_site_id(site_id)  # BadAddress for a malformed id
        record = self.state.sites.get(site_id)
        if record is None:
            raise NotFound(f"this node does not know site {site_id}; visit it first")
        current = record.pointer.infohash.hex()
        return [{**entry.to_json(), "current": entry.infohash == current,
                 "held": entry.infohash in self._snapshots} for entry in record.history]

    def signed_pointer(self, site_id: str) -> ptr.Pointer:
        """The newest signed pointer held for a site, as mirrors hand it to visitors' workers."""
        public_key_from_site_id(site_id)  # BadAddress for a malformed id
        record = self.state.sites.get(site_id)
        if record is None:
            raise NotFound(f"this node does not hold site {site_id}")
        return record.pointer

    async def torrent_bytes(self, tid: str) -> bytes:
        """The .torrent of a snapshot held whole here, with its piece layers (immutable, so
        kept once made)."""
        found = self._torrent_files.get(tid)
        if found is not None:
            return found
        snapshot = self._whole_snapshot(tid)
        torrent = await self.swarm.torrent_file(snapshot.handle, ())
        if len(self._torrent_files) >= MAX_KEPT_TORRENTS:
            self._torrent_files.clear()
        self._torrent_files[tid] = torrent
        return torrent

    def kept_torrent(self, tid: str) -> bytes | None:
        """The .torrent of a snapshot if already made (``torrent_bytes``), without waiting."""
        return self._torrent_files.get(tid) if tid in self._snapshots else None

    def _whole_snapshot(self, tid: str) -> Snapshot:
        """A snapshot this node holds every piece of (what it may hand to mirrors' visitors)."""
        snapshot = self._snapshots.get(tid)
        if snapshot is None or not snapshot.handle.status().is_seeding:
            raise NotFound(f"this node does not hold all of snapshot {tid[:80]} yet")
        return snapshot

    async def bundle(self, tid: str) -> bytes:
        """Every file of a snapshot held whole here that fits in one piece, concatenated in
        BEP 52 file tree order: a verifying worker takes a small site in one request instead
        of one per file, and checks each file against its merkle root from the torrent."""
        snapshot = self._whole_snapshot(tid)
        piece_length = snapshot.handle.torrent_file().piece_length()
        paths = snapshot.sitemap.paths
        chosen = [i for i, path in enumerate(paths)
                  if path and 0 < snapshot.sizes[i] <= piece_length]
        if sum(snapshot.sizes[i] for i in chosen) > BUNDLE_LIMIT:
            raise TooLarge(f"this snapshot's small files exceed {BUNDLE_LIMIT} bytes; "
                           "fetch them one by one")
        # The file tree is a bencoded dictionary at every level: keys in byte order.
        chosen.sort(key=lambda i: [part.encode() for part in paths[i].split("/")])
        return b"".join([await self.read_file(snapshot, i) for i in chosen])

    def set_pinned(self, site_id: str, pinned: bool) -> None:
        """Pinned sites are kept whatever the disk quota."""
        record = self.state.sites.get(site_id)
        if record is None:
            raise NotFound(f"this node does not know site {site_id}; visit it first")
        record.pinned = pinned
        record.mirrored_until = 0.0  # an explicit pin or unpin ends any mirror lease
        self._save_state()
        tid = record.pointer.infohash.hex()
        if pinned and tid in self._idle_paused:
            self._resume_idle(tid)  # metered mode seeds pinned sites

    # -- resolving -------------------------------------------------------------------------

    def accept_pointer(self, candidate: ptr.Pointer, force: bool = False,
                       source: Endpoint | None = None) -> bool:
        """Keep ``candidate`` if it is newer than what we hold; never go back a version.

        ``force`` replaces a pointer of the same version (our own re-signed pointer). A new
        version is pushed on to other holders (not back to ``source``, who sent it)."""
        site_id = candidate.site_id
        record = self.state.sites.get(site_id)
        current = record.pointer if record else None
        newer = ptr.is_newer(candidate, current)
        if force and current is not None and candidate.version == current.version:
            newer = candidate.infohash == current.infohash or newer
        if not newer:
            if current is not None and candidate.version < current.version:
                log.info("ignored pointer v%d for %s: v%d already seen", candidate.version,
                         site_id[:12], current.version)
            return False
        if record is None:
            record = self.state.sites[site_id] = state.SiteRecord(candidate,
                                                                  last_used=time.time())
            self._save_state()  # a site learned is not forgotten by a crash
        else:
            record.pointer = candidate
        record.remember(candidate, time.time())
        self._state_dirty = True
        if current is not None and current.infohash != candidate.infohash:
            log.info("site %s moved to v%d", site_id[:12], candidate.version)
            self._save_state()
            self._spawn(self._push(candidate, source))
            if (self._held_versions(site_id) and site_id not in self.state.published
                    and self._seeds(site_id)):
                # A holder fetches the new version at once (only the files that changed),
                # so it can serve it, and the old one goes when the new one is complete.
                self._spawn(self._follow(candidate))
        return True

    def _held_versions(self, site_id: str) -> list[Snapshot]:
        """Snapshots of a site this node has open, oldest version first."""
        record = self.state.sites.get(site_id)
        if record is None:
            return []
        return [self._snapshots[e.infohash] for e in record.history
                if e.infohash in self._snapshots]

    async def _follow(self, pointer: ptr.Pointer) -> None:
        await self.open_snapshot(pointer.infohash.hex(), pointer.site_id)

    async def refresh_pointer(self, site_id: str) -> ptr.Pointer | None:
        """Ask the DHT for the site's newest pointer; one query per site at a time."""
        return await self._single_flight(self._refreshing, site_id,
                                         lambda: self._refresh(site_id))

    async def _refresh(self, site_id: str) -> ptr.Pointer | None:
        public_key = public_key_from_site_id(site_id)
        if not await self.swarm.wait_dht_ready(timeout=min(self.timings.dht_get_timeout,
                                                           self.config.fetch_timeout)):
            raise SwarmTimeout("this node has no DHT peers yet; check --bootstrap")
        found = None
        # A lookup can end before it reaches the nodes storing the item while routing tables
        # are still filling, or before a publisher that was alone in the DHT re-put its
        # pointer: for a site we do not know, keep asking (backing off) for a bounded time.
        loop = asyncio.get_running_loop()
        patience = loop.time() + min(self.timings.dht_find_patience,
                                     self.config.fetch_timeout)
        delay = 0.2
        for attempt in range(self.timings.dht_get_max_attempts):
            found = await self.swarm.get_pointer(public_key, self.timings.dht_get_timeout)
            if found is not None or site_id in self.state.sites:
                break
            if (attempt + 1 >= self.timings.dht_get_attempts
                    and loop.time() + delay > patience):
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        if found is None:
            # The publisher may be offline and its DHT item expired: holders keep the
            # signed pointer and hand it over themselves.
            offered = await self.peers.fetch_any(await self.holders(site_id), site_id)
            for candidate in offered:
                if ptr.is_newer(candidate, found):
                    found = candidate
        self._checked[site_id] = time.monotonic()
        if found is not None:
            self.accept_pointer(found)
        record = self.state.sites.get(site_id)
        return record.pointer if record else None

    async def open_site(self, site_id: str) -> Snapshot:
        """The snapshot to serve for a site: the cached version at once, refreshed behind."""
        public_key_from_site_id(site_id)  # BadAddress for a malformed id
        record = self._visit_site(site_id)
        if record is None:
            found = await self.refresh_pointer(site_id)
            if found is None:
                raise NotFound(
                    f"no signed pointer for site {site_id} was found in the DHT; the publisher "
                    "and every node holding it may be offline"
                )
            record = self.state.sites[site_id]
            record.last_used = time.time()
        return await self.open_snapshot(record.pointer.infohash.hex(), site_id)

    def _visit_site(self, site_id: str) -> state.SiteRecord | None:
        """A visit to a known site: mark it used and check for a newer version now and then."""
        record = self.state.sites.get(site_id)
        if record is None:
            return None
        if (site_id not in self.state.published
                and time.monotonic() - self._checked.get(site_id, 0.0)
                > self.timings.pointer_fresh):
            self._checked[site_id] = time.monotonic()
            self._spawn(self.refresh_pointer(site_id))
        record.last_used = time.time()
        return record

    def _visit_snapshot(self, tid: str) -> Snapshot | None:
        snapshot = self._snapshots.get(tid)
        if snapshot is not None:
            self._last_used[tid] = time.monotonic()
            if tid in self._idle_paused:
                self._resume_idle(tid)
        return snapshot

    def serving(self, site_id: str | None, tid: str) -> bool:
        """Whether a visit to the site (or, without ``site_id``, to the snapshot) is served
        from snapshot ``tid`` right now; counts as a visit, as opening it would."""
        if site_id is not None:
            record = self._visit_site(site_id)
            if record is None or record.pointer.infohash.hex() != tid:
                return False
        return self._visit_snapshot(tid) is not None

    async def open_snapshot(self, tid: str, site_id: str | None = None,
                            trackers: tuple[str, ...] = ()) -> Snapshot:
        """A torrent by info-hash (hex), fetched from peers if this node does not have it."""
        snapshot = self._visit_snapshot(tid)
        if snapshot is not None:
            for url in trackers:
                snapshot.handle.add_tracker({"url": url})
            return snapshot
        if not _INFOHASH_RE.match(tid):
            raise BadAddress(f"not an info-hash (40 or 64 lowercase hex digits): {tid[:80]!r}")
        self._last_used[tid] = time.monotonic()
        return await self._single_flight(self._opening, tid,
                                         lambda: self._open(tid, site_id, trackers))

    async def _open(self, tid: str, site_id: str | None,
                    trackers: tuple[str, ...] = ()) -> Snapshot:
        await self.swarm.wait_removed(tid, timeout=self.config.fetch_timeout)
        handle = self.swarm.find(tid)
        older: list[Snapshot] = []
        if handle is None:
            older = self._held_versions(site_id) if site_id else []
            # With an older version here, download nothing until its unchanged files are
            # in place: a new version costs only what changed.
            record = self.state.sites.get(site_id) if site_id else None
            trackers = trackers or (record.pointer.trackers if record else ())
            handle = self.swarm.add_magnet(tid, self.content_dir / tid, hold=bool(older),
                                           trackers=trackers,
                                           web_seeds=record.pointer.web_seeds if record else ())
        await self.swarm.wait_metadata(handle, self.config.fetch_timeout)
        if older:
            await self._reuse_files(handle, older)
            # With a few changed pieces and many holders, libtorrent's end game would ask
            # every idle peer for the same last blocks: a few peers waste far less.
            handle.set_max_connections(UPDATE_CONNECTIONS)
            self.swarm.release(handle)
            self._spawn(self._lift_connection_cap(handle))
        snapshot = await self._register_snapshot(handle)
        self._spawn(self._save_resume(handle))
        return snapshot

    async def _lift_connection_cap(self, handle: Any) -> None:
        # The few peers may not have the new pieces yet either: once a check finds no
        # progress, let every peer in rather than stall.
        received = -1
        while handle.is_valid():
            await asyncio.sleep(self.timings.update_cap_check)
            if not handle.is_valid():
                return
            status = handle.status()
            if status.is_seeding:
                return
            if status.total_payload_download == received:
                handle.set_max_connections(-1)
                return
            received = status.total_payload_download

    async def _reuse_files(self, handle: Any, older: list[Snapshot]) -> None:
        """Hard-link complete files whose BEP 52 merkle root did not change into the new
        snapshot, then let libtorrent verify them (a copy where links are impossible)."""
        have: dict[str, Path] = {}
        for snapshot in older:
            for index, etag in enumerate(snapshot.etags):
                if snapshot.sitemap.paths[index] and snapshot.file_complete(index):
                    have[etag] = self._file_path(snapshot.handle, index)
        files = handle.torrent_file().layout()
        save_path = Path(handle.status().save_path)
        reused = 0
        for index in range(files.num_files()):
            root = files.root(index) if files.v2() else None
            if root is None or root.is_all_zeros() or str(root) not in have:
                continue
            target = save_path / files.file_path(index)
            if target.exists():
                continue
            try:
                await asyncio.to_thread(_link_or_copy, have[str(root)], target)
            except OSError as exc:
                log.warning("could not reuse %s (%s); fetching it", target.name, exc)
                continue
            reused += 1
        if reused:
            await self.swarm.recheck(handle, timeout=self.config.fetch_timeout * 4)
        log.info("%s: reused %d unchanged files from the previous version",
                 torrent_id(handle)[:12], reused)

    @staticmethod
    def _file_path(handle: Any, index: int) -> Path:
        files = handle.torrent_file().layout()
        return Path(handle.status().save_path) / str(files.file_path(index))

    async def _register_snapshot(self, handle: Any) -> Snapshot:
        tid = torrent_id(handle)
        existing = self._snapshots.get(tid)
        if existing is not None:
            return existing
        info = handle.torrent_file()
        files = info.layout()
        multi = info.num_files() > 1 or "/" in files.file_path(0)
        paths: list[str] = []
        etags: list[str] = []
        for i in range(files.num_files()):
            if is_pad_file(files, i):
                paths.append("")
            else:
                path = files.file_path(i).replace("\\", "/")
                paths.append(path.split("/", 1)[1] if multi else path)
            root = files.root(i) if files.v2() else None
            etags.append(str(root) if root is not None and not root.is_all_zeros()
                         else f"{tid}-{i}")
        snapshot = Snapshot(
            tid, handle, SiteMap(paths),
            tuple(files.file_size(i) for i in range(files.num_files())), tuple(etags),
        )
        self._snapshots[tid] = snapshot
        self._last_used[tid] = time.monotonic()
        self._note_changes(snapshot)
        self._announce_soon.set()
        return snapshot

    def _note_changes(self, snapshot: Snapshot) -> None:
        """Record which files a version changed, when the version before it is here too."""
        for record in self.state.sites.values():
            for position, entry in enumerate(record.history):
                if entry.infohash != snapshot.tid or entry.changed is not None or not position:
                    continue
                previous = self._snapshots.get(record.history[position - 1].infohash)
                if previous is not None:
                    entry.changed = _changed_paths(previous, snapshot)
                    self._state_dirty = True

    # -- reading ---------------------------------------------------------------------------

    async def read_file(self, snapshot: Snapshot, index: int) -> bytes:
        """A whole small file, from memory when possible."""
        key = (snapshot.tid, index)
        cached = self.small_files.get(key)
        if cached is not None:
            return cached
        chunks = [c async for c in self.stream(snapshot, index, 0, snapshot.sizes[index])]
        data = b"".join(chunks)
        if len(data) <= SMALL_FILE_LIMIT:
            self.small_files.put(key, data)
        return data

    def stream(self, snapshot: Snapshot, index: int, start: int, end: int) -> Any:
        self._last_used[snapshot.tid] = time.monotonic()
        if end <= start:
            return _empty()
        error = self.swarm.torrent_error(snapshot.tid)
        if error and not snapshot.file_complete(index):
            raise StorageError(f"this site's download stopped on a disk error: {error}; "
                               f"{DISK_ADVICE}")
        return self.swarm.read(snapshot.handle, index, start, end, self.config.fetch_timeout)

    # -- status ----------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        stats = await self.swarm.statistics()
        sites = []
        by_tid = {s.pointer.infohash.hex(): (sid, s) for sid, s in self.state.sites.items()}
        disk = 0
        for sid, record in sorted(self.state.sites.items()):
            tid = record.pointer.infohash.hex()
            handle = self.swarm.find(tid)
            entry: dict[str, Any] = {
                "site_id": sid, "version": record.pointer.version, "infohash": tid,
                "published": sid in self.state.published, "pinned": record.pinned,
                "stepped_back": tid in self._stepped_back,
                "url": self.gateway_url(sid),
            }
            if handle is not None:
                st = handle.status()
                entry.update(progress=round(float(st.progress), 4), peers=int(st.num_peers),
                             upload_rate=int(st.upload_rate),
                             download_rate=int(st.download_rate),
                             uploaded=int(st.all_time_upload),
                             downloaded=int(st.all_time_download),
                             redundant=int(st.total_redundant_bytes),
                             bytes_on_disk=int(st.total_wanted_done))
                disk += int(st.total_wanted_done)
                error = self.swarm.torrent_error(tid)
                if error:
                    entry["error"] = error
            sites.append(entry)
        snapshots = [tid for tid in self._snapshots if tid not in by_tid]
        return {
            "gateway": f"http://127.0.0.1:{self.gateway_port}/",
            "network": self.config.network.value,
            "listen": f"{self.config.listen[0]}:{self.swarm.listen_port}",
            "uptime": round(time.time() - self.started, 1),
            "dht_nodes": stats.dht_nodes, "peers": stats.peers,
            "upload_rate": stats.upload_rate, "download_rate": stats.download_rate,
            "uploaded": stats.total_upload, "downloaded": stats.total_download,
            "hash_failures": stats.hash_failures, "disk_used": disk,
            "disk_quota": self.quota,
            "sites": sites, "snapshots": snapshots,
        }


def _changed_paths(old: Snapshot, new: Snapshot) -> list[str]:
    """Paths added, changed (another merkle root) or removed between two versions."""
    before = {p: e for p, e in zip(old.sitemap.paths, old.etags, strict=True) if p}
    after = {p: e for p, e in zip(new.sitemap.paths, new.etags, strict=True) if p}
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def _log_write_error(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("could not save the node's state: %s", future.exception())


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed: a copy still saves the fetch
        shutil.copyfile(source, target)


async def _empty() -> Any:
    return
    yield b""  # pragma: no cover - makes this an async generator


def _key_name_for(folder: Path) -> str:
    raw = folder.resolve().name or "site"
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in raw).strip(".-_")
    return (cleaned or "site")[:64]
