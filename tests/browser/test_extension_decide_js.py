"""The browser extension's decisions (src/peerweb/extension/decide.js), run in Chromium with
plain values and an explicit ``now`` (ms): which answers and errors mean a failing origin,
when a navigation has stalled, button or automatic switch, which visits may be reported, and
when a link in a rescued page goes back to the origin."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page

from peerweb import extension

from .pages import chromium

pytestmark = pytest.mark.asyncio(loop_scope="module")

NODE = "http://127.0.0.1:8080"


def view_host(origin: str) -> str:
    """The view's host for an origin, as the node writes it (WEBCACHE_API.md)."""
    label = base64.b32encode(origin.encode()).decode().lower().rstrip("=")
    return ".".join(label[i:i + 63] for i in range(0, len(label), 63)) + ".web.localhost"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page() -> AsyncIterator[Page]:
    async with chromium() as browser:
        loaded = await browser.new_page()
        await loaded.add_script_tag(path=str(extension.folder() / "decide.js"))
        yield loaded


async def call(page: Page, body: str, *args: Any) -> Any:
    """``body`` with X (decide.js) and ``args`` in scope; errors come back as values."""
    return await page.evaluate(
        "([body, args]) => { try { return (new Function('X', 'args', 'return ' + body))"
        "(self.peerwebExtension, args); } catch (e) { return {error: String(e)}; } }",
        [body, list(args)])


async def test_settings_take_defaults_for_what_is_missing_or_makes_no_sense(page: Page) -> None:
    got = await call(page, """[X.settings(null), X.settings({
        node: 'http://127.0.0.1:9000/', stallSeconds: 2.5, automatic: true, report: true,
        neverCache: 'bank.example\\n*.mail.example, ,intranet', retryOriginSeconds: 0}),
        X.settings({node: 'javascript:alert(1)', stallSeconds: 0, automatic: 'yes',
                    report: 1, neverCache: 7, retryOriginSeconds: -1}),
        X.settings({node: 'http://user:pw@127.0.0.1:8080', stallSeconds: NaN})]""")
    defaults = {"node": NODE, "stallSeconds": 4, "automatic": False, "report": False,
                "neverCache": [], "retryOriginSeconds": 30}
    assert got[0] == defaults
    assert got[1] == {"node": "http://127.0.0.1:9000", "stallSeconds": 2.5, "automatic": True,
                      "report": True, "neverCache": ["bank.example", "mail.example", "intranet"],
                      "retryOriginSeconds": 0}
    assert got[2] == {**defaults, "neverCache": ["7"]}  # a lone label is a host name
    assert got[3] == defaults


async def test_overload_statuses_and_unreachable_errors_are_failures_others_not(page: Page
                                                                               ) -> None:
    statuses = [200, 301, 404, 410, 429, 500, 501, 502, 503, 504, 505, 509, 519, 520, 526, 529,
                530]
    errors = ["net::ERR_CONNECTION_REFUSED", "net::ERR_CONNECTION_RESET",
              "net::ERR_CONNECTION_TIMED_OUT", "net::ERR_TIMED_OUT", "net::ERR_NAME_NOT_RESOLVED",
              "net::ERR_EMPTY_RESPONSE", "NS_ERROR_CONNECTION_REFUSED", "NS_ERROR_UNKNOWN_HOST",
              "net::ERR_ABORTED", "net::ERR_CERT_AUTHORITY_INVALID",
              "net::ERR_INTERNET_DISCONNECTED", "net::ERR_BLOCKED_BY_CLIENT", "constructor",
              "toString"]
    got = await call(page, "[args[0].map(X.failingStatus), args[1].map(X.failingError)]",
                     statuses, errors)
    failing = {s for s, text in zip(statuses, got[0], strict=True) if text}
    assert failing == {429, 502, 503, 504, 509, 520, 526, 529}
    assert got[0][statuses.index(509)] == "answered 509 Bandwidth Limit Exceeded"
    unreachable = [e for e, text in zip(errors, got[1], strict=True) if text]
    assert unreachable == errors[:8]
    assert got[1][0] == "refused the connection"
    assert got[1][4] == "has no address (DNS failure)"


