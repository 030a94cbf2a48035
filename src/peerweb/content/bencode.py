"""Bencoding (BEP 3), the canonical byte form that BEP 44 signatures cover.

Pure functions; decoding is strict (sorted unique dict keys, no leading zeros, nothing
trailing) so that one value has exactly one encoding and a signature covers exactly it.
"""

from __future__ import annotations

from typing import TypeAlias

Value: TypeAlias = int | bytes | list["Value"] | dict[bytes, "Value"]

# BEP 44 caps a stored value at 1000 bytes; nothing peerweb decodes from a peer is larger
# than a metadata dict, so a nesting limit keeps a hostile input from exhausting the stack.
MAX_DEPTH = 32

# Integers (and string lengths) are signed 64-bit, as libtorrent's own decoder holds them:
# BEP 3 sets no bound, but a file size or a BEP 44 sequence number is at most 2**63 - 1, which
# takes 19 digits. Checking the digit count first means a hostile 5,000-digit integer costs
# nothing to refuse (and never reaches int(), which refuses more than 4,300 digits itself).
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
MAX_INT_DIGITS = len(str(INT_MAX))


class BencodeError(ValueError):
    """The bytes are not canonical bencoding."""


def encode(value: Value | str) -> bytes:
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(value: Value | str, out: list[bytes]) -> None:
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise ValueError(f"bencoded integers are signed 64-bit here; this one takes "
                             f"{value.bit_length()} bits")
        out.append(b"i%de" % value)
    elif isinstance(value, str):
        _encode(value.encode(), out)
    elif isinstance(value, bytes):
        out.append(b"%d:%s" % (len(value), value))
    elif isinstance(value, list):
        out.append(b"l")
        for item in value:
            _encode(item, out)
        out.append(b"e")
    elif isinstance(value, dict):
        out.append(b"d")
        for key in sorted(value):
            if not isinstance(key, bytes):
                raise TypeError("bencode dict keys must be bytes")
            _encode(key, out)
            _encode(value[key], out)
        out.append(b"e")
    else:
        raise TypeError(f"cannot bencode {type(value).__name__}")


def decode(data: bytes) -> Value:
    """The one value ``data`` canonically encodes; BencodeError for anything else."""
    value, end = _decode(data, 0, 0)
    if end != len(data):
        raise BencodeError(f"trailing bytes at offset {end}")
    return value


def _decode(data: bytes, pos: int, depth: int) -> tuple[Value, int]:
    if depth > MAX_DEPTH:
        raise BencodeError("nested too deeply")
    if pos >= len(data):
        raise BencodeError("truncated")
    lead = data[pos : pos + 1]
    if lead == b"i":
        end = data.find(b"e", pos)
        if end < 0:
            raise BencodeError("unterminated integer")
        number = _parse_int(data[pos + 1 : end])
        if number is None or not INT_MIN <= number <= INT_MAX:
            raise BencodeError(f"bad integer {data[pos + 1 : min(end, pos + 41)]!r}")
        return number, end + 1
    if lead.isdigit():
        colon = data.find(b":", pos)
        length = _parse_int(data[pos:colon]) if colon >= 0 else None
        if length is None or length < 0:
            raise BencodeError("bad string length")
        start = colon + 1
        end = start + length
        if end > len(data):
            raise BencodeError("truncated string")
        return data[start:end], end
    if lead == b"l":
        items: list[Value] = []
        pos += 1
        while data[pos : pos + 1] != b"e":
            item, pos = _decode(data, pos, depth + 1)
            items.append(item)
        return items, pos + 1
    if lead == b"d":
        result: dict[bytes, Value] = {}
        pos += 1
        previous: bytes | None = None
        while data[pos : pos + 1] != b"e":
            key, pos = _decode(data, pos, depth + 1)
            if not isinstance(key, bytes):
                raise BencodeError("dict key is not a string")
            if previous is not None and key <= previous:
                raise BencodeError("dict keys not sorted and unique")
            previous = key
            result[key], pos = _decode(data, pos, depth + 1)
        return result, pos + 1
    raise BencodeError(f"unexpected byte {lead!r} at offset {pos}")


def _parse_int(text: bytes) -> int | None:
    """The integer ``text`` canonically spells (ASCII digits, no leading zero, no ``-0``), if
    it has at most MAX_INT_DIGITS digits; else None."""
    digits = text[1:] if text.startswith(b"-") else text
    if not digits.isdigit() or len(digits) > MAX_INT_DIGITS:  # bytes.isdigit(): ASCII only
        return None
    if digits.startswith(b"0") and (len(digits) > 1 or text.startswith(b"-")):
        return None
    return int(text)
