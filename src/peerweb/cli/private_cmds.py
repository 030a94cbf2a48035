"""``peerweb share`` and ``peerweb open``: read capabilities of private sites, through the
node's keyring in the data dir (no running node needed)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..config import NODE_FILE
from ..content.addressing import Target, parse_cli_address
from ..content.identity import KeyStore
from ..errors import NoReadKey
from ..private import capability
from ..private.keyring import Keyring
from .options import data_dir_option, json_option, with_examples
from .output import Output


def _site_id(site: str, data_dir: Path) -> str:
    """A site id from a site id, a magnet or the name of one of this node's keys."""
    keys = KeyStore(data_dir / "keys")
    if site in keys.names():
        return keys.get(site).site_id
    parsed = parse_cli_address(site)
    if parsed.target is not Target.SITE:
        raise NoReadKey(f"{site!r} is neither a site id nor the name of a key here")
    return parsed.ident


def _gateway_port(data_dir: Path) -> int | None:
    try:
        gateway = str(json.loads((data_dir / NODE_FILE).read_text())["gateway"])
        return int(gateway.rstrip("/").rsplit(":", 1)[1])
    except (OSError, ValueError, KeyError, IndexError):
        return None


@click.command()
@click.argument("site")
@json_option
@data_dir_option
@with_examples("peerweb share notes", "peerweb share SITE-ID --json | jq -r .capability")
def share(site: str, out: Output, data_dir: Path) -> None:
    """Print the read capability of private SITE (a site id or key name): whoever has it
    can read every version of the site. Send it only to those who may."""
    site_id = _site_id(site, data_dir)
    key = Keyring(data_dir).get(site_id)
    if key is None:
        raise NoReadKey(f"this node has no read key for {site_id}: it is not a private site "
                        "published or opened here")
    cap = capability.ReadCapability(site_id, key)
    port = _gateway_port(data_dir)
    record = {"site_id": site_id, "capability": cap.link()}
    if port is not None:
        record["gateway_link"] = cap.gateway_link(port)
    if out.json:
        out.record(record)
        return
    out.text(cap.link())
    out.note("anyone with this link can read the site: send it over a private channel")


@click.command("open")
@click.argument("cap", metavar="CAPABILITY")
@json_option
@data_dir_option
@with_examples("peerweb open 'peerweb://SITE-ID#k=...'")
def open_(cap: str, out: Output, data_dir: Path) -> None:
    """Add a private site's read CAPABILITY to this node's keyring; its gateway then serves
    the site decrypted, to this machine's browser only."""
    parsed = capability.parse(cap)
    added = Keyring(data_dir).put(parsed.site_id, parsed.read_key)
    port = _gateway_port(data_dir)
    url = f"http://{parsed.site_id}.localhost:{port}/" if port is not None else None
    if out.json:
        out.record({"site_id": parsed.site_id, "added": added, "url": url})
        return
    out.text(f"{'added' if added else 'already held'}: the read key of {parsed.site_id}")
    if url is not None:
        out.text(f"  url: {url}")
    else:
        out.note("  start a node (`peerweb node`) to read it")


COMMANDS = (share, open_)
