"""The ``peerweb`` command line."""

from __future__ import annotations

import asyncio
import html
import json
import logging
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import click

from .. import aio
from ..config import Network, NodeConfig, default_data_dir, parse_hostport, parse_size
from ..content.addressing import Target, parse_cli_address
from ..content.identity import KeyStore
from ..errors import PeerwebError, UsageError
from ..http.control_client import NodeClient

F = TypeVar("F", bound=Callable[..., Any])


def _data_dir_option(func: F) -> F:
    return click.option(
        "--data-dir", type=click.Path(file_okay=False, path_type=Path),
        default=default_data_dir, envvar="PEERWEB_DATA_DIR", show_default="~/.local/share/peerweb",
        help="Where keys, state and cached sites live; commands find their node through it.",
    )(func)


def _fail(message: str) -> None:
    styled = click.style(f"error: {message}", fg="red") if _color() else f"error: {message}"
    click.echo(styled, err=True)
    sys.exit(1)


def _color() -> bool:
    return "NO_COLOR" not in os.environ and sys.stderr.isatty()


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


class _Group(click.Group):
    """Turns PeerwebError into one red line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PeerwebError as exc:
            _fail(str(exc))


def _join_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--bootstrap and --network, for commands that run a node of their own."""
    command = click.option("--network", type=click.Choice(["local", "public"]),
                           default="local", show_default=True,
                           help="As for `peerweb node`.")(command)
    return click.option("--bootstrap", default="", metavar="HOST:PORT[,...]",
                        help="DHT nodes to join.")(command)


