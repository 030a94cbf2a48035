"""Where a node keeps its data, and the files in it through which the CLI finds the node.

Apart from ``peerweb.config`` so that a command talking to a running node (``peerweb
publish``) does not import the node's whole configuration: its dataclasses took ~10 ms of
the command's ~80 ms of imports.
"""

from __future__ import annotations

import os
from pathlib import Path

# Files in the data dir through which the CLI finds its running node and proves it is the user.
TOKEN_FILE = "api-token"
NODE_FILE = "node.json"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local/share")
    return Path(base) / "peerweb"
