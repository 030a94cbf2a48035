"""A site published behind a NAT, fetched by a visitor behind another NAT, with real nodes.

h0 (public) runs a node that is the DHT's entry point and a relay (allowing the bed's
"public" range, ``netbed.PUBLIC_RANGE``); h6 (cone NAT) publishes; h9 (symmetric NAT)
visits through its gateway. Neither NATed node accepts connections from outside: the
publisher finds itself unreachable and holds a reservation at h0's relay, and the
visitor's torrent, which finds the publisher in the DHT but cannot connect to it, reaches
it through the relay (``node.reach``).

The visitor's magnet waits for its metadata, which only the publisher has: the swarm
detours must cover torrents still being opened, not only registered snapshots (before
they did, the gateway answered 504 "no peer sent the metadata").
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from peerweb.tools.netbed import PUBLIC_RANGE, Host, NetBed

from ..waiting import wait_until_sync
from .conftest import python

SRC = str(Path(__file__).resolve().parents[2] / "src")
SWARM, PEER, RELAY, GATEWAY = 6881, 6882, 9600, 8080


def peerweb(*args: str) -> list[str]:
    return ["env", f"PYTHONPATH={SRC}", python(), "-m", "peerweb", *args]


def start_node(bed: NetBed, host: Host, data: Path, *extra: str) -> None:
    log = data.parent / f"{host.name}.log"
    with log.open("wb") as out:
        proc = bed.popen(host, peerweb("node", "--data-dir", str(data), "--swarm",
                                       f"{host.address}:{SWARM}", "--peer-port", str(PEER),
                                       "--gateway", f"127.0.0.1:{GATEWAY}", "-v", *extra),
                         stdout=out, stderr=out)
    wait_until_sync(lambda: proc.poll() is not None or (data / "node.json").exists(), 30,
                    f"the node on {host.name}")
    assert proc.poll() is None, log.read_text()[-2000:]


def status(bed: NetBed, host: Host, data: Path) -> dict[str, object]:
    done = bed.run(host, peerweb("status", "--data-dir", str(data), "--json"))
    answer: dict[str, object] = json.loads(done.stdout.splitlines()[0])
    return answer


@pytest.mark.timeout(180)
def test_a_site_published_behind_a_nat_is_fetched_from_behind_another(
        bed: NetBed, tmp_path: Path) -> None:
    hub, publisher, visitor = bed.host(0), bed.host(6), bed.host(9)
    assert publisher.kind == "cone" and visitor.kind == "symmetric"
    relay = f"{hub.address}:{RELAY}"
    join = ("--bootstrap", f"{hub.address}:{SWARM}", "--via-relay", relay)
    start_node(bed, hub, tmp_path / "hub", "--relay-port", str(RELAY),
               "--relay-allow", PUBLIC_RANGE)
    start_node(bed, publisher, tmp_path / "pub", *join)
    start_node(bed, visitor, tmp_path / "vis", *join)
    site = tmp_path / "site"
    site.mkdir()
    page = b"<!doctype html><h1>published behind a NAT</h1>" + os.urandom(300_000).hex().encode()
    (site / "index.html").write_bytes(page)
    done = bed.run(publisher, peerweb("publish", str(site), "--data-dir",
                                      str(tmp_path / "pub"), "--json"), timeout=60)
    site_id = json.loads(done.stdout.splitlines()[-1])["site_id"]
    # The publisher learns it is behind a NAT and holds a reservation at the relay.
    wait_until_sync(lambda: (status(bed, publisher, tmp_path / "pub").get("reservation")
                             or {}).get("held"), 30, "the publisher's reservation")
    out = tmp_path / "fetched.html"

    def fetched() -> bool:
        bed.run(visitor, ["curl", "-s", "-m", "15", "-o", str(out),
                          f"http://127.0.0.1:{GATEWAY}/s/{site_id}/index.html"], check=False)
        return out.exists() and out.read_bytes() == page

    wait_until_sync(fetched, 75, "the page through the relay")
    seen = status(bed, visitor, tmp_path / "vis")
    swarm = seen["detours"]["swarm"]  # type: ignore[index]
    assert any(d["via"] == relay for d in swarm), seen
    pub = status(bed, publisher, tmp_path / "pub")
    assert pub["reachability"]["nat"] in ("endpoint-independent", "nat")  # type: ignore[index]
    assert pub["reachability"]["reachable"] is not True  # type: ignore[index]
    hub_status = status(bed, hub, tmp_path / "hub")
    assert hub_status["relay"]["relayed_bytes"] >= len(page)  # type: ignore[index]
    # A second visitor, behind a firewall: its NAT-less address lets a punch through the
    # publisher's cone NAT (the relay only brokers it, INVITE then RENDEZVOUS).
    walled = bed.host(3)
    assert walled.kind == "firewall"
    start_node(bed, walled, tmp_path / "wall", *join)
    out_walled = tmp_path / "walled.html"

    def fetched_walled() -> bool:
        bed.run(walled, ["curl", "-s", "-m", "15", "-o", str(out_walled),
                         f"http://127.0.0.1:{GATEWAY}/s/{site_id}/index.html"], check=False)
        return out_walled.exists() and out_walled.read_bytes() == page

    wait_until_sync(fetched_walled, 60, "the page over a punched connection")
    seen = status(bed, walled, tmp_path / "wall")
    assert any(d["via"] == "punched" for d in seen["detours"]["swarm"]), seen  # type: ignore[index]
    assert status(bed, publisher, tmp_path / "pub")["reservation"]["punched"] >= 1  # type: ignore[index]
