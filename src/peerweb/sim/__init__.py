"""A discrete-event simulator of peerweb's own protocols at 10^4-10^5 nodes (issue 21).

  core        the event loop: a heap of timed callbacks, simulated seconds, seeded
  geography   the latency model: a synthetic geography giving per-pair round-trip times
  kademlia    the Mainline DHT as libtorrent runs it: routing tables, iterative lookups,
              BEP 5 peer storage, BEP 44 items, reply rate limits, churn
  scenarios   peerweb on top: the update flood to holders, volunteer discovery (one key or
              sharded), each driven by the node's own decision code

The model, what it leaves out and the figures are in docs/simulator.md.

May import: the standard library, numpy, ``peerweb.policy`` and ``peerweb.spike.handoff``.
Never libtorrent or asyncio: time here is simulated, and nothing touches a socket.
"""
