"""The node's background tasks: each one owned, none fire-and-forget.

Every job a part of the node starts goes through ``Jobs.spawn``; ``Jobs.cancel_all`` at
``Node.stop`` cancels them and waits for them to end. A job that fails is logged, a
``PeerwebError`` (the network or a peer misbehaved) at info level, anything else as a bug.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..errors import PeerwebError

log = logging.getLogger(__name__)
T = TypeVar("T")


class Jobs:
    """The set of running background tasks, and single-flight jobs by key."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coro`` as a task this node owns (cancelled by ``cancel_all``)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    async def single_flight(self, running: dict[str, asyncio.Task[T]], key: str,
                            start: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run one job per key at a time; concurrent callers share its result. The job is
        shielded: a visitor who gives up does not cancel it for the others."""
        task = running.get(key)
        if task is None:
            task = self.spawn(start())
            running[key] = task
            task.add_done_callback(lambda _t: running.pop(key, None))
        return await asyncio.shield(task)

    async def cancel_all(self) -> None:
        """Cancel every running job and wait until all have ended."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if isinstance(exc, PeerwebError):
                log.info("background job ended: %s", exc)
            else:
                log.error("background job failed", exc_info=exc)
