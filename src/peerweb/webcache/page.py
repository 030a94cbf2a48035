"""What an HTML page references, whether a sub-resource matches its ``integrity``, and the
page as the view origin serves it (banner in, same-origin absolute URLs rewritten).

The stored bytes are never changed: ``for_view`` makes the served bytes from them.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin

from ..errors import BadAddress
from . import urls
from .copies import MAX_RESOURCES

# Elements and attributes that load a sub-resource a page needs to look as it did.
_LINK_RELS = frozenset({"stylesheet", "icon", "shortcut", "preload", "modulepreload",
                        "apple-touch-icon"})
_SRC_TAGS = frozenset({"script", "img", "source", "input", "embed", "track"})
# W3C Subresource Integrity, section 3.3: the hash functions a browser must support, weakest
# first; the strongest one present is the one checked.
_SRI_ALGORITHMS = ("sha256", "sha384", "sha512")
BANNER_ID = "peerweb-webcache-banner"
TRY_ORIGINAL_ID = "peerweb-try-original"


@dataclass(frozen=True)
class Reference:
    """A sub-resource a page loads."""

    url: str
    """Normalised absolute URL."""
    integrity: str | None
    """Its ``integrity`` attribute, if any."""


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.found: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v for k, v in attrs if v is not None}
        integrity = values.get("integrity")
        if tag == "base" and self.base is None and "href" in values:
            self.base = values["href"]
        elif tag == "link":
            rels = set(values.get("rel", "").lower().split())
            if rels & _LINK_RELS and "href" in values:
                self.found.append((values["href"], integrity))
        elif tag in _SRC_TAGS and "src" in values:
            self.found.append((values["src"], integrity))
        if tag in ("img", "source") and "srcset" in values:
            for candidate in values["srcset"].split(","):
                words = candidate.split()
                if words:
                    self.found.append((words[0], None))
        if tag == "video" and "poster" in values:
            self.found.append((values["poster"], None))


def references(page_url: str, body: bytes, charset: str = "utf-8") -> list[Reference]:
    """The same-origin sub-resources of an HTML page, in document order, each once, at most
    ``MAX_RESOURCES - 1``. Other origins' resources are left to the browser: the copy is of
    one origin, served on that origin's view host."""
    collector = _Collector()
    try:
        text = body.decode(charset, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    collector.feed(text)
    collector.close()
    origin = urls.origin_of(page_url)
    base = urljoin(page_url, collector.base) if collector.base else page_url
    found: dict[str, str | None] = {}
    for raw, integrity in collector.found:
        raw = raw.strip()
        if not raw or raw.startswith(("data:", "blob:", "javascript:", "#")):
            continue
        try:
            url = urls.normalise(urljoin(base, raw))
        except (BadAddress, ValueError):
            continue
        if url == urls.normalise(page_url) or not urls.same_origin(url, origin):
            continue
        if url not in found or found[url] is None:
            found[url] = integrity
        if len(found) >= MAX_RESOURCES - 1:
            break
    return [Reference(u, i) for u, i in found.items()]


# CSS url() tokens and @import strings (CSS Syntax 3, section 4.3.6; CSS Cascade 4 @import):
# url(x), url('x'), url("x"), @import 'x'. Comments are removed first so a commented-out
# reference is not fetched.
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"\s]*))\s*\)""", re.I)
_CSS_IMPORT = re.compile(r"""@import\s+(?:"([^"]*)"|'([^']*)')""", re.I)


