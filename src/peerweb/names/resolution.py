"""Resolving a name, without I/O: the walk along a chain of zones, and the cache of records.

A name is read right to left, like a DNS name: in ``blog.bob.alice`` the last label is the
start (a petname from the user's address book, or a site id), and each label before it is
looked up in the zone the previous step named (GNS, RFC 9498 section 7: resolution starts
in a zone the user chose, never at a global root)::

    alice            petname -> key A
    bob   in zone A  record  -> key B   (a delegation: B is a zone too)
    blog  in zone B  record  -> key S   (the site served)

``Walk`` is a sans-I/O state machine (like h11's connection): the adapter asks it for the
next ``Query``, looks the record up (cache, then DHT), and hands the answer back, until
``result()``. ``RecordCache`` keeps records for their TTL and, beyond it, the newest version
seen of each label, so that a replayed older record is refused even after expiry.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from ..content.addressing import Target
from ..content.identity import public_key_from_site_id, site_id_from_public_key
from ..errors import BadAddress, UnknownName, UsageError
from .petnames import Petname
from .records import ZoneRecord, check_label, label_salt

# Labels in one name: a chain of delegations is this deep at most, which also ends a loop
# of zones delegating to each other. DNS allows 127; four or five are a lot in practice.
MAX_LABELS = 8
# A label found in no zone is not asked for again this soon (DNS negative caching, RFC 2308).
NEGATIVE_TTL = 5.0
# Records kept in memory; the oldest go first. A record is about 300 bytes with its item.
MAX_CACHED = 10_000


@dataclass(frozen=True)
class Query:
    """One lookup a walk needs: the record of ``label`` in ``zone``."""

    zone: bytes
    """The zone's key (32 bytes)."""
    label: str

    @property
    def salt(self) -> bytes:
        return label_salt(self.label)


@dataclass(frozen=True)
class Resolution:
    """What a name resolved to."""

    name: str
    """The name as asked for, lowercase."""
    target: Target
    """SITE or SNAPSHOT."""
    ident: str
    """Site id for SITE, hex info-hash for SNAPSHOT."""
    trackers: tuple[str, ...] = ()
    chain: tuple[str, ...] = ()
    """How it resolved, one step a line (for ``peerweb name resolve`` and error pages)."""
    expires: float | None = None
    """When the shortest-lived record of the chain expires (None: petnames only)."""

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "target": self.target.value, "ident": self.ident,
                "trackers": list(self.trackers), "chain": list(self.chain)}


def split_name(name: str) -> list[str]:
    """The labels of a name, lowercase; UsageError unless each is a DNS label."""
    text = name.strip().rstrip(".")
    labels = text.split(".") if text else []
    if not labels:
        raise UsageError("an empty name")
    if len(labels) > MAX_LABELS:
        raise UsageError(f"a name has at most {MAX_LABELS} labels")
    return [check_label(label) for label in labels]


def _as_site_key(label: str) -> bytes | None:
    with contextlib.suppress(BadAddress):
        return public_key_from_site_id(label)
    return None


@dataclass
class Walk:
    """One resolution in progress. ``petname`` looks a name up in the address book."""

    name: str
    petname: Callable[[str], Petname | None]
    now: float
    _labels: list[str] = field(init=False)
    _zone: bytes = field(init=False, default=b"")
    _zone_name: str = field(init=False, default="")
    _start: Petname | None = field(init=False, default=None)
    _chain: list[str] = field(init=False, default_factory=list)
    _expires: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        labels = split_name(self.name)
        self.name = ".".join(labels)
        top = labels.pop()
        key = _as_site_key(top)
        if key is not None:
            self._zone, self._zone_name = key, top[:12] + "..."
            self._chain.append(f"{top}: a site key")
        else:
            entry = self.petname(top)
            if entry is None:
                raise UnknownName(f"{top!r} is not a site id (52 base32 characters) and no "
                                  "petname in your address book; add it with "
                                  f"`peerweb name add {top} SITE-ID`")
            self._chain.append(f"{top}: petname for {entry.target.value} {entry.ident}")
            if entry.target is Target.SNAPSHOT:
                if labels:
                    raise UnknownName(f"{top!r} names a snapshot, which is not a zone: "
                                      f"nothing can be named under it")
                self._start = entry
            else:
                self._zone, self._zone_name = public_key_from_site_id(entry.ident), top
        self._labels = labels  # the next to look up is the last: the one nearest the top

    def next_query(self) -> Query | None:
        """The record needed next, or None once the walk is done (see ``result``)."""
        if not self._labels:
            return None
        return Query(self._zone, self._labels[-1])

    def answer(self, record: ZoneRecord | None) -> None:
        """The newest valid record for ``next_query()``, or None if there is none;
        UnknownName if the walk cannot go on."""
        label = self._labels.pop()
        where = f"zone {self._zone_name}"
        if record is None:
            raise UnknownName(f"{label!r} is not published in {where}: its owner publishes "
                              f"it with `peerweb name publish --key KEY {label} SITE-ID`")
        if record.revoked:
            raise UnknownName(f"{label!r} was revoked in {where} (version {record.version})")
        until = self.now + record.ttl
        self._expires = until if self._expires is None else min(self._expires, until)
        self._chain.append(f"{label}: in {where}, version {record.version}, ttl "
                           f"{record.ttl} s -> {record.target_id}")
        self._zone = record.target
        self._zone_name = f"{label}.{self._zone_name}"

    def result(self) -> Resolution:
        if self._labels:
            raise RuntimeError("the walk is not done: answer next_query() first")
        if self._start is not None:
            return Resolution(self.name, self._start.target, self._start.ident,
                              self._start.trackers, tuple(self._chain), None)
        return Resolution(self.name, Target.SITE, site_id_from_public_key(self._zone),
                          (), tuple(self._chain), self._expires)


@dataclass(frozen=True)
class Cached:
    """A cache answer: the record (None: known to be absent) and until when it holds."""

    record: ZoneRecord | None
    expires: float


class RecordCache:
    """Records by (zone, salt) for their TTL, and the newest version seen of each."""

    def __init__(self, negative_ttl: float = NEGATIVE_TTL, limit: int = MAX_CACHED) -> None:
        self.negative_ttl = negative_ttl
        self.limit = limit
        self._fresh: OrderedDict[tuple[bytes, bytes], Cached] = OrderedDict()
        self._newest: OrderedDict[tuple[bytes, bytes], ZoneRecord] = OrderedDict()

    def get(self, query: Query, now: float) -> Cached | None:
        """The cached answer if still within its TTL."""
        cached = self._fresh.get((query.zone, query.salt))
        if cached is None or cached.expires <= now:
            return None
        return cached

    def newest(self, query: Query) -> ZoneRecord | None:
        """The newest record ever accepted for the label (expired or not)."""
        return self._newest.get((query.zone, query.salt))

    def put(self, query: Query, record: ZoneRecord | None, now: float) -> Cached:
        """Keep the answer of a lookup (``record`` is the newest valid one, or None)."""
        key = (query.zone, query.salt)
        ttl = self.negative_ttl if record is None else float(record.ttl)
        cached = Cached(record, now + ttl)
        self._fresh[key] = cached
        self._fresh.move_to_end(key)
        if record is not None:
            self._newest[key] = record
            self._newest.move_to_end(key)
        for table in (self._fresh, self._newest):
            while len(table) > self.limit:
                table.popitem(last=False)
        return cached

    def forget(self, query: Query) -> None:
        """Drop the TTL-bound answer (the newest version seen stays, against replays)."""
        self._fresh.pop((query.zone, query.salt), None)
