"""Publishing: a folder becomes the next version of a site, signed by one of this node's keys,
and its pointer is kept in the DHT (BEP 44 items expire about two hours after the last put).

Which key signs is ``policy.keys.choose_key`` (the key this folder was published with before,
the one the user names, or a new one). The version is one past the highest this key ever
signed as far as anyone knows (``policy.versions.plan_version``): the node's state, the counter
kept beside the key, the DHT and the site's holders, asked while the folder is copied and
hashed. libtorrent picks the BEP 44 sequence number. A publish that fails or is cancelled
leaves nothing behind: no key, no copy of the folder, no state. Also the read side of what a
node published or learned: a site's history and its export as a .torrent for other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import NodeConfig
from ..content import pointer as ptr
from ..content.identity import KeyStore, SiteKey, public_key_from_site_id
from ..errors import NotFound, UsageError
from ..fileio import write_atomic
from ..http.peer_client import PeerClient
from ..policy import keys as key_policy
from ..policy import versions
from ..private import chunks, layout
from ..private.keyring import Keyring
from ..private.readers import ReaderList
from ..swarm import build as bundle
from ..swarm.engine import Swarm, magnet_of, torrent_file_id
from . import state
from .jobs import Jobs
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
    """How many DHT nodes accepted the pointer (0: the node re-puts it later, the put is
    still under way (``dht_pending``), or, for an unchanged site, the DHT already held it)."""
    key: str = ""
    """The name of the key that signed."""
    key_created: bool = False
    """The key was made by this publish: the site's only key, to back up (`key export`)."""
    unchanged: bool = False
    """The bytes were those of the current version: announced again, no new version."""
    version_from: str = versions.NO_SOURCE
    """Where the highest earlier version was learned (``policy.versions.VERSION_SOURCES``:
    state, key, dht, holders; ``none`` for a first version)."""
    previous_version: int = 0
    """The highest earlier version known (0: none)."""
    dht_pending: bool = False
    """The publish returned before the DHT confirmed the put, which goes on in the
    background (and is retried by the re-put loop if nobody stores it)."""
    private: bool = False
    """Published encrypted (``--private``): readable only with the site's read key."""
    path_url: str = ""
    """The site in the gateway's path form, for clients that cannot resolve *.localhost."""

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class _Heard:
    """The newest pointers the network holds for a site, asked before signing."""

    dht: ptr.Pointer | None = None
    holders: ptr.Pointer | None = None


def magnet_for(site_id: str) -> str:
    """BEP 46 magnet link of a site."""
    return f"magnet:?xs=urn:btpk:{public_key_from_site_id(site_id).hex()}"


