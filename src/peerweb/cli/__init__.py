"""The ``peerweb`` command line: click commands that talk to a running node through the
control API, or start one.

May import: ``peerweb.http.control_client``, ``peerweb.content``, ``peerweb.config``,
``peerweb.errors``, ``peerweb.names`` (the address book) and ``peerweb.private`` (read
capabilities and the keyring) at import time; anything that
pulls in libtorrent or aiohttp's server (the node, the origin, the tracker) only inside the
command that needs it.
"""

from .main import main

__all__ = ["main"]
