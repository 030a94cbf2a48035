"""Proofs of DNS answers: an RRset, its RRSIGs, and the chain of keys up to a trust anchor.

A proof is a DNS message (wire format, RFC 1035 section 4) whose answer section holds the
RRsets that make an answer checkable by anyone who trusts the same anchors, as RFC 9102's
DNSSEC chain does for TLS::

    www.pw.test. A      + RRSIG   the answer, signed by zone pw.test.
    pw.test.     DNSKEY + RRSIG   the zone's keys, signed by a key that is ...
    pw.test.     DS     + RRSIG   ... named by its parent's DS (signed by the parent's keys,
    test.        DNSKEY + RRSIG   and so on) or by a trust anchor (RFC 4035 section 5).

A node that shares an answer sends its proof; the receiver validates it against its own
anchors and its own clock, so a peer cannot forge, alter, replay past expiry, or pass off
another zone's records (the answer must be the queried name and type, signed by a zone that
is the name or an ancestor of it). Wildcard expansions are not accepted from proofs: they
need NSEC records to prove, which this module does not check.

An answer without RRSIGs is "unsigned": not proven, and left to the caller's policy
(``decisions``); one under a configured anchor that is not the root is refused (the zone is
known to be signed, so missing signatures mean stripping). Checking NSEC proofs that a
delegation is insecure is left for later: beneath the root anchor, unsigned answers are
taken as unsigned, as a forwarding stub does.

Pure: bytes, anchors and ``now`` in; a ``Proven`` or BogusDns out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS
import dns.rdtypes.ANY.RRSIG
import dns.rrset

from ..errors import BogusDns

# A proof larger than this is refused unread: an answer and a chain of 3-4 zones with two
# keys each is 2-4 KB with RSA-2048; 16 KB leaves room for a big TXT RRset.
MAX_PROOF = 16 * 1024
# Records in one answer RRset: more is an amplification or a cache-filling attempt.
MAX_RECORDS = 64
# Zones in a chain from the answer to an anchor (``a.b.c.d.example.`` has five).
MAX_CHAIN = 10

# The root zone's trust anchors (IANA root-anchors.xml; KSK-2017 and KSK-2024), as
# Debian's dns-root-data ships them.
ROOT_ANCHORS = """\
. IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D
. IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16
"""

RRSIG = dns.rdatatype.RRSIG
DNSKEY = dns.rdatatype.DNSKEY
DS = dns.rdatatype.DS


@dataclass(frozen=True)
class Anchors:
    """Trust anchors: for each zone, DS or DNSKEY records trusted without proof."""

    ds: dict[dns.name.Name, tuple[dns.rdtypes.ANY.DS.DS, ...]]
    keys: dict[dns.name.Name, tuple[dns.rdtypes.ANY.DNSKEY.DNSKEY, ...]]

    def covers(self, name: dns.name.Name) -> dns.name.Name | None:
        """The deepest anchored zone that ``name`` is in (or None)."""
        best: dns.name.Name | None = None
        for zone in (*self.ds, *self.keys):
            if name.is_subdomain(zone) and (best is None or zone.is_subdomain(best)):
                best = zone
        return best


def parse_anchors(text: str) -> Anchors:
    """Anchors from zone-file lines ``NAME [TTL] [IN] DS|DNSKEY RDATA`` (comments with ';');
    ValueError naming the bad line."""
    ds: dict[dns.name.Name, list[dns.rdtypes.ANY.DS.DS]] = {}
    keys: dict[dns.name.Name, list[dns.rdtypes.ANY.DNSKEY.DNSKEY]] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        try:
            name = dns.name.from_text(tokens[0])
            rest = tokens[1:]
            while rest and (rest[0].isdigit() or rest[0].upper() == "IN"):
                rest = rest[1:]
            kind = dns.rdatatype.from_text(rest[0])
            rdata = dns.rdata.from_text(dns.rdataclass.IN, kind, " ".join(rest[1:]))
        except (IndexError, dns.exception.DNSException, ValueError) as exc:
            raise ValueError(f"trust anchor line {number} is not 'NAME IN DS|DNSKEY ...': "
                             f"{exc}") from exc
        if isinstance(rdata, dns.rdtypes.ANY.DS.DS):
            ds.setdefault(name, []).append(rdata)
        elif isinstance(rdata, dns.rdtypes.ANY.DNSKEY.DNSKEY):
            keys.setdefault(name, []).append(rdata)
        else:
            raise ValueError(f"trust anchor line {number}: only DS and DNSKEY records anchor")
    if not ds and not keys:
        raise ValueError("no trust anchor in the file")
    return Anchors({k: tuple(v) for k, v in ds.items()}, {k: tuple(v) for k, v in keys.items()})


def root_anchors() -> Anchors:
    return parse_anchors(ROOT_ANCHORS)


@dataclass(frozen=True)
class Proven:
    """An answer RRset checked against a proof."""

    rrset: dns.rrset.RRset
    """The answer (name and type as asked)."""
    signatures: dns.rrset.RRset | None
    """Its RRSIGs; None for an unsigned answer."""
    zone: dns.name.Name | None
    """The zone that signed it (None: unsigned)."""
    valid_from: float
    """Latest inception over the chain's signatures (0 when unsigned)."""
    valid_until: float
    """Earliest expiration over the chain's signatures: past it, the answer is not served
    (infinity when unsigned: the caller's own limits apply)."""
    wire: bytes
    """The proof as received or built, to hand to another node."""

    @property
    def signed(self) -> bool:
        return self.signatures is not None


