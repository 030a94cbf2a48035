"""``peerweb backup`` and ``peerweb restore``: the user's folders kept as private sites by
volunteer or friend nodes, each copy proved (``peerweb.node.backups``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..config import parse_hostport
from ..errors import UsageError
from ..http.control_client import NodeClient
from ..private import capability
from ..private.keyring import Keyring
from .options import data_dir_option, json_option, with_examples
from .output import Output, human, plural, spinner

# A backup publishes (hashes and encrypts) the folder and waits for the DHT put; a restore
# fetches and decrypts it all.
BACKUP_TIMEOUT = 300.0
RESTORE_TIMEOUT = 1800.0


@click.command()
@click.argument("folder", metavar="DIR|status")
@click.option("--replicas", default=3, show_default=True, type=click.IntRange(1, 16),
              help="How many other nodes should hold a proved copy.")
@click.option("--friend", "friends", multiple=True, metavar="HOST:PORT",
              help="A friend's node to ask first, by its peer port (repeatable); it must "
                   "run as a volunteer (`peerweb volunteer`) to accept.")
@json_option
@data_dir_option
@with_examples("peerweb backup ~/Documents --replicas 3",
               "peerweb backup ./photos --friend 192.0.2.7:8471",
               "peerweb backup status",
               "peerweb backup status --json | jq .complete")
def backup(folder: str, replicas: int, friends: tuple[str, ...], out: Output,
           data_dir: Path) -> None:
    """Back DIR up: publish it as a private site (the next version if it was backed up
    before) and ask volunteer or friend nodes to hold it. Keep the capability it prints:
    `peerweb restore` needs it on a new machine.

    `peerweb backup status` shows each backup's copies: how many are complete (proved by
    a challenge of random pieces), on which nodes, how fresh. The node asks others when
    copies fall below the target. (A folder named status: `peerweb backup ./status`.)"""
    client = NodeClient(data_dir, timeout=BACKUP_TIMEOUT)
    if folder == "status":
        _status(client.backups(), out)
        return
    path = Path(folder)
    if not path.is_dir():
        raise UsageError(f"{folder} is not a folder")
    endpoints = tuple(parse_hostport(f) for f in friends)
    with spinner(out, "encrypting and publishing"):
        result = client.backup(path, replicas, endpoints)
    if out.json:
        out.record(result)
        return
    out.text(f"backed up {plural(result['files'], 'file')} ({human(result['size'])}) as "
             f"version {result['version']}")
    out.text(f"  site id:    {result['site_id']}")
    out.text(f"  capability: {result['capability']}")
    asked = result["asked"]
    out.text(f"  asked {plural(len(asked), 'node')} to hold it"
             + (f": {', '.join(asked)}" if asked else " (none found yet; the node keeps "
                                                     "looking)"))
    out.note("keep the capability somewhere safe (not only on this machine): it restores "
             "the folder anywhere, and anyone who has it can read the folder")
    out.note("`peerweb backup status` shows the copies once their holders prove them")


def _status(backups: list[dict[str, Any]], out: Output) -> None:
    if out.json:
        for entry in backups:
            out.record(entry)
        return
    if not backups:
        out.text("no backups made on this node (`peerweb backup DIR`)")
    for entry in backups:
        out.text(f"{entry['folder']}  v{entry['version']}  "
                 f"{entry['complete']}/{entry['replicas']} complete copies")
        out.text(f"  site id: {entry['site_id']}")
        for copy in entry["copies"]:
            ago = copy["proved_ago"]
            when = f"proved {ago:.0f} s ago" if ago is not None else "never proved"
            behind = (f", {copy['versions_behind']} version(s) behind"
                      if copy["versions_behind"] and copy["version"] else "")
            why = f" ({copy['reason']})" if copy["reason"] else ""
            out.text(f"  {copy['holder']:<22} {copy['state']:<9} {when}{behind}{why}")
        if entry["missing"]:
            out.note(f"  {entry['missing']} more wanted: the node is asking others")


@click.command()
@click.argument("cap", metavar="CAPABILITY")
@click.argument("output", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--version", "version", type=click.IntRange(min=1), default=None,
              help="Restore this older version (while some holder keeps it) instead of the "
                   "newest.")
@json_option
@data_dir_option
@with_examples("peerweb restore 'peerweb://SITE-ID#k=...' ~/Documents-restored",
               "peerweb restore 'peerweb://SITE-ID#k=...' ./old --version 2")
def restore(cap: str, output: Path, version: int | None, out: Output, data_dir: Path) -> None:
    """Restore a backup into DIR (new or empty) from whoever holds it: the newest version,
    byte for byte, or --version N. Needs the backup's read CAPABILITY and a running node
    (a fresh one will do)."""
    parsed = capability.parse(cap)
    Keyring(data_dir).put(parsed.site_id, parsed.read_key)
    client = NodeClient(data_dir, timeout=RESTORE_TIMEOUT)
    with spinner(out, "fetching and decrypting"):
        result = client.restore(parsed.site_id, output, version)
    if out.json:
        out.record(result)
        return
    out.text(f"restored {plural(result['files'], 'file')} ({human(result['bytes'])}) of "
             f"version {result['version']} into {result['path']}")


COMMANDS = (backup, restore)
