"""``peerweb node``'s config file: TOML (``tomllib``), keys named like the command's flags.

::

    # <data-dir>/config.toml, or the file given with --config FILE
    gateway = "127.0.0.1:8080"
    upload-limit = "2MB/s"
    metered = true
    bootstrap = ["192.168.1.20:6881", "192.168.1.21:6881"]   # or "a:1,b:2"

The file becomes the command's ``default_map`` (click), so a flag typed on the command line
wins over the file, which wins over the built-in default. Keys are the long flag names
without ``--`` (``upload-limit``; ``upload_limit`` is accepted too); an unknown key, a
value of the wrong type or a file that is not TOML is a usage error naming the file and the
key. ``data-dir``, ``config`` and ``help`` cannot be set in the file (the file is found
through the data dir).

``read_config`` is the decision (text in, option values out); ``config_option`` the click
adapter.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

CONFIG_FILE = "config.toml"
"""Read from the data dir when ``--config`` is not given (and only if it exists)."""
NOT_IN_FILE = frozenset({"config", "data-dir", "help"})
"""Flags a config file may not set: it is found through the data dir, and help is not a
setting."""


def flag_names(command: click.Command) -> dict[str, click.Option]:
    """The options a config file may set, by long flag name without ``--``."""
    names: dict[str, click.Option] = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        longs = [o[2:] for o in param.opts if o.startswith("--")]
        if longs and longs[0] not in NOT_IN_FILE:
            names[longs[0]] = param
    return names


def read_config(text: str, source: str, options: Mapping[str, click.Option],
                ctx: click.Context) -> dict[str, Any]:
    """The option values (by parameter name, checked against each option's type) that the
    TOML ``text`` from ``source`` sets; UsageError naming the key for anything wrong."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for key, raw in table.items():
        name = key.replace("_", "-")
        option = options.get(name)
        if option is None:
            known = ", ".join(sorted(options))
            why = ("is found through the data dir and cannot be set in it"
                   if name in NOT_IN_FILE else f"is not a {ctx.info_name} option")
            raise UsageError(f"{source}: unknown key {key!r}: it {why} (keys: {known})")
        values[option.name or name] = _value(raw, option, f"{source}: {key}", ctx)
    return values


def _value(raw: object, option: click.Option, where: str, ctx: click.Context) -> Any:
    if isinstance(raw, list) and not option.multiple:
        if not all(isinstance(item, str) for item in raw):
            raise UsageError(f"{where}: a list here must hold strings")
        raw = ",".join(raw)  # bootstrap = ["a:1", "b:2"] is bootstrap = "a:1,b:2"
    if isinstance(raw, dict | list) and not option.multiple:
        raise UsageError(f"{where}: expected a single value, not a {type(raw).__name__}")
    if option.is_flag and not isinstance(raw, bool):
        raise UsageError(f"{where}: expected true or false")
    try:
        return option.type_cast_value(ctx, raw)
    except click.BadParameter as exc:
        raise UsageError(f"{where}: {exc.format_message()}") from None


def _load(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    # Eager, after --data-dir (also eager, declared first): ctx.params has the data dir.
    if value is None:
        data_dir = ctx.params.get("data_dir")
        if not isinstance(data_dir, Path):
            return None
        value = data_dir / CONFIG_FILE
        if not value.is_file():
            return None
    elif not value.is_file():
        raise UsageError(f"no config file at {value}")
    try:
        text = value.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the config file {value}: {exc}") from None
    assert isinstance(ctx.command, click.Command)
    values = read_config(text, str(value), flag_names(ctx.command), ctx)
    ctx.default_map = {**(ctx.default_map or {}), **values}
    return value


def config_option(func: F) -> F:
    """``--config FILE``: defaults for the command's options (see the module docstring).
    Must come after an eager ``--data-dir`` in the decorator list (below it)."""
    return click.option(
        "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
        default=None, is_eager=True, expose_value=False, callback=_load,
        help=f"TOML file of defaults for these options, keys named like the flags "
             f"(gateway = \"127.0.0.1:8080\"); flags typed here win. "
             f"[default: <data-dir>/{CONFIG_FILE}, if it exists]",
    )(func)

