"""The gateway's face of the web cache (issue 18; the API is in /work/WEBCACHE_API.md and
docs/webcache.md): the extension API under ``/_ext/`` and the view hosts
``<label>.web.localhost`` that show rescued pages. Both answer this machine only.

The decisions are in ``peerweb.webcache`` (access, urls, page); this module translates.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ..errors import BadAddress
from ..node.node import Node
from ..webcache import access, page, urls
from ..webcache.access import Caller
from ..webcache.peers import read_bounded
from . import consent

# An /_ext/ request body: a URL and a little JSON around it.
MAX_BODY = 8 * 1024
# How long /_ext/wait waits for a queued fetch.
WAIT_LIMIT = 10.0
VIEW_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff"}

Handler = Callable[[web.Request, Node], Awaitable[web.Response]]


def _host(request: web.Request) -> str:
    try:
        return request.url.host or ""
    except ValueError:  # a malformed Host header: the gateway answers it
        return ""


def claims(request: web.Request) -> bool:
    """Whether a gateway request is the web cache's (``/_ext/``, a view host)."""
    return (request.raw_path.startswith(access.API_PREFIX)
            or urls.view_host_label(_host(request)) is not None)


async def handle(request: web.Request, node: Node) -> web.StreamResponse:
    host = _host(request)
    response: web.StreamResponse
    if not consent.from_this_machine(request.remote):
        response = _json(403, {"error": "the web cache answers only the machine the node "
                                        "runs on"})
    elif urls.view_host_label(host) is not None:
        response = await _view(request, node, host)
    else:
        response = await _api(request, node)
    # Never shared with other origins' pages, also on a volunteer's gateway (which opens
    # everything else to any origin).
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


# -- the extension API ---------------------------------------------------------------------

async def _api(request: web.Request, node: Node) -> web.Response:
    origin = request.headers.get("Origin")
    cors = access.cors_headers(origin)
    if access.caller(origin) is Caller.WEB_PAGE:
        return _json(403, {"error": "web pages may not use the web cache API"})
    if not access.api_host_ok(request.headers.get("Host", ""), node.gateway_port):
        return _json(403, {"error": "the web cache API answers on localhost:PORT or "
                                    "127.0.0.1:PORT only"}, cors)
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=cors)
    name = request.path[len(access.API_PREFIX):]
    route = ROUTES.get((request.method, name))
    if route is None:
        return _json(404, {"error": f"no {request.method} /_ext/{name} here"}, cors)
    if name != "pair":
        token = access.bearer(request.headers.get("Authorization"))
        if token is None or not node.web.tokens.valid(token):
            return _json(401, {"error": "pair first: run `peerweb extension pair` and give "
                                        "the code to the extension"}, cors)
    response = await route(request, node)
    response.headers.update(cors)
    return response


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await read_bounded(request.content, MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(raw))
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise BadAddress("send a JSON object")
    return parsed


async def _pair(request: web.Request, node: Node) -> web.Response:
    try:
        code = (await _body(request)).get("code")
    except BadAddress:
        code = None
    if not isinstance(code, str) or not node.web.pairing.redeem(code, time.time()):
        return _json(403, {"error": "that pairing code is wrong, used or expired: run "
                                    "`peerweb extension pair` for a new one"})
    return _json(200, {"token": node.web.tokens.issue()})


async def _status(_request: web.Request, node: Node) -> web.Response:
    host, port = node.peer_endpoint
    return _json(200, {"ok": True, "web_cache": node.web.status(), "node": f"{host}:{port}"})


async def _url_field(request: web.Request) -> str | None:
    try:
        url = (await _body(request)).get("url")
    except BadAddress:
        return None
    return url if isinstance(url, str) else None


async def _seen(request: web.Request, node: Node) -> web.Response:
    url = await _url_field(request)
    if url is None:
        return _json(400, {"error": 'send {"url": "https://..."}'})
    reason = node.web.seen(url)
    if reason is not None:
        return _json(200, {"cached": False, "reason": reason})
    return _json(202, {"queued": True})


def _query_url(request: web.Request) -> str | None:
    url = request.query.get("url")
    return url if url else None


