"""Resolving bridged domains (``peerweb.names.bridge``) with the node's DNS and pointers."""

from __future__ import annotations

import time

import dns.rcode
import dns.rdatatype

from ..content.addressing import Target
from ..dns.service import DnsService
from ..errors import UnknownName
from ..names import bridge
from ..names.resolution import Resolution
from .resolver import Resolver


class Bridge:
    def __init__(self, dns_service: DnsService, resolver: Resolver) -> None:
        self._dns = dns_service
        self._resolver = resolver

    async def resolve(self, name: str) -> Resolution:
        domain = bridge.as_domain(name)
        if domain is None:
            raise UnknownName(f"{name!r} is no petname, site id or domain")
        answer = await self._dns.resolve(bridge.claim_name(domain), dns.rdatatype.TXT)
        texts = [b"".join(r.strings).decode("utf-8", "replace")
                 for rrset in answer.rrsets if rrset.rdtype == dns.rdatatype.TXT
                 for r in rrset]
        if answer.rcode != dns.rcode.NOERROR and not texts:
            rcode = dns.rcode.to_text(dns.rcode.Rcode.make(answer.rcode))
            raise UnknownName(f"{bridge.claim_name(domain)} could not be resolved ({rcode}), "
                              "and no copy of it is known: the domain cannot be bridged now")
        site_id = bridge.claimed_site(domain, texts)
        held = self._resolver.held_pointer(site_id)
        pointer = held if held is not None and domain in held.domains else \
            await self._resolver.refresh_pointer(site_id) or held
        if pointer is None:
            raise UnknownName(f"{domain} names site {site_id[:12]}..., whose pointer was not "
                              "found in the DHT")
        bridge.confirm(domain, site_id, pointer.domains)
        how = "DNSSEC-validated" if answer.authenticated else "unsigned"
        stale = f", served stale from {answer.stale.value}" if answer.stale else ""
        chain = (f"{bridge.claim_name(domain)} TXT site={site_id} ({how}{stale})",
                 f"site {site_id[:12]}... claims {domain} in its signed pointer "
                 f"v{pointer.version}")
        return Resolution(domain, Target.SITE, site_id, (), chain,
                          time.monotonic() + max(1, answer.ttl))
