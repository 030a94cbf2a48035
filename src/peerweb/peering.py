"""The peer port: nodes that hold a site hand each other its signed pointer over HTTP.

``POST /peerweb/v1/pointer`` offers a pointer (JSON, as in the state file); the receiver
verifies the signature, keeps it only if it is newer, and then forwards it (see
propagation.py). ``GET /peerweb/v1/pointer/<site-id>`` returns the newest pointer a node
holds, so a site stays resolvable from its holders while the publisher is offline and the
DHT item has expired. Nothing unsigned is ever accepted, so this port can face the network.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from .errors import BadAddress, ForgedPointer, PeerwebError
from .identity import public_key_from_site_id
from .pointer import Pointer
from .propagation import Endpoint

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger(__name__)

POINTER_PATH = "/peerweb/v1/pointer"
HELP_PATH = "/peerweb/v1/help"
LOAD_PATH = "/peerweb/v1/load"
MAX_BODY = 4096  # a pointer is well under 1 KB
PEER_TIMEOUT = 3.0


def make_app(node: Node) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)

    async def offer(request: web.Request) -> web.Response:
        try:
            raw = json.loads(await request.read())
            pointer = Pointer.from_json(raw["pointer"])
            port = int(raw.get("port", 0))
        except (ValueError, KeyError, TypeError, ForgedPointer) as exc:
            log.warning("refused a pointer from %s: %s", request.remote, exc)
            return web.json_response({"error": f"not a validly signed pointer: {exc}"},
                                     status=400)
        sender = (request.remote or "", port) if port else None
        accepted = node.accept_pointer(pointer, source=sender)
        return web.json_response({"accepted": accepted})

    async def current(request: web.Request) -> web.Response:
        site_id = request.match_info["site_id"]
        try:
            public_key_from_site_id(site_id)
        except BadAddress as exc:
            return web.json_response({"error": str(exc)}, status=400)
        record = node.state.sites.get(site_id)
        if record is None:
            return web.json_response({"error": "unknown site"}, status=404)
        return web.json_response({"pointer": record.pointer.to_json()})

    async def help_wanted(request: web.Request) -> web.Response:
        if not node.config.volunteer:
            return web.json_response({"error": "not a volunteer"}, status=404)
        try:
            site_id = str((await request.json())["site_id"])
            pointer = await node.mirror(site_id)
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "needs a JSON body with 'site_id'"}, status=400)
        except PeerwebError as exc:
            return web.json_response({"error": str(exc)}, status=exc.http_status)
        return web.json_response({"site_id": site_id, "version": pointer.version})

    async def load(_request: web.Request) -> web.Response:
        if not node.config.volunteer:
            return web.json_response({"error": "not a volunteer"}, status=404)
        return web.json_response(await node.load_report())

    app.router.add_post(HELP_PATH, help_wanted)
    app.router.add_get(LOAD_PATH, load)
    app.router.add_post(POINTER_PATH, offer)
    app.router.add_get(POINTER_PATH + "/{site_id}", current)
    return app


class PeerClient:
    """Pushes and fetches pointers to and from other nodes' peer ports."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def push(self, endpoint: Endpoint, pointer: Pointer, my_port: int) -> bool:
        """Offer ``pointer``; True if the peer took it as news."""
        body = {"pointer": pointer.to_json(), "port": my_port}
        try:
            async with self._client().post(_url(endpoint), json=body) as response:
                answer: dict[str, Any] = await response.json()
                return bool(answer.get("accepted"))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.debug("push to %s:%d failed: %s", *endpoint, exc)
            return False

    async def fetch(self, endpoint: Endpoint, site_id: str) -> Pointer | None:
        """The pointer a peer holds for a site (verified), or None."""
        try:
            async with self._client().get(f"{_url(endpoint)}/{site_id}") as response:
                if response.status != 200:
                    return None
                answer = await response.json()
            found = Pointer.from_json(answer["pointer"])
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            log.debug("pointer fetch from %s:%d failed: %s", *endpoint, exc)
            return None
        except ForgedPointer as exc:
            log.warning("peer %s:%d offered a forged pointer: %s", *endpoint, exc)
            return None
        return found if found.site_id == site_id else None

    async def loads(self, endpoints: list[Endpoint]) -> list[dict[str, Any]]:
        """Load reports of volunteers (those that answer), each with its ``endpoint``."""
        async def one(endpoint: Endpoint) -> dict[str, Any] | None:
            try:
                async with self._client().get(_base(endpoint) + LOAD_PATH) as response:
                    if response.status != 200:
                        return None
                    report: dict[str, Any] = await response.json()
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return None
            if not isinstance(report.get("sites"), dict) or "gateway" not in report:
                return None
            return {**report, "endpoint": list(endpoint)}

        found = await asyncio.gather(*(one(e) for e in endpoints))
        return [r for r in found if r is not None]

    async def ask_help(self, endpoint: Endpoint, site_id: str) -> int | None:
        """Ask a volunteer to mirror a site: the version it now holds if it took the job."""
        try:
            async with self._client().post(_base(endpoint) + HELP_PATH,
                                           json={"site_id": site_id}) as response:
                if response.status != 200:
                    return None
                return int((await response.json())["version"])
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError):
            return None

    async def fetch_any(self, endpoints: list[Endpoint], site_id: str) -> list[Pointer]:
        results = await asyncio.gather(*(self.fetch(e, site_id) for e in endpoints))
        return [p for p in results if p is not None]


def _base(endpoint: Endpoint) -> str:
    host, port = endpoint
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


def _url(endpoint: Endpoint) -> str:
    return _base(endpoint) + POINTER_PATH
