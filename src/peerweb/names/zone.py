"""The zones this user owns: the records published under each of their keys.

``<data-dir>/zone.json`` (mode 0600, replaced atomically) remembers, per zone (a site id)
and label, the target, TTL and the highest version signed. The version is noted durably
before a record is put, so a node that restarts never signs an older version again; the
node re-puts every record before BEP 44's two hours of expiry run out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import StorageError
from .petnames import write_private

ZONE_FILE = "zone.json"
ZONE_FORMAT = 1


@dataclass(frozen=True)
class OwnRecord:
    """One label of one of the user's zones, as last published."""

    zone: str
    """The zone's site id."""
    key_name: str
    """The name of the key in the key store that signs for the zone."""
    label: str
    target: str
    """The target's site id, or '' for a revoked label."""
    version: int
    ttl: int


class ZoneBook:
    """The records of the user's zones, in ``<data-dir>/zone.json``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / ZONE_FILE

    def records(self) -> list[OwnRecord]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        try:
            zones = json.loads(raw)["zones"]
            return [OwnRecord(zone, str(data["key"]), label, str(rec["target"]),
                              int(rec["version"]), int(rec["ttl"]))
                    for zone, data in sorted(zones.items())
                    for label, rec in sorted(data["labels"].items())]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StorageError(f"the zone file {self.path} is damaged ({exc}); it holds the "
                               "versions your names were signed with: fix it rather than "
                               "remove it") from exc

    def get(self, zone: str, label: str) -> OwnRecord | None:
        for record in self.records():
            if (record.zone, record.label) == (zone, label):
                return record
        return None

    def note(self, record: OwnRecord) -> None:
        """Remember ``record`` durably (before it is put: see the module docstring)."""
        kept = {(r.zone, r.label): r for r in self.records()}
        kept[(record.zone, record.label)] = record
        zones: dict[str, dict[str, object]] = {}
        for r in kept.values():
            entry = zones.setdefault(r.zone, {"key": r.key_name, "labels": {}})
            entry["key"] = r.key_name
            labels = entry["labels"]
            assert isinstance(labels, dict)
            labels[r.label] = {"target": r.target, "version": r.version, "ttl": r.ttl}
        data = json.dumps({"format": ZONE_FORMAT, "zones": zones}, indent=1, sort_keys=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.path, data.encode() + b"\n")
