"""Private reads in runs (issue 20 performance): libsodium over whole runs of chunks, the
same bytes as PyNaCl's public binding; a range fed as a stream's pieces; the decrypting
pipeline's order, errors and early stop, with a plain async source."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt

from peerweb.content.folder import scan
from peerweb.errors import SwarmTimeout, TamperedChunk
from peerweb.node import decrypting
from peerweb.private import aead, chunks, layout
from peerweb.private.chunks import BLOCK_SIZE, CHUNK_PLAINTEXT
from peerweb.swarm.diskpiece import PieceSpan, read_run_unchecked

from .test_private import open_written

KEY = bytes(range(32))
VERSION = b"v" * 16
FILE = b"f" * 16


def ad(position: int) -> bytes:
    return chunks.associated_data(VERSION, FILE, 7 + position)


@pytest.mark.parametrize("size", [0, 1, CHUNK_PLAINTEXT, 3 * CHUNK_PLAINTEXT + 5])
def test_a_run_seals_and_opens_alike_straight_and_through_the_public_binding(size: int) -> None:
    assert aead.fast  # PyNaCl's cffi module is there: runs go straight to libsodium
    plaintext = os.urandom(size)
    nonces = os.urandom(4 * aead.NONCE_SIZE)
    straight = aead.seal_run(KEY, plaintext, 4, BLOCK_SIZE, nonces, ad)
    assert straight == aead.seal_run(KEY, plaintext, 4, BLOCK_SIZE, nonces, ad, use_fast=False)
    assert len(straight) == 4 * BLOCK_SIZE
    padded = plaintext.ljust(4 * CHUNK_PLAINTEXT, b"\0")
    for use_fast in (True, False):
        assert aead.open_run(KEY, bytes(straight), BLOCK_SIZE, ad, use_fast) == padded
    # Each chunk is the public format: nonce || XChaCha20-Poly1305 of its place's data.
    third = bytes(straight[2 * BLOCK_SIZE:3 * BLOCK_SIZE])
    assert crypto_aead_xchacha20poly1305_ietf_decrypt(
        third[24:], chunks.associated_data(VERSION, FILE, 9), third[:24], KEY) == padded[
            2 * CHUNK_PLAINTEXT:3 * CHUNK_PLAINTEXT]


def test_a_run_stops_at_its_first_bad_chunk_and_writes_where_it_is_told() -> None:
    sealed = aead.seal_run(KEY, os.urandom(3 * CHUNK_PLAINTEXT), 3, BLOCK_SIZE,
                           os.urandom(3 * aead.NONCE_SIZE), ad)
    for use_fast in (True, False):
        bad = bytearray(sealed)
        bad[BLOCK_SIZE + 100] ^= 1
        with pytest.raises(aead.Failed) as failed:
            aead.open_run(KEY, bad, BLOCK_SIZE, ad, use_fast)
        assert failed.value.position == 1
        with pytest.raises(aead.Failed):
            aead.open_run(os.urandom(32), sealed, BLOCK_SIZE, ad, use_fast)
        out = bytearray(b"x" * (10 + 3 * CHUNK_PLAINTEXT + 10))
        aead.open_run(KEY, memoryview(sealed), BLOCK_SIZE, ad, use_fast, out, 10)
        assert out[:10] == out[-10:] == b"x" * 10
        assert out[10:-10] == aead.open_run(KEY, sealed, BLOCK_SIZE, ad, use_fast)
    with pytest.raises(ValueError, match="too small"):
        aead.open_run(KEY, sealed, BLOCK_SIZE, ad, out=bytearray(CHUNK_PLAINTEXT))
    with pytest.raises(ValueError, match="whole chunks"):
        aead.open_run(KEY, sealed[:-1], BLOCK_SIZE, ad)


def test_open_chunks_names_the_chunk_that_fails_by_its_index_in_the_file() -> None:
    sealed = chunks.seal_chunks(KEY, VERSION, FILE, 5, b"abc", 2)
    assert chunks.open_chunks(KEY, VERSION, FILE, 5, sealed)[:3] == b"abc"
    with pytest.raises(TamperedChunk, match="chunk 6 "):
        chunks.open_chunks(KEY, VERSION, FILE, 5, sealed[:BLOCK_SIZE] + sealed[:BLOCK_SIZE])
    with pytest.raises(ValueError):
        chunks.seal_chunks(KEY, VERSION, FILE, 0, bytes(CHUNK_PLAINTEXT + 1), 1)


def written(tmp_path: Path, data: bytes) -> tuple[layout.OpenVersion, bytes]:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_bytes(b"<p>x</p>")
    (tmp_path / "site" / "big.bin").write_bytes(data)
    out = tmp_path / "out"
    layout.write_encrypted(scan(tmp_path / "site"), out, KEY)
    version = open_written(out, KEY)
    entry = version.manifest.by_path()["big.bin"]
    return version, (out / layout.DATA_DIR / entry.file_id.hex()).read_bytes()


def entry_of(version: layout.OpenVersion) -> int:
    found = version.sitemap.lookup("/big.bin").file_index
    assert found is not None
    return found


@pytest.mark.parametrize(("start", "end"), [(0, 1), (5, 9 * CHUNK_PLAINTEXT + 3),
                                            (CHUNK_PLAINTEXT, 2 * CHUNK_PLAINTEXT),
                                            (3 * CHUNK_PLAINTEXT - 1, 10 * CHUNK_PLAINTEXT)])
@pytest.mark.parametrize("piece", [4 * BLOCK_SIZE, 3 * BLOCK_SIZE + 100])
def test_a_range_fed_as_batches_of_pieces_reads_back_exact(tmp_path: Path, start: int, end: int,
                                                          piece: int) -> None:
    data = os.urandom(10 * CHUNK_PLAINTEXT)
    version, ciphertext = written(tmp_path, data)
    reader = layout.RangeReader(version, entry_of(version), start, end)
    wanted = ciphertext[reader.span.ciphertext_start:reader.span.ciphertext_end]
    pieces = [memoryview(wanted)[i:i + piece] for i in range(0, len(wanted), piece)]
    got = b"".join(reader.feed_all(pieces[i:i + 2]) for i in range(0, len(pieces), 2))
    assert got == data[start:end] and reader.done


def test_a_failed_batch_leaves_the_reader_where_it_was_to_read_again(tmp_path: Path) -> None:
    data = os.urandom(8 * CHUNK_PLAINTEXT)
    version, ciphertext = written(tmp_path, data)
    reader = layout.RangeReader(version, entry_of(version), 10, len(data))
    first = reader.feed_all([ciphertext[:2 * BLOCK_SIZE]])
    assert first == data[10:2 * CHUNK_PLAINTEXT]
    bad = bytearray(ciphertext[2 * BLOCK_SIZE:6 * BLOCK_SIZE])
    bad[3 * BLOCK_SIZE + 50] ^= 1  # chunk 5: the batch of chunks 2 to 5 fails whole
    with pytest.raises(TamperedChunk, match="chunk 5 "):
        reader.feed_all([bad[:BLOCK_SIZE + 7], bad[BLOCK_SIZE + 7:]])
    assert reader.resume_at == 2 * BLOCK_SIZE
    reader.restart()
    rest = reader.feed_all([ciphertext[reader.resume_at:]])
    assert first.tobytes() + rest.tobytes() == data[10:] and reader.done


def test_unchecked_run_gives_views_of_the_file_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * 12)
    spans = [PieceSpan(offset, 1024, 1024, b"\0" * 20) for offset in (0, 1024, 2048)]
    views = read_run_unchecked(path, spans)  # hashes are wrong: not looked at
    assert [v.tobytes() for v in views] == [(bytes(range(256)) * 12)[o:o + 1024]
                                            for o in (0, 1024, 2048)]
    assert len(read_run_unchecked(path, [*spans, PieceSpan(3072, 1024, 1024, b"")])) == 3
    assert read_run_unchecked(tmp_path / "absent", spans) == []


def test_waiting_ciphertext_is_taken_in_whole_parts_up_to_a_limit() -> None:
    waiting = decrypting.Waiting()
    for size in (10, 20, 30, 100):
        waiting.add(bytes(size))
    assert [len(p) for p in waiting.take(35)[0]] == [10, 20]
    assert waiting.take(1) == ([bytes(30)], 30)  # always at least one part
    assert waiting.size == 100 and waiting.take(1000)[1] == 100 and waiting.size == 0


async def pieces(data: bytes, size: int, error: Exception | None = None,
                 closed: list[bool] | None = None) -> AsyncIterator[bytes]:
    try:
        for i in range(0, len(data), size):
            await asyncio.sleep(0)
            yield data[i:i + size]
        if error is not None:
            raise error
    finally:
        if closed is not None:
            closed.append(True)


def joining(limit: int | None = None) -> tuple[decrypting.Feed, list[int]]:
    """A feed that passes bytes through (upper-cased), recording each batch's size."""
    sizes: list[int] = []

    def feed(parts: Sequence[bytes | bytearray | memoryview]) -> memoryview:
        joined = b"".join(parts)
        sizes.append(len(joined))
        return memoryview(joined.upper())

    return feed, sizes


