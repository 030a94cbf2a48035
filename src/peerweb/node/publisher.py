"""Publishing: a folder becomes the next version of a site, signed by one of this node's keys,
and its pointer is kept in the DHT (BEP 44 items expire about two hours after the last put).

The version number is the key holder's own counter (``policy.versions.next_version``);
libtorrent picks the BEP 44 sequence number. Also the read side of what a node published or
learned: a site's history and its export as a .torrent for other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import NodeConfig
from ..content import pointer as ptr
from ..content.identity import KeyStore, public_key_from_site_id
from ..errors import NotFound, UsageError
from ..policy import versions
from ..swarm import build as bundle
from ..swarm.engine import Swarm, magnet_of, torrent_file_id
from . import state
from .persistence import Persistence
from .resolver import Resolver
from .snapshots import SnapshotStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishResult:
    """What ``Node.publish`` made of a folder."""

    site_id: str
    version: int
    infohash: str
    """The new snapshot's info-hash, in hex."""
    magnet: str
    """The site's BEP 46 magnet link (``magnet_for``)."""
    url: str
    """The site on this node's gateway."""
    files: int
    size: int
    """Bytes of the site's files."""
    dht_stored: int
    """How many DHT nodes accepted the pointer (0: the node re-puts it later)."""

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def magnet_for(site_id: str) -> str:
    """BEP 46 magnet link of a site."""
    return f"magnet:?xs=urn:btpk:{public_key_from_site_id(site_id).hex()}"


class Publisher:
    """The sites this node publishes and the re-put loop that keeps their pointers alive.

    ``gateway_url`` gives a site's URL on this node's gateway."""

    def __init__(self, config: NodeConfig, keys: KeyStore, swarm: Swarm, disk: Persistence,
                 store: SnapshotStore, resolver: Resolver,
                 gateway_url: Callable[[str], str]) -> None:
        self._config = config
        self._timings = config.timings
        self._keys = keys
        self._swarm = swarm
        self._disk = disk
        self._store = store
        self._resolver = resolver
        self._gateway_url = gateway_url
        self._reput_soon = asyncio.Event()

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
        key = self._keys.get_or_create(name)
        site_id = key.site_id
        built = await asyncio.to_thread(bundle.build, folder, self._disk.content_dir,
                                        require_index, progress, trackers, web_seeds)
        tid = built.infohash.hex()
        handle = self._swarm.find(tid)
        if handle is None:
            handle = self._swarm.add_seed(built.torrent, built.content_dir)
        snapshot = await self._store.register(handle)

        current = self._disk.state.sites.get(site_id)
        published = self._disk.state.published.get(site_id)
        same_bytes = (current is not None and current.pointer.infohash == built.infohash
                      and current.pointer.trackers == trackers
                      and current.pointer.web_seeds == web_seeds)
        version = versions.next_version(current.pointer.version if current else 0,
                                        published.version if published else 0, same_bytes)
        # A locally signed pointer serves this node at once; the DHT gets its own signature
        # (libtorrent picks the BEP 44 sequence number).
        local = ptr.sign(key, built.infohash, version, seq=version, trackers=trackers,
                         web_seeds=web_seeds)
        self._resolver.accept_pointer(local, force=True)
        self._store.note_changes(snapshot)
        self._disk.state.published[site_id] = state.PublishedRecord(name, version, tid,
                                                                    trackers, web_seeds)
        self._disk.save_state()
        await self._disk.save_resume(handle)
        stored = await self._put(site_id, built.infohash, version)
        if stored == 0:
            self._reput_soon.set()
        return PublishResult(site_id, version, tid, magnet_for(site_id),
                             self._gateway_url(site_id), built.file_count, built.total_size,
                             stored)

    async def _put(self, site_id: str, infohash: bytes, version: int) -> int:
        published = self._disk.state.published.get(site_id)
        if published is None or await self._swarm.dht_node_count() == 0:
            return 0
        key = self._keys.get(published.key_name)
        signed, stored = await self._swarm.put_pointer(key, infohash, version,
                                                       self._timings.dht_put_timeout,
                                                       published.trackers, published.web_seeds)
        if signed is not None:
            self._resolver.accept_pointer(signed, force=True)
        log.info("put pointer v%d of %s on %d DHT nodes", version, site_id[:12], stored)
        return stored

    async def republish_loop(self) -> None:
        """Keep our own pointers in the DHT: at start, every ``reput_interval``, sooner on
        failure."""
        while True:
            if not await self._swarm.wait_dht_ready(timeout=self._timings.reput_interval):
                continue
            # Torrents added while the DHT was empty announced to nobody: announce them now.
            for snapshot in self._store.all():
                snapshot.handle.force_dht_announce()
            failed = False
            for site_id in list(self._disk.state.published):
                record = self._disk.state.sites.get(site_id)
                if record is not None:
                    stored = await self._put(site_id, record.pointer.infohash,
                                             record.pointer.version)
                    failed = failed or stored == 0
            with contextlib.suppress(TimeoutError):
                wait = self._timings.reput_retry if failed else self._timings.reput_interval
                async with asyncio.timeout(wait):
                    await self._reput_soon.wait()
            self._reput_soon.clear()

    async def export(self, site_id: str, output: Path, v1_only: bool = False) -> dict[str, Any]:
        """Write the current version of a site held here as a .torrent for other clients.

        ``v1_only`` makes a v1 torrent of the same files (for clients that fail on hybrid
        torrents) and seeds it too, from the same files."""
        snapshot = await self._resolver.open_site(site_id)
        handle = snapshot.handle
        if not handle.status().is_seeding:
            raise UsageError(f"this node does not hold all of {site_id} yet; pin it and wait "
                             "until `peerweb status` shows progress 1.0")
        trackers = self._disk.state.sites[site_id].pointer.trackers
        if v1_only:
            torrent = await asyncio.to_thread(self._swarm.make_v1_torrent, handle, trackers)
            tid = torrent_file_id(torrent)
            if self._swarm.find(tid) is None:
                added = self._swarm.add_seed(torrent, Path(handle.status().save_path))
                self._disk.state.exports[tid] = snapshot.tid
                self._disk.save_state()
                await self._disk.save_resume(added)
        else:
            torrent = await self._swarm.torrent_file(handle, trackers)
            tid = snapshot.tid
        state.write_atomic(output, torrent, mode=0o644)
        return {"path": str(output), "infohash": tid,
                "magnet": magnet_of(torrent), "v1_only": v1_only}

    def history(self, site_id: str) -> list[dict[str, Any]]:
        """The versions of a site this node knows, oldest first, for `peerweb log`."""
        public_key_from_site_id(site_id)  # BadAddress for a malformed id
        record = self._disk.state.sites.get(site_id)
        if record is None:
            raise NotFound(f"this node does not know site {site_id}; visit it first")
        current = record.pointer.infohash.hex()
        return [{**entry.to_json(), "current": entry.infohash == current,
                 "held": entry.infohash in self._store} for entry in record.history]


def _key_name_for(folder: Path) -> str:
    raw = folder.resolve().name or "site"
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in raw).strip(".-_")
    return (cleaned or "site")[:64]
