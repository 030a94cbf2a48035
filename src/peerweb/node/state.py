"""What a node remembers across restarts, in ``<data-dir>/state.json``.

Written atomically (temporary file, fsync, rename), so a node killed mid-write keeps the
previous state rather than a torn file. Pointers are stored with their signatures and
re-verified on load: a state file edited by hand cannot smuggle in an unsigned version.

Loading is salvage, not all or nothing: a disk error, a bad edit or a bug elsewhere may
damage one entry, and one entry must not cost the others (nor stop the node). ``decode``
(pure) keeps every valid part and lists what it set aside; ``load`` copies the original
file beside it before anything can overwrite it, and logs each part dropped.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..content.identity import normalise_site_id
from ..content.pointer import Pointer, is_newer
from ..errors import BadAddress, ForgedPointer, StorageError

log = logging.getLogger(__name__)

STATE_FORMAT = 1


# Versions remembered per site for `peerweb log`; older entries are forgotten.
HISTORY_LIMIT = 100


@dataclass
class VersionEntry:
    """One version of a site as this node learned of it."""

    version: int
    infohash: str
    seen: float
    changed: list[str] | None = None
    """Paths added, changed or removed since the previous version (None: not known here)."""
    pointer: Pointer | None = None
    """The version's signed pointer, if this node saw it: peers ask for it to fetch an
    older version they can trust (``peerweb restore --version N``)."""

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"version": self.version, "infohash": self.infohash,
                                 "seen": self.seen, "changed": self.changed}
        if self.pointer is not None:
            found["pointer"] = self.pointer.to_json()
        return found

    @classmethod
    def from_json(cls, raw: object) -> VersionEntry | None:
        """The entry ``raw`` holds, or None if it is not one (a state file is file input)."""
        if not isinstance(raw, dict):
            return None
        version, tid, seen = _positive_int(raw.get("version")), raw.get("infohash"), \
            _number(raw.get("seen"))
        changed = raw.get("changed")
        if version is None or seen is None or not isinstance(tid, str) \
                or not _INFOHASH_RE.fullmatch(tid):
            return None
        if changed is not None and not (isinstance(changed, list)
                                        and all(isinstance(p, str) for p in changed)):
            return None
        return cls(version, tid, seen, changed, _entry_pointer(raw.get("pointer"), version, tid))


def _entry_pointer(raw: object, version: int, tid: str) -> Pointer | None:
    """A history entry's signed pointer, re-verified, if it is that version's (else None:
    the entry stays, without it)."""
    if raw is None:
        return None
    try:
        pointer = Pointer.from_json(raw)
    except ForgedPointer:
        return None
    return pointer if (pointer.version, pointer.infohash.hex()) == (version, tid) else None


@dataclass
class SiteRecord:
    """A site this node knows: the newest pointer it has verified, and how it was used."""

    pointer: Pointer
    last_used: float = 0.0
    pinned: bool = False
    history: list[VersionEntry] = field(default_factory=list)
    mirrored_until: float = 0.0
    """Volunteer mode: pinned for an origin in need until then (0: not a mirror lease)."""
    mirrored_since: float = 0.0
    """Volunteer mode: when the current chain of renewed mirror leases began (0: none)."""
    unconfirmed: bool = False
    """Known only from a pointer pushed to this node: the DHT and the holders are asked
    before a visit is served from it."""

    def remember(self, pointer: Pointer, seen: float) -> None:
        """Add a version to the history (once per info-hash, at its newest version)."""
        tid = pointer.infohash.hex()
        for entry in self.history:
            if entry.infohash == tid:
                if entry.version >= pointer.version:
                    if entry.pointer is None and entry.version == pointer.version:
                        entry.pointer = pointer  # kept by a node from before pointers were
                    return
                # An earlier version's bytes published again (a revert): that snapshot is
                # now the newest version, and what it changed is against the one before it.
                self.history.remove(entry)
                break
        self.history.append(VersionEntry(pointer.version, tid, seen, pointer=pointer))
        self.history.sort(key=lambda entry: entry.version)
        del self.history[:-HISTORY_LIMIT]


@dataclass
class PublishedRecord:
    """A site this node publishes: the key holder's own memory of the version counter."""

    key_name: str
    version: int
    infohash: str
    trackers: tuple[str, ...] = ()
    web_seeds: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    """DNS domains the site's pointer claims (``peerweb publish --domain``)."""


