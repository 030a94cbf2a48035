"""A small BitTorrent HTTP tracker: BEP 3 announce, BEP 23 compact peers, BEP 7 IPv6, scrape.

For sites that want a tracker of their own beside the DHT. The protocol logic (parsing an
announce, keeping swarms, encoding answers) is pure; ``make_app`` is the aiohttp adapter.
A peer's address is the one its request came from: the ``ip`` parameter is ignored, so
nobody can announce somebody else's address.
"""

from __future__ import annotations

import ipaddress
import random
import time
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from aiohttp import web

from ..content import bencode

ANNOUNCE_INTERVAL = 300  # seconds between a client's announces
PEER_TTL = 2 * ANNOUNCE_INTERVAL + 60  # a peer that stopped announcing is forgotten
DEFAULT_NUMWANT = 50
MAX_NUMWANT = 200
MAX_SWARMS = 100_000  # bound the memory a stranger can make us use
MAX_PEERS_PER_SWARM = 5_000
EVENTS = ("", "started", "completed", "stopped", "empty")


class TrackerError(ValueError):
    """A request the tracker refuses; the message goes back as BEP 3 'failure reason'."""


@dataclass(frozen=True)
class Announce:
    info_hash: bytes
    peer_id: bytes
    ip: str
    port: int
    left: int
    event: str
    numwant: int
    compact: bool


def _params(raw_query: str) -> dict[str, bytes]:
    """Query parameters as raw bytes (info_hash and peer_id are binary, percent-encoded)."""
    params: dict[str, bytes] = {}
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        params.setdefault(unquote_to_bytes(name).decode("latin-1"),
                          unquote_to_bytes(value.replace("+", " ")))
    return params


def _int(params: dict[str, bytes], name: str, default: int | None = None) -> int:
    raw = params.get(name)
    if raw is None:
        if default is None:
            raise TrackerError(f"missing {name}")
        return default
    try:
        return int(raw)
    except ValueError:
        raise TrackerError(f"{name} is not a number") from None


def parse_announce(raw_query: str, remote_ip: str) -> Announce:
    params = _params(raw_query)
    info_hash = params.get("info_hash", b"")
    peer_id = params.get("peer_id", b"")
    if len(info_hash) != 20:
        raise TrackerError("info_hash must be 20 bytes")
    if len(peer_id) != 20:
        raise TrackerError("peer_id must be 20 bytes")
    port = _int(params, "port")
    if not 1 <= port <= 65535:
        raise TrackerError("port out of range")
    event = params.get("event", b"").decode("latin-1")
    if event not in EVENTS:
        raise TrackerError(f"unknown event {event!r}")
    numwant = max(0, min(_int(params, "numwant", DEFAULT_NUMWANT), MAX_NUMWANT))
    return Announce(info_hash, peer_id, remote_ip, port, max(0, _int(params, "left", 0)),
                    event, numwant, params.get("compact", b"1") != b"0")


def parse_scrape(raw_query: str) -> list[bytes]:
    hashes = []
    for part in raw_query.split("&"):
        name, _, value = part.partition("=")
        if name == "info_hash":
            raw = unquote_to_bytes(value)
            if len(raw) != 20:
                raise TrackerError("info_hash must be 20 bytes")
            hashes.append(raw)
    return hashes


@dataclass
class _Peer:
    peer_id: bytes
    seeder: bool
    expires: float


