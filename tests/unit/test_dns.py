"""The DNS resolver's pure parts: serve-stale choices, validity windows, agreement, rate
limits, DNSSEC proofs (forged, expired, another zone's, oversized, a chain through a DS), the
bridge's claims, pointers' domains, and the listener's handling of bad queries."""

from __future__ import annotations

import asyncio
import time

import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from peerweb.config import DnsSettings
from peerweb.content import pointer as ptr
from peerweb.content.identity import SiteKey
from peerweb.dns import decisions as dec
from peerweb.dns import dnssec
from peerweb.dns.server import DnsFrontend
from peerweb.dns.service import DnsService, share_key
from peerweb.errors import BogusDns, UnknownName, UsageError
from peerweb.names import bridge

from ..dns_authority import build_zone

NOW = 1_800_000_000.0
INF = float("inf")


def copy(records=("1.2.3.4",), ttl_expires=NOW + 10, signed=True, valid=(NOW - 100, NOW + 100),
         source="self") -> dec.Copy:
    return dec.Copy(frozenset(records), ttl_expires, signed, valid[0], valid[1], source)


# -- decisions -------------------------------------------------------------------------------

def test_fresh_needs_the_ttl_and_the_signatures_window():
    assert dec.fresh(copy(), NOW)
    assert not dec.fresh(copy(ttl_expires=NOW - 1), NOW)
    assert not dec.fresh(copy(valid=(NOW - 100, NOW - 1)), NOW)  # expired signatures
    assert not dec.fresh(copy(valid=(NOW + 5, NOW + 100)), NOW)  # not yet valid
    assert not dec.fresh(None, NOW)


def test_answer_ttl_is_what_is_left_never_past_the_signatures():
    assert dec.answer_ttl(copy(ttl_expires=NOW + 10), NOW, stale=False) == 10
    assert dec.answer_ttl(copy(ttl_expires=NOW + 10, valid=(0, NOW + 3)), NOW, False) == 3
    assert dec.answer_ttl(copy(ttl_expires=NOW - 50), NOW, stale=True) == dec.STALE_TTL
    assert dec.answer_ttl(copy(valid=(0, NOW + 7)), NOW, stale=True) == 7
    assert dec.answer_ttl(copy(signed=False, valid=(0, INF)), NOW, stale=True) == dec.STALE_TTL


def test_negative_answers_are_cached_for_their_soa_minimum_clamped_never_without_one():
    assert dec.negative_ttl(3600, 300) == 300  # RFC 2308: the lesser of TTL and MINIMUM
    assert dec.negative_ttl(60, 86400) == 60
    assert dec.negative_ttl(86400 * 7, 86400 * 7) == dec.MAX_NEGATIVE_TTL
    assert dec.negative_ttl(0, 0) == dec.MIN_TTL
    assert dec.negative_ttl(None, None) is None  # no SOA: nothing bounds it, not cached


def test_stale_own_signed_copy_only_within_its_signatures():
    own = copy(ttl_expires=NOW - 1000)
    assert dec.choose_stale(own, [], NOW).source is dec.Stale.OWN
    expired = copy(ttl_expires=NOW - 1000, valid=(NOW - 100, NOW - 1))
    choice = dec.choose_stale(expired, [], NOW)
    assert choice.copy is None and "expired" in choice.reason


def test_stale_own_unsigned_copy_for_a_bounded_time():
    own = copy(signed=False, valid=(0, INF), ttl_expires=NOW - 60)
    assert dec.choose_stale(own, [], NOW).source is dec.Stale.OWN
    old = copy(signed=False, valid=(0, INF), ttl_expires=NOW - dec.MAX_STALE - 1)
    assert dec.choose_stale(old, [], NOW).copy is None


def test_stale_from_peers_signed_only_within_the_window_longest_lasting_first():
    short = copy(source="10.0.0.1", valid=(NOW - 10, NOW + 10))
    long = copy(source="10.0.0.2", valid=(NOW - 10, NOW + 500))
    gone = copy(source="10.0.0.3", valid=(NOW - 10, NOW - 1))
    choice = dec.choose_stale(None, [short, gone, long], NOW)
    assert choice.copy is long and choice.source is dec.Stale.PEERS_SIGNED
    assert dec.choose_stale(None, [gone], NOW).copy is None


