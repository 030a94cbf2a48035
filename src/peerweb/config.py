"""Node configuration: one typed, validated object passed into constructors."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

# Re-exported: where they were before ``peerweb.datadir`` held them for the CLI.
from .datadir import NODE_FILE as NODE_FILE
from .datadir import TOKEN_FILE as TOKEN_FILE
from .datadir import default_data_dir as default_data_dir
from .errors import UsageError
from .webcache.settings import WebCacheSettings

DEFAULT_GATEWAY = ("127.0.0.1", 8080)
# The share of free disk a node may fill with visited sites when no quota is given.
DEFAULT_QUOTA_SHARE = 0.10


class Network(Enum):
    """Which BitTorrent network a node joins.

    LOCAL: only the DHT nodes given with --bootstrap; no public routers, no UPnP/NAT-PMP, no
    local-discovery multicast. The default, and the only profile tests use.
    PUBLIC: the Mainline DHT through its well-known routers, plus LSD, UPnP and NAT-PMP.
    """

    LOCAL = "local"
    PUBLIC = "public"


PUBLIC_DHT_ROUTERS = (
    "router.bittorrent.com:6881,dht.transmissionbt.com:6881,router.utorrent.com:6881,"
    "dht.libtorrent.org:25401"
)


def parse_hostport(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = default_host, text
    host = host.strip("[]") or default_host
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"bad address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host, int(port)


def parse_size(text: str) -> int:
    """'20GB', '512MiB', '4MB/s', '0' -> bytes (decimal units for kB/MB/GB, binary for KiB..)."""
    units = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6,
             "mib": 2**20, "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12}
    raw = text.strip().lower().removesuffix("/s").strip()
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz").strip()
    unit = raw[len(number):].strip()
    try:
        value = float(number)
    except ValueError:
        value = -1
    if value < 0 or unit not in units:
        raise UsageError(f"bad size {text!r}: use e.g. 500MB, 2GiB, 4MB/s")
    return int(value * units[unit])


@dataclass(frozen=True)
class Timings:
    """Every wait a node's background jobs and lookups make, in seconds.

    The defaults suit the open internet; tests shorten them instead of sleeping past them.
    """

    pointer_fresh: float = 30.0
    """A pointer younger than this is served without asking the DHT again; older ones are
    served at once and refreshed in the background (stale-while-revalidate)."""
    reput_interval: float = 30 * 60.0
    """BEP 44 items expire after about two hours without a re-put; re-put well before that."""
    reput_retry: float = 5.0
    """After a put no DHT node confirmed (no peers yet, or a lost reply), try again this soon."""
    resume_save_interval: float = 60.0
    """Resume data of an idle torrent is saved at least this often."""
    resume_active_interval: float = 3.0
    """Resume data of a torrent that is downloading is saved this often: a node killed with
    kill -9 fetches again at most this many seconds of download."""
    state_write_interval: float = 1.0
    """``state.json`` is written at most once per this interval however often it changes
    (always on stop): a flood of pushes costs one write, not one fsync each."""
    resume_coalesce: float = 0.5
    """Resume data asked for by completed files is written at most this often per torrent."""
    dht_get_timeout: float = 5.0
    dht_put_timeout: float = 10.0
    dht_get_attempts: int = 3
    """A lookup for a site never seen asks the DHT at least this many times..."""
    dht_get_max_attempts: int = 20
    """... and at most this many."""
    dht_find_patience: float = 10.0
    """How long a lookup for a site this node has never seen keeps trying."""
    update_cap_check: float = 3.0
    """How often a connection-capped update fetch is checked for progress."""
    holder_announce_interval: float = 5 * 60.0
    """Holders re-announce themselves this often (the DHT forgets announces after ~30 min)."""
    holders_ttl: float = 20.0
    """A holder list found in the DHT is reused for this long."""
    holders_lookup_timeout: float = 4.0
    holders_probe_timeout: float = 1.5
    """How long the first look at two holders shards (``propagation.holder_refresh``) may
    take before looking at all of them: shards nobody announced under (a site of few
    holders) name nobody and would otherwise cost the whole ``holders_lookup_timeout``."""
    volunteer_probe_timeout: float = 1.5
    """How long an origin's first look at two volunteer shards may take before it looks at
    all of them: a lookup of an empty shard (a small network) finds nobody and would
    otherwise wait the whole ``holders_lookup_timeout``."""
    backup_check_soon: float = 60.0
    """A backup short of proved copies (or with some on their way) is checked this often..."""
    backup_check_later: float = 600.0
    """... and one with every copy proved, this often (see ``policy.backups``)."""
    watch_tick: float = 5.0
    """How often the watch loop looks for sites due a DHT check."""
    stepback_tick: float = 0.5
    """How often a publisher checks whether a crowd on its site can do without it."""
    reannounce_first: float = 0.5
    """While a visitor waits on a torrent without peers, re-announce after this long..."""
    reannounce_max: float = 4.0
    """... doubling up to this."""
    recheck_min_interval: float = 10.0
    """A torrent with a received but never verified piece is re-checked at most this often."""
    reconnect_min_interval: float = 10.0
    """A torrent's peers are reconnected (see swarm's reader) at most this often."""
    peers_grace: float = 0.3
    """After the first get_peers reply that names anyone, how long to gather the others."""
    item_grace: float = 0.3
    """After the first verified DHT item, how long a lookup waits for a newer one."""
    publish_holders_grace: float = 0.05
    """A publish asks the site's holders for the highest version while it hashes: it
    gathers their get_peers answers only this long after the first that names any (a holder
    with the newest version tells; a small site hashes in ~50 ms). The publisher pushes the
    new version to a few of them first; they forward it with lists gathered for the full
    ``peers_grace`` (a 50 ms grace at every hop left one of 20 holders unpushed in one
    round of six, waiting a minute for its DHT poll)."""


@dataclass(frozen=True)
class ServerLimits:
    """How long a listening socket waits on a client, and how many connections it keeps.

    Every server peerweb runs (gateway, control API, peer port, origin, redirector, tracker)
    applies one of these (see http/limits.py), so that a client holding connections open
    half-sent (slowloris) costs a bounded number of file descriptors and nobody else waits.
    """

    header_timeout: float = 10.0
    """A request's head must be complete this long after its first byte arrived (a fresh
    connection must start one within ``idle_timeout``). Dribbling bytes does not extend it."""
    body_timeout: float = 30.0
    """While a request body is being received, the longest gap between two of its bytes."""
    idle_timeout: float = 30.0
    """A keep-alive connection with nothing in flight is closed after this long (browsers
    reopen one in a round trip; aiohttp's own default is an hour)."""
    max_per_address: int = 64
    """Connections one source address may hold at once (an IPv6 source counts by its /64,
    which one host typically owns whole); more are answered 503 and closed."""
    max_connections: int | None = None
    """Connections the server holds at once, from everyone; None: a quarter of this
    process's open-file limit, so that one flooded server cannot starve the others."""

    def __post_init__(self) -> None:
        if min(self.header_timeout, self.body_timeout, self.idle_timeout) <= 0:
            raise UsageError("server timeouts must be positive")
        if self.max_per_address < 1 or (self.max_connections is not None
                                        and self.max_connections < 1):
            raise UsageError("connection limits must be at least 1")


@dataclass(frozen=True)
class DnsSettings:
    """The node's DNS resolver (``peerweb dns``, and the TXT lookups of bridged names)."""

    upstreams: tuple[tuple[str, int], ...] = ()
    """Resolvers to forward to, in order; empty: the nameservers of /etc/resolv.conf."""
    trust_anchors: Path | None = None
    """A file of DS or DNSKEY lines trusted without proof; None: the root zone's anchors."""
    share: bool = True
    """Announce validated answers in the DHT and hand their proofs to nodes that ask (the
    DHT then learns which names this node resolved: see docs/names.md)."""
    unsigned_quorum: int = 0
    """Serve an unsigned answer from peers when upstreams fail only if this many distinct
    peers hand the same records (0: never; otherwise at least 2)."""
    upstream_timeout: float = 2.0
    """Seconds to wait for each upstream before trying the next."""
    peer_timeout: float = 2.0
    """Seconds to wait for peers' copies when every upstream failed."""
    rate: float = 200.0
    """Queries per second one source address may send (token bucket)..."""
    burst: float = 400.0
    """... with bursts of this many."""

    def __post_init__(self) -> None:
        if self.unsigned_quorum == 1 or self.unsigned_quorum < 0:
            raise UsageError("an unsigned quorum is 0 (off) or at least 2 peers")
        if min(self.upstream_timeout, self.peer_timeout, self.rate, self.burst) <= 0:
            raise UsageError("DNS timeouts and rates must be positive")


# A browser opens up to 6 connections per origin and every site is an origin of its own, so
# the gateway (usually reached by one local browser) allows many per address; nodes on the
# peer port need one or two each.
GATEWAY_PER_ADDRESS = 128
PEER_PORT_PER_ADDRESS = 16


@dataclass(frozen=True)
class RelayConfig:
    """A node's relay port (``NodeConfig.relay``): it forwards bounded connections for peers
    that cannot connect themselves (see docs/relays.md and ``policy.relaying``)."""

    port: int = 0
    """TCP port on the swarm address; 0 picks a free one."""
    allow: tuple[str, ...] = ()
    """Non-global ranges forwarded to anyway (a test bed's 198.18.0.0/15). Loopback,
    private and link-local ranges are refused at start, whatever this says."""
    ports: tuple[tuple[int, int], ...] = ((80, 80), (443, 443), (1024, 65535))
    """Destination ports forwarded to (inclusive ranges)."""
    circuits: int = 32
    """Circuits open at once, from everyone."""
    per_peer: int = 4
    """Circuits one peer address may hold at once."""
    max_bytes: int = 64 * 1024 * 1024
    """Bytes one circuit may carry."""
    max_age: float = 120.0
    """Seconds one circuit may stay open."""


@dataclass(frozen=True)
class NodeConfig:
    """Everything a node needs to start. Defaults make a safe, local-only node."""

    data_dir: Path = field(default_factory=default_data_dir)
    """Keys, state, torrents and cached sites live here."""
    listen: tuple[str, int] = ("127.0.0.1", 0)
    """Swarm (BitTorrent + DHT) address. Port 0 picks a free one."""
    peer_port: int = 0
    """TCP port (on the swarm address) where other nodes push signed pointers; 0: any free
    one (it is announced in the DHT, so it need not be known in advance)."""
    gateway: tuple[str, int] = DEFAULT_GATEWAY
    """HTTP gateway for browsers. Bound to localhost unless told otherwise."""
    api: tuple[str, int] = ("127.0.0.1", 0)
    """Control API for the CLI; always needs the token from <data-dir>/api-token."""
    bootstrap: tuple[tuple[str, int], ...] = ()
    """DHT nodes to join (host, port)."""
    network: Network = Network.LOCAL
    upload_limit: int = 0
    """Bytes per second, 0 for unlimited."""
    download_limit: int = 0
    disk_quota: int | None = None
    """Bytes of visited sites to keep; None means a share of the free disk space."""
    volunteer: bool = False
    """Mirror signed sites that ask for help (within the disk quota and upload limit), and
    serve them to anyone: the gateway adds CORS headers and should listen publicly."""
    mirror_lease: float = 30 * 60.0
    """A volunteer keeps a site pinned this long after the last request for help with it."""
    metered: bool = False
    """Seed only pinned and published sites: a visited site's torrent is paused once it has
    been idle for ``metered_idle`` seconds, and new versions are not fetched in the background."""
    metered_idle: float = 30.0
    fetch_timeout: float = 20.0
    """Seconds the gateway waits for a pointer, metadata or a piece before answering 504."""
    limit_local_peers: bool = False
    """Apply rate limits between local addresses too (libtorrent exempts them by default);
    benchmarks that emulate separate hosts on loopback with libtorrent's own limits turn this
    on. Local peers are choked like any others either way (see swarm.settings.choke_local_peers)."""
    timings: Timings = field(default_factory=Timings)
    """Intervals and timeouts of the background jobs and lookups."""
    relay: RelayConfig | None = None
    """Serve as a relay for peers that cannot connect (None: not a relay)."""
    relays: tuple[tuple[str, int], ...] = ()
    """Relay ports of other nodes this one may detour through, and hold a reservation at
    when it finds itself unreachable (behind a NAT)."""
    gateway_limits: ServerLimits = field(
        default_factory=lambda: ServerLimits(max_per_address=GATEWAY_PER_ADDRESS))
    """Timeouts and connection limits of the gateway and the control API."""
    peer_limits: ServerLimits = field(
        default_factory=lambda: ServerLimits(max_per_address=PEER_PORT_PER_ADDRESS))
    """Timeouts and connection limits of the peer port (it faces the network)."""
    web_cache: WebCacheSettings | None = None
    """The shared cache of public pages (``--web-cache SIZE``); None: off."""
    dns: DnsSettings = field(default_factory=DnsSettings)
    """The DNS resolver's upstreams, anchors and limits."""

    def __post_init__(self) -> None:
        if self.upload_limit < 0 or self.download_limit < 0:
            raise UsageError("rate limits cannot be negative")
        if self.fetch_timeout <= 0:
            raise UsageError("fetch timeout must be positive")

    def effective_quota(self) -> int:
        if self.disk_quota is not None:
            return self.disk_quota
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return int(shutil.disk_usage(self.data_dir).free * DEFAULT_QUOTA_SHARE)
