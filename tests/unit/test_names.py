"""Names, with plain values: label salts, records signed and verified, the walk along a chain
of zones with a fake lookup, the record cache, the address book, and the name service over a
fake DHT (forged and replayed records refused, updates and revocation by version)."""

from __future__ import annotations

import hashlib
import stat

import pytest

from peerweb.config import Timings
from peerweb.content.addressing import Address, Target
from peerweb.content.identity import KeyStore, SiteKey
from peerweb.content.item import SignedItem
from peerweb.content.pointer import signed_message
from peerweb.errors import ForgedPointer, NotFound, StorageError, UnknownName, UsageError
from peerweb.names import records as rec
from peerweb.names.petnames import PetnameBook, parse_target
from peerweb.names.resolution import Query, RecordCache, Walk
from peerweb.names.service import NameService

ALICE, BOB, SITE, MALLORY = (SiteKey(n, bytes([i]) * 32)
                             for i, n in enumerate(("alice", "bob", "site", "mallory"), 1))


def item(key: SiteKey, label: str, target: bytes, version: int, ttl: int = 60,
         seq: int = 1, signer: SiteKey | None = None) -> SignedItem:
    salt = rec.label_salt(label)
    value = rec.wrap(rec.encode_record(target, version, ttl))
    signature = (signer or key).sign(signed_message(seq, value, salt))
    return SignedItem(key.public_key, salt, seq, value, signature)


# -- records ---------------------------------------------------------------------------------

def test_a_label_salt_is_a_domain_separated_hash_that_hides_the_label():
    salt = rec.label_salt("Friends-Blog")
    assert salt == hashlib.sha256(b"peerweb name label v1\x00friends-blog").digest()
    assert len(salt) == 32 and b"friends" not in salt
    assert rec.label_salt("a") != rec.label_salt("b")
    for bad in ("", "-x", "x-", "a.b", "a_b", "x" * 64, "\u212a"):
        with pytest.raises(UsageError):
            rec.label_salt(bad)


def test_a_record_is_exact_bencoding_signed_with_its_salt():
    assert rec.encode_record(SITE.public_key, 3, 60) == (
        b"d6:target32:" + SITE.public_key + b"3:ttli60e7:versioni3ee")
    found = rec.verify_record(item(ALICE, "blog", SITE.public_key, 3), rec.label_salt("blog"))
    assert (found.target, found.version, found.ttl, found.revoked) == (SITE.public_key, 3, 60,
                                                                       False)
    assert found.target_id == SITE.site_id
    revoked = rec.verify_record(item(ALICE, "blog", b"", 4), rec.label_salt("blog"))
    assert revoked.revoked and revoked.target_id == ""


def test_forged_tampered_and_misfiled_records_are_refused():
    salt = rec.label_salt("blog")
    forged = item(ALICE, "blog", MALLORY.public_key, 9, signer=MALLORY)
    with pytest.raises(ForgedPointer, match="signature"):
        rec.verify_record(forged, salt)
    good = item(ALICE, "blog", SITE.public_key, 1)
    tampered = SignedItem(good.public_key, salt, good.seq,
                          good.value.replace(b"versioni1e", b"versioni9e"), good.signature)
    with pytest.raises(ForgedPointer):
        rec.verify_record(tampered, salt)
    with pytest.raises(ForgedPointer, match="another label"):  # a valid record of "blog"
        rec.verify_record(good, rec.label_salt("shop"))         # served for "shop"
    with pytest.raises(ForgedPointer, match="seq|signature"):
        rec.verify_record(SignedItem(good.public_key, salt, 2, good.value, good.signature), salt)


def test_ttls_are_clamped_on_reading():
    salt = rec.label_salt("x")
    value = rec.wrap(b"d6:target0:3:ttli999999999e7:versioni1ee")
    signed = SignedItem(ALICE.public_key, salt, 1, value,
                        ALICE.sign(signed_message(1, value, salt)))
    assert rec.verify_record(signed, salt).ttl == rec.MAX_TTL


def test_the_newest_version_wins_and_older_ones_are_replays():
    salt = rec.label_salt("blog")
    v1 = item(ALICE, "blog", SITE.public_key, 1, seq=5)
    v2 = item(ALICE, "blog", BOB.public_key, 2, seq=1)  # the seq restarted: versions decide
    best, refused = rec.newest([v1, v2], salt)
    assert best is not None and best.version == 2 and refused == []
    again, refused = rec.newest([v1], salt, best)
    assert again is best and refused == [
        "replayed: version 1 is older than the 2 already seen"]
    forged = item(ALICE, "blog", MALLORY.public_key, 7, signer=MALLORY)
    assert rec.newest([forged], salt)[0] is None