def _stop_on_signal() -> asyncio.Event:
    """An event that Ctrl-C or SIGTERM sets, for commands that serve until stopped."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _bootstrap_nodes(text: str) -> tuple[tuple[str, int], ...]:
    return tuple(parse_hostport(b) for b in text.split(",") if b.strip())


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="peerweb")
def main() -> None:
    """peerweb: websites served by their visitors.

    Publish a folder as a signed site, browse sites through a local gateway at
    http://<site-id>.localhost:8080/, and keep what you visit seeded for others.

    \b
    Start here:
      peerweb node --example      run a node and publish the bundled example site
      peerweb publish ./my-site   publish a folder through the running node
      peerweb status              what the node holds and serves
    """


# -- node ---------------------------------------------------------------------------------


@main.command()
@_data_dir_option
@click.option("--listen", default="127.0.0.1:0", show_default=True,
              help="Swarm (BitTorrent + DHT) address; port 0 picks a free one.")
@click.option("--gateway", default="127.0.0.1:8080", show_default=True,
              help="HTTP gateway address for browsers.")
@click.option("--api", default="127.0.0.1:0", show_default=True,
              help="Control API address (needs the token in the data dir).")
@click.option("--bootstrap", default="", metavar="HOST:PORT[,...]",
              help="DHT nodes to join, e.g. another node's --listen address.")
@click.option("--network", type=click.Choice(["local", "public"]), default="local",
              show_default=True,
              help="local: only --bootstrap nodes, no UPnP/NAT-PMP/multicast. "
                   "public: join the Mainline DHT (opt-in).")
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
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
def node(data_dir: Path, listen: str, gateway: str, api: str, bootstrap: str, network: str,
         upload_limit: str, download_limit: str, limit_local_peers: bool,
         disk_quota: str | None, peer_port: int, metered: bool, example: bool,
         verbose: int) -> None:
    """Run a node: swarm engine, gateway and control API, until Ctrl-C."""
    _setup_logging(verbose)
    net = Network(network)
    default_listen = "0.0.0.0:6881" if net is Network.PUBLIC and listen == "127.0.0.1:0" else listen
    config = NodeConfig(
        data_dir=data_dir,
        listen=parse_hostport(default_listen),
        gateway=parse_hostport(gateway),
        api=parse_hostport(api),
        bootstrap=_bootstrap_nodes(bootstrap),
        network=net,
        upload_limit=parse_size(upload_limit),
        download_limit=parse_size(download_limit),
        limit_local_peers=limit_local_peers,
        disk_quota=parse_size(disk_quota) if disk_quota else None,
        peer_port=peer_port,
        metered=metered,
    )
    aio.run(_run_node(config, example))


@main.command()
@_data_dir_option
@click.option("--public-gateway", required=True, metavar="HOST:PORT",
              help="Where the mirrored sites are served to anyone (with CORS headers).")
@click.option("--capacity", required=True, metavar="RATE",
              help="Upload this volunteer gives, e.g. 50MB/s (reported to origins as load).")
@click.option("--disk", required=True, metavar="SIZE", help="Disk for mirrored sites, e.g. 20GB.")
@click.option("--listen", default="127.0.0.1:0", show_default=True,
              help="Swarm (BitTorrent + DHT) address; port 0 picks a free one.")
@_join_options
@click.option("-v", "--verbose", count=True)
def volunteer(data_dir: Path, public_gateway: str, capacity: str, disk: str, listen: str,
              bootstrap: str, network: str, verbose: int) -> None:
    """Run a volunteer mirror: a node that mirrors signed sites whose origins ask for help.

    It announces itself in the DHT; an origin handing off (`peerweb origin --volunteers`)
    finds it there, asks it to mirror its site, and redirects visitors to its public
    gateway. Only signed sites are mirrored, within --disk and --capacity.
    """
    _setup_logging(verbose)
    net = Network(network)
    config = NodeConfig(
        data_dir=data_dir, listen=parse_hostport(listen), gateway=parse_hostport(public_gateway),
        bootstrap=_bootstrap_nodes(bootstrap),
        network=net, upload_limit=parse_size(capacity), disk_quota=parse_size(disk),
        volunteer=True,
    )
    aio.run(_run_node(config, example=False))


@main.command()
@_data_dir_option
@click.option("--listen", "redirect_at", default="127.0.0.1:8090", show_default=True,
              help="Where to answer GET /<site-id>/<path> with a redirect.")
@click.option("--swarm", default="127.0.0.1:0", show_default=True,
              help="The redirector's own node: swarm (BitTorrent + DHT) address.")
@_join_options
@click.option("-v", "--verbose", count=True)
def redirector(data_dir: Path, redirect_at: str, swarm: str, bootstrap: str, network: str,
               verbose: int) -> None:
    """Redirect GET /<site-id>/<path> to a healthy volunteer mirror that has the site."""
    _setup_logging(verbose)
    config = NodeConfig(
        data_dir=data_dir, listen=parse_hostport(swarm), gateway=("127.0.0.1", 0),
        bootstrap=_bootstrap_nodes(bootstrap),
        network=Network(network),
    )
    aio.run(_run_redirector(config, parse_hostport(redirect_at)))


async def _run_redirector(config: NodeConfig, address: tuple[str, int]) -> None:
    from ..http.daemon import RunningNode
    from ..spike.redirector import make_app

    async with RunningNode(config) as running:
        await _serve_until_signal(make_app(running.node), address[0], address[1], "redirector")


async def _run_node(config: NodeConfig, example: bool) -> None:
    from ..http.daemon import RunningNode

    stop = _stop_on_signal()
    async with RunningNode(config) as running:
        click.echo(f"peerweb node running ({config.network.value} network)")
        click.echo(f"  gateway:   {running.gateway_url}/")
        click.echo(f"  swarm:     {config.listen[0]}:{running.node.swarm.listen_port}"
                   f" (peer port {running.node.peer_port})")
        if config.metered:
            click.echo("  metered:   seeding only pinned and published sites")
        if config.volunteer:
            click.echo("  volunteer: mirroring signed sites that ask for help")
        click.echo(f"  data dir:  {config.data_dir}")
        if example:
            folder = Path(str(resources.files("peerweb") / "example_site"))
            result = await running.node.publish(folder, "example")
            click.echo(f"  example site v{result.version}: {result.url}")
        click.echo("Press Ctrl-C to stop.")
        await stop.wait()
        click.echo("stopping…", err=True)


# -- publish ------------------------------------------------------------------------------


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--key", default=None, metavar="NAME",
              help="Key to sign with (created if missing); default: the folder's name.")
@click.option("--no-index", is_flag=True, help="Publish even without an index.html.")
@click.option("--tracker", "trackers", multiple=True, metavar="URL",
              help="A tracker to list in the site (repeatable), e.g. one run with "
                   "`peerweb tracker`; visitors announce to it besides the DHT.")
@click.option("--web-seed", "web_seeds", multiple=True, metavar="URL",
              help="An HTTP server holding the site's files (BEP 19, repeatable), e.g. a "
                   "`peerweb origin` at http://HOST:PORT/.peerweb/seed/; the swarm fills from it.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_data_dir_option
def publish(folder: Path, key: str | None, no_index: bool, trackers: tuple[str, ...],
            web_seeds: tuple[str, ...], as_json: bool, data_dir: Path) -> None:
    """Publish FOLDER as a site (or its next version) through the running node."""
    client = NodeClient(data_dir, timeout=120)
    result: dict[str, Any] = {}
    for event in client.publish(folder, key, no_index, trackers, web_seeds):
        if "progress" in event and not as_json and sys.stderr.isatty():
            click.echo(f"\rhashing {event['progress']}/{event['total']} pieces", err=True,
                       nl=False)
        if "result" in event:
            result = event["result"]
    if not as_json and sys.stderr.isatty():
        click.echo("", err=True)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"published {result['files']} files ({_human(result['size'])}) as version "
               f"{result['version']}")
    click.echo(f"  site id:   {result['site_id']}")
    click.echo(f"  url:       {result['url']}")
    click.echo(f"  magnet:    {result['magnet']}")
    click.echo(f"  snapshot:  {result['infohash']}")
    if not result["dht_stored"]:
        click.echo("  note: no DHT node stored the pointer yet (no peers?); the node retries.",
                   err=True)


@main.command()
@click.option("--listen", default="127.0.0.1:6969", show_default=True,
              help="Address to serve /announce and /scrape on.")
@click.option("-v", "--verbose", count=True)
def tracker(listen: str, verbose: int) -> None:
    """Run a BitTorrent HTTP tracker (BEP 3 announce, compact peers, scrape).

    For sites that want a tracker besides the DHT: list it with `peerweb publish --tracker
    http://HOST:PORT/announce`. It keeps peers in memory only.
    """
    from ..tools.tracker import make_app

    _setup_logging(verbose)
    host, port = parse_hostport(listen)
    aio.run(_serve_until_signal(make_app(), host, port, "tracker (announce at /announce)"))


@main.command()
@click.option("--upstream", required=True, metavar="URL",
              help="The web server to stand in front of, e.g. http://127.0.0.1:8000.")
@click.option("--site", "site_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The folder published as the site: its files may be handed off.")
@click.option("--site-id", default=None, help="The site's id (from `peerweb publish`), so "
              "visitors whose request names their own gateway are sent there.")
@click.option("--mirror", "mirrors", multiple=True, metavar="URL",
              help="A gateway serving the site, e.g. http://HOST:PORT/s/SITE-ID (repeatable).")
@click.option("--listen", default="127.0.0.1:8000", show_default=True)
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
@click.option("-v", "--verbose", count=True)
def origin(upstream: str, site_dir: Path, site_id: str | None, mirrors: tuple[str, ...],
           listen: str, capacity: str, banner: str | None, no_loader: bool,
           node_dir: Path | None, volunteers: bool, watch_key: str | None,
           verbose: int) -> None:
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

    _setup_logging(verbose)
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
    aio.run(_serve_until_signal(server.make_app(), host, port, "origin"))


async def _serve_until_signal(app: Any, host: str, port: int, what: str) -> None:
    from ..config import ServerLimits
    from ..http import limits

    try:  # header, body and idle timeouts and per-address limits, as every server has
        listening = await limits.serve(app, host, port, ServerLimits())
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}; "
                         "pick another with --listen") from exc
    bound = listening.address
    click.echo(f"{what} on http://{bound[0]}:{bound[1]}/  (Ctrl-C stops it)")
    stop = _stop_on_signal()
    try:
        await stop.wait()
    finally:
        await listening.close()


# -- keys ---------------------------------------------------------------------------------


@main.group()
def key() -> None:
    """Manage publisher keys (one per site).

    A site's address is its public key, and only the private key can sign new versions:
    if you lose the key, the site can never be updated again. Keep a backup made with
    `peerweb key export NAME -o FILE` (encrypted with a passphrase) somewhere safe.
    """


_passphrase_option = click.option(
    "--passphrase", envvar="PEERWEB_PASSPHRASE", prompt=True, hide_input=True,
    help="Passphrase of the export (asked for when not given; or PEERWEB_PASSPHRASE).",
)


@key.command("new")
@click.argument("name")
@_data_dir_option
def key_new(name: str, data_dir: Path) -> None:
    """Create a key NAME and print its site id."""
    created = KeyStore(data_dir / "keys").create(name)
    click.echo(f"{created.name}\t{created.site_id}")


@key.command("list")
@click.option("--json", "as_json", is_flag=True)
@_data_dir_option
def key_list(as_json: bool, data_dir: Path) -> None:
    """List keys and the site ids they sign for."""
    store = KeyStore(data_dir / "keys")
    rows = [(name, store.get(name).site_id) for name in store.names()]
    if as_json:
        click.echo(json.dumps([{"name": n, "site_id": s} for n, s in rows]))
    elif not rows:
        click.echo("no keys yet; `peerweb key new NAME` or `peerweb publish DIR` makes one",
                   err=True)
    for name, site_id in rows if not as_json else []:
        click.echo(f"{name}\t{site_id}")


@key.command("export")
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write (refuses to overwrite).")
@click.option("--passphrase", envvar="PEERWEB_PASSPHRASE", prompt=True, hide_input=True,
              confirmation_prompt=True,
              help="Passphrase to encrypt with (asked for twice when not given; or "
                   "PEERWEB_PASSPHRASE).")
@_data_dir_option
def key_export(name: str, output: Path, passphrase: str, data_dir: Path) -> None:
    """Write key NAME to a passphrase-encrypted file, for a backup or another machine."""
    pem = KeyStore(data_dir / "keys").export(name, passphrase)
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{output} exists; choose another file") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    click.echo(f"wrote {output}; without its passphrase it is useless, so keep both safe")


@key.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_passphrase_option
@_data_dir_option
def key_import(name: str, file: Path, passphrase: str, data_dir: Path) -> None:
    """Store the key exported in FILE under NAME; print its site id."""
    imported = KeyStore(data_dir / "keys").import_(name, file.read_bytes(), passphrase)
    click.echo(f"{imported.name}\t{imported.site_id}")


# -- status, get --------------------------------------------------------------------------


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--origin", "origin_url", default=None, metavar="URL",
              help="Show a `peerweb origin` on this machine instead, e.g. http://127.0.0.1:8000.")
@_data_dir_option
def status(as_json: bool, origin_url: str | None, data_dir: Path) -> None:
    """Show the running node's sites, peers, rates and disk use (or an origin's mode)."""
    if origin_url is not None:
        _origin_status(origin_url.rstrip("/"), as_json)
        return
    info = NodeClient(data_dir).status()
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    click.echo(f"node on {info['listen']} ({info['network']}), gateway {info['gateway']}")
    click.echo(f"  DHT nodes {info['dht_nodes']}, peers {info['peers']}, "
               f"up {_human(info['upload_rate'])}/s, down {_human(info['download_rate'])}/s, "
               f"disk {_human(info['disk_used'])}")
    for site in info["sites"]:
        mark = "published" if site["published"] else "cached"
        crowd = "  (stepped back: the crowd holds every piece twice)" if site.get(
            "stepped_back") else ""
        click.echo(f"  {site['site_id']}  v{site['version']}  {mark}  "
                   f"{100 * site.get('progress', 0):.0f}%  peers {site.get('peers', 0)}{crowd}")


def _origin_status(base: str, as_json: bool) -> None:
    from ..spike.origin import STATUS_PATH

    try:
        with urllib.request.urlopen(base + STATUS_PATH, timeout=10) as response:
            info = json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, ValueError) as exc:
        _fail(f"no origin answers at {base} ({exc}); is `peerweb origin` running there?")
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    click.echo(f"origin {base}: {info['mode']}")
    click.echo(f"  egress {_human(info['egress_bytes_per_s'])}/s of "
               f"{_human(int(info['capacity_bytes_per_s']))}/s, {info['in_flight']} in flight, "
               f"upstream {1000 * info['upstream_latency_s']:.0f} ms")
    click.echo(f"  {info['passed_through']} requests passed through, {info['handed_off']} handed "
               f"off, mode changed {info['mode_changes']} times")
    for mirror, count in sorted(info["handed_off_to"].items(), key=lambda kv: -kv[1]):
        click.echo(f"    {count:8d}  {mirror}")


@main.command()
@click.argument("address")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (default: standard output).")
@_data_dir_option
def get(address: str, output: Path | None, data_dir: Path) -> None:
    """Fetch ADDRESS[/PATH] through the running node: a site id, an info-hash or a magnet."""
    parsed = parse_cli_address(address)
    client = NodeClient(data_dir)
    if parsed.trackers:  # a magnet's trackers: the node must announce to them to find peers
        client.add_snapshot(parsed.ident, parsed.trackers)
    prefix = "/s/" if parsed.target is Target.SITE else "/ih/"
    path = parsed.path if parsed.path not in ("", "/") else "/"
    url = client.gateway + prefix + parsed.ident + path
    partial = output.with_name(output.name + ".part") if output is not None else None
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            expected = response.headers.get("Content-Length")
            if partial is None:
                received = _copy(response, sys.stdout.buffer)
            else:
                with open(partial, "wb") as out:
                    received = _copy(response, out)
        if expected is not None and received != int(expected):
            # The gateway cuts a stream rather than send a byte it could not verify.
            _fail(f"the transfer stopped after {received} of {expected} bytes (the swarm "
                  f"could not deliver the rest in time); try again")
        if partial is not None and output is not None:
            partial.replace(output)
    except urllib.error.HTTPError as exc:
        _fail(f"HTTP {exc.code} for {url}: {_error_text(exc)}")
    except (urllib.error.URLError, ConnectionError) as exc:
        _fail(f"the node's gateway at {client.gateway} does not answer ({exc}); is it running?")
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)  # never leave a truncated file behind


def _copy(source: Any, target: Any) -> int:
    total = 0
    while chunk := source.read(COPY_CHUNK):
        target.write(chunk)
        total += len(chunk)
    return total


COPY_CHUNK = 256 * 1024


def _error_text(exc: urllib.error.HTTPError) -> str:
    """The message of a gateway error page, without its markup."""
    with exc:
        text = exc.read().decode(errors="replace")
    found = re.search(r"<p>(.*?)</p>", text)
    return html.unescape(found.group(1)) if found else exc.reason


@main.command()
@click.argument("site")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the .torrent (default: SITE-ID[-v1].torrent here).")
@click.option("--v1", "v1_only", is_flag=True,
              help="A v1-only torrent of the same files, for clients that fail on hybrid "
                   "torrents (aria2 1.36, Transmission 3.00); this node seeds it too.")
@_data_dir_option
def export(site: str, output: Path | None, v1_only: bool, data_dir: Path) -> None:
    """Write SITE's current version as a .torrent that ordinary clients can seed."""
    parsed = parse_cli_address(site)
    if parsed.target is not Target.SITE:
        _fail("export takes a site id or a magnet with xs=urn:btpk:")
    target = output or Path(f"{parsed.ident[:16]}{'-v1' if v1_only else ''}.torrent")
    result = NodeClient(data_dir, timeout=300).export(parsed.ident, target, v1_only)
    click.echo(f"wrote {result['path']} ({'v1 only' if v1_only else 'hybrid v1+v2'})")
    click.echo(f"  magnet: {result['magnet']}")


