"""Tools around a node: a private network of nodes on loopback (``testnet``) for demos,
tests and benchmarks, a small BitTorrent HTTP tracker (``tracker``), and a bed of hosts behind
ISPs and NATs in network namespaces (``netbed``, root only).

May import anything in peerweb.
"""
