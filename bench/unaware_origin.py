"""An origin that knows nothing of peerweb, for the web-cache rescue bench: a folder served
over plain HTTP with shared-cache headers, and a request-rate limit past which it answers
509 Bandwidth Limit Exceeded, as a small hosting plan's limiter does.

The limit counts every request the origin receives (served or refused) in the last second:
while more than ``limit`` arrived, the next is refused. A crowd that keeps knocking keeps the
origin down, which is the failure the extension is for. Every request is logged with its
time and status so a bench can count the origin's load before and after a rescue began.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field

from aiohttp import web

TYPES = {"html": "text/html", "css": "text/css", "js": "text/javascript",
         "png": "image/png", "txt": "text/plain"}
# A shared cache may keep these responses (RFC 9111), as it may those of most static sites.
HEADERS = {"Cache-Control": "public, max-age=600"}


@dataclass
class Request:
    at: float
    """time.monotonic() when it arrived."""
    path: str
    status: int


@dataclass
class LimitedOrigin:
    """``contents``: path (no leading slash) -> body. ``limit``: requests per second before
    509 (None: no limit, as before the crowd)."""

    contents: dict[str, bytes]
    limit: int | None = None
    log: list[Request] = field(default_factory=list)
    _window: collections.deque[float] = field(default_factory=collections.deque)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{path:.*}", self.serve)
        return app

    def over_limit(self, now: float) -> bool:
        """Whether a request arriving ``now`` is past the limit; counts it either way."""
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        over = self.limit is not None and len(self._window) >= self.limit
        self._window.append(now)
        return over

    async def serve(self, request: web.Request) -> web.StreamResponse:
        now = time.monotonic()
        path = request.match_info["path"] or "index.html"
        if self.over_limit(now):
            self.log.append(Request(now, path, 509))
            return web.Response(status=509, text="509 Bandwidth Limit Exceeded",
                                headers={"Retry-After": "60"})
        body = self.contents.get(path)
        if body is None:
            self.log.append(Request(now, path, 404))
            return web.Response(status=404, text="not found")
        self.log.append(Request(now, path, 200))
        kind = TYPES.get(path.rsplit(".", 1)[-1], "application/octet-stream")
        return web.Response(body=body, content_type=kind, headers=HEADERS)
