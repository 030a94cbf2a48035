"""The shared cache of public web pages (issue 18): copies of pages of unaware sites, kept
by the nodes whose users visited them and handed to peers when the origin fails.

Pure decisions (values in, values out, ``now`` passed in):

  settings     ``WebCacheSettings``, the one typed configuration of the cache
  urls         URL normalisation, the DHT key of a URL, the view origin's host label
  cacheable    whether a shared cache may keep a response (RFC 9111)
  copies       a page version: its manifest, canonical bytes and digest
  page         the sub-resources an HTML page references, SRI checks, the banner
  trust        which copy to believe among holders' answers, and holder reputation
  pairing      one-time pairing codes and the extension's bearer tokens
  access       the extension API's CORS and Origin rules

I/O (thin adapters):

  store        the size-bounded on-disk store (LRU within ``--web-cache SIZE``)
  fetcher      the node fetching a page itself, without the browser's cookies
  peers        the client half of the peer protocol (holders' copies and bodies)
  service      ``WebCache``, the facade the node, the gateway and the peer port call

May import: ``peerweb.content``, ``peerweb.config``, ``peerweb.errors``, ``peerweb.fileio``,
``peerweb.policy``; the swarm only through the ``Swarm`` object handed in (announce and
find_peers). Never ``peerweb.http`` or ``peerweb.node`` (they import this package).
"""
