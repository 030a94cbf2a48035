"""The README's install line and five-minute tour, run as written against real processes.

``make install`` links the launcher into a temporary BINDIR, which is the tour's PATH. The
tour's commands run unchanged through bash, with two substitutions a reader makes too:
``SITE`` becomes the site id ``publish`` printed, and ``http://localhost:8080`` the node's
real gateway (tests use no fixed ports). The node is kept on 127.0.0.x with free ports, on
its own private DHT, by a ``config.toml`` in its data dir, which the tour's plain
``peerweb node`` reads: the config file and ``--log-file`` are tested on the way."""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..waiting import wait_until_sync

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "src" / "peerweb" / "example_site"
HOST = "127.0.0.67"
STARTUP = 30.0
STEP_TIMEOUT = 120


def tour_blocks() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```", section, re.S | re.M)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


def launcher() -> Path:
    venv_peerweb = Path(sys.prefix) / "bin" / "peerweb"
    if sys.prefix == sys.base_prefix or not venv_peerweb.exists() or not shutil.which("make"):
        pytest.skip("needs make and the tests' venv with its peerweb launcher")
    return venv_peerweb


def test_make_install_then_the_tour_as_written(tmp_path: Path) -> None:
    launcher()
    bindir = tmp_path / "bin"
    venv = Path(sys.prefix)
    installed = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "-o", f"{venv}/.installed", "install",
         f"VENV={venv}", f"BINDIR={bindir}"], capture_output=True, text=True, timeout=60)
    assert installed.returncode == 0, installed.stderr
    assert (bindir / "peerweb").resolve() == (venv / "bin" / "peerweb").resolve()

    node_block, steps = tour_blocks()
    assert node_block == ["peerweb node"]
    work = tmp_path / "checkout"
    shutil.copytree(EXAMPLE, work / "src" / "peerweb" / "example_site")
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    log_file = tmp_path / "node.log"
    (data / "config.toml").write_text(
        f'gateway = "{HOST}:0"\nswarm = "{HOST}:0"\nlog-file = "{log_file}"\nverbose = 1\n')
    env = {**os.environ, "PEERWEB_DATA_DIR": str(data), "NO_COLOR": "1",
           "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}

    def run(line: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["bash", "-c", line], cwd=work, env=env, capture_output=True,
                              text=True, timeout=STEP_TIMEOUT)
        assert done.returncode == 0, f"{line!r} failed: {done.stdout}{done.stderr}"
        return done

    node_out, node_err = tmp_path / "node.out", tmp_path / "node.err"
    with open(node_out, "w") as sink, open(node_err, "w") as errors:
        node = subprocess.Popen(["bash", "-c", f"exec {node_block[0]}"], cwd=work, env=env,
                                stdout=sink, stderr=errors)
    try:
        wait_until_sync(lambda: (data / "node.json").exists() or node.poll() is not None,
                        STARTUP, "the tour's node to start")
        assert node.poll() is None, node_out.read_text() + node_err.read_text()
        gateway = json.loads((data / "node.json").read_text())["gateway"].rstrip("/")
        assert gateway.startswith(f"http://{HOST}:")  # from config.toml

        site = ""
        outputs = {}
        for line in steps:
            command = line.replace("http://localhost:8080", gateway)
            if site:
                command = command.replace("SITE", site)
            outputs[line] = done = run(command)
            if not site:
                found = re.search(r"site id:\s+([a-z2-7]{52})", done.stdout)
                assert found, f"{line!r} printed no site id: {done.stdout}"
                site = found.group(1)
        assert node.wait(timeout=30) == 0  # the last step stopped it
    finally:
        if node.poll() is None:
            node.kill()
            node.wait(timeout=10)

    def output(start: str) -> str:
        return next(done.stdout for line, done in outputs.items() if line.startswith(start))

    assert site in output("peerweb status")
    copy = work / "example-copy"
    files = [p.relative_to(EXAMPLE) for p in EXAMPLE.rglob("*") if p.is_file()]
    assert files and all(filecmp.cmp(EXAMPLE / f, copy / f, shallow=False) for f in files)
    assert (EXAMPLE / "index.html").read_text() == output("curl")
    assert "stopped the node" in output("peerweb stop")
    # Logs went to the file, not to the node's stderr.
    assert log_file.exists()
    stderr = node_err.read_text()
    assert not re.search(r"^\S+ \S+ (INFO|WARNING|ERROR) ", stderr, re.M), stderr
