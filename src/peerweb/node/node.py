"""A peerweb node: the swarm engine, the sites it knows, and the jobs that keep them fresh.

``Node`` is the facade the gateway, the control API and the tests call. It is composed of
one part per concept, each in its own module::

    jobs         Jobs           owned background tasks, single-flight jobs by key
    persistence  Persistence    state.json and resume data, through one writer thread
    snapshots    SnapshotStore  the torrents held, reusing unchanged files, reading them
    handout      Handout        .torrent files and bundles for verifying workers
    retention    Retention      disk quota, superseded versions, idle pausing, pins
    resolver     Resolver       pointers (DHT, pushes, holders), visits, announces
    publisher    Publisher      publishing, the re-put loop, export, history
    volunteer    Volunteer      mirroring for origins in need, and asking for mirrors
    backups      Backups        the user's folders held by others, each copy proved
    restore      Restorer       a backup's version written out decrypted
    stepback     StepBack       a publisher stepping back from a crowd
    reach        Reach          reachability, the relay port, reservations, swarm detours

The decisions they apply are in ``peerweb.policy``. The node owns every background task it
starts (pointer refreshes, periodic re-puts, resume data saves) and cancels them all on
``stop()``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config import NodeConfig
from ..content import addressing
from ..content import pointer as ptr
from ..content.identity import KeyStore
from ..dns.service import DnsService
from ..http.peer_client import PeerClient
from ..names.resolution import Resolution
from ..names.service import NameService, Published
from ..policy.propagation import Endpoint
from ..swarm.engine import Swarm
from ..swarm.settings import outgoing_host
from ..webcache.service import WebCache
from . import state
from .backups import Backups
from .bridge import Bridge
from .dnsshare import NodeSharing
from .handout import Handout
from .jobs import Jobs
from .persistence import Persistence
from .private import PrivateSites
from .publisher import Publisher, PublishResult, magnet_for
from .reach import Reach
from .resolver import Resolver
from .restore import Restorer
from .retention import Retention
from .snapshots import SMALL_FILE_LIMIT, Snapshot, SnapshotStore
from .stepback import StepBack
from .volunteer import Volunteer

__all__ = ["BUNDLE_LIMIT", "SMALL_FILE_LIMIT", "Node", "PublishResult", "Snapshot",
           "magnet_for"]

# The most a bundle of a snapshot's small files may hold (see Node.bundle).
BUNDLE_LIMIT = 4 * 1024 * 1024


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.timings = config.timings
        self.data_dir = config.data_dir
        self.keys = KeyStore(self.data_dir / "keys")
        self.swarm = Swarm(config)
        self.peers = PeerClient(outgoing_host(config))
        self.gateway_port = config.gateway[1]
        self.started = time.time()
        self._jobs = Jobs()
        self._disk = Persistence(self.data_dir, self.timings, self.swarm, self._jobs,
                                 lambda: self._store.handles())
        announce_soon = asyncio.Event()
        self._store = SnapshotStore(config, self.swarm, self._jobs, self._disk,
                                    announce_soon.set)
        self.small_files = self._store.small_files
        self._handout = Handout(self.swarm, self._store)
        self._retention = Retention(config, self.swarm, self._disk, self._store)
        self._resolver = Resolver(config, self.swarm, self.peers, self._jobs, self._disk,
                                  self._store, announce_soon)
        self.private = PrivateSites(self.data_dir, self._store)
        self._publisher = Publisher(config, self.keys, self.swarm, self._disk, self._store,
                                    self._resolver, self.peers, self.gateway_url, self._jobs,
                                    self.private.keyring)
        self._volunteer = Volunteer(config, self.swarm, self.peers, self._disk, self._resolver,
                                    self._retention, self._store, self._gateway_base)
        self._stepback = StepBack(self.timings, self.swarm, self._disk)
        self.backups = Backups(self.data_dir, self.swarm, self.peers, self._store,
                               self.private.keyring, self._publish_backup,
                               self._volunteer.find_volunteers, self._published_version,
                               lambda: self.peer_endpoint, self.timings.backup_check_soon,
                               self.timings.backup_check_later)
        self.restorer = Restorer(self.private, self.peers, self.open_site, self.open_snapshot,
                                 self._pointer_of, self._backup_places)
        # Swarm detours are for torrents still waiting for their metadata above all: a
        # visitor whose every peer sits behind a NAT gets no metadata without them.
        self.reach = Reach(config, self.swarm, self._jobs,
                           lambda: [*self._store, *self._store.opening()])
        self.names = NameService(self.data_dir, self.keys, self.swarm, self.timings)
        # The shared cache of public pages (issue 18); disabled without --web-cache.
        self.web = WebCache(config.web_cache, self.data_dir, self.swarm,
                            lambda: self.peer_endpoint, self._jobs.spawn,
                            upload_limit=config.upload_limit,
                            swarm_upload=self._swarm_upload_rate)
        self.dns = DnsService(config.dns, NodeSharing(self.swarm, self.peers,
                                                      lambda: self.peer_port))
        self.names.bridge = Bridge(self.dns, self._resolver).resolve
        self.content_dir: Path = self._disk.content_dir
        self.resume_dir: Path = self._disk.resume_dir

    @property
    def state(self) -> state.NodeState:
        """What the node remembers across restarts (loaded at ``start``)."""
        return self._disk.state

    @property
    def quota(self) -> int:
        """Bytes of visited sites to keep (set at ``start``)."""
        return self._retention.quota

    @property
    def peer_port(self) -> int:
        """Port of this node's peer service (set by whoever serves it; 0: none)."""
        return self._resolver.peer_port

    @peer_port.setter
    def peer_port(self, port: int) -> None:
        self._resolver.peer_port = port

    async def _swarm_upload_rate(self) -> int:
        return int((await self.swarm.statistics()).upload_rate)

    @property
    def peer_endpoint(self) -> Endpoint:
        """This node's peer service as others find it in the DHT."""
        return self._resolver.peer_endpoint

    def gateway_url(self, site_id: str) -> str:
        """The site's address for a browser on this machine, built from the gateway's actual
        address (the path form where ``*.localhost`` cannot reach it)."""
        return addressing.site_urls(self.config.gateway[0], self.gateway_port, site_id)[0]

    def gateway_path_url(self, site_id: str) -> str:
        """The path form of the site's address, for clients that cannot resolve
        ``*.localhost`` (wget, curl, Python)."""
        return addressing.site_urls(self.config.gateway[0], self.gateway_port, site_id)[1]

    def _gateway_base(self) -> str:
        return addressing.gateway_base(self.config.gateway[0], self.gateway_port)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._disk.load()
        self._retention.quota = self.config.effective_quota()
        self.swarm.on_torrent_finished = self._on_finished
        self.swarm.on_file_completed = self._disk.on_file_completed
        await self.swarm.start()
        for handle in self._disk.restore():
            if handle.torrent_file() is None:  # resume data without metadata: an orphan
                self.swarm.remove(handle, delete_files=True)
                continue
            # Every torrent in the session is a snapshot: counted in status and the quota,
            # its resume data kept up to date, whether or not anyone visits it again.
            await self._store.register(handle)
        self._jobs.spawn(self._publisher.republish_loop())
        self._jobs.spawn(self._disk.resume_loop())
        self._jobs.spawn(self._resolver.announce_loop())
        self._jobs.spawn(self._watch_loop())
        self._jobs.spawn(self._stepback.loop())
        self._jobs.spawn(self.backups.loop())
        self._jobs.spawn(self.names.republish_loop())
        await self.web.start()
        self._jobs.spawn(self.dns.reannounce_loop())

    async def stop(self) -> None:
        await self.reach.stop()
        await self._jobs.cancel_all()
        await self.web.close()
        await self._disk.close()
        await self.peers.close()
        await self.swarm.close()

    async def _watch_loop(self) -> None:
        """Each tick: metered mode pauses idle torrents, a volunteer ends expired leases, and
        held sites due a DHT check get one."""
        tick = self.timings.watch_tick
        if self.config.metered:
            tick = min(tick, self.config.metered_idle)
        if self.config.volunteer:
            tick = min(tick, self.config.mirror_lease)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if self.config.metered:
                self._retention.pause_idle(now)
            if self.config.volunteer:
                self._volunteer.end_mirror_leases()
            await self._resolver.poll(now)

    def _on_finished(self, tid: str) -> None:
        snapshot = self._store.get(tid)
        if snapshot is not None:
            self._jobs.spawn(self._disk.save_resume(snapshot.handle))
            if self.config.volunteer:  # made now, not while a verifying visitor waits on it
                self._jobs.spawn(self._handout.torrent_bytes(tid))
        self._retention.drop_superseded(tid)
        self._retention.enforce_quota()

    # -- sites and snapshots (resolver, snapshots) -------------------------------------------

    def accept_pointer(self, candidate: ptr.Pointer, force: bool = False,
                       source: Endpoint | None = None, unsolicited: bool = False,
                       holders: Sequence[Endpoint] = (), planned: bool = False) -> bool:
        """Keep ``candidate`` if newer than the pointer held (``Resolver.accept_pointer``);
        ``unsolicited``: pushed to the peer port, kept only for a site known here;
        ``holders``: others the push named, to forward to (``planned``: only to them)."""
        return self._resolver.accept_pointer(candidate, force, source, unsolicited, holders,
                                             planned=planned)

    def admit_push(self, address: str) -> float:
        """A push from ``address`` to the peer port: 0 if it may go on, else the seconds it
        should wait (``policy.admission``)."""
        return self._resolver.admit_push(address, time.monotonic())

    async def refresh_pointer(self, site_id: str) -> ptr.Pointer | None:
        """Ask the DHT for the site's newest pointer; one query per site at a time."""
        return await self._resolver.refresh_pointer(site_id)

    def signed_pointer(self, site_id: str) -> ptr.Pointer:
        """The newest signed pointer held for a site, as mirrors hand it to visitors' workers."""
        return self._resolver.signed_pointer(site_id)

    async def holders(self, site_id: str, max_age: float | None = None) -> list[Endpoint]:
        """Peer ports of nodes that announced they hold a site."""
        return await self._resolver.holders(site_id, max_age)

    async def open_site(self, site_id: str) -> Snapshot:
        """The snapshot to serve for a site: the cached version at once, refreshed behind."""
        return await self._resolver.open_site(site_id)

    async def open_snapshot(self, tid: str, site_id: str | None = None,
                            trackers: tuple[str, ...] = ()) -> Snapshot:
        """A torrent by info-hash (hex), fetched from peers if this node does not have it."""
        return await self._store.open(tid, site_id, trackers)

    def serving(self, site_id: str | None, tid: str) -> bool:
        """Whether a visit is served from snapshot ``tid`` right now (counts as a visit)."""
        return self._resolver.serving(site_id, tid)

    def holds(self, tid: str) -> bool:
        """Whether this node has the snapshot (an info-hash in hex) open and on disk."""
        return tid in self._store

    async def read_file(self, snapshot: Snapshot, index: int) -> bytes:
        """A whole small file, from memory when possible."""
        return await self._store.read_file(snapshot, index)

    def stream(self, snapshot: Snapshot, index: int, start: int, end: int) -> Any:
        """Bytes ``start`` to ``end`` of a file, as an async iterator of verified chunks."""
        return self._store.stream(snapshot, index, start, end)

    async def torrent_bytes(self, tid: str) -> bytes:
        """The .torrent of a snapshot held whole here, with its piece layers."""
        return await self._handout.torrent_bytes(tid)

    def kept_torrent(self, tid: str) -> bytes | None:
        """The .torrent of a snapshot if already made (``torrent_bytes``), without waiting."""
        return self._handout.kept_torrent(tid)

    async def bundle(self, tid: str) -> bytes:
        """The small files of a snapshot held whole here, in one body (``Handout.bundle``),
        at most ``BUNDLE_LIMIT`` bytes."""
        return await self._handout.bundle(tid, BUNDLE_LIMIT)

    # -- names (peerweb.names) -------------------------------------------------------------

    async def resolve_name(self, name: str) -> Resolution:
        """What a name (petname, ``label.zone...``) names; UnknownName if nothing."""
        return await self.names.resolve(name)

    async def publish_name(self, key_name: str, label: str, target: str | None,
                           ttl: int) -> Published:
        """Sign and put a record in the zone of ``key_name`` (None: revoke the label)."""
        return await self.names.publish(key_name, label, target, ttl)

    # -- retention -------------------------------------------------------------------------

    def set_pinned(self, site_id: str, pinned: bool) -> None:
        """Pinned sites are kept whatever the disk quota."""
        self._retention.set_pinned(site_id, pinned)

    def enforce_quota(self) -> list[str]:
        """Evict least recently used visited snapshots to fit the quota; the evicted ones."""
        return self._retention.enforce_quota()

    # -- publishing ------------------------------------------------------------------------

    async def publish(self, folder: Path, key_name: str | None = None, require_index: bool = True,
                      progress: Callable[[int, int], None] | None = None,
                      trackers: tuple[str, ...] = (),
                      web_seeds: tuple[str, ...] = (),
                      wait_for_dht: bool = True, private: bool = False,
                      domains: tuple[str, ...] | None = None) -> PublishResult:
        """Publish a folder as the next version of the site signed by ``key_name``
        (``wait_for_dht``: see ``Publisher.publish``; ``private``: encrypted, see
        ``peerweb.private``; ``domains``: claimed in the pointer, None keeps the last)."""
        result = await self._publisher.publish(folder, key_name, require_index, progress,
                                               trackers, web_seeds, wait_for_dht, private,
                                               domains)
        return dataclasses.replace(result, path_url=self.gateway_path_url(result.site_id))

    async def export(self, site_id: str, output: Path, v1_only: bool = False) -> dict[str, Any]:
        """Write the current version of a site held here as a .torrent for other clients."""
        return await self._publisher.export(site_id, output, v1_only)

    def history(self, site_id: str) -> list[dict[str, Any]]:
        """The versions of a site this node knows, oldest first, for `peerweb log`."""
        return self._publisher.history(site_id)

    # -- volunteering ----------------------------------------------------------------------

    async def mirror(self, site_id: str, requester: str | None = None) -> ptr.Pointer:
        """Volunteer: start mirroring a site that asked for help (signed sites only), within
        the disk quota, the upload capacity and ``requester``'s share (None: the user's)."""
        return await self._volunteer.mirror(site_id, requester)

    async def load_report(self) -> dict[str, Any]:
        """What a volunteer tells origins: its load and the versions it holds."""
        return await self._volunteer.load_report()

    async def ask_for_help(self, site_id: str, wanted: int = 3) -> list[dict[str, Any]]:
        """For an origin in need: the gateways of volunteers holding the site's current
        version, least loaded first, after asking more to mirror it if too few do."""
        return await self._volunteer.ask_for_help(site_id, wanted)

    # -- backups (node.backups, node.restore) ---------------------------------------------

    async def _publish_backup(self, folder: Path) -> PublishResult:
        # Waits for the DHT put: the volunteers asked next look the pointer up there.
        return await self.publish(folder, require_index=False, private=True)

    def _published_version(self, site_id: str) -> tuple[int, str] | None:
        record = self.state.published.get(site_id)
        return (record.version, record.infohash) if record is not None else None

    def _pointer_of(self, site_id: str, version: int | None) -> ptr.Pointer | None:
        """The signed pointer of a version of a site known here (None: the newest)."""
        record = self.state.sites.get(site_id)
        if record is None:
            return None
        if version is None or record.pointer.version == version:
            return record.pointer
        return next((e.pointer for e in record.history if e.version == version), None)

    async def _backup_places(self, site_id: str) -> list[Endpoint]:
        """Peer ports that may keep a site's older versions: its holders and volunteers."""
        holders = await self.holders(site_id)
        volunteers = await self._volunteer.find_volunteers(8)
        return [e for e in dict.fromkeys([*holders, *volunteers]) if e != self.peer_endpoint]

    # -- status ----------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        stats = await self.swarm.statistics()
        sites = []
        by_tid = {s.pointer.infohash.hex(): (sid, s) for sid, s in self.state.sites.items()}
        # Every snapshot held counts, whether a site's current version, an older one or an
        # /ih/ fetch (a v1 export shares its snapshot's files).
        disk = sum(int(s.handle.status().total_wanted_done) for s in self._store.all()
                   if s.handle.is_valid())
        for sid, record in sorted(self.state.sites.items()):
            tid = record.pointer.infohash.hex()
            handle = self.swarm.find(tid)
            entry: dict[str, Any] = {
                "site_id": sid, "version": record.pointer.version, "infohash": tid,
                "published": sid in self.state.published, "pinned": record.pinned,
                "stepped_back": self._stepback.stepped_back(tid),
                "url": self.gateway_url(sid), "path_url": self.gateway_path_url(sid),
            }
            held = self._store.get(tid)
            if held is not None and self.private.is_private(held):
                # Its torrent's names are opaque and its sizes bucketed: nothing more shown.
                entry.update(private=True, readable=self.private.keyring.get(sid) is not None)
            if handle is not None:
                st = handle.status()
                entry.update(progress=round(float(st.progress), 4), peers=int(st.num_peers),
                             upload_rate=int(st.upload_rate),
                             download_rate=int(st.download_rate),
                             uploaded=int(st.all_time_upload),
                             downloaded=int(st.all_time_download),
                             redundant=int(st.total_redundant_bytes),
                             bytes_on_disk=int(st.total_wanted_done))
                error = self.swarm.torrent_error(tid)
                if error:
                    entry["error"] = error
            sites.append(entry)
        snapshots = [tid for tid in self._store if tid not in by_tid]
        return {
            "gateway": self._gateway_base() + "/",
            "network": self.config.network.value,
            "listen": f"{self.config.listen[0]}:{self.swarm.listen_port}",
            "uptime": round(time.time() - self.started, 1),
            "dht_nodes": stats.dht_nodes, "peers": stats.peers,
            "upload_rate": stats.upload_rate, "download_rate": stats.download_rate,
            "uploaded": stats.total_upload, "downloaded": stats.total_download,
            "hash_failures": stats.hash_failures, "disk_used": disk,
            "disk_quota": self.quota,
            "sites": sites, "snapshots": snapshots,
            **self.reach.status(),
        }
