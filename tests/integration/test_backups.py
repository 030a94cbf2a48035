"""Backups on loopback (issue 20): a folder held by three volunteers survives the loss of
two and of its owner's machine, restores byte-exact (newest and older version) on a fresh
node from the one holder left, and replica repair brings it back to three; a holder whose
copy is wrong is not counted."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner

from peerweb.cli import main as cli_main
from peerweb.config import NodeConfig, Timings
from peerweb.private import layout
from peerweb.tools.testnet import Testnet

from ..waiting import wait_until

# Rounds every half second while copies are missing; lookups cut short on a small network.
FAST = Timings(backup_check_soon=0.5, backup_check_later=2.0, volunteer_probe_timeout=0.5,
               holders_lookup_timeout=1.0, holders_ttl=1.0)
VOLUNTEERS = NodeConfig(volunteer=True, timings=FAST)
PROVED = 45.0


def write_folder(root: Path, seed: int) -> dict[str, bytes]:
    """A user's folder: no index.html, nested, binary, an empty file; ~1 MB."""
    rng = random.Random(seed)
    files = {
        "notes/todo.txt": b"buy milk\n" * 50 + b"seed %d\n" % seed,
        "photos/2024/beach.jpg": rng.randbytes(700_000),
        "photos/2024/empty.dat": b"",
        "taxes.pdf": rng.randbytes(300_001),
    }
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return files


