"""The control API: how the CLI talks to a running node (HTTP on localhost, bearer token).

The token lives in ``<data-dir>/api-token`` (mode 0600); ``<data-dir>/node.json`` says where
the API and gateway listen. Anyone who can read the data dir can drive the node; nobody else.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import secrets
import signal
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from ..config import NODE_FILE, TOKEN_FILE
from ..content.addressing import Target, parse_cli_address
from ..errors import PeerwebError, UsageError
from ..fileio import write_atomic
from ..names.records import DEFAULT_TTL
from ..node.node import Node, Snapshot

log = logging.getLogger(__name__)

# How often a publish in progress checks that its client is still there: a client that went
# away (Ctrl-C) cancels the publish, also while no progress is sent (copying the folder).
CLIENT_CHECK_INTERVAL = 0.5

def load_or_create_token(data_dir: Path) -> str:
    path = data_dir / TOKEN_FILE
    try:
        token = path.read_text().strip()
        if len(token) >= 32:
            return token
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    write_atomic(path, token.encode() + b"\n", mode=0o600)
    return token


def make_app(node: Node, token: str) -> web.Application:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response(
                {"error": "missing or wrong token: read it from <data-dir>/api-token",
                 "kind": "unauthorized"}, status=401
            )
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except PeerwebError as exc:
            return web.json_response({"error": str(exc), "kind": exc.kind},
                                     status=exc.http_status)

    async def status(request: web.Request) -> web.Response:
        return web.json_response(await node.status())

    async def publish(request: web.Request) -> web.StreamResponse:
        """Streams NDJSON: progress lines while hashing, then the result (or an error)."""
        try:
            body = await request.json()
            folder = Path(str(body["path"]))
        except (ValueError, KeyError) as exc:
            raise UsageError("publish needs a JSON body with 'path'") from exc
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def progress(done: int, total: int) -> None:
            if done == total or done % 64 == 0:
                loop.call_soon_threadsafe(queue.put_nowait, (done, total))

        trackers = tuple(str(t) for t in body.get("trackers") or ())
        web_seeds = tuple(str(w) for w in body.get("web_seeds") or ())
        listed = body.get("domains")
        domains = None if listed is None else tuple(str(d).lower().rstrip(".")
                                                    for d in listed)
        # The CLI's user waits for this answer: it comes once the version is signed, saved
        # and pushed to the holders; the DHT put goes on in the node (Publisher.publish).
        job = asyncio.ensure_future(node.publish(
            folder, body.get("key") or None, not body.get("no_index", False), progress,
            trackers, web_seeds, wait_for_dht=False,
            private=bool(body.get("private", False)), domains=domains))
        try:
            while not job.done():
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({job, getter}, timeout=CLIENT_CHECK_INTERVAL,
                                   return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    done, total = getter.result()
                    await response.write(_line({"progress": done, "total": total}))
                else:
                    getter.cancel()
                if request.transport is None or request.transport.is_closing():
                    raise ConnectionResetError("the client closed the connection")
            result = job.result()
            await response.write(_line({"result": result.to_json()}))
        except PeerwebError as exc:
            await response.write(_line({"error": str(exc), "kind": exc.kind,
                                        "status": exc.http_status}))
        except ConnectionResetError:
            # The CLI went away (Ctrl-C): the publish is cancelled, which removes its copy.
            log.info("publish of %s cancelled: the client closed the connection", folder)
            return response
        finally:
            if not job.done():
                job.cancel()
                # Waited for, so that nothing of it is left once the request has ended.
                await asyncio.wait({job})
                if not job.cancelled() and job.exception() is not None:
                    log.info("publish of %s ended: %s", folder, job.exception())
        await response.write_eof()
        return response

    async def pin(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            site_id, pinned = str(body["site_id"]), bool(body["pinned"])
        except (ValueError, KeyError) as exc:
            raise UsageError("pin needs a JSON body with 'site_id' and 'pinned'") from exc
        node.set_pinned(site_id, pinned)
        return web.json_response({"site_id": site_id, "pinned": pinned})

    async def export(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            site_id, output = str(body["site_id"]), Path(str(body["output"]))
        except (ValueError, KeyError) as exc:
            raise UsageError("export needs a JSON body with 'site_id' and 'output'") from exc
        return web.json_response(await node.export(site_id, output, bool(body.get("v1"))))

    async def add_snapshot(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            tid = str(body["infohash"])
            trackers = tuple(str(t) for t in body.get("trackers") or ())
        except (ValueError, KeyError) as exc:
            raise UsageError("needs a JSON body with 'infohash' (and 'trackers')") from exc
        snapshot = await node.open_snapshot(tid, trackers=trackers)
        return web.json_response({"infohash": snapshot.tid, "files": len(snapshot.sitemap)})

    async def help_wanted(request: web.Request) -> web.Response:
        return web.json_response(await node.ask_for_help(request.match_info["site_id"]))

    async def backup(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            folder, replicas = Path(str(body["path"])), int(body.get("replicas", 3))
            friends = tuple((str(f[0]), int(f[1])) for f in body.get("friends") or ())
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise UsageError("backup needs a JSON body with 'path' (and 'replicas', "
                             "'friends': [[host, port], ...])") from exc
        return web.json_response(await node.backups.back_up(folder, replicas, friends))

    async def backups(_request: web.Request) -> web.Response:
        return web.json_response(node.backups.status())

    async def restore(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            site_id, output = str(body["site_id"]), Path(str(body["path"]))
            version = None if body.get("version") is None else int(body["version"])
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError("restore needs a JSON body with 'site_id', 'path' (and "
                             "'version')") from exc
        return web.json_response(await node.restorer.restore(site_id, output, version))

    async def extension_pair(_request: web.Request) -> web.Response:
        # A one-time code the user gives the browser extension (see peerweb.webcache.pairing).
        code = node.web.pairing.issue(time.time())
        return web.json_response({"code": code, "expires_in": int(node.web.pairing.ttl)})

    async def history(request: web.Request) -> web.Response:
        return web.json_response(node.history(request.match_info["site_id"]))

    async def site_files(request: web.Request) -> web.Response:
        return _files(await node.open_site(request.match_info["site_id"]))

    async def snapshot_files(request: web.Request) -> web.Response:
        return _files(await node.open_snapshot(request.match_info["infohash"]))

    async def stop(request: web.Request) -> web.StreamResponse:
        """Shut the node down as Ctrl-C would: SIGTERM to this process once the answer is
        out. The command that runs the node (``peerweb node``) handles SIGTERM by stopping
        everything cleanly; a node embedded in another program has no such handler, and
        SIGTERM would kill that program, so it is refused."""
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.SIG_IGN, None):
            raise UsageError("this node runs inside another program, which did not ask to be "
                             "stopped this way; stop it there")
        response = web.json_response({"stopping": True, "pid": os.getpid()})
        await response.prepare(request)
        await response.write_eof()
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)
        return response

    async def resolve_name(request: web.Request) -> web.Response:
        found = await node.resolve_name(request.match_info["name"])
        return web.json_response(found.to_json())

    async def publish_name(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            key, label = str(body["key"]), str(body["label"])
            target = body.get("target")
            ttl = int(body.get("ttl") or DEFAULT_TTL)
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError("needs a JSON body with 'key', 'label' and 'target' (null to "
                             "revoke), and 'ttl'") from exc
        if target is not None:
            # A name may be given for the target: it is published as the site it names now.
            target = (await node.resolve_name(str(target))).ident if _is_name(str(target)) \
                else str(target)
        return web.json_response((await node.publish_name(key, label, target, ttl)).to_json())

    app = web.Application(middlewares=[auth], client_max_size=64 * 1024)
    app.router.add_get("/v1/names/{name}", resolve_name)
    app.router.add_post("/v1/names", publish_name)
    app.router.add_get("/v1/sites/{site_id}/files", site_files)
    app.router.add_get("/v1/snapshots/{infohash}/files", snapshot_files)
    app.router.add_post("/v1/stop", stop)
    app.router.add_get("/v1/sites/{site_id}/log", history)
    app.router.add_post("/v1/export", export)
    app.router.add_post("/v1/sites/{site_id}/help", help_wanted)
    app.router.add_post("/v1/snapshots", add_snapshot)
    app.router.add_get("/v1/status", status)
    app.router.add_post("/v1/backups", backup)
    app.router.add_get("/v1/backups", backups)
    app.router.add_post("/v1/restore", restore)
    app.router.add_post("/v1/extension/pair", extension_pair)
    app.router.add_post("/v1/publish", publish)
    app.router.add_post("/v1/pin", pin)
    return app


def _is_name(text: str) -> bool:
    return parse_cli_address(text).target is Target.NAME


def _files(snapshot: Snapshot) -> web.Response:
    """A snapshot's files in torrent order, without padding: what `peerweb get SITE/ -o DIR`
    fetches one by one."""
    files = [{"path": path, "size": size}
             for path, size in zip(snapshot.sitemap.paths, snapshot.sizes, strict=True) if path]
    return web.json_response({"infohash": snapshot.tid, "files": files})


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def write_node_file(data_dir: Path, api_url: str, gateway_url: str, pid: int) -> None:
    info = {"api": api_url, "gateway": gateway_url, "pid": pid}
    write_atomic(data_dir / NODE_FILE, json.dumps(info).encode(), mode=0o600)
