"""A peerweb node: the sites it knows, the snapshots it holds, and the jobs that keep them
fresh (pointer refreshes, re-puts, announces, pushes, retention, volunteering).

``node.Node`` is the facade the HTTP faces call, composed of one part per concept (listed in
``node.py``'s docstring) that apply the decisions of ``peerweb.policy``; ``state`` is what
survives a restart; ``memcache`` keeps small verified files in memory.

May import: ``peerweb.swarm``, ``peerweb.content``, ``peerweb.policy``, ``peerweb.config``,
``peerweb.errors`` and the client half of the peer port (``peerweb.http.peer_client``).
"""