@main.command("log")
@click.argument("site")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list.")
@_data_dir_option
def log_(site: str, as_json: bool, data_dir: Path) -> None:
    """List the versions of SITE this node knows, with the files each one changed."""
    parsed = parse_cli_address(site)
    if parsed.target is not Target.SITE:
        _fail("log takes a site id or a magnet with xs=urn:btpk:")
    entries = NodeClient(data_dir).log(parsed.ident)
    if as_json:
        click.echo(json.dumps(entries))
        return
    for position, entry in reversed(list(enumerate(entries))):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["seen"]))
        marks = " (current)" if entry["current"] else ""
        click.echo(f"v{entry['version']}  {when}  {entry['infohash']}{marks}")
        changed = entry["changed"]
        if changed is None and position == 0:
            click.echo("    the first version this node knows")
        elif changed is None:
            click.echo("    files changed: not known here (the previous version was not held)")
        else:
            shown = ", ".join(changed[:LOG_FILES_SHOWN])
            more = f" and {len(changed) - LOG_FILES_SHOWN} more" if len(changed) > LOG_FILES_SHOWN \
                else ""
            click.echo(f"    {len(changed)} files changed: {shown}{more}")


LOG_FILES_SHOWN = 8


@main.command()
@click.argument("site")
@_data_dir_option
def pin(site: str, data_dir: Path) -> None:
    """Keep SITE (a site id or magnet) on this node whatever the disk quota."""
    _set_pinned(site, True, data_dir)