async def _lookup(request: web.Request, node: Node) -> web.Response:
    url = _query_url(request)
    if url is None:
        return _json(400, {"error": "ask /_ext/lookup?url=<the page's URL>"})
    try:
        found = await node.web.lookup(url)
        normal = urls.normalise(url)
    except BadAddress as exc:
        return _json(400, {"error": str(exc)})
    if found.signed_site is not None:
        parts = urlsplit(normal)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        view = node.gateway_url(found.signed_site).rstrip("/") + target
        return _json(200, {"found": True, "signed": True, "holders": 0, "agreeing": 0,
                           "fetched_at": None, "view": view})
    answer: dict[str, Any] = {
        "found": found.found, "signed": False, "holders": found.holders,
        "agreeing": found.agreeing, "fetched_at": found.fetched_at,
        "view": urls.view_url(normal, node.gateway_port) if found.found else None}
    if not found.found:
        answer["reason"] = found.reason
    return _json(200, answer)


async def _wait(request: web.Request, node: Node) -> web.Response:
    url = _query_url(request)
    if url is None:
        return _json(400, {"error": "ask /_ext/wait?url=<the page's URL>"})
    try:
        cached, reason = await node.web.wait_seen(url, WAIT_LIMIT)
    except BadAddress as exc:
        return _json(400, {"error": str(exc)})
    return _json(200, {"cached": cached, "reason": reason})


ROUTES: dict[tuple[str, str], Handler] = {
    ("POST", "pair"): _pair, ("GET", "status"): _status, ("POST", "seen"): _seen,
    ("GET", "lookup"): _lookup, ("GET", "wait"): _wait,
}


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None
          ) -> web.Response:
    return web.json_response(body, status=status, headers=headers or {})


# -- the view hosts ------------------------------------------------------------------------

async def _view(request: web.Request, node: Node, host: str) -> web.StreamResponse:
    label = urls.view_host_label(host)
    assert label is not None
    try:
        origin = urls.origin_from_label(label)
    except BadAddress:
        return _page(404, "Not a web cache address", "This address names no site.")
    if request.method not in ("GET", "HEAD"):
        return _page(405, "Read only", "A copy from peers can only be read.")
    try:
        url = urls.normalise(urls.short_origin(origin) + request.raw_path)
    except BadAddress:
        return _page(400, "Bad address", "This address cannot name a page.")
    found = node.web.resource_for_view(url)
    is_page = False
    if found is None:
        found = await node.web.page_for_view(url)
        is_page = True
        navigation = request.headers.get("Sec-Fetch-Dest", "document") in ("document", "")
        if found is None and navigation:
            await node.web.lookup(url)  # a link inside a rescued page: ask the peers
            found = await node.web.page_for_view(url)
    if found is None:
        return _page(404, "No copy of this page",
                     "No peer holds a copy of this page that enough of them agree on.",
                     url)
    entry, resource, body = found
    agreeing = node.web.agreeing(entry)
    headers = {**VIEW_HEADERS, "Content-Type": resource.content_type,
               "Peerweb-Copy": f"agreeing={agreeing}; fetched={entry.fetched_at}"}
    for name, value in resource.headers:
        if name != "content-type":
            headers[name.title()] = value
    if is_page and page.is_html(resource.content_type):
        view_origin = f"http://{label}{urls.VIEW_SUFFIX}:{node.gateway_port}"
        body = page.for_view(body, url, origin, view_origin, agreeing, entry.fetched_at)
    return web.Response(body=b"" if request.method == "HEAD" else body, headers=headers)


def _page(status: int, title: str, text: str, original: str | None = None) -> web.Response:
    link = (f'<p><a id="{page.TRY_ORIGINAL_ID}" href="{html.escape(original, quote=True)}">'
            "Try the original again</a></p>") if original else ""
    body = (f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
            "<body style='font:16px system-ui;max-width:40em;margin:3em auto'>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{link}"
            "<p><small>peerweb web cache</small></p>")
    return web.Response(status=status, text=body, content_type="text/html",
                        headers=VIEW_HEADERS)

