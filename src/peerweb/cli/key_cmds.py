"""``peerweb key``: the publisher keys in the data dir (no running node needed)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..content.identity import KeyStore
from ..errors import UsageError
from .options import data_dir_option, json_option, with_examples
from .output import Output


@click.group()
@with_examples("peerweb key new blog", "peerweb key list --json",
               "peerweb key export blog -o blog.pem", "peerweb key import blog blog.pem",
               "peerweb key rm old-draft")
def key() -> None:
    """Manage publisher keys (one per site).

    A site's address is its public key, and only the private key can sign new versions:
    if you lose the key, the site can never be updated again. Keep a backup made with
    `peerweb key export NAME -o FILE` (encrypted with a passphrase) somewhere safe.
    """


def _store(data_dir: Path) -> KeyStore:
    return KeyStore(data_dir / "keys")


@key.command("new")
@click.argument("name")
@json_option
@data_dir_option
@with_examples("peerweb key new blog")
def key_new(name: str, out: Output, data_dir: Path) -> None:
    """Create a key NAME and print its site id."""
    created = _store(data_dir).create(name)
    out.text(f"{created.name}\t{created.site_id}")
    if out.json:
        out.record({"name": created.name, "site_id": created.site_id})


@key.command("list")
@json_option
@data_dir_option
@with_examples("peerweb key list", "peerweb key list --json")
def key_list(out: Output, data_dir: Path) -> None:
    """List keys and the site ids they sign for, one a line."""
    store = _store(data_dir)
    names = store.names()
    if not names:
        out.note("no keys yet; `peerweb key new NAME` or `peerweb publish DIR` makes one")
    for name in names:
        site_id = store.get(name).site_id
        out.text(f"{name}\t{site_id}")
        if out.json:
            out.record({"name": name, "site_id": site_id})


@key.command("rm")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Remove without asking first.")
@json_option
@data_dir_option
@with_examples("peerweb key rm old-draft", "peerweb key rm old-draft --yes")
def key_rm(name: str, yes: bool, out: Output, data_dir: Path) -> None:
    """Delete key NAME: its site can never be updated again (unless you kept an export)."""
    store = _store(data_dir)
    site_id = store.get(name).site_id  # NotFound before any question
    warning = (f"warning: key {name!r} signs site {site_id}. Without it that site can never "
               "be updated again; only an export made with `peerweb key export` brings it "
               "back.")
    if yes:
        out.note(warning)
    else:
        click.echo(warning, err=True)
        click.confirm(f"Remove key {name!r}?", default=False, abort=True, err=True)
    store.remove(name)
    out.text(f"removed key {name} ({site_id})")
    if out.json:
        out.record({"name": name, "site_id": site_id, "removed": True})


@key.command("export")
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write (refuses to overwrite).")
@click.option("--passphrase", envvar="PEERWEB_PASSPHRASE", prompt=True, hide_input=True,
              confirmation_prompt=True,
              help="Passphrase to encrypt with (asked for twice when not given; or "
                   "PEERWEB_PASSPHRASE).")
@json_option
@data_dir_option
@with_examples("peerweb key export blog -o blog.pem")
def key_export(name: str, output: Path, passphrase: str, out: Output, data_dir: Path) -> None:
    """Write key NAME to a passphrase-encrypted file, for a backup or another machine."""
    store = _store(data_dir)
    pem = store.export(name, passphrase)
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{output} exists; choose another file") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    out.text(f"wrote {output}; without its passphrase it is useless, so keep both safe")
    if out.json:
        out.record({"name": name, "site_id": store.get(name).site_id, "path": str(output)})


@key.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--passphrase", envvar="PEERWEB_PASSPHRASE", prompt=True, hide_input=True,
              help="Passphrase of the export (asked for when not given; or "
                   "PEERWEB_PASSPHRASE).")
@json_option
@data_dir_option
@with_examples("peerweb key import blog blog.pem")
def key_import(name: str, file: Path, passphrase: str, out: Output, data_dir: Path) -> None:
    """Store the key exported in FILE under NAME; print its site id."""
    imported = _store(data_dir).import_(name, file.read_bytes(), passphrase)
    out.text(f"{imported.name}\t{imported.site_id}")
    if out.json:
        out.record({"name": imported.name, "site_id": imported.site_id})


COMMANDS = (key,)
