"""Site bundles: a folder copied into the store and hashed into a hybrid torrent.

Publishing copies the folder first and hashes the copy, so what is seeded is exactly what
was hashed, whatever the author does to the original afterwards. The torrent is hybrid
(v1 + v2): v1 for every BitTorrent client, v2 (BEP 52) for per-file merkle roots, which stay
the same for unchanged files across versions.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import libtorrent as lt

from ..content.folder import SourceFile, piece_size_for, scan
from ..errors import PublishError


@dataclass(frozen=True)
class Bundle:
    """A hashed snapshot ready to seed."""

    torrent: bytes
    """The bencoded .torrent file."""
    infohash: bytes
    """v1 info-hash (20 bytes), the snapshot's address in BEP 46 pointers."""
    infohash_v2: bytes
    """v2 info-hash (32 bytes)."""
    content_dir: Path
    """The ``save_path`` for libtorrent; the site's files are under ``content_dir/name``."""
    name: str
    total_size: int
    file_count: int


StageWriter = Callable[[list[SourceFile], Path, Callable[[], None]], str]
"""Writes the files to hash for a folder's ``files`` into a staging folder, checking for a
cancel between files, and returns the torrent's name (its top folder there). The default
copies them as they are; a private site writes their ciphertext (``peerweb.private``)."""


def build(
    folder: Path,
    store: Path,
    require_index: bool = True,
    progress: Callable[[int, int], None] | None = None,
    trackers: tuple[str, ...] = (),
    web_seeds: tuple[str, ...] = (),
    cancel: threading.Event | None = None,
    writer: StageWriter | None = None,
) -> Bundle:
    """Copy ``folder`` into ``store`` and hash the copy into a hybrid torrent.

    Blocking (copying and hashing a big site takes a while): run it in a thread. The result
    lives in ``store/<v1 info-hash hex>/``; publishing the same bytes twice gives the same
    info-hash and reuses that folder. Setting ``cancel`` stops the build between two files
    or two pieces: it removes its copy and raises PublishError.
    """

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise PublishError("the publish was cancelled")

    files = scan(folder, require_index)
    name = folder.resolve().name or "site"
    total = sum(f.size for f in files)
    store.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=store))
    try:
        if writer is None:
            _copy(files, staging / name, check_cancel)
        else:
            name = writer(files, staging, check_cancel)
        stored = sum(p.stat().st_size for p in (staging / name).rglob("*") if p.is_file())
        piece_size = piece_size_for(stored)
        creator = lt.create_torrent(lt.list_files(str(staging / name)), piece_size)
        creator.set_creator("peerweb")
        for tier, url in enumerate(trackers):
            creator.add_tracker(url, tier)
        for url in web_seeds:
            creator.add_url_seed(url)
        pieces = creator.num_pieces()

        def on_piece(index: int) -> None:
            check_cancel()  # raised through libtorrent, which stops hashing
            if progress is not None:
                progress(index + 1, pieces)

        try:
            lt.set_piece_hashes(creator, str(staging), on_piece)
        except RuntimeError as exc:
            raise PublishError(f"hashing failed: {exc}") from exc
        check_cancel()
        torrent = lt.bencode(creator.generate())
        info = lt.torrent_info(torrent)
        hashes = info.info_hashes()
        infohash = hashes.v1.to_bytes()
        final = store / infohash.hex()
        built = Bundle(torrent, infohash, hashes.v2.to_bytes(), final, name, total, len(files))
        if is_whole(built):
            shutil.rmtree(staging)  # the same bytes published again: the copy seeded now
        else:
            _replace(final, staging)
        return built
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise



def is_whole(built: Bundle) -> bool:
    """Whether every file of the torrent is in ``built.content_dir`` at its size.

    A copy of an earlier version left in the store need not be: a superseded snapshot's
    files are deleted (``SnapshotStore.evict``) but its folder can stay behind, and the same
    bytes published again (a revert) would otherwise seed from the leftover."""
    files = lt.torrent_info(built.torrent).layout()
    for index in range(files.num_files()):
        if files.file_flags(index) & lt.file_storage.flag_pad_file:
            continue
        path = built.content_dir / files.file_path(index)
        try:
            if path.stat().st_size != files.file_size(index):
                return False
        except OSError:
            return False
    return True


def _replace(final: Path, staging: Path) -> None:
    """Put the hashed copy at ``final``, moving whatever is left there aside first."""
    if final.exists():
        stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=final.parent))
        final.rename(stale / final.name)
        shutil.rmtree(stale, ignore_errors=True)
    staging.rename(final)


def _copy(files: list[SourceFile], top: Path, check_cancel: Callable[[], None]) -> None:
    for source in files:
        check_cancel()
        destination = top / source.relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(source.path, destination)
        except OSError as exc:
            raise PublishError(f"copying {source.relative}: {exc.strerror}") from exc
