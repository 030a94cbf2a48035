"""Signed version pointers: a BEP 44 mutable item whose value follows BEP 46.

The record is the bencoded dict ``{"ih": <20-byte v1 info-hash>, "v": <version>}``. BEP 46
defines ``ih``; ``v`` is peerweb's own: the site version chosen by the publisher. libtorrent
picks the BEP 44 sequence number itself (highest seen + 1), so it restarts when the item
expires from the DHT; the version that must never go back lives inside the signed value.

libtorrent's Python bindings can only put a byte string as a BEP 44 value, so in the DHT the
record travels wrapped in a bencoded string (``v = "<len>:d2:ih...e"``). Both that form and
a plain BEP 46 dict (as other clients put it) verify and parse here.

Everything here is pure: verify first (BEP 44 signs ``[4:salt<salt>]3:seqi<seq>e1:v<value>``),
then parse, then decide.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ForgedPointer
from . import bencode
from .identity import SiteKey, site_id_from_public_key, verify_signature

# BEP 44: "the bencoded value ... must be less than 1000 bytes".
MAX_VALUE_SIZE = 1000
MAX_TRACKER_URL = 200
# Domains a pointer may claim: with the info-hash and a URL or two, 8 short domains stay
# under BEP 44's 1000 bytes.
MAX_DOMAINS = 8
MAX_DOMAIN = 253
_DOMAIN_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class Pointer:
    """A verified pointer from a site's publisher to one snapshot of the site."""

    public_key: bytes
    """The publisher's ed25519 key; the site id is its base32 form."""
    infohash: bytes
    """v1 info-hash (20 bytes) of the hybrid torrent holding this version."""
    version: int
    """Publisher-chosen version, strictly increasing, inside the signed value."""
    seq: int
    """BEP 44 sequence number, chosen by libtorrent; covered by the signature, not ordered by us."""
    signature: bytes
    """ed25519 signature over the BEP 44 message."""
    value: bytes
    """The exact bencoded BEP 44 ``v`` the signature covers."""
    salt: bytes = b""
    trackers: tuple[str, ...] = ()
    """Tracker URLs the publisher listed (``tr``), announced to besides the DHT."""
    web_seeds: tuple[str, ...] = ()
    """BEP 19 web seeds the publisher listed (``ws``): HTTP servers holding the files."""
    domains: tuple[str, ...] = ()
    """DNS domains the site claims (``dn``): each is bridged only where the domain's own
    ``_peerweb`` TXT record names this site too (``peerweb.names.bridge``)."""

    @property
    def site_id(self) -> str:
        return site_id_from_public_key(self.public_key)

    def to_json(self) -> dict[str, object]:
        return {
            "public_key": self.public_key.hex(),
            "seq": self.seq,
            "signature": self.signature.hex(),
            "value": self.value.hex(),
            "salt": self.salt.hex(),
        }

    @classmethod
    def from_json(cls, data: object) -> Pointer:
        """Rebuild and re-verify a pointer saved or received as JSON (any JSON value: a peer
        chose it); ForgedPointer for anything but a validly signed pointer in ``to_json``'s
        form."""
        if not isinstance(data, dict):
            raise ForgedPointer(f"malformed pointer record: a {type(data).__name__}, "
                                "not an object")
        seq = data.get("seq")
        # bool is an int in Python, not in JSON; BEP 44's seq is a signed 64-bit integer and
        # libtorrent starts it at 1.
        if type(seq) is not int or not 0 <= seq <= bencode.INT_MAX:
            raise ForgedPointer("malformed pointer record: 'seq' is not an integer from 0 "
                                "to 2**63-1")
        return verify(
            _hex_field(data, "public_key"),
            seq,
            _hex_field(data, "value"),
            _hex_field(data, "signature"),
            _hex_field(data, "salt", ""),
        )


def _hex_field(data: dict[object, object], name: str, default: str | None = None) -> bytes:
    text = data.get(name, default)
    if not isinstance(text, str):
        raise ForgedPointer(f"malformed pointer record: {name!r} is not a hex string")
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise ForgedPointer(f"malformed pointer record: {name!r} is not hex: {exc}") from exc


def encode_record(infohash: bytes, version: int, trackers: tuple[str, ...] = (),
                  web_seeds: tuple[str, ...] = (), domains: tuple[str, ...] = ()) -> bytes:
    """The bencoded BEP 46 dict; what peerweb hands libtorrent to put."""
    if len(infohash) != 20:
        raise ValueError("BEP 46 ih is a 20-byte v1 info-hash")
    if version < 1:
        raise ValueError("versions start at 1")
    check_urls(trackers, web_seeds)
    check_domains(domains)
    record: dict[bytes, bencode.Value] = {b"ih": infohash, b"v": version}
    for key, urls in ((b"tr", trackers), (b"ws", web_seeds), (b"dn", domains)):
        if urls:
            record[key] = [u.encode() for u in urls]
    return bencode.encode(record)


