"""node.restore: a backup's manifest paths land inside the folder restored into."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerweb.errors import UsageError
from peerweb.node.restore import _inside


def test_paths_land_under_the_folder(tmp_path: Path) -> None:
    assert _inside(tmp_path, "a/b/c.txt") == tmp_path / "a" / "b" / "c.txt"
    assert _inside(tmp_path, "top") == tmp_path / "top"


@pytest.mark.parametrize("path", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a",
                                  "a/\0b"])
def test_a_path_that_would_leave_the_folder_is_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(UsageError, match="outside its folder"):
        _inside(tmp_path, path)
