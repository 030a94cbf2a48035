"""The event loop: a heap of callbacks due at simulated times (seconds), run in order.

Seeded: every random choice of a run draws from ``Simulator.rng`` (or a generator seeded
from it), so a run is a function of its seed. Events due at the same time run in the order
they were scheduled.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import Any

Callback = Callable[..., None]


class Simulator:
    """Simulated time and the events still due."""

    def __init__(self, seed: int = 0) -> None:
        self.now = 0.0
        self.rng = random.Random(seed)
        self.events_run = 0
        self._heap: list[tuple[float, int, Callback, tuple[Any, ...]]] = []
        self._seq = 0

    def at(self, when: float, callback: Callback, *args: Any) -> None:
        """Run ``callback(*args)`` at simulated time ``when`` (never before now)."""
        self._seq += 1
        heapq.heappush(self._heap, (max(when, self.now), self._seq, callback, args))

    def after(self, delay: float, callback: Callback, *args: Any) -> None:
        self.at(self.now + delay, callback, *args)

    def pending(self) -> int:
        return len(self._heap)

    def run(self, until: float = float("inf"), stop: Callable[[], bool] | None = None) -> None:
        """Run events in time order until none is left, the next is past ``until`` (the clock
        then stands at ``until``), or ``stop()`` says so (checked after each event)."""
        heap = self._heap
        while heap:
            if heap[0][0] > until:
                self.now = until
                return
            when, _, callback, args = heapq.heappop(heap)
            self.now = when
            callback(*args)
            self.events_run += 1
            if stop is not None and stop():
                return
