"""A test bed of hosts behind ISPs and NATs, built from Linux network namespaces.

``with NetBed(isps=("public", "cone", "symmetric", "firewall"), hosts_per_isp=3) as bed:``
gives 12 hosts behind 4 "ISPs". Everything lives in namespaces the bed creates (their names
start with a prefix unique to the run); nothing touches the host's own interfaces, and
``close()`` (also on an exception inside the ``with``) kills the processes it started and
deletes every namespace it made. Needs root, ``ip`` (iproute2) and ``nft`` (nftables)::

    core       one bridge: "the internet" between the ISPs' routers
    isp<k>     a router: ``wan`` 198.18.0.<10+k> on the core bridge, ``lan`` a bridge of
               its hosts; nftables NAT on ``wan`` by the ISP's kind
    h<n>       a host: ``eth0`` on its ISP's lan, default route through the router

The "public" addresses are in 198.18.0.0/15 (RFC 2544's benchmarking range), so that
code refusing private ranges (RFC 1918) still refuses the NATed hosts' 10.x addresses;
tests tell a relay to allow ``PUBLIC_RANGE`` explicitly.

ISP kinds (what a host behind it looks like from outside):

  public     the host's own address is public and accepts connections
  firewall   public address, but a stateful firewall drops connections from outside
  cone       NAT, ``masquerade`` (Linux keeps the source port when it can: the same
             external port for every destination, endpoint-independent mapping); replies
             pass only from the address and port written to (conntrack filtering)
  symmetric  NAT, ``masquerade random``: a fresh random external port per destination,
             so a port learned through one peer is useless to another (punching fails)

Two more kinds, not in the default bed (the NAT-pair matrix of bench/relay.py uses them),
emulated with a DNAT of ports 1024-65535 to the ISP's *first* host (so give them one host):

  fullcone    ``cone`` mapping, endpoint-independent filtering: anyone may send to a mapped
              port (approximated: to any port >= 1024, as with ports forwarded by UPnP)
  restricted  ``cone`` mapping, address-dependent filtering: only addresses the inside has
              sent to may send in, from any of their ports (a dynamic nftables set)

``cut(a, b)`` drops every packet between two hosts while traffic flows (an nftables set in
each host's namespace holding the other's external address; for a NATed host that is its
router's address, so the cut also separates it from the other's ISP neighbours); ``mend``
restores it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

KINDS = ("public", "firewall", "cone", "symmetric")
"""The default bed's kinds."""
EXTRA_KINDS = ("fullcone", "restricted")
ALL_KINDS = KINDS + EXTRA_KINDS
NAT_KINDS = ("cone", "symmetric", "fullcone", "restricted")
PUBLIC_RANGE = "198.18.0.0/15"
"""Where the bed's public addresses come from (RFC 2544)."""
CORE_NET = "198.18.0"
COMMAND_TIMEOUT = 20.0


class BedUnavailable(RuntimeError):
    """This machine cannot build a bed (not root, no ip/nft, no namespaces)."""


@dataclass(frozen=True)
class Host:
    """One emulated host."""

    name: str
    """Short name, ``h0`` .. ``h<N-1>``."""
    ns: str
    """Its network namespace."""
    isp: int
    """Index of its ISP."""
    kind: str
    """Its ISP's kind (one of ``KINDS``)."""
    address: str
    """Its own address (on eth0)."""
    external: str
    """The address others see its packets come from (its router's for a NATed host)."""

    @property
    def nated(self) -> bool:
        return self.kind in NAT_KINDS

    @property
    def reachable(self) -> bool:
        """Whether a stranger can open a connection to it."""
        return self.kind == "public"


def unavailable_reason() -> str | None:
    """Why no bed can be built here, or None if one can."""
    if os.geteuid() != 0:
        return "the network test bed needs root (network namespaces, nftables)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"the network test bed needs `{tool}` (run tests/setup.sh)"
    probe = f"pwprobe{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, timeout=10)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.decode().strip()}"
    try:
        nft = subprocess.run(["ip", "netns", "exec", probe, "nft", "add", "table", "ip", "t"],
                             capture_output=True, timeout=10)
        if nft.returncode != 0:
            return f"nftables does not work in a namespace: {nft.stderr.decode().strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    return None


