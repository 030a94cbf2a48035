"""The publisher's step-back loop: lower the upload of a published site while a crowd holds
each of its pieces at least twice, restore it when the crowd thins out. The thresholds are
``policy.stepback``'s; this applies them to libtorrent's view of the peers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..config import Timings
from ..policy import stepback as rule
from ..swarm.engine import Swarm
from .persistence import Persistence

log = logging.getLogger(__name__)


class StepBack:
    """Which published snapshots have their upload lowered (``stepped_back``)."""

    def __init__(self, timings: Timings, swarm: Swarm, disk: Persistence) -> None:
        self._timings = timings
        self._swarm = swarm
        self._disk = disk
        self._stepped_back: set[str] = set()

    def stepped_back(self, tid: str) -> bool:
        return tid in self._stepped_back

    async def loop(self) -> None:
        while True:
            await asyncio.sleep(self._timings.stepback_tick)
            current: set[str] = set()
            for site_id in list(self._disk.state.published):
                record = self._disk.state.sites.get(site_id)
                tid = record.pointer.infohash.hex() if record else ""
                handle = self._swarm.find(tid) if tid else None
                if handle is not None:
                    current.add(tid)
                    self._step_back_or_return(site_id, tid, handle)
            for tid in self._stepped_back - current:  # superseded by a new version
                self._stepped_back.discard(tid)
                handle = self._swarm.find(tid)
                if handle is not None:
                    handle.set_upload_limit(-1)

    def _step_back_or_return(self, site_id: str, tid: str, handle: Any) -> None:
        stepped = tid in self._stepped_back
        status = handle.status()
        if not status.is_seeding or (not stepped and status.num_peers < rule.MIN_PEERS):
            return
        pieces = [peer.pieces for peer in handle.get_peer_info()]
        counts = rule.availability(pieces, status.num_pieces)  # a seed holds them all
        if not stepped and rule.should_step_back(counts, len(pieces)):
            limit = rule.stepped_back_rate(int(status.upload_payload_rate))
            handle.set_upload_limit(limit)
            self._stepped_back.add(tid)
            log.info("%s: %d peers hold every piece at least %d times; upload lowered to "
                     "%d B/s", site_id[:12], len(pieces), rule.HOLDERS, limit)
        elif stepped and rule.should_return(counts, len(pieces)):
            handle.set_upload_limit(-1)
            self._stepped_back.discard(tid)
            log.info("%s: upload restored (%d peers)", site_id[:12], len(pieces))
