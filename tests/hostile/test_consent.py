"""consent.decide: who may make the node fetch content it does not hold (plain values)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from peerweb.http.consent import (
    ConfirmTokens,
    Verdict,
    decide,
    from_this_machine,
    same_origin_as,
)

HOST = "abc.localhost:8080"
ALLOW, REFUSE, CONFIRM = Verdict.ALLOW, Verdict.REFUSE, Verdict.CONFIRM


def fetch(site: str, mode: str, dest: str, **extra: str) -> dict[str, str]:
    headers = {"Sec-Fetch-Site": site, "Sec-Fetch-Mode": mode, "Sec-Fetch-Dest": dest}
    headers.update({k.replace("_", "-").title(): v for k, v in extra.items()})
    return headers


@pytest.mark.parametrize(("headers", "verdict"), [
    # Non-browser clients: curl, peerweb get, the CLI.
    ({}, ALLOW),
    ({"Accept": "*/*", "User-Agent": "curl/8"}, ALLOW),
    # The user's own navigations.
    (fetch("none", "navigate", "document"), ALLOW),
    (fetch("none", "navigate", "document", sec_fetch_user="?1"), ALLOW),
    # A site's own pages, assets, media, iframes of itself.
    (fetch("same-origin", "no-cors", "image", referer=f"http://{HOST}/"), ALLOW),
    (fetch("same-origin", "cors", "empty", origin=f"http://{HOST}"), ALLOW),
    (fetch("same-origin", "navigate", "iframe", referer=f"http://{HOST}/a/"), ALLOW),
    (fetch("same-origin", "no-cors", "video"), ALLOW),
    # Another site's <img>, <script>, fetch(): same-site under localhost proves nothing.
    (fetch("same-site", "no-cors", "image"), REFUSE),
    (fetch("cross-site", "no-cors", "image"), REFUSE),
    (fetch("same-site", "cors", "empty", origin="http://xyz.localhost:8080"), REFUSE),
    (fetch("cross-site", "no-cors", "script", referer="https://evil.example/"), REFUSE),
    (fetch("same-site", "no-cors", "video"), REFUSE),
    # A browser saying same-origin while its Origin or Referer names another origin.
    (fetch("same-origin", "cors", "empty", origin="http://xyz.localhost:8080"), REFUSE),
    # Iframes and embeds of another site are not the user's navigation.
    (fetch("same-site", "navigate", "iframe"), REFUSE),
    (fetch("cross-site", "navigate", "embed"), REFUSE),
    # A link from another site: the user is asked.
    (fetch("cross-site", "navigate", "document", referer="https://news.example/"), CONFIRM),
    (fetch("same-site", "navigate", "document"), CONFIRM),
    # "none" is the user only for navigations.
    (fetch("none", "no-cors", "image"), REFUSE),
    # Old browsers without Fetch Metadata: judged by Origin and Referer.
    ({"Origin": "null"}, REFUSE),
    ({"Origin": "http://xyz.localhost:8080"}, REFUSE),
    ({"Referer": "http://xyz.localhost:8080/page"}, REFUSE),
    ({"Referer": "http://xyz.localhost:8080/", "Accept": "text/html,*/*"}, CONFIRM),
    ({"Referer": f"http://{HOST}/page", "Accept": "image/*"}, ALLOW),
    ({"Origin": f"http://{HOST}"}, ALLOW),
])
def test_content_not_held(headers: dict[str, str], verdict: Verdict) -> None:
    assert decide(headers, HOST, held=False) is verdict


@pytest.mark.parametrize("headers", [
    fetch("cross-site", "no-cors", "image"), fetch("same-site", "navigate", "iframe"), {},
    {"Origin": "null"},
])
def test_content_held_is_served_to_anyone(headers: dict[str, str]) -> None:
    assert decide(headers, HOST, held=True) is ALLOW


@pytest.mark.parametrize(("url", "host", "same"), [
    ("http://abc.localhost:8080", "abc.localhost:8080", True),
    ("http://abc.localhost:8080/x/y?z", "ABC.localhost:8080", True),
    ("http://localhost", "localhost:80", True),
    ("http://[::1]:8080", "[::1]:8080", True),
    ("https://abc.localhost:8080", "abc.localhost:8080", False),
    ("http://abc.localhost:8081", "abc.localhost:8080", False),
    ("http://abd.localhost:8080", "abc.localhost:8080", False),
    ("null", "abc.localhost:8080", False),
    ("http://abc.localhost:99999", "abc.localhost:8080", False),
    ("http://[::1", "abc.localhost:8080", False),
    ("http://abc.localhost:8080", "", False),
])
def test_same_origin_as(url: str, host: str, same: bool) -> None:
    assert same_origin_as(url, host) is same


def counter() -> Callable[[], str]:
    numbers = iter(range(1_000_000))
    return lambda: f"t{next(numbers)}"




def test_a_token_confirms_once_its_own_host_and_target_before_it_expires() -> None:
    tokens = ConfirmTokens(ttl=10.0, make_token=counter())
    token = tokens.issue(HOST, "/page?x=1", now=0.0)
    assert token == "t0"
    assert not tokens.redeem(token, "xyz.localhost:8080", "/page?x=1", now=1.0)
    token = tokens.issue(HOST, "/page?x=1", now=0.0)
    assert not tokens.redeem(token, HOST, "/other", now=1.0)
    token = tokens.issue(HOST, "/page?x=1", now=0.0)
    assert tokens.redeem(token, HOST.upper(), "/page?x=1", now=9.9)
    assert not tokens.redeem(token, HOST, "/page?x=1", now=9.9)  # one time only
    late = tokens.issue(HOST, "/", now=0.0)
    assert not tokens.redeem(late, HOST, "/", now=10.0)
    assert not tokens.redeem("forged", HOST, "/", now=0.0)
    assert len(tokens) == 0


def test_tokens_are_bounded_oldest_forgotten_first() -> None:
    tokens = ConfirmTokens(ttl=100.0, capacity=3, make_token=counter())
    issued = [tokens.issue(HOST, "/", now=float(i)) for i in range(5)]
    assert len(tokens) == 3
    assert not tokens.redeem(issued[0], HOST, "/", now=5.0)
    assert not tokens.redeem(issued[1], HOST, "/", now=5.0)
    assert all(tokens.redeem(t, HOST, "/", now=5.0) for t in issued[2:])


def test_default_tokens_are_unguessable() -> None:
    tokens = ConfirmTokens()
    first, second = tokens.issue(HOST, "/", 0.0), tokens.issue(HOST, "/", 0.0)
    assert first != second and len(first) >= 24


@pytest.mark.parametrize("remote, local", [
    ("127.0.0.1", True), ("127.4.5.6", True), ("::1", True),
    ("192.0.2.2", False), ("10.0.0.1", False), ("2001:db8::1", False),
    ("::ffff:192.0.2.2", False), (None, False), ("", False), ("not an address", False),
])
def test_only_loopback_requests_count_as_this_machine(remote: str | None, local: bool) -> None:
    """A gateway on a public address (a volunteer's) shows no dashboard and starts no fetch
    for other machines, whatever Host they send."""
    assert from_this_machine(remote) is local
