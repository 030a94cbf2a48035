"""Browser-like visitors of an unaware origin whose clients follow the peerweb extension's
rules, run as a process of its own (bench/webcache_rescue.py starts it).

Each load is a navigation to the origin's index.html, then (if it answers) the page's
sub-resources over at most 6 connections per origin, as a browser loads it. With
``extension`` on, the top-frame navigation is watched with the same decisions as the
extension's decide.js (``Navigations.headers/error/handleTimer`` and ``onLookup``, automatic
mode): an answer with a failing status (429, 502, 503, 504, 509, 520-529), a network error
that says the origin could not be reached, or no answer within the stall time, is a failure;
the visitor then asks its node's ``/_ext/lookup`` and, when peers hold a copy, loads the
rescued page from the view origin the node names. Like the extension, it watches only the top
frame: a page that arrived but whose sub-resources failed is left as it is (counted as not
completed). After a rescue, the visitor's navigations to that origin are held back for
``retryOriginSeconds`` (decide.js ``hold``; the extension's declarativeNetRequest rule): they
go to the node at once, without asking the origin.

Input: a JSON file (see ``main``). Output: one JSON object on stdout, a record per load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

# decide.js: STATUS_TEXT and the 520-529 range (failingStatus).
FAILING_STATUSES = frozenset({429, 502, 503, 504, 509, *range(520, 530)})
PARALLEL = 6  # connections per origin, as a browser opens
REFERENCE = re.compile(rb'<link rel="preload" href="([^"]+)">')


def failing_status(status: int) -> bool:
    return status in FAILING_STATUSES


def failing_error(exc: BaseException) -> str | None:
    """The network errors decide.js's NETWORK_ERRORS names, as aiohttp raises them: refused,
    reset or closed connections, a connection or read that timed out, no address. None for
    anything else (the extension does nothing then)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "refused the connection"
        return "could not be reached"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "closed the connection without answering"
    if isinstance(exc, aiohttp.ClientOSError | ConnectionResetError):
        return "reset the connection"
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return "did not answer (timed out)"
    return None


@dataclass
class Visitor:
    index: int
    address: str
    gateway: str
    """http://127.0.0.1:PORT of the visitor's own node."""
    token: str
    origin: aiohttp.ClientSession
    node: aiohttp.ClientSession
    view: aiohttp.ClientSession
    held_until: float = 0.0
    """Until when navigations to the origin are held back (one origin in this bench)."""


