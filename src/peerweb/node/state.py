"""What a node remembers across restarts, in ``<data-dir>/state.json``.

Written atomically (temporary file, fsync, rename), so a node killed mid-write keeps the
previous state rather than a torn file. Pointers are stored with their signatures and
re-verified on load: a state file edited by hand cannot smuggle in an unsigned version.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..content.pointer import Pointer
from ..errors import ForgedPointer

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

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "infohash": self.infohash, "seen": self.seen,
                "changed": self.changed}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> VersionEntry:
        changed = raw.get("changed")
        return cls(int(raw["version"]), str(raw["infohash"]), float(raw["seen"]),
                   [str(p) for p in changed] if isinstance(changed, list) else None)


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
        """Add a version to the history (once per info-hash)."""
        tid = pointer.infohash.hex()
        if any(entry.infohash == tid for entry in self.history):
            return
        self.history.append(VersionEntry(pointer.version, tid, seen))
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


@dataclass
class NodeState:
    sites: dict[str, SiteRecord] = field(default_factory=dict)
    published: dict[str, PublishedRecord] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)
    """v1-only torrents made by `peerweb export --v1`: their info-hash -> the snapshot's."""

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
            "published": {
                sid: {"key": r.key_name, "version": r.version, "infohash": r.infohash,
                      "trackers": list(r.trackers), "web_seeds": list(r.web_seeds)}
                for sid, r in self.published.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NodeState:
        state = cls()
        for sid, raw in data.get("sites", {}).items():
            try:
                pointer = Pointer.from_json(raw["pointer"])
            except (ForgedPointer, KeyError, TypeError) as exc:
                log.warning("dropping site %s from state: %s", sid, exc)
                continue
            if pointer.site_id != sid:
                log.warning("dropping site %s from state: pointer is for another site", sid)
                continue
            history = [VersionEntry.from_json(e) for e in raw.get("history", [])]
            # Entries above the verified pointer's version cannot be trusted: drop them.
            history = [e for e in history if e.version <= pointer.version]
            record = SiteRecord(pointer, float(raw.get("last_used", 0)),
                                bool(raw.get("pinned", False)), history,
                                float(raw.get("mirrored_until", 0.0)),
                                float(raw.get("mirrored_since", 0.0)),
                                bool(raw.get("unconfirmed", False)))
            record.remember(pointer, record.last_used)
            state.sites[sid] = record
        state.exports = {str(k): str(v) for k, v in data.get("exports", {}).items()}
        for sid, raw in data.get("published", {}).items():
            state.published[sid] = PublishedRecord(
                str(raw["key"]), int(raw["version"]), str(raw["infohash"]),
                tuple(str(t) for t in raw.get("trackers", [])),
                tuple(str(w) for w in raw.get("web_seeds", [])))
        return state


def load(path: Path) -> NodeState:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return NodeState()
    try:
        return NodeState.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        broken = path.with_suffix(".broken")
        path.replace(broken)
        log.error("state file was unreadable (%s); moved it to %s and started empty", exc, broken)
        return NodeState()


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def encode(state: NodeState) -> bytes:
    return json.dumps(state.to_json(), indent=1, sort_keys=True).encode()
