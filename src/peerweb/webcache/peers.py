"""The peer protocol of the web cache, client half (the server half is
``peerweb.http.webcache_peer`` on the peer port):

  GET /peerweb/v1/web/copy?url=<normalised URL>  -> {"manifest": {...}, "fetched_at": int}
  GET /peerweb/v1/web/body/<sha256>              -> the body's bytes

Whatever a holder sends is bounded while it is read and checked before use: a manifest by
``Manifest.from_json``, a body against the sha256 and size the chosen manifest lists.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable, Iterable

import aiohttp

from .copies import MAX_MANIFEST, BadCopy, Manifest, Resource, body_matches

log = logging.getLogger(__name__)
COPY_PATH = "/peerweb/v1/web/copy"
BODY_PATH = "/peerweb/v1/web/body/"
Endpoint = tuple[str, int]


def _base(endpoint: Endpoint) -> str:
    host, port = endpoint
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def read_bounded(content: aiohttp.StreamReader, limit: int) -> bytes:
    """The whole body, or its first ``limit`` bytes if it is longer. (``content.read(n)``
    returns what has arrived so far, at most n: a body larger than one socket read would be
    cut short, and its honest holder taken for a liar.)"""
    chunks, size = [], 0
    while size < limit:
        chunk = await content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class BodyMismatch(BadCopy):
    """A holder's body is not the one the manifest names."""


def source_address(host: str) -> tuple[str, int] | None:
    """The address to send from: the node's own swarm address when it listens on one (so
    a holder sees each node as the host it is, and its per-address limits apply to it alone),
    else the system's choice (a wildcard listen address, or no address at all)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return None if ip.is_unspecified else (host, 0)


class Peers:
    def __init__(self, timeout: float, local: Callable[[], str] = lambda: "") -> None:
        self.timeout = timeout
        self.local = local
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(local_addr=source_address(self.local())),
                cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout,
                                              sock_read=self.timeout))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def copy(self, endpoint: Endpoint, url: str) -> tuple[Manifest, int] | None:
        """A holder's copy of ``url``: its manifest (checked, of that URL) and fetch time;
        None if it has none or answers nonsense (BadCopy is logged, not raised: a holder
        that sends garbage is simply not counted)."""
        try:
            async with self._client().get(_base(endpoint) + COPY_PATH, params={"url": url},
                                          timeout=aiohttp.ClientTimeout(total=self.timeout)
                                          ) as response:
                if response.status != 200:
                    return None
                raw = await read_bounded(response.content, MAX_MANIFEST + 1)
            if len(raw) > MAX_MANIFEST:
                raise BadCopy("manifest too large")
            answer = json.loads(raw)
            manifest = Manifest.from_json(answer.get("manifest"))
            fetched_at = answer.get("fetched_at")
            if type(fetched_at) is not int or fetched_at < 0 or manifest.url != url:
                raise BadCopy("a copy names its URL and an integer fetch time")
            return manifest, fetched_at
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, AttributeError) as exc:
            log.debug("no copy of %s from %s:%d: %s", url, *endpoint, exc)
            return None
        except BadCopy as exc:
            log.info("holder %s:%d sent a bad copy of %s: %s", *endpoint, url, exc)
            return None

    async def body(self, endpoint: Endpoint, resource: Resource, timeout: float) -> bytes:
        """A body from a holder, checked against ``resource``; BodyMismatch if it is not
        that body, BadCopy if the holder could not send it."""
        try:
            async with self._client().get(_base(endpoint) + BODY_PATH + resource.sha256,
                                          timeout=aiohttp.ClientTimeout(total=timeout)
                                          ) as response:
                if response.status != 200:
                    raise BadCopy(f"answered {response.status}")
                data = await read_bounded(response.content, resource.size + 1)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise BadCopy(f"could not send the body: {exc}") from None
        if not body_matches(resource, data):
            raise BodyMismatch(f"sent other bytes for {resource.url}")
        return data


def digests(copies: Iterable[tuple[Endpoint, Manifest, int]]) -> dict[str, Manifest]:
    return {manifest.digest(): manifest for _e, manifest, _t in copies}
