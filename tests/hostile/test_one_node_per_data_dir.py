"""Two `peerweb node` processes on one data dir: the second refuses, naming the first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.test_cli import start_node


def test_a_second_node_on_the_same_data_dir_refuses_and_names_the_first(tmp_path: Path):
    data_dir = tmp_path / "data"
    first = start_node(data_dir, tmp_path / "first.log", "--listen", "127.0.0.53:0")
    try:
        node_file = (data_dir / "node.json").read_text()
        second = subprocess.run(
            [sys.executable, "-m", "peerweb", "node", "--data-dir", str(data_dir),
             "--gateway", "127.0.0.1:0", "--listen", "127.0.0.54:0"],
            capture_output=True, text=True, timeout=60)
        assert second.returncode != 0
        assert (f"another peerweb node (pid {first.pid}) is running on the data dir "
                f"{data_dir}; stop it first, or pick another --data-dir") in second.stderr
        assert "Traceback" not in second.stderr
        # The first is untouched: its node file is still there and names it.
        assert (data_dir / "node.json").read_text() == node_file
        assert json.loads(node_file)["pid"] == first.pid
        assert first.poll() is None
    finally:
        first.terminate()
        first.wait(timeout=30)
    # Once the first has gone, the lock is free again.
    again = start_node(data_dir, tmp_path / "again.log", "--listen", "127.0.0.55:0")
    try:
        assert (data_dir / "node.lock").read_text() == f"{again.pid}\n"
    finally:
        again.terminate()
        again.wait(timeout=30)
