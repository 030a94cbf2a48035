"""Private sites' pure parts (issue 20), with plain values: the chunk format, size buckets,
the header and manifest, read capabilities, the folder written encrypted and read back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from peerweb.content.folder import scan
from peerweb.content.identity import SiteKey
from peerweb.errors import BadCapability, TamperedChunk, WrongKey
from peerweb.private import capability, chunks, layout, manifest
from peerweb.private.chunks import BLOCK_SIZE, CHUNK_PLAINTEXT
from peerweb.private.keyring import Keyring

KEY = bytes(range(32))
VERSION = b"v" * 16
FILE = b"f" * 16


def test_a_chunk_is_exactly_one_block_and_opens_only_in_its_place() -> None:
    sealed = chunks.seal_chunk(KEY, VERSION, FILE, 3, b"hello")
    assert len(sealed) == BLOCK_SIZE == 16384 and CHUNK_PLAINTEXT == 16344
    assert chunks.open_chunk(KEY, VERSION, FILE, 3, sealed) == b"hello".ljust(16344, b"\0")
    for wrong in [(KEY, VERSION, b"g" * 16, 3),      # moved to another file
                  (KEY, VERSION, FILE, 4),            # moved within the file
                  (KEY, b"w" * 16, FILE, 3),          # replayed from another version
                  (bytes(32), VERSION, FILE, 3)]:     # another key
        with pytest.raises(TamperedChunk, match="authentication"):
            chunks.open_chunk(*wrong, sealed)
    for position in (0, 30, BLOCK_SIZE - 1):          # nonce, body, tag
        altered = bytearray(sealed)
        altered[position] ^= 1
        with pytest.raises(TamperedChunk):
            chunks.open_chunk(KEY, VERSION, FILE, 3, bytes(altered))
    with pytest.raises(TamperedChunk, match="not 16384"):
        chunks.open_chunk(KEY, VERSION, FILE, 3, sealed[:-1])


def test_nonces_are_fresh_so_equal_chunks_differ() -> None:
    assert chunks.seal_chunk(KEY, VERSION, FILE, 0, b"x") != chunks.seal_chunk(
        KEY, VERSION, FILE, 0, b"x")


@pytest.mark.parametrize(("size", "expected"), [
    (0, 1), (1, 1), (CHUNK_PLAINTEXT, 1), (CHUNK_PLAINTEXT + 1, 2), (3 * CHUNK_PLAINTEXT, 4),
    (16 * CHUNK_PLAINTEXT, 16), (16 * CHUNK_PLAINTEXT + 1, 18), (31 * CHUNK_PLAINTEXT, 32),
    (33 * CHUNK_PLAINTEXT, 36), (1000 * CHUNK_PLAINTEXT, 1024), (1025 * CHUNK_PLAINTEXT, 1152),
])
def test_sizes_round_up_into_buckets(size: int, expected: int) -> None:
    assert chunks.padded_chunks(size) == expected
    assert chunks.stored_size(size) == expected * BLOCK_SIZE


def test_buckets_cost_at_most_an_eighth_above_sixteen_chunks() -> None:
    buckets = {chunks.padded_chunks(n * CHUNK_PLAINTEXT) for n in range(1, 5000)}
    for n in range(17, 5000):
        assert chunks.padded_chunks(n * CHUNK_PLAINTEXT) <= n * 1.125
    # 8 buckets per doubling: a size says about 3 bits of itself past its magnitude.
    assert len([b for b in buckets if 1024 <= b < 2048]) == 8


def test_a_span_names_the_chunks_of_a_range() -> None:
    assert chunks.span(0, 1) == chunks.ChunkSpan(0, 1, 0)
    assert chunks.span(CHUNK_PLAINTEXT - 1, CHUNK_PLAINTEXT + 1) == chunks.ChunkSpan(0, 2,
                                                                                     16343)
    s = chunks.span(10 * CHUNK_PLAINTEXT + 5, 12 * CHUNK_PLAINTEXT)
    assert (s.first, s.count, s.skip) == (10, 2, 5)
    assert (s.ciphertext_start, s.ciphertext_end) == (10 * BLOCK_SIZE, 12 * BLOCK_SIZE)


def test_the_header_gives_the_content_key_only_to_the_read_key() -> None:
    content = os.urandom(32)
    header = manifest.make_header(KEY, content, VERSION)
    encoded = header.encode()
    assert len(encoded) == manifest.HEADER_SIZE == 96
    parsed = manifest.parse_header(encoded)
    assert parsed.content_key(KEY) == content
    with pytest.raises(WrongKey, match="does not open"):
        parsed.content_key(os.urandom(32))
    with pytest.raises(TamperedChunk):
        manifest.parse_header(encoded[:-1])
    moved = manifest.Header(b"w" * 16, header.sealed_key)  # sealed key from another version
    with pytest.raises(WrongKey):
        moved.content_key(KEY)


def test_a_manifest_round_trips_and_refuses_bad_trees() -> None:
    tree = manifest.Manifest((manifest.Entry("index.html", FILE, 12),
                              manifest.Entry("a/b c.txt", b"g" * 16, 0)))
    sealed = manifest.seal_manifest(tree, KEY, VERSION)
    assert len(sealed) % BLOCK_SIZE == 0
    assert manifest.open_manifest(sealed, KEY, VERSION) == tree
    with pytest.raises(TamperedChunk):
        manifest.open_manifest(sealed, KEY, b"w" * 16)
    for bad in [manifest.Entry("../x", FILE, 1), manifest.Entry("a//b", FILE, 1)]:
        with pytest.raises(TamperedChunk, match="malformed"):
            manifest.open_manifest(manifest.seal_manifest(manifest.Manifest((bad,)), KEY,
                                                          VERSION), KEY, VERSION)
    twice = manifest.Manifest((manifest.Entry("x", FILE, 1), manifest.Entry("y", FILE, 1)))
    with pytest.raises(TamperedChunk, match="twice"):
        manifest.open_manifest(manifest.seal_manifest(twice, KEY, VERSION), KEY, VERSION)


def test_a_capability_round_trips_in_both_forms() -> None:
    site_id = SiteKey.generate("x").site_id
    cap = capability.ReadCapability(site_id, KEY)
    link = cap.link()
    assert link.startswith(f"peerweb://{site_id}#k=") and len(link.split("k=")[1]) == 48
    assert capability.parse(link) == cap
    assert capability.parse(cap.gateway_link(8080)) == cap
    assert capability.parse(link.replace(site_id, site_id.upper())) == cap


def test_bad_capabilities_are_refused_with_what_is_wrong() -> None:
    site_id = SiteKey.generate("x").site_id
    other = SiteKey.generate("y").site_id
    link = capability.ReadCapability(site_id, KEY).link()
    cases = {
        link[:-1]: "cut short",
        link[:-10]: "cut short",
        link.split("#")[0]: "no '#'",
        link.replace(site_id, other): "does not match",
        link[:-2] + ("A" if link[-2] != "A" else "B") + link[-1]: "does not match",
        link.replace(site_id, site_id[:-1]): "site id",
        "https://example.com/#k=" + link.split("k=")[1]: "site id",
        "ftp://x#k=y": "starts with",
        f"peerweb://{site_id}#x=1": "no k=",
        link[:-1] + "*": "base64url",
    }
    for text, message in cases.items():
        with pytest.raises(BadCapability, match=message):
            capability.parse(text)


def make_folder(root: Path) -> dict[str, bytes]:
    files = {"index.html": b"<h1>private hello</h1>", "docs/empty.txt": b"",
             "big.bin": os.urandom(5 * CHUNK_PLAINTEXT + 123),
             "exact.bin": os.urandom(2 * CHUNK_PLAINTEXT)}
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return files


def open_written(out: Path, read_key: bytes) -> layout.OpenVersion:
    paths = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    found = layout.recognise(paths)
    assert found is not None
    header = manifest.parse_header((out / layout.HEADER_FILE).read_bytes())
    sizes = tuple((out / p).stat().st_size for p in paths)
    return layout.open_version(found, header, read_key, (out / layout.MANIFEST_FILE).read_bytes(),
                               sizes)


def read(out: Path, version: layout.OpenVersion, path: str, start: int, end: int,
         feed: int = 1000) -> bytes:
    entry = version.sitemap.lookup("/" + path).file_index
    assert entry is not None
    reader = layout.RangeReader(version, entry, start, end)
    name = version.manifest.entries[entry].file_id.hex()
    data = (out / layout.DATA_DIR / name).read_bytes()
    data = data[reader.span.ciphertext_start:reader.span.ciphertext_end]
    got = b"".join(reader.feed(data[i:i + feed]) for i in range(0, len(data), feed))
    assert reader.done
    return got


def test_a_folder_written_encrypted_reads_back_byte_exact_by_any_range(tmp_path: Path) -> None:
    files = make_folder(tmp_path / "site")
    out = tmp_path / "out"
    read_key = os.urandom(32)
    written = layout.write_encrypted(scan(tmp_path / "site"), out, read_key)
    stored = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert stored[:2] == ["data/" + e for e in sorted(e.file_id.hex() for e in
                                                      written.manifest.entries)][:2]
    for path in stored:  # no plaintext name anywhere in the torrent's names
        assert not any(name in path for name in ("index", "docs", "big", "exact", "empty"))
    for entry in written.manifest.entries:
        size = (out / "data" / entry.file_id.hex()).stat().st_size
        assert size == chunks.stored_size(entry.size)
    version = open_written(out, read_key)
    big = files["big.bin"]
    for path, data in files.items():
        if data:
            assert read(out, version, path, 0, len(data)) == data
    for start, end in [(0, 1), (CHUNK_PLAINTEXT - 1, CHUNK_PLAINTEXT + 1), (5, len(big)),
                       (int(len(big) * 0.9), len(big)), (3 * CHUNK_PLAINTEXT, 4 * CHUNK_PLAINTEXT)]:
        assert read(out, version, "big.bin", start, end, feed=7777) == big[start:end]
    with pytest.raises(WrongKey):
        open_written(out, os.urandom(32))


def test_a_chunk_moved_between_files_fails_as_it_is_read(tmp_path: Path) -> None:
    make_folder(tmp_path / "site")
    out = tmp_path / "out"
    read_key = os.urandom(32)
    layout.write_encrypted(scan(tmp_path / "site"), out, read_key)
    version = open_written(out, read_key)
    by_path = version.manifest.by_path()
    big = out / "data" / by_path["big.bin"].file_id.hex()
    exact = out / "data" / by_path["exact.bin"].file_id.hex()
    data = bytearray(big.read_bytes())
    data[:BLOCK_SIZE] = exact.read_bytes()[:BLOCK_SIZE]
    big.write_bytes(bytes(data))
    with pytest.raises(TamperedChunk):
        read(out, version, "big.bin", 0, 10)
    assert read(out, version, "big.bin", CHUNK_PLAINTEXT, CHUNK_PLAINTEXT + 10)  # others open


def test_the_keyring_is_private_and_sees_keys_others_added(tmp_path: Path) -> None:
    node_side, cli_side = Keyring(tmp_path), Keyring(tmp_path)
    assert node_side.get("site") is None
    assert cli_side.put("site", KEY) and not cli_side.put("site", KEY)
    assert node_side.get("site") == KEY
    assert (tmp_path / "keyring.json").stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError):
        cli_side.put("other", b"short")


def test_a_content_key_sealed_to_readers_opens_only_for_them(tmp_path: Path) -> None:
    from peerweb.private import readers

    alice, bob, eve = (readers.NodeKey.from_seed(os.urandom(32)) for _ in range(3))
    key, version = os.urandom(32), os.urandom(16)
    slots = readers.seal_slots(key, version, [alice.public_key, bob.public_key])
    assert len(slots) == readers.SLOT_BUCKET * readers.SLOT_SIZE  # padded: count hidden
    assert readers.open_slots(slots, alice, version) == key
    assert readers.open_slots(slots, bob, version) == key
    assert readers.open_slots(slots, eve, version) is None
    # A slot replayed into another version does not open there.
    assert readers.open_slots(slots, alice, os.urandom(16)) is None
    nine = readers.seal_slots(key, version, [alice.public_key] * 9)
    assert len(nine) == 2 * readers.SLOT_BUCKET * readers.SLOT_SIZE


def test_node_keys_are_kept_private_and_parsed_strictly(tmp_path: Path) -> None:
    from peerweb.errors import BadAddress
    from peerweb.private import readers

    mine = readers.NodeKey.load_or_create(tmp_path)
    assert (tmp_path / readers.NODE_KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert readers.NodeKey.load_or_create(tmp_path) == mine
    assert readers.parse_node_key(mine.text.upper()) == mine.public_key
    for bad in (mine.text[:-1], "1" * 52, ""):
        with pytest.raises(BadAddress):
            readers.parse_node_key(bad)
    listed = readers.ReaderList(tmp_path)
    other = readers.NodeKey.from_seed(os.urandom(32))
    site = SiteKey.generate("s").site_id
    assert listed.change(site, add=[mine.text, other.text, mine.text]) == [mine.text,
                                                                          other.text]
    assert listed.change(site, remove=[mine.text]) == [other.text]
    assert listed.of(site) == [other.public_key]
    from peerweb.errors import UsageError
    with pytest.raises(UsageError, match="not a reader"):
        listed.change(site, remove=[mine.text])


def test_a_version_opens_with_its_slot_and_not_after_removal(tmp_path: Path) -> None:
    from peerweb.private import readers

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_bytes(b"hello reader" * 100)
    reader = readers.NodeKey.from_seed(os.urandom(32))
    read_key = os.urandom(32)
    for listed, opens in (([reader.public_key], True), ([], False)):
        out = tmp_path / f"v{int(opens)}"
        written = layout.write_encrypted(scan(tmp_path / "site"), out, read_key,
                                         readers=listed)
        slots = (out / layout.READERS_FILE).read_bytes()
        got = readers.open_slots(slots, reader, written.header.version_id)
        assert (got is not None) is opens
        if got is not None:
            assert got == written.header.content_key(read_key)


def test_encrypting_stops_at_a_failed_file_and_at_a_cancel(tmp_path: Path) -> None:
    """Files are encrypted several at a time: an unreadable one is still a PublishError
    naming it, and a cancel still stops the whole write."""
    from peerweb.errors import PublishError

    make_folder(tmp_path / "site")
    files = scan(tmp_path / "site")
    gone = next(f for f in files if f.relative == "big.bin")
    gone.path.unlink()
    with pytest.raises(PublishError, match=gone.relative):
        layout.write_encrypted(files, tmp_path / "out", os.urandom(32))

    class Stop(Exception):
        pass

    calls: list[int] = []

    def check_cancel() -> None:
        calls.append(1)
        if len(calls) > 3:
            raise Stop

    with pytest.raises(Stop):
        layout.write_encrypted(scan(tmp_path / "site"), tmp_path / "out2", os.urandom(32),
                               check_cancel)
