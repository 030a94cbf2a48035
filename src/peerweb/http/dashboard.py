"""The dashboard: the gateway's home page, at ``http://localhost:PORT/``.

It lists the sites this node publishes, pins and caches (title, version, size, peers, rates,
ratio), the disk quota and live bandwidth, and has a page per site (versions and the files
each changed, files, peers, how many copies of each piece the peers hold). Server-rendered
HTML, every value escaped; one small script polls ``/dashboard/stats.json`` for the plot.

The dashboard is its own origin: sites live on ``<site-id>.localhost`` (other origins, but the
same *site* for the browser, so SameSite rules would not stop them) or under ``/s/<id>/`` with
a CSP sandbox (an opaque origin). Its actions change the node, so each is a POST carrying a
per-node token from the form, and is refused unless the browser says it came from the
dashboard's own origin (``Origin`` and ``Sec-Fetch-Site``). Responses carry
``Cross-Origin-Resource-Policy: same-origin`` and may not be framed.

Every URL it shows is built from the Host the request came to, so a gateway listening on
127.0.0.2:8181 links to itself; ``*.localhost`` names only reach a gateway on 127.0.0.1, and
tools other than browsers do not resolve them at all, so the ``/s/<id>/`` form is shown too.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ..content.addressing import Target
from ..errors import PeerwebError
from ..node import inspect
from ..node.node import Node
from .dashboard_pages import (
    _STATIC_TYPES,
    HEADERS,
    NOTICES,
    PREFIX,
    STATIC,
    TITLE_CACHE,
    SiteDetails,
    SiteRow,
    _e,
    _page,
    cross_site_refusal,
    local_redirect,
    open_address,
    open_target,
    origin_of,
    render_home,
    render_site,
    site_links,
)

log = logging.getLogger(__name__)


Handler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]

class Dashboard:
    """Answers the gateway's own pages (every path on its plain host names but the mirror
    API) for one node."""

    def __init__(self, node: Node, token: str | None = None) -> None:
        self.node = node
        self.token = token or secrets.token_urlsafe(24)
        self._titles: dict[str, str] = {}
        self._pages: dict[str, Handler] = {"": self._home, "site": self._site,
                                           "stats.json": self._stats,
                                           "static": self._static}
        self._actions: dict[str, Handler] = {"pin": self._pin, "unpin": self._unpin,
                                             "remove": self._remove, "open": self._open}

    async def handle(self, request: web.Request, path: str) -> web.StreamResponse:
        try:
            return await self._dispatch(request, path)
        except PeerwebError as exc:
            return _problem(exc.http_status, str(exc))

    async def _dispatch(self, request: web.Request, path: str) -> web.StreamResponse:
        if path in ("", "/"):
            page, rest = "", ""
        elif path.startswith(PREFIX):
            page, _, rest = path[len(PREFIX):].partition("/")
        else:
            return _problem(404, "Nothing here. The dashboard is at /.")
        if page == "action" or page == "open":
            if request.method != "POST":
                return _problem(405, "Actions are sent with the dashboard's buttons.",
                                {"Allow": "POST"})
            action = self._actions.get(rest if page == "action" else "open")
            if action is None:
                return _problem(404, "No such action.")
            form = await request.post()
            refusal = cross_site_refusal(request.headers, self._origin(request),
                                         str(form.get("token", "")), self.token)
            if refusal is not None:
                return _problem(403, f"Refused: {refusal}. Nothing was changed.")
            return await action(request, str(form.get("site", form.get("address", ""))))
        handler = self._pages.get(page)
        if handler is None:
            return _problem(404, "Nothing here. The dashboard is at /.")
        if request.method not in ("GET", "HEAD"):
            return _problem(405, "This page is only read.", {"Allow": "GET, HEAD"})
        return await handler(request, rest)

    @staticmethod
    def _where(request: web.Request) -> tuple[str, int | None]:
        return (request.url.host or "localhost"), request.url.port

    def _origin(self, request: web.Request) -> str:
        return origin_of(*self._where(request))

    async def _rows(self, request: web.Request, status: Mapping[str, Any]) -> list[SiteRow]:
        host, port = self._where(request)
        rows = []
        for entry in status["sites"]:
            tid = entry["infohash"]
            rows.append(SiteRow(
                site_id=entry["site_id"], title=await self._title(tid),
                version=int(entry["version"]), size=inspect.size(self.node, tid),
                on_disk=int(entry.get("bytes_on_disk", 0)), peers=int(entry.get("peers", 0)),
                upload_rate=int(entry.get("upload_rate", 0)),
                download_rate=int(entry.get("download_rate", 0)),
                uploaded=int(entry.get("uploaded", 0)),
                downloaded=int(entry.get("downloaded", 0)),
                published=bool(entry["published"]), pinned=bool(entry["pinned"]),
                links=site_links(host, port, entry["site_id"]), error=entry.get("error")))
        return rows

    async def _title(self, tid: str) -> str | None:
        if tid in self._titles:
            return self._titles[tid]
        found = await inspect.title(self.node, tid)
        # None is not kept: index.html may still be on its way.
        if found is not None:
            if len(self._titles) >= TITLE_CACHE:
                self._titles.clear()
            self._titles[tid] = found
        return found

    async def _home(self, request: web.Request, _rest: str) -> web.Response:
        status = await self.node.status()
        rows = await self._rows(request, status)
        text = render_home(status, rows, self.token, self._origin(request),
                           NOTICES.get(request.query.get("done", "")))
        return web.Response(text=text, content_type="text/html", headers=HEADERS)

    async def _site(self, request: web.Request, site_id: str) -> web.Response:
        status = await self.node.status()
        rows = [r for r in await self._rows(request, status) if r.site_id == site_id]
        if not rows:
            return _problem(404, "This node does not know that site. Open it from the "
                            "dashboard's box first.")
        tid = inspect.current_tid(self.node, site_id)
        details = SiteDetails(rows[0], self.node.history(site_id)[::-1],
                              inspect.files(self.node, tid), inspect.peers(self.node, tid),
                              inspect.piece_counts(self.node, tid))
        text = render_site(details, self.token, NOTICES.get(request.query.get("done", "")))
        return web.Response(text=text, content_type="text/html", headers=HEADERS)

    async def _stats(self, _request: web.Request, _rest: str) -> web.Response:
        status = await self.node.status()
        keys = ("peers", "upload_rate", "download_rate")
        body = {"upload_rate": status["upload_rate"], "download_rate": status["download_rate"],
                "dht_nodes": status["dht_nodes"], "peers": status["peers"],
                "sites": {s["site_id"]: {k: s.get(k, 0) for k in keys}
                          for s in status["sites"]}}
        return web.Response(text=json.dumps(body), content_type="application/json",
                            headers=HEADERS)

    async def _static(self, _request: web.Request, name: str) -> web.Response:
        if name not in STATIC:
            return _problem(404, "No such file.")
        data = importlib.resources.files(__package__).joinpath("static", name).read_bytes()
        content_type = _STATIC_TYPES[name.rsplit(".", 1)[1]]
        return web.Response(body=data, content_type=content_type, charset="utf-8",
                            headers={**HEADERS, "Cache-Control": "no-cache"})

    async def _back(self, request: web.Request) -> str:
        form = await request.post()
        return local_redirect(str(form.get("next", "/")))

    async def _pin(self, request: web.Request, site_id: str) -> web.Response:
        self.node.set_pinned(site_id, True)
        return _see_other(await self._back(request), "pinned")

    async def _unpin(self, request: web.Request, site_id: str) -> web.Response:
        self.node.set_pinned(site_id, False)
        return _see_other(await self._back(request), "unpinned")

    async def _remove(self, request: web.Request, site_id: str) -> web.Response:
        removed = inspect.remove_site(self.node, site_id)
        back = await self._back(request)
        if back.startswith(f"{PREFIX}site/"):
            back = "/"
        log.info("dashboard: removed %s (%d snapshots)", site_id[:12], len(removed))
        return _see_other(back, "removed")

    async def _open(self, request: web.Request, text: str) -> web.Response:
        host, port = self._where(request)
        try:
            target = open_target(text, host, port)
            address = open_address(text)
            if address.target is Target.NAME:
                # Said here, beside the box, rather than on the gateway's error page.
                await self.node.resolve_name(address.ident)
        except PeerwebError as exc:
            return _problem(400, f"Cannot open that: {str(exc).rstrip('.')}.")
        return web.Response(status=303, headers={**HEADERS, "Location": target})


def _see_other(back: str, notice: str) -> web.Response:
    """Back to the page the action was sent from, with a notice named by its key (a link
    from elsewhere can only pick one of ``NOTICES``, never write its own text there)."""
    separator = "&" if "?" in back else "?"
    return web.Response(status=303, headers={
        **HEADERS, "Location": f"{back}{separator}done={quote(notice)}"})


def _problem(status: int, message: str, extra: Mapping[str, str] | None = None) -> web.Response:
    titles = {403: "Refused", 404: "Not found", 405: "Method not allowed", 400: "Bad request"}
    title = titles.get(status, "Error")
    body = _page(f"{title} · peerweb",
                 f"<header><p><a href='/'>← all sites</a></p><h1>{_e(title)}</h1></header>"
                 f"<p class=problem>{_e(message)}</p>")
    return web.Response(status=status, text=body, content_type="text/html",
                        headers={**HEADERS, **(extra or {})})
