"""Which volunteer mirrors an origin in need sends visitors to, and which it asks to help:
pure policy, no I/O.

Volunteers report their load (upload rate over capacity; None when unlimited, counted as
idle) and the version of each site they hold (``Node.load_report``). Those holding the
site's current version are ready at once. If fewer than ``wanted`` are, the least loaded of
the others are asked to mirror it; a volunteer that answers with the current version is ready
too. Visitors go to the ready ones, least loaded first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Report = Mapping[str, Any]
"""A volunteer's load report: ``load`` (float or None), ``sites`` (site id -> version)."""


def load_of(report: Report) -> float:
    """A volunteer's load; one without an upload limit reports None and counts as idle."""
    return float(report["load"] or 0.0)


def holding(reports: Sequence[Report], site_id: str, version: int) -> list[Report]:
    """The volunteers that hold ``version`` of the site, in report order."""
    return [r for r in reports if r["sites"].get(site_id) == version]


def to_ask(reports: Sequence[Report], site_id: str, version: int, wanted: int) -> list[Report]:
    """The least loaded volunteers without ``version`` of the site, as many as it takes to
    reach ``wanted`` ready ones (none when enough are ready)."""
    missing = wanted - len(holding(reports, site_id, version))
    if missing <= 0:
        return []
    spare = sorted((load_of(r), i) for i, r in enumerate(reports)
                   if r["sites"].get(site_id) != version)
    return [reports[i] for _, i in spare[:missing]]


def took(asked: Sequence[Report], answers: Sequence[int | None], version: int) -> list[Report]:
    """The asked volunteers whose answer (the version each now holds) is ``version``."""
    return [r for r, answer in zip(asked, answers, strict=True) if answer == version]


def ranked(ready: Sequence[Report]) -> list[Report]:
    """Ready volunteers least loaded first (equal loads keep their order)."""
    return sorted(ready, key=load_of)
