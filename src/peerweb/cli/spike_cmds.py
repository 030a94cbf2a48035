"""Servers around the swarm for traffic spikes: tracker, origin, redirector.

``--listen`` is the HTTP address each serves on (a node's swarm address is ``--swarm``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from .. import aio
from ..config import Network, NodeConfig, parse_hostport, parse_size
from ..errors import UsageError
from ..http.control_client import NodeClient
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
from .serving import serve_until_signal


@click.command()
@click.option("--listen", default="127.0.0.1:6969", show_default=True, metavar="HOST:PORT",
              help="HTTP address to serve /announce and /scrape on.")
@verbose_option
@json_option
@with_examples("peerweb tracker", "peerweb tracker --listen 0.0.0.0:6969")
def tracker(listen: str, verbose: int, out: Output) -> None:
    """Run a BitTorrent HTTP tracker (BEP 3 announce, compact peers, scrape).

    For sites that want a tracker besides the DHT: list it with `peerweb publish --tracker
    http://HOST:PORT/announce`. It keeps peers in memory only.
    """
    from ..tools.tracker import make_app

    setup_logging(verbose)
    host, port = parse_hostport(listen)
    aio.run(serve_until_signal(make_app(), host, port, "tracker (announce at /announce)", out))


@click.command()
@click.option("--upstream", required=True, metavar="URL",
              help="The web server to stand in front of, e.g. http://127.0.0.1:8000.")
@click.option("--site", "site_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The folder published as the site: its files may be handed off.")
@click.option("--site-id", default=None, help="The site's id (from `peerweb publish`), so "
              "visitors whose request names their own gateway are sent there.")
@click.option("--mirror", "mirrors", multiple=True, metavar="URL",
              help="A gateway serving the site, e.g. http://HOST:PORT/s/SITE-ID (repeatable).")
@click.option("--listen", default="127.0.0.1:8000", show_default=True, metavar="HOST:PORT",
              help="HTTP address visitors reach the origin at.")
@click.option("--capacity", default="10MB/s", show_default=True,
              help="Egress the origin can afford; it hands off above 80% of it.")
@click.option("--banner", default=None, metavar="HTML",
              help="Added to pages served while handing off, e.g. an invitation to help host.")
@click.option("--no-loader", is_flag=True,
              help="Redirect page requests straight to a mirror (unverified) instead of "
                   "serving the loader whose Service Worker checks every byte (needs "
                   "--site-id).")
@click.option("--node", "node_dir", default=None,
              type=click.Path(file_okay=False, path_type=Path),
              help="Data dir of the running node that publishes the site (for --volunteers "
                   "and --watch).")
@click.option("--volunteers", is_flag=True,
              help="Under load, have the node find volunteer mirrors in the DHT and ask them "
                   "to help (needs --node and --site-id).")
@click.option("--watch", "watch_key", default=None, metavar="KEY",
              help="Publish the site again with key KEY whenever its files change (needs "
                   "--node).")
@verbose_option
@json_option
@with_examples(
    "peerweb origin --upstream http://127.0.0.1:8000 --site ./public --listen 0.0.0.0:80 \\",
    "    --site-id SITE-ID --mirror http://mirror:8080/s/SITE-ID",
    "peerweb origin --upstream URL --site ./public --site-id SITE-ID \\",
    "    --node ~/.local/share/peerweb --volunteers --watch blog")
def origin(upstream: str, site_dir: Path, site_id: str | None, mirrors: tuple[str, ...],
           listen: str, capacity: str, banner: str | None, no_loader: bool,
           node_dir: Path | None, volunteers: bool, watch_key: str | None,
           verbose: int, out: Output) -> None:
    """Run in front of a web server; hand static files to mirrors when it is overloaded.

    Normal load passes through untouched. Above the threshold (with hysteresis), requests
    for the site's published files are redirected to a mirror; dynamic requests still go
    upstream, or get 503 with Retry-After past the capacity. With --site-id, a browser
    asking for a page first gets a small page from the origin that installs a Service
    Worker: it takes the files from the mirrors and checks each against the publisher's
    signature, so a mirror cannot alter what visitors see. GET /.peerweb/status (from this
    machine) shows the mode and the load.
    """
    from ..spike.handoff import LoadPolicy, Thresholds
    from ..spike.origin import Origin, OriginConfig, sitemap_of

    setup_logging(verbose)
    host, port = parse_hostport(listen)
    limit = parse_size(capacity)
    if limit <= 0:
        raise UsageError("--capacity must be positive, e.g. 10MB/s")
    if (volunteers or watch_key) and node_dir is None:
        raise UsageError("--volunteers and --watch need --node DATA_DIR (a running node)")
    client = NodeClient(node_dir) if node_dir is not None else None
    find = watch = None
    if volunteers and client is not None:
        if site_id is None:
            raise UsageError("--volunteers needs --site-id")
        wanted = site_id

        async def find() -> list[str]:
            assert client is not None
            found = await asyncio.to_thread(client.ask_for_help, wanted)
            return [str(m["mirror"]) for m in found]

    if watch_key and client is not None:
        key = watch_key

        async def publish() -> None:
            assert client is not None
            await asyncio.to_thread(lambda: list(client.publish(site_dir, key, False)))

        watch = (site_dir, publish)

    server = Origin(OriginConfig(upstream, site_id, mirrors, banner, not no_loader),
                    sitemap_of(site_dir),
                    LoadPolicy(Thresholds(capacity=float(limit))), find, watch)
    aio.run(serve_until_signal(server.make_app(), host, port, "origin", out))


@click.command()
@data_dir_option
@click.option("--listen", "redirect_at", default="127.0.0.1:8090", show_default=True,
              metavar="HOST:PORT",
              help="HTTP address to answer GET /<site-id>/<path> with a redirect on.")
@click.option("--swarm", default=SWARM_DEFAULT, show_default=True, metavar="HOST:PORT",
              help="The redirector's own node: swarm (BitTorrent + DHT) address.")
@join_options
@verbose_option
@json_option
@with_examples("peerweb redirector --listen 0.0.0.0:8090 --bootstrap router.example:6881")
def redirector(data_dir: Path, redirect_at: str, swarm: str, bootstrap: str, network: str,
               verbose: int, out: Output) -> None:
    """Redirect GET /<site-id>/<path> to a healthy volunteer mirror that has the site."""
    setup_logging(verbose)
    config = NodeConfig(
        data_dir=data_dir, listen=parse_hostport(swarm), gateway=("127.0.0.1", 0),
        bootstrap=bootstrap_nodes(bootstrap),
        network=Network(network),
    )
    aio.run(_run_redirector(config, parse_hostport(redirect_at), out))


async def _run_redirector(config: NodeConfig, address: tuple[str, int], out: Output) -> None:
    from ..http.daemon import RunningNode
    from ..spike.redirector import make_app

    async with RunningNode(config) as running:
        await serve_until_signal(make_app(running.node), address[0], address[1], "redirector",
                                 out)


COMMANDS = (tracker, origin, redirector)