@dataclass
class NodeState:
    sites: dict[str, SiteRecord] = field(default_factory=dict)
    published: dict[str, PublishedRecord] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)
    """v1-only torrents made by `peerweb export --v1`: their info-hash -> the snapshot's."""
    folders: dict[str, str] = field(default_factory=dict)
    """Folders published here (resolved path) -> the key each was last published with."""

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "sites": {
                sid: {"pointer": r.pointer.to_json(), "last_used": r.last_used,
                      "pinned": r.pinned, "history": [e.to_json() for e in r.history],
                      "mirrored_until": r.mirrored_until,
                      "mirrored_since": r.mirrored_since, "unconfirmed": r.unconfirmed}
                for sid, r in self.sites.items()
            },
            "exports": dict(self.exports),
            "folders": dict(self.folders),
            "published": {
                sid: {"key": r.key_name, "version": r.version, "infohash": r.infohash,
                      "trackers": list(r.trackers), "web_seeds": list(r.web_seeds),
                      "domains": list(r.domains)}
                for sid, r in self.published.items()
            },
        }


@dataclass(frozen=True)
class Dropped:
    """One part of a state file that loading set aside (the kept copy still holds it)."""

    where: str
    """Which part: ``the file``, ``sites``, ``sites.<id>``, ``sites.<id>.history[2]``..."""
    reason: str
    """Why it could not be used, in words for the log."""


@dataclass(frozen=True)
class Loaded:
    """What ``decode`` made of a state file's bytes."""

    state: NodeState
    """Everything in the file that is valid."""
    dropped: tuple[Dropped, ...] = ()
    """What was not, in file order; empty when the file was whole."""


# A number in the state file longer than this is damage, not a time, a version or a seq
# (2**63 has 19 digits). Refusing it while parsing keeps one such number from making json
# refuse the whole file (it does past 4,300 digits).
MAX_JSON_INT_DIGITS = 20
_INFOHASH_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def decode(data: bytes) -> Loaded:
    """The valid part of a state file, and what was not valid. Pure; never raises.

    Each site, published record, export and history entry stands alone: a damaged or
    hand-edited one (say, a pointer whose signature no longer verifies) is dropped by
    itself, and a malformed optional field (``pinned``, ``last_used``...) of an otherwise
    valid site falls back to its default.
    """
    dropped: list[Dropped] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Keep going: bytes damaged inside one entry then make only that entry invalid.
        dropped.append(Dropped("the file", f"not UTF-8 ({exc.reason} at byte {exc.start})"))
        text = data.decode("utf-8", errors="replace")
    try:
        raw = json.loads(text, parse_int=_bounded_int)
    except (ValueError, RecursionError) as exc:
        dropped.append(Dropped("the file", f"not JSON: {str(exc)[:200]}"))
        return Loaded(NodeState(), tuple(dropped))
    if not isinstance(raw, dict):
        dropped.append(Dropped("the file", f"a JSON {_kind(raw)}, not an object"))
        return Loaded(NodeState(), tuple(dropped))
    state = NodeState()
    for key, value in raw.items():
        if key == "format":
            if type(value) is not int or value != STATE_FORMAT:
                dropped.append(Dropped("format", f"{_show(value)} is not {STATE_FORMAT}; "
                                                 f"read as format {STATE_FORMAT}"))
            continue
        section = _SECTIONS.get(key)
        if section is None:
            dropped.append(Dropped(_where(key), f"not a part of state format {STATE_FORMAT}"))
        elif not isinstance(value, dict):
            dropped.append(Dropped(key, f"a JSON {_kind(value)}, not an object"))
        else:
            section(state, value, dropped)
    return Loaded(state, tuple(dropped))


