"""Hole punching through the bed's NATs (``http.punch``, brokered by a relay's RENDEZVOUS):
it connects a host behind a firewall to one behind a port-preserving NAT, neither of which
accepts connections from strangers, and fails (within its timeout) against a NAT that picks
a random port per destination, where a relay is what connects them.

Hosts (``NetBed()``): h0-h2 public, h3-h5 firewall, h6-h8 cone NAT, h9-h11 symmetric NAT.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from peerweb.tools.netbed import PUBLIC_RANGE, Host, NetBed

from ..waiting import wait_until_sync
from .conftest import python

SRC = str(Path(__file__).resolve().parents[2] / "src")
RELAY, ECHO = 9700, 7800


def agent(*args: str) -> list[str]:
    return ["env", f"PYTHONPATH={SRC}", python(), "-m", "peerweb.tools.pathagent", *args]


def start(bed: NetBed, logs: Path, host: Host, *args: str) -> None:
    """An agent in ``host``, once it says it is up."""
    log = logs / f"{host.name}-{args[0]}.log"
    with log.open("wb") as out:  # the child keeps its own copy
        proc = bed.popen(host, agent(*args), stdout=out, stderr=out)
    wait_until_sync(lambda: proc.poll() is not None or log.read_text().startswith(
        ("listening", "reserved")), 15, f"{args[0]} on {host.name}")
    assert proc.poll() is None, log.read_text()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("punch")


@pytest.fixture(scope="module")
def relay(bed: NetBed, logs: Path) -> str:
    start(bed, logs, bed.host(0), "relay", "--host", bed.host(0).address, "--port", str(RELAY),
          "--allow", PUBLIC_RANGE)
    return f"{bed.host(0).address}:{RELAY}"


def punch_both(bed: NetBed, relay: str, a: Host, b: Host, token: str) -> list[dict[str, Any]]:
    procs = [subprocess.Popen(bed.argv(h, agent("punch", "--relay", relay, "--token", token,
                                                "--name", h.name, "--expect", o.name)),
                              stdout=subprocess.PIPE) for h, o in ((a, b), (b, a))]
    answers = []
    for proc in procs:
        out, _ = proc.communicate(timeout=30)
        answers.append(json.loads(out.decode().strip().splitlines()[-1]))
    return answers


def dial(bed: NetBed, a: Host, target: str, *extra: str) -> dict[str, Any]:
    done = bed.run(a, agent("dial", target, "--timeout", "1", *extra))
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def test_a_punch_joins_a_firewalled_host_and_a_cone_nat(bed: NetBed, relay: str,
                                                        logs: Path) -> None:
    firewalled, coned = bed.host(3), bed.host(6)
    start(bed, logs, coned, "echo", "--host", "0.0.0.0", "--port", str(ECHO))
    assert not dial(bed, firewalled, f"{coned.external}:{ECHO}")["ok"]  # no way in
    for round_ in range(3):
        answers = punch_both(bed, relay, firewalled, coned, f"fc{round_}")
        assert all(a["ok"] for a in answers), answers


def test_a_symmetric_nat_defeats_the_punch_and_a_relay_connects(
        bed: NetBed, relay: str, logs: Path) -> None:
    coned, symmetric = bed.host(7), bed.host(9)
    answers = punch_both(bed, relay, coned, symmetric, "cs")
    assert not any(a["ok"] for a in answers), answers
    assert all("Timeout" in (a["error"] or "") for a in answers), answers
    # The symmetric host holds a reservation at the relay: the cone host reaches it there.
    start(bed, logs, symmetric, "echo", "--host", "0.0.0.0", "--port", str(ECHO))
    start(bed, logs, symmetric, "reserve", "--relay", relay, "--local", symmetric.address,
          "--ports", str(ECHO))
    target = f"{symmetric.external}:{ECHO}"
    assert not dial(bed, coned, target)["ok"]
    wait_until_sync(lambda: dial(bed, coned, target, "--relay", relay)["ok"], 10,
                    "a tunnel through the relay")


def test_detours_punch_to_a_reserved_host_and_relay_when_the_punch_fails(
        bed: NetBed, relay: str, logs: Path) -> None:
    """A file server on h8 (cone NAT) holds a reservation at the relay. A visitor behind a
    firewall (h4) gets it over a punched connection (the relay only brokers: INVITE, then
    RENDEZVOUS); one behind a symmetric NAT (h10) fails the punch and gets it relayed."""
    server = bed.host(8)
    payload = logs / "payload.bin"
    payload.write_bytes(os.urandom(300_000))
    port = ECHO + 1
    start(bed, logs, server, "serve", "--host", "0.0.0.0", "--port", str(port), "--file",
          str(payload))
    start(bed, logs, server, "reserve", "--relay", relay, "--local", server.address,
          "--ports", str(port))
    url = f"http://{server.external}:{port}/file"
    digest = hashlib.sha256(payload.read_bytes()).hexdigest()
    punched = get(bed, bed.host(4), url, relay)
    assert punched["sha256"] == digest and punched["punched"] == 1, punched
    assert punched["paths"] == [None]
    relayed = get(bed, bed.host(10), url, relay)
    assert relayed["sha256"] == digest and relayed["punched"] == 0, relayed
    assert relayed["paths"] == [[bed.host(0).address, RELAY]]


def get(bed: NetBed, host: Host, url: str, relay: str) -> dict[str, Any]:
    done = bed.run(host, agent("get", url, "--relay", relay, "--punch", "--connect", "1"),
                   timeout=60)
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer
