"""What a stylesheet loads (peerweb.webcache.page.css_references): url() in its three forms,
@import strings, resolved against the stylesheet's URL, same origin only, each once."""

from __future__ import annotations

from peerweb.webcache.page import Reference, css_references

CSS = b"""
@import "base.css";
@import url('print.css') print;
/* a commented-out url(old.png) is not loaded */
@font-face { font-family: x; src: url(../fonts/x.woff2) format("woff2"), url( "x.woff" ); }
body { background: url('/img/bg.png') no-repeat; }
h1 { background-image: url(data:image/png;base64,AAAA); }
.other { background: url(https://cdn.example.net/a.png); }
.again { background: url(/img/bg.png); }
.empty { background: url(); }
"""


def test_a_stylesheets_same_origin_references_in_order_each_once() -> None:
    found = css_references("https://example.org/css/site.css", CSS)
    assert found == [Reference(u, None) for u in (
        "https://example.org/css/base.css",
        "https://example.org/css/print.css",
        "https://example.org/fonts/x.woff2",
        "https://example.org/css/x.woff",
        "https://example.org/img/bg.png",
    )]


def test_at_most_limit_references_and_never_the_stylesheet_itself() -> None:
    css = b"a { background: url(site.css) } " + b"".join(
        b"b%d { background: url(i%d.png) } " % (i, i) for i in range(100))
    found = css_references("https://example.org/site.css", css, limit=5)
    assert [r.url for r in found] == [f"https://example.org/i{i}.png" for i in range(5)]
