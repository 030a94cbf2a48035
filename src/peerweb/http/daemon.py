"""A node with its HTTP faces: the gateway for browsers and the control API for the CLI."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path
from types import TracebackType

from aiohttp import web

from ..config import NODE_FILE, NodeConfig
from ..errors import UsageError
from ..node.node import Node
from . import control, fastpath, gateway, peer_server


class RunningNode:
    """``async with RunningNode(config) as running:`` starts everything, and stops it all."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.node = Node(config)
        self.token = ""
        self._runners: list[web.AppRunner] = []
        self._servers: list[asyncio.Server] = []
        self._replaying: set[asyncio.Transport] = set()
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
        await self.node.start()
        try:
            self.token = control.load_or_create_token(self.config.data_dir)
            self.gateway_address = await self._serve(
                gateway.make_app(self.node), self.config.gateway, "gateway", "--gateway")
            self.node.gateway_port = self.gateway_address[1]
            self.api_address = await self._serve(
                control.make_app(self.node, self.token), self.config.api, "control API", "--api")
            self.peer_address = await self._serve(
                peer_server.make_app(self.node), (self.config.listen[0], self.config.peer_port),
                "peer port", "--peer-port")
            self.node.peer_port = self.peer_address[1]
            control.write_node_file(self.config.data_dir, self.api_url, self.gateway_url,
                                     os.getpid())
        except BaseException:
            await self.stop()
            raise

    async def _serve(self, app: web.Application, address: tuple[str, int], what: str,
                     flag: str) -> tuple[str, int]:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runners.append(runner)
        store = app.get(fastpath.STORE_KEY)
        try:
            if store is None:
                site = web.TCPSite(runner, address[0], address[1], reuse_address=True)
                await site.start()
                bound = runner.addresses[0]
            else:
                # Replayable requests are answered before aiohttp sees them (see fastpath).
                server = runner.server
                assert server is not None
                listening = await asyncio.get_running_loop().create_server(
                    lambda: fastpath.ReplayProtocol(store, server, self._replaying),
                    address[0], address[1], reuse_address=True)
                self._servers.append(listening)
                bound = listening.sockets[0].getsockname()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"the {what} address {address[0]}:{address[1]} is in use; "
                    f"pick another with {flag} HOST:PORT (port 0 picks a free one)"
                ) from exc
            raise UsageError(f"cannot listen on {address[0]}:{address[1]} for the {what}: "
                             f"{exc.strerror}") from exc
        return str(bound[0]), int(bound[1])

    async def stop(self) -> None:
        for listening in self._servers:
            listening.close()
        for transport in list(self._replaying):
            transport.close()
        self._servers.clear()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        node_file = Path(self.config.data_dir) / NODE_FILE
        try:
            if node_file.exists() and f'"pid": {os.getpid()}' in node_file.read_text():
                node_file.unlink()
        except OSError:
            pass
        if self.node.swarm.session is not None:
            await self.node.stop()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
