"""Soak: a swarm of `peerweb node` processes under mixed load, with faults, for --minutes.

Ten nodes (node 0 publishes two sites, node 1 a third; node 9 runs with files limited to
4 MB, a disk that is nearly full) and two volunteers (`peerweb volunteer`), each a process of
its own on its own 127.0.0.x address, in one private DHT. Every node's download is capped at
4 MB/s (between local addresses too) so that a 16 MB update takes about four seconds and a
crash can land in the middle of one.

Load, from processes of their own (soak_client.py): a probe asking for cached small files at
40/s, timed from when each was due; a visitor loading a whole site (index.html, then 6 at a
time) through a random node every 2 s. From here: updates of the three sites in turn (the
media site's 16 MB file replaced whole), pointer pushes to random nodes' peer ports (a
quarter of them superseded versions, which must be refused), and the publisher asking the
volunteers for help, whose mirrors are then fetched.

Faults: kill -9 of a random node and a restart on the same data dir and addresses, every
other one while a holder is fetching a new 16 MB version; a tampering peer (a held file
altered on disk on one node, which is then restarted so its memory cache is gone); a flood of
validly signed pointers for fresh keys on one node's peer port; the full disk of node 9.

Reports requests served, errors by kind, every wrong byte, cached-file p50/p99 per 10 s,
bytes re-downloaded after each crash (verified bytes on disk before the kill, against what
the node still had after its restart), and at the end whether every node serves every
snapshot it holds byte-exact. Targets: no wrong byte, no node needing a hand, p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import soak_report
from bench.common import RESULTS, free_port, write_result
from peerweb.content.identity import SiteKey
from peerweb.content.pointer import sign
from peerweb.errors import PeerwebError
from peerweb.http.control_client import NodeClient
from peerweb.tools.testnet import node_host, write_sample_site

NODES = 10
VOLUNTEERS = 2
MEDIA_SIZE = 16 * 1024 * 1024
DOWNLOAD_LIMIT = "4MB/s"
FULL_DISK_BYTES = 4 * 1024 * 1024  # node 9's files may not grow past this (RLIMIT_FSIZE)
FLOOD_POINTERS = 3000
FLOOD_PARALLEL = 16
SMALL = 64 * 1024  # files up to this size are "cached files" for the probe
START_TIMEOUT = 60.0
RECOVER_TIMEOUT = 90.0
QUIESCE_TIMEOUT = 90.0
STATUS_TIMEOUT = 10.0
ROOT = Path(__file__).resolve().parent.parent


def full_disk() -> None:
    """In node 9's process: no file may grow past FULL_DISK_BYTES (EFBIG, as ENOSPC would)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FULL_DISK_BYTES, FULL_DISK_BYTES))


@dataclass
class Member:
    """One node process the bench runs, restartable with the same command."""

    name: str
    role: str  # publisher, node, full-disk, volunteer
    data_dir: Path
    command: list[str]
    listen: str
    peer_port: int | None
    process: asyncio.subprocess.Process | None = None
    gateway: str = ""
    up: bool = False
    restarts: int = 0
    held: dict[str, dict[str, Any]] = field(default_factory=dict)  # site id -> status entry
    last_status: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0]


@dataclass
class Site:
    name: str
    key: str
    publisher: Member
    folder: Path
    site_id: str = ""
    versions: list[dict[str, Any]] = field(default_factory=list)  # version, tid, pointer

    @property
    def tid(self) -> str:
        return str(self.versions[-1]["tid"])


