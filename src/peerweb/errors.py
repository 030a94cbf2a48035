"""Errors raised by peerweb.

    PeerwebError                      root; ``http_status`` is what the gateway answers
    ├── UsageError                    the caller asked for something impossible (400)
    │   ├── BadAddress                not a site id, info-hash or magnet link (400)
    │   └── PublishError              a folder that cannot be published as a site (400)
    ├── NotFound                      no such file in a site, or unknown key (404)
    ├── TooLarge                      more than one answer may hold (413)
    ├── PeerError                     a peer or the network misbehaved
    │   ├── ForgedPointer             bad signature or malformed signed value (502)
    │   └── SwarmTimeout              nobody answered in time (504)
    ├── StorageError                  the local disk failed us, e.g. it is full (507)
    └── NodeNotRunning                the CLI found no node for its data dir (503)
"""

from __future__ import annotations


class PeerwebError(Exception):
    """Root of every error peerweb raises on purpose."""

    http_status = 500


class UsageError(PeerwebError):
    http_status = 400


class BadAddress(UsageError):
    pass


class PublishError(UsageError):
    pass


class NotFound(PeerwebError):
    http_status = 404


class TooLarge(PeerwebError):
    http_status = 413


class PeerError(PeerwebError):
    http_status = 502


class ForgedPointer(PeerError):
    pass


class SwarmTimeout(PeerError):
    http_status = 504


class StorageError(PeerwebError):
    http_status = 507


class NodeNotRunning(PeerwebError):
    http_status = 503
