"""The libtorrent session's settings: what a node asks of libtorrent, and why.

See ../shared/LIBTORRENT.md for the measurements behind a private DHT on loopback.
"""

from __future__ import annotations

from typing import Any

import libtorrent as lt

from ..config import PUBLIC_DHT_ROUTERS, Network, NodeConfig

# The alert categories the swarm's handlers need (see alerts.py and engine.Swarm's table).
ALERT_MASK = (
    lt.alert.category_t.error_notification
    | lt.alert.category_t.status_notification
    | lt.alert.category_t.storage_notification
    | lt.alert.category_t.dht_notification
    | lt.alert.category_t.dht_operation_notification  # get_peers replies
    | lt.alert.category_t.file_progress_notification
    | lt.alert.category_t.piece_progress_notification  # piece_finished: see held.HeldPieces
    | lt.alert.category_t.peer_notification  # incoming connections: see node.reach
)

# Bytes a peer connection may queue to send, in libtorrent and in the kernel each: 64 KiB is
# 0.5 s at 128 KB/s, a peer's share of a home uplink, and fills a 50 ms path at 1.3 MB/s.
SEND_BUFFER_BYTES = 64 << 10


def outgoing_host(config: NodeConfig) -> str | None:
    """The address a node's outgoing connections leave from: its listen address on a
    private network (many nodes share one machine, each on its own 127.0.0.x), else None
    (the kernel picks, by route)."""
    host = config.listen[0]
    if config.network is Network.PUBLIC or host in ("", "0.0.0.0", "::"):
        return None
    return host


def session_settings(config: NodeConfig) -> dict[str, Any]:
    """libtorrent settings for a node (see ../shared/LIBTORRENT.md for why each is needed)."""
    host, port = config.listen
    public = config.network is Network.PUBLIC
    settings: dict[str, Any] = {
        "listen_interfaces": f"{_bracket(host)}:{port}",
        "enable_dht": True,
        "dht_bootstrap_nodes": PUBLIC_DHT_ROUTERS if public else "",
        "enable_lsd": public,
        "enable_upnp": public,
        "enable_natpmp": public,
        "alert_mask": ALERT_MASK,
        "alert_queue_size": 10000,
        "user_agent": "peerweb/0.1 libtorrent/" + lt.__version__,
        # Pages are many small files: connect fast and tick often enough that deadlines bite.
        # Under a rate limit every message also waits for the next tick's bandwidth quota:
        # a magnet's metadata took ~5 ticks (0.5 s at 100 ms) whatever the limit.
        "tick_interval": 50,
        "connection_speed": 200,
        "smooth_connects": False,
        # A seed favours peers that have just started or are nearly done, so the first copies
        # of every piece spread out (measured in bench/flash_crowd.py: slightly lower
        # publisher upload and completion than round robin).
        "seed_choking_algorithm": lt.seed_choking_algorithm_t.anti_leech,
        # Ask each peer for 1 s of its rate ahead, not 3: on an uplink with a deep queue the
        # requested data sits in front of every HAVE and request sent after it. Flash crowd
        # on shaped uplinks (bench/README.md): median 1.31x the bound over 14 runs, 1.35x
        # over 15 with 3 s; publisher 2.2 copies against 2.3.
        "request_queue_time": 1,
        # Keep what a node has queued to send short: on an uplink with a deep queue, the
        # requests and HAVEs it sends (and its TCP ACKs) wait behind every byte queued before
        # them, in libtorrent's send buffer (500 KB per peer by default) and the kernel's
        # (several MB). A page's requests then took seconds to leave a visitor that was
        # uploading the video to others. See bench/README.md (flash crowd, page first).
        "send_buffer_watermark": SEND_BUFFER_BYTES,
        "send_socket_buffer_size": SEND_BUFFER_BYTES,
        "upload_rate_limit": config.upload_limit,
        "download_rate_limit": config.download_limit,
        "ignore_limits_on_local_network": not config.limit_local_peers,
        "dht_announce_interval": 60 if not public else 15 * 60,
        # uTP's delay-based congestion control backs off on loopback and shared hosts, where
        # queueing delay says nothing about the path; TCP connects and ramps up at once.
        # A node given relays expects NATs: uTP (UDP) is what BEP 55 hole punching opens.
        "enable_outgoing_utp": public or bool(config.relays),
    }
    if not public:
        # A private DHT on one machine: peers share IPs and live in 127/8.
        settings.update(
            {
                "outgoing_interfaces": outgoing_host(config) or "",
                "dht_restrict_routing_ips": False,
                "dht_restrict_search_ips": False,
                # Test networks use "dark" ranges (benchmarking 198.18.0.0/15, documentation
                # prefixes) that the public profile rightly ignores.
                "dht_ignore_dark_internet": False,
                "allow_multiple_connections_per_ip": True,
                "dht_block_ratelimit": 1000,
                # The default 8 kB/s budget drops DHT replies when many nodes share a host.
                "dht_upload_rate_limit": 1_000_000,
                # A refused connection (e.g. to a peer still closing our previous one for the
                # same torrent) is retried after this many seconds, not the default 60.
                "min_reconnect_time": 2,
            }
        )
    return settings


def choke_local_peers(session: Any) -> None:
    """Let the unchoke slots apply to peers on the local network as well.

    libtorrent puts LAN and loopback peers in a "local" class that is never choked. In a
    crowd on one network, every visitor then takes every piece it wants from the publisher
    at once, the publisher sends the same pieces to all of them, and choking no longer sorts
    who relays to whom. Measured on kernel-shaped loopback uplinks (bench/flash_crowd.py,
    20 visitors): slowest 1.18-1.24x the bound and 1.91-2.11 publisher copies over 12 runs,
    against 1.28-1.38x and 2.06-2.30 copies over 7 with local peers always unchoked. Local
    peers stay exempt from the rate limits (unless ``limit_local_peers``)."""
    local = session.get_peer_class(lt.session.local_peer_class_id)
    local["ignore_unchoke_slots"] = False
    session.set_peer_class(lt.session.local_peer_class_id, local)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def open_session(config: NodeConfig) -> Any:
    """A libtorrent session for a node, with these settings and local peers choked."""
    session: Any = lt.session(session_settings(config))  # type: ignore[call-overload]
    choke_local_peers(session)
    return session
