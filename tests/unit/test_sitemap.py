import pytest

from peerweb.content.sitemap import Kind, SiteMap, content_type

FILES = ["index.html", "404.html", "docs/index.html", "docs/a b.txt", "", "img/x.png"]


@pytest.fixture
def sitemap():
    return SiteMap(FILES)


@pytest.mark.parametrize(
    ("path", "kind", "index"),
    [
        ("/", Kind.FILE, 0),
        ("", Kind.FILE, 0),
        ("/index.html", Kind.FILE, 0),
        ("/docs/", Kind.FILE, 2),
        ("/docs/a%20b.txt", Kind.FILE, 3),
        ("/docs/./a%20b.txt", Kind.FILE, 3),
        ("//docs//index.html", Kind.FILE, 2),
        ("/img/x.png", Kind.FILE, 5),
        ("/img/", Kind.NOT_FOUND, 1),  # folder without index: the site's 404.html
        ("/missing", Kind.NOT_FOUND, 1),
        ("/index.html/", Kind.NOT_FOUND, 1),
        ("/../etc/passwd", Kind.BAD_PATH, None),
        ("/docs/%2e%2e/%2e%2e/x", Kind.BAD_PATH, None),
        ("/docs%2findex.html", Kind.BAD_PATH, None),
        ("/a%00b", Kind.BAD_PATH, None),
        ("/%ff", Kind.BAD_PATH, None),
        ("/..%5c..%5cwin.ini", Kind.BAD_PATH, None),
    ],
)
def test_lookup(sitemap, path, kind, index):
    found = sitemap.lookup(path)
    assert found.kind is kind
    assert found.file_index == index


def test_folder_without_slash_redirects(sitemap):
    found = sitemap.lookup("/docs")
    assert found.kind is Kind.REDIRECT and found.location == "docs/"


def test_padding_files_never_match(sitemap):
    assert len(sitemap) == 5


def test_no_404_page():
    assert SiteMap(["index.html"]).lookup("/nope").file_index is None


@pytest.mark.parametrize(
    ("path", "ctype"),
    [("a.html", "text/html; charset=utf-8"), ("a.JS", "text/javascript; charset=utf-8"),
     ("a.css", "text/css; charset=utf-8"), ("a.png", "image/png"), ("a.mp4", "video/mp4"),
     ("noext", "application/octet-stream"), ("a.svg", "image/svg+xml; charset=utf-8"),
     ("a.wasm", "application/wasm")],
)
def test_content_type(path, ctype):
    assert content_type(path) == ctype
