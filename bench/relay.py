"""Relays and detours on the network bed (issue 23): blackholed links, a NAT-pair matrix,
relay overhead. Needs root and nftables; run under the bench lock, one part or all::

    flock /tmp/peerweb-bench.lock python bench/relay.py --run 1 --parts links
    flock /tmp/peerweb-bench.lock python bench/relay.py --run 1 --parts matrix,overhead

``links`` (the 12-host bed: public, firewall, cone, symmetric ISPs of 3 hosts): one
after another, ``--links`` times, a visitor on a random host fetches a 1 MiB file paced at
2 MB/s from a random public holder, with relays on the other public hosts; once a quarter
has arrived the direct link between them is blackholed (``NetBed.cut``: every packet
dropped, both ways). The visitor's ``Detours`` must notice (no byte for ``STALL_AFTER``)
and resume through a relay. Reported: cut -> detection and cut -> first byte on the new
path, and the share that completed byte-exact. Every cut is between two hosts in the middle
of the network, never a host's own access link (the "last hop", which no detour avoids).
Baseline in the same run (``baseline``, a separate part: each cut waits out the direct
path's retries): the same cuts without relays, ``--baseline-links`` of them. From the
literature: RON's < 20 s and one-hop source routing's 56% recovered.

``matrix`` (a bed of 13 ISPs of one host: two of each of six kinds, public, firewall,
fullcone, restricted, cone, symmetric, and the relay's): for every ordered pair (dialer
of one kind, target of another ISP of the other kind), a direct connection (plain TCP
connect, else a hole punch brokered by a relay, ``http.punch``), and a connection through
the relay (to a target that holds a reservation there). Reported: the share of pairs with
a direct connection, among pairs where neither NAT randomises ports and in all, and with
relays.

``overhead`` (the 12-host bed): an 8 MiB download, direct and then through a relay (the
direct link cut first), counting bytes sent by every host's interface: wire bytes per
payload byte, and the relayed/direct ratio (a relay sends everything a second time);
one TCP segment per packet (``gso_max_segs 1``), so headers count as on a real wire.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from peerweb.policy.paths import STALL_AFTER
from peerweb.tools.netbed import PUBLIC_RANGE, Host, NetBed

SRC = str(Path(__file__).resolve().parents[1] / "src")
RELAY, SERVE, FAST, ECHO = 9500, 8600, 8601, 7700
MATRIX_KINDS = ("public", "firewall", "fullcone", "restricted", "cone", "symmetric")
RANDOMISING = ("symmetric",)
RESULTS = Path(__file__).resolve().parent / "results" / "relay.json"


def agent(*args: str) -> list[str]:
    return ["env", f"PYTHONPATH={SRC}", sys.executable, "-m", "peerweb.tools.pathagent", *args]


class Lines:
    """A child's stdout, line by line, with timeouts (a thread reads it)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        stream = proc.stdout
        assert stream is not None
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self.lines.put(raw.decode().strip())
        self.lines.put("")

    def next(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return ""

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()


def start(bed: NetBed, host: Host, argv: list[str], stdin: bool = False) -> Lines:
    """A long-running agent in ``host``, once it said it is up."""
    proc = bed.popen(host, argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL)
    lines = Lines(proc)
    said = lines.next(20)
    if not said.startswith(("listening", "reserved")):
        raise RuntimeError(f"{argv[5:7]} on {host.name} did not start: {said!r}")
    return lines


def once(bed: NetBed, host: Host, *args: str, timeout: float = 30) -> dict[str, Any]:
    done = bed.run(host, agent(*args), timeout=timeout, check=False)
    lines = done.stdout.strip().splitlines()
    answer: dict[str, Any] = json.loads(lines[-1]) if lines else {"ok": False,
                                                                  "error": done.stderr[-300:]}
    return answer


def quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p90": None, "max": None}
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 3),
            "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3),
            "max": round(ordered[-1], 3)}


# -- links ---------------------------------------------------------------------------------

