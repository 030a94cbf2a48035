"""The Mainline DHT as libtorrent runs it, at the level of messages (BEP 5, BEP 44).

Nodes have 160-bit ids. Routing tables follow BEP 5: bucket ``i`` of a node holds up to
``k`` contacts whose ids share exactly ``i`` leading bits with its own; they are built from
the whole population at the start (a node that has been up a while), each bucket a spread
sample of its part of the id space. Lookups are Kademlia's iterative ones: ask the ``alpha``
closest unasked nodes, merge the ``k`` closest contacts each returns, stop when the ``k``
closest known nodes have all answered (or timed out).

Every node stores what BEP 5 and BEP 44 let it store, with libtorrent's limits (read from
``libtorrent.default_settings()`` of libtorrent 2.1): at most ``max_peers`` peers per
info-hash (a full set replaces a random peer), ``max_peers_reply`` of them in one reply,
``max_items`` BEP 44 items. Every node answers at most ``upload_rate`` bytes of replies a
second (libtorrent's ``dht_upload_rate_limit``); a request that would exceed it is dropped,
and its sender sees a timeout. Churn takes nodes off line and brings them back (they keep
their id and table, and lose what they stored); tables are not repaired, so the dead
contacts in them cost lookups timeouts.

Distances: ids are 160 bits, but XOR distances are compared on their top 64 bits, which
order up to 10^6 random ids exactly but for ties of probability ~N^2/2^65 (< 3e-8).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from .core import Simulator
from .geography import Geography, GeographyConfig

ID_BITS = 160
HI_BITS = 64
"""Bits of an id that distances are compared on."""


class Kind(Enum):
    FIND_NODE = "find_node"
    GET_PEERS = "get_peers"
    ANNOUNCE = "announce_peer"
    GET = "get"
    PUT = "put"


# Reply sizes in bytes, bencoded: a header (~60: t, y, r, id, token) plus 26 bytes per
# compact node (8 of them), 6 per compact IPv4 peer, and a BEP 44 value up to 1000 bytes.
NODES_REPLY = 60 + 8 * 26
BARE_REPLY = 60
PEER_BYTES = 6


@dataclass(frozen=True)
class DhtConfig:
    """What the simulated DHT nodes do; defaults are BEP 5's and libtorrent 2.1's."""

    k: int = 8
    """Bucket size and the number of closest nodes a lookup settles on (BEP 5)."""
    alpha: int = 3
    """Queries a lookup keeps in flight (Kademlia's alpha; libtorrent's
    ``dht_search_branching`` is 5)."""
    max_peers: int = 500
    """Peers a node stores per info-hash (``dht_max_peers``)."""
    max_peers_reply: int = 100
    """Peers in one get_peers reply (``dht_max_peers_reply``)."""
    max_torrents: int = 2000
    """Info-hashes a node stores peers for (``dht_max_torrents``)."""
    max_items: int = 700
    """BEP 44 items a node stores (``dht_max_dht_items``)."""
    upload_rate: float = 8000.0
    """Bytes of replies a node sends per second (``dht_upload_rate_limit``)."""
    burst: float = 3.0
    """Seconds of ``upload_rate`` a quiet node may spend at once (an assumption)."""
    query_timeout: float = 2.0
    """Seconds a lookup waits for an answer before it counts the node as failed."""


@dataclass(frozen=True)
class LookupResult:
    """The end of one iterative lookup."""

    origin: int
    target: int
    """The 64-bit prefix of the key looked up."""
    kind: Kind
    closest: list[int]
    """The ``k`` closest nodes that answered, closest first."""
    peers: list[int]
    """get_peers: the distinct peers the answers carried."""
    item: tuple[int, int] | None
    """get: the BEP 44 item with the highest sequence number seen, (seq, size)."""
    hops: int
    """Hops from the origin to the closest node that answered (its first contact is 1)."""
    queries: int
    timeouts: int
    started: float
    finished: float


@dataclass
class PeerSet:
    """Peers one node stores for one info-hash: a list for sampling, an index to replace."""

    members: list[int] = field(default_factory=list)
    where: dict[int, int] = field(default_factory=dict)

    def add(self, peer: int, limit: int, rng: random.Random) -> None:
        if peer in self.where:
            return
        if len(self.members) < limit:
            self.where[peer] = len(self.members)
            self.members.append(peer)
            return
        slot = rng.randrange(limit)
        del self.where[self.members[slot]]
        self.members[slot] = peer
        self.where[peer] = slot

    def remove(self, peer: int) -> None:
        """Forget a peer (its announce expired): the last member takes its slot."""
        slot = self.where.pop(peer, None)
        if slot is None:
            return
        last = self.members.pop()
        if slot < len(self.members):
            self.members[slot] = last
            self.where[last] = slot


UNASKED, ASKED, ANSWERED, FAILED = range(4)


class Lookup:
    """One iterative lookup in flight; its state changes only through the DHT's events."""

    def __init__(self, dht: Dht, origin: int, target: int, kind: Kind,
                 on_done: Callable[[LookupResult], None], grace: float | None = None,
                 timeout: float = 4.0) -> None:
        self.dht, self.origin, self.target, self.kind = dht, origin, target, kind
        self.on_done = on_done
        self.grace, self.timeout = grace, timeout
        self.delivered = False
        self.watcher: Callable[[], None] | None = None
        """Called at every answer that names peers (a group of lookups that ends together,
        as the node's ``find_peers_many``)."""
        self.started = dht.sim.now
        self.order: list[tuple[int, int]] = []
        self.state: dict[int, int] = {}
        self.hop: dict[int, int] = {}
        self.in_flight = self.queries = self.timeouts = 0
        self.peers: dict[int, None] = {}
        self.item: tuple[int, int] | None = None
        self.done = False
        self._due = False
        self._learn(dht.closest_in_table(origin, target), 1)
        self._step()

    def _learn(self, contacts: list[int], hop: int) -> None:
        hi, target = self.dht.hi, self.target
        for c in contacts:
            if c != self.origin and c not in self.state:
                self.state[c] = UNASKED
                self.hop[c] = hop
                bisect.insort(self.order, (hi[c] ^ target, c))

    def _step(self) -> None:
        if self.done:
            return
        k, alpha = self.dht.config.k, self.dht.config.alpha
        good = 0
        for _, node in self.order:
            st = self.state[node]
            if st == FAILED:
                continue
            good += 1
            if st == UNASKED and self.in_flight < alpha:
                self.state[node] = ASKED
                self.in_flight += 1
                self.queries += 1
                self.dht.send(self.origin, node, self.kind, self.target, self)
            if good >= k:
                break
        if self.in_flight == 0:
            self._finish()

    def answered(self, node: int, contacts: list[int], peers: list[int],
                 item: tuple[int, int] | None) -> None:
        if self.done or self.state.get(node) != ASKED:
            return
        self.state[node] = ANSWERED
        self.in_flight -= 1
        for p in peers:
            self.peers[p] = None
        if peers and self.watcher is not None:
            self.watcher()
        if peers and self.grace is not None and not self.delivered and not self._due:
            self._due = True
            self.dht.sim.after(self.grace, self._deliver)
        if item is not None and (self.item is None or item[0] > self.item[0]):
            self.item = item
        self._learn(contacts, self.hop[node] + 1)
        self._step()

    def timed_out(self, node: int) -> None:
        if self.done or self.state.get(node) != ASKED:
            return
        self.state[node] = FAILED
        self.in_flight -= 1
        self.timeouts += 1
        self._step()

    def _finish(self) -> None:
        self.done = True
        if self.grace is None:
            self._deliver()
        elif not self._due:
            # The node's find_peers: nothing named any peer, so it waits out its timeout.
            self._due = True
            self.dht.sim.at(self.started + self.timeout, self._deliver)

    def _deliver(self) -> None:
        """Hand the lookup's result over: at its end, or (``grace``, the node's
        ``Dht.find_peers``) ``grace`` seconds after the first answer that named peers, with
        what came in by then; the traversal itself runs on to its end either way."""
        if self.delivered:
            return
        self.delivered = True
        closest = [n for _, n in self.order if self.state[n] == ANSWERED][:self.dht.config.k]
        hops = self.hop[closest[0]] if closest else 0
        self.on_done(LookupResult(self.origin, self.target, self.kind, closest,
                                  list(self.peers), self.item, hops, self.queries,
                                  self.timeouts, self.started, self.dht.sim.now))


