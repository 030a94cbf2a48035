import os

import pytest

from peerweb.config import parse_hostport, parse_size
from peerweb.content.folder import piece_size_for, scan
from peerweb.errors import PublishError, UsageError


def make_site(root):
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("hi")
    (root / "sub" / "a.css").write_text("a{}")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("secret")
    (root / ".env").write_text("secret")
    return root


def test_scan_lists_files_and_skips_hidden(tmp_path):
    files = scan(make_site(tmp_path / "site"))
    assert [f.relative for f in files] == ["index.html", "sub/a.css"]


def test_empty_folder_is_refused(tmp_path):
    with pytest.raises(PublishError, match="no files"):
        scan(tmp_path)


def test_missing_index_is_refused_unless_asked(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(PublishError, match="--no-index"):
        scan(tmp_path)
    assert len(scan(tmp_path, require_index=False)) == 1


def test_symlink_leaving_the_folder_is_refused(tmp_path):
    site = make_site(tmp_path / "site")
    (tmp_path / "outside").write_text("secret")
    os.symlink(tmp_path / "outside", site / "leak")
    with pytest.raises(PublishError, match="links outside"):
        scan(site)


def test_symlink_inside_is_followed(tmp_path):
    site = make_site(tmp_path / "site")
    os.symlink(site / "sub" / "a.css", site / "b.css")
    assert "b.css" in [f.relative for f in scan(site)]


def test_special_files_are_refused(tmp_path):
    site = make_site(tmp_path / "site")
    os.mkfifo(site / "pipe")
    with pytest.raises(PublishError, match="not a regular file"):
        scan(site)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_files_are_refused(tmp_path):
    site = make_site(tmp_path / "site")
    (site / "index.html").chmod(0)
    with pytest.raises(PublishError, match="cannot read"):
        scan(site)


def test_piece_size_grows_with_the_site():
    assert piece_size_for(1000) == 64 * 1024
    assert piece_size_for(1 << 30) == 1 << 20
    assert piece_size_for(1 << 40) == 4 << 20


def test_parse_size_and_hostport():
    assert parse_size("4MB/s") == 4_000_000
    assert parse_size("2GiB") == 2 << 30
    assert parse_size("0") == 0
    with pytest.raises(UsageError):
        parse_size("lots")
    assert parse_hostport("127.0.0.2:80") == ("127.0.0.2", 80)
    assert parse_hostport("8080") == ("127.0.0.1", 8080)
    with pytest.raises(UsageError):
        parse_hostport("host:port")