def read_folder(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def endpoint(running) -> str:
    host, port = running.node.peer_endpoint
    return f"{host}:{port}"


def proved_on(owner, site_id: str) -> set[str]:
    entry = next(b for b in owner.node.backups.status() if b["site_id"] == site_id)
    return set(entry["holders"])


async def run(*args: str) -> dict:
    """A CLI command against a running node: in a thread, since the node runs on this
    loop. Its last NDJSON line."""
    result = await asyncio.to_thread(CliRunner().invoke, cli_main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.splitlines()[-1])


@pytest.mark.timeout(120)
async def test_a_backup_survives_losing_two_holders_restores_and_is_repaired(tmp_path):
    folder = tmp_path / "docs"
    first = write_folder(folder, 1)
    async with Testnet(4, root=tmp_path / "net", template=VOLUNTEERS) as net:
        owner, *holders = net.nodes
        owner_dir = str(owner.config.data_dir)
        made = await run("backup", str(folder), "--replicas", "3", "--data-dir", owner_dir)
        site, cap = made["site_id"], made["capability"]
        assert made["version"] == 1 and made["files"] == len(first)
        everyone = {endpoint(h) for h in holders}
        await wait_until(lambda: proved_on(owner, site) == everyone, PROVED,
                         "three volunteers to prove v1")

        # A second version: the holders move to it, and keep v1 (pinned while they hold
        # the backup) for `restore --version 1`.
        second = {**first, "notes/todo.txt": b"version two of my notes\n"}
        (folder / "notes/todo.txt").write_bytes(second["notes/todo.txt"])
        said = await asyncio.to_thread(CliRunner().invoke, cli_main,
                                       ["backup", str(folder), "--data-dir", owner_dir])
        assert said.exit_code == 0, said.output
        assert f"as version 2\n  site id:    {site}\n  capability: {cap}\n" in said.output
        await wait_until(lambda: proved_on(owner, site) == everyone
                         and owner.node.backups.status()[0]["version"] == 2, PROVED,
                         "three volunteers to prove v2")
        status = await run("backup", "status", "--data-dir", owner_dir)
        assert (status["version"], status["complete"], status["replicas"]) == (2, 3, 3)
        assert {c["state"] for c in status["copies"]} == {"complete"}
        assert all(c["proved_ago"] < PROVED for c in status["copies"])
        text = await asyncio.to_thread(CliRunner().invoke, cli_main,
                                       ["backup", "status", "--data-dir", owner_dir])
        assert f"{folder}  v2  3/3 complete copies" in text.output, text.output
        assert all(f"{e:<22} complete" in text.output for e in everyone), text.output
        # The holders saw only ciphertext: no name of the folder's files is in their state.
        for holder in holders:
            stored = (holder.config.data_dir / "state.json").read_text()
            assert "beach" not in stored and "taxes" not in stored

        # Two holders and the owner's machine are lost.
        owner_config = owner.config
        survivor = holders[2]
        for lost in (owner, holders[0], holders[1]):
            await net.stop_node(lost)

        # A fresh node (not a volunteer) restores from the one holder left.
        fresh = await net.add_node(replace(net.config_for(4), volunteer=False))
        fresh_dir = str(fresh.config.data_dir)
        restored = await run("restore", cap, str(tmp_path / "back"), "--data-dir", fresh_dir)
        assert restored["version"] == 2 and restored["files"] == len(second)
        assert read_folder(tmp_path / "back") == second
        older = await run("restore", cap, str(tmp_path / "old"), "--version", "1",
                          "--data-dir", fresh_dir)
        assert older["version"] == 1 and read_folder(tmp_path / "old") == first
        refused = await asyncio.to_thread(CliRunner().invoke, cli_main,
                                          ["restore", cap, str(tmp_path / "back"),
                                           "--data-dir", fresh_dir])
        assert refused.exit_code == 1 and "not an empty folder" in refused.output

        # Spare volunteers come, the owner's node comes back: repair brings it back to 3.
        spares = [await net.add_node(net.config_for(i)) for i in (5, 6)]
        owner = await net.add_node(replace(owner_config,
                                           bootstrap=net.config_for(7).bootstrap))
        spare_endpoints = {endpoint(s) for s in spares}
        await wait_until(lambda: proved_on(owner, site) == {endpoint(survivor)}
                         | spare_endpoints, PROVED, "repair to three proved copies")
        states = {c["holder"]: c["state"] for c in owner.node.backups.status()[0]["copies"]}
        assert sum(s == "failed" for s in states.values()) == 2  # the lost ones


@pytest.mark.timeout(90)
async def test_a_holder_whose_copy_is_wrong_is_not_counted(tmp_path):
    folder = tmp_path / "docs"
    write_folder(folder, 3)
    async with Testnet(3, root=tmp_path / "net", template=VOLUNTEERS) as net:
        owner, honest, liar = net.nodes
        # The honest one also named as a friend: asked whether or not the DHT finds it.
        made = await owner.node.backups.back_up(folder, 2, (honest.node.peer_endpoint,))
        site = made["site_id"]
        both = {endpoint(honest), endpoint(liar)}
        await wait_until(lambda: proved_on(owner, site) == both, PROVED, "two proved copies")

        # The proof endpoint, by hand: a piece's bytes as the torrent hashes them, and a
        # clear refusal of anything else.
        tid = made["infohash"]
        hashes = owner.node.swarm.piece_hashes(owner.node.swarm.find(tid))
        host, port = honest.node.peer_endpoint
        url = f"http://{host}:{port}/peerweb/v1/proof"
        async with aiohttp.ClientSession() as session:
            last = len(hashes) - 1
            async with session.post(url, json={"infohash": tid, "pieces": [last]}) as answer:
                assert answer.status == 200
                assert hashlib.sha1(await answer.read()).digest() == hashes[last][1]
            for body, status in [({"infohash": tid, "pieces": [len(hashes)]}, 400),
                                 ({"infohash": tid, "pieces": [0, 0]}, 400),
                                 ({"infohash": tid}, 400), ({"pieces": [0]}, 400),
                                 ({"infohash": "ab" * 20, "pieces": [0]}, 404)]:
                async with session.post(url, json=body) as answer:
                    assert answer.status == status, (body, await answer.text())
                    assert "error" in await answer.json()

        # The liar's ciphertext is overwritten in place: libtorrent still counts every
        # piece as held, its load report still claims the version.
        data = liar.node.content_dir / tid / layout.ROOT_NAME / layout.DATA_DIR
        for path in data.iterdir():
            with path.open("r+b") as spoiled:
                spoiled.write(os.urandom(path.stat().st_size))
        assert (await liar.node.load_report())["sites"][site] == made["version"]

        await wait_until(lambda: proved_on(owner, site) == {endpoint(honest)}, PROVED,
                         "the liar's copy to stop counting")
        entry = owner.node.backups.status()[0]
        assert entry["complete"] == 1 and entry["missing"] == 1
        lied = next(c for c in entry["copies"] if c["holder"] == endpoint(liar))
        assert lied["state"] == "failed" and "SHA-1" in lied["reason"]
        # Checked again, it fails again: a lie is never counted.
        await owner.node.backups.check(site)
        assert proved_on(owner, site) == {endpoint(honest)}

        # A volunteer whose disk quota cannot take the backup is asked in the liar's place,
        # and refuses; the backup stays one copy short, and says so.
        small = await net.add_node(replace(net.config_for(3), disk_quota=100_000))

        def refusal() -> str:
            copies = owner.node.backups.status()[0]["copies"]
            found = [c for c in copies if c["holder"] == endpoint(small)]
            return found[0]["reason"] if found and found[0]["state"] == "failed" else ""

        reason = await wait_until(refusal, PROVED, "the small volunteer to refuse")
        assert reason.startswith("refused: 507") and "bytes of disk" in reason
        assert owner.node.backups.status()[0]["missing"] == 1
        assert not small.node.holds(made["infohash"])  # what it fetched to find out: gone
