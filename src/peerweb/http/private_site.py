"""The gateway's face of a private site: its files decrypted, to this machine's browser only.

Called by the gateway once a site's snapshot turns out to be private (``peerweb.private``).
Without the key in the node's keyring the answer is a 403 that says how to open it; with
it, the decrypted tree is served like a public site, Range requests included (RFC 9110
section 14), and a range decrypts only the 16 KiB chunks it lies in. Every chunk is
authenticated before any of its bytes are sent: a chunk that fails is an error page (or, once
headers are out, a cut connection), never wrong bytes.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ..content.ranges import RangeNotSatisfiable, parse_range
from ..content.sitemap import Kind, content_type
from ..errors import NoReadKey, NotFound, UsageError
from ..node.node import Node, Snapshot
from . import consent, streaming

log = logging.getLogger(__name__)

# Decrypted bytes stay out of the browser's disk cache and out of any shared cache.
PRIVATE_CACHE = "private, no-store"


async def serve(request: web.Request, node: Node, snapshot: Snapshot, site_id: str | None,
                path: str, base_headers: dict[str, str]) -> web.StreamResponse:
    """A file of a private site at ``path``; PeerwebErrors are the gateway's to show."""
    if not consent.from_this_machine(request.remote):
        raise NoReadKey("private sites are served to this machine's own browser only")
    version = await node.private.open(site_id, snapshot)
    found = version.sitemap.lookup(path)
    if found.kind is Kind.BAD_PATH:
        raise UsageError("That path is not valid inside a site.")
    if found.kind is Kind.REDIRECT:
        assert found.location is not None
        raise web.HTTPMovedPermanently(found.location)
    if found.file_index is None:
        raise NotFound(f"No file at {path} in this site.")
    status = 404 if found.kind is Kind.NOT_FOUND else 200
    entry = found.file_index
    size = version.manifest.entries[entry].size
    headers = {
        **base_headers,
        "Content-Type": content_type(version.sitemap.path_of(entry)),
        "Cache-Control": PRIVATE_CACHE,
        "Accept-Ranges": "bytes",
        "X-Peerweb-Snapshot": snapshot.tid,
        "X-Peerweb-Private": "1",
    }
    byte_range = None
    if status == 200:
        try:
            byte_range = parse_range(request.headers.get("Range"), size)
        except RangeNotSatisfiable:
            return web.Response(status=416, text="That byte range lies outside the file.",
                                headers={**headers, "Content-Range": f"bytes */{size}",
                                         "Content-Type": "text/plain; charset=utf-8"})
    start, end = (byte_range.start, byte_range.end) if byte_range else (0, size)
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = byte_range.content_range(size)
    if request.method == "HEAD" or end <= start:
        headers["Content-Length"] = str(end - start)
        return web.Response(status=status, headers=headers)
    chunks = node.private.stream(snapshot, version, entry, start, end).__aiter__()
    # The first chunk is decrypted (and so authenticated) before headers go out: a version
    # that fails its check gets an error page, not a 200 cut short.
    first = await chunks.__anext__()
    return await streaming.send_chunks(request, status, headers, end - start, first, chunks,
                                       f"private file {path}")
