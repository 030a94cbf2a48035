"""First visits: what a browser shows while the node looks a site up.

Opening a site this node has never held means finding its signed pointer in the DHT, then the
torrent's metadata from peers; on a slow network that takes seconds, and a browser left
waiting shows a blank spinner and then a bare error. For a top-level navigation the gateway
answers at once with a page that says which step the lookup is at and polls the same URL with
an ``X-Peerweb-Lookup`` header (answered with the lookup's status as JSON) until the site can
be served, then reloads. A lookup that ends within ``DIRECT_BUDGET`` (on a well-connected node,
most do) is answered with the site itself: the waiting page would cost a poll and a reload
for nothing. Other requests (scripts, images, wget, curl, no ``Sec-Fetch-*`` and
no ``text/html`` in Accept) keep waiting on the lookup as before.

The decisions (is this a navigation? what does a failure mean for the user?) are plain
functions; ``Lookups`` owns the background lookups and cancels them when the gateway stops.
"""

from __future__ import annotations

import asyncio
import html
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..errors import PeerwebError
from ..node import inspect
from ..node.node import Node

# The header the waiting page polls with; a same-origin script can send it without a CORS
# preflight failing, and no site's own files are ever answered for it.
LOOKUP_HEADER = "X-Peerweb-Lookup"
# A navigation waits this long (seconds) for its lookup before the waiting page is sent. On
# loopback from a 5-node swarm a first lookup (pointer, then metadata) took 15-60 ms, once
# 250 ms (bench/cold_page.py); a blank tab for 0.15 s is unnoticed, while the waiting page
# costs a poll, a reload and a second connection before the site shows.
DIRECT_BUDGET = 0.15
# How soon the waiting page first asks again (milliseconds); each wait is then half as long
# again, up to POLL_MAX_MS. Most lookups that outlast the budget end within a few hundred ms.
POLL_MS = 100
POLL_MAX_MS = 1000
# A failed lookup is reported to the waiting page for this long; a reload starts a new one.
FAILURE_KEEP = 120.0
# At most this many lookups run in the background for waiting pages; beyond, a navigation
# waits on its lookup as other requests do (a page cannot start lookups without bound).
MAX_LOOKUPS = 32


def is_navigation(method: str, headers: Mapping[str, str]) -> bool:
    """A browser loading a page in a tab, as opposed to a script, an image, an iframe or a
    non-browser client. Browsers send ``Sec-Fetch-Mode``/``Sec-Fetch-Dest`` (Fetch Metadata);
    older ones only ``Accept: text/html``. Tools such as curl or wget send neither."""
    if method != "GET":
        return False
    mode = headers.get("Sec-Fetch-Mode")
    if mode is not None:
        return mode == "navigate" and headers.get("Sec-Fetch-Dest", "document") == "document"
    return "text/html" in headers.get("Accept", "")


@dataclass(frozen=True)
class Failure:
    """How a lookup ended without a site to show."""

    kind: str
    """The ``PeerwebError.kind`` it ended with."""
    message: str
    dht_nodes: int
    """DHT nodes this node knew when it gave up (0: it is cut off from the network)."""
    version: int | None
    """Version of the pointer found before it failed (None: none was found)."""
    peers: int
    at: float


@dataclass(frozen=True)
class Advice:
    """A failure in words for the person in front of the browser."""

    headline: str
    detail: str


def advise(failure: Failure) -> Advice:
    """What went wrong and what to do next, without protocol words."""
    if failure.kind == "storage":
        return Advice("Your disk is full or cannot be written",
                      "Free some disk space (or check the data folder's permissions), then "
                      "try again.")
    if failure.dht_nodes == 0 and failure.version is None:
        return Advice("This computer is not connected to the peerweb network",
                      "peerweb could not reach any other node, so it cannot look sites up. "
                      "Check that you are online, then try again. On a private network, "
                      "restart the node with --bootstrap and the address of another node.")
    if failure.version is None:
        return Advice("Nobody is sharing this site right now",
                      "No computer that keeps this site answered. Check that the address is "
                      "complete and correct. If it is, the site's publisher and everyone "
                      "who keeps a copy may be offline: try again later.")
    if failure.kind in ("swarm_timeout", "peer"):
        held = (f"{failure.peers} computers that keep it were reached but none"
                if failure.peers else "none of the computers that keep it")
        return Advice("The site was found, but nobody sent it",
                      f"Version {failure.version} of this site is known, but {held} "
                      "sent its files in time. They may be offline or busy: try again in "
                      "a few minutes.")
    return Advice("This site could not be opened", failure.message)


