"""Whether this node can be reached from outside, and what NAT it is behind, from what
peers tell it. Nothing is probed here: the node feeds in what it heard and asks at ``now``.

Evidence, strongest first:

- a *dial-back*: a peer asked to open a connection to our port says whether it could
  (``Dialback``); one success proves reachability, failures from two peers disprove it;
- an incoming connection from a peer outside our own addresses (``incoming``);
- *sightings*: the address (and, when the peer can tell, the port) a peer saw our connection
  come from (libtorrent's external-IP votes from BEP 10 ``yourip`` and the DHT, or the peer
  port's ``whoami``). An address that is not one of ours means a NAT; two peers that saw
  connections from the *same local port* arrive from the same external port mean an
  endpoint-independent mapping (hole punching can work), from different ports an
  endpoint-dependent ("symmetric") one (punching fails: relay).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

WINDOW = 10 * 60.0
"""Evidence older than this is forgotten: a laptop moves, a router reboots."""
DISPROOF = 2
"""Failed dial-backs from this many distinct peers (and no success) make a node unreachable."""


@dataclass(frozen=True)
class Sighting:
    """A peer's report of the address it saw us at."""

    reporter: str
    """The reporting peer's address."""
    address: str
    """Our address as it saw it."""
    port: int | None
    """Our port as it saw it (None when the report has no port: ``yourip``, DHT votes)."""
    local_port: int | None
    """The local port our connection left from, when we chose it (None: ephemeral)."""
    at: float


@dataclass(frozen=True)
class Dialback:
    """A peer's attempt to connect back to us."""

    reporter: str
    port: int
    ok: bool
    at: float


@dataclass(frozen=True)
class Reachability:
    """What the node concludes; shown in ``status`` and the dashboard."""

    reachable: bool | None
    """True: strangers can connect to it; False: they cannot (it should hold a relay
    reservation); None: not known yet."""
    external: str | None
    """The address peers see it at, when any said."""
    nat: str
    """``none``, ``endpoint-independent``, ``endpoint-dependent``, ``nat`` (mapping not
    known yet) or ``unknown``."""
    reason: str
    """The evidence, in a few words."""

    @property
    def punchable(self) -> bool:
        """Whether a hole punch is worth trying towards or from it."""
        return self.nat in ("none", "endpoint-independent", "nat")

    def to_json(self) -> dict[str, object]:
        return {"reachable": self.reachable, "external": self.external, "nat": self.nat,
                "reason": self.reason}


def assess(local: Iterable[str], sightings: Sequence[Sighting], dialbacks: Sequence[Dialback],
           incoming: Sequence[tuple[str, float]], now: float,
           window: float = WINDOW, disproof: int = DISPROOF) -> Reachability:
    """Reachability from the evidence of the last ``window`` seconds; ``local``: this
    node's own addresses; ``incoming``: (peer address, time) of connections it accepted."""
    mine = set(local)
    seen = [s for s in sightings if now - s.at <= window]
    backs = [d for d in dialbacks if now - d.at <= window]
    strangers = {a for a, at in incoming if now - at <= window and a not in mine}

    votes = Counter(s.address for s in {(s.reporter, s.address): s for s in seen}.values())
    external = votes.most_common(1)[0][0] if votes else None
    nat = "unknown"
    if external is not None:
        nat = "none" if external in mine else _mapping(seen, external)

    ok = {d.reporter for d in backs if d.ok}
    failed = {d.reporter for d in backs if not d.ok}
    if ok:
        return Reachability(True, external, nat, f"{len(ok)} peer(s) connected back")
    if strangers:
        return Reachability(True, external, nat,
                            f"accepted connections from {len(strangers)} outside peer(s)")
    if len(failed) >= disproof:
        return Reachability(False, external, nat,
                            f"{len(failed)} peers could not connect back")
    if nat in ("endpoint-independent", "endpoint-dependent", "nat"):
        return Reachability(None, external, nat, "behind a NAT; no dial-back yet")
    return Reachability(None, external, nat, "not enough reports yet")


def _mapping(seen: Sequence[Sighting], external: str) -> str:
    """The NAT's mapping behaviour from sightings of one local port by distinct peers."""
    by_local: dict[int, dict[str, int]] = {}
    for s in seen:
        if s.address == external and s.port is not None and s.local_port is not None:
            by_local.setdefault(s.local_port, {})[s.reporter] = s.port
    verdict = "nat"
    for ports in by_local.values():
        if len(ports) < 2:
            continue
        if len(set(ports.values())) > 1:
            return "endpoint-dependent"  # one counter-example settles it
        verdict = "endpoint-independent"
    return verdict
