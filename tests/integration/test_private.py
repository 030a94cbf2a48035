"""Private sites end to end on loopback (issue 20): seeders without the key hold and serve
the ciphertext, a reader with the capability gets every byte through its gateway, and bad
keys, capabilities and chunks each end in a clear error, never in wrong bytes."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from peerweb.cli import main as cli
from peerweb.private import capability, chunks, layout
from peerweb.private.chunks import BLOCK_SIZE
from peerweb.tools.testnet import Testnet

from ..capture import flows, recording
from ..waiting import wait_until

FETCH_TIMEOUT = 90.0
BIG = 40 * 1024 * 1024 + 12345


def write_private_site(root: Path) -> dict[str, bytes]:
    """Files whose every 8-byte word is distinctive (text with a counter, random bytes):
    the scan below then finds no run by chance. Names are long enough to scan for."""
    rng = random.Random(20)
    files = {
        "index.html": b"".join(b"<p>private paragraph number %08d of the diary</p>\n" % i
                               for i in range(40)),
        "letters/to-the-bank-about-the-loan.txt": b"".join(
            b"Dear bank, line %06d of my very private letter.\n" % i for i in range(300)),
        "media/holiday-video-2024-final.bin": rng.randbytes(BIG),
        "media/second-clip-of-the-trip.bin": rng.randbytes(3 * chunks.CHUNK_PLAINTEXT + 7),
    }
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return files


class Needles:
    """Finds whether any ``run``-byte substring of any needle occurs in a haystack: every
    such run holds a whole 8-byte word of its needle at an offset that is a multiple of 8,
    so the needles' words are looked up (numpy) at all 8 alignments of the haystack at
    once, and each hit checked byte by byte. A bitmap of the words' hashes (2**29 bits)
    lets through the ~1% of haystack words that may be needle words; only those are
    looked up exactly."""

    BITS = 29
    PIECE = 8 * 1024 * 1024

    def __init__(self, needles: list[bytes], run: int = 16) -> None:
        self.needles, self.run = needles, run
        self.words = [np.frombuffer(n[:len(n) // 8 * 8], dtype="<u8") for n in needles]
        self.wanted = _distinct(np.concatenate(self.words))
        self.bitmap = np.zeros(1 << (self.BITS - 3), dtype=np.uint8)
        hashed = _distinct(self._hash(self.wanted))
        index = hashed >> np.uint64(3)
        bits = np.left_shift(1, (hashed & np.uint64(7)).astype(np.uint8)).astype(np.uint8)
        starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
        # Distinct bits of one byte: their sum is their OR.
        self.bitmap[index[starts]] = np.add.reduceat(bits, starts)

    def _hash(self, words: np.ndarray) -> np.ndarray:
        return (words * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - self.BITS)

    def found_in(self, haystack: bytes) -> bytes | None:
        """The first needle with a run in ``haystack``, or None."""
        for at in range(0, max(len(haystack) - self.run + 1, 1), self.PIECE):
            found = self._found_in(haystack[at:at + self.PIECE + self.run - 1])
            if found is not None:
                return found
        return None

    def _found_in(self, haystack: bytes) -> bytes | None:
        run = self.run
        for shift in range(8):
            view = haystack[shift:]
            hay = np.frombuffer(view[:len(view) // 8 * 8], dtype="<u8")
            hashed = self._hash(hay)
            maybe = (self.bitmap[hashed >> np.uint64(3)]
                     >> (hashed & np.uint64(7)).astype(np.uint8)) & 1
            candidates = np.nonzero(maybe)[0]
            if not len(candidates):
                continue
            words = hay[candidates]
            places = np.minimum(np.searchsorted(self.wanted, words), len(self.wanted) - 1)
            for hit in candidates[self.wanted[places] == words]:
                at = shift + 8 * int(hit)
                for needle, words_of in zip(self.needles, self.words, strict=True):
                    for word in np.nonzero(words_of == hay[hit])[0]:
                        for back in range(8):
                            start, where = 8 * int(word) - back, at - back
                            if (start >= 0 and where >= 0 and start + run <= len(needle)
                                    and haystack[where:where + run]
                                    == needle[start:start + run]):
                                return needle
        return None


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique, by a hash table in numpy 2.4, is 10x slower)."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]]


def find_runs(haystack: bytes, needle: bytes) -> bool:
    return Needles([needle]).found_in(haystack) is not None


def data_dir_bytes(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()]


async def seeding(running, tid: str) -> bool:
    handle = running.node.swarm.find(tid)
    return handle is not None and bool(handle.status().is_seeding)


def test_the_scan_finds_a_run_where_there_is_one() -> None:
    needle = os.urandom(1000)
    for at in (0, 3, 500, 984):
        assert find_runs(os.urandom(77) + needle[at:at + 16] + os.urandom(50), needle)
    assert not find_runs(os.urandom(77) + needle[100:115] + os.urandom(50), needle)


@pytest.mark.timeout(480)  # 40 MB to four nodes, and a scan of all they sent and stored
async def test_seeders_without_the_key_serve_a_private_site_to_a_reader(tmp_path, http):
    files = write_private_site(tmp_path / "site")
    secrets = Needles([*files.values(), *(p.encode() for p in files)])
    async with Testnet(5, root=tmp_path / "net") as net:
        publisher, *seeders, reader = net.nodes
        # Everything between the nodes' own addresses (swarm, DHT, peer ports), not the
        # gateways and control APIs on 127.0.0.1, where this test talks to them in the clear.
        with recording(tmp_path / "lo.pcap", "not host 127.0.0.1") as pcap:
            result = await publisher.node.publish(tmp_path / "site", "diary", private=True)
            assert result.private and result.files == len(files)
            site, tid = result.site_id, result.infohash
            status = await publisher.node.status()
            assert [s["private"] for s in status["sites"]] == [True]

            # Three seeders without the key take the site, check and hold every piece.
            for seeder in seeders:
                code, _headers, body = await http(seeder).site(site, "/")
                assert code == 403 and b"this site is private" in body
            for seeder in seeders:
                snapshot = seeder.node.holds(tid) or await seeder.node.open_site(site)
                assert snapshot
            for seeder in seeders:
                await wait_until(lambda s=seeder: seeding(s, tid), FETCH_TIMEOUT, "a full seed")
                held = seeder.node.swarm.find(tid)
                await seeder.node.swarm.recheck(held, timeout=FETCH_TIMEOUT)
                assert held.status().is_seeding  # every piece passes its check, without a key
                assert seeder.node.swarm.hash_failures == 0
                entry = (await seeder.node.status())["sites"][0]
                assert (entry["private"], entry["readable"]) == (True, False)
                assert not any(name in str(entry) for name in ("index", "letters", "holiday"))

            # The publisher goes away: the reader can only get the site from the seeders.
            share = CliRunner().invoke(cli, ["share", "diary", "--json", "--data-dir",
                                             str(publisher.config.data_dir)])
            assert share.exit_code == 0, share.output
            cap = capability.parse(json.loads(share.output)["capability"])
            await net.stop_node(publisher)
            opened = CliRunner().invoke(cli, ["open", cap.link(), "--data-dir",
                                              str(reader.config.data_dir)])
            assert opened.exit_code == 0, opened.output
            gateway = http(reader)
            for path, data in files.items():
                code, headers, body = await gateway.site(site, "/" + path)
                assert code == 200 and body == data, path
                assert headers["Cache-Control"] == "private, no-store"
            big = files["media/holiday-video-2024-final.bin"]
            path = "/media/holiday-video-2024-final.bin"
            c = chunks.CHUNK_PLAINTEXT
            for start, end in [(0, 1), (c - 3, c + 3), (int(BIG * 0.9), BIG), (BIG - 1, BIG),
                               (123456, 2 * 1024 * 1024), (5 * c, 6 * c),
                               (BIG // 2 - 7, BIG // 2 + 3 * c)]:
                code, headers, body = await gateway.site(
                    site, path, headers={"Range": f"bytes={start}-{end - 1}"})
                assert code == 206 and body == big[start:end], (start, end)
                assert headers["Content-Range"] == f"bytes {start}-{end - 1}/{BIG}"
            code, _h, body = await gateway.site(site, path, headers={"Range": "bytes=-1000"})
            assert code == 206 and body == big[-1000:]
            code, headers, _b = await gateway.site(site, path,
                                                   headers={"Range": f"bytes={BIG}-"})
            assert code == 416 and headers["Content-Range"] == f"bytes */{BIG}"
            code, headers, _b = await gateway.site(site, path, method="HEAD")
            assert code == 200 and headers["Content-Length"] == str(BIG)

        # Nothing of any file or name crossed between the nodes...
        streams, datagrams = flows(pcap)
        assert sum(len(s) for s in streams.values()) > 4 * BIG  # 3 seeders and the reader
        for flow, carried in streams.items():
            found = secrets.found_in(carried)
            assert found is None, (flow, found[:40])
        for datagram in datagrams:
            assert secrets.found_in(datagram) is None
        # ...or is in the seeders' data dirs (files, state, resume data).
        for seeder in seeders:
            stored = data_dir_bytes(seeder.config.data_dir)
            assert sum(len(b) for _p, b in stored) > BIG  # the ciphertext is there
            for where, data in stored:
                found = secrets.found_in(data)
                assert found is None, (where, found[:40])

        # A wrong key in a seeder's keyring: refused, nothing decrypted.
        seeders[0].node.private.keyring.put(site, os.urandom(32))
        code, _h, body = await http(seeders[0]).site(site, "/")
        assert code == 403 and b"does not open this version" in body


def test_the_capture_rebuilds_streams_split_into_segments(tmp_path) -> None:
    """The scan of captured traffic is only as good as the capture: a run sent in pieces
    over a real loopback connection is found in the rebuilt stream."""
    import socket

    needle = os.urandom(4096)
    with recording(tmp_path / "t.pcap", "host 127.0.0.9 and tcp") as pcap:
        server = socket.create_server(("127.0.0.9", 0))
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for at in range(0, len(needle), 7):
            client.sendall(needle[at:at + 7])
        client.close()
        received = b""
        while chunk := peer.recv(65536):
            received += chunk
        peer.close()
        server.close()
    assert received == needle
    streams, _datagrams = flows(pcap)
    assert any(Needles([needle]).found_in(s) is not None for s in streams.values())
    assert any(needle in s for s in streams.values())


def test_a_truncated_or_mismatched_capability_is_refused_by_open(tmp_path) -> None:
    from peerweb.content.identity import SiteKey

    link = capability.ReadCapability(SiteKey.generate("x").site_id, os.urandom(32)).link()
    for bad, message in [(link[:-4], "cut short"), (link.split("#")[0], "no '#'")]:
        result = CliRunner().invoke(cli, ["open", bad, "--json", "--data-dir",
                                          str(tmp_path)])
        assert result.exit_code == 1
        assert '"kind":"bad_capability"' in result.output and message in result.output
    assert not (tmp_path / "keyring.json").exists()


def tampering_writer(how: str):
    """A stage writer that encrypts as publishing does, then spoils the ciphertext before it
    is hashed: the torrent and the signed pointer are honest about these bytes, so only the
    AEAD check can tell."""

    def make(read_key: bytes, readers=()):
        def write(files, staging: Path, check_cancel) -> str:
            written = layout.write_encrypted(files, staging / layout.ROOT_NAME, read_key,
                                             check_cancel, readers)
            by_path = written.manifest.by_path()

            def data(path: str) -> Path:
                return staging / layout.ROOT_NAME / layout.DATA_DIR / by_path[path].file_id.hex()

            target = data("index.html")
            spoiled = bytearray(target.read_bytes())
            if how == "altered":
                spoiled[100] ^= 0x01
            else:  # the first chunk of another file, moved in
                spoiled[:BLOCK_SIZE] = data("letters/to-the-bank-about-the-loan.txt"
                                            ).read_bytes()[:BLOCK_SIZE]
            target.write_bytes(bytes(spoiled))
            return layout.ROOT_NAME
        return write
    return make


@pytest.mark.parametrize("how", ["altered", "moved"])
async def test_an_altered_or_moved_chunk_is_an_error_never_bytes(tmp_path, http, monkeypatch,
                                                                  how):
    files = write_private_site(tmp_path / "site")
    async with Testnet(2, root=tmp_path / "net") as net:
        publisher, reader = net.nodes
        monkeypatch.setattr(layout, "stage_writer", tampering_writer(how))
        result = await publisher.node.publish(tmp_path / "site", "diary", private=True)
        link = capability.ReadCapability(
            result.site_id, publisher.node.private.keyring.get(result.site_id)).link()
        reader.node.private.keyring.put(result.site_id, capability.parse(link).read_key)
        code, _h, body = await http(reader).site(result.site_id, "/")
        assert code == 502 and b"fails its authentication check" in body
        assert files["index.html"][:16] not in body
        # The other files of the version still open: only the spoiled chunk fails.
        code, _h, body = await http(reader).site(result.site_id,
                                                 "/letters/to-the-bank-about-the-loan.txt")
        assert code == 200 and body == files["letters/to-the-bank-about-the-loan.txt"]


def cli_json(*args: str) -> dict:
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


async def test_a_reader_by_node_key_reads_without_a_link_until_removed(tmp_path, http):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_bytes(b"<p>version one of the shared diary</p>")
    async with Testnet(2, root=tmp_path / "net") as net:
        publisher, reader = net.nodes
        mine, theirs = (str(n.config.data_dir) for n in (publisher, reader))
        v1 = await publisher.node.publish(site, "diary", private=True)
        code, _h, body = await http(reader).site(v1.site_id, "/")
        assert code == 403 and b"node-key" in body  # says how to be added
        key = cli_json("node-key", "--data-dir", theirs)["node_key"]
        assert key == reader.node.private.node_key.text
        added = cli_json("share", "diary", "--to", key, "--data-dir", mine)
        assert added["readers"] == [key]
        refused = CliRunner().invoke(cli, ["share", v1.site_id, "--to", key, "--data-dir",
                                           theirs])
        assert refused.exit_code == 1 and "only the publisher" in refused.output

        (site / "index.html").write_bytes(b"<p>version two, sealed to the reader</p>")
        v2 = await publisher.node.publish(site, "diary", private=True)
        await wait_until(lambda: reader.node.state.sites[v1.site_id].pointer.version == 2,
                         30.0, "the reader hears of v2")
        code, _h, body = await http(reader).site(v1.site_id, "/")
        assert code == 200 and body == b"<p>version two, sealed to the reader</p>"
        assert reader.node.private.keyring.get(v1.site_id) is None  # no link was needed

        removed = cli_json("share", "diary", "--remove", key, "--data-dir", mine)
        assert removed["readers"] == []
        (site / "index.html").write_bytes(b"<p>version three, not for the removed one</p>")
        v3 = await publisher.node.publish(site, "diary", private=True)
        assert v3.version == 3 and v3.infohash != v2.infohash
        await wait_until(lambda: reader.node.state.sites[v1.site_id].pointer.version == 3,
                         30.0, "the reader hears of v3")
        code, _h, body = await http(reader).site(v1.site_id, "/")
        assert code == 403 and b"version three" not in body
        assert b"has no key for it" in body  # v3 carries no slot for the removed reader
        assert reader.node.holds(v3.infohash)  # it holds v3's ciphertext all the same
