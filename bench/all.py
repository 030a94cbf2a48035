"""Run every benchmark in turn, each in its own process; results land in bench/results/."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ("publish_hash", "cold_page", "streaming", "warm_gateway", "update_propagation",
              "flash_crowd", "origin_handoff", "idle")


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
