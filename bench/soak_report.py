"""The soak benchmark's judgements and figures, from values only (no I/O but the plot).

A record is one answer a user got (a line of soak_client's logs, or a request the
orchestrator made itself). ``expected`` maps each snapshot published (v1 info-hash, hex) to
its files' sha256; a 200 whose body matches no file of the snapshot the gateway named is a
wrong byte, whatever else happened at the time.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

WINDOW_S = 10.0
# Roles whose answers carry a site's bytes (pushes and help requests carry none).
CONTENT_ROLES = frozenset({"probe", "visit", "warmup", "tamper", "mirror", "endcheck"})
CACHED_P99_TARGET_MS = 100.0


def error_kind(record: dict[str, Any]) -> str | None:
    """None for a 200; otherwise 'HTTP <status>' or the exception class."""
    if record.get("dropped"):
        return "probe not sent: too many requests outstanding at that node"
    if record.get("status") == 200:
        return None
    if record.get("status") is not None:
        return f"HTTP {record['status']}"
    return str(record.get("error", "unknown"))


def verdict(record: dict[str, Any], expected: dict[str, dict[str, str]]) -> str:
    """'ok', 'wrong' (bytes that are not the named snapshot's file), 'unnamed' (a 200 that
    names no snapshot we published: also a wrong answer), or 'error'."""
    if error_kind(record) is not None:
        return "error"
    files = expected.get(str(record.get("snapshot")))
    if files is None:
        return "unnamed"
    return "ok" if files.get(record["path"]) == record.get("sha256") else "wrong"


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def is_cached_probe(record: dict[str, Any]) -> bool:
    """A probe answered from the snapshot the node held complete when it was asked."""
    return (record.get("role") == "probe" and record.get("status") == 200
            and record.get("snapshot") == record.get("want"))


def timeline(records: list[dict[str, Any]], duration: float,
             window: float = WINDOW_S) -> list[dict[str, Any]]:
    """Per window: cached-probe count, p50, p99, max (ms), and errors of every role."""
    count = max(1, math.ceil(duration / window))
    latencies: list[list[float]] = [[] for _ in range(count)]
    by_node: list[dict[str, list[float]]] = [{} for _ in range(count)]
    errors: list[Counter[str]] = [Counter() for _ in range(count)]
    for record in records:
        index = min(count - 1, max(0, int(record.get("t", 0.0) // window)))
        kind = error_kind(record)
        if kind is not None:
            errors[index][f"{record.get('role')}: {kind}"] += 1
        elif is_cached_probe(record):
            latencies[index].append(float(record["ms"]))
            by_node[index].setdefault(str(record["node"]), []).append(float(record["ms"]))
    return [{"start_s": i * window, "cached_requests": len(lat),
             "p50_ms": _round(percentile(lat, 50)), "p99_ms": _round(percentile(lat, 99)),
             "max_ms": _round(max(lat) if lat else math.nan),
             "errors": dict(errors[i]),
             # Nodes whose own p99 broke the target in this window, to tell a stall of one
             # node from the whole machine's.
             "p99_over_target_by_node": {
                 node: _round(percentile(values, 99)) for node, values in
                 sorted(by_node[i].items()) if percentile(values, 99) > CACHED_P99_TARGET_MS}}
            for i, lat in enumerate(latencies)]


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 2)


def summary(records: list[dict[str, Any]], expected: dict[str, dict[str, str]],
            roles: dict[str, str]) -> dict[str, Any]:
    """Requests served, errors by kind (and by the role of the node that gave them), wrong
    bytes, and cached-file latency over the whole run. ``roles`` names each node's part."""
    served = Counter(r.get("role", "?") for r in records if error_kind(r) is None)
    kinds: Counter[str] = Counter()
    by_node_role: Counter[str] = Counter()
    wrong = []
    for record in records:
        kind = error_kind(record)
        if kind is not None:
            kinds[f"{record.get('role')}: {kind}"] += 1
            by_node_role[f"{roles.get(str(record.get('node')), '?')}: {kind}"] += 1
            continue
        judged = verdict(record, expected) if record.get("role") in CONTENT_ROLES else "ok"
        if judged != "ok":
            wrong.append({k: record.get(k) for k in
                          ("role", "t", "node", "site", "path", "snapshot", "sha256", "size")}
                         | {"verdict": judged})
    cached = [float(r["ms"]) for r in records if is_cached_probe(r)]
    per_node: dict[str, list[float]] = {}
    for r in records:
        if is_cached_probe(r):
            per_node.setdefault(str(r["node"]), []).append(float(r["ms"]))
    moved = sum(1 for r in records if r.get("role") == "probe" and r.get("status") == 200
                and r.get("snapshot") != r.get("want"))
    return {
        "requests": len(records), "served_by_role": dict(served),
        "errors_by_kind": dict(kinds.most_common()),
        "errors_by_node_role": dict(by_node_role.most_common()),
        "wrong_answers": len(wrong), "wrong_examples": wrong[:20],
        "cached_requests": len(cached), "cached_p50_ms": _round(percentile(cached, 50)),
        "cached_p99_ms": _round(percentile(cached, 99)),
        "cached_p999_ms": _round(percentile(cached, 99.9)),
        "cached_max_ms": _round(max(cached) if cached else math.nan),
        "probes_answered_from_a_newer_snapshot": moved,
        "cached_by_node": {node: {"requests": len(v), "p50_ms": _round(percentile(v, 50)),
                                  "p99_ms": _round(percentile(v, 99)),
                                  "max_ms": _round(max(v))}
                           for node, v in sorted(per_node.items())},
    }


def windows_over(rows: list[dict[str, Any]], target: float = CACHED_P99_TARGET_MS) -> list[float]:
    return [r["start_s"] for r in rows if r["p99_ms"] is not None and r["p99_ms"] > target]


def plot(rows: list[dict[str, Any]], events: list[dict[str, Any]], path: Path,
         title: str) -> bool:
    """A PNG: cached-file p50/p99 per window (log scale) over errors per window, with the
    faults marked. False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    starts = [r["start_s"] + WINDOW_S / 2 for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True,
                                      gridspec_kw={"height_ratios": [2, 1]})
    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("max_ms", "max")):
        top.plot(starts, [r[key] if r[key] is not None else math.nan for r in rows],
                 marker=".", label=label, alpha=0.5 if key == "max_ms" else 1.0)
    top.axhline(CACHED_P99_TARGET_MS, color="red", linestyle="--", linewidth=0.8,
                label="p99 target")
    top.set_yscale("log")
    top.set_ylabel("cached file, ms")
    top.set_title(title)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(starts, [sum(r["errors"].values()) for r in rows], width=WINDOW_S * 0.8,
               color="tab:red")
    bottom.set_ylabel(f"errors / {WINDOW_S:.0f} s")
    bottom.set_xlabel("seconds since load began")
    colors = {"kill": "black", "tamper": "tab:purple", "flood": "tab:orange",
              "update": "tab:green", "help": "tab:cyan"}
    for event in events:
        color = colors.get(event["kind"])
        if color is None:
            continue
        for axis in (top, bottom):
            axis.axvline(event["t"], color=color, linewidth=0.7, alpha=0.6)
        top.text(event["t"], top.get_ylim()[1], event["kind"], rotation=90, fontsize=6,
                 va="top", color=color)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
