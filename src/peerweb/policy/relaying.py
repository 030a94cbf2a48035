"""What a relay agrees to forward, for whom, and for how long.

A relay is a reachable node that opens a connection on behalf of a peer that cannot (a
broken path, a NAT) and copies bytes both ways. It must not become a way into someone's
network or a free proxy for strangers, so every circuit passes three checks, in order:

1. the destination (``Destinations``): an IP literal (never a name: the relay resolves
   nothing a stranger chose), not loopback, private (RFC 1918, RFC 4193), link-local,
   multicast, unspecified or otherwise non-global, unless an operator allowed a range
   explicitly; and a port the relay allows;
2. the requester's share (``RelayLimits.per_peer``) and the relay's total;
3. while it runs, the circuit's bytes and age (``Circuit.over``).

Ranges that can never be allowed, whatever the configuration: loopback, link-local,
RFC 1918 and RFC 4193 private space, multicast and unspecified addresses. A test bed whose
"public" hosts live in 198.18.0.0/15 (RFC 2544, not global) allows that range explicitly.
A NATed node may hold a *reservation*: the relay then reaches it through the connection it
keeps open, for the ports it named, instead of dialling (which would fail at its NAT).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..errors import UsageError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NEVER = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
    "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32",
    "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8"))
"""Ranges a relay refuses whatever it is told (its own machine and private networks)."""

DEFAULT_PORTS = ((80, 80), (443, 443), (1024, 65535))
"""HTTP, HTTPS and unprivileged ports (where BitTorrent peers and peer ports listen); never
SSH, SMTP and the other services below 1024."""


@dataclass(frozen=True)
class Refusal:
    """Why a circuit was refused: ``status`` as an HTTP status code, ``reason`` for a human."""

    status: int
    reason: str


@dataclass(frozen=True)
class Destinations:
    """Where a relay forwards to."""

    extra: tuple[IPNetwork, ...] = ()
    """Non-global ranges allowed anyway (a test bed's 198.18.0.0/15); never one of NEVER."""
    ports: tuple[tuple[int, int], ...] = DEFAULT_PORTS
    """Inclusive port ranges allowed."""

    @classmethod
    def parse(cls, extra: tuple[str, ...] = (), ports: tuple[tuple[int, int], ...] = DEFAULT_PORTS
              ) -> Destinations:
        nets = []
        for text in extra:
            try:
                net = ipaddress.ip_network(text, strict=False)
            except ValueError as exc:
                raise UsageError(f"bad relay range {text!r}: {exc}") from None
            if any(net.overlaps(n) for n in NEVER if n.version == net.version):
                raise UsageError(f"a relay never forwards into {net}: it overlaps loopback, "
                                 "private, link-local or multicast space")
            nets.append(net)
        for low, high in ports:
            if not 1 <= low <= high <= 65535:
                raise UsageError(f"bad relay port range {low}-{high}")
        return cls(tuple(nets), ports)

    def refuse(self, host: str, port: int) -> Refusal | None:
        """None if a circuit to ``host``:``port`` is allowed, else why not."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return Refusal(400, "a relay forwards to IP addresses only, not names")
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if any(address in n for n in NEVER if n.version == address.version):
            return Refusal(403, f"{address} is loopback, private, link-local or multicast")
        if not address.is_global and not any(address in n for n in self.extra
                                             if n.version == address.version):
            return Refusal(403, f"{address} is not a public address")
        if not any(low <= port <= high for low, high in self.ports):
            return Refusal(403, f"port {port} is not one this relay forwards to")
        return None


@dataclass(frozen=True)
class RelayLimits:
    """How much a relay gives. libp2p's circuit relay v2 caps a relayed connection at 2
    minutes and 128 KiB by default; a site's pages and pieces need more, so the bytes are
    larger here and every other bound is kept."""

    circuits: int = 32
    """Circuits open at once, from everyone."""
    per_peer: int = 4
    """Circuits one requester address may hold at once."""
    max_bytes: int = 64 * 1024 * 1024
    """Bytes one circuit may carry (both directions together) before it is closed."""
    max_age: float = 120.0
    """Seconds a circuit may stay open."""
    idle: float = 30.0
    """Seconds a circuit may carry nothing before it is closed."""
    reservations: int = 64
    """NATed nodes that may keep a reservation at once (``per_peer`` per address)."""
    reservation_ttl: float = 15 * 60.0
    """A reservation is dropped this long after it was made unless renewed."""

    def __post_init__(self) -> None:
        if min(self.circuits, self.per_peer, self.max_bytes, self.reservations) < 1 or \
                min(self.max_age, self.idle, self.reservation_ttl) <= 0:
            raise UsageError("relay limits must be positive")


@dataclass
class Circuit:
    """One forwarded connection, as the relay accounts for it."""

    peer: str
    """The requester's address."""
    destination: tuple[str, int]
    opened: float
    via_reservation: bool = False
    sent: int = 0
    """Bytes copied, both directions."""
    last_activity: float = 0.0

    def carried(self, count: int, now: float) -> None:
        self.sent += count
        self.last_activity = now

    def over(self, limits: RelayLimits, now: float) -> str | None:
        """Why the circuit must end now, or None."""
        if self.sent >= limits.max_bytes:
            return f"carried its {limits.max_bytes} bytes"
        if now - self.opened >= limits.max_age:
            return f"open for {limits.max_age:.0f} s"
        if now - max(self.last_activity, self.opened) >= limits.idle:
            return f"idle for {limits.idle:.0f} s"
        return None


@dataclass(frozen=True, eq=False)
class Reservation:
    """A NATed node reachable through the connection it keeps open to the relay."""

    address: str
    """The address the relay sees it come from (its NAT's)."""
    ports: tuple[int, ...]
    """The ports others know it by (its swarm and peer ports, as announced)."""
    made: float


@dataclass
class RelayBook:
    """The circuits and reservations of one relay: admissions, accounting and status."""

    destinations: Destinations = field(default_factory=Destinations)
    limits: RelayLimits = field(default_factory=RelayLimits)
    circuits: list[Circuit] = field(default_factory=list)
    reservations: dict[tuple[str, int], Reservation] = field(default_factory=dict)
    """By (address, port): every port a reservation names."""
    refused: int = 0
    relayed_bytes: int = 0

    def reserved(self, host: str, port: int, now: float) -> bool:
        """Whether ``host``:``port`` is reached through a reservation."""
        found = self.reservations.get((host, port))
        return found is not None and now - found.made < self.limits.reservation_ttl

    def admit(self, peer: str, host: str, port: int, now: float) -> Circuit | Refusal:
        """A new circuit from ``peer`` to ``host``:``port``, or why not. A reserved
        destination is allowed whatever its range: its owner asked to be reached."""
        self.expire(now)
        through = self.reserved(host, port, now)
        refusal = None if through else self.destinations.refuse(host, port)
        if refusal is None and len(self.circuits) >= self.limits.circuits:
            refusal = Refusal(503, "this relay carries as many circuits as it allows")
        if refusal is None and sum(c.peer == peer for c in self.circuits) >= \
                self.limits.per_peer:
            refusal = Refusal(429, f"{peer} already holds {self.limits.per_peer} circuits")
        if refusal is not None:
            self.refused += 1
            return refusal
        circuit = Circuit(peer, (host, port), now, through, last_activity=now)
        self.circuits.append(circuit)
        return circuit

    def close(self, circuit: Circuit) -> None:
        if circuit in self.circuits:
            self.circuits.remove(circuit)
            self.relayed_bytes += circuit.sent

    def reserve(self, address: str, ports: tuple[int, ...], now: float) -> Reservation | Refusal:
        """Keep a NATed node at ``address`` reachable on ``ports`` (several nodes behind one
        NAT share its address: each reserves its own ports, ``per_peer`` at most)."""
        self.expire(now)
        if not ports or len(ports) > 4 or not all(1 <= p <= 65535 for p in ports):
            return Refusal(400, "a reservation names 1 to 4 ports")
        held = self._held()
        replaced = {r for r in held if r.address == address and set(r.ports) & set(ports)}
        mine = {r for r in held if r.address == address} - replaced
        if len(held) - len(replaced) >= self.limits.reservations or \
                len(mine) >= self.limits.per_peer:
            self.refused += 1
            return Refusal(503, "this relay holds as many reservations as it allows")
        for r in replaced:
            self.unreserve(r)
        made = Reservation(address, ports, now)
        for port in ports:
            self.reservations[(address, port)] = made
        return made

    def unreserve(self, reservation: Reservation) -> None:
        for port in reservation.ports:
            if self.reservations.get((reservation.address, port)) is reservation:
                del self.reservations[(reservation.address, port)]

    def _held(self) -> set[Reservation]:
        return set(self.reservations.values())

    def expire(self, now: float) -> None:
        ttl = self.limits.reservation_ttl
        for r in self._held():
            if now - r.made >= ttl:
                self.unreserve(r)

    def status(self, now: float) -> dict[str, object]:
        """Whom the relay relays for, for ``status`` and the dashboard."""
        return {
            "circuits": [{"for": c.peer, "to": f"{c.destination[0]}:{c.destination[1]}",
                          "bytes": c.sent, "age": round(now - c.opened, 1),
                          "reserved": c.via_reservation} for c in self.circuits],
            "reservations": [{"for": r.address, "ports": list(r.ports),
                              "age": round(now - r.made, 1)}
                             for r in sorted(self._held(), key=lambda r: r.made)],
            "refused": self.refused,
            "relayed_bytes": self.relayed_bytes + sum(c.sent for c in self.circuits),
            "limits": {"circuits": self.limits.circuits, "per_peer": self.limits.per_peer,
                       "max_bytes": self.limits.max_bytes, "max_age": self.limits.max_age},
        }
