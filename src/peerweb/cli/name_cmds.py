"""``peerweb name``: petnames in the address book (no node needed), and records published
under a key (through the running node, which puts them in the DHT)."""

from __future__ import annotations

from pathlib import Path

import click

from ..http.control_client import NodeClient
from ..names.petnames import PetnameBook, parse_target
from ..names.records import DEFAULT_TTL, MAX_TTL, MIN_TTL
from .options import data_dir_option, json_option, with_examples
from .output import Output


@click.group()
@with_examples("peerweb name add blog SITE-ID", "peerweb name list",
               "peerweb get blog/", "peerweb name publish --key alice friends-blog SITE-ID",
               "peerweb get friends-blog.alice/", "peerweb name rm blog")
def name() -> None:
    """Names for sites: your address book, and names published under your keys.

    A petname (`name add`) is yours alone: `blog` then works wherever a site id does, in
    the CLI and at http://blog.localhost:PORT/. Each site key is also a zone: its owner
    publishes names under it (`name publish --key KEY LABEL SITE-ID`), so with a petname
    `alice` for Alice's key, `friends-blog.alice` names what Alice says it names, and
    `blog.bob.alice` follows Alice's name for Bob into Bob's zone. There is no global
    registry: every name starts in your own address book.
    """


def _book(data_dir: Path) -> PetnameBook:
    return PetnameBook(data_dir)


@name.command("add")
@click.argument("petname")
@click.argument("target")
@click.option("--replace", is_flag=True, help="Replace what PETNAME named before.")
@json_option
@data_dir_option
@with_examples("peerweb name add blog SITE-ID",
               "peerweb name add alice 'magnet:?xs=urn:btpk:KEY-HEX'",
               "peerweb name add film 'magnet:?xt=urn:btih:HASH&tr=URL'")
def name_add(petname: str, target: str, replace: bool, out: Output, data_dir: Path) -> None:
    """Name TARGET (a site id, an info-hash or a magnet link) PETNAME in your address book."""
    entry = _book(data_dir).add(petname, parse_target(target), replace)
    out.text(f"{entry.name}\t{entry.target.value}\t{entry.ident}")
    if out.json:
        out.record({"name": entry.name, **entry.to_json()})


@name.command("list")
@json_option
@data_dir_option
@with_examples("peerweb name list", "peerweb name list --json")
def name_list(out: Output, data_dir: Path) -> None:
    """List your petnames and what they name, one a line."""
    entries = _book(data_dir).entries()
    if not entries:
        out.note("no petnames yet; `peerweb name add NAME SITE-ID` adds one")
    for entry in entries:
        out.text(f"{entry.name}\t{entry.target.value}\t{entry.ident}")
        if out.json:
            out.record({"name": entry.name, **entry.to_json()})


@name.command("rm")
@click.argument("petname")
@json_option
@data_dir_option
@with_examples("peerweb name rm blog")
def name_rm(petname: str, out: Output, data_dir: Path) -> None:
    """Remove PETNAME from your address book."""
    entry = _book(data_dir).remove(petname)
    out.text(f"removed {entry.name} ({entry.ident})")
    if out.json:
        out.record({"name": entry.name, **entry.to_json(), "removed": True})


_TTL = click.option("--ttl", type=click.IntRange(MIN_TTL, MAX_TTL), default=DEFAULT_TTL,
                    show_default=True,
                    help="Seconds resolvers may cache the record (an update or a revocation "
                         "reaches them within this long).")


@name.command("publish")
@click.option("--key", "key_name", required=True, help="The key whose zone the name is in.")
@click.argument("label")
@click.argument("target")
@_TTL
@json_option
@data_dir_option
@with_examples("peerweb name publish --key alice friends-blog SITE-ID",
               "peerweb name publish --key alice bob BOBS-SITE-ID   # delegate to Bob's zone",
               "peerweb name publish --key alice blog blog --ttl 300  # the site petname blog "
               "names")
def name_publish(key_name: str, label: str, target: str, ttl: int, out: Output,
                 data_dir: Path) -> None:
    """Publish LABEL in the zone of key KEY: LABEL.ZONE then names TARGET (a site id, or a
    name the node resolves now) for everyone who knows the zone. A later publish of the same
    label replaces it (a higher version)."""
    _published(out, NodeClient(data_dir).publish_name(key_name, label, target, ttl))


@name.command("revoke")
@click.option("--key", "key_name", required=True, help="The key whose zone the name is in.")
@click.argument("label")
@_TTL
@json_option
@data_dir_option
@with_examples("peerweb name revoke --key alice friends-blog")
def name_revoke(key_name: str, label: str, ttl: int, out: Output, data_dir: Path) -> None:
    """Withdraw LABEL from the zone of key KEY (a signed revocation, a higher version)."""
    _published(out, NodeClient(data_dir).publish_name(key_name, label, None, ttl))


def _published(out: Output, result: dict[str, object]) -> None:
    what = "revoked" if result["revoked"] else f"-> {result['target']}"
    out.text(f"{result['label']} in zone {result['key']} {what} (version {result['version']}, "
             f"ttl {result['ttl']} s)")
    if not result["stored"]:
        out.note("no DHT node confirmed the record yet; the node keeps trying")
    if out.json:
        out.record(result)


@name.command("resolve")
@click.argument("name_")
@json_option
@data_dir_option
@with_examples("peerweb name resolve blog", "peerweb name resolve blog.bob.alice --json")
def name_resolve(name_: str, out: Output, data_dir: Path) -> None:
    """Show what NAME names, and each step of its resolution."""
    found = NodeClient(data_dir).resolve_name(name_)
    out.text(f"{found['target']}\t{found['ident']}")
    for step in found["chain"]:
        out.note(f"  {step}")
    if out.json:
        out.record(found)


COMMANDS = (name,)
