"""Addresses: which site or snapshot a URL, a host name or a magnet link names.

Pure parsing, shared by the gateway (Host header and path) and the CLI (``peerweb get``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from urllib.parse import SplitResult, parse_qs, urlsplit

from ..errors import BadAddress
from .identity import SITE_ID_LENGTH, normalise_site_id, site_id_from_public_key
from .pointer import valid_tracker

_HEX_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_B32_INFOHASH_RE = re.compile(r"[a-z2-7]{32}")
# A name: dot-separated DNS labels (RFC 1035 section 2.3.1); peerweb.names checks the rest.
_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")


class Target(Enum):
    SITE = "site"  # a mutable site, by public key
    SNAPSHOT = "snapshot"  # an immutable torrent, by info-hash
    NAME = "name"  # a name (petname, label.zone...) still to resolve: see peerweb.names
    HOME = "home"  # the gateway's own pages
    UNKNOWN_HOST = "unknown_host"


@dataclass(frozen=True)
class Address:
    """What a request or command names."""

    target: Target
    ident: str = ""
    """Site id (base32) for SITE, lowercase hex info-hash for SNAPSHOT, the name (dotted
    labels, lowercase) for NAME."""
    path: str = "/"
    """Path inside the site, still percent-encoded, starting with '/'."""
    prefix: str = ""
    """The URL prefix the site lives under ('' for subdomains, '/s/<id>' or '/n/<name>' in
    path form)."""
    trackers: tuple[str, ...] = ()
    """Trackers a magnet link listed (``tr``)."""


# Gateway hosts that ``*.localhost`` names reach (a wildcard bind accepts loopback too).
_SUBDOMAIN_HOSTS = frozenset({"127.0.0.1", "localhost", "0.0.0.0", "::", "::1"})


def gateway_base(host: str, port: int) -> str:
    """``http://HOST:PORT`` of a gateway listening on ``host`` (a wildcard bind is reached on
    127.0.0.1)."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def site_urls(host: str, port: int, site_id: str) -> tuple[str, str]:
    """A site's address on a gateway bound to ``host:port``: the one-origin-per-site form
    browsers should use (``http://<id>.localhost:PORT/``, which only reaches a gateway on
    loopback's 127.0.0.1; elsewhere the path form), and the path form any client can use."""
    path_form = f"{gateway_base(host, port)}/s/{site_id}/"
    if host in _SUBDOMAIN_HOSTS:
        return f"http://{site_id}.localhost:{port}/", path_form
    return path_form, path_form


def parse_infohash(text: str) -> str:
    # ASCII first: lower() maps some other letters onto ASCII ones (KELVIN SIGN -> "k").
    value = text.strip().lower() if text.isascii() else ""
    if _HEX_RE.fullmatch(value):
        return value
    if _B32_INFOHASH_RE.fullmatch(value):  # magnet links may carry base32 v1 hashes
        import base64

        return base64.b32decode(value.upper()).hex()
    raise BadAddress(f"not an info-hash (40 or 64 hex digits): {text[:80]!r}")


def _split(url: str) -> SplitResult:
    """urlsplit, with its ValueError (an unclosed ``[`` of an IPv6 host) as BadAddress."""
    try:
        return urlsplit(url)
    except ValueError as exc:
        raise BadAddress(f"not a URL ({exc}): {url[:80]!r}") from None


def parse_magnet(uri: str) -> Address:
    """BEP 9 (``xt=urn:btih:``), BEP 52 (``xt=urn:btmh:1220``) and BEP 46 (``xs=urn:btpk:``)."""
    query = parse_qs(_split(uri).query)
    trackers = tuple(t for t in query.get("tr", []) if valid_tracker(t))
    for xs in query.get("xs", []):
        if xs.lower().startswith("urn:btpk:"):
            key_hex = xs[9:]
            try:
                key = bytes.fromhex(key_hex)
            except ValueError:
                key = b""
            if len(key) != 32:
                raise BadAddress("xs=urn:btpk: needs a 64-hex-digit ed25519 public key")
            return Address(Target.SITE, site_id_from_public_key(key))
    for xt in query.get("xt", []):
        lowered = xt.lower()
        if lowered.startswith("urn:btih:"):
            return Address(Target.SNAPSHOT, parse_infohash(xt[9:]), trackers=trackers)
        if lowered.startswith("urn:btmh:1220"):
            return Address(Target.SNAPSHOT, parse_infohash(xt[13:]), trackers=trackers)
    raise BadAddress("magnet link has neither xs=urn:btpk: (a site) nor xt=urn:btih: (a torrent)")


