"""Reading pieces a node already holds straight from the site's file, checked again.

Asking libtorrent for a held piece (``read_piece``) costs a disk job, an alert and a copy per
piece; a stream through the gateway then falls behind the swarm. Reading the file directly, a
run of pieces at a time, is much cheaper; but libtorrent may count a piece as held while its
blocks still sit in a write buffer, and a file can be changed behind the node's back. So every
piece read this way is held to its SHA-1 from the torrent: the run stops at the first piece
that does not match, and the caller asks libtorrent for that one. No byte reaches a visitor
unchecked.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PieceSpan:
    """One v1 piece of a file: where its bytes start in the file, how many lie in the file,
    its full size in the torrent and its SHA-1."""

    offset: int
    length: int
    piece_size: int
    sha1: bytes


def read_run(path: Path, spans: list[PieceSpan]) -> list[bytes]:
    """The verified bytes of consecutive ``spans`` of ``path``, as far as they check out.

    In a hybrid torrent every file starts on a piece boundary and is followed by a pad file,
    so a file's last piece is its tail plus zeros up to the piece size. A missing or short
    file gives fewer pieces (possibly none), never an error.
    """
    data = _pread(path, spans)
    verified: list[bytes] = []
    view = memoryview(data)
    for span in spans:
        begin = span.offset - spans[0].offset
        chunk = view[begin:begin + span.length]
        if len(chunk) != span.length or not matches(chunk, span):
            break
        verified.append(bytes(chunk))
    return verified


def read_run_unchecked(path: Path, spans: list[PieceSpan]) -> list[memoryview]:
    """The bytes of consecutive ``spans`` of ``path`` as they are on disk, without their
    hash check, for a reader that authenticates them itself (a private file's chunks): views
    into one read, no copy per piece. A short file gives fewer pieces."""
    view = memoryview(_pread(path, spans))
    pieces: list[memoryview] = []
    for span in spans:
        begin = span.offset - spans[0].offset
        if len(view) < begin + span.length:
            break
        pieces.append(view[begin:begin + span.length])
    return pieces


def _pread(path: Path, spans: list[PieceSpan]) -> bytes:
    """The bytes ``spans`` cover, or fewer (none for a missing file)."""
    if not spans:
        return b""
    start = spans[0].offset
    total = spans[-1].offset + spans[-1].length - start
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return b""
    try:
        return os.pread(fd, total, start)
    except OSError:
        return b""
    finally:
        os.close(fd)


def matches(data: bytes | memoryview, span: PieceSpan) -> bool:
    """Whether ``data`` (the piece's bytes in the file, with or without its padding) is the
    piece ``span`` describes."""
    if len(data) > span.piece_size or len(data) < span.length:
        return False
    digest = hashlib.sha1(data)
    if span.piece_size > len(data):
        digest.update(bytes(span.piece_size - len(data)))
    return digest.digest() == span.sha1
