"""The dashboard's and the first-visit page's decisions, with plain values."""

from __future__ import annotations

import pytest

from peerweb.content.addressing import Target
from peerweb.content.identity import site_id_from_public_key
from peerweb.errors import BadAddress, UsageError
from peerweb.http import dashboard_pages as dashboard
from peerweb.http import firstvisit
from peerweb.http.dashboard_pages import Links, SiteRow
from peerweb.node import inspect

SID = site_id_from_public_key(bytes(range(32)))
TOKEN = "t0ken"
OWN = "http://localhost:8080"


def test_title_is_unescaped_trimmed_and_bounded() -> None:
    page = b"<html><head><TITLE lang=en>\n  Caf&eacute; &amp; <b>\n bar </TITLE></head>"
    assert inspect.title_from_html(page) == "Café & <b> bar"
    assert inspect.title_from_html(b"<h1>no title</h1>") is None
    assert inspect.title_from_html(b"<title>   </title>") is None
    long = inspect.title_from_html(b"<title>" + b"x" * 500 + b"</title>")
    assert long is not None and len(long) == inspect.TITLE_MAX_CHARS
    assert inspect.title_from_html(b"\xff\xfe<title>\xffok</title>") == "\ufffdok"
    late = b" " * inspect.TITLE_SCAN_BYTES + b"<title>late</title>"
    assert inspect.title_from_html(late) is None


@pytest.mark.parametrize(("headers", "token", "refused"), [
    ({"Origin": OWN, "Sec-Fetch-Site": "same-origin"}, TOKEN, None),
    ({}, TOKEN, None),  # not a browser, but it holds the token a dashboard page gave it
    ({"Origin": "HTTP://LOCALHOST:8080"}, TOKEN, None),
    ({"Origin": OWN, "Sec-Fetch-Site": "same-origin"}, "", "token"),
    ({"Origin": OWN, "Sec-Fetch-Site": "same-origin"}, "guess", "token"),
    # A site on <id>.localhost is the same *site* as localhost: SameSite would let it in.
    ({"Origin": f"http://{SID}.localhost:8080", "Sec-Fetch-Site": "same-site"}, TOKEN,
     "another site"),
    ({"Origin": "http://127.0.0.2:9000", "Sec-Fetch-Site": "cross-site"}, TOKEN,
     "another site"),
    ({"Origin": "null"}, TOKEN, "another origin"),  # a sandboxed /s/<id>/ page
    ({"Origin": "http://localhost:8081"}, TOKEN, "another origin"),
    ({"Sec-Fetch-Site": "none"}, TOKEN, "another site"),
])
def test_cross_site_refusal(headers: dict[str, str], token: str, refused: str | None) -> None:
    reason = dashboard.cross_site_refusal(headers, OWN, token, TOKEN)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason


def test_links_follow_the_gateway_address() -> None:
    assert dashboard.site_links("localhost", 8080, SID) == Links(
        f"http://localhost:8080/s/{SID}/", f"http://{SID}.localhost:8080/")
    assert dashboard.site_links("127.0.0.1", 80, SID).subdomain == f"http://{SID}.localhost/"
    # *.localhost reaches 127.0.0.1 only: a gateway on 127.0.0.2 gets the path form alone.
    other = dashboard.site_links("127.0.0.2", 8181, SID)
    assert other.subdomain is None and other.preferred == f"http://127.0.0.2:8181/s/{SID}/"
    assert dashboard.origin_of("::1", 8080) == "http://[::1]:8080"


