import pytest

from peerweb.content import bencode
from peerweb.content import pointer as ptr
from peerweb.content.identity import SiteKey
from peerweb.errors import ForgedPointer

IH = bytes(range(20))


def test_sign_and_verify_round_trip():
    key = SiteKey.generate("t")
    signed = ptr.sign(key, IH, version=3, seq=7)
    again = ptr.verify(key.public_key, 7, signed.value, signed.signature)
    assert (again.infohash, again.version, again.seq) == (IH, 3, 7)
    assert ptr.Pointer.from_json(signed.to_json()) == signed
    assert signed.site_id == key.site_id


def test_signed_message_follows_bep44():
    assert ptr.signed_message(1, b"1:x") == b"3:seqi1e1:v1:x"
    assert ptr.signed_message(1, b"1:x", b"s") == b"4:salt1:s3:seqi1e1:v1:x"


def test_wrapped_value_is_a_bencoded_string_holding_the_bep46_dict():
    value = ptr.wrap(ptr.encode_record(IH, 1))
    inner = bencode.decode(value)
    assert isinstance(inner, bytes)
    assert bencode.decode(inner) == {b"ih": IH, b"v": 1}


def test_plain_bep46_dict_value_is_accepted():
    key = SiteKey.generate("t")
    value = ptr.encode_record(IH, 2)
    sig = key.sign(ptr.signed_message(5, value))
    assert ptr.verify(key.public_key, 5, value, sig).version == 2


def test_forgeries_are_rejected():
    key, other = SiteKey.generate("a"), SiteKey.generate("b")
    good = ptr.sign(key, IH, 1, 1)
    with pytest.raises(ForgedPointer, match="signature"):  # someone else's key
        ptr.verify(other.public_key, 1, good.value, good.signature)
    with pytest.raises(ForgedPointer, match="signature"):  # seq bumped, old signature
        ptr.verify(key.public_key, 2, good.value, good.signature)
    tampered = ptr.wrap(ptr.encode_record(bytes(20), 1))
    with pytest.raises(ForgedPointer, match="signature"):  # value swapped
        ptr.verify(key.public_key, 1, tampered, good.signature)


@pytest.mark.parametrize(
    "record",
    [b"i1e", bencode.encode({b"ih": b"short", b"v": 1}), bencode.encode({b"ih": IH}),
     bencode.encode({b"ih": IH, b"v": 0}), b"d2:ih"],
)
def test_signed_but_malformed_values_are_rejected(record):
    key = SiteKey.generate("t")
    value = ptr.wrap(record)
    sig = key.sign(ptr.signed_message(1, value))
    with pytest.raises(ForgedPointer):
        ptr.verify(key.public_key, 1, value, sig)


def test_oversized_values_are_rejected_before_verifying():
    with pytest.raises(ForgedPointer, match="1000"):
        ptr.verify(bytes(32), 1, b"x" * 1001, bytes(64))


def test_versions_never_go_back_and_ties_are_deterministic():
    key = SiteKey.generate("t")
    v1, v2 = ptr.sign(key, IH, 1, 1), ptr.sign(key, IH, 2, 2)
    assert ptr.is_newer(v1, None)
    assert ptr.is_newer(v2, v1)
    assert not ptr.is_newer(v1, v2)
    # A replayed v1 with a fresh, higher BEP 44 seq is still v1.
    assert not ptr.is_newer(ptr.sign(key, IH, 1, 99), v2)
    a, b = ptr.sign(key, bytes(20), 3, 3), ptr.sign(key, b"\xff" * 20, 3, 3)
    assert ptr.is_newer(a, b) != ptr.is_newer(b, a)
    assert not ptr.is_newer(a, a)


def test_trackers_and_web_seeds_travel_signed_and_bad_entries_are_skipped():
    key = SiteKey.generate("site")
    p = ptr.sign(key, bytes(20), 3, seq=1, trackers=("udp://127.0.0.1:6969",),
                 web_seeds=("http://127.0.0.1:8000/.peerweb/seed/",))
    assert p.trackers == ("udp://127.0.0.1:6969",)
    assert p.web_seeds == ("http://127.0.0.1:8000/.peerweb/seed/",)
    with pytest.raises(ValueError):
        ptr.encode_record(bytes(20), 1, web_seeds=("udp://not-http",))
    # A signed record whose lists hold junk still verifies; the junk is dropped.
    record = bencode.encode({b"ih": bytes(20), b"v": 1, b"tr": [b"ftp://x", 7],
                             b"ws": [b"javascript:alert(1)", b"https://ok.example/"]})
    value = ptr.wrap(record)
    signature = key.sign(ptr.signed_message(1, value))
    parsed = ptr.verify(key.public_key, 1, value, signature)
    assert parsed.trackers == () and parsed.web_seeds == ("https://ok.example/",)


def _good_json() -> dict[str, object]:
    return ptr.sign(SiteKey("t", bytes(32)), IH, 1, 1).to_json()


@pytest.mark.parametrize(
    "record",
    [None, [], "x", 1, 1e400, True,  # not an object: TypeError / AttributeError leaked
     {},
     {**_good_json(), "seq": "1"},  # a string, not a number
     {**_good_json(), "seq": True},  # a JSON boolean is not a number
     {**_good_json(), "seq": 1.0},
     {**_good_json(), "seq": -1},
     {**_good_json(), "seq": 2**63},  # past BEP 44's int64
     {**_good_json(), "seq": float("inf")},  # int(inf): OverflowError leaked
     {**_good_json(), "public_key": 5},
     {**_good_json(), "signature": None},
     {**_good_json(), "value": ["00"]},
     {**_good_json(), "value": "zz"},
     {**_good_json(), "salt": {}},
     {k: v for k, v in _good_json().items() if k != "signature"}],
)
def test_from_json_raises_only_forged_pointer(record):
    with pytest.raises(ForgedPointer, match="malformed pointer record|signature"):
        ptr.Pointer.from_json(record)


def test_from_json_reads_what_to_json_writes():
    good = _good_json()
    assert ptr.Pointer.from_json(good).to_json() == good
    without_salt = {k: v for k, v in good.items() if k != "salt"}
    assert ptr.Pointer.from_json(without_salt).to_json() == good
