"""The peer port, server half: nodes that hold a site hand each other its signed pointer over HTTP.

``POST /peerweb/v1/pointer`` offers a pointer (JSON, as in the state file) with the
sender's peer port and a few other holders it knows; the receiver verifies the signature,
keeps it only if it is newer, and then forwards it, to those holders if they are enough (see
propagation.py). ``GET /peerweb/v1/pointer/<site-id>`` returns the newest pointer a node
holds, so a site stays resolvable from its holders while the publisher is offline and the
DHT item has expired. Nothing unsigned is ever accepted, so this port can face the network;
pushes are rate-limited per source address (429) and kept only for sites the node knows
(``policy.admission``), and a volunteer bounds the help it gives (``Node.mirror``).
"""

from __future__ import annotations

import ipaddress
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dns.rdatatype
from aiohttp import web

from ..content.identity import normalise_site_id
from ..content.pointer import Pointer
from ..errors import BadAddress, ForgedPointer, PeerwebError, TooLarge, UsageError
from ..policy import propagation
from ..policy.propagation import Endpoint
from . import webcache_peer
from .peer_client import HELP_PATH, LOAD_PATH, POINTER_PATH, PROOF_PATH, RRSET_PATH

if TYPE_CHECKING:
    from ..node.node import Node

log = logging.getLogger(__name__)

MAX_BODY = 4096  # a pointer is well under 1 KB
MAX_PORT = 65535


@dataclass(frozen=True)
class Offer:
    """A ``POST /peerweb/v1/pointer`` body, checked."""

    pointer: Pointer
    """The pointer offered, its signature verified."""
    port: int
    """The sender's own peer port, to forward to it; 0 when it gave none."""
    holders: tuple[Endpoint, ...] = ()
    """Other holders the sender knows (``propagation.PUSHED_HOLDERS`` at most), to forward
    to without a DHT lookup: IP literals and ports 1-65535 only, the rest dropped."""
    share: bool = False
    """``holders`` is this node's share of a planned flood (``propagation.plan_pushes``):
    forward to those, planned again, and to no others."""


def parse_object(body: bytes) -> dict[str, object]:
    """A request body that must be one JSON object (RFC 8259); UsageError otherwise.

    The json module is strict enough once three of its leniencies are refused: nesting deep
    enough to exhaust the stack (RecursionError), ``NaN``/``Infinity`` (not JSON), and
    integers past 4,300 digits (ValueError)."""
    try:
        raw = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise UsageError("the body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise UsageError(f"the body is not JSON: {str(exc)[:120]}") from None
    if not isinstance(raw, dict):
        raise UsageError("the body is JSON but not an object")
    return raw


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def parse_offer(body: bytes) -> Offer:
    """The offer in ``body``; UsageError for a malformed body, ForgedPointer for a pointer
    that does not verify."""
    raw = parse_object(body)
    if "pointer" not in raw:
        raise UsageError("the body has no 'pointer'")
    port = raw.get("port", 0)
    # bool is an int to Python, not to JSON
    if type(port) is not int or not 0 <= port <= MAX_PORT:
        raise UsageError(f"'port' must be an integer from 0 to {MAX_PORT}")
    return Offer(Pointer.from_json(raw["pointer"]), port, parse_holders(raw.get("holders")),
                 raw.get("share") is True)


def parse_holders(raw: object) -> tuple[Endpoint, ...]:
    """The holders an offer names: ``[host, port]`` pairs, host an IPv4 or IPv6 literal
    (never a name: a push must not make this node resolve names someone chose) and port
    1-65535, distinct, the first ``propagation.PUSHED_HOLDERS``. Anything else is dropped,
    not refused: the pointer beside it is signed and worth keeping, and an older sender names
    none. Loopback and private addresses are kept: test networks run on them, and a
    forwarded push is only a signed pointer to an address that announced itself a holder."""
    if not isinstance(raw, list):
        return ()
    found: dict[Endpoint, None] = {}
    for entry in raw[:propagation.PUSHED_HOLDERS]:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                and type(entry[1]) is int and 0 < entry[1] <= MAX_PORT):
            continue
        try:
            host = str(ipaddress.ip_address(entry[0]))
        except ValueError:
            continue
        found[(host, entry[1])] = None
    return tuple(found)


def parse_help(body: bytes) -> str:
    """The canonical site id a ``POST /peerweb/v1/help`` body asks to mirror."""
    site_id = parse_object(body).get("site_id")
    if not isinstance(site_id, str):
        raise UsageError("needs a JSON body with 'site_id'")
    return normalise_site_id(site_id)  # BadAddress is a UsageError


