"""Errors raised by peerweb.

    PeerwebError                      root; ``http_status`` is what the gateway answers
    ├── UsageError                    the caller asked for something impossible (400)
    │   ├── BadAddress                not a site id, info-hash or magnet link (400)
    │   │   └── BadCapability         a read capability that is malformed or truncated
    │   └── PublishError              a folder that cannot be published as a site (400)
    ├── NotFound                      no such file in a site, or unknown key (404)
    │   └── UnknownName               a name that resolves to nothing: no petname, no
    │                                 record, or a revoked one (404)
    ├── TooLarge                      more than one answer may hold (413)
    ├── NoReadKey                     a private site whose read key this node lacks (403)
    │   └── WrongKey                  the key held does not open this version (403)
    ├── PeerError                     a peer or the network misbehaved
    │   ├── ForgedPointer             bad signature or malformed signed value (502)
    │   ├── TamperedChunk             a private site's chunk or manifest fails its AEAD
    │   │                             check: altered, or moved from another file (502)
    │   ├── SwarmTimeout              nobody answered in time (504)
    │   └── BogusDns                  DNS data whose DNSSEC proof fails: forged, expired,
    │                                 another zone's, or oversized (502)
    ├── StorageError                  the local disk failed us, e.g. it is full (507)
    └── NodeNotRunning                the CLI found no node for its data dir (503)

Every class has a stable ``kind`` (``not_found``, ``swarm_timeout``, ...): the control API
sends it with the message, and ``error_from`` rebuilds the same class on the CLI's side, so a
``NotFound`` raised in the node is a ``NotFound`` in the CLI (and ``--json`` prints the kind).
"""

from __future__ import annotations


class PeerwebError(Exception):
    """Root of every error peerweb raises on purpose."""

    http_status = 500
    kind = "error"


class UsageError(PeerwebError):
    http_status = 400
    kind = "usage"


class BadAddress(UsageError):
    kind = "bad_address"


class BadCapability(BadAddress):
    kind = "bad_capability"


class PublishError(UsageError):
    kind = "publish"


class NotFound(PeerwebError):
    http_status = 404
    kind = "not_found"


class UnknownName(NotFound):
    kind = "unknown_name"


class TooLarge(PeerwebError):
    http_status = 413
    kind = "too_large"


class NoReadKey(PeerwebError):
    http_status = 403
    kind = "no_read_key"


class WrongKey(NoReadKey):
    kind = "wrong_key"


class PeerError(PeerwebError):
    http_status = 502
    kind = "peer"


class ForgedPointer(PeerError):
    kind = "forged_pointer"


class TamperedChunk(PeerError):
    kind = "tampered_chunk"


class SwarmTimeout(PeerError):
    http_status = 504
    kind = "swarm_timeout"


class BogusDns(PeerError):
    kind = "bogus_dns"


class StorageError(PeerwebError):
    http_status = 507
    kind = "storage"


class NodeNotRunning(PeerwebError):
    http_status = 503
    kind = "node_not_running"


_BY_KIND: dict[str, type[PeerwebError]] = {
    cls.kind: cls
    for cls in (PeerwebError, UsageError, BadAddress, PublishError, NotFound, UnknownName,
                TooLarge,
                PeerError, ForgedPointer, SwarmTimeout, StorageError, NodeNotRunning,
                BadCapability, NoReadKey, WrongKey, TamperedChunk, BogusDns)
}


def error_from(kind: str | None, message: str, http_status: int | None = None) -> PeerwebError:
    """The error a remote node described: its own class where the kind is known, else the
    closest class for the HTTP status, else a plain ``PeerwebError``."""
    cls = _BY_KIND.get(kind or "")
    if cls is None:
        by_status = {c.http_status: c for c in (UsageError, NotFound, TooLarge, PeerError,
                                                SwarmTimeout, StorageError, NodeNotRunning)}
        cls = by_status.get(http_status or 0, PeerwebError)
    error = cls(message)
    if http_status is not None and http_status != cls.http_status:
        error.http_status = http_status
    return error
