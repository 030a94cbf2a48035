"""Commands that run a node or ask it how it is: node, volunteer, testnet, status, stop."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

import click

from .. import aio
from ..config import Network, NodeConfig, RelayConfig, parse_hostport, parse_size
from ..errors import PeerwebError, UsageError
from ..http.control_client import NodeClient
from ..webcache.settings import DEFAULT_AGREE, WebCacheSettings
from .config_file import config_option
from .options import (
    SWARM_DEFAULT,
    bootstrap_nodes,
    data_dir_option,
    join_options,
    json_option,
    settings,
    setup_logging,
    swarm_address,
    swarm_option,
    verbose_option,
    with_examples,
)
from .output import Output, human, plural
from .serving import stop_on_signal

# How long `peerweb stop` waits for the node's process to end, and how often it looks.
STOP_TIMEOUT = 30.0
STOP_POLL = 0.1


def web_cache_options(func: Any) -> Any:
    """``--web-cache SIZE`` and ``--web-cache-agree K`` (see docs/webcache.md)."""
    # Hidden: for test beds and benchmarks whose "public" origins live on loopback.
    func = click.option("--web-cache-private-origins", is_flag=True, hidden=True,
                        help="Also cache pages of hosts on loopback or private addresses "
                             "(test beds only).")(func)
    func = click.option("--web-cache-agree", default=DEFAULT_AGREE, show_default=True,
                        type=click.IntRange(1, 16), metavar="K",
                        help="Show a copy from peers only when K independent holders "
                             "agree on it.")(func)
    return click.option("--web-cache", "web_cache", default=None, metavar="SIZE",
                        help="Keep copies of the public pages you visit (reported by the "
                             "browser extension) within SIZE, e.g. 200MB, and serve them to "
                             "peers when their site fails. Off by default.")(func)


def web_cache_settings(size: str | None, agree: int,
                       private_origins: bool = False) -> WebCacheSettings | None:
    if not size or parse_size(size) == 0:
        return None
    return WebCacheSettings(size=parse_size(size), agree=agree,
                            allow_private_origins=private_origins)


# With --network public and no --swarm, a node listens where BitTorrent clients expect it.
PUBLIC_SWARM = "0.0.0.0:6881"


@click.command()
@data_dir_option
@config_option
@swarm_option
@click.option("--gateway", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT",
              help="HTTP gateway address for browsers.")
@click.option("--api", default="127.0.0.1:0", show_default=True, metavar="HOST:PORT",
              help="Control API address (needs the token in the data dir).")
@join_options
@click.option("--upload-limit", default="0", metavar="RATE", help="e.g. 2MB/s; 0 = unlimited.")
@click.option("--download-limit", default="0", metavar="RATE", help="e.g. 10MB/s; 0 = unlimited.")
@click.option("--limit-local-peers", is_flag=True,
              help="Apply the rate limits to peers on the local network too (they are exempt "
                   "by default).")
@click.option("--disk-quota", default=None, metavar="SIZE",
              help="Disk for visited sites, e.g. 5GB (default: 10% of free space).")
@click.option("--peer-port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port on the swarm address where nodes holding the same sites push "
                   "new versions to each other; 0 picks a free one (announced in the DHT).")
@click.option("--metered", is_flag=True,
              help="Seed only pinned and published sites; visited ones upload nothing once "
                   "the visit is over, and new versions are fetched only when visited.")
@click.option("--example", is_flag=True, help="Publish the bundled example site at start.")
@web_cache_options
@click.option("--via-relay", "via_relays", multiple=True, metavar="HOST:PORT",
              help="Another node's relay port, to detour through when a direct path fails "
                   "and to stay reachable through when behind a NAT (repeatable).")
@click.option("--relay-port", default=None, type=click.IntRange(0, 65535), metavar="PORT",
              help="Be a relay: forward bounded connections for peers that cannot connect, "
                   "to public addresses only, on this port of the swarm address (0: any).")
@click.option("--relay-allow", multiple=True, metavar="CIDR",
              help="A non-public range the relay may forward to anyway, e.g. a test bed's "
                   "198.18.0.0/15; loopback and private ranges are always refused.")
@verbose_option
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="PATH",
              help="Append logs to PATH instead of stderr (not rotated; reopened when moved, "
                   "so logrotate works).")
@json_option
@with_examples("peerweb node",
               "peerweb node --gateway 127.0.0.1:8181 --swarm 0.0.0.0:6881",
               "peerweb node --bootstrap 192.168.1.20:6881 --disk-quota 5GB",
               "peerweb node --example --json   # one line of addresses, for scripts",
               "peerweb node --config ~/peerweb.toml --log-file ~/peerweb.log")
def node(data_dir: Path, swarm: str | None, old_listen: str | None, gateway: str, api: str,
         bootstrap: str, network: str, upload_limit: str, download_limit: str,
         limit_local_peers: bool, disk_quota: str | None, peer_port: int, metered: bool,
         example: bool, web_cache: str | None, web_cache_agree: int,
         web_cache_private_origins: bool,
         via_relays: tuple[str, ...], relay_port: int | None, relay_allow: tuple[str, ...],
         verbose: int, log_file: Path | None, out: Output) -> None:
    """Run a node: swarm engine, gateway and control API, until Ctrl-C or `peerweb stop`.

    Options not typed are read from the config file (TOML, keys named like the flags:
    upload-limit = "2MB/s"), <data-dir>/config.toml unless --config names another.
    """
    setup_logging(verbose, log_file)
    net = Network(network)
    listen = swarm_address(swarm, old_listen,
                           PUBLIC_SWARM if net is Network.PUBLIC else SWARM_DEFAULT)
    config = NodeConfig(
        data_dir=data_dir,
        listen=parse_hostport(listen),
        gateway=parse_hostport(gateway),
        api=parse_hostport(api),
        bootstrap=bootstrap_nodes(bootstrap),
        network=net,
        upload_limit=parse_size(upload_limit),
        download_limit=parse_size(download_limit),
        limit_local_peers=limit_local_peers,
        disk_quota=parse_size(disk_quota) if disk_quota else None,
        peer_port=peer_port,
        metered=metered,
        web_cache=web_cache_settings(web_cache, web_cache_agree,
                                     web_cache_private_origins),
        relays=tuple(parse_hostport(r) for r in via_relays),
        relay=RelayConfig(port=relay_port, allow=relay_allow) if relay_port is not None
        else None,
    )
    if relay_allow and relay_port is None:
        raise UsageError("--relay-allow needs --relay-port (it widens a relay's destinations)")
    if config.relay is not None:
        from ..policy.relaying import Destinations
        Destinations.parse(relay_allow)  # a refused range is a usage error now, not at start
    aio.run(_run_node(config, example, out))


@click.command()
@data_dir_option
@click.option("--public-gateway", required=True, metavar="HOST:PORT",
              help="Where the mirrored sites are served to anyone (with CORS headers).")
@click.option("--capacity", required=True, metavar="RATE",
              help="Upload this volunteer gives, e.g. 50MB/s (reported to origins as load).")
@click.option("--disk", required=True, metavar="SIZE", help="Disk for mirrored sites, e.g. 20GB.")
@swarm_option
@join_options
@web_cache_options
@verbose_option
@json_option
@with_examples("peerweb volunteer --public-gateway 0.0.0.0:8081 --capacity 50MB/s --disk 20GB",
               "peerweb volunteer --public-gateway 0.0.0.0:8081 --capacity 50MB/s --disk 20GB "
               "--web-cache 5GB")
def volunteer(data_dir: Path, public_gateway: str, capacity: str, disk: str, swarm: str | None,
              old_listen: str | None, bootstrap: str, network: str, web_cache: str | None,
              web_cache_agree: int, web_cache_private_origins: bool, verbose: int,
              out: Output) -> None:
    """Run a volunteer mirror: a node that mirrors signed sites whose origins ask for help.

    It announces itself in the DHT; an origin handing off (`peerweb origin --volunteers`)
    finds it there, asks it to mirror its site, and redirects visitors to its public
    gateway. Only signed sites are mirrored, within --disk and --capacity. With
    --web-cache it also keeps copies of public pages for others (the pages its own
    extension reports; see docs/webcache.md), within that size and --capacity.
    """
    setup_logging(verbose)
    config = NodeConfig(
        data_dir=data_dir, listen=parse_hostport(swarm_address(swarm, old_listen, SWARM_DEFAULT)),
        gateway=parse_hostport(public_gateway), bootstrap=bootstrap_nodes(bootstrap),
        network=Network(network), upload_limit=parse_size(capacity), disk_quota=parse_size(disk),
        volunteer=True, web_cache=web_cache_settings(web_cache, web_cache_agree,
                                                     web_cache_private_origins),
    )
    aio.run(_run_node(config, False, out))


async def _run_node(config: NodeConfig, example: bool, out: Output) -> None:
    from ..http.daemon import RunningNode

    stop = stop_on_signal()
    async with RunningNode(config) as running:
        swarm = f"{config.listen[0]}:{running.node.swarm.listen_port}"
        record: dict[str, Any] = {
            "network": config.network.value, "gateway": f"{running.gateway_url}/",
            "swarm": swarm, "peer_port": running.node.peer_port, "api": running.api_url,
            "data_dir": str(config.data_dir), "pid": os.getpid(),
            "metered": config.metered, "volunteer": config.volunteer,
            "web_cache": config.web_cache.size if config.web_cache else 0}
        out.text(f"peerweb node running ({config.network.value} network)")
        out.text(f"  gateway:   {running.gateway_url}/")
        out.text(f"  swarm:     {swarm} (peer port {running.node.peer_port})")
        if config.metered:
            out.text("  metered:   seeding only pinned and published sites")
        if config.volunteer:
            out.text("  volunteer: mirroring signed sites that ask for help")
        if config.web_cache is not None:
            out.text(f"  web cache: {human(config.web_cache.size)} of public pages "
                     f"(pair the extension: peerweb extension pair)")
        out.text(f"  data dir:  {config.data_dir}")
        if example:
            folder = Path(str(resources.files("peerweb") / "example_site"))
            result = await running.node.publish(folder, "example")
            out.text(f"  example site v{result.version}: {result.url}")
            record["example"] = result.to_json()
        if out.json:
            out.record(record)
        out.text("Press Ctrl-C to stop.")
        await stop.wait()
        out.note("stopping…")


@click.command()
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(1, 200),
              help="How many nodes to run.")
@click.option("--base-port", default=8080, show_default=True,
              help="Gateway of node i listens on 127.0.0.1:BASE+i (0: free ports).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep node data here, one folder a node (default: a temporary folder, "
                   "removed at exit).")
@verbose_option
@json_option
@with_examples("peerweb testnet --nodes 5", "peerweb testnet --base-port 0 --json")
@click.pass_context
def testnet(ctx: click.Context, nodes: int, base_port: int, data_dir: Path | None,
            verbose: int, out: Output) -> None:
    """Run NODES nodes on loopback with a private DHT and publish the example site."""
    setup_logging(verbose)
    data_dir = data_dir or settings(ctx).typed_data_dir
    aio.run(_run_testnet(nodes, base_port, data_dir, out))


async def _run_testnet(size: int, base_port: int, data_dir: Path | None, out: Output) -> None:
    from ..tools.testnet import Testnet

    stop = stop_on_signal()
    out.note(f"starting {plural(size, 'node')}…")
    async with Testnet(size, root=data_dir, base_port=base_port) as net:
        folder = Path(str(resources.files("peerweb") / "example_site"))
        result = await net.nodes[0].node.publish(folder, "example")
        out.text(f"example site {result.site_id} v{result.version} published on node 0")
        rows = []
        for i, running in enumerate(net.nodes):
            url = running.site_url(result.site_id)
            rows.append({"url": url, "gateway": f"{running.gateway_url}/",
                         "data_dir": str(running.config.data_dir)})
            out.text(f"  node {i}: {url}   (data dir {running.config.data_dir})")
        if out.json:
            out.record({"site_id": result.site_id, "version": result.version, "nodes": rows})
        out.text("Press Ctrl-C to stop all nodes.")
        await stop.wait()
        out.note("stopping…")


@click.command()
@click.option("--timeout", default=STOP_TIMEOUT, show_default=True, type=click.FloatRange(0),
              help="Seconds to wait for the node's process to end.")
@data_dir_option
@json_option
@with_examples("peerweb stop", "peerweb stop --data-dir /srv/peerweb")
def stop(timeout: float, data_dir: Path, out: Output) -> None:
    """Ask the running node to shut down cleanly, and wait until its process has ended."""
    client = NodeClient(data_dir)
    pid = int(client.stop()["pid"])
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() > deadline:
            raise PeerwebError(f"the node (pid {pid}) is still stopping after {timeout:.0f} s")
        time.sleep(STOP_POLL)
    out.text(f"stopped the node (pid {pid})")
    if out.json:
        out.record({"stopped": True, "pid": pid})


def process_gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie its parent has not reaped counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] in ("Z", "X")


@click.command()
@click.option("--origin", "origin_url", default=None, metavar="URL",
              help="Show a `peerweb origin` on this machine instead, e.g. http://127.0.0.1:8000.")
@data_dir_option
@json_option
@with_examples("peerweb status", "peerweb status --json | jq .sites",
               "peerweb status --origin http://127.0.0.1:8000")
def status(origin_url: str | None, data_dir: Path, out: Output) -> None:
    """Show the running node's sites, peers, rates and disk use (or an origin's mode)."""
    if origin_url is not None:
        _origin_status(origin_url.rstrip("/"), out)
        return
    info = NodeClient(data_dir).status()
    if out.json:
        out.record(info)
        return
    out.text(f"node on {info['listen']} ({info['network']}), gateway {info['gateway']}")
    out.text(f"  DHT nodes {info['dht_nodes']}, peers {info['peers']}, "
             f"up {human(info['upload_rate'])}/s, down {human(info['download_rate'])}/s, "
             f"disk {human(info['disk_used'])}")
    for site in info["sites"]:
        mark = "published" if site["published"] else "cached"
        crowd = "  (stepped back: the crowd holds every piece twice)" if site.get(
            "stepped_back") else ""
        out.text(f"  {site['site_id']}  v{site['version']}  {mark}  "
                 f"{100 * site.get('progress', 0):.0f}%  peers {site.get('peers', 0)}{crowd}")


def _origin_status(base: str, out: Output) -> None:
    from ..spike.origin import STATUS_PATH

    try:
        with urllib.request.urlopen(base + STATUS_PATH, timeout=10) as response:
            info = json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, ValueError) as exc:
        raise PeerwebError(f"no origin answers at {base} ({exc}); is `peerweb origin` running "
                         "there?") from None
    if out.json:
        out.record(info)
        return
    out.text(f"origin {base}: {info['mode']}")
    out.text(f"  egress {human(info['egress_bytes_per_s'])}/s of "
             f"{human(int(info['capacity_bytes_per_s']))}/s, {info['in_flight']} in flight, "
             f"upstream {1000 * info['upstream_latency_s']:.0f} ms")
    out.text(f"  {plural(info['passed_through'], 'request')} passed through, "
             f"{info['handed_off']} handed off, mode changed "
             f"{plural(info['mode_changes'], 'time')}")
    for mirror, count in sorted(info["handed_off_to"].items(), key=lambda kv: -kv[1]):
        out.text(f"    {count:8d}  {mirror}")


COMMANDS = (node, volunteer, testnet, status, stop)