def type_text(rdtype: int) -> str:
    """A record type's mnemonic (``TXT``), or ``TYPE<n>`` (RFC 3597)."""
    return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype))


def encode_proof(rrsets: Iterable[dns.rrset.RRset]) -> bytes:
    """The proof message of ``rrsets`` (answer first, then the chain)."""
    message = dns.message.Message(id=0)
    for rrset in rrsets:
        message.answer.append(rrset)
    wire: bytes = message.to_wire()
    return wire


def decode(wire: bytes) -> list[dns.rrset.RRset]:
    """The RRsets of a proof; BogusDns if it is oversized or not a DNS message."""
    if len(wire) > MAX_PROOF:
        raise BogusDns(f"a proof of {len(wire)} bytes is over the {MAX_PROOF} accepted")
    try:
        message = dns.message.from_wire(wire)
    except (dns.exception.DNSException, ValueError) as exc:
        raise BogusDns(f"a proof that is not a DNS message: {exc}") from exc
    return list(message.answer)


def prove(qname: dns.name.Name, qtype: int, wire: bytes, anchors: Anchors,
          now: float) -> Proven:
    """Check the proof of ``qname``/``qtype`` at ``now``; BogusDns saying why it fails."""
    rrsets = decode(wire)
    found: dict[tuple[dns.name.Name, int, int], dns.rrset.RRset] = {}
    for rrset in rrsets:
        found[(rrset.name, rrset.rdtype, rrset.covers)] = rrset
    answer = found.get((qname, qtype, dns.rdatatype.NONE))
    if answer is None:
        held = ", ".join(sorted({f"{r.name} {dns.rdatatype.to_text(r.rdtype)}"
                                 for r in rrsets})) or "nothing"
        raise BogusDns(f"the proof holds no {qname} {type_text(qtype)} "
                       f"(it holds {held[:200]}): another name's or zone's records")
    if len(answer) > MAX_RECORDS:
        raise BogusDns(f"{len(answer)} records in one answer, over the {MAX_RECORDS} "
                       "accepted")
    signatures = found.get((qname, RRSIG, qtype))
    if signatures is None:
        anchored = anchors.covers(qname)
        if anchored is not None and anchored != dns.name.root:
            raise BogusDns(f"{qname} is in {anchored}, a zone anchored as signed, but the "
                           "answer has no signature (stripped?)")
        return Proven(answer, None, None, 0.0, float("inf"), wire)
    window = _Window()
    zone = _check_signed(answer, signatures, found, anchors, now, window, depth=0)
    return Proven(answer, signatures, zone, window.start, window.end, wire)


@dataclass
class _Window:
    start: float = 0.0
    end: float = float("inf")

    def narrow(self, signatures: dns.rrset.RRset, now: float) -> None:
        # Of the signatures valid now, the one lasting longest decides this RRset's window.
        live = [s for s in signatures
                if isinstance(s, dns.rdtypes.ANY.RRSIG.RRSIG)
                and s.inception <= now <= s.expiration]
        if live:
            best = max(live, key=lambda s: s.expiration)
            self.start = max(self.start, float(best.inception))
            self.end = min(self.end, float(best.expiration))


