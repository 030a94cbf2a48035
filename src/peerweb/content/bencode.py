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
        text = data[pos + 1 : end]
        if not _canonical_int(text):
            raise BencodeError(f"bad integer {text!r}")
        return int(text), end + 1
    if lead.isdigit():
        colon = data.find(b":", pos)
        if colon < 0 or not _canonical_int(data[pos:colon]) or data[pos : pos + 1] == b"-":
            raise BencodeError("bad string length")
        start = colon + 1
        end = start + int(data[pos:colon])
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


def _canonical_int(text: bytes) -> bool:
    digits = text[1:] if text.startswith(b"-") else text
    if not digits.isdigit():
        return False
    return not (digits.startswith(b"0") and (len(digits) > 1 or text.startswith(b"-")))
