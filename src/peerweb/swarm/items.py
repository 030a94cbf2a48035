"""Salted BEP 44 mutable items: any signed value under (key, salt), put and got.

Names under a key (``peerweb.names``) are stored this way, one salt a label. Version
pointers, which have no salt, stay in ``dht``; its alert handlers hand salted alerts here,
so a put or get of a name never settles a pointer's, nor the other way round.

A get returns every validly signed item heard (usually one, the same from each storing
node): which is newest is the caller's decision, by the version inside the value.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import libtorrent as lt

from ..config import Timings
from ..content import bencode
from ..content.identity import SiteKey
from ..content.item import SignedItem, verify_item
from ..errors import ForgedPointer
from .dht import lookup_end_or_grace
from .handle import Session
from .rendezvous import Rendezvous

log = logging.getLogger(__name__)

Key = tuple[bytes, bytes]  # (public key, salt)


class SaltedItems:
    """Puts and gets of salted items over the session's DHT."""

    def __init__(self, session: Callable[[], Session], timings: Timings) -> None:
        self._session = session
        self.timings = timings
        self._puts: Rendezvous[Key, int] = Rendezvous()
        self._gets: Rendezvous[Key, None] = Rendezvous()
        self._heard: dict[Key, dict[bytes, SignedItem]] = {}  # by signature, while open
        self._seen: dict[Key, asyncio.Event] = {}

    async def put(self, key: SiteKey, value: bytes, salt: bytes, timeout: float) -> int:
        """Store ``value`` (a byte string, wrapped by the bindings) under (key, salt); how
        many DHT nodes stored it (0 also when the put did not finish within ``timeout``)."""
        future = self._puts.wait((key.public_key, salt))
        self._session().dht_put_mutable_item(key.expanded_secret, key.public_key, value, salt)
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            log.info("DHT put of a salted item under %s not confirmed within %.0f s",
                     key.site_id[:12], timeout)
            return 0

    async def get(self, public_key: bytes, salt: bytes, timeout: float) -> list[SignedItem]:
        """The validly signed items the DHT holds under (key, salt): at the authoritative end
        of the lookup, or ``item_grace`` after the first one, or what came within ``timeout``."""
        key = (public_key, salt)
        first = key not in self._gets
        future = self._gets.wait(key)
        heard = self._heard.setdefault(key, {})
        seen = self._seen.setdefault(key, asyncio.Event())
        if first:
            self._session().dht_get_mutable_item(public_key, salt)
        await lookup_end_or_grace(future, seen, timeout, self.timings.item_grace)
        if not future.done():
            self._gets.discard(key, future)
        return list(heard.values())

    def on_put(self, alert: Any) -> None:
        self._puts.settle((bytes(alert.public_key), bytes(alert.salt)), int(alert.num_success))

    def on_item(self, alert: Any) -> None:
        key = (bytes(alert.key), bytes(alert.salt))
        signature = bytes(alert.signature)
        if any(signature):  # a lookup that found nothing ends with an all-zero signature
            item = alert.item
            value = bencode.encode(item) if isinstance(item, bytes) else bytes(lt.bencode(item))
            try:
                found = verify_item(SignedItem(key[0], key[1], int(alert.seq), value, signature))
            except ForgedPointer as exc:
                log.warning("ignored a forged item under %s: %s", key[0].hex()[:16], exc)
            else:
                heard = self._heard.get(key)
                if heard is not None:
                    heard[found.signature] = found
                    seen = self._seen.get(key)
                    if seen is not None:
                        seen.set()
        if alert.authoritative:
            self._seen.pop(key, None)
            self._heard.pop(key, None)
            self._gets.settle(key, None)

    def cancel_all(self) -> None:
        self._puts.cancel_all()
        self._gets.cancel_all()
