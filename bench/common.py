"""Shared benchmark helpers: baselines (nginx, wrk), timing, and result files.

Benchmarks send traffic only to 127.0.0.0/8, stop only the processes they started, and bound
every wait. Each prints its ratios against a baseline measured in the same run and writes
``bench/results/<name>.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

RESULTS = Path(__file__).parent / "results"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def nginx(root: Path, host: str = "127.0.0.1") -> Iterator[str]:
    """nginx serving ``root`` on a free loopback port; yields its base URL."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port(host)
    work = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    conf = work / "nginx.conf"
    # Workers drop to "nobody" when started as root, and could not read a private temp dir.
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(f"""
{user}
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  include /etc/nginx/mime.types;
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  server {{
    listen {host}:{port};
    root {root};
  }}
}}
""")
    process = subprocess.Popen([binary, "-c", str(conf), "-p", str(work)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(host, port, 10.0)
        yield f"http://{host}:{port}"
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


class TokenBucket:
    """Egress shared by every connection of a capped origin."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.allowance = 0.0
        self.last = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self, amount: int) -> None:
        async with self.lock:
            while True:
                now = time.monotonic()
                self.allowance = min(self.rate * 0.05, self.allowance + (now - self.last)
                                     * self.rate)
                self.last = now
                if self.allowance >= amount:
                    self.allowance -= amount
                    return
                await asyncio.sleep((amount - self.allowance) / self.rate)


class CappedOrigin:
    """A plain HTTP origin for a site's files whose egress, over all connections, is capped at
    ``rate`` bytes/s; ``sent`` counts what it sent."""

    def __init__(self, contents: dict[str, bytes], rate: int) -> None:
        self.contents = contents
        self.bucket = TokenBucket(rate)
        self.sent = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{path:.*}", self.serve)
        return app

    async def serve(self, request: web.Request) -> web.StreamResponse:
        data = self.contents.get(request.match_info["path"] or "index.html")
        if data is None:
            raise web.HTTPNotFound()
        response = web.StreamResponse()
        response.content_length = len(data)
        await response.prepare(request)
        for offset in range(0, len(data), 16384):
            piece = data[offset:offset + 16384]
            await self.bucket.take(len(piece))
            await response.write(piece)
            self.sent += len(piece)
        return response


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """``async with serving(app) as base_url``: ``app`` on a free loopback port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def wait_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not open within {timeout} s")


def wrk(url: str, seconds: int = 8, connections: int = 32, threads: int = 1,
        host_header: str | None = None) -> dict[str, float]:
    """Requests/s and latency percentiles (ms) from wrk."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if host_header:
        command[1:1] = ["-H", f"Host: {host_header}"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    result = {"rps": rps}
    for pct in ("50", "99"):
        found = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)", out)
        if found:
            value, unit = float(found.group(1)), found.group(2)
            result[f"p{pct}_ms"] = value / 1000 if unit == "us" else value * (
                1000 if unit == "s" else 1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = float(errors.group(1)) if errors else 0.0
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "machine": machine(), **data}
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}")
    return path


def ratio_line(label: str, ours: float, baseline: float, unit: str, target: str) -> str:
    ratio = ours / baseline if baseline else float("nan")
    return f"{label}: peerweb {ours:.3g} {unit} vs baseline {baseline:.3g} {unit} " \
           f"-> ratio {ratio:.2f} ({target})"
