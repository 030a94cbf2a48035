"""A hostile DHT node: speaks just enough KRPC (BEP 5, BEP 44) for libtorrent to route
through it, knows no other node, and answers BEP 44 ``get`` queries with whatever item the
test hands it (a replayed older record, a forged one), validly signed or not.

Queries it answers: ``ping``, ``find_node`` and ``get_peers`` (no nodes, no peers),
``announce_peer`` and ``put`` (acknowledged, nothing stored), ``get`` (the item set for the
target, else no nodes). Anything else gets a KRPC error. It counts the ``get`` queries that
it answered with an item, so a test knows the victim really asked it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

from peerweb.content import bencode
from peerweb.content.item import SignedItem


def item_target(public_key: bytes, salt: bytes) -> bytes:
    """BEP 44: a mutable item's DHT target is SHA-1 of its key and salt."""
    return hashlib.sha1(public_key + salt).digest()


def _reply(tid: bytes, fields: dict[bytes, bencode.Value], raw_v: bytes | None) -> bytes:
    """A KRPC response; ``raw_v`` is spliced in as the already-bencoded ``v`` (the exact
    bytes the item's signature covers)."""
    body = dict(fields)
    parts = []
    keys = sorted([*body, *([b"v"] if raw_v is not None else [])])
    for key in keys:
        parts.append(bencode.encode(key))
        parts.append(raw_v if key == b"v" and raw_v is not None else bencode.encode(body[key]))
    r = b"d" + b"".join(parts) + b"e"
    return b"d1:r" + r + b"1:t" + bencode.encode(tid) + b"1:y1:re"


class HostileDhtNode(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.node_id = os.urandom(20)
        self.items: dict[bytes, SignedItem] = {}
        """What it answers ``get`` with, by target."""
        self.served = 0
        self.transport: asyncio.DatagramTransport | None = None

    def serve(self, item: SignedItem) -> None:
        self.items[item_target(item.public_key, item.salt)] = item

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = bencode.decode(data)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get(b"y") != b"q":
            return
        tid, method, args = message.get(b"t"), message.get(b"q"), message.get(b"a")
        if not isinstance(tid, bytes) or not isinstance(args, dict):
            return
        reply = self._answer(tid, method, args)
        if self.transport is not None:
            self.transport.sendto(reply, addr)

    def _answer(self, tid: bytes, method: object, args: dict[bytes, bencode.Value]) -> bytes:
        me: dict[bytes, bencode.Value] = {b"id": self.node_id}
        if method == b"ping" or method in (b"announce_peer", b"put"):
            return _reply(tid, me, None)
        if method in (b"find_node", b"get_peers"):
            return _reply(tid, {**me, b"nodes": b"", b"token": b"tok"}, None)
        if method == b"get":
            item = self.items.get(args.get(b"target"))  # type: ignore[arg-type]
            if item is None:
                return _reply(tid, {**me, b"nodes": b"", b"token": b"tok"}, None)
            self.served += 1
            return _reply(tid, {**me, b"k": item.public_key, b"seq": item.seq,
                                b"sig": item.signature, b"token": b"tok"}, item.value)
        return bencode.encode({b"t": tid, b"y": b"e", b"e": [204, b"Method Unknown"]})


async def start(host: str) -> tuple[HostileDhtNode, asyncio.DatagramTransport, int]:
    """The hostile node listening on a free UDP port of ``host``."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(HostileDhtNode,
                                                              local_addr=(host, 0))
    return protocol, transport, int(transport.get_extra_info("sockname")[1])