def test_unsigned_copies_from_peers_need_the_opt_in_and_independent_agreement():
    unsigned = [copy(signed=False, valid=(0, INF), source=f"10.0.0.{i}") for i in range(3)]
    assert dec.choose_stale(None, unsigned, NOW).copy is None  # not opted in
    assert dec.choose_stale(None, unsigned, NOW, quorum=3).source is dec.Stale.PEERS_AGREED
    assert dec.choose_stale(None, unsigned, NOW, quorum=4).copy is None
    # One source counts once, however many copies it hands; disagreeing copies do not add up.
    one_source = [copy(signed=False, valid=(0, INF), source="10.0.0.9")] * 5
    assert dec.agreement(one_source, 2) is None
    split = [copy(records=("1.1.1.1",), signed=False, source="a"),
             copy(records=("6.6.6.6",), signed=False, source="b")]
    assert dec.agreement(split, 2) is None
    majority = [*split, copy(records=("1.1.1.1",), signed=False, source="c")]
    agreed = dec.agreement(majority, 2)
    assert agreed is not None and agreed.records == frozenset({"1.1.1.1"})


def test_rate_limiter_per_source_refills_and_bounds_its_table():
    limiter = dec.RateLimiter(rate=10, burst=3, max_sources=2)
    assert [limiter.admit("a", NOW) for _ in range(4)] == [True, True, True, False]
    assert limiter.admit("b", NOW)  # another source has its own bucket
    assert not limiter.admit("a", NOW + 0.05)
    assert limiter.admit("a", NOW + 0.15)  # a token back after 1/rate
    limiter.admit("c", NOW)
    assert len(limiter._buckets) == 2  # the longest idle source went


def test_upstream_health_rechecks_a_failed_upstream_later():
    health = dec.UpstreamHealth(recheck=5)
    assert health.usable("u", NOW)
    health.failed("u", NOW)
    assert not health.usable("u", NOW + 4.9) and health.usable("u", NOW + 5)
    health.answered("u")
    assert health.usable("u", NOW)


# -- DNSSEC proofs ---------------------------------------------------------------------------

def zone_of(signed) -> dns.zone.Zone:
    return dns.zone.from_text(signed.text, origin=signed.origin, relativize=False)


def rrsets_of(zone: dns.zone.Zone, name: str, rdtype: int) -> list[dns.rrset.RRset]:
    owner = dns.name.from_text(name)
    node = zone.get_node(owner)
    assert node is not None
    out = []
    for kind, covers in ((rdtype, dns.rdatatype.NONE), (dns.rdatatype.RRSIG, rdtype)):
        found = node.get_rdataset(dns.rdataclass.IN, kind, covers)
        if found is not None:
            out.append(dns.rrset.from_rdata_list(owner, found.ttl, list(found)))
    return out


def proof(zone, name, rdtype=dns.rdatatype.A, extra=()):
    origin = zone.origin.to_text()
    return dnssec.encode_proof([*rrsets_of(zone, name, rdtype),
                                *rrsets_of(zone, origin, dns.rdatatype.DNSKEY), *extra])


@pytest.fixture(scope="module")
def signed():
    return build_zone("pw.test.", {"www": [("A", "127.0.0.80")], "old": [("A", "127.0.0.81")],
                                   "big": [("A", f"10.0.{i // 250}.{i % 250}")
                                           for i in range(70)]},
                      ttl=60, expired=("old",), now=time.time())


def test_a_signed_answer_proves_with_its_window(signed):
    zone, anchors = zone_of(signed), dnssec.parse_anchors(signed.anchor)
    now = time.time()
    proven = dnssec.prove(dns.name.from_text("www.pw.test."), dns.rdatatype.A,
                          proof(zone, "www.pw.test."), anchors, now)
    assert proven.signed and proven.zone == dns.name.from_text("pw.test.")
    assert proven.valid_from <= now <= proven.valid_until < now + 3700
    assert [r.to_text() for r in proven.rrset] == ["127.0.0.80"]


