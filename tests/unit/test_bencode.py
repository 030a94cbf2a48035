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
