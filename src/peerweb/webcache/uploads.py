"""Serving copies to peers within the node's upload limit (``--upload-limit``, a volunteer's
``--capacity``): bytes of bodies sent are metered over a short window, and a holder whose
swarm upload plus web-cache upload reaches its limit answers "at capacity" (503) instead of
sending; the rescuer takes the body from another holder that vouched for it. Values and
``now`` in, values out.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

# Bytes sent are averaged over this many seconds.
WINDOW = 2.0


@dataclass
class UploadMeter:
    """Bytes of copies sent to peers, as a rate over the last ``window`` seconds."""

    window: float = WINDOW
    _sent: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)
    _total: int = 0

    def add(self, size: int, now: float) -> None:
        self._sent.append((now, size))
        self._total += size
        self._trim(now)

    def rate(self, now: float) -> float:
        """Bytes per second sent over the last window."""
        self._trim(now)
        return self._total / self.window

    def _trim(self, now: float) -> None:
        while self._sent and self._sent[0][0] <= now - self.window:
            self._total -= self._sent.popleft()[1]


def may_serve(swarm_rate: float, web_rate: float, size: int, limit: int,
              window: float = WINDOW) -> bool:
    """Whether a body of ``size`` bytes may be sent now by a node uploading ``swarm_rate``
    B/s in its swarm and ``web_rate`` B/s of copies, within ``limit`` B/s (0: no limit). A
    body larger than the room left is still sent when nothing else is (a limit below one
    body's size would otherwise serve nothing)."""
    if limit <= 0:
        return True
    used = swarm_rate + web_rate
    return used + size / window <= limit or (web_rate == 0 and used < limit)