def parse_cli_address(text: str) -> Address:
    """``SITE-ID[/PATH]``, ``INFOHASH[/PATH]``, a magnet link, or a gateway URL."""
    text = text.strip()
    if text.startswith("magnet:"):
        return parse_magnet(text)
    if text.startswith(("http://", "https://")):
        parts = _split(text)
        host = (parts.hostname or "").lower()
        return route(host, parts.path or "/", {host} if "." not in host else set())
    ident, _, rest = text.partition("/")
    path = "/" + rest
    if _HEX_RE.fullmatch(ident.lower()) and ident.isascii():
        return Address(Target.SNAPSHOT, ident.lower(), path)
    name = _as_name(ident)
    if name is not None:
        return Address(Target.NAME, name, path)
    return Address(Target.SITE, normalise_site_id(ident), path)  # BadAddress: clear message


def _as_name(text: str) -> str | None:
    """The name ``text`` spells (lowercase), or None if it is a site id (or nothing): a
    single label of a site id's length and alphabet is read as a site id, never a name."""
    lowered = text.lower() if text.isascii() else ""
    if not _NAME_RE.fullmatch(lowered) or len(lowered) > 253:
        return None
    if "." not in lowered and len(lowered) == SITE_ID_LENGTH and _SITE_ID_CHARS.fullmatch(
            lowered):
        return None
    return lowered


_SITE_ID_CHARS = re.compile(r"[a-z2-7]+")


def parse_name(text: str) -> str:
    """A name in a ``/n/<name>/`` path (lowercase); BadAddress if it is none."""
    name = _as_name(text)
    if name is None:
        raise BadAddress(f"not a name (dot-separated letters, digits and '-'): {text[:80]!r}")
    return name


def route(host: str, path: str, local_names: set[str]) -> Address:
    """Decide what a gateway request is for from its Host (without port) and raw path.

    ``<site-id>.localhost`` serves a site as its own browser origin, and ``<name>.localhost``
    the site a name resolves to (``blog.localhost``, ``blog.bob.alice.localhost``). On the
    gateway's plain host names, ``/s/<site-id>/...``, ``/n/<name>/...`` and ``/ih/<hash>/...``
    serve the path forms. Any other Host is refused: a DNS-rebinding page must not reach the
    gateway under a foreign name.
    """
    if not host.isascii():  # a browser sends IDNs as punycode; anything else is not ours
        return Address(Target.UNKNOWN_HOST)
    host = host.lower().rstrip(".")
    # NAME.peer is what `peerweb dns` answers with this gateway's address (127.0.0.1):
    # the same names as NAME.localhost, for programs that do not resolve *.localhost.
    suffix = next((s for s in (".localhost", ".peer") if host.endswith(s)), None)
    if suffix is not None:
        label = host[: -len(suffix)]
        name = _as_name(label)
        if name is not None:
            return Address(Target.NAME, name, path or "/")
        if "." in label:
            return Address(Target.UNKNOWN_HOST)
        return Address(Target.SITE, normalise_site_id(label), path or "/")
    if host not in local_names and host not in ("localhost", "127.0.0.1", "::1"):
        return Address(Target.UNKNOWN_HOST)
    for marker, target in (("/s/", Target.SITE), ("/ih/", Target.SNAPSHOT),
                           ("/n/", Target.NAME)):
        if path.startswith(marker) or path == marker.rstrip("/"):
            ident, slash, rest = path[len(marker):].partition("/")
            parse = {Target.SITE: normalise_site_id, Target.SNAPSHOT: parse_infohash,
                     Target.NAME: parse_name}[target]
            ident = parse(ident)
            prefix = marker + ident
            # Without the slash after the id, relative links would resolve one level up.
            return Address(target, ident, "/" + rest if slash else "", prefix)
    return Address(Target.HOME, path=path)
