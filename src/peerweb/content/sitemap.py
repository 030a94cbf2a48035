"""Map URL paths onto the files of a site snapshot.

Pure: built from the torrent's file list (paths relative to the torrent's top folder), it
answers which file a request path names, with index.html for folders and the site's
404.html for misses. Paths are normalised segment by segment, so ``..``, encoded slashes and
NUL bytes can never name anything outside the snapshot.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote

INDEX_FILE = "index.html"
NOT_FOUND_FILE = "404.html"

# Types the stdlib table lacks or gets wrong on minimal systems without /etc/mime.types.
_EXTRA_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".htm": "text/html",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
    ".webp": "image/webp",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".txt": "text/plain",
    ".md": "text/markdown",
}
_TEXT_PREFIXES = ("text/",)
_TEXT_TYPES = {"application/json", "image/svg+xml", "text/javascript"}


class Kind(Enum):
    FILE = "file"
    REDIRECT = "redirect"  # a folder asked for without its trailing slash
    NOT_FOUND = "not_found"
    BAD_PATH = "bad_path"


@dataclass(frozen=True)
class Lookup:
    """What a request path resolves to."""

    kind: Kind
    file_index: int | None = None
    """Index of the file in the torrent, for FILE and for NOT_FOUND with a 404.html."""
    location: str | None = None
    """Where to redirect, for REDIRECT."""


def content_type(path: str) -> str:
    dot = path.rfind(".")
    ext = path[dot:].lower() if dot >= 0 else ""
    ctype = (_EXTRA_TYPES.get(ext) or mimetypes.guess_type("x" + ext)[0]
             or "application/octet-stream")
    if ctype.startswith(_TEXT_PREFIXES) or ctype in _TEXT_TYPES:
        ctype += "; charset=utf-8"
    return ctype


def normalise(raw_path: str) -> list[str] | None:
    """Split a URL path (still percent-encoded) into safe segments, or None if it is unsafe."""
    segments: list[str] = []
    for encoded in raw_path.split("/"):
        segment = unquote(encoded, errors="strict") if "%" in encoded else encoded
        if "/" in segment or "\\" in segment or "\x00" in segment:
            return None
        if segment in ("", "."):
            continue
        if segment == "..":
            return None
        segments.append(segment)
    return segments


class SiteMap:
    """Index of one snapshot's files by their path inside the site."""

    def __init__(self, paths: list[str]) -> None:
        """``paths`` are the torrent's file paths relative to its top folder, in file order;
        padding files are given as empty strings and never match."""
        self._paths = tuple(paths)
        self._files: dict[str, int] = {}
        self._folders: set[str] = {""}
        for index, path in enumerate(paths):
            if not path:
                continue
            self._files[path] = index
            parts = path.split("/")
            for depth in range(1, len(parts)):
                self._folders.add("/".join(parts[:depth]))

    def __len__(self) -> int:
        return len(self._files)

    def lookup(self, raw_path: str) -> Lookup:
        try:
            segments = normalise(raw_path)
        except UnicodeDecodeError:
            segments = None
        if segments is None:
            return Lookup(Kind.BAD_PATH)
        path = "/".join(segments)
        if path in self._files and not raw_path.endswith("/"):
            return Lookup(Kind.FILE, self._files[path])
        if path in self._folders:
            if raw_path and not raw_path.endswith("/"):
                return Lookup(Kind.REDIRECT, location=raw_path.rsplit("/", 1)[-1] + "/")
            index = f"{path}/{INDEX_FILE}" if path else INDEX_FILE
            if index in self._files:
                return Lookup(Kind.FILE, self._files[index])
        return Lookup(Kind.NOT_FOUND, self._files.get(NOT_FOUND_FILE))

    @property
    def paths(self) -> tuple[str, ...]:
        """Every file's path in file order ('' for padding)."""
        return self._paths

    def path_of(self, index: int) -> str:
        return self._paths[index]
