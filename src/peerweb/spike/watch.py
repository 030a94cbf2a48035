"""Notice when a site folder changes, so the origin can publish the new version.

Polling (no inotify dependency): a fingerprint of every published file's path, size and
modification time, taken every ``interval`` seconds. A change is reported once the folder has
stayed the same for one more interval, so a deploy that copies many files publishes once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from ..content.folder import scan
from ..errors import PeerwebError

log = logging.getLogger(__name__)

Fingerprint = frozenset[tuple[str, int, int]]


def fingerprint(folder: Path) -> Fingerprint | None:
    """What the folder would publish, cheaply; None while it cannot be published."""
    try:
        files = scan(folder, require_index=False)
    except PeerwebError:
        return None
    prints = set()
    for f in files:
        try:
            stat = f.path.stat()
        except OSError:
            return None
        prints.add((str(f.relative), stat.st_size, stat.st_mtime_ns))
    return frozenset(prints)


async def watch_folder(folder: Path, on_change: Callable[[], Awaitable[None]],
                       published: Fingerprint | None, interval: float = 2.0) -> None:
    """Call ``on_change`` after each settled change of ``folder`` from the state
    ``published`` (its fingerprint when it was last published); runs until cancelled."""
    pending: Fingerprint | None = None
    while True:
        await asyncio.sleep(interval)
        now = await asyncio.to_thread(fingerprint, folder)
        if now is None or now == published:
            pending = None
            continue
        if now != pending:  # still changing: wait for it to settle
            pending = now
            continue
        try:
            await on_change()
        except Exception as exc:  # keep watching: the next change may publish fine
            log.warning("publishing the changed site failed: %s", exc)
            continue
        published, pending = now, None
