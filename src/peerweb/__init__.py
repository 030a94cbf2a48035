"""peerweb: websites served by their visitors, over BitTorrent.

The tree, from the bottom up (each subpackage's ``__init__`` says what it owns and what it
may import):

  errors, config      the error tree, and the one typed configuration object
  fileio, aio         atomic file replacement; running the event loop
  content/            what a site is: bencode, keys, signed pointers, paths, ranges (pure)
  policy/             decisions of the node and swarm, ``now`` passed in (pure)
  names/              names for sites: petnames, records of zones under a key, resolution
  private/            private sites: chunk format, encrypted manifest, read capabilities (pure)
  swarm/              the libtorrent session, its alerts, torrents, the piece reader
  node/               the sites a node knows and the jobs that keep them fresh; its state
  http/               the HTTP faces: gateway, control API, peer port; the daemon
  spike/              the origin's hand-off to mirrors, the verifying loader, middleware
  tools/              a loopback test network, a tracker
  cli/                the ``peerweb`` command line
  sim/                peerweb's own protocols simulated at scale (numpy; never libtorrent)

Arrows point down only: ``content`` and ``policy`` import nothing of peerweb's but the
errors (and ``fileio``); only ``swarm`` imports libtorrent.
"""

__version__ = "0.1.0"
