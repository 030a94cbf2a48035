"""Idle node: resident memory and CPU of `peerweb node` serving the example site.

Starts a real node process (local network profile), publishes the example site, lets it
settle, then samples RSS and CPU time over a quiet window. Targets: under 60 MB RSS and under
1% of a core. Baseline in the same run: an idle `python -c` process with the same imports
(the floor any Python node pays before doing anything).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import write_result

SETTLE = 5.0
WINDOW = 20.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def sample(pid: int) -> tuple[float, float]:
    time.sleep(SETTLE)
    before = cpu_seconds(pid)
    time.sleep(WINDOW)
    return rss_mb(pid), 100 * (cpu_seconds(pid) - before) / WINDOW


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        node = subprocess.Popen(
            [sys.executable, "-m", "peerweb", "node", "--example", "--data-dir", str(data),
             "--gateway", "127.0.0.1:0", "--listen", "127.0.0.41:0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        baseline = subprocess.Popen(
            [sys.executable, "-c",
             "import libtorrent, aiohttp.web, nacl.signing, click, uvloop, time; time.sleep(60)"])
        try:
            deadline = time.monotonic() + 30
            while not (data / "node.json").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            node_rss, node_cpu = sample(node.pid)
            base_rss, base_cpu = rss_mb(baseline.pid), 0.0
        finally:
            for process in (node, baseline):
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
    print(f"idle node: {node_rss:.1f} MB RSS (target < 60), {node_cpu:.2f}% CPU (target < 1)")
    print(f"baseline (imports only): {base_rss:.1f} MB RSS -> node/baseline "
          f"{node_rss / base_rss:.2f}x")
    write_result("idle", {"rss_mb": node_rss, "cpu_percent": node_cpu,
                          "baseline_rss_mb": base_rss, "baseline_cpu_percent": base_cpu,
                          "window_s": WINDOW, "target_rss_mb": 60, "target_cpu_percent": 1})


if __name__ == "__main__":
    main()
