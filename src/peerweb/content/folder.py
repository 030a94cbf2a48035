"""A folder as a site: which files it publishes, and the piece size for their torrent.

Pure (file system reads only, no libtorrent): publishing, the origin's hand-off and the
folder watcher all need to know what a folder publishes without building a torrent.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import PublishError
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

