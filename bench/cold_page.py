"""Cold page load: a fresh node fetching the 41-file page from a 5-node swarm.

Five nodes hold the site (the publisher and four that visited it). For each trial a new node
joins the private DHT, then:

- **Chromium first visit** (the user's view): a fresh browser profile opens
  ``http://<site-id>.localhost:PORT/`` on the new node's gateway. index.html links its 40
  assets as a page does (stylesheets, scripts, images), so the load event waits for all of
  them. Times are from the moment the navigation was asked for, by the wall clock the browser
  shares with this process, to the first byte of the *site's* index.html and to its load
  event (Navigation Timing of the final document: a first-visit page that polls and reloads
  counts in full). A timeline per trial says where the time went: pointer lookup (DHT get),
  metadata, first file read, gateway answer.
- **Held-site visit**: another fresh browser profile opens the same site on the same node,
  which now holds it.
- **aiohttp client** (the older measure): a fresh node's gateway asked for index.html, then
  the 40 assets at once.

Baseline in the same run: nginx serving the same folder to a fresh Chromium profile, and to
the same aiohttp client. Targets (issue 22): first byte <= 100 ms, load <= 250 ms (<= 4x
nginx); the held-site visit <= 1.5x nginx.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Browser, async_playwright

from bench.common import RESULTS, median, nginx, ratio_line, write_result
from peerweb import aio
from peerweb.http.daemon import RunningNode
from peerweb.tools.testnet import Testnet, write_sample_site

TRIALS = int(os.environ.get("PEERWEB_BENCH_COLD_TRIALS", "5"))
HOLDERS = 5
TITLE = "cold page"
WAITED_MS = 3.0
# Runs are kept in the result file under this label ("before"/"after" a change, say).
LABEL = os.environ.get("PEERWEB_BENCH_LABEL", "current")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-default-apps"]
# Navigation Timing of the document showing now, in wall-clock milliseconds.
# Resource Timing: when the last of the page's assets arrived, and how many came.
TIMING_JS = """() => { const n = performance.getEntriesByType("navigation")[0];
  const r = performance.getEntriesByType("resource");
  return {title: document.title, origin: performance.timeOrigin, type: n.type,
          request_start: n.requestStart, response_start: n.responseStart,
          response_end: n.responseEnd, load: n.loadEventStart, resources: r.length,
          assets_end: Math.max(0, ...r.map(e => e.responseEnd))}; }"""


def browser_page(site: Path, contents: dict[str, bytes]) -> None:
    """Rewrite index.html to load every asset as a page does, and make stylesheets and
    scripts valid (same sizes), so the browser's load event waits for all 40."""
    tags = []
    for name in sorted(contents):
        if not name.startswith("assets/"):
            continue
        if name.endswith((".css", ".js")):
            text = b"/*" + b"x" * (len(contents[name]) - 4) + b"*/"
            (site / name).write_bytes(text)
            contents[name] = text
        if name.endswith(".css"):
            tags.append(f'<link rel="stylesheet" href="{name}">')
        elif name.endswith(".js"):
            tags.append(f'<script src="{name}"></script>')
        else:
            tags.append(f'<img src="{name}" alt="">')
    head = "".join(t for t in tags if t.startswith("<link"))
    body = "".join(t for t in tags if not t.startswith("<link"))
    index = (f"<!doctype html><meta charset=utf-8><title>{TITLE}</title>{head}"
             f"<h1>cold page</h1>{body}").encode()
    (site / "index.html").write_bytes(index)
    contents["index.html"] = index


async def chromium_visit(browser: Browser, url: str) -> dict[str, float]:
    """A fresh profile opens ``url``: ms from asking to the site's first byte and load."""
    # bypass_csp: the polling predicate below is evaluated as a string, which the
    # first-visit page's CSP (no 'unsafe-eval') would refuse; the pages' own scripts run alike.
    context = await browser.new_context(bypass_csp=True)
    try:
        page = await context.new_page()
        started = time.time() * 1000
        await page.goto(url, wait_until="commit")
        await page.wait_for_function(
            f"document.title === {TITLE!r} && "
            "performance.getEntriesByType('navigation')[0].loadEventStart > 0",
            timeout=30_000, polling=5)
        t = await page.evaluate(TIMING_JS)
        origin = t["origin"] - started
        # ``reloads``: 1 when the first answer was the waiting page, which then reloaded.
        return {"ttfb_ms": origin + t["response_start"], "load_ms": origin + t["load"],
                "index_end_ms": origin + t["response_end"],
                "assets_end_ms": origin + t["assets_end"], "assets": t["resources"],
                "reloads": int(t["type"] == "reload"), "wall_ms": started}
    finally:
        await context.close()


