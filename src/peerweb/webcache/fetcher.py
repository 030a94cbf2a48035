"""The node fetching a page itself: never with the browser's cookies or credentials, within
bounds, and only from public addresses.

The extension reports only a URL; the node asks the origin for it as a stranger would (no
cookie jar, no Authorization, fixed headers), so a copy can hold nothing personal. Bounds: a
body larger than ``MAX_BODY`` (or a version past ``MAX_PAGE_TOTAL``) is refused while it is
read, whatever Content-Length said (an endless body ends there); at most ``MAX_REDIRECTS``
redirects, and a loop is named as such; every read has a timeout and the whole fetch has
``fetch_timeout``. A host that resolves to a loopback, private or link-local address is not
fetched (an intranet page is not public) unless ``allow_private_origins``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from ..content.identity import normalise_site_id
from ..errors import BadAddress, PeerwebError
from . import cacheable, page, urls
from .copies import MAX_BODY, MAX_PAGE_TOTAL, MAX_RESOURCES, Manifest, Resource, kept_headers
from .settings import WebCacheSettings

MAX_REDIRECTS = 5
# Sub-resources fetched at once (a browser opens about 6 connections per origin).
PARALLEL = 6
READ_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5.0
CHUNK = 64 * 1024
WELL_KNOWN = "/.well-known/peerweb.json"
WELL_KNOWN_MAX = 4096
SITE_HEADER = "Peerweb-Site"
FETCH_HEADERS = {
    "User-Agent": "peerweb-webcache/1 (a shared cache of public pages)",
    "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
    "Accept-Encoding": "gzip, deflate",
}
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class NotKept(PeerwebError):
    """A page this node will not keep, and why (not cacheable, too large, unreachable)."""

    http_status = 422
    kind = "not_kept"

    def __init__(self, reason: str, site_hint: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.site_hint = site_hint


@dataclass(frozen=True)
class Fetched:
    """A page version the node fetched, and what the origin said about its peerweb site."""

    manifest: Manifest
    bodies: dict[str, bytes]
    site_hint: str | None


@dataclass(frozen=True)
class _Response:
    url: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def public_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_global
    except ValueError:
        return False


class PublicResolver(AbstractResolver):
    """Name resolution that drops every address which is not global (RFC 6890)."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        kept = [r for r in found if public_address(r["host"])]
        if not kept:
            raise OSError(f"{host} resolves to no public address")
        return kept

    async def close(self) -> None:
        await self._inner.close()


def _site_hint(headers: list[tuple[str, str]]) -> str | None:
    for name, value in headers:
        if name.lower() == SITE_HEADER.lower():
            with contextlib.suppress(BadAddress):
                return normalise_site_id(value.strip())
    return None