def test_open_box_accepts_ids_magnets_and_urls() -> None:
    key_hex = bytes(range(32)).hex()
    site = f"http://{SID}.localhost:8080/"
    assert dashboard.open_target(SID, "localhost", 8080) == site
    assert dashboard.open_target(f"  {SID.upper()}/a b.html ", "localhost", 8080) == (
        site + "a%20b.html")
    assert dashboard.open_target(f"magnet:?xs=urn:btpk:{key_hex}", "localhost", 8080) == site
    assert dashboard.open_target(f"magnet:?xs=urn:btpk:{key_hex}", "127.0.0.2", 8181) == (
        f"http://127.0.0.2:8181/s/{SID}/")
    ih = "ab" * 20
    assert dashboard.open_target(f"magnet:?xt=urn:btih:{ih}", "localhost", 8080) == (
        f"http://localhost:8080/ih/{ih}/")
    assert dashboard.open_target(site + "x/", "localhost", 8080) == site + "x/"
    with pytest.raises(BadAddress):
        dashboard.open_target("not a site", "localhost", 8080)
    with pytest.raises(UsageError):
        dashboard.open_target("  ", "localhost", 8080)


def test_redirects_stay_on_the_dashboard() -> None:
    assert dashboard.local_redirect("/dashboard/site/x") == "/dashboard/site/x"
    for bad in ("//evil.example/", "http://evil.example/", "/\\evil.example", ""):
        assert dashboard.local_redirect(bad) == "/"


def test_piece_groups_keep_the_weakest_piece() -> None:
    assert dashboard.group_min([], 10) == []
    assert dashboard.group_min([3, 1, 2], 10) == [(0, 0, 3), (1, 1, 1), (2, 2, 2)]
    groups = dashboard.group_min([2] * 999 + [0], 240)
    assert len(groups) <= 240 and groups[-1][2] == 0 and groups[-1][1] == 999
    assert sum(last - first + 1 for first, last, _ in groups) == 1000


def test_human_sizes() -> None:
    assert dashboard.human_bytes(999) == "999 B"
    assert dashboard.human_bytes(1500) == "1.5 kB"
    assert dashboard.human_bytes(2_500_000_000) == "2.5 GB"
    assert dashboard.ratio(10, 0) == "—" and dashboard.ratio(30, 20) == "1.50"


def row(**changes: object) -> SiteRow:
    values: dict[str, object] = dict(
        site_id=SID, title="<script>alert(1)</script>", version=2, size=2048, on_disk=2048,
        peers=3, upload_rate=1000, download_rate=0, uploaded=4000, downloaded=2000,
        published=False, pinned=False, links=dashboard.site_links("localhost", 8080, SID),
        error=None)
    values.update(changes)
    return SiteRow(**values)  # type: ignore[arg-type]


STATUS = {"network": "local", "dht_nodes": 4, "peers": 3, "uptime": 3700.0,
          "upload_rate": 1000, "download_rate": 0, "uploaded": 1, "downloaded": 2,
          "disk_quota": 10_000}


def test_home_escapes_every_value_and_carries_the_token() -> None:
    page = dashboard.render_home(STATUS, [row(), row(pinned=True, error="<b>disk</b>")],
                                 "tok'en", "http://localhost:8080")
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>disk" not in page
    assert "value='tok&#x27;en'" in page
    assert "Visited" in page and "Pinned" in page and "2.0 kB" in page
    assert "http://localhost:8080/s/&lt;site-id&gt;/" in page


def test_home_shows_reachability_reservation_and_relaying() -> None:
    assert "Reachability" not in dashboard.render_home(STATUS, [], TOKEN, OWN)
    status = {**STATUS,
              "reachability": {"reachable": False, "external": "198.18.0.12",
                               "nat": "endpoint-independent",
                               "reason": "2 peers could not connect back"},
              "reservation": {"relay": "198.18.1.10:9600", "held": True, "tunnels": 3,
                              "punched": 2},
              "relay": {"circuits": [{"for": "<b>10.0.0.1</b>", "to": "x"}],
                        "relayed_bytes": 2048, "reservations": [{}]}}
    page = dashboard.render_home(status, [], TOKEN, OWN)
    assert "Not reachable from outside at <code>198.18.0.12</code>" in page
    assert "endpoint-independent" in page and "2 peers could not connect back" in page
    assert "<code>198.18.1.10:9600</code>: held, 3 tunnel(s), 2 punched" in page
    assert "1 circuit(s) for &lt;b&gt;10.0.0.1&lt;/b&gt;, 2.0 kB relayed, 1 reservation(s)" \
        in page
    unknown = {**STATUS, "reachability": {"reachable": None, "nat": "unknown", "reason": ""}}
    assert "Reachability not known yet" in dashboard.render_home(unknown, [], TOKEN, OWN)


