"""The ``peerweb`` group: global options, the commands of each module, and the one place a
failure becomes its line on stderr and an exit status (see ``output`` for the contract)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ..errors import PeerwebError
from .lazy import LazyGroup
from .options import DATA_DIR_ENV, DATA_DIR_HELP, Settings, settings
from .output import EXIT_FAILURE, print_error

COMMAND_MODULES = {
    "node_cmds": ("node", "volunteer", "testnet", "status", "stop"),
    "site_cmds": ("publish", "export", "log", "pin", "unpin"),
    "private_cmds": ("share", "open", "node-key"),
    "backup_cmds": ("backup", "restore"),
    "get_cmd": ("get",),
    "key_cmds": ("key",),
    "name_cmds": ("name",),
    "spike_cmds": ("tracker", "origin", "redirector"),
    "webcache_cmds": ("extension",),
    "dns_cmd": ("dns",),
}
"""Each module of ``peerweb.cli`` with commands, and the names of its ``COMMANDS``: a
command's module is imported only when it runs (``LazyGroup``), so that ``peerweb publish``
does not wait for the node's, the DNS listener's or the downloader's imports. A unit test
checks this against the modules' own ``COMMANDS``."""


class _Group(LazyGroup):
    """Runs a command and turns what it raises into one line on stderr (a JSON object under
    ``--json``) and a non-zero exit; a bug still shows its traceback."""

    def main(self, args: Sequence[str] | None = None,
             prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        shared = Settings()
        extra.setdefault("obj", shared)
        # Before the command's options are parsed (a mistyped one), only argv tells.
        def as_json() -> bool:
            return shared.json or "--json" in argv

        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except PeerwebError as exc:
            print_error(str(exc), exc.kind, as_json())
            code = EXIT_FAILURE
        except click.ClickException as exc:
            if as_json():
                print_error(exc.format_message(), "usage", True)
            else:
                exc.show()
            code = exc.exit_code
        except click.Abort:
            print_error("aborted", "aborted", as_json())
            code = EXIT_FAILURE
        except BrokenPipeError:
            # The reader went away (`peerweb get ... | head`): nothing left to say to it.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = EXIT_FAILURE
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


def _remember_data_dir(ctx: click.Context, param: click.Parameter,
                       value: Path | None) -> Path | None:
    shared = settings(ctx)
    shared.data_dir = value
    if ctx.get_parameter_source("data_dir") is ParameterSource.COMMANDLINE:
        shared.typed_data_dir = value
    return value


def _remember_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    settings(ctx).json = settings(ctx).json or value
    return value


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]},
             lazy={name: module for module, names in COMMAND_MODULES.items() for name in names})
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar=DATA_DIR_ENV, show_envvar=True, callback=_remember_data_dir,
              expose_value=False, is_eager=True,
              help=f"{DATA_DIR_HELP} [default: ~/.local/share/peerweb]")
@click.option("--json", is_flag=True, callback=_remember_json, expose_value=False,
              help="Print NDJSON (one compact JSON object per line); errors become one "
                   '{"error", "kind"} object on stderr.')
@click.version_option(package_name="peerweb")
def main() -> None:
    """peerweb: websites served by their visitors.

    Publish a folder as a signed site, browse sites through a local gateway at
    http://<site-id>.localhost:8080/, and keep what you visit seeded for others.

    \b
    Start here:
      peerweb node --example      run a node and publish the bundled example site
      peerweb publish ./my-site   publish a folder through the running node
      peerweb status              what the node holds and serves
      peerweb stop                stop the node

    --data-dir and --json may come before or after the command's name.
    """
