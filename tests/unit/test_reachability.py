"""What a node concludes about its own reachability (peerweb.policy.reachability)."""

from __future__ import annotations

from peerweb.policy.reachability import Dialback, Sighting, assess

LOCAL = ["10.3.0.10"]


def test_nothing_known() -> None:
    r = assess(LOCAL, [], [], [], now=0.0)
    assert r.reachable is None and r.nat == "unknown" and r.external is None


def test_no_nat_when_peers_see_our_own_address() -> None:
    r = assess(["198.18.1.10"], [Sighting("198.18.2.10", "198.18.1.10", None, None, 0.0)],
               [], [], now=1.0)
    assert r.nat == "none" and r.external == "198.18.1.10" and r.punchable


def test_endpoint_independent_mapping_from_one_local_port() -> None:
    seen = [Sighting("198.18.1.10", "198.18.0.12", 40000, 40000, 0.0),
            Sighting("198.18.2.10", "198.18.0.12", 40000, 40000, 0.0)]
    r = assess(LOCAL, seen, [], [], now=1.0)
    assert r.nat == "endpoint-independent" and r.reachable is None and r.punchable


def test_endpoint_dependent_mapping() -> None:
    seen = [Sighting("198.18.1.10", "198.18.0.13", 1259, 40000, 0.0),
            Sighting("198.18.2.10", "198.18.0.13", 32252, 40000, 0.0)]
    r = assess(LOCAL, seen, [], [], now=1.0)
    assert r.nat == "endpoint-dependent" and not r.punchable


def test_dialbacks_decide_reachability() -> None:
    fail = [Dialback("198.18.1.10", 7000, False, 0.0)]
    assert assess(LOCAL, [], fail, [], now=1.0).reachable is None  # one failure is no proof
    fail.append(Dialback("198.18.2.10", 7000, False, 0.0))
    assert assess(LOCAL, [], fail, [], now=1.0).reachable is False
    ok = [*fail, Dialback("198.18.1.11", 7000, True, 0.5)]
    assert assess(LOCAL, [], ok, [], now=1.0).reachable is True


def test_incoming_from_outside_proves_reachability_but_our_own_do_not() -> None:
    assert assess(LOCAL, [], [], [("10.3.0.10", 0.0)], now=1.0).reachable is None
    assert assess(LOCAL, [], [], [("198.18.1.10", 0.0)], now=1.0).reachable is True


def test_old_evidence_is_forgotten() -> None:
    fail = [Dialback("198.18.1.10", 7000, False, 0.0), Dialback("198.18.2.10", 7000, False, 0.0)]
    assert assess(LOCAL, [], fail, [], now=10.0, window=100.0).reachable is False
    assert assess(LOCAL, [], fail, [], now=200.0, window=100.0).reachable is None
