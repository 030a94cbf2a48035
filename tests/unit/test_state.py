"""The state file is file input: a damaged one loads what is valid, keeps the original, and
never stops the node (issue 16, item 9)."""

from __future__ import annotations

import errno
import json
import logging
import stat

import pytest

from peerweb.content import bencode
from peerweb.content import pointer as ptr
from peerweb.content.identity import SiteKey
from peerweb.errors import StorageError
from peerweb.node import state
from peerweb.node.state import Dropped, NodeState, PublishedRecord, SiteRecord

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
KEYS = [SiteKey(f"k{i}", bytes([i]) * 32) for i in range(4)]
SIDS = [k.site_id for k in KEYS]


def record(index: int, version: int = 1) -> SiteRecord:
    pointer = ptr.sign(KEYS[index], bytes([index]) * 20, version, seq=version)
    site = SiteRecord(pointer, last_used=100.0 + index, pinned=index == 0)
    site.remember(pointer, 50.0)
    return site


def whole_state() -> NodeState:
    return NodeState(
        sites={SIDS[0]: record(0), SIDS[1]: record(1, version=3)},
        published={SIDS[0]: PublishedRecord("k0", 1, "00" * 20, ("http://t.example/a",))},
        exports={"11" * 20: "00" * 20},
    )


def as_json(value: NodeState) -> dict:
    return json.loads(state.encode(value))


def write(path, data: bytes | str):
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def copies(tmp_path) -> list:
    return sorted(tmp_path.glob("state.json.damaged-*"))


def test_a_whole_file_round_trips_with_nothing_dropped(tmp_path):
    original = whole_state()
    loaded = state.decode(state.encode(original))
    assert loaded.dropped == ()
    assert state.encode(loaded.state) == state.encode(original)
    write(tmp_path / "state.json", state.encode(original))
    assert state.encode(state.load(tmp_path / "state.json", NOW)) == state.encode(original)
    assert copies(tmp_path) == []


def test_no_file_is_an_empty_state(tmp_path):
    assert state.load(tmp_path / "state.json", NOW) == NodeState()
    assert copies(tmp_path) == []


@pytest.mark.parametrize(
    ("data", "dropped"),
    [
        (b"[]", [("the file", "a JSON array, not an object")]),
        (b"null", [("the file", "a JSON null, not an object")]),
        (b'"sites"', [("the file", "a JSON string, not an object")]),
        (b'{"sites":[]}', [("sites", "a JSON array, not an object")]),
        (b'{"sites":null,"published":7,"exports":"x"}',
         [("sites", "a JSON null, not an object"), ("published", "a JSON number, not an object"),
          ("exports", "a JSON string, not an object")]),
        (b"", [("the file", "not JSON: Expecting value: line 1 column 1 (char 0)")]),
        (b"[" * 100_000, [("the file", "not JSON: maximum recursion depth exceeded while "
                                       "decoding a JSON array from a unicode string")]),
        (b'{"sites": {', [("the file", "not JSON: Expecting property name enclosed in double "
                                       "quotes: line 1 column 12 (char 11)")]),
        (bytes(range(256)), [("the file", "not UTF-8 (invalid start byte at byte 128)"),
                             ("the file", "not JSON: Expecting value: line 1 column 1 (char 0)")]),
    ],
)
def test_damaged_forms_start_empty_and_keep_the_file(tmp_path, caplog, data, dropped):
    path = tmp_path / "state.json"
    write(path, data)
    assert [(d.where, d.reason) for d in state.decode(data).dropped] == dropped
    with caplog.at_level(logging.WARNING, logger="peerweb.node.state"):
        assert state.load(path, NOW) == NodeState()
    [copy] = copies(tmp_path)
    assert copy.name == "state.json.damaged-20231114T221320Z"
    assert copy.read_bytes() == data and path.read_bytes() == data
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert [r.getMessage() for r in caplog.records] == [
        *(f"state file: set aside {where}: {reason}" for where, reason in dropped),
        f"state file {path} was damaged: kept 0 sites and 0 published; the original is in "
        f"{copy}"]


def hand_edited(entry: dict, version: int) -> dict:
    """The entry with its pointer's signed version changed and the old signature kept."""
    inner = bencode.decode(bencode.decode(bytes.fromhex(entry["pointer"]["value"])))
    assert isinstance(inner, dict)
    inner[b"v"] = version
    value = ptr.wrap(bencode.encode(inner)).hex()
    return {**entry, "pointer": {**entry["pointer"], "value": value}}


