import random
from urllib.parse import quote_from_bytes

import pytest

from peerweb.content import bencode
from peerweb.tools.tracker import (
    MAX_NUMWANT,
    PEER_TTL,
    Swarms,
    TrackerError,
    announce_response,
    parse_announce,
    parse_scrape,
)

IH = bytes(range(20))


def query(info_hash=IH, peer_id=b"-PW0001-" + b"x" * 12, port=6881, **extra):
    parts = [f"info_hash={quote_from_bytes(info_hash)}", f"peer_id={quote_from_bytes(peer_id)}",
             f"port={port}"] + [f"{k}={v}" for k, v in extra.items()]
    return "&".join(parts)


def test_announce_parses_binary_hashes_and_clamps_numwant():
    a = parse_announce(query(left=0, numwant=10_000, event="started"), "127.0.0.5")
    assert a.info_hash == IH and a.ip == "127.0.0.5" and a.port == 6881
    assert a.numwant == MAX_NUMWANT and a.left == 0 and a.compact


@pytest.mark.parametrize("bad", [
    query(info_hash=b"short"), query(peer_id=b"x"), query(port=0), query(port=70000),
    query(event="exploded"), query(left="lots"), "port=1",
])
def test_bad_announces_are_refused(bad):
    with pytest.raises(TrackerError):
        parse_announce(bad, "127.0.0.1")


def test_the_ip_parameter_cannot_announce_someone_else():
    assert parse_announce(query(ip="10.9.9.9"), "127.0.0.7").ip == "127.0.0.7"


def test_swarm_returns_others_forgets_stopped_and_expired_peers():
    swarms, rng = Swarms(), random.Random(1)
    seed = parse_announce(query(port=1000, left=0), "127.0.0.1")
    leech = parse_announce(query(port=2000, left=5), "127.0.0.2")
    assert swarms.announce(seed, 0.0, rng) == []
    assert swarms.announce(leech, 1.0, rng) == [("127.0.0.1", 1000)]
    assert swarms.announce(seed, 2.0, rng) == [("127.0.0.2", 2000)]
    assert swarms.counts(IH, 2.0) == (1, 1, 0)
    stopped = parse_announce(query(port=2000, left=5, event="stopped"), "127.0.0.2")
    swarms.announce(stopped, 3.0, rng)
    assert swarms.counts(IH, 3.0) == (1, 0, 0)
    swarms.expire(2.0 + PEER_TTL + 1)
    assert swarms.peers == {}


def test_seeders_are_not_sent_other_seeders():
    swarms = Swarms()
    swarms.announce(parse_announce(query(port=1000, left=0), "127.0.0.1"), 0.0)
    assert swarms.announce(parse_announce(query(port=1001, left=0), "127.0.0.2"), 0.0) == []


def test_compact_and_ipv6_encodings():
    body = bencode.decode(announce_response([("127.0.0.1", 6881), ("::1", 80)], (1, 2, 0), True))
    assert body[b"peers"] == bytes([127, 0, 0, 1, 0x1A, 0xE1])
    assert body[b"peers6"] == bytes(15) + b"\x01" + b"\x00\x50"
    assert body[b"complete"] == 1 and body[b"incomplete"] == 2
    plain = bencode.decode(announce_response([("127.0.0.1", 6881)], (0, 1, 0), False))
    assert plain[b"peers"] == [{b"ip": b"127.0.0.1", b"port": 6881}]


def test_scrape_takes_many_hashes():
    assert parse_scrape(f"info_hash={quote_from_bytes(IH)}&info_hash={quote_from_bytes(IH)}") \
        == [IH, IH]
    with pytest.raises(TrackerError):
        parse_scrape("info_hash=abc")
