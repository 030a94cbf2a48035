"""A click group whose commands are imported when they are run, not when ``peerweb`` starts.

Importing every command module took ~0.19 s of the ~0.27 s that ``peerweb publish`` spent
against a running node (the DNS listener, the downloader, the node's options each pull in
their own libraries); a publish needs only its own module and the control client. Listing
the commands (``--help``) or asking for ``commands`` still imports them all.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, MutableMapping
from typing import Any

import click


class LazyGroup(click.Group):
    """``lazy`` maps each command's name to the module (under ``package``) that defines it
    in its ``COMMANDS``; the module is imported the first time one of its commands is
    needed, and all of its commands are registered then."""

    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None,
                 package: str = __package__ or "peerweb.cli", **kwargs: Any) -> None:
        self._lazy = dict(lazy or {})
        self._package = package
        self._loaded: MutableMapping[str, click.Command] = {}
        super().__init__(*args, **kwargs)

    @property
    def commands(self) -> MutableMapping[str, click.Command]:
        """Every command, imported (what click's own Group keeps in this dict)."""
        for name in list(self._lazy):
            self._load(name)
        return self._loaded

    @commands.setter
    def commands(self, value: MutableMapping[str, click.Command]) -> None:
        self._loaded = value

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name
        if name is None:
            raise TypeError("a command added to a group needs a name")
        self._loaded[name] = cmd

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self._loaded, *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    def _load(self, name: str) -> click.Command | None:
        if name not in self._loaded and name in self._lazy:
            module = importlib.import_module(f"{self._package}.{self._lazy[name]}")
            for command in module.COMMANDS:
                self.add_command(command)
            if name not in self._loaded:
                raise RuntimeError(f"{module.__name__} does not define the command {name!r}")
        return self._loaded.get(name)
