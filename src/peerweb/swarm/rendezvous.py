"""Futures waiting on results that arrive later, keyed by what they wait for.

libtorrent answers a request (a DHT put, a piece, resume data, ...) with an alert some time
after the call. A caller ``wait``\\ s on the request's key and awaits the future; the alert's
handler ``settle``\\ s (or ``fail``\\ s) every future waiting on that key at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Rendezvous(Generic[K, V]):
    """Futures of results of type ``V``, by key ``K``.

    A key is *open* from its first ``wait`` (or ``open``) until it is settled or failed, even
    while no future waits on it: that tells a request still in flight from one never made.
    """

    def __init__(self) -> None:
        self._waiting: dict[K, list[asyncio.Future[V]]] = {}

    def wait(self, key: K) -> asyncio.Future[V]:
        """A new future that the next ``settle`` or ``fail`` of ``key`` completes."""
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        # Waiters that gave up (a cut stream, a timeout) leave done futures behind: drop them.
        live = [f for f in self._waiting.get(key, []) if not f.done()]
        self._waiting[key] = [*live, future]
        return future

    def open(self, key: K) -> None:
        """Mark ``key`` open with nobody waiting yet (``wait`` may come later)."""
        self._waiting.setdefault(key, [])

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is open: waited on or opened, and not settled or failed since."""
        return key in self._waiting

    def pending(self, key: K) -> bool:
        """Whether some future still waits on ``key`` (not done, not cancelled)."""
        return any(not f.done() for f in self._waiting.get(key, []))

    def open_keys(self) -> list[K]:
        """The open keys, oldest first (a copy: settling while iterating is fine)."""
        return list(self._waiting)

    def discard(self, key: K, future: asyncio.Future[V]) -> None:
        """Stop ``future`` waiting on ``key``; the key stays open."""
        waiters = self._waiting.get(key, [])
        if future in waiters:
            waiters.remove(future)

    def settle(self, key: K, result: V) -> None:
        """Give every future still waiting on ``key`` the same result, and close the key."""
        for future in self._waiting.pop(key, []):
            if not future.done():
                future.set_result(result)

    def fail(self, key: K, error: BaseException) -> None:
        """Give every future still waiting on ``key`` the same error, and close the key."""
        for future in self._waiting.pop(key, []):
            if not future.done():
                future.set_exception(error)

    def cancel_all(self) -> None:
        """Cancel every waiting future and close every key (the session is going away)."""
        waiting, self._waiting = self._waiting, {}
        for futures in waiting.values():
            for future in futures:
                if not future.done():
                    future.cancel()
