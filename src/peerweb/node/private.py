"""Private sites on a node (``peerweb.private``): which snapshots are private, opening them
with the keyring's read key, and reading their files decrypted.

Any node holds and seeds a private snapshot as it does any other: the pieces are checked
against the torrent, which covers the ciphertext. Only here, and only with the key, do
names and bytes come out; the opened manifests are kept in memory, never written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from ..errors import NoReadKey, TamperedChunk, WrongKey
from ..private import layout, readers
from ..private.keyring import Keyring
from ..private.layout import Layout, OpenVersion, RangeReader
from ..private.manifest import Header, parse_header
from ..private.readers import NodeKey
from . import decrypting
from .snapshots import Snapshot, SnapshotStore

log = logging.getLogger(__name__)

# Opened versions kept in memory (a manifest each); a node reads few private sites at once.
OPEN_VERSIONS = 64
# The largest readers file tried (readers.MAX_READERS slots): a bigger one is not ours.
MAX_READERS_FILE = readers.MAX_READERS * readers.SLOT_SIZE


class PrivateSites:
    def __init__(self, data_dir: Path, store: SnapshotStore) -> None:
        self.keyring = Keyring(data_dir)
        self.node_key = NodeKey.load_or_create(data_dir)
        self._store = store
        self._layouts: dict[str, Layout | None] = {}
        self._opened: dict[tuple[str, bytes], OpenVersion] = {}

    def layout(self, snapshot: Snapshot) -> Layout | None:
        """The private layout of a snapshot, or None for a public one."""
        if snapshot.tid not in self._layouts:
            found = None
            if snapshot.handle.torrent_file().name() == layout.ROOT_NAME:
                found = layout.recognise(snapshot.sitemap.paths)
            self._layouts[snapshot.tid] = found
        return self._layouts[snapshot.tid]

    def is_private(self, snapshot: Snapshot) -> bool:
        return self.layout(snapshot) is not None

    async def open(self, site_id: str | None, snapshot: Snapshot) -> OpenVersion:
        """The snapshot of a private site opened with the keyring's key for ``site_id``:
        NoReadKey without one, WrongKey if it does not open it, TamperedChunk for a
        manifest that fails its check."""
        found = self.layout(snapshot)
        assert found is not None, "open() is for private snapshots"
        key = self.keyring.get(site_id) if site_id else None
        cached = self._opened.get((snapshot.tid, key or b"node-key"))
        if cached is not None:
            return cached
        # The header and the manifest are asked for at once: on a cold node each is a
        # piece from the swarm, and one after the other they were two round trips before
        # the first byte of a file.
        manifest_read = asyncio.ensure_future(self._store.read_file(snapshot, found.manifest))
        try:
            header = parse_header(await self._store.read_file(snapshot, found.header))
            content_key = None
            if key is not None:
                try:
                    content_key = header.content_key(key)
                except WrongKey:
                    content_key = await self._sealed_to_me(snapshot, found, header)
                    if content_key is None:
                        raise
            else:
                content_key = await self._sealed_to_me(snapshot, found, header)
                if content_key is None:
                    raise NoReadKey("this site is private: its files are encrypted, and this "
                                    "node has no key for it. Open its read capability first "
                                    "(`peerweb open peerweb://<site-id>#k=...`), or ask its "
                                    "publisher to add this node's key (`peerweb node-key`).")
            manifest = await manifest_read
        finally:
            if not manifest_read.done():
                manifest_read.cancel()  # not needed after all (no key, a wrong one)
            elif not manifest_read.cancelled():
                manifest_read.exception()  # seen: a failure of the header's read says it
        opened = layout.open_version(found, header, None, manifest, snapshot.sizes,
                                     content_key=content_key)
        if len(self._opened) >= OPEN_VERSIONS:
            self._opened.pop(next(iter(self._opened)))
        self._opened[(snapshot.tid, key or b"node-key")] = opened
        return opened

    async def _sealed_to_me(self, snapshot: Snapshot, found: Layout,
                            header: Header) -> bytes | None:
        """The content key this version's readers file seals to this node, if any."""
        if found.readers is None or snapshot.sizes[found.readers] > MAX_READERS_FILE:
            return None
        slots = await self._store.read_file(snapshot, found.readers)
        return readers.open_slots(slots, self.node_key, header.version_id)

    async def stream(self, snapshot: Snapshot, version: OpenVersion, entry: int, start: int,
                     end: int) -> AsyncIterator[memoryview]:
        """Bytes ``start`` to ``end`` of a private file, decrypting only the chunks they lie
        in, each checked before any of its bytes are yielded; decrypted in batches beside
        the loop while the next ciphertext comes (``decrypting``)."""
        if end <= start:
            return
        reader = RangeReader(version, entry, start, end)
        index = version.torrent_index[entry]
        ciphertext_end = min(reader.span.ciphertext_end, version.stored_sizes[entry])
        # Every chunk is checked by its AEAD tag, so held pieces are read without their
        # SHA-1 (half the cost of a held stream). A chunk that fails is read once more with
        # it: a piece libtorrent holds may not be on disk yet, or the file was changed
        # there; the checked read gets it right, or says the ciphertext itself is wrong.
        checked = False
        while True:
            source = self._store.stream(snapshot, index, reader.resume_at, ciphertext_end,
                                        checked=checked)
            try:
                async for plain in decrypting.decrypted(source, reader.feed_all,
                                                        lambda: reader.done):
                    yield plain
                break
            except TamperedChunk:
                if checked:
                    raise
                log.info("%s: a held chunk failed its check; reading it again, checked",
                         snapshot.tid[:12])
                checked = True
                reader.restart()
        if not reader.done:
            raise TamperedChunk("a private file ended before the range it was asked")