def _signer(signatures: dns.rrset.RRset, owner: dns.name.Name) -> dns.name.Name:
    signers = {s.signer for s in signatures if isinstance(s, dns.rdtypes.ANY.RRSIG.RRSIG)}
    if len(signers) != 1:
        raise BogusDns(f"the signatures of {owner} name {len(signers)} signers, not one")
    signer = signers.pop()
    if not owner.is_subdomain(signer):
        raise BogusDns(f"{owner} is signed by {signer}, a zone it is not in")
    for sig in signatures:
        assert isinstance(sig, dns.rdtypes.ANY.RRSIG.RRSIG)
        # RFC 4035 section 5.3.4: fewer labels than the owner's is a wildcard expansion.
        if sig.labels < len(owner.labels) - (1 if owner.labels[-1] == b"" else 0):
            raise BogusDns(f"{owner} is a wildcard expansion, which a proof cannot show "
                           "without NSEC records")
    return signer


def _validate(rrset: dns.rrset.RRset, signatures: dns.rrset.RRset, zone: dns.name.Name,
              keys: list[dns.rdtypes.ANY.DNSKEY.DNSKEY], now: float) -> None:
    if not keys:
        raise BogusDns(f"no trusted key of {zone} to check {rrset.name} "
                       f"{dns.rdatatype.to_text(rrset.rdtype)}")
    from dns import dnssec as checker  # loads cryptography (8 MB): when first needed

    keyset = dns.rrset.from_rdata_list(zone, 0, keys)
    try:
        checker.validate(rrset, signatures, {zone: keyset}, now=now)
    except dns.exception.ValidationFailure as exc:
        raise BogusDns(f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}: no signature "
                       f"verifies at this time ({exc}): forged, altered or expired") from exc


def _check_signed(rrset: dns.rrset.RRset, signatures: dns.rrset.RRset,
                  found: dict[tuple[dns.name.Name, int, int], dns.rrset.RRset],
                  anchors: Anchors, now: float, window: _Window, depth: int) -> dns.name.Name:
    """Validate ``rrset`` under its signer's keys, proving those keys in turn; the signer."""
    zone = _signer(signatures, rrset.name)
    keys = _zone_keys(zone, found, anchors, now, window, depth)
    _validate(rrset, signatures, zone, keys, now)
    window.narrow(signatures, now)
    return zone


def _zone_keys(zone: dns.name.Name,
               found: dict[tuple[dns.name.Name, int, int], dns.rrset.RRset],
               anchors: Anchors, now: float, window: _Window,
               depth: int) -> list[dns.rdtypes.ANY.DNSKEY.DNSKEY]:
    """The DNSKEYs of ``zone``, proven from an anchor or from the parent's DS."""
    if depth >= MAX_CHAIN:
        raise BogusDns(f"a chain of more than {MAX_CHAIN} zones")
    dnskeys = found.get((zone, DNSKEY, dns.rdatatype.NONE))
    key_sigs = found.get((zone, RRSIG, DNSKEY))
    if dnskeys is None or key_sigs is None:
        raise BogusDns(f"the proof lacks the signed DNSKEY set of {zone}")
    all_keys = [k for k in dnskeys if isinstance(k, dns.rdtypes.ANY.DNSKEY.DNSKEY)]
    if zone in anchors.keys or zone in anchors.ds:
        entry_keys = [k for k in all_keys if k in anchors.keys.get(zone, ())
                      or _matches_ds(zone, k, anchors.ds.get(zone, ()))]
    else:
        ds_set = found.get((zone, DS, dns.rdatatype.NONE))
        ds_sigs = found.get((zone, RRSIG, DS))
        if ds_set is None or ds_sigs is None:
            raise BogusDns(f"{zone} is not anchored and the proof lacks its signed DS set")
        if _signer(ds_sigs, zone) == zone:
            raise BogusDns(f"the DS set of {zone} is signed by {zone} itself, not its parent")
        _check_signed(ds_set, ds_sigs, found, anchors, now, window, depth + 1)
        digests = tuple(d for d in ds_set if isinstance(d, dns.rdtypes.ANY.DS.DS))
        entry_keys = [k for k in all_keys if _matches_ds(zone, k, digests)]
    # The DNSKEY set must be signed by a key the anchor or the parent vouches for; then every
    # key in it may sign the zone's data (RFC 4035 section 5.2).
    _validate(dnskeys, key_sigs, zone, entry_keys, now)
    window.narrow(key_sigs, now)
    return all_keys


def _matches_ds(zone: dns.name.Name, key: dns.rdtypes.ANY.DNSKEY.DNSKEY,
                digests: Iterable[dns.rdtypes.ANY.DS.DS]) -> bool:
    from dns import dnssec as checker

    for ds in digests:
        try:
            if checker.make_ds(zone, key, ds.digest_type) == ds:
                return True
        except (dns.exception.DNSException, ValueError):
            continue
    return False
