"""The redirector: ``GET /<site-id>/<path>`` answers with a redirect to a healthy mirror.

For a site without any integration: point its traffic (or a DNS name) here. The node behind
it finds volunteer mirrors in the DHT, asks the least loaded to mirror the signed site if none
has its current version, and the answer is cached for a few seconds.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web

from ..content.identity import public_key_from_site_id
from ..errors import PeerwebError

if TYPE_CHECKING:
    from ..node.node import Node

CACHE_SECONDS = 5.0
RETRY_AFTER = 5


def make_app(node: Node) -> web.Application:
    app = web.Application()
    cache: dict[str, tuple[float, list[str]]] = {}

    async def mirrors(site_id: str) -> list[str]:
        hit = cache.get(site_id)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        found = [str(m["mirror"]) for m in await node.ask_for_help(site_id)]
        cache[site_id] = (time.monotonic(), found)
        return found

    async def redirect(request: web.Request) -> web.Response:
        site_id, _, rest = request.raw_path.lstrip("/").partition("/")
        try:
            public_key_from_site_id(site_id)
            found = await mirrors(site_id)
        except PeerwebError as exc:
            return web.Response(status=exc.http_status, text=f"{exc}\n")
        if not found:
            return web.Response(status=503, headers={"Retry-After": str(RETRY_AFTER)},
                                text="no mirror holds this site yet; volunteers were asked to "
                                     "help, try again in a few seconds\n")
        # Least loaded first; spread over the two best so one mirror does not take it all.
        choice = found[int(time.monotonic() * 1000) % min(2, len(found))]
        return web.Response(status=302, headers={"Location": f"{choice}/{rest}",
                                                 "Cache-Control": "no-store"})

    app.router.add_get("/{tail:.*}", redirect)
    return app
