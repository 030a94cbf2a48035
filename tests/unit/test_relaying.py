"""What a relay forwards, for whom, for how long (peerweb.policy.relaying)."""

from __future__ import annotations

import pytest

from peerweb.errors import UsageError
from peerweb.policy.relaying import Circuit, Destinations, Refusal, RelayBook, RelayLimits

BED = Destinations.parse(("198.18.0.0/15",))


@pytest.mark.parametrize("host", [
    "127.0.0.1", "127.9.9.9", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.1.1",
    "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
    "::ffff:10.0.0.1", "198.18.0.10"])
def test_default_refuses_local_private_and_non_global(host: str) -> None:
    refusal = Destinations().refuse(host, 443)
    assert refusal is not None and refusal.status == 403


def test_names_are_refused() -> None:
    refusal = Destinations().refuse("example.com", 443)
    assert refusal is not None and refusal.status == 400


def test_public_addresses_on_allowed_ports_pass() -> None:
    assert Destinations().refuse("93.184.216.34", 443) is None
    assert Destinations().refuse("2606:2800:220:1::1", 80) is None
    assert Destinations().refuse("93.184.216.34", 6881) is None
    assert Destinations().refuse("93.184.216.34", 22) is not None
    assert Destinations().refuse("93.184.216.34", 25) is not None


def test_an_allowed_range_lets_the_bed_through_but_never_private() -> None:
    assert BED.refuse("198.18.1.10", 7000) is None
    assert BED.refuse("10.3.0.10", 7000) is not None
    assert BED.refuse("127.0.0.1", 7000) is not None
    for bad in ("10.0.0.0/8", "127.0.0.0/8", "192.168.0.0/24", "0.0.0.0/0", "fe80::/64"):
        with pytest.raises(UsageError):
            Destinations.parse((bad,))


def test_limits_per_peer_and_total() -> None:
    book = RelayBook(BED, RelayLimits(circuits=3, per_peer=2))
    a1 = book.admit("198.18.1.10", "198.18.2.10", 7000, 0.0)
    a2 = book.admit("198.18.1.10", "198.18.2.10", 7000, 0.0)
    a3 = book.admit("198.18.1.10", "198.18.2.10", 7000, 0.0)
    assert isinstance(a1, Circuit) and isinstance(a2, Circuit)
    assert isinstance(a3, Refusal) and a3.status == 429
    b1 = book.admit("198.18.1.11", "198.18.2.10", 7000, 0.0)
    b2 = book.admit("198.18.1.12", "198.18.2.10", 7000, 0.0)
    assert isinstance(b1, Circuit)
    assert isinstance(b2, Refusal) and b2.status == 503
    book.close(a1)
    assert isinstance(book.admit("198.18.1.12", "198.18.2.10", 7000, 1.0), Circuit)
    assert book.refused == 2


def test_a_circuit_ends_on_bytes_age_and_idleness() -> None:
    limits = RelayLimits(max_bytes=1000, max_age=60, idle=10)
    c = Circuit("p", ("198.18.2.10", 7000), 0.0, last_activity=0.0)
    assert c.over(limits, 5.0) is None
    assert c.over(limits, 10.0) == "idle for 10 s"
    c.carried(999, 9.0)
    assert c.over(limits, 18.0) is None
    c.carried(1, 18.0)
    assert "1000 bytes" in (c.over(limits, 18.0) or "")
    c2 = Circuit("p", ("198.18.2.10", 7000), 0.0, last_activity=0.0)
    c2.carried(1, 59.0)
    assert c2.over(limits, 60.0) == "open for 60 s"


def test_a_reservation_makes_a_nated_node_reachable_on_its_ports_only() -> None:
    book = RelayBook(Destinations(), RelayLimits(reservation_ttl=100))
    made = book.reserve("203.0.113.7", (6881, 7000), 0.0)
    assert not isinstance(made, Refusal)
    # 203.0.113.0/24 is documentation space: refused unless reserved.
    assert isinstance(book.admit("198.51.100.1", "203.0.113.7", 6881, 1.0), Circuit)
    assert isinstance(book.admit("198.51.100.1", "203.0.113.7", 22, 1.0), Refusal)
    assert isinstance(book.admit("198.51.100.1", "203.0.113.8", 6881, 1.0), Refusal)
    # Expired, it no longer opens the way.
    assert isinstance(book.admit("198.51.100.2", "203.0.113.7", 6881, 100.0), Refusal)
    assert book.reservations == {}


def test_reservations_are_bounded_and_status_names_whom_it_relays_for() -> None:
    book = RelayBook(BED, RelayLimits(reservations=1))
    assert not isinstance(book.reserve("198.18.0.12", (7000,), 0.0), Refusal)
    assert isinstance(book.reserve("198.18.0.13", (7000,), 0.0), Refusal)
    assert not isinstance(book.reserve("198.18.0.12", (7000, 7001), 1.0), Refusal)  # renewed
    assert isinstance(book.reserve("198.18.0.12", (), 0.0), Refusal)
    c = book.admit("198.18.1.10", "198.18.0.12", 7000, 1.0)
    assert isinstance(c, Circuit) and c.via_reservation
    c.carried(500, 2.0)
    status = book.status(3.0)
    assert status["reservations"] == [{"for": "198.18.0.12", "ports": [7000, 7001], "age": 2.0}]
    assert status["circuits"] == [{"for": "198.18.1.10", "to": "198.18.0.12:7000",
                                   "bytes": 500, "age": 2.0, "reserved": True}]
    assert status["relayed_bytes"] == 500
    book.close(c)
    assert book.status(3.0)["relayed_bytes"] == 500
