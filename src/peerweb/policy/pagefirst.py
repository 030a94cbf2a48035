"""Page first: what a visitor's node fetches first, next, and last.

A browser asks for index.html, then for the page's stylesheets, scripts and images and, at
the same time, for its video. In a crowd every visitor wants all of it at once, and the
uplinks are what everyone waits on. The order that serves a visitor best:

1. What the browser asks for first comes first: the pieces a read needs get a deadline
   (libtorrent requests them ahead of everything, from the fastest peers).
2. What the page will need next, the rest of its files, right after: every small file of
   the site gets the top piece priority from the start, so the picker brings the page's
   files before the media (rarest first among them).
3. Bulk media after that, rarest first among peers: a large file's pieces past the head of
   a read get no deadline. With deadlines every visitor would ask for the same next pieces
   in the same order (a crowd moving in lockstep, the publisher sending each piece to
   many), and a video's readahead would compete with the page's files for every uplink.
   A read that waits too long on the piece it is at (``BULK_PATIENCE_S``) asks for that one
   piece with a deadline, so a stream never waits for the whole file.

A piece is asked for once: a piece already requested by another read is waited on, not
asked again (the reader's rendezvous), and no read gives a bulk piece a deadline while it
is still merely ahead of the reader.

Pure code: plain values in, and ``now`` in seconds; no libtorrent, no asyncio.
"""

from __future__ import annotations

from collections.abc import Sequence

# Files up to this size are the page's (stylesheets, scripts, images, fonts); larger ones,
# and media by their extension, are bulk. 1 MiB holds any sensible page asset.
PAGE_FILE_BYTES = 1 << 20
MEDIA_SUFFIXES = (".mp4", ".webm", ".mkv", ".mov", ".m4v", ".ogv", ".mp3", ".ogg", ".opus",
                  ".flac", ".wav", ".m4a", ".iso", ".zip", ".tar", ".gz", ".bin")
# libtorrent piece/file priorities: 7 top, 4 default.
PAGE_PRIORITY = 7
BULK_PRIORITY = 4
# The head of a bulk read (a video's start, or where a seek lands) comes with deadlines, so
# playback starts at once; 256 KiB is a few seconds of a web video.
BULK_HEAD_BYTES = 256 << 10
# Deadlines (ms from the request). Page pieces: the first at once, each further one a little
# later; the head of a bulk read after the page's files.
PAGE_DEADLINE_MS = 0
BULK_HEAD_DEADLINE_MS = 500
DEADLINE_STEP_MS = 50
# A read stuck this long on a bulk piece asks for it with a deadline.
BULK_PATIENCE_S = 1.0


def is_bulk(path: str, size: int) -> bool:
    """Whether a file is bulk media (fetched rarest first, after the page) rather than a
    file of the page."""
    return size > PAGE_FILE_BYTES or path.lower().endswith(MEDIA_SUFFIXES)


def file_priorities(paths: Sequence[str], sizes: Sequence[int]) -> list[int]:
    """libtorrent file priorities for a site being downloaded: the page's files first.

    ``paths`` and ``sizes`` are the torrent's files in order; a pad file (empty path) keeps
    the default priority (libtorrent never downloads its zeros)."""
    return [PAGE_PRIORITY if path and not is_bulk(path, size) else BULK_PRIORITY
            for path, size in zip(paths, sizes, strict=True)]


def readahead_deadline(bulk: bool, offset_in_read: int, ahead: int) -> int | None:
    """The deadline (ms) to ask a piece with, or None to leave it to rarest first.

    ``bulk``: the file is bulk media (``is_bulk``). ``offset_in_read``: where the piece
    starts, in bytes from the start of the read (negative when the read starts inside it).
    ``ahead``: how many pieces past the one being read this piece is (0: that one)."""
    if not bulk:
        return PAGE_DEADLINE_MS + ahead * DEADLINE_STEP_MS
    if offset_in_read < BULK_HEAD_BYTES:
        return BULK_HEAD_DEADLINE_MS + ahead * DEADLINE_STEP_MS
    return None


def escalate(bulk: bool, asked_at: float, now: float, escalated: bool) -> bool:
    """Whether a read waiting on a piece asked without a deadline (since ``asked_at``) should
    now ask for it with one: only a bulk piece, once, after ``BULK_PATIENCE_S``."""
    return bulk and not escalated and now - asked_at >= BULK_PATIENCE_S


# On a first visit the page's files are read into memory as soon as the site's file list is
# here, index.html first, so that the browser's requests for them find them there rather
# than each waiting on its own pieces (bench/cold_page.py). At most this many bytes.
WARM_BYTES = 8 << 20
INDEX_PATH = "index.html"
# Which of the page's files a browser asks for first, after index.html: stylesheets and
# scripts block rendering, so they come before images and the rest.
_FIRST_SUFFIXES = ((".css",), (".js", ".mjs"))


def warm_up(paths: Sequence[str], sizes: Sequence[int], budget: int = WARM_BYTES) -> list[int]:
    """File indexes a first visit reads ahead of the browser, in the order to read them.

    ``paths`` are the site's paths in file order ("" for padding), ``sizes`` their sizes.
    index.html first, then stylesheets, scripts and the page's other files (never bulk
    media), each while the total stays within ``budget``; none when the site has no
    index.html (nothing says a browser will come for its files)."""
    if INDEX_PATH not in paths:
        return []

    def rank(index: int) -> tuple[int, int]:
        path = paths[index].lower()
        if path == INDEX_PATH:
            return 0, index
        for position, suffixes in enumerate(_FIRST_SUFFIXES, start=1):
            if path.endswith(suffixes):
                return position, index
        return len(_FIRST_SUFFIXES) + 1, index

    page = [i for i, (path, size) in enumerate(zip(paths, sizes, strict=True))
            if path and not is_bulk(path, size)]
    chosen: list[int] = []
    total = 0
    for index in sorted(page, key=rank):
        if total + sizes[index] <= budget:
            chosen.append(index)
            total += sizes[index]
    return chosen


def first_file_deadlines(file_offset: int, size: int,
                         piece_length: int) -> list[tuple[int, int]]:
    """(piece, deadline ms) for the file a first visit shows first (index.html), asked for
    the moment the metadata is here: on loopback the whole page is requested in one go
    then, and index.html's pieces came in among the others, often last
    (bench/cold_page.py)."""
    if size <= 0:
        return []
    first = file_offset // piece_length
    last = (file_offset + size - 1) // piece_length
    return [(piece, PAGE_DEADLINE_MS + n * DEADLINE_STEP_MS)
            for n, piece in enumerate(range(first, last + 1))]


def root_index(paths: Sequence[str]) -> int | None:
    """Which of a torrent's files (``paths`` as in the torrent: under the torrent's folder,
    or alone) is the site's own index.html, if any."""
    for position, path in enumerate(paths):
        if path == INDEX_PATH or (path.count("/") == 1 and path.endswith("/" + INDEX_PATH)):
            return position
    return None
