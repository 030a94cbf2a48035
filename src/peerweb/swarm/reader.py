"""The piece reader: verified bytes of a file, streamed as its pieces arrive.

Pieces not yet held get deadlines (``set_piece_deadline``) and come back in read_piece alerts;
held pieces of hybrid torrents are read straight from the file and checked again
(``diskpiece``). Which pieces to ask for, and when a wait has stalled, is decided in
``peerweb.policy.readplan``; this module carries it out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import libtorrent as lt

from ..config import Timings
from ..errors import StorageError, SwarmTimeout
from ..policy import pagefirst
from ..policy.readplan import FIRST_PIECE_DEADLINE_MS, Cooldown, ReadPlan, Remedy, StallDetector
from . import diskpiece
from .handle import TorrentHandle, torrent_id
from .held import HeldPieces
from .rendezvous import Rendezvous
from .torrents import DISK_ADVICE, Torrents, announcing_while

log = logging.getLogger(__name__)

_CHECKING = (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
_BLOCK_FINISHED = 3  # block_info::finished in libtorrent's download queue


class PieceReader:
    """Streams verified pieces; owns the futures of pieces readers wait on."""

    def __init__(self, torrents: Torrents, held: HeldPieces, timings: Timings) -> None:
        self._torrents = torrents
        self._held = held
        self.timings = timings
        self._pieces: Rendezvous[tuple[str, int], bytes] = Rendezvous()
        self._rechecks = Cooldown(timings.recheck_min_interval)
        self._reconnects = Cooldown(timings.reconnect_min_interval)
        # Pieces asked for without a deadline (bulk media, left to rarest first): read back
        # when their piece_finished alert comes.
        self._awaiting: set[tuple[str, int]] = set()

    async def read(self, handle: TorrentHandle, file_index: int, start: int, end: int,
                   timeout: float, checked: bool = True) -> AsyncIterator[bytes | memoryview]:
        """Verified bytes [start, end) of one file, streamed as pieces arrive.

        Pieces not yet downloaded get deadlines, nearest first, so a seek into a large file
        fetches the pieces at the new offset before anything else.

        ``checked=False`` is for a reader that authenticates every byte itself (a private
        file's chunks, each under its AEAD tag): pieces held on disk then come as they are
        there, without their SHA-1 check (views into one read, no copy each). They may be
        wrong (altered on disk, or not yet written out of libtorrent's cache): such a reader
        reads them again, checked, when they fail its own check.
        """
        info: lt.torrent_info = handle.torrent_file()
        files = info.layout()
        size = files.file_size(file_index)
        plan = ReadPlan(start, end, files.file_offset(file_index), size, files.piece_length(),
                        bulk=pagefirst.is_bulk(str(files.file_path(file_index)), size))
        local = self._local_file(handle, info, file_index)
        held = self._held.of(handle) if local else bytearray()
        hashes = info.info_hashes()
        v1_only = local is None and hashes.has_v1() and not hashes.has_v2()
        pending: dict[int, asyncio.Future[bytes]] = {}
        try:
            piece = plan.first
            while piece <= plan.last:
                for ahead, deadline_ms in plan.readahead(piece, pending, held):
                    pending[ahead] = self._piece_future(handle, ahead, deadline_ms)
                run = plan.disk_run(piece, held, pending) if local is not None else []
                if local is not None and run:
                    spans = [self._span(info, plan, p) for p in run]
                    if checked:
                        pieces = await asyncio.to_thread(diskpiece.read_run, local, spans)
                        for data in pieces:
                            yield plan.clip(piece, data)
                            piece += 1
                        read = len(pieces)
                    else:
                        views = await asyncio.to_thread(diskpiece.read_run_unchecked, local,
                                                        spans)
                        for view in views:
                            yield plan.clip(piece, view)
                            piece += 1
                        read = len(views)
                    if read == len(run):
                        continue
                    data = await self._refetch(handle, piece, spans[read], timeout)
                else:
                    data = await self._fetch_piece(handle, piece, pending.pop(piece, None),
                                                   timeout, plan.bulk)
                    if v1_only:
                        # libtorrent reads a held piece back from disk without checking it:
                        # check the v1 hash here, so bytes altered on disk never go out.
                        span = diskpiece.PieceSpan(0, len(data), info.piece_size(piece),
                                                   bytes(info.hash_for_piece(piece)))
                        if not diskpiece.matches(data, span):
                            data = await self._refetch(handle, piece, span, timeout)
                yield plan.clip(piece, data)
                piece += 1
                if local is not None and piece <= plan.last:
                    held = self._held.of(handle)  # the same map unless a check dropped it
        finally:
            for future in pending.values():
                future.cancel()

    @staticmethod
    def _span(info: lt.torrent_info, plan: ReadPlan, piece: int) -> diskpiece.PieceSpan:
        offset, length = plan.in_file(piece)
        return diskpiece.PieceSpan(offset, length, info.piece_size(piece),
                                   bytes(info.hash_for_piece(piece)))

    async def _refetch(self, handle: TorrentHandle, piece: int, failed: diskpiece.PieceSpan,
                       timeout: float) -> bytes:
        """A held piece that did not read back from disk as libtorrent holds it (still in a
        write buffer, or altered): through libtorrent, and re-checked if that is wrong too."""
        data = await self._fetch_piece(handle, piece, None, timeout)
        if not diskpiece.matches(data, failed):
            log.warning("%s: piece %d on disk does not match its hash; "
                        "re-checking the torrent", torrent_id(handle)[:12], piece)
            await self._torrents.recheck(handle, timeout)  # the piece is then fetched afresh
            data = await self._fetch_piece(handle, piece, None, timeout)
            if not diskpiece.matches(data, failed):
                raise StorageError(f"piece {piece} keeps reading back wrong from "
                                   f"disk; {DISK_ADVICE}")
        return data

    def _local_file(self, handle: TorrentHandle, info: lt.torrent_info,
                    file_index: int) -> Path | None:
        """Where a file of a hybrid torrent lies on disk, for reading held pieces directly;
        ``None`` for other torrents (v1 pieces may span files, v2-only has no v1 hashes)."""
        save_path = self._torrents.save_path(torrent_id(handle))
        hashes = info.info_hashes()
        if save_path is None or not (hashes.has_v1() and hashes.has_v2()):
            return None
        return save_path / str(info.layout().file_path(file_index))

    # -- pieces through libtorrent ---------------------------------------------------------------

    def _piece_future(self, handle: TorrentHandle, piece: int,
                      deadline_ms: int | None) -> asyncio.Future[bytes]:
        key = (torrent_id(handle), piece)
        # Readers that gave up (a cut stream) leave cancelled futures behind; only a live one
        # means a request is still out. Otherwise ask again: a torrent that stopped on an
        # error and resumed has forgotten its deadlines.
        asked = self._pieces.pending(key)
        future = self._pieces.wait(key)
        if not asked:
            self._request_piece(handle, piece, deadline_ms)
        return future

    def _request_piece(self, handle: TorrentHandle, piece: int, deadline_ms: int | None) -> None:
        """Ask for a piece: read back if held, else with a deadline, or (``None``) when its
        piece_finished alert says the picker brought it (see ``pagefirst``)."""
        key = (torrent_id(handle), piece)
        held = self._held.known(key[0])
        if held is not None and held[piece]:
            handle.read_piece(piece)
            return
        if handle.status().state in _CHECKING:
            return  # on_checked asks once the check is over
        if handle.have_piece(piece):
            handle.read_piece(piece)
        elif deadline_ms is None:
            self._awaiting.add(key)
        else:
            self._awaiting.discard(key)
            # When the piece passes its hash check, libtorrent reads it back for us.
            handle.set_piece_deadline(piece, deadline_ms, lt.torrent_handle.alert_when_available)

    def _request_waiting(self, handle: TorrentHandle) -> None:
        """Ask again for every piece a reader of this torrent still waits on."""
        tid = torrent_id(handle)
        for key in self._pieces.open_keys():
            if key[0] == tid and self._pieces.pending(key):
                self._request_piece(handle, key[1], FIRST_PIECE_DEADLINE_MS)

    async def _fetch_piece(self, handle: TorrentHandle, piece: int,
                           future: asyncio.Future[bytes] | None, timeout: float,
                           bulk: bool = False) -> bytes:
        """A piece through libtorrent: read back if held, else downloaded with a deadline
        (a bulk piece asked without one gets it once the read has waited long enough)."""
        if future is None:
            future = self._piece_future(handle, piece, FIRST_PIECE_DEADLINE_MS)
        try:
            async with asyncio.timeout(timeout):
                return await self._wait_piece(handle, piece, future, bulk)
        except TimeoutError:
            error = self._torrents.torrent_error(torrent_id(handle))
            if error:
                raise StorageError(f"disk error: {error}; {DISK_ADVICE}") from None
            raise SwarmTimeout(f"no peer delivered piece {piece} within {timeout:.0f} s") from None

    async def _wait_piece(self, handle: TorrentHandle, piece: int,
                          future: asyncio.Future[bytes], bulk: bool = False) -> bytes:
        """Wait for a piece, re-announcing while alone and un-sticking a forgotten piece.

        libtorrent 2.x can leave a piece with every block received but its hash check never
        concluded (seen after a hybrid torrent's v1/v2 mismatch from a tampering peer); it would
        wait forever. Re-checking the torrent's data settles it.
        """
        detector = StallDetector()
        key = (torrent_id(handle), piece)
        loop = asyncio.get_running_loop()
        asked_at = loop.time()

        def check(status: lt.torrent_status) -> None:
            if status.state != lt.torrent_status.downloading or handle.have_piece(piece):
                return
            if pagefirst.escalate(bulk, asked_at, loop.time(), key not in self._awaiting):
                self._request_piece(handle, piece, FIRST_PIECE_DEADLINE_MS)
            remedy = detector.observe(_received_unverified(handle, piece),
                                      status.total_payload_download,
                                      lambda: _stuck_requests(handle))
            if remedy is Remedy.RECHECK:
                self._recheck(handle)
            elif remedy is Remedy.RECONNECT:
                self._reconnect(handle)

        return await announcing_while(handle, future, self.timings, check)

    def _recheck(self, handle: TorrentHandle) -> None:
        tid = torrent_id(handle)
        if not self._rechecks.ready(tid, asyncio.get_running_loop().time()):
            return
        log.warning("%s: a received piece was never verified; re-checking the torrent", tid[:12])
        self._held.forget(torrent_id(handle))
        handle.force_recheck()

    def _reconnect(self, handle: TorrentHandle) -> None:
        """Start every connection of a torrent afresh, with empty request queues.

        libtorrent cancels queued requests to make way for a piece with a deadline; under the
        fast extension (BEP 6) the requests then stay queued until the peer rejects them.
        Transmission 3.00 advertises the extension but drops cancelled requests silently,
        so the queue never empties, libtorrent marks the peer snubbed and asks it for
        nothing more. New connections start with nothing outstanding."""
        tid = torrent_id(handle)
        if not self._reconnects.ready(tid, asyncio.get_running_loop().time()):
            return
        peers = [p.ip for p in handle.get_peer_info()]
        log.warning("%s: a peer stopped answering requests; reconnecting to %d peer(s)",
                    tid[:12], len(peers))
        handle.pause()
        handle.resume()
        for endpoint in peers:
            handle.connect_peer(endpoint)
        self._request_waiting(handle)

    async def held_piece(self, handle: TorrentHandle, piece: int,
                         timeout: float) -> bytes | None:
        """The bytes of a piece as this node holds them, read back from disk by libtorrent
        without checking them (a challenger checks them: ``policy.backups``); None if the
        piece is not held. Never downloads: a proof must come from what is on disk."""
        if not handle.have_piece(piece):
            return None
        future = self._piece_future(handle, piece, None)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            future.cancel()
            raise StorageError(f"reading piece {piece} back took over {timeout:.0f} s; "
                               f"{DISK_ADVICE}") from None

    def reading(self, tid: str) -> bool:
        """Whether a reader is waiting on a piece of this torrent right now."""
        return any(key[0] == tid and self._pieces.pending(key) for key in self._pieces.open_keys())

    # -- alerts ----------------------------------------------------------------------------------

    def on_piece_finished(self, alert: Any) -> None:
        """A piece passed its hash check: read it back if a read waits on it without a
        deadline (with one, libtorrent reads it back by itself)."""
        self._held.on_piece_finished(alert)
        key = (torrent_id(alert.handle), int(alert.piece_index))
        if key in self._awaiting:
            self._awaiting.discard(key)
            if self._pieces.pending(key):
                alert.handle.read_piece(key[1])

    def on_read_piece(self, alert: Any) -> None:
        key = (torrent_id(alert.handle), int(alert.piece))
        self._awaiting.discard(key)
        if alert.error.value():
            self._pieces.fail(key, StorageError(f"reading piece {key[1]}: "
                                                f"{alert.error.message()}"))
            return
        self._pieces.settle(key, bytes(alert.buffer))

    def on_checked(self, alert: Any) -> None:
        # Requests wait out a check (see _request_piece), and a re-check forgets deadlines:
        # ask now for what readers still wait on.
        self._torrents.on_checked(alert)
        self._request_waiting(alert.handle)

    def on_file_error(self, alert: Any) -> None:
        tid, error = self._torrents.record_error(alert)
        for key in self._pieces.open_keys():
            if key[0] == tid:
                self._pieces.fail(key, error)

    def on_torrent_error(self, alert: Any) -> None:
        if not self._torrents.resume_after_mismatch(alert):
            self.on_file_error(alert)

    def cancel_all(self) -> None:
        """Cancel every piece a reader waits on (the session is going away)."""
        self._awaiting.clear()
        self._pieces.cancel_all()


def _stuck_requests(handle: TorrentHandle) -> bool:
    """A peer libtorrent has snubbed still holds requests it will not answer."""
    return any(p.flags & lt.peer_info.snubbed and p.download_queue_length
               for p in handle.get_peer_info())


def _received_unverified(handle: TorrentHandle, piece: int) -> bool:
    """Every block of ``piece`` is on disk, yet it has not passed (or failed) its hash check."""
    for entry in handle.get_download_queue():
        if entry["piece_index"] == piece:
            return all(block["state"] == _BLOCK_FINISHED for block in entry["blocks"])
    return False
