"""Per-host upload caps on one machine, as uplinks cap real hosts.

A private network namespace whose loopback shapes traffic by source address: each capped
127.0.0.x address gets its own HTB class (the kernel's token bucket), and everything else
(127.0.0.1: gateways, browsers, control APIs) passes unshaped. Nodes then run without
libtorrent's own rate limits, which quantise every message, however small, to the next tick's
quota. Needs root and iproute2 (`ip`, `tc`); the namespace is deleted afterwards, so nothing
outside it is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

ENV = "PEERWEB_BENCH_NETNS"
# An uplink's queue: a deep FIFO, as in many home routers. A drop-tail queue of 0.1 s of the
# rate starved new connections behind bulk data (plain HTTP clients reset after 60 s with
# nothing received), and fq_codel is not available here.
QUEUE_PACKETS = 10000


# Internet-sized packets between hosts, loopback-sized ones from a host to itself (a browser
# to its own gateway on 127.0.0.1), as ../shared/BENCH.md describes: with 64 KB segments a
# FIFO holds a handful of packets and the per-packet costs a real node pays vanish. The local
# route is locked to a 1500 MTU (MSS ~1448); 127.0.0.1 to itself looks up a table without
# the lock (MSS ~32 K), moved ahead of the local table.
PACKET_SIZES = [
    ["ip", "link", "set", "dev", "lo", "gso_max_size", "1500"],
    ["ip", "route", "replace", "local", "127.0.0.0/8", "dev", "lo", "table", "local", "proto",
     "kernel", "scope", "host", "src", "127.0.0.1", "mtu", "lock", "1500"],
    ["ip", "route", "add", "local", "127.0.0.0/8", "dev", "lo", "table", "100", "proto",
     "kernel", "scope", "host", "src", "127.0.0.1"],
    ["ip", "rule", "add", "pref", "500", "lookup", "local"],
    ["ip", "rule", "del", "pref", "0"],
    ["ip", "rule", "add", "pref", "100", "from", "127.0.0.1", "to", "127.0.0.1", "lookup", "100"],
]


def available() -> bool:
    """Root and iproute2, unless PEERWEB_BENCH_LIMITS=libtorrent asks for the other way."""
    if os.environ.get("PEERWEB_BENCH_LIMITS") == "libtorrent":
        return False
    return os.geteuid() == 0 and bool(shutil.which("ip")) and bool(shutil.which("tc"))


def inside() -> bool:
    """Whether this process runs in a namespace that ``rerun_inside`` made."""
    return ENV in os.environ


def rerun_inside(caps: dict[str, int], module: str, timeout: float,
                 args: list[str] | None = None) -> int:
    """Run ``python -m module *args`` in a fresh namespace where each address in ``caps`` sends
    at most that many bytes per second; its exit status."""
    name = f"peerweb-bench-{os.getpid()}"
    ns = ["ip", "netns", "exec", name]
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        commands = [["ip", "link", "set", "lo", "up"], *PACKET_SIZES,
                    ["tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb",
                     "default", "1", "r2q", "1000"],
                    ["tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:1", "htb",
                     "rate", "100gbit"]]
        for number, (address, rate) in enumerate(caps.items(), start=16):
            classid = f"1:{number:x}"
            commands += [
                ["tc", "class", "add", "dev", "lo", "parent", "1:", "classid", classid, "htb",
                 "rate", f"{rate * 8}bit", "burst", "64k", "cburst", "64k"],
                ["tc", "qdisc", "add", "dev", "lo", "parent", classid, "pfifo", "limit",
                 str(QUEUE_PACKETS)],
                ["tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio",
                 "1", "u32", "match", "ip", "src", f"{address}/32", "flowid", classid]]
        for command in commands:
            subprocess.run(ns + command, check=True, stderr=subprocess.DEVNULL)
        return subprocess.run([*ns, sys.executable, "-m", module, *(args or [])],
                              env={**os.environ, ENV: name}, timeout=timeout,
                              check=False).returncode
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
