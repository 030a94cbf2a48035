"""The holders a pointer offer names: checked at the peer port, bytes in, values out."""

import json

from peerweb.http.peer_server import parse_holders
from peerweb.policy import propagation


def test_well_formed_holders_are_kept_loopback_included():
    raw = [["127.0.0.1", 6881], ["::1", 7000], ["203.0.113.5", 65535], ["10.0.0.7", 1]]
    assert parse_holders(raw) == (("127.0.0.1", 6881), ("::1", 7000),
                                  ("203.0.113.5", 65535), ("10.0.0.7", 1))


def test_malformed_holders_are_dropped_not_the_offer():
    raw = json.loads('[["example.com", 80], ["127.0.0.1", 0], ["127.0.0.1", 70000],'
                     '["127.0.0.1", true], ["127.0.0.1", "80"], ["127.0.0.1"], "127.0.0.1:80",'
                     '[1, 2], ["127.0.0.1", 80, 3], ["999.0.0.1", 80], ["127.0.0.2", 80.0],'
                     '["127.0.0.3", 80]]')
    assert parse_holders(raw) == (("127.0.0.3", 80),)
    assert parse_holders(None) == () and parse_holders({"a": 1}) == ()
    assert parse_holders("127.0.0.1") == ()


def test_holders_past_the_bound_are_dropped_and_duplicates_merged():
    raw = [["127.0.0.1", 1000 + i] for i in range(propagation.PUSHED_HOLDERS + 10)]
    assert len(parse_holders(raw)) == propagation.PUSHED_HOLDERS
    assert parse_holders([["127.0.0.1", 80]] * 5) == (("127.0.0.1", 80),)
    # An address is named canonically, so one holder is not two.
    assert parse_holders([["::0001", 80], ["::1", 80]]) == (("::1", 80),)


def test_an_offer_is_a_share_only_when_it_says_so_in_json_true():
    from peerweb.content import pointer as ptr
    from peerweb.content.identity import SiteKey
    from peerweb.http.peer_server import parse_offer

    signed = ptr.sign(SiteKey("k", bytes(32)), bytes(20), 2, seq=2).to_json()
    holders = [["127.0.0.5", 7000]]

    def offer(**extra: object):
        return parse_offer(json.dumps({"pointer": signed, "port": 6000, "holders": holders,
                                       **extra}).encode())

    assert offer(share=True).share and offer(share=True).holders == (("127.0.0.5", 7000),)
    # An older sender says nothing: its holders are a list to draw from, as before.
    assert not offer().share
    assert not offer(share=1).share and not offer(share="yes").share
