"""Decisions of the node and the swarm, without I/O: each takes values (and ``now``, in
seconds, where time matters) and returns values or actions for an adapter to carry out.

  propagation   how news of a version spreads (holders key, push fan-out, poll intervals)
  stepback      when a publisher lowers its upload to a crowd that holds every piece twice
  retention     what is protected, what the quota evicts, superseded versions, idle pausing
  versions      whether a pointer replaces another; the next version number
  volunteers    which volunteers to ask for help, and in which order to use them
  cooldowns     when a pointer is fresh, when a site is due a poll, the DHT lookup backoff
  readplan      which pieces a read needs, their deadlines, disk runs, the stall detector
  reachability  whether the node is reachable from outside, and its NAT's behaviour
  relaying      what a relay forwards, for whom, for how long; reservations of NATed nodes
  paths         the failure detector of a path in use, and which relay to detour through

May import: ``peerweb.content``, ``peerweb.errors`` and the standard library. Never
libtorrent, aiohttp or asyncio; the node runs this code, and a simulator can run the same.
"""
