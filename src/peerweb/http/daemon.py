"""A node with its HTTP faces: the gateway for browsers and the control API for the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
from pathlib import Path
from types import TracebackType

from aiohttp import web

from ..config import NODE_FILE, NodeConfig, ServerLimits
from ..errors import UsageError
from ..node.node import Node
from . import control, fastpath, gateway, limits, peer_server

# Held (flock, exclusive) by the one node running on a data dir; it holds that node's pid.
LOCK_FILE = "node.lock"


class RunningNode:
    """``async with RunningNode(config) as running:`` starts everything, and stops it all."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.node = Node(config)
        self.token = ""
        self._listening: list[limits.Listening] = []
        self._lock: int | None = None
        self.gateway_address: tuple[str, int] = config.gateway
        self.api_address: tuple[str, int] = config.api
        self.peer_address: tuple[str, int] = (config.listen[0], config.peer_port)

    @property
    def gateway_url(self) -> str:
        return f"http://{_url_host(self.gateway_address[0])}:{self.gateway_address[1]}"

    @property
    def api_url(self) -> str:
        return f"http://{_url_host(self.api_address[0])}:{self.api_address[1]}"

    def site_url(self, site_id: str) -> str:
        return self.node.gateway_url(site_id)

    async def __aenter__(self) -> RunningNode:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        self._lock = lock_data_dir(Path(self.config.data_dir))
        try:
            await self.node.start()
            self.token = control.load_or_create_token(self.config.data_dir)
            gateway_app = gateway.make_app(self.node)
            self.gateway_address = await self._serve(
                gateway_app, self.config.gateway, self.config.gateway_limits, "gateway",
                "--gateway", fast=gateway_app[fastpath.STORE_KEY])
            self.node.gateway_port = self.gateway_address[1]
            self.api_address = await self._serve(
                control.make_app(self.node, self.token), self.config.api,
                self.config.gateway_limits, "control API", "--api")
            self.peer_address = await self._serve(
                peer_server.make_app(self.node), (self.config.listen[0], self.config.peer_port),
                self.config.peer_limits, "peer port", "--peer-port")
            self.node.peer_port = self.peer_address[1]
            await self.node.reach.start(self.peer_address[1])
            control.write_node_file(self.config.data_dir, self.api_url, self.gateway_url,
                                     os.getpid())
        except BaseException:
            await self.stop()
            raise

    async def _serve(self, app: web.Application, address: tuple[str, int],
                     server_limits: ServerLimits, what: str, flag: str,
                     fast: fastpath.ReplayStore | None = None) -> tuple[str, int]:
        front = None
        if fast is not None:
            store = fast

            def front(fallback: limits.Fallback, switch: limits.Switch) -> asyncio.Protocol:
                # Replayable requests are answered before aiohttp sees them (see fastpath).
                return fastpath.ReplayProtocol(store, fallback, switch)

        try:
            listening = await limits.serve(app, address[0], address[1], server_limits, front)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"the {what} address {address[0]}:{address[1]} is in use; "
                    f"pick another with {flag} HOST:PORT (port 0 picks a free one)"
                ) from exc
            raise UsageError(f"cannot listen on {address[0]}:{address[1]} for the {what}: "
                             f"{exc.strerror}") from exc
        self._listening.append(listening)
        return listening.address

    async def stop(self) -> None:
        for listening in reversed(self._listening):
            await listening.close()
        self._listening.clear()
        node_file = Path(self.config.data_dir) / NODE_FILE
        try:
            if node_file.exists() and f'"pid": {os.getpid()}' in node_file.read_text():
                node_file.unlink()
        except OSError:
            pass
        if self.node.swarm.session is not None:
            await self.node.stop()
        if self._lock is not None:
            os.close(self._lock)  # releases the lock; the file stays (unlinking it would race)
            self._lock = None


def lock_data_dir(data_dir: Path) -> int:
    """Take the data dir's node lock (fcntl.flock, exclusive, released when the descriptor
    closes, also if the process dies) and write our pid in it; returns the descriptor.

    Two nodes on one data dir would share (and overwrite) its state, and the one stopping
    first would delete the node file through which the CLI finds the other."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = b""
        with contextlib.suppress(OSError):
            holder = os.pread(fd, 32, 0).strip()
        os.close(fd)
        who = f"pid {holder.decode('ascii', 'replace')}" if holder else "another process"
        raise UsageError(f"another peerweb node ({who}) is running on the data dir "
                         f"{data_dir}; stop it first, or pick another --data-dir") from None
    except OSError as exc:
        os.close(fd)
        raise UsageError(f"cannot lock the data dir {data_dir}: {exc.strerror}") from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
