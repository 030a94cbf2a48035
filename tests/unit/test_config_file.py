"""``peerweb node``'s config file: keys named like the flags, flags win, unknown keys refused.

The command's context is made (its options parsed, the file read) without running a node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest

from peerweb.cli.config_file import CONFIG_FILE, flag_names
from peerweb.cli.node_cmds import node
from peerweb.errors import UsageError


def params(*args: str) -> dict[str, Any]:
    with node.make_context("node", list(args)) as ctx:
        return dict(ctx.params)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def write(data_dir: Path, text: str) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / CONFIG_FILE
    path.write_text(text)
    return path


def test_the_data_dirs_config_file_sets_defaults(data_dir: Path) -> None:
    write(data_dir, 'gateway = "127.0.0.9:8181"\nupload-limit = "2MB/s"\nmetered = true\n'
                    'peer-port = 7000\nbootstrap = ["10.0.0.1:6881", "10.0.0.2:6881"]\n')
    got = params("--data-dir", str(data_dir))
    assert got["gateway"] == "127.0.0.9:8181"
    assert got["upload_limit"] == "2MB/s"
    assert got["metered"] is True
    assert got["peer_port"] == 7000
    assert got["bootstrap"] == "10.0.0.1:6881,10.0.0.2:6881"
    assert got["download_limit"] == "0"  # not in the file: the built-in default


def test_flags_win_over_the_file(data_dir: Path) -> None:
    write(data_dir, 'gateway = "127.0.0.9:8181"\nswarm = "127.0.0.9:0"\n')
    got = params("--gateway", "127.0.0.3:0", "--data-dir", str(data_dir))
    assert got["gateway"] == "127.0.0.3:0"
    assert got["swarm"] == "127.0.0.9:0"


def test_underscores_name_the_same_keys(data_dir: Path) -> None:
    write(data_dir, 'disk_quota = "5GB"\n')
    assert params("--data-dir", str(data_dir))["disk_quota"] == "5GB"


def test_config_names_another_file_and_the_data_dirs_is_then_ignored(
        data_dir: Path, tmp_path: Path) -> None:
    write(data_dir, 'gateway = "127.0.0.9:1"\n')
    other = tmp_path / "other.toml"
    other.write_text('gateway = "127.0.0.8:2"\nlog-file = "/var/log/peerweb.log"\n')
    for order in (["--config", str(other), "--data-dir", str(data_dir)],
                  ["--data-dir", str(data_dir), "--config", str(other)]):
        got = params(*order)
        assert got["gateway"] == "127.0.0.8:2"
        assert got["log_file"] == Path("/var/log/peerweb.log")


def test_no_file_is_no_change(data_dir: Path) -> None:
    got = params("--data-dir", str(data_dir))
    assert got["gateway"] == "127.0.0.1:8080"
    assert got["metered"] is False


@pytest.mark.parametrize("text, words", [
    ('gatway = "127.0.0.1:1"\n', ["unknown key 'gatway'", "gateway"]),
    ('listen = "127.0.0.1:1"\n', ["unknown key 'listen'"]),  # the hidden old name of --swarm
    ('data-dir = "/tmp/x"\n', ["unknown key 'data-dir'", "found through the data dir"]),
    ('config = "/tmp/x"\n', ["unknown key 'config'"]),
    ("peer-port = \"many\"\n", ["peer-port", "not a valid integer"]),
    ("peer-port = 70000\n", ["peer-port"]),
    ('metered = "yes"\n', ["metered", "true or false"]),
    ('network = "moon"\n', ["network", "moon"]),
    ("gateway = [1, 2]\n", ["gateway", "strings"]),
    ("[gateway]\nhost = 1\n", ["gateway", "single value"]),
    ("gateway = \n", ["not valid TOML", "line 1"]),
])
def test_a_bad_file_is_a_usage_error_naming_the_file_and_key(
        data_dir: Path, text: str, words: list[str]) -> None:
    path = write(data_dir, text)
    with pytest.raises(UsageError) as caught:
        params("--data-dir", str(data_dir))
    message = str(caught.value)
    assert str(path) in message
    for word in words:
        assert word in message


def test_a_missing_named_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no config file at"):
        params("--config", str(tmp_path / "nope.toml"), "--data-dir", str(tmp_path))


def test_every_visible_node_flag_but_the_file_locators_may_be_set() -> None:
    names = set(flag_names(node))
    visible = {next(o[2:] for o in p.opts if o.startswith("--")) for p in node.params
               if isinstance(p, click.Option) and not p.hidden}
    assert names == visible - {"config", "data-dir", "help"}
    assert {"gateway", "upload-limit", "log-file", "swarm", "metered"} <= names
