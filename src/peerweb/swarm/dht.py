"""The DHT calls: signed pointers (BEP 44 / BEP 46) and announces under any key.

Each call is a request to libtorrent answered by alerts: a put by ``dht_put_alert``, a get by
one ``dht_mutable_item_alert`` per storing node and an authoritative one at the end, a peer
lookup by one ``dht_get_peers_reply_alert`` per DHT node that answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import libtorrent as lt

from ..config import Timings
from ..content import bencode
from ..content import pointer as ptr
from ..content.identity import SiteKey
from ..errors import ForgedPointer
from .handle import Session
from .rendezvous import Rendezvous

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _PutOutcome:
    num_success: int
    seq: int
    signature: bytes


@dataclass(frozen=True)
class _PeerLookup:
    found: set[tuple[str, int]]
    answered: asyncio.Event


class Dht:
    """Pointer puts and gets, announces and peer lookups, over the session's DHT."""

    def __init__(self, session: Callable[[], Session], timings: Timings) -> None:
        self._session = session
        self.timings = timings
        self._puts: Rendezvous[bytes, _PutOutcome] = Rendezvous()
        # A key stays open while its lookup runs, waited on or not: a get that comes then
        # joins it rather than starting another.
        self._gets: Rendezvous[bytes, ptr.Pointer | None] = Rendezvous()
        # The newest verified item heard during each open lookup, and whether any came yet.
        self._best: dict[bytes, ptr.Pointer] = {}
        self._seen: dict[bytes, asyncio.Event] = {}
        self._peer_lookups: dict[bytes, _PeerLookup] = {}

    # -- pointers (BEP 44 / BEP 46) -----------------------------------------------------------

    async def put_pointer(self, key: SiteKey, infohash: bytes, version: int, timeout: float,
                          trackers: tuple[str, ...] = (), web_seeds: tuple[str, ...] = (),
                          domains: tuple[str, ...] = ()) -> tuple[ptr.Pointer | None, int]:
        """Store a signed pointer in the DHT. Returns the pointer libtorrent signed (None if the
        put did not finish in time) and how many DHT nodes stored it."""
        record = ptr.encode_record(infohash, version, trackers, web_seeds, domains)
        future = self._puts.wait(key.public_key)
        self._session().dht_put_mutable_item(key.expanded_secret, key.public_key, record, b"")
        try:
            async with asyncio.timeout(timeout):
                outcome = await asyncio.shield(future)
        except TimeoutError:
            log.info("DHT put for %s not confirmed within %.0f s", key.site_id[:12], timeout)
            return None, 0
        try:
            signed = ptr.verify(key.public_key, outcome.seq, ptr.wrap(record), outcome.signature)
        except ForgedPointer:
            signed = None
        return signed, outcome.num_success

    async def get_pointer(self, public_key: bytes, timeout: float) -> ptr.Pointer | None:
        """The newest validly signed pointer the DHT holds for a key, or None.

        Returns at the authoritative end of the lookup, or ``item_grace`` after the first verified
        item (a lookup can wait seconds on slow or silent nodes; a newer version, if any, comes
        from the other storing nodes within that grace).
        """
        first = public_key not in self._gets
        future = self._gets.wait(public_key)
        seen = self._seen.setdefault(public_key, asyncio.Event())
        if first:
            self._session().dht_get_mutable_item(public_key, b"")
        await lookup_end_or_grace(future, seen, timeout, self.timings.item_grace)
        if future.done() and not future.cancelled():
            return future.result()
        # No authoritative answer yet: settle for the best verified item heard so far.
        self._gets.discard(public_key, future)
        return self._best.get(public_key)

    def on_put(self, alert: Any) -> None:
        outcome = _PutOutcome(int(alert.num_success), int(alert.seq), bytes(alert.signature))
        self._puts.settle(bytes(alert.public_key), outcome)

    def on_item(self, alert: Any) -> None:
        key = bytes(alert.key)
        signature = bytes(alert.signature)
        # A lookup that found nothing ends with an empty item and an all-zero signature.
        if any(signature):
            self._consider_item(key, alert)
        if alert.authoritative:
            self._seen.pop(key, None)
            self._gets.settle(key, self._best.pop(key, None))

    def _consider_item(self, key: bytes, alert: Any) -> None:
        item = alert.item
        # The bindings hand a string item over as its bytes and anything else as an object.
        value = bencode.encode(item) if isinstance(item, bytes) else bytes(lt.bencode(item))
        try:
            found = ptr.verify(key, int(alert.seq), value, bytes(alert.signature),
                               bytes(alert.salt))
        except ForgedPointer as exc:
            log.warning("ignored a forged pointer for %s: %s", key.hex()[:16], exc)
            return
        if ptr.is_newer(found, self._best.get(key)):
            self._best[key] = found
        seen = self._seen.get(key)
        if seen is not None:
            seen.set()

    # -- announcing under any key (holders of a site) ----------------------------------------

    def announce(self, key: bytes, port: int) -> None:
        """Tell the DHT that this node listens on ``port`` for ``key`` (20 bytes)."""
        self._session().dht_announce(lt.sha1_hash(key), port, 0)

    async def find_peers(self, key: bytes, timeout: float,
                         grace: float | None = None) -> list[tuple[str, int]]:
        """Endpoints announced under ``key``: all that the DHT nodes near it report within
        ``grace`` (default ``peers_grace``) of the first answer that named any; empty if none
        did in time."""
        lookup = self._peer_lookups.get(key)
        if lookup is None:
            lookup = self._peer_lookups[key] = _PeerLookup(set(), asyncio.Event())
            self._session().dht_get_peers(lt.sha1_hash(key))
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await lookup.answered.wait()
                    await asyncio.sleep(self.timings.peers_grace if grace is None else grace)
            return sorted(lookup.found)
        finally:
            if self._peer_lookups.get(key) is lookup:
                del self._peer_lookups[key]

    async def find_peers_many(self, keys: Sequence[bytes], timeout: float,
                              grace: float | None = None) -> list[tuple[str, int]]:
        """``find_peers`` of several keys at once (a site's holder shards): all that the
        DHT nodes near any of them report within ``grace`` of the first answer, on any
        key, that named a peer; a key nobody announced under costs no wait of its own."""
        return sorted(set().union(*await self.find_peers_each(keys, timeout, grace)))

    async def find_peers_each(self, keys: Sequence[bytes], timeout: float,
                              grace: float | None = None) -> list[set[tuple[str, int]]]:
        """``find_peers_many``, what each key (distinct, in order) named apart: a site's
        shard count follows how full its shards look (``propagation.holder_shards``)."""
        started: list[tuple[bytes, _PeerLookup]] = []
        for key in dict.fromkeys(keys):
            lookup = self._peer_lookups.get(key)
            if lookup is None:
                lookup = self._peer_lookups[key] = _PeerLookup(set(), asyncio.Event())
                self._session().dht_get_peers(lt.sha1_hash(key))
            started.append((key, lookup))
        waits = [asyncio.ensure_future(lookup.answered.wait()) for _, lookup in started]
        try:
            done, _ = await asyncio.wait(waits, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            if done:
                await asyncio.sleep(self.timings.peers_grace if grace is None else grace)
            return [set(lookup.found) for _, lookup in started]
        finally:
            for wait in waits:
                wait.cancel()
            for key, lookup in started:
                if self._peer_lookups.get(key) is lookup:
                    del self._peer_lookups[key]

    def on_peers(self, alert: Any) -> None:
        # One alert per DHT node that answered: gather them while the lookup is open.
        lookup = self._peer_lookups.get(bytes(alert.info_hash.to_bytes()))
        if lookup is not None:
            lookup.found.update((str(host), int(port)) for host, port in alert.peers())
            if lookup.found:
                lookup.answered.set()

    def cancel_all(self) -> None:
        """Cancel every put and get still waiting (the session is going away)."""
        self._puts.cancel_all()
        self._gets.cancel_all()


async def lookup_end_or_grace(future: asyncio.Future[Any], seen: asyncio.Event,
                              timeout: float, grace: float) -> None:
    """Wait for a DHT lookup's authoritative end (``future``), but no longer than ``grace``
    after the first verified item (``seen``), and never past ``timeout`` in all; the future
    is never cancelled here."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen_task = loop.create_task(seen.wait())
    try:
        either: set[asyncio.Future[Any]] = {future, seen_task}
        await asyncio.wait(either, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not future.done() and seen_task.done():
            await asyncio.wait({future}, timeout=min(grace, max(0.0, deadline - loop.time())))
    finally:
        seen_task.cancel()