def status_json(progress: inspect.LookupProgress, running: bool, failure: Failure | None,
                ready: bool, elapsed: float) -> dict[str, Any]:
    """What the waiting page's poll gets: where the lookup is, or how it ended."""
    out: dict[str, Any] = {"version": progress.version, "peers": progress.peers,
                           "metadata": progress.metadata, "elapsed": round(elapsed, 1)}
    if ready:
        out["state"] = "ready"
    elif failure is not None and not running:
        advice = advise(failure)
        out.update(state="failed", headline=advice.headline, detail=advice.detail,
                   kind=failure.kind)
    else:
        out["state"] = "looking"
    return out


class Lookups:
    """The background lookups waiting pages watch, one per site, owned by the gateway."""

    def __init__(self, node: Node, clock: Callable[[], float] = time.monotonic) -> None:
        self.node = node
        self.clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._started: dict[str, float] = {}
        self._failures: dict[str, Failure] = {}

    def start(self, site_id: str) -> bool:
        """Start looking the site up unless that is under way; False when too many are."""
        if site_id in self._tasks:
            return True
        if len(self._tasks) >= MAX_LOOKUPS:
            return False
        self._failures.pop(site_id, None)
        self._started[site_id] = self.clock()
        task = asyncio.get_running_loop().create_task(self._run(site_id))
        self._tasks[site_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(site_id, None))
        return True

    async def _run(self, site_id: str) -> None:
        try:
            await self.node.open_site(site_id)
        except PeerwebError as exc:
            progress = inspect.lookup_progress(self.node, site_id)
            nodes = await self.node.swarm.dht_node_count()
            now = self.clock()
            self._failures = {s: f for s, f in self._failures.items()
                              if now - f.at < FAILURE_KEEP}
            self._failures[site_id] = Failure(exc.kind, str(exc), nodes, progress.version,
                                              progress.peers, now)

    async def wait_ready(self, site_id: str, budget: float) -> bool:
        """Wait up to ``budget`` seconds for the site's lookup to end; whether the site can be
        served now (False when the lookup failed or is still running)."""
        task = self._tasks.get(site_id)
        if task is not None:
            await asyncio.wait({task}, timeout=budget)  # never cancels the lookup
        return inspect.is_ready(self.node, site_id)

    def status(self, site_id: str) -> dict[str, Any]:
        now = self.clock()
        failure = self._failures.get(site_id)
        if failure is not None and now - failure.at >= FAILURE_KEEP:
            failure = None
        return status_json(inspect.lookup_progress(self.node, site_id),
                           site_id in self._tasks, failure, inspect.is_ready(self.node, site_id),
                           now - self._started.get(site_id, now))

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)


async def answer(request: web.Request, lookups: Lookups, site_id: str,
                 budget: float | None = None) -> web.Response | None:
    """The gateway's hook for a request to a site: the lookup's status for the waiting page's
    poll, the waiting page for a navigation to a site not here yet whose lookup did not end
    within ``budget`` seconds (default ``DIRECT_BUDGET``), else None (serve it)."""
    if LOOKUP_HEADER in request.headers:
        return web.json_response(lookups.status(site_id), headers=NO_STORE)
    if (not is_navigation(request.method, request.headers)
            or inspect.is_ready(lookups.node, site_id) or not lookups.start(site_id)):
        return None
    if await lookups.wait_ready(site_id, DIRECT_BUDGET if budget is None else budget):
        return None
    return waiting_page(site_id, lookups.status(site_id))


NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def waiting_page(site_id: str, status: Mapping[str, Any]) -> web.Response:
    nonce = secrets.token_urlsafe(12)
    csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
           "connect-src 'self'; base-uri 'none'; form-action 'none'")
    body = render_waiting(site_id, status, nonce)
    return web.Response(text=body, content_type="text/html",
                        headers={**NO_STORE, "Content-Security-Policy": csp,
                                 "Referrer-Policy": "same-origin"})


