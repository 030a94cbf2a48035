"""The swarm engine: the only part of peerweb that imports libtorrent.

Owns the libtorrent session and its settings, the alerts turned into awaitable results
(DHT puts and gets, metadata, resume data, verified pieces), torrents added, removed and
rechecked, the piece reader that streams verified bytes, held pieces read back from disk
and checked again, and torrents built from a folder (``build``).

May import: ``peerweb.content``, ``peerweb.policy``, ``peerweb.config``, ``peerweb.errors``.
"""