def test_published_sites_cannot_be_removed_or_pinned_from_the_table() -> None:
    page = dashboard.render_home(STATUS, [row(published=True)], TOKEN, OWN)
    assert "action/remove" not in page and "action/pin'" not in page


@pytest.mark.parametrize(("method", "headers", "navigation"), [
    ("GET", {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}, True),
    ("GET", {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, False),
    ("GET", {"Sec-Fetch-Mode": "no-cors", "Accept": "text/html"}, False),
    ("GET", {"Accept": "text/html,application/xhtml+xml"}, True),  # older browsers
    ("GET", {"Accept": "*/*"}, False),  # curl, wget, Python
    ("GET", {}, False),
    ("HEAD", {"Sec-Fetch-Mode": "navigate"}, False),
])
def test_navigation(method: str, headers: dict[str, str], navigation: bool) -> None:
    assert firstvisit.is_navigation(method, headers) is navigation


def failure(kind: str, dht_nodes: int = 5, version: int | None = None,
            peers: int = 0) -> firstvisit.Failure:
    return firstvisit.Failure(kind, "message", dht_nodes, version, peers, 0.0)


def test_failures_in_plain_words() -> None:
    assert "not connected" in firstvisit.advise(failure("swarm_timeout", 0)).headline
    assert "--bootstrap" in firstvisit.advise(failure("swarm_timeout", 0)).detail
    assert "Nobody" in firstvisit.advise(failure("not_found")).headline
    found = firstvisit.advise(failure("swarm_timeout", version=3))
    assert "found" in found.headline and "Version 3" in found.detail
    assert "disk" in firstvisit.advise(failure("storage")).headline
    for advice in (firstvisit.advise(failure(k)) for k in ("not_found", "swarm_timeout")):
        assert "DHT" not in advice.detail and "pointer" not in advice.detail


def test_status_of_a_lookup() -> None:
    looking = inspect.LookupProgress(None, False, 0)
    assert firstvisit.status_json(looking, True, None, False, 1.0)["state"] == "looking"
    # A failure from an earlier attempt does not end a lookup that is running again.
    assert firstvisit.status_json(looking, True, failure("not_found"), False, 1)["state"] == (
        "looking")
    ended = firstvisit.status_json(looking, False, failure("not_found"), False, 9.0)
    assert ended["state"] == "failed" and ended["kind"] == "not_found" and ended["headline"]
    done = inspect.LookupProgress(2, True, 1)
    assert firstvisit.status_json(done, False, None, True, 0.5) == {
        "version": 2, "peers": 1, "metadata": True, "elapsed": 0.5, "state": "ready"}


def test_waiting_page_escapes_and_uses_its_nonce() -> None:
    page = firstvisit.render_waiting(SID, {"state": "looking", "x": "</script><b>"}, "n0nce")
    assert "</script><b>" not in page.split("<script nonce")[0]
    assert page.count('nonce="n0nce"') == 2


def test_open_box_accepts_names_in_the_gateways_name_forms() -> None:
    assert dashboard.open_target("blog.bob.alice", "localhost", 8080) == (
        "http://blog.bob.alice.localhost:8080/")
    assert dashboard.open_target(" Blog/a b.html", "127.0.0.1", 8080) == (
        "http://blog.localhost:8080/a%20b.html")
    # A gateway off 127.0.0.1: *.localhost would not reach it, the path form does.
    assert dashboard.open_target("example.com/x", "127.0.0.2", 8181) == (
        "http://127.0.0.2:8181/n/example.com/x")
    assert dashboard.open_address("blog.alice").target is Target.NAME
    with pytest.raises(BadAddress):
        dashboard.open_target("not a name", "localhost", 8080)
