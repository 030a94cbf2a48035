"""The peer port, client half: push a signed pointer to other holders, fetch theirs, and
ask volunteers for their load and for help (the server half is ``peer_server``)."""

from __future__ import annotations

import asyncio
import enum
import logging
import urllib.parse
from collections.abc import Sequence
from typing import Any

import aiohttp

from ..content.pointer import Pointer
from ..errors import ForgedPointer
from ..policy.propagation import Endpoint

log = logging.getLogger(__name__)

POINTER_PATH = "/peerweb/v1/pointer"
HELP_PATH = "/peerweb/v1/help"
LOAD_PATH = "/peerweb/v1/load"
RRSET_PATH = "/peerweb/v1/rrset"
PROOF_PATH = "/peerweb/v1/proof"
# A DNS proof is at most dns.dnssec.MAX_PROOF (16 KB); a body over this is not read.
MAX_RRSET_BODY = 16 * 1024
PEER_TIMEOUT = 3.0
# A proof carries a few whole pieces (up to 4 MiB each): more time than a pointer.
PROOF_TIMEOUT = 30.0


class ProofOutcome(enum.Enum):
    """How a holder met a challenge (``PeerClient.prove``)."""

    ANSWERED = "answered"
    """It sent bytes: the challenger checks them against the torrent."""
    PENDING = "pending"
    """It holds the snapshot but not every piece yet (409)."""
    NOT_HELD = "not_held"
    """It does not hold the snapshot, or would not answer (404, or another refusal)."""
    BUSY = "busy"
    """It asked to be challenged later (429, 503)."""
    UNREACHABLE = "unreachable"
    """No answer: down, or cut off."""