def test_forged_expired_other_names_and_unanchored_proofs_are_refused(signed):
    zone, anchors = zone_of(signed), dnssec.parse_anchors(signed.anchor)
    www = dns.name.from_text("www.pw.test.")
    now = time.time()
    # Altered records under the real signature.
    good = dnssec.decode(proof(zone, "www.pw.test."))
    forged = [dns.rrset.from_text(www, 60, "IN", "A", "6.6.6.6") if r.rdtype == 1 else r
              for r in good]
    with pytest.raises(BogusDns, match="forged, altered or expired"):
        dnssec.prove(www, dns.rdatatype.A, dnssec.encode_proof(forged), anchors, now)
    # Past the signature's expiry (and a valid signature checked at a later time).
    with pytest.raises(BogusDns, match="expired"):
        dnssec.prove(dns.name.from_text("old.pw.test."), dns.rdatatype.A,
                     proof(zone, "old.pw.test."), anchors, now)
    with pytest.raises(BogusDns):
        dnssec.prove(www, dns.rdatatype.A, proof(zone, "www.pw.test."), anchors, now + 7200)
    # Another name's records handed for www.
    with pytest.raises(BogusDns, match="another name's or zone's"):
        dnssec.prove(www, dns.rdatatype.A, proof(zone, "old.pw.test."), anchors, now)
    # Signed by a key nobody anchored.
    other = build_zone("pw.test.", {"www": [("A", "6.6.6.6")]}, ttl=60)
    with pytest.raises(BogusDns, match="no trusted key"):
        dnssec.prove(www, dns.rdatatype.A, proof(zone_of(other), "www.pw.test."), anchors, now)
    # Stripped signatures in a zone anchored as signed.
    stripped = dnssec.encode_proof(rrsets_of(zone, "www.pw.test.", 1)[:1])
    with pytest.raises(BogusDns, match="stripped"):
        dnssec.prove(www, dns.rdatatype.A, stripped, anchors, now)
    # Unsigned under the root anchor: taken as unsigned (the caller's policy decides).
    unsigned = dnssec.prove(www, dns.rdatatype.A, stripped, dnssec.root_anchors(), now)
    assert not unsigned.signed and unsigned.valid_until == INF


def test_oversized_proofs_and_answers_are_refused(signed):
    zone, anchors = zone_of(signed), dnssec.parse_anchors(signed.anchor)
    with pytest.raises(BogusDns, match="over the"):
        dnssec.decode(b"\0" * (dnssec.MAX_PROOF + 1))
    with pytest.raises(BogusDns, match="records in one answer"):
        dnssec.prove(dns.name.from_text("big.pw.test."), dns.rdatatype.A,
                     proof(zone, "big.pw.test."), anchors, time.time())
    with pytest.raises(BogusDns, match="not a DNS message"):
        dnssec.decode(b"garbage")


def test_a_chain_through_the_parents_ds():
    child = build_zone("pw.test.", {"www": [("A", "127.0.0.80")]}, ttl=60)
    from dns import dnssec as checker

    ds = checker.make_ds("pw.test.", child.dnskey, "SHA256")
    parent = build_zone("test.", {"pw": [("DS", ds.to_text())]}, ttl=60)
    anchors = dnssec.parse_anchors(parent.anchor)
    czone, pzone = zone_of(child), zone_of(parent)
    chain = [*rrsets_of(pzone, "pw.test.", dns.rdatatype.DS),
             *rrsets_of(pzone, "test.", dns.rdatatype.DNSKEY)]
    www = dns.name.from_text("www.pw.test.")
    proven = dnssec.prove(www, dns.rdatatype.A, proof(czone, "www.pw.test.", extra=chain),
                          anchors, time.time())
    assert proven.signed
    with pytest.raises(BogusDns, match="lacks its signed DS"):
        dnssec.prove(www, dns.rdatatype.A, proof(czone, "www.pw.test."), anchors, time.time())


def test_anchor_files_parse_and_say_what_is_wrong():
    assert dns.name.root in dnssec.root_anchors().ds
    assert len(dnssec.root_anchors().ds[dns.name.root]) == 2
    with pytest.raises(ValueError, match="line 2"):
        dnssec.parse_anchors(". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC6"
                             "83457104237C7F8EC8D\nnot an anchor")
    with pytest.raises(ValueError, match="no trust anchor"):
        dnssec.parse_anchors("; only a comment\n")


def test_share_keys_differ_by_name_and_type_not_by_case():
    www = dns.name.from_text("www.pw.test.")
    assert share_key(www, 1) == share_key(dns.name.from_text("WWW.pw.TEST."), 1)
    assert share_key(www, 1) != share_key(www, 28)
    assert len(share_key(www, 1)) == 20


# -- names bridged from DNS and the domains pointers claim ------------------------------------

