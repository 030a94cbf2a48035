"""A private version as the files of a torrent, written from a folder and recognised again.

    peerweb-private/header           96 bytes: version id, content key under the read key
    peerweb-private/manifest         the encrypted tree (``manifest``)
    peerweb-private/readers          the content key sealed to readers' node keys (``readers``)
    peerweb-private/data/<32 hex>    one file's chunks; the name is its random file id

Nothing in a name, an order or a size says more than the bucket of each file: ids are
random (so the torrent's file order, sorted by name, is random too) and sizes are padded.
``RangeReader`` turns the ciphertext of a file's chunks, fed as it arrives, back into the
bytes of a range.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..content.folder import SourceFile
from ..content.sitemap import SiteMap
from ..errors import PublishError, TamperedChunk
from . import chunks
from .chunks import BLOCK_SIZE, CHUNK_PLAINTEXT, ID_SIZE, KEY_SIZE
from .manifest import Entry, Header, Manifest, make_header, open_manifest, seal_manifest
from .readers import seal_slots

ROOT_NAME = "peerweb-private"
HEADER_FILE = "header"
MANIFEST_FILE = "manifest"
READERS_FILE = "readers"
DATA_DIR = "data"
# Chunks read from a source file and sealed per write: 64 chunks, 1 MiB.
WRITE_BATCH = 64
# Files encrypted at once while publishing (one per core of a small machine).
ENCRYPT_THREADS = 2


@dataclass(frozen=True)
class Written:
    """What ``write_encrypted`` made."""

    header: Header
    manifest: Manifest
    ciphertext_size: int


def write_encrypted(files: Iterable[SourceFile], out: Path, read_key: bytes,
                    check_cancel: Callable[[], None] = lambda: None,
                    readers: Sequence[bytes] = ()) -> Written:
    """Encrypt ``files`` into ``out`` (the torrent's top folder, created) under a fresh
    random content key for this version, sealed in the header under ``read_key`` and in
    the ``readers`` file to each of ``readers`` (ed25519 node keys)."""
    content_key = os.urandom(KEY_SIZE)
    version_id = os.urandom(ID_SIZE)
    (out / DATA_DIR).mkdir(parents=True)
    files = list(files)
    entries = [Entry(source.relative, os.urandom(ID_SIZE), source.size) for source in files]

    def encrypt(job: tuple[SourceFile, Entry]) -> int:
        source, entry = job
        check_cancel()
        return _encrypt_file(source, out / DATA_DIR / entry.file_id.hex(), content_key,
                             version_id, entry.file_id, check_cancel)

    # Files are encrypted ENCRYPT_THREADS at a time (libsodium and file writes let go of
    # the GIL): encryption is what a private publish adds to a public one. The first error,
    # in files' order, is raised, and files not yet started are dropped.
    pool = ThreadPoolExecutor(ENCRYPT_THREADS, thread_name_prefix="peerweb-encrypt")
    try:
        total = sum(pool.map(encrypt, zip(files, entries, strict=True)))
    finally:
        pool.shutdown(cancel_futures=True)
    manifest = Manifest(tuple(entries))
    sealed = seal_manifest(manifest, content_key, version_id)
    (out / MANIFEST_FILE).write_bytes(sealed)
    header = make_header(read_key, content_key, version_id)
    (out / HEADER_FILE).write_bytes(header.encode())
    slots = seal_slots(content_key, version_id, list(readers))
    (out / READERS_FILE).write_bytes(slots)
    return Written(header, manifest, total + len(sealed) + len(header.encode()) + len(slots))


def _encrypt_file(source: SourceFile, target: Path, key: bytes, version_id: bytes,
                  file_id: bytes, check_cancel: Callable[[], None]) -> int:
    total = chunks.padded_chunks(source.size)
    index = 0
    try:
        with open(source.path, "rb") as reader, open(target, "wb") as writer:
            while index < total:
                check_cancel()
                data = reader.read(CHUNK_PLAINTEXT * WRITE_BATCH)
                # A batch of whole chunks; past the file's end, the padding chunks (zeros).
                count = min(total - index, max(1, -(-len(data) // CHUNK_PLAINTEXT)) if data
                            else WRITE_BATCH)
                writer.write(chunks.seal_chunks(key, version_id, file_id, index,
                                                memoryview(data)[:count * CHUNK_PLAINTEXT],
                                                count))
                index += count
    except OSError as exc:
        raise PublishError(f"encrypting {source.relative}: {exc.strerror}") from exc
    return total * BLOCK_SIZE


@dataclass(frozen=True)
class Layout:
    """Where a private version's parts are among a snapshot's files (torrent indexes)."""

    header: int
    manifest: int
    data: dict[str, int]
    """Torrent file index by ciphertext file name (the file id in hex)."""
    readers: int | None = None
    """The ``readers`` file (absent in versions made before it existed)."""


def recognise(paths: Iterable[str]) -> Layout | None:
    """The private layout of a snapshot's paths (relative to its top folder), or None for a
    public site. The caller checks the top folder's name is ``ROOT_NAME``."""
    header = manifest = readers = None
    data: dict[str, int] = {}
    for index, path in enumerate(paths):
        if path == HEADER_FILE:
            header = index
        elif path == MANIFEST_FILE:
            manifest = index
        elif path == READERS_FILE:
            readers = index
        elif path.startswith(DATA_DIR + "/"):
            data[path[len(DATA_DIR) + 1:]] = index
        elif path:
            return None
    if header is None or manifest is None:
        return None
    return Layout(header, manifest, data, readers)


@dataclass(frozen=True)
class OpenVersion:
    """A private version opened with its content key: the decrypted tree."""

    header: Header
    content_key: bytes
    manifest: Manifest
    sitemap: SiteMap
    """Lookup by path; indexes are positions in ``manifest.entries``."""
    torrent_index: tuple[int, ...]
    """The torrent file holding each entry's ciphertext."""
    stored_sizes: tuple[int, ...]
    """Ciphertext bytes of each entry, as the torrent lists them."""


def open_version(layout: Layout, header: Header, read_key: bytes | None,
                 manifest_ciphertext: bytes, torrent_sizes: tuple[int, ...],
                 content_key: bytes | None = None) -> OpenVersion:
    """Open a version with the site's read key (or the version's ``content_key``, from a
    readers slot): WrongKey for a key that does not open it, TamperedChunk for a manifest
    that fails its check or names files the torrent does not hold as it says."""
    if content_key is None:
        assert read_key is not None
        content_key = header.content_key(read_key)
    manifest = open_manifest(manifest_ciphertext, content_key, header.version_id)
    indexes = []
    for entry in manifest.entries:
        index = layout.data.get(entry.file_id.hex())
        if index is None or torrent_sizes[index] != chunks.stored_size(entry.size):
            raise TamperedChunk(f"the private manifest names a file the torrent does not hold "
                                f"as it says ({entry.file_id.hex()[:8]}...)")
        indexes.append(index)
    return OpenVersion(header, content_key, manifest,
                       SiteMap([e.path for e in manifest.entries]), tuple(indexes),
                       tuple(torrent_sizes[i] for i in indexes))


class RangeReader:
    """Bytes ``start`` to ``end`` of one private file from the ciphertext of the chunks
    ``chunks.span(start, end)`` names, fed in pieces of any size, in order.

    Each chunk is checked before any of its bytes leave: ``feed`` returns only plaintext
    of chunks that passed, and raises TamperedChunk on one that does not. A feed of whole
    chunks is decrypted where it lies, in one run (``chunks.open_chunks``), and what comes
    back is a view into that run's plaintext, not a copy."""

    def __init__(self, version: OpenVersion, entry: int, start: int, end: int) -> None:
        self._key = version.content_key
        self._version_id = version.header.version_id
        self._file_id = version.manifest.entries[entry].file_id
        self.span = chunks.span(start, end)
        self._index = self.span.first
        self._chunks_left = self.span.count
        self._left_to_skip = self.span.skip
        self._left = end - start
        self._buffer = bytearray()

    @property
    def done(self) -> bool:
        return self._left == 0

    @property
    def resume_at(self) -> int:
        """Where in the file's ciphertext the chunks not yet returned start: a caller whose
        feed failed may read again from here (after the last chunk that passed)."""
        return self._index * BLOCK_SIZE

    def restart(self) -> None:
        """Drop a chunk's part fed before: the next feed starts at ``resume_at``."""
        self._buffer = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> memoryview:
        return self.feed_all((data,))

    def feed_all(self, parts: Sequence[bytes | bytearray | memoryview]) -> memoryview:
        """The plaintext that ``parts``, fed one after another, complete, in one buffer.
        Parts of whole chunks (a stream's pieces) are decrypted where they lie; a part that
        splits a chunk costs a copy of the batch. Nothing changes when a chunk fails."""
        buffer = bytearray()
        if self._buffer or any(len(part) % BLOCK_SIZE for part in parts):
            joined = self._buffer + b"".join(parts)
            whole = len(joined) // BLOCK_SIZE * BLOCK_SIZE
            parts, buffer = (memoryview(joined)[:whole],), joined[whole:]
        take = min(sum(len(part) for part in parts) // BLOCK_SIZE, self._chunks_left)
        plain = bytearray(take * CHUNK_PLAINTEXT)
        index, left = self._index, take
        for part in parts:
            count = min(len(part) // BLOCK_SIZE, left)
            if count:
                chunks.open_chunks(self._key, self._version_id, self._file_id, index,
                                   memoryview(part)[:count * BLOCK_SIZE], plain,
                                   (index - self._index) * CHUNK_PLAINTEXT)
            index, left = index + count, left - count
        begin = self._left_to_skip if take else 0
        length = min(len(plain) - begin, self._left)
        self._buffer = buffer if take < self._chunks_left else bytearray()
        self._index += take
        self._chunks_left -= take
        if take:
            self._left_to_skip = 0
        self._left -= length
        return memoryview(plain)[begin:begin + length]


def stage_writer(read_key: bytes, readers: Sequence[bytes] = (),
                 ) -> Callable[[list[SourceFile], Path, Callable[[], None]], str]:
    """A ``swarm.build.StageWriter`` that writes a folder's files encrypted: the torrent is
    then built over the ciphertext, named ``ROOT_NAME``."""

    def write(files: list[SourceFile], staging: Path, check_cancel: Callable[[], None]) -> str:
        write_encrypted(files, staging / ROOT_NAME, read_key, check_cancel, readers)
        return ROOT_NAME

    return write
