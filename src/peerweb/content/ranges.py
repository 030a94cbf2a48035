"""HTTP Range requests (RFC 9110 section 14): parse a header against a known length.

Pure: takes the header text and the representation length, returns byte ranges or says why
not. Only single ranges are served as 206; a multi-range request gets the whole body (RFC 9110
allows a server to ignore Range), which every client handles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Header values longer than this are not a range any client sends; refuse to parse them.
MAX_RANGE_HEADER = 1024

# RFC 9110 section 14.1.2: first-pos / last-pos / suffix-length = 1*DIGIT, and DIGIT is ASCII
# 0-9 only (RFC 5234 appendix B.1). str.isdigit() would also take "²" (which int() refuses)
# and "٣" (which int() reads as 3).
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
# RFC 9110 section 5.6.3: optional whitespace is spaces and tabs, not every Unicode space.
_OWS = " \t"


@dataclass(frozen=True)
class ByteRange:
    """Half-open byte range [start, end)."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, total: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{total}"


class RangeNotSatisfiable(ValueError):
    """The header is a valid byte range set, but none of it lies within the body (416)."""


def parse_range(header: str | None, total: int) -> ByteRange | None:
    """The one byte range to serve, or None to serve the whole body.

    Malformed headers (including digits other than ASCII 0-9) and multi-range sets are
    ignored (whole body), as RFC 9110 section 14.2 permits; syntactically valid ranges that
    all start past the end raise RangeNotSatisfiable.
    """
    if header is None:
        return None
    header = header.strip(_OWS)
    if len(header) > MAX_RANGE_HEADER or header[:6].lower() != "bytes=":
        return None
    specs = [s.strip(_OWS) for s in header[6:].split(",")]
    parsed: list[ByteRange | None] = []
    for spec in specs:
        first, dash, last = spec.partition("-")
        if not dash:
            return None
        first, last = first.strip(_OWS), last.strip(_OWS)
        if first == "":
            if not _DIGITS.fullmatch(last):
                return None
            suffix = int(last)
            # "bytes=-0" asks for nothing: unsatisfiable.
            nonempty = suffix > 0 and total > 0
            parsed.append(ByteRange(max(0, total - suffix), total) if nonempty else None)
            continue
        if not _DIGITS.fullmatch(first) or (last and not _DIGITS.fullmatch(last)):
            return None
        start = int(first)
        end = total if not last else int(last) + 1
        if last and end <= start:
            return None  # last-pos < first-pos: invalid, ignore the header
        parsed.append(ByteRange(start, min(end, total)) if start < total else None)
    satisfiable = [r for r in parsed if r is not None]
    if not satisfiable:
        raise RangeNotSatisfiable(header)
    if len(specs) > 1:
        return None
    return satisfiable[0]