def _run(argv: Sequence[str], stdin: str | None = None) -> str:
    done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


class NetBed:
    """Namespaces, links and NATs of a bed; see the module docstring."""

    def __init__(self, isps: Sequence[str] = KINDS, hosts_per_isp: int = 3,
                 prefix: str | None = None) -> None:
        for kind in isps:
            if kind not in ALL_KINDS:
                raise ValueError(f"unknown ISP kind {kind!r}; one of {', '.join(ALL_KINDS)}")
        if not 1 <= len(isps) <= 50 or not 1 <= hosts_per_isp <= 200:
            raise ValueError("1-50 ISPs of 1-200 hosts")
        self.kinds = tuple(isps)
        self.hosts_per_isp = hosts_per_isp
        self.prefix = prefix or f"pwb{secrets.token_hex(3)}"
        self.hosts: list[Host] = []
        self.namespaces: list[str] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._cuts: set[tuple[str, str]] = set()

    # -- building --------------------------------------------------------------------------

    def __enter__(self) -> NetBed:
        try:
            self.build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _ns(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def _add_ns(self, role: str) -> str:
        ns = self._ns(role)
        _run(["ip", "netns", "add", ns])
        self.namespaces.append(ns)
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        return ns

    def build(self) -> None:
        core = self._add_ns("core")
        ip = ["ip", "-n", core]
        _run([*ip, "link", "add", "br0", "type", "bridge"])
        _run([*ip, "link", "set", "br0", "up"])
        for k, kind in enumerate(self.kinds):
            router = self._add_ns(f"isp{k}")
            wan = self.router_address(k)
            _run([*ip, "link", "add", f"u{k}", "type", "veth", "peer", "name", "wan",
                  "netns", router])
            _run([*ip, "link", "set", f"u{k}", "master", "br0", "up"])
            r = ["ip", "-n", router]
            _run([*r, "addr", "add", f"{wan}/24", "dev", "wan"])
            _run([*r, "link", "set", "wan", "up"])
            _run([*r, "link", "add", "lan", "type", "bridge"])
            _run([*r, "addr", "add", f"{self._lan_prefix(k)}.1/24", "dev", "lan"])
            _run([*r, "link", "set", "lan", "up"])
            _run(["ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
            for i in range(self.hosts_per_isp):
                self._add_host(k, kind, router, i)
            _run(["ip", "netns", "exec", router, "nft", "-f", "-"],
                 stdin=self._router_rules(kind, f"{self._lan_prefix(k)}.10"))
        # Routers reach each other's public host subnets across the core bridge.
        for k in range(len(self.kinds)):
            for j, other in enumerate(self.kinds):
                if j != k and other not in NAT_KINDS:
                    _run(["ip", "-n", self._ns(f"isp{k}"), "route", "add",
                          f"{self._lan_prefix(j)}.0/24", "via", self.router_address(j)])

    def _add_host(self, k: int, kind: str, router: str, i: int) -> None:
        n = len(self.hosts)
        ns = self._add_ns(f"h{n}")
        address = f"{self._lan_prefix(k)}.{10 + i}"
        _run(["ip", "-n", router, "link", "add", f"h{n}", "type", "veth", "peer", "name",
              "eth0", "netns", ns])
        _run(["ip", "-n", router, "link", "set", f"h{n}", "master", "lan", "up"])
        _run(["ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0"])
        _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        _run(["ip", "-n", ns, "route", "add", "default", "via", f"{self._lan_prefix(k)}.1"])
        # The cut set, empty until cut(): packets to or from its members are dropped.
        _run(["ip", "netns", "exec", ns, "nft", "-f", "-"], stdin=(
            "table inet pwcut {\n"
            "  set blocked { type ipv4_addr; }\n"
            "  chain out { type filter hook output priority 0; ip daddr @blocked drop; }\n"
            "  chain in { type filter hook input priority 0; ip saddr @blocked drop; }\n"
            "}\n"))
        external = address if kind not in NAT_KINDS else self.router_address(k)
        self.hosts.append(Host(f"h{n}", ns, k, kind, address, external))

    @staticmethod
    def router_address(k: int) -> str:
        return f"{CORE_NET}.{10 + k}"

    def _lan_prefix(self, k: int) -> str:
        # Public ISPs hand out 198.18.<k+1>.x; NATs use 10.<k+1>.0.x behind one address.
        return f"198.18.{k + 1}" if self.kinds[k] not in NAT_KINDS else f"10.{k + 1}.0"

    @staticmethod
    def _router_rules(kind: str, first_host: str) -> str:
        forward = pre = ""
        if kind in EXTRA_KINDS:
            # Inbound to a port >= 1024 goes to the first host: from anyone (fullcone) or
            # only from addresses it has sent to (restricted, remembered for 10 minutes).
            ipaddress.IPv4Address(first_host)
            known = "ip saddr @contacted " if kind == "restricted" else ""
            pre = ("  set contacted { type ipv4_addr; size 65535; flags dynamic,timeout;\n"
                   "    timeout 10m; }\n"
                   "  chain pre { type nat hook prerouting priority -100;\n"
                   f"    iifname \"wan\" {known}meta l4proto {{ tcp, udp }} "
                   f"th dport 1024-65535 dnat to {first_host}; }}\n")
        if kind != "public":
            # Only replies and what the inside started come in from the internet (and,
            # for the two kinds above, what their DNAT lets in).
            forward = ("  chain forward { type filter hook forward priority 0; policy accept;\n"
                       + ("    oifname \"wan\" update @contacted { ip daddr };\n"
                          if kind in EXTRA_KINDS else "")
                       + "    iifname \"wan\" ct state established,related accept;\n"
                       + ("    iifname \"wan\" ct status dnat accept;\n"
                          if kind in EXTRA_KINDS else "")
                       + "    iifname \"wan\" drop; }\n"
                       # Nor does the router itself answer strangers (a refusal would
                       # tell a prober more than a real NAT does).
                       "  chain input { type filter hook input priority 0; policy accept;\n"
                       "    iifname \"wan\" ct state established,related accept;\n"
                       "    iifname \"wan\" drop; }\n")
        nat = ""
        if kind in NAT_KINDS:
            how = "masquerade random" if kind == "symmetric" else "masquerade"
            nat = ("  chain post { type nat hook postrouting priority 100;\n"
                   f"    oifname \"wan\" {how}; }}\n")
        return f"table ip pwisp {{\n{pre}{forward}{nat}}}\n"

    # -- using -----------------------------------------------------------------------------

    def host(self, name_or_index: str | int) -> Host:
        if isinstance(name_or_index, int):
            return self.hosts[name_or_index]
        for h in self.hosts:
            if h.name == name_or_index:
                return h
        raise KeyError(name_or_index)

    def of_kind(self, kind: str) -> list[Host]:
        return [h for h in self.hosts if h.kind == kind]

    def argv(self, host: Host, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside ``host``'s namespace."""
        return ["ip", "netns", "exec", host.ns, *argv]

    def popen(self, host: Host, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Start a process inside a host; ``close()`` kills it if it still runs."""
        proc: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
            self.argv(host, argv), start_new_session=True, **kwargs)
        self._procs.append(proc)
        return proc

    def run(self, host: Host, argv: Sequence[str], timeout: float = COMMAND_TIMEOUT,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.argv(host, argv), capture_output=True, text=True,
                              timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} in {host.name} failed: "
                               f"{done.stderr.strip()[-500:]}")
        return done

    def cut(self, a: Host, b: Host) -> None:
        """Drop every packet between ``a`` and ``b`` (as each sees the other) from now on."""
        self._cut_set(a, b.external, "add")
        self._cut_set(b, a.external, "add")
        self._cuts.add((a.name, b.name))

    def mend(self, a: Host, b: Host) -> None:
        """Undo ``cut(a, b)``."""
        self._cut_set(a, b.external, "delete")
        self._cut_set(b, a.external, "delete")
        self._cuts.discard((a.name, b.name))

    def _cut_set(self, host: Host, address: str, op: str) -> None:
        ipaddress.IPv4Address(address)  # never hand nft anything but an address
        _run(["ip", "netns", "exec", host.ns, "nft", op, "element", "inet", "pwcut", "blocked",
              f"{{ {address} }}"])

    # -- tearing down ----------------------------------------------------------------------

    def close(self) -> None:
        """Kill the processes the bed started and delete its namespaces."""
        for proc in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self._procs.clear()
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        self.namespaces.clear()
