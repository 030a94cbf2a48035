"""A flash crowd on one origin: V visitors, M volunteers, an origin of capacity C.

A fluid model of the transfers (numpy, one vector entry per visitor, steps of ``dt``), with
the origin's decisions made by the node's own code: ``spike.handoff.LoadPolicy`` (when to
hand visitors to the swarm, fed the bytes the origin sends), ``policy.stepback``
(``should_step_back`` / ``should_return`` / ``stepped_back_rate``: the origin's upload once
the crowd holds every piece twice), and ``LoadPolicy.strained`` (when to ask volunteers).

- Before the hand-off, a visitor fetches the site over HTTP from the origin, which shares
  its capacity C among them (each up to its downlink).
- After it, a visitor starts in the swarm ``swarm_start`` seconds after arriving (the
  pointer's DHT lookup and the metadata: the simulator's lookups take ~1-1.5 s, see
  docs/simulator.md) and downloads from every source at once: the origin (at its upload
  limit), volunteers that hold the site, visitors done and still on the page, and visitors
  still downloading, each able to give what it holds (``held`` share of its uplink, the
  usual fluid model of BitTorrent). Sources serve in proportion to their capacity; a
  downloader gets an equal share of the supply, up to its downlink.
- Volunteers asked when the origin is strained start ``volunteer_start`` seconds later
  (discovery and the mirror request) and fetch the site like visitors, then seed it.
- "The crowd holds every piece twice" is read as: the pieces the origin's ``peers_seen``
  best-stocked peers hold add up to 2 copies (rarest-first spreads pieces evenly).

Not modelled: TCP dynamics, piece-level scheduling, choking rounds, NAT, visitors' loss.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from peerweb.content.folder import piece_size_for
from peerweb.policy import stepback
from peerweb.spike.handoff import LoadPolicy, Mode, Thresholds

MB = 1_000_000


@dataclass(frozen=True)
class CrowdConfig:
    visitors: int = 1000
    volunteers: int = 8
    """Volunteers the origin can find and ask (``Volunteer.ask_for_help`` asks 3 at a
    time; the model asks ``volunteers`` once, when strained)."""
    site_bytes: int = 2 * MB
    origin_capacity: float = 1.25 * MB
    """Bytes/s the origin can send (10 Mbit/s)."""
    arrival_window: float = 60.0
    """Visitors arrive at uniformly random times over this many seconds."""
    visitor_down: float = 5.0 * MB
    visitor_up: float = 1.0 * MB
    """Median uplink of a visitor (lognormal, ``visitor_up_sigma``)."""
    visitor_up_sigma: float = 0.7
    own_nodes: bool = False
    """Every visitor runs its own node, which fetches the site from the swarm at once (the
    testnet's flash crowd, bench/flash_crowd.py), never over HTTP from the origin."""
    volunteer_up: float = 5.0 * MB
    stay: float = 30.0
    """Mean seconds a visitor stays on the page (and seeds) after its page is complete."""
    swarm_start: float = 1.2
    volunteer_start: float = 3.0
    peers_seen: int = 50
    """Peers the origin is connected to, whose pieces count for stepping back."""
    connections: int = 6
    """Requests a visitor fetching over HTTP has in flight at the origin: a browser's
    connections per host (bench/browsers.py), each with a request of the page's files."""
    piece_efficiency: float = 1.0
    """Share of a downloader's uplink in use once it holds a piece (the fluid model's eta,
    ~1 for BitTorrent: Qiu and Srikant, "Modeling and performance analysis of
    BitTorrent-like peer-to-peer networks", 2004); pieces are the node's
    ``piece_size_for`` of the site. 0: a downloader uploads in proportion to the share of
    the site it holds, as the first rounds had it (pessimistic: a peer with one piece of 30
    uploads that piece to the many who lack it at its whole uplink)."""
    dt: float = 0.05
    horizon: float = 600.0
    seed: int = 0


@dataclass(frozen=True)
class CrowdResult:
    config: CrowdConfig
    page_seconds: np.ndarray
    """Per visitor: seconds from arrival to a complete page (inf: never)."""
    origin_bytes: float
    origin_http_bytes: float
    handed_off_at: float | None
    stepped_back_at: float | None
    volunteers_asked_at: float | None
    origin_rate: list[tuple[float, float]] = field(default_factory=list)
    """(time, origin egress bytes/s), every second."""
    wall_seconds: float = 0.0
    mode_changes: int = 0

    @property
    def origin_copies(self) -> float:
        return self.origin_bytes / self.config.site_bytes

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.page_seconds, q))


