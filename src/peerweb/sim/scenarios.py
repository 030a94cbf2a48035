"""peerweb's protocols on the simulated DHT, driven by the node's own decision code.

``update_flood``: holders of a site announce under ``propagation.holders_key``; the
publisher puts version 2 (BEP 44) and pushes it as the node does (``Resolver.push_wave``):
to ``PUBLISH_WAVE`` holders of its list at once, each handed a disjoint share of the others
(``propagation.plan_pushes``), with a second lookup beside it whose extra holders get a
second plan; a holder that takes it as news (its version was older) plans its share again
and, if ``looks_further`` says so, looks the holders up and plans those beyond its share
(``Resolver.forward_share``), once; every holder also polls the pointer every
``propagation.poll_interval``, the safety net. ``FloodConfig.planned`` = False runs the
forward-once pushes of before (``Resolver._push``: ``push_targets``, ``must_look_up``), for
before/after runs.

``volunteer_discovery``: volunteers announce under ``propagation.volunteer_key`` of a shard
drawn by ``volunteer_shard`` (or, with one shard, under the single ``VOLUNTEERS_KEY`` of
before); ``origins`` overloaded origins look up ``volunteer_probes`` shards at once, widen as
``volunteer_widen`` says, ask every volunteer found for its load, and ask
``volunteers.to_ask`` of them to mirror (``Volunteer.find_volunteers`` / ``ask_for_help``).

A push is a peer-protocol message, not a DHT one: it reaches its target 1.5 RTT after it is
sent (TCP handshake, then the pointer). Loads, reports and pushes are not rate-limited.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from peerweb.policy import propagation
from peerweb.policy import volunteers as volunteer_rule

from .core import Simulator
from .geography import GeographyConfig, Region
from .kademlia import Dht, DhtConfig, Kind, Lookup, LookupResult

PUSH_RTTS = 1.5
"""A push arrives after a TCP handshake (1 RTT) and half a round trip more."""
PORT = 6881
PEERS_GRACE = 0.3
"""The node's ``Timings.peers_grace``: its ``find_peers`` returns what came in this long
after the first answer that named any peer (tests/unit/test_sim_scenarios.py checks it is
the node's value)."""
PUBLISH_GRACE = 0.05
"""The node's ``Timings.publish_holders_grace``: a publisher looks the holders up while it
hashes the new version, gathering answers this long after the first naming any; the
pushes start from that list."""
LOOKUP_TIMEOUT = 4.0
"""The node's ``Timings.holders_lookup_timeout``: a lookup that names nobody ends here."""
PROBE_TIMEOUT = 1.5
"""The node's ``Timings.holders_probe_timeout``: the first look at two holders shards."""

LOOPBACK = GeographyConfig(regions=(Region("loopback", 1.0, 0.0, 0.0, 0.0),),
                           access_median=0.0005, access_sigma=0.3)
"""The testnet's network: every node on 127.0.0.x of one machine, so no distance, only a
per-end delay (the time a busy Python process takes to read and answer), fitted by
bench/sim_calibrate.py against real nodes (docs/simulator.md)."""

TESTNET_FIT = {"access_median_s": 0.00211, "push_delay_s": 0.0022, "publish_delay_s": 0.0274,
               "shared_cpu_per_node_s": 0.00068}
"""The loopback model fitted by bench/sim_calibrate.py on 50 real nodes (30 holders, 5
floods; bench/results/sim_calibrate.json): the per-end delay of ``LOOPBACK`` (from the
holders lookups), a push's delay (measured: one push to a holder that has the version),
the publish's (building and signing the version: the first acceptance), and the shared
processor's seconds per news per node of the testnet (from the floods);
tests/integration/test_sim_calibration.py and ``--fit-from`` predict other testnets with
it."""


def key_prefix(key: bytes) -> int:
    """A 20-byte DHT key as the 64-bit prefix the simulated DHT compares distances on."""
    return int.from_bytes(key[:8], "big")


def shard_key(base: bytes, shard: int, shards: int) -> bytes:
    """The key of one of ``shards`` shards of ``base`` (one shard: ``base`` itself).

    For the holders key, which the node does not shard (yet): the derivation the node uses
    for volunteers (``propagation.volunteer_key``), ``sha1(base + "#" + shard)``."""
    if shards == 1:
        return base
    return hashlib.sha1(base + b"#" + shard.to_bytes(2, "big")).digest()


def endpoint(node: int) -> propagation.Endpoint:
    return (f"n{node}", PORT)


def node_of(where: propagation.Endpoint) -> int:
    return int(where[0][1:])


@dataclass(frozen=True)
class Load:
    """DHT requests each node received in one phase of a scenario (peerweb's traffic only)."""

    busiest: int
    p99: float
    median: float
    mean: float
    median_active: float
    """Median over the nodes that received any of this traffic."""
    dropped: int
    """Requests dropped by the reply rate limit, all nodes."""
    busiest_dropped: int
    seconds: float
    """Length of the phase."""
    background: dict[float, float] = field(default_factory=dict)
    """Busiest / median node once every node also receives Mainline's own requests at each
    of ``BACKGROUND_RATES`` a second (Poisson; see there), peerweb's load on top."""

    @property
    def busiest_per_second(self) -> float:
        return self.busiest / self.seconds if self.seconds else 0.0

    @property
    def busiest_over_mean(self) -> float:
        return self.busiest / self.mean if self.mean else 0.0

    @property
    def busiest_over_median(self) -> float:
        """The busiest node against the median of the nodes this traffic reached (the
        median of all nodes is 0: the simulator has none of Mainline's own traffic)."""
        return self.busiest / self.median_active if self.median_active else 0.0


BACKGROUND_RATES = (0.1, 1.0, 10.0)
"""Requests a second an ordinary Mainline DHT node receives from the rest of the DHT
(pings, find_node, get_peers, announces of torrents that have nothing to do with peerweb).
An assumption, not a measurement: we know of no published per-node figure we can cite
here, so the ratio is reported at three rates a decade apart (docs/simulator.md)."""


def with_background(got: np.ndarray, seconds: float, rate: float, seed: int = 0) -> float:
    """Busiest / median node when each node receives Poisson(``rate`` x ``seconds``)
    background requests besides ``got``: the issue's "10x the median node" measure."""
    total = got + np.random.default_rng(seed).poisson(rate * seconds, size=len(got))
    median = float(np.median(total))
    return float(total.max()) / median if median else float("inf")


def load_between(before: Sequence[int], after: Sequence[int], dropped_before: Sequence[int],
                 dropped_after: Sequence[int], seconds: float) -> Load:
    got = np.asarray(after) - np.asarray(before)
    drops = np.asarray(dropped_after) - np.asarray(dropped_before)
    top = int(np.argmax(got))
    active = got[got > 0]
    return Load(int(got[top]), float(np.percentile(got, 99)), float(np.median(got)),
                float(got.mean()), float(np.median(active)) if len(active) else 0.0,
                int(drops.sum()), int(drops[top]), seconds,
                {rate: round(with_background(got, seconds, rate), 1)
                 for rate in BACKGROUND_RATES})


# -- the update flood ----------------------------------------------------------------------

@dataclass(frozen=True)
class FloodConfig:
    nodes: int = 10_000
    holders: int = 1_000
    shards: int = 1
    """Holders announce under one of this many keys (1: ``holders_key`` alone, as today);
    a forwarding holder looks up one at random."""
    fanout: int = propagation.FANOUT
    """Targets of a forwarding holder (0, with ``wave`` 0: no pushes at all)."""
    wave: int = propagation.PUBLISH_WAVE
    """Targets of the publisher's own pushes, with ``planned``."""
    planned: bool = True
    """Planned pushes, as the node sends them now (``Resolver.push_wave``,
    ``forward_share``); False: forward-once pushes to ``push_targets`` (``Resolver._push``,
    the node before), where ``holder_list`` applies."""
    holder_list: int = 0
    """Without ``planned``: holders a push names (the node's was
    ``propagation.PUSHED_HOLDERS``; 0: none), so that a forwarding holder looks up only as
    ``must_look_up`` says. Planned pushes name their share (up to ``PUSHED_HOLDERS``)."""
    announce_window: float = 300.0
    """Holders announce at random times over this many seconds before the update (and, with
    ``warm``, refresh their lists over as many more): the node's
    ``Timings.holder_announce_interval``, so that the DHT load per second is the steady
    state's (the first rounds packed them into 60 s, 5x the load)."""
    idle_seconds: float = 0.0
    """How long ago every holder last used the site: sets its ``poll_interval``."""
    poll: bool = True
    pointer_size: int = 400
    """Bytes of the BEP 44 item (the signed pointer)."""
    horizon: float = 200.0
    """Seconds after the update that the run stops, whoever has not heard of it."""
    offline: float = 0.0
    """Share of the DHT's nodes off line at the start (their contacts stay in tables)."""
    churn_per_hour: float = 0.0
    dht: DhtConfig = field(default_factory=DhtConfig)
    grace: float | None = PEERS_GRACE
    """Holder lookups end as the node's ``find_peers`` does (None: at the traversal's end,
    as the first rounds of the simulator had it)."""
    geography: GeographyConfig | None = None
    """None: the synthetic internet; ``LOOPBACK`` for the testnet."""
    warm: bool = False
    """Holders refresh their list of other holders after announcing (``holder_refresh``
    shards) and forward from it without a lookup (``must_look_up(warm=True)``), as the node
    now does; False: lists are cold at the update, as before."""
    legacy_lookup: bool = False
    """A forwarder looks up one shard at random (the first rounds' model) instead of the
    node's ``Resolver.holders`` (own shard and one other, widened if short)."""
    shared_cpu: float = 0.0
    """Seconds of one processor that every node shares, spent after each news (saving
    state, adding the new version's torrent, the pushes): the testnet runs all its nodes in
    one Python process, so they queue, and forwards go out when the queue is through; 0 on
    the internet (own machines)."""
    publish_delay: float = 0.0
    """Seconds from the publish to its first push (building and signing the version),
    fitted on the testnet; 0 on the internet runs (it adds the same to every holder)."""
    probe_lookups: int = 0
    """Nodes that hold nothing look the holders up (``Resolver.holders``) once each, at
    quiet times before the update; their durations are ``FloodResult.probe_seconds``."""
    holders_ttl: float = 20.0
    """The node's ``Timings.holders_ttl``: with ``planned``, the publish's own holders
    lookup (``Publisher._ask_network``, ``PUBLISH_GRACE``) is in the list its wave goes
    out from if the wave starts within this long of its end; the wave then waits for it,
    as the node signs only once it has asked. 0: unused, and not waited for (the node
    still asks before it signs, but ``publish_delay`` is then counted from the signing)."""
    push_delay: float = 0.0
    """Seconds a push takes on top of ``PUSH_RTTS`` round trips (a receiver's processing:
    verifying the pointer, saving state), fitted on the testnet."""
    adaptive: bool = False
    """Each node's shard count grows with what its lookups find, as the node's does
    (``propagation.holder_shards``, ``reshard``), starting from ``shards``; needs ``warm``.
    Holders then announce and refresh in ``rounds`` rounds of ``announce_window``."""
    rounds: int = 1
    expire_moved: bool = True
    """A holder that moves shard is forgotten under the old one at once: the steady state
    45 minutes on, when libtorrent's DHT nodes have dropped the announce it no longer
    renews (an assumption of ours: 1.5 x its 30-minute announce interval)."""
    poll_stretch: bool = False
    """Holders stretch their poll by the holders their last lookup suggested, as the node
    does (``poll_interval(..., holders=)``); False: every holder polls each minute."""
    seed: int = 0


@dataclass(frozen=True)
class FloodResult:
    config: FloodConfig
    accepted_at: list[float]
    """Seconds after the update at which each holder that heard of it took it, sorted."""
    by_push: int
    by_poll: int
    pushes: int
    pushes_news: int
    dht_queries: int
    """Queries sent by the publisher's and holders' lookups after the update."""
    holders_in_dht: int
    """Distinct holders stored at the ``k`` nodes closest to the holders key(s)."""
    load_announce: Load
    load_update: Load
    wall_seconds: float
    events: int
    probe_seconds: list[float] = field(default_factory=list)
    """Durations of the ``probe_lookups``."""
    shard_counts: dict[int, int] = field(default_factory=dict)
    """How many holders reckoned the site uses how many shards, at the update."""
    late: list[tuple[int, int, int]] = field(default_factory=list)
    """(shard count, own shard, named in lists) of the last 2% of holders to take it."""

    def time_to(self, share: float) -> float | None:
        """Seconds until ``share`` of the holders had taken the update (None: never)."""
        need = max(1, int(np.ceil(share * self.config.holders)))
        return self.accepted_at[need - 1] if len(self.accepted_at) >= need else None

    @property
    def messages_per_holder(self) -> float:
        return (self.pushes + self.dht_queries) / self.config.holders


def update_flood(config: FloodConfig) -> FloodResult:
    started = time.perf_counter()
    sim = Simulator(config.seed)
    dht = Dht(sim, config.nodes, config.dht, geo_config=config.geography)
    rng = sim.rng
    chosen = rng.sample(range(config.nodes), config.holders + 1)
    publisher, holders = chosen[0], chosen[1:]
    if config.offline:
        dht.take_offline(config.offline, protect=set(chosen))
    public_key = rng.randbytes(32)
    key_cache: dict[int, int] = {}

    def key(shard: int) -> int:
        """The 64-bit prefix of a holders shard's key (one shard: the one key)."""
        if shard not in key_cache:
            single = config.shards == 1 and not config.adaptive
            key_cache[shard] = key_prefix(propagation.holders_key(
                public_key, None if single else shard))
        return key_cache[shard]
    count = dict.fromkeys(chosen, config.shards)
    estimate: dict[int, int] = {}
    pointer_key = key_prefix(hashlib.sha1(public_key).digest())
    version = dict.fromkeys(holders, 1)
    own = {h: propagation.holder_shard(rng, config.shards) for h in chosen}

    def find_many(node: int, shards: list[int], grace: float | None,
                  then: Callable[[set[int]], None], timeout: float = LOOKUP_TIMEOUT,
                  sizes: list[int] | None = None) -> None:
        """The node's ``Dht.find_peers_many``: the shards' lookups at once, ending ``grace``
        after the first answer on any of them that named peers (None: when all end), or at
        ``LOOKUP_TIMEOUT`` if none did."""
        lookups: list[Lookup] = []
        sizes = [] if sizes is None else sizes
        state = {"due": False, "ended": 0}
        began = sim.now

        def collect() -> None:
            sizes[:] = [len(set(lookup.peers) - {node}) for lookup in lookups]
            then(set().union(*(lookup.peers for lookup in lookups)))

        def named_some() -> None:
            if grace is not None and not state["due"]:
                state["due"] = True
                sim.after(grace, collect)

        def ended(_: LookupResult) -> None:
            state["ended"] += 1
            if state["ended"] == len(lookups) and not state["due"]:
                state["due"] = True
                sim.at(began + timeout if grace is not None and not any(
                    lookup.peers for lookup in lookups) else sim.now, collect)
        for shard in shards:
            lookup = dht.lookup(node, key(shard), Kind.GET_PEERS, ended)
            lookup.watcher = named_some
            lookups.append(lookup)

    def find_holders(node: int, grace: float | None,
                     then: Callable[[list[propagation.Endpoint]], None]) -> None:
        """The node's ``Resolver.holders``: its own shard and one other at once
        (``holder_refresh``), then every other shard if they named too few
        (``holders_widen``); with one shard, the one key."""
        shards = count.get(node, config.shards)
        tried = propagation.holder_refresh(
            own[node], rng, shards, propagation.looks_full(estimate.get(node, 0), shards))
        sizes: list[int] = []

        def first(seen: set[int]) -> None:
            others = len(seen - {node})
            if config.adaptive:
                # Resolver._counted: the count and this node's own shard move with it.
                gauge = propagation.counted_shards(tried, sizes, shards)
                new = propagation.holder_shards(gauge, shards)
                estimate[node] = propagation.holder_estimate(gauge, shards)
                if new != count.get(node, config.shards):
                    own[node] = propagation.reshard(own[node], shards, new, rng)
                    count[node] = new
            elif config.poll_stretch:
                estimate[node] = propagation.holder_estimate(
                    propagation.counted_shards(tried, sizes, shards), shards)
            more = propagation.holders_widen(others, tried, shards, rng)
            if more:
                find_many(node, more, grace, lambda extra: done(seen | extra))
            else:
                done(seen)

        def done(seen: set[int]) -> None:
            then([endpoint(p) for p in seen if p != node])
        find_many(node, tried, grace, first,
                  PROBE_TIMEOUT if shards > 1 else LOOKUP_TIMEOUT, sizes)

    accepted: dict[int, float] = {}
    cpu_free = [0.0]
    how = {"push": 0, "poll": 0}
    counts = {"pushes": 0, "news": 0, "queries": 0}

    cached: dict[int, list[propagation.Endpoint]] = {}
    window = config.announce_window
    if config.adaptive or config.rounds > 1:
        # Resolver.announce_loop: every holder_announce_interval, announce under the own
        # shard as it is then, and refresh the list (which may move the count and shard).
        announced: dict[int, int] = {}

        def announce_and_refresh(holder: int) -> None:
            if holder != publisher:
                was = announced.get(holder)
                if config.expire_moved and was is not None and was != own[holder]:
                    for node in dht.true_closest(key(was), dht.config.k):
                        stored = dht.peer_store.get(node, {}).get(key(was))
                        if stored is not None:
                            stored.remove(holder)
                announced[holder] = own[holder]
                dht.announce(holder, key(own[holder]))
            def keep(found: list[propagation.Endpoint]) -> None:
                cached[holder] = found
            find_holders(holder, config.grace, keep)
        for holder in chosen:
            phase = rng.uniform(0, window)
            for r in range(config.rounds):
                sim.at(r * window + phase, announce_and_refresh, holder)
        t0 = config.rounds * window + 5.0
    elif config.warm:
        for holder in holders:
            sim.at(rng.uniform(0, window), dht.announce, holder, key(own[holder]))
        # The publisher holds the site too: it refreshes its list as every holder does.
        for holder in chosen:
            sim.at(config.announce_window + rng.uniform(0, config.announce_window),
                   find_holders, holder, config.grace,
                   lambda found, h=holder: cached.__setitem__(h, found))
        t0 = 2 * config.announce_window + 5.0
    else:
        for holder in holders:
            sim.at(rng.uniform(0, window), dht.announce, holder, key(own[holder]))
        t0 = config.announce_window + 5.0

    def counted(then: LookupResult) -> None:
        """Queries are counted by the DHT (``queries_sent``): a lookup with a grace goes on
        after its result is handed over."""

    def push_on(node: int, exclude: list[int], pushed: Sequence[int] = (),
                grace: float | None = config.grace) -> None:
        """``Resolver._push``: forward to the holders the push named, or look them up
        first (``must_look_up``), and push to ``push_targets`` of them."""
        me, skip = endpoint(node), [endpoint(e) for e in exclude]
        named = [endpoint(p) for p in pushed]

        def send(known: list[propagation.Endpoint]) -> None:
            targets = propagation.push_targets(known, me, skip, fanout=config.fanout, rng=rng)
            for target in targets:
                counts["pushes"] += 1
                names = (propagation.holders_to_send(known, target, config.holder_list, rng)
                         if config.holder_list else [])
                sim.after(PUSH_RTTS * dht.geo.rtt(node, node_of(target)) + config.push_delay,
                          pushed_to, node,
                          node_of(target), [node_of(h) for h in names])

        def found(peers: list[propagation.Endpoint]) -> None:
            send(peers + named)

        mine = cached.get(node, [])
        usable = len(set(named + mine) - {me, *skip})
        if config.holder_list and not propagation.must_look_up(usable, rng,
                                                               warm=bool(mine)):
            send(named + mine)
        elif config.legacy_lookup:
            dht.lookup(node, key(rng.randrange(config.shards)), Kind.GET_PEERS,
                       lambda r: found([endpoint(p) for p in r.peers]), grace,
                       LOOKUP_TIMEOUT)
        else:
            find_holders(node, grace, found)

    def send_plan(node: int, plan: list[propagation.Push],
                  then: Callable[[], None] | None = None) -> None:
        """``Resolver._send_plan``: hand each target its share; ``then`` once every answer
        is back (half a round trip after the slowest push arrived). A share whose target
        did not take it is planned again by the sender in the node; here every push
        arrives (holders are never off line), so none is."""
        slowest = 0.0
        for target, share in plan:
            counts["pushes"] += 1
            rtt = dht.geo.rtt(node, node_of(target))
            sim.after(PUSH_RTTS * rtt + config.push_delay, pushed_to, node, node_of(target),
                      [node_of(h) for h in share])
            slowest = max(slowest, (PUSH_RTTS + 0.5) * rtt + config.push_delay)
        if then is not None:
            sim.after(slowest, then)

    def publish(grace: float | None) -> None:
        """``Publisher.publish``: its holders lookup while it builds, then ``push_wave``."""
        if not config.holders_ttl:
            sim.after(config.publish_delay, push_wave, grace, None)
            return
        began = sim.now

        def asked(peers: list[propagation.Endpoint]) -> None:
            ended = sim.now
            at = max(began + config.publish_delay, ended)
            sim.at(at, push_wave, grace, peers if at - ended <= config.holders_ttl else None)
        find_holders(publisher, grace, asked)

    def push_wave(grace: float | None, asked: list[propagation.Endpoint] | None) -> None:
        """``Resolver.push_wave``: ``wave`` holders of the warm list and the publish's
        lookup (``asked``, None if stale), or of a lookup when there is no warm list, at
        once, each with a share; beside it a lookup, whose holders the first list missed
        get a second plan once both are through."""
        me = endpoint(publisher)
        state = {"left": 2}
        lists: dict[str, list[propagation.Endpoint]] = {}

        def both_done() -> None:
            state["left"] -= 1
            if state["left"]:
                return
            missed = set(lists["found"]) - set(lists["first"])
            if missed:
                send_plan(publisher, propagation.plan_pushes(
                    sorted(missed), me, fanout=config.wave, rng=rng))

        def found(peers: list[propagation.Endpoint]) -> None:
            lists["found"] = peers
            both_done()

        def first(known: list[propagation.Endpoint]) -> None:
            lists["first"] = known
            send_plan(publisher, propagation.plan_pushes(known, me, fanout=config.wave,
                                                         rng=rng), both_done)
            find_holders(publisher, config.grace, found)

        warm = cached.get(publisher, [])
        usable = sorted((set(warm) | set(asked or [])) - {me})
        if warm and usable:
            first(usable)
        elif asked is not None:
            first(sorted(set(asked) - {me}))
        else:
            find_holders(publisher, grace, first)

    def forward_share(node: int, exclude: list[int], share: Sequence[int]) -> None:
        """``Resolver.forward_share``: plan the share again, then (``looks_further``) look
        the holders up and plan those beyond the share."""
        me, skip = endpoint(node), [endpoint(e) for e in exclude]
        mine = [endpoint(h) for h in share]

        def beyond(peers: list[propagation.Endpoint]) -> None:
            send_plan(node, propagation.plan_pushes(sorted(set(peers) - set(mine)), me, skip,
                                                    fanout=config.fanout, rng=rng))

        def further() -> None:
            if propagation.looks_further(rng):
                find_holders(node, config.grace, beyond)
        send_plan(node, propagation.plan_pushes(mine, me, skip, fanout=config.fanout,
                                                rng=rng), further)

    probes: list[float] = []
    if config.probe_lookups:
        # Nodes that hold nothing (the same ones again if there are fewer than asked),
        # after the announces and before the update.
        strangers = [n for n in range(config.nodes) if n not in set(chosen)] or [publisher]
        rng.shuffle(strangers)
        for who in strangers:
            own.setdefault(who, propagation.holder_shard(rng, config.shards))
        quiet = t0 - 1.0 - config.announce_window
        for i in range(config.probe_lookups):
            def probe(who: int = strangers[i % len(strangers)]) -> None:
                began = sim.now
                find_holders(who, config.grace, lambda _: probes.append(sim.now - began))
            sim.at(config.announce_window + quiet * i / config.probe_lookups, probe)

    def accept(node: int, source: int | None, via: str, pushed: Sequence[int] = ()) -> None:
        """``Resolver.accept_pointer`` for version 2: news only once, then forward."""
        if version.get(node, 0) >= 2:
            return
        version[node] = 2
        how[via] += 1
        exclude = [source] if source is not None else []
        accepted[node] = sim.now - t0
        if config.shared_cpu:
            # The testnet's nodes share one process and one event loop: what follows news
            # (the state saved, the new version's torrent added, the forward's requests)
            # is done one node at a time, and a forward's pushes, awaiting their
            # connections, go out only once the loop has worked through what was queued
            # before: real floods arrive in sharp waves (bench/results/sim_calibrate.json).
            cpu_free[0] = max(sim.now, cpu_free[0]) + config.shared_cpu
            waiting.append((node, exclude, pushed))
            sim.at(cpu_free[0], forward_when_idle)
            return
        forward(node, exclude, pushed)

    def forward(node: int, exclude: list[int], pushed: Sequence[int]) -> None:
        if config.planned:
            forward_share(node, exclude, pushed)
        else:
            push_on(node, exclude, pushed)

    waiting: list[tuple[int, list[int], Sequence[int]]] = []

    def forward_when_idle() -> None:
        if sim.now + 1e-12 < cpu_free[0]:
            return  # more news came in: the run at the new end forwards them all
        batch = waiting[:]
        waiting.clear()
        for node, exclude, pushed in batch:
            forward(node, exclude, pushed)

    def pushed_to(sender: int, target: int, holders: list[int]) -> None:
        if version.get(target, 0) < 2:
            counts["news"] += 1
        accept(target, sender, "push", holders)

    def poll(node: int) -> None:
        def got(result: LookupResult) -> None:
            counted(result)
            if result.item is not None and result.item[0] >= 2:
                accept(node, None, "poll")
        if sim.now > t0 and node not in accepted:
            dht.lookup(node, pointer_key, Kind.GET, got)
        sim.after(poll_every(node), poll, node)

    def poll_every(node: int) -> float:
        return propagation.poll_interval(config.idle_seconds, rng,
                                         estimate.get(node, 0) if config.poll_stretch else 0)

    def update() -> None:
        marks["update"] = (list(dht.received), list(dht.dropped))
        counts["queries_at_update"] = dht.queries_sent
        version[publisher] = 2
        sim.after(config.publish_delay, dht.put, publisher, pointer_key, 2,
                  config.pointer_size, counted)
        publish_grace = PUBLISH_GRACE if config.grace is not None else None
        if config.planned:
            publish(publish_grace)
        else:
            sim.after(config.publish_delay, push_on, publisher, [], (), publish_grace)

    marks: dict[str, tuple[list[int], list[int]]] = {}
    sim.at(t0, update)

    def start_polls() -> None:
        # At the update, so that each first poll is drawn from what its holder knows then.
        for holder in holders:
            sim.after(poll_every(holder) * rng.random(), poll, holder)
    if config.poll:
        sim.at(t0, start_polls)
    if config.churn_per_hour:
        dht.churn(config.churn_per_hour, protect=set(chosen))
    sim.run(until=t0 - 1e-9)
    announce_load = load_between([0] * dht.n, dht.received, [0] * dht.n, dht.dropped, t0)
    shard_counts = dict(sorted(Counter(count[h] for h in holders).items()))
    stored: set[int] = set()
    for prefix in list(key_cache.values()):
        for node in dht.true_closest(prefix, dht.config.k):
            peers = dht.peer_store.get(node, {}).get(prefix)
            if peers is not None:
                stored.update(peers.members)
    sim.run(until=t0 + config.horizon, stop=lambda: len(accepted) == config.holders)
    named = Counter(node_of(e) for found in cached.values() for e in found)
    order = sorted(holders, key=lambda h: accepted.get(h, float("inf")))
    late = [(count[h], own[h], named[h]) for h in order[-max(1, config.holders // 50):]]
    before, dropped_before = marks["update"]
    update_load = load_between(before, dht.received, dropped_before, dht.dropped,
                               sim.now - t0)
    return FloodResult(config, sorted(accepted.values()), how["push"], how["poll"],
                       counts["pushes"], counts["news"],
                       dht.queries_sent - counts["queries_at_update"], len(stored),
                       announce_load, update_load, time.perf_counter() - started,
                       sim.events_run, probes, shard_counts, late)


# -- volunteer discovery -------------------------------------------------------------------

@dataclass(frozen=True)
class DiscoveryConfig:
    nodes: int = 10_000
    volunteers: int = 1_000
    origins: int = 100
    shards: int = 1
    """Volunteers announce under one of this many keys (1: ``VOLUNTEERS_KEY`` alone, as
    before; the node's is ``propagation.VOLUNTEER_SHARDS``)."""
    probes: int = propagation.VOLUNTEER_PROBES
    """Shards an origin looks up first, at random (all of them when there are fewer); it
    widens to all the others if they name fewer than ``wanted``."""
    wanted: int = 3
    """Ready volunteers an origin wants (``Volunteer.ask_for_help``)."""
    announce_window: float = 60.0
    discovery_window: float = 10.0
    """The origins start their lookups at random times over this many seconds."""
    offline: float = 0.0
    churn_per_hour: float = 0.0
    """Share of the DHT's nodes leaving (and as many coming back) per hour, from the start
    of the announces; needs ``offline`` > 0 for nodes to come back."""
    dht: DhtConfig = field(default_factory=DhtConfig)
    seed: int = 0


@dataclass(frozen=True)
class DiscoveryResult:
    config: DiscoveryConfig
    found: list[int]
    """Volunteers each origin found."""
    seconds: list[float]
    """Per origin: lookups done and every found volunteer's load report in."""
    visible: int
    """Distinct volunteers any origin found."""
    load_requests_busiest: int
    """Load-report requests the busiest volunteer answered."""
    asked_busiest: int
    """Mirror requests (``to_ask``) the busiest volunteer received."""
    widened: int
    """Origins whose first probes named fewer than ``wanted`` and looked up every shard."""
    lookups: int
    """DHT lookups (get_peers) the origins made, all of them."""
    load_announce: Load
    load_discovery: Load
    wall_seconds: float
    events: int


def volunteer_discovery(config: DiscoveryConfig) -> DiscoveryResult:
    started = time.perf_counter()
    sim = Simulator(config.seed)
    dht = Dht(sim, config.nodes, config.dht)
    rng = sim.rng
    chosen = rng.sample(range(config.nodes), config.volunteers + config.origins)
    volunteers, origins = chosen[:config.volunteers], chosen[config.volunteers:]
    if config.offline:
        dht.take_offline(config.offline, protect=set(chosen))
    if config.churn_per_hour:
        dht.churn(config.churn_per_hour, protect=set(chosen))
    # The node's keys: ``volunteer_key(shard)``, or with one shard the single key of before
    # (which origins still read when they widen).
    legacy = key_prefix(propagation.VOLUNTEERS_KEY)
    keys = ([legacy] if config.shards == 1 else
            [key_prefix(propagation.volunteer_key(s)) for s in range(config.shards)])
    for v in volunteers:
        sim.at(rng.uniform(0, config.announce_window), dht.announce, v,
               keys[propagation.volunteer_shard(rng, config.shards)])
    load = {v: rng.random() for v in volunteers}
    t0 = config.announce_window + 5.0
    found: dict[int, set[int]] = {o: set() for o in origins}
    lookups_left = dict.fromkeys(origins, 0)
    tried: dict[int, list[int]] = {}
    widened = dict.fromkeys(origins, False)
    finished: dict[int, float] = {}
    load_requests = dict.fromkeys(volunteers, 0)
    asked = dict.fromkeys(volunteers, 0)
    began: dict[int, float] = {}
    counts = {"lookups": 0}

    def look_up(origin: int, lookup_keys: list[int]) -> None:
        """``Volunteer._look_up``: the keys in parallel; ``got`` once all have answered."""
        def then(result: LookupResult) -> None:
            got(origin, result)
        lookups_left[origin] = len(lookup_keys)
        counts["lookups"] += len(lookup_keys)
        for key in lookup_keys:
            dht.lookup(origin, key, Kind.GET_PEERS, then)

    def discover(origin: int) -> None:
        """``Volunteer.find_volunteers``: probe a few shards, widen if they name too few."""
        began[origin] = sim.now
        tried[origin] = propagation.volunteer_probes(rng, config.shards, config.probes)
        look_up(origin, [keys[s] for s in tried[origin]])

    def got(origin: int, result: LookupResult) -> None:
        found[origin].update(result.peers)
        lookups_left[origin] -= 1
        if lookups_left[origin]:
            return
        more = propagation.volunteer_widen(len(found[origin]), config.wanted, tried[origin],
                                           config.shards)
        if more and not widened[origin]:
            widened[origin] = True
            look_up(origin, [keys[s] for s in more] + [legacy] * (config.shards > 1))
            return
        mine = sorted(found[origin])
        for v in mine:
            load_requests[v] += 1
        # The load reports come back in parallel: the slowest decides.
        slowest = max((dht.geo.rtt(origin, v) for v in mine), default=0.0)
        finished[origin] = sim.now + PUSH_RTTS * slowest - began[origin]
        reports = [{"endpoint": endpoint(v), "load": load[v], "sites": {}} for v in mine]
        for report in volunteer_rule.to_ask(reports, "site", 1, config.wanted, rng):
            asked[node_of(report["endpoint"])] += 1

    for origin in origins:
        sim.at(t0 + rng.uniform(0, config.discovery_window), discover, origin)
    sim.run(until=t0 - 1e-9)
    announce_load = load_between([0] * dht.n, dht.received, [0] * dht.n, dht.dropped, t0)
    before, dropped_before = list(dht.received), list(dht.dropped)
    if config.churn_per_hour:
        # Churn never ends: stop when every origin's lookups are long over.
        sim.run(until=t0 + config.discovery_window + 4 * LOOKUP_TIMEOUT + 30.0)
    else:
        sim.run()
    discovery_load = load_between(before, dht.received, dropped_before, dht.dropped,
                                  sim.now - t0)
    visible = set().union(*found.values()) if found else set()
    return DiscoveryResult(config, [len(found[o]) for o in origins],
                           [finished[o] for o in origins if o in finished], len(visible),
                           max(load_requests.values(), default=0),
                           max(asked.values(), default=0), sum(widened.values()),
                           counts["lookups"], announce_load, discovery_load,
                           time.perf_counter() - started, sim.events_run)


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, p95 and max of a list (empty: zeros), for the benches' JSON."""
    if not values:
        return {"median": 0.0, "p95": 0.0, "max": 0.0}
    ordered = sorted(values)
    return {"median": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
            "max": ordered[-1]}


# -- a flash crowd's DHT traffic -----------------------------------------------------------

def crowd_lookups(nodes: int, visitors: int, window: float = 60.0, pointer_size: int = 400,
                  seed: int = 0) -> tuple[Load, list[float]]:
    """The DHT side of a flash crowd (``sim.crowd`` has none): ``visitors`` nodes arrive
    over ``window`` seconds, each gets the site's pointer (BEP 44) and looks up and
    announces into its swarm (get_peers + announce_peer), as a visitor's node opening a
    site does. Returns the load over the crowd and each visitor's pointer lookup time."""
    sim = Simulator(seed)
    dht = Dht(sim, nodes)
    rng = sim.rng
    pointer_key, swarm_key = rng.getrandbits(64), rng.getrandbits(64)
    publisher = rng.randrange(nodes)
    dht.put(publisher, pointer_key, 1, pointer_size)
    sim.run(until=10.0)
    before, dropped_before = list(dht.received), list(dht.dropped)
    times: list[float] = []

    def visit(node: int) -> None:
        began = sim.now
        dht.lookup(node, pointer_key, Kind.GET, lambda _: times.append(sim.now - began))
        dht.announce(node, swarm_key)
    for node in rng.sample(range(nodes), min(visitors, nodes)):
        sim.at(10.0 + rng.uniform(0, window), visit, node)
    sim.run()
    return load_between(before, dht.received, dropped_before, dht.dropped,
                        sim.now - 10.0), times
