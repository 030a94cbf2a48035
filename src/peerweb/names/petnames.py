"""Petnames: the user's own address book, ``<data-dir>/names.json``.

A petname is a name this user gave a site (or a snapshot): local, instant, and nobody else's
to take (no squatting, no registry). The file is the user's alone (mode 0600, in the 0700
data dir) and is replaced atomically, so a reader sees the old book or the new one. The CLI
edits it without a running node; a running node notices the change on its next lookup (the
file's identity and mtime are checked, which costs one ``stat``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..content.addressing import Address, Target, parse_cli_address
from ..content.identity import PRIVATE_FILE_MODE, ensure_private_dir
from ..errors import BadAddress, NotFound, StorageError, UsageError
from ..fileio import write_atomic
from .records import check_label

BOOK_FILE = "names.json"
BOOK_FORMAT = 1


@dataclass(frozen=True)
class Petname:
    """One entry of the address book."""

    name: str
    """The petname: one DNS label, lowercase."""
    target: Target
    """SITE (a key: also a zone, so ``label.NAME`` resolves through it) or SNAPSHOT."""
    ident: str
    """Site id (base32) for SITE, lowercase hex info-hash for SNAPSHOT."""
    trackers: tuple[str, ...] = ()
    """Trackers of the magnet link the snapshot was added from."""

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"target": self.target.value, "ident": self.ident}
        if self.trackers:
            data["trackers"] = list(self.trackers)
        return data

    @property
    def address(self) -> Address:
        return Address(self.target, self.ident, trackers=self.trackers)


def check_petname(name: str) -> str:
    """The canonical petname; UsageError for a name that is no DNS label or that reads as
    a site id or an info-hash (a host name must mean one thing)."""
    label = check_label(name)
    with contextlib.suppress(BadAddress):
        if parse_cli_address(label).target is not Target.NAME:
            raise UsageError(f"{name!r} reads as a site id or an info-hash; pick another "
                             "name")
    return label


def parse_target(text: str) -> Address:
    """What ``name add NAME TARGET`` may name: a site id, an info-hash or a magnet link
    (a site's ``xs=urn:btpk:`` or a torrent's ``xt=urn:btih:``)."""
    address = parse_cli_address(text)
    if address.path not in ("", "/"):
        raise UsageError("a petname names a whole site or snapshot, not a path inside it")
    return address


class PetnameBook:
    """The address book in ``<data-dir>/names.json``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / BOOK_FILE
        self._entries: dict[str, Petname] = {}
        self._seen: tuple[int, int, int] | None = None  # (inode, mtime_ns, size) read

    def get(self, name: str) -> Petname | None:
        self._refresh()
        return self._entries.get(name.lower())

    def entries(self) -> list[Petname]:
        self._refresh()
        return [self._entries[n] for n in sorted(self._entries)]

    def add(self, name: str, target: Address, replace: bool = False) -> Petname:
        name = check_petname(name)
        if target.target not in (Target.SITE, Target.SNAPSHOT):
            raise UsageError("a petname names a site or a snapshot")
        entry = Petname(name, target.target, target.ident, target.trackers)
        with self._editing() as entries:
            old = entries.get(name)
            if old is not None and old != entry and not replace:
                raise UsageError(f"{name!r} already names {old.ident}; remove it first with "
                                 f"`peerweb name rm {name}` (or add with --replace)")
            entries[name] = entry
        return entry

    def remove(self, name: str) -> Petname:
        with self._editing() as entries:
            entry = entries.pop(name.lower(), None)
            if entry is None:
                raise NotFound(f"no petname {name!r}; `peerweb name list` shows them")
        return entry

    # -- the file ------------------------------------------------------------------------

    def _refresh(self) -> None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            self._entries, self._seen = {}, None
            return
        seen = (info.st_ino, info.st_mtime_ns, info.st_size)
        if seen != self._seen:
            self._entries = _decode(self.path.read_bytes(), self.path)
            self._seen = seen

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, Petname]]:
        """The entries to change, read and written back under an exclusive lock, so two
        commands editing the book at once do not lose each other's change."""
        ensure_private_dir(self.path.parent)
        lock_path = self.path.with_name(f".{BOOK_FILE}.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._seen = None
            self._refresh()
            entries = dict(self._entries)
            yield entries
            write_private(self.path, _encode(entries))
            self._entries, self._seen = entries, None
        finally:
            os.close(fd)


def _encode(entries: dict[str, Petname]) -> bytes:
    book = {"format": BOOK_FORMAT,
            "names": {name: entries[name].to_json() for name in sorted(entries)}}
    return json.dumps(book, indent=1).encode() + b"\n"


def _decode(raw: bytes, path: Path) -> dict[str, Petname]:
    try:
        book = json.loads(raw)
        names = book["names"]
        entries = {}
        for name, data in names.items():
            target = Target(data["target"])
            if target not in (Target.SITE, Target.SNAPSHOT):
                raise ValueError(target)
            trackers = tuple(str(t) for t in data.get("trackers", ()))
            entries[name] = Petname(str(name), target, str(data["ident"]), trackers)
        return entries
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StorageError(f"the address book {path} is damaged ({exc}); fix or remove "
                           "it") from exc


def write_private(path: Path, data: bytes) -> None:
    write_atomic(path, data, PRIVATE_FILE_MODE)
