"""Private sites against the same site public (issue 20): publish time, the first MB from a
cold node and 1 MB after a seek to 90% of a big file, and the throughput of a whole-file
read through the gateway, cold (fetched from the swarm) and warm (held).

The same folder is published twice by one node, public and ``--private``; two holders take
each; for each trial a fresh node (with the read key for the private one) asks its gateway.
Targets (issue 20): throughput >= 90% of public; first byte and seek within 1.2x public;
publish <= 1.5x. ``PEERWEB_BENCH_PRIVATE_MB`` sets the big file's size (default 40).

Publish is timed on its own folder of ``PEERWEB_BENCH_PUBLISH_MB`` (default 1024: a 1 GB
folder, made in a temporary folder on disk and removed after), published public and
private alternately, ``PUBLISH_TRIALS`` times each, by a node of its own.

Each run is one process (take the bench lock per run). ``PEERWEB_BENCH_APPEND=1`` adds this
run to the runs already in ``bench/results/private.json`` (same sizes), and the file then
gives each figure's and each ratio's range over the runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, median, ratio_line, write_result
from peerweb import aio
from peerweb.tools.testnet import Testnet

TRIALS = 3
HOLDERS = 2
MB = 1024 * 1024
SIZE = int(os.environ.get("PEERWEB_BENCH_PRIVATE_MB", "40")) * MB
PUBLISH_SIZE = int(os.environ.get("PEERWEB_BENCH_PUBLISH_MB", "1024")) * MB
PUBLISH_TRIALS = 3
# The publish folder: a few big files and many small ones, as a photo or document folder.
PUBLISH_FILES = 8
SMALL_FILES = 200


class Visitor:
    """The bench's browser, in a process of its own (``bench.http_visitor``): the gateway's
    loop and core are then the gateway's alone, as on a real machine."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def start(cls) -> Visitor:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.http_visitor", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, env=os.environ.copy())
        return cls(process)

    async def timed_get(self, url: str, host: str, start: int | None,
                        expected: bytes) -> float:
        """Seconds the visitor took to fetch ``expected`` (all of it, or from ``start``)."""
        assert self._process.stdin is not None and self._process.stdout is not None
        ask = {"url": url, "host": host, "start": start, "length": len(expected),
               "sha256": hashlib.sha256(expected).hexdigest()}
        self._process.stdin.write((json.dumps(ask) + "\n").encode())
        await self._process.stdin.drain()
        answer = json.loads(await self._process.stdout.readline())
        assert answer["ok"] and answer["status"] in (200, 206), answer
        return float(answer["elapsed"])

    async def stop(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        await self._process.wait()


def make_publish_folder(root: Path) -> None:
    """``PUBLISH_SIZE`` bytes of random data: ``SMALL_FILES`` files of 16 KiB, the rest in
    ``PUBLISH_FILES`` big ones, written in 64 MiB steps (never all in memory)."""
    (root / "small").mkdir(parents=True)
    (root / "index.html").write_bytes(b"<h1>folder</h1>")
    for i in range(SMALL_FILES):
        (root / "small" / f"{i:04}.txt").write_bytes(os.urandom(16 * 1024))
    left = PUBLISH_SIZE - SMALL_FILES * 16 * 1024
    for i in range(PUBLISH_FILES):
        size = left // (PUBLISH_FILES - i)
        left -= size
        with open(root / f"big-{i}.bin", "wb") as out:
            while size:
                step = min(size, 64 * MB)
                out.write(os.urandom(step))
                size -= step


async def publish_times() -> dict[str, list[float]]:
    """Seconds to publish the big folder, public and private, alternately."""
    times: dict[str, list[float]] = {"public": [], "private": []}
    # On disk beside the results (not a RAM-backed /tmp), removed however it ends; the
    # folder and each published copy take PUBLISH_SIZE each.
    work = Path(tempfile.mkdtemp(prefix="bench-private-publish-", dir=RESULTS.parent))
    try:
        make_publish_folder(work / "folder")
        async with Testnet(1, root=work / "net") as net:
            node = net.nodes[0].node
            for trial in range(PUBLISH_TRIALS):
                for kind in ("public", "private"):
                    began = time.perf_counter()
                    await node.publish(work / "folder", f"folder-{kind}-{trial}",
                                       private=kind == "private")
                    times[kind].append(time.perf_counter() - began)
                    print(f"publish {PUBLISH_SIZE // MB} MB {kind}: {times[kind][-1]:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return times


async def main() -> None:
    publish = await publish_times()
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        (site / "media").mkdir(parents=True)
        (site / "index.html").write_bytes(b"<h1>bench</h1>")
        big = os.urandom(SIZE)
        (site / "media" / "big.bin").write_bytes(big)
        seek = SIZE * 9 // 10
        results: dict[str, dict[str, list[float]]] = {}
        visitor = await Visitor.start()
        try:
            async with Testnet(1 + HOLDERS) as net:
                publisher = net.nodes[0].node
                published = {}
                for kind in ("public", "private"):
                    began = time.perf_counter()
                    published[kind] = await publisher.publish(site, f"bench-{kind}",
                                                              private=kind == "private")
                    results[kind] = {"publish_small": [time.perf_counter() - began],
                                     "publish": publish[kind], "first_mb": [], "seek_90": [],
                                     "cold_mbps": [], "warm_mbps": []}
                key = publisher.private.keyring.get(published["private"].site_id)
                assert key is not None
                for holder in net.nodes[1:]:
                    holder.node.private.keyring.put(published["private"].site_id, key)
                    for result in published.values():
                        host = f"{result.site_id}.localhost:{holder.gateway_address[1]}"
                        await visitor.timed_get(f"{holder.gateway_url}/media/big.bin", host,
                                                None, big)
                index = 1 + HOLDERS
                for trial in range(TRIALS):
                    for kind, result in published.items():
                        row = results[kind]
                        for what in ("stream", "whole"):
                            fresh = await net.add_node(net.config_for(index))
                            index += 1
                            await fresh.node.swarm.wait_dht_ready(10.0)
                            fresh.node.private.keyring.put(published["private"].site_id, key)
                            url = f"{fresh.gateway_url}/media/big.bin"
                            host = f"{result.site_id}.localhost:{fresh.gateway_address[1]}"
                            if what == "stream":
                                row["first_mb"].append(await visitor.timed_get(
                                    url, host, 0, big[:MB]))
                                row["seek_90"].append(await visitor.timed_get(
                                    url, host, seek, big[seek:seek + MB]))
                            else:
                                cold = await visitor.timed_get(url, host, None, big)
                                warm = await visitor.timed_get(url, host, None, big)
                                row["cold_mbps"].append(SIZE / MB / cold)
                                row["warm_mbps"].append(SIZE / MB / warm)
                            await net.stop_node(fresh)
                        print(f"trial {trial} {kind}: " + ", ".join(
                            f"{k} {v[-1]:.3g}" for k, v in row.items() if v))
        finally:
            await visitor.stop()
    pub, priv = ({k: median(v) for k, v in results[kind].items()}
                 for kind in ("public", "private"))
    rows = [("publish", f"publish {PUBLISH_SIZE // MB} MB", 1, "s", "target <= 1.5x"),
            ("first_mb", "first 1 MB", 1000, "ms", "target <= 1.2x"),
            ("seek_90", "1 MB after seek to 90%", 1000, "ms", "target <= 1.2x"),
            ("cold_mbps", "cold whole-file MB/s", 1, "MB/s", "target >= 0.9"),
            ("warm_mbps", "warm whole-file MB/s", 1, "MB/s", "target >= 0.9")]
    lines = [ratio_line(label, priv[key] * scale, pub[key] * scale, unit, target)
             for key, label, scale, unit, target in rows]
    for line in lines:
        print(line)
    run = {"public": pub, "private": priv, "raw": results, "summary": lines,
           "ratios": {key: priv[key] / pub[key] for key, *_ in rows}}
    runs = previous_runs() + [run]
    ranges = {key: [min(r["ratios"][key] for r in runs), max(r["ratios"][key] for r in runs)]
              for key, *_ in rows}
    for key, label, *_ in rows:
        print(f"{label}: ratio over {len(runs)} run(s) {ranges[key][0]:.2f} .. "
              f"{ranges[key][1]:.2f}")
    write_result("private", {
        "size_mb": SIZE // MB, "publish_mb": PUBLISH_SIZE // MB, "trials": TRIALS,
        "publish_trials": PUBLISH_TRIALS, "visitor": "own process", "runs": runs,
        "ratio_ranges": ranges,
        "ranges": {kind: {key: [min(r[kind][key] for r in runs),
                                max(r[kind][key] for r in runs)] for key, *_ in rows}
                   for kind in ("public", "private")}})


def previous_runs() -> list[dict[str, Any]]:
    """The runs in the results file, when this run is to be added to them (same sizes)."""
    path = RESULTS / "private.json"
    if not os.environ.get("PEERWEB_BENCH_APPEND") or not path.exists():
        return []
    kept = json.loads(path.read_text())
    if (kept.get("size_mb"), kept.get("publish_mb")) != (SIZE // MB, PUBLISH_SIZE // MB):
        return []
    runs: list[dict[str, Any]] = kept.get("runs", [])
    return runs


if __name__ == "__main__":
    aio.run(main())
