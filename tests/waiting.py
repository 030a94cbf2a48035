"""Waiting for a condition with a deadline: the one way tests wait (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

POLL = 0.05  # how often a condition is looked at again; the deadline bounds the wait


async def wait_until(condition: Callable[[], T | Awaitable[T]], timeout: float,
                     what: str = "the condition") -> T:
    """Return the first truthy value of ``condition()`` (sync or async), or fail the test
    with ``what`` once ``timeout`` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(POLL)


def wait_until_sync(condition: Callable[[], T], timeout: float,
                    what: str = "the condition") -> T:
    """``wait_until`` for tests that drive subprocesses without an event loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL)
