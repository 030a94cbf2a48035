"""The gateway's replay path (peerweb.fastpath) against the full gateway, on raw keep-alive
connections: the same bytes, in order, and never a stale version. A connection is answered
by the replay path until its first request that path cannot answer; from then on by aiohttp."""

from __future__ import annotations

import asyncio
import shutil

from peerweb.tools.testnet import Testnet

from ..waiting import wait_until


class Connection:
    """One HTTP/1.1 keep-alive connection; responses read by Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, address: tuple[str, int]) -> Connection:
        return cls(*await asyncio.open_connection(*address))

    def send(self, *requests: bytes) -> None:
        self.writer.write(b"".join(requests))  # several at once: pipelined

    async def response(self, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = 0 if method == "HEAD" or status == 304 else int(headers["content-length"])
        body = await asyncio.wait_for(self.reader.readexactly(length), 10)
        return status, headers, body

    def close(self) -> None:
        self.writer.close()


def request(host: str, path: str, method: str = "GET", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


async def through_gateway(address: tuple[str, int], host: str,
                          path: str) -> tuple[int, dict[str, str], bytes]:
    """One request on a connection of its own: a miss, so the full gateway answers (and
    stores what it sent for replay)."""
    conn = await Connection.open(address)
    try:
        conn.send(request(host, path))
        return await conn.response()
    finally:
        conn.close()


def without_date(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in ("date", "server")}


async def test_replayed_answers_match_the_gateway_and_keep_their_order(small_site):
    folder, contents = small_site
    async with Testnet(2) as net:
        a, b = net.nodes
        result = await a.node.publish(folder, "site")
        host = f"{result.site_id}.localhost:{b.gateway_address[1]}"
        first = await through_gateway(b.gateway_address, host, "/assets/file01.js")
        assert first[0] == 200 and first[2] == contents["assets/file01.js"]
        conn = await Connection.open(b.gateway_address)
        try:
            conn.send(request(host, "/assets/file01.js"))
            again = await conn.response()
            assert again[0] == 200 and again[2] == first[2]
            assert without_date(again[1]) == without_date(first[1])
            conn.send(request(host, "/assets/file01.js", "HEAD"))
            head = await conn.response("HEAD")
            assert head[0] == 200 and without_date(head[1]) == without_date(first[1])

            # Pipelined: a replayable request, one that needs the gateway (a Range), one
            # never asked before, and a revalidation; answers come back in order.
            etag = first[1]["etag"]
            conn.send(request(host, "/assets/file01.js"),
                      request(host, "/assets/file01.js", extra="Range: bytes=0-9\r\n"),
                      request(host, "/index.html"),
                      request(host, "/assets/file01.js", extra=f"If-None-Match: {etag}\r\n"))
            status, _, body = await conn.response()
            assert status == 200 and body == contents["assets/file01.js"]
            status, headers, body = await conn.response()
            assert status == 206 and body == contents["assets/file01.js"][:10]
            status, _, body = await conn.response()
            assert status == 200 and body == contents["index.html"]
            status, _, _ = await conn.response()
            assert status == 304
        finally:
            conn.close()

        # Malformed requests reach the full gateway (aiohttp's parser), which refuses them.
        conn = await Connection.open(b.gateway_address)
        try:
            conn.send(b"GET /assets/file01.js HTTP/1.1\r\nHost: " + host.encode()
                      + b"\r\n folded: header\r\n\r\n")
            status, _, _ = await conn.response()
            assert status == 400
        finally:
            conn.close()


async def test_a_new_version_is_never_hidden_by_a_replay(small_site, tmp_path):
    folder, contents = small_site
    async with Testnet(2) as net:
        a, b = net.nodes
        v1 = await a.node.publish(folder, "site")
        host = f"{v1.site_id}.localhost:{b.gateway_address[1]}"
        assert (await through_gateway(b.gateway_address, host, "/index.html"))[2] == (
            contents["index.html"])
        conn = await Connection.open(b.gateway_address)
        try:
            conn.send(request(host, "/index.html"))  # replayed
            status, _, body = await conn.response()
            assert status == 200 and body == contents["index.html"]
            v2_dir = tmp_path / "v2"
            shutil.copytree(folder, v2_dir)
            (v2_dir / "index.html").write_bytes(b"<h1>version 2</h1>")
            v2 = await a.node.publish(v2_dir, "site")
            assert v2.version == 2
            async def b_has_v2() -> bool:  # pushed, or found on its next lookup
                await b.node.refresh_pointer(v1.site_id)
                return b.node.state.sites[v1.site_id].pointer.version == 2

            await wait_until(b_has_v2, 10, "B to learn of v2")
            conn.send(request(host, "/index.html"))
            status, headers, body = await conn.response()
            assert status == 200 and body == b"<h1>version 2</h1>"
            assert headers["x-peerweb-snapshot"] == v2.infohash
        finally:
            conn.close()
