"""The on-disk store of page versions, bounded by ``--web-cache SIZE``.

Layout under ``<data-dir>/webcache/``: ``bodies/<sha256>`` (each body once, shared by every
version that has it) and ``index.json`` (per URL: the version's manifest, fetch time, and
whether this node fetched it itself or rescued it from peers). Only a node's *own* copies are
offered to peers: a rescued copy is vouched for by others, and relaying it would count their
voice twice.

The size used is every body once plus every manifest. Putting a version evicts the least
recently used versions (own or rescued) until it fits; a version larger than the whole store
is refused. ``now`` is passed in.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PeerError
from ..fileio import write_atomic
from .copies import BadCopy, Manifest, body_matches

log = logging.getLogger(__name__)
INDEX = "index.json"


@dataclass(frozen=True)
class Entry:
    """A page version held."""

    manifest: Manifest
    digest: str
    fetched_at: int
    """Unix seconds of the fetch from the origin (by this node, or the time the peers
    vouched for)."""
    own: bool
    """Fetched by this node itself (offered to peers), or rescued from peers."""
    agreeing: int
    """Independent holders that vouched for it (1 for an own copy)."""
    last_used: float

    def to_json(self) -> dict[str, Any]:
        return {"manifest": self.manifest.to_json(), "fetched_at": self.fetched_at,
                "own": self.own, "agreeing": self.agreeing, "last_used": self.last_used}


def _key(url: str, own: bool) -> str:
    return ("own " if own else "rescued ") + url


class Store:
    def __init__(self, root: Path, size: int) -> None:
        self.root = root
        self.size = size
        self.bodies_dir = root / "bodies"
        self._entries: dict[str, Entry] = {}
        self._refs: dict[str, int] = {}
        self._sizes: dict[str, int] = {}

    def load(self) -> None:
        self.bodies_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            raw = json.loads((self.root / INDEX).read_text())
        except FileNotFoundError:
            raw = {}
        except (OSError, ValueError):
            log.warning("web cache index unreadable; starting empty")
            raw = {}
        for item in raw.get("entries", []) if isinstance(raw, dict) else []:
            try:
                manifest = Manifest.from_json(item["manifest"])
                entry = Entry(manifest, manifest.digest(), int(item["fetched_at"]),
                              bool(item["own"]), int(item["agreeing"]),
                              float(item["last_used"]))
            except (BadCopy, KeyError, TypeError, ValueError):
                continue
            if all((self.bodies_dir / r.sha256).is_file() for r in manifest.resources):
                self._add(entry)
        # Bodies no version names (a crash between writing a body and the index) go.
        for path in self.bodies_dir.iterdir():
            if path.name not in self._refs:
                path.unlink(missing_ok=True)
        self.enforce()

    # -- reading ---------------------------------------------------------------------------

    @property
    def used(self) -> int:
        manifests = sum(len(e.manifest.canonical()) for e in self._entries.values())
        return sum(self._sizes.values()) + manifests

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, url: str, own: bool | None = None) -> Entry | None:
        """The version held for ``url`` (normalised): own, rescued, or (None) own first."""
        if own is None:
            return self._entries.get(_key(url, True)) or self._entries.get(_key(url, False))
        return self._entries.get(_key(url, own))

    def own_entries(self) -> list[Entry]:
        return [e for e in self._entries.values() if e.own]

    def holding(self, sha256: str) -> bool:
        return sha256 in self._refs

    def body(self, sha256: str) -> bytes | None:
        """A body as stored (not checked again: peers check what they receive)."""
        if sha256 not in self._refs:
            return None
        try:
            return (self.bodies_dir / sha256).read_bytes()
        except OSError:
            return None

    def drop(self, url: str, own: bool) -> bool:
        """Forget the version held for ``url`` (e.g. the page became personal)."""
        entry = self._entries.get(_key(url, own))
        if entry is None:
            return False
        self._remove(entry)
        self.save()
        return True

    def missing(self, manifest: Manifest) -> list[str]:
        return list(dict.fromkeys(r.sha256 for r in manifest.resources
                                  if r.sha256 not in self._refs))

    def touch(self, url: str, own: bool, now: float) -> None:
        entry = self._entries.get(_key(url, own))
        if entry is not None:
            self._entries[_key(url, own)] = dataclasses.replace(entry, last_used=now)

    # -- writing ---------------------------------------------------------------------------

    def put(self, manifest: Manifest, bodies: dict[str, bytes], fetched_at: int, own: bool,
            agreeing: int, now: float) -> bool:
        """Keep a version (``bodies`` by sha256, those already held may be left out),
        evicting the least recently used to fit; False if it cannot fit at all."""
        need = manifest.total_size + len(manifest.canonical())
        if need > self.size:
            return False
        for resource in manifest.resources:
            if resource.sha256 in self._refs or (self.bodies_dir / resource.sha256).exists():
                continue
            body = bodies.get(resource.sha256)
            if body is None or not body_matches(resource, body):
                raise PeerError(f"a body of {resource.url} is missing or does not match")
            tmp = self.bodies_dir / f".{resource.sha256}.{os.getpid()}.tmp"
            tmp.write_bytes(body)
            tmp.replace(self.bodies_dir / resource.sha256)
        # The new version takes its references before the old one lets go of its own: the
        # bodies both share (all of them, when the same version is kept again) stay on disk.
        old = self._entries.get(_key(manifest.url, own))
        self._add(Entry(manifest, manifest.digest(), fetched_at, own, agreeing, now))
        if old is not None:
            self._release(old)
        self.enforce(keep=_key(manifest.url, own))
        self.save()
        return True

    def enforce(self, keep: str | None = None) -> list[str]:
        """Evict least recently used versions (never ``keep``) until within the size."""
        evicted = []
        for key, entry in sorted(self._entries.items(), key=lambda kv: kv[1].last_used):
            if self.used <= self.size:
                break
            if key != keep:
                self._remove(entry)
                evicted.append(key)
        return evicted

    def save(self) -> None:
        body = json.dumps({"entries": [e.to_json() for e in self._entries.values()]})
        write_atomic(self.root / INDEX, body.encode(), mode=0o600)

    def _add(self, entry: Entry) -> None:
        self._entries[_key(entry.manifest.url, entry.own)] = entry
        for sha in {r.sha256 for r in entry.manifest.resources}:
            self._refs[sha] = self._refs.get(sha, 0) + 1
        for resource in entry.manifest.resources:
            self._sizes[resource.sha256] = resource.size

    def _remove(self, entry: Entry) -> None:
        self._entries.pop(_key(entry.manifest.url, entry.own), None)
        self._release(entry)

    def _release(self, entry: Entry) -> None:
        """Drop ``entry``'s references to its bodies; a body nobody names any more goes."""
        for sha in {r.sha256 for r in entry.manifest.resources}:
            left = self._refs.get(sha, 0) - 1
            if left > 0:
                self._refs[sha] = left
                continue
            self._refs.pop(sha, None)
            self._sizes.pop(sha, None)
            (self.bodies_dir / sha).unlink(missing_ok=True)
