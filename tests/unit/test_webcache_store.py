"""The web cache's on-disk store (peerweb.webcache.store): versions kept again, replaced,
shared bodies, eviction and reload. Real files in a temporary folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

from peerweb.webcache.copies import Manifest, Resource
from peerweb.webcache.store import Store

ORIGIN = "http://example.org"


def version(bodies: dict[str, bytes]) -> tuple[Manifest, dict[str, bytes]]:
    """A manifest of ``path -> body`` (the first the page) and its bodies by sha256."""
    resources = tuple(Resource(ORIGIN + path, (("content-type", "text/plain"),),
                               hashlib.sha256(body).hexdigest(), len(body))
                      for path, body in bodies.items())
    return Manifest(resources), {r.sha256: b for r, b in zip(resources, bodies.values(),
                                                             strict=True)}


def store(tmp_path: Path, size: int = 1_000_000) -> Store:
    kept = Store(tmp_path / "webcache", size)
    kept.load()
    return kept


PAGE = {"/index.html": b"<p>page</p>", "/style.css": b"p { color: red }", "/a.png": b"png"}


def test_keeping_the_version_already_held_keeps_its_bodies(tmp_path: Path) -> None:
    kept = store(tmp_path)
    manifest, bodies = version(PAGE)
    assert kept.put(manifest, bodies, 100, own=True, agreeing=1, now=1.0)
    # The same version again (its bodies already held, so none sent), a later fetch time.
    assert kept.put(manifest, {}, 160, own=True, agreeing=1, now=2.0)
    entry = kept.get(manifest.url, own=True)
    assert entry is not None and entry.fetched_at == 160
    for sha, body in bodies.items():
        assert kept.body(sha) == body
        assert (kept.bodies_dir / sha).read_bytes() == body
    assert kept.missing(manifest) == []
    # And after a restart, the version is still whole.
    again = store(tmp_path)
    assert again.get(manifest.url, own=True) is not None
    assert all(again.body(sha) == body for sha, body in bodies.items())


def test_a_new_version_keeps_the_bodies_it_shares_and_drops_the_rest(tmp_path: Path) -> None:
    kept = store(tmp_path)
    old, old_bodies = version(PAGE)
    assert kept.put(old, old_bodies, 100, own=True, agreeing=1, now=1.0)
    new, new_bodies = version({**PAGE, "/index.html": b"<p>page, updated</p>"})
    assert kept.put(new, {new.page.sha256: new_bodies[new.page.sha256]}, 200, own=True,
                    agreeing=1, now=2.0)
    assert kept.body(old.page.sha256) is None
    assert not (kept.bodies_dir / old.page.sha256).exists()
    assert kept.body(new.page.sha256) == b"<p>page, updated</p>"
    for resource in new.resources[1:]:
        assert kept.body(resource.sha256) == new_bodies[resource.sha256]
    assert kept.used == new.total_size + len(new.canonical())


def test_an_own_and_a_rescued_copy_share_bodies_until_both_go(tmp_path: Path) -> None:
    kept = store(tmp_path)
    manifest, bodies = version(PAGE)
    assert kept.put(manifest, bodies, 100, own=True, agreeing=1, now=1.0)
    assert kept.put(manifest, {}, 90, own=False, agreeing=2, now=2.0)
    assert kept.drop(manifest.url, own=True)
    assert all(kept.body(sha) == body for sha, body in bodies.items())
    assert kept.drop(manifest.url, own=False)
    assert all(kept.body(sha) is None for sha in bodies)
    assert list(kept.bodies_dir.iterdir()) == []


def test_the_least_recently_used_version_goes_first(tmp_path: Path) -> None:
    first, first_bodies = version({"/one.html": b"1" * 400})
    second, second_bodies = version({"/two.html": b"2" * 400})
    kept = store(tmp_path, size=400 + len(first.canonical()) + 200)
    assert kept.put(first, first_bodies, 100, own=True, agreeing=1, now=1.0)
    assert kept.put(second, second_bodies, 100, own=True, agreeing=1, now=2.0)
    assert kept.get(first.url, own=True) is None
    assert kept.get(second.url, own=True) is not None
    assert kept.body(first.page.sha256) is None
