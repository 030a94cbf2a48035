"""What the piece reader asks for, and when a wait on a piece has stalled.

A reader streams the bytes [start, end) of one file. In a torrent, a file is a run of bytes at
``file_offset`` in the torrent's concatenated data, cut into pieces of ``piece_length`` (the
last piece of the torrent may be shorter). ``ReadPlan`` says which pieces the range needs, which
of them to request ahead of the one being read and with what deadline, which runs of held
pieces to read straight from disk, and which bytes of a piece belong to the range.

``StallDetector`` watches one reader waiting on one piece and names the remedy when libtorrent
has stopped moving it; ``Cooldown`` keeps a remedy from being applied to the same torrent too
often. The swarm's reader carries the remedies out.

Pure code: no libtorrent, no asyncio; times are seconds passed in as ``now``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from ..errors import PeerError
from . import pagefirst

Data = TypeVar("Data", bytes, memoryview)

# How many pieces past the one being read get a deadline, so a stream never waits on the
# round trip of its next request; at 64 KiB pieces this is about half a megabyte in flight.
READAHEAD_PIECES = 8
# Deadline (ms) for the first piece a reader needs; later pieces get a little more each.
FIRST_PIECE_DEADLINE_MS = pagefirst.PAGE_DEADLINE_MS
DEADLINE_STEP_MS = pagefirst.DEADLINE_STEP_MS
# Held pieces are read straight from disk this many at a time (1 MiB at 64 KiB pieces).
DISK_RUN_PIECES = 16
# A piece whose blocks all arrived but that is still unverified after this many checks of a
# waiting reader (0.5 s, then 1 s, ...) was dropped by libtorrent's hash step; re-check.
STALL_CHECKS = 2


def _holds(held: Sequence[int], piece: int) -> bool:
    """Whether ``held`` (1 per piece held; empty when not known) says ``piece`` is held."""
    return bool(held) and bool(held[piece])


@dataclass(frozen=True)
class ReadPlan:
    """The pieces behind bytes [start, end) of one file of a torrent."""

    start: int
    """First byte of the range, from the start of the file."""
    end: int
    """One past the last byte of the range, from the start of the file."""
    file_offset: int
    """Where the file starts in the torrent's data."""
    file_size: int
    """The file's size in bytes."""
    piece_length: int
    """The torrent's piece length (every piece but possibly the torrent's last)."""
    bulk: bool = False
    """The file is bulk media (``pagefirst.is_bulk``): past the head of the read, its pieces
    are left to rarest first rather than asked for with deadlines."""

    @property
    def first(self) -> int:
        """The first piece the range needs."""
        return (self.file_offset + self.start) // self.piece_length

    @property
    def last(self) -> int:
        """The last piece the range needs (``first - 1`` when the range is empty)."""
        if self.end <= self.start:
            return self.first - 1
        return (self.file_offset + self.end - 1) // self.piece_length

    @property
    def pieces(self) -> range:
        """Every piece the range needs, in order."""
        return range(self.first, self.last + 1)

    def readahead(self, piece: int, pending: Container[int],
                  held: Sequence[int]) -> list[tuple[int, int | None]]:
        """Pieces to request now, with their deadlines (ms), while ``piece`` is being read.

        That is ``piece`` and up to READAHEAD_PIECES after it within the range, except those
        already requested (``pending``) and those ``held`` (1 per piece held, empty when not
        known); nearer pieces get earlier deadlines. A bulk file's pieces past the head of the
        read get None: waited for, not asked with a deadline (``pagefirst``)."""
        wanted = range(piece, min(self.last, piece + READAHEAD_PIECES) + 1)
        begin = self.file_offset + self.start
        return [(ahead, pagefirst.readahead_deadline(
                    self.bulk, ahead * self.piece_length - begin, ahead - piece))
                for ahead in wanted if ahead not in pending and not _holds(held, ahead)]

    def disk_run(self, piece: int, held: Sequence[int], pending: Container[int]) -> list[int]:
        """Consecutive held pieces from ``piece`` on, at most DISK_RUN_PIECES and none past the
        range, to read straight from disk; empty when ``piece`` itself is not held or was
        already requested from libtorrent (its bytes come back in an alert)."""
        if not _holds(held, piece) or piece in pending:
            return []
        run = [piece]
        while (len(run) < DISK_RUN_PIECES and run[-1] < self.last
               and _holds(held, run[-1] + 1) and run[-1] + 1 not in pending):
            run.append(run[-1] + 1)
        return run

    def in_file(self, piece: int) -> tuple[int, int]:
        """Where ``piece`` starts in the file and how many of its bytes lie in the file.

        Meant for files that start on a piece boundary (hybrid torrents), whose pieces lie
        wholly inside the file but for the padding after its tail."""
        offset = piece * self.piece_length - self.file_offset
        return offset, min(self.piece_length, self.file_size - offset)

    def clip(self, piece: int, data: Data) -> Data:
        """The bytes of ``piece`` (``data``, as verified) that lie in the range.

        Raises PeerError when ``data`` is too short to cover its part of the range."""
        begin = self.file_offset + self.start
        stop = self.file_offset + self.end
        piece_start = piece * self.piece_length
        lo = max(begin, piece_start) - piece_start
        hi = min(stop, piece_start + len(data)) - piece_start
        if hi - lo != min(stop, piece_start + self.piece_length) - max(begin, piece_start):
            raise PeerError(f"piece {piece} came back short ({len(data)} bytes)")
        return data[lo:hi]


class Remedy(enum.Enum):
    """What to do about a piece that stopped moving."""

    RECHECK = "recheck"
    """Hash the torrent's data again: a received piece was never verified."""
    RECONNECT = "reconnect"
    """Start the torrent's connections afresh: a snubbed peer sits on our requests."""


@dataclass
class StallDetector:
    """One reader waiting on one piece, observed at each wake-up (0.5 s, 1 s, ...).

    libtorrent 2.x can leave a piece with every block received but its hash check never
    concluded; and a peer that drops cancelled requests (Transmission 3.00 under BEP 6) keeps
    our request queue full, so libtorrent snubs it and asks it for nothing more. Either way the
    piece would never come.
    """

    stalled: int = 0
    """Consecutive observations of the piece received in full but unverified."""
    received: int = -1
    """The torrent's payload bytes received at the previous observation (-1: none yet)."""

    def observe(self, unverified: bool, payload: int,
                stuck: Callable[[], bool]) -> Remedy | None:
        """One observation while the torrent downloads and the piece is not yet held.

        ``unverified``: every block of the piece arrived, yet it has not passed (or failed) its
        hash check. ``payload``: the torrent's payload bytes received so far. ``stuck`` tells
        whether a snubbed peer holds requests it will not answer; it is asked only when no
        payload arrived since the previous observation (it costs a call into libtorrent)."""
        self.stalled = self.stalled + 1 if unverified else 0
        remedy: Remedy | None = None
        if self.stalled >= STALL_CHECKS:
            self.stalled = 0
            remedy = Remedy.RECHECK
        elif payload == self.received and stuck():
            remedy = Remedy.RECONNECT
        self.received = payload
        return remedy


@dataclass
class Cooldown:
    """Lets an action happen to the same key (a torrent) at most once per ``interval``."""

    interval: float
    """Seconds that must pass between two actions on one key."""
    last: dict[str, float] = field(default_factory=dict)
    """When the action last happened to each key."""

    def ready(self, key: str, now: float) -> bool:
        """Whether the action may happen to ``key`` at ``now``; if so, it counts as done."""
        if now - self.last.get(key, -self.interval) < self.interval:
            return False
        self.last[key] = now
        return True
