"""The soak benchmark's users, each role a process of its own (see soak.py).

``--role probe`` asks, at a fixed rate, for one small file that the targets file says a node
holds complete (a cached file), and times it from the moment it was due: a stalled gateway
shows as one slow answer per due request, not as one slow answer in all (no coordinated
omission). ``--role visit`` loads a whole site through a random node's gateway as a browser
would: index.html first, then every other file, 6 at a time.

The orchestrator rewrites the targets file (JSON, atomically) every second: the gateways of
the nodes that are up and what each holds. Every answer is logged as one JSON line: when, the
node, the path, HTTP status or exception class, milliseconds, the snapshot the gateway named
(``X-Peerweb-Snapshot``) and the sha256 of the body. Whether a body was right is decided
afterwards against every version published (soak_report.py), so a version published a moment
ago is judged as strictly as an old one. The process stops when the targets file says so, or
after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import time
from pathlib import Path
from typing import Any

import aiohttp

REQUEST_TIMEOUT = 30.0
MAX_IN_FLIGHT = 16  # per node: probes beyond this are logged as not sent (that node stalls)
BROWSER_PARALLEL = 6


class Targets:
    """The last targets file read; re-read at most once a second."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"nodes": {}, "cached": [], "sites": {}}
        self.read_at = 0.0

    def get(self) -> dict[str, Any]:
        now = time.monotonic()
        if now - self.read_at >= 1.0:
            self.read_at = now
            with contextlib.suppress(OSError, ValueError):  # not written yet: keep the last
                self.data = json.loads(self.path.read_text())
        return self.data


class Log:
    def __init__(self, path: Path, epoch: float) -> None:
        self.out = open(path, "a", buffering=1)  # noqa: SIM115 - closed in main
        self.epoch = epoch

    def write(self, **record: Any) -> None:
        self.out.write(json.dumps(record) + "\n")


async def fetch(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """One GET: status or exception class, the snapshot header, the body's sha256."""
    try:
        async with session.get(url, allow_redirects=False) as response:
            body = await response.read()
            return {"status": response.status,
                    "snapshot": response.headers.get("X-Peerweb-Snapshot"),
                    "sha256": hashlib.sha256(body).hexdigest() if response.status == 200
                    else None, "size": len(body)}
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return {"status": None, "error": type(exc).__name__, "message": str(exc)[:160]}


class Sessions:
    """One keep-alive session per gateway (a browser's connection pool per origin)."""

    def __init__(self) -> None:
        self.by_base: dict[str, aiohttp.ClientSession] = {}

    def get(self, base: str) -> aiohttp.ClientSession:
        session = self.by_base.get(base)
        if session is None:
            session = self.by_base[base] = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
                connector=aiohttp.TCPConnector(limit_per_host=BROWSER_PARALLEL))
        return session

    async def close(self) -> None:
        for session in self.by_base.values():
            await session.close()


async def probe(targets: Targets, log: Log, rate: float, deadline: float) -> None:
    sessions = Sessions()
    in_flight: dict[str, set[asyncio.Task[None]]] = {}
    rng = random.Random(1)
    interval = 1.0 / rate

    async def one(due: float, node: str, base: str, entry: dict[str, Any]) -> None:
        result = await fetch(sessions.get(base), f"{base}/s/{entry['site']}/{entry['path']}")
        log.write(role="probe", t=due - log.epoch, ms=(time.monotonic() - due) * 1000,
                  node=node, site=entry["site"], path=entry["path"], want=entry["tid"],
                  **result)

    due = time.monotonic()
    try:
        while time.monotonic() < deadline:
            data = targets.get()
            if data.get("stop"):
                break
            due += interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            cached = [e for e in data["cached"] if data["nodes"].get(e["node"], {}).get("up")]
            if not cached:
                continue
            entry = rng.choice(cached)
            pending = in_flight.setdefault(entry["node"], set())
            if len(pending) >= MAX_IN_FLIGHT:
                log.write(role="probe", t=due - log.epoch, node=entry["node"], dropped=True)
                continue
            base = data["nodes"][entry["node"]]["gateway"]
            task = asyncio.create_task(one(due, entry["node"], base, entry))
            pending.add(task)
            task.add_done_callback(pending.discard)
        left = set().union(*in_flight.values())
        if left:
            await asyncio.wait(left, timeout=REQUEST_TIMEOUT + 5)
    finally:
        await sessions.close()


async def visit(targets: Targets, log: Log, interval: float, deadline: float) -> None:
    sessions = Sessions()
    rng = random.Random(2)
    try:
        while time.monotonic() < deadline:
            data = targets.get()
            if data.get("stop"):
                break
            up = sorted(n for n, info in data["nodes"].items() if info.get("up"))
            if not up or not data["sites"]:
                await asyncio.sleep(0.5)
                continue
            node = rng.choice(up)
            site = rng.choice(sorted(data["sites"]))
            base = data["nodes"][node]["gateway"]
            began = time.monotonic()
            await page(sessions.get(base), base, node, site, data["sites"][site]["paths"], log)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - began)))
    finally:
        await sessions.close()


async def page(session: aiohttp.ClientSession, base: str, node: str, site: str,
               paths: list[str], log: Log) -> None:
    """index.html, then the rest (as a browser does once it has parsed the page)."""
    visit_id = f"{node}:{site[:8]}:{time.monotonic():.3f}"

    async def get(path: str) -> None:
        started = time.monotonic()
        result = await fetch(session, f"{base}/s/{site}/{path}")
        log.write(role="visit", visit=visit_id, t=started - log.epoch,
                  ms=(time.monotonic() - started) * 1000, node=node, site=site, path=path,
                  **result)

    await get("index.html")
    rest = [p for p in paths if p != "index.html"]
    gate = asyncio.Semaphore(BROWSER_PARALLEL)

    async def limited(path: str) -> None:
        async with gate:
            await get(path)

    await asyncio.gather(*(limited(p) for p in rest))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=["probe", "visit"], required=True)
    parser.add_argument("--targets", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--epoch", type=float, required=True,
                        help="time.monotonic() when the soak began (the clock is system-wide)")
    parser.add_argument("--rate", type=float, default=40.0, help="probes per second")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between visits")
    parser.add_argument("--max-seconds", type=float, required=True)
    args = parser.parse_args()
    start = time.monotonic()
    log = Log(args.log, args.epoch)
    deadline = start + args.max_seconds
    targets = Targets(args.targets)
    try:
        if args.role == "probe":
            await probe(targets, log, args.rate, deadline)
        else:
            await visit(targets, log, args.interval, deadline)
    finally:
        log.out.close()


if __name__ == "__main__":
    asyncio.run(main())
