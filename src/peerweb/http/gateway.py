"""The HTTP gateway: browsers visit sites at ``http://<site-id>.localhost:PORT/``.

Every byte served has passed libtorrent's piece hash check against the torrent the site's
signed pointer names. Files not yet on this node are fetched first and streamed as their
pieces arrive, so a video starts playing before it is complete.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import json
import logging
import time

from aiohttp import web

from ..content import addressing, bencode
from ..content.addressing import Address, Target
from ..content.ranges import RangeNotSatisfiable, parse_range
from ..content.sitemap import Kind, content_type
from ..errors import PeerwebError
from ..node.node import SMALL_FILE_LIMIT, Node, Snapshot
from . import consent, dashboard, fastpath, firstvisit, private_site, streaming, webcache_api
from .consent import Verdict

log = logging.getLogger(__name__)

NODE_KEY = web.AppKey("node", Node)
LOOKUPS_KEY = web.AppKey("lookups", firstvisit.Lookups)
TOKENS_KEY = web.AppKey("confirm_tokens", consent.ConfirmTokens)
# The form field of a confirmation page (see consent.py) that carries its one-time token.
CONFIRM_FIELD = "peerweb-confirm"

# Sites change under the same URL: browsers must revalidate (cheap, ETag is the merkle root).
SITE_CACHE = "no-cache"
# A snapshot by info-hash never changes.
SNAPSHOT_CACHE = "public, max-age=31536000, immutable"
# Path forms put every site on the gateway's one origin; a CSP sandbox gives each response an
# opaque origin so one site cannot read another's storage or cookies there.
PATH_FORM_CSP = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


def make_app(node: Node, local_names: set[str] | None = None) -> web.Application:
    app = web.Application(client_max_size=1024)
    app[NODE_KEY] = node
    tokens = app[TOKENS_KEY] = consent.ConfirmTokens()
    names = set(local_names or ())
    names.add(node.config.gateway[0])
    board = dashboard.Dashboard(node)
    lookups = app[LOOKUPS_KEY] = firstvisit.Lookups(node)

    async def stop_lookups(_app: web.Application) -> None:
        await lookups.close()

    app.on_cleanup.append(stop_lookups)

    async def handle(request: web.Request) -> web.StreamResponse:
        if webcache_api.claims(request):  # /_ext/ and <label>.web.localhost
            return await webcache_api.handle(request, node)
        if request.method == "OPTIONS" and node.config.volunteer:
            return web.Response(status=204, headers=PREFLIGHT)
        try:
            host = request.url.host or ""
        except ValueError:
            return _error(400, "Malformed Host header.")
        raw_path = request.raw_path.split("?", 1)[0]
        try:
            address = addressing.route(host, raw_path, names)
        except PeerwebError as exc:
            return _error(exc.http_status, str(exc))
        if address.target is Target.HOME and not address.path.startswith(MIRROR_API):
            if not consent.from_this_machine(request.remote):
                return _error(403, "The dashboard answers only the machine the node runs on.")
            return await board.handle(request, address.path)  # its own methods and errors
        if request.method == "POST" and request.content_type == FORM:
            return await _confirmed(request, tokens)
        if request.method not in ("GET", "HEAD"):
            return _error(405, "Only GET and HEAD are served here.", {"Allow": "GET, HEAD"})
        try:
            return await _serve(request, node, address, lookups, tokens)
        except PeerwebError as exc:
            return _error(exc.http_status, str(exc))

    app.router.add_route("*", "/{tail:.*}", handle)
    if node.config.volunteer:
        app.on_response_prepare.append(_allow_any_origin)
    app[fastpath.STORE_KEY] = fastpath.ReplayStore()
    app.on_response_prepare.append(fastpath.record)  # last: it keeps the final headers
    return app


async def _allow_any_origin(_request: web.Request, response: web.StreamResponse) -> None:
    # A volunteer mirror serves pages of other origins' sites: let their scripts read it
    # (the verifying worker reads records, torrents and byte ranges). Never the dashboard.
    if response.headers.get("Cross-Origin-Resource-Policy") == "same-origin":
        return
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Expose-Headers"] = EXPOSED


EXPOSED = "Content-Range, Content-Length, ETag, X-Peerweb-Snapshot"
PREFLIGHT = {"Access-Control-Allow-Methods": "GET, HEAD",
             "Access-Control-Allow-Headers": "Range, If-None-Match",
             "Access-Control-Max-Age": "86400"}
MIRROR_API = "/peerweb/v1/"


async def _serve(request: web.Request, node: Node, address: Address,
                 lookups: firstvisit.Lookups,
                 tokens: consent.ConfirmTokens) -> web.StreamResponse:
    if address.target is Target.UNKNOWN_HOST:
        return _error(421, "This gateway does not serve that host name. Open "
                      "http://<site-id>.localhost:PORT/ or http://localhost:PORT/s/<site-id>/.")
    if address.target is Target.HOME:
        return await _mirror_api(node, address.path[len(MIRROR_API):])
    name = address.ident if address.target is Target.NAME else None
    if name is not None:  # UnknownName: a 404 page that says what to do
        address = await _resolved(node, address)
    if address.path == "":
        raise web.HTTPMovedPermanently(address.prefix + "/")
    host = request.headers.get("Host", "")
    held = _holds(node, address)
    if not held and not consent.from_this_machine(request.remote):
        return _error(403, ELSEWHERE.format(what=_what(address)))
    verdict = consent.decide(request.headers, host, held)
    if verdict is Verdict.REFUSE:
        return _error(403, NOT_FETCHED.format(what=_what(address)))
    if verdict is Verdict.CONFIRM:
        return _confirm_page(address, tokens.issue(host, request.raw_path, time.monotonic()))
    if address.target is Target.SITE:
        waiting = await firstvisit.answer(request, lookups, address.ident)
        if waiting is not None:  # a browser opening a site not here yet: say what happens
            return waiting
        snapshot = await node.open_site(address.ident)
        cache = SITE_CACHE
    else:
        snapshot = await node.open_snapshot(address.ident, trackers=address.trackers)
        cache = SNAPSHOT_CACHE
    extra = {"Content-Security-Policy": PATH_FORM_CSP} if address.prefix else {}
    if node.private.is_private(snapshot):  # encrypted: served decrypted, or refused
        site = address.ident if address.target is Target.SITE else None
        return await private_site.serve(request, node, snapshot, site, address.path,
                                        {**SECURITY_HEADERS, **extra})
    found = snapshot.sitemap.lookup(address.path)
    if found.kind is Kind.BAD_PATH:
        return _error(400, "That path is not valid inside a site.")
    if found.kind is Kind.REDIRECT:
        assert found.location is not None
        raise web.HTTPMovedPermanently(found.location)
    if found.kind is Kind.NOT_FOUND:
        if found.file_index is None:
            return _error(404, f"No file at {address.path} in this site.")
        return await _file(request, node, snapshot, found.file_index, cache, extra, status=404)
    assert found.file_index is not None
    site_id = address.ident if address.target is Target.SITE else None
    return await _file(request, node, snapshot, found.file_index, cache, extra, site_id=site_id,
                       name=name)


async def _resolved(node: Node, address: Address) -> Address:
    """The site or snapshot a name resolves to, at the same path and prefix (the name's
    host or ``/n/<name>`` stays the browser's origin and base)."""
    found = await node.resolve_name(address.ident)
    return dataclasses.replace(address, target=found.target, ident=found.ident,
                               trackers=found.trackers)


FORM = "application/x-www-form-urlencoded"
NOT_FETCHED = (
    "This node does not hold {what} yet, and only you can make it fetch it: other pages and "
    "sites cannot. To open it, type its address yourself or follow a link to it and confirm."
)
ELSEWHERE = ("This gateway serves other machines only what it already holds, and it does not "
             "hold {what}.")
CONFIRM_HEADERS = {
    **SECURITY_HEADERS, "Cache-Control": "no-store", "X-Frame-Options": "DENY",
    # Never framed (so no page can trick a click on it), no script, posts only to itself.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'",
}


def _holds(node: Node, address: Address) -> bool:
    """Whether serving the address fetches nothing new: the snapshot, or some version of the
    site, is on this node already."""
    if address.target is Target.SNAPSHOT:
        return node.holds(address.ident)
    record = node.state.sites.get(address.ident)
    return record is not None and any(node.holds(entry.infohash) for entry in record.history)


def _what(address: Address) -> str:
    if address.target is Target.SITE:
        return f"site {address.ident}"
    return f"snapshot {address.ident}"


def _confirm_page(address: Address, token: str) -> web.Response:
    """Asked of a link from another site to content not held: fetching it joins its swarm
    and seeds it, which only the user may decide. The form posts to this very URL."""
    what = html.escape(_what(address))
    body = (
        "<!doctype html><meta charset=utf-8><title>Open this site?</title>"
        "<body style='font:16px system-ui;max-width:40em;margin:3em auto'>"
        f"<h1>Open this site?</h1><p>A link from another page leads to {what}, which this "
        "node does not hold yet.</p><p>Opening it makes your node download it from other "
        "peers and share it with them while it keeps it: your address joins its swarm.</p>"
        f"<form method=post><input type=hidden name={CONFIRM_FIELD} "
        f"value='{html.escape(token)}'><button type=submit>Open it</button></form>"
        "<p><small>peerweb gateway</small></p>"
    )
    return web.Response(text=body, content_type="text/html", headers=CONFIRM_HEADERS)


async def _confirmed(request: web.Request, tokens: consent.ConfirmTokens) -> web.Response:
    """The confirmation form's POST: a valid token sends the browser on to the same URL,
    now a same-origin navigation that may fetch (RFC 9110 section 15.4.4, 303 See Other)."""
    host = request.headers.get("Host", "")
    origin = request.headers.get("Origin")
    form = await request.post()
    token = form.get(CONFIRM_FIELD)
    if (not isinstance(token, str) or (origin is not None
                                       and not consent.same_origin_as(origin, host))
            or not tokens.redeem(token, host, request.raw_path, time.monotonic())):
        return _error(403, "This confirmation is not valid (it was used already, it expired, "
                           "or it came from another page). Open the link again to be asked "
                           "again.")
    return web.Response(status=303, headers={"Location": request.raw_path,
                                             "Cache-Control": "no-store", **SECURITY_HEADERS})


async def _mirror_api(node: Node, path: str) -> web.Response:
    """What a visitor's verifying worker needs besides the files: a site's signed version
    record, the .torrent (with piece layers) that record names, both at once for a worker's
    first request, and a snapshot's small files in one answer (Node.bundle)."""
    kind, _, ident = path.partition("/")
    if kind == "record":
        pointer = node.signed_pointer(ident)
        return web.json_response(pointer.to_json(), headers={"Cache-Control": "no-cache"})
    if kind == "current":
        return web.Response(body=_current(node, ident),
                            content_type="application/octet-stream",
                            headers={"Cache-Control": "no-cache"})
    if kind == "torrent":
        torrent = await node.torrent_bytes(ident)
        return web.Response(body=torrent, content_type="application/x-bittorrent",
                            headers={"Cache-Control": SNAPSHOT_CACHE})
    if kind == "bundle":
        if len(ident) in (40, 64):
            tid, cache = ident, SNAPSHOT_CACHE
        else:  # a site id: the snapshot its newest record names, which may change
            tid, cache = node.signed_pointer(ident).infohash.hex(), "no-cache"
        return web.Response(body=await node.bundle(tid),
                            content_type="application/octet-stream",
                            headers={"Cache-Control": cache, "X-Peerweb-Snapshot": tid})
    return _error(404, "Unknown mirror API path.")


def _current(node: Node, site_id: str) -> bytes:
    """A bencoded dict: ``record`` (the signed record as JSON) and, once made, the
    ``torrent`` it names. A worker's first request, so that it need not wait for the record
    before asking for the torrent; it checks both as if it had asked for each alone. (The
    small files it asks for at the same time: a bundle by site id.)"""
    pointer = node.signed_pointer(site_id)
    parts: dict[bytes, bencode.Value] = {b"record": json.dumps(pointer.to_json()).encode()}
    torrent = node.kept_torrent(pointer.infohash.hex())
    if torrent is not None:
        parts[b"torrent"] = torrent
    return bencode.encode(parts)


async def _file(request: web.Request, node: Node, snapshot: Snapshot, index: int, cache: str,
                extra: dict[str, str], status: int = 200,
                site_id: str | None = None, name: str | None = None) -> web.StreamResponse:
    size = snapshot.sizes[index]
    path = snapshot.sitemap.path_of(index)
    etag = f'"{snapshot.etags[index]}"'
    headers = {
        "Content-Type": content_type(path),
        "ETag": etag,
        "Cache-Control": cache,
        "Accept-Ranges": "bytes",
        "X-Peerweb-Snapshot": snapshot.tid,
        **SECURITY_HEADERS,
        **extra,
    }
    if status == 200 and etag in _etags(request.headers.get("If-None-Match", "")):
        return web.Response(status=304, headers={k: v for k, v in headers.items()
                                                 if k != "Content-Type"})
    byte_range = None
    if status == 200:
        if_range = request.headers.get("If-Range")
        if if_range is None or if_range.strip() == etag:
            try:
                byte_range = parse_range(request.headers.get("Range"), size)
            except RangeNotSatisfiable:
                return _error(416, "That byte range lies outside the file.",
                              {"Content-Range": f"bytes */{size}", **headers,
                               "Content-Type": "text/html; charset=utf-8"})
    start, end = (byte_range.start, byte_range.end) if byte_range else (0, size)
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = byte_range.content_range(size)
    if request.method == "HEAD":
        headers["Content-Length"] = str(end - start)
        return web.Response(status=status, headers=headers)
    if size <= SMALL_FILE_LIMIT:
        data = await node.read_file(snapshot, index)
        if status == 200 and byte_range is None and "If-None-Match" not in request.headers:
            request[fastpath.REPLAYABLE] = functools.partial(_still_current, node, site_id,
                                                             snapshot.tid, name)
        return web.Response(status=status, body=data[start:end], headers=headers)
    chunks = node.stream(snapshot, index, start, end).__aiter__()
    # Wait for the first verified bytes before sending headers, so a swarm that cannot
    # deliver gets a 504 page instead of a truncated 200.
    first = await chunks.__anext__() if end > start else b""
    return await streaming.send_chunks(request, status, headers, end - start, first, chunks,
                                       path)


def _still_current(node: Node, site_id: str | None, tid: str, name: str | None) -> bool:
    """Whether a replayed answer still stands: the visit is served from the same snapshot,
    and a name still resolves to the same site within its records' TTLs (no lookup here)."""
    if name is not None:
        found = node.names.resolve_nowait(name)
        if found is None or found.ident != (site_id or tid):
            return False
    return node.serving(site_id, tid)


def _etags(header: str) -> set[str]:
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    titles = {400: "Bad request", 403: "Not fetched", 404: "Not found", 405: "Method not allowed",
              409: "Conflict", 416: "Range not satisfiable", 421: "Unknown host",
              502: "Bad answer from the swarm", 503: "Unavailable", 504: "The swarm timed out",
              507: "Disk full"}
    title = titles.get(status, "Error")
    body = (
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        "<body style='font:16px system-ui;max-width:40em;margin:3em auto'>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
        f"<p><small>peerweb gateway · HTTP {status}</small></p>"
    )
    all_headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
                   **SECURITY_HEADERS, **(headers or {})}
    return web.Response(status=status, text=body, headers=all_headers) if status != 304 else (
        web.Response(status=status))
