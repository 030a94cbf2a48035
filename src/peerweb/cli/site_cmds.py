"""Commands about one site on the running node: publish, log, pin, unpin, export."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import click

from ..errors import UsageError
from ..http.control_client import NodeClient
from .options import data_dir_option, json_option, with_examples
from .output import Output, human, plural, progress_bar, spinner

# A publish may hash gigabytes before it answers; an export may hash them again (--v1).
PUBLISH_TIMEOUT = 120.0
EXPORT_TIMEOUT = 300.0
# `log` lists at most this many changed files a version (then "and N more").
LOG_FILES_SHOWN = 8


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--key", default=None, metavar="NAME",
              help="Key to sign with (created if missing); default: the key this folder was "
                   "published with, or a new one.")
@click.option("--no-index", is_flag=True, help="Publish even without an index.html.")
@click.option("--tracker", "trackers", multiple=True, metavar="URL",
              help="A tracker to list in the site (repeatable), e.g. one run with "
                   "`peerweb tracker`; visitors announce to it besides the DHT.")
@click.option("--web-seed", "web_seeds", multiple=True, metavar="URL",
              help="An HTTP server holding the site's files (BEP 19, repeatable), e.g. a "
                   "`peerweb origin` at http://HOST:PORT/.peerweb/seed/; the swarm fills from it.")
@click.option("--domain", "domains", multiple=True, metavar="DOMAIN",
              help="A DNS domain the site claims (repeatable): it resolves as "
                   "http://DOMAIN.localhost:PORT/ once the domain's TXT record "
                   "_peerweb.DOMAIN says site=SITE-ID. Default: the previous version's.")
@click.option("--private", is_flag=True,
              help="Encrypt the site: nodes store and seed it without reading it; readers "
                   "need its read capability (`peerweb share SITE`).")
@json_option
@data_dir_option
@with_examples("peerweb publish ./my-site",
               "peerweb publish ./public --key blog",
               "peerweb publish ./notes --private && peerweb share notes",
               "peerweb publish ./blog --domain example.com",
               "peerweb publish ./my-site --json | jq -r .url")
def publish(folder: Path, key: str | None, no_index: bool, trackers: tuple[str, ...],
            web_seeds: tuple[str, ...], domains: tuple[str, ...], private: bool, out: Output,
            data_dir: Path) -> None:
    """Publish FOLDER as a site (or its next version) through the running node."""
    client = NodeClient(data_dir, timeout=PUBLISH_TIMEOUT)
    result: dict[str, Any] = {}
    size = folder_size(folder) if out.progress else 0
    with progress_bar(out, "preparing", None, "{task.fields[pieces]}") as bar:
        claimed = tuple(d.lower().rstrip(".") for d in domains) if domains else None
        for event in client.publish(folder, key, no_index, trackers, web_seeds, private,
                                    claimed):
            if "progress" in event:
                done, total = int(event["progress"]), int(event["total"])
                # Pieces are of one size (BEP 52 pads each file to a piece boundary), so
                # the share of pieces hashed is the share of bytes, near enough.
                bar.update(size * done / total if total else size, size,
                           description="hashing", pieces=f"{done}/{total} pieces")
            if "result" in event:
                result = event["result"]
    if out.json:
        out.record(result)
        return
    what = f"{plural(result['files'], 'file')} ({human(result['size'])})"
    if result.get("unchanged"):
        out.text(f"unchanged: {what}, still version {result['version']}")
    else:
        how = "encrypted " if result.get("private") else ""
        out.text(f"published {how}{what} as version {result['version']}")
    previous, source = result.get("previous_version"), result.get("version_from")
    if previous and source not in (None, "none", "state"):
        out.text(f"  (the last version known was v{previous}, learned from the {source})")
    out.text(f"  site id:   {result['site_id']}")
    name = result.get("key")
    if name is None:
        from ..content.identity import KeyStore  # here: a publish under --json needs no keys

        signer = KeyStore(data_dir / "keys").find_by_site_id(result["site_id"])
        name = signer.name if signer is not None else None
    if name is not None:
        out.text(f"  key:       {name}")
    if result.get("key_created"):
        out.note(f"  created key {name!r}: the site's only key. Back it up now: "
                 f"peerweb key export {name} -o {name}.pem")
    out.text(f"  url:       {result['url']}")
    if result.get("path_url") and result["path_url"] != result["url"]:
        out.text(f"  any client: {result['path_url']}  (wget, curl: *.localhost may not resolve)")
    out.text(f"  magnet:    {result['magnet']}")
    out.text(f"  snapshot:  {result['infohash']}")
    if result.get("private"):
        out.text(f"  private:   readers need `peerweb share {result['site_id']}`")
    if not result["dht_stored"] and not result.get("dht_pending") and not result.get("unchanged"):
        out.note("  note: no DHT node stored the pointer yet (no peers?); the node retries.")


def folder_size(folder: Path) -> int:
    """Bytes of the files a publish hashes, for the bar (hidden files are not published)."""
    total = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith("."):
                with contextlib.suppress(OSError):  # the node says what is wrong with it
                    total += os.stat(os.path.join(root, name)).st_size
    return total


def site_id_of(text: str, command: str) -> str:
    # Imported here: `peerweb publish`, the command waited for, parses no address.
    from ..content.addressing import Target, parse_cli_address

    parsed = parse_cli_address(text)
    if parsed.target is not Target.SITE:
        raise UsageError(f"{command} takes a site id or a magnet with xs=urn:btpk:")
    return parsed.ident


@click.command()
@click.argument("site")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the .torrent (default: SITE-ID[-v1].torrent here).")
@click.option("--v1", "v1_only", is_flag=True,
              help="A v1-only torrent of the same files, for clients that fail on hybrid "
                   "torrents (aria2 1.36, Transmission 3.00); this node seeds it too.")
@json_option
@data_dir_option
@with_examples("peerweb export SITE-ID", "peerweb export SITE-ID --v1 -o site.torrent")
def export(site: str, output: Path | None, v1_only: bool, out: Output, data_dir: Path) -> None:
    """Write SITE's current version as a .torrent that ordinary clients can seed."""
    site_id = site_id_of(site, "export")
    target = output or Path(f"{site_id[:16]}{'-v1' if v1_only else ''}.torrent")
    client = NodeClient(data_dir, timeout=EXPORT_TIMEOUT)
    with spinner(out, "hashing a v1 torrent" if v1_only else "writing the torrent"):
        result = client.export(site_id, target, v1_only)
    if out.json:
        out.record({"site_id": site_id, **result})
        return
    out.text(f"wrote {result['path']} ({'v1 only' if v1_only else 'hybrid v1+v2'})")
    out.text(f"  magnet: {result['magnet']}")


