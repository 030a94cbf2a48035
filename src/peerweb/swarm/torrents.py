"""Torrents in the session: added, found, removed, rechecked; their metadata, resume data,
.torrent files and storage errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import libtorrent as lt

from ..config import Timings
from ..errors import StorageError, SwarmTimeout
from ..policy import pagefirst
from .handle import Session, TorrentHandle, hashes_from_id, torrent_id
from .held import HeldPieces
from .rendezvous import Rendezvous

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_PRIORITY = 4  # libtorrent's default file and piece priority
DISK_ADVICE = "free disk space or check permissions, then restart the node to resume"
# libtorrent's message when a hybrid torrent's v1 and v2 hashes disagree over a piece.
_HYBRID_MISMATCH = "v1 and v2 hashes do not describe the same data"
MAX_MISMATCH_RESTARTS = 20


def torrent_file_id(torrent: bytes) -> str:
    """The peerweb name (see ``torrent_id``) of a bencoded .torrent file."""
    return torrent_id(lt.torrent_info(torrent).info_hashes())


def magnet_of(torrent: bytes) -> str:
    """The magnet link of a bencoded .torrent file (its info-hashes and trackers)."""
    return str(lt.make_magnet_uri(lt.torrent_info(torrent)))


def is_pad_file(files: Any, index: int) -> bool:
    """Whether file ``index`` of a torrent's layout is BEP 47 padding (never on disk)."""
    return bool(files.file_flags(index) & lt.file_storage.flag_pad_file)


