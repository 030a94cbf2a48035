"""A node killed with kill -9 mid-download keeps the pieces it had verified."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from peerweb.content import bencode

from ..integration.test_cli import peerweb, start_node
from ..waiting import wait_until_sync

SIZE = 40 * 1024 * 1024
RATE = 4_000_000  # the visitor's download limit, B/s
# Resume data is saved every Timings.resume_active_interval (3 s) while downloading; with the
# second in which the kill lands and a loaded machine, a crash costs at most this much.
MAX_LOST_SECONDS = 5.0


def site_status(data_dir: Path, site_id: str) -> dict[str, Any]:
    """The site's entry in ``peerweb status`` (empty until the node knows the site)."""
    status = json.loads(peerweb("status", "--json", data_dir=data_dir).stdout)
    return next((s for s in status["sites"] if s["site_id"] == site_id), {})


def pieces_saved(resume: Path) -> int:
    """How many pieces a torrent's resume data records as verified (0: none, or no file)."""
    try:
        pieces = bencode.decode(resume.read_bytes())[b"pieces"]
    except (OSError, ValueError, KeyError):
        return 0
    return sum(f"{byte:08b}".count("1") for byte in pieces)


def test_kill_9_mid_download_costs_a_few_seconds_of_download(tmp_path) -> None:
    from peerweb.tools.testnet import write_sample_site

    publisher_dir, visitor_dir = tmp_path / "publisher", tmp_path / "visitor"
    publisher = start_node(publisher_dir, tmp_path / "publisher.log", "--listen", "127.0.0.41:0")
    visitor = getter = None
    try:
        write_sample_site(tmp_path / "site", small_files=2, big_size=SIZE)
        site_id = json.loads(peerweb("publish", str(tmp_path / "site"), "--json",
                                     data_dir=publisher_dir).stdout)["site_id"]
        swarm = json.loads(peerweb("status", "--json", data_dir=publisher_dir).stdout)["listen"]
        args = ("--listen", "127.0.0.42:0", "--bootstrap", swarm,
                "--download-limit", str(RATE), "--limit-local-peers")
        visitor = start_node(visitor_dir, tmp_path / "visitor.log", *args)
        # The page first: its small files complete, and the resume data saved then records
        # some pieces, so a restart trusts it instead of checking the files on disk.
        peerweb("get", f"{site_id}/index.html", data_dir=visitor_dir)
        infohash = site_status(visitor_dir, site_id)["infohash"]
        wait_until_sync(lambda: pieces_saved(visitor_dir / "resume" / f"{infohash}.resume"),
                        30, "resume data that records the page's pieces")
        getter = subprocess.Popen(
            [sys.executable, "-m", "peerweb", "get", f"{site_id}/media/big.bin", "-o",
             str(tmp_path / "out.bin"), "--data-dir", str(visitor_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        had = wait_until_sync(
            lambda: (s := site_status(visitor_dir, site_id)).get("progress", 0) >= 0.6
            and s["bytes_on_disk"], 120, "the visitor to be 60% through")
        visitor.kill()  # SIGKILL: no shutdown code runs
        visitor.wait(timeout=10)
        getter.kill()
        getter.wait(timeout=10)
        (visitor_dir / "node.json").unlink()

        visitor = start_node(visitor_dir, tmp_path / "visitor.log", *args)
        wait_until_sync(lambda: site_status(visitor_dir, site_id).get("progress") == 1.0, 120,
                        "the visitor to complete the site after its restart")
        total = site_status(visitor_dir, site_id)["bytes_on_disk"]
        downloaded = json.loads(peerweb("status", "--json", data_dir=visitor_dir).stdout)[
            "downloaded"]
        again = max(0, downloaded - (total - had))
        print(f"\nkilled at {had} of {total} bytes; after the restart downloaded "
              f"{downloaded}: {again} bytes fetched again")
        assert again <= RATE * MAX_LOST_SECONDS, again
    finally:
        for process in (getter, visitor, publisher):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)