@main.command()
@click.argument("site")
@_data_dir_option
def unpin(site: str, data_dir: Path) -> None:
    """Let SITE be evicted again when the cache is over its quota."""
    _set_pinned(site, False, data_dir)


def _set_pinned(site: str, pinned: bool, data_dir: Path) -> None:
    parsed = parse_cli_address(site)
    if parsed.target is not Target.SITE:
        _fail("pin takes a site id or a magnet with xs=urn:btpk:")
    NodeClient(data_dir).pin(parsed.ident, pinned)
    click.echo(f"{'pinned' if pinned else 'unpinned'} {parsed.ident}")


# -- testnet ------------------------------------------------------------------------------


@main.command()
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(1, 200))
@click.option("--base-port", default=8080, show_default=True,
              help="Gateway of node i listens on 127.0.0.1:BASE+i (0: free ports).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep node data here (default: a temporary folder, removed at exit).")
@click.option("-v", "--verbose", count=True)
def testnet(nodes: int, base_port: int, data_dir: Path | None, verbose: int) -> None:
    """Run NODES nodes on loopback with a private DHT and publish the example site."""
    _setup_logging(verbose)
    aio.run(_run_testnet(nodes, base_port, data_dir))


async def _run_testnet(size: int, base_port: int, data_dir: Path | None) -> None:
    from ..tools.testnet import Testnet

    stop = _stop_on_signal()
    click.echo(f"starting {size} nodes…", err=True)
    async with Testnet(size, root=data_dir, base_port=base_port) as net:
        folder = Path(str(resources.files("peerweb") / "example_site"))
        result = await net.nodes[0].node.publish(folder, "example")
        click.echo(f"example site {result.site_id} v{result.version} published on node 0")
        for i, running in enumerate(net.nodes):
            click.echo(f"  node {i}: {running.site_url(result.site_id)}   "
                       f"(data dir {running.config.data_dir})")
        click.echo("Press Ctrl-C to stop all nodes.")
        await stop.wait()
        click.echo("stopping…", err=True)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"

