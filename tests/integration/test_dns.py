"""DNS that survives its servers, on loopback: a real authoritative server for a DNSSEC-signed
zone (tests/dns_authority.py: signed by dnspython, served by dnslib), nodes resolving through
their DNS listeners, the authority killed by its pid, a second node that never asked getting
the answers from the DHT, a hostile node's forged RRset refused, expired signatures not
served, and a domain bridged with ``_peerweb`` served by the gateway with its DNS down."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import dns.asyncquery
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from peerweb.config import DnsSettings, NodeConfig
from peerweb.content.addressing import Address, Target
from peerweb.content.identity import KeyStore
from peerweb.dns import decisions, dnssec
from peerweb.dns.server import DnsFrontend, listen
from peerweb.dns.service import DnsService, Entry, share_key
from peerweb.tools.testnet import Testnet, write_sample_site

from ..dns_authority import build_zone
from ..waiting import wait_until

ORIGIN = "pw.test."
AUTHORITY_HOST = "127.0.0.53"
SHORT_LIFE = 30  # seconds the "short" name's signatures last from the zone's signing
TIMEOUT = 30.0
AUTHORITY = Path(__file__).resolve().parents[1] / "dns_authority.py"


def start_authority(zone_file: Path) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen([sys.executable, str(AUTHORITY), str(zone_file), AUTHORITY_HOST,
                                ORIGIN], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def stop_authority(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(10)
    if process.stdout is not None:
        process.stdout.close()


async def query(port: int, name: str, rdtype: str = "A") -> dns.message.Message:
    message = dns.message.make_query(name, rdtype, want_dnssec=True)
    return await dns.asyncquery.udp(message, "127.0.0.1", timeout=10, port=port)


def addresses(response: dns.message.Message) -> list[str]:
    return sorted(r.to_text() for rrset in response.answer if rrset.rdtype == 1 for r in rrset)


async def dns_listener(running, stack) -> int:
    node = running.node

    listener = await listen(DnsFrontend(node.dns, node.names.knows, "127.0.0.1"), "127.0.0.1", 0)
    stack.append(listener)
    return listener.address[1]


def forged_copy(good: Entry) -> Entry:
    """What a hostile node hands: www's real proof with its A record changed."""
    rrsets = dnssec.decode(good.proven.wire)
    www = dns.name.from_text("www." + ORIGIN)
    forged = [dns.rrset.from_text(www, 1, "IN", "A", "6.6.6.6") if r.rdtype == 1 else r
              for r in rrsets]
    wire = dnssec.encode_proof(forged)
    proven = replace(good.proven, rrset=forged[0], wire=wire)
    return Entry(replace(good.copy, records=frozenset({"6.6.6.6"})), proven)


