"""The peer port, server half: nodes that hold a site hand each other its signed pointer over HTTP.

``POST /peerweb/v1/pointer`` offers a pointer (JSON, as in the state file); the receiver
verifies the signature, keeps it only if it is newer, and then forwards it (see
propagation.py). ``GET /peerweb/v1/pointer/<site-id>`` returns the newest pointer a node
holds, so a site stays resolvable from its holders while the publisher is offline and the
DHT item has expired. Nothing unsigned is ever accepted, so this port can face the network;
pushes are rate-limited per source address (429) and kept only for sites the node knows
(``policy.admission``), and a volunteer bounds the help it gives (``Node.mirror``).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from ..content.identity import public_key_from_site_id
from ..content.pointer import Pointer
from ..errors import BadAddress, ForgedPointer, PeerwebError
from .peer_client import HELP_PATH, LOAD_PATH, POINTER_PATH

if TYPE_CHECKING:
    from ..node.node import Node

log = logging.getLogger(__name__)

MAX_BODY = 4096  # a pointer is well under 1 KB


def make_app(node: Node) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)

    async def offer(request: web.Request) -> web.Response:
        # Before reading or verifying anything: a flood costs a dictionary lookup each.
        wait = node.admit_push(request.remote or "")
        if wait:
            return web.json_response({"error": "too many pushes from this address"},
                                     status=429,
                                     headers={"Retry-After": str(max(1, round(wait)))})
        try:
            raw = json.loads(await request.read())
            pointer = Pointer.from_json(raw["pointer"])
            port = int(raw.get("port", 0))
        except (ValueError, KeyError, TypeError, ForgedPointer) as exc:
            log.warning("refused a pointer from %s: %s", request.remote, exc)
            return web.json_response({"error": f"not a validly signed pointer: {exc}"},
                                     status=400)
        sender = (request.remote or "", port) if port else None
        accepted = node.accept_pointer(pointer, source=sender, unsolicited=True)
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
            pointer = await node.mirror(site_id, requester=request.remote or "")
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