def is_css(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "text/css"


def css_references(css_url: str, body: bytes, limit: int = MAX_RESOURCES - 1
                   ) -> list[Reference]:
    """The same-origin resources a stylesheet loads (fonts, background images, imported
    stylesheets), resolved against the stylesheet's own URL, in order, each once, at most
    ``limit``. Other origins' are left to the browser, as for the page's own references."""
    text = _CSS_COMMENT.sub("", body.decode("utf-8", errors="replace"))
    origin = urls.origin_of(css_url)
    found: dict[str, None] = {}
    matches = sorted([*_CSS_URL.finditer(text), *_CSS_IMPORT.finditer(text)],
                     key=lambda m: m.start())
    for match in matches:
        raw = next((g for g in match.groups() if g is not None), "").strip()
        if not raw or raw.startswith(("data:", "blob:", "#")):
            continue
        try:
            url = urls.normalise(urljoin(css_url, raw))
        except (BadAddress, ValueError):
            continue
        if url != urls.normalise(css_url) and urls.same_origin(url, origin):
            found.setdefault(url, None)
        if len(found) >= limit:
            break
    return [Reference(u, None) for u in found]


def integrity_ok(integrity: str | None, body: bytes) -> bool:
    """W3C SRI section 3.3.5 "Does response match metadataList": no usable metadata matches
    anything; else the body must match one digest of the strongest algorithm listed."""
    if not integrity:
        return True
    by_algorithm: dict[str, list[str]] = {}
    for token in integrity.split():
        algorithm, _, value = token.partition("-")
        value = value.split("?", 1)[0]  # options (section 3.1) are ignored
        if algorithm.lower() in _SRI_ALGORITHMS and value:
            by_algorithm.setdefault(algorithm.lower(), []).append(value)
    if not by_algorithm:
        return True
    strongest = max(by_algorithm, key=_SRI_ALGORITHMS.index)
    actual = base64.b64encode(hashlib.new(strongest, body).digest()).decode()
    return actual in {v.replace("-", "+").replace("_", "/") for v in by_algorithm[strongest]}


def is_html(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() in ("text/html", "application/xhtml+xml")


def charset_of(content_type: str) -> str:
    match = re.search(r"charset=\"?([\w.:-]+)", content_type, re.IGNORECASE)
    return match.group(1) if match else "utf-8"


def banner(original_url: str, agreeing: int, fetched_at: int) -> bytes:
    """The small bar a rescued page opens with: where it came from, how many peers agreed,
    when it was fetched, and a link back to the original."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(fetched_at))
    who = "this node's own copy" if agreeing <= 1 else f"{agreeing} peers agreed"
    link = html.escape(original_url, quote=True)
    return (
        f'<div id="{BANNER_ID}" style="all:initial;display:block;font:13px/1.4 system-ui,'
        'sans-serif;background:#fff3c4;color:#222;border-bottom:1px solid #c9a800;'
        'padding:6px 10px;position:relative;z-index:2147483647">'
        "A copy from peerweb peers: the site did not answer. "
        f'<span class="agreeing">{html.escape(who)}</span>, fetched '
        f'<time datetime="{fetched_at}">{when}</time>. '
        f'<a id="{TRY_ORIGINAL_ID}" href="{link}" style="color:#0645ad">'
        "Try the original again</a></div>"
    ).encode()


_BODY_OPEN = re.compile(rb"<body\b[^>]*>", re.IGNORECASE)
_HTML_OPEN = re.compile(rb"<html\b[^>]*>", re.IGNORECASE)


def with_banner(body: bytes, bar: bytes) -> bytes:
    """The page with ``bar`` right after its ``<body>`` tag (or ``<html>``, or first)."""
    for pattern in (_BODY_OPEN, _HTML_OPEN):
        match = pattern.search(body)
        if match:
            return body[:match.end()] + bar + body[match.end():]
    return bar + body


def rewrite_origin(body: bytes, origin: str, view_origin: str) -> bytes:
    """Same-origin absolute URLs (``https://host/...``, ``https://host:443/...``,
    ``//host/...``) pointed at the view origin, so the page's own links and resources come
    from the same copy and not from the failing site."""
    scheme, _, rest = origin.partition("://")
    host, _, port = rest.rpartition(":")
    default = int(port) == urls.DEFAULT_PORTS[scheme]
    port_part = rb"(?::" + port.encode() + rb")" + (b"?" if default else b"")
    pattern = re.compile(rb"(?:" + scheme.encode() + rb":)?//" + re.escape(host.encode())
                         + port_part + rb"(?![\w.:-])", re.IGNORECASE)
    return pattern.sub(view_origin.encode().replace(b"\\", b"\\\\"), body)


def for_view(body: bytes, original_url: str, origin: str, view_origin: str, agreeing: int,
             fetched_at: int) -> bytes:
    """The bytes a view host serves for a stored HTML page."""
    return with_banner(rewrite_origin(body, origin, view_origin),
                       banner(original_url, agreeing, fetched_at))
