"""The origin's hand-off as middleware for Python web apps, ASGI and WSGI.

Wrap the app; while its load is normal every request reaches it untouched. Under overload
(handoff.py), GET and HEAD requests for the site's published files are redirected to a mirror
or the visitor's own gateway, and past the capacity other requests get 503 with Retry-After.

    from peerweb.middleware import HandoffASGI
    app = HandoffASGI(app, site="./public", mirrors=["https://mirror.example/s/<site-id>"],
                      capacity=10_000_000)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .handoff import GATEWAY_HEADER, RETRY_AFTER, Action, Decision, Handoff, LoadPolicy, Thresholds
from .origin import sitemap_of, static_files

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_BUSY = b"busy: try again in a few seconds\n"


class _Middleware:
    """What both wrappers hold: the app, and the hand-off deciding for the site's files."""

    def __init__(self, app: Any, site: Path | str, mirrors: Sequence[str] = (),
                 capacity: float = 10e6, site_id: str | None = None,
                 policy: LoadPolicy | None = None) -> None:
        self.app = app
        self.handoff = Handoff(policy or LoadPolicy(Thresholds(capacity=capacity)),
                               static_files(sitemap_of(Path(site))), site_id, list(mirrors))


def _answer(decision: Decision) -> tuple[int, list[tuple[str, str]], bytes]:
    if decision.action is Action.REDIRECT:
        return 302, [("Location", decision.location), ("Cache-Control", "no-store")], b""
    return 503, [("Retry-After", str(RETRY_AFTER)), ("Content-Type", "text/plain")], _BUSY


class HandoffASGI(_Middleware):
    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        raw = scope.get("raw_path") or scope["path"].encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        decision = self.handoff.decide(scope["method"], path,
                                       headers.get(GATEWAY_HEADER.lower(), ""), time.monotonic())
        if decision.action is not Action.PASS:
            status, extra, body = _answer(decision)
            await send({"type": "http.response.start", "status": status,
                        "headers": [(k.lower().encode(), v.encode()) for k, v in extra]})
            await send({"type": "http.response.body", "body": body})
            return
        policy = self.handoff.policy
        started = time.monotonic()
        policy.started()
        failed = False

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                policy.sent(len(message.get("body", b"")), time.monotonic())
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            failed = True
            raise
        finally:
            policy.finished(time.monotonic() - started, failed, time.monotonic())


class HandoffWSGI(_Middleware):
    app: WSGIApp

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        gateway = environ.get("HTTP_" + GATEWAY_HEADER.upper().replace("-", "_"), "")
        decision = self.handoff.decide(environ.get("REQUEST_METHOD", "GET"), path, gateway,
                                       time.monotonic())
        if decision.action is not Action.PASS:
            status, extra, body = _answer(decision)
            start_response("302 Found" if status == 302 else "503 Service Unavailable", extra)
            return [body]
        return self._counted(environ, start_response)

    def _counted(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        policy = self.handoff.policy
        started = time.monotonic()
        policy.started()
        failed = False
        try:
            for chunk in self.app(environ, start_response):
                policy.sent(len(chunk), time.monotonic())
                yield chunk
        except Exception:
            failed = True
            raise
        finally:
            policy.finished(time.monotonic() - started, failed, time.monotonic())
