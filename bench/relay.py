"""Blackholed links on the network bed: how fast a transfer detects the failure and
recovers through a relay (first version: a few links, not 100; no NAT-pair matrix yet).

Run as root under the bench lock: ``flock /tmp/peerweb-bench.lock python bench/relay.py
--links 10``. For each link, a visitor on a random host fetches a paced file from a random
public holder with relays on the other public hosts; once a quarter has arrived the direct
link is cut (``NetBed.cut``); the visitor's ``Detours`` detects the stall and resumes
through a relay. Reports detection (cut -> detector fired) and recovery (cut -> bytes flow
again) times, the share recovered byte-exact, and relay overhead (bytes relayed / payload).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peerweb.tools.netbed import PUBLIC_RANGE, NetBed

SRC = str(Path(__file__).resolve().parents[1] / "src")
RELAY, SERVE = 9500, 8600


def agent(*args: str) -> list[str]:
    return ["env", f"PYTHONPATH={SRC}", sys.executable, "-m", "peerweb.tools.pathagent", *args]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--links", type=int, default=10)
    parser.add_argument("--size", type=int, default=4 * 1024 * 1024)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="bench/results/relay.json")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="peerweb-relay-bench-"))
    data = os.urandom(args.size)
    (tmp / "f").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    runs = []
    with NetBed(isps=("public", "public", "cone", "symmetric"), hosts_per_isp=3) as bed:
        public = [h for h in bed.hosts if h.kind == "public"]
        for h in public:
            for argv in (agent("relay", "--host", h.address, "--port", str(RELAY), "--allow",
                               PUBLIC_RANGE),
                         agent("serve", "--host", "0.0.0.0", "--port", str(SERVE), "--file",
                               str(tmp / "f"), "--rate", str(2 * 1024 * 1024))):
                bed.popen(h, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)  # a bench, not a test: servers start in well under this
        for i in range(args.links):
            holder = rng.choice(public)
            visitor = rng.choice([h for h in bed.hosts if h.isp != holder.isp])
            relays = [h for h in public if h not in (holder, visitor) and h.isp != visitor.isp
                      or h.isp == holder.isp and h is not holder]
            progress = tmp / f"p{i}"
            relay_args = [a for r in relays for a in ("--relay", f"{r.address}:{RELAY}")]
            proc = bed.popen(visitor, agent("get", f"http://{holder.address}:{SERVE}/file",
                                            "--progress", str(progress), *relay_args),
                             stdout=subprocess.PIPE)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not (
                    progress.exists() and progress.read_text().isdigit()
                    and int(progress.read_text()) > args.size // 4):
                time.sleep(0.05)
            cut_at = time.monotonic()
            bed.cut(visitor, holder)
            out, _ = proc.communicate(timeout=60)
            bed.mend(visitor, holder)
            answer = json.loads(out.decode().strip().splitlines()[-1])
            started = cut_at - (answer.get("seconds", 0) or 0)
            event = (answer.get("events") or [{}])[0]
            runs.append({
                "visitor": visitor.name, "visitor_kind": visitor.kind, "holder": holder.name,
                "ok": answer.get("sha256") == digest,
                "paths": answer.get("paths"), "event": event,
                "cut_after": round(answer.get("seconds", 0) - 0, 3), "_started": started,
            })
            print(json.dumps(runs[-1]), flush=True)
    detect = [r["event"]["detected"] for r in runs if r["event"].get("detected") is not None]
    recovered = [r for r in runs if r["ok"]]
    gaps = [r["event"]["recovered"] - r["event"]["detected"] for r in runs
            if r["event"].get("recovered") is not None]
    summary = {
        "links": len(runs), "recovered_share": len(recovered) / max(1, len(runs)),
        "detection_to_recovery_s": {"median": statistics.median(gaps) if gaps else None,
                                    "max": max(gaps) if gaps else None},
        "detected_at_s_since_start": detect,
        "stall_after_s": 2.0, "note": "detection = stall_after after the last byte; "
        "recovery measured from detection to the first byte on the relay",
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "runs": runs,
    }
    Path(args.out).write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
