"""Who asked for a request: only the user may make this node fetch (and then seed) content.

Fetching a site or snapshot joins its swarm with the user's address and seeds it afterwards,
so a page must not be able to start it: an ``<img src="http://localhost:8080/ih/<hash>/x">``
on any web page would otherwise choose swarms for the user. Content the node already holds
is served as before; for content it does not hold, ``decide`` reads the request's Fetch
Metadata (``Sec-Fetch-Site``, ``-Mode``, ``-Dest``; W3C Fetch Metadata Request Headers) and
its ``Origin`` and ``Referer``:

- the user's own top-level navigation (``navigate`` from ``none``: the address bar, a
  bookmark), a site's requests for its own content (same *origin*: every ``*.localhost``
  site is same-*site* with every other, so ``same-site`` proves nothing), and clients that
  send no Fetch Metadata, Origin or Referer (curl, ``peerweb get``) may start a fetch;
- a top-level navigation from another site (a shared link) gets a page that asks the user
  to confirm, carrying a one-time token (``ConfirmTokens``) that a same-origin form POST
  redeems;
- everything else is refused.

Browsers too old to send Fetch Metadata (before Chrome 76, Firefox 90, Safari 16.4) are
judged by Origin and Referer alone; one that sends neither looks like curl and is allowed.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit


class Verdict(Enum):
    ALLOW = "allow"
    REFUSE = "refuse"
    CONFIRM = "confirm"


# Sec-Fetch-Dest values of a top-level navigation (the empty string when a browser omits it).
_TOP_LEVEL = frozenset({"document", ""})


def decide(headers: Mapping[str, str], host: str, held: bool) -> Verdict:
    """Whether a request for content may be served, given its headers, its Host header and
    whether this node already holds the content (then nothing is fetched: always ALLOW)."""
    if held:
        return Verdict.ALLOW
    site = headers.get("Sec-Fetch-Site", "").strip().lower()
    mode = headers.get("Sec-Fetch-Mode", "").strip().lower()
    dest = headers.get("Sec-Fetch-Dest", "").strip().lower()
    origin = headers.get("Origin")
    referer = headers.get("Referer")
    named = [value for value in (origin, referer) if value is not None]
    same_origin = all(same_origin_as(value, host) for value in named)
    if not (site or mode or dest):
        if not named:
            return Verdict.ALLOW  # not a browser, or the user typed the address
        if same_origin:
            return Verdict.ALLOW
        wants_page = "text/html" in headers.get("Accept", "")
        return Verdict.CONFIRM if wants_page and origin is None else Verdict.REFUSE
    if site == "same-origin" and same_origin:
        return Verdict.ALLOW  # a site's own pages, assets, media and iframes of itself
    if mode == "navigate":
        if site == "none":
            return Verdict.ALLOW  # the user's own navigation
        if dest in _TOP_LEVEL:
            return Verdict.CONFIRM  # a link from another site: ask the user first
    return Verdict.REFUSE


def from_this_machine(remote: str | None) -> bool:
    """Whether a request came from this machine (a loopback address). Only such requests may
    see the dashboard or make the node fetch anything: a gateway bound to a public address
    (a volunteer's) serves what it holds to anyone, and nothing else."""
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:  # a Unix socket peer, or something aiohttp could not parse
        return False


def same_origin_as(url: str, host: str) -> bool:
    """Whether ``url`` (an Origin or Referer value) names the gateway origin ``host`` (a Host
    header, with or without port) is served under; ``null`` and non-http URLs never do."""
    try:
        named = urlsplit(url.strip())
        ours = urlsplit("http://" + host.strip())
        if named.scheme.lower() != "http" or not named.hostname or not ours.hostname:
            return False
        return (named.hostname.rstrip(".") == ours.hostname.rstrip(".")
                and (named.port or 80) == (ours.port or 80))
    except ValueError:  # a port out of range, a malformed IPv6 literal
        return False


# A confirmation page left open longer than this asks again.
TOKEN_TTL = 600.0
# Pages shown but never confirmed are forgotten oldest first past this many.
MAX_TOKENS = 1024


@dataclass(frozen=True)
class _Pending:
    host: str
    target: str
    expires: float


class ConfirmTokens:
    """One-time tokens of confirmation pages, each bound to the Host and request target the
    user confirms. ``now`` is passed in; ``make_token`` is the source of randomness."""

    def __init__(self, ttl: float = TOKEN_TTL, capacity: int = MAX_TOKENS,
                 make_token: Callable[[], str] = lambda: secrets.token_urlsafe(18)) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self.make_token = make_token
        self._pending: dict[str, _Pending] = {}

    def issue(self, host: str, target: str, now: float) -> str:
        if len(self._pending) >= self.capacity:
            self._pending = {t: p for t, p in self._pending.items() if p.expires > now}
            while len(self._pending) >= self.capacity:
                del self._pending[next(iter(self._pending))]
        token = self.make_token()
        self._pending[token] = _Pending(host.lower(), target, now + self.ttl)
        return token

    def redeem(self, token: str, host: str, target: str, now: float) -> bool:
        """Whether ``token`` confirms this Host and target; it cannot be used again."""
        pending = self._pending.pop(token, None)
        return (pending is not None and pending.expires > now
                and pending.host == host.lower() and pending.target == target)

    def __len__(self) -> int:
        return len(self._pending)
