"""How commands print: text for people, NDJSON for machines, errors, and progress bars.

The contract every command keeps:

- stdout carries results only; diagnostics, prompts and progress go to stderr (under
  ``--json`` stderr carries nothing but an error object, or a prompt the user asked for).
- Under ``--json``, stdout is NDJSON: one compact JSON object per line. A command that
  answers with one thing prints one object; one that lists things prints one object per
  item, in the same order as its text output.
- A failure is one line on stderr and a non-zero exit: ``error: ...`` (red on a terminal,
  unless ``NO_COLOR`` is set), or under ``--json`` the object
  ``{"error": "<message>", "kind": "<stable kind>"}``; ``kind`` is the ``PeerwebError``
  kind (``not_found``, ``swarm_timeout``, ...), ``usage`` for a mistyped command line and
  ``aborted`` for Ctrl-C or a declined confirmation.
- Progress bars (rich, on stderr) only when stdout and stderr are both terminals and
  ``--json`` is off: a pipe or a script sees none.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import click

# Exit statuses: 1 for a failure, 2 for a command line click could not parse (its custom).
EXIT_FAILURE = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class Output:
    """Where and how one command prints; built by the ``--json`` option."""

    json: bool
    """Print NDJSON records instead of text."""

    def record(self, obj: Mapping[str, Any]) -> None:
        """One result: a JSON line under ``--json`` (text commands call ``text`` instead)."""
        click.echo(encode(obj))

    def text(self, line: str = "", err: bool = False) -> None:
        """A line for people (on stderr with ``err``); nothing under ``--json``, where stdout
        holds only records and stderr only an error object."""
        if not self.json:
            click.echo(line, err=err)

    def note(self, line: str) -> None:
        """A diagnostic for people on stderr (none under ``--json``)."""
        self.text(line, err=True)

    @property
    def progress(self) -> bool:
        """Whether to draw progress bars: a person is watching, not a pipe or a script."""
        return (not self.json and sys.stdout.isatty() and sys.stderr.isatty()
                and os.environ.get("TERM") != "dumb")


def encode(obj: Mapping[str, Any]) -> str:
    """One NDJSON line: compact, no indentation."""
    return json.dumps(obj, separators=(",", ":"))


def print_error(message: str, kind: str, as_json: bool) -> None:
    """The one line a failure prints on stderr."""
    if as_json:
        click.echo(encode({"error": message, "kind": kind}), err=True)
        return
    line = f"error: {message}"
    color = "NO_COLOR" not in os.environ and sys.stderr.isatty()
    click.echo(click.style(line, fg="red") if color else line, err=True)


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``, ``0 files``."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def human(n: float) -> str:
    """A byte count in SI units, as rates and sizes are written elsewhere (5MB/s)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class Bar(Protocol):
    """A progress bar a command advances; ``NullBar`` when nobody is watching."""

    def update(self, completed: float, total: float | None = None, **fields: Any) -> None: ...


class NullBar:
    def update(self, completed: float, total: float | None = None, **fields: Any) -> None:
        pass


class _RichBar:
    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def update(self, completed: float, total: float | None = None, **fields: Any) -> None:
        if total is not None:
            self._progress.update(self._task, total=total)
        self._progress.update(self._task, completed=completed, **fields)


@contextmanager
def progress_bar(out: Output, description: str, total: float | None,
                 detail: str = "") -> Iterator[Bar]:
    """A bar of bytes (size, rate, ETA) on stderr, or ``NullBar`` when ``out.progress`` is
    off. ``detail`` is a rich format string of the task's fields shown after the bytes,
    e.g. ``"{task.fields[pieces]}"``; pass those fields to ``update``."""
    if not out.progress:
        yield NullBar()
        return
    # rich is imported here, not at import time: most commands never draw a bar.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns: list[Any] = [TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                          TransferSpeedColumn(), TimeRemainingColumn()]
    if detail:
        columns.insert(3, TextColumn(detail))
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task(description, total=total, pieces="", files="")
        yield _RichBar(progress, task)


@contextmanager
def spinner(out: Output, description: str) -> Iterator[None]:
    """A spinner with the elapsed time, for waits that report no progress of their own."""
    if not out.progress:
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        progress.add_task(description, total=None)
        yield
