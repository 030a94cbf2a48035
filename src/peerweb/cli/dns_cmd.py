"""``peerweb dns``: a node with a DNS resolver that keeps answering when DNS servers fail."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from .. import aio
from ..config import DnsSettings, Network, NodeConfig, parse_hostport
from .options import (
    SWARM_DEFAULT,
    bootstrap_nodes,
    data_dir_option,
    join_options,
    json_option,
    setup_logging,
    verbose_option,
    with_examples,
)
from .output import Output
from .serving import stop_on_signal


@click.command()
@click.option("--listen", default="127.0.0.1:5353", show_default=True, metavar="HOST:PORT",
              help="DNS address (UDP and TCP); port 0 picks a free one.")
@click.option("--upstream", "upstreams", multiple=True, metavar="HOST[:PORT]",
              help="A resolver to forward to (repeatable, tried in order); default: the "
                   "nameservers of /etc/resolv.conf.")
@click.option("--trust-anchor", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, metavar="FILE",
              help="DNSSEC trust anchors: lines 'NAME IN DS ...' or 'NAME IN DNSKEY ...'. "
                   "Default: the root zone's.")
@click.option("--unsigned-quorum", default=0, show_default=True, type=click.IntRange(0, 16),
              help="When upstreams fail, serve unsigned answers from peers if this many "
                   "independent ones agree (0: only from this node's own cache; else >= 2).")
@click.option("--no-share", is_flag=True,
              help="Do not announce validated answers in the DHT nor hand them to other nodes "
                   "(announcing tells the DHT which names you resolve).")
@click.option("--rate", default=200.0, show_default=True, type=click.FloatRange(min=1),
              help="Queries a second one client address may send (bursts of twice that).")
@data_dir_option
@click.option("--swarm", default=SWARM_DEFAULT, show_default=True, metavar="HOST:PORT",
              help="Swarm (BitTorrent + DHT) address; the peer port is on its host.")
@click.option("--gateway", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT",
              help="HTTP gateway address; NAME.peer answers with its address.")
@click.option("--api", default="127.0.0.1:0", show_default=True, metavar="HOST:PORT",
              help="Control API address.")
@join_options
@verbose_option
@json_option
@with_examples("peerweb dns --listen 127.0.0.1:5353 --upstream 9.9.9.9",
               "dig @127.0.0.1 -p 5353 example.com   # then: dig ... blog.peer",
               "peerweb dns --trust-anchor ./anchors.txt --upstream 127.0.0.1:5300")
def dns(listen: str, upstreams: tuple[str, ...], trust_anchor: Path | None,
        unsigned_quorum: int, no_share: bool, rate: float, data_dir: Path, swarm: str,
        gateway: str, api: str, bootstrap: str, network: str,
        verbose: int, out: Output) -> None:
    """Run a node with a DNS resolver: it forwards to upstreams, validates DNSSEC, caches,
    shares validated answers with other nodes, and serves them stale (RFC 8767) when the
    upstreams fail. NAME.peer resolves to the gateway for peerweb names (petnames, NAME.ZONE,
    bridged domains).
    """
    setup_logging(max(verbose, 1), None)  # serving stale is logged at INFO: show it
    settings = DnsSettings(
        upstreams=tuple(_upstream(u) for u in upstreams), trust_anchors=trust_anchor,
        share=not no_share, unsigned_quorum=unsigned_quorum, rate=rate, burst=2 * rate)
    config = NodeConfig(
        data_dir=data_dir, listen=parse_hostport(swarm),
        gateway=parse_hostport(gateway), api=parse_hostport(api),
        bootstrap=bootstrap_nodes(bootstrap), network=Network(network), dns=settings)
    aio.run(_run(config, parse_hostport(listen), out))


def _upstream(text: str) -> tuple[str, int]:
    return parse_hostport(text) if text.count(":") == 1 or text.startswith("[") \
        else (text, 53)


async def _run(config: NodeConfig, listen: tuple[str, int], out: Output) -> None:
    from ..dns.server import DnsFrontend
    from ..dns.server import listen as dns_listen
    from ..errors import UsageError
    from ..http.daemon import RunningNode

    stop = stop_on_signal()
    async with RunningNode(config) as running:
        node = running.node

        frontend = DnsFrontend(node.dns, node.names.knows, running.gateway_address[0])
        try:
            listener = await dns_listen(frontend, *listen)
        except OSError as exc:
            raise UsageError(f"cannot listen for DNS on {listen[0]}:{listen[1]}: "
                             f"{exc.strerror}; pick another with --listen") from exc
        host, port = listener.address
        record: dict[str, Any] = {"dns": f"{host}:{port}", "gateway": f"{running.gateway_url}/",
                                  "upstreams": [f"{h}:{p}" for h, p in node.dns.upstreams],
                                  "pid": os.getpid()}
        out.text(f"peerweb dns on {host}:{port} (UDP and TCP), forwarding to "
                 f"{', '.join(record['upstreams']) or 'nothing (give --upstream)'}")
        out.text(f"  gateway: {running.gateway_url}/ (NAME.peer answers with its address)")
        if out.json:
            out.record(record)
        out.text("Press Ctrl-C to stop.")
        try:
            await stop.wait()
        finally:
            await listener.close()


COMMANDS = [dns]
