"""Bundles: the copy a publish seeds is whole, also where an earlier copy was left behind."""

from __future__ import annotations

from peerweb.swarm import build


def test_the_same_bytes_again_reuse_a_whole_copy_and_replace_a_leftover(tmp_path):
    site, store = tmp_path / "site", tmp_path / "store"
    (site / "assets").mkdir(parents=True)
    (site / "index.html").write_bytes(b"<h1>one</h1>")
    (site / "assets" / "a.js").write_bytes(b"x" * 70_000)
    first = build.build(site, store)
    assert build.is_whole(first)
    seeded = first.content_dir / first.name / "index.html"
    inode = seeded.stat().st_ino

    again = build.build(site, store)  # the copy a torrent seeds now stays as it is
    assert again.infohash == first.infohash and seeded.stat().st_ino == inode

    # A superseded snapshot's files are deleted but its folder may stay: a revert to those
    # bytes must not seed from what is left.
    (first.content_dir / first.name / "assets" / "a.js").unlink()
    assert not build.is_whole(first)
    reverted = build.build(site, store)
    assert reverted.infohash == first.infohash and build.is_whole(reverted)
    assert (reverted.content_dir / reverted.name / "assets" / "a.js").read_bytes() == b"x" * 70_000
    assert sorted(p.name for p in store.iterdir()) == [first.infohash.hex()]  # nothing stale
