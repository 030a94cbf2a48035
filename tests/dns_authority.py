"""A DNSSEC-signed test zone (signed by dnspython) and an authoritative server for it (dnslib).

``build_zone`` makes the zone text and the trust anchor (its key-signing key as a DNSKEY
line); ``python tests/dns_authority.py ZONE_FILE HOST ORIGIN`` serves the zone on a free UDP port of
HOST, printing the port on its first line, until killed. It answers like an authority: the
records of the name and type asked, with their RRSIGs when the query sets the DO bit,
NXDOMAIN for names not in the zone; a negative answer carries the zone's SOA, whose MINIMUM
(``negative_ttl``) says how long it may be cached (RFC 2308).
"""

from __future__ import annotations

import io
import sys
import time
from dataclasses import dataclass

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ed25519


@dataclass(frozen=True)
class SignedZone:
    origin: str
    text: str
    """The signed zone, in zone-file form."""
    anchor: str
    """``ORIGIN IN DNSKEY ...``: the trust anchor file's one line."""
    key: ed25519.Ed25519PrivateKey
    dnskey: dns.rdata.Rdata


def build_zone(origin: str, records: dict[str, list[tuple[str, str]]], ttl: int = 1,
               lifetime: int = 3600, expired: tuple[str, ...] = (),
               expiring: dict[str, int] | None = None, now: float | None = None,
               negative_ttl: int = 1) -> SignedZone:
    """``records``: relative name -> [(type, rdata text)]. Names in ``expired`` get
    signatures that ended an hour ago; those in ``expiring`` ones that end after that many
    seconds."""
    now = time.time() if now is None else now
    zone_origin = dns.name.from_text(origin)
    key = ed25519.Ed25519PrivateKey.generate()
    dnskey = dns.dnssec.make_dnskey(key.public_key(), dns.dnssec.Algorithm.ED25519, flags=257)
    zone = dns.zone.Zone(zone_origin)
    with zone.writer() as txn:
        txn.add("@", dns.rrset.from_text("@", 3600, "IN", "SOA",
                                         f"ns.{origin} hostmaster.{origin} 1 60 60 600 "
                                         f"{negative_ttl}"))
        txn.add("@", dns.rrset.from_text("@", 3600, "IN", "NS", f"ns.{origin}"))
        for name, entries in records.items():
            for rdtype, rdata in entries:
                txn.add(name, dns.rrset.from_text(name, ttl, "IN", rdtype, rdata))
    dns.dnssec.sign_zone(zone, keys=[(key, dnskey)], lifetime=lifetime, dnskey_ttl=ttl)
    special = {name: (now - 7200, now - 3600) for name in expired}
    special.update({name: (now - 60, now + seconds) for name, seconds in (expiring or {}).items()})
    with zone.writer() as txn:
        for name, (inception, expiration) in special.items():
            owner = dns.name.from_text(name, zone_origin)
            signatures = []
            for rdtype, _ in records[name]:
                rrset = txn.get(owner, dns.rdatatype.from_text(rdtype))
                signatures.append(dns.dnssec.sign(
                    dns.rrset.from_rdata_list(owner, ttl, list(rrset)), key, zone_origin,
                    dnskey, inception=inception, expiration=expiration))
            txn.replace(owner, dns.rrset.from_rdata_list(owner, ttl, signatures))
    anchor = f"{origin} IN DNSKEY {dnskey.to_text()}\n"
    return SignedZone(origin, zone.to_text(), anchor, key, dnskey)


def serve(zone_file: str, host: str, origin: str) -> None:
    from dnslib import QTYPE, RCODE, RR, DNSBuffer, DNSRecord
    from dnslib.server import BaseResolver, DNSLogger, DNSServer

    with open(zone_file) as file:
        zone = dns.zone.from_text(file.read(), origin=origin, relativize=False)

    def rrs(rrset: dns.rrset.RRset) -> list[RR]:
        buffer = io.BytesIO()
        count = rrset.to_wire(buffer)
        parsed = DNSBuffer(buffer.getvalue())
        return [RR.parse(parsed) for _ in range(count)]

    class Authority(BaseResolver):  # type: ignore[misc]
        def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
            reply = request.reply()
            reply.header.aa = 1
            name = dns.name.from_text(str(request.q.qname))
            qtype = request.q.qtype
            do = any(rr.rtype == QTYPE.OPT and int(rr.ttl) & 0x8000 for rr in request.ar)
            node = zone.get_node(name)
            found = node.get_rdataset(dns.rdataclass.IN, qtype) if node is not None else None
            if found is None:  # RFC 2308 section 3: the SOA says how long to cache this
                soa = zone.get_rdataset(zone.origin, dns.rdatatype.SOA)
                assert soa is not None
                for rr in rrs(dns.rrset.from_rdata_list(zone.origin, soa.ttl, list(soa))):
                    reply.add_auth(rr)
                if node is None:
                    reply.header.rcode = RCODE.NXDOMAIN
            else:
                assert node is not None
                for rr in rrs(dns.rrset.from_rdata_list(name, found.ttl, list(found))):
                    reply.add_answer(rr)
                sigs = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, qtype)
                if do and sigs is not None:
                    for rr in rrs(dns.rrset.from_rdata_list(name, sigs.ttl, list(sigs))):
                        reply.add_answer(rr)
            return reply

    quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    server = DNSServer(Authority(), port=0, address=host, logger=quiet)
    print(server.server.server_address[1], flush=True)
    server.start()  # until killed


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], sys.argv[3])