def _bounded_int(text: str) -> int | float:
    return int(text) if len(text.lstrip("-")) <= MAX_JSON_INT_DIGITS else math.nan


def _where(*parts: str) -> str:
    """A printable, bounded name for a part of the file (its keys come from the file)."""
    return ".".join(_show(part) for part in parts)


def _show(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return repr(text[:80])[1:-1]


def _kind(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
             float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _number(value: object) -> float | None:
    """A finite JSON number as a float (a time), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _positive_int(value: object) -> int | None:
    return value if type(value) is int and value >= 1 else None


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


_SITE_FIELDS: tuple[tuple[str, Callable[[object], object]], ...] = (
    ("last_used", _number), ("pinned", _flag), ("mirrored_until", _number),
    ("mirrored_since", _number), ("unconfirmed", _flag))


def _site_entries(name: str, section: dict[str, Any], dropped: list[Dropped],
                  ) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(key as written, where, normalised site id, entry) of each entry of a section keyed by
    site id that is an object; the others are set aside."""
    for key, raw in section.items():
        where = _where(name, key)
        try:
            sid = normalise_site_id(key)
        except BadAddress:
            dropped.append(Dropped(where, "not a site id"))
            continue
        if not isinstance(raw, dict):
            dropped.append(Dropped(where, f"a JSON {_kind(raw)}, not an object"))
            continue
        yield key, where, sid, raw


def _decode_sites(state: NodeState, section: dict[str, Any], dropped: list[Dropped]) -> None:
    for key, where, sid, raw in _site_entries("sites", section, dropped):
        try:
            pointer = Pointer.from_json(raw.get("pointer"))
        except ForgedPointer as exc:
            dropped.append(Dropped(where, str(exc)))
            continue
        if pointer.site_id != sid:
            dropped.append(Dropped(where, "its pointer is signed for another site"))
            continue
        record = SiteRecord(pointer)
        for name, check in _SITE_FIELDS:
            if name not in raw:
                continue
            value = check(raw[name])
            if value is None:
                dropped.append(Dropped(_where("sites", key, name), f"{_show(raw[name])} is "
                                       f"not valid; using {getattr(record, name)}"))
            else:
                setattr(record, name, value)
        record.history = _decode_history(raw.get("history", []), pointer, key, dropped)
        record.remember(pointer, record.last_used)
        previous = state.sites.get(sid)
        if previous is not None:  # one site spelt in two cases: keep the newer pointer
            replace = is_newer(pointer, previous.pointer)
            dropped.append(Dropped(where if not replace else _where("sites", sid),
                                   "a second entry for the same site, with an older pointer"))
            if not replace:
                continue
        state.sites[sid] = record


def _decode_history(raw: object, pointer: Pointer, key: str,
                    dropped: list[Dropped]) -> list[VersionEntry]:
    where = _where("sites", key, "history")
    if not isinstance(raw, list):
        dropped.append(Dropped(where, f"a JSON {_kind(raw)}, not an array"))
        return []
    history: list[VersionEntry] = []
    for index, item in enumerate(raw):
        entry = VersionEntry.from_json(item)
        if entry is None:
            dropped.append(Dropped(f"{where}[{index}]", "not a version entry"))
        elif entry.version > pointer.version:
            # Entries above the verified pointer's version cannot be trusted.
            dropped.append(Dropped(f"{where}[{index}]", f"version {entry.version} is above "
                                                       f"the signed {pointer.version}"))
        else:
            history.append(entry)
    return history


def _decode_published(state: NodeState, section: dict[str, Any],
                      dropped: list[Dropped]) -> None:
    for key, where, sid, raw in _site_entries("published", section, dropped):
        name, version, tid = raw.get("key"), _positive_int(raw.get("version")), \
            raw.get("infohash")
        problem = ("no key name" if not isinstance(name, str) or not name
                   else "no positive integer version" if version is None
                   else "no hex info-hash" if not isinstance(tid, str)
                   or not _INFOHASH_RE.fullmatch(tid) else "")
        if problem or sid in state.published:
            dropped.append(Dropped(where, problem or "a second entry for the same site"))
            continue
        assert isinstance(name, str) and version is not None and isinstance(tid, str)
        urls: list[tuple[str, ...]] = []
        for field_name in ("trackers", "web_seeds", "domains"):
            listed = raw.get(field_name, [])
            if isinstance(listed, list) and all(isinstance(u, str) for u in listed):
                urls.append(tuple(listed))
            else:
                urls.append(())
                dropped.append(Dropped(_where("published", key, field_name),
                                       "not an array of URLs; using none"))
        state.published[sid] = PublishedRecord(name, version, tid, *urls)


def _decode_exports(state: NodeState, section: dict[str, Any], dropped: list[Dropped]) -> None:
    for key, value in section.items():
        if isinstance(value, str) and _INFOHASH_RE.fullmatch(key) \
                and _INFOHASH_RE.fullmatch(value):
            state.exports[key] = value
        else:
            dropped.append(Dropped(_where("exports", key), "not a pair of hex info-hashes"))


def _decode_folders(state: NodeState, section: dict[str, Any], dropped: list[Dropped]) -> None:
    for folder, key_name in section.items():
        if isinstance(key_name, str) and key_name and folder.startswith("/"):
            state.folders[folder] = key_name
        else:
            dropped.append(Dropped(_where("folders", folder), "not a folder and a key name"))


_SECTIONS: dict[str, Callable[[NodeState, dict[str, Any], list[Dropped]], None]] = {
    "sites": _decode_sites,
    "published": _decode_published,
    "exports": _decode_exports,
    "folders": _decode_folders,
}


def load(path: Path, now: float | None = None) -> NodeState:
    """The node's state from ``path`` (empty if there is none yet).

    Never fails on damage, and never loses anything: when ``decode`` sets parts aside, the
    original file is first copied beside it (``state.json.damaged-<UTC time>``, once per
    distinct content), then each part dropped is logged. Raises StorageError only when the
    file cannot be read at all or its copy cannot be written, since starting then would
    overwrite what could not be kept.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return NodeState()
    except OSError as exc:
        raise StorageError(f"cannot read the state file {path}: {exc.strerror or exc}; "
                           "fix its permissions or move it away") from exc
    loaded = decode(data)
    if not loaded.dropped:
        return loaded.state
    try:
        copy = keep_copy(path, data, time.time() if now is None else now)
    except OSError as exc:
        raise StorageError(f"the state file {path} is damaged and a copy of it could not be "
                           f"written ({exc.strerror or exc}); not starting, so that it is not "
                           "overwritten") from exc
    for item in loaded.dropped:
        log.warning("state file: set aside %s: %s", item.where, item.reason)
    log.warning("state file %s was damaged: kept %d sites and %d published; the original is "
                "in %s", path, len(loaded.state.sites), len(loaded.state.published), copy)
    return loaded.state


def keep_copy(path: Path, data: bytes, now: float) -> Path:
    """Write ``data`` beside ``path`` under a new name (mode 0600) and return that name; if
    an earlier copy holds the same bytes (a node that set it aside and was stopped before it
    saved), return that one instead of piling up copies."""
    for earlier in sorted(path.parent.glob(f"{path.name}.damaged-*")):
        if earlier.is_file() and earlier.stat().st_size == len(data) \
                and earlier.read_bytes() == data:
            return earlier
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    for attempt in range(100):
        copy = path.with_name(f"{path.name}.damaged-{stamp}" + (f"-{attempt}" if attempt else ""))
        try:
            fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return copy
    raise FileExistsError(f"{copy} and 99 others exist already")


def encode(state: NodeState) -> bytes:
    return json.dumps(state.to_json(), indent=1, sort_keys=True).encode()
