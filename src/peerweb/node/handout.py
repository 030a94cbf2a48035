"""What a node hands to visitors' verifying workers (served by the gateway's mirror API):
the .torrent of a snapshot it holds whole, and a bundle of the snapshot's small files.

Both are made only from snapshots held in full, so every byte handed out can be checked
against the merkle roots in the torrent.
"""

from __future__ import annotations

from ..errors import NotFound, TooLarge
from ..swarm.engine import Swarm
from .snapshots import Snapshot, SnapshotStore

# .torrent files kept in memory once made; past this many the cache starts over (each is
# remade on demand, which waits on libtorrent's resume data).
MAX_KEPT_TORRENTS = 64


class Handout:
    """The .torrent files made so far, and the bundles made on request."""

    def __init__(self, swarm: Swarm, store: SnapshotStore) -> None:
        self._swarm = swarm
        self._store = store
        self._torrent_files: dict[str, bytes] = {}

    async def torrent_bytes(self, tid: str) -> bytes:
        """The .torrent of a snapshot held whole here, with its piece layers (immutable, so
        kept once made)."""
        found = self._torrent_files.get(tid)
        if found is not None:
            return found
        snapshot = self.whole_snapshot(tid)
        torrent = await self._swarm.torrent_file(snapshot.handle, ())
        if len(self._torrent_files) >= MAX_KEPT_TORRENTS:
            self._torrent_files.clear()
        self._torrent_files[tid] = torrent
        return torrent

    def kept_torrent(self, tid: str) -> bytes | None:
        """The .torrent of a snapshot if already made (``torrent_bytes``), without waiting."""
        return self._torrent_files.get(tid) if tid in self._store else None

    def whole_snapshot(self, tid: str) -> Snapshot:
        """A snapshot this node holds every piece of (what it may hand to mirrors' visitors)."""
        snapshot = self._store.get(tid)
        if snapshot is None or not snapshot.handle.status().is_seeding:
            raise NotFound(f"this node does not hold all of snapshot {tid[:80]} yet")
        return snapshot

    async def bundle(self, tid: str, limit: int) -> bytes:
        """Every file of a snapshot held whole here that fits in one piece, concatenated in
        BEP 52 file tree order: a verifying worker takes a small site in one request instead
        of one per file, and checks each file against its merkle root from the torrent.

        ``TooLarge`` when those files hold more than ``limit`` bytes."""
        snapshot = self.whole_snapshot(tid)
        piece_length = snapshot.handle.torrent_file().piece_length()
        paths = snapshot.sitemap.paths
        chosen = [i for i, path in enumerate(paths)
                  if path and 0 < snapshot.sizes[i] <= piece_length]
        if sum(snapshot.sizes[i] for i in chosen) > limit:
            raise TooLarge(f"this snapshot's small files exceed {limit} bytes; "
                           "fetch them one by one")
        # The file tree is a bencoded dictionary at every level: keys in byte order.
        chosen.sort(key=lambda i: [part.encode() for part in paths[i].split("/")])
        return b"".join([await self._store.read_file(snapshot, i) for i in chosen])
