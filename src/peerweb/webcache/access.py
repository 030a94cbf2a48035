"""Who may use the extension API (``/_ext/``): the user's paired extension, on this machine.

- The request comes from a loopback address, to ``localhost:PORT`` or ``127.0.0.1:PORT``
  (a DNS-rebinding page reaches the gateway under another name and is refused).
- A request with an ``Origin`` is answered only if that origin is an extension
  (``chrome-extension://`` or ``moz-extension://``), with CORS headers naming it; a web page's
  origin (``http(s)://``, ``null``) gets 403, so no page can query the cache through the
  user's browser. A request without ``Origin`` (the CLI, curl, a test) needs the token too.
- Every call but ``/_ext/pair`` carries ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

from enum import Enum

EXTENSION_SCHEMES = ("chrome-extension://", "moz-extension://")
API_PREFIX = "/_ext/"
ALLOWED_HEADERS = "Authorization, Content-Type"
ALLOWED_METHODS = "GET, POST, OPTIONS"


class Caller(Enum):
    NO_ORIGIN = "no_origin"
    EXTENSION = "extension"
    WEB_PAGE = "web_page"


def caller(origin: str | None) -> Caller:
    if origin is None:
        return Caller.NO_ORIGIN
    value = origin.strip().lower()
    if value.startswith(EXTENSION_SCHEMES) and len(value) > len("moz-extension://") \
            and all(c.isalnum() or c in "-:/." for c in value):
        return Caller.EXTENSION
    return Caller.WEB_PAGE


def cors_headers(origin: str | None) -> dict[str, str]:
    """CORS headers for an extension's origin (none for other callers)."""
    if origin is None or caller(origin) is not Caller.EXTENSION:
        return {}
    return {"Access-Control-Allow-Origin": origin.strip(), "Vary": "Origin",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Max-Age": "600"}


def api_host_ok(host: str, port: int) -> bool:
    """Whether a Host header names the gateway's own loopback API origin."""
    return host.lower() in (f"localhost:{port}", f"127.0.0.1:{port}")


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