async def test_a_navigation_stalls_once_its_deadline_passes_without_an_answer(page: Page
                                                                             ) -> None:
    got = await call(page, """(() => {
        const n = new X.Navigations(X.settings({stallSeconds: 4}));
        const out = [];
        n.begin(1, 'http://a.example/', 'GET', 1000);
        n.begin(2, 'http://b.example/x', 'GET', 2000);
        out.push(n.timer(), n.handleTimer(4999));
        out.push(n.headers(1, 'http://a.example/', 200, 3000), n.timer());  // a answered
        out.push(n.handleTimer(6000), n.timer());                             // b stalls
        out.push(n.handleTimer(9000));                                        // once only
        out.push(n.answered(2, 'http://b.example/x', {found: false, reason: 'no copy'}));
        n.begin(3, 'http://c.example/', 'POST', 0);                // a form: not watched
        n.begin(4, 'http://127.0.0.1:8080/_ext/status', 'GET', 0); // the node itself
        n.begin(5, 'chrome://settings', 'GET', 0);
        out.push(n.timer());
        return out;
    })()""")
    assert got == [
        5000, [],
        None, 6000,
        [{"act": "lookup", "tab": 2, "url": "http://b.example/x",
          "failure": {"kind": "stall", "text": "did not answer within 4 s"}}], None,
        [],
        {"act": "none", "why": "no copy"},
        None,
    ]


async def test_a_redirect_restarts_the_clock_and_a_commit_stops_it(page: Page) -> None:
    got = await call(page, """(() => {
        const n = new X.Navigations(X.settings({stallSeconds: 4}));
        n.begin(1, 'http://a.example/', 'GET', 0);
        const out = [n.headers(1, 'http://a.example/', 301, 1000)];
        n.redirected(1, 'https://a.example/', 3000);
        out.push(n.timer());
        n.committed(1, 'https://a.example/#top');  // e.g. restored from the back-forward cache
        out.push(n.timer(), n.handleTimer(99999));
        n.begin(2, 'http://b.example/', 'GET', 0);
        n.committed(2, 'http://other.example/');    // another page committed: forgotten
        out.push(n.timer(), n.headers(2, 'http://b.example/', 509, 1));
        n.begin(3, 'http://c.example/', 'GET', 0);
        n.redirected(3, 'http://127.0.0.1:8080/', 10);  // off to the node: not watched
        out.push(n.timer());
        return out;
    })()""")
    assert got == [None, 7000, None, [], None, None, None]


async def test_a_failing_answer_or_error_asks_the_node_at_once(page: Page) -> None:
    got = await call(page, """(() => {
        const n = new X.Navigations(X.settings({}));
        n.begin(1, 'http://a.example/p', 'GET', 0);
        n.begin(2, 'http://b.example/', 'GET', 0);
        n.begin(3, 'http://c.example/', 'GET', 0);
        n.begin(4, 'http://d.example/', 'GET', 0);
        return [n.headers(1, 'http://a.example/p', 509, 10),
                n.headers(1, 'http://a.example/p', 509, 10),   // already asking
                n.error(2, 'http://b.example/', 'net::ERR_CONNECTION_REFUSED', 10),
                n.error(3, 'http://c.example/', 'net::ERR_ABORTED', 10),
                n.headers(4, 'http://d.example/', 500, 10),     // an error, not an overload
                n.timer()];
    })()""")
    assert got == [
        {"act": "lookup", "tab": 1, "url": "http://a.example/p",
         "failure": {"kind": "status", "text": "answered 509 Bandwidth Limit Exceeded"}},
        None,
        {"act": "lookup", "tab": 2, "url": "http://b.example/",
         "failure": {"kind": "network", "text": "refused the connection"}},
        None, None, None]


