"""static/verify.js, run in Chromium against the Python side's answers on the same inputs."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page

from peerweb.content import bencode
from peerweb.content import pointer as ptr
from peerweb.content.identity import SiteKey
from peerweb.content.ranges import RangeNotSatisfiable, parse_range
from peerweb.content.sitemap import Kind, SiteMap, content_type
from peerweb.swarm.build import build
from peerweb.tools.testnet import write_sample_site

from .pages import call, parts_page

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page() -> AsyncIterator[Page]:
    async with parts_page() as loaded:
        yield loaded


async def test_records_signed_by_the_site_key_verify_and_others_do_not(page):
    key, other = SiteKey.generate("a"), SiteKey.generate("b")
    good = ptr.sign(key, b"\x11" * 20, 7, seq=3)
    result = await call(page, "V.verifyRecord(V.fromHex(args[0]), args[1])",
                        key.public_key.hex(), good.to_json())
    assert result == {"version": 7, "ih": "11" * 20}
    forged = dict(good.to_json(), signature="00" * 64)
    assert (await call(page, "V.verifyRecord(V.fromHex(args[0]), args[1])",
                       key.public_key.hex(), forged))["error"] == "Invalid"
    # Signed, but by another key than the one the origin embedded.
    theirs = ptr.sign(other, b"\x22" * 20, 9, seq=1).to_json()
    assert (await call(page, "V.verifyRecord(V.fromHex(args[0]), args[1])",
                       key.public_key.hex(), theirs))["error"] == "Invalid"
    # The signed value altered after signing (version bumped).
    bumped = dict(good.to_json(), value=good.value.replace(b"i7e", b"i8e").hex())
    assert (await call(page, "V.verifyRecord(V.fromHex(args[0]), args[1])",
                       key.public_key.hex(), bumped))["error"] == "Invalid"


@pytest.fixture(scope="module")
def torrent_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("js")
    contents = write_sample_site(root / "site", small_files=6, big_size=600_000 + 123)
    built = build(root / "site", root / "store")
    return built.torrent, built.infohash, contents


async def test_torrents_match_the_signed_infohash_and_their_merkle_roots(page, torrent_site):
    torrent, infohash, contents = torrent_site
    parsed = await call(page, """(async () => {
        const t = await V.parseTorrent(V.fromHex(args[0]), args[1]);
        const out = {pieceLength: t.pieceLength, files: {}};
        for (const [p, f] of t.files) out.files[p] = {length: f.length, root: V.hex(f.root),
                                                      layer: f.layer ? f.layer.length : 0};
        return out; })()""", torrent.hex(), infohash.hex())
    info = bencode.decode(torrent)[b"info"]
    assert parsed["pieceLength"] == info[b"piece length"]
    assert set(parsed["files"]) == set(contents)
    for path, data in contents.items():
        assert parsed["files"][path]["length"] == len(data)
        assert parsed["files"][path]["root"] == python_root(data)
    assert parsed["files"]["media/big.bin"]["layer"] > 1
    # One byte of the info dict changed: it no longer hashes to the signed info-hash.
    at = torrent.index(b"12:piece length") + 20
    tampered = torrent[:at] + bytes([torrent[at] ^ 1]) + torrent[at + 1:]
    assert (await call(page, "V.parseTorrent(V.fromHex(args[0]), args[1])",
                       tampered.hex(), infohash.hex()))["error"] == "Invalid"


async def test_files_and_pieces_check_against_the_tree(page, torrent_site):
    torrent, infohash, contents = torrent_site
    big = contents["media/big.bin"]
    piece = bencode.decode(torrent)[b"info"][b"piece length"]
    script = """(async () => {
        const t = await V.parseTorrent(V.fromHex(args[0]), args[1]);
        const f = t.files.get(args[2]);
        return await V[args[3]](...(args[3] === 'checkFile' ? [f, V.fromHex(args[4])]
                                    : [f, t.pieceLength, args[5], V.fromHex(args[4])])); })()"""
    small = contents["assets/file01.js"]
    assert await call(page, script, torrent.hex(), infohash.hex(), "assets/file01.js",
                      "checkFile", small.hex(), 0) is True
    altered = bytes([small[0] ^ 1]) + small[1:]
    assert await call(page, script, torrent.hex(), infohash.hex(), "assets/file01.js",
                      "checkFile", altered.hex(), 0) is False
    # Pieces 1-2, then the short last piece, of the big file; then one flipped byte.
    two = big[piece:3 * piece]
    assert await call(page, script, torrent.hex(), infohash.hex(), "media/big.bin",
                      "checkPieces", two.hex(), 1) is True
    last = (len(big) - 1) // piece
    assert await call(page, script, torrent.hex(), infohash.hex(), "media/big.bin",
                      "checkPieces", big[last * piece:].hex(), last) is True
    flipped = two[:100] + bytes([two[100] ^ 0x80]) + two[101:]
    assert await call(page, script, torrent.hex(), infohash.hex(), "media/big.bin",
                      "checkPieces", flipped.hex(), 1) is False
    assert await call(page, script, torrent.hex(), infohash.hex(), "media/big.bin",
                      "checkPieces", two.hex(), 2) is False  # the right bytes at the wrong place


async def test_a_piece_layer_that_does_not_match_its_root_is_refused_before_any_piece(
        page, torrent_site):
    torrent, infohash, contents = torrent_site
    decoded = bencode.decode(torrent)
    layers = decoded[b"piece layers"]
    root = next(iter(layers))
    forged = bytearray(layers[root])
    forged[40] ^= 1  # piece 1's hash: outside the info dict, so the info-hash still matches
    layers[root] = bytes(forged)
    piece = decoded[b"info"][b"piece length"]
    big = contents["media/big.bin"]
    got = await call(page, """(async () => {
        const t = await V.parseTorrent(V.fromHex(args[0]), args[1]);
        const f = t.files.get('media/big.bin');
        const outcome = async (p) => p.then(() => 'accepted', (e) => e.constructor.name);
        return [await outcome(V.checkLayer(f, t.pieceLength)),
                await outcome(V.checkPieces(f, t.pieceLength, 0, V.fromHex(args[2])))]; })()""",
                     bencode.encode(decoded).hex(), infohash.hex(), big[:piece].hex())
    # Piece 0 is untouched, yet nothing is checked against a layer that fails its root.
    assert got == ["Invalid", "Invalid"]


async def test_paths_types_and_ranges_agree_with_the_python_gateway(page):
    paths = ["index.html", "404.html", "docs/index.html", "docs/a b.txt", "img/x.PNG", "app.js"]
    sitemap = SiteMap(paths)
    raw = ["/", "", "/docs", "/docs/", "/docs/a%20b.txt", "/app.js", "/app.js/", "/missing",
           "/../index.html", "/docs/%2e%2e/x", "/a%2Fb", "/%ff", "/img/x.PNG", "/./app.js"]
    got = await call(page, "args[1].map((p) => V.lookup(V.siteIndex(args[0]), p))", paths, raw)
    for path, js in zip(raw, got, strict=True):
        found = sitemap.lookup(path)
        expected: dict[str, Any] = {"kind": found.kind.value}
        if found.kind is Kind.FILE:
            expected["path"] = paths[found.file_index or 0]
        elif found.kind is Kind.REDIRECT:
            expected["location"] = found.location
        elif found.kind is Kind.NOT_FOUND:
            expected["path"] = "404.html"
        assert js == expected, path
    names = ["a.html", "b.JS", "c.css", "d.json", "e.svg", "f.png", "g.webm", "h.bin", "noext"]
    types = await call(page, "args[0].map(V.contentType)", names)
    assert types == [content_type(n) for n in names]
    headers = ["bytes=0-9", "bytes=5-", "bytes=-3", "bytes=0-0,5-6", "bytes=9-2", "bytes=x-",
               "bytes=100-", "bytes=-0", "items=0-1", "bytes=3-1000", None]
    got = await call(page, "args[0].map((h) => { try { const r = V.parseRange(h, 50);"
                     " return r && [r.start, r.end]; } catch (e) { return 'unsatisfiable'; } })",
                     headers)
    for header, js in zip(headers, got, strict=True):
        try:
            found_range = parse_range(header, 50)
            expected_range: Any = found_range and [found_range.start, found_range.end]
        except RangeNotSatisfiable:
            expected_range = "unsatisfiable"
        assert js == expected_range, header


async def test_malformed_bencoding_is_refused(page):
    cases = ["", "i01e", "d1:bi1e1:ai2ee", "l", "5:abc", "i1ei2e", "d1:a" + "l" * 100]
    got = await call(page, "args[0].map((t) => { try { V.bdecode(new TextEncoder().encode(t));"
                     " return 'accepted'; } catch (e) { return e.constructor.name; } })", cases)
    assert got == ["Invalid"] * len(cases)


def python_root(data: bytes) -> str:
    """BEP 52 pieces root of a whole file, the straightforward way."""
    block = 16384
    nodes = [hashlib.sha256(data[i:i + block]).digest() for i in range(0, len(data), block)]
    width = 1
    while width < len(nodes):
        width *= 2
    nodes += [bytes(32)] * (width - len(nodes))
    while len(nodes) > 1:
        nodes = [hashlib.sha256(nodes[i] + nodes[i + 1]).digest()
                 for i in range(0, len(nodes), 2)]
    return nodes[0].hex()


