"""``peerweb extension``: the browser extension that finds a failing site's pages in peers'
caches (no running node needed to locate it)."""

from __future__ import annotations

import click

from .. import extension as extension_files
from .options import json_option, with_examples
from .output import Output


@click.group()
def extension() -> None:
    """The browser extension: when a site fails or stalls, it shows the copy peers hold.

    \b
    Set it up once:
      1. peerweb extension path   the folder to load unpacked in chrome://extensions
      2. peerweb extension pair   a one-time code to paste in the extension's popup
    """


@extension.command("path")
@json_option
@with_examples("peerweb extension path", "chromium --load-extension=\"$(peerweb extension path)\"")
def extension_path(out: Output) -> None:
    """Print the folder holding the extension, to load unpacked.

    In Chromium: chrome://extensions, turn on "Developer mode", "Load unpacked", and choose
    this folder. Then pair it with your node (`peerweb extension pair`).
    """
    folder = extension_files.folder()
    out.text(str(folder))
    if out.json:
        out.record({"path": str(folder)})


COMMANDS = (extension,)
