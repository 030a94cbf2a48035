"""Origin mode: a reverse proxy in front of an ordinary web server that hands visitors to
the swarm when the server is overloaded, and takes them back when the load falls.

While the load is normal every request passes through untouched. Under overload (see
handoff.py for the measurement and the hysteresis), GET and HEAD requests for files the site
has published are redirected to a mirror that serves the signed version through a peerweb
gateway, or to the visitor's own gateway when the request names one; everything else still
goes upstream, and once even that exceeds the capacity it gets 503 with Retry-After rather
than a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from ..content.folder import scan
from ..content.sitemap import Kind, SiteMap
from . import loader
from .handoff import GATEWAY_HEADER, RETRY_AFTER, Action, Decision, Handoff, LoadPolicy, Mode
from .watch import fingerprint, watch_folder

log = logging.getLogger(__name__)

STATUS_PATH = "/.peerweb/status"
SEED_PREFIX = "/.peerweb/seed/"
"""Publish with ``--web-seed http://ORIGIN/.peerweb/seed/`` to make the origin a web seed."""
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailer", "transfer-encoding", "upgrade", "host", "content-length"}
CHUNK = 64 * 1024


@dataclass(frozen=True)
class OriginConfig:
    upstream: str
    """Base URL of the web server behind us, e.g. http://127.0.0.1:8000."""
    site_id: str | None
    mirrors: Sequence[str]
    """Base URLs that serve the site, e.g. http://mirror:8080/s/<site-id>."""
    banner: str | None = None
    """HTML inserted before </body> of pages the origin still serves while handing off."""
    verified_loader: bool = True
    """Hand page requests a loader that installs the verifying Service Worker (loader.py)
    instead of a plain redirect to a mirror."""
    version: int | None = None
    """The site version the origin knows is current; the worker refuses older records."""
    worker_timings: loader.WorkerTimings = loader.WorkerTimings()
    """How long visitors' workers wait for what (sent in worker.json), among them how long
    after the last hand-off they unregister themselves."""


FindMirrors = Callable[[], Awaitable[list[str]]]
# A static request held back while a hand-off is pending waits at most this long, asking
# again at each step.
HOLD_MAX = 3.0
HOLD_STEP = 0.1
# Under strain, ask for volunteer mirrors this often.
MIRROR_REFRESH = 1.0


