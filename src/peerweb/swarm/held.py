"""Which pieces each torrent holds, known without asking libtorrent each time."""

from __future__ import annotations

from typing import Any

import libtorrent as lt

from .handle import TorrentHandle, torrent_id


class HeldPieces:
    """Which pieces each torrent holds (1 byte per piece), kept up to date from
    piece_finished alerts: asking libtorrent is a blocking call into its thread, and a
    reader needs the answer for every piece it streams. Dropped (``forget``) whenever pieces
    could be lost (a check, an error, removal) and asked for afresh."""

    def __init__(self) -> None:
        self._held: dict[str, bytearray] = {}

    def of(self, handle: TorrentHandle) -> bytearray:
        """The torrent's held pieces (1 per piece held): kept current by alerts, so a
        reader sees pieces arrive without asking again."""
        tid = torrent_id(handle)
        held = self._held.get(tid)
        if held is None:
            held = self._held[tid] = bytearray(
                handle.status(lt.torrent_handle.query_pieces).pieces)
        return held

    def known(self, tid: str) -> bytearray | None:
        """The torrent's held pieces if known, without asking libtorrent."""
        return self._held.get(tid)

    def forget(self, tid: str) -> None:
        self._held.pop(tid, None)

    def on_piece_finished(self, alert: Any) -> None:
        held = self._held.get(torrent_id(alert.handle))
        if held is not None:
            held[int(alert.piece_index)] = 1