@dataclass
class Swarms:
    """Who is in which swarm. ``now`` is passed in so the logic is testable without sleeping."""

    peers: dict[bytes, dict[tuple[str, int], _Peer]] = field(default_factory=dict)
    completed: dict[bytes, int] = field(default_factory=dict)

    def announce(self, a: Announce, now: float,
                 rng: random.Random | None = None) -> list[tuple[str, int]]:
        """Record the announce; return up to ``numwant`` other live peers, in random order."""
        swarm = self.peers.get(a.info_hash)
        if swarm is None:
            if a.event == "stopped":
                return []
            if len(self.peers) >= MAX_SWARMS:
                self.expire(now)
                if len(self.peers) >= MAX_SWARMS:
                    raise TrackerError("tracker is full")
            swarm = self.peers[a.info_hash] = {}
        key = (a.ip, a.port)
        if a.event == "stopped":
            swarm.pop(key, None)
            if not swarm:
                del self.peers[a.info_hash]
            return []
        if key not in swarm and len(swarm) >= MAX_PEERS_PER_SWARM:
            raise TrackerError("swarm is full")
        if a.event == "completed":
            self.completed[a.info_hash] = self.completed.get(a.info_hash, 0) + 1
        swarm[key] = _Peer(a.peer_id, a.left == 0, now + PEER_TTL)
        others = [k for k, p in swarm.items() if k != key and p.expires > now]
        if a.left == 0:  # a seeder needs no other seeders
            others = [k for k in others if not swarm[k].seeder]
        (rng or random).shuffle(others)
        return others[: a.numwant]

    def counts(self, info_hash: bytes, now: float) -> tuple[int, int, int]:
        """(complete, incomplete, downloaded) for scrape and announce answers."""
        swarm = self.peers.get(info_hash, {})
        live = [p for p in swarm.values() if p.expires > now]
        seeders = sum(p.seeder for p in live)
        return seeders, len(live) - seeders, self.completed.get(info_hash, 0)

    def expire(self, now: float) -> None:
        for info_hash in list(self.peers):
            swarm = self.peers[info_hash]
            for key in [k for k, p in swarm.items() if p.expires <= now]:
                del swarm[key]
            if not swarm:
                del self.peers[info_hash]


def announce_response(peers: list[tuple[str, int]], counts: tuple[int, int, int],
                      compact: bool, interval: int = ANNOUNCE_INTERVAL) -> bytes:
    complete, incomplete, _ = counts
    answer: dict[bytes, bencode.Value] = {
        b"interval": interval, b"min interval": interval // 2,
        b"complete": complete, b"incomplete": incomplete,
    }
    if compact:
        v4, v6 = bytearray(), bytearray()
        for ip, port in peers:
            address = ipaddress.ip_address(ip)
            target = v4 if address.version == 4 else v6
            target += address.packed + port.to_bytes(2, "big")
        answer[b"peers"] = bytes(v4)
        if v6:
            answer[b"peers6"] = bytes(v6)
    else:
        answer[b"peers"] = [{b"ip": ip.encode(), b"port": port} for ip, port in peers]
    return bencode.encode(answer)


def failure(reason: str) -> bytes:
    return bencode.encode({b"failure reason": reason.encode()})


def make_app(swarms: Swarms | None = None) -> web.Application:
    table = swarms or Swarms()
    app = web.Application()

    def reply(body: bytes) -> web.Response:
        return web.Response(body=body, content_type="text/plain")

    async def announce(request: web.Request) -> web.Response:
        now = time.monotonic()
        try:
            a = parse_announce(request.rel_url.raw_query_string, request.remote or "")
            peers = table.announce(a, now)
        except TrackerError as exc:
            return reply(failure(str(exc)))
        return reply(announce_response(peers, table.counts(a.info_hash, now), a.compact))

    async def scrape(request: web.Request) -> web.Response:
        now = time.monotonic()
        try:
            hashes = parse_scrape(request.rel_url.raw_query_string)
        except TrackerError as exc:
            return reply(failure(str(exc)))
        files: dict[bytes, bencode.Value] = {}
        for info_hash in hashes or list(table.peers)[:MAX_NUMWANT]:
            complete, incomplete, downloaded = table.counts(info_hash, now)
            files[info_hash] = {b"complete": complete, b"incomplete": incomplete,
                                b"downloaded": downloaded}
        return reply(bencode.encode({b"files": files}))

    app.router.add_get("/announce", announce)
    app.router.add_get("/scrape", scrape)
    return app
