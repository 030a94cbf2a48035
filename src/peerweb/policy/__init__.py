"""Decisions of the node and the swarm, without I/O: each takes values (and ``now``, in
seconds, where time matters) and returns values or actions for an adapter to carry out.

Owns how news of a version spreads and how often holders poll (``propagation``), when a
publisher steps back from a crowd (``stepback``), which pieces a reader asks for and when
its wait has stalled (``readplan``).

May import: ``peerweb.content``, ``peerweb.errors`` and the standard library. Never
libtorrent, aiohttp or asyncio; the simulator and the node run the same code.
"""
