"""When an origin hands visitors to the swarm: load measurement and a hysteresis policy.

Pure: every method takes ``now`` (seconds, monotonic), so the policy is tested without
sleeping. The origin server (origin.py) feeds it what it sees: requests in flight, bytes it
sent, how long the upstream took and whether it failed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum


class Mode(Enum):
    NORMAL = "normal"
    HANDOFF = "handing off"


@dataclass
class Rate:
    """An exponentially weighted rate (units per second) with time constant ``tau``."""

    tau: float = 2.0
    value: float = 0.0
    _last: float | None = None
    _pending: float = 0.0

    def add(self, amount: float, now: float) -> None:
        self._decay(now)
        self._pending += amount

    def read(self, now: float) -> float:
        self._decay(now)
        return self.value

    def _decay(self, now: float) -> None:
        if self._last is None:
            self._last = now
            return
        elapsed = now - self._last
        if elapsed <= 0:
            return
        # The bytes that arrived since the last update count as a rate over that interval.
        weight = 1.0 - math.exp(-elapsed / self.tau)
        self.value += weight * (self._pending / elapsed - self.value)
        self._pending = 0.0
        self._last = now


@dataclass(frozen=True)
class Thresholds:
    capacity: float
    """Egress the origin can afford, bytes per second."""
    max_in_flight: int = 64
    """Upstream requests in flight that count as overload on their own."""
    slow_upstream: float = 2.0
    """Seconds of (smoothed) upstream latency that count as overload."""
    enter_share: float = 0.8
    """Hand off above this share of capacity..."""
    leave_share: float = 0.4
    """...and take visitors back below this one (the gap keeps it from flapping)."""
    enter_after: float = 0.5
    """Seconds the overload must last before handing off. Static requests wait (held, counted
    as load) while it lasts, so every visitor pays it; the gap between the two shares and the
    longer ``leave_after`` are what keep the mode from flapping. 0.5 s rather than 1 s: p95
    page time in bench/origin_handoff.py 5.7 -> 4.5 s."""
    leave_after: float = 5.0
    """Seconds the calm must last before taking visitors back."""


@dataclass
class LoadPolicy:
    """Decides the mode from measured load, with hysteresis in level and in time."""

    limits: Thresholds
    mode: Mode = Mode.NORMAL
    egress: Rate = field(default_factory=Rate)
    latency: float = 0.0
    in_flight: int = 0
    held: int = 0
    """Requests for static files held back while a hand-off is about to start."""
    errors: Rate = field(default_factory=Rate)
    redirects: Rate = field(default_factory=Rate)
    """Requests per second handed off (``redirected``)."""
    handed_off: int = 0
    passed: int = 0
    _since: float | None = None
    changes: int = 0
    total_sent: int = 0

    def started(self) -> None:
        self.in_flight += 1

    def finished(self, seconds: float, failed: bool, now: float) -> None:
        """A request is over; its bytes were counted by ``sent`` as they went out."""
        self.in_flight = max(0, self.in_flight - 1)
        self.latency += 0.2 * (seconds - self.latency)
        if failed:
            self.errors.add(1, now)

    def sent(self, amount: int, now: float) -> None:
        """Bytes sent by a response still streaming (counted as they go)."""
        self.egress.add(amount, now)
        self.total_sent += amount

    def overloaded(self, now: float) -> bool:
        rate = self.egress.read(now)
        return (rate > self.limits.enter_share * self.limits.capacity
                or self.in_flight + self.held > self.limits.max_in_flight
                or self.latency > self.limits.slow_upstream)

    def strained(self, now: float) -> bool:
        """Past the level that ends a hand-off: time to line up mirrors, in case."""
        return (self.mode is Mode.HANDOFF
                or self.egress.read(now) > self.limits.leave_share * self.limits.capacity
                or self.in_flight + self.held > self.limits.max_in_flight // 2)

    def redirected(self, now: float) -> None:
        """A request was handed to the swarm (or a mirror) instead of answered here."""
        self.handed_off += 1
        self.redirects.add(1, now)

    def taken_back(self, now: float) -> float:
        """Bytes/s the requests now handed off would cost if answered here again: their
        rate times the mean bytes of a request this origin answered."""
        return self.redirects.read(now) * self.total_sent / max(1, self.passed)

    def calm(self, now: float) -> bool:
        """Load low enough to answer every request here again, counting the requests
        handed off (without them a hand-off always looks calm, since it is what removes
        the load: the origin took a crowd back every 5.5 s and lost it again each time,
        docs/simulator.md)."""
        return (self.egress.read(now) + self.taken_back(now)
                < self.limits.leave_share * self.limits.capacity
                and self.in_flight + self.held <= self.limits.max_in_flight // 2
                and self.latency < self.limits.slow_upstream / 2)

    def update(self, now: float) -> Mode:
        """The mode to serve in now; flips only after the condition held long enough."""
        wanted = self.overloaded(now) if self.mode is Mode.NORMAL else self.calm(now)
        if not wanted:
            self._since = None
            return self.mode
        if self._since is None:
            self._since = now
        wait = self.limits.enter_after if self.mode is Mode.NORMAL else self.limits.leave_after
        if now - self._since >= wait:
            self.mode = Mode.HANDOFF if self.mode is Mode.NORMAL else Mode.NORMAL
            self._since = None
            self.changes += 1
        return self.mode

    def over_capacity(self, now: float) -> bool:
        """Even dynamic requests must wait: the egress is at the full capacity."""
        return self.egress.read(now) >= self.limits.capacity

    def snapshot(self, now: float) -> dict[str, object]:
        return {"mode": self.mode.value, "egress_bytes_per_s": round(self.egress.read(now)),
                "capacity_bytes_per_s": self.limits.capacity, "in_flight": self.in_flight,
                "upstream_latency_s": round(self.latency, 3),
                "errors_per_s": round(self.errors.read(now), 3),
                "handed_off": self.handed_off, "passed_through": self.passed,
                "bytes_sent": self.total_sent,
                "mode_changes": self.changes}


class Action(Enum):
    PASS = "pass"
    REDIRECT = "redirect"
    BUSY = "busy"
    HOLD = "hold"
    """Ask again shortly: a hand-off is about to start (or has no mirror yet), and sending
    the request upstream now would queue it behind the overload."""


@dataclass(frozen=True)
class Decision:
    action: Action
    location: str = ""


# A visitor whose browser (or extension) runs a peerweb node may name its gateway here.
GATEWAY_HEADER = "X-Peerweb-Gateway"
RETRY_AFTER = 5


@dataclass
class Handoff:
    """What to do with one request: the shared core of the origin proxy and the middleware.

    ``is_static(path)`` says whether a path is a file the site published; ``mirrors`` are
    base URLs that serve the site (round-robin)."""

    policy: LoadPolicy
    is_static: Callable[[str], bool]
    site_id: str | None = None
    mirrors: list[str] = field(default_factory=list)
    sent_to: dict[str, int] = field(default_factory=dict)
    """How many requests went to each mirror (visitors' own gateways count as one)."""
    _turn: int = 0

    def decide(self, method: str, path: str, visitor_gateway: str, now: float,
               answer_here: bool = False, can_hold: bool = False) -> Decision:
        """``answer_here``: the visitor's verifying worker asks the origin itself (no mirror
        could deliver), so the request is never redirected. ``can_hold``: the caller can
        wait and ask again (HOLD) instead of passing a static request upstream while a
        hand-off is pending."""
        mode = self.policy.update(now)
        static = not answer_here and method in ("GET", "HEAD") and self.is_static(path)
        if mode is Mode.HANDOFF and static:
            target, where = self._target(path, visitor_gateway)
            if target is not None:
                self.policy.redirected(now)
                self.sent_to[where] = self.sent_to.get(where, 0) + 1
                return Decision(Action.REDIRECT, target)
        if can_hold and static and (mode is Mode.HANDOFF or self.policy.overloaded(now)):
            return Decision(Action.HOLD)
        if mode is Mode.HANDOFF and self.policy.over_capacity(now):
            return Decision(Action.BUSY)
        self.policy.passed += 1
        return Decision(Action.PASS)

    def _target(self, path: str, visitor_gateway: str) -> tuple[str | None, str]:
        if self.site_id and visitor_gateway.startswith(("http://127.0.0.1:",
                                                        "http://localhost:")):
            return f"{visitor_gateway.rstrip('/')}/s/{self.site_id}{path}", "visitors' gateways"
        if self.mirrors:
            self._turn += 1
            mirror = self.mirrors[self._turn % len(self.mirrors)].rstrip("/")
            return f"{mirror}{path}", mirror
        return None, ""
