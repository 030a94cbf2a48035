"""Whether a *shared* cache may keep a response (RFC 9111, section 3 "Storing Responses in
Caches", with the stricter rules of issue 18 so that nothing personal is ever shared).

A response may be kept when all of these hold:

- the request was a GET (section 3: the method is understood and cacheable) with no
  ``Authorization`` header (section 3.5: a shared cache must not reuse it, and peerweb never
  keeps one even where 3.5 would allow it);
- the status is 200 (a page version is a page that loaded; redirects are followed first);
- ``Cache-Control`` has neither ``no-store`` (5.2.2.5) nor ``private`` (5.2.2.7, with or
  without field names: a copy without them would be a different response);
- there is no ``Set-Cookie`` (a response that sets a cookie is about someone);
- ``Vary`` is not ``*`` and names none of the request headers that identify a person
  (``Cookie``, ``Authorization``; section 4.1: the copy only matches requests with the same
  values of the named headers, and peerweb's fetcher never sends those);
- a URL with a query string is kept only when the response is explicitly shareable
  (``public`` or ``s-maxage``): query strings often carry a session or a search.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

# Request headers a Vary may name without making the copy personal: the fetcher sends fixed
# values of these (or none of them).
PERSONAL_VARY = frozenset({"cookie", "authorization", "proxy-authorization"})


@dataclass(frozen=True)
class Verdict:
    """Whether to keep a response, and why not."""

    keep: bool
    reason: str = ""
    """Why it may not be kept (empty when ``keep``)."""


KEEP = Verdict(True)


def cache_control(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The ``Cache-Control`` directives of a response (RFC 9111 section 5.2), every field
    line joined, names lower-cased, quoted values unquoted; a repeated directive keeps its
    first value."""
    directives: dict[str, str] = {}
    for name, value in headers:
        if name.lower() != "cache-control":
            continue
        for part in _split_list(value):
            key, _, arg = part.partition("=")
            directives.setdefault(key.strip().lower(), arg.strip().strip('"'))
    return directives


def _split_list(value: str) -> list[str]:
    """A comma-separated field value split outside quoted strings (RFC 9110 section 5.6.1)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def vary_names(headers: Iterable[tuple[str, str]]) -> list[str]:
    """The request header names a response's ``Vary`` lists, lower-cased, in order."""
    names: list[str] = []
    for name, value in headers:
        if name.lower() == "vary":
            names.extend(p.lower() for p in _split_list(value))
    return list(dict.fromkeys(names))


def decide(method: str, url: str, status: int, request_headers: Iterable[tuple[str, str]],
           response_headers: Iterable[tuple[str, str]]) -> Verdict:
    """Whether a shared cache may keep this response to this request."""
    response_headers = list(response_headers)
    if method.upper() != "GET":
        return Verdict(False, f"only GET responses are kept, not {method.upper()}")
    if any(name.lower() == "authorization" for name, _ in request_headers):
        return Verdict(False, "the request carried credentials (Authorization)")
    if status != 200:
        return Verdict(False, f"the origin answered {status}, not 200")
    directives = cache_control(response_headers)
    if "no-store" in directives:
        return Verdict(False, "Cache-Control: no-store")
    if "private" in directives:
        return Verdict(False, "Cache-Control: private")
    if any(name.lower() == "set-cookie" for name, _ in response_headers):
        return Verdict(False, "the response sets a cookie (Set-Cookie)")
    varying = vary_names(response_headers)
    if "*" in varying:
        return Verdict(False, "Vary: * (the response differs for every request)")
    personal = sorted(PERSONAL_VARY.intersection(varying))
    if personal:
        return Verdict(False, f"the response varies on {personal[0]} (personal)")
    if urlsplit(url).query and not ("public" in directives or "s-maxage" in directives):
        return Verdict(False, "a URL with a query string is kept only when the response "
                              "says Cache-Control: public")
    return KEEP