class Soak:
    def __init__(self, work: Path, minutes: float, seed: int) -> None:
        self.work = work
        self.duration = minutes * 60
        self.rng = random.Random(seed)
        self.members: list[Member] = []
        self.sites: list[Site] = []
        self.expected: dict[str, dict[str, str]] = {}  # tid -> path -> sha256
        self.sizes: dict[str, dict[str, int]] = {}  # tid -> path -> size
        self.records: list[dict[str, Any]] = []  # requests made from here
        self.events: list[dict[str, Any]] = []
        self.crashes: list[dict[str, Any]] = []
        self.problems: list[dict[str, Any]] = []  # stuck nodes, rollbacks, self-crashes
        self.faults: dict[str, Any] = {}
        self.max_version: dict[tuple[str, str], int] = {}
        self.status_ms: list[tuple[float, str, float]] = []
        self.epoch = time.monotonic()
        self.targets = work / "targets.json"
        self.clients: list[asyncio.subprocess.Process] = []
        self.kill_lock = asyncio.Lock()
        self.flooded: Member | None = None  # not killed while flooded (one fault at a time)
        self.background: set[asyncio.Task[Any]] = set()
        self.http: aiohttp.ClientSession | None = None

    def now(self) -> float:
        return time.monotonic() - self.epoch

    def event(self, kind: str, **detail: Any) -> None:
        self.events.append({"t": round(self.now(), 2), "kind": kind, **detail})
        print(f"[{self.now():7.1f}s] {kind} {json.dumps(detail)[:200]}", flush=True)

    def problem(self, kind: str, **detail: Any) -> None:
        self.problems.append({"t": round(self.now(), 2), "kind": kind, **detail})
        print(f"[{self.now():7.1f}s] PROBLEM {kind} {json.dumps(detail)[:300]}", flush=True)

    # -- processes ------------------------------------------------------------------------

    def plan_members(self) -> None:
        listens = [f"{node_host(i)}:{free_port(node_host(i))}" for i in range(NODES + VOLUNTEERS)]
        for i in range(NODES + VOLUNTEERS):
            data_dir = self.work / f"n{i}"
            data_dir.mkdir()
            bootstrap = listens[1] if i == 0 else listens[0]
            if i < NODES:
                role = "publisher" if i < 2 else "full-disk" if i == NODES - 1 else "node"
                peer_port = free_port(node_host(i))
                command = [sys.executable, "-m", "peerweb", "node", "--data-dir", str(data_dir),
                           "--listen", listens[i], "--gateway", "127.0.0.1:0",
                           "--peer-port", str(peer_port), "--download-limit", DOWNLOAD_LIMIT,
                           "--limit-local-peers", "--bootstrap", bootstrap]
            else:
                role, peer_port = "volunteer", None
                command = [sys.executable, "-m", "peerweb", "volunteer", "--data-dir",
                           str(data_dir), "--public-gateway", "127.0.0.1:0", "--capacity",
                           "20MB/s", "--disk", "300MB", "--listen", listens[i],
                           "--bootstrap", bootstrap]
            self.members.append(Member(f"n{i}", role, data_dir, command, listens[i], peer_port))

    async def start(self, member: Member) -> float:
        """Start (or restart) a member; seconds until its control API answered."""
        began = time.monotonic()
        with open(member.data_dir / "node.log", "ab") as log:
            member.process = await asyncio.create_subprocess_exec(
                *member.command, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                preexec_fn=full_disk if member.role == "full-disk" else None, cwd=ROOT)
        deadline = began + START_TIMEOUT
        while time.monotonic() < deadline:
            if member.process.returncode is not None:
                break
            info = self._node_file(member)
            if info.get("pid") == member.process.pid:
                status = await self.status(member)
                if status is not None:
                    member.gateway = str(info["gateway"])
                    member.up = True
                    return time.monotonic() - began
            await asyncio.sleep(0.1)
        log_tail = (member.data_dir / "node.log").read_text(errors="replace")[-1500:]
        raise RuntimeError(f"{member.name} did not start within {START_TIMEOUT} s:\n{log_tail}")

    @staticmethod
    def _node_file(member: Member) -> dict[str, Any]:
        try:
            return dict(json.loads((member.data_dir / "node.json").read_text()))
        except (OSError, ValueError):
            return {}

    async def status(self, member: Member, timeout: float = STATUS_TIMEOUT) -> dict | None:
        began = time.monotonic()
        try:
            status = await asyncio.wait_for(asyncio.to_thread(
                lambda: NodeClient(member.data_dir, timeout=timeout).status()), timeout + 1)
        except (PeerwebError, TimeoutError):
            return None
        self.status_ms.append((self.now(), member.name, (time.monotonic() - began) * 1000))
        return status

    async def stop_all(self) -> None:
        running = [p for p in self.clients if p.returncode is None]
        running += [m.process for m in self.members
                    if m.process is not None and m.process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
        for process in running:
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    # -- sites ----------------------------------------------------------------------------

    def plan_sites(self) -> None:
        publisher, second = self.members[0], self.members[1]
        for name, owner, small, big, seed in (("page", publisher, 40, 0, 1),
                                              ("media", publisher, 4, MEDIA_SIZE, 2),
                                              ("blog", second, 20, 0, 3)):
            folder = self.work / "sites" / name
            write_sample_site(folder, small_files=small, big_size=big, seed=seed)
            self.sites.append(Site(name, f"soak-{name}", owner, folder))

    def change(self, site: Site) -> str:
        """Alter the site's folder for its next version; returns the path changed."""
        if site.name == "media":
            path = "media/big.bin"
            (site.folder / path).write_bytes(self.rng.randbytes(MEDIA_SIZE))
        else:
            assets = sorted(p for p in (site.folder / "assets").iterdir())
            target = self.rng.choice(assets)
            target.write_bytes(self.rng.randbytes(target.stat().st_size))
            path = str(target.relative_to(site.folder))
        return path

    async def publish(self, site: Site) -> bool:
        member = site.publisher
        if not member.up:
            self.event("update-skipped", site=site.name, reason="publisher down")
            return False
        files = {str(p.relative_to(site.folder)): p.read_bytes()
                 for p in site.folder.rglob("*") if p.is_file()}

        def run() -> dict[str, Any]:
            events = list(NodeClient(member.data_dir, timeout=120).publish(
                site.folder, site.key, False))
            return dict(events[-1]["result"])
        try:
            result = await asyncio.to_thread(run)
        except PeerwebError as exc:
            self.problem("publish failed", site=site.name, error=str(exc))
            return False
        tid = str(result["infohash"])
        self.expected[tid] = {p: hashlib.sha256(d).hexdigest() for p, d in files.items()}
        self.sizes[tid] = {p: len(d) for p, d in files.items()}
        site.site_id = str(result["site_id"])
        pointer = await self.pointer_of(member, site.site_id)
        site.versions.append({"version": result["version"], "tid": tid, "pointer": pointer})
        return True

    async def pointer_of(self, member: Member, site_id: str) -> dict[str, Any] | None:
        assert self.http is not None
        url = f"http://{member.host}:{member.peer_port}/peerweb/v1/pointer/{site_id}"
        try:
            async with self.http.get(url) as response:
                return dict((await response.json())["pointer"])
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
            return None

    # -- the targets file the clients read ------------------------------------------------

    def write_targets(self, stop: bool = False) -> None:
        cached = []
        for member in self.members:
            for site_id, entry in member.held.items():
                tid = entry.get("infohash")
                if entry.get("progress", 0) < 1 or tid not in self.sizes:
                    continue
                cached += [{"node": member.name, "site": site_id, "tid": tid, "path": path}
                           for path, size in self.sizes[tid].items() if size <= SMALL]
        data = {"stop": stop, "cached": cached,
                "nodes": {m.name: {"gateway": m.gateway, "up": m.up} for m in self.members},
                "sites": {s.site_id: {"paths": sorted(self.sizes[s.tid])}
                          for s in self.sites if s.versions}}
        partial = self.targets.with_suffix(".tmp")
        partial.write_text(json.dumps(data))
        os.replace(partial, self.targets)

    async def refresh(self, member: Member) -> None:
        if member.up and member.process is not None and member.process.returncode is not None:
            member.up = False
            self.problem("node exited by itself", node=member.name,
                         code=member.process.returncode)
            self.spawn(self.restart_after_crash(member))
            return
        if not member.up:
            return
        status = await self.status(member)
        if status is None:
            if member.up:
                self.records.append({"role": "status", "t": self.now(), "node": member.name,
                                     "status": None, "error": "status did not answer"})
            return
        member.last_status = status
        member.held = {s["site_id"]: s for s in status["sites"] if "progress" in s}
        for entry in status["sites"]:
            key = (member.name, entry["site_id"])
            if key in self.max_version and entry["version"] < self.max_version[key]:
                self.problem("rollback", node=member.name, site=entry["site_id"],
                             was=self.max_version[key], now=entry["version"])
            self.max_version[key] = max(entry["version"], self.max_version.get(key, 0))

    async def monitor(self) -> None:
        while True:
            await asyncio.gather(*(self.refresh(m) for m in self.members))
            self.write_targets()
            await asyncio.sleep(1.0)

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    # -- requests from here ---------------------------------------------------------------

    async def get(self, role: str, member: Member, site_id: str, path: str,
                  prefix: str = "s", base: str | None = None) -> dict[str, Any]:
        assert self.http is not None
        started = time.monotonic()
        record: dict[str, Any] = {"role": role, "t": self.now(), "node": member.name,
                                  "site": site_id, "path": path}
        try:
            async with self.http.get(f"{base or member.gateway}/{prefix}/{site_id}/{path}",
                                     allow_redirects=False) as response:
                body = await response.read()
                record.update(status=response.status,
                              snapshot=response.headers.get("X-Peerweb-Snapshot"),
                              sha256=hashlib.sha256(body).hexdigest()
                              if response.status == 200 else None, size=len(body))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            record.update(status=None, error=type(exc).__name__, message=str(exc)[:160])
        record["ms"] = (time.monotonic() - started) * 1000
        self.records.append(record)
        return record

    async def load_site(self, role: str, member: Member, site: Site) -> list[dict[str, Any]]:
        gate = asyncio.Semaphore(6)

        async def one(path: str) -> dict[str, Any]:
            async with gate:
                return await self.get(role, member, site.site_id, path)
        first = await one("index.html")
        rest = await asyncio.gather(*(one(p) for p in sorted(self.sizes[site.tid])
                                      if p != "index.html"))
        return [first, *rest]

    # -- load and faults ------------------------------------------------------------------

    def regular(self, *roles: str) -> list[Member]:
        return [m for m in self.members if m.up and m.role in roles]

    async def update(self, site: Site) -> None:
        changed = self.change(site)
        if await self.publish(site):
            self.event("update", site=site.name, version=site.versions[-1]["version"],
                       changed=changed)

    async def push(self) -> None:
        """A genuine pointer to a random node's peer port; one in four is superseded."""
        site = self.rng.choice([s for s in self.sites if s.versions])
        stale = len(site.versions) > 1 and self.rng.random() < 0.25
        chosen = self.rng.choice(site.versions[:-1]) if stale else site.versions[-1]
        targets = self.regular("node", "publisher", "full-disk")
        if chosen["pointer"] is None or not targets:
            return
        member = self.rng.choice(targets)
        assert self.http is not None
        record: dict[str, Any] = {"role": "push", "t": self.now(), "node": member.name,
                                  "site": site.site_id, "stale": stale}
        url = f"http://{member.host}:{member.peer_port}/peerweb/v1/pointer"
        try:
            async with self.http.post(url, json={"pointer": chosen["pointer"], "port": 0}) as r:
                answer = await r.json()
                record.update(status=r.status, accepted=answer.get("accepted"))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            record.update(status=None, error=type(exc).__name__)
        if stale and record.get("accepted"):
            self.problem("stale pointer accepted", node=member.name, site=site.name,
                         version=chosen["version"])
        self.records.append(record)

    async def ask_help(self) -> None:
        site = self.rng.choice([s for s in self.sites if s.versions])
        member = site.publisher
        if not member.up:
            return
        began = time.monotonic()
        try:
            mirrors = await asyncio.wait_for(asyncio.to_thread(
                lambda: NodeClient(member.data_dir, timeout=60).ask_for_help(site.site_id)), 70)
        except (PeerwebError, TimeoutError) as exc:
            self.records.append({"role": "help", "t": self.now(), "node": member.name,
                                 "status": None, "error": type(exc).__name__})
            self.event("help", site=site.name, error=str(exc)[:120])
            return
        self.records.append({"role": "help", "t": self.now(), "node": member.name,
                             "status": 200, "snapshot": site.tid, "path": "", "site": "",
                             "ms": (time.monotonic() - began) * 1000, "help": True})
        self.event("help", site=site.name, mirrors=[m["mirror"] for m in mirrors],
                   s=round(time.monotonic() - began, 2))
        by_gateway = {m.gateway: m for m in self.members}
        for mirror in mirrors:
            gateway = mirror["mirror"].split("/s/")[0]
            volunteer = by_gateway.get(gateway, member)
            await self.get("mirror", volunteer, site.site_id, "index.html", base=gateway)

    async def kill(self, mid_download: bool) -> None:
        async with self.kill_lock:
            victim = None
            media = next(s for s in self.sites if s.name == "media")
            if mid_download:
                victim = await self.catch_mid_download(media)
            if victim is None:
                candidates = [m for m in self.members if m.up and m is not self.flooded]
                victim = self.rng.choice(candidates)
            await self.crash(victim, "mid-download" if mid_download else "idle")

    async def catch_mid_download(self, media: Site) -> Member | None:
        """Publish a new media version and find a holder that has begun fetching it (the
        kill comes ~1.5 s later: about halfway at 4 MB/s)."""
        holders = [m for m in self.regular("node") if media.site_id in m.held
                   and m is not self.flooded]
        if not holders or not media.publisher.up:
            return None
        await self.update(media)
        tid, total = media.tid, sum(self.sizes[media.tid].values())
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            statuses = await asyncio.gather(*(self.status(m) for m in holders))
            for member, status in zip(holders, statuses, strict=True):
                for entry in (status or {}).get("sites", []):
                    done = entry.get("bytes_on_disk", 0)
                    if entry.get("infohash") == tid and 0.02 * total < done < 0.4 * total:
                        return member
            await asyncio.sleep(0.1)
        return None

    async def crash(self, victim: Member, kind: str) -> None:
        victim.up = False
        self.write_targets()  # the clients stop asking it (they re-read every second)
        await asyncio.sleep(1.2)
        before = await self.status(victim) or {}
        assert victim.process is not None
        with contextlib.suppress(ProcessLookupError):
            victim.process.kill()
        await victim.process.wait()
        self.event("kill", node=victim.name, role=victim.role, how=kind)
        on_disk = {e["infohash"]: e.get("bytes_on_disk", 0) for e in before.get("sites", [])
                   if "progress" in e}
        held_sites = {e["site_id"] for e in before.get("sites", []) if "progress" in e}
        missing = sum(max(0, sum(self.sizes.get(t, {}).values()) - d) for t, d in
                      on_disk.items() if t in self.sizes)
        await asyncio.sleep(2.0)
        crash = {"t": round(self.now(), 2), "node": victim.name, "role": victim.role,
                 "kind": kind, "on_disk_before": sum(on_disk.values()),
                 "missing_at_kill": missing}
        self.crashes.append(crash)
        try:
            crash["restart_s"] = round(await self.start(victim), 2)
        except RuntimeError as exc:
            crash["restart_error"] = str(exc)[-300:]
            self.problem("did not restart", node=victim.name, error=str(exc)[-300:])
            return
        victim.restarts += 1
        after = await self.status(victim) or {}
        kept = {e["infohash"]: e.get("bytes_on_disk", 0) for e in after.get("sites", [])
                if "progress" in e}
        crash["lost_bytes"] = sum(max(0, done - kept.get(tid, 0))
                                  for tid, done in on_disk.items())
        crash["lost_by_snapshot"] = {tid[:12]: done - kept.get(tid, 0)
                                     for tid, done in on_disk.items()
                                     if done > kept.get(tid, 0)}
        self.event("restarted", node=victim.name, restart_s=crash["restart_s"],
                   lost_bytes=crash["lost_bytes"])
        self.spawn(self.follow_recovery(victim, crash, held_sites))

    async def restart_after_crash(self, member: Member) -> None:
        async with self.kill_lock:
            with contextlib.suppress(RuntimeError):
                await self.start(member)

    async def follow_recovery(self, member: Member, crash: dict[str, Any],
                              sites: set[str]) -> None:
        """Until every site held at the kill is complete again, at whatever version it is
        now: a snapshot that came back without its torrent (no resume data) is not."""
        began = time.monotonic()
        while time.monotonic() - began < RECOVER_TIMEOUT:
            status = await self.status(member)
            if status is not None:
                crash["downloaded_after_restart"] = status["downloaded"]
                current = [e for e in status["sites"] if e["site_id"] in sites]
                # Not libtorrent's progress: while a torrent checks its files after a restart
                # that is the check's progress, 1.0 before a byte of it is verified.
                if all(e.get("error") or e.get("bytes_on_disk", 0)
                       >= sum(self.sizes.get(e["infohash"], {"?": 1}).values())
                       for e in current):
                    crash["recovered_s"] = round(time.monotonic() - began, 2)
                    return
            await asyncio.sleep(1.0)
        crash["recovered_s"] = None
        if member.role != "full-disk":
            self.problem("not recovered", node=member.name, within_s=RECOVER_TIMEOUT)

    async def tamper(self) -> None:
        """Alter held files on one node's disk; its gateway must never serve those bytes."""
        page = next(s for s in self.sites if s.name == "page")
        media = next(s for s in self.sites if s.name == "media")
        holders = [m for m in self.regular("node")
                   if m.held.get(page.site_id, {}).get("progress", 0) >= 1]
        if not holders:
            self.event("tamper-skipped", reason="no complete holder of the page")
            return
        holders.sort(key=lambda m: media.site_id not in m.held)  # prefer a media holder
        member = holders[0]
        altered = []
        for site, path in ((page, "assets/file07.txt"), (page, "index.html"),
                           (media, "media/big.bin")):
            entry = member.held.get(site.site_id)
            if entry is None:
                continue
            for file in (member.data_dir / "content" / entry["infohash"]).rglob(path):
                size = file.stat().st_size
                with open(file, "r+b") as handle:
                    handle.seek(size // 2)
                    old = handle.read(64)
                    handle.seek(size // 2)
                    handle.write(bytes(b ^ 0xFF for b in old))
                altered.append((site, path, str(file.relative_to(member.data_dir))))
        self.event("tamper", node=member.name, files=[a[2] for a in altered])
        results = {"node": member.name, "files": [a[2] for a in altered]}
        for phase in ("memory cache", "after restart"):
            if phase == "after restart":
                async with self.kill_lock:
                    member.up = False
                    self.write_targets()
                    await asyncio.sleep(1.2)
                    assert member.process is not None
                    member.process.send_signal(signal.SIGINT)
                    try:
                        await asyncio.wait_for(member.process.wait(), 15)
                    except TimeoutError:
                        member.process.kill()
                        await member.process.wait()
                    try:
                        await self.start(member)
                    except RuntimeError as exc:
                        self.problem("did not restart after tampering", node=member.name,
                                     error=str(exc)[-300:])
                        return
            answers = [await self.get("tamper", member, s.site_id, p) for s, p, _ in altered]
            results[phase] = [{"path": p, "status": a.get("status"), "error": a.get("error"),
                               "verdict": soak_report.verdict(a, self.expected)}
                              for (_, p, _), a in zip(altered, answers, strict=True)]
        self.faults["tamper"] = results

    async def flood(self) -> None:
        """FLOOD_POINTERS validly signed pointers for fresh keys on one node's peer port."""
        member = self.rng.choice(self.regular("node"))
        self.flooded = member
        state = member.data_dir / "state.json"
        size_before = state.stat().st_size if state.exists() else 0
        sites_before = len(member.last_status.get("sites", []))
        pointers = [sign(SiteKey.generate(f"flood{i}"), os.urandom(20), 1, seq=1).to_json()
                    for i in range(FLOOD_POINTERS)]
        self.event("flood", node=member.name, pointers=len(pointers))
        assert self.http is not None
        url = f"http://{member.host}:{member.peer_port}/peerweb/v1/pointer"
        answers: dict[str, int] = {}
        queue = list(pointers)
        began = time.monotonic()
        deadline = began + min(120.0, 0.4 * self.duration)

        async def sender() -> None:
            while queue and time.monotonic() < deadline:
                pointer = queue.pop()
                try:
                    async with self.http.post(url, json={"pointer": pointer, "port": 0}) as r:
                        answer = await r.json() if r.status == 200 else {}
                        key = f"HTTP {r.status} accepted={answer.get('accepted')}"
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    key = type(exc).__name__
                answers[key] = answers.get(key, 0) + 1
        try:
            await asyncio.gather(*(sender() for _ in range(FLOOD_PARALLEL)))
        finally:
            self.flooded = None
        spent = time.monotonic() - began
        await asyncio.sleep(2.0)
        status = await self.status(member) or {}
        self.faults["flood"] = {
            "node": member.name, "sent": FLOOD_POINTERS - len(queue), "seconds": round(spent, 2),
            "answers": answers, "state_bytes_before": size_before,
            "state_bytes_after": state.stat().st_size if state.exists() else 0,
            "sites_listed_before": sites_before, "sites_listed_after": len(status.get("sites", [])),
            "t_start": round(began - self.epoch, 2), "t_end": round(self.now(), 2)}
        self.event("flood-done", **{k: v for k, v in self.faults["flood"].items()
                                    if k != "node"})

    def schedule(self) -> list[tuple[float, str]]:
        """The run's actions, at fixed times scaled to its length (decisions only)."""
        d = self.duration
        plan: list[tuple[float, str]] = []
        every = {"update": min(45.0, d / 3), "kill": min(40.0, d / 3),
                 "help": min(60.0, d / 2), "push": 5.0}
        offsets = {"update": 7.0, "kill": 0.0, "help": 12.0, "push": 2.0}
        for name, interval in every.items():
            t = offsets[name] + interval
            while t < d - 5:
                plan.append((t, name))
                t += interval
        plan += [(0.3 * d, "tamper"), (0.55 * d, "flood")]
        return sorted(plan)

    async def load(self) -> None:
        kills = 0
        updates = 0
        for at, action in self.schedule():
            await asyncio.sleep(max(0.0, at - self.now()))
            if action == "update":
                await self.update([s for s in self.sites if s.name != "media"][updates % 2])
                updates += 1
            elif action == "kill":
                await self.kill(mid_download=kills % 2 == 1)
                kills += 1
            elif action == "push":
                await self.push()
            elif action == "help":
                self.spawn(self.ask_help())
            elif action == "tamper":
                self.spawn(self.tamper())
            elif action == "flood":
                self.spawn(self.flood())
        await asyncio.sleep(max(0.0, self.duration - self.now()))

    # -- the run --------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        try:
            return await self._run()
        finally:
            for task in list(self.background):
                task.cancel()
            await asyncio.gather(*self.background, return_exceptions=True)
            await self.stop_all()
            await self.http.close()

    async def _run(self) -> dict[str, Any]:
        self.plan_members()
        self.plan_sites()
        await self.start(self.members[0])
        await asyncio.gather(*(self.start(m) for m in self.members[1:]))
        await self.wait_dht()
        for site in self.sites:
            await self.publish(site)
        await asyncio.gather(*(self.warm_up(i, m) for i, m in enumerate(self.members)))
        print(f"swarm up and warm in {self.now():.1f} s", flush=True)

        self.epoch = time.monotonic()
        self.records.clear()
        monitor = asyncio.ensure_future(self.monitor())
        await asyncio.gather(*(self.refresh(m) for m in self.members))
        self.write_targets()
        logs = {role: self.work / f"{role}.ndjson" for role in ("probe", "visit")}
        for role, log in logs.items():
            self.clients.append(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.soak_client", "--role", role, "--targets",
                str(self.targets), "--log", str(log), "--epoch", repr(self.epoch),
                "--max-seconds", str(self.duration + 60), cwd=ROOT,
                stdin=asyncio.subprocess.DEVNULL))
        try:
            await self.load()
            await asyncio.gather(*self.background)
        finally:
            self.write_targets(stop=True)
            for client in self.clients:
                try:
                    await asyncio.wait_for(client.wait(), 45)
                except TimeoutError:
                    client.kill()
                    await client.wait()
            monitor.cancel()
        load_s = self.now()
        client_records = [json.loads(line) for log in logs.values() if log.exists()
                          for line in log.read_text().splitlines() if line.strip()]
        quiet_s = await self.quiesce()
        end = await self.end_check()
        with open(self.work / "orchestrator.ndjson", "w") as out:  # kept with --keep
            out.writelines(json.dumps(r) + "\n" for r in self.records)
        return self.result(client_records + self.records, load_s, quiet_s, end)

    async def wait_dht(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            statuses = await asyncio.gather(*(self.status(m) for m in self.members))
            if all(s and s["dht_nodes"] for s in statuses):
                return
            await asyncio.sleep(0.2)
        raise RuntimeError("the DHT did not form")

    async def warm_up(self, index: int, member: Member) -> None:
        """Each node visits some sites, so that they hold different things."""
        if member.role == "volunteer":
            return
        page, media, blog = self.sites
        chosen = [page] + ([blog] if index % 2 == 0 else []) + (
            [media] if index % 3 == 1 or member.role == "full-disk" else [])
        for site in chosen:
            if site.publisher is not member:
                await self.load_site("warmup", member, site)

    async def quiesce(self) -> float:
        """Until every node holds the newest version, complete, of each site it holds."""
        began = time.monotonic()
        latest = {s.site_id: s.tid for s in self.sites}
        while time.monotonic() - began < QUIESCE_TIMEOUT:
            await asyncio.gather(*(self.refresh(m) for m in self.members))
            behind = [(m.name, sid[:8]) for m in self.members if m.up
                      for sid, e in m.held.items() if sid in latest
                      and (e["infohash"] != latest[sid] or e["progress"] < 1)
                      and not (m.role == "full-disk" and e.get("error"))]
            if not behind:
                return round(time.monotonic() - began, 2)
            await asyncio.sleep(1.0)
        self.problem("not settled at the end", behind=behind)
        return round(time.monotonic() - began, 2)

    async def end_check(self) -> dict[str, Any]:
        """Every file of every snapshot each node holds, through its gateway, by sha256."""
        per_node = {}
        by_site = {s.site_id: s for s in self.sites}
        for member in self.members:
            status = await self.status(member) if member.up else None
            if status is None:
                per_node[member.name] = {"error": "no status"}
                self.problem("no status at the end", node=member.name)
                continue
            checks: list[dict[str, Any]] = []
            gate = asyncio.Semaphore(6)

            async def one(prefix: str, ident: str, path: str, member: Member = member,
                          gate: asyncio.Semaphore = gate) -> dict[str, Any]:
                async with gate:
                    return await self.get("endcheck", member, ident, path, prefix=prefix)
            jobs = []
            for entry in status["sites"]:
                if "progress" in entry and entry["site_id"] in by_site:
                    jobs += [one("s", entry["site_id"], p)
                             for p in self.sizes.get(entry["infohash"], {})]
            for tid in status.get("snapshots", []):
                jobs += [one("ih", tid, p) for p in self.sizes.get(tid, {})]
            checks = list(await asyncio.gather(*jobs))
            verdicts: dict[str, int] = {}
            for check in checks:
                judged = soak_report.verdict(check, self.expected)
                key = judged if judged != "error" else f"error {soak_report.error_kind(check)}"
                verdicts[key] = verdicts.get(key, 0) + 1
            per_node[member.name] = {
                "role": member.role, "files_checked": len(checks), "verdicts": verdicts,
                "versions": {by_site[s["site_id"]].name: s["version"] for s in status["sites"]
                             if s["site_id"] in by_site},
                "held": sorted(by_site[s].name for s in member.held if s in by_site),
                "sites_listed": len(status["sites"]), "hash_failures": status["hash_failures"],
                "restarts": member.restarts}
        return per_node

    def result(self, records: list[dict[str, Any]], load_s: float, quiet_s: float,
               end: dict[str, Any]) -> dict[str, Any]:
        roles = {m.name: m.role for m in self.members}
        load = [r for r in records if r.get("role") not in ("endcheck", "warmup")]
        rows = soak_report.timeline(load, load_s)
        summary = soak_report.summary(load, self.expected, roles)
        end_summary = soak_report.summary([r for r in records if r.get("role") == "endcheck"],
                                          self.expected, roles)
        status_ms = [ms for _, _, ms in self.status_ms]
        return {
            "minutes": self.duration / 60, "load_seconds": round(load_s, 1),
            "nodes": NODES, "volunteers": VOLUNTEERS, "roles": roles,
            "sites": {s.name: {"site_id": s.site_id, "versions": len(s.versions),
                               "bytes": sum(self.sizes[s.tid].values())} for s in self.sites},
            "summary": summary, "cached_p99_windows_over_100ms": soak_report.windows_over(rows),
            "timeline": rows, "events": self.events, "crashes": self.crashes,
            "faults": self.faults, "problems": self.problems,
            "pushes": {"sent": sum(1 for r in load if r.get("role") == "push"),
                       "accepted": sum(1 for r in load if r.get("accepted")),
                       "stale_sent": sum(1 for r in load if r.get("stale"))},
            "status_api_ms": {"p50": soak_report.percentile(status_ms, 50),
                              "p99": soak_report.percentile(status_ms, 99),
                              "max": max(status_ms, default=None)},
            "settle_s": quiet_s, "end_check": end, "end_check_summary": {
                k: end_summary[k] for k in ("requests", "errors_by_kind", "wrong_answers",
                                            "wrong_examples")},
            "loadavg_end": os.getloadavg(),
        }


def print_summary(result: dict[str, Any]) -> None:
    s = result["summary"]
    print(f"requests {s['requests']} ({s['served_by_role']} served), wrong answers "
          f"{s['wrong_answers']} (target 0)")
    print(f"cached files: {s['cached_requests']} requests, p50 {s['cached_p50_ms']} ms, p99 "
          f"{s['cached_p99_ms']} ms, max {s['cached_max_ms']} ms; 10 s windows with p99 over "
          f"100 ms: {len(result['cached_p99_windows_over_100ms'])} of {len(result['timeline'])}")
    print(f"errors by kind: {json.dumps(s['errors_by_kind'])}")
    for crash in result["crashes"]:
        print(f"crash {crash['node']} ({crash['kind']}): lost {crash.get('lost_bytes')} bytes "
              f"of {crash['on_disk_before']} on disk, restart {crash.get('restart_s')} s, "
              f"recovered {crash.get('recovered_s')} s")
    e = result["end_check_summary"]
    print(f"end check: {e['requests']} files, wrong {e['wrong_answers']}, errors "
          f"{json.dumps(e['errors_by_kind'])}")
    print(f"problems: {json.dumps(result['problems'])[:2000]}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--result", default="soak", help="bench/results/<name>.json")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (printed)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="peerweb-soak-"))
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    soak = Soak(work, args.minutes, args.seed)
    try:
        result = await soak.run()
    finally:
        if args.keep:
            print(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    result["machine_note"] = ("2 cores shared with other engineers' work; every node, client "
                              "and this orchestrator on the same machine")
    print_summary(result)
    png = RESULTS / f"{args.result}.png"
    RESULTS.mkdir(exist_ok=True)
    if soak_report.plot(result["timeline"], result["events"], png,
                        f"soak, {args.minutes:g} min: cached-file latency and errors"):
        result["plot"] = png.name
    write_result(args.result, result)


if __name__ == "__main__":
    asyncio.run(main())