def flash_crowd(config: CrowdConfig) -> CrowdResult:
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    n, size, dt = config.visitors, float(config.site_bytes), config.dt
    arrive = np.sort(rng.uniform(0.0, config.arrival_window, n))
    up = config.visitor_up * np.exp(rng.normal(0.0, config.visitor_up_sigma, n))
    leave_after = rng.exponential(config.stay, n)
    got = np.zeros(n)  # bytes held
    http = np.zeros(n, dtype=bool)  # fetching from the origin over HTTP
    swarm_from = np.full(n, np.inf)  # when a visitor may start in the swarm
    done_at = np.full(n, np.inf)
    arrived = np.zeros(n, dtype=bool)
    m = config.volunteers
    vol_got = np.zeros(m)
    vol_from = np.inf
    piece = float(piece_size_for(config.site_bytes))

    def useful(held: np.ndarray) -> np.ndarray:
        """Share of its uplink a downloader holding ``held`` bytes can use: all of it once
        it has a whole piece, which others lack (``piece_efficiency`` 1: rarest first
        keeps what one peer holds different from its neighbours'), a share of it before,
        or ``held``/site with ``piece_efficiency`` 0 (the first rounds' model)."""
        if config.piece_efficiency <= 0:
            return held / size
        return np.minimum(1.0, held / piece) * config.piece_efficiency

    policy = LoadPolicy(Thresholds(capacity=config.origin_capacity))
    origin_rate_limit = config.origin_capacity
    stepped = False
    origin_bytes = http_bytes = 0.0
    handed_at = stepped_at = asked_at = None
    rates: list[tuple[float, float]] = []
    second_bytes = 0.0
    steps = int(config.horizon / dt)
    for step in range(steps):
        now = step * dt
        new = ~arrived & (arrive <= now)
        if new.any():
            arrived |= new
            count = int(new.sum())
            if policy.mode is Mode.HANDOFF or config.own_nodes:
                swarm_from[new] = arrive[new] + config.swarm_start
                for _ in range(count):  # one request a visitor: the page
                    policy.redirected(now)
            else:
                http[new] = True
                policy.passed += count
        # Over HTTP: the origin's capacity shared among the visitors fetching from it.
        fetching = http & (got < size)
        sent_http = 0.0
        if fetching.any():
            share = min(config.visitor_down, config.origin_capacity / fetching.sum())
            take = np.minimum(share * dt, size - got[fetching])
            got[fetching] += take
            sent_http = float(take.sum())
        # In the swarm.
        in_swarm = (swarm_from <= now) & ~http
        down = in_swarm & (got < size)
        vol_active = np.full(m, now >= vol_from)
        vol_down = vol_active & (vol_got < size)
        present = in_swarm & (now < done_at + leave_after)
        seeding = present & (got >= size)
        leeching = present & ~seeding
        supply_v = float((up[leeching] * useful(got[leeching])).sum() + up[seeding].sum())
        vol_seeding = vol_active & (vol_got >= size)
        supply_vol = float(config.volunteer_up * vol_seeding.sum()
                           + (config.volunteer_up * useful(vol_got[vol_down])).sum())
        origin_in_swarm = policy.mode is Mode.HANDOFF or (swarm_from < np.inf).any()
        supply_o = origin_rate_limit if origin_in_swarm else 0.0
        wanting = int(down.sum()) + int(vol_down.sum())
        sent_swarm = 0.0
        if wanting:
            supply = supply_o + supply_v + supply_vol
            each = min(config.visitor_down, supply / wanting) * dt
            need_v = np.minimum(each, size - got[down])
            need_vol = np.minimum(each, size - vol_got[vol_down])
            demand = float(need_v.sum() + need_vol.sum())
            got[down] += need_v
            vol_got[vol_down] += need_vol
            if supply > 0:
                sent_swarm = supply_o * dt * min(1.0, demand / (supply * dt))
        newly = (got >= size) & np.isinf(done_at) & arrived
        done_at[newly] = now + dt
        http &= got < size
        sent = sent_http + sent_swarm
        origin_bytes += sent
        http_bytes += sent_http
        second_bytes += sent
        # The origin's decisions, from what its web server sent (its seeding in the swarm
        # is libtorrent's, which the origin server does not see: spike/origin.py).
        policy.sent(int(sent_http), now + dt)
        policy.in_flight = int(fetching.sum()) * config.connections
        mode_before = policy.mode
        policy.update(now + dt)
        if mode_before is Mode.NORMAL and policy.mode is Mode.HANDOFF:
            handed_at = now + dt if handed_at is None else handed_at
            # Visitors still on HTTP are sent to the swarm too (the redirector).
            waiting = http & (got < size)
            swarm_from[waiting] = now + dt + config.swarm_start
            http[waiting] = False
            policy.passed -= int(waiting.sum())
            for _ in range(int(waiting.sum())):
                policy.redirected(now + dt)
        if asked_at is None and m and policy.strained(now + dt):
            asked_at = now + dt
            vol_from = now + dt + config.volunteer_start
        if origin_in_swarm:
            held = np.concatenate([got[present], vol_got[vol_active]])
            if len(held) > config.peers_seen:
                held = np.partition(held, len(held) - config.peers_seen)[-config.peers_seen:]
            # What its best-stocked peers hold, spread evenly over the pieces (rarest
            # first), but no piece is anywhere before the origin sent it once: until it
            # has sent a whole copy, some piece is held by nobody.
            copies = float(held.sum()) / size if origin_bytes >= size else 0.0
            peers = int(min(len(held), config.peers_seen))
            counts = [math.floor(copies)] if peers else []
            if not stepped and stepback.should_step_back(counts, peers):
                stepped, stepped_at = True, now + dt
                origin_rate_limit = stepback.stepped_back_rate(int(config.origin_capacity))
            elif stepped and stepback.should_return(counts, peers):
                stepped = False
                origin_rate_limit = config.origin_capacity
        if (step + 1) % int(round(1 / dt)) == 0:
            rates.append((now + dt, second_bytes))
            second_bytes = 0.0
        if arrived.all() and np.isfinite(done_at).all():
            break
    page = done_at - arrive
    return CrowdResult(config, page, origin_bytes, http_bytes, handed_at, stepped_at,
                       asked_at, rates, time.perf_counter() - started, policy.changes)
