"""A browser's side of a bench, in its own process (BENCH.md: keep the visitor out of the
servers' process, so a bench times the gateway, not a loop the two share).

Reads one JSON request a line on stdin, ``{"url", "host", "start", "length", "sha256"}``
(``start`` null for the whole file), fetches it, and answers one JSON line on stdout:
``{"elapsed": seconds, "status": code, "ok": body has that length and hash}``. Only the
fetch is timed; the check comes after.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from typing import Any

import aiohttp


async def fetch(session: aiohttp.ClientSession, ask: dict[str, Any]) -> dict[str, Any]:
    headers = {"Host": ask["host"]}
    if ask["start"] is not None:
        headers["Range"] = f"bytes={ask['start']}-{ask['start'] + ask['length'] - 1}"
    began = time.perf_counter()
    async with session.get(ask["url"], headers=headers) as response:
        body = await response.read()
    elapsed = time.perf_counter() - began
    ok = len(body) == ask["length"] and hashlib.sha256(body).hexdigest() == ask["sha256"]
    return {"elapsed": elapsed, "status": response.status, "ok": ok}


async def main() -> None:
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            answer = await fetch(session, json.loads(line))
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