class Origin:
    def __init__(self, config: OriginConfig, sitemap: SiteMap, policy: LoadPolicy,
                 find_mirrors: FindMirrors | None = None,
                 watch: tuple[Path, Callable[[], Awaitable[None]]] | None = None) -> None:
        """``watch`` is (site folder, publish): publish the site again when its files change
        (the hand-off then covers the new files too)."""
        self.config = config
        self.sitemap = sitemap
        self.policy = policy
        self.handoff = Handoff(policy, static_files(sitemap), config.site_id,
                               list(config.mirrors))
        self._find_mirrors = find_mirrors
        self._watch = watch
        self._watched = fingerprint(watch[0]) if watch is not None else None
        self._client: aiohttp.ClientSession | None = None
        self._ticker: asyncio.Future[None] | None = None

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(STATUS_PATH, self._status)
        app.router.add_get(loader.CONFIG_PATH, self._worker_config)
        for path in loader.ASSET_PATHS:
            app.router.add_get(path, _worker_asset)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        app.cleanup_ctx.append(self._mirror_job)
        app.on_cleanup.append(self._close)
        return app

    async def _mirror_job(self, _app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._refresh_mirrors())]
        if self._watch is not None:
            tasks.append(loop.create_task(watch_folder(self._watch[0], self._republish,
                                                       self._watched)))
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _republish(self) -> None:
        assert self._watch is not None
        folder, publish = self._watch
        await publish()
        self.handoff.is_static = static_files(sitemap_of(folder))
        log.info("the site changed: published it again")

    async def _refresh_mirrors(self) -> None:
        """Under strain, keep asking volunteers to mirror the site (the node finds them in the
        DHT), so that they are ready when the hand-off starts; the ones that hold the current
        version join the mirror list."""
        if self._find_mirrors is None:
            return
        asked = -math.inf
        while True:
            now = time.monotonic()
            self.policy.update(now)
            # Strain is noticed within a tick; the volunteers are asked at most every refresh.
            if self.policy.strained(now) and now - asked >= MIRROR_REFRESH:
                asked = now
                try:
                    found = await self._find_mirrors()
                except Exception as exc:  # the node may be down: keep the mirrors we have
                    log.warning("could not ask for volunteer mirrors: %s", exc)
                else:
                    self.handoff.mirrors = list(dict.fromkeys([*self.config.mirrors, *found]))
            await asyncio.sleep(HOLD_STEP)

    async def _close(self, _app: web.Application) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _status(self, request: web.Request) -> web.Response:
        if request.remote not in ("127.0.0.1", "::1"):
            raise web.HTTPForbidden(text="status is for the machine this origin runs on\n")
        return web.json_response({**self.policy.snapshot(time.monotonic()),
                                  "mirrors": self.handoff.mirrors,
                                  "handed_off_to": self.handoff.sent_to})

    async def _worker_config(self, _request: web.Request) -> web.Response:
        if not self.config.site_id:
            raise web.HTTPNotFound(text="this origin has no site id\n")
        return web.json_response(self._worker_config_now(self.config.site_id),
                                 headers={"Cache-Control": "no-store"})

    def _worker_config_now(self, site_id: str) -> dict[str, object]:
        handing_off = self.policy.update(time.monotonic()) is Mode.HANDOFF
        return loader.worker_config(site_id, handing_off, self.handoff.mirrors,
                                    self.config.version, self.config.worker_timings)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.raw_path.split("?", 1)[0]
        if path.startswith(SEED_PREFIX):
            return await self._seed(request, path)
        decision = await self._decide(request, path)
        if (decision.action is Action.REDIRECT and self.config.verified_loader
                and self.config.site_id and loader.wants_page(request.headers)
                and not request.headers.get(GATEWAY_HEADER)):
            # A first-party page that makes the browser check what mirrors send.
            page = loader.loader_page(self._worker_config_now(self.config.site_id),
                                      decision.location)
            return web.Response(body=page, headers=loader.page_headers())
        if decision.action is Action.REDIRECT:
            return web.Response(status=302, headers={"Location": decision.location,
                                                     "Cache-Control": "no-store"})
        if decision.action is Action.BUSY:
            return web.Response(status=503, text="busy: try again in a few seconds\n",
                                headers={"Retry-After": str(RETRY_AFTER)})
        return await self._proxy(request, banner=self.policy.mode is Mode.HANDOFF)

    async def _decide(self, request: web.Request, path: str) -> Decision:
        """The hand-off decision; a static request that arrives while a hand-off is about to
        start (or has no mirror yet) waits for it a little, counted as load, rather than
        queueing upstream behind the crowd that caused it."""
        gateway = request.headers.get(GATEWAY_HEADER, "")
        worker = loader.WORKER_HEADER in request.headers
        decision = self.handoff.decide(request.method, path, gateway, time.monotonic(),
                                       answer_here=worker, can_hold=True)
        if decision.action is not Action.HOLD:
            return decision
        self.policy.held += 1
        try:
            deadline = time.monotonic() + HOLD_MAX
            while time.monotonic() < deadline:
                await self._tick()
                if self.policy.mode is Mode.HANDOFF:
                    if self.handoff.mirrors:
                        break
                elif not self.policy.overloaded(time.monotonic()):
                    break
        finally:
            self.policy.held -= 1
        return self.handoff.decide(request.method, path, gateway, time.monotonic(),
                                   answer_here=worker)

    async def _tick(self) -> None:
        """One shared wake-up for every held request, which also moves the policy on."""
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.ensure_future(self._tick_once())
        await asyncio.shield(self._ticker)

    async def _tick_once(self) -> None:
        await asyncio.sleep(HOLD_STEP)
        self.policy.update(time.monotonic())

    async def _seed(self, request: web.Request, path: str) -> web.StreamResponse:
        """BEP 19 web seed: ``SEED_PREFIX<torrent name>/<path>`` is the site's ``/<path>``
        upstream, so the swarm can always fill from the origin (never handed off)."""
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, headers={"Allow": "GET, HEAD"})
        _name, _, inner = path[len(SEED_PREFIX):].partition("/")
        if not inner or not self.handoff.is_static("/" + inner):
            return web.Response(status=404, text="not a file of the published site\n")
        now = time.monotonic()
        if self.policy.update(now) is Mode.HANDOFF and self.policy.over_capacity(now):
            return web.Response(status=503, headers={"Retry-After": str(RETRY_AFTER)})
        return await self._proxy(request, banner=False, path="/" + inner)

    async def _proxy(self, request: web.Request, banner: bool,
                     path: str | None = None) -> web.StreamResponse:
        if self._client is None:
            self._client = aiohttp.ClientSession(auto_decompress=False,
                                                 timeout=aiohttp.ClientTimeout(total=60))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        url = self.config.upstream.rstrip("/") + (path or request.raw_path)
        started = time.monotonic()
        self.policy.started()
        failed = False
        try:
            body = await request.read() if request.can_read_body else None
            async with self._client.request(request.method, url, headers=headers, data=body,
                                            allow_redirects=False) as upstream:
                out_headers = {k: v for k, v in upstream.headers.items()
                               if k.lower() not in _HOP_BY_HOP}
                html = upstream.headers.get("Content-Type", "").startswith("text/html")
                if banner and self.config.banner and html and request.method == "GET":
                    page = await upstream.read()
                    page = _with_banner(page, self.config.banner)
                    self.policy.sent(len(page), time.monotonic())
                    return web.Response(status=upstream.status, body=page, headers=out_headers)
                response = web.StreamResponse(status=upstream.status, headers=out_headers)
                if upstream.content_length is not None:
                    response.content_length = upstream.content_length
                await response.prepare(request)
                async for chunk in upstream.content.iter_chunked(CHUNK):
                    await response.write(chunk)
                    self.policy.sent(len(chunk), time.monotonic())
                await response.write_eof()
                return response
        except (aiohttp.ClientError, TimeoutError):
            failed = True
            return web.Response(status=502, text="the upstream server did not answer\n")
        finally:
            self.policy.finished(time.monotonic() - started, failed, time.monotonic())


async def _worker_asset(request: web.Request) -> web.Response:
    found = loader.asset(request.path)
    if found is None:
        raise web.HTTPNotFound()
    body, etag = found
    headers = loader.asset_headers(request.path, etag)
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers=headers)


def static_files(sitemap: SiteMap) -> Callable[[str], bool]:
    """``is_static`` for a Handoff: whether a raw URL path names a published file."""
    return lambda path: sitemap.lookup(path.lstrip("/")).kind is Kind.FILE


def sitemap_of(folder: Path) -> SiteMap:
    """The static files a site folder publishes (what may be handed off)."""
    return SiteMap([str(f.relative) for f in scan(folder, require_index=False)])


def _with_banner(page: bytes, banner: str) -> bytes:
    marker = page.lower().rfind(b"</body>")
    snippet = banner.encode()
    return page[:marker] + snippet + page[marker:] if marker >= 0 else page + snippet