def instrument(running: RunningNode, timeline: list[tuple[str, float]]) -> None:
    """Note (wall ms) when the fresh node's lookup steps start and end."""
    node = running.node

    def wrap(owner: Any, name: str) -> None:
        inner: Callable[..., Awaitable[Any]] = getattr(owner, name)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            begun = time.time() * 1000
            timeline.append((f"{name} start", begun))
            try:
                return await inner(*args, **kwargs)
            finally:
                ended = time.time() * 1000
                timeline.append((f"{name} end", ended))
                if name == "read_file" and ended - begun > WAITED_MS:
                    timeline.append(("read waited", ended - begun))
        setattr(owner, name, timed)

    finished = node.swarm.on_torrent_finished

    def on_finished(tid: str) -> None:
        # The whole site is here: from now on every read is from this node's own disk.
        timeline.append(("torrent finished", time.time() * 1000))
        if finished is not None:
            finished(tid)
    node.swarm.on_torrent_finished = on_finished

    wrap(node, "open_site")
    wrap(node.swarm, "get_pointer")
    wrap(node.swarm, "find_peers")
    wrap(node.swarm, "wait_metadata")
    wrap(node, "read_file")


def condensed(timeline: list[tuple[str, float]], origin: float) -> list[tuple[str, float]]:
    """The lookup's steps and the first two and last file reads, in ms from ``origin``."""
    waits = [at for what, at in timeline if what == "read waited"]
    timeline = [e for e in timeline if e[0] != "read waited"]
    reads = [e for e in timeline if e[0].startswith("read_file")]
    opens = [e for e in timeline if e[0].startswith("open_site")]
    kept = ([e for e in timeline if not e[0].startswith(("read_file", "open_site"))]
            + opens[:4] + reads[:4] + reads[-1:])
    steps = [(what, round(at - origin, 1)) for what, at in sorted(set(kept), key=lambda e: e[1])]
    # How many reads waited on the swarm (longer than WAITED_MS), and the longest wait.
    return [*steps, (f"reads waited: {len(waits)}", round(max(waits, default=0.0), 1))]


async def load_page(session: aiohttp.ClientSession, base: str, host: str | None,
                    assets: list[str], contents: dict[str, bytes]) -> tuple[float, float]:
    headers = {"Host": host} if host else {}
    start = time.perf_counter()
    async with session.get(f"{base}/", headers=headers) as response:
        await response.content.readany()
        ttfb = time.perf_counter() - start
        assert response.status == 200
        rest = await response.read()
        del rest

    async def one(name: str) -> None:
        async with session.get(f"{base}/{name}", headers=headers) as response:
            body = await response.read()
            assert response.status == 200 and body == contents[name], name

    await asyncio.gather(*(one(a) for a in assets))
    return ttfb, time.perf_counter() - start


def earlier_runs() -> list[dict[str, Any]]:
    """The medians of earlier runs kept in the result file (each run takes the lock alone,
    so ranges over runs are built up one run at a time)."""
    try:
        old = json.loads((RESULTS / "cold_page.json").read_text())
    except (OSError, ValueError):
        return []
    runs = old.get("chromium", {}).get("runs", [])
    return [r for r in runs if isinstance(r, dict) and "label" in r]


def summary(values: list[float]) -> dict[str, float]:
    return {"median": median(values), "min": min(values), "max": max(values)}


