"""The session's counters: libtorrent's session_stats metrics, and a snapshot for the node."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .handle import Session
from .rendezvous import Rendezvous


@dataclass(frozen=True)
class SwarmStats:
    """A snapshot of the session's counters."""

    dht_nodes: int
    peers: int
    upload_rate: int
    download_rate: int
    total_upload: int
    total_download: int
    hash_failures: int


class Counters:
    """Fresh session counters on request (``post_session_stats`` and its alert)."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session
        self._counters: dict[str, int] = {}
        # One key: every caller waits for the next stats alert, whoever asked for it.
        self._waiters: Rendezvous[None, None] = Rendezvous()

    async def counters(self, timeout: float = 2.0) -> dict[str, int]:
        """Fresh session counters (libtorrent's session_stats metrics, by name)."""
        future = self._waiters.wait(None)
        self._session().post_session_stats()
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation
        # that races with the result, and a cancelled node would then never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await future
        return self._counters

    async def dht_node_count(self) -> int:
        return (await self.counters()).get("dht.dht_nodes", 0)

    async def wait_dht_ready(self, timeout: float) -> bool:
        """Wait until the routing table has a node; False if none came within ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.02  # quick while a network forms, then backing off to keep an idle node idle
        while await self.dht_node_count() == 0:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
            delay = min(delay * 1.5, 2.0)
        return True

    async def statistics(self, hash_failures: Callable[[], int]) -> SwarmStats:
        """The counters, rates summed over torrents, and ``hash_failures()`` as it is then."""
        counters = await self.counters()
        up = down = 0
        # Not get_torrent_status(pred): libtorrent's binding calls the Python predicate on
        # its own thread without the GIL, which corrupts memory as soon as another thread
        # runs Python code (seen as crashes in the garbage collector; PYTHONMALLOC=debug
        # names the call). A handle's status() takes the GIL as it should.
        for status in (handle.status(0) for handle in self._session().get_torrents()):
            up += int(status.upload_rate)
            down += int(status.download_rate)
        return SwarmStats(
            dht_nodes=counters.get("dht.dht_nodes", 0),
            peers=counters.get("peer.num_peers_connected", 0),
            upload_rate=up,
            download_rate=down,
            total_upload=counters.get("net.sent_bytes", 0),
            total_download=counters.get("net.recv_bytes", 0),
            hash_failures=hash_failures(),
        )

    def on_stats(self, alert: Any) -> None:
        self._counters = {str(k): int(v) for k, v in alert.values.items()}
        self._waiters.settle(None, None)

    def cancel_all(self) -> None:
        self._waiters.cancel_all()
