"""A private network of nodes on loopback, for demos, tests and benchmarks.

Each node listens on its own 127.0.0.x address (so per-host limits and DHT routing behave as
on separate machines) and joins a private DHT through the nodes started before it. Nothing
leaves the loopback interface.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from ..config import NodeConfig
from ..http.daemon import RunningNode

# 127.0.0.1 is left to the gateways; swarm addresses start here.
FIRST_HOST = 11
MAX_NODES = 200
# Nodes started one by one before any batch (see Testnet.parallel).
SEEDS = 3


def node_host(index: int) -> str:
    if not 0 <= index < MAX_NODES:
        raise ValueError(f"a testnet has at most {MAX_NODES} nodes")
    return f"127.0.0.{FIRST_HOST + index}"


class Testnet:
    """``async with Testnet(3) as net:`` gives three connected, running nodes."""

    __test__ = False  # not a pytest test class

    def __init__(self, size: int, root: Path | None = None, base_port: int = 0,
                 template: NodeConfig | None = None, first_host: int = FIRST_HOST,
                 parallel: int = 1) -> None:
        self.size = size
        self.parallel = max(1, parallel)
        """Nodes started at once after the first SEEDS (a 50-node net takes minutes one by
        one on a loaded machine; each start mostly waits on its own sockets and threads)."""
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="peerweb-testnet-")
            root = Path(self._tmp.name)
        self.root: Path = root
        self.base_port = base_port
        self.template = template or NodeConfig()
        self.first_host = first_host
        self.nodes: list[RunningNode] = []

    def config_for(self, index: int) -> NodeConfig:
        port = self.base_port + index if self.base_port else 0
        bootstrap = tuple(
            (n.config.listen[0], n.node.swarm.listen_port) for n in self.nodes[:1] + self.nodes[-2:]
        )
        return replace(
            self.template,
            data_dir=self.root / f"node-{index}",
            listen=(f"127.0.0.{self.first_host + index}", 0),
            gateway=("127.0.0.1", port),
            api=("127.0.0.1", 0),
            bootstrap=tuple(dict.fromkeys(bootstrap)),
        )

    async def __aenter__(self) -> Testnet:
        try:
            if self.parallel == 1:
                for index in range(self.size):
                    await self.add_node(self.config_for(index))
            else:
                await self._start_in_batches()
            await self.wait_dht(timeout=10.0)
        except BaseException:
            await self.close()
            raise
        return self

    async def add_node(self, config: NodeConfig) -> RunningNode:
        running = RunningNode(config)
        await running.start()
        self.nodes.append(running)
        # Tell earlier nodes about the newcomer too, so every routing table fills at once.
        address = (config.listen[0], running.node.swarm.listen_port)
        for other in self.nodes[:-1][-2:]:
            other.node.swarm.add_dht_node(address)
        return running

    async def _start_in_batches(self) -> None:
        """The first SEEDS nodes one by one, then the rest ``parallel`` at a time, each
        bootstrapping from the seeds and the newest nodes before its batch; ``nodes`` stays
        in index order."""
        for index in range(min(SEEDS, self.size)):
            await self.add_node(self.config_for(index))
        for first in range(len(self.nodes), self.size, self.parallel):
            indices = range(first, min(self.size, first + self.parallel))
            batch = [RunningNode(self.config_for(index)) for index in indices]
            before = self.nodes[:]
            outcomes = await asyncio.gather(*(r.start() for r in batch),
                                            return_exceptions=True)
            # A node that failed to start stopped itself; the others are ours to close.
            self.nodes += [r for r, o in zip(batch, outcomes, strict=True) if o is None]
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            # As in add_node: earlier nodes learn of the newcomers at once.
            for offset, running in enumerate(batch):
                address = (running.config.listen[0], running.node.swarm.listen_port)
                for other in (before[offset % len(before)], before[-1]):
                    other.node.swarm.add_dht_node(address)

    async def wait_dht(self, timeout: float) -> None:
        if self.size < 2:
            return
        results = await asyncio.gather(
            *(n.node.swarm.wait_dht_ready(timeout) for n in self.nodes))
        if not all(results):
            raise TimeoutError("testnet DHT did not form in time")

    async def stop_node(self, running: RunningNode) -> None:
        await running.stop()
        self.nodes.remove(running)

    async def close(self) -> None:
        await asyncio.gather(*(n.stop() for n in self.nodes), return_exceptions=True)
        self.nodes.clear()
        if self._tmp is not None:
            self._tmp.cleanup()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()


# The benchmark page: index.html, 40 assets and one 40 MB media file.
SMALL_FILES = 40
BIG_FILE_SIZE = 40 * 1024 * 1024


def write_sample_site(root: Path, small_files: int = SMALL_FILES, big_size: int = BIG_FILE_SIZE,
                      seed: int = 1) -> dict[str, bytes]:
    """A page of ``small_files`` assets plus index.html and one large file; returns contents."""
    rng = random.Random(seed)
    contents: dict[str, bytes] = {}
    kinds = ("css", "js", "png", "txt")
    assets = [f"assets/file{i:02d}.{kinds[i % 4]}" for i in range(small_files)]
    links = "".join(f'<link rel="preload" href="{a}">' for a in assets)
    contents["index.html"] = f"<!doctype html><title>t</title>{links}<h1>seed {seed}</h1>".encode()
    contents["404.html"] = b"<h1>custom not found</h1>"
    for i, name in enumerate(assets):
        contents[name] = rng.randbytes(1000 + (i * 997) % 30000)
    if big_size:
        contents["media/big.bin"] = rng.randbytes(big_size)
    for name, data in contents.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return contents


def watch_accepts(resolver: Any, index: int, accepted: dict[int, float]) -> None:
    """Note when ``resolver`` takes a new version as news (pushed or polled), at that
    moment: a watcher polling the holders' state from the same event loop sees them only
    when the loop gets to it, in batches ~0.1 s apart on a busy testnet."""
    take = resolver.accept_pointer

    def accept_pointer(candidate: Any, *args: Any, **kwargs: Any) -> bool:
        before = resolver.held_pointer(candidate.site_id)
        news = bool(take(candidate, *args, **kwargs))
        if news and (before is None or before.version < candidate.version):
            accepted.setdefault(index, time.perf_counter())
        return news
    resolver.accept_pointer = accept_pointer
