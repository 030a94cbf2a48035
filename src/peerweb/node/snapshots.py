"""The snapshots a node holds: each an immutable version of a site, one torrent.

A snapshot is registered once its torrent has metadata, with the site's paths and a
validator per file. A new version of a site held here starts from the files of the older
ones: complete files whose BEP 52 merkle root did not change are hard-linked in before
anything is downloaded, so an update costs only what changed. Files are read through the
swarm (pieces verified on the way), small ones kept in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import NodeConfig
from ..content.sitemap import SiteMap
from ..errors import BadAddress, PeerwebError, StorageError
from ..policy import pagefirst
from ..swarm.engine import DISK_ADVICE, Swarm, is_pad_file, torrent_id
from ..swarm.torrents import resume_peers
from .jobs import Jobs
from .memcache import BytesLRU
from .persistence import Persistence

log = logging.getLogger(__name__)

# Small files are kept in memory once verified: most page assets are small and re-requested.
SMALL_FILE_LIMIT = 1024 * 1024
SMALL_CACHE_BYTES = 64 * 1024 * 1024
# Connections a torrent may use while fetching a new version's changed files.
UPDATE_CONNECTIONS = 2
# A new version dials at most this many peers of the newest older versions at once.
OLDER_VERSIONS_ASKED = 2
OLDER_PEERS_DIALLED = 20
_INFOHASH_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


@dataclass(frozen=True)
class Snapshot:
    """One torrent with its metadata: an immutable version of a site."""

    tid: str
    """The info-hash, in hex (the v2 one for a hybrid torrent, as ``torrent_id``)."""
    handle: Any
    """The libtorrent torrent handle."""
    sitemap: SiteMap
    """The site's paths, by file index ("" for a pad file)."""
    sizes: tuple[int, ...]
    """Each file's size in bytes."""
    etags: tuple[str, ...]
    """Per-file validators: the BEP 52 merkle root where there is one (content-addressed)."""

    def file_complete(self, index: int) -> bool:
        return bool(self.handle.file_progress()[index] == self.sizes[index])


