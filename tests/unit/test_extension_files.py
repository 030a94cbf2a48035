"""The browser extension ships as package data: its folder holds what its manifest names, and
``peerweb extension path`` prints that folder."""

from __future__ import annotations

import json

from click.testing import CliRunner

from peerweb import extension
from peerweb.cli.main import main


def test_the_folder_holds_every_file_the_manifest_names_and_nothing_else() -> None:
    folder = extension.folder()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["manifest_version"] == 3
    named = {manifest["background"]["service_worker"], *manifest["background"]["scripts"],
             manifest["action"]["default_popup"], manifest["options_ui"]["page"]}
    assert named <= set(extension.FILES)
    shipped = {p.name for p in folder.iterdir() if p.is_file() and p.suffix != ".py"}
    assert shipped == set(extension.FILES)


def test_extension_path_prints_the_folder_to_load_unpacked() -> None:
    text = CliRunner().invoke(main, ["extension", "path"])
    assert text.exit_code == 0 and text.output == f"{extension.folder()}\n"
    as_json = CliRunner().invoke(main, ["--json", "extension", "path"])
    assert json.loads(as_json.output) == {"path": str(extension.folder())}
    assert (extension.folder() / "manifest.json").is_file()