async def test_dns_survives_its_authority_shares_through_the_dht_and_refuses_forgeries(
        tmp_path, http):
    root = tmp_path / "net"
    key = KeyStore(root / "node-0" / "keys").create("site")
    domain = "blog." + ORIGIN.rstrip(".")
    zone = build_zone(ORIGIN, {
        "www": [("A", "127.0.0.80")],
        "old": [("A", "127.0.0.81")],
        "short": [("A", "127.0.0.82")],
        "_peerweb.blog": [("TXT", f'"site={key.site_id}"')],
        "_peerweb.unclaimed": [("TXT", f'"site={key.site_id}"')],
    }, ttl=1, expired=("old",), expiring={"short": SHORT_LIFE})
    signed_at = time.time()
    (tmp_path / "zone").write_text(zone.text)
    (tmp_path / "anchor").write_text(zone.anchor)
    authority, port = start_authority(tmp_path / "zone")
    listeners: list = []
    try:
        settings = DnsSettings(upstreams=((AUTHORITY_HOST, port),),
                               trust_anchors=tmp_path / "anchor", upstream_timeout=1.0)
        contents = write_sample_site(tmp_path / "site", small_files=3, big_size=0, seed=7)
        async with Testnet(5, root=root, template=NodeConfig(dns=settings)) as net:
            owner, asker, second, hostile, _ = net.nodes
            await owner.node.publish(tmp_path / "site", "site", domains=(domain,))
            dns_port = await dns_listener(asker, listeners)
            second_port = await dns_listener(second, listeners)

            # Through the DNS listener: validated (AD), expired signatures refused, .peer names.
            answer = await query(dns_port, "www." + ORIGIN)
            assert addresses(answer) == ["127.0.0.80"] and answer.flags & dns.flags.AD
            assert any(r.rdtype == dns.rdatatype.RRSIG for r in answer.answer)
            assert (await query(dns_port, "old." + ORIGIN)).rcode() == dns.rcode.SERVFAIL
            assert addresses(await query(dns_port, "short." + ORIGIN)) == ["127.0.0.82"]
            assert (await query(dns_port, "nx." + ORIGIN)).rcode() == dns.rcode.NXDOMAIN
            asker.node.names.book.add("blog", Address(Target.SITE, key.site_id))
            assert addresses(await query(dns_port, "blog.peer.")) == ["127.0.0.1"]
            assert (await query(dns_port, "nobody.peer.")).rcode() == dns.rcode.NXDOMAIN

            # The bridged domain through the gateway, while DNS works; a claim the site does
            # not make in its pointer is refused.
            gw = http(asker)
            status, _, body = await gw.site(domain, "/")
            assert status == 200 and body == contents["index.html"]
            status, _, body = await gw.site("unclaimed." + ORIGIN.rstrip("."), "/")
            assert status == 404 and b"does not claim the domain" in body
            status, _, body = await gw.raw(f"/n/{domain}/")
            assert status == 200 and body == contents["index.html"]

            # A hostile node announces a forged copy of www (its records altered under the
            # real signature) before the outage.
            www = dns.name.from_text("www." + ORIGIN)
            good = asker.node.dns._cache[("www." + ORIGIN, 1)]
            hostile.node.dns._keep(("www." + ORIGIN, 1), forged_copy(good))
            hostile.node.dns._announce(www, 1)
            await wait_until(lambda: _holders_at_least(second, share_key(www, 1), 2), TIMEOUT,
                             "the honest and the hostile holder of www in the DHT")
            txt = dns.name.from_text(f"_peerweb.{domain}.")
            await wait_until(lambda: _holders_at_least(second, share_key(txt, 16), 1), TIMEOUT,
                             "a holder of the bridged domain's TXT record in the DHT")

            # The authority dies.
            os.kill(authority.pid, signal.SIGKILL)
            authority.wait(10)

            # The node that asked answers from its cache (validated, stale, past its TTL) ...
            await wait_until(lambda: not decisions.fresh(good.copy, time.time()), TIMEOUT,
                             "www's TTL to run out")
            answer = await query(dns_port, "www." + ORIGIN)
            assert addresses(answer) == ["127.0.0.80"] and answer.flags & dns.flags.AD
            assert asker.node.dns.counters["served_stale"] >= 1
            # ... and the node that never asked, from the DHT: the honest copy, the forged
            # one refused and counted.
            answer = await query(second_port, "www." + ORIGIN)
            assert addresses(answer) == ["127.0.0.80"] and answer.flags & dns.flags.AD
            assert second.node.dns.counters["refused_forged"] >= 1
            assert addresses(await query(second_port, "short." + ORIGIN)) == ["127.0.0.82"]

            # The bridged domain keeps working through both gateways with its DNS down.
            status, _, body = await gw.site(domain, "/")
            assert status == 200 and body == contents["index.html"]
            status, _, body = await http(second).site(domain, "/")
            assert status == 200 and body == contents["index.html"]

            # Past its signatures' expiry, "short" is served by nobody.
            left = signed_at + SHORT_LIFE - time.time()
            assert left > 0, "the test ran too slowly to see short's signatures still valid"

            async def short_refused() -> bool:
                answers = [await query(p, "short." + ORIGIN) for p in (dns_port, second_port)]
                return all(a.rcode() == dns.rcode.SERVFAIL for a in answers)

            await wait_until(short_refused, left + TIMEOUT, "short's expired signatures refused")
            assert asker.node.dns.counters["stale_refused"] >= 1
            assert addresses(await query(dns_port, "www." + ORIGIN)) == ["127.0.0.80"]
    finally:
        for listener in listeners:
            await listener.close()
        stop_authority(authority)