def links(args: argparse.Namespace, tmp: Path, rng: random.Random,
          relays: bool = True) -> dict[str, Any]:
    """The blackholed links; ``relays=False`` is the baseline: the same cuts, no detour."""
    data = os.urandom(args.size)
    (tmp / "f").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    runs: list[dict[str, Any]] = []
    with NetBed() as bed:
        public = bed.of_kind("public")
        for h in public:
            start(bed, h, agent("relay", "--host", h.address, "--port", str(RELAY),
                                "--allow", PUBLIC_RANGE))
            start(bed, h, agent("serve", "--host", "0.0.0.0", "--port", str(SERVE), "--file",
                                str(tmp / "f"), "--rate", str(args.rate)))
        getters = {h.name: start(bed, h, agent(
            "getloop", "--mark", str(args.size // 4),
            *(a for r in public if r is not h and relays
              for a in ("--relay", f"{r.address}:{RELAY}"))),
            stdin=True) for h in bed.hosts}
        for i in range(args.links if relays else args.baseline_links):
            holder = rng.choice(public)
            visitor = rng.choice([h for h in bed.hosts if h is not holder])
            getter = getters[visitor.name]
            getter.send(f"http://{holder.address}:{SERVE}/file")
            mark = getter.next(20)
            cut_at = time.monotonic()
            bed.cut(visitor, holder)
            try:
                answer = json.loads(getter.next(60) or "{}")
            finally:
                bed.mend(visitor, holder)
            event = (answer.get("events") or [{}])[0]
            detected, recovered = event.get("detected"), event.get("recovered")
            run = {
                "i": i, "visitor": visitor.name, "kind": visitor.kind, "holder": holder.name,
                "marked": bool(mark), "ok": answer.get("sha256") == digest,
                "via": event.get("via"), "reason": event.get("reason"),
                "detect_s": round(detected - cut_at, 3) if detected else None,
                "recover_s": round(recovered - cut_at, 3) if recovered else None,
                "total_s": round(answer["ended"] - answer["began"], 3)
                if "ended" in answer else None,
            }
            runs.append(run)
            if args.verbose:
                print(json.dumps(run), flush=True)
    ok = [r for r in runs if r["ok"]]
    return {
        "links": len(runs), "file_bytes": args.size, "rate": args.rate,
        "stall_after_s": STALL_AFTER,
        "recovered": len(ok), "recovered_share": round(len(ok) / max(1, len(runs)), 3),
        "through_relay": sum(1 for r in ok if r["via"]),
        "detect_s": quantiles([r["detect_s"] for r in runs if r["detect_s"] is not None]),
        "recover_s": quantiles([r["recover_s"] for r in runs if r["recover_s"] is not None]),
        "by_kind": {k: sum(1 for r in ok if r["kind"] == k) for k in bed.kinds},
        "failures": [r for r in runs if not r["ok"]],
        "runs": runs if args.keep_runs else None,
    }


# -- matrix --------------------------------------------------------------------------------

def matrix(args: argparse.Namespace) -> dict[str, Any]:
    kinds = MATRIX_KINDS
    # The relay on a 13th ISP of its own: a restricted NAT lets in whoever it has sent to,
    # and every host talks to the relay, so a relay among the pairs would pass for them.
    with NetBed(isps=(*kinds, *kinds, "public"), hosts_per_isp=1) as bed:
        relay_host = bed.hosts[-1]
        relay = f"{relay_host.address}:{RELAY}"
        start(bed, relay_host, agent("relay", "--host", relay_host.address, "--port",
                                     str(RELAY), "--allow", PUBLIC_RANGE, "--per-peer", "16"))
        for h in bed.hosts[:-1]:
            start(bed, h, agent("echo", "--host", "0.0.0.0", "--port", str(ECHO)))
            if h.kind != "public":
                start(bed, h, agent("reserve", "--relay", relay, "--local", h.address,
                                    "--ports", str(ECHO)))
        # Six pairs at a time, no host in two of them: round d pairs dialer i with target
        # (i + d) mod 6 (the timeouts of failed dials and punches overlap).
        cells: list[dict[str, Any]] = []
        for d in range(len(kinds)):
            pairs = [(i, (i + d) % len(kinds)) for i in range(len(kinds))]
            with ThreadPoolExecutor(len(pairs)) as pool:
                done = list(pool.map(lambda ij: pair(bed, ij[0], ij[1], relay), pairs))
            cells += done
            if args.verbose:
                for cell in done:
                    print(json.dumps(cell), flush=True)
        cells.sort(key=lambda c: (kinds.index(c["dialer"]), kinds.index(c["target"])))
    steady = [c for c in cells if c["dialer"] not in RANDOMISING
              and c["target"] not in RANDOMISING]
    return {
        "kinds": list(kinds), "pairs": len(cells),
        "direct_share_no_random_ports": round(
            sum(c["direct"] for c in steady) / max(1, len(steady)), 3),
        "pairs_no_random_ports": len(steady),
        "direct_share_all": round(sum(c["direct"] for c in cells) / len(cells), 3),
        "plain_share_all": round(sum(c["plain"] for c in cells) / len(cells), 3),
        "relayed_share_all": round(sum(c["relayed"] for c in cells) / len(cells), 3),
        "connected_share_all": round(sum(c["direct"] or c["relayed"] for c in cells)
                                     / len(cells), 3),
        "table": {f"{c['dialer']}->{c['target']}": "plain" if c["plain"] else
                  "punched" if c["punched"] else "relay" if c["relayed"] else "none"
                  for c in cells},
        "cells": cells,
    }


def pair(bed: NetBed, i: int, j: int, relay: str) -> dict[str, Any]:
    """One cell: host i (first copy of kind i) connecting to host 6 + j (second of j)."""
    n = len(MATRIX_KINDS)
    a, b = bed.hosts[i], bed.hosts[n + j]
    target = f"{b.external}:{ECHO}"
    plain = once(bed, a, "dial", target, "--timeout", "1.5")
    punched: dict[str, Any] | None = None
    if not plain["ok"]:
        punched = punch_pair(bed, a, b, relay, f"m{i}-{j}-{os.getpid()}")
    relayed = once(bed, a, "dial", target, "--relay", relay, "--timeout", "3")
    cell = {"dialer": a.kind, "target": b.kind, "plain": plain["ok"],
            "punched": bool(punched and punched["ok"]),
            "punch_ms": punched.get("ms") if punched else None,
            "relayed": relayed["ok"], "relay_ms": relayed.get("ms")}
    cell["direct"] = cell["plain"] or cell["punched"]
    return cell


def punch_pair(bed: NetBed, a: Host, b: Host, relay: str, token: str) -> dict[str, Any]:
    """Both ends of a punch at once; ok only if each heard the other."""
    procs = [subprocess.Popen(bed.argv(h, agent("punch", "--relay", relay, "--token", token,
                                                "--name", h.name, "--expect", other.name)),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
             for h, other in ((a, b), (b, a))]
    answers = []
    for proc in procs:
        out, _ = proc.communicate(timeout=30)
        lines = out.decode().strip().splitlines()
        answers.append(json.loads(lines[-1]) if lines else {"ok": False})
    return {"ok": all(x["ok"] for x in answers), "ms": answers[0].get("ms"),
            "errors": [x.get("error") for x in answers]}


# -- overhead ------------------------------------------------------------------------------

def sent_bytes(bed: NetBed) -> int:
    total = 0
    for h in bed.hosts:
        out = subprocess.run(["ip", "-j", "-s", "-n", h.ns, "link", "show", "dev", "eth0"],
                             capture_output=True, text=True, check=True).stdout
        total += int(json.loads(out)[0]["stats64"]["tx"]["bytes"])
    return total


def overhead(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    size = 8 * 1024 * 1024
    (tmp / "big").write_bytes(os.urandom(size))
    with NetBed() as bed:
        for h in bed.hosts:
            # One TCP segment per packet handed to the interface (no GSO super-packets, whose
            # headers the counters would count once per 64 KB), as on a real wire.
            subprocess.run(["ip", "-n", h.ns, "link", "set", "dev", "eth0", "gso_max_segs",
                            "1"], check=True, capture_output=True)
        holder, relay_host = bed.hosts[0], bed.hosts[1]
        visitor = bed.of_kind("cone")[0]
        start(bed, relay_host, agent("relay", "--host", relay_host.address, "--port",
                                     str(RELAY), "--allow", PUBLIC_RANGE))
        start(bed, holder, agent("serve", "--host", "0.0.0.0", "--port", str(FAST), "--file",
                                 str(tmp / "big")))
        url = f"http://{holder.address}:{FAST}/file"
        relay = f"{relay_host.address}:{RELAY}"
        out: dict[str, Any] = {"payload_bytes": size}
        for name in ("direct", "relayed"):
            if name == "relayed":
                bed.cut(visitor, holder)
            before = sent_bytes(bed)
            answer = once(bed, visitor, "get", url, "--relay", relay, timeout=120)
            wire = sent_bytes(bed) - before
            out[name] = {"wire_bytes": wire, "per_payload_byte": round(wire / size, 4),
                         "paths": answer.get("paths"), "seconds": answer.get("seconds")}
        bed.mend(visitor, holder)
    out["relayed_over_direct"] = round(out["relayed"]["wire_bytes"]
                                       / out["direct"]["wire_bytes"], 4)
    return out


# -- runs and ranges -----------------------------------------------------------------------

def ranges(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def span(path: tuple[str, ...]) -> list[float] | None:
        values = []
        for run in runs:
            v: Any = run
            for key in path:
                v = v.get(key) if isinstance(v, dict) else None
            if isinstance(v, (int, float)):
                values.append(float(v))
        return [min(values), max(values)] if values else None

    return {"runs": len(runs), **{".".join(p): span(p) for p in (
        ("links", "recovered_share"), ("links", "detect_s", "median"),
        ("links", "recover_s", "median"), ("links", "recover_s", "p90"),
        ("links", "recover_s", "max"), ("baseline", "recovered_share"),
        ("matrix", "direct_share_no_random_ports"), ("matrix", "direct_share_all"),
        ("matrix", "connected_share_all"), ("matrix", "relayed_share_all"),
        ("overhead", "relayed_over_direct"), ("overhead", "direct", "per_payload_byte"),
        ("overhead", "relayed", "per_payload_byte"))}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=int, default=1, help="which run (1-based) to record")
    parser.add_argument("--parts", default="links,matrix,overhead")
    parser.add_argument("--links", type=int, default=100)
    parser.add_argument("--baseline-links", type=int, default=10)
    parser.add_argument("--size", type=int, default=1024 * 1024)
    parser.add_argument("--rate", type=int, default=2 * 1024 * 1024)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--keep-runs", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else args.run
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="peerweb-relay-bench-"))
    out = Path(args.out)
    recorded: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    all_runs: list[dict[str, Any]] = recorded.get("runs") or []
    while len(all_runs) < args.run:
        all_runs.append({})
    this = all_runs[args.run - 1]
    for part in args.parts.split(","):
        began = time.monotonic()
        if part == "links":
            this["links"] = links(args, tmp, rng)
        elif part == "baseline":
            this["baseline"] = links(args, tmp, rng, relays=False)
        elif part == "matrix":
            this["matrix"] = matrix(args)
        elif part == "overhead":
            this["overhead"] = overhead(args, tmp)
        else:
            raise SystemExit(f"unknown part {part!r}")
        this[part]["seconds"] = round(time.monotonic() - began, 1)
        this[part]["seed"] = seed
        this[part]["load"] = os.getloadavg()[0]
        summary = {k: v for k, v in this[part].items() if k not in ("runs", "cells")}
        print(json.dumps({part: summary}, indent=1), flush=True)
    recorded = {"bench": "relay", "targets": {
        "links.recover_s.median": "<= 5 s (RON: < 20 s)",
        "links.recovered_share": ">= 0.95 (one-hop source routing: 0.56)",
        "matrix.direct_share_no_random_ports": ">= 0.90",
        "matrix.connected_share_all": "1.0"},
        "ranges": ranges([r for r in all_runs if r]), "runs": all_runs}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(recorded, indent=1) + "\n")
    print(json.dumps(recorded["ranges"], indent=1))


if __name__ == "__main__":
    main()
