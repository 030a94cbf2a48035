"""Relays and detours on the bed: refusals and limits, a transfer that survives a cut link,
a NATed origin reached through a reservation, and what relays tell a node about itself.

Hosts (``NetBed()``): h0-h2 public (ISP 0), h3-h5 behind a firewall, h6-h8 behind a cone
NAT, h9-h11 behind a symmetric NAT. Relays allow the bed's "public" range
(``netbed.PUBLIC_RANGE``, 198.18.0.0/15) explicitly; private ranges stay refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from peerweb.tools.netbed import PUBLIC_RANGE, NetBed

from ..waiting import wait_until_sync
from .conftest import python

RELAY_PORT = 9500
SERVE_PORT = 8600
AGENT = ["-m", "peerweb.tools.pathagent"]
SRC = str(Path(__file__).resolve().parents[2] / "src")


def agent(bed: NetBed, index: int, *args: str) -> list[str]:
    return [python(), *AGENT, *args]


def start(bed: NetBed, index: int, *args: str, log: Path | None = None) -> None:
    """Start an agent in host ``index`` and wait for it to say it is ready."""
    out = log or Path(os.environ.get("TMPDIR", "/tmp")) / f"{bed.prefix}-{index}-{args[0]}.log"
    env = {**os.environ, "PYTHONPATH": SRC}
    with out.open("wb") as handle:  # the child keeps its own copy
        proc = bed.popen(bed.host(index), agent(bed, index, *args), stdout=handle,
                         stderr=handle, env=env)
    wait_until_sync(lambda: proc.poll() is not None or any(
        w in out.read_text() for w in ("listening", "reserved")), 15, f"{args[0]} to start")
    assert proc.poll() is None, out.read_text()


def run(bed: NetBed, index: int, *args: str, timeout: float = 60) -> dict[str, object]:
    done = bed.run(bed.host(index), ["env", f"PYTHONPATH={SRC}",
                                     *agent(bed, index, *args)], timeout=timeout)
    answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


@pytest.fixture(scope="module")
def relays(bed: NetBed) -> NetBed:
    """A relay on h0 (one circuit per peer, 1 MB each) and one on h2 (defaults)."""
    start(bed, 0, "relay", "--host", bed.host(0).address, "--port", str(RELAY_PORT),
          "--allow", PUBLIC_RANGE, "--per-peer", "1", "--max-bytes", str(1024 * 1024))
    start(bed, 2, "relay", "--host", bed.host(2).address, "--port", str(RELAY_PORT),
          "--allow", PUBLIC_RANGE)
    return bed


def relay_of(bed: NetBed, index: int) -> str:
    return f"{bed.host(index).address}:{RELAY_PORT}"


def test_a_relay_refuses_loopback_private_and_strangers_beyond_its_limits(
        relays: NetBed, tmp_path: Path) -> None:
    bed = relays
    payload = tmp_path / "small.bin"
    payload.write_bytes(os.urandom(1000))
    start(bed, 1, "serve", "--host", "0.0.0.0", "--port", str(SERVE_PORT), "--file",
          str(payload))
    start(bed, 1, "sink", "--host", "0.0.0.0", "--port", str(SERVE_PORT + 5))
    relay = relay_of(bed, 0)
    refused = ("127.0.0.1:9500", f"{bed.host(6).address}:{SERVE_PORT}", "10.0.0.1:80",
               "169.254.1.1:80", "[::1]:9500", f"{bed.host(1).address}:22", "localhost:80")
    answer = run(bed, 6, "tunnels", "--relay", relay, *(
        a for t in refused for a in ("--target", t)))
    assert answer["codes"] == [403, 403, 403, 403, 403, 403, 400], answer
    # One circuit per peer: the second is refused while the first is open.
    answer = run(bed, 6, "tunnels", "--relay", relay, "--target",
                 f"{bed.host(1).address}:{SERVE_PORT}", "--count", "2")
    assert answer["codes"] == [200, 429]
    # A circuit is closed once it has carried its bytes.
    answer = run(bed, 9, "tunnels", "--relay", relay, "--target",
                 f"{bed.host(1).address}:{SERVE_PORT + 5}", "--send", str(8 * 1024 * 1024))
    assert answer["codes"] == [200]
    assert 1024 * 1024 <= answer["sent"] < 8 * 1024 * 1024  # type: ignore[operator]


def test_a_cut_link_mid_transfer_completes_through_a_third_host(
        relays: NetBed, tmp_path: Path) -> None:
    """h6 (cone NAT) fetches from h1, the only holder; the h6-h1 link is cut once a quarter
    has arrived; the fetch resumes through the relay on h2 and ends byte-exact."""
    bed = relays
    data = os.urandom(12 * 1024 * 1024)
    big = tmp_path / "big.bin"
    big.write_bytes(data)
    start(bed, 1, "serve", "--host", "0.0.0.0", "--port", str(SERVE_PORT + 1), "--file",
          str(big), "--rate", str(4 * 1024 * 1024))
    progress = tmp_path / "progress"
    with (tmp_path / "get.out").open("wb") as out:
        proc = bed.popen(bed.host(6), [
            "env", f"PYTHONPATH={SRC}", *agent(bed, 6, "get",
                                              f"http://{bed.host(1).address}:{SERVE_PORT + 1}/file",
                                              "--relay", relay_of(bed, 2), "--progress",
                                              str(progress))], stdout=out)
    def fetched() -> int:
        # Read once: the agent rewrites the file as bytes arrive, so two reads can differ.
        text = progress.read_text() if progress.exists() else ""
        return int(text) if text.isdigit() else 0

    wait_until_sync(lambda: fetched() > len(data) // 4, 20, "a quarter of the file")
    bed.cut(bed.host(6), bed.host(1))
    try:
        proc.wait(timeout=30)
    finally:
        bed.mend(bed.host(6), bed.host(1))
    answer = json.loads((tmp_path / "get.out").read_text().strip().splitlines()[-1])
    assert answer["sha256"] == hashlib.sha256(data).hexdigest(), answer
    assert answer["paths"] == [None, [bed.host(2).address, RELAY_PORT]]
    event = answer["events"][0]
    assert event["recovered"] - event["detected"] < 5.0
    assert "stalled" in event["reason"]


def test_an_origin_behind_a_nat_serves_its_handoff_through_a_relay(
        relays: NetBed, tmp_path: Path) -> None:
    """The origin on h7 (cone NAT) holds a reservation at h2's relay; a visitor on h9
    (symmetric NAT) cannot reach it directly, and gets its hand-off through the relay."""
    bed = relays
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_bytes(b"<!doctype html><h1>origin</h1>")
    port = SERVE_PORT + 10
    start(bed, 7, "origin", "--host", bed.host(7).address, "--port", str(port), "--site",
          str(site), "--mirror", "http://198.18.1.12:8080/s/x")
    start(bed, 7, "reserve", "--relay", relay_of(bed, 2), "--local", bed.host(7).address,
          "--ports", str(port))
    url = f"http://{bed.host(7).external}:{port}/index.html"
    direct = run(bed, 9, "get", url, "--connect", "1")
    assert "error" in direct  # no relay given: the NAT drops the visitor's connection
    answer = run(bed, 9, "get", url, "--relay", relay_of(bed, 2), "--connect", "1")
    assert answer["status"] == 302, answer
    assert str(answer["location"]).startswith("http://198.18.1.12:8080/s/x/index.html")
    assert answer["paths"] == [[bed.host(2).address, RELAY_PORT]]


def test_relays_tell_a_node_its_address_and_nat_mapping(relays: NetBed) -> None:
    from peerweb.policy.reachability import Dialback, Sighting, assess

    bed = relays
    relays_ = [relay_of(bed, 0), relay_of(bed, 2)]
    verdicts = {}
    procs = {}
    for index in (1, 6, 9):  # at once: a dial-back to a NATed host waits out its timeout
        args = ["probe", "--local", bed.host(index).address, "--local-port", "40111",
                "--dialback", str(SERVE_PORT + 20)]
        for r in relays_:
            args += ["--relay", r]
        procs[index] = subprocess.Popen(bed.argv(bed.host(index), [
            "env", f"PYTHONPATH={SRC}", *agent(bed, index, *args)]), stdout=subprocess.PIPE)
    for index, proc in procs.items():
        out, _ = proc.communicate(timeout=30)
        answer = json.loads(out.decode().strip().splitlines()[-1])
        sightings = [Sighting(r.split(":")[0], s[0], s[1], 40111, 0.0)
                     for r, s in zip(relays_, answer["seen"], strict=True)]
        backs = [Dialback(r.split(":")[0], SERVE_PORT + 20, ok, 0.0)
                 for r, ok in zip(relays_, answer["dialbacks"], strict=True)]
        verdicts[bed.host(index).kind] = assess([bed.host(index).address], sightings, backs,
                                                [], now=1.0)
    # Nothing listens on the dial-back port: nobody is proven reachable, the NATed are
    # proven unreachable only because the relays' dial-backs failed.
    assert verdicts["public"].nat == "none"
    assert verdicts["cone"].nat == "endpoint-independent"
    assert verdicts["symmetric"].nat == "endpoint-dependent"
    assert verdicts["cone"].reachable is False and verdicts["symmetric"].reachable is False
