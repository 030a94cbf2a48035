"""What the long-running commands share: serving until Ctrl-C or SIGTERM.

``peerweb stop`` asks a node through its control API, which sends the node's own process
SIGTERM: the same clean path as Ctrl-C.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from ..errors import UsageError
from .output import Output


def stop_on_signal() -> asyncio.Event:
    """An event that Ctrl-C or SIGTERM sets, for commands that serve until stopped."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve_until_signal(app: Any, host: str, port: int, what: str, out: Output) -> None:
    """Serve an aiohttp app on ``host:port`` until Ctrl-C or SIGTERM."""
    from ..config import ServerLimits
    from ..http import limits

    try:  # header, body and idle timeouts and per-address limits, as every server has
        listening = await limits.serve(app, host, port, ServerLimits())
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}; "
                         "pick another with --listen") from exc
    bound = listening.address
    url = f"http://{bound[0]}:{bound[1]}/"
    out.text(f"{what} on {url}  (Ctrl-C stops it)")
    if out.json:
        out.record({"serving": what, "url": url})
    stop = stop_on_signal()
    try:
        await stop.wait()
    finally:
        await listening.close()
