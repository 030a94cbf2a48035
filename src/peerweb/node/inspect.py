"""What the dashboard and the first-visit page ask of a node, as frozen values.

Functions over a running ``Node`` that read what it already holds (its state, its open
snapshots, their libtorrent handles) without counting as a visit: looking at the dashboard
must not change which sites the disk quota evicts first. ``remove_site`` is the one that
changes anything. Kept apart from ``node.py`` so that the facade does not grow a method per
page of the dashboard.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from ..content.sitemap import Kind
from ..errors import NotFound, UsageError
from ..policy import stepback
from .node import SMALL_FILE_LIMIT, Node, Snapshot

# A <title> is looked for in the first bytes of index.html only: it belongs in <head>.
TITLE_SCAN_BYTES = 64 * 1024
# Longer titles are cut: a table row must stay one line.
TITLE_MAX_CHARS = 120
_TITLE_RE = re.compile(rb"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class FileView:
    """One file of a snapshot."""

    path: str
    size: int
    done: int
    """Bytes of it this node holds, verified."""


@dataclass(frozen=True)
class PeerView:
    """One peer connected for a snapshot's torrent."""

    address: str
    """``host:port`` as libtorrent sees it."""
    client: str
    """What the peer says it runs (its BitTorrent handshake)."""
    progress: float
    """Share of the torrent the peer holds, 0 to 1."""
    download_rate: int
    """Bytes per second this node receives from the peer."""
    upload_rate: int
    """Bytes per second this node sends to the peer."""


@dataclass(frozen=True)
class LookupProgress:
    """How far a node got in opening a site, as a visitor waiting for it sees it."""

    version: int | None
    """Version of the signed pointer found (None: none yet)."""
    metadata: bool
    """Whether the torrent's file list (its metadata) is here: the site can be served."""
    peers: int
    """Peers connected for the snapshot the pointer names."""


def title_from_html(data: bytes) -> str | None:
    """The text of the first ``<title>`` of an HTML page, unescaped and on one line (the
    caller escapes it again where it shows it), or None without one."""
    found = _TITLE_RE.search(data[:TITLE_SCAN_BYTES])
    if found is None:
        return None
    text = " ".join(html.unescape(found.group(1).decode("utf-8", "replace")).split())
    if len(text) > TITLE_MAX_CHARS:
        text = text[:TITLE_MAX_CHARS - 1] + "…"
    return text or None


def held_snapshot(node: Node, tid: str) -> Snapshot | None:
    """The snapshot if the node has it open, without counting a visit (``open_snapshot``
    would move it to the front of the eviction order)."""
    return node._store.get(tid)  # noqa: SLF001 - a read-only look, see the docstring


def current_tid(node: Node, site_id: str) -> str:
    record = node.state.sites.get(site_id)
    if record is None:
        raise NotFound(f"this node does not know site {site_id}")
    return record.pointer.infohash.hex()


async def title(node: Node, tid: str) -> str | None:
    """The ``<title>`` of a held snapshot's index.html, if that file is complete here (an
    incomplete one would have to be fetched first; the dashboard does not wait on peers)."""
    snapshot = held_snapshot(node, tid)
    if snapshot is None:
        return None
    found = snapshot.sitemap.lookup("/")
    if found.kind is not Kind.FILE or found.file_index is None:
        return None
    index = found.file_index
    if snapshot.sizes[index] > SMALL_FILE_LIMIT or not snapshot.file_complete(index):
        return None
    return title_from_html(await node.read_file(snapshot, index))


def size(node: Node, tid: str) -> int | None:
    """Total bytes of a held snapshot's files, BEP 52 padding left out (None: its metadata
    is not here)."""
    snapshot = held_snapshot(node, tid)
    if snapshot is None:
        return None
    return sum(n for n, path in zip(snapshot.sizes, snapshot.sitemap.paths, strict=True) if path)


def files(node: Node, tid: str) -> list[FileView]:
    snapshot = held_snapshot(node, tid)
    if snapshot is None:
        return []
    progress = snapshot.handle.file_progress()
    return [FileView(path, snapshot.sizes[i], int(progress[i]))
            for i, path in enumerate(snapshot.sitemap.paths) if path]


def peers(node: Node, tid: str) -> list[PeerView]:
    handle = node.swarm.find(tid)
    if handle is None:
        return []
    return sorted((_peer_view(p) for p in handle.get_peer_info()), key=lambda p: p.address)


def _peer_view(peer: Any) -> PeerView:
    host, port = peer.ip[0], peer.ip[1]
    client = peer.client
    if isinstance(client, bytes):
        client = client.decode("utf-8", "replace")
    return PeerView(f"[{host}]:{port}" if ":" in host else f"{host}:{port}", str(client),
                    float(peer.progress), int(peer.down_speed), int(peer.up_speed))


def piece_counts(node: Node, tid: str) -> list[int]:
    """How many of the connected peers hold each piece of the snapshot (libtorrent's view
    of their bitfields); empty without metadata."""
    handle = node.swarm.find(tid)
    if handle is None or handle.torrent_file() is None:
        return []
    num_pieces = int(handle.torrent_file().num_pieces())
    return stepback.availability([p.pieces for p in handle.get_peer_info()], num_pieces)


def lookup_progress(node: Node, site_id: str) -> LookupProgress:
    record = node.state.sites.get(site_id)
    if record is None:
        return LookupProgress(None, False, 0)
    tid = record.pointer.infohash.hex()
    handle = node.swarm.find(tid)
    connected = int(handle.status().num_peers) if handle is not None else 0
    return LookupProgress(record.pointer.version, node.holds(tid), connected)


def is_ready(node: Node, site_id: str) -> bool:
    """Whether a visit to the site is served without asking the network first."""
    record = node.state.sites.get(site_id)
    return record is not None and node.holds(record.pointer.infohash.hex())


def remove_site(node: Node, site_id: str) -> list[str]:
    """Forget a visited site: every version of it held here is deleted from disk, and the
    node no longer checks it for updates. Returns the info-hashes removed.

    A site this node publishes cannot be removed so: its key would keep signing versions
    nobody holds."""
    record = node.state.sites.get(site_id)
    if record is None:
        raise NotFound(f"this node does not know site {site_id}")
    if site_id in node.state.published:
        raise UsageError("this node publishes that site; it cannot be removed from here")
    tids = {entry.infohash for entry in record.history} | {record.pointer.infohash.hex()}
    removed = sorted(tid for tid in tids if node.holds(tid))
    for tid in removed:
        node._store.evict(tid, "removed from the dashboard")  # noqa: SLF001
    del node.state.sites[site_id]
    node._disk.save_state()  # noqa: SLF001 - a removed site must not come back after a crash
    return removed
