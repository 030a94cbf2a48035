"""The node's DNS resolver: forward, validate, cache, share, and serve stale.

``DnsService.resolve`` answers a name and type:

1. from the cache, while the answer's TTL and its signatures' window last;
2. else from the upstreams (asked with the DO bit): a signed answer is proven up to a trust
   anchor (the DNSKEY and DS sets come from the same upstreams and are cached), cached with
   its proof, and announced in the DHT under ``share_key`` so other nodes can find this one;
3. when every upstream fails (timeout, refused, SERVFAIL): serve stale (RFC 8767) from the
   cache, or from peers' proofs found through the DHT (validated here, with this node's
   anchors and clock), as ``decisions.choose_stale`` says; logged each time.

A bogus answer (a signature that does not verify or expired, an oversized RRset, a peer's
proof of another name or zone) is refused, counted in ``counters`` and logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset

from ..config import DnsSettings
from ..errors import BogusDns, UsageError
from . import decisions as dec
from . import dnssec

log = logging.getLogger(__name__)

# Domain separation for the DHT key a holder announces under.
SHARE_TAG = b"peerweb dns rrset v1\x00"
# Answers kept in memory; the least recently used go first.
MAX_CACHED = 50_000
# Negative answers (NXDOMAIN, no data) kept in memory, the oldest going first.
MAX_NEGATIVE = 10_000
# Peers asked for a proof at once when the upstreams fail.
MAX_PEERS_ASKED = 8
# A holder re-announces what it holds this often (DHT peers expire after ~30 minutes).
REANNOUNCE = 15 * 60.0

Endpoint = tuple[str, int]


class Sharing(Protocol):
    """The DHT and the peer port, as the resolver needs them (the node provides one)."""

    def announce(self, key: bytes) -> None:
        """Announce this node's peer port under ``key`` (20 bytes)."""

    async def holders(self, key: bytes, timeout: float) -> list[Endpoint]:
        """Peer ports announced under ``key``."""
        ...

    async def fetch(self, endpoint: Endpoint, qname: str, qtype: str) -> bytes | None:
        """A peer's proof for ``qname``/``qtype``, unchecked (None: none, or no answer)."""
        ...


def share_key(qname: dns.name.Name, qtype: int) -> bytes:
    """sha1(tag + name + type): where holders of an RRset announce themselves."""
    text = qname.to_text().lower().encode() + b"\x00" + dnssec.type_text(qtype).encode()
    return hashlib.sha1(SHARE_TAG + text).digest()


class UpstreamFailed(Exception):
    """Every upstream timed out, refused or failed."""


@dataclass(frozen=True)
class Entry:
    """A cached answer: the decision view and the proof."""

    copy: dec.Copy
    proven: dnssec.Proven


@dataclass(frozen=True)
class Answer:
    """What to reply."""

    rcode: int
    rrsets: tuple[dns.rrset.RRset, ...] = ()
    """The answer section (RRSIGs included when the answer is signed)."""
    ttl: int = 0
    authenticated: bool = False
    """DNSSEC-validated (the AD bit)."""
    stale: dec.Stale | None = None


def _records(rrset: dns.rrset.RRset) -> frozenset[str]:
    return frozenset(r.to_text() for r in rrset)


def system_upstreams() -> tuple[Endpoint, ...]:
    """The nameservers of /etc/resolv.conf."""
    try:
        found = dns.resolver.Resolver(configure=True).nameservers
    except (dns.exception.DNSException, OSError):
        return ()
    return tuple((str(ns), 53) for ns in found)


