"""static/decide.js and the plain functions of static/prefetch.js, run in Chromium with plain
values and an explicit ``now`` (ms): which mirror the worker asks, when a second one joins,
when it steps aside, and how a bundle is cut and checked."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Page

from peerweb.spike.loader import WorkerTimings

from .pages import call, parts_page

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page() -> AsyncIterator[Page]:
    async with parts_page() as loaded:
        yield loaded


async def test_mirrors_are_chosen_by_trust_version_and_failures_and_rotated(page: Page) -> None:
    got = await call(page, """(() => {
        const t = new D.MirrorTable();
        const all = ['a', 'b', 'c', 'd', 'e'];
        const first = [0, 1, 2, 3].map((turn) => t.candidates(all, 2, turn));
        t.distrust('a', 'served a forged record');
        t.showed('b', 1); // an older version than the one wanted: no files from it
        t.showed('c', 2);
        t.failed('d');
        const after = [0, 1].map((turn) => t.candidates(all, 2, turn));
        const rotating = [t.next(all, 2), t.next(all, 2), t.next(all, 2)];
        return {first, after, rotating, again: t.distrust('a', 'other'), bad: t.distrusted(),
                askable: t.askable(all), holders: t.holders(all, 2), v1: t.candidates(all, 1, 0)};
    })()""")
    assert got["first"] == [list("abcde"), list("bcdea"), list("cdeab"), list("deabc")]
    # Neither the distrusted mirror nor the one that showed v1; the one that failed last.
    assert got["after"] == [list("ced"), list("ecd")]
    assert got["rotating"] == [list("ced"), list("ecd"), list("ced")]
    assert got["again"] is False and got["bad"] == {"a": "served a forged record"}
    assert got["askable"] == list("bcde") and got["holders"] == ["c"]
    assert got["v1"] == list("bced")  # for version 1, the mirror that showed it will do


async def test_a_slow_mirror_gets_company_after_the_hedging_delay(page: Page) -> None:
    got = await call(page, """(() => {
        const h = new D.Hedge(['a', 'b', 'c'], 1500);
        const steps = [['start', h.start(0), h.timer()]];
        steps.push(['early', h.handleTimer(1499), h.timer()]);
        steps.push(['due', h.handleTimer(1500), h.timer()]);
        steps.push(['failed', h.failed('a', 'HTTP 500', 2000), h.timer()]);
        steps.push(['won', h.answered('c'), h.timer()]);
        steps.push(['late', h.answered('b'), h.handleTimer(9999), h.done, h.winner, h.error]);
        return steps;
    })()""")
    assert got == [
        ["start", ["a"], 1500],           # the best mirror at once
        ["early", [], 1500],              # not yet
        ["due", ["b"], 3000],             # 1.5 s without an answer: a second one
        ["failed", ["c"], 3500],          # a failure: the next one at once
        ["won", True, None],              # the first good answer is the answer
        ["late", False, [], True, "c", None],  # a later one is not, and nothing more starts
    ]


async def test_a_request_fails_once_every_mirror_asked_has_failed(page: Page) -> None:
    got = await call(page, """(() => {
        const h = new D.Hedge(['a', 'b'], 1500);
        const out = [h.start(0), h.handleTimer(1500), h.handleTimer(3000), h.timer(), h.error];
        out.push(h.failed('b', 'timed out', 3100), h.error, h.done);
        out.push(h.failed('a', 'failed verification', 3200), h.error, h.done);
        const none = new D.Hedge([], 1500);
        out.push(none.start(0), none.error);
        return out;
    })()""")
    assert got == [["a"], ["b"], [], None, None,  # both asked, none left to add
                   [], None, False,               # one still running: not over
                   [], "b: timed out; a: failed verification", True,
                   [], "none left"]


async def test_timings_come_from_the_origin_with_the_same_defaults_as_python(page: Page
                                                                              ) -> None:
    python = WorkerTimings().to_json()
    got = await call(page, """(() => ({
        defaults: D.timings(null),
        given: D.timings({timings: args[0]}),
        odd: D.timings({timings: {hedge_after: -1, config_wait: 'soon', record_wait: null}}),
    }))()""", {**python, "config_refresh": 0.25, "release_after": 1})
    assert got["defaults"] == {name: seconds * 1000 for name, seconds in python.items()}
    assert got["given"] == {**got["defaults"], "config_refresh": 250, "release_after": 1000}
    assert got["odd"] == got["defaults"]  # nonsense leaves today's values


async def test_the_loader_pages_config_is_used_while_fresh_by_the_browsers_clock(page: Page
                                                                                ) -> None:
    got = await call(page, """[
        D.bootUsable({at: 10000}, 14999), D.bootUsable({at: 10000}, 15000),
        D.bootUsable({at: 10000}, 5001),  // a clock that went back a little
        D.bootUsable({}, 0),
        D.bootUsable({at: 0, timings: {config_refresh: 0.5}}, 499),
        D.bootUsable({at: 0, timings: {config_refresh: 0.5}}, 500),
    ]""")
    assert got == [True, False, True, False, True, False]


async def test_the_worker_leaves_once_the_calm_outlasts_release_after(page: Page) -> None:
    got = await call(page, """(() => {
        const t = D.timings({timings: {handoff_mark: 60, release_after: 600}});
        const s = (last, mode, now) => D.noteMode(last, mode, now, t);
        const T = 1.7e12; // an epoch in ms, as Date.now() gives
        return [
            s(0, 'handoff', T),                // the first hand-off seen: stored
            s(T, 'handoff', T + 60000),        // seen again soon after: nothing to store
            s(T, 'handoff', T + 60001),        // a while later: stored again
            s(T, 'normal', T + 600000),        // calm, but not for long enough
            s(T, 'normal', T + 600001),        // long enough: leave
            s(0, 'normal', T),                 // never handed off: nothing to leave
        ];
    })()""")
    keep, store = {"changed": False, "leave": False}, {"changed": True, "leave": False}
    t = 1.7e12
    assert got == [{"lastHandoff": t, **store}, {"lastHandoff": t, **keep},
                   {"lastHandoff": t + 60001, **store}, {"lastHandoff": t, **keep},
                   {"lastHandoff": 0, "changed": True, "leave": True},
                   {"lastHandoff": 0, **keep}]


async def test_a_bundle_is_cut_in_file_tree_order_and_each_file_checked(page: Page) -> None:
    got = await call(page, """(async () => {
        const enc = (s) => new TextEncoder().encode(s);
        const names = ['a.css', 'b.js', 'c.html'];
        const small = await Promise.all(names.map(async (n) => {
            const data = enc(`${n} `.repeat(5000));
            return [n, {length: data.length, root: await V.fileRoot(data), layer: null}];
        }));
        const body = new Uint8Array(small.reduce((sum, [, f]) => sum + f.length, 0));
        let at = 0;
        for (const [n, f] of small) { body.set(enc(`${n} `.repeat(5000)), at); at += f.length; }
        const good = await P.splitBundle(V, body, small);
        const altered = body.slice();
        altered[small[0][1].length + 7] ^= 1;  // one byte of b.js
        const bad = await P.splitBundle(V, altered, small);
        return {good: [...good.found.values()].map((d) => new TextDecoder().decode(d.slice(0, 6))),
                goodBad: good.bad, bad: bad.bad};
    })()""")
    assert got == {"good": ["a.css ", "b.js b", "c.html"], "goodBad": None, "bad": "b.js"}


async def test_a_warm_up_takes_small_sites_whole_pages_first(page: Page) -> None:
    got = await call(page, """(() => {
        const f = (length, layer = null) => ({length, root: null, layer});
        const files = new Map([['img/x.png', f(10)], ['about.html', f(10)], ['app.js', f(10)],
                               ['empty.txt', f(0)], ['index.html', f(10)], ['v.mp4', f(9e6, [])],
                               ['style.css', f(10)]]);
        const plan = P.warmPlan(files);
        const big = P.warmPlan(new Map([['a.bin', f(3 << 20)], ['b.bin', f(2 << 20)]]));
        return {small: plan.small.map(([p]) => p), total: plan.total, big,
                order: P.warmOrder(plan.small).map(([p]) => p)};
    })()""")
    # Neither the empty file nor the big one (its pieces stream); over 4 MB: no warm-up.
    assert got["small"] == ["img/x.png", "about.html", "app.js", "index.html", "style.css"]
    assert got["total"] == 50 and got["big"] is None
    assert got["order"] == ["index.html", "about.html", "app.js", "style.css", "img/x.png"]


async def test_kept_files_drop_the_oldest_past_the_limit(page: Page) -> None:
    got = await call(page, """(() => {
        const s = new P.FileStore(10);
        s.keep('a', new Uint8Array(4));
        s.keep('b', new Uint8Array(4));
        s.fetching.set('c', Promise.resolve());
        s.keep('d', new Uint8Array(4));
        return [[...s.files.keys()], s.bytes, s.known('a'), s.known('c'), s.known('d')];
    })()""")
    assert got == [["b", "d"], 8, False, True, True]
