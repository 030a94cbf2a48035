"""peerweb: websites served by their visitors, over BitTorrent.

Modules, from the bottom up:
  bencode, identity, pointer   signed BEP 44/46 version pointers and site keys (pure)
  sitemap, httpranges, addressing   what a request names and which bytes it wants (pure)
  bundle                       a folder turned into a hybrid v1+v2 torrent
  engine                       the libtorrent session, driven from asyncio
  node, state                  the sites a node knows, and what survives a restart
  gateway, api, daemon         the HTTP faces: browsers and the CLI
  testnet, cli                 a loopback network, and the command line
"""

__version__ = "0.1.0"
