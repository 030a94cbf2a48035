"""Held pieces read straight from disk are checked against the torrent's v1 piece hashes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from peerweb.swarm.diskpiece import PieceSpan, read_run

PIECE = 1024


def spans_for(data: bytes) -> list[PieceSpan]:
    """The v1 spans of a file that starts on a piece boundary and is padded with zeros."""
    spans = []
    for offset in range(0, len(data), PIECE):
        chunk = data[offset:offset + PIECE]
        sha1 = hashlib.sha1(chunk + bytes(PIECE - len(chunk))).digest()
        spans.append(PieceSpan(offset, len(chunk), PIECE, sha1))
    return spans


def test_a_run_of_intact_pieces_comes_back_whole(tmp_path: Path) -> None:
    data = bytes(range(256)) * 14  # 3.5 pieces: the last one is padded in the torrent
    path = tmp_path / "f"
    path.write_bytes(data)
    assert b"".join(read_run(path, spans_for(data))) == data


def test_a_run_stops_at_the_first_altered_piece(tmp_path: Path) -> None:
    data = bytes(range(256)) * 16
    path = tmp_path / "f"
    path.write_bytes(data[:2 * PIECE] + b"X" + data[2 * PIECE + 1:])
    pieces = read_run(path, spans_for(data))
    assert pieces == [data[:PIECE], data[PIECE:2 * PIECE]]


def test_bytes_not_yet_written_are_not_passed_off_as_the_piece(tmp_path: Path) -> None:
    data = b"\x07" * (2 * PIECE)
    path = tmp_path / "f"
    path.write_bytes(data[:PIECE] + bytes(PIECE))  # the second piece is still zeros on disk
    assert read_run(path, spans_for(data)) == [data[:PIECE]]


def test_a_missing_or_short_file_gives_what_it_can(tmp_path: Path) -> None:
    data = b"\x01" * (3 * PIECE)
    assert read_run(tmp_path / "absent", spans_for(data)) == []
    path = tmp_path / "short"
    path.write_bytes(data[:PIECE + 10])
    assert read_run(path, spans_for(data)) == [data[:PIECE]]
    assert read_run(path, []) == []