class Torrents:
    """The session's torrents, and the futures that wait on what libtorrent does to them."""

    def __init__(self, session: Callable[[], Session], held: HeldPieces,
                 timings: Timings) -> None:
        self._session = session
        self._held = held
        self.timings = timings
        self._save_paths: dict[str, Path] = {}
        self._metadata: Rendezvous[str, None] = Rendezvous()
        self._resume: Rendezvous[str, bytes | None] = Rendezvous()
        self._checks: Rendezvous[str, None] = Rendezvous()
        # Open from remove() until libtorrent says the torrent (and with delete_files, its
        # files) are gone.
        self._removing: Rendezvous[str, None] = Rendezvous()
        self._deleting: set[str] = set()
        # Added with ``hold``: their priorities wait for ``release``, not for the metadata.
        self._holding: set[str] = set()
        self._errors: dict[str, str] = {}
        self._mismatch_restarts: dict[str, int] = {}
        self.hash_failures = 0

    # -- adding, finding, removing -------------------------------------------------------------

    def find(self, tid: str) -> Any | None:
        raw = bytes.fromhex(tid)
        digest = lt.sha1_hash(raw) if len(raw) == 20 else lt.sha256_hash(raw)
        handle = self._session().find_torrent(digest)
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
                   trackers: tuple[str, ...] = (), web_seeds: tuple[str, ...] = (),
                   peers: tuple[tuple[str, int], ...] = ()) -> Any:
        """Add a torrent by info-hash; ``hold`` downloads nothing until ``release`` (so files
        can be put in place first) except pieces a reader asks for. ``peers`` are dialled at
        once, before the DHT names any."""
        params = lt.add_torrent_params()
        params.info_hashes = hashes_from_id(tid)
        params.save_path = str(save_path)
        params.trackers = list(trackers)
        params.url_seeds = list(web_seeds)
        params.peers = list(peers)
        if hold:
            params.flags |= lt.torrent_flags.default_dont_download
            self._holding.add(tid)
        else:
            self._holding.discard(tid)
        params.flags &= ~lt.torrent_flags.auto_managed
        params.flags &= ~lt.torrent_flags.paused
        return self._add(params)

    def add_resume(self, resume: bytes, save_path: Path) -> Any:
        params = lt.read_resume_data(resume)
        params.save_path = str(save_path)
        params.flags &= ~lt.torrent_flags.auto_managed
        params.flags &= ~lt.torrent_flags.paused
        return self._add(params)

    def _add(self, params: lt.add_torrent_params) -> TorrentHandle:
        try:
            handle = self._session().add_torrent(params)
        except RuntimeError as exc:
            raise StorageError(f"libtorrent refused the torrent: {exc}") from exc
        self._save_paths[torrent_id(handle)] = Path(params.save_path)
        handle.force_dht_announce()
        return handle

    def save_path(self, tid: str) -> Path | None:
        """Where a torrent added in this session keeps its files (its top folder's parent)."""
        return self._save_paths.get(tid)

    def remove(self, handle: TorrentHandle, delete_files: bool = False) -> None:
        """Start removing a torrent; ``wait_removed`` tells when it is gone."""
        tid = torrent_id(handle)
        self._save_paths.pop(tid, None)
        self._held.forget(tid)
        self._removing.open(tid)
        if delete_files:
            self._deleting.add(tid)
        flags = lt.session.delete_files if delete_files else 0
        self._session().remove_torrent(handle, flags)

    def removing(self, tid: str) -> bool:
        """Whether a torrent is being removed (its files, if deleted, not all gone yet)."""
        return tid in self._removing

    async def wait_removed(self, tid: str, timeout: float) -> None:
        """Removal is asynchronous: re-adding a torrent before it completes finds the old one."""
        if tid in self._removing:
            future = self._removing.wait(tid)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await future

    def on_removed(self, alert: Any) -> None:
        # With delete_files, the files go after the torrent: wait for the deleted alert, or
        # a re-added torrent could lose its new files to the old deletion.
        tid = torrent_id(alert.info_hashes)
        if isinstance(alert, lt.torrent_removed_alert) and tid in self._deleting:
            return
        self._deleting.discard(tid)
        self._removing.settle(tid, None)

    # -- metadata, resume data, .torrent files ---------------------------------------------------

    async def wait_metadata(self, handle: TorrentHandle, timeout: float) -> Any:
        """The torrent_info of a torrent added by info-hash, once peers sent it (BEP 9)."""
        if handle.torrent_file() is None:
            tid = torrent_id(handle)
            future = self._metadata.wait(tid)
            if handle.torrent_file() is None:  # the alert may have come before we registered
                try:
                    async with asyncio.timeout(timeout):
                        await announcing_while(handle, future, self.timings)
                except TimeoutError:
                    raise SwarmTimeout(
                        f"no peer sent the metadata of {tid} within {timeout:.0f} s"
                    ) from None
        return handle.torrent_file()

    def on_metadata(self, alert: Any) -> None:
        tid = torrent_id(alert.handle)
        if tid not in self._holding:
            # The moment the metadata is here (a first visit): index.html first.
            index_first(alert.handle)
            page_first(alert.handle)
        self._metadata.settle(tid, None)

    async def save_resume(self, handle: TorrentHandle, timeout: float = 10.0) -> bytes | None:
        """Resume data with the info dict, so the torrent re-adds without peers or a recheck."""
        future = self._resume.wait(torrent_id(handle))
        handle.save_resume_data(lt.torrent_handle.save_info_dict)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            return None

    def on_resume(self, alert: Any) -> None:
        data = bytes(lt.write_resume_data_buf(alert.params))
        self._resume.settle(torrent_id(alert.handle), data)

    def on_resume_failed(self, alert: Any) -> None:
        self._resume.settle(torrent_id(alert.handle), None)

    async def torrent_file(self, handle: TorrentHandle, trackers: tuple[str, ...]) -> bytes:
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

    # -- checks and errors ---------------------------------------------------------------------

    async def recheck(self, handle: TorrentHandle, timeout: float) -> None:
        """Hash the torrent's files on disk again (after files were put in place behind
        libtorrent's back) and wait until that is done."""
        tid = torrent_id(handle)
        future = self._checks.wait(tid)
        self._held.forget(tid)
        handle.force_recheck()
        checking = (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await future
                # The alert may be that of the check libtorrent began on its own once the
                # metadata came: then ours still runs (a status call is answered after the
                # recheck was handled), and the version would be served, and counted
                # complete, before its files were verified.
                while handle.status().state in checking:
                    await self._checks.wait(tid)

    def on_checked(self, alert: Any) -> None:
        self._held.forget(torrent_id(alert.handle))
        self._checks.settle(torrent_id(alert.handle), None)

    def torrent_error(self, tid: str) -> str | None:
        return self._errors.get(tid)

    def record_error(self, alert: Any) -> tuple[str, StorageError]:
        """Note a storage error (a file_error or torrent_error alert): the torrent it stopped
        and the error its readers get."""
        tid = torrent_id(alert.handle)
        filename = getattr(alert, "filename", None)
        where = (filename() if callable(filename) else filename) or "torrent"
        message = f"{alert.error.message()} ({where})"
        self._errors[tid] = message
        self._held.forget(tid)
        log.error("storage error in %s: %s", alert.torrent_name, message)
        return tid, StorageError(f"disk error: {message}; {DISK_ADVICE}")

    def resume_after_mismatch(self, alert: Any) -> bool:
        """Resume a torrent stopped by a v1/v2 hash mismatch (a torrent_error alert), a bounded
        number of times; False when the error is another (or too frequent) one.

        In a hybrid torrent, a piece whose v1 and v2 hashes disagree (e.g. assembled from a
        tampering peer's blocks and good ones) stops the torrent with this error. That is a
        peer misbehaving, not our disk: drop the piece's data and carry on."""
        tid = torrent_id(alert.handle)
        if (_HYBRID_MISMATCH not in alert.error.message()
                or self._mismatch_restarts.get(tid, 0) >= MAX_MISMATCH_RESTARTS):
            return False
        self._mismatch_restarts[tid] = self._mismatch_restarts.get(tid, 0) + 1
        self._held.forget(tid)
        self.hash_failures += 1
        log.warning("%s: a peer sent data whose v1 and v2 hashes disagree; resuming",
                    alert.torrent_name)
        alert.handle.clear_error()
        alert.handle.resume()
        return True

    def on_hash_failed(self, alert: Any) -> None:
        # libtorrent drops the piece and re-requests it; its smart-ban plugin bans the peer
        # that sent the bad block once the good data identifies it.
        self.hash_failures += 1
        log.warning("piece %d of %s failed its hash check; discarded", alert.piece_index,
                    alert.torrent_name)

    def cancel_all(self) -> None:
        """Cancel the waits on metadata, resume data and checks (the session is going away);
        removals are left to time out, as before."""
        for table in (self._metadata, self._resume, self._checks):
            table.cancel_all()


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


def release(handle: Any) -> None:
    """Let a held torrent download all its files, the page's first (``page_first``)."""
    page_first(handle)


def index_first(handle: Any) -> None:
    """Ask for the pieces of the site's index.html with deadlines, ahead of the rest: a
    first visit shows it first (``pagefirst.first_file_deadlines``)."""
    files = handle.torrent_file().layout()
    index = pagefirst.root_index([str(files.file_path(i)) for i in range(files.num_files())])
    if index is None:
        return
    for piece, deadline in pagefirst.first_file_deadlines(
            files.file_offset(index), files.file_size(index), files.piece_length()):
        handle.set_piece_deadline(piece, deadline)


def page_first(handle: Any) -> None:
    """Have the picker bring a site's page files before its bulk media (policy.pagefirst)."""
    files = handle.torrent_file().layout()
    count = files.num_files()
    paths = ["" if is_pad_file(files, i) else str(files.file_path(i)) for i in range(count)]
    handle.prioritize_files(pagefirst.file_priorities(
        paths, [files.file_size(i) for i in range(count)]))


async def announcing_while(handle: TorrentHandle, future: asyncio.Future[T], timings: Timings,
                           each_wake: Callable[[lt.torrent_status], None] | None = None) -> T:
    """Wait for ``future``; while the torrent has no peers, ask the DHT and trackers again.

    An announce that ran before any holder announced found nobody, and libtorrent would
    not look again for a whole announce interval; a visitor who is waiting cannot wait
    that long. ``each_wake`` gets the torrent's status at every wake-up (0.5 s, 1 s, ...).
    """
    delay = timings.reannounce_first
    while True:
        done, _ = await asyncio.wait({future}, timeout=delay)  # never cancels it
        if done:
            return future.result()
        delay = min(delay * 2, timings.reannounce_max)
        if not handle.is_valid():
            continue
        status = handle.status()
        if status.num_peers == 0:
            announce_again(handle)
        if each_wake is not None:
            each_wake(status)


def announce_again(handle: TorrentHandle) -> None:
    """Ask the DHT and the torrent's trackers for peers now, whatever their intervals say."""
    handle.force_dht_announce()
    if handle.trackers():
        handle.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)


def resume_peers(resume: bytes) -> list[tuple[str, int]]:
    """The connectable peers (listen endpoints) a torrent's resume data remembers; none from
    data libtorrent cannot read."""
    try:
        params = lt.read_resume_data(resume)
    except RuntimeError:
        return []
    return [(str(host), int(port)) for host, port in params.peers]
