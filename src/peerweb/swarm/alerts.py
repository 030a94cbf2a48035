"""The alert pump: libtorrent's alerts handed to their handlers on the asyncio loop.

libtorrent pokes a socket (``set_alert_fd``) whenever alerts are waiting; the loop watches the
other end of a non-blocking socketpair and drains the session then, so waiting costs no polling
(see ../shared/LIBTORRENT.md, "Alerts and asyncio"). Which handler takes which alert is an
explicit table, built where the swarm's parts are put together (``engine.Swarm``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any

from .handle import Session

log = logging.getLogger(__name__)

Handler = Callable[[Any], None]
"""Takes one alert; must copy what it keeps, for the alert dies at the next pop_alerts()."""


class AlertPump:
    """Drains the session's alerts into ``table`` (alert type -> handler) as they come."""

    def __init__(self, session: Callable[[], Session | None],
                 table: Mapping[type, Handler]) -> None:
        # The session is looked up at each drain, not kept: the swarm alone owns it, so that
        # dropping its reference really ends it (see Swarm.close).
        self._session = session
        self._table = table
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rsock: socket.socket | None = None
        self._wsock: socket.socket | None = None

    def start(self) -> None:
        """Have libtorrent signal waiting alerts, and drain them on this loop from now on."""
        session = self._session()
        assert session is not None
        self._loop = asyncio.get_running_loop()
        self._rsock, self._wsock = socket.socketpair()
        self._rsock.setblocking(False)
        self._wsock.setblocking(False)
        session.set_alert_fd(self._wsock.fileno())
        self._loop.add_reader(self._rsock.fileno(), self.drain)

    def stop(self) -> None:
        """Stop draining (the session is about to go)."""
        if self._loop is not None and self._rsock is not None:
            self._loop.remove_reader(self._rsock.fileno())

    def close(self) -> None:
        """Close the socketpair, once the session that wrote to it is gone."""
        for sock in (self._rsock, self._wsock):
            if sock is not None:
                sock.close()

    def drain(self) -> None:
        """Empty the signal socket, then hand every waiting alert to its handler."""
        assert self._rsock is not None
        try:
            while self._rsock.recv(4096):
                pass
        except BlockingIOError:
            pass
        session = self._session()
        if session is None:
            return
        for alert in session.pop_alerts():
            handler = self._table.get(type(alert))
            if handler is None:
                continue
            # Alerts die at the next pop_alerts(): handlers copy what they keep. One handler's
            # failure must not drop the rest of the batch (a lost put alert stalls a publish).
            try:
                handler(alert)
            except Exception:
                log.exception("handling %s failed", type(alert).__name__)