class SnapshotStore:
    """The snapshots open here by info-hash, when each was last used, and which are paused.

    ``on_register`` is called whenever a snapshot is added (there is something new to
    announce)."""

    def __init__(self, config: NodeConfig, swarm: Swarm, jobs: Jobs, disk: Persistence,
                 on_register: Callable[[], None]) -> None:
        self._config = config
        self._swarm = swarm
        self._jobs = jobs
        self._disk = disk
        self._on_register = on_register
        self.small_files = BytesLRU(SMALL_CACHE_BYTES)
        self._snapshots: dict[str, Snapshot] = {}
        self._last_used: dict[str, float] = {}
        """When each snapshot was last used (``time.monotonic``)."""
        # Torrents metered mode paused while idle (kept here: asking libtorrent for a
        # torrent's flags on every request waits on its busy network thread).
        self._paused: set[str] = set()
        self._opening: dict[str, asyncio.Task[Snapshot]] = {}
        self._reading: dict[str, asyncio.Task[bytes]] = {}

    # -- what is held ----------------------------------------------------------------------

    def __contains__(self, tid: object) -> bool:
        return tid in self._snapshots

    def __iter__(self) -> Iterator[str]:
        return iter(self._snapshots)

    def get(self, tid: str) -> Snapshot | None:
        return self._snapshots.get(tid)

    def opening(self) -> list[str]:
        """Torrents being fetched that are not snapshots yet (their metadata has not come)."""
        return [tid for tid in self._opening if tid not in self._snapshots]

    def all(self) -> list[Snapshot]:
        return list(self._snapshots.values())

    def handles(self) -> dict[str, Any]:
        return {tid: s.handle for tid, s in self._snapshots.items()}

    @property
    def last_used(self) -> dict[str, float]:
        """When each snapshot was last used (``time.monotonic``); read-only to others."""
        return self._last_used

    @property
    def paused(self) -> set[str]:
        """Snapshots paused while idle (metered mode); read-only to others."""
        return self._paused

    def held_versions(self, site_id: str) -> list[Snapshot]:
        """Snapshots of a site this node has open, oldest version first."""
        record = self._disk.state.sites.get(site_id)
        if record is None:
            return []
        return [self._snapshots[e.infohash] for e in record.history
                if e.infohash in self._snapshots]

    # -- use, pause, evict -----------------------------------------------------------------

    def visit(self, tid: str) -> Snapshot | None:
        """A held snapshot, marked used (and resumed if paused while idle); None if not held."""
        snapshot = self._snapshots.get(tid)
        if snapshot is not None:
            self._last_used[tid] = time.monotonic()
            if tid in self._paused:
                self.resume(tid)
        return snapshot

    def pause(self, tid: str) -> None:
        self._snapshots[tid].handle.pause()
        self._paused.add(tid)

    def resume(self, tid: str) -> None:
        self._paused.discard(tid)
        snapshot = self._snapshots.get(tid)
        if snapshot is not None and snapshot.handle.is_valid():
            snapshot.handle.resume()

    def evict(self, tid: str, reason: str) -> Snapshot:
        """Remove a snapshot, its files, its resume data and its cached files."""
        snapshot = self._snapshots.pop(tid)
        self._paused.discard(tid)
        self._last_used.pop(tid, None)
        log.info("%s: removing snapshot %s", reason, tid)
        self._swarm.remove(snapshot.handle, delete_files=True)
        self._disk.forget_resume(tid)
        for index in range(len(snapshot.sizes)):
            self.small_files.discard((tid, index))
        return snapshot

    # -- opening ---------------------------------------------------------------------------

    async def open(self, tid: str, site_id: str | None = None,
                   trackers: tuple[str, ...] = (),
                   admit: Callable[[int], None] | None = None) -> Snapshot:
        """A torrent by info-hash (hex), fetched from peers if this node does not have it.

        ``admit`` is given the torrent's size once its metadata came and before anything is
        downloaded; if it raises, the torrent and its files are removed again. A fetch whose
        metadata never comes is removed too: every torrent in the session is a snapshot."""
        snapshot = self.visit(tid)
        if snapshot is not None:
            for url in trackers:
                snapshot.handle.add_tracker({"url": url})
            return snapshot
        if not _INFOHASH_RE.match(tid):
            raise BadAddress(f"not an info-hash (40 or 64 lowercase hex digits): {tid[:80]!r}")
        self._last_used[tid] = time.monotonic()
        return await self._jobs.single_flight(self._opening, tid,
                                              lambda: self._open(tid, site_id, trackers, admit))

    async def _open(self, tid: str, site_id: str | None, trackers: tuple[str, ...],
                    admit: Callable[[int], None] | None) -> Snapshot:
        await self._swarm.wait_removed(tid, timeout=self._config.fetch_timeout)
        handle = self._swarm.find(tid)
        older: list[Snapshot] = []
        added = handle is None
        if handle is None:
            older = self.held_versions(site_id) if site_id else []
            # With an older version here, download nothing until its unchanged files are
            # in place: a new version costs only what changed; with ``admit``, nothing until
            # the size is known and agreed to.
            record = self._disk.state.sites.get(site_id) if site_id else None
            trackers = trackers or (record.pointer.trackers if record else ())
            handle = self._swarm.add_magnet(tid, self._disk.content_dir / tid,
                                            hold=bool(older) or admit is not None,
                                            trackers=trackers,
                                            web_seeds=record.pointer.web_seeds if record else (),
                                            peers=self._older_peers(older))
        try:
            await self._swarm.wait_metadata(handle, self._config.fetch_timeout)
            if admit is not None:
                admit(torrent_size(handle))
        except PeerwebError:
            if added:  # nobody else's: gone, files and all, not downloading behind our back
                self._last_used.pop(tid, None)
                self._swarm.remove(handle, delete_files=True)
                self._disk.forget_resume(tid)
            raise
        if older:
            await self._reuse_files(handle, older)
            # With a few changed pieces and many holders, libtorrent's end game would ask
            # every idle peer for the same last blocks: a few peers waste far less.
            handle.set_max_connections(UPDATE_CONNECTIONS)
            self._swarm.release(handle)
            self._jobs.spawn(self._lift_connection_cap(handle))
        elif added and admit is not None:
            self._swarm.release(handle)
        snapshot = await self.register(handle)
        if added and not older and site_id is not None:
            order = pagefirst.warm_up(snapshot.sitemap.paths, snapshot.sizes)
            self._jobs.spawn(self._warm(snapshot, order))
        self._jobs.spawn(self._disk.save_resume(handle))
        return snapshot

    async def _warm(self, snapshot: Snapshot, order: list[int]) -> None:
        """A first visit: read the page's files into memory now (``order``, from
        ``pagefirst.warm_up``), index.html alone first, then the rest together, so that
        the browser's requests for them join these reads or find them done."""
        if order:
            await self._warm_one(snapshot, order[0])
            await asyncio.gather(*(self._warm_one(snapshot, i) for i in order[1:]))

    async def _warm_one(self, snapshot: Snapshot, index: int) -> None:
        # A file that cannot be had now is the browser's request's to report, not this.
        with contextlib.suppress(PeerwebError):
            await self.read_file(snapshot, index)

    def _older_peers(self, older: list[Snapshot]) -> tuple[tuple[str, int], ...]:
        """Peers the older versions' swarms knew (from their resume data): the publisher and
        the other holders, who have the new version's metadata first. Without them a new
        version waits for the DHT to name its first peer, which took ~0.9 s after the news
        here (an announce made before the publisher's was stored finds nobody; the next
        comes ``reannounce_first`` later)."""
        found: dict[tuple[str, int], None] = {}
        for snapshot in older[-OLDER_VERSIONS_ASKED:]:
            path = self._disk.resume_dir / f"{snapshot.tid}.resume"
            try:
                data = path.read_bytes()  # a few KB, on this node's own disk
            except OSError:
                continue
            found.update(dict.fromkeys(resume_peers(data)))
        return tuple(list(found)[:OLDER_PEERS_DIALLED])

    async def _lift_connection_cap(self, handle: Any) -> None:
        # The few peers may not have the new pieces yet either: once a check finds no
        # progress, let every peer in rather than stall.
        received = -1
        while handle.is_valid():
            await asyncio.sleep(self._config.timings.update_cap_check)
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
                    have[etag] = _file_path(snapshot.handle, index)
        files = handle.torrent_file().layout()
        save_path = Path(handle.status().save_path)
        links: list[tuple[Path, Path]] = []
        for index in range(files.num_files()):
            root = files.root(index) if files.v2() else None
            if root is None or root.is_all_zeros() or str(root) not in have:
                continue
            links.append((have[str(root)], save_path / files.file_path(index)))
        # Links here and now: a link is a metadata write of microseconds, where one trip to
        # the thread pool waited 50-100 ms with 20 nodes of a process updating at once
        # (bench/update_propagation.py). Only what cannot be linked is copied, in a thread.
        reused, to_copy = _link_all(links)
        if to_copy:
            reused += await asyncio.to_thread(_copy_all, to_copy)
        if reused:
            await self._swarm.recheck(handle, timeout=self._config.fetch_timeout * 4)
        log.info("%s: reused %d unchanged files from the previous version",
                 torrent_id(handle)[:12], reused)

    async def register(self, handle: Any) -> Snapshot:
        """The snapshot of a torrent with metadata, registered (and marked used) if new."""
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
        self.note_changes(snapshot)
        self._on_register()
        return snapshot

    def note_changes(self, snapshot: Snapshot) -> None:
        """Record which files a version changed, when the version before it is here too."""
        for record in self._disk.state.sites.values():
            for position, entry in enumerate(record.history):
                if entry.infohash != snapshot.tid or entry.changed is not None or not position:
                    continue
                previous = self._snapshots.get(record.history[position - 1].infohash)
                if previous is not None:
                    entry.changed = changed_paths(previous, snapshot)
                    self._disk.mark_dirty()

    # -- reading ---------------------------------------------------------------------------

    async def read_file(self, snapshot: Snapshot, index: int) -> bytes:
        """A whole small file, from memory when possible; one read per file at a time (a
        request joins a read already under way, the first visit's warm-up's say)."""
        cached = self.small_files.get((snapshot.tid, index))
        if cached is not None:
            return cached
        return await self._jobs.single_flight(self._reading, f"{snapshot.tid}/{index}",
                                              lambda: self._read_whole(snapshot, index))

    async def _read_whole(self, snapshot: Snapshot, index: int) -> bytes:
        key = (snapshot.tid, index)
        chunks = [c async for c in self.stream(snapshot, index, 0, snapshot.sizes[index])]
        data = b"".join(chunks)
        if len(data) <= SMALL_FILE_LIMIT:
            self.small_files.put(key, data)
        return data

    def stream(self, snapshot: Snapshot, index: int, start: int, end: int,
               checked: bool = True) -> Any:
        """Bytes ``start`` to ``end`` of a file, as an async iterator of verified chunks
        (``checked=False``: see ``PieceReader.read``)."""
        self._last_used[snapshot.tid] = time.monotonic()
        if end <= start:
            return _empty()
        error = self._swarm.torrent_error(snapshot.tid)
        if error and not snapshot.file_complete(index):
            raise StorageError(f"this site's download stopped on a disk error: {error}; "
                               f"{DISK_ADVICE}")
        return self._swarm.read(snapshot.handle, index, start, end, self._config.fetch_timeout,
                                checked)


