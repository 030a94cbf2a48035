"""The node's name service: petnames, records of zones through the DHT, and a cache.

The adapter between the pure parts (``resolution.Walk``, ``records``) and the world: the
DHT (any ``ItemStore``: the swarm, or a fake in tests), the address book and the zone file
in the data dir, and the clock. Every record heard passes ``records.newest``, which refuses
forged ones and ones older than a version already seen (a replay), before it is cached.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..config import Timings
from ..content.identity import KeyStore, SiteKey, public_key_from_site_id
from ..content.item import SignedItem
from ..content.pointer import signed_message
from ..errors import PeerwebError, UnknownName, UsageError
from . import records as rec
from .petnames import PetnameBook
from .resolution import Query, RecordCache, Resolution, Walk
from .zone import OwnRecord, ZoneBook

log = logging.getLogger(__name__)


class ItemStore(Protocol):
    """Salted BEP 44 items in a DHT (``peerweb.swarm.Swarm`` is one)."""

    async def put_item(self, key: SiteKey, value: bytes, salt: bytes, timeout: float) -> int:
        ...

    async def get_items(self, public_key: bytes, salt: bytes,
                        timeout: float) -> list[SignedItem]:
        ...


@dataclass(frozen=True)
class Published:
    """What ``publish`` did."""

    record: OwnRecord
    stored: int
    """How many DHT nodes confirmed the put (0: none yet; the re-put loop tries again)."""

    def to_json(self) -> dict[str, object]:
        r = self.record
        return {"zone": r.zone, "key": r.key_name, "label": r.label, "target": r.target,
                "version": r.version, "ttl": r.ttl, "revoked": not r.target,
                "stored": self.stored}


class NameService:
    """Resolves names for the gateway, the control API and the CLI; publishes records."""

    def __init__(self, data_dir: Path, keys: KeyStore, store: ItemStore, timings: Timings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.book = PetnameBook(data_dir)
        self.zones = ZoneBook(data_dir)
        self.cache = RecordCache()
        self._keys = keys
        self._store = store
        self._timings = timings
        self._clock = clock
        self.refused = 0
        """Records refused so far (forged, or replays of older versions)."""
        self.bridge: Callable[[str], Awaitable[Resolution]] | None = None
        """Resolves a DNS domain bridged with ``_peerweb`` (``names.bridge``), tried when
        a name's last label is no petname or site id; set by the node."""

    # -- resolving -----------------------------------------------------------------------

    async def knows(self, name: str) -> bool:
        """Whether ``name`` names a site (the DNS listener answers ``NAME.peer`` then)."""
        try:
            await self.resolve(name)
        except PeerwebError:
            return False
        return True

    async def resolve(self, name: str) -> Resolution:
        """What ``name`` names; UnknownName (404) with what to do when it names nothing.
        The address book comes first: a petname ``com`` would shadow every ``x.com``."""
        try:
            walk = Walk(name, self.book.get, self._clock())
        except UnknownName as exc:
            if self.bridge is None or "." not in name.strip(".") or ":" in name:
                raise
            try:
                return await self.bridge(name)
            except UnknownName as bridged:
                raise UnknownName(f"{exc} Nor is it a bridged domain: {bridged}") from None
        while (query := walk.next_query()) is not None:
            walk.answer(await self.lookup(query))
        return walk.result()

    def resolve_nowait(self, name: str) -> Resolution | None:
        """What ``name`` names from the address book and records within their TTL only;
        None where a record would have to be looked up (or the name names nothing)."""
        try:
            walk = Walk(name, self.book.get, self._clock())
            while (query := walk.next_query()) is not None:
                cached = self.cache.get(query, self._clock())
                if cached is None:
                    return None
                walk.answer(cached.record)
        except PeerwebError:
            return None
        return walk.result()

    async def lookup(self, query: Query) -> rec.ZoneRecord | None:
        """The record of a label: from the cache within its TTL, else from the DHT."""
        cached = self.cache.get(query, self._clock())
        if cached is not None:
            return cached.record
        items: list[SignedItem] = []
        for _ in range(max(1, self._timings.dht_get_attempts)):
            items = await self._store.get_items(query.zone, query.salt,
                                                self._timings.dht_get_timeout)
            if items:
                break
        return self.consider(query, items)

    def consider(self, query: Query, items: list[SignedItem]) -> rec.ZoneRecord | None:
        """Keep the newest valid record among ``items`` (and the newest seen before); log
        and count the refused ones. None if there is no valid record at all."""
        best, refused = rec.newest(items, query.salt, self.cache.newest(query))
        for reason in refused:
            self.refused += 1
            log.warning("refused a record of %r in zone %s: %s", query.label,
                        query.zone.hex()[:16], reason)
        if not items:
            # The DHT holds nothing (the record expired there, or was never put): a record
            # past its TTL is not served again, but its version stays the floor against
            # replays. When only refused items came, the newest known one still holds.
            best = None
        self.cache.put(query, best, self._clock())
        return best

    # -- publishing ----------------------------------------------------------------------

    async def publish(self, key_name: str, label: str, target: str | None,
                      ttl: int = rec.DEFAULT_TTL) -> Published:
        """Sign and put the record of ``label`` in the zone of key ``key_name``: ``target``
        (a site id) or, with None, a revocation. Its version is one past the highest this
        node noted, the cache saw, or the DHT holds."""
        label = rec.check_label(label)
        if not rec.MIN_TTL <= ttl <= rec.MAX_TTL:
            raise UsageError(f"a TTL is {rec.MIN_TTL} to {rec.MAX_TTL} seconds")
        key = self._keys.get(key_name)
        target_key = public_key_from_site_id(target) if target else b""
        query = Query(key.public_key, label)
        noted = self.zones.get(key.site_id, label)
        found = await self._store.get_items(key.public_key, query.salt,
                                            self._timings.dht_get_timeout)
        newest, _ = rec.newest(found, query.salt, self.cache.newest(query))
        version = 1 + max(noted.version if noted else 0, newest.version if newest else 0)
        own = OwnRecord(key.site_id, key.name, label, target or "", version, ttl)
        self.zones.note(own)  # durably, before anyone can see the signature
        stored = await self._put(key, own)
        # This node resolves its own record at once, whatever the DHT says yet.
        value = rec.wrap(rec.encode_record(target_key, version, ttl))
        item = SignedItem(key.public_key, query.salt, 0, value,
                          key.sign(signed_message(0, value, query.salt)))
        self.cache.put(query, rec.verify_record(item, query.salt), self._clock())
        return Published(own, stored)

    async def _put(self, key: SiteKey, own: OwnRecord) -> int:
        target = public_key_from_site_id(own.target) if own.target else b""
        value = rec.encode_record(target, own.version, own.ttl)
        return await self._store.put_item(key, value, rec.label_salt(own.label),
                                          self._timings.dht_put_timeout)

    async def republish_loop(self) -> None:
        """Re-put every record of the user's zones before the DHT forgets it (BEP 44 items
        expire after about two hours without a put); sooner after a put nobody stored."""
        while True:
            missed = 0
            for own in self.zones.records():
                try:
                    key = self._keys.get(own.key_name)
                except UsageError:
                    continue
                if key.site_id != own.zone:  # the key was removed and the name reused
                    continue
                if await self._put(key, own) == 0:
                    missed += 1
            await asyncio.sleep(self._timings.reput_retry if missed
                                else self._timings.reput_interval)