class Crowd:
    def __init__(self, config: dict[str, Any]) -> None:
        self.base: str = config["origin"]
        self.expected: dict[str, bytes] = {
            name: bytes.fromhex(data) for name, data in config["files"].items()}
        self.stall: float = config["stall_s"]
        self.give_up: float = config["give_up_s"]
        self.extension: bool = config["extension"]
        self.retry: float = config["retry_s"]
        self.nodes: list[dict[str, Any]] = config["visitors"]
        self.schedule: list[tuple[float, int]] = [tuple(x) for x in config["schedule"]]

    async def run(self) -> dict[str, Any]:
        visitors = []
        for index, node in enumerate(self.nodes):
            local = (node["address"], 0)
            visitors.append(Visitor(
                index, node["address"], node["gateway"], node["token"],
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                    limit_per_host=PARALLEL, local_addr=local)),
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit_per_host=PARALLEL)),
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit_per_host=PARALLEL))))
        try:
            began = time.monotonic()
            tasks = [asyncio.create_task(self._at(began + at, visitors[v]))
                     for at, v in self.schedule]
            loads = await asyncio.gather(*tasks)
        finally:
            for visitor in visitors:
                for session in (visitor.origin, visitor.node, visitor.view):
                    await session.close()
        spent = resource.getrusage(resource.RUSAGE_SELF)
        return {"began": began, "loads": loads, "cpu_s": spent.ru_utime + spent.ru_stime}

    async def _at(self, when: float, visitor: Visitor) -> dict[str, Any]:
        await asyncio.sleep(max(0.0, when - time.monotonic()))
        record: dict[str, Any] = {"visitor": visitor.index, "start": time.monotonic()}
        try:
            async with asyncio.timeout(self.give_up):
                await self._load(visitor, record)
        except TimeoutError:
            record.setdefault("outcome", "gave up")
        record["end"] = time.monotonic()
        return record

    async def _load(self, visitor: Visitor, record: dict[str, Any]) -> None:
        url = f"{self.base}/index.html"
        failure: str | None = None
        kind = ""
        if self.extension and time.monotonic() < visitor.held_until:
            record.update(failure="failed moments ago (not asked again yet)", kind="held",
                          failed_at=time.monotonic())
            await self._rescue(visitor, url, record)
            return
        try:
            # The stall clock runs until the response headers (decide.js: headers() clears
            # the deadline); a stalled navigation is replaced, so its request is abandoned.
            async with asyncio.timeout(self.stall):
                response = await visitor.origin.get(url)
        except TimeoutError:
            failure, kind = f"did not answer within {self.stall:g} s", "stall"
        except aiohttp.ClientError as exc:
            failure, kind = failing_error(exc), "network"
            if failure is None:
                record["outcome"] = f"error: {exc}"
                return
        else:
            async with response:
                record["status"] = response.status
                if failing_status(response.status):
                    failure, kind = f"answered {response.status}", "status"
                elif response.status != 200:
                    record["outcome"] = f"answered {response.status}"
                    return
                else:
                    body = await response.read()
        if failure is None:
            # The origin answered: the page loads from it, sub-resources included. The
            # extension watches the top frame only; failing parts leave the page broken.
            parts = await self._parts(visitor.origin, url, body, {})
            record["outcome"] = "origin" if parts is None else f"broken: {parts}"
            return
        record.update(failure=failure, kind=kind, failed_at=time.monotonic())
        if not self.extension:
            record["outcome"] = "failed"
            return
        await self._rescue(visitor, url, record)

    async def _rescue(self, visitor: Visitor, url: str, record: dict[str, Any]) -> None:
        async with visitor.node.get(
                visitor.gateway + "/_ext/lookup", params={"url": url},
                headers={"Authorization": f"Bearer {visitor.token}"}) as response:
            answer = await response.json() if response.status == 200 else None
        record["looked_up_at"] = time.monotonic()
        # decide.js onLookup, automatic mode: a found copy on the node's own view host.
        view = answer.get("view") if isinstance(answer, dict) else None
        port = urlsplit(visitor.gateway).port
        if not (isinstance(answer, dict) and answer.get("found") is True
                and isinstance(view, str) and (urlsplit(view).hostname or "").endswith(
                    ".localhost") and urlsplit(view).port == port):
            record["outcome"] = "no copy: " + str((answer or {}).get("reason", "no answer"))
            return
        record["agreeing"] = answer.get("agreeing")
        if record["kind"] != "held" and self.retry > 0:
            visitor.held_until = time.monotonic() + self.retry
        host = urlsplit(view).netloc
        headers = {"Host": host}
        local = visitor.gateway + urlsplit(view).path
        async with visitor.view.get(local, headers=headers) as response:
            body = await response.read()
            ok = response.status == 200 and b"peerweb-webcache-banner" in body
        if not ok:
            record["outcome"] = f"view answered {response.status}"
            return
        parts = await self._parts(visitor.view, local, body, headers)
        record["outcome"] = "peers" if parts is None else f"broken view: {parts}"
        record["rescued_at"] = time.monotonic()

    async def _parts(self, session: aiohttp.ClientSession, page: str, body: bytes,
                     headers: dict[str, str]) -> str | None:
        """Load a page's sub-resources; None when every one arrived with the origin's bytes,
        else what went wrong with the first that did not."""
        names = [ref.decode() for ref in REFERENCE.findall(body)]
        if len(names) != len(self.expected) - 1:
            return f"{len(names)} sub-resources referenced"

        async def one(name: str) -> str | None:
            async with session.get(urljoin(page, name), headers=headers) as response:
                data = await response.read()
                if response.status != 200:
                    return f"{name} answered {response.status}"
            return None if data == self.expected.get(name) else f"{name}: other bytes"

        try:
            problems = await asyncio.gather(*(one(n) for n in names))
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}"
        return next((p for p in problems if p is not None), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="JSON: origin, files (name -> hex), stall_s, "
                                       "give_up_s, extension, visitors, schedule")
    args = parser.parse_args()
    with open(args.config) as f:
        config = json.load(f)
    print(json.dumps(asyncio.run(Crowd(config).run())))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
