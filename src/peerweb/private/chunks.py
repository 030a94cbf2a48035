"""The ciphertext of a private site's files: one chunk per 16 KiB BitTorrent block.

A chunk is ``nonce (24) || XChaCha20-Poly1305(plaintext (16344)) || tag (16)``, exactly
16384 bytes: the block libtorrent requests and verifies (BEP 3 "request" of 2^14 bytes; BEP
52 hashes the same 16 KiB leaves). Every file of a v2/hybrid torrent starts on a piece
boundary and pieces are whole numbers of blocks, so chunk ``k`` of a file is block ``k`` of
that file: a read of any byte range decrypts only the chunks it touches, and waits only for
the pieces that hold them. Random nonces (XChaCha's 192 bits make collisions negligible)
cost 0.15% and keep the format safe even if a content key were ever used twice.

The associated data binds each chunk to its place: ``MAGIC || version id || file id ||
index``. A chunk moved to another file, another position or another version fails its
tag check, as does any altered byte; a wrong key fails the same way.

Sizes: every file is padded (zeros, after its last byte) to a bucketed number of chunks,
so storing peers learn only the bucket (``padded_chunks``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import TamperedChunk
from . import aead

MAGIC = b"PWPRIV01"
"""Format and version of the ciphertext, first in every associated data."""
BLOCK_SIZE = 16 * 1024
"""BitTorrent's request and BEP 52 leaf size: one chunk each."""
NONCE_SIZE = aead.NONCE_SIZE
TAG_SIZE = aead.TAG_SIZE
KEY_SIZE = 32
ID_SIZE = 16
"""Bytes of a version id and of a file id (random: never derived from the content)."""
CHUNK_PLAINTEXT = BLOCK_SIZE - NONCE_SIZE - TAG_SIZE
"""16344 bytes of a file in each chunk."""
EXACT_BUCKETS = 16
"""Up to this many chunks, sizes round up to a power of two (1, 2, 4, 8, 16 chunks)."""
STEPS_PER_DOUBLING = 8
"""Above, to one of 8 steps per doubling: at most 12.5% of padding, 3 bits of size leaked."""


@dataclass(frozen=True)
class ChunkSpan:
    """The chunks a byte range of a file needs, and where the range sits in them."""

    first: int
    """Index of the first chunk."""
    count: int
    """How many chunks, from ``first``."""
    skip: int
    """Bytes of the first chunk's plaintext before the range."""

    @property
    def ciphertext_start(self) -> int:
        return self.first * BLOCK_SIZE

    @property
    def ciphertext_end(self) -> int:
        return (self.first + self.count) * BLOCK_SIZE


def chunks_for(size: int) -> int:
    """Chunks holding ``size`` bytes, before padding (at least one: empty files too)."""
    return max(1, -(-size // CHUNK_PLAINTEXT))


def padded_chunks(size: int) -> int:
    """Chunks a file of ``size`` bytes is stored in: its bucket."""
    n = chunks_for(size)
    if n <= EXACT_BUCKETS:
        return 1 << (n - 1).bit_length()
    step = 1 << (n.bit_length() - STEPS_PER_DOUBLING.bit_length())
    return -(-n // step) * step


def stored_size(size: int) -> int:
    """Bytes of ciphertext a file of ``size`` bytes is stored in."""
    return padded_chunks(size) * BLOCK_SIZE


def span(start: int, end: int) -> ChunkSpan:
    """The chunks bytes ``start`` to ``end`` (exclusive, ``end > start``) of a file touch."""
    first = start // CHUNK_PLAINTEXT
    last = (end - 1) // CHUNK_PLAINTEXT
    return ChunkSpan(first, last - first + 1, start - first * CHUNK_PLAINTEXT)


def associated_data(version_id: bytes, file_id: bytes, index: int) -> bytes:
    return MAGIC + version_id + file_id + index.to_bytes(8, "big")


def _ad_from(version_id: bytes, file_id: bytes, first: int) -> aead.AssociatedData:
    prefix = MAGIC + version_id + file_id
    return lambda position: prefix + (first + position).to_bytes(8, "big")


def seal_chunks(key: bytes, version_id: bytes, file_id: bytes, first: int,
                plaintext: bytes | bytearray | memoryview, count: int) -> bytearray:
    """Chunks ``first`` to ``first + count`` of a file sealing ``plaintext`` (at most
    ``count`` chunks of it; zeros after its end), each under a fresh random nonce."""
    if len(plaintext) > count * CHUNK_PLAINTEXT:
        raise ValueError(f"{count} chunks hold at most {count * CHUNK_PLAINTEXT} bytes")
    return aead.seal_run(key, plaintext, count, BLOCK_SIZE, os.urandom(NONCE_SIZE * count),
                         _ad_from(version_id, file_id, first))


def open_chunks(key: bytes, version_id: bytes, file_id: bytes, first: int,
                ciphertext: bytes | bytearray | memoryview, out: bytearray | None = None,
                offset: int = 0) -> bytearray:
    """The plaintext of whole chunks ``first``, ``first + 1``, ... of a file, one chunk's
    16344 bytes after another (in a new buffer, or written into ``out`` from ``offset``);
    TamperedChunk for the first that is altered, moved from another file, position or
    version, or sealed under another key."""
    if len(ciphertext) % BLOCK_SIZE:
        raise TamperedChunk(f"chunk {first + len(ciphertext) // BLOCK_SIZE} is "
                            f"{len(ciphertext) % BLOCK_SIZE} bytes, not {BLOCK_SIZE}")
    try:
        return aead.open_run(key, ciphertext, BLOCK_SIZE, _ad_from(version_id, file_id, first),
                             out=out, offset=offset)
    except aead.Failed as failed:
        raise TamperedChunk(
            f"chunk {first + failed.position} of this private file fails its authentication "
            "check: it was altered, or moved from another file or version; nothing of it is "
            "served") from None


def seal_chunk(key: bytes, version_id: bytes, file_id: bytes, index: int,
               plaintext: bytes, nonce: bytes | None = None) -> bytes:
    """One chunk of ciphertext; ``plaintext`` shorter than a chunk is padded with zeros."""
    if len(plaintext) > CHUNK_PLAINTEXT:
        raise ValueError(f"a chunk holds at most {CHUNK_PLAINTEXT} bytes")
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    return bytes(aead.seal_run(key, plaintext, 1, BLOCK_SIZE, nonce,
                               _ad_from(version_id, file_id, index)))


def open_chunk(key: bytes, version_id: bytes, file_id: bytes, index: int,
               chunk: bytes) -> bytes:
    """The 16344 plaintext bytes of one chunk, or TamperedChunk (``open_chunks``)."""
    if len(chunk) != BLOCK_SIZE:
        raise TamperedChunk(f"chunk {index} is {len(chunk)} bytes, not {BLOCK_SIZE}")
    return bytes(open_chunks(key, version_id, file_id, index, chunk))


def seal_stream(key: bytes, version_id: bytes, file_id: bytes, data: bytes,
                chunks: int | None = None) -> bytes:
    """All chunks of a small byte string, padded to ``chunks`` (default: its bucket)."""
    total = padded_chunks(len(data)) if chunks is None else chunks
    return bytes(seal_chunks(key, version_id, file_id, 0, data, total))


def open_stream(key: bytes, version_id: bytes, file_id: bytes, ciphertext: bytes) -> bytes:
    """The padded plaintext of whole chunks (``seal_stream`` undone)."""
    if len(ciphertext) % BLOCK_SIZE:
        raise TamperedChunk("private data is not a whole number of chunks")
    return bytes(open_chunks(key, version_id, file_id, 0, ciphertext))
