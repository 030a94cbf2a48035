"""``WebCache``: the node's web cache, the facade the gateway's extension API, the view
hosts and the peer port call.

- ``seen(url)``: the extension reports a public page the user visited; the node fetches it
  itself (fetcher.py) and keeps it if a shared cache may (cacheable.py), then announces it
  under the URL's DHT key (urls.dht_key) with its peer port.
- ``lookup(url)``: the origin failed; ask the DHT who holds the page, ask a bounded number
  of them for their copy's manifest (peers.py), decide which version to believe (trust.py),
  fetch that version's missing bodies from the holders that vouched for it, each checked
  against the manifest, and keep it as a *rescued* copy the view hosts serve. The whole
  lookup fits in ``lookup_budget``.
- ``page_for_view(url)`` and ``resource_for_view(url)``: what a view host serves, one
  version per page (the sub-resources of the page last shown on that origin).
- ``copy_for_peer`` / ``body_for_peer``: what the peer port hands other nodes (own copies).

Origins that name their peerweb site (``Peerweb-Site`` header, ``/.well-known/peerweb.json``)
are remembered in ``sites.json``; a lookup then points at the signed site instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import BadAddress
from ..fileio import write_atomic
from . import trust, urls
from .copies import BadCopy, Manifest, Resource, body_matches
from .fetcher import Fetched, Fetcher, NotKept
from .pairing import PairingCodes, Tokens
from .peers import BodyMismatch, Peers
from .settings import WebCacheSettings
from .store import Entry, Store
from .uploads import UploadMeter, may_serve

log = logging.getLogger(__name__)
Endpoint = tuple[str, int]
Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]
SITES_FILE = "sites.json"
# A page fetched this recently is not fetched again when seen again.
REFETCH_AFTER = 60.0
# An origin's /.well-known/peerweb.json is asked for at most this often.
WELL_KNOWN_EVERY = 24 * 3600.0
# At most this many page fetches run at once, and this many wait (more seen pages are
# dropped: the extension reports every visit, the node keeps up or skips).
FETCHES_AT_ONCE = 4
MAX_QUEUED = 256
# Outcomes of recent fetches kept for /_ext/wait.
MAX_OUTCOMES = 512
# How long a view request waits on a rescue still fetching its bodies.
VIEW_WAIT = 10.0
# The DHT lookup gathers holders this long after the first answer naming any.
PEERS_GRACE = 0.15


class Dht(Protocol):
    """What the web cache needs of the swarm (``peerweb.swarm.engine.Swarm``)."""

    def announce(self, key: bytes, port: int) -> None: ...

    async def find_peers(self, key: bytes, timeout: float,
                         grace: float | None = None) -> list[tuple[str, int]]: ...


class UploadRate(Protocol):
    """The swarm's current upload rate in B/s (``SwarmStats.upload_rate``)."""

    async def __call__(self) -> int: ...


async def _no_swarm_upload() -> int:
    return 0


@dataclass(frozen=True)
class Lookup:
    """A lookup's answer, as ``/_ext/lookup`` sends it."""

    found: bool
    holders: int = 0
    agreeing: int = 0
    fetched_at: int | None = None
    signed_site: str | None = None
    reason: str = ""


