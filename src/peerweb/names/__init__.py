"""Names for sites: what people can say instead of a 52-character key.

  petnames      the user's own address book (``blog`` -> a site id), local and instant
  records       signed, versioned records of a zone (a site key), one BEP 44 item a label
                under a salt derived from the label (pure)
  resolution    the walk along a chain of zones (``blog.bob.alice``) and the record cache,
                ``now`` passed in (pure)
  zone          the records of the user's own zones and the versions they were signed with
  service       ``NameService``: the node's adapter between these, the DHT and the clock

There is no global registry: every name starts in the user's own address book (see
docs/names.md for why).

May import: ``peerweb.content``, ``peerweb.config``, ``peerweb.errors``, the standard library.
Never libtorrent or aiohttp: the DHT comes in as an ``ItemStore`` (the swarm satisfies it),
and the CLI uses the address book without a node.
"""