async def test_a_copy_is_offered_behind_a_button_or_shown_at_once_when_automatic(page: Page
                                                                                ) -> None:
    view = f"http://{view_host('http://a.example:80')}:8080/p"
    found = {"found": True, "holders": 3, "agreeing": 2, "fetched_at": 1700000000,
             "view": view, "signed": False}
    got = await call(page, """(() => {
        const ask = (s, answer, tab = 1, url = 'http://a.example/p') => {
            const n = new X.Navigations(X.settings(s));
            n.begin(1, 'http://a.example/p', 'GET', 0);
            n.headers(1, 'http://a.example/p', 503, 5);
            return n.answered(tab, url, answer);
        };
        const found = args[0];
        return [ask({}, found), ask({automatic: true}, found),
                ask({automatic: true}, {...found, view: 'http://evil.example:8080/p'}),
                ask({automatic: true}, {...found, view: 'http://x.localhost:9999/p'}),
                ask({}, found, 1, 'http://a.example/other'),  // the tab moved on
                ask({}, found, 2),
                ask({}, null)];
    })()""", found)
    failure = {"kind": "status", "text": "answered 503 Service Unavailable"}
    assert got == [
        {"act": "offer", "url": view, "holders": 3, "agreeing": 2, "fetchedAt": 1700000000,
         "signed": False, "failure": failure},
        {"act": "view", "url": view},
        {"act": "none", "why": "the node answered a view that is not its own"},
        {"act": "none", "why": "the node answered a view that is not its own"},
        {"act": "none", "why": "the tab moved on"},
        {"act": "none", "why": "the tab moved on"},
        {"act": "none", "why": "no peer holds a copy"},
    ]


async def test_waiting_for_the_original_skips_the_stall_timer_once(page: Page) -> None:
    got = await call(page, """(() => {
        const n = new X.Navigations(X.settings({}));
        n.wait('http://a.example/#x');
        n.begin(1, 'http://a.example/', 'GET', 0);
        const first = n.timer();
        const refused = n.error(1, 'http://a.example/', 'net::ERR_CONNECTION_RESET', 1);
        n.begin(1, 'http://a.example/', 'GET', 100);
        return [first, refused.act, n.timer()];
    })()""")
    assert got == [None, "lookup", 4100]  # errors still count; the next visit has its timer


async def test_views_decode_to_their_original_and_are_told_from_other_pages(page: Page) -> None:
    long_origin = "https://" + "a" * 40 + ".example:443"
    got = await call(page, """(() => {
        const s = X.settings({});
        const urls = args[0];
        return urls.map((u) => [X.isView(u, s), X.watched(u, s), X.originalOf(u, s)]);
    })()""", [
        f"http://{view_host('http://origin.test:8000')}:8080/a/b.html?q=1",
        f"http://{view_host(long_origin)}:8080/",
        "http://sitexyz.localhost:8080/index.html",    # a signed site: no origin to go back to
        f"http://{view_host('http://origin.test:8000')}:9090/",  # another port: not our node
        "http://127.0.0.1:8080/_ext/lookup",
        "https://example.com/",
        f"http://{view_host('javascript:alert(1)')}:8080/",
    ])
    assert got == [
        [True, False, "http://origin.test:8000/a/b.html?q=1"],
        [True, False, "https://" + "a" * 40 + ".example/"],
        [True, False, None],
        [False, True, None],
        [False, False, None],
        [False, True, None],
        [True, False, None],
    ]


async def test_links_in_a_rescued_page_go_back_to_the_origin_after_the_retry_time(
        page: Page) -> None:
    view = f"http://{view_host('http://origin.test:8000')}:8080/next.html"
    got = await call(page, """(() => {
        const s = X.settings({retryOriginSeconds: 30});
        let o = X.noteFailure({}, 'http://origin.test:8000/', 1000);
        const out = [o, X.inView(args[0], o, 30999, s), X.inView(args[0], o, 31000, s),
                     X.inView(args[0], o, 2000, s, 404)];  // no copy of that page
        o = X.noteAnswer(o, 'http://origin.test:8000/other');
        out.push(o, X.inView(args[0], o, 2000, s));
        out.push(X.inView(args[0], X.noteFailure({}, 'http://origin.test:8000/', 0), 0,
                          X.settings({retryOriginSeconds: 0})));
        return out;
    })()""", view)
    back = {"act": "origin", "url": "http://origin.test:8000/next.html"}
    assert got == [{"http://origin.test:8000": 1000}, {"act": "stay"}, back, back, {}, back, back]


