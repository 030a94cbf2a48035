"""Property tests of the parsers that take network input: bencode, pointers, Range, addresses
and paths. Each says what the outcome must be for any input, not only that nothing crashes.
Bounded by the "ci" hypothesis profile (tests/conftest.py)."""

from __future__ import annotations

import json
import posixpath
import re
import string
from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from peerweb.content import bencode
from peerweb.content import pointer as ptr
from peerweb.content.addressing import (
    Address,
    Target,
    parse_cli_address,
    parse_infohash,
    parse_magnet,
    parse_name,
    route,
)
from peerweb.content.identity import SiteKey, normalise_site_id, public_key_from_site_id
from peerweb.content.ranges import ByteRange, RangeNotSatisfiable, parse_range
from peerweb.content.sitemap import Kind, SiteMap, normalise
from peerweb.errors import BadAddress, ForgedPointer

# -- bencode -------------------------------------------------------------------------------

ints64 = st.integers(bencode.INT_MIN, bencode.INT_MAX)
values = st.recursive(
    ints64 | st.binary(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.binary(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=10,  # at most 10 levels deep: within MAX_DEPTH
)
# Bytes drawn mostly from bencoding's own alphabet reach far deeper into the decoder than
# uniform noise, which fails on its first byte.
bencode_like = st.lists(st.sampled_from(b"ilde:0123456789-") | st.integers(0, 255),
                        max_size=60).map(bytes)


@given(values)
def test_bencode_round_trips(value):
    assert bencode.decode(bencode.encode(value)) == value


@given(st.one_of(st.binary(max_size=200), bencode_like))
def test_bencode_decodes_only_canonical_bytes(data):
    """Any bytes either are refused with BencodeError or are the one encoding of what they
    decode to: no other exception, and no second spelling of a signed value."""
    try:
        value = bencode.decode(data)
    except bencode.BencodeError:
        return
    assert bencode.encode(value) == data


@given(values, st.data())
def test_bencode_damaged_encodings_are_refused_or_canonical(value, data):
    encoded = bytearray(bencode.encode(value))
    at = data.draw(st.integers(0, len(encoded)))
    action = data.draw(st.sampled_from(["insert", "replace", "delete"]))
    byte = data.draw(st.sampled_from(b"ilde:0123456789-\xd9"))
    if action == "insert":
        encoded.insert(at, byte)
    elif at < len(encoded):
        if action == "replace":
            encoded[at] = byte
        else:
            del encoded[at]
    try:
        decoded = bencode.decode(bytes(encoded))
    except bencode.BencodeError:
        return
    assert bencode.encode(decoded) == bytes(encoded)


@given(st.integers(1, 2**70), st.booleans())
def test_bencode_integers_past_int64_are_refused_both_ways(past, negative):
    number = -(2**63) - past if negative else 2**63 - 1 + past
    with pytest.raises(ValueError, match="64-bit"):
        bencode.encode(number)
    with pytest.raises(bencode.BencodeError):
        bencode.decode(b"i%de" % number)


@given(st.integers(bencode.MAX_INT_DIGITS + 1, 6000), st.sampled_from([b"i%se", b"%s:x"]))
def test_bencode_refuses_long_numbers_cheaply(digits, form):
    with pytest.raises(bencode.BencodeError):
        bencode.decode(form % (b"7" * digits))


# -- pointers ------------------------------------------------------------------------------

KEY = SiteKey("prop", bytes(range(32)))
GOOD = ptr.sign(KEY, bytes(range(20)), 4, seq=9)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12,
)
hex_text = st.binary(max_size=70).map(bytes.hex)


@given(json_values)
def test_any_json_is_refused_as_a_forged_pointer(record):
    with pytest.raises(ForgedPointer):
        ptr.Pointer.from_json(record)


@given(st.sampled_from(["public_key", "seq", "signature", "value", "salt"]),
       json_values | hex_text | st.integers(-(2**70), 2**70))
def test_a_changed_field_is_refused_unless_it_changed_nothing(name, replacement):
    record = {**GOOD.to_json(), name: replacement}
    try:
        pointer = ptr.Pointer.from_json(record)
    except ForgedPointer:
        return
    # Only a spelling of the same bytes verifies: the signature covers everything else.
    assert pointer == GOOD


@given(st.binary(max_size=ptr.MAX_VALUE_SIZE + 20), st.integers(0, bencode.INT_MAX))
def test_any_signed_value_is_a_pointer_or_forged(value, seq):
    """Even a genuine signature over arbitrary bytes gives a well-formed pointer or
    ForgedPointer: no other exception, and only what the value holds."""
    signature = KEY.sign(ptr.signed_message(seq, value))
    try:
        pointer = ptr.verify(KEY.public_key, seq, value, signature)
    except ForgedPointer:
        return
    assert len(value) <= ptr.MAX_VALUE_SIZE and pointer.value == value
    record = bencode.decode(value)
    if isinstance(record, bytes):
        record = bencode.decode(record)
    assert isinstance(record, dict)
    assert (record[b"ih"], record[b"v"]) == (pointer.infohash, pointer.version)
    assert len(pointer.infohash) == 20 and 1 <= pointer.version <= bencode.INT_MAX


urls = st.builds(lambda scheme, host: f"{scheme}://{host}/announce",
                 st.sampled_from(["http", "https", "udp"]),
                 st.text(string.ascii_lowercase + string.digits + ".-", min_size=1,
                         max_size=30))


@given(st.binary(min_size=20, max_size=20), st.integers(1, bencode.INT_MAX),
       st.integers(0, bencode.INT_MAX), st.lists(urls, max_size=3))
def test_signed_records_round_trip_through_json(infohash, version, seq, trackers):
    signed = ptr.sign(KEY, infohash, version, seq, tuple(trackers))
    again = ptr.Pointer.from_json(json.loads(json.dumps(signed.to_json())))
    assert again == signed
    assert (again.infohash, again.version, again.seq, again.trackers) == (
        infohash, version, seq, tuple(trackers))


# -- Range ---------------------------------------------------------------------------------

totals = st.integers(0, 10**12)
range_text = st.text(alphabet=st.sampled_from("bytes=-, \t0123456789²٣४\u00a0") | st.characters(),
                     max_size=40)


@given(st.one_of(range_text, range_text.map(lambda t: "bytes=" + t)), totals)
def test_a_range_header_gives_a_range_within_the_body_or_none_or_416(header, total):
    try:
        result = parse_range(header, total)
    except RangeNotSatisfiable:
        return
    if result is not None:
        assert 0 <= result.start < result.end <= total


@given(st.integers(0, 10**15), st.integers(0, 10**15) | st.none(), totals)
def test_first_last_ranges_mean_what_rfc_9110_says(first, last, total):
    header = f"bytes={first}-{'' if last is None else last}"
    if last is not None and last < first:
        assert parse_range(header, total) is None  # invalid: ignored
    elif first >= total:
        with pytest.raises(RangeNotSatisfiable):
            parse_range(header, total)
    else:
        end = total if last is None else min(last + 1, total)
        assert parse_range(header, total) == ByteRange(first, end)


@given(st.integers(0, 10**15), totals)
def test_suffix_ranges_mean_what_rfc_9110_says(suffix, total):
    if suffix == 0 or total == 0:
        with pytest.raises(RangeNotSatisfiable):
            parse_range(f"bytes=-{suffix}", total)
    else:
        assert parse_range(f"bytes=-{suffix}", total) == ByteRange(max(0, total - suffix),
                                                                   total)


non_ascii_digits = st.characters(categories=["Nd", "No"]).filter(lambda c: not c.isascii())


@given(st.integers(0, 999), st.integers(0, 999), non_ascii_digits, st.data())
def test_a_non_ascii_digit_anywhere_makes_the_header_ignored(first, length, digit, data):
    header = f"bytes={first}-{first + length}"
    at = data.draw(st.integers(0, len(header)))
    assert parse_range(header[:at] + digit + header[at:], 10**6) is None


# -- addresses and paths -------------------------------------------------------------------

SID = KEY.site_id
# Text rich in the characters URL and host parsers treat specially.
url_text = st.text(st.sampled_from("[]:/@%?#&=.-_ \\\x00aZ9\u212a\u0130") | st.characters(),
                   max_size=60)
hosts = st.one_of(
    url_text,
    st.text(max_size=60).map(lambda label: label + ".localhost"),
    st.sampled_from([SID, SID.upper(), "localhost", "127.0.0.1", "::1", "a" * 52])
    .flatmap(lambda base: st.sampled_from([base, base + ".localhost", base + ".localhost.",
                                           "x." + base + ".localhost"])),
)
raw_paths = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(["s", "ih", SID, SID.upper(), "ab" * 20, "..", ".", "",
                              "%2e%2e", "%2f", "%00", "a", "%ff"]), max_size=6)
    .map(lambda parts: "/" + "/".join(parts)),
)
_HEX_IDENT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def check_address(address: Address) -> None:
    if address.target is Target.SITE:
        assert normalise_site_id(address.ident) == address.ident  # canonical: lowercase
        assert len(public_key_from_site_id(address.ident)) == 32
    elif address.target is Target.SNAPSHOT:
        assert _HEX_IDENT.fullmatch(address.ident)
    elif address.target is Target.NAME:  # dotted DNS labels, lowercase, never a site id
        assert parse_name(address.ident) == address.ident
        assert address.ident.isascii() and address.ident == address.ident.lower()
    else:
        assert address.ident == ""