def test_bad_entries_are_dropped_alone(tmp_path):
    raw = as_json(whole_state())
    good = raw["sites"]
    other = as_json(NodeState(sites={SIDS[2]: record(2)}))["sites"][SIDS[2]]
    raw["sites"] = {
        SIDS[0]: good[SIDS[0]],
        SIDS[2]: hand_edited(other, 9),  # v1 edited to v9: the signature no longer matches
        "not-a-site": good[SIDS[1]],
        SIDS[3]: good[SIDS[1]],  # site 1's pointer filed under site 3
        SIDS[1]: good[SIDS[1]],
        "x" * 52: [],
    }
    raw["published"]["b" * 52] = {"key": "k", "version": 1, "infohash": "00" * 20}
    raw["published"][SIDS[1]] = {"key": "k1", "version": 0, "infohash": "00" * 20}
    raw["published"][SIDS[2]] = {"key": "k2", "version": 2, "infohash": "00" * 20,
                                 "trackers": "http://t"}  # not a list: the entry stays
    raw["exports"]["zz"] = "00" * 20
    raw["extra"] = 1
    loaded = state.decode(json.dumps(raw).encode())
    assert [(d.where, d.reason) for d in loaded.dropped] == [  # in file order (sorted keys)
        ("exports.zz", "not a pair of hex info-hashes"),
        ("published." + "b" * 52, "not a site id"),
        (f"published.{SIDS[1]}", "no positive integer version"),
        (f"published.{SIDS[2]}.trackers", "not an array of URLs; using none"),
        (f"sites.{SIDS[2]}",
         "bad signature: this pointer was not signed by the site's key"),
        ("sites.not-a-site", "not a site id"),
        (f"sites.{SIDS[3]}", "its pointer is signed for another site"),
        ("sites." + "x" * 52, "not a site id"),
        ("extra", "not a part of state format 1"),
    ]
    expected = whole_state()
    expected.published[SIDS[2]] = PublishedRecord("k2", 2, "00" * 20)
    assert state.encode(loaded.state) == state.encode(expected)


def test_bad_fields_fall_back_and_bad_history_entries_go_alone():
    raw = as_json(whole_state())
    site = raw["sites"][SIDS[1]]
    site["pinned"] = "yes"
    site["last_used"] = 1e400  # json reads it as infinity
    site["mirrored_until"] = "DIGITS"  # replaced by 5,000 digits below: past json's 4,300
    site["history"] = [
        {"version": 1, "infohash": "ab" * 20, "seen": 1.0, "changed": ["a.html"]},
        {"version": 2, "infohash": "AB" * 20, "seen": 2.0},  # upper-case hex
        {"version": 2, "infohash": "cd" * 20, "seen": 2.0, "changed": "a.html"},
        {"version": 7, "infohash": "ef" * 20, "seen": 3.0},  # above the signed version 3
        "v3",
    ]
    text = json.dumps(site)  # json.dumps writes 1e400 back as Infinity
    raw["sites"][SIDS[1]] = "SITE"
    data = json.dumps(raw).replace('"SITE"', text).replace('"DIGITS"', "9" * 5000).encode()
    loaded = state.decode(data)
    where = f"sites.{SIDS[1]}"
    assert [(d.where, d.reason) for d in loaded.dropped] == [
        (f"{where}.last_used", "Infinity is not valid; using 0.0"),
        (f"{where}.pinned", "yes is not valid; using False"),
        (f"{where}.mirrored_until", "NaN is not valid; using 0.0"),
        (f"{where}.history[1]", "not a version entry"),
        (f"{where}.history[2]", "not a version entry"),
        (f"{where}.history[3]", "version 7 is above the signed 3"),
        (f"{where}.history[4]", "not a version entry"),
    ]
    kept = loaded.state.sites[SIDS[1]]
    assert (kept.last_used, kept.pinned, kept.mirrored_until) == (0.0, False, 0.0)
    assert [(e.version, e.infohash, e.changed) for e in kept.history] == [
        (1, "ab" * 20, ["a.html"]), (3, "01" * 20, None)]
    assert set(loaded.state.sites) == {SIDS[0], SIDS[1]}


def test_an_upper_case_site_key_is_the_same_site():
    raw = as_json(whole_state())
    raw["sites"][SIDS[1].upper()] = raw["sites"].pop(SIDS[1])
    loaded = state.decode(json.dumps(raw).encode())
    assert loaded.dropped == ()
    assert set(loaded.state.sites) == {SIDS[0], SIDS[1]}


