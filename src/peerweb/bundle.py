"""Site bundles: a folder checked, copied into the store and hashed into a hybrid torrent.

Publishing copies the folder first and hashes the copy, so what is seeded is exactly what
was hashed, whatever the author does to the original afterwards. The torrent is hybrid
(v1 + v2): v1 for every BitTorrent client, v2 (BEP 52) for per-file merkle roots, which stay
the same for unchanged files across versions.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import libtorrent as lt

from .errors import PublishError
from .sitemap import INDEX_FILE

# Every file starts on a piece boundary in v2 and hybrid torrents, so each small file costs
# at least one piece: small pieces waste little on pages of small files.
MIN_PIECE_SIZE = 64 * 1024
MAX_PIECE_SIZE = 4 * 1024 * 1024
# Above this many pieces the metadata (20 + 32 bytes a piece) grows past a quick fetch.
TARGET_PIECES = 2000


@dataclass(frozen=True)
class SourceFile:
    relative: str
    """Path inside the site, '/'-separated."""
    path: Path
    """Where the bytes are read from (symlinks inside the folder are followed)."""
    size: int


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


def scan(folder: Path, require_index: bool = True) -> list[SourceFile]:
    """The files a folder publishes, or PublishError saying what to fix.

    Hidden files and folders (names starting with '.') are left out: they are where
    version-control data and editor state live.
    """
    if not folder.is_dir():
        raise PublishError(f"{folder} is not a folder")
    root = folder.resolve()
    found: list[SourceFile] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        current = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in list(dirnames):
            if (current / name).is_symlink():
                raise PublishError(
                    f"{current / name} is a symlinked folder; copy it in or remove the link"
                )
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = current / name
            relative = path.relative_to(root).as_posix()
            target = path
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(root):
                    raise PublishError(
                        f"{relative} links outside the folder (to {target}); "
                        "copy the file in or remove the link"
                    )
            try:
                info = target.stat()
            except OSError as exc:
                raise PublishError(f"cannot read {relative}: {exc.strerror}") from exc
            if not stat.S_ISREG(info.st_mode):
                raise PublishError(f"{relative} is not a regular file")
            try:
                with open(target, "rb") as handle:
                    handle.read(1)
            except OSError as exc:
                raise PublishError(f"cannot read {relative}: {exc.strerror}") from exc
            found.append(SourceFile(relative, target, info.st_size))
    if not found:
        raise PublishError(f"{folder} has no files to publish")
    if require_index and not any(f.relative == INDEX_FILE for f in found):
        raise PublishError(
            f"{folder} has no {INDEX_FILE}; add one, or pass --no-index to publish it anyway"
        )
    return found


def piece_size_for(total: int) -> int:
    size = MIN_PIECE_SIZE
    while size < MAX_PIECE_SIZE and total // size > TARGET_PIECES:
        size *= 2
    return size


def build(
    folder: Path,
    store: Path,
    require_index: bool = True,
    progress: Callable[[int, int], None] | None = None,
    trackers: tuple[str, ...] = (),
    web_seeds: tuple[str, ...] = (),
) -> Bundle:
    """Copy ``folder`` into ``store`` and hash the copy into a hybrid torrent.

    Blocking (copying and hashing a big site takes a while): run it in a thread. The result
    lives in ``store/<v1 info-hash hex>/``; publishing the same bytes twice gives the same
    info-hash and reuses that folder.
    """
    files = scan(folder, require_index)
    name = folder.resolve().name or "site"
    total = sum(f.size for f in files)
    store.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=store))
    try:
        for source in files:
            destination = staging / name / source.relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copyfile(source.path, destination)
            except OSError as exc:
                raise PublishError(f"copying {source.relative}: {exc.strerror}") from exc
        piece_size = piece_size_for(total)
        creator = lt.create_torrent(lt.list_files(str(staging / name)), piece_size)
        creator.set_creator("peerweb")
        for tier, url in enumerate(trackers):
            creator.add_tracker(url, tier)
        for url in web_seeds:
            creator.add_url_seed(url)
        pieces = creator.num_pieces()

        def on_piece(index: int) -> None:
            if progress is not None:
                progress(index + 1, pieces)

        try:
            lt.set_piece_hashes(creator, str(staging), on_piece)
        except RuntimeError as exc:
            raise PublishError(f"hashing failed: {exc}") from exc
        torrent = lt.bencode(creator.generate())
        info = lt.torrent_info(torrent)
        hashes = info.info_hashes()
        infohash = hashes.v1.to_bytes()
        final = store / infohash.hex()
        if final.exists():
            shutil.rmtree(staging)
        else:
            staging.rename(final)
        return Bundle(torrent, infohash, hashes.v2.to_bytes(), final, name, total, len(files))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