@given(hosts, raw_paths)
def test_any_host_and_path_route_somewhere_or_are_a_bad_address(host, path):
    try:
        address = route(host, path, set())
    except BadAddress:
        return
    check_address(address)
    if address.target is not Target.UNKNOWN_HOST:
        assert host.isascii()


@given(st.lists(st.sampled_from([str.upper, str.lower, str.title]), min_size=1, max_size=3),
       st.sampled_from(["subdomain", "path"]))
def test_a_site_id_in_any_case_routes_to_its_one_canonical_id(cases, form):
    spelt = SID
    for case in cases:
        spelt = case(spelt)
    address = (route(f"{spelt}.localhost", "/", set()) if form == "subdomain"
               else route("localhost", f"/s/{spelt}/", set()))
    assert (address.target, address.ident) == (Target.SITE, SID)


@given(st.one_of(url_text, url_text.map(lambda t: "magnet:?" + t),
                 url_text.map(lambda t: "magnet:?xt=urn:btih:" + "ab" * 20 + "&" + t),
                 url_text.map(lambda t: "http://" + t), url_text.map(lambda t: "magnet:" + t)))
def test_cli_addresses_and_magnets_parse_or_are_a_bad_address(text):
    for parse in (parse_cli_address, parse_magnet):
        try:
            address = parse(text)
        except BadAddress:
            continue
        check_address(address)