class Fetcher:
    def __init__(self, settings: WebCacheSettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            resolver = None if self.settings.allow_private_origins else PublicResolver()
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(),  # never keeps or sends a cookie
                connector=aiohttp.TCPConnector(resolver=resolver, limit_per_host=PARALLEL),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT,
                                              sock_read=READ_TIMEOUT),
                headers=FETCH_HEADERS, auto_decompress=True, trust_env=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch_page(self, url: str) -> Fetched:
        """Fetch a page and its same-origin sub-resources as one version; NotKept if it may
        not be kept or could not be fetched."""
        try:
            async with asyncio.timeout(self.settings.fetch_timeout):
                return await self._fetch_page(urls.normalise(url))
        except TimeoutError:
            raise NotKept(f"the origin took longer than {self.settings.fetch_timeout:.0f} s"
                          ) from None
        except BadAddress as exc:
            raise NotKept(str(exc)) from None

    async def _fetch_page(self, url: str) -> Fetched:
        response = await self._get(url, MAX_BODY)
        hint = _site_hint(response.headers)
        verdict = cacheable.decide("GET", response.url, response.status,
                                   FETCH_HEADERS.items(), response.headers)
        if not verdict.keep:
            raise NotKept(verdict.reason, hint)
        final = urls.normalise(response.url)
        kept = kept_headers(response.headers)
        first = Resource(final, kept, _sha256(response.body), len(response.body))
        resources, bodies = [first], {first.sha256: response.body}
        content_type = dict(kept).get("content-type", "")
        if page.is_html(content_type):
            refs = page.references(final, response.body, page.charset_of(content_type))
            total = len(response.body)
            seen = {final, *(r.url for r in refs)}
            # Two rounds: the page's references, then what its stylesheets load (fonts,
            # backgrounds, imports), so the copy looks as the page did. Not deeper: an
            # import of an import is rare, and each round costs the origin a round trip.
            for _round in range(2):
                css: list[page.Reference] = []
                for ref, got in zip(refs, await self._subresources(refs), strict=True):
                    if got is None or not page.integrity_ok(ref.integrity, got.body):
                        continue  # left out: the browser gets a 404 for it, never other bytes
                    total += len(got.body)
                    if total > MAX_PAGE_TOTAL:
                        raise NotKept("the page and its resources are larger than "
                                      f"{MAX_PAGE_TOTAL // 2**20} MiB")
                    kept_here = kept_headers(got.headers)
                    resource = Resource(ref.url, kept_here, _sha256(got.body), len(got.body))
                    resources.append(resource)
                    bodies[resource.sha256] = got.body
                    if page.is_css(dict(kept_here).get("content-type", "")):
                        room = MAX_RESOURCES - len(seen) - len(css)
                        css += [r for r in page.css_references(ref.url, got.body, max(0, room))
                                if r.url not in seen and r not in css]
                refs = css[:max(0, MAX_RESOURCES - len(seen))]
                seen.update(r.url for r in refs)
        return Fetched(Manifest(tuple(resources)), bodies, hint)

    async def _subresources(self, refs: list[page.Reference]) -> list[_Response | None]:
        gate = asyncio.Semaphore(PARALLEL)

        async def one(ref: page.Reference) -> _Response | None:
            async with gate:
                try:
                    got = await self._get(ref.url, MAX_BODY)
                except NotKept:
                    return None
            verdict = cacheable.decide("GET", got.url, got.status, FETCH_HEADERS.items(),
                                       got.headers)
            if not verdict.keep or not urls.same_origin(got.url, urls.origin_of(ref.url)):
                return None
            return got

        return list(await asyncio.gather(*(one(r) for r in refs)))

    async def well_known(self, origin: str) -> str | None:
        """The site id an origin names in ``/.well-known/peerweb.json`` (``{"site": ...}``),
        or None."""
        try:
            got = await self._get(origin + WELL_KNOWN, WELL_KNOWN_MAX, redirects=0)
            raw: Any = json.loads(got.body) if got.status == 200 else None
            site = raw.get("site") if isinstance(raw, dict) else None
            return normalise_site_id(site) if isinstance(site, str) else None
        except (NotKept, ValueError, BadAddress):
            return None

    async def _get(self, url: str, limit: int, redirects: int = MAX_REDIRECTS) -> _Response:
        seen = [url]
        while True:
            host = urlsplit(url).hostname or ""
            if not self.settings.allow_private_origins and _is_literal(host) \
                    and not public_address(host):
                raise NotKept(f"{host} is not a public address")
            try:
                async with self._client().get(url, allow_redirects=False) as response:
                    status = response.status
                    headers = [(k, v) for k, v in response.headers.items()]
                    location = response.headers.get("Location")
                    if status in REDIRECTS and location:
                        body = b""
                    else:
                        body = await _read_bounded(response, limit)
            except (aiohttp.ClientError, OSError) as exc:
                raise NotKept(f"the origin could not be reached: {exc}") from None
            except TimeoutError:
                raise NotKept("the origin stopped sending") from None
            if not (status in REDIRECTS and location):
                return _Response(url, status, headers, body)
            try:
                target = urls.normalise(urljoin(url, location))
            except BadAddress as exc:
                raise NotKept(f"the origin redirects to a URL that is not cached: {exc}"
                              ) from None
            if target in seen:
                raise NotKept(f"the origin redirects in a loop ({len(seen)} steps back to "
                              f"{target})")
            if len(seen) > redirects:
                raise NotKept(f"the origin redirects more than {redirects} times")
            seen.append(target)
            url = target


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    declared = response.content_length
    if declared is not None and declared > limit and not response.headers.get(
            "Content-Encoding"):
        raise NotKept(f"the body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > limit:
            raise NotKept(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _sha256(body: bytes) -> str:
    import hashlib

    return hashlib.sha256(body).hexdigest()