def torrent_size(handle: Any) -> int:
    """Bytes a torrent's files hold on disk once complete (BEP 47 padding is never written)."""
    files = handle.torrent_file().layout()
    return sum(files.file_size(i) for i in range(files.num_files()) if not is_pad_file(files, i))


def changed_paths(old: Snapshot, new: Snapshot) -> list[str]:
    """Paths added, changed (another merkle root) or removed between two versions."""
    before = {p: e for p, e in zip(old.sitemap.paths, old.etags, strict=True) if p}
    after = {p: e for p, e in zip(new.sitemap.paths, new.etags, strict=True) if p}
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def _file_path(handle: Any, index: int) -> Path:
    files = handle.torrent_file().layout()
    return Path(handle.status().save_path) / str(files.file_path(index))


def _link_all(links: list[tuple[Path, Path]]) -> tuple[int, list[tuple[Path, Path]]]:
    """Hard-link each source file at its target (unless one is there): how many were linked,
    and the pairs that could not be (another file system, links not allowed)."""
    done, failed = 0, []
    for source, target in links:
        if target.exists():
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target)
        except OSError:
            failed.append((source, target))
            continue
        done += 1
    return done, failed


def _copy_all(pairs: list[tuple[Path, Path]]) -> int:
    """Copy each source file to its target, where a link was impossible: a copy still saves
    the fetch. How many were copied."""
    done = 0
    for source, target in pairs:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        except OSError as exc:
            log.warning("could not reuse %s (%s); fetching it", target.name, exc)
            continue
        done += 1
    return done


async def _empty() -> Any:
    return
    yield b""  # pragma: no cover - makes this an async generator