def dns_type(text: str) -> int:
    """A record type's number from its mnemonic (``A``, ``TXT``), 0 if unknown."""
    try:
        return int(dns.rdatatype.from_text(text[:16]))
    except (ValueError, dns.rdatatype.UnknownRdatatype):
        return 0


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise TooLarge(f"the body is larger than {MAX_BODY} bytes") from None


def make_app(node: Node) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)

    async def offer(request: web.Request) -> web.Response:
        # Before reading or verifying anything: a flood costs a dictionary lookup each.
        wait = node.admit_push(request.remote or "")
        if wait:
            return web.json_response({"error": "too many pushes from this address"},
                                     status=429,
                                     headers={"Retry-After": str(max(1, round(wait)))})
        try:
            offered = parse_offer(await _body(request))
        except TooLarge as exc:
            return _error(exc.http_status, str(exc))
        except (UsageError, ForgedPointer) as exc:  # a forgery here is the sender's fault
            log.warning("refused a pointer from %s: %s", request.remote, exc)
            what = "not a validly signed pointer" if isinstance(exc, ForgedPointer) \
                else "not a pointer offer"
            return _error(400, f"{what}: {exc}")
        sender = (request.remote or "", offered.port) if offered.port else None
        accepted = node.accept_pointer(offered.pointer, source=sender, unsolicited=True,
                                       holders=offered.holders, planned=offered.share)
        return web.json_response({"accepted": accepted})

    async def current(request: web.Request) -> web.Response:
        try:
            site_id = normalise_site_id(request.match_info["site_id"])
        except BadAddress as exc:
            return _error(400, str(exc))
        record = node.state.sites.get(site_id)
        if record is None:
            return _error(404, "unknown site")
        asked = request.query.get("version")
        if asked is not None:
            # An older version's signed pointer, kept in the site's history: what
            # `peerweb restore --version N` needs to find and trust that version.
            older = next((e.pointer for e in record.history
                          if str(e.version) == asked and e.pointer is not None), None)
            if older is None:
                return _error(404, "that version's pointer is not kept here")
            return web.json_response({"pointer": older.to_json()})
        return web.json_response({"pointer": record.pointer.to_json()})

    async def proof(request: web.Request) -> web.Response:
        # A backup's owner checks that this node holds a snapshot: the bytes of the pieces
        # it names, as on disk (node.backups); it checks them against the torrent itself.
        try:
            raw = parse_object(await _body(request))
            tid = raw.get("infohash")
            if not isinstance(tid, str):
                raise UsageError("needs a JSON body with 'infohash' and 'pieces'")
            data = await node.backups.answer(tid.lower(), raw.get("pieces"),
                                             request.remote or "")
        except PeerwebError as exc:
            return _error(exc.http_status, str(exc))
        return web.Response(body=data, content_type="application/octet-stream")

    async def help_wanted(request: web.Request) -> web.Response:
        if not node.config.volunteer:
            return _error(404, "not a volunteer")
        try:
            site_id = parse_help(await _body(request))
            pointer = await node.mirror(site_id, requester=request.remote or "")
        except PeerwebError as exc:
            return _error(exc.http_status, str(exc))
        return web.json_response({"site_id": site_id, "version": pointer.version})

    async def load(_request: web.Request) -> web.Response:
        if not node.config.volunteer:
            return _error(404, "not a volunteer")
        return web.json_response(await node.load_report())

    webcache_peer.add_routes(app, node)
    async def rrset(request: web.Request) -> web.Response:
        # A validated DNS answer with its proof (peerweb.dns.dnssec), for a node whose DNS
        # upstreams fail; the asker checks it against its own anchors.
        qtype = dns_type(request.match_info["qtype"])
        proof = node.dns.proof_for(request.match_info["qname"], qtype) if qtype else None
        if proof is None:
            return _error(404, "no such RRset held")
        return web.Response(body=proof, content_type="application/dns-message")

    app.router.add_get(RRSET_PATH + "/{qname}/{qtype}", rrset)
    app.router.add_post(HELP_PATH, help_wanted)
    app.router.add_post(PROOF_PATH, proof)
    app.router.add_get(LOAD_PATH, load)
    app.router.add_post(POINTER_PATH, offer)
    app.router.add_get(POINTER_PATH + "/{site_id}", current)
    return app