# -- the walk --------------------------------------------------------------------------------

def walk(name, book, zones, now=100.0):
    """Resolve with a fake lookup: ``zones`` maps (zone key, label) to a record item."""
    w = Walk(name, book.get, now)
    while (q := w.next_query()) is not None:
        found = zones.get((q.zone, q.label))
        w.answer(rec.verify_record(found, q.salt) if found else None)
    return w.result()


def test_a_chain_two_levels_deep_resolves(tmp_path):
    book = PetnameBook(tmp_path)
    book.add("alice", Address(Target.SITE, ALICE.site_id))
    zones = {(ALICE.public_key, "bob"): item(ALICE, "bob", BOB.public_key, 1, ttl=300),
             (BOB.public_key, "blog"): item(BOB, "blog", SITE.public_key, 4, ttl=30)}
    found = walk("Blog.Bob.Alice", book, zones)
    assert (found.target, found.ident, found.name) == (Target.SITE, SITE.site_id,
                                                       "blog.bob.alice")
    assert found.expires == 130.0  # the shortest TTL of the chain
    assert len(found.chain) == 3 and "version 4" in found.chain[2]
    # A zone may be named by its site id, and a petname alone resolves without a lookup.
    assert walk(f"blog.{BOB.site_id}", book, zones).ident == SITE.site_id
    assert walk("alice", book, {}).ident == ALICE.site_id


def test_names_that_resolve_to_nothing_say_what_to_do(tmp_path):
    book = PetnameBook(tmp_path)
    with pytest.raises(UnknownName, match="peerweb name add carol"):
        walk("blog.carol", book, {})
    book.add("alice", Address(Target.SITE, ALICE.site_id))
    with pytest.raises(UnknownName, match="not published in zone alice"):
        walk("shop.alice", book, {})
    revoked = {(ALICE.public_key, "shop"): item(ALICE, "shop", b"", 2)}
    with pytest.raises(UnknownName, match="revoked"):
        walk("shop.alice", book, revoked)
    book.add("film", Address(Target.SNAPSHOT, "ab" * 20))
    assert walk("film", book, {}).target is Target.SNAPSHOT
    with pytest.raises(UnknownName, match="not a zone"):
        walk("x.film", book, {})
    with pytest.raises(UsageError):
        walk(".".join(["a"] * 9), book, {})


def test_the_cache_keeps_records_for_their_ttl_and_the_newest_beyond_it():
    cache = RecordCache(negative_ttl=5.0, limit=2)
    q = Query(ALICE.public_key, "blog")
    record = rec.verify_record(item(ALICE, "blog", SITE.public_key, 1, ttl=60), q.salt)
    cache.put(q, record, now=0.0)
    assert cache.get(q, 59.9).record is record and cache.get(q, 60.0) is None
    assert cache.newest(q) is record  # still the floor against replays
    cache.put(q, None, now=100.0)
    assert cache.get(q, 104.0).record is None and cache.get(q, 105.0) is None
    for label in ("a", "b", "c"):
        cache.put(Query(ALICE.public_key, label), None, 0.0)
    assert cache.get(q, 1.0) is None  # the oldest went


# -- the address book ------------------------------------------------------------------------

def test_the_address_book_is_private_atomic_and_read_again_when_changed(tmp_path):
    book = PetnameBook(tmp_path)
    book.add("Blog", parse_target(SITE.site_id))
    book.add("alice", parse_target(f"magnet:?xs=urn:btpk:{ALICE.public_key.hex()}"))
    assert stat.S_IMODE(book.path.stat().st_mode) == 0o600
    assert [e.name for e in book.entries()] == ["alice", "blog"]
    assert not list(tmp_path.glob(".names.json.*.tmp"))
    other = PetnameBook(tmp_path)  # another process: the CLI while the node runs
    other.remove("blog")
    assert book.get("blog") is None and book.get("ALICE").ident == ALICE.site_id
    with pytest.raises(UsageError, match="already names"):
        book.add("alice", parse_target(BOB.site_id))
    assert book.add("alice", parse_target(BOB.site_id), replace=True).ident == BOB.site_id
    with pytest.raises(NotFound):
        book.remove("nobody")
    for bad in (SITE.site_id, "ab" * 20, "a.b", "-"):
        with pytest.raises(UsageError):
            book.add(bad, parse_target(SITE.site_id))
    with pytest.raises(UsageError, match="path"):
        parse_target(f"{SITE.site_id}/about/")
    book.path.write_text("{not json")
    with pytest.raises(StorageError, match="damaged"):
        book.get("alice")


