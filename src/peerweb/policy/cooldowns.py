"""How often a node asks the network again: pure policy, no I/O.

A pointer checked recently is served without asking the DHT (``pointer_fresh``); a site is
polled when its next poll is due (``poll_due``, the interval from
``propagation.poll_interval``); a holder list is reused while young (``still_fresh``). A
lookup for a site never seen asks the DHT again after a miss, backing off, until it has tried
enough times and its patience has run out (``lookup_wait``).

Times are seconds on one clock the caller chooses, passed in as ``now``.
"""

from __future__ import annotations


def still_fresh(stored_at: float, now: float, max_age: float) -> bool:
    """Whether a value stored at ``stored_at`` may be reused (younger than ``max_age``)."""
    return now - stored_at < max_age


def pointer_fresh(checked_at: float, now: float, fresh_for: float) -> bool:
    """Whether a site's pointer, last checked in the DHT at ``checked_at`` (0: never), is
    served without a check (``Timings.pointer_fresh``)."""
    return now - checked_at <= fresh_for


def poll_due(next_poll: float, now: float) -> bool:
    """Whether the watch loop checks a site now (``next_poll`` 0: never polled)."""
    return now >= next_poll


def lookup_wait(attempt: int, now: float, deadline: float, min_attempts: int,
                first: float = 0.2, longest: float = 1.0) -> float | None:
    """After lookup ``attempt`` (from 0) found nothing: how long to wait before the next, or
    None to give up.

    The wait starts at ``first`` and doubles up to ``longest``: while routing tables fill, a
    lookup may end before it reaches the nodes storing the item, and a publisher alone in the
    DHT re-puts its pointer soon. It gives up once it has asked ``min_attempts`` times and
    the wait would pass ``deadline`` (``Timings.dht_find_patience`` after the first ask)."""
    delay = min(first * (1 << min(attempt, 32)), longest)
    if attempt + 1 >= min_attempts and now + delay > deadline:
        return None
    return delay
