"""When a node writes what it must not lose: pure policy, no I/O.

``state.json`` is written at most once per interval however many changes arrive
(``next_write_delay``): a flood of pushes costs one write, not one fsync each. A torrent's
resume data (which pieces are verified) is written every few seconds while it downloads, so a
node killed with kill -9 loses a few seconds of download at most, and rarely once it is idle
(``resume_due``).

Times are seconds on one clock the caller chooses, passed in as ``now``.
"""

from __future__ import annotations


def next_write_delay(last_write: float | None, now: float, interval: float) -> float:
    """Seconds to wait before the next coalesced write (``last_write`` None: never written)."""
    if last_write is None:
        return 0.0
    return max(0.0, last_write + interval - now)


def resume_due(done: int, saved_done: int | None, saved_at: float, now: float,
               active: float, idle: float) -> bool:
    """Whether to save a torrent's resume data now.

    ``done``: bytes verified now; ``saved_done``: bytes verified when its resume data was last
    written (None: never) at ``saved_at``. A torrent that gained pieces is saved once
    ``active`` seconds have passed, one that did not every ``idle`` seconds."""
    if saved_done is None:
        return True
    interval = active if done != saved_done else idle
    return now - saved_at >= interval
