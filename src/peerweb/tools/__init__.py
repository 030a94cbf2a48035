"""Tools around a node: a private network of nodes on loopback (``testnet``) for demos,
tests and benchmarks, and a small BitTorrent HTTP tracker (``tracker``).

May import anything in peerweb.
"""