class Dht:
    """``n`` DHT nodes on one simulator: tables, storage, rate limits, request counters."""

    def __init__(self, sim: Simulator, n: int, config: DhtConfig | None = None,
                 geography: Geography | None = None, np_seed: int | None = None,
                 geo_config: GeographyConfig | None = None) -> None:
        self.sim = sim
        self.config = config or DhtConfig()
        self.n = n
        gen = np.random.default_rng(sim.rng.getrandbits(63) if np_seed is None else np_seed)
        self.geo = geography or Geography(n, gen, geo_config)
        self.ids = [sim.rng.getrandbits(ID_BITS) for _ in range(n)]
        self.hi = [i >> (ID_BITS - HI_BITS) for i in self.ids]
        self.hi_np = np.array(self.hi, dtype=np.uint64)
        self.offsets, self.contacts = build_tables(self.hi_np, self.config.k, gen)
        self.alive = [True] * n
        self.received = [0] * n
        self.dropped = [0] * n
        self.received_by_kind: dict[Kind, int] = dict.fromkeys(Kind, 0)
        self.queries_sent = 0
        """Queries all lookups sent (store requests not included)."""
        self._tokens = [self.config.upload_rate * self.config.burst] * n
        self._refilled = [0.0] * n
        self.peer_store: dict[int, dict[int, PeerSet]] = {}
        self.item_store: dict[int, dict[int, tuple[int, int]]] = {}

    # -- tables ----------------------------------------------------------------------------

    def table(self, node: int) -> np.ndarray:
        return self.contacts[self.offsets[node]:self.offsets[node + 1]]

    def closest_in_table(self, node: int, target: int) -> list[int]:
        """The ``k`` contacts of ``node``'s table closest to ``target`` (what it answers)."""
        table = self.table(node)
        k = self.config.k
        dist = self.hi_np[table] ^ np.uint64(target)
        if len(table) > k:
            pick = np.argpartition(dist, k)[:k]
            table, dist = table[pick], dist[pick]
        return table[np.argsort(dist)].tolist()  # type: ignore[no-any-return]

    def true_closest(self, target: int, count: int, alive_only: bool = True) -> list[int]:
        """The ``count`` nodes closest to ``target`` in the whole population."""
        dist = self.hi_np ^ np.uint64(target)
        order = np.argsort(dist)
        found = [int(i) for i in order[:count * 4] if self.alive[i] or not alive_only]
        return found[:count]

    # -- messages --------------------------------------------------------------------------

    def send(self, src: int, dst: int, kind: Kind, target: int, lookup: Lookup) -> None:
        self.queries_sent += 1
        if not self.alive[dst]:
            self.sim.after(self.config.query_timeout, lookup.timed_out, dst)
            return
        self.sim.after(self.geo.one_way(src, dst), self._arrive, src, dst, kind, target, lookup,
                       self.sim.now)

    def _arrive(self, src: int, dst: int, kind: Kind, target: int, lookup: Lookup,
                sent: float) -> None:
        self.received[dst] += 1
        self.received_by_kind[kind] += 1
        if not self.alive[dst]:
            self.sim.at(sent + self.config.query_timeout, lookup.timed_out, dst)
            return
        peers: list[int] = []
        item = None
        size = NODES_REPLY
        if kind is Kind.GET_PEERS:
            stored = self.peer_store.get(dst, {}).get(target)
            if stored is not None:
                members = stored.members
                limit = self.config.max_peers_reply
                peers = (members if len(members) <= limit
                         else self.sim.rng.sample(members, limit))
                size += PEER_BYTES * len(peers)
        elif kind is Kind.GET:
            item = self.item_store.get(dst, {}).get(target)
            if item is not None:
                size += item[1]
        if not self._allow(dst, size):
            self.dropped[dst] += 1
            self.sim.at(sent + self.config.query_timeout, lookup.timed_out, dst)
            return
        contacts = self.closest_in_table(dst, target)
        self.sim.after(self.geo.one_way(dst, src), lookup.answered, dst, contacts, peers, item)

    def _store_request(self, src: int, dst: int, kind: Kind, target: int,
                       value: tuple[int, int] | None) -> None:
        """announce_peer / put (BEP 5 / BEP 44): stores, answers with a bare reply."""
        self.received[dst] += 1
        self.received_by_kind[kind] += 1
        if not self.alive[dst] or not self._allow(dst, BARE_REPLY):
            self.dropped[dst] += self.alive[dst]
            return
        if kind is Kind.ANNOUNCE:
            table = self.peer_store.setdefault(dst, {})
            if target not in table and len(table) >= self.config.max_torrents:
                return
            table.setdefault(target, PeerSet()).add(src, self.config.max_peers, self.sim.rng)
        elif value is not None:
            items = self.item_store.setdefault(dst, {})
            old = items.get(target)
            if old is None and len(items) >= self.config.max_items:
                del items[next(iter(items))]  # the oldest goes
            if old is None or value[0] > old[0]:
                items[target] = value

    def _allow(self, node: int, size: int) -> bool:
        """The reply rate limit: a token bucket of ``upload_rate`` bytes a second."""
        cfg = self.config
        now = self.sim.now
        tokens = min(cfg.upload_rate * cfg.burst,
                     self._tokens[node] + (now - self._refilled[node]) * cfg.upload_rate)
        self._refilled[node] = now
        if tokens < size:
            self._tokens[node] = tokens
            return False
        self._tokens[node] = tokens - size
        return True

    # -- operations ------------------------------------------------------------------------

    def lookup(self, origin: int, target: int, kind: Kind,
               on_done: Callable[[LookupResult], None], grace: float | None = None,
               timeout: float = 4.0) -> Lookup:
        """An iterative lookup; ``grace``: deliver as the node's ``find_peers`` does (see
        ``Lookup._deliver``), else at the traversal's end."""
        return Lookup(self, origin, target, kind, on_done, grace, timeout)

    def announce(self, origin: int, key: int,
                 on_done: Callable[[LookupResult], None] | None = None) -> None:
        """get_peers towards ``key``, then announce_peer to the ``k`` closest that answered."""
        def then(result: LookupResult) -> None:
            for node in result.closest:
                self.sim.after(self.geo.one_way(origin, node), self._store_request, origin,
                               node, Kind.ANNOUNCE, key, None)
            if on_done is not None:
                on_done(result)
        self.lookup(origin, key, Kind.GET_PEERS, then)

    def put(self, origin: int, key: int, seq: int, size: int,
            on_done: Callable[[LookupResult], None] | None = None) -> None:
        """BEP 44: get towards ``key`` (for the tokens), then put to the ``k`` closest."""
        def then(result: LookupResult) -> None:
            for node in result.closest:
                self.sim.after(self.geo.one_way(origin, node), self._store_request, origin,
                               node, Kind.PUT, key, (seq, size))
            if on_done is not None:
                on_done(result)
        self.lookup(origin, key, Kind.GET, then)

    # -- churn -----------------------------------------------------------------------------

    def go_offline(self, node: int) -> None:
        """A node leaves: it stops answering and forgets what it stored."""
        self.alive[node] = False
        self.peer_store.pop(node, None)
        self.item_store.pop(node, None)

    def take_offline(self, fraction: float, protect: set[int] | frozenset[int] = frozenset(),
                     ) -> list[int]:
        """Take a random ``fraction`` of the nodes off line (their contacts stay in tables)."""
        pool = [i for i in range(self.n) if self.alive[i] and i not in protect]
        gone = self.sim.rng.sample(pool, int(fraction * self.n))
        for node in gone:
            self.go_offline(node)
        return gone

    def churn(self, per_hour: float, protect: set[int] | frozenset[int] = frozenset()) -> None:
        """From now on, ``per_hour`` of the online nodes leave per hour, each replaced by an
        off-line node coming back, so the online population stays the same size."""
        rate = per_hour * sum(self.alive) / 3600.0
        if rate <= 0:
            return

        def event() -> None:
            online = [i for i in self.sim.rng.sample(range(self.n), min(self.n, 64))
                      if self.alive[i] and i not in protect]
            offline = [i for i in self.sim.rng.sample(range(self.n), min(self.n, 256))
                       if not self.alive[i]]
            if online and offline:
                self.go_offline(online[0])
                self.alive[offline[0]] = True
            self.sim.after(self.sim.rng.expovariate(rate), event)

        self.sim.after(self.sim.rng.expovariate(rate), event)


