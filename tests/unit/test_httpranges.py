import pytest

from peerweb.content.ranges import ByteRange, RangeNotSatisfiable, parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", ByteRange(0, 100)),
        ("bytes=100-", ByteRange(100, 1000)),
        ("bytes=-100", ByteRange(900, 1000)),
        ("bytes=-5000", ByteRange(0, 1000)),
        ("bytes=990-5000", ByteRange(990, 1000)),
        ("Bytes=0-0", ByteRange(0, 1)),
        ("bytes=0-1,5-6", None),  # multi-range: whole body
        ("items=0-1", None),
        ("bytes=abc", None),
        ("bytes=5-1", None),
        ("bytes=1-2-3", None),
        ("bytes=" + "1" * 2000, None),
        # RFC 9110 section 14.1.2: DIGIT is ASCII 0-9. "²" made int() raise (a 500) and
        # "٣-٤" was read as bytes 3-4.
        ("bytes=\u00b2-", None),
        ("bytes=\u0663-\u0664", None),
        ("bytes=-\u0663", None),
        ("bytes=0-\uff19", None),  # FULLWIDTH DIGIT NINE
        ("bytes=\u00a00-1", None),  # NO-BREAK SPACE is not optional whitespace
        ("\tbytes=0-1 ", ByteRange(0, 2)),  # spaces and tabs are
        ("bytes=0-1,\u0663-\u0664", None),
    ],
)
def test_parse(header, expected):
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable(header):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


def test_empty_body_has_no_satisfiable_range():
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-", 0)


def test_content_range():
    assert ByteRange(0, 100).content_range(1000) == "bytes 0-99/1000"