def test_two_spellings_of_one_site_keep_the_newer_pointer():
    newer = as_json(NodeState(sites={SIDS[1]: record(1, version=5)}))["sites"][SIDS[1]]
    raw = as_json(whole_state())  # holds site 1 at version 3
    raw["sites"][SIDS[1].upper()] = newer
    loaded = state.decode(json.dumps(raw).encode())
    assert loaded.dropped == (Dropped(f"sites.{SIDS[1]}", "a second entry for the same site, "
                                                           "with an older pointer"),)
    assert loaded.state.sites[SIDS[1]].pointer.version == 5


def test_bytes_damaged_inside_one_entry_cost_only_that_entry(tmp_path):
    data = state.encode(whole_state())
    signature = json.loads(data)["sites"][SIDS[1]]["pointer"]["signature"]
    damaged = data.replace(signature.encode(), b"\xff" + signature[1:].encode())
    loaded = state.decode(damaged)
    assert [d.where for d in loaded.dropped] == ["the file", f"sites.{SIDS[1]}"]
    assert loaded.dropped[0].reason.startswith("not UTF-8 (invalid start byte at byte ")
    assert set(loaded.state.sites) == {SIDS[0]}
    assert set(loaded.state.published) == {SIDS[0]}


def test_a_copy_is_kept_once_per_content(tmp_path):
    path = tmp_path / "state.json"
    write(path, b"[]")
    state.load(path, NOW)
    state.load(path, NOW + 60)  # stopped before it saved: the same bytes, no second copy
    assert [c.name for c in copies(tmp_path)] == ["state.json.damaged-20231114T221320Z"]
    write(path, b"null")
    state.load(path, NOW)  # new damage in the same second gets its own name
    assert [(c.name, c.read_bytes()) for c in copies(tmp_path)] == [
        ("state.json.damaged-20231114T221320Z", b"[]"),
        ("state.json.damaged-20231114T221320Z-1", b"null")]


def test_an_unreadable_state_file_is_a_clear_error_not_a_loss(tmp_path):
    (tmp_path / "state.json").mkdir()
    with pytest.raises(StorageError, match="cannot read the state file"):
        state.load(tmp_path / "state.json", NOW)


def test_a_copy_that_cannot_be_written_stops_the_load_before_anything_is_lost(tmp_path,
                                                                           monkeypatch):
    def disk_full(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(state, "keep_copy", disk_full)
    path = tmp_path / "state.json"
    write(path, b"[]")
    with pytest.raises(StorageError, match=r"could not be written \(No space left on device\); "
                                           "not starting, so that it is not overwritten"):
        state.load(path, NOW)
    assert path.read_bytes() == b"[]"


def test_history_keeps_each_versions_signed_pointer_and_drops_a_false_one():
    site = record(2, version=1)
    second = ptr.sign(KEYS[2], b"\x22" * 20, 2, seq=2)
    site.pointer = second
    site.remember(second, 60.0)
    loaded = state.decode(state.encode(NodeState(sites={SIDS[2]: site}))).state
    history = loaded.sites[SIDS[2]].history
    assert [(e.version, e.pointer.version if e.pointer else None) for e in history] == [
        (1, 1), (2, 2)]
    assert history[0].pointer == record(2, version=1).pointer  # re-verified, the same
    # A pointer that is not the entry's version (or not validly signed) goes; the entry stays.
    raw = as_json(NodeState(sites={SIDS[2]: site}))
    entries = raw["sites"][SIDS[2]]["history"]
    entries[0]["pointer"] = entries[1]["pointer"]
    entries[1]["pointer"] = {**entries[1]["pointer"], "signature": "00" * 64}
    loaded = state.decode(json.dumps(raw).encode()).state
    kept = loaded.sites[SIDS[2]].history
    assert [e.version for e in kept] == [1, 2]
    assert kept[0].pointer is None
    assert kept[1].pointer == second  # the current pointer fills its own entry back in
def test_an_earlier_version_s_bytes_published_again_move_to_the_top_of_the_history():
    site = record(2)  # v1 of snapshot A
    for version, tid in ((2, bytes([7]) * 20), (3, bytes([2]) * 20)):  # B, then A again
        site.remember(ptr.sign(KEYS[2], tid, version, seq=version), 50.0 + version)
    assert [(e.version, e.infohash[:2]) for e in site.history] == [(2, "07"), (3, "02")]
    site.remember(ptr.sign(KEYS[2], bytes([2]) * 20, 1, seq=9), 60.0)  # a replay: no change
    assert [(e.version, e.seen) for e in site.history] == [(2, 52.0), (3, 53.0)]
