"""The bed itself: who reaches whom, what address a NATed host shows, and cut links."""

from __future__ import annotations

from peerweb.tools.netbed import NetBed

from ..waiting import wait_until_sync
from .conftest import WHO_CLIENT, WHO_SERVER, python

PORT = 7001


def who(bed: NetBed, src: int, dst: int, timeout: float = 1.0) -> str:
    a, b = bed.host(src), bed.host(dst)
    target = b.address if a.isp == b.isp else b.external
    return bed.run(a, [python(), "-c", WHO_CLIENT, target, str(PORT), str(timeout)]).stdout.strip()


def test_reachability_and_nat_addresses(bed: NetBed) -> None:
    assert len(bed.hosts) == 12 and len(bed.kinds) == 4
    for h in bed.hosts:
        bed.popen(h, [python(), "-c", WHO_SERVER, str(PORT)])
    public, firewall, cone, symmetric = (bed.of_kind(k)[0] for k in bed.kinds)
    index = {h.name: i for i, h in enumerate(bed.hosts)}
    p, f, c, s = (index[h.name] for h in (public, firewall, cone, symmetric))
    wait_until_sync(lambda: not who(bed, p, p + 1).startswith("FAIL"), 10, "the servers")
    # Everyone reaches a public host, and it sees NATed hosts as their router.
    assert who(bed, f, p) == firewall.address
    assert who(bed, c, p) == cone.external == bed.router_address(cone.isp)
    assert who(bed, s, p) == symmetric.external
    # Nobody from outside reaches a host behind a firewall or a NAT.
    for src, dst in ((p, f), (p, c), (p, s), (c, s), (s, c), (f, c)):
        assert who(bed, src, dst, timeout=0.4).startswith("FAIL"), (src, dst)
    # Neighbours behind one NAT see each other's own addresses.
    assert who(bed, c, c + 1) == cone.address


def test_cut_drops_traffic_and_mend_restores_it(bed: NetBed) -> None:
    p, q = 0, 1
    a, b = bed.host(p), bed.host(q)
    for h in (a, b):
        bed.popen(h, [python(), "-c", WHO_SERVER, str(PORT + 1)])
    wait_until_sync(lambda: bed.run(a, [python(), "-c", WHO_CLIENT, b.address, str(PORT + 1),
                                        "1"]).stdout.strip() == a.address, 10, "the server")
    bed.cut(a, b)
    try:
        assert bed.run(a, [python(), "-c", WHO_CLIENT, b.address, str(PORT + 1),
                           "0.5"]).stdout.startswith("FAIL")
    finally:
        bed.mend(a, b)
    assert bed.run(a, [python(), "-c", WHO_CLIENT, b.address, str(PORT + 1),
                       "1"]).stdout.strip() == a.address
