import pytest

from peerweb.content import bencode


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"i0e"),
        (-42, b"i-42e"),
        (b"", b"0:"),
        (b"spam", b"4:spam"),
        ([b"a", 1], b"l1:ai1ee"),
        ({b"b": 1, b"a": b"x"}, b"d1:a1:x1:bi1ee"),
    ],
)
def test_round_trip(value, encoded):
    assert bencode.encode(value) == encoded
    assert bencode.decode(encoded) == value


@pytest.mark.parametrize(
    "bad",
    [b"", b"i01e", b"i-0e", b"ie", b"i1", b"5:abc", b"d1:bi1e1:ai2ee", b"d1:ai1e1:ai2ee",
     b"l", b"i1ei2e", b"x", b"-1:a", b"di1ei1ee", b"l" * 100 + b"e" * 100],
)
def test_rejects_non_canonical(bad):
    with pytest.raises(bencode.BencodeError):
        bencode.decode(bad)


def test_refuses_booleans_and_str_keys():
    with pytest.raises(TypeError):
        bencode.encode(True)
    with pytest.raises(TypeError):
        bencode.encode({"a": 1})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "bad",
    [b"i" + b"1" * 5000 + b"e",  # past int()'s 4,300 digits: was a plain ValueError
     b"i" + b"9" * 20 + b"e",  # more digits than any int64
     b"i9223372036854775808e", b"i-9223372036854775809e",  # one past each int64 bound
     b"1" * 5000 + b":x",  # a string length of 5,000 digits
     b"i\xd9\xa3e", b"i\xc2\xb2e"],  # non-ASCII digits (UTF-8 of '٣', '²')
)
def test_integers_are_bounded_to_int64(bad):
    with pytest.raises(bencode.BencodeError):
        bencode.decode(bad)


def test_int64_bounds_round_trip():
    for value in (bencode.INT_MAX, bencode.INT_MIN):
        assert bencode.decode(bencode.encode(value)) == value
    assert bencode.MAX_INT_DIGITS == 19


def test_encode_refuses_what_decode_would_refuse():
    with pytest.raises(ValueError, match="64-bit"):
        bencode.encode(2**63)
    with pytest.raises(ValueError, match="64-bit"):
        bencode.encode(-(2**63) - 1)
