"""``peerweb extension ...``: the browser extension that rescues pages of failing sites
from peers' web caches (issue 18; see docs/webcache.md).

The ``extension`` group lives here; ``pair`` asks the running node for a pairing code.
"""

from __future__ import annotations

from pathlib import Path

import click

from .. import extension as extension_files
from ..http.control_client import NodeClient
from .options import data_dir_option, json_option, with_examples
from .output import Output


@click.group("extension")
@with_examples("peerweb node --web-cache 200MB   # then, in another terminal:",
               "peerweb extension path   # load this folder unpacked in chrome://extensions",
               "peerweb extension pair   # paste the code in the extension's popup")
def extension_group() -> None:
    """The browser extension that finds failing pages in peers' web caches.

    The node it pairs with needs a web cache: `peerweb node --web-cache 200MB`.
    """


@extension_group.command("pair")
@data_dir_option
@json_option
@with_examples("peerweb extension pair", "peerweb extension pair --json | jq -r .code")
def pair(data_dir: Path, out: Output) -> None:
    """Print a one-time code that pairs the browser extension with the running node.

    Type it into the extension's options page within 10 minutes. Only a paired extension
    can ask the node's web cache; web pages never can.
    """
    answer = NodeClient(data_dir).extension_pair()
    if out.json:
        out.record(answer)
        return
    minutes = max(1, int(answer["expires_in"]) // 60)
    out.text(f"pairing code: {answer['code']}")
    out.text(f"  enter it in the extension's options within {minutes} minutes; "
             "it works once.")


@extension_group.command("path")
@json_option
@with_examples("peerweb extension path",
               'chromium --load-extension="$(peerweb extension path)"')
def path(out: Output) -> None:
    """Print the folder holding the extension, to load unpacked (no node needed).

    In Chromium: chrome://extensions, turn on "Developer mode", "Load unpacked", and choose
    this folder. Then pair it with your node: `peerweb extension pair`.
    """
    folder = extension_files.folder()
    out.text(str(folder))
    if out.json:
        out.record({"path": str(folder)})


COMMANDS = (extension_group,)
