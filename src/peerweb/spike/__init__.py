"""Spike handling: what an ordinary web server puts in front of itself so that a flash crowd
is handed to the swarm and to volunteer mirrors.

Owns the hand-off policy (``handoff``, pure), the reverse proxy (``origin``), the verifying
loader's first-party half (``loader``) and its browser scripts (``static/``), middleware for
Python apps (``middleware``), the redirector for sites with no integration, and the folder
watcher that republishes a changed site.

May import: ``peerweb.content``, ``peerweb.errors``, aiohttp. Never libtorrent: the
middleware runs inside other people's apps, and the redirector reaches a node through its
public methods only.
"""
