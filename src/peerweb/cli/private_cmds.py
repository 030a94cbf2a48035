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
from ..private.readers import NodeKey, ReaderList
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
@click.option("--to", "to", multiple=True, metavar="NODE-KEY",
              help="Add a reader by its node key (`peerweb node-key` on its machine): each "
                   "version published from now on is sealed to it, no link needed.")
@click.option("--remove", multiple=True, metavar="NODE-KEY",
              help="Remove a reader added with --to: the next version gets a content key it "
                   "is not given.")
@json_option
@data_dir_option
@with_examples("peerweb share notes", "peerweb share SITE-ID --json | jq -r .capability",
               "peerweb share notes --to NODE-KEY && peerweb publish ./notes --private",
               "peerweb share notes --remove NODE-KEY")
def share(site: str, to: tuple[str, ...], remove: tuple[str, ...], out: Output,
          data_dir: Path) -> None:
    """Print the read capability of private SITE (a site id or key name): whoever has it
    can read every version of the site. Send it only to those who may.

    With --to or --remove, change instead who reads it by node key; the change holds from
    the next `peerweb publish DIR --private` of the site on."""
    site_id = _site_id(site, data_dir)
    if (to or remove) and KeyStore(data_dir / "keys").find_by_site_id(site_id) is None:
        raise NoReadKey(f"only the publisher of {site_id} (the node with its site key) "
                        "can add or remove readers")
    key = Keyring(data_dir).get(site_id)
    if key is None:
        raise NoReadKey(f"this node has no read key for {site_id}: it is not a private site "
                        "published or opened here")
    if to or remove:
        readers = ReaderList(data_dir).change(site_id, add=to, remove=remove)
        if out.json:
            out.record({"site_id": site_id, "readers": readers, "takes_effect": "next publish"})
            return
        out.text(f"{len(readers)} reader(s) by node key for {site_id}")
        for reader in readers:
            out.text(f"  {reader}")
        out.note("publish the site again (`peerweb publish DIR --private`): the new version "
                 "is sealed to these readers only")
        if remove:
            out.note("a removed reader keeps the versions it already read; if it also had "
                     "the read capability link, that link still opens new versions")
        return
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


@click.command("node-key")
@json_option
@data_dir_option
@with_examples("peerweb node-key", "peerweb share notes --to $(peerweb node-key)")
def node_key(out: Output, data_dir: Path) -> None:
    """Print this node's key: a publisher adds it with `peerweb share SITE --to KEY`, and
    this node then reads that private site without a capability link."""
    key = NodeKey.load_or_create(data_dir)
    if out.json:
        out.record({"node_key": key.text})
        return
    out.text(key.text)


COMMANDS = (share, open_, node_key)