async def test_the_pipeline_keeps_order_batches_big_feeds_and_ends_with_the_source() -> None:
    data = os.urandom(3 * decrypting.MAX_BATCH).hex().encode()  # 6 batches of hex digits
    feed, sizes = joining()
    got = [bytes(p) async for p in decrypting.decrypted(pieces(data, 65536), feed,
                                                         lambda: False)]
    assert b"".join(got) == data.upper()
    assert max(sizes) <= decrypting.MAX_BATCH and len(sizes) < len(data) // 65536


async def test_the_pipeline_passes_errors_on_after_the_bytes_before_them() -> None:
    feed, _ = joining()
    got = []
    with pytest.raises(SwarmTimeout):
        async for plain in decrypting.decrypted(pieces(b"abcdef", 2, SwarmTimeout("late")),
                                                feed, lambda: False):
            got.append(bytes(plain))
    assert b"".join(got) == b"ABCDEF"

    def failing(parts: Sequence[bytes | bytearray | memoryview]) -> memoryview:
        if b"x" in b"".join(parts):
            raise TamperedChunk("bad chunk")
        return memoryview(b"".join(parts))

    got = []
    with pytest.raises(TamperedChunk):
        async for plain in decrypting.decrypted(pieces(b"aaaaxaaaa", 4), failing,
                                                lambda: False):
            got.append(bytes(plain))
    assert b"".join(got) == b"aaaa"[:len(b"".join(got))]


async def test_the_pipeline_stops_and_closes_its_source_when_done_or_left() -> None:
    closed: list[bool] = []
    taken = []

    def feed(parts: Sequence[bytes | bytearray | memoryview]) -> memoryview:
        taken.append(b"".join(parts))
        return memoryview(taken[-1])

    stream = decrypting.decrypted(pieces(bytes(10_000_000), 1000, closed=closed), feed,
                                  lambda: len(taken) >= 2)
    got = [p async for p in stream]
    assert len(got) == 2 and closed == [True]
    closed.clear()
    stream = decrypting.decrypted(pieces(bytes(10_000_000), 1000, closed=closed), feed,
                                  lambda: False)
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    assert closed == [True]
