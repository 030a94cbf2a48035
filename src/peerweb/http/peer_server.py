"""The peer port, server half: nodes that hold a site hand each other its signed pointer over HTTP.

``POST /peerweb/v1/pointer`` offers a pointer (JSON, as in the state file); the receiver
verifies the signature, keeps it only if it is newer, and then forwards it (see
propagation.py). ``GET /peerweb/v1/pointer/<site-id>`` returns the newest pointer a node
holds, so a site stays resolvable from its holders while the publisher is offline and the
DHT item has expired. Nothing unsigned is ever accepted, so this port can face the network;
pushes are rate-limited per source address (429) and kept only for sites the node knows
(``policy.admission``), and a volunteer bounds the help it gives (``Node.mirror``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from ..content.identity import normalise_site_id
from ..content.pointer import Pointer
from ..errors import BadAddress, ForgedPointer, PeerwebError, TooLarge, UsageError
from .peer_client import HELP_PATH, LOAD_PATH, POINTER_PATH

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
    return Offer(Pointer.from_json(raw["pointer"]), port)


def parse_help(body: bytes) -> str:
    """The canonical site id a ``POST /peerweb/v1/help`` body asks to mirror."""
    site_id = parse_object(body).get("site_id")
    if not isinstance(site_id, str):
        raise UsageError("needs a JSON body with 'site_id'")
    return normalise_site_id(site_id)  # BadAddress is a UsageError


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
        accepted = node.accept_pointer(offered.pointer, source=sender, unsolicited=True)
        return web.json_response({"accepted": accepted})

    async def current(request: web.Request) -> web.Response:
        try:
            site_id = normalise_site_id(request.match_info["site_id"])
        except BadAddress as exc:
            return _error(400, str(exc))
        record = node.state.sites.get(site_id)
        if record is None:
            return _error(404, "unknown site")
        return web.json_response({"pointer": record.pointer.to_json()})

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

    app.router.add_post(HELP_PATH, help_wanted)
    app.router.add_get(LOAD_PATH, load)
    app.router.add_post(POINTER_PATH, offer)
    app.router.add_get(POINTER_PATH + "/{site_id}", current)
    return app
