"""The swarm engine: one libtorrent session, driven from asyncio.

libtorrent does the BitTorrent work (wire protocol, DHT, piece picking, choking, uTP). This
adapter turns its alerts into awaitable results: a DHT put or get, a torrent's metadata, the
verified bytes of a piece. Alerts arrive through a socket that libtorrent pokes
(``set_alert_fd``), so waiting costs no polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import libtorrent as lt

from ..config import PUBLIC_DHT_ROUTERS, Network, NodeConfig
from ..content import bencode
from ..content import pointer as ptr
from ..content.identity import SiteKey
from ..errors import ForgedPointer, PeerError, StorageError, SwarmTimeout
from . import diskpiece

log = logging.getLogger(__name__)
T = TypeVar("T")

# How many pieces past the one being read get a deadline, so a stream never waits on the
# round trip of its next request; at 64 KiB pieces this is about half a megabyte in flight.
READAHEAD_PIECES = 8
# Deadline (ms) for the first piece a reader needs; later pieces get a little more each.
FIRST_PIECE_DEADLINE_MS = 0
DEADLINE_STEP_MS = 50
# Held pieces are read straight from disk this many at a time (1 MiB at 64 KiB pieces).
DISK_RUN_PIECES = 16
# libtorrent's message when a hybrid torrent's v1 and v2 hashes disagree over a piece.
_HYBRID_MISMATCH = "v1 and v2 hashes do not describe the same data"
MAX_MISMATCH_RESTARTS = 20
# A piece whose blocks all arrived but that is still unverified after this many checks of a
# waiting reader (0.5 s, then 1 s, ...) was dropped by libtorrent's hash step; re-check.
STALL_CHECKS = 2
DISK_ADVICE = "free disk space or check permissions, then restart the node to resume"

_ALERT_MASK = (
    lt.alert.category_t.error_notification
    | lt.alert.category_t.status_notification
    | lt.alert.category_t.storage_notification
    | lt.alert.category_t.dht_notification
    | lt.alert.category_t.dht_operation_notification  # get_peers replies
    | lt.alert.category_t.file_progress_notification
    | lt.alert.category_t.piece_progress_notification  # piece_finished: see Swarm._held
)


def torrent_id(handle_or_hashes: Any) -> str:
    """A torrent's name in peerweb: the v1 info-hash in hex, or the v2 one for v2-only torrents."""
    hashes = handle_or_hashes.info_hashes() if hasattr(handle_or_hashes, "info_hashes") else (
        handle_or_hashes
    )
    if hashes.has_v1():
        return str(hashes.v1)
    return str(hashes.v2)


def torrent_file_id(torrent: bytes) -> str:
    """The peerweb name (see ``torrent_id``) of a bencoded .torrent file."""
    return torrent_id(lt.torrent_info(torrent).info_hashes())


def magnet_of(torrent: bytes) -> str:
    """The magnet link of a bencoded .torrent file (its info-hashes and trackers)."""
    return str(lt.make_magnet_uri(lt.torrent_info(torrent)))


def is_pad_file(files: Any, index: int) -> bool:
    """Whether file ``index`` of a torrent's layout is BEP 47 padding (never on disk)."""
    return bool(files.file_flags(index) & lt.file_storage.flag_pad_file)


def session_settings(config: NodeConfig) -> dict[str, Any]:
    """libtorrent settings for a node (see ../shared/LIBTORRENT.md for why each is needed)."""
    host, port = config.listen
    public = config.network is Network.PUBLIC
    settings: dict[str, Any] = {
        "listen_interfaces": f"{_bracket(host)}:{port}",
        "enable_dht": True,
        "dht_bootstrap_nodes": PUBLIC_DHT_ROUTERS if public else "",
        "enable_lsd": public,
        "enable_upnp": public,
        "enable_natpmp": public,
        "alert_mask": _ALERT_MASK,
        "alert_queue_size": 10000,
        "user_agent": "peerweb/0.1 libtorrent/" + lt.__version__,
        # Pages are many small files: connect fast and tick often enough that deadlines bite.
        # Under a rate limit every message also waits for the next tick's bandwidth quota:
        # a magnet's metadata took ~5 ticks (0.5 s at 100 ms) whatever the limit.
        "tick_interval": 50,
        "connection_speed": 200,
        "smooth_connects": False,
        # A seed favours peers that have just started or are nearly done, so the first copies
        # of every piece spread out (measured in bench/flash_crowd.py: slightly lower
        # publisher upload and completion than round robin).
        "seed_choking_algorithm": lt.seed_choking_algorithm_t.anti_leech,
        # Ask each peer for 1 s of its rate ahead, not 3: on an uplink with a deep queue the
        # requested data sits in front of every HAVE and request sent after it. Flash crowd
        # on shaped uplinks (bench/README.md): median 1.31x the bound over 14 runs, 1.35x
        # over 15 with 3 s; publisher 2.2 copies against 2.3.
        "request_queue_time": 1,
        "upload_rate_limit": config.upload_limit,
        "download_rate_limit": config.download_limit,
        "ignore_limits_on_local_network": not config.limit_local_peers,
        "dht_announce_interval": 60 if not public else 15 * 60,
        # uTP's delay-based congestion control backs off on loopback and shared hosts, where
        # queueing delay says nothing about the path; TCP connects and ramps up at once.
        "enable_outgoing_utp": public,
    }
    if not public:
        # A private DHT on one machine: peers share IPs and live in 127/8.
        settings.update(
            {
                "outgoing_interfaces": host if host not in ("0.0.0.0", "::") else "",
                "dht_restrict_routing_ips": False,
                "dht_restrict_search_ips": False,
                "allow_multiple_connections_per_ip": True,
                "dht_block_ratelimit": 1000,
                # The default 8 kB/s budget drops DHT replies when many nodes share a host.
                "dht_upload_rate_limit": 1_000_000,
                # A refused connection (e.g. to a peer still closing our previous one for the
                # same torrent) is retried after this many seconds, not the default 60.
                "min_reconnect_time": 2,
            }
        )
    return settings


