"""peerweb and ordinary BitTorrent clients (Debian's aria2, qbittorrent-nox, Transmission and
mktorrent) on loopback.

The clients find peerweb through a `peerweb tracker` on 127.0.0.1; DHT, local discovery and
peer exchange are off in the clients, so nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote_from_bytes

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from peerweb.content import bencode
from peerweb.tools.testnet import Testnet, write_sample_site
from peerweb.tools.tracker import make_app

from ..waiting import wait_until

CLIENT_TIMEOUT = 90


@pytest.fixture
async def tracker_url() -> AsyncIterator[str]:
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}/announce"
    await runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def aria2(*args: str) -> list[str]:
    """aria2c kept to loopback: no DHT, no local discovery, no peer exchange."""
    return ["aria2c", "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
            "--enable-peer-exchange=false", "--disable-ipv6=true", "--console-log-level=warn",
            "--summary-interval=0", f"--listen-port={free_port()}", "--bt-stop-timeout=60",
            *args]


async def run_aria2(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *aria2(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        async with asyncio.timeout(CLIENT_TIMEOUT):
            log, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, log.decode(errors="replace")


def mktorrent(folder: Path, tracker_url: str, torrent: Path) -> bytes:
    """A v1 torrent of ``folder`` made by mktorrent (64 KiB pieces); its info-hash."""
    subprocess.run(["mktorrent", "-a", tracker_url, "-l", "16", "-o", str(torrent), str(folder)],
                   check=True, capture_output=True, timeout=60)
    return hashlib.sha1(bencode.encode(bencode.decode(torrent.read_bytes())[b"info"])).digest()


async def test_aria2_downloads_a_v1_export_from_a_peerweb_seed(tmp_path, tracker_url):
    contents = write_sample_site(tmp_path / "site", small_files=6, big_size=3 * 1024 * 1024)
    async with Testnet(1, root=tmp_path / "net") as net:
        node = net.nodes[0].node
        result = await node.publish(tmp_path / "site", "site", trackers=(tracker_url,))
        assert node.state.sites[result.site_id].pointer.trackers == (tracker_url,)
        torrent = tmp_path / "site-v1.torrent"
        exported = await node.export(result.site_id, torrent, v1_only=True)
        meta = bencode.decode(torrent.read_bytes())
        assert b"piece layers" not in meta and b"meta version" not in meta[b"info"]
        assert meta[b"announce"] == tracker_url.encode()
        assert exported["magnet"].startswith(f"magnet:?xt=urn:btih:{exported['infohash']}")

        out = tmp_path / "aria2"
        await run_aria2(f"--dir={out}", "--seed-time=0", str(torrent))
        for name, data in contents.items():
            got = (out / "site" / name).read_bytes()
            assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), name


QBT_CONFIG = """[LegalNotice]
Accepted=true

[BitTorrent]
Session\\DHTEnabled=false
Session\\LSDEnabled=false
Session\\PeXEnabled=false
Session\\Port={port}
Session\\Interface=lo
Session\\InterfaceName=lo

