"""Records of a zone: what a site key's owner says one of its labels names.

A zone is a site key (GNS-style, RFC 9498 section 4: a zone is a key pair). The record for
label ``L`` of zone ``K`` is a BEP 44 mutable item under ``K`` with the salt
``label_salt(L)``, whose value is the bencoded dict::

    {"target": <32-byte site key, or empty: revoked>, "ttl": <seconds>, "version": <n>}

``version`` is chosen by the zone's owner and never goes back: libtorrent picks the BEP 44
sequence number itself (highest seen + 1, restarting when the item expired), so the order
that revocation and replay protection rely on lives inside the signed value, as for version
pointers (``peerweb.content.pointer``). The target is a key, so a record may name a site or
delegate to another zone (``a.b.c``: ``b``'s record in zone ``c`` names zone ``b``).

The salt is a hash of the label, so a node storing a zone's items cannot list its labels
(it can still test guesses: see docs/names.md). As with pointers, libtorrent's bindings put a
byte string, so the dict travels wrapped in a bencoded string; both forms parse here.

Pure: verify first, then parse (``verify_record``), then decide (``is_newer``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ..content import bencode
from ..content.identity import site_id_from_public_key
from ..content.item import SignedItem, verify_item
from ..errors import ForgedPointer, UsageError

# Domain separation: a label's salt can never equal a hash made for another purpose.
SALT_CONTEXT = b"peerweb name label v1\x00"
# A label is one DNS label (RFC 1035 section 2.3.1, lowercase), so a name fits a host name.
_LABEL_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# TTLs are clamped on reading: a record cached for less than a second would send every page
# load to the DHT; one cached for more than a day would outlive a revocation by too long.
MIN_TTL = 1
MAX_TTL = 24 * 3600
DEFAULT_TTL = 3600


def check_label(label: str) -> str:
    """The label in its canonical (lowercase) form; UsageError unless it is one DNS label."""
    lowered = label.lower() if label.isascii() else ""
    if not _LABEL_RE.fullmatch(lowered):
        raise UsageError(f"bad label {label[:80]!r}: use letters, digits and '-' (at most 63, "
                         "not starting or ending with '-')")
    return lowered


def label_salt(label: str) -> bytes:
    """The BEP 44 salt of a label's record: SHA-256 of the domain-separated label (32 of the
    64 bytes BEP 44 allows)."""
    return hashlib.sha256(SALT_CONTEXT + check_label(label).encode()).digest()


@dataclass(frozen=True)
class ZoneRecord:
    """A verified record of one label in one zone."""

    zone: bytes
    """The zone's key (32 bytes): the record is signed by it."""
    salt: bytes
    """``label_salt`` of the label (the label itself is not stored anywhere)."""
    target: bytes
    """The site or zone key the label names (32 bytes), or b"" if the label is revoked."""
    version: int
    """The owner's version of this label, strictly increasing."""
    ttl: int
    """How long a resolver may cache the record, in seconds (clamped to MIN_TTL..MAX_TTL)."""
    item: SignedItem
    """The signed item, as stored in the DHT (to re-put, or to hand to another node)."""

    @property
    def revoked(self) -> bool:
        return not self.target

    @property
    def target_id(self) -> str:
        """The target as a site id ('' when revoked)."""
        return site_id_from_public_key(self.target) if self.target else ""


def encode_record(target: bytes, version: int, ttl: int) -> bytes:
    """The bencoded record dict; what peerweb hands libtorrent to put."""
    if target and len(target) != 32:
        raise ValueError("a record's target is a 32-byte ed25519 key (or empty: revoked)")
    if version < 1:
        raise ValueError("versions start at 1")
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise ValueError(f"a TTL is {MIN_TTL} to {MAX_TTL} seconds")
    return bencode.encode({b"target": target, b"ttl": ttl, b"version": version})


def wrap(record: bytes) -> bytes:
    """The BEP 44 ``v`` libtorrent's bindings make of a record: a bencoded byte string."""
    return bencode.encode(record)


def verify_record(item: SignedItem, salt: bytes) -> ZoneRecord:
    """Check the signature and that the item answers for ``salt``, then parse the value;
    ForgedPointer on any fault."""
    if item.salt != salt:
        raise ForgedPointer("record for another label (its salt differs)")
    verify_item(item)
    try:
        decoded = bencode.decode(item.value)
        if isinstance(decoded, bytes):  # the wrapped form libtorrent's bindings put
            decoded = bencode.decode(decoded)
    except bencode.BencodeError as exc:
        raise ForgedPointer(f"signed record is not canonical bencoding: {exc}") from exc
    if not isinstance(decoded, dict):
        raise ForgedPointer("signed record is not a dict")
    target, version, ttl = (decoded.get(k) for k in (b"target", b"version", b"ttl"))
    if not isinstance(target, bytes) or len(target) not in (0, 32):
        raise ForgedPointer("signed record has no 32-byte 'target' (nor an empty one)")
    if type(version) is not int or version < 1:
        raise ForgedPointer("signed record has no positive 'version'")
    if type(ttl) is not int:
        raise ForgedPointer("signed record has no integer 'ttl'")
    return ZoneRecord(item.public_key, salt, target, version, max(MIN_TTL, min(MAX_TTL, ttl)),
                      item)


def is_newer(candidate: ZoneRecord, current: ZoneRecord | None) -> bool:
    """Whether ``candidate`` replaces ``current`` for the same label of the same zone: a
    higher version wins; two values signed with one version are ordered by their bytes, so
    every resolver picks the same one (as ``pointer.is_newer`` does)."""
    if current is None:
        return True
    if (candidate.zone, candidate.salt) != (current.zone, current.salt):
        raise ValueError("records of different labels are not comparable")
    if candidate.version != current.version:
        return candidate.version > current.version
    return candidate.item.value > current.item.value


def newest(items: list[SignedItem], salt: bytes,
           current: ZoneRecord | None = None) -> tuple[ZoneRecord | None, list[str]]:
    """The newest valid record among ``items`` (DHT answers) and ``current`` (known before),
    and why each refused item was refused (forged, or older than what is known: a replay)."""
    best = current
    refused: list[str] = []
    for item in items:
        try:
            record = verify_record(item, salt)
        except ForgedPointer as exc:
            refused.append(f"forged: {exc}")
            continue
        if current is not None and record.version < current.version:
            refused.append(f"replayed: version {record.version} is older than the "
                           f"{current.version} already seen")
            continue
        if is_newer(record, best):
            best = record
    return best, refused
