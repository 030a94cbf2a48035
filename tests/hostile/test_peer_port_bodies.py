"""The peer port faces the network: whatever a body holds, the answer is a JSON error with the
right status, never a 500 (issue 16, item 12)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import TestClient, TestServer

from peerweb.content import pointer as ptr
from peerweb.content.identity import SiteKey
from peerweb.errors import NotFound
from peerweb.http.peer_client import HELP_PATH, POINTER_PATH
from peerweb.http.peer_server import MAX_BODY, make_app
from peerweb.node.state import NodeState, SiteRecord

KEY = SiteKey("peer", bytes(range(32)))
POINTER = ptr.sign(KEY, bytes(20), 2, seq=2)
GOOD = POINTER.to_json()


class FakeNode:
    """The part of Node the peer port calls, recording what reached it."""

    def __init__(self) -> None:
        self.state = NodeState(sites={KEY.site_id: SiteRecord(POINTER)})
        self.config = SimpleNamespace(volunteer=True)
        self.accepted: list[tuple[ptr.Pointer, tuple[str, int] | None]] = []
        self.mirrored: list[str] = []

    def admit_push(self, _address: str) -> float:
        return 0.0  # never rate-limited here: these tests are about bodies

    def accept_pointer(self, pointer: ptr.Pointer, source: tuple[str, int] | None,
                       unsolicited: bool = False,
                       holders: tuple[tuple[str, int], ...] = (),
                       planned: bool = False) -> bool:
        self.accepted.append((pointer, source))
        return True

    async def mirror(self, site_id: str, requester: str = "") -> ptr.Pointer:
        self.mirrored.append(site_id)
        record = self.state.sites.get(site_id)
        if record is None:
            raise NotFound("no such site")
        return record.pointer


@pytest.fixture
async def peer():
    node = FakeNode()
    client = TestClient(TestServer(make_app(node), host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield node, client
    finally:
        await client.close()


async def post(client: TestClient, path: str, body: bytes) -> tuple[int, object]:
    async with client.post(path, data=body,
                           headers={"Content-Type": "application/json"}) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


def offer(**fields: object) -> bytes:
    """An offer of the good pointer; the strings "INF" and "HUGE" stand for the JSON numbers
    1e400 (a float overflowing to infinity) and a 3,000-digit integer."""
    text = json.dumps({"pointer": GOOD, **fields})
    return text.replace('"INF"', "1e400").replace('"HUGE"', "9" * 3000).encode()


NOT_AN_OFFER = "not a pointer offer: "


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"[" * 4000, "the body is nested too deeply"),  # was a 500 (RecursionError)
        (b"1e400", "the body is JSON but not an object"),
        (b"[]", "the body is JSON but not an object"),
        (b"null", "the body is JSON but not an object"),
        (b'"pointer"', "the body is JSON but not an object"),
        (b"", "the body is not JSON: Expecting value: line 1 column 1 (char 0)"),
        (b"NaN", "the body is not JSON: NaN is not a JSON number"),
        (b"\xc3\x28", "the body is not JSON: 'utf-8' codec can't decode byte 0xc3 in "
                      "position 0: invalid continuation byte"),
        (b"1" * 4090, "the body is JSON but not an object"),
        (b"{}", "the body has no 'pointer'"),
        (offer(port="INF"), "'port' must be an integer from 0 to 65535"),  # was int(inf): 500
        (offer(port=2**70), "'port' must be an integer from 0 to 65535"),
        (offer(port="HUGE"), "'port' must be an integer from 0 to 65535"),
        (offer(port=65536), "'port' must be an integer from 0 to 65535"),
        (offer(port=-1), "'port' must be an integer from 0 to 65535"),
        (offer(port=True), "'port' must be an integer from 0 to 65535"),
        (offer(port="8080"), "'port' must be an integer from 0 to 65535"),
        (offer(port=None), "'port' must be an integer from 0 to 65535"),
        (offer(port=[1]), "'port' must be an integer from 0 to 65535"),
        (b'{"pointer": 1, "port": NaN}', "the body is not JSON: NaN is not a JSON number"),
    ],
)
async def test_malformed_offers_are_400_json(peer, body, error):
    node, client = peer
    assert await post(client, POINTER_PATH, body) == (400, {"error": NOT_AN_OFFER + error})
    assert node.accepted == []


@pytest.mark.parametrize(
    ("pointer", "error"),
    [
        ([], "malformed pointer record: a list, not an object"),
        ("x" * 100, "malformed pointer record: a str, not an object"),
        ({**GOOD, "seq": 2**64}, "malformed pointer record: 'seq' is not an integer from 0 "
                                 "to 2**63-1"),
        ({**GOOD, "seq": 1.5}, "malformed pointer record: 'seq' is not an integer from 0 "
                               "to 2**63-1"),
        ({**GOOD, "value": 7}, "malformed pointer record: 'value' is not a hex string"),
        ({**GOOD, "seq": 3}, "bad signature: this pointer was not signed by the site's key"),
    ],
)
async def test_unverifiable_pointers_are_400_json(peer, pointer, error):
    node, client = peer
    body = json.dumps({"pointer": pointer, "port": 1}).encode()
    assert await post(client, POINTER_PATH, body) == (
        400, {"error": "not a validly signed pointer: " + error})
    assert node.accepted == []


async def test_an_oversized_body_is_413_json(peer):
    node, client = peer
    assert await post(client, POINTER_PATH, b" " * (MAX_BODY + 1)) == (
        413, {"error": f"the body is larger than {MAX_BODY} bytes"})
    assert node.accepted == []


async def test_a_valid_offer_reaches_the_node_with_its_port(peer):
    node, client = peer
    assert await post(client, POINTER_PATH, offer(port=6881)) == (200, {"accepted": True})
    assert await post(client, POINTER_PATH, offer()) == (200, {"accepted": True})
    assert node.accepted == [(POINTER, ("127.0.0.1", 6881)), (POINTER, None)]


@pytest.mark.parametrize("spelling", [KEY.site_id, KEY.site_id.upper(), KEY.site_id.title()])
async def test_a_site_id_in_any_case_names_the_site(peer, spelling):
    _node, client = peer
    async with client.get(f"{POINTER_PATH}/{spelling}") as response:
        assert (response.status, await response.json()) == (200, {"pointer": GOOD})


@pytest.mark.parametrize(("spelling", "status", "error"), [
    ("b" * 52, 400, "not a canonical site id: '" + "b" * 52 + "'"),
    ("\u212a" * 52, 400, "not a site id (52 base32 characters): '" + "\u212a" * 52 + "'"),
    ("a" * 52, 404, "unknown site"),
])
async def test_other_site_ids_are_json_errors(peer, spelling, status, error):
    _node, client = peer
    async with client.get(f"{POINTER_PATH}/{spelling}") as response:
        assert (response.status, await response.json()) == (status, {"error": error})


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"[" * 4000, 400, "the body is nested too deeply"),
        (b"1e400", 400, "the body is JSON but not an object"),
        (b'{"site_id": 5}', 400, "needs a JSON body with 'site_id'"),
        (b'{"site_id": "nope"}', 400, "not a site id (52 base32 characters): 'nope'"),
        (b'{"site_id": "' + b"a" * 52 + b'"}', 404, "no such site"),
        (b" " * (MAX_BODY + 1), 413, f"the body is larger than {MAX_BODY} bytes"),
    ],
)
async def test_malformed_help_requests_are_json_errors(peer, body, status, error):
    _node, client = peer
    assert await post(client, HELP_PATH, body) == (status, {"error": error})


async def test_help_takes_a_site_id_in_any_case(peer):
    node, client = peer
    body = json.dumps({"site_id": KEY.site_id.upper()}).encode()
    assert await post(client, HELP_PATH, body) == (200, {"site_id": KEY.site_id, "version": 2})
    assert node.mirrored == [KEY.site_id]