@click.command("log")
@click.argument("site")
@json_option
@data_dir_option
@with_examples("peerweb log SITE-ID", "peerweb log SITE-ID --json | head -1   # the newest")
def log_(site: str, out: Output, data_dir: Path) -> None:
    """List the versions of SITE this node knows, newest first, with the files each changed."""
    site_id = site_id_of(site, "log")
    entries = NodeClient(data_dir).log(site_id)  # oldest first
    for position, entry in reversed(list(enumerate(entries))):
        if out.json:
            out.record(entry)
            continue
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["seen"]))
        marks = " (current)" if entry["current"] else ""
        out.text(f"v{entry['version']}  {when}  {entry['infohash']}{marks}")
        changed = entry["changed"]
        if changed is None and position == 0:
            out.text("    the first version this node knows")
        elif changed is None:
            out.text("    files changed: not known here (the previous version was not held)")
        else:
            shown = ", ".join(changed[:LOG_FILES_SHOWN])
            more = (f" and {len(changed) - LOG_FILES_SHOWN} more"
                    if len(changed) > LOG_FILES_SHOWN else "")
            out.text(f"    {plural(len(changed), 'file')} changed: {shown}{more}")


@click.command()
@click.argument("site")
@json_option
@data_dir_option
@with_examples("peerweb pin SITE-ID")
def pin(site: str, out: Output, data_dir: Path) -> None:
    """Keep SITE (a site id or magnet) on this node whatever the disk quota."""
    _set_pinned(site, True, out, data_dir)


@click.command()
@click.argument("site")
@json_option
@data_dir_option
@with_examples("peerweb unpin SITE-ID")
def unpin(site: str, out: Output, data_dir: Path) -> None:
    """Let SITE be evicted again when the cache is over its quota."""
    _set_pinned(site, False, out, data_dir)


def _set_pinned(site: str, pinned: bool, out: Output, data_dir: Path) -> None:
    site_id = site_id_of(site, "pin" if pinned else "unpin")
    NodeClient(data_dir).pin(site_id, pinned)
    out.text(f"{'pinned' if pinned else 'unpinned'} {site_id}")
    if out.json:
        out.record({"site_id": site_id, "pinned": pinned})


COMMANDS = (publish, export, log_, pin, unpin)