def check_urls(trackers: tuple[str, ...], web_seeds: tuple[str, ...]) -> None:
    """ValueError naming the first tracker or web seed URL a record cannot carry."""
    for urls, valid, what in ((trackers, valid_tracker, "tracker (http, https, udp)"),
                              (web_seeds, valid_web_seed, "web seed (http, https)")):
        bad = [u for u in urls if not valid(u)]
        if bad:
            raise ValueError(f"not a {what} URL of at most {MAX_TRACKER_URL} characters: "
                             f"{bad[0][:80]!r}")


def valid_domain(domain: str) -> bool:
    """A lowercase DNS name of two or more labels (RFC 1035 section 2.3.1), no trailing dot."""
    labels = domain.split(".")
    return (len(domain) <= MAX_DOMAIN and len(labels) >= 2 and domain.isascii()
            and all(_DOMAIN_LABEL.fullmatch(label) for label in labels))


def check_domains(domains: tuple[str, ...]) -> None:
    """ValueError naming the first domain a record cannot carry."""
    if len(domains) > MAX_DOMAINS:
        raise ValueError(f"a site claims at most {MAX_DOMAINS} domains")
    bad = [d for d in domains if not valid_domain(d)]
    if bad:
        raise ValueError(f"not a domain name (lowercase, two labels or more): {bad[0][:80]!r}")


def valid_web_seed(url: str) -> bool:
    return valid_tracker(url) and url.startswith(("http://", "https://"))


def valid_tracker(url: str) -> bool:
    return len(url) <= MAX_TRACKER_URL and url.startswith(("http://", "https://", "udp://")) \
        and url.isprintable() and " " not in url


def signed_message(seq: int, value: bytes, salt: bytes = b"") -> bytes:
    """The bytes a BEP 44 mutable item signature covers."""
    prefix = b"4:salt%d:%s" % (len(salt), salt) if salt else b""
    return prefix + b"3:seqi%de1:v" % seq + value


def wrap(record: bytes) -> bytes:
    """The BEP 44 ``v`` libtorrent's bindings make of a record: a bencoded byte string."""
    return bencode.encode(record)


def sign(key: SiteKey, infohash: bytes, version: int, seq: int,
         trackers: tuple[str, ...] = (), web_seeds: tuple[str, ...] = (),
         domains: tuple[str, ...] = ()) -> Pointer:
    value = wrap(encode_record(infohash, version, trackers, web_seeds, domains))
    signature = key.sign(signed_message(seq, value))
    return verify(key.public_key, seq, value, signature)


def verify(
    public_key: bytes, seq: int, value: bytes, signature: bytes, salt: bytes = b""
) -> Pointer:
    """Check the signature, then parse the value; raise ForgedPointer on any fault."""
    if len(value) > MAX_VALUE_SIZE:
        raise ForgedPointer(f"value of {len(value)} bytes exceeds BEP 44's {MAX_VALUE_SIZE}")
    if not verify_signature(public_key, signature, signed_message(seq, value, salt)):
        raise ForgedPointer("bad signature: this pointer was not signed by the site's key")
    try:
        decoded = bencode.decode(value)
    except bencode.BencodeError as exc:
        raise ForgedPointer(f"signed value is not canonical bencoding: {exc}") from exc
    if isinstance(decoded, bytes):  # the wrapped form libtorrent's bindings put
        try:
            decoded = bencode.decode(decoded)
        except bencode.BencodeError as exc:
            raise ForgedPointer(f"wrapped record is not canonical bencoding: {exc}") from exc
    if not isinstance(decoded, dict):
        raise ForgedPointer("signed value is not a dict")
    infohash = decoded.get(b"ih")
    version = decoded.get(b"v")
    if not isinstance(infohash, bytes) or len(infohash) != 20:
        raise ForgedPointer("signed value has no 20-byte 'ih' (BEP 46)")
    if not isinstance(version, int) or version < 1:
        raise ForgedPointer("signed value has no positive version 'v'")
    listed = decoded.get(b"tr", [])
    # Unusable URLs are skipped, not fatal: the signature is what matters.
    return Pointer(public_key, infohash, version, seq, signature, value, salt,
                   _urls(listed, valid_tracker), _urls(decoded.get(b"ws", []), valid_web_seed),
                   _urls(decoded.get(b"dn", []), valid_domain))


def _urls(listed: object, valid: Callable[[str], bool]) -> tuple[str, ...]:
    if not isinstance(listed, list):
        return ()
    return tuple(u.decode() for u in listed
                 if isinstance(u, bytes) and u.isascii() and valid(u.decode()))


def is_newer(candidate: Pointer, current: Pointer | None) -> bool:
    """Whether ``candidate`` should replace ``current`` for the same site.

    A higher version wins. Two different values signed with the same version (a publisher
    that lost its state) are ordered by their bytes, so every node picks the same one.
    """
    if current is None:
        return True
    if candidate.public_key != current.public_key:
        raise ValueError("pointers of different sites are not comparable")
    if candidate.version != current.version:
        return candidate.version > current.version
    return candidate.value > current.value
