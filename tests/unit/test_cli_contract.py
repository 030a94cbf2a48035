"""The CLI contract without a node: help, global options, NDJSON, JSON errors, key rm, and
the plain decisions of `get` (which files a folder fetch writes where)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from peerweb.cli import main
from peerweb.cli.get_cmd import is_text, plan_tree, remote_name_of, writes_tree
from peerweb.cli.node_cmds import process_gone
from peerweb.cli.output import plural
from peerweb.content.addressing import parse_cli_address
from peerweb.errors import PeerwebError

SITE_ID = "a" * 52


def commands(group: click.Group = main, prefix: tuple[str, ...] = ()):
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*prefix, name))


ALL = list(commands())


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), input=input, env=env)


def records(text: str) -> list[dict]:
    """NDJSON: every line one compact JSON object (as ``json.dumps`` writes it without
    spaces), nothing else."""
    parsed = [json.loads(line) for line in text.splitlines()]
    for line, obj in zip(text.splitlines(), parsed, strict=True):
        assert isinstance(obj, dict) and line == json.dumps(obj, separators=(",", ":")), line
    return parsed


@pytest.mark.parametrize("path,command", ALL, ids=[" ".join(p) for p, _ in ALL])
def test_every_command_explains_itself(path, command):
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"peerweb {' '.join(path)} {param.opts[0]} has no help"
    result = run(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output and "peerweb " in result.output.split("Examples:")[1]
    names = {p.name for p in command.params}
    if "data_dir" in names and path[0] != "testnet":
        assert "PEERWEB_DATA_DIR" in result.output
    if not isinstance(command, click.Group):
        assert "out" in names, f"peerweb {' '.join(path)} has no --json"


def test_the_top_help_names_the_environment_and_the_global_options():
    result = run("--help")
    assert result.exit_code == 0
    assert "PEERWEB_DATA_DIR" in result.output and "--json" in result.output
    for name in ("stop", "get", "publish", "key"):
        assert name in result.output


def test_node_calls_its_swarm_address_swarm_and_hides_the_old_name():
    help_text = run("node", "--help").output
    assert "--swarm" in help_text and "--listen" not in help_text
    options = {opt for p in main.commands["node"].params for opt in getattr(p, "opts", [])}
    assert "--listen" in options  # still accepted, for existing scripts
    for http in ("tracker", "origin", "redirector"):
        assert "--listen" in run(http, "--help").output


def test_global_options_go_before_or_after_the_command(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    made = records(run("--data-dir", str(first), "--json", "key", "new", "blog").output)
    assert made == [{"name": "blog", "site_id": made[0]["site_id"]}]
    assert records(run("key", "list", "--data-dir", str(first), "--json").output) == made
    assert records(run("--json", "key", "list", "--data-dir", str(first)).output) == made
    # The environment names the default; a flag on either side wins over it.
    env = {"PEERWEB_DATA_DIR": str(second)}
    assert run("key", "list", env=env).stdout == ""
    assert records(run("--data-dir", str(first), "--json", "key", "list", env=env).output) == made
    assert records(run("key", "list", "--json", "--data-dir", str(first), env=env).output) == made
    # After the command wins over before it.
    assert run("--data-dir", str(first), "key", "list", "--data-dir", str(second)).stdout == ""


def test_errors_under_json_are_one_object_on_stderr(tmp_path):
    cases = [
        (("status", "--json", "--data-dir", str(tmp_path)), "node_not_running"),
        (("--json", "get", "not_a_site/x"), "bad_address"),
        (("name", "rm", "nope", "--json", "--data-dir", str(tmp_path)), "not_found"),
        (("get", "0" * 40, "--json"), "bad_address"),  # well formed, names nothing
        (("key", "rm", "nope", "--json", "--data-dir", str(tmp_path)), "not_found"),
        (("status", "--json", "--no-such-option"), "usage"),
        (("--json", "no-such-command"), "usage"),
    ]
    for args, kind in cases:
        result = run(*args)
        assert result.exit_code != 0, args
        assert result.stdout == "", args
        [error] = records(result.stderr)
        assert error["kind"] == kind and error["error"], (args, error)


def test_errors_in_text_are_one_line(tmp_path):
    result = run("status", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: no node is running for {tmp_path}; start one with "
        f"`peerweb node --data-dir {tmp_path}`"]
    bad = run("get", "0" * 40)
    assert bad.exit_code == 1 and "all zeros" in bad.stderr


def test_key_rm_asks_warns_and_removes(tmp_path):
    data = ("--data-dir", str(tmp_path))
    site_id = records(run("key", "new", "blog", "--json", *data).output)[0]["site_id"]
    kept = run("key", "rm", "blog", *data, input="n\n")
    assert kept.exit_code == 1 and "never be updated again" in kept.stderr
    assert site_id in kept.stderr
    assert (tmp_path / "keys" / "blog.key").exists()
    gone = run("key", "rm", "blog", *data, input="y\n")
    assert gone.exit_code == 0 and f"removed key blog ({site_id})" in gone.stdout
    assert not (tmp_path / "keys" / "blog.key").exists()
    run("key", "new", "draft", *data)
    quiet = run("key", "rm", "draft", "--yes", "--json", *data)
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert records(quiet.stdout)[0]["removed"] is True
    assert run("key", "list", *data).stdout == ""


def test_key_commands_print_ndjson(tmp_path, monkeypatch):
    monkeypatch.setenv("PEERWEB_PASSPHRASE", "a long passphrase")
    data = ("--data-dir", str(tmp_path / "a"))
    run("key", "new", "one", *data)
    run("key", "new", "two", *data)
    listed = records(run("key", "list", "--json", *data).stdout)
    assert [k["name"] for k in listed] == ["one", "two"]
    backup = tmp_path / "one.pem"
    exported = records(run("key", "export", "one", "-o", str(backup), "--json", *data).stdout)
    assert exported == [{"name": "one", "site_id": listed[0]["site_id"], "path": str(backup)}]
    imported = records(run("key", "import", "one", str(backup), "--json",
                           "--data-dir", str(tmp_path / "b")).stdout)
    assert imported == [listed[0]]


def test_a_folder_fetch_writes_each_file_under_the_directory(tmp_path):
    files = [{"path": "index.html", "size": 3}, {"path": "about/index.html", "size": 4},
             {"path": "about/team/me.png", "size": 5}]
    everything = plan_tree(files, "", tmp_path)
    assert [(p.remote, p.local, p.size) for p in everything] == [
        ("index.html", tmp_path / "index.html", 3),
        ("about/index.html", tmp_path / "about" / "index.html", 4),
        ("about/team/me.png", tmp_path / "about" / "team" / "me.png", 5)]
    about = plan_tree(files, "about/", tmp_path)
    assert [p.local for p in about] == [tmp_path / "index.html", tmp_path / "team" / "me.png"]
    for evil in ("../x", "a/../../x", "/etc/passwd", "a\\..\\x", "a/\x00"):
        with pytest.raises(PeerwebError, match="could leave"):
            plan_tree([{"path": evil, "size": 1}], "", tmp_path)


def test_a_folder_goes_into_a_directory_unless_a_page_name_is_given(tmp_path):
    assert writes_tree(tmp_path / "copy") and writes_tree(tmp_path / "copy.d")
    assert not writes_tree(tmp_path / "about.html") and not writes_tree(tmp_path / "a.HTM")
    (tmp_path / "site.html").mkdir()
    assert writes_tree(tmp_path / "site.html")  # an existing directory is a directory


def test_remote_names():
    def name(text: str, folder: bool = False) -> str:
        return remote_name_of(parse_cli_address(text), folder)

    assert name(f"{SITE_ID}/media/video.mp4") == "video.mp4"
    assert name(f"{SITE_ID}/about/") == "index.html"
    assert name(SITE_ID) == "index.html"
    assert name(f"{SITE_ID}/a%20b.txt") == "a b.txt"
    assert name(f"{SITE_ID}/about/", folder=True) == "about"
    assert name(f"{SITE_ID}/", folder=True) == SITE_ID


def test_plurals_and_text_types():
    assert [plural(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]
    assert is_text("text/html; charset=utf-8") and is_text("image/svg+xml")
    assert is_text("application/ld+json") and not is_text("image/png")
    assert not is_text("application/octet-stream")


def test_a_process_that_exited_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    pid = child.pid
    child.wait()
    assert process_gone(pid)
    assert not process_gone(os.getpid())


def test_help_mentions_every_json_command():
    # Every command that prints accepts --json, groups excepted.
    leaves = [path for path, command in ALL if not isinstance(command, click.Group)]
    assert {"stop", "get", "publish", "log", "pin", "unpin", "export"} <= {p[0] for p in leaves}
    assert ("key", "rm") in leaves


def test_cli_imports_nothing_heavy_for_help():
    out = subprocess.run([sys.executable, "-c",
                          "import sys; from peerweb.cli import main; "
                          "print(sorted(m for m in sys.modules if m.split('.')[0] in "
                          "('rich', 'aiohttp', 'libtorrent')))"],
                         capture_output=True, text=True, check=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")})
    assert out.stdout.strip() == "[]"


def test_every_command_module_is_registered_under_its_own_commands():
    import importlib
    import pkgutil

    import peerweb.cli
    from peerweb.cli.main import COMMAND_MODULES

    defined = {}
    for info in pkgutil.iter_modules(peerweb.cli.__path__):
        module = importlib.import_module(f"peerweb.cli.{info.name}")
        if hasattr(module, "COMMANDS"):
            defined[info.name] = tuple(c.name for c in module.COMMANDS)
    assert defined == COMMAND_MODULES
    assert sorted(main.commands) == sorted(n for names in defined.values() for n in names)


def test_publish_against_a_node_imports_only_its_own_command_module():
    # No node runs on this data dir: the command fails after its imports, as it would
    # answer after them.
    script = ("import sys\nfrom peerweb.cli import main\n"
              "main(['publish', '.', '--json', '--data-dir', sys.argv[1]], standalone_mode=False)\n"
              "print(sorted(m for m in sys.modules if m.startswith('peerweb.cli.') or "
              "m.split('.')[0] in ('libtorrent', 'aiohttp', 'dns', 'dnslib', 'rich')))")
    out = subprocess.run([sys.executable, "-c", script, "/nonexistent/peerweb-data"],
                         capture_output=True, text=True, check=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")})
    loaded = json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"'))
    assert loaded == ["peerweb.cli.lazy", "peerweb.cli.main", "peerweb.cli.options",
                      "peerweb.cli.output", "peerweb.cli.site_cmds"], loaded
