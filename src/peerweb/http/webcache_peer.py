"""The web cache on the peer port: holders hand their own copies' manifests and bodies to
other nodes (the client half and the protocol: ``peerweb.webcache.peers``)."""

from __future__ import annotations

import re

from aiohttp import web

from ..node.node import Node
from ..webcache.peers import BODY_PATH, COPY_PATH

_SHA256 = re.compile(r"[0-9a-f]{64}")


def add_routes(app: web.Application, node: Node) -> None:
    async def copy(request: web.Request) -> web.Response:
        answer = node.web.copy_for_peer(request.query.get("url", ""))
        if answer is None:
            return web.json_response({"error": "no copy of that page here"}, status=404)
        return web.json_response(answer)

    async def body(request: web.Request) -> web.Response:
        sha = request.match_info["sha256"]
        data = node.web.body_for_peer(sha) if _SHA256.fullmatch(sha) else None
        if data is None:
            return web.json_response({"error": "no such body here"}, status=404)
        if not await node.web.may_upload(len(data)):
            return web.json_response({"error": "this node's upload is at capacity; ask "
                                               "another holder"}, status=503)
        return web.Response(body=data, content_type="application/octet-stream")

    app.router.add_get(COPY_PATH, copy)
    app.router.add_get(BODY_PATH + "{sha256}", body)