def build_tables(hi: np.ndarray, k: int, gen: np.random.Generator,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Every node's BEP 5 routing table, as CSR arrays (``offsets``, ``contacts``).

    Bucket ``d`` of node x covers the ids whose first ``d`` bits equal x's and whose bit
    ``d`` differs: one contiguous range of the sorted ids. It gets all of them when there
    are at most ``k``, else ``k`` spread over the range (one at random in each of ``k``
    equal slices). Buckets go deeper until x is alone in its own subtree."""
    n = len(hi)
    order = np.argsort(hi)
    sorted_hi = hi[order]
    one = np.uint64(1)
    columns: list[np.ndarray] = []
    active = np.arange(n)
    for depth in range(HI_BITS):
        if len(active) == 0:
            break
        shift = np.uint64(HI_BITS - 1 - depth)
        x = hi[active]
        lo = ((x >> shift) ^ one) << shift
        width = one << shift
        start = np.searchsorted(sorted_hi, lo, side="left")
        end = np.searchsorted(sorted_hi, lo | (width - one), side="right")
        count = end - start
        slots = np.arange(k)[None, :]
        # Slice j of the range is [floor(j*c/k), floor((j+1)*c/k)): disjoint, never empty.
        first = slots * count[:, None] // k
        slice_width = (slots + 1) * count[:, None] // k - first
        offset = (gen.random((len(active), k)) * slice_width).astype(np.int64)
        spread = start[:, None] + first + offset
        take = np.where(count[:, None] <= k, start[:, None] + slots, spread)
        column = np.full((n, k), -1, dtype=np.int32)
        valid = slots < count[:, None]
        column[active] = np.where(valid, order[np.minimum(take, n - 1)], -1)
        columns.append(column)
        # Which nodes still share their subtree at this depth with someone else?
        own_lo = (x >> shift) << shift
        own_start = np.searchsorted(sorted_hi, own_lo, side="left")
        own_end = np.searchsorted(sorted_hi, own_lo | (width - one), side="right")
        active = active[(own_end - own_start) > 1]
    table = np.stack(columns, axis=1).reshape(n, -1)
    mask = table >= 0
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(mask.sum(axis=1), out=offsets[1:])
    return offsets, table[mask].astype(np.int32)


def bucket_of(a: int, b: int) -> int:
    """The bucket of ``a``'s table that ``b`` belongs in: their shared leading bits (64-bit
    prefixes)."""
    return HI_BITS - (a ^ b).bit_length()

