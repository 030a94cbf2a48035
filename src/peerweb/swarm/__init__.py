"""The swarm engine: the only part of peerweb that imports libtorrent.

Owns the libtorrent session and its settings (``settings``), the alerts turned into awaitable
results (``alerts``, ``rendezvous``): DHT puts, gets and peer lookups (``dht``), torrents
added, removed and rechecked with their metadata, resume data and errors (``torrents``), the
piece reader that streams verified bytes (``reader``, ``held``), held pieces read back from
disk and checked again (``diskpiece``), the session's counters (``stats``), and torrents
built from a folder (``build``). ``engine.Swarm`` puts the parts together; ``handle`` names
the libtorrent calls they make. The reader's decisions are ``peerweb.policy.readplan``.

May import: ``peerweb.content``, ``peerweb.policy``, ``peerweb.config``, ``peerweb.errors``.
"""
