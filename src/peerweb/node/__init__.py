"""A peerweb node: the sites it knows, the snapshots it holds, and the jobs that keep them
fresh. ``Node`` (node.py) is the facade the HTTP faces call; behind it, one part a concept:

  resolver      pointers: accept, refresh through the DHT and holders, push, announce
  publisher     publishing a folder, the DHT put and re-put loop, export, history
  snapshots     torrents opened as snapshots, reuse of unchanged files, reading files
  retention     disk quota, superseded versions, metered pausing, pins
  volunteer     mirroring for origins in need: leases, load reports, asking for help
  stepback      a publisher's step back from a crowd (policy.stepback applied)
  handout       what a mirror hands verifying workers: .torrent files and bundles
  persistence   the writer thread, state.json and resume data
  jobs          the background tasks the node owns, and single-flight jobs
  state         what survives a restart; memcache: small verified files in memory
  inspect       read-only views for the dashboard (titles, peers, piece counts)
  private       private sites: recognised, opened with the keyring, read decrypted

Decisions live in ``peerweb.policy``; this package carries them out.

May import: ``peerweb.swarm``, ``peerweb.content``, ``peerweb.policy``, ``peerweb.names``,
``peerweb.dns``, ``peerweb.private``,
``peerweb.config``, ``peerweb.errors`` and the client half of the peer port
(``peerweb.http.peer_client``).
"""
