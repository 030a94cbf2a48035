"""peerweb nodes as processes of their own, started through the real CLI, on loopback.

Twenty nodes in one Python process share one event loop: a benchmark of them measures that
thread (their gateways, alerts and clients, saturating one core here) rather than the swarm.
Each node here has its own process, as each visitor has its own machine, and its own
127.0.0.x address. Processes are stopped by their id (SIGINT, then SIGKILL after 10 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yarl import URL

from bench.common import free_port
from peerweb.errors import PeerwebError
from peerweb.http.control_client import NodeClient
from peerweb.tools.testnet import FIRST_HOST

START_TIMEOUT = 60.0


@dataclass
class NodeProcess:
    data_dir: Path
    listen: str
    gateway_port: int
    process: asyncio.subprocess.Process

    # The control API through the CLI's own client, in a thread (it blocks).
    async def status(self) -> dict[str, Any]:
        return await asyncio.to_thread(lambda: NodeClient(self.data_dir).status())

    async def publish(self, folder: Path, key: str) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            events = list(NodeClient(self.data_dir, timeout=120).publish(folder, key, False))
            return dict(events[-1]["result"])
        return await asyncio.to_thread(run)


def node_address(index: int) -> str:
    return f"127.0.0.{FIRST_HOST + index}"


@asynccontextmanager
async def cluster(root: Path, upload_limits: list[int], extra_args: tuple[str, ...] = ()
                  ) -> AsyncIterator[list[NodeProcess]]:
    """One node per entry of ``upload_limits`` (bytes/s, applied between local addresses
    too; 0 for none), on 127.0.0.11, .12, ... as in a Testnet; the first is the others' DHT
    bootstrap; ``extra_args`` are added to every node's command line. Yields once every
    node's DHT has a peer."""
    nodes: list[NodeProcess] = []
    try:
        for index, limit in enumerate(upload_limits):
            host = node_address(index)
            listen = f"{host}:{free_port(host)}"
            data_dir = root / f"node-{index}"
            data_dir.mkdir(parents=True)
            command = [sys.executable, "-m", "peerweb", "node", "--data-dir", str(data_dir),
                       # Port 0: the node picks a free one (a port picked here could be
                       # taken by another node before this one binds it).
                       "--listen", listen, "--gateway", "127.0.0.1:0",
                       "--upload-limit", str(limit), *extra_args]
            if limit:
                command.append("--limit-local-peers")
            if nodes:
                command += ["--bootstrap", nodes[0].listen]
            with open(data_dir / "node.log", "wb") as log:
                process = await asyncio.create_subprocess_exec(
                    *command, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
            nodes.append(NodeProcess(data_dir, listen, 0, process))
            if index == 0:  # the others' bootstrap must answer their first DHT request
                await _wait(nodes[0], lambda status: True)
        for node in nodes:
            await _wait(node, lambda status: bool(status["dht_nodes"]))
            node.gateway_port = URL((await node.status())["gateway"]).port or 0
        yield nodes
    finally:
        await _stop(nodes)


async def _wait(node: NodeProcess, ready: Callable[[dict[str, Any]], bool]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        with contextlib.suppress(PeerwebError):  # not up yet: no node file, or no API
            if ready(await node.status()):
                return
        if node.process.returncode is not None or time.monotonic() > deadline:
            log = (node.data_dir / "node.log").read_text(errors="replace")
            raise RuntimeError(f"node {node.listen} did not start:\n{log[-2000:]}")
        await asyncio.sleep(0.1)


async def _stop(nodes: list[NodeProcess]) -> None:
    running = [n.process for n in nodes if n.process.returncode is None]
    for process in running:
        process.send_signal(signal.SIGINT)
    for process in running:
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