async def test_only_opted_in_public_visits_outside_private_windows_are_reported(
        page: Page) -> None:
    visits = [
        {"url": "https://news.example/a", "status": 200, "incognito": False},
        {"url": "https://news.example/a", "status": 200, "incognito": True},
        {"url": "https://news.example/a", "status": 200},  # a tab that could not be asked
        {"url": "https://news.example/a", "status": 404, "incognito": False},
        {"url": "https://news.example/a", "status": 200, "incognito": False, "method": "POST"},
        {"url": "https://news.example/a?session=1", "status": 200, "incognito": False},
        {"url": "https://me:pw@news.example/a", "status": 200, "incognito": False},
        {"url": "https://www.bank.example/", "status": 200, "incognito": False},
        {"url": "http://192.168.1.1/", "status": 200, "incognito": False},
        {"url": "http://printer/", "status": 200, "incognito": False},
        {"url": "http://x.localhost:3000/", "status": 200, "incognito": False},
        {"url": "ftp://news.example/", "status": 200, "incognito": False},
        {"url": "https://notbank.example/", "status": 200, "incognito": False},
    ]
    got = await call(page, """(() => {
        const opted = X.settings({report: true, neverCache: ['bank.example']});
        return [args[0].map((v) => X.reportable(v, opted)),
                args[0].map((v) => X.reportable(v, X.settings({})))];
    })()""", visits)
    assert got[0] == [True] + [False] * 11 + [True]
    assert got[1] == [False] * len(visits)  # not opted in: nothing


async def test_the_badge_says_when_no_node_answers_or_it_is_not_paired(page: Page) -> None:
    got = await call(page, """[
        X.nodeState('N', {error: 'Failed to fetch'}), X.nodeState('N', {status: 401, body: {}}),
        X.nodeState('N', {status: 200, body: {ok: true, web_cache: {enabled: true}}}),
        X.nodeState('N', {status: 404, body: null}),
        ].map((st) => [st.state, X.badge(st).text])""")
    assert got == [["down", "off"], ["unpaired", "pair"], ["ok", ""], ["odd", "?"]]



async def test_a_rescued_origin_is_held_back_for_retry_seconds_then_let_go(page: Page) -> None:
    got = await call(page, """(() => {
        const s = X.settings({retryOriginSeconds: 30});
        const a = X.hold({}, 'http://a.example:81/x.html', 1000, s);
        const b = X.hold(a.holds, 'https://b.example/', 2000, s);
        const again = X.hold(b.holds, 'http://a.example:81/y', 5000, s);  // the same rule, later
        const later = X.hold(b.holds, 'https://c.example/', 40000, s);   // a and b have ended
        return [a.add, a.remove, b.add.id, b.holds, again.add.id, again.remove,
                again.holds['http://a.example:81'].until, later.remove, later.add.id,
                Object.keys(later.holds), X.isHeld(b.holds, 'https://b.example/z'),
                X.isHeld(b.holds, 'http://b.example/'), X.release(b.holds, 'https://b.example/q'),
                X.hold({}, 'http://a.example/', 0, X.settings({retryOriginSeconds: 0})),
                X.holdRule('chrome-extension://x/rescue.html', 1, s)];
    })()""")
    assert got[0] == {"id": 1, "priority": 1, "action": {"type": "block"},
                      "condition": {"urlFilter": "|http://a.example:81/",
                                    "resourceTypes": ["main_frame"], "requestMethods": ["get"],
                                    "excludedInitiatorDomains": ["localhost"]}}
    assert got[1] == []
    assert got[2] == 2
    assert got[3] == {"http://a.example:81": {"id": 1, "until": 31000},
                      "https://b.example": {"id": 2, "until": 32000}}
    assert got[4:7] == [1, [1], 35000]
    assert got[7:10] == [[1, 2], 1, ["https://c.example"]]
    assert got[10:12] == [True, False]  # another scheme is another origin
    assert got[12] == {"holds": {"http://a.example:81": {"id": 1, "until": 31000}},
                       "remove": [2]}
    assert got[13] == {"holds": {}, "add": None, "remove": []}  # retryOriginSeconds 0: none
    assert got[14] is None


async def test_a_navigation_the_extension_held_back_asks_the_node_another_blocked_does_not(
        page: Page) -> None:
    got = await call(page, """(() => {
        const n = new X.Navigations(X.settings({}));
        n.begin(1, 'http://a.example/', 'GET', 0);
        n.begin(2, 'http://b.example/', 'GET', 0);
        return [n.error(1, 'http://a.example/', X.HELD_ERROR, 5, true),
                n.error(2, 'http://b.example/', X.HELD_ERROR, 5, false)];  // an ad blocker's
    })()""")
    assert got[0] == {"act": "lookup", "tab": 1, "url": "http://a.example/",
                      "failure": {"kind": "held",
                                  "text": "failed moments ago (not asked again yet)"}}
    assert got[1] is None
