"""The hand-off as ASGI and WSGI middleware around small Python apps."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from peerweb.spike.handoff import LoadPolicy, Mode, Thresholds
from peerweb.spike.middleware import HandoffASGI, HandoffWSGI
from peerweb.tools.testnet import write_sample_site

MIRROR = "http://127.0.0.1:9/s/" + "a" * 52
SITE_ID = "b" * 52


def held(mode: Mode) -> LoadPolicy:
    """A policy that stays in ``mode`` for the whole test (no load would change it)."""
    return LoadPolicy(Thresholds(capacity=1e12, enter_after=3600, leave_after=3600), mode=mode)


def wsgi_site(folder: Path):
    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/api/now":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"dynamic"]
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [(folder / path.lstrip("/")).read_bytes()]
    return app


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


@pytest.mark.parametrize("mode", [Mode.NORMAL, Mode.HANDOFF])
def test_wsgi_middleware_over_real_http(tmp_path, mode):
    folder = tmp_path / "site"
    contents = write_sample_site(folder, small_files=2, big_size=0)
    policy = held(mode)
    app = HandoffWSGI(wsgi_site(folder), folder, [MIRROR], site_id=SITE_ID, policy=policy)
    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        status, headers, body = fetch(base + "/assets/file01.js")
        if mode is Mode.NORMAL:
            assert status == 200 and body == contents["assets/file01.js"]
        else:
            assert status == 302 and headers["Location"] == MIRROR + "/assets/file01.js"
            gateway = {"X-Peerweb-Gateway": "http://127.0.0.1:8080"}
            status, headers, _ = fetch(base + "/index.html", gateway)
            assert headers["Location"] == f"http://127.0.0.1:8080/s/{SITE_ID}/index.html"
        status, headers, body = fetch(base + "/api/now")  # dynamic: never handed off
        assert status == 200 and body == b"dynamic"
        assert policy.passed >= 1 and policy.total_sent > 0
    finally:
        server.shutdown()
        server.server_close()


async def test_asgi_middleware_speaks_the_asgi_protocol(tmp_path):
    folder = tmp_path / "site"
    contents = write_sample_site(folder, small_files=2, big_size=0)

    async def app(scope, receive, send):
        body = contents["index.html"] if scope["path"] == "/" else b"dynamic"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def call(wrapped, path: str) -> list[dict]:
        sent: list[dict] = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
                 "headers": [(b"host", b"example")], "query_string": b""}
        await wrapped(scope, receive, send)
        return sent

    calm = HandoffASGI(app, folder, [MIRROR], policy=held(Mode.NORMAL))
    messages = await call(calm, "/index.html")
    assert messages[0]["status"] == 200
    busy_policy = held(Mode.HANDOFF)
    busy = HandoffASGI(app, folder, [MIRROR], policy=busy_policy)
    messages = await call(busy, "/index.html")
    assert messages[0]["status"] == 302
    assert (b"location", (MIRROR + "/index.html").encode()) in messages[0]["headers"]
    messages = await call(busy, "/api/now")
    assert messages[0]["status"] == 200 and messages[1]["body"] == b"dynamic"
    assert busy_policy.handed_off == 1 and busy_policy.passed == 1