# -- the service over a fake DHT --------------------------------------------------------------

class FakeDht:
    """Salted items by (key, salt), as a BEP 44 store keeps them: the highest seq only."""

    def __init__(self) -> None:
        self.items: dict[tuple[bytes, bytes], SignedItem] = {}
        self.gets = 0
        self.extra: list[SignedItem] = []  # what a hostile node adds to every answer

    async def put_item(self, key: SiteKey, value: bytes, salt: bytes, timeout: float) -> int:
        old = self.items.get((key.public_key, salt))
        seq = old.seq + 1 if old else 1
        wrapped = rec.wrap(value)
        self.items[(key.public_key, salt)] = SignedItem(
            key.public_key, salt, seq, wrapped, key.sign(signed_message(seq, wrapped, salt)))
        return 1

    async def get_items(self, public_key: bytes, salt: bytes,
                        timeout: float) -> list[SignedItem]:
        self.gets += 1
        found = self.items.get((public_key, salt))
        return ([found] if found else []) + self.extra


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def service(data_dir, dht, clock):
    keys = KeyStore(data_dir / "keys")
    return NameService(data_dir, keys, dht, Timings(dht_get_attempts=1), clock)


async def test_publish_update_revoke_and_replay_through_the_service(tmp_path):
    dht, clock = FakeDht(), Clock()
    owner = service(tmp_path / "owner", dht, clock)
    alice = owner._keys.create("alice")
    reader = service(tmp_path / "reader", dht, clock)
    reader.book.add("alice", Address(Target.SITE, alice.site_id))

    first = await owner.publish("alice", "blog", SITE.site_id, ttl=60)
    assert first.record.version == 1 and first.stored == 1
    assert (await reader.resolve("blog.alice")).ident == SITE.site_id
    captured = dht.items[(alice.public_key, rec.label_salt("blog"))]

    # An update: the reader sees it once its cached record's TTL is over, not before.
    assert (await owner.publish("alice", "blog", BOB.site_id, ttl=60)).record.version == 2
    gets = dht.gets
    assert (await reader.resolve("blog.alice")).ident == SITE.site_id  # warm: no lookup
    assert dht.gets == gets and reader.resolve_nowait("blog.alice").ident == SITE.site_id
    clock.now += 60
    assert reader.resolve_nowait("blog.alice") is None
    assert (await reader.resolve("blog.alice")).ident == BOB.site_id

    # A replay of version 1 (validly signed, once true) is refused, counted, and changes
    # nothing; so is a forged record from a hostile node.
    dht.items[(alice.public_key, rec.label_salt("blog"))] = captured
    dht.extra = [item(alice, "blog", MALLORY.public_key, 99, signer=MALLORY)]
    clock.now += 60
    assert (await reader.resolve("blog.alice")).ident == BOB.site_id
    assert reader.refused == 2
    dht.extra = []

    # The owner's zone file keeps the version: after a replay in the DHT it still signs past
    # it, and a revocation ends the name for everyone within the TTL.
    revoked = await owner.publish("alice", "blog", None, ttl=60)
    assert revoked.record.version == 3 and not revoked.record.target
    clock.now += 60
    with pytest.raises(UnknownName, match="revoked"):
        await reader.resolve("blog.alice")
    assert [(r.label, r.version) for r in owner.zones.records()] == [("blog", 3)]
    assert stat.S_IMODE(owner.zones.path.stat().st_mode) == 0o600


async def test_a_node_resolves_its_own_records_at_once_and_nothing_is_cached_briefly(tmp_path):
    dht, clock = FakeDht(), Clock()
    owner = service(tmp_path, dht, clock)
    alice = owner._keys.create("alice")
    owner.book.add("me", Address(Target.SITE, alice.site_id))
    dht.items.clear()  # the DHT lost it (or never confirmed it): the owner still knows
    await owner.publish("alice", "shop", SITE.site_id)
    dht.items.clear()
    assert (await owner.resolve("shop.me")).ident == SITE.site_id
    with pytest.raises(UnknownName, match="not published"):
        await owner.resolve("nothing.me")
    gets = dht.gets
    with pytest.raises(UnknownName):
        await owner.resolve("nothing.me")  # negative answers are cached for a while
    assert dht.gets == gets
    with pytest.raises(UsageError, match="TTL"):
        await owner.publish("alice", "shop", SITE.site_id, ttl=0)
