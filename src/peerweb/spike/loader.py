"""The verifying loader's first-party half: what an origin serves so that visitors who run
nothing still see only bytes their browser has checked.

When the origin hands off, a page request gets a small page from the origin itself that
installs a Service Worker (static/sw.js), takes the page through it and writes it in place
(a reload, for anything but an HTML page). The worker takes the site key and the mirror
list from the origin (``CONFIG_PATH``, handed over by the loader page on a first visit),
then verifies everything the mirrors send against the publisher's signature
(static/verify.js). Browsers without Service Workers or without Ed25519 in WebCrypto get
the plain, unverified redirect instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from ..content.identity import public_key_from_site_id
from ..content.sitemap import content_type
from ..errors import UsageError

SW_PATH = "/.peerweb/sw.js"
VERIFY_PATH = "/.peerweb/verify.js"
CONFIG_PATH = "/.peerweb/worker.json"
WORKER_HEADER = "X-Peerweb-Worker"
"""Sent by the worker on requests it wants the origin to answer itself (never hand off)."""

_PARTS = ("verify.js", "decide.js", "prefetch.js")
"""The worker's parts, in the order it needs them: the checks (verify.js), the decisions
(decide.js: mirror choice, hedging, every timing), the small files and the bundle
(prefetch.js); sw.js itself, the events and the I/O, comes last."""
PART_PATHS = tuple(f"/.peerweb/{name}" for name in _PARTS)
"""Each part on its own, for pages that load one (the browser tests) and for sw.js served
alone (it imports what it lacks)."""
ASSET_PATHS = (SW_PATH, *PART_PATHS)

PAGE_STYLE = "font:16px system-ui;max-width:40em;margin:3em auto"
"""The style of the pages peerweb shows a visitor itself (the loader page here; the
worker's error page in sw.js is the same)."""


@dataclass(frozen=True)
class WorkerTimings:
    """How long the visitor's worker (and the loader page) waits for what, in seconds: sent
    in ``CONFIG_PATH`` and the loader page (``timings``), so an origin (or a test) can
    shorten them. The worker keeps the same defaults (decide.js ``DEFAULT_TIMINGS``) for an
    origin that names none."""

    config_refresh: float = 5.0
    """Between asks for the origin's mode and mirrors while the worker is in use; also how
    long the config the loader page hands over is good for."""
    config_wait: float = 1.0
    """For the origin's answer before going on with the mirrors it named last."""
    record_ttl: float = 15.0
    """A verified version record is trusted this long before mirrors are asked again."""
    record_wait: float = 3.0
    """For a mirror's signed record before going on without it."""
    hedge_after: float = 1.5
    """Before a slow mirror gets company: a second mirror is asked for the same bytes."""
    fetch_timeout: float = 15.0
    """Before a request to a mirror is given up."""
    bundle_wait: float = 1.5
    """The page's requests for small files wait on a bundle this long before going alone."""
    handoff_mark: float = 60.0
    """The time of the last hand-off seen is stored at most this often."""
    release_after: float = 600.0
    """Of normal mode after the last hand-off before the worker unregisters itself."""
    takeover_wait: float = 5.0
    """The loader page's: for the worker to take over before the page sends the browser
    to a mirror, unverified (a browser that blocks workers may never say no)."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if not getattr(self, field.name) >= 0:
                raise UsageError(f"worker timing {field.name} must be >= 0 seconds")

    def to_json(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@cache
def asset(path: str) -> tuple[bytes, str] | None:
    """The worker's scripts by URL path, with an ETag; None for other paths. ``SW_PATH`` is
    every part and sw.js back to back: the worker starts after one request, not four."""
    if path not in ASSET_PATHS:
        return None
    folder = resources.files("peerweb.spike") / "static"
    names = (*_PARTS, "sw.js") if path == SW_PATH else (path.rsplit("/", 1)[1],)
    body = b"\n".join((folder / name).read_bytes() for name in names)
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def asset_headers(path: str, etag: str) -> dict[str, str]:
    headers = {"Content-Type": content_type(path), "ETag": etag,
               # Revalidated each time (cheap, by ETag), so a fixed worker reaches visitors.
               "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if path == SW_PATH:
        headers["Service-Worker-Allowed"] = "/"  # the worker lives in /.peerweb/, serves /
    return headers


def page_headers() -> dict[str, str]:
    """Headers of the loader page (never cached: the next visit may not be handed off)."""
    return {"Content-Type": content_type("loader.html"), "Cache-Control": "no-store"}


def wants_page(headers: Mapping[str, str]) -> bool:
    """Whether a request is a browser loading a page (where the loader can run)."""
    dest = headers.get("Sec-Fetch-Dest")
    if dest is not None:
        return dest == "document"
    return "text/html" in headers.get("Accept", "")


def gateway_root(mirror: str, site_id: str) -> str | None:
    """``http://host:port`` of a mirror given as ``http://host:port/s/<site-id>``: the worker
    asks the gateway itself for records, torrents and snapshots."""
    suffix = f"/s/{site_id}"
    base = mirror.rstrip("/")
    return base[: -len(suffix)] if base.endswith(suffix) else None


def worker_config(site_id: str, handing_off: bool, mirrors: Sequence[str],
                  version: int | None = None, timings: WorkerTimings = WorkerTimings()
                  ) -> dict[str, object]:
    """What the worker is told (``CONFIG_PATH``, and the loader page): the site key, the
    origin's mode, the mirrors' gateway roots, the version it knows and the timings."""
    roots = [r for r in (gateway_root(m, site_id) for m in mirrors) if r]
    config: dict[str, object] = {
        "site_id": site_id,
        "public_key": public_key_from_site_id(site_id).hex(),
        "mode": "handoff" if handing_off else "normal",
        "mirrors": list(dict.fromkeys(roots)),
        "timings": timings.to_json(),
    }
    if version is not None:
        config["version"] = version  # the worker refuses any older record
    return config


def loader_page(config: Mapping[str, object], fallback: str) -> bytes:
    """The page that installs the worker, or sends the browser on to ``fallback`` (a plain
    redirect to a mirror, unverified) when it cannot. It hands the worker ``config`` (from
    ``worker_config``), so a first visit does not ask the busy origin for it once more."""
    values = json.dumps({"config": config, "fallback": fallback, "sw": SW_PATH})
    # "</" cannot end the script early: JSON escapes nothing else that matters here.
    values = values.replace("</", "<\\/")
    return (_PAGE.replace("__STYLE__", PAGE_STYLE).replace("__VALUES__", values)
            .replace("__FALLBACK__", html.escape(fallback, quote=True)).encode())


_PAGE = """<!doctype html><meta charset=utf-8><title>Loading…</title>
<meta name=viewport content="width=device-width">
<link rel=icon href="data:,">
<body style="__STYLE__">
<p id=peerweb-loading>This site is busy: loading a verified copy from its mirrors…</p>
<noscript><p>Without JavaScript the page cannot be checked.
<a href="__FALLBACK__">Open an unverified copy.</a></p></noscript>
<script>
(async () => {
  const c = __VALUES__;
  const plain = () => location.replace(c.fallback);
  // A page that keeps coming back means the worker does not take over: stop trying.
  const tries = Number(sessionStorage.getItem('peerweb-loader') || 0);
  sessionStorage.setItem('peerweb-loader', tries + 1);
  if (tries >= 2 || !('serviceWorker' in navigator) || !crypto.subtle) return plain();
  const hex = new Uint8Array(c.config.public_key.match(/../g).map((b) => parseInt(b, 16)));
  const sw = navigator.serviceWorker;
  const takeOver = (async () => {
    // The worker downloads while the key check runs: neither waits for the other. Its URL
    // carries the origin's config, dated by this browser's clock (the worker's own).
    const boot = encodeURIComponent(JSON.stringify({...c.config, at: Date.now()}));
    const registering = sw.register(`${c.sw}?boot=${boot}`, {scope: '/'});
    try {
      await crypto.subtle.importKey('raw', hex, {name: 'Ed25519'}, false, ['verify']);
    } catch (err) {
      registering.then((r) => r.unregister(), () => {});
      throw err;
    }
    await registering;
    await sw.ready;
    if (!sw.controller) {
      await new Promise((done) => sw.addEventListener('controllerchange', done, {once: true}));
    }
  })();
  let timer;
  const wait = (c.config.timings || {}).takeover_wait ?? 5;
  const late = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error('no worker')), 1000 * wait);
  });
  try {
    await Promise.race([takeOver, late]);
  } catch (err) {
    console.warn('peerweb: no verifying loader here:', err);
    return plain();
  }
  clearTimeout(timer);
  // The worker controls this page now: write the verified page in place, which spares a
  // second navigation. Anything but this URL's own HTML page goes through a reload.
  try {
    const response = await fetch(location.href);
    const type = response.headers.get('Content-Type') || '';
    if (response.ok && !response.redirected && type.startsWith('text/html')) {
      const page = await response.text();
      sessionStorage.removeItem('peerweb-loader'); // it worked: no loop to guard against
      document.open();
      document.write(page);
      document.close();
      return;
    }
  } catch (err) {
    console.warn('peerweb: reloading:', err);
  }
  location.reload();
})();
</script>
"""
