"""The swarm engine: the only part of peerweb that imports libtorrent.

  engine        ``Swarm``, the facade the node uses
  settings      the session's settings (private DHT on loopback, choking of local peers)
  alerts        libtorrent's alerts through a socket the event loop watches
  rendezvous    one keyed table of futures that alerts settle
  handle        the Protocols of the libtorrent handle and session methods in use
  dht           signed pointers put and got (BEP 44/46), announces, peer lookups
  items         salted BEP 44 items put and got (names under a key)
  torrents      torrents added, removed, rechecked; metadata, resume data, .torrent files
  reader        the piece reader: verified bytes streamed as pieces arrive
  held, diskpiece   which pieces are held; held pieces read from disk and checked again
  stats         session counters
  build         a folder copied and hashed into a hybrid v1+v2 torrent

May import: ``peerweb.content``, ``peerweb.policy``, ``peerweb.config``, ``peerweb.errors``.
"""
