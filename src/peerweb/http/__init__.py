"""The node's HTTP faces: the gateway browsers visit (and its fast path for small files),
the control API the CLI calls (and its client), the peer port other nodes push pointers to
(server and client halves), and ``daemon``, which runs a node with all of them.

May import: ``peerweb.node``, ``peerweb.names``, ``peerweb.content``, ``peerweb.policy``,
``peerweb.config``, ``peerweb.errors``, dnspython (the peer port's RRset path).
``control_client`` imports nothing but the standard
library and the config, so the CLI stays quick to start; ``peer_client`` needs only
aiohttp's client.
"""
