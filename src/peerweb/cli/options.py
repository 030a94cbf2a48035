"""Options shared by several commands, and the global ones accepted on either side of the
command name: ``peerweb --data-dir X status`` and ``peerweb status --data-dir X`` are the same.

A global option given after the command wins over one given before it; either wins over the
environment (``PEERWEB_DATA_DIR``), which wins over the default.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from ..datadir import default_data_dir
from .output import Output

F = TypeVar("F", bound=Callable[..., Any])

DATA_DIR_ENV = "PEERWEB_DATA_DIR"
DATA_DIR_HELP = ("Where keys, state and cached sites live; commands find their running node "
                 "through it.")


@dataclass
class Settings:
    """The global options as the group saw them, and whether ``--json`` is on (read by the
    error handler, which runs after the command's context is gone)."""

    data_dir: Path | None = None
    """``--data-dir`` given before the command, or ``PEERWEB_DATA_DIR`` (None: neither)."""
    typed_data_dir: Path | None = None
    """``--data-dir`` typed before the command (not the environment): for ``testnet``,
    whose folder holds many nodes and never defaults to the user's own."""
    json: bool = False


def settings(ctx: click.Context) -> Settings:
    obj = ctx.find_root().obj
    if not isinstance(obj, Settings):  # a command invoked without the group (tests)
        obj = ctx.find_root().obj = Settings()
    return obj


def _resolve_data_dir(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path:
    assert param.name is not None
    if value is not None and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE:
        return value
    given = settings(ctx).data_dir  # before the command, or the environment
    return given or value or default_data_dir()


def _resolve_json(ctx: click.Context, param: click.Parameter, value: bool) -> Output:
    shared = settings(ctx)
    shared.json = shared.json or value
    return Output(json=shared.json)


def data_dir_option(func: F) -> F:
    """``--data-dir``: the node a command talks to (resolved to a ``Path``). Eager, so that
    ``--config`` (also eager, declared after it) finds ``<data-dir>/config.toml``."""
    return click.option(
        "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        envvar=DATA_DIR_ENV, show_envvar=True, callback=_resolve_data_dir, is_eager=True,
        help=f"{DATA_DIR_HELP} [default: ~/.local/share/peerweb]",
    )(func)


def json_option(func: F) -> F:
    """``--json``: the command's ``out`` parameter, an ``Output``."""
    return click.option(
        "--json", "out", is_flag=True, callback=_resolve_json,
        help="Print NDJSON (one compact JSON object per line) for scripts; errors become "
             'one {"error", "kind"} object on stderr.',
    )(func)


def verbose_option(func: F) -> F:
    return click.option("-v", "--verbose", count=True,
                        help="More logging on stderr (-vv for debug).")(func)


def setup_logging(verbose: int, log_file: Path | None = None) -> None:
    """Log at WARNING (-v: INFO, -vv: DEBUG) to stderr, or to ``log_file``: appended to,
    never rotated by peerweb, and reopened when it is moved or deleted (``WatchedFileHandler``),
    so logrotate (or ``mv``) can rotate it while the node runs."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler: logging.Handler
    if log_file is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        try:
            from logging.handlers import WatchedFileHandler  # here: few commands log to files

            handler = WatchedFileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise click.UsageError(f"cannot write the log file {log_file}: "
                                   f"{exc.strerror}") from None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def join_options(command: F) -> F:
    """--bootstrap and --network, for commands that run a node of their own."""
    command = click.option("--network", type=click.Choice(["local", "public"]),
                           default="local", show_default=True,
                           help="local: only --bootstrap nodes, no UPnP/NAT-PMP/multicast. "
                                "public: join the Mainline DHT (opt-in).")(command)
    return click.option("--bootstrap", default="", metavar="HOST:PORT[,...]",
                        help="DHT nodes to join, e.g. another node's --swarm address.")(command)


SWARM_DEFAULT = "127.0.0.1:0"


def swarm_option(func: F) -> F:
    """``--swarm HOST:PORT``: a node's BitTorrent + DHT address. ``--listen`` was its name
    for ``node`` and ``volunteer``; it stays as a hidden alias so scripts keep working, while
    ``--listen`` means an HTTP address everywhere else (tracker, origin, redirector)."""
    func = click.option("--listen", "old_listen", default=None, hidden=True,
                        help="Deprecated name of --swarm.")(func)
    return click.option("--swarm", default=None, metavar="HOST:PORT",
                        help="Swarm (BitTorrent + DHT) address; port 0 picks a free one. "
                             f"[default: {SWARM_DEFAULT}]")(func)


def swarm_address(swarm: str | None, old_listen: str | None, default: str) -> str:
    """The address ``--swarm`` (or its old name ``--listen``) gave, else ``default``."""
    if swarm is not None and old_listen is not None and swarm != old_listen:
        raise click.UsageError("--listen is the old name of --swarm: give only --swarm")
    return swarm or old_listen or default


def bootstrap_nodes(text: str) -> tuple[tuple[str, int], ...]:
    from ..config import parse_hostport  # here: only the commands that start a node parse it

    return tuple(parse_hostport(b) for b in text.split(",") if b.strip())


def examples(*lines: str) -> str:
    """An ``Examples:`` block for a command's help, kept as written (click's ``\\b``)."""
    return "\n\n\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def with_examples(*lines: str) -> Callable[[F], F]:
    """Append examples to the docstring click shows as the command's help."""
    def decorate(func: F) -> F:
        func.__doc__ = inspect.cleandoc(func.__doc__ or "") + examples(*lines)
        return func
    return decorate