@given(st.text(max_size=80))
def test_infohashes_parse_to_lowercase_hex_or_are_a_bad_address(text):
    try:
        parsed = parse_infohash(text)
    except BadAddress:
        return
    assert _HEX_IDENT.fullmatch(parsed)
    assert parsed == text.strip().lower() or len(text.strip()) == 32  # hex as is, or base32


path_segments = st.sampled_from(["..", ".", "", "a", "b.html", "%2e", "%2E%2e", "%2f", "%5c",
                                 "%00", "\\", "%c0%ae", "..%2f", "index.html", "%ff"])


@given(st.one_of(st.text(max_size=60),
                 st.lists(path_segments | st.text(max_size=6), max_size=8)
                 .map(lambda parts: "/" + "/".join(parts))))
def test_no_path_ever_leaves_the_site(raw_path):
    try:
        segments = normalise(raw_path)
    except UnicodeDecodeError:
        return  # SiteMap.lookup answers BAD_PATH
    if segments is None:
        return
    for segment in segments:
        assert segment not in ("", ".", "..")
        assert not set(segment) & {"/", "\\", "\x00"}
    joined = posixpath.normpath(posixpath.join("/site", *segments))
    assert joined == "/site" or joined.startswith("/site/")
    assert joined == posixpath.join("/site", *segments).rstrip("/")  # nothing to normalise


site_files = st.lists(
    st.lists(st.text(st.characters(blacklist_characters="/\\\x00", codec="utf-8"),
                     min_size=1, max_size=8).filter(lambda s: s not in (".", "..")),
             min_size=1, max_size=3).map("/".join),
    min_size=1, max_size=6, unique=True)


@given(site_files, st.one_of(st.text(max_size=40),
                             st.lists(path_segments, max_size=6).map("/".join)))
def test_lookups_answer_only_with_the_sites_own_files(files, raw_path):
    assume(not any(a.startswith(b + "/") for a in files for b in files))  # no file is a folder
    sitemap = SiteMap(files)
    found = sitemap.lookup(raw_path)
    if found.kind is Kind.FILE:
        assert found.file_index is not None
        path = sitemap.path_of(found.file_index)
        segments = normalise(raw_path)
        assert segments is not None
        assert path in ("/".join(segments), "/".join([*segments, "index.html"]))
    elif found.kind is Kind.NOT_FOUND:
        assert found.file_index == (files.index("404.html") if "404.html" in files else None)


@given(site_files)
def test_every_file_is_found_by_its_quoted_path(files):
    assume(not any(a.startswith(b + "/") for a in files for b in files))
    sitemap = SiteMap(files)
    for index, path in enumerate(files):
        assert sitemap.lookup("/" + quote(path)).file_index == index
