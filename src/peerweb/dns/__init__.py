"""DNS that keeps answering when its servers do not (issue 19, part 2).

  decisions   pure choices with ``now`` passed in: is a cached answer fresh, which stale copy
              may be served (RFC 8767), do unsigned copies from peers agree, per-source rate
              limiting of queries
  dnssec      proofs: an answer's RRset with its RRSIGs and the DNSKEY/DS chain up to a trust
              anchor, in DNS wire format (like RFC 9102's chain), validated with dnspython
  service     ``DnsService``: forwards to upstreams, caches, validates, shares validated
              proofs with other nodes through the DHT, and serves stale when upstreams fail
  server      the UDP listener of ``peerweb dns`` (dnslib parses queries and builds
              replies), which also answers ``*.peer`` names with the gateway's address

May import: ``peerweb.config``, ``peerweb.errors``, the standard library, dnspython and
dnslib. Never libtorrent or aiohttp: the DHT and the peer port come in as a ``Sharing``
(the node wires the swarm and the peer client into it).
"""
