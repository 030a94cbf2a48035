"""The swarm engine: one libtorrent session, driven from asyncio.

libtorrent does the BitTorrent work (wire protocol, DHT, piece picking, choking, uTP). This
adapter turns its alerts into awaitable results: a DHT put or get, a torrent's metadata, the
verified bytes of a piece. ``Swarm`` is the facade the node uses; it puts the parts together:

- ``settings``: the session's settings and alert categories;
- ``alerts``: the pump that hands alerts to their handlers (the table is in ``Swarm``);
- ``rendezvous``: futures waiting on results, by key;
- ``dht``: signed pointers, announces and peer lookups;
- ``torrents``: torrents added, removed and rechecked, metadata, resume data, errors;
- ``reader`` (with ``held``, ``diskpiece`` and ``peerweb.policy.readplan``): verified bytes;
- ``stats``: the session's counters.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import libtorrent as lt

from ..config import NodeConfig
from ..content import pointer as ptr
from ..content.identity import SiteKey
from ..content.item import SignedItem
from ..policy.readplan import (
    DEADLINE_STEP_MS,
    DISK_RUN_PIECES,
    FIRST_PIECE_DEADLINE_MS,
    READAHEAD_PIECES,
    STALL_CHECKS,
)
from . import settings, torrents
from .alerts import AlertPump, Handler
from .dht import Dht
from .handle import torrent_id
from .held import HeldPieces
from .items import SaltedItems
from .reader import PieceReader
from .settings import session_settings
from .stats import Counters, SwarmStats
from .torrents import (
    DEFAULT_PRIORITY,
    DISK_ADVICE,
    MAX_MISMATCH_RESTARTS,
    Torrents,
    is_pad_file,
    magnet_of,
    torrent_file_id,
)

__all__ = [
    "DEADLINE_STEP_MS",
    "DEFAULT_PRIORITY",
    "DISK_ADVICE",
    "DISK_RUN_PIECES",
    "FIRST_PIECE_DEADLINE_MS",
    "MAX_MISMATCH_RESTARTS",
    "READAHEAD_PIECES",
    "STALL_CHECKS",
    "Swarm",
    "SwarmStats",
    "is_pad_file",
    "magnet_of",
    "session_settings",
    "torrent_file_id",
    "torrent_id",
]


class Swarm:
    """One libtorrent session and the parts that wait on its alerts."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.timings = config.timings
        # The one reference to the session: the parts ask for it at each call, so dropping
        # this attribute ends the session (see close).
        self.session: Any = settings.open_session(config)
        self.on_torrent_finished: Callable[[str], None] | None = None
        self.on_file_completed: Callable[[str], None] | None = None
        # Reachability evidence (see node.reach): the address peers and DHT nodes say they
        # see us at (BEP 10 ``yourip`` and DHT votes), and connections accepted from peers.
        self.on_external_ip: Callable[[str], None] | None = None
        self.on_incoming: Callable[[str], None] | None = None

        def session() -> Any:
            return self.session

        held = HeldPieces()
        self._torrents = Torrents(session, held, self.timings)
        self._reader = PieceReader(self._torrents, held, self.timings)
        self._dht = Dht(session, self.timings)
        self._items = SaltedItems(session, self.timings)
        self._counters = Counters(session)
        table: dict[type, Handler] = {
            lt.dht_put_alert: self._on_put,
            lt.dht_mutable_item_alert: self._on_item,
            lt.read_piece_alert: self._reader.on_read_piece,
            lt.piece_finished_alert: self._reader.on_piece_finished,
            lt.metadata_received_alert: self._torrents.on_metadata,
            lt.save_resume_data_alert: self._torrents.on_resume,
            lt.save_resume_data_failed_alert: self._torrents.on_resume_failed,
            lt.hash_failed_alert: self._torrents.on_hash_failed,
            lt.file_error_alert: self._reader.on_file_error,
            lt.torrent_error_alert: self._reader.on_torrent_error,
            lt.torrent_finished_alert: self._on_finished,
            lt.file_completed_alert: self._on_file_completed,
            lt.torrent_checked_alert: self._reader.on_checked,
            lt.dht_get_peers_reply_alert: self._dht.on_peers,
            lt.session_stats_alert: self._counters.on_stats,
            lt.torrent_removed_alert: self._torrents.on_removed,
            lt.torrent_deleted_alert: self._torrents.on_removed,
            lt.torrent_delete_failed_alert: self._torrents.on_removed,
            lt.external_ip_alert: self._on_external_ip,
            lt.incoming_connection_alert: self._on_incoming,
        }
        self._alerts = AlertPump(session, table)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._alerts.start()
        for node in self.config.bootstrap:
            self.session.add_dht_node(node)
        self._alerts.drain()

    async def close(self) -> None:
        self._alerts.stop()
        self.session.pause()
        for part in (self._counters, self._dht, self._items, self._reader, self._torrents):
            part.cancel_all()
        # Dropping the last reference joins libtorrent's threads: do that off the event loop.
        box = [self.session]
        self.session = None
        await asyncio.to_thread(box.clear)
        self._alerts.close()

    @property
    def listen_port(self) -> int:
        return int(self.session.listen_port())

    def add_dht_node(self, address: tuple[str, int]) -> None:
        self.session.add_dht_node(address)

    # -- counters --------------------------------------------------------------------------

    async def counters(self, timeout: float = 2.0) -> dict[str, int]:
        """Fresh session counters (libtorrent's session_stats metrics, by name)."""
        return await self._counters.counters(timeout)

    async def dht_node_count(self) -> int:
        return await self._counters.dht_node_count()

    async def wait_dht_ready(self, timeout: float) -> bool:
        """Wait until the routing table has a node; False if none came within ``timeout``."""
        return await self._counters.wait_dht_ready(timeout)

    async def statistics(self) -> SwarmStats:
        return await self._counters.statistics(lambda: self.hash_failures)

    @property
    def hash_failures(self) -> int:
        """Pieces that failed their hash check (or whose v1 and v2 hashes disagreed)."""
        return self._torrents.hash_failures

    # -- DHT pointers (BEP 44 / BEP 46) and announces ------------------------------------------

    async def put_pointer(self, key: SiteKey, infohash: bytes, version: int, timeout: float,
                          trackers: tuple[str, ...] = (), web_seeds: tuple[str, ...] = (),
                          domains: tuple[str, ...] = ()) -> tuple[ptr.Pointer | None, int]:
        """Store a signed pointer in the DHT. Returns the pointer libtorrent signed (None if the
        put did not finish in time) and how many DHT nodes stored it."""
        return await self._dht.put_pointer(key, infohash, version, timeout, trackers, web_seeds,
                                           domains)

    async def get_pointer(self, public_key: bytes, timeout: float) -> ptr.Pointer | None:
        """The newest validly signed pointer the DHT holds for a key, or None (see Dht)."""
        return await self._dht.get_pointer(public_key, timeout)

    async def put_item(self, key: SiteKey, value: bytes, salt: bytes, timeout: float) -> int:
        """Store a salted item (names under a key); how many DHT nodes stored it."""
        return await self._items.put(key, value, salt, timeout)

    async def get_items(self, public_key: bytes, salt: bytes,
                        timeout: float) -> list[SignedItem]:
        """The validly signed items the DHT holds under (key, salt) (see SaltedItems)."""
        return await self._items.get(public_key, salt, timeout)

    def _on_put(self, alert: Any) -> None:
        # Pointers have no salt; names under a key have one (see items).
        (self._items if bytes(alert.salt) else self._dht).on_put(alert)

    def _on_external_ip(self, alert: Any) -> None:
        if self.on_external_ip is not None:
            self.on_external_ip(str(alert.external_address))

    def _on_incoming(self, alert: Any) -> None:
        if self.on_incoming is not None:
            self.on_incoming(str(alert.endpoint[0]))

    def connect_peer(self, tid: str, endpoint: tuple[str, int]) -> bool:
        """Ask libtorrent to connect torrent ``tid`` to ``endpoint`` (a relayed peer's local
        forwarder, see node.reach); False if the torrent is not here."""
        handle = self._torrents.find(tid)
        if handle is None or not handle.is_valid():
            return False
        handle.connect_peer(endpoint)
        return True

    def torrent_peers(self, tid: str) -> int:
        """Peers torrent ``tid`` is connected to now (0 if it is not here)."""
        handle = self._torrents.find(tid)
        return int(handle.status().num_peers) if handle is not None and handle.is_valid() else 0

    def _on_item(self, alert: Any) -> None:
        (self._items if bytes(alert.salt) else self._dht).on_item(alert)

    def announce(self, key: bytes, port: int) -> None:
        """Tell the DHT that this node listens on ``port`` for ``key`` (20 bytes)."""
        self._dht.announce(key, port)

    async def find_peers(self, key: bytes, timeout: float,
                         grace: float | None = None) -> list[tuple[str, int]]:
        """Endpoints announced under ``key`` (see Dht.find_peers)."""
        return await self._dht.find_peers(key, timeout, grace)

    async def find_peers_many(self, keys: Sequence[bytes], timeout: float,
                              grace: float | None = None) -> list[tuple[str, int]]:
        """Endpoints announced under any of ``keys`` (see Dht.find_peers_many)."""
        return await self._dht.find_peers_many(keys, timeout, grace)

    async def find_peers_each(self, keys: Sequence[bytes], timeout: float,
                              grace: float | None = None) -> list[set[tuple[str, int]]]:
        """What each of ``keys`` named (see Dht.find_peers_each)."""
        return await self._dht.find_peers_each(keys, timeout, grace)

    # -- torrents ----------------------------------------------------------------------------

    def find(self, tid: str) -> Any | None:
        return self._torrents.find(tid)

    def add_seed(self, torrent: bytes, save_path: Path) -> Any:
        """Seed a torrent whose files we just wrote and hashed ourselves."""
        return self._torrents.add_seed(torrent, save_path)

    def add_magnet(self, tid: str, save_path: Path, hold: bool = False,
                   trackers: tuple[str, ...] = (), web_seeds: tuple[str, ...] = (),
                   peers: tuple[tuple[str, int], ...] = ()) -> Any:
        """Add a torrent by info-hash (see Torrents.add_magnet)."""
        return self._torrents.add_magnet(tid, save_path, hold, trackers, web_seeds, peers)

    def add_resume(self, resume: bytes, save_path: Path) -> Any:
        return self._torrents.add_resume(resume, save_path)

    async def recheck(self, handle: Any, timeout: float) -> None:
        """Hash the torrent's files on disk again and wait until that is done."""
        await self._torrents.recheck(handle, timeout)

    async def torrent_file(self, handle: Any, trackers: tuple[str, ...]) -> bytes:
        """The torrent's .torrent file, with its v2 piece layers, for other clients."""
        return await self._torrents.torrent_file(handle, trackers)

    make_v1_torrent = staticmethod(torrents.make_v1_torrent)
    release = staticmethod(torrents.release)

    def remove(self, handle: Any, delete_files: bool = False) -> None:
        """Start removing a torrent; ``wait_removed`` tells when it is gone."""
        self._torrents.remove(handle, delete_files)

    def removing(self, tid: str) -> bool:
        """Whether a torrent is being removed (``wait_removed`` waits for the end)."""
        return self._torrents.removing(tid)

    async def wait_removed(self, tid: str, timeout: float) -> None:
        """Removal is asynchronous: re-adding a torrent before it completes finds the old one."""
        await self._torrents.wait_removed(tid, timeout)

    async def wait_metadata(self, handle: Any, timeout: float) -> Any:
        """The torrent_info of a torrent added by info-hash, once peers sent it (BEP 9)."""
        return await self._torrents.wait_metadata(handle, timeout)

    async def save_resume(self, handle: Any, timeout: float = 10.0) -> bytes | None:
        """Resume data with the info dict, so the torrent re-adds without peers or a recheck."""
        return await self._torrents.save_resume(handle, timeout)

    def torrent_error(self, tid: str) -> str | None:
        return self._torrents.torrent_error(tid)

    # -- reading -----------------------------------------------------------------------------

    def read(self, handle: Any, file_index: int, start: int, end: int,
             timeout: float, checked: bool = True) -> AsyncIterator[bytes | memoryview]:
        """Verified bytes [start, end) of one file, streamed as pieces arrive (see PieceReader;
        ``checked=False`` for a reader that authenticates them itself)."""
        return self._reader.read(handle, file_index, start, end, timeout, checked)

    def reading(self, tid: str) -> bool:
        """Whether a reader is waiting on a piece of this torrent right now."""
        return self._reader.reading(tid)

    async def held_piece(self, handle: Any, piece: int, timeout: float) -> bytes | None:
        """A held piece's bytes as on disk, unchecked; None if not held (never downloaded)."""
        return await self._reader.held_piece(handle, piece, timeout)

    @staticmethod
    def piece_hashes(handle: Any) -> list[tuple[int, bytes]]:
        """Each v1 piece's size and SHA-1, from the torrent (empty before its metadata)."""
        info = handle.torrent_file()
        if info is None:
            return []
        return [(int(info.piece_size(i)), bytes(info.hash_for_piece(i)))
                for i in range(int(info.num_pieces()))]

    # -- alerts the node hears of -------------------------------------------------------------

    def _on_file_completed(self, alert: Any) -> None:
        if self.on_file_completed is not None:
            self.on_file_completed(torrent_id(alert.handle))

    def _on_finished(self, alert: Any) -> None:
        if self.on_torrent_finished is not None:
            self.on_torrent_finished(torrent_id(alert.handle))
