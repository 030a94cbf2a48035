"""Restoring a backup (``peerweb restore CAP DIR``): the newest version of a private site,
or an older one by number, fetched from whoever holds it and written out decrypted.

The newest version is the site's signed pointer, as for any visit. An older one is found by
its signed pointer too, which holders keep in the site's history and hand out on the peer
port (``GET /peerweb/v1/pointer/<site-id>?version=N``): a holder cannot point a restore at
another snapshot, and the snapshot's pieces are checked against its torrent as they come.
Every chunk is authenticated before it is written (``PrivateSites.stream``), so a restore
writes the folder's bytes exactly, or stops on an error.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..content import pointer as ptr
from ..errors import NotFound, UsageError
from ..http.peer_client import PeerClient
from ..policy.propagation import Endpoint
from .private import PrivateSites
from .snapshots import Snapshot

PART_SUFFIX = ".peerweb-part"


class Restorer:
    def __init__(self, private: PrivateSites, peers: PeerClient,
                 open_site: Callable[[str], Awaitable[Snapshot]],
                 open_snapshot: Callable[[str, str], Awaitable[Snapshot]],
                 known_version: Callable[[str, int | None], ptr.Pointer | None],
                 places: Callable[[str], Awaitable[list[Endpoint]]]) -> None:
        self._private = private
        self._peers = peers
        self._open_site = open_site
        self._open_snapshot = open_snapshot
        self._known_version = known_version
        """The signed pointer of a version of a site (None: the newest) if known here."""
        self._places = places
        """Peer ports that may hold a site: its holders in the DHT and volunteers."""

    async def restore(self, site_id: str, output: Path,
                      version: int | None = None) -> dict[str, Any]:
        """Write version ``version`` (None: the newest) of private site ``site_id`` into
        ``output``, a folder that does not exist yet or is empty."""
        if output.exists() and (not output.is_dir() or any(output.iterdir())):
            raise UsageError(f"{output} is not an empty folder: restore writes a whole "
                             "folder and overwrites nothing")
        if version is None:
            snapshot = await self._open_site(site_id)
        else:
            pointer = await self._find_version(site_id, version)
            snapshot = await self._open_snapshot(pointer.infohash.hex(), site_id)
        if not self._private.is_private(snapshot):
            raise UsageError(f"{site_id} is a public site, not a backup: fetch it with "
                             f"`peerweb get {site_id}/ -o DIR`")
        opened = await self._private.open(site_id, snapshot)
        output.mkdir(parents=True, exist_ok=True)
        written = 0
        for index, entry in enumerate(opened.manifest.entries):
            target = _inside(output, entry.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + PART_SUFFIX)
            try:
                with part.open("wb") as sink:
                    async for data in self._private.stream(snapshot, opened, index, 0,
                                                           entry.size):
                        await asyncio.to_thread(sink.write, data)
                    sink.flush()
                    os.fsync(sink.fileno())
            except BaseException:
                part.unlink(missing_ok=True)  # no half file is left to pass for a whole one
                raise
            part.replace(target)
            written += entry.size
        return {"site_id": site_id, "infohash": snapshot.tid,
                "version": version if version is not None else self._newest(site_id),
                "files": len(opened.manifest.entries), "bytes": written,
                "path": str(output)}

    async def _find_version(self, site_id: str, version: int) -> ptr.Pointer:
        found = self._known_version(site_id, version)
        if found is not None:
            return found
        places = await self._places(site_id)
        answers = await asyncio.gather(*(self._peers.fetch_version(p, site_id, version)
                                         for p in places))
        for answer in answers:
            if answer is not None:
                return answer
        raise NotFound(f"no holder of {site_id} found keeps version {version} (asked "
                       f"{len(places)}); older versions last only while someone keeps them")

    def _newest(self, site_id: str) -> int | None:
        pointer = self._known_version(site_id, None)
        return pointer.version if pointer is not None else None


def _inside(root: Path, path: str) -> Path:
    """Where a manifest path lands under ``root``; never outside it (a manifest is
    authenticated, but only as its publisher made it)."""
    parts = path.split("/")  # as written: PurePosixPath would tidy "a//b" and "./a"
    if any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise UsageError(f"the backup names a file outside its folder: {path[:80]!r}")
    return root.joinpath(*parts)
