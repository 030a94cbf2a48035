"""An origin that knows nothing of peerweb, for the extension's end-to-end tests: a page with a
stylesheet, two images and a link, two pages a shared cache must not keep, and a switch that
makes it answer 509, stall, or refuse connections (its port closed)."""

from __future__ import annotations

import asyncio
import struct
import zlib
from dataclasses import dataclass, field

from aiohttp import web


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG of one colour (so the page shows it and a test can check it rendered)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def page(title: str, extra: str = "") -> bytes:
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>"
            "<link rel=stylesheet href=/style.css></head><body>"
            f"<h1 id=title>{title}</h1><img id=a src=/img/a.png alt=a>"
            f"<img id=b src=/img/b.png alt=b><p><a id=next href=/next.html>next</a></p>"
            f"{extra}</body></html>").encode()


CACHEABLE = {"Cache-Control": "public, max-age=600"}


def files(version: str = "honest") -> dict[str, tuple[bytes, str, dict[str, str]]]:
    """path -> (body, content type, extra headers); ``version`` changes every body."""
    return {
        "/index.html": (page(f"The unaware origin ({version})"), "text/html", CACHEABLE),
        "/next.html": (page(f"The next page ({version})"), "text/html", CACHEABLE),
        "/style.css": (f"h1 {{ color: rgb(1, 2, 3) }} /* {version} */\n".encode()
                       + b"/* padding */\n" * 64, "text/css", CACHEABLE),
        "/img/a.png": (png(8, 8, (200, 30, 30) if version == "honest" else (0, 0, 0)),
                       "image/png", CACHEABLE),
        "/img/b.png": (png(5, 3, (30, 30, 200)), "image/png", CACHEABLE),
        "/cookie.html": (page("A page that sets a cookie"), "text/html",
                         {**CACHEABLE, "Set-Cookie": "session=s3cr3t; Path=/"}),
        "/private.html": (page("A private page"), "text/html",
                          {"Cache-Control": "private, max-age=600"}),
    }


@dataclass
class Unaware:
    """``async with Unaware() as origin``: serves on 127.0.0.1 (a free port, kept when it is
    closed and opened again). ``mode``: "ok", "stall" (no answer until closed), or a status
    (e.g. 509) answered to every request."""

    mode: str | int = "ok"
    version: str = "honest"
    requests: list[str] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def body(self, path: str) -> bytes:
        return files(self.version)[path][0]

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path)
        if self.mode == "stall":
            await self._released.wait()
        if isinstance(self.mode, int):
            return web.Response(status=self.mode, text=f"{self.mode}: try again later",
                                headers={"Retry-After": "60"})
        found = files(self.version).get("/index.html" if request.path == "/" else request.path)
        if found is None:
            return web.Response(status=404, text="no such page")
        body, content_type, headers = found
        return web.Response(body=body, content_type=content_type, headers=headers)

    async def open(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._answer)
        self._released = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        """Close the port: connections are refused until ``open`` again."""
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Unaware:
        await self.open()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()