def render_waiting(site_id: str, status: Mapping[str, Any], nonce: str) -> str:
    """The waiting page; its script fills in the same steps from each poll."""
    short = html.escape(site_id[:12])
    data = html.escape(json.dumps(dict(status)), quote=True)
    return f"""<!doctype html><html lang=en><meta charset=utf-8>
<meta name=viewport content="width=device-width,initial-scale=1">
<title>Opening a peerweb site…</title>
<noscript><meta http-equiv=refresh content=2></noscript>
<style nonce="{nonce}">{_STYLE}</style>
<main id=lookup data-status="{data}" data-poll="{POLL_MS}" data-poll-max="{POLL_MAX_MS}">
<h1>Opening a peerweb site…</h1>
<p class=id>Site <code title="{html.escape(site_id)}">{short}…</code></p>
<ol>
<li id=step-pointer>Finding the site's signed record in the network</li>
<li id=step-metadata>Getting the list of its files from the computers that keep it</li>
<li id=step-open>Opening the site</li>
</ol>
<p id=note>This page moves on to the site by itself.</p>
<div id=failed hidden><h2 id=headline></h2><p id=detail></p>
<p><button id=retry type=button>Try again</button></p></div>
</main>
<script nonce="{nonce}">{_SCRIPT}</script>
"""


_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;color:#1d2330;background:#f4f6fa;margin:0}
main{max-width:34em;margin:4em auto;padding:2em 2.5em;background:#fff;border-radius:12px;
box-shadow:0 2px 12px #0002}
h1{font-size:1.4em;margin:0 0 .2em}.id{color:#667;margin-top:0}
ol{list-style:none;padding:0}li{padding:.35em 0 .35em 1.9em;position:relative;color:#889}
li::before{content:"";position:absolute;left:.2em;top:.65em;width:.9em;height:.9em;
border-radius:50%;border:2px solid #ccd}
li.now{color:#1d2330}li.now::before{border-color:#2d6cdf;border-right-color:transparent;
animation:spin 1s linear infinite}
li.done{color:#1d2330}li.done::before{background:#2a9d5c;border-color:#2a9d5c}
li.bad{color:#b3261e}li.bad::before{background:#b3261e;border-color:#b3261e}
li small{color:#667}#failed h2{color:#b3261e;font-size:1.15em}
button{font:inherit;padding:.4em 1.2em;border-radius:6px;border:1px solid #2d6cdf;
background:#2d6cdf;color:#fff;cursor:pointer}
@keyframes spin{to{transform:rotate(360deg)}}
"""

_SCRIPT = """
(function () {
  var main = document.getElementById("lookup");
  var poll = +main.dataset.poll, pollMax = +main.dataset.pollMax;
  function mark(id, cls, extra) {
    var li = document.getElementById(id);
    li.className = cls;
    var old = li.querySelector("small");
    if (old) li.removeChild(old);
    if (extra) { var s = document.createElement("small"); s.textContent = " — " + extra;
                 li.appendChild(s); }
  }
  function show(st) {
    var failed = st.state === "failed";
    if (st.version === null) {
      mark("step-pointer", failed ? "bad" : "now",
           !failed && st.elapsed >= 3 ? "still looking (" + Math.round(st.elapsed) + " s)"
                                      : "");
      mark("step-metadata", "", ""); mark("step-open", "", "");
    } else {
      mark("step-pointer", "done", "found version " + st.version);
      var peers = st.peers === 1 ? "1 peer" : st.peers + " peers";
      mark("step-metadata", st.metadata ? "done" : (failed ? "bad" : "now"),
           "connected to " + peers);
      mark("step-open", st.state === "ready" ? "now" : "", "");
    }
    document.getElementById("failed").hidden = !failed;
    document.getElementById("note").hidden = failed;
    if (failed) {
      document.querySelector("h1").textContent = "This site could not be opened";
      document.getElementById("headline").textContent = st.headline;
      document.getElementById("detail").textContent = st.detail;
    }
  }
  function check() {
    fetch(location.href, {headers: {"X-Peerweb-Lookup": "1"}, cache: "no-store"})
      .then(function (r) {
        var type = r.headers.get("Content-Type") || "";
        if (type.indexOf("application/json") !== 0) { location.reload(); return null; }
        return r.json();
      })
      .then(function (st) {
        if (!st) return;
        show(st);
        if (st.state === "ready") location.reload();
        else if (st.state === "looking") {
          poll = Math.min(Math.round(poll * 1.5), pollMax);
          setTimeout(check, poll);
        }
      })
      .catch(function () { setTimeout(check, pollMax); });
  }
  document.getElementById("retry").addEventListener("click", function () {
    location.reload();
  });
  show(JSON.parse(main.dataset.status));
  setTimeout(check, poll);
})();
"""