def test_bridge_claims_and_confirmations():
    key = SiteKey.generate("x")
    assert bridge.as_domain("Example.COM.") == "example.com"
    assert bridge.as_domain("localhost") is None and bridge.as_domain("a_b.com") is None
    assert bridge.claim_name("example.com") == "_peerweb.example.com."
    assert bridge.claimed_site("example.com", ["v=spf1 -all", f"site={key.site_id}"]) \
        == key.site_id
    with pytest.raises(UnknownName, match="has no TXT record"):
        bridge.claimed_site("example.com", ["site=nonsense"])
    other = SiteKey.generate("y")
    with pytest.raises(UnknownName, match="2 different sites"):
        bridge.claimed_site("example.com", [f"site={key.site_id}", f"site={other.site_id}"])
    bridge.confirm("example.com", key.site_id, ("example.com",))
    with pytest.raises(UnknownName, match="does not claim the domain"):
        bridge.confirm("example.com", key.site_id, ("example.org",))


def test_pointers_carry_the_domains_they_claim_signed():
    key = SiteKey.generate("x")
    signed = ptr.sign(key, b"\1" * 20, 3, 1, domains=("example.com", "blog.example.org"))
    again = ptr.verify(key.public_key, 1, signed.value, signed.signature)
    assert again.domains == ("example.com", "blog.example.org")
    assert ptr.sign(key, b"\1" * 20, 3, 1).domains == ()
    for bad in (("localhost",), ("Example.com",), ("a..b",), tuple(f"d{i}.com" for i in range(9))):
        with pytest.raises(ValueError):
            ptr.encode_record(b"\1" * 20, 1, domains=bad)


def test_dns_settings_refuse_a_quorum_of_one():
    with pytest.raises(UsageError):
        DnsSettings(unsigned_quorum=1)


# -- the listener: bad queries, .peer names, floods --------------------------------------------

def frontend(rate=1000.0, burst=1000.0) -> DnsFrontend:
    service = DnsService(DnsSettings(upstreams=(("127.0.0.1", 9),), rate=rate, burst=burst))

    async def peer_name(name: str) -> bool:
        return name in ("blog", "friends-blog.alice")

    return DnsFrontend(service, peer_name, "127.0.0.1", clock=lambda: NOW)


def ask(front: DnsFrontend, query: bytes, source="127.0.0.2") -> bytes | None:
    return asyncio.run(front.handle(query, source, udp=True))


def test_peer_names_answer_with_the_gateway_and_unknown_ones_nxdomain():
    front = frontend()
    reply = DNSRecord.parse(ask(front, DNSRecord.question("friends-blog.alice.peer").pack()))
    assert reply.header.rcode == RCODE.NOERROR
    assert [str(rr.rdata) for rr in reply.rr] == ["127.0.0.1"] and reply.rr[0].rtype == QTYPE.A
    reply = DNSRecord.parse(ask(front, DNSRecord.question("nobody.peer").pack()))
    assert reply.header.rcode == RCODE.NXDOMAIN
    reply = DNSRecord.parse(ask(front, DNSRecord.question("blog.peer", "AAAA").pack()))
    assert reply.header.rcode == RCODE.NOERROR and not reply.rr


def test_malformed_queries_are_dropped_or_answered_formerr_and_counted():
    front = frontend()
    assert ask(front, b"\x00\x01garbage") is None
    assert ask(front, b"\0" * 600) is None
    response = DNSRecord.question("blog.peer")
    response.header.qr = 1  # a response sent as a query (reflection)
    reply = DNSRecord.parse(ask(front, response.pack()))
    assert reply.header.rcode == RCODE.FORMERR
    assert front.service.counters["refused_malformed"] == 3


def test_a_flood_from_one_source_is_dropped_others_still_answered():
    front = frontend(rate=1, burst=5)
    query = DNSRecord.question("blog.peer").pack()
    answered = [ask(front, query, "10.9.9.9") is not None for _ in range(20)]
    assert answered.count(True) == 5
    assert front.service.counters["refused_rate"] == 15
    assert ask(front, query, "10.1.1.1") is not None


def test_replies_too_big_for_udp_are_truncated():
    front = frontend()
    query = dns.message.make_query("blog.peer", "A")  # no EDNS: 512 bytes at most
    reply = DNSRecord.parse(ask(front, query.to_wire()))
    assert not reply.header.tc  # a small answer fits
    big = DNSRecord.question("blog.peer")
    reply = big.reply()
    for i in range(60):
        reply.add_answer(RR(f"name-{i:03d}-padding.example", QTYPE.A, rdata=A("10.0.0.1")))
    fitted = front._fit(big, reply)
    assert DNSRecord.parse(fitted).header.tc and len(fitted) <= 512
    assert front.service.counters["truncated"] == 1
