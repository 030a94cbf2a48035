"""``pip wheel --no-deps .`` carries every file of the package: the example site, the
dashboard's and the verifying worker's scripts, py.typed, and the licence."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# pip fetches setuptools into an isolated build environment (from its cache once it has it).
BUILD_TIMEOUT = 300


def test_the_wheel_holds_every_file_of_the_package(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy, so no build/ or egg-info lands in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
         "-q", "-w", str(tmp_path / "out"), str(source)],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "out").glob("peerweb-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    package = source / "src" / "peerweb"
    expected = {f"peerweb/{p.relative_to(package).as_posix()}" for p in package.rglob("*")
                if p.is_file()}
    assert expected - names == set()
    for must in ("peerweb/py.typed", "peerweb/example_site/index.html",
                 "peerweb/spike/static/sw.js", "peerweb/spike/static/verify.js",
                 "peerweb/http/static/dashboard.js"):
        assert must in names
    assert any(n.endswith(".dist-info/entry_points.txt") for n in names)
    assert any(n.endswith("LICENSE") and ".dist-info/" in n for n in names), sorted(
        n for n in names if ".dist-info/" in n)
