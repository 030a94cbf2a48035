"""Sending a body that arrives in checked chunks (verified pieces, decrypted chunks).

Headers go out only after the first chunk passed its check, so a body that cannot be
delivered gets an error page, not a 200 cut short; a later failure cuts the connection,
the only honest signal left once the headers are gone.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping

from aiohttp import web

from ..errors import PeerwebError

log = logging.getLogger(__name__)


async def send_chunks(request: web.Request, status: int, headers: Mapping[str, str],
                      length: int, first: bytes | memoryview,
                      rest: AsyncIterator[bytes] | AsyncIterator[memoryview],
                      what: str) -> web.StreamResponse:
    """Stream ``first`` and then ``rest`` (``length`` bytes in all) as the response."""
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = length
    try:
        await response.prepare(request)
        await response.write(first)
        async for chunk in rest:
            await response.write(chunk)
    except ConnectionError:
        return response  # the visitor went away (a seek, a closed tab): nothing to report
    except PeerwebError as exc:
        log.warning("stream of %s cut short: %s", what, exc)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response