[Preferences]
Connection\\UPnP=false
WebUI\\Address=127.0.0.1
WebUI\\Port={webui}
WebUI\\LocalHostAuth=false
General\\Locale=en
"""


async def test_qbittorrent_downloads_the_hybrid_export_from_a_peerweb_seed(
        tmp_path, tracker_url):
    contents = write_sample_site(tmp_path / "site", small_files=6, big_size=2 * 1024 * 1024)
    async with Testnet(1, root=tmp_path / "net") as net:
        node = net.nodes[0].node
        result = await node.publish(tmp_path / "site", "site", trackers=(tracker_url,))
        torrent = tmp_path / "site.torrent"
        await node.export(result.site_id, torrent)

        profile = tmp_path / "qbt"
        config = profile / "qBittorrent" / "config"
        config.mkdir(parents=True)
        (config / "qBittorrent.conf").write_text(
            QBT_CONFIG.format(port=free_port(), webui=free_port()))
        out = tmp_path / "qbt-download"
        client = await asyncio.create_subprocess_exec(
            "qbittorrent-nox", f"--profile={profile}", f"--save-path={out}",
            "--skip-dialog=true", str(torrent),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            def complete() -> bool:
                assert client.returncode is None, "qbittorrent-nox exited early"
                return all((out / "site" / name).is_file()
                           and (out / "site" / name).read_bytes() == data
                           for name, data in contents.items())

            await wait_until(complete, CLIENT_TIMEOUT, "qBittorrent to download every file")
        finally:
            client.kill()
            log, _ = await client.communicate()
        # libtorrent folds transfer counters into its totals once a second
        seed = node.swarm.find(result.infohash)
        await wait_until(lambda: seed.status().all_time_upload > 0, 10,
                         f"the seed to count its upload; qBittorrent said {log.decode()}")


async def test_hybrid_export_keeps_the_info_hash_and_v2_piece_layers(tmp_path, small_site):
    folder, _ = small_site
    async with Testnet(1, root=tmp_path / "net") as net:
        node = net.nodes[0].node
        result = await node.publish(folder, "site")
        exported = await node.export(result.site_id, tmp_path / "site.torrent")
        meta = bencode.decode((tmp_path / "site.torrent").read_bytes())
        assert hashlib.sha1(bencode.encode(meta[b"info"])).hexdigest() == result.infohash
        assert meta[b"info"][b"meta version"] == 2 and meta[b"piece layers"]
        assert "urn:btmh:1220" in exported["magnet"]


async def test_peerweb_browses_a_torrent_made_by_mktorrent_and_seeded_by_aria2(
        tmp_path, tracker_url):
    folder = tmp_path / "seeded" / "page"
    contents = write_sample_site(folder, small_files=4, big_size=1024 * 1024, seed=7)
    torrent = tmp_path / "page.torrent"
    infohash = mktorrent(folder, tracker_url, torrent).hex()

    seeder = await asyncio.create_subprocess_exec(
        *aria2("--check-integrity=true", "--seed-ratio=0.0", f"--dir={tmp_path / 'seeded'}",
               str(torrent)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with Testnet(1, root=tmp_path / "net") as net:
            running = net.nodes[0]
            magnet = f"magnet:?xt=urn:btih:{infohash}&tr={tracker_url}"
            out = tmp_path / "index.html"
            get = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "peerweb", "get", magnet, "-o", str(out),
                "--data-dir", str(running.config.data_dir),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            async with asyncio.timeout(CLIENT_TIMEOUT):
                _, err = await get.communicate()
            assert get.returncode == 0, err.decode()
            assert out.read_bytes() == contents["index.html"]
            # The gateway's snapshot form serves the rest, verified against the v1 pieces.
            url = f"{running.gateway_url}/ih/{infohash}/media/big.bin"
            big = contents["media/big.bin"]
            async with aiohttp.ClientSession() as session:
                async with session.get(url) as response:
                    assert response.status == 200 and await response.read() == big
                middle = len(big) // 2
                headers = {"Range": f"bytes={middle}-{middle + 99_999}"}
                async with session.get(url, headers=headers) as response:
                    assert response.status == 206
                    assert await response.read() == big[middle:middle + 100_000]
    finally:
        seeder.kill()
        await seeder.wait()


async def test_a_mixed_swarm_moves_pieces_both_ways(tmp_path, tracker_url):
    """peerweb seeds aria2; then, the publisher gone, a new peerweb node fetches from aria2."""
    contents = write_sample_site(tmp_path / "site", small_files=4, big_size=2 * 1024 * 1024)
    torrent = tmp_path / "site-v1.torrent"
    async with Testnet(1, root=tmp_path / "net") as net:
        publisher = net.nodes[0]
        result = await publisher.node.publish(tmp_path / "site", "site", trackers=(tracker_url,))
        exported = await publisher.node.export(result.site_id, torrent, v1_only=True)
        await run_aria2(f"--dir={tmp_path / 'aria2'}", "--seed-time=0", str(torrent))
        sent = publisher.node.swarm.find(exported["infohash"]).status().all_time_upload
        assert sent >= len(contents["media/big.bin"])  # peerweb -> aria2
        await net.stop_node(publisher)

        seeder = await asyncio.create_subprocess_exec(
            *aria2("--check-integrity=true", "--seed-ratio=0.0", f"--dir={tmp_path / 'aria2'}",
                   str(torrent)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            visitor = await net.add_node(net.config_for(1))
            snapshot = await visitor.node.open_snapshot(exported["infohash"],
                                                        trackers=(tracker_url,))
            index = snapshot.sitemap.lookup("media/big.bin").file_index
            assert index is not None
            got = await visitor.node.read_file(snapshot, index)
            assert got == contents["media/big.bin"]
            # libtorrent updates its byte counts each second
            await wait_until(lambda: snapshot.handle.status().all_time_download >= len(got),
                             10, "the download counter to count the file")
            received = snapshot.handle.status().all_time_download  # aria2 -> peerweb
            print(f"peerweb -> aria2: {sent} bytes; aria2 -> peerweb: {received} bytes")
        finally:
            if seeder.returncode is None:  # an aria2 that exited early must not hide why
                seeder.kill()
            await seeder.wait()


async def test_peerweb_tracker_serves_a_swarm_of_aria2_clients(tmp_path, tracker_url):
    folder = tmp_path / "seed" / "files"
    contents = write_sample_site(folder, small_files=3, big_size=1024 * 1024, seed=9)
    torrent = tmp_path / "files.torrent"
    infohash = mktorrent(folder, tracker_url, torrent)
    seeder = await asyncio.create_subprocess_exec(
        *aria2("--check-integrity=true", "--seed-ratio=0.0", f"--dir={tmp_path / 'seed'}",
               str(torrent)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scrape = URL(tracker_url.replace("/announce", "/scrape") + "?info_hash="
                 + quote_from_bytes(infohash), encoded=True)
    try:
        # DHT, local discovery and peer exchange are off: the tracker is how they meet.
        await asyncio.gather(*(run_aria2(f"--dir={tmp_path / f'leech{i}'}", "--seed-time=0",
                                         str(torrent)) for i in range(3)))
        async with aiohttp.ClientSession() as session, session.get(scrape) as response:
            files = bencode.decode(await response.read())[b"files"]
    finally:
        seeder.kill()
        await seeder.wait()
    for i in range(3):
        for name, data in contents.items():
            assert (tmp_path / f"leech{i}" / "files" / name).read_bytes() == data
    assert files[infohash][b"complete"] >= 1  # the seeder, still announced


async def test_peerweb_browses_a_torrent_seeded_by_transmission(tmp_path, tracker_url):
    """Transmission 3.00 drops requests that libtorrent cancels (to make way for a piece with
    a deadline) without the reject BEP 6 asks for; the node reconnects instead of waiting."""
    folder = tmp_path / "seeded" / "page"
    contents = write_sample_site(folder, small_files=4, big_size=1024 * 1024, seed=8)
    torrent = tmp_path / "page.torrent"
    infohash = mktorrent(folder, tracker_url, torrent).hex()
    config = tmp_path / "transmission"
    config.mkdir()
    # Loopback only: no DHT, local discovery, peer exchange, port mapping or uTP.
    (config / "settings.json").write_text(json.dumps({
        "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False, "utp-enabled": False,
        "port-forwarding-enabled": False, "bind-address-ipv4": "127.0.0.1",
        "bind-address-ipv6": "::1", "ratio-limit-enabled": False, "message-level": 1}))
    seeder = await asyncio.create_subprocess_exec(
        "transmission-cli", "-g", str(config), "-p", str(free_port()), "-M", "-v",
        "-w", str(tmp_path / "seeded"), str(torrent),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with Testnet(1, root=tmp_path / "net") as net, aiohttp.ClientSession() as session:
            base = f"{net.nodes[0].gateway_url}/ih/{infohash}"
            await net.nodes[0].node.open_snapshot(infohash, trackers=(tracker_url,))
            big = contents["media/big.bin"]
            async with asyncio.timeout(CLIENT_TIMEOUT):
                async with session.get(f"{base}/index.html") as response:
                    assert response.status == 200
                    assert await response.read() == contents["index.html"]
                async with session.get(f"{base}/media/big.bin") as response:
                    assert response.status == 200 and await response.read() == big
                middle = len(big) // 2
                headers = {"Range": f"bytes={middle}-{middle + 99_999}"}
                async with session.get(f"{base}/media/big.bin", headers=headers) as response:
                    assert response.status == 206
                    assert await response.read() == big[middle:middle + 100_000]
    finally:
        seeder.kill()
        await seeder.wait()