def _choke_local_peers(session: Any) -> None:
    """Let the unchoke slots apply to peers on the local network as well.

    libtorrent puts LAN and loopback peers in a "local" class that is never choked. In a
    crowd on one network, every visitor then takes every piece it wants from the publisher
    at once, the publisher sends the same pieces to all of them, and choking no longer sorts
    who relays to whom. Measured on kernel-shaped loopback uplinks (bench/flash_crowd.py,
    20 visitors): slowest 1.18-1.24x the bound and 1.91-2.11 publisher copies over 12 runs,
    against 1.28-1.38x and 2.06-2.30 copies over 7 with local peers always unchoked. Local
    peers stay exempt from the rate limits (unless ``limit_local_peers``)."""
    local = session.get_peer_class(lt.session.local_peer_class_id)
    local["ignore_unchoke_slots"] = False
    session.set_peer_class(lt.session.local_peer_class_id, local)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class SwarmStats:
    """A snapshot of the session's counters."""

    dht_nodes: int
    peers: int
    upload_rate: int
    download_rate: int
    total_upload: int
    total_download: int
    hash_failures: int


class Swarm:
    """One libtorrent session and the futures that wait on its alerts."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.timings = config.timings
        self.session: Any = lt.session(session_settings(config))  # type: ignore[call-overload]
        _choke_local_peers(self.session)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rsock: socket.socket | None = None
        self._wsock: socket.socket | None = None
        self._put_waiters: dict[bytes, list[asyncio.Future[_PutOutcome]]] = {}
        self._get_waiters: dict[bytes, list[asyncio.Future[ptr.Pointer | None]]] = {}
        self._get_best: dict[bytes, ptr.Pointer] = {}
        self._item_seen: dict[bytes, asyncio.Event] = {}
        self._piece_waiters: dict[tuple[str, int], list[asyncio.Future[bytes]]] = {}
        # Which pieces each torrent holds (1 byte per piece), kept up to date from
        # piece_finished alerts: asking libtorrent is a blocking call into its thread, and a
        # reader needs the answer for every piece it streams. Dropped whenever pieces could
        # be lost (a check, an error, removal) and asked for afresh.
        self._held: dict[str, bytearray] = {}
        self._metadata_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._resume_waiters: dict[str, list[asyncio.Future[bytes | None]]] = {}
        self._errors: dict[str, str] = {}
        self._mismatch_restarts: dict[str, int] = {}
        self._rechecked: dict[str, float] = {}
        self._reconnected: dict[str, float] = {}
        self._check_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._save_paths: dict[str, Path] = {}
        self._peer_lookups: dict[bytes, _PeerLookup] = {}
        self.hash_failures = 0
        self.on_torrent_finished: Callable[[str], None] | None = None
        self.on_file_completed: Callable[[str], None] | None = None
        self._dispatch: dict[type, Callable[[Any], None]] = {
            lt.dht_put_alert: self._on_put,
            lt.dht_mutable_item_alert: self._on_item,
            lt.read_piece_alert: self._on_read_piece,
            lt.piece_finished_alert: self._on_piece_finished,
            lt.metadata_received_alert: self._on_metadata,
            lt.save_resume_data_alert: self._on_resume,
            lt.save_resume_data_failed_alert: self._on_resume_failed,
            lt.hash_failed_alert: self._on_hash_failed,
            lt.file_error_alert: self._on_file_error,
            lt.torrent_error_alert: self._on_torrent_error,
            lt.torrent_finished_alert: self._on_finished,
            lt.file_completed_alert: self._on_file_completed,
            lt.torrent_checked_alert: self._on_checked,
            lt.dht_get_peers_reply_alert: self._on_peers,
            lt.session_stats_alert: self._on_stats,
            lt.torrent_removed_alert: self._on_removed,
            lt.torrent_deleted_alert: self._on_removed,
            lt.torrent_delete_failed_alert: self._on_removed,
        }
        self._removing: dict[str, asyncio.Future[None]] = {}
        self._deleting: set[str] = set()
        self._counters: dict[str, int] = {}
        self._stats_waiters: list[asyncio.Future[None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._rsock, self._wsock = socket.socketpair()
        self._rsock.setblocking(False)
        self._wsock.setblocking(False)
        self.session.set_alert_fd(self._wsock.fileno())
        self._loop.add_reader(self._rsock.fileno(), self._drain)
        for node in self.config.bootstrap:
            self.session.add_dht_node(node)
        self._drain()

    async def close(self) -> None:
        if self._loop is not None and self._rsock is not None:
            self._loop.remove_reader(self._rsock.fileno())
        self.session.pause()
        pending: list[asyncio.Future[Any]] = list(self._stats_waiters)
        for table in (self._put_waiters, self._get_waiters, self._piece_waiters,
                      self._metadata_waiters, self._resume_waiters, self._check_waiters):
            for futures in table.values():
                pending.extend(futures)
            table.clear()
        for future in pending:
            if not future.done():
                future.cancel()
        # Dropping the last reference joins libtorrent's threads: do that off the event loop.
        box = [self.session]
        self.session = None
        await asyncio.to_thread(box.clear)
        for sock in (self._rsock, self._wsock):
            if sock is not None:
                sock.close()

    @property
    def listen_port(self) -> int:
        return int(self.session.listen_port())

    def add_dht_node(self, address: tuple[str, int]) -> None:
        self.session.add_dht_node(address)

    async def counters(self, timeout: float = 2.0) -> dict[str, int]:
        """Fresh session counters (libtorrent's session_stats metrics, by name)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stats_waiters.append(future)
        self.session.post_session_stats()
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation
        # that races with the result, and a cancelled node would then never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await future
        return self._counters

    async def dht_node_count(self) -> int:
        return (await self.counters()).get("dht.dht_nodes", 0)

    async def wait_dht_ready(self, timeout: float) -> bool:
        """Wait until the routing table has a node; False if none came within ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.02  # quick while a network forms, then backing off to keep an idle node idle
        while await self.dht_node_count() == 0:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
            delay = min(delay * 1.5, 2.0)
        return True

    async def statistics(self) -> SwarmStats:
        counters = await self.counters()
        up = down = 0
        for status in self.session.get_torrent_status(lambda _s: True, 0):
            up += int(status.upload_rate)
            down += int(status.download_rate)
        return SwarmStats(
            dht_nodes=counters.get("dht.dht_nodes", 0),
            peers=counters.get("peer.num_peers_connected", 0),
            upload_rate=up,
            download_rate=down,
            total_upload=counters.get("net.sent_bytes", 0),
            total_download=counters.get("net.recv_bytes", 0),
            hash_failures=self.hash_failures,
        )

    # -- alerts ----------------------------------------------------------------------------

    def _drain(self) -> None:
        assert self._rsock is not None
        try:
            while self._rsock.recv(4096):
                pass
        except BlockingIOError:
            pass
        if self.session is None:
            return
        for alert in self.session.pop_alerts():
            handler = self._dispatch.get(type(alert))
            if handler is None:
                continue
            # Alerts die at the next pop_alerts(): handlers copy what they keep. One handler's
            # failure must not drop the rest of the batch (a lost put alert stalls a publish).
            try:
                handler(alert)
            except Exception:
                log.exception("handling %s failed", type(alert).__name__)

    def _on_removed(self, alert: Any) -> None:
        # With delete_files, the files go after the torrent: wait for the deleted alert, or
        # a re-added torrent could lose its new files to the old deletion.
        tid = torrent_id(alert.info_hashes)
        if isinstance(alert, lt.torrent_removed_alert) and tid in self._deleting:
            return
        self._deleting.discard(tid)
        future = self._removing.pop(tid, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _on_stats(self, alert: Any) -> None:
        self._counters = {str(k): int(v) for k, v in alert.values.items()}
        waiters, self._stats_waiters = self._stats_waiters, []
        _settle(waiters, None)

    def _on_put(self, alert: Any) -> None:
        outcome = _PutOutcome(int(alert.num_success), int(alert.seq), bytes(alert.signature))
        _settle(self._put_waiters.pop(bytes(alert.public_key), []), outcome)

    def _on_item(self, alert: Any) -> None:
        key = bytes(alert.key)
        signature = bytes(alert.signature)
        # A lookup that found nothing ends with an empty item and an all-zero signature.
        if any(signature):
            self._consider_item(key, alert)
        if alert.authoritative:
            self._item_seen.pop(key, None)
            _settle(self._get_waiters.pop(key, []), self._get_best.pop(key, None))

    def _consider_item(self, key: bytes, alert: Any) -> None:
        item = alert.item
        # The bindings hand a string item over as its bytes and anything else as an object.
        value = bencode.encode(item) if isinstance(item, bytes) else bytes(lt.bencode(item))
        try:
            found = ptr.verify(key, int(alert.seq), value, bytes(alert.signature),
                               bytes(alert.salt))
        except ForgedPointer as exc:
            log.warning("ignored a forged pointer for %s: %s", key.hex()[:16], exc)
            return
        if ptr.is_newer(found, self._get_best.get(key)):
            self._get_best[key] = found
        seen = self._item_seen.get(key)
        if seen is not None:
            seen.set()

    def _on_peers(self, alert: Any) -> None:
        # One alert per DHT node that answered: gather them while the lookup is open.
        lookup = self._peer_lookups.get(bytes(alert.info_hash.to_bytes()))
        if lookup is not None:
            lookup.found.update((str(host), int(port)) for host, port in alert.peers())
            if lookup.found:
                lookup.answered.set()

    def _on_piece_finished(self, alert: Any) -> None:
        held = self._held.get(torrent_id(alert.handle))
        if held is not None:
            held[int(alert.piece_index)] = 1

    def _on_read_piece(self, alert: Any) -> None:
        tid = torrent_id(alert.handle)
        piece = int(alert.piece)
        waiters = self._piece_waiters.pop((tid, piece), [])
        if alert.error.value():
            _fail(waiters, StorageError(f"reading piece {piece}: {alert.error.message()}"))
            return
        _settle(waiters, bytes(alert.buffer))

    def _on_metadata(self, alert: Any) -> None:
        _settle(self._metadata_waiters.pop(torrent_id(alert.handle), []), None)

    def _on_resume(self, alert: Any) -> None:
        data = bytes(lt.write_resume_data_buf(alert.params))
        _settle(self._resume_waiters.pop(torrent_id(alert.handle), []), data)

    def _on_resume_failed(self, alert: Any) -> None:
        _settle(self._resume_waiters.pop(torrent_id(alert.handle), []), None)

    def _on_hash_failed(self, alert: Any) -> None:
        # libtorrent drops the piece and re-requests it; its smart-ban plugin bans the peer
        # that sent the bad block once the good data identifies it.
        self.hash_failures += 1
        log.warning("piece %d of %s failed its hash check; discarded", alert.piece_index,
                    alert.torrent_name)

    def _on_torrent_error(self, alert: Any) -> None:
        # In a hybrid torrent, a piece whose v1 and v2 hashes disagree (e.g. assembled from a
        # tampering peer's blocks and good ones) stops the torrent with this error. That is a
        # peer misbehaving, not our disk: drop the piece's data and carry on, a bounded
        # number of times.
        tid = torrent_id(alert.handle)
        if (_HYBRID_MISMATCH in alert.error.message()
                and self._mismatch_restarts.get(tid, 0) < MAX_MISMATCH_RESTARTS):
            self._mismatch_restarts[tid] = self._mismatch_restarts.get(tid, 0) + 1
            self._held.pop(tid, None)
            self.hash_failures += 1
            log.warning("%s: a peer sent data whose v1 and v2 hashes disagree; resuming",
                        alert.torrent_name)
            alert.handle.clear_error()
            alert.handle.resume()
            return
        self._on_file_error(alert)

    def _on_file_error(self, alert: Any) -> None:
        tid = torrent_id(alert.handle)
        filename = getattr(alert, "filename", None)
        where = (filename() if callable(filename) else filename) or "torrent"
        message = f"{alert.error.message()} ({where})"
        self._errors[tid] = message
        self._held.pop(tid, None)
        log.error("storage error in %s: %s", alert.torrent_name, message)
        error = StorageError(f"disk error: {message}; {DISK_ADVICE}")
        for key in [k for k in self._piece_waiters if k[0] == tid]:
            _fail(self._piece_waiters.pop(key), error)

    def _on_checked(self, alert: Any) -> None:
        # Requests wait out a check (see _request_piece), and a re-check forgets deadlines:
        # ask now for what readers still wait on.
        self._held.pop(torrent_id(alert.handle), None)
        _settle(self._check_waiters.pop(torrent_id(alert.handle), []), None)
        self._request_waiting(alert.handle)

    def _request_waiting(self, handle: Any) -> None:
        """Ask again for every piece a reader of this torrent still waits on."""
        tid = torrent_id(handle)
        for (key_tid, piece), futures in self._piece_waiters.items():
            if key_tid == tid and any(not f.done() for f in futures):
                self._request_piece(handle, piece, FIRST_PIECE_DEADLINE_MS)

    def _on_file_completed(self, alert: Any) -> None:
        if self.on_file_completed is not None:
            self.on_file_completed(torrent_id(alert.handle))

    def _on_finished(self, alert: Any) -> None:
        if self.on_torrent_finished is not None:
            self.on_torrent_finished(torrent_id(alert.handle))

    def reading(self, tid: str) -> bool:
        """Whether a reader is waiting on a piece of this torrent right now."""
        return any(key[0] == tid and any(not f.done() for f in futures)
                   for key, futures in self._piece_waiters.items())

    def torrent_error(self, tid: str) -> str | None:
        return self._errors.get(tid)

    # -- DHT pointers (BEP 44 / BEP 46) -----------------------------------------------------

    async def put_pointer(self, key: SiteKey, infohash: bytes, version: int, timeout: float,
                          trackers: tuple[str, ...] = (), web_seeds: tuple[str, ...] = (),
                          ) -> tuple[ptr.Pointer | None, int]:
        """Store a signed pointer in the DHT. Returns the pointer libtorrent signed (None if the
        put did not finish in time) and how many DHT nodes stored it."""
        record = ptr.encode_record(infohash, version, trackers, web_seeds)
        future: asyncio.Future[_PutOutcome] = asyncio.get_running_loop().create_future()
        self._put_waiters.setdefault(key.public_key, []).append(future)
        self.session.dht_put_mutable_item(key.expanded_secret, key.public_key, record, b"")
        try:
            async with asyncio.timeout(timeout):
                outcome = await asyncio.shield(future)
        except TimeoutError:
            log.info("DHT put for %s not confirmed within %.0f s", key.site_id[:12], timeout)
            return None, 0
        try:
            signed = ptr.verify(key.public_key, outcome.seq, ptr.wrap(record), outcome.signature)
        except ForgedPointer:
            signed = None
        return signed, outcome.num_success

    async def get_pointer(self, public_key: bytes, timeout: float) -> ptr.Pointer | None:
        """The newest validly signed pointer the DHT holds for a key, or None.

        Returns at the authoritative end of the lookup, or ``item_grace`` after the first verified
        item (a lookup can wait seconds on slow or silent nodes; a newer version, if any, comes
        from the other storing nodes within that grace).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ptr.Pointer | None] = loop.create_future()
        first = public_key not in self._get_waiters
        self._get_waiters.setdefault(public_key, []).append(future)
        seen = self._item_seen.setdefault(public_key, asyncio.Event())
        if first:
            self.session.dht_get_mutable_item(public_key, b"")
        deadline = loop.time() + timeout
        seen_task = loop.create_task(seen.wait())
        try:
            either: set[asyncio.Future[Any]] = {future, seen_task}
            await asyncio.wait(either, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not future.done() and seen_task.done():
                grace = min(self.timings.item_grace, max(0.0, deadline - loop.time()))
                await asyncio.wait({future}, timeout=grace)
        finally:
            seen_task.cancel()
        if future.done() and not future.cancelled():
            return future.result()
        # No authoritative answer yet: settle for the best verified item heard so far.
        waiters = self._get_waiters.get(public_key, [])
        if future in waiters:
            waiters.remove(future)
        return self._get_best.get(public_key)

    # -- announcing under any key (holders of a site) ----------------------------------------

    def announce(self, key: bytes, port: int) -> None:
        """Tell the DHT that this node listens on ``port`` for ``key`` (20 bytes)."""
        self.session.dht_announce(lt.sha1_hash(key), port, 0)

    async def find_peers(self, key: bytes, timeout: float) -> list[tuple[str, int]]:
        """Endpoints announced under ``key``: all that the DHT nodes near it report within
        ``peers_grace`` of the first answer that named any; empty if none did in time."""
        lookup = self._peer_lookups.get(key)
        if lookup is None:
            lookup = self._peer_lookups[key] = _PeerLookup(set(), asyncio.Event())
            self.session.dht_get_peers(lt.sha1_hash(key))
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await lookup.answered.wait()
                    await asyncio.sleep(self.timings.peers_grace)
            return sorted(lookup.found)
        finally:
            if self._peer_lookups.get(key) is lookup:
                del self._peer_lookups[key]

    # -- torrents ----------------------------------------------------------------------------

    def find(self, tid: str) -> Any | None:
        raw = bytes.fromhex(tid)
        digest = lt.sha1_hash(raw) if len(raw) == 20 else lt.sha256_hash(raw)
        handle = self.session.find_torrent(digest)
        return handle if handle.is_valid() else None

    def add_seed(self, torrent: bytes, save_path: Path) -> Any:
        """Seed a torrent whose files we just wrote and hashed ourselves."""
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(torrent)
        params.save_path = str(save_path)
        params.flags |= lt.torrent_flags.seed_mode
        params.flags &= ~lt.torrent_flags.auto_managed
        params.flags &= ~lt.torrent_flags.paused
        return self._add(params)

    def add_magnet(self, tid: str, save_path: Path, hold: bool = False,
                   trackers: tuple[str, ...] = (), web_seeds: tuple[str, ...] = ()) -> Any:
        """Add a torrent by info-hash; ``hold`` downloads nothing until ``release`` (so files
        can be put in place first) except pieces a reader asks for."""
        params = lt.add_torrent_params()
        params.info_hashes = _hashes_from_id(tid)
        params.save_path = str(save_path)
        params.trackers = list(trackers)
        params.url_seeds = list(web_seeds)
        if hold:
            params.flags |= lt.torrent_flags.default_dont_download
        params.flags &= ~lt.torrent_flags.auto_managed
        params.flags &= ~lt.torrent_flags.paused
        return self._add(params)

    def add_resume(self, resume: bytes, save_path: Path) -> Any:
        params = lt.read_resume_data(resume)
        params.save_path = str(save_path)
        params.flags &= ~lt.torrent_flags.auto_managed
        params.flags &= ~lt.torrent_flags.paused
        return self._add(params)

    def _add(self, params: Any) -> Any:
        try:
            handle = self.session.add_torrent(params)
        except RuntimeError as exc:
            raise StorageError(f"libtorrent refused the torrent: {exc}") from exc
        self._save_paths[torrent_id(handle)] = Path(params.save_path)
        handle.force_dht_announce()
        return handle

    async def recheck(self, handle: Any, timeout: float) -> None:
        """Hash the torrent's files on disk again (after files were put in place behind
        libtorrent's back) and wait until that is done."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._check_waiters.setdefault(torrent_id(handle), []).append(future)
        self._held.pop(torrent_id(handle), None)
        handle.force_recheck()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await future

    async def torrent_file(self, handle: Any, trackers: tuple[str, ...]) -> bytes:
        """The torrent's .torrent file, with its v2 piece layers, for other clients."""
        data = await self.save_resume(handle)
        if data is None:
            raise StorageError("libtorrent did not hand over the torrent's data; try again")
        params = lt.read_resume_data(data)
        params.trackers = list(trackers)
        try:
            entry: Any = lt.write_torrent_file(params, 0)
            return bytes(lt.bencode(entry))
        except RuntimeError as exc:
            raise StorageError(f"cannot write the .torrent yet: {exc}") from exc

    @staticmethod
    def make_v1_torrent(handle: Any, trackers: tuple[str, ...]) -> bytes:
        """A v1-only torrent of the same files (no BEP 52 padding), hashed from disk.

        Blocking: run it in a thread. For clients that do not understand hybrid torrents."""
        info = handle.torrent_file()
        save_path = Path(handle.status().save_path)
        # The snapshot's folder on disk holds exactly the torrent's files (pad files are
        # never written), so listing it gives the same files without the padding.
        creator = lt.create_torrent(lt.list_files(str(save_path / info.name())),
                                    info.piece_length(), lt.create_torrent.v1_only)
        creator.set_creator("peerweb")
        for tier, url in enumerate(trackers):
            creator.add_tracker(url, tier)
        lt.set_piece_hashes(creator, str(save_path))
        return bytes(lt.bencode(creator.generate()))

    @staticmethod
    def release(handle: Any) -> None:
        """Let a held torrent download all its files."""
        handle.prioritize_files([DEFAULT_PRIORITY] * handle.torrent_file().num_files())

    def remove(self, handle: Any, delete_files: bool = False) -> None:
        """Start removing a torrent; ``wait_removed`` tells when it is gone."""
        tid = torrent_id(handle)
        self._save_paths.pop(tid, None)
        self._held.pop(tid, None)
        self._removing.setdefault(tid, asyncio.get_running_loop().create_future())
        if delete_files:
            self._deleting.add(tid)
        flags = lt.session.delete_files if delete_files else 0
        self.session.remove_torrent(handle, flags)

    async def wait_removed(self, tid: str, timeout: float) -> None:
        """Removal is asynchronous: re-adding a torrent before it completes finds the old one."""
        future = self._removing.get(tid)
        if future is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.shield(future)

    async def wait_metadata(self, handle: Any, timeout: float) -> Any:
        """The torrent_info of a torrent added by info-hash, once peers sent it (BEP 9)."""
        if handle.torrent_file() is None:
            tid = torrent_id(handle)
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._metadata_waiters.setdefault(tid, []).append(future)
            if handle.torrent_file() is None:  # the alert may have come before we registered
                try:
                    async with asyncio.timeout(timeout):
                        await self._announcing_while(handle, future)
                except TimeoutError:
                    raise SwarmTimeout(
                        f"no peer sent the metadata of {tid} within {timeout:.0f} s"
                    ) from None
        return handle.torrent_file()

    async def save_resume(self, handle: Any, timeout: float = 10.0) -> bytes | None:
        """Resume data with the info dict, so the torrent re-adds without peers or a recheck."""
        tid = torrent_id(handle)
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._resume_waiters.setdefault(tid, []).append(future)
        handle.save_resume_data(lt.torrent_handle.save_info_dict)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            return None

    async def _announcing_while(self, handle: Any, future: asyncio.Future[T],
                                each_wake: Callable[[Any], None] | None = None) -> T:
        """Wait for ``future``; while the torrent has no peers, ask the DHT and trackers again.

        An announce that ran before any holder announced found nobody, and libtorrent would
        not look again for a whole announce interval; a visitor who is waiting cannot wait
        that long. ``each_wake`` gets the torrent's status at every wake-up (0.5 s, 1 s, ...).
        """
        delay = self.timings.reannounce_first
        while True:
            done, _ = await asyncio.wait({future}, timeout=delay)  # never cancels it
            if done:
                return future.result()
            delay = min(delay * 2, self.timings.reannounce_max)
            if not handle.is_valid():
                continue
            status = handle.status()
            if status.num_peers == 0:
                _announce_again(handle)
            if each_wake is not None:
                each_wake(status)

    def _piece_future(self, handle: Any, piece: int, deadline_ms: int) -> asyncio.Future[bytes]:
        key = (torrent_id(handle), piece)
        # Readers that gave up (a cut stream) leave cancelled futures behind; only a live one
        # means a request is still out. Otherwise ask again: a torrent that stopped on an
        # error and resumed has forgotten its deadlines.
        waiters = [f for f in self._piece_waiters.get(key, []) if not f.done()]
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._piece_waiters[key] = [*waiters, future]
        if not waiters:
            self._request_piece(handle, piece, deadline_ms)
        return future

    def _request_piece(self, handle: Any, piece: int, deadline_ms: int) -> None:
        held = self._held.get(torrent_id(handle))
        if held is not None and held[piece]:
            handle.read_piece(piece)
            return
        if handle.status().state in _CHECKING:
            return  # _on_checked asks once the check is over
        if handle.have_piece(piece):
            handle.read_piece(piece)
        else:
            # When the piece passes its hash check, libtorrent reads it back for us.
            handle.set_piece_deadline(piece, deadline_ms, lt.torrent_handle.alert_when_available)

    async def _wait_piece(self, handle: Any, piece: int, future: asyncio.Future[bytes]) -> bytes:
        """Wait for a piece, re-announcing while alone and un-sticking a forgotten piece.

        libtorrent 2.x can leave a piece with every block received but its hash check never
        concluded (seen after a hybrid torrent's v1/v2 mismatch from a tampering peer); it would
        wait forever. Re-checking the torrent's data settles it.
        """
        stalled = 0
        received = -1

        def check(status: Any) -> None:
            nonlocal stalled, received
            if status.state != lt.torrent_status.downloading or handle.have_piece(piece):
                return
            stalled = stalled + 1 if _received_unverified(handle, piece) else 0
            if stalled >= STALL_CHECKS:
                stalled = 0
                self._recheck(handle)
            elif status.total_payload_download == received and _stuck_requests(handle):
                self._reconnect(handle)
            received = status.total_payload_download

        return await self._announcing_while(handle, future, check)

    def _reconnect(self, handle: Any) -> None:
        """Start every connection of a torrent afresh, with empty request queues.

        libtorrent cancels queued requests to make way for a piece with a deadline; under the
        fast extension (BEP 6) the requests then stay queued until the peer rejects them.
        Transmission 3.00 advertises the extension but drops cancelled requests silently,
        so the queue never empties, libtorrent marks the peer snubbed and asks it for
        nothing more. New connections start with nothing outstanding."""
        tid = torrent_id(handle)
        now = asyncio.get_running_loop().time()
        interval = self.timings.reconnect_min_interval
        if now - self._reconnected.get(tid, -interval) < interval:
            return
        self._reconnected[tid] = now
        peers = [p.ip for p in handle.get_peer_info()]
        log.warning("%s: a peer stopped answering requests; reconnecting to %d peer(s)",
                    tid[:12], len(peers))
        handle.pause()
        handle.resume()
        for endpoint in peers:
            handle.connect_peer(endpoint)
        self._request_waiting(handle)

    async def _fetch_piece(self, handle: Any, piece: int,
                           future: asyncio.Future[bytes] | None, timeout: float) -> bytes:
        """A piece through libtorrent: read back if held, else downloaded with a deadline."""
        if future is None:
            future = self._piece_future(handle, piece, FIRST_PIECE_DEADLINE_MS)
        try:
            async with asyncio.timeout(timeout):
                return await self._wait_piece(handle, piece, future)
        except TimeoutError:
            error = self.torrent_error(torrent_id(handle))
            if error:
                raise StorageError(f"disk error: {error}; {DISK_ADVICE}") from None
            raise SwarmTimeout(f"no peer delivered piece {piece} within {timeout:.0f} s") from None

    def _local_file(self, handle: Any, info: Any, file_index: int) -> Path | None:
        """Where a file of a hybrid torrent lies on disk, for reading held pieces directly;
        ``None`` for other torrents (v1 pieces may span files, v2-only has no v1 hashes)."""
        save_path = self._save_paths.get(torrent_id(handle))
        hashes = info.info_hashes()
        if save_path is None or not (hashes.has_v1() and hashes.has_v2()):
            return None
        return save_path / str(info.layout().file_path(file_index))

    def _held_pieces(self, handle: Any) -> bytearray:
        """The torrent's held pieces (1 per piece held): kept current by alerts, so a
        reader sees pieces arrive without asking again."""
        tid = torrent_id(handle)
        held = self._held.get(tid)
        if held is None:
            held = self._held[tid] = bytearray(
                handle.status(lt.torrent_handle.query_pieces).pieces)
        return held

    def _recheck(self, handle: Any) -> None:
        tid = torrent_id(handle)
        now = asyncio.get_running_loop().time()
        interval = self.timings.recheck_min_interval
        if now - self._rechecked.get(tid, -interval) < interval:
            return
        self._rechecked[tid] = now
        log.warning("%s: a received piece was never verified; re-checking the torrent", tid[:12])
        self._held.pop(torrent_id(handle), None)
        handle.force_recheck()

    async def read(self, handle: Any, file_index: int, start: int, end: int,
                   timeout: float) -> AsyncIterator[bytes]:
        """Verified bytes [start, end) of one file, streamed as pieces arrive.

        Pieces not yet downloaded get deadlines, nearest first, so a seek into a large file
        fetches the pieces at the new offset before anything else.
        """
        info = handle.torrent_file()
        files = info.layout()
        piece_length = files.piece_length()
        base = files.file_offset(file_index)
        size = files.file_size(file_index)
        first = (base + start) // piece_length
        last = (base + end - 1) // piece_length
        local = self._local_file(handle, info, file_index)
        held = self._held_pieces(handle) if local else bytearray()
        pending: dict[int, asyncio.Future[bytes]] = {}

        def span(piece: int) -> diskpiece.PieceSpan:
            offset = piece * piece_length - base
            return diskpiece.PieceSpan(offset, min(piece_length, size - offset),
                                       info.piece_size(piece), bytes(info.hash_for_piece(piece)))

        def clip(piece: int, data: bytes) -> bytes:
            piece_start = piece * piece_length
            lo = max(base + start, piece_start) - piece_start
            hi = min(base + end, piece_start + len(data)) - piece_start
            if hi - lo != min(base + end, piece_start + piece_length) - max(base + start,
                                                                             piece_start):
                raise PeerError(f"piece {piece} came back short ({len(data)} bytes)")
            return data[lo:hi]

        try:
            piece = first
            while piece <= last:
                for ahead in range(piece, min(last, piece + READAHEAD_PIECES) + 1):
                    if ahead not in pending and not (held and held[ahead]):
                        step = (ahead - piece) * DEADLINE_STEP_MS
                        pending[ahead] = self._piece_future(handle, ahead,
                                                            FIRST_PIECE_DEADLINE_MS + step)
                if local is not None and held and held[piece] and piece not in pending:
                    run = [piece]
                    while (len(run) < DISK_RUN_PIECES and run[-1] < last
                           and held[run[-1] + 1] and run[-1] + 1 not in pending):
                        run.append(run[-1] + 1)
                    spans = [span(p) for p in run]
                    pieces = await asyncio.to_thread(diskpiece.read_run, local, spans)
                    for data in pieces:
                        yield clip(piece, data)
                        piece += 1
                    if len(pieces) == len(run):
                        continue
                    # Not on disk as libtorrent holds it: still in a write buffer, or altered.
                    failed = spans[len(pieces)]
                    data = await self._fetch_piece(handle, piece, None, timeout)
                    if not diskpiece.matches(data, failed):
                        log.warning("%s: piece %d on disk does not match its hash; "
                                    "re-checking the torrent", torrent_id(handle)[:12], piece)
                        await self.recheck(handle, timeout)  # the piece is then fetched afresh
                        data = await self._fetch_piece(handle, piece, None, timeout)
                        if not diskpiece.matches(data, failed):
                            raise StorageError(f"piece {piece} keeps reading back wrong from "
                                               f"disk; {DISK_ADVICE}")
                else:
                    data = await self._fetch_piece(handle, piece, pending.pop(piece, None),
                                                   timeout)
                yield clip(piece, data)
                piece += 1
                if local is not None and piece <= last:
                    held = self._held_pieces(handle)  # the same map unless a check dropped it
        finally:
            for future in pending.values():
                future.cancel()


@dataclass(frozen=True)
class _PeerLookup:
    found: set[tuple[str, int]]
    answered: asyncio.Event


@dataclass(frozen=True)
class _PutOutcome:
    num_success: int
    seq: int
    signature: bytes


def _settle(futures: list[asyncio.Future[T]], result: T) -> None:
    """Give every still-waiting future the same result."""
    for future in futures:
        if not future.done():
            future.set_result(result)


def _fail(futures: list[asyncio.Future[T]], error: Exception) -> None:
    """Give every still-waiting future the same error."""
    for future in futures:
        if not future.done():
            future.set_exception(error)


def _announce_again(handle: Any) -> None:
    """Ask the DHT and the torrent's trackers for peers now, whatever their intervals say."""
    handle.force_dht_announce()
    if handle.trackers():
        handle.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)


def _stuck_requests(handle: Any) -> bool:
    """A peer libtorrent has snubbed still holds requests it will not answer."""
    return any(p.flags & lt.peer_info.snubbed and p.download_queue_length
               for p in handle.get_peer_info())


def _received_unverified(handle: Any, piece: int) -> bool:
    """Every block of ``piece`` is on disk, yet it has not passed (or failed) its hash check."""
    for entry in handle.get_download_queue():
        if entry["piece_index"] == piece:
            return all(block["state"] == _BLOCK_FINISHED for block in entry["blocks"])
    return False


DEFAULT_PRIORITY = 4  # libtorrent's default file and piece priority
_CHECKING = (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
_BLOCK_FINISHED = 3  # block_info::finished in libtorrent's download queue


def _hashes_from_id(tid: str) -> Any:
    raw = bytes.fromhex(tid)
    if len(raw) == 20:
        return lt.info_hash_t(lt.sha1_hash(raw))
    return lt.info_hash_t(lt.sha256_hash(raw))
