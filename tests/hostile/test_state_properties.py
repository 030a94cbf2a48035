"""Property tests of the state file, which is file input: any bytes load without raising,
what is kept is valid, and valid entries survive whatever junk sits beside them."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from peerweb.content import pointer as ptr
from peerweb.content.identity import SiteKey
from peerweb.node import state
from peerweb.node.state import NodeState, PublishedRecord, SiteRecord, VersionEntry

KEYS = [SiteKey(f"k{i}", bytes([i + 1]) * 32) for i in range(3)]
SIDS = {k.site_id for k in KEYS}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=10,
)
finite = st.floats(min_value=0, max_value=2e9, allow_nan=False)
hex40 = st.binary(min_size=20, max_size=20).map(bytes.hex)


@st.composite
def site_records(draw: st.DrawFn, key: SiteKey) -> SiteRecord:
    version = draw(st.integers(1, 50))
    pointer = ptr.sign(key, draw(st.binary(min_size=20, max_size=20)), version, seq=version)
    record = SiteRecord(pointer, draw(finite), draw(st.booleans()),
                        mirrored_until=draw(finite))
    for earlier in draw(st.lists(st.integers(1, version), max_size=3)):
        changed = draw(st.none() | st.lists(st.text(max_size=10), max_size=2))
        record.history.append(VersionEntry(earlier, draw(hex40), draw(finite), changed))
    record.remember(pointer, draw(finite))
    return record


@st.composite
def node_states(draw: st.DrawFn) -> NodeState:
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=3))
    published = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=2))
    return NodeState(
        sites={k.site_id: draw(site_records(k)) for k in keys},
        published={k.site_id: PublishedRecord(k.name, draw(st.integers(1, 50)), draw(hex40),
                                               tuple(draw(st.lists(st.text(max_size=9),
                                                                   max_size=2))))
                   for k in published},
        exports=draw(st.dictionaries(hex40, hex40, max_size=2)),
    )


def assert_valid(loaded: state.Loaded) -> None:
    """What decode kept is what a node may use: verified pointers filed under their site."""
    for sid, record in loaded.state.sites.items():
        assert ptr.Pointer.from_json(record.pointer.to_json()) == record.pointer
        assert record.pointer.site_id == sid
        assert all(entry.version <= record.pointer.version for entry in record.history)
        assert any(entry.infohash == record.pointer.infohash.hex() for entry in record.history)


@given(node_states())
def test_a_saved_state_loads_back_exactly(original):
    loaded = state.decode(state.encode(original))
    assert loaded.dropped == ()
    assert loaded.state == original


@given(st.one_of(st.binary(max_size=300),
                 json_values.map(lambda v: json.dumps(v).encode())))
def test_any_bytes_decode_to_a_valid_state_without_raising(data):
    loaded = state.decode(data)
    assert_valid(loaded)
    # What was kept saves and loads back as itself, with nothing more to drop.
    again = state.decode(state.encode(loaded.state))
    assert (again.state, again.dropped) == (loaded.state, ())
    if loaded.dropped == ():  # nothing set aside: an object of known parts only
        assert set(json.loads(data)) <= {"format", "sites", "published", "exports"}


@given(node_states(), st.dictionaries(st.sampled_from(["sites", "published", "exports"]),
                                      st.dictionaries(st.text(max_size=60), json_values,
                                                      min_size=1, max_size=3),
                                      min_size=1))
def test_valid_entries_survive_junk_beside_them(original, junk):
    raw = json.loads(state.encode(original))
    for section, entries in junk.items():
        for key, value in entries.items():
            if key.lower() not in SIDS and key not in raw[section]:
                raw[section][key] = value
    loaded = state.decode(json.dumps(raw).encode())
    assert_valid(loaded)
    assert loaded.state.sites == original.sites  # junk keys are no site ids of ours
    assert {k: v for k, v in loaded.state.published.items() if k in original.published} \
        == original.published
    assert {k: v for k, v in loaded.state.exports.items() if k in original.exports} \
        == original.exports
    # Every junk key was either dropped, or valid on its own (a well-formed export pair).
    kept_junk = set(loaded.state.exports) - set(original.exports)
    assert kept_junk <= set(junk.get("exports", {}))


@given(st.binary(max_size=200))
def test_load_never_raises_and_keeps_the_original_when_it_drops(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.json"
        path.write_bytes(data)
        loaded = state.load(path, now=0.0)
        copies = list(Path(folder).glob("state.json.damaged-*"))
        assert [c.read_bytes() for c in copies] == ([data] if state.decode(data).dropped
                                                    else [])
        assert path.read_bytes() == data
        assert_valid(state.Loaded(loaded))
