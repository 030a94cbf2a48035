"""URLs of cached pages: one spelling per page, its DHT key, and its view origin.

``normalise`` follows RFC 3986 section 6.2.2 (syntax-based normalisation) plus the scheme's
default port (6.2.3): the scheme and host lower-cased, the default port dropped, dot
segments removed, percent-encodings of unreserved characters decoded and the others
upper-cased, an empty path made ``/``, the fragment dropped (a browser never sends it).
The query is kept as written: its order can matter to the origin.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import re
from urllib.parse import urlsplit, urlunsplit

from ..errors import BadAddress

DEFAULT_PORTS = {"http": 80, "https": 443}
# Tag of the DHT keys of web pages: no other peerweb key can collide with them.
KEY_TAG = b"peerweb-webcache-v1:"
# The view origins live under this suffix of the gateway's localhost names.
VIEW_SUFFIX = ".web.localhost"
# A DNS label holds at most 63 octets (RFC 1035 section 2.3.4).
MAX_LABEL = 63
MAX_URL = 4096
_UNRESERVED = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _fix_escapes(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED_CHARS else "%" + match.group(1).upper()
    return _UNRESERVED.sub(one, text)


def _remove_dots(path: str) -> str:
    if not path:
        return "/"
    trailing = path.endswith(("/", "/.", "/.."))
    cleaned = posixpath.normpath(path)
    cleaned = "/" + cleaned.lstrip("/") if cleaned != "." else "/"
    if trailing and not cleaned.endswith("/"):
        cleaned += "/"
    return cleaned


def normalise(url: str) -> str:
    """The one spelling of an http(s) URL; BadAddress for anything else."""
    if len(url) > MAX_URL or not url.isascii():
        raise BadAddress("not a cacheable URL (too long, or not ASCII: send it punycoded and "
                         "percent-encoded)")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise BadAddress(f"not a URL ({exc}): {url[:80]!r}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BadAddress(f"only http and https pages are cached, not {scheme or 'this'!r}")
    host = (parts.hostname or "").rstrip(".")
    if not host or parts.username is not None or parts.password is not None:
        raise BadAddress("a cacheable URL names a host and no user or password")
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _remove_dots(_fix_escapes(parts.path))
    return urlunsplit((scheme, netloc, path, _fix_escapes(parts.query), ""))


def dht_key(url: str) -> bytes:
    """The 20-byte DHT key holders of the page at ``url`` announce under."""
    return hashlib.sha1(KEY_TAG + normalise(url).encode()).digest()


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL, the port always written."""
    parts = urlsplit(normalise(url))
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}:{port}"


def short_origin(origin: str) -> str:
    """``scheme://host`` with the default port left out, as pages spell absolute URLs."""
    scheme, _, rest = origin.partition("://")
    host, _, port = rest.rpartition(":")
    return origin if int(port) != DEFAULT_PORTS[scheme] else f"{scheme}://{host}"


def view_label(origin: str) -> str:
    """The view host's labels (before ``.web.localhost``) for an origin: base32 of
    ``scheme://host:port``, lower case, unpadded, in labels of at most 63 characters.
    Never the original host name, so a rescued page never shares the site's cookies."""
    raw = base64.b32encode(origin.encode()).decode().rstrip("=").lower()
    return ".".join(raw[i:i + MAX_LABEL] for i in range(0, len(raw), MAX_LABEL))


def origin_from_label(label: str) -> str:
    """The origin a view host's labels name; BadAddress if none."""
    raw = label.replace(".", "").upper()
    if not raw or not re.fullmatch(r"[A-Z2-7]+", raw):
        raise BadAddress("not a web cache view host")
    try:
        origin = base64.b32decode(raw + "=" * (-len(raw) % 8)).decode("ascii")
        canonical = origin_of(origin + "/")
    except (ValueError, BadAddress) as exc:
        raise BadAddress("not a web cache view host") from exc
    if canonical != origin:
        raise BadAddress("not a web cache view host")
    return origin


def view_url(url: str, gateway_port: int) -> str:
    """Where the gateway shows the copy of ``url``: its path and query on the origin's own
    view host."""
    normal = normalise(url)
    parts = urlsplit(normal)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"http://{view_label(origin_of(normal))}{VIEW_SUFFIX}:{gateway_port}{target}"


def view_host_label(host: str) -> str | None:
    """The labels of a view host (a Host header without port), or None if it is not one."""
    host = host.lower().rstrip(".")
    if not host.endswith(VIEW_SUFFIX):
        return None
    return host[: -len(VIEW_SUFFIX)] or None


def same_origin(url: str, origin: str) -> bool:
    try:
        return origin_of(url) == origin
    except BadAddress:
        return False
