"""A page version: the page and the same-origin sub-resources it references, fetched
together, named by the digest of its manifest.

A manifest lists, for the page and each sub-resource, its URL, the headers a browser needs
and the sha256 and size of its body. Two holders that fetched the same bytes make the same
manifest, whenever they fetched it, so holders *agree* when their digests are equal. The fetch
time is beside the manifest, not in it. Bodies are stored and sent by their sha256.

Canonical bytes: JSON with sorted keys and no spaces; the digest is sha256 of those bytes.
``Manifest.from_json`` checks everything a holder sends before anything else reads it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from ..errors import BadAddress, PeerError
from . import urls

# Bounds on what a holder may send, and on what the fetcher keeps (see fetcher.py).
MAX_RESOURCES = 64
"""A page and at most 63 sub-resources (the benchmark page has 40)."""
MAX_BODY = 8 * 1024 * 1024
"""One body (the page or a sub-resource)."""
MAX_PAGE_TOTAL = 32 * 1024 * 1024
"""A page version, all bodies together."""
MAX_MANIFEST = 64 * 1024
"""A manifest's JSON."""
# Response headers a copy keeps: what a browser needs to show the bytes as the origin meant.
KEPT_HEADERS = ("content-type", "content-language")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BadCopy(PeerError):
    """A holder sent a manifest or a body that is malformed, too large, or not what it
    claimed."""

    kind = "bad_copy"


@dataclass(frozen=True)
class Resource:
    """One body of a page version."""

    url: str
    """Normalised URL."""
    headers: tuple[tuple[str, str], ...]
    """The kept response headers (``KEPT_HEADERS``), names lower-cased, in that order."""
    sha256: str
    """Hex sha256 of the body."""
    size: int

    @property
    def content_type(self) -> str:
        return dict(self.headers).get("content-type", "application/octet-stream")

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "headers": [list(h) for h in self.headers],
                "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class Manifest:
    """A page version: ``resources[0]`` is the page, the rest its sub-resources."""

    resources: tuple[Resource, ...]

    @property
    def url(self) -> str:
        return self.resources[0].url

    @property
    def page(self) -> Resource:
        return self.resources[0]

    @property
    def total_size(self) -> int:
        return sum(r.size for r in self.resources)

    def find(self, url: str) -> Resource | None:
        for resource in self.resources:
            if resource.url == url:
                return resource
        return None

    def to_json(self) -> dict[str, Any]:
        return {"resources": [r.to_json() for r in self.resources]}

    def canonical(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    def digest(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    @classmethod
    def from_json(cls, raw: Any) -> Manifest:
        """Check a manifest from anyone: bounded, well-formed, one origin, no repeats."""
        if not isinstance(raw, dict) or not isinstance(raw.get("resources"), list):
            raise BadCopy("a manifest is an object with a list of resources")
        items = raw["resources"]
        if not 1 <= len(items) <= MAX_RESOURCES:
            raise BadCopy(f"a manifest lists 1 to {MAX_RESOURCES} resources")
        resources = tuple(_resource(item) for item in items)
        manifest = cls(resources)
        origin = urls.origin_of(manifest.url)  # normalised above: no BadAddress
        seen = set()
        for resource in resources:
            if not urls.same_origin(resource.url, origin):
                raise BadCopy("a manifest's resources are all of the page's origin")
            if resource.url in seen:
                raise BadCopy("a manifest lists a resource twice")
            seen.add(resource.url)
        if manifest.total_size > MAX_PAGE_TOTAL:
            raise BadCopy("a manifest's bodies are larger than a page version may be")
        return manifest


def _resource(item: Any) -> Resource:
    if not isinstance(item, dict):
        raise BadCopy("a manifest's resource is an object")
    url, headers, digest, size = (item.get(k) for k in ("url", "headers", "sha256", "size"))
    if not isinstance(url, str) or not isinstance(digest, str) or type(size) is not int:
        raise BadCopy("a resource has a url, a sha256 and a size")
    try:
        normal = urls.normalise(url)
    except BadAddress as exc:  # a usage error when we are asked; here the holder's fault
        raise BadCopy(f"a resource's URL is not valid: {exc}") from None
    if normal != url:
        raise BadCopy("a resource's URL is not normalised")
    if not _SHA256.fullmatch(digest) or not 0 <= size <= MAX_BODY:
        raise BadCopy("a resource's sha256 or size is not valid")
    if not isinstance(headers, list) or len(headers) > len(KEPT_HEADERS):
        raise BadCopy("a resource's headers are a short list")
    pairs = []
    for pair in headers:
        if (not isinstance(pair, list) or len(pair) != 2 or pair[0] not in KEPT_HEADERS
                or not isinstance(pair[1], str) or len(pair[1]) > 256
                or any(c in pair[1] for c in "\r\n\0")):
            raise BadCopy("a resource's header is not one a copy keeps")
        pairs.append((pair[0], pair[1]))
    if [p[0] for p in pairs] != [k for k in KEPT_HEADERS if k in dict(pairs)]:
        raise BadCopy("a resource's headers are not in canonical order")
    return Resource(normal, tuple(pairs), digest, size)


def kept_headers(headers: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The headers a copy keeps from a response, in canonical order (first value each)."""
    found: dict[str, str] = {}
    for name, value in headers:
        lowered = name.lower()
        if lowered in KEPT_HEADERS and lowered not in found:
            found[lowered] = value.strip()[:256]
    return tuple((k, found[k]) for k in KEPT_HEADERS if k in found)


def body_matches(resource: Resource, body: bytes) -> bool:
    return len(body) == resource.size and hashlib.sha256(body).hexdigest() == resource.sha256