def show(label: str, values: list[float]) -> str:
    return f"{label} median {median(values):.0f} ms ({min(values):.0f}-{max(values):.0f})"


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        contents = write_sample_site(site, big_size=0)
        browser_page(site, contents)
        assets = [n for n in contents if n.startswith("assets/")]
        first: list[dict[str, float]] = []
        held: list[dict[str, float]] = []
        base_browser: list[dict[str, float]] = []
        timelines: list[list[tuple[str, float]]] = []
        ttfbs, totals, base_ttfb, base_total = [], [], [], []
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            with nginx(site) as base:
                await chromium_visit(browser, f"{base}/")  # warm the browser binary
                async with Testnet(HOLDERS) as net, aiohttp.ClientSession() as session:
                    result = await net.nodes[0].node.publish(site, "bench")
                    for holder in net.nodes[1:]:
                        host = f"{result.site_id}.localhost:{holder.gateway_address[1]}"
                        await load_page(session, holder.gateway_url, host, assets, contents)
                    for trial in range(TRIALS):
                        # Chromium: a fresh node, a fresh profile, then the held site.
                        fresh = await net.add_node(net.config_for(HOLDERS + 2 * trial))
                        await fresh.node.swarm.wait_dht_ready(10.0)
                        timeline: list[tuple[str, float]] = []
                        instrument(fresh, timeline)
                        url = f"http://{result.site_id}.localhost:{fresh.gateway_address[1]}/"
                        visit = await chromium_visit(browser, url)
                        timelines.append(condensed(timeline, visit["wall_ms"]))
                        first.append(visit)
                        held.append(await chromium_visit(browser, url))
                        base_browser.append(await chromium_visit(browser, f"{base}/"))
                        # aiohttp: another fresh node.
                        other = await net.add_node(net.config_for(HOLDERS + 2 * trial + 1))
                        await other.node.swarm.wait_dht_ready(10.0)
                        host = f"{result.site_id}.localhost:{other.gateway_address[1]}"
                        ttfb, total = await load_page(session, other.gateway_url, host, assets,
                                                      contents)
                        ttfbs.append(ttfb * 1000)
                        totals.append(total * 1000)
                        async with aiohttp.ClientSession() as fresh_session:
                            t, t_total = await load_page(fresh_session, base, None, assets,
                                                         contents)
                        base_ttfb.append(t * 1000)
                        base_total.append(t_total * 1000)
                        print(f"trial {trial}: chromium first visit {visit['ttfb_ms']:.0f} / "
                              f"{visit['load_ms']:.0f} ms (assets done "
                              f"{visit['assets_end_ms']:.0f}, reloads {visit['reloads']}), held "
                              f"{held[-1]['ttfb_ms']:.0f} / "
                              f"{held[-1]['load_ms']:.0f} ms, nginx "
                              f"{base_browser[-1]['ttfb_ms']:.0f} / "
                              f"{base_browser[-1]['load_ms']:.0f} ms; aiohttp {ttfb * 1000:.0f}"
                              f" / {total * 1000:.0f} ms (nginx {t * 1000:.0f} / "
                              f"{t_total * 1000:.0f})")
                        print("  timeline (ms): " + ", ".join(f"{w} {a:.0f}"
                                                              for w, a in timelines[-1]))
            await browser.close()

    def column(rows: list[dict[str, float]], key: str) -> list[float]:
        return [r[key] for r in rows]

    for label, rows in (("chromium first visit", first), ("chromium held site", held),
                        ("chromium nginx", base_browser)):
        print(f"{label}: {show('first byte', column(rows, 'ttfb_ms'))}, "
              f"{show('load', column(rows, 'load_ms'))}")
    nginx_load = median(column(base_browser, "load_ms"))
    print(ratio_line("chromium first visit, load", median(column(first, "load_ms")),
                     nginx_load, "ms", "target <= 250 ms and <= 4x"))
    print(ratio_line("chromium held site, load", median(column(held, "load_ms")),
                     nginx_load, "ms", "target <= 1.5x"))
    print(ratio_line("aiohttp first byte of index.html", median(ttfbs), median(base_ttfb),
                     "ms", "target < 200 ms"))
    print(ratio_line("aiohttp whole page", median(totals), median(base_total), "ms",
                     "target < 500 ms"))
    this_run = {
        "label": LABEL, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "first_visit_ttfb_ms": median(column(first, "ttfb_ms")),
        "first_visit_load_ms": median(column(first, "load_ms")),
        "held_load_ms": median(column(held, "load_ms")),
        "nginx_load_ms": nginx_load,
        "first_visit_load_vs_nginx": median(column(first, "load_ms")) / nginx_load,
        "held_load_vs_nginx": median(column(held, "load_ms")) / nginx_load,
    }
    history = [*earlier_runs(), this_run]
    for label in dict.fromkeys(r["label"] for r in history):
        rows = [r for r in history if r["label"] == label]
        print(f"runs labelled {label!r} ({len(rows)}): " + "; ".join(
            f"{key} {min(r[key] for r in rows):.3g}-{max(r[key] for r in rows):.3g}"
            for key in ("first_visit_ttfb_ms", "first_visit_load_ms", "held_load_ms",
                        "nginx_load_ms", "first_visit_load_vs_nginx", "held_load_vs_nginx")))
    write_result("cold_page", {
        "trials": TRIALS, "holders": HOLDERS, "files": len(assets) + 1,
        "note": "machine shared with other engineers' tests (2 cores)",
        "chromium": {
            "first_visit": {k: summary(column(first, k)) for k in ("ttfb_ms", "load_ms")},
            "held_site": {k: summary(column(held, k)) for k in ("ttfb_ms", "load_ms")},
            "nginx": {k: summary(column(base_browser, k)) for k in ("ttfb_ms", "load_ms")},
            "first_visit_runs": first, "held_site_runs": held, "nginx_runs": base_browser,
            "first_visit_load_vs_nginx": median(column(first, "load_ms")) / nginx_load,
            "held_load_vs_nginx": median(column(held, "load_ms")) / nginx_load,
            "timelines_ms": timelines, "runs": history,
            "target_ttfb_ms": 100, "target_load_ms": 250,
        },
        "ttfb_ms": ttfbs, "page_ms": totals,
        "median_ttfb_ms": median(ttfbs), "median_page_ms": median(totals),
        "nginx_median_ttfb_ms": median(base_ttfb), "nginx_median_page_ms": median(base_total),
        "target_ttfb_ms": 200, "target_page_ms": 500,
    })


if __name__ == "__main__":
    aio.run(main())
