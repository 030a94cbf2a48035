"""The browser extension (Manifest V3; Chromium, and Firefox from the same files), shipped as
static files that a browser loads unpacked from this folder (``peerweb extension path``).

decide.js holds its decisions (pure, tested in Chromium by tests/browser); background.js, the
service worker, turns browser events into them and talks to the node's ``/_ext/`` API on the
gateway; popup.html pairs and sets it up; rescue.html offers a failed page's copy from peers.
This Python module only locates the folder and imports nothing of peerweb.
"""

from __future__ import annotations

from pathlib import Path

FILES = ("manifest.json", "decide.js", "background.js", "popup.html", "popup.js",
         "rescue.html", "rescue.js", "ext.css")
"""What a browser needs of this folder (the package data)."""


def folder() -> Path:
    """The folder to load unpacked (chrome://extensions, "Load unpacked")."""
    return Path(__file__).resolve().parent
