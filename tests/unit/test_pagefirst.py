"""Page first, with plain values: which files are the page's, the priorities a download
starts with, which pieces a read asks with a deadline, and when a waiting read escalates."""

from __future__ import annotations

from peerweb.policy.pagefirst import (
    BULK_HEAD_BYTES,
    BULK_HEAD_DEADLINE_MS,
    BULK_PATIENCE_S,
    BULK_PRIORITY,
    DEADLINE_STEP_MS,
    PAGE_DEADLINE_MS,
    PAGE_FILE_BYTES,
    PAGE_PRIORITY,
    WARM_BYTES,
    escalate,
    file_priorities,
    first_file_deadlines,
    is_bulk,
    readahead_deadline,
    root_index,
    warm_up,
)
from peerweb.policy.readplan import READAHEAD_PIECES, ReadPlan

PL = 64 << 10


def test_small_files_are_the_page_and_large_or_media_files_are_bulk() -> None:
    assert not is_bulk("site/index.html", 700)
    assert not is_bulk("site/assets/app.js", PAGE_FILE_BYTES)
    assert is_bulk("site/media/big.bin", 40_000_000)
    assert is_bulk("site/assets/logo.css", PAGE_FILE_BYTES + 1)
    assert is_bulk("site/clip.MP4", 9000)  # a short clip is still media


def test_a_download_starts_with_the_page_files_on_top_and_pads_left_alone() -> None:
    paths = ["site/index.html", ".pad/12345", "site/media/big.bin", "", "site/a.css"]
    sizes = [900, 12345, 40_000_000, 100, 30_000]
    assert file_priorities(paths, sizes) == [PAGE_PRIORITY, PAGE_PRIORITY, BULK_PRIORITY,
                                             BULK_PRIORITY, PAGE_PRIORITY]
    assert PAGE_PRIORITY > BULK_PRIORITY > 0  # bulk still comes, only after


def test_page_pieces_come_at_once_nearest_first() -> None:
    assert readahead_deadline(False, 0, 0) == PAGE_DEADLINE_MS
    assert readahead_deadline(False, 10 * PL, 3) == PAGE_DEADLINE_MS + 3 * DEADLINE_STEP_MS


def test_only_the_head_of_a_bulk_read_gets_deadlines_and_after_the_page() -> None:
    head = readahead_deadline(True, 0, 0)
    assert head is not None and head == BULK_HEAD_DEADLINE_MS > PAGE_DEADLINE_MS
    assert readahead_deadline(True, -1000, 0) == BULK_HEAD_DEADLINE_MS  # read starts inside
    assert readahead_deadline(True, BULK_HEAD_BYTES - 1, 2) == (BULK_HEAD_DEADLINE_MS
                                                                + 2 * DEADLINE_STEP_MS)
    assert readahead_deadline(True, BULK_HEAD_BYTES, 1) is None  # rarest first from here


def test_a_read_into_the_middle_of_a_video_gets_its_head_at_the_seek() -> None:
    seek = 30_000_000
    plan = ReadPlan(start=seek, end=40_000_000, file_offset=PL, file_size=40_000_000,
                    piece_length=PL, bulk=True)
    asked = plan.readahead(plan.first, set(), b"")
    assert len(asked) == READAHEAD_PIECES + 1
    deadlines = [deadline for _, deadline in asked]
    with_deadline = [d for d in deadlines if d is not None]
    # The pieces within BULK_HEAD_BYTES of the seek come first, in order; the rest wait.
    assert len(with_deadline) == BULK_HEAD_BYTES // PL + 1
    assert with_deadline == sorted(with_deadline)
    assert deadlines[len(with_deadline):] == [None] * (len(deadlines) - len(with_deadline))


def test_a_bulk_read_further_along_asks_nothing_with_a_deadline() -> None:
    plan = ReadPlan(start=0, end=40_000_000, file_offset=0, file_size=40_000_000,
                    piece_length=PL, bulk=True)
    later = plan.first + 20
    assert all(deadline is None for _, deadline in plan.readahead(later, set(), b""))
    # Pieces already asked for (pending) or held are not asked again.
    held = bytearray(plan.last + 1)
    held[later + 1] = 1
    asked = [p for p, _ in plan.readahead(later, {later}, held)]
    assert later not in asked and later + 1 not in asked and later + 2 in asked


def test_a_page_file_read_keeps_its_deadlines() -> None:
    plan = ReadPlan(start=0, end=3 * PL, file_offset=5 * PL, file_size=3 * PL,
                    piece_length=PL)
    assert plan.readahead(5, set(), b"") == [(5, 0), (6, DEADLINE_STEP_MS),
                                             (7, 2 * DEADLINE_STEP_MS)]


def test_a_waiting_bulk_read_escalates_once_after_its_patience() -> None:
    asked = 100.0
    assert not escalate(True, asked, asked + BULK_PATIENCE_S - 0.01, False)
    assert escalate(True, asked, asked + BULK_PATIENCE_S, False)
    assert not escalate(True, asked, asked + 60, True)  # already asked with a deadline
    assert not escalate(False, asked, asked + 60, False)  # page pieces had one from the start


def test_a_first_visit_reads_index_then_styles_scripts_and_the_rest_never_media() -> None:
    paths = ["assets/a.png", "assets/b.js", "", "assets/c.css", "index.html",
             "media/clip.mp4", "about/index.html", "assets/huge.png"]
    sizes = [5000, 4000, 100, 3000, 900, 9000, 800, PAGE_FILE_BYTES + 1]
    assert warm_up(paths, sizes) == [4, 3, 1, 0, 6]


def test_the_warm_up_stays_within_its_budget_and_needs_an_index() -> None:
    paths = ["index.html", "a.css", "b.js", "c.png"]
    sizes = [1000, 5000, 2000, 1500]
    assert warm_up(paths, sizes, budget=4600) == [0, 2, 3]  # a.css does not fit
    assert warm_up(paths, sizes, budget=10**9) == [0, 1, 2, 3]
    assert warm_up(["a.css", "b.js"], [10, 10]) == []  # no page a browser would open
    assert sum(sizes) < WARM_BYTES


def test_the_first_files_pieces_are_asked_first_nearest_soonest() -> None:
    # index.html of 1.5 pieces, starting half-way into piece 3.
    assert first_file_deadlines(3 * PL + PL // 2, PL + PL // 2, PL) == [
        (3, PAGE_DEADLINE_MS), (4, PAGE_DEADLINE_MS + DEADLINE_STEP_MS)]
    assert first_file_deadlines(2 * PL, 10, PL) == [(2, PAGE_DEADLINE_MS)]
    assert first_file_deadlines(2 * PL, 0, PL) == []  # an empty file needs no piece


def test_the_sites_own_index_is_found_under_the_torrents_folder() -> None:
    assert root_index(["site/assets/a.css", "site/about/index.html", "site/index.html"]) == 2
    assert root_index(["index.html"]) == 0
    assert root_index(["site/about/index.html", "site/a.css"]) is None