class Publisher:
    """The sites this node publishes and the re-put loop that keeps their pointers alive.

    ``gateway_url`` gives a site's URL on this node's gateway."""

    def __init__(self, config: NodeConfig, keys: KeyStore, swarm: Swarm, disk: Persistence,
                 store: SnapshotStore, resolver: Resolver, peers: PeerClient,
                 gateway_url: Callable[[str], str], jobs: Jobs,
                 keyring: Keyring | None = None) -> None:
        self._config = config
        self._timings = config.timings
        self._keys = keys
        self._swarm = swarm
        self._disk = disk
        self._store = store
        self._resolver = resolver
        self._peers = peers
        self._gateway_url = gateway_url
        self._jobs = jobs
        self._reput_soon = asyncio.Event()
        self._keyring = keyring or Keyring(config.data_dir)

    async def publish(self, folder: Path, key_name: str | None = None, require_index: bool = True,
                      progress: Callable[[int, int], None] | None = None,
                      trackers: tuple[str, ...] = (), web_seeds: tuple[str, ...] = (),
                      wait_for_dht: bool = True, private: bool = False,
                      domains: tuple[str, ...] | None = None) -> PublishResult:
        """Publish a folder as the next version of the site signed by ``key_name`` (None: the
        key this folder was published with before, or a new one).

        The new pointer is pushed to the site's holders at once. ``wait_for_dht`` False
        returns then, with the DHT put (which took 20-120 ms here, seconds on the open
        internet) and the resume data left to run in the background: holders hear of the
        version by push, and anyone else looks it up a moment later.

        ``private`` encrypts it first (``peerweb.private``): a fresh content key for this
        version, sealed under the site's read key (kept in the keyring, made on the first
        private publish), and the torrent built over the ciphertext.

        ``trackers`` and ``web_seeds`` (BEP 19) are listed in the torrent and in the signed
        pointer, so visitors announce to the trackers and fetch from the web seeds as well.
        ``domains`` are claimed in the pointer (None: those of the previous version), bridged
        where their ``_peerweb`` TXT record names the site (``peerweb.names.bridge``).
        Cancelled, it removes its copy of the folder and creates no key."""
        try:
            ptr.check_urls(trackers, web_seeds)  # before the hashing, not after
            ptr.check_domains(domains or ())
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        resolved = folder.resolve()
        # Refusals come before any work; the key itself is created only once the folder is
        # built, so a folder that cannot be published (or a cancel) leaves no key behind.
        choice = self._choose_key(resolved, key_name)
        asking: asyncio.Task[_Heard] | None = None
        known_site = None if choice.create else self._keys.get(choice.name).site_id
        read_key = None
        readers = ReaderList(self._config.data_dir).of(known_site) if known_site else []
        if private:
            read_key = (self._keyring.get(known_site) if known_site else None) or os.urandom(
                chunks.KEY_SIZE)
        if known_site is not None:
            asking = asyncio.create_task(self._ask_network(known_site))
        writer = layout.stage_writer(read_key, readers) if read_key else None
        try:
            built = await self._build(folder, require_index, progress, trackers, web_seeds,
                                      writer)
            tid = built.infohash.hex()
            if self._swarm.removing(tid):
                # These very bytes were a version superseded a moment ago (a revert): its
                # files are deleted after the torrent goes, maybe from the copy just kept.
                await self._swarm.wait_removed(tid, self._config.fetch_timeout)
                if not await asyncio.to_thread(bundle.is_whole, built):
                    built = await self._build(folder, require_index, progress, trackers,
                                              web_seeds, writer)
        except BaseException:
            if asking is not None:
                asking.cancel()
            raise
        try:
            heard = await asking if asking is not None else _Heard()
        except BaseException:
            self._discard(built)
            raise
        # From here to the state saved nothing awaits: a cancel cannot leave half a publish.
        choice = self._choose_key(resolved, key_name)  # again: another publish may have run
        key = self._keys.create(choice.name) if choice.create else self._keys.get(choice.name)
        if choice.create:
            log.info("created key %r (site %s) for %s: back it up with `peerweb key export`",
                     key.name, key.site_id[:12], resolved)
        if read_key is not None:
            self._keyring.put(key.site_id, read_key)  # before any pointer names the version
        tid = built.infohash.hex()
        handle = self._swarm.find(tid)
        if handle is None:
            handle = self._swarm.add_seed(built.torrent, built.content_dir)
        snapshot = await self._store.register(handle)  # no await inside: not a cancel point
        site_id = key.site_id
        if domains is None:
            before = self._disk.state.published.get(site_id)
            domains = before.domains if before is not None else ()
        plan = self._plan(key, built, trackers, web_seeds, heard, domains)
        for offered in (heard.dht, heard.holders):  # the network's news, as from any source
            if offered is not None:
                self._resolver.accept_pointer(offered)
        if not plan.unchanged:
            self._keys.note_signed(key.name, plan.version)  # before any signature leaves
            # A locally signed pointer serves this node at once; the DHT gets its own
            # signature (libtorrent picks the BEP 44 sequence number).
            local = ptr.sign(key, built.infohash, plan.version, seq=plan.version,
                             trackers=trackers, web_seeds=web_seeds, domains=domains)
            held = self._resolver.held_pointer(site_id)
            self._resolver.accept_pointer(local, force=True, forward=False)
            if held is not None and held.infohash != local.infohash:
                self._jobs.spawn(self._resolver.push_wave(local))
            self._store.note_changes(snapshot)
        self._disk.state.published[site_id] = state.PublishedRecord(
            key.name, plan.version, tid, trackers, web_seeds, domains)
        self._disk.state.folders[str(resolved)] = key.name
        self._disk.save_state()
        log.info("published %s as v%d of %s with key %r%s (highest known before: v%d, from %s)",
                 resolved, plan.version, site_id[:12], key.name,
                 " (unchanged)" if plan.unchanged else "", plan.highest, plan.version_from)
        stored = 0
        dht_has_it = (heard.dht is not None and heard.dht.version == plan.version
                      and heard.dht.infohash == built.infohash)
        put = versions.put_needed(plan.unchanged, dht_has_it)
        if not wait_for_dht:
            # The state is saved and the pushes are under way: nothing left needs the caller.
            self._jobs.spawn(self._disk.save_resume(handle))
            if put:
                self._jobs.spawn(self._put_or_retry(site_id, built.infohash, plan.version))
        else:
            await self._disk.save_resume(handle)
            if put:
                stored = await self._put_or_retry(site_id, built.infohash, plan.version)
        return PublishResult(site_id, plan.version, tid, magnet_for(site_id),
                             self._gateway_url(site_id), built.file_count, built.total_size,
                             stored, key.name, choice.create, plan.unchanged,
                             plan.version_from, plan.highest, put and not wait_for_dht,
                             private)

    def _choose_key(self, folder: Path, given: str | None) -> key_policy.KeyChoice:
        return key_policy.choose_key(str(folder), folder.name, given,
                                     self._disk.state.folders, set(self._keys.names()))

    async def _build(self, folder: Path, require_index: bool,
                     progress: Callable[[int, int], None] | None,
                     trackers: tuple[str, ...], web_seeds: tuple[str, ...],
                     writer: bundle.StageWriter | None = None) -> bundle.Bundle:
        """``bundle.build`` in a thread; cancelled, it stops the thread and waits for it to
        remove its copy."""
        cancel = threading.Event()
        work = asyncio.ensure_future(asyncio.to_thread(
            bundle.build, folder, self._disk.content_dir, require_index, progress, trackers,
            web_seeds, cancel, writer))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            cancel.set()
            await _wait_out(work)
            if not work.cancelled() and work.exception() is None:
                self._discard(work.result())  # finished just as the cancel came
            log.info("publish of %s cancelled: its copy is removed", folder)
            raise

    def _discard(self, built: bundle.Bundle) -> None:
        """Remove the copy of a publish that did not complete, unless a torrent seeds it."""
        if self._swarm.find(built.infohash.hex()) is None:
            shutil.rmtree(built.content_dir, ignore_errors=True)

    async def _ask_network(self, site_id: str) -> _Heard:
        """The newest pointers the DHT and the site's holders hold for it (None where none
        answered in time)."""
        if await self._swarm.dht_node_count() == 0:
            return _Heard()
        public_key = public_key_from_site_id(site_id)
        wait = self._timings.dht_get_timeout

        async def from_holders() -> ptr.Pointer | None:
            newest: ptr.Pointer | None = None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    me = self._resolver.peer_endpoint
                    endpoints = [e for e in await self._resolver.holders(
                        site_id, grace=self._timings.publish_holders_grace) if e != me]
                    for offered in await self._peers.fetch_any(endpoints, site_id):
                        if ptr.is_newer(offered, newest):
                            newest = offered
            return newest

        asking = asyncio.ensure_future(from_holders())
        try:
            dht = await self._swarm.get_pointer(public_key, wait)
            record = self._disk.state.sites.get(site_id)
            if not versions.holders_worth_waiting(record.pointer if record else None, dht):
                # Whatever the holders said by now, and no wait for the rest.
                await asyncio.wait({asking}, timeout=0)
                return _Heard(dht, asking.result() if asking.done() else None)
            return _Heard(dht, await asking)
        finally:
            asking.cancel()

    def _plan(self, key: SiteKey, built: bundle.Bundle, trackers: tuple[str, ...],
              web_seeds: tuple[str, ...], heard: _Heard,
              domains: tuple[str, ...] = ()) -> versions.VersionPlan:
        site_id = key.site_id
        current = self._disk.state.sites.get(site_id)
        published = self._disk.state.published.get(site_id)
        known = {
            "state": max(current.pointer.version if current else 0,
                         published.version if published else 0),
            "key": self._keys.signed_version(key.name),
            "dht": heard.dht.version if heard.dht else 0,
            "holders": heard.holders.version if heard.holders else 0,
        }
        newest = current.pointer if current else None
        for offered in (heard.dht, heard.holders):
            if offered is not None and ptr.is_newer(offered, newest):
                newest = offered
        same_bytes = (newest is not None and newest.infohash == built.infohash
                      and newest.trackers == trackers and newest.web_seeds == web_seeds
                      and newest.domains == domains)
        return versions.plan_version(known, newest.version if newest else 0, same_bytes)

    async def _put_or_retry(self, site_id: str, infohash: bytes, version: int) -> int:
        stored = 0
        try:
            stored = await self._put(site_id, infohash, version)
        finally:
            if stored == 0:
                self._reput_soon.set()  # also when cancelled: the re-put loop puts it
        return stored

    async def _put(self, site_id: str, infohash: bytes, version: int) -> int:
        published = self._disk.state.published.get(site_id)
        if published is None or await self._swarm.dht_node_count() == 0:
            return 0
        key = self._keys.get(published.key_name)
        signed, stored = await self._swarm.put_pointer(key, infohash, version,
                                                       self._timings.dht_put_timeout,
                                                       published.trackers, published.web_seeds,
                                                       published.domains)
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
        write_atomic(output, torrent, mode=0o644)
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


async def _wait_out(task: asyncio.Future[Any]) -> None:
    """Wait for ``task`` to end, through further cancels of the waiter: for a cancel path,
    which re-raises its own cancel once the work it stopped is cleaned up."""
    while not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({task})