class PeerClient:
    """Pushes and fetches pointers to and from other nodes' peer ports."""

    def __init__(self, bind: str | None = None) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._bind = bind
        """The local address connections leave from (None: the kernel's choice). Nodes
        sharing a machine on their own 127.0.0.x addresses bind to them, as their swarms do
        (``outgoing_interfaces``): otherwise every node's connections come from 127.0.0.1,
        and a peer port's per-address connection limit counts them all as one peer."""

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                local_addr=(self._bind, 0) if self._bind else None)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def push(self, endpoint: Endpoint, pointer: Pointer, my_port: int,
                   holders: Sequence[Endpoint] = ()) -> bool:
        """Offer ``pointer``, naming other ``holders`` the peer may forward it to; True if
        the peer took it as news."""
        return bool(await self.hand_over(endpoint, pointer, my_port, holders, share=False))

    async def hand_over(self, endpoint: Endpoint, pointer: Pointer, my_port: int,
                        holders: Sequence[Endpoint], share: bool = True) -> bool | None:
        """Offer ``pointer`` with ``holders``: with ``share``, the holders the peer is to
        forward it to and no others (``propagation.plan_pushes``). True if the peer took it
        as news, False if it had it, None if the offer did not get there (refused, too many
        pushes, no answer): then the sender pushes that share itself."""
        body: dict[str, Any] = {"pointer": pointer.to_json(), "port": my_port,
                                "holders": [list(h) for h in holders]}
        if share:
            body["share"] = True
        try:
            async with self._client().post(_url(endpoint), json=body) as response:
                answer: dict[str, Any] = await response.json()
                if response.status != 200:
                    return None
                return bool(answer.get("accepted"))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.debug("push to %s:%d failed: %s", *endpoint, exc)
            return None

    async def fetch(self, endpoint: Endpoint, site_id: str) -> Pointer | None:
        """The pointer a peer holds for a site (verified), or None."""
        try:
            async with self._client().get(f"{_url(endpoint)}/{site_id}") as response:
                if response.status != 200:
                    return None
                answer = await response.json()
            found = Pointer.from_json(answer["pointer"])
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            log.debug("pointer fetch from %s:%d failed: %s", *endpoint, exc)
            return None
        except ForgedPointer as exc:
            log.warning("peer %s:%d offered a forged pointer: %s", *endpoint, exc)
            return None
        return found if found.site_id == site_id else None

    async def fetch_rrset(self, endpoint: Endpoint, qname: str, qtype: str) -> bytes | None:
        """A peer's DNS proof for a name and type, unchecked (the caller validates it)."""
        url = f"{_base(endpoint)}{RRSET_PATH}/{urllib.parse.quote(qname, safe='')}/{qtype}"
        try:
            async with self._client().get(url) as response:
                if response.status != 200:
                    return None
                body = await _read_at_most(response, MAX_RRSET_BODY + 1)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.debug("rrset fetch from %s:%d failed: %s", *endpoint, exc)
            return None
        return body  # oversized ones are refused (and counted) by the validation

    async def loads(self, endpoints: list[Endpoint]) -> list[dict[str, Any]]:
        """Load reports of volunteers (those that answer), each with its ``endpoint``."""
        async def one(endpoint: Endpoint) -> dict[str, Any] | None:
            try:
                async with self._client().get(_base(endpoint) + LOAD_PATH) as response:
                    if response.status != 200:
                        return None
                    report: dict[str, Any] = await response.json()
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return None
            if not isinstance(report.get("sites"), dict) or "gateway" not in report:
                return None
            return {**report, "endpoint": list(endpoint)}

        found = await asyncio.gather(*(one(e) for e in endpoints))
        return [r for r in found if r is not None]

    async def ask_help(self, endpoint: Endpoint, site_id: str) -> int | None:
        """Ask a volunteer to mirror a site: the version it now holds if it took the job."""
        try:
            async with self._client().post(_base(endpoint) + HELP_PATH,
                                           json={"site_id": site_id}) as response:
                if response.status != 200:
                    return None
                return int((await response.json())["version"])
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError):
            return None

    async def ask_hold(self, endpoint: Endpoint, site_id: str) -> tuple[int | None, str]:
        """``ask_help`` with the volunteer's reason when it declines: (the version it now
        holds, or None; why not)."""
        try:
            async with self._client().post(_base(endpoint) + HELP_PATH,
                                           json={"site_id": site_id}) as response:
                answer = await response.json()
                if response.status != 200:
                    return None, f"{response.status} {str(answer.get('error', ''))[:200]}"
                return int(answer["version"]), ""
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError,
                AttributeError) as exc:
            return None, f"no answer ({type(exc).__name__})"

    async def prove(self, endpoint: Endpoint, tid: str, pieces: list[int],
                    expected: int) -> tuple[ProofOutcome, bytes]:
        """Challenge a holder for the bytes of ``pieces`` of snapshot ``tid``: the outcome
        and the body (the pieces' bytes, or the reason given), at most ``expected`` + 1
        bytes read (more is no proof either)."""
        body = {"infohash": tid, "pieces": pieces}
        try:
            async with self._client().post(
                    _base(endpoint) + PROOF_PATH, json=body,
                    timeout=aiohttp.ClientTimeout(total=PROOF_TIMEOUT)) as response:
                data = await _read_at_most(response, expected + 1)
                if response.status == 200:
                    return ProofOutcome.ANSWERED, data
                outcome = (ProofOutcome.PENDING if response.status == 409
                           else ProofOutcome.BUSY if response.status in (429, 503)
                           else ProofOutcome.NOT_HELD)
                return outcome, data[:400]
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return ProofOutcome.UNREACHABLE, type(exc).__name__.encode()

    async def fetch_version(self, endpoint: Endpoint, site_id: str,
                            version: int) -> Pointer | None:
        """The signed pointer of an older ``version`` of a site, if the peer kept it."""
        url = f"{_url(endpoint)}/{site_id}?version={version}"
        try:
            async with self._client().get(url) as response:
                if response.status != 200:
                    return None
                found = Pointer.from_json((await response.json())["pointer"])
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError,
                ForgedPointer) as exc:
            log.debug("version fetch from %s:%d failed: %s", *endpoint, exc)
            return None
        return found if found.site_id == site_id and found.version == version else None

    async def fetch_any(self, endpoints: list[Endpoint], site_id: str) -> list[Pointer]:
        results = await asyncio.gather(*(self.fetch(e, site_id) for e in endpoints))
        return [p for p in results if p is not None]


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or its first ``limit`` bytes (``read(n)`` gives what has arrived so far)."""
    data = bytearray()
    while len(data) < limit:
        chunk = await response.content.read(limit - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _base(endpoint: Endpoint) -> str:
    host, port = endpoint
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


def _url(endpoint: Endpoint) -> str:
    return _base(endpoint) + POINTER_PATH
