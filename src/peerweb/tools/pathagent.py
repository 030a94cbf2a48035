"""Small programs the relay tests and bench run inside the bed's hosts (``netbed``).

``python -m peerweb.tools.pathagent <command> ...``, one process per role:

  relay     a relay port (``http.relay.RelayServer``) with the given limits
  sink      accept connections and discard what they carry
  serve     one file over HTTP at ``/file``, honouring ``Range: bytes=N-``, at a set rate
  origin    a spike origin (``spike.origin``) held in hand-off mode, its upstream inside
  reserve   keep local ports reachable through a relay (``http.detour.Reservation``)
  get       a GET through ``http.detour.Detours``; prints a JSON line (sha256, paths, events)
  tunnels   open N tunnels through a relay at once; prints their status codes as JSON
  whoami    the address and port relays see from one fixed local port, and dial-backs
  echo      accept connections and send back each line they carry
  dial      one line to an echo server, directly or through a relay; prints JSON (ok, ms)
  punch     a hole punch brokered by a relay (``http.punch``), one line each way; JSON
  getloop   a ``get`` per URL read from stdin, fresh paths each; prints "mark" when a
            fraction has arrived, then the result (monotonic times: the bench cuts links)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import RelayConfig
from ..http.detour import Detours, Reservation, Unreachable, dialback, open_via, whoami
from ..http.punch import punch as punch_via
from ..http.relay import RelayServer, split_hostport

if TYPE_CHECKING:  # aiohttp only where a server is run: the bench starts many short agents
    from aiohttp import web

CHUNK = 64 * 1024


def _endpoint(text: str) -> tuple[str, int]:
    return split_hostport(text)


async def _forever() -> None:
    await asyncio.Event().wait()


async def relay(args: argparse.Namespace) -> None:
    server = RelayServer(RelayConfig(args.port, tuple(args.allow), circuits=args.circuits,
                                     per_peer=args.per_peer, max_bytes=args.max_bytes,
                                     max_age=args.max_age), args.host)
    await server.start()
    print("listening", flush=True)
    try:
        while True:
            await asyncio.sleep(0.5)
            if args.status:
                Path(args.status).write_text(json.dumps(server.status()))
    finally:
        await server.close()


def file_app(path: Path, rate: int) -> web.Application:
    from aiohttp import web

    data = path.read_bytes()

    async def serve(request: web.Request) -> web.StreamResponse:
        start = 0
        wanted = request.headers.get("Range", "")
        if wanted.startswith("bytes=") and wanted.endswith("-"):
            start = int(wanted[6:-1])
        response = web.StreamResponse(status=206 if start else 200)
        response.content_length = len(data) - start
        if start:
            response.headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        await response.prepare(request)
        began = time.monotonic()
        for offset in range(start, len(data), CHUNK):
            await response.write(data[offset:offset + CHUNK])
            if rate:  # pace the body: a transfer long enough to be cut in the middle
                ahead = (offset + CHUNK - start) / rate - (time.monotonic() - began)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        return response

    app = web.Application()
    app.router.add_get("/file", serve)
    return app


async def _serve_app(app: web.Application, host: str, port: int) -> web.AppRunner:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def serve(args: argparse.Namespace) -> None:
    runner = await _serve_app(file_app(Path(args.file), args.rate), args.host, args.port)
    print("listening", flush=True)
    try:
        await _forever()
    finally:
        await runner.cleanup()


async def sink(args: argparse.Namespace) -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while await reader.read(CHUNK):
                pass
        writer.close()

    server = await asyncio.start_server(swallow, args.host, args.port)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


async def origin(args: argparse.Namespace) -> None:
    from aiohttp import web

    from ..spike.handoff import LoadPolicy, Mode, Thresholds
    from ..spike.origin import Origin, OriginConfig, sitemap_of

    folder = Path(args.site)
    upstream = web.Application()

    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(folder / request.match_info["name"])

    upstream.router.add_get("/{name:.+}", page)
    up = await _serve_app(upstream, "127.0.0.1", args.port + 1)
    policy = LoadPolicy(Thresholds(capacity=1e9, leave_after=3600), mode=Mode.HANDOFF)
    front = Origin(OriginConfig(f"http://127.0.0.1:{args.port + 1}", "x" * 52, [args.mirror]),
                   sitemap_of(folder), policy)
    runner = await _serve_app(front.make_app(), args.host, args.port)
    print("listening", flush=True)
    try:
        await _forever()
    finally:
        await runner.cleanup()
        await up.cleanup()


async def reserve(args: argparse.Namespace) -> None:
    holder = Reservation(_endpoint(args.relay), args.local, args.ports, bind=args.local)
    task = asyncio.ensure_future(holder.run())
    await asyncio.wait_for(holder.ready.wait(), 10)
    print("reserved", holder.seen_as, flush=True)
    await task


async def get(args: argparse.Namespace) -> None:
    detours = Detours([_endpoint(r) for r in args.relay], local=args.local,
                      connect_timeout=args.connect, stall_after=args.stall)
    detours.punch = args.punch
    progress = Path(args.progress) if args.progress else None

    def told(count: int) -> None:
        if progress is not None:
            progress.write_text(str(count))

    began = time.monotonic()
    try:
        fetched = await detours.get(args.url, progress=told)
    except Unreachable as exc:
        print(json.dumps({"error": str(exc), "events": _events(detours, began)}), flush=True)
        return
    print(json.dumps({
        "status": fetched.status, "size": len(fetched.body),
        "sha256": hashlib.sha256(fetched.body).hexdigest(),
        "location": fetched.headers.get("location"),
        "paths": [list(p) if p else None for p in fetched.paths],
        "events": _events(detours, began), "seconds": round(time.monotonic() - began, 3),
        "punched": detours.punched,
    }), flush=True)


def _events(detours: Detours, began: float) -> list[dict[str, object]]:
    return [{"failed": list(e.failed) if e.failed else None, "reason": e.reason,
             "detected": round(e.detected - began, 3),
             "recovered": round(e.recovered - began, 3) if e.recovered else None,
             "via": list(e.via) if e.via else None} for e in detours.events]


async def tunnels(args: argparse.Namespace) -> None:
    codes: list[int] = []
    held = []
    for target in args.target:
        host, port = target.rsplit(":", 1)
        for _ in range(args.count):
            try:
                held.append(await open_via(_endpoint(args.relay), host, int(port), 3.0,
                                           args.local))
                codes.append(200)
            except ConnectionRefusedError as exc:
                words = str(exc).split()
                codes.append(int(words[3]) if len(words) > 3 and words[3].isdigit() else 0)
            except (OSError, TimeoutError):
                codes.append(0)
    sent = 0
    if held and args.send:  # push bytes through the first tunnel until the relay cuts it
        reader, writer = held[0]
        with contextlib.suppress(OSError, TimeoutError):
            while sent < args.send:
                writer.write(b"x" * CHUNK)
                await asyncio.wait_for(writer.drain(), 3)
                sent += CHUNK
        with contextlib.suppress(OSError, TimeoutError):
            while await asyncio.wait_for(reader.read(CHUNK), 3):
                pass
    print(json.dumps({"codes": codes, "sent": sent}), flush=True)
    for _, w in held:
        w.close()


async def probe(args: argparse.Namespace) -> None:
    seen = []
    for r in args.relay:
        seen.append(list(await whoami(_endpoint(r), args.local, args.local_port))[:2])
    backs = await asyncio.gather(*(dialback(_endpoint(r), args.dialback, args.local)
                                   for r in args.relay)) if args.dialback else []
    print(json.dumps({"seen": seen, "dialbacks": backs}), flush=True)


async def echo(args: argparse.Namespace) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, args.host, args.port)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


async def _line_back(streams: tuple[asyncio.StreamReader, asyncio.StreamWriter], line: bytes,
                     timeout: float) -> bool:
    reader, writer = streams
    try:
        writer.write(line)
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), timeout) == line
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return False
    finally:
        writer.close()


async def dial(args: argparse.Namespace) -> None:
    began = time.monotonic()
    host, port = _endpoint(args.target)
    ok, error = False, None
    try:
        if args.relay:
            streams = await open_via(_endpoint(args.relay), host, port, args.timeout,
                                     args.local)
        else:
            streams = await asyncio.wait_for(asyncio.open_connection(
                host, port, local_addr=(args.local, 0) if args.local else None), args.timeout)
        ok = await _line_back(streams, f"hello {args.target}\n".encode(), args.timeout)
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"ok": ok, "error": error,
                      "ms": round((time.monotonic() - began) * 1000, 1)}), flush=True)


async def punch(args: argparse.Namespace) -> None:
    began = time.monotonic()
    ok, error = False, None
    try:
        reader, writer = await punch_via(_endpoint(args.relay), args.token, args.local,
                                         args.timeout)
        # Each side says its name and reads the other's: the connection is the peer's.
        writer.write(f"{args.name}\n".encode())
        await writer.drain()
        heard = await asyncio.wait_for(reader.readline(), args.timeout)
        ok = heard.decode().strip() == args.expect
        if not ok:
            error = f"heard {heard[:40]!r}"
        writer.close()
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"ok": ok, "error": error,
                      "ms": round((time.monotonic() - began) * 1000, 1)}), flush=True)


async def getloop(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    print("listening", flush=True)
    while url := (await stdin.readline()).decode().strip():
        detours = Detours([_endpoint(r) for r in args.relay], local=args.local,
                          connect_timeout=args.connect, stall_after=args.stall)
        marked = False

        def told(count: int) -> None:
            nonlocal marked
            if not marked and count >= args.mark:
                marked = True
                print(json.dumps({"mark": time.monotonic(), "bytes": count}), flush=True)

        began = time.monotonic()
        result: dict[str, object] = {"began": began}
        try:
            fetched = await detours.get(url, progress=told)
            result.update(sha256=hashlib.sha256(fetched.body).hexdigest(),
                          paths=[list(p) if p else None for p in fetched.paths])
        except Unreachable as exc:
            result["error"] = str(exc)
        result["ended"] = time.monotonic()
        result["events"] = [{"failed": list(e.failed) if e.failed else None,
                             "reason": e.reason, "detected": e.detected,
                             "recovered": e.recovered,
                             "via": list(e.via) if e.via else None} for e in detours.events]
        print(json.dumps(result), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pathagent")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("relay")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--allow", action="append", default=[])
    p.add_argument("--circuits", type=int, default=32)
    p.add_argument("--per-peer", type=int, default=4)
    p.add_argument("--max-bytes", type=int, default=64 * 1024 * 1024)
    p.add_argument("--max-age", type=float, default=120.0)
    p.add_argument("--status", default=None)
    p = sub.add_parser("serve")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--file", required=True)
    p.add_argument("--rate", type=int, default=0)
    p = sub.add_parser("sink")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p = sub.add_parser("origin")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--site", required=True)
    p.add_argument("--mirror", required=True)
    p = sub.add_parser("reserve")
    p.add_argument("--relay", required=True)
    p.add_argument("--local", required=True)
    p.add_argument("--ports", type=int, nargs="+", required=True)
    p = sub.add_parser("get")
    p.add_argument("url")
    p.add_argument("--relay", action="append", default=[])
    p.add_argument("--local", default=None)
    p.add_argument("--progress", default=None)
    p.add_argument("--punch", action="store_true")
    p.add_argument("--stall", type=float, default=2.0)
    p.add_argument("--connect", type=float, default=2.0)
    p = sub.add_parser("tunnels")
    p.add_argument("--relay", required=True)
    p.add_argument("--target", action="append", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--send", type=int, default=0)
    p.add_argument("--local", default=None)
    p = sub.add_parser("probe")
    p.add_argument("--relay", action="append", default=[])
    p.add_argument("--local", default=None)
    p.add_argument("--local-port", type=int, default=0)
    p.add_argument("--dialback", type=int, default=0)
    p = sub.add_parser("echo")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p = sub.add_parser("dial")
    p.add_argument("target")
    p.add_argument("--relay", default=None)
    p.add_argument("--local", default=None)
    p.add_argument("--timeout", type=float, default=2.0)
    p = sub.add_parser("punch")
    p.add_argument("--relay", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--expect", required=True)
    p.add_argument("--local", default=None)
    p.add_argument("--timeout", type=float, default=3.0)
    p = sub.add_parser("getloop")
    p.add_argument("--relay", action="append", default=[])
    p.add_argument("--local", default=None)
    p.add_argument("--mark", type=int, default=1 << 20)
    p.add_argument("--stall", type=float, default=2.0)
    p.add_argument("--connect", type=float, default=2.0)
    args = parser.parse_args(argv)
    table = {"relay": relay, "serve": serve, "sink": sink, "origin": origin,
             "reserve": reserve, "get": get, "tunnels": tunnels, "probe": probe,
             "echo": echo, "dial": dial, "punch": punch, "getloop": getloop}
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(table[args.command](args))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