class WebCache:
    def __init__(self, settings: WebCacheSettings | None, data_dir: Path, dht: Dht,
                 peer_endpoint: Callable[[], Endpoint], spawn: Spawn,
                 rng: random.Random | None = None, upload_limit: int = 0,
                 swarm_upload: UploadRate = _no_swarm_upload) -> None:
        self.settings = settings
        self.root = data_dir / "webcache"
        self.dht = dht
        self.peer_endpoint = peer_endpoint
        self.spawn = spawn
        self.rng = rng or random.Random()
        self.pairing = PairingCodes()
        self.tokens = Tokens(data_dir)
        self.reputation = trust.Reputation()
        self.store = Store(self.root, settings.size if settings else 1)
        self._fetcher = Fetcher(settings) if settings else None
        self._peers = Peers(settings.holder_timeout if settings else 1.0,
                            local=lambda: self.peer_endpoint()[0])
        self._fetching: dict[str, asyncio.Task[None]] = {}
        self._gate = asyncio.Semaphore(FETCHES_AT_ONCE)
        self._outcomes: dict[str, str | None] = {}
        self._rescues: dict[str, asyncio.Task[bool]] = {}
        self._active: dict[str, Entry] = {}  # origin -> the page version last shown there
        self._sites: dict[str, str] = {}  # origin -> site id
        self._well_known_asked: dict[str, float] = {}
        self._lookups: dict[str, asyncio.Task[Lookup]] = {}
        self._agreeing: dict[str, int] = {}  # url -> holders agreeing at its last lookup
        self.upload_limit = upload_limit
        self._swarm_upload = swarm_upload
        self._uploads = UploadMeter()
        self._swarm_rate: tuple[float, int] = (-1.0, 0)  # (when asked, B/s): asked once a second

    @property
    def enabled(self) -> bool:
        return self.settings is not None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self.settings is None:
            return
        self.store.load()
        with contextlib.suppress(OSError, ValueError):
            raw = json.loads((self.root / SITES_FILE).read_text())
            if isinstance(raw, dict):
                self._sites = {k: v for k, v in raw.items()
                               if isinstance(k, str) and isinstance(v, str)}
        self.spawn(self._announce_loop())

    async def close(self) -> None:
        if self._fetcher is not None:
            await self._fetcher.close()
        await self._peers.close()

    def status(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "size": self.settings.size if self.settings else 0,
                "used": self.store.used if self.settings else 0,
                "entries": len(self.store) if self.settings else 0}

    # -- the user's visits -----------------------------------------------------------------

    def seen(self, url: str) -> str | None:
        """Queue a fetch of a page the user visited; None if queued, else why not."""
        if self.settings is None or self._fetcher is None:
            return "web cache disabled"
        try:
            normal = urls.normalise(url)
        except BadAddress as exc:
            return str(exc)
        if normal in self._fetching:
            return None
        held = self.store.get(normal, own=True)
        if held is not None and time.time() - held.fetched_at < REFETCH_AFTER:
            self._outcome(normal, None)
            return None
        if len(self._fetching) >= MAX_QUEUED:
            return "too many pages waiting to be fetched; try again later"
        task = self.spawn(self._fetch(normal))
        self._fetching[normal] = task
        task.add_done_callback(lambda _t: self._fetching.pop(normal, None))
        return None

    async def wait_seen(self, url: str, timeout: float) -> tuple[bool, str | None]:
        """Wait for a queued fetch of ``url``: (kept, why not)."""
        normal = urls.normalise(url)
        task = self._fetching.get(normal)
        if task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), timeout)
        if normal in self._fetching:
            return False, "still fetching"
        reason = self._outcomes.get(normal, "never seen")
        return reason is None, reason

    async def _fetch(self, url: str) -> None:
        assert self._fetcher is not None
        async with self._gate:
            origin = urls.origin_of(url)
            try:
                fetched: Fetched | None = await self._fetcher.fetch_page(url)
                assert fetched is not None
                hint = fetched.site_hint
            except NotKept as exc:
                fetched, hint = None, exc.site_hint
                self._outcome(url, exc.reason)
                # A page that is no longer shareable (it now sets a cookie, say) is dropped.
                if self.store.drop(url, own=True):
                    log.info("web cache: dropped %s: %s", url, exc.reason)
            await self._learn_site(origin, hint)
            if fetched is None:
                return
            final = fetched.manifest.url
            kept = await asyncio.to_thread(self.store.put, fetched.manifest, fetched.bodies,
                                           int(time.time()), True, 1, time.monotonic())
            if not kept:
                self._outcome(url, "larger than the whole web cache")
                return
            self._outcome(url, None)
            if final != url:
                self._outcome(final, None)
            self._announce(final)

    def _outcome(self, url: str, reason: str | None) -> None:
        self._outcomes.pop(url, None)
        self._outcomes[url] = reason
        while len(self._outcomes) > MAX_OUTCOMES:
            del self._outcomes[next(iter(self._outcomes))]

    async def _learn_site(self, origin: str, hint: str | None) -> None:
        if hint is None and self._fetcher is not None:
            last = self._well_known_asked.get(origin)
            if last is None or time.monotonic() - last > WELL_KNOWN_EVERY:
                self._well_known_asked[origin] = time.monotonic()
                hint = await self._fetcher.well_known(origin)
        if hint is not None and self._sites.get(origin) != hint:
            self._sites[origin] = hint
            write_atomic(self.root / SITES_FILE, json.dumps(self._sites).encode())

    # -- announcing ------------------------------------------------------------------------

    def _announce(self, url: str) -> None:
        port = self.peer_endpoint()[1]
        if port:
            self.dht.announce(urls.dht_key(url), port)

    async def _announce_loop(self) -> None:
        assert self.settings is not None
        while True:
            for entry in self.store.own_entries():
                self._announce(entry.manifest.url)
            await asyncio.sleep(self.settings.announce_interval)

    # -- lookups ---------------------------------------------------------------------------

    def signed_site(self, url: str) -> str | None:
        return self._sites.get(urls.origin_of(url))

    async def lookup(self, url: str) -> Lookup:
        """Find a copy of ``url`` held by peers (see the module docstring); one lookup per
        URL at a time, bounded by ``lookup_budget``."""
        if self.settings is None:
            return Lookup(False, reason="web cache disabled")
        normal = urls.normalise(url)  # BadAddress: the caller's 400
        site = self.signed_site(normal)
        if site is not None:
            return Lookup(True, signed_site=site)
        task = self._lookups.get(normal)
        if task is None:
            task = self.spawn(self._lookup(normal))
            self._lookups[normal] = task
            task.add_done_callback(lambda _t: self._lookups.pop(normal, None))
        return await asyncio.shield(task)

    async def _lookup(self, url: str) -> Lookup:
        assert self.settings is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.lookup_budget
        own = self.store.get(url, own=True)
        own_answer = trust.Answer(("self", 0), own.digest, own.fetched_at) if own else None
        found = await self.dht.find_peers(urls.dht_key(url), self.settings.dht_timeout,
                                          PEERS_GRACE)
        now = time.time()
        mine = self.peer_endpoint()
        asked = trust.pick_holders(found, mine, self.reputation, time.monotonic(), self.rng)
        budget = max(0.05, min(self.settings.holder_timeout, deadline - loop.time()))
        copies = await asyncio.gather(*(self._ask(e, url, budget) for e in asked))
        answers, manifests = [], {}
        for endpoint, got in zip(asked, copies, strict=True):
            if got is None:
                continue
            manifest, fetched_at = got
            digest = manifest.digest()
            manifests[digest] = manifest
            answers.append(trust.Answer(endpoint, digest, fetched_at))
        if own is not None:
            manifests[own.digest] = own.manifest
        choice = trust.choose(answers, own_answer, self.settings.agree, now)
        for liar in choice.contradicted:
            log.warning("web cache: holder %s:%d contradicted for %s", *liar, url)
            self.reputation.caught(liar, time.monotonic())
        if choice.digest is None:
            held = self.store.get(url, own=False)
            if held is not None:  # rescued earlier, nobody to ask now: still that copy
                return Lookup(True, len(answers), held.agreeing, held.fetched_at)
            return Lookup(False, len(answers), choice.agreeing, reason=choice.reason)
        assert choice.fetched_at is not None
        self._agreeing.pop(url, None)
        self._agreeing[url] = choice.agreeing
        while len(self._agreeing) > MAX_OUTCOMES:
            del self._agreeing[next(iter(self._agreeing))]
        if own is not None and choice.digest == own.digest:
            self.store.drop(url, own=False)  # the view shows the chosen copy: this one
            return Lookup(True, len(answers), choice.agreeing, own.fetched_at)
        manifest = manifests[choice.digest]
        rescue = self._rescues.get(url)
        if rescue is None or rescue.done():
            rescue = self.spawn(self._rescue(manifest, choice))
            self._rescues[url] = rescue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(rescue), max(0.0, deadline - loop.time()))
        if rescue.done() and not rescue.result():
            return Lookup(False, len(answers), choice.agreeing,
                          reason="the holders that agreed could not send the page")
        return Lookup(True, len(answers), choice.agreeing, choice.fetched_at)

    async def _ask(self, endpoint: Endpoint, url: str,
                   timeout: float) -> tuple[Manifest, int] | None:
        try:
            async with asyncio.timeout(timeout):
                return await self._peers.copy(endpoint, url)
        except TimeoutError:
            return None

    async def _rescue(self, manifest: Manifest, choice: trust.Choice) -> bool:
        """Fetch the chosen version's missing bodies from the holders that vouched for it,
        each body checked; keep the version as a rescued copy. False if it could not."""
        assert self.settings is not None
        bodies: dict[str, bytes] = {}
        wanted = [r for r in manifest.resources if r.sha256 in self.store.missing(manifest)]
        wanted = list({r.sha256: r for r in wanted}.values())
        sources = [v for v in choice.vouchers]
        if not sources and wanted:
            return False
        gate = asyncio.Semaphore(8)

        async def one(index: int, resource: Resource) -> bool:
            async with gate:
                for attempt in range(len(sources)):
                    source = sources[(index + attempt) % len(sources)]
                    if self.reputation.avoided(source, time.monotonic()):
                        continue
                    try:
                        bodies[resource.sha256] = await self._peers.body(
                            source, resource, VIEW_WAIT)
                        return True
                    except BodyMismatch as exc:
                        log.warning("web cache: holder %s:%d %s", *source, exc)
                        self.reputation.caught(source, time.monotonic())
                    except BadCopy:
                        continue
                return False

        results = await asyncio.gather(*(one(i, r) for i, r in enumerate(wanted)))
        if not all(results):
            return False
        for source in sources:
            if not self.reputation.avoided(source, time.monotonic()):
                self.reputation.vouched(source)
        assert choice.fetched_at is not None
        return await asyncio.to_thread(self.store.put, manifest, bodies, choice.fetched_at,
                                       False, choice.agreeing, time.monotonic())

    # -- the view hosts --------------------------------------------------------------------

    async def page_for_view(self, url: str) -> tuple[Entry, Resource, bytes] | None:
        """A page version held for ``url`` and the page's body; it becomes its origin's
        active version (its sub-resources are served from it)."""
        rescue = self._rescues.get(url)
        if rescue is not None and not rescue.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(rescue), VIEW_WAIT)
        entry = self.store.get(url, own=False) or self.store.get(url, own=True)
        if entry is None:
            return None
        found = self._read(entry, entry.manifest.page)
        if found is None:
            return None
        self._active[urls.origin_of(url)] = entry
        self.store.touch(url, entry.own, time.monotonic())
        return entry, entry.manifest.page, found

    def agreeing(self, entry: Entry) -> int:
        """How many independent holders vouched for a version at its last lookup."""
        return max(entry.agreeing, self._agreeing.get(entry.manifest.url, 0))

    def resource_for_view(self, url: str) -> tuple[Entry, Resource, bytes] | None:
        """A sub-resource from the version of the page last shown on its origin (never
        from another version); else a page held under that URL itself."""
        active = self._active.get(urls.origin_of(url))
        if active is not None:
            resource = active.manifest.find(url)
            if resource is not None and resource is not active.manifest.page:
                body = self._read(active, resource)
                return (active, resource, body) if body is not None else None
        return None

    def _read(self, entry: Entry, resource: Resource) -> bytes | None:
        body = self.store.body(resource.sha256)
        if body is None or not body_matches(resource, body):
            return None  # the disk changed under us: show nothing rather than other bytes
        return body

    # -- the peer port ---------------------------------------------------------------------

    def copy_for_peer(self, url: str) -> dict[str, Any] | None:
        if self.settings is None:
            return None
        try:
            entry = self.store.get(urls.normalise(url), own=True)
        except BadAddress:
            return None
        if entry is None:
            return None
        return {"manifest": entry.manifest.to_json(), "fetched_at": entry.fetched_at}

    def body_for_peer(self, sha256: str) -> bytes | None:
        if self.settings is None:
            return None
        return self.store.body(sha256)

    async def may_upload(self, size: int) -> bool:
        """Whether a body of ``size`` bytes fits in the node's upload limit now (uploads.py);
        if so it is counted as sent."""
        now = time.monotonic()
        if self.upload_limit > 0 and now - self._swarm_rate[0] >= 1.0:
            self._swarm_rate = (now, await self._swarm_upload())
        if not may_serve(self._swarm_rate[1], self._uploads.rate(now), size, self.upload_limit):
            return False
        self._uploads.add(size, now)
        return True
