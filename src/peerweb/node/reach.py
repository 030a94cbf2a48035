"""Reachability and relays of one node: what it learns about itself, the relay port it may
serve, the reservations it holds when it is unreachable, and the detours of its swarm.

- Evidence (``policy.reachability``): libtorrent's external-IP votes (BEP 10 ``yourip``,
  DHT), connections it accepted, and, at start and every ``PROBE_INTERVAL``, a ``WHOAMI``
  from one fixed local port to two relays (the NAT's mapping) and a ``DIALBACK`` to the
  swarm port (reachability).
- A node that is not known to be reachable and was given relays holds a reservation at
  the first that takes it, for its swarm and peer ports: a relay then reaches it through
  that connection (``http.detour.Reservation``).
- Swarm detours: a torrent that has found peers but is connected to none (their NATs drop
  its connections, a punch failed) gets, per peer, a local forwarder through a relay that
  libtorrent connects to (``policy.paths.swarm_detours``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..config import NodeConfig
from ..http.detour import Detours, Forwarder, Reservation, Unreachable, dialback, whoami
from ..http.relay import RelayServer
from ..policy import paths
from ..policy.reachability import Dialback, Reachability, Sighting, assess
from ..swarm.engine import Swarm
from .jobs import Jobs

log = logging.getLogger(__name__)

PROBE_INTERVAL = 5 * 60.0
SWARM_TICK = 1.0
EVIDENCE = 64


class Reach:
    def __init__(self, config: NodeConfig, swarm: Swarm, jobs: Jobs,
                 torrents: Callable[[], list[str]]) -> None:
        self.config = config
        self.swarm = swarm
        self.jobs = jobs
        self.torrents = torrents
        host = config.listen[0]
        self.local = host if host not in ("0.0.0.0", "::", "") else None
        self.detours = Detours(config.relays, local=self.local)
        self.server: RelayServer | None = None
        self.sightings: deque[Sighting] = deque(maxlen=EVIDENCE)
        self.dialbacks: deque[Dialback] = deque(maxlen=EVIDENCE)
        self.incoming: deque[tuple[str, float]] = deque(maxlen=EVIDENCE)
        self.reservation: Reservation | None = None
        self._reservation_task: asyncio.Task[None] | None = None
        self.forwarders: dict[tuple[str, tuple[str, int]], Forwarder] = {}
        self._tried: dict[tuple[str, int], float] = {}
        self.peer_port = 0
        swarm.on_external_ip = self._external_ip
        swarm.on_incoming = self._incoming

    # -- evidence --------------------------------------------------------------------------

    def _external_ip(self, address: str) -> None:
        self.sightings.append(Sighting("libtorrent", address, None, None, time.monotonic()))

    def _incoming(self, address: str) -> None:
        self.incoming.append((address, time.monotonic()))

    def assess(self) -> Reachability:
        own = [self.local] if self.local else []
        # One relay's failed dial-back is proof enough when it is the only one asked: a
        # false "unreachable" costs a reservation, a false "reachable" costs every visitor.
        return assess(own, list(self.sightings), list(self.dialbacks), list(self.incoming),
                      time.monotonic(), disproof=max(1, min(2, len(self.config.relays))))

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, peer_port: int) -> None:
        self.peer_port = peer_port
        if self.config.relay is not None:
            self.server = RelayServer(self.config.relay, self.config.listen[0])
            await self.server.start()
        if self.config.relays:
            self.jobs.spawn(self._probe_loop())
            self.jobs.spawn(self._swarm_loop())

    async def stop(self) -> None:
        for forwarder in self.forwarders.values():
            await forwarder.close()
        self.forwarders.clear()
        if self._reservation_task is not None:
            self._reservation_task.cancel()
            await asyncio.gather(self._reservation_task, return_exceptions=True)
        if self.server is not None:
            await self.server.close()

    async def _probe_loop(self) -> None:
        while True:
            await self.probe()
            verdict = self.assess()
            # A punch is worth its few seconds only when our NAT keeps ports.
            self.detours.punch = verdict.punchable
            if verdict.reachable is not True and self._reservation_task is None:
                self._reserve()
            await asyncio.sleep(PROBE_INTERVAL)

    async def probe(self) -> None:
        """Ask up to two relays how they see us and whether they can connect back."""
        port = self.swarm.listen_port
        local_port = 0  # the system picks one for the first relay; the second gets the same
        for relay in self.config.relays[:2]:
            now = time.monotonic()
            try:
                host, seen_port, local_port = await whoami(relay, self.local, local_port)
                self.sightings.append(Sighting(relay[0], host, seen_port, local_port, now))
                ok = await dialback(relay, port, self.local)
                self.dialbacks.append(Dialback(relay[0], port, ok, time.monotonic()))
            except (OSError, TimeoutError, ValueError) as exc:
                log.info("reachability probe through %s:%d failed: %s", *relay, exc)

    def _reserve(self) -> None:
        ports = [self.swarm.listen_port] + ([self.peer_port] if self.peer_port else [])
        host = self.local or "127.0.0.1"
        self.reservation = Reservation(self.config.relays[0], host, ports, bind=self.local)
        self._reservation_task = self.jobs.spawn(self.reservation.run())

    async def _swarm_loop(self) -> None:
        while True:
            await asyncio.sleep(SWARM_TICK)
            for tid in self.torrents():
                await self._detour_torrent(tid)

    async def _detour_torrent(self, tid: str) -> None:
        if self.swarm.torrent_peers(tid):
            return
        handle = self.swarm.find(tid)
        if handle is None or handle.status().is_seeding:
            return
        found = await self.swarm.find_peers(bytes.fromhex(tid)[:20], timeout=2.0)
        own = [self.local] if self.local else []
        now = time.monotonic()
        for peer in paths.swarm_detours(found, 0, self._tried, own, now):
            self._tried[peer] = now
            forwarder = self.forwarders.get((tid, peer))
            if forwarder is None:
                forwarder = Forwarder(self.detours, peer, self.local or "127.0.0.1")
                await forwarder.start()
                self.forwarders[(tid, peer)] = forwarder
            self.swarm.connect_peer(tid, (forwarder.host, forwarder.port))

    # -- status ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reachability": self.assess().to_json()}
        if self.reservation is not None:
            out["reservation"] = {
                "relay": f"{self.reservation.relay[0]}:{self.reservation.relay[1]}",
                "held": self.reservation.ready.is_set(), "seen_as": self.reservation.seen_as,
                "tunnels": self.reservation.tunnels, "punched": self.reservation.punches}
        if self.server is not None:
            out["relay"] = self.server.status()
        if self.config.relays:
            out["detours"] = {
                "relays": [f"{h}:{p}" for h, p in self.config.relays],
                "swarm": [{"torrent": tid, "peer": f"{p[0]}:{p[1]}",
                           "via": f"{f.via[0]}:{f.via[1]}" if f.via else
                           "punched" if f.punched else "direct",
                           "bytes": f.carried} for (tid, p), f in self.forwarders.items()],
                "failures": [{"to": f"{e.destination[0]}:{e.destination[1]}",
                              "reason": e.reason,
                              "recovered_in": round(e.recovered - e.detected, 3)
                              if e.recovered else None} for e in self.detours.events[-10:]],
            }
        return out


__all__ = ["Reach", "Unreachable"]