async def _holders_at_least(running, key: bytes, count: int) -> bool:
    return len(await running.node.swarm.find_peers(key, 5.0)) >= count


async def test_peerweb_dns_command_forwards_validates_and_answers_peer_names(tmp_path):
    zone = build_zone(ORIGIN, {"www": [("A", "127.0.0.80")]}, ttl=60)
    (tmp_path / "zone").write_text(zone.text)
    (tmp_path / "anchor").write_text(zone.anchor)
    authority, port = start_authority(tmp_path / "zone")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "peerweb", "dns", "--listen", "127.0.0.1:0", "--upstream",
        f"{AUTHORITY_HOST}:{port}", "--trust-anchor", str(tmp_path / "anchor"), "--gateway",
        "127.0.0.1:0", "--data-dir", str(tmp_path / "data"), "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        record = json.loads(line)
        dns_port = int(record["dns"].rsplit(":", 1)[1])
        answer = await query(dns_port, "www." + ORIGIN)
        assert addresses(answer) == ["127.0.0.80"] and answer.flags & dns.flags.AD
        os.kill(authority.pid, signal.SIGKILL)
        authority.wait(10)
        answer = await query(dns_port, "www." + ORIGIN)  # within its TTL: from the cache
        assert addresses(answer) == ["127.0.0.80"]
        assert (await query(dns_port, "nobody.peer.")).rcode() == dns.rcode.NXDOMAIN
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(process.communicate(), 60)
        stop_authority(authority)


async def test_negative_answers_are_cached_for_their_soa_ttl(tmp_path):
    """NXDOMAIN and no-data answers come from the cache for the zone's negative TTL (RFC
    2308): the second ask does not reach the authority, nor does one after it died."""
    zone = build_zone(ORIGIN, {"www": [("A", "127.0.0.80")]}, ttl=60, negative_ttl=300)
    (tmp_path / "zone").write_text(zone.text)
    (tmp_path / "anchor").write_text(zone.anchor)
    authority, port = start_authority(tmp_path / "zone")
    service = DnsService(DnsSettings(upstreams=((AUTHORITY_HOST, port),),
                                     trust_anchors=tmp_path / "anchor", upstream_timeout=1.0))

    async def no_peer_names(_name: str) -> bool:
        return False

    listener = await listen(DnsFrontend(service, no_peer_names, "127.0.0.1"), "127.0.0.1", 0)
    dns_port = listener.address[1]
    try:
        assert (await query(dns_port, "nx." + ORIGIN)).rcode() == dns.rcode.NXDOMAIN
        nodata = await query(dns_port, "www." + ORIGIN, "AAAA")
        assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
        assert service.counters["negative_cached"] == 2
        assert (await query(dns_port, "nx." + ORIGIN)).rcode() == dns.rcode.NXDOMAIN
        assert service.counters["negative_hits"] == 1
        os.kill(authority.pid, signal.SIGKILL)
        authority.wait(10)
        assert (await query(dns_port, "nx." + ORIGIN)).rcode() == dns.rcode.NXDOMAIN
        nodata = await query(dns_port, "www." + ORIGIN, "AAAA")
        assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
        assert service.counters["negative_hits"] == 3
        # A name never asked has nothing cached: the dead authority means SERVFAIL.
        assert (await query(dns_port, "other." + ORIGIN)).rcode() == dns.rcode.SERVFAIL
    finally:
        await listener.close()
        stop_authority(authority)
