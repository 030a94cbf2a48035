"""What the node writes to its data dir: ``state.json`` and each torrent's resume data.

Every write goes through one writer thread, in the order asked: an fsync can take long enough
to stall every visitor if made on the event loop. Changes to the state are written at most
once per ``Timings.state_write_interval`` (``save_state_soon``; ``policy.saving``), and on
stop. Resume data is saved when a torrent is added or finishes, soon after each completed
file (coalesced per torrent), every ``resume_active_interval`` while a torrent gains pieces
and every ``resume_save_interval`` otherwise, so a node killed with kill -9 loses a few
seconds of download at most.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..config import Timings
from ..errors import PeerwebError
from ..fileio import write_atomic
from ..policy import saving
from ..swarm.engine import Swarm, torrent_id
from . import state
from .jobs import Jobs

log = logging.getLogger(__name__)


class Persistence:
    """The node's state (``state``, loaded by ``load``) and the saves that keep it on disk.

    ``held`` gives the handles of the snapshots the node holds, by info-hash (hex): the
    torrents whose resume data is saved."""

    def __init__(self, data_dir: Path, timings: Timings, swarm: Swarm, jobs: Jobs,
                 held: Callable[[], Mapping[str, Any]]) -> None:
        self.data_dir = data_dir
        self.content_dir = data_dir / "content"
        self.resume_dir = data_dir / "resume"
        self.state = state.NodeState()
        self._timings = timings
        self._swarm = swarm
        self._jobs = jobs
        self._held = held
        self._dirty = False
        self._last_state_write: float | None = None
        self._state_write: asyncio.Task[None] | None = None
        self._resume_pending: set[str] = set()
        self._resume_saved: dict[str, tuple[int, float]] = {}
        """Per torrent: bytes verified when its resume data was last written, and when
        (``time.monotonic``)."""
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="peerweb-write")

    def load(self) -> None:
        """Make the data dir's folders and read ``state.json``."""
        for folder in (self.data_dir, self.content_dir, self.resume_dir):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.state = state.load(self.data_dir / "state.json")

    def restore(self) -> list[Any]:
        """Re-add every torrent saved in resume data: no peers or recheck needed. Returns the
        handles of the snapshots restored (not of v1 exports, which share their files)."""
        restored = []
        for path in sorted(self.resume_dir.glob("*.resume")):
            tid = path.stem
            try:
                # A v1 export is seeded from the files of the snapshot it was made from.
                folder = self.content_dir / self.state.exports.get(tid, tid)
                handle = self._swarm.add_resume(path.read_bytes(), folder)
            except (PeerwebError, RuntimeError, OSError) as exc:
                log.warning("could not restore %s (%s); it will be fetched again", tid, exc)
                continue
            if tid not in self.state.exports:
                restored.append(handle)
        return restored

    async def close(self) -> None:
        """The last saves, then the writer thread ends (later writes happen inline)."""
        await self.save_all_resume()
        self.save_state()
        await asyncio.to_thread(self._writer.shutdown, wait=True)

    # -- state -----------------------------------------------------------------------------

    def mark_dirty(self) -> None:
        """The state changed in a way worth saving, but not at once (the resume loop will)."""
        self._dirty = True

    def save_state_soon(self) -> None:
        """The state changed: write it within ``state_write_interval``, coalesced with every
        other change until then."""
        self._dirty = True
        if self._state_write is not None:
            return
        delay = saving.next_write_delay(self._last_state_write, time.monotonic(),
                                        self._timings.state_write_interval)
        self._state_write = self._jobs.spawn(self._save_state_later(delay))

    async def _save_state_later(self, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        finally:
            self._state_write = None
        if self._dirty:
            self.save_state()

    def save_state(self) -> None:
        """Write the state now (what a publisher must not forget; everything else calls
        ``save_state_soon``)."""
        self._dirty = False
        self._last_state_write = time.monotonic()
        self.write(self.data_dir / "state.json", state.encode(self.state))

    def write(self, path: Path, data: bytes) -> asyncio.Future[None]:
        """Replace a file atomically, off the event loop, one write at a time in the order
        asked."""
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._writer, write_atomic, path, data)
        except RuntimeError:  # the node has stopped: its writer is gone
            future = loop.create_future()
            try:
                write_atomic(path, data)
                future.set_result(None)
            except OSError as exc:
                future.set_exception(exc)
        future.add_done_callback(_log_write_error)
        return future

    # -- resume data -----------------------------------------------------------------------

    async def resume_loop(self) -> None:
        """Every ``resume_active_interval``: save the resume data of the torrents due a save
        (``saving.resume_due``: soon while they gain pieces, rarely when idle)."""
        while True:
            await asyncio.sleep(self._timings.resume_active_interval)
            now = time.monotonic()
            for tid, handle in list(self._held().items()):
                if not handle.is_valid():
                    continue
                saved = self._resume_saved.get(tid)
                done = int(handle.status().total_wanted_done)
                if saving.resume_due(done, saved[0] if saved else None,
                                     saved[1] if saved else 0.0, now,
                                     self._timings.resume_active_interval,
                                     self._timings.resume_save_interval):
                    await self.save_resume(handle)
            if self._dirty:
                self.save_state_soon()

    async def save_all_resume(self) -> None:
        for handle in list(self._held().values()):
            await self.save_resume(handle)

    async def save_resume(self, handle: Any) -> None:
        if not handle.is_valid() or handle.torrent_file() is None:
            return
        tid = torrent_id(handle)
        done = int(handle.status().total_wanted_done)
        data = await self._swarm.save_resume(handle)
        if data:
            await self.write(self.resume_dir / f"{tid}.resume", data)
            self._resume_saved[tid] = (done, time.monotonic())

    def forget_resume(self, tid: str) -> None:
        """A torrent removed: its resume data goes, and its save times with it."""
        self._resume_saved.pop(tid, None)
        (self.resume_dir / f"{tid}.resume").unlink(missing_ok=True)

    def on_file_completed(self, tid: str) -> None:
        # Resume data records which pieces are verified: written soon after each completed
        # file (coalesced), a kill -9 never costs a complete file.
        if tid in self._resume_pending or tid not in self._held():
            return
        self._resume_pending.add(tid)
        self._jobs.spawn(self._save_resume_later(tid))

    async def _save_resume_later(self, tid: str) -> None:
        try:
            await asyncio.sleep(self._timings.resume_coalesce)
        finally:
            self._resume_pending.discard(tid)
        handle = self._held().get(tid)
        if handle is not None:
            await self.save_resume(handle)


def _log_write_error(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("could not save the node's state: %s", future.exception())
