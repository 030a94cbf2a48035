"""The listener of ``peerweb dns``: DNS over UDP and TCP (RFC 1035 section 4.2, RFC 7766).

dnslib parses each query and builds each reply; the answers come from ``DnsService`` (or,
for ``<name>.peer``, from peerweb's names: A = the gateway's address). A query is refused
before it is parsed when its source is over its rate (``decisions.RateLimiter``); a reply
larger than the client can take over UDP (512 bytes, or its EDNS size up to 1232) is sent
truncated, so the client asks again over TCP.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import logging
import struct
import time
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import dns.name
import dns.rdatatype
import dns.rrset
from dnslib import EDNS0, QTYPE, RCODE, RR, A, DNSBuffer, DNSError, DNSRecord

from . import decisions as dec
from .service import Answer, DnsService

log = logging.getLogger(__name__)

PEER_SUFFIX = ".peer."
# RFC 1035 section 4.2.1 without EDNS; 1232 is the DNS flag day 2020 EDNS size.
PLAIN_UDP = 512
MAX_UDP = 1232
MAX_QUERY = 512  # a query with one question and an OPT record is well under this
PEER_TTL = 5  # a .peer answer: the gateway's address does not change, but names may
TCP_IDLE = 10.0


@dataclass
class Listener:
    """The bound sockets, to report and close."""

    udp: asyncio.DatagramTransport
    tcp: asyncio.Server

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.udp.get_extra_info("sockname")[:2]
        return str(host), int(port)

    async def close(self) -> None:
        self.udp.close()
        self.tcp.close()
        await self.tcp.wait_closed()


class DnsFrontend:
    """Turns query bytes into reply bytes."""

    def __init__(self, service: DnsService, peer_name: Callable[[str], Awaitable[bool]],
                 gateway_host: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self._peer_name = peer_name
        self._gateway_host = _ipv4_or_loopback(gateway_host)
        self._clock = clock
        settings = service.settings
        self.limiter = dec.RateLimiter(settings.rate, settings.burst)

    async def handle(self, data: bytes, source: str, udp: bool) -> bytes | None:
        """The reply to send, or None to send nothing (flooding, or not a query)."""
        counters = self.service.counters
        if not self.limiter.admit(source, self._clock()):
            counters["refused_rate"] += 1
            if counters["refused_rate"] % 1000 == 1:
                log.warning("DNS queries from %s over %g a second: dropped (%d so far)",
                            source, self.limiter.rate, counters["refused_rate"])
            return None
        if len(data) > MAX_QUERY:
            counters["refused_malformed"] += 1
            return None
        try:
            query = DNSRecord.parse(data)
        except (DNSError, ValueError, IndexError, struct.error):
            counters["refused_malformed"] += 1
            return None
        if query.header.qr or query.header.opcode != 0 or len(query.questions) != 1:
            counters["refused_malformed"] += 1
            reply = query.reply()
            reply.header.rcode = RCODE.FORMERR if query.header.opcode == 0 else RCODE.NOTIMP
            return bytes(reply.pack())
        reply = await self._reply(query)
        return self._fit(query, reply) if udp else bytes(reply.pack())

    async def _reply(self, query: DNSRecord) -> DNSRecord:
        reply = query.reply()
        reply.header.ra = 1
        question = query.q
        qname = str(question.qname).lower()
        do = _dnssec_ok(query)
        if _has_edns(query):
            reply.add_ar(EDNS0(udp_len=MAX_UDP, flags="do" if do else ""))
        if qname.endswith(PEER_SUFFIX):
            name = qname[: -len(PEER_SUFFIX)]
            if not name or not await self._peer_name(name):
                reply.header.rcode = RCODE.NXDOMAIN
            elif question.qtype in (QTYPE.A, QTYPE.ANY):
                reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(self._gateway_host),
                                    ttl=PEER_TTL))
            return reply
        try:
            answer = await self.service.resolve(dns.name.from_text(qname), question.qtype)
        except (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel) as exc:
            log.debug("bad name %r: %s", qname, exc)
            reply.header.rcode = RCODE.FORMERR
            return reply
        reply.header.rcode = answer.rcode
        reply.header.ad = 1 if answer.authenticated and (do or query.header.ad) else 0
        for rr in _to_dnslib(answer, keep_signatures=do):
            reply.add_answer(rr)
        return reply

    def _fit(self, query: DNSRecord, reply: DNSRecord) -> bytes:
        limit = min(MAX_UDP, max(PLAIN_UDP, _edns_size(query))) if _has_edns(query) \
            else PLAIN_UDP
        packed = bytes(reply.pack())
        if len(packed) <= limit:
            return packed
        self.service.counters["truncated"] += 1
        return bytes(reply.truncate().pack())


def _ipv4_or_loopback(host: str) -> str:
    try:
        return host if ipaddress.ip_address(host).version == 4 else "127.0.0.1"
    except ValueError:
        return "127.0.0.1"


def _opt(query: DNSRecord) -> RR | None:
    return next((rr for rr in query.ar if rr.rtype == QTYPE.OPT), None)


def _has_edns(query: DNSRecord) -> bool:
    return _opt(query) is not None


def _edns_size(query: DNSRecord) -> int:
    opt = _opt(query)
    return int(opt.rclass) if opt is not None else PLAIN_UDP


def _dnssec_ok(query: DNSRecord) -> bool:
    opt = _opt(query)
    return opt is not None and bool(int(opt.ttl) & 0x8000)  # RFC 3225: the DO bit


def _to_dnslib(answer: Answer, keep_signatures: bool) -> list[RR]:
    """The answer's records as dnslib RRs, through their wire form (no text round trip)."""
    out = []
    for rrset in answer.rrsets:
        if rrset.rdtype == dns.rdatatype.RRSIG and not keep_signatures:
            continue
        out += _rrset_to_dnslib(rrset)
    return out


def _rrset_to_dnslib(rrset: dns.rrset.RRset) -> list[RR]:
    buffer = io.BytesIO()
    count = rrset.to_wire(buffer)
    parsed = DNSBuffer(buffer.getvalue())
    return [RR.parse(parsed) for _ in range(count)]


async def listen(frontend: DnsFrontend, host: str, port: int) -> Listener:
    """Serve ``frontend`` on UDP and TCP ``host:port`` (port 0: one free port for both)."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _UdpProtocol(frontend), local_addr=(host, port))
    bound = transport.get_extra_info("sockname")[1]

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        source = str(writer.get_extra_info("peername")[0])
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE):
                    size = struct.unpack("!H", await reader.readexactly(2))[0]
                    data = await reader.readexactly(size)
                reply = await frontend.handle(data, source, udp=False)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    try:
        tcp = await asyncio.start_server(client, host, bound)
    except OSError:
        transport.close()
        raise
    return Listener(transport, tcp)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, frontend: DnsFrontend) -> None:
        self.frontend = frontend
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.ensure_future(self._answer(data, addr))
        self.tasks.add(task)  # owned until done; cancelled with the listener's loop
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.frontend.handle(data, addr[0], udp=True)
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)

    def connection_lost(self, exc: Exception | None) -> None:
        for task in self.tasks:
            task.cancel()