def load_anchors(path: Path | None) -> dnssec.Anchors:
    if path is None:
        return dnssec.root_anchors()
    try:
        return dnssec.parse_anchors(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read the trust anchor file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise UsageError(f"the trust anchor file {path}: {exc}") from exc


class DnsService:
    def __init__(self, settings: DnsSettings, sharing: Sharing | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.anchors = load_anchors(settings.trust_anchors)
        self.upstreams = settings.upstreams or system_upstreams()
        self._sharing = sharing
        self._clock = clock
        self._cache: OrderedDict[tuple[str, int], Entry] = OrderedDict()
        self._negative: OrderedDict[tuple[str, int], tuple[int, float]] = OrderedDict()
        """(rcode, until when) of negative answers, for their RFC 2308 TTL; never shared
        or served stale (nothing proves them: the test zones carry no NSEC records)."""
        self._chains: dict[dns.name.Name, tuple[list[dns.rrset.RRset], float]] = {}
        self._failed: dict[tuple[str, int], float] = {}
        self._health = dec.UpstreamHealth()
        self._announced: set[bytes] = set()
        self.counters: Counter[str] = Counter()
        """refused_forged, refused_oversized, refused_other_zone, served_stale, ..."""

    # -- answering -------------------------------------------------------------------------

    async def resolve(self, qname: str | dns.name.Name, qtype: int) -> Answer:
        name = dns.name.from_text(qname) if isinstance(qname, str) else qname
        key = (name.to_text().lower(), qtype)
        now = self._clock()
        entry = self._cache.get(key)
        if entry is not None and dec.fresh(entry.copy, now):
            self._cache.move_to_end(key)
            self.counters["cache_hits"] += 1
            return self._answer(entry, now, None)
        negative = self._negative.get(key)
        if negative is not None and now < negative[1]:
            self.counters["negative_hits"] += 1
            return Answer(negative[0], ttl=max(0, int(negative[1] - now)))
        if now < self._failed.get(key, 0.0) and entry is not None:
            # RFC 8767 section 5: after a failure, serve stale without asking again for a while.
            return await self._serve_stale(name, qtype, entry, now, "upstreams failed recently")
        try:
            return await self._from_upstream(name, qtype, key)
        except UpstreamFailed as exc:
            self._failed[key] = now + dec.STALE_TTL
            return await self._serve_stale(name, qtype, entry, self._clock(), str(exc))
        except BogusDns as exc:
            self.counters["refused_bogus_upstream"] += 1
            log.warning("refused the upstream answer for %s %s: %s", name,
                        dnssec.type_text(qtype), exc)
            return Answer(dns.rcode.SERVFAIL)

    def _answer(self, entry: Entry, now: float, stale: dec.Stale | None) -> Answer:
        ttl = dec.answer_ttl(entry.copy, now, stale is not None)
        proven = entry.proven
        rrsets = [proven.rrset] + ([proven.signatures] if proven.signatures is not None else [])
        out = [dns.rrset.from_rdata_list(rrset.name, ttl, list(rrset)) for rrset in rrsets]
        return Answer(dns.rcode.NOERROR, tuple(out), ttl, proven.signed, stale)

    async def _serve_stale(self, name: dns.name.Name, qtype: int, entry: Entry | None,
                           now: float, why: str) -> Answer:
        peers: list[Entry] = []
        own = entry.copy if entry is not None else None
        if not (own is not None and dec.choose_stale(own, (), now).copy is not None):
            peers = await self._from_peers(name, qtype, now)
        choice = dec.choose_stale(own, [p.copy for p in peers], now,
                                  self.settings.unsigned_quorum)
        what = f"{name} {dnssec.type_text(qtype)}"
        if choice.copy is None:
            self.counters["stale_refused"] += 1
            log.warning("upstreams failed for %s (%s) and nothing may be served stale: %s",
                        what, why, choice.reason)
            return Answer(dns.rcode.SERVFAIL)
        chosen = entry if choice.source is dec.Stale.OWN else next(
            p for p in peers if p.copy is choice.copy)
        assert chosen is not None
        if chosen is not entry:
            self._keep((name.to_text().lower(), qtype), chosen)
        self.counters["served_stale"] += 1
        log.info("served %s stale from %s (%s): upstreams failed (%s)", what,
                 choice.source.value if choice.source else "?", choice.reason, why)
        return self._answer(chosen, now, choice.source)

    # -- upstreams -------------------------------------------------------------------------

    async def _ask(self, name: dns.name.Name, qtype: int) -> dns.message.Message:
        """The first usable upstream response (NOERROR or NXDOMAIN)."""
        if not self.upstreams:
            raise UpstreamFailed("no upstream resolver configured (--upstream HOST:PORT)")
        errors = []
        now = self._clock()
        for host, port in self.upstreams:
            where = f"{host}:{port}"
            if not self._health.usable(where, now):
                errors.append(f"{where}: failed less than {self._health.recheck:g} s ago")
                continue
            query = dns.message.make_query(name, dns.rdatatype.RdataType.make(qtype),
                                           want_dnssec=True)
            query.flags |= dns.flags.CD  # we validate ourselves: get bogus data to judge it
            try:
                response = await dns.asyncquery.udp(query, host, self.settings.upstream_timeout,
                                                    port)
                if response.flags & dns.flags.TC:
                    response = await dns.asyncquery.tcp(query, host,
                                                        self.settings.upstream_timeout, port)
            except (dns.exception.DNSException, OSError, EOFError) as exc:
                self._health.failed(where, self._clock())
                errors.append(f"{where}: {type(exc).__name__} {exc}".strip())
                continue
            if response.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                self._health.answered(where)
                return response
            errors.append(f"{where}: {dns.rcode.to_text(response.rcode())}")
        raise UpstreamFailed("; ".join(errors))

    async def _from_upstream(self, name: dns.name.Name, qtype: int,
                             key: tuple[str, int]) -> Answer:
        response = await self._ask(name, qtype)
        self._failed.pop(key, None)
        answer = signatures = None
        for rrset in response.answer:
            if rrset.name == name and rrset.rdtype == qtype:
                answer = rrset
            elif rrset.name == name and rrset.rdtype == dnssec.RRSIG and rrset.covers == qtype:
                signatures = rrset
        if answer is None:
            # NXDOMAIN or no data: cached for its SOA's negative TTL. A CNAME chain: passed
            # on as the upstream said, not cached (each link would need its own proof).
            if not response.answer:
                self._keep_negative(key, response)
            return Answer(response.rcode(), tuple(response.answer),
                          min((r.ttl for r in response.answer), default=0))
        if len(answer) > dnssec.MAX_RECORDS:
            self.counters["refused_oversized"] += 1
            raise BogusDns(f"{len(answer)} records, over the {dnssec.MAX_RECORDS} accepted")
        rrsets = [answer] + ([signatures] if signatures is not None else [])
        if signatures is not None:
            rrsets += await self._chain(next(iter(signatures)).signer)
        now = self._clock()
        proven = dnssec.prove(name, qtype, dnssec.encode_proof(rrsets), self.anchors, now)
        ttl = dec.clamp_ttl(answer.ttl)
        entry = Entry(dec.Copy(_records(answer), now + ttl, proven.signed, proven.valid_from,
                               proven.valid_until), proven)
        self._keep(key, entry)
        self._announce(name, qtype)
        self.counters["upstream_answers"] += 1
        return self._answer(entry, now, None)

    async def _chain(self, zone: dns.name.Name) -> list[dns.rrset.RRset]:
        """DNSKEY (and, below the anchors, DS) RRsets with their RRSIGs from ``zone`` up."""
        out: list[dns.rrset.RRset] = []
        for _ in range(dnssec.MAX_CHAIN):
            now = self._clock()
            cached = self._chains.get(zone)
            if cached is None or cached[1] <= now:
                wanted = [dnssec.DNSKEY]
                if zone not in self.anchors.ds and zone not in self.anchors.keys:
                    wanted.append(dnssec.DS)
                found: list[dns.rrset.RRset] = []
                for rdtype in wanted:
                    response = await self._ask(zone, rdtype)
                    found += [r for r in response.answer if r.name == zone]
                ttl = min((r.ttl for r in found), default=0)
                cached = (found, now + dec.clamp_ttl(ttl))
                self._chains[zone] = cached
            out += cached[0]
            parent = next((r.items for r in cached[0] if r.rdtype == dnssec.RRSIG
                           and r.covers == dnssec.DS), None)
            if parent is None:
                return out
            zone = next(iter(parent)).signer
        return out

    # -- caching and sharing ---------------------------------------------------------------

    def _keep(self, key: tuple[str, int], entry: Entry) -> None:
        self._cache[key] = entry
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)

    def _keep_negative(self, key: tuple[str, int], response: dns.message.Message) -> None:
        soa = next((r for r in response.authority if r.rdtype == dns.rdatatype.SOA), None)
        ttl = dec.negative_ttl(soa.ttl, next(iter(soa)).minimum) if soa else None
        if ttl is None:
            return
        self._negative[key] = (response.rcode(), self._clock() + ttl)
        self._negative.move_to_end(key)
        while len(self._negative) > MAX_NEGATIVE:
            self._negative.popitem(last=False)
        self.counters["negative_cached"] += 1

    def _announce(self, name: dns.name.Name, qtype: int) -> None:
        if self._sharing is None or not self.settings.share:
            return
        key = share_key(name, qtype)
        if key not in self._announced:
            self._announced.add(key)
            self._sharing.announce(key)

    async def reannounce_loop(self) -> None:
        while True:
            await asyncio.sleep(REANNOUNCE)
            if self._sharing is not None and self.settings.share:
                for key in list(self._announced):
                    self._sharing.announce(key)

    def proof_for(self, qname: str, qtype: int) -> bytes | None:
        """The proof to hand a peer: a signed answer within its signatures' window, or an
        unsigned one this node fetched itself (so that agreeing peers are independent)."""
        if not self.settings.share:
            return None
        try:
            name = dns.name.from_text(qname)
        except dns.exception.DNSException:
            return None
        entry = self._cache.get((name.to_text().lower(), qtype))
        if entry is None:
            return None
        now = self._clock()
        if entry.copy.signed:
            return entry.proven.wire if dec.within_signatures(entry.copy, now) else None
        if entry.copy.source == "self" and now - entry.copy.ttl_expires <= dec.MAX_STALE:
            return entry.proven.wire
        return None

    async def _from_peers(self, name: dns.name.Name, qtype: int, now: float) -> list[Entry]:
        if self._sharing is None:
            return []
        sharing = self._sharing
        holders = await sharing.holders(share_key(name, qtype), self.settings.peer_timeout)
        # One per address: an address announcing on several ports is still one peer.
        by_host: dict[str, Endpoint] = {}
        for endpoint in holders:
            by_host.setdefault(endpoint[0], endpoint)
        asked = list(by_host.values())[:MAX_PEERS_ASKED]
        qtext = dnssec.type_text(qtype)
        wires = await asyncio.gather(*(sharing.fetch(e, name.to_text(), qtext) for e in asked))
        entries = []
        for endpoint, wire in zip(asked, wires, strict=True):
            if wire is None:
                continue
            try:
                proven = dnssec.prove(name, qtype, wire, self.anchors, now)
            except BogusDns as exc:
                self.counters[_refusal(str(exc))] += 1
                log.warning("refused %s %s from peer %s:%d: %s", name, qtext, *endpoint, exc)
                continue
            copy = dec.Copy(_records(proven.rrset), now, proven.signed, proven.valid_from,
                            proven.valid_until, source=endpoint[0])
            entries.append(Entry(copy, proven))
        return entries

    def statistics(self) -> dict[str, int]:
        return {"cached": len(self._cache), "announced": len(self._announced),
                **dict(self.counters)}

    def cached(self) -> Sequence[tuple[str, int, dec.Copy]]:
        """What the cache holds (for the dashboard)."""
        return [(name, qtype, entry.copy) for (name, qtype), entry in self._cache.items()]

    def forget(self) -> None:
        """Drop every cached answer (tests and benchmarks start cold)."""
        self._cache.clear()
        self._negative.clear()
        self._chains.clear()
        self._failed.clear()


def _refusal(message: str) -> str:
    if "another name's or zone's" in message or "a zone it is not in" in message:
        return "refused_other_zone"
    if "over the" in message:
        return "refused_oversized"
    return "refused_forged"
