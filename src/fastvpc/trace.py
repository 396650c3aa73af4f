"""Hop-by-hop explanation of one packet: ``fastvpc trace`` and ``Dataplane.trace``.

The trace builds the frame a VM would send (from an ENI: its MAC and IP; to the
gateway MAC of its subnet, or to the MAC of the destination ENI when that ENI is in
the same subnet), takes the **verdict from the data plane** (``Dataplane.process``, so
a trace always agrees with ``process()``), and explains the path from the topology,
following the steps of ``docs/forwarding-model.md``: the ingress ENI and its
source/destination check, the source subnet, the route table in use (explicit or
main), the matched route with its origin (the route index reported by ``process()``),
the target, the peer VPC, and the final verdict with its Reachability Analyzer code.

The explanation is computed independently of the verdict; when they disagree (a bug in
one of them) the trace says so in a ``warning`` hop and ``Trace.agrees`` is false.

Usage::

    t = trace_packet(net, "web1", "8.8.8.8")               # a Network: compiled for the verdict
    t = trace_packet(dp, "10.0.1.10", "10.0.3.10", proto="tcp", port=5432, network=net)
    print(t); t.to_dict()
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable
from typing import Any, NamedTuple

from fastvpc import packets as pk
from fastvpc.topology import (
    BLACKHOLE,
    LOCAL,
    RESERVED_SERVICE_RANGE,
    Endpoint,
    Eni,
    InternetGateway,
    NatGateway,
    Network,
    PeeringConnection,
    Route,
    Subnet,
    Target,
    TransitGateway,
    Vpc,
    VpnGateway,
)
from fastvpc.verdicts import RA_CODES, Action, DropReason

__all__ = ["Hop", "Trace", "build_frame", "resolve_source", "trace_packet"]

IPv4Address = ipaddress.IPv4Address
PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17}
DEFAULT_PORTS = {"tcp": 80, "udp": 53}
SOURCE_PORT = 49152
MULTICAST = ipaddress.IPv4Network("224.0.0.0/4")
LIMITED_BROADCAST = IPv4Address("255.255.255.255")


# --------------------------------------------------------------------------- results

@dataclasses.dataclass(frozen=True)
class Hop:
    """One step of a trace: ``kind`` (eni, subnet, router, route-table, route, igw, vgw, nat,
    tgw, vpce, pcx, vpc, blackhole, verdict, warning), the object's ``name`` and a one-line ``detail``."""

    kind: str
    name: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind:<11} {self.name}: {self.detail}"

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "detail": self.detail}


class RawVerdict(NamedTuple):
    action: Action
    reason: DropReason
    egress: int
    route: int
    frame: bytes


@dataclasses.dataclass
class Trace:
    """The verdict for one packet and the hops that explain it.

    ``action``/``reason``/``egress``/``route`` are what ``Dataplane.process`` returned;
    ``ra_code`` the Reachability Analyzer explanation code of the reason, when AWS has one;
    ``agrees`` is false when the topology-based explanation predicts another verdict.
    """

    src: str
    dst: str
    proto: str
    port: int | None
    ingress: str
    src_ip: str
    action: Action
    reason: DropReason
    egress: int
    egress_name: str | None
    route: int
    hops: list[Hop]
    ra_code: str | None
    agrees: bool
    verdict_source: str
    frame: bytes = b""

    @property
    def verdict(self) -> str:
        return self.action.name if self.action != Action.DROP else f"DROP {self.reason.name}"

    def __str__(self) -> str:
        what = f"{self.proto}" + (f" port {self.port}" if self.port is not None else "")
        lines = [f"trace {self.src_ip} ({self.ingress}) -> {self.dst} {what}: {self.verdict}"
                 + (f" [{self.ra_code}]" if self.ra_code else "")]
        for i, h in enumerate(self.hops, 1):
            lines.append(f"  {i:>2}. {h}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "src": self.src, "dst": self.dst, "proto": self.proto, "port": self.port,
            "ingress": self.ingress, "src_ip": self.src_ip,
            "action": self.action.name, "reason": self.reason.name, "ra_code": self.ra_code,
            "egress": self.egress, "egress_name": self.egress_name, "route": self.route,
            "agrees": self.agrees, "verdict_source": self.verdict_source,
            "hops": [h.to_dict() for h in self.hops],
        }


# --------------------------------------------------------------------------- the packet

def _proto(proto: str | int) -> tuple[str, int]:
    if isinstance(proto, bool):
        raise ValueError(f"protocol {proto!r} must be icmp, tcp, udp or a number 0-255")
    if isinstance(proto, int):
        if not 0 <= proto <= 255:
            raise ValueError(f"protocol {proto!r} must be icmp, tcp, udp or a number 0-255")
        name = {v: k for k, v in PROTOCOLS.items()}.get(proto, str(proto))
        return name, proto
    p = str(proto).strip().lower()
    if p in PROTOCOLS:
        return p, PROTOCOLS[p]
    if p.isdigit() and int(p) <= 255:
        return _proto(int(p))
    raise ValueError(f"protocol {proto!r} must be icmp, tcp, udp or a number 0-255")


def _ip_packet(src: IPv4Address, dst: IPv4Address, proto: int, port: int | None) -> bytes:
    """An IPv4 packet with valid checksums: ICMP echo request, TCP SYN, UDP, or an empty payload."""
    if proto == 1:
        return pk.icmp_echo(src, dst, ident=0x7A5C, seq=1, payload=b"fastvpc trace...")
    if proto == 6:
        return pk.tcp(src, dst, SOURCE_PORT, port or 0)
    if proto == 17:
        return pk.udp(src, dst, SOURCE_PORT, port or 0)
    return pk.ipv4(src, dst, proto, b"")


def _dst_mac(eni: Eni, dst: IPv4Address) -> tuple[str, str]:
    """The MAC a VM puts on a frame to ``dst``, and why (the spec: gateway MAC unless a same-subnet ENI)."""
    s = eni.subnet
    if dst in s.cidr:
        for e in s.enis:
            if dst in e.ips:
                return e.mac, f"{dst} is in subnet {s.name}: the MAC of {e.name} (from ARP)"
    return s.gateway_mac, f"the gateway MAC of subnet {s.name}"


def build_frame(net: Network, eni: Eni, dst: str | IPv4Address, proto: str | int = "icmp",
                port: int | None = None, *, src_ip: str | IPv4Address | None = None) -> bytes:
    """The Ethernet frame that ``eni``'s VM sends to ``dst`` (padded to 60 bytes)."""
    d = IPv4Address(str(dst))
    s = IPv4Address(str(src_ip)) if src_ip is not None else eni.ip
    pname, pnum = _proto(proto)
    if port is None:
        port = DEFAULT_PORTS.get(pname)
    return pk.ethernet(_dst_mac(eni, d)[0], eni.mac, pk.ETH_IPV4, _ip_packet(s, d, pnum, port), pad_to=60)


# --------------------------------------------------------------------------- where from

def _network_of(where: Any, network: Network | None) -> Network:
    if network is not None:
        return network
    if isinstance(where, Network):
        return where
    net = getattr(where, "network", None)
    if isinstance(net, Network):
        return net
    topo = getattr(where, "topology", None)
    if isinstance(topo, Network):
        return topo
    if isinstance(topo, dict):
        from fastvpc.files import network_from_dict

        return network_from_dict(topo, source="Dataplane.topology")
    raise TypeError(f"trace needs the topology: {type(where).__name__} has no .network / .topology; "
                    "pass network=... (the Network that was compiled)")


def resolve_source(net: Network, src: str | Eni, aliases: dict[str, list[str]] | None = None) -> tuple[Eni, IPv4Address]:
    """The ingress ENI and source IP for ``src``: an ENI, an ENI name, an instance id in
    ``aliases`` (instance -> ENI names, primary first), or an IP owned by exactly one ENI."""
    if isinstance(src, Eni):
        return src, src.ip
    text = str(src).strip()
    if aliases and text in aliases and aliases[text]:
        text = aliases[text][0]
    try:
        obj = net.find(text)
    except KeyError:
        obj = None
    if isinstance(obj, Eni):
        return obj, obj.ip
    if obj is not None:
        raise ValueError(f"source {text!r} is a {type(obj).__name__}, not an ENI: traces start at an ENI")
    try:
        ip = IPv4Address(text)
    except ValueError:
        raise KeyError(f"source {text!r} is neither an ENI name nor an IPv4 address of this network") from None
    owners = [e for e in net.enis if ip in e.ips]
    if not owners:
        raise KeyError(f"source {ip} is not an address of any ENI; name the ENI to send from instead")
    if len(owners) > 1:
        raise ValueError(f"source {ip} belongs to several ENIs ({', '.join(e.name for e in owners)}) in "
                         "overlapping VPCs; name the ENI instead")
    return owners[0], ip


# --------------------------------------------------------------------------- verdict sources

class _DataplaneSource:
    name = "dataplane"

    def __init__(self, dp: Any) -> None:
        self.dp = dp

    def __call__(self, frame: bytes, port: int) -> RawVerdict:
        from fastvpc.batch import FrameBatch

        res = self.dp.process(FrameBatch.from_frames([frame], port=[port]), copy=True)
        return RawVerdict(Action(int(res.action[0])), DropReason(int(res.reason[0])), int(res.egress[0]),
                          int(res.route[0]), bytes(res.frames.frame(0)))


class _ReferenceSource:
    name = "reference"

    def __init__(self, net: Network) -> None:
        from fastvpc.reference import ReferenceForwarder

        self.ref = ReferenceForwarder(net)

    def __call__(self, frame: bytes, port: int) -> RawVerdict:
        v = self.ref.forward(frame, port)
        return RawVerdict(Action(v.action), DropReason(v.reason), v.egress, v.route, v.frame)


def _verdict_source(where: Any, net: Network, verdict: str) -> Callable[[bytes, int], RawVerdict]:
    if verdict not in ("auto", "dataplane", "reference"):
        raise ValueError(f"verdict={verdict!r} must be auto, dataplane or reference")
    if verdict == "reference":
        return _ReferenceSource(net)
    if hasattr(where, "process") and not isinstance(where, Network):
        return _DataplaneSource(where)
    return _DataplaneSource(net.compile())


# --------------------------------------------------------------------------- the explanation

class _Explain:
    """Walks docs/forwarding-model.md steps 10-19 for the packet, from the topology."""

    def __init__(self, net: Network, eni: Eni, src: IPv4Address, dst: IPv4Address, proto: int) -> None:
        self.net, self.eni, self.src, self.dst, self.proto = net, eni, src, dst, proto
        self.hops: list[Hop] = []
        self.routes = net.routes()

    def hop(self, kind: str, name: str, detail: str) -> None:
        self.hops.append(Hop(kind, name, detail))

    def index(self, route: Route) -> int:
        for i, r in enumerate(self.routes):
            if r is route:
                return i
        return -1

    def run(self) -> tuple[Action, DropReason, int, int]:
        e, s, v, dst = self.eni, self.eni.subnet, self.eni.vpc, self.dst
        ips = ", ".join(map(str, e.ips))
        if e.source_dest_check and self.src not in e.ips:
            self.hop("eni", e.name, f"ingress ENI ({ips}, {e.mac}) in subnet {s.name}; source/dest check is on "
                     f"and source {self.src} is not one of its addresses")
            chk_ok = False
        else:
            chk = (f"source/dest check on: source {self.src} is its own address" if e.source_dest_check
                   else "source/dest check off: any source address is accepted")
            self.hop("eni", e.name, f"ingress ENI ({ips}, {e.mac}) in subnet {s.name}; {chk}")
            chk_ok = True
        # steps 11-12: IP-level broadcast and multicast, before the source check
        if dst == LIMITED_BROADCAST or any(dst == x.broadcast_ip for x in v.subnets):
            self.hop("subnet", s.name, f"{dst} is a broadcast address in VPC {v.name}: the VPC has no broadcast")
            return Action.DROP, DropReason.BROADCAST, -1, -1
        if dst in MULTICAST:
            self.hop("subnet", s.name, f"{dst} is multicast: the VPC has no multicast (without a TGW domain)")
            return Action.DROP, DropReason.MULTICAST, -1, -1
        if not chk_ok:  # step 13
            return Action.DROP, DropReason.SRC_DST_CHECK, -1, -1
        where = f"subnet {s.cidr} of VPC {v.name} (router {s.router_ip}, gateway MAC {s.gateway_mac})"
        if dst == s.router_ip:  # step 15
            if self.proto == 1:
                self.hop("router", s.name, f"{dst} is the router of {where}: it answers ICMP echo itself")
                return Action.REPLY, DropReason.NONE, e.port, -1
            self.hop("router", s.name, f"{dst} is the router of {where}: it answers ICMP echo only")
            return Action.DROP, DropReason.ROUTER_UNSUPPORTED, -1, -1
        for other in v.subnets:  # step 16
            if other is not s and dst == other.router_ip:
                self.hop("router", other.name, f"{dst} is the router of subnet {other.name} ({other.cidr}); a VM "
                         f"can only reach its own subnet's router ({s.router_ip})")
                return Action.DROP, DropReason.ROUTER_NOT_OWN_SUBNET, -1, -1
        if dst in RESERVED_SERVICE_RANGE:  # step 17
            self.hop("subnet", s.name, f"{dst} is in {RESERVED_SERVICE_RANGE} (instance metadata, DNS, time sync): "
                     "served on the host, never routed")
            return Action.DROP, DropReason.LINK_LOCAL_SERVICE, -1, -1
        if dst in s.cidr:  # step 18
            owner = self._owner(s.enis, dst)
            if owner is None:
                self.hop("subnet", s.name, f"{dst} is inside {where}: no route lookup, and no ENI owns it")
                return Action.DROP, DropReason.NO_SUCH_HOST, -1, -1
            self.hop("subnet", s.name, f"{dst} is inside {where}: delivered without a route lookup")
            self._deliver(owner)
            return Action.DELIVER, DropReason.NONE, owner.port, -1
        self.hop("subnet", s.name, f"{dst} is outside {where}: routed")
        return self.routed()

    @staticmethod
    def _owner(enis: list[Eni], ip: IPv4Address) -> Eni | None:
        for x in enis:
            if ip in x.ips:
                return x
        return None

    def _vpc_owner(self, vpc: Vpc, ip: IPv4Address) -> Eni | None:
        return vpc.eni_for_ip(ip)

    def _deliver(self, r: Eni, via: str = "") -> None:
        same = r.subnet is self.eni.subnet
        src_mac = (f"the sender's MAC {self.eni.mac} (same subnet)" if same
                   else f"the gateway MAC {r.subnet.gateway_mac} of subnet {r.subnet.name}")
        self.hop("eni", r.name, f"{via}receiving ENI ({', '.join(map(str, r.ips))}) in subnet {r.subnet.name} of VPC "
                 f"{r.vpc.name}, port {r.port}: dst MAC := {r.mac}, src MAC := {src_mac}; TTL untouched")

    def routed(self) -> tuple[Action, DropReason, int, int]:
        e, s, v, dst = self.eni, self.eni.subnet, self.eni.vpc, self.dst
        rt = s.route_table
        if s.explicit_route_table is not None:
            self.hop("route-table", rt.name, f"explicitly associated with subnet {s.name}")
        else:
            self.hop("route-table", rt.name, f"main route table of VPC {v.name} (subnet {s.name} has no explicit "
                     "association)")
        best: Route | None = None
        for r in rt.routes:
            if dst in r.destination and (best is None or r.destination.prefixlen > best.destination.prefixlen):
                best = r
        if best is None:
            self.hop("route", "(none)", f"no route in {rt.name} matches {dst}")
            return Action.DROP, DropReason.NO_ROUTE, -1, -1
        idx = self.index(best)
        origin = best.origin + (f" from prefix list {best.prefix_list}" if best.prefix_list else "")
        t = best.target
        self.hop("route", f"{best.destination} -> {t.name}", f"longest prefix match for {dst} in {rt.name}: "
                 f"route #{idx}, origin {origin}, state {best.state}")
        if t is BLACKHOLE:
            was = f" (was {best.deleted_target})" if best.deleted_target else ""
            self.hop("blackhole", str(best.destination), f"the route's target is gone{was}: dropped, no fallback to "
                     "a shorter route")
            return Action.DROP, DropReason.BLACKHOLE, -1, idx
        if t is LOCAL:
            owner = self._vpc_owner(v, dst)
            if owner is None:
                self.hop("vpc", v.name, f"local route: no ENI of VPC {v.name} owns {dst}")
                return Action.DROP, DropReason.NO_SUCH_HOST, -1, idx
            self.hop("vpc", v.name, f"local route: {dst} belongs to {owner.name} in subnet {owner.subnet.name}")
            self._deliver(owner)
            return Action.DELIVER, DropReason.NONE, owner.port, idx
        if isinstance(t, Eni):
            if t.source_dest_check and dst not in t.ips:
                self.hop("eni", t.name, f"target ENI ({', '.join(map(str, t.ips))}) has source/dest check on and "
                         f"{dst} is not its address: dropped")
                return Action.DROP, DropReason.SRC_DST_CHECK, -1, idx
            chk = "source/dest check off" if not t.source_dest_check else f"{dst} is its own address"
            self._deliver(t, via=f"target ENI ({chk}); ")
            return Action.DELIVER, DropReason.NONE, t.port, idx
        if isinstance(t, PeeringConnection):
            peer = t.peer_of(v)
            self.hop("pcx", t.name, f"VPC peering {t.requester.name} <-> {t.accepter.name}: enters VPC {peer.name} "
                     f"({', '.join(map(str, peer.cidrs))}); never routed onward (no transit)")
            owner = self._vpc_owner(peer, dst)
            if owner is None:
                self.hop("vpc", peer.name, f"no ENI of peer VPC {peer.name} owns {dst}")
                return Action.DROP, DropReason.NO_SUCH_HOST, -1, idx
            self._deliver(owner)
            return Action.DELIVER, DropReason.NONE, owner.port, idx
        if isinstance(t, Target):
            self.hop(t.kind, t.name, f"{_describe_target(t)}: forwarded out of the VPC data plane on port {t.port}, "
                     "frame untouched")
            return Action.FORWARD, DropReason.NONE, t.port, idx
        return Action.DROP, DropReason.BLACKHOLE, -1, idx  # pragma: no cover - every target kind is handled


def _describe_target(t: Target) -> str:
    if isinstance(t, InternetGateway):
        return f"internet gateway of VPC {t.vpc.name} (to the internet)"
    if isinstance(t, VpnGateway):
        return f"VPN gateway of VPC {t.vpc.name} (to on-premises)"
    if isinstance(t, NatGateway):
        sub = f" in subnet {t.subnet.name}" if t.subnet is not None else ""
        return f"NAT gateway of VPC {t.vpc.name}{sub}"
    if isinstance(t, TransitGateway):
        return f"transit gateway attached to {', '.join(v.name for v in t.attachments)}"
    if isinstance(t, Endpoint):
        svc = f" for {t.service}" if t.service else ""
        return f"{t.endpoint_type} VPC endpoint{svc} of VPC {t.vpc.name}"
    return f"{t.kind} {t.name}"


def _verdict_hop(net: Network, v: RawVerdict, dst: IPv4Address) -> Hop:
    if v.action == Action.DROP:
        ra = RA_CODES.get(v.reason)
        detail = f"dropped: {v.reason.name}" + (f" (Reachability Analyzer: {ra})" if ra else "")
        return Hop("verdict", f"DROP {v.reason.name}", detail)
    try:
        name = net.by_port(v.egress).name
    except KeyError:
        name = f"port {v.egress}"
    if v.action == Action.REPLY:
        return Hop("verdict", "REPLY", f"answered by the VPC router, sent back out of {name}")
    if v.action == Action.DELIVER:
        return Hop("verdict", "DELIVER", f"delivered to {name} (port {v.egress})")
    return Hop("verdict", "FORWARD", f"handed to {name} (port {v.egress}) towards {dst}")


# --------------------------------------------------------------------------- entry point

def trace_packet(where: Any, src: str | Eni, dst: str | IPv4Address, proto: str | int = "icmp",
                 port: int | None = None, *, src_ip: str | IPv4Address | None = None,
                 network: Network | None = None, verdict: str = "auto",
                 aliases: dict[str, list[str]] | None = None) -> Trace:
    """Trace one packet from ``src`` to ``dst``.

    ``where``: a :class:`Network` (compiled for the verdict), or a ``Dataplane`` (its
    ``process()`` gives the verdict; the topology comes from ``network=``, ``dp.network``
    or ``dp.topology``).  ``src``: an ENI, ENI name, instance id (with ``aliases``) or an IP
    owned by one ENI.  ``src_ip`` overrides the source address (to show the
    source/destination check).  ``proto``: icmp (echo request), tcp (SYN), udp, or a
    number; ``port`` the destination port (tcp 80 / udp 53 when omitted).
    ``verdict``: ``auto`` (the compiled data plane), ``dataplane`` or ``reference``.
    """
    net = _network_of(where, network)
    eni, sip = resolve_source(net, src, aliases)
    if src_ip is not None:
        sip = IPv4Address(str(src_ip).strip())
    try:
        d = IPv4Address(str(dst).strip())
    except ValueError:
        raise ValueError(f"destination {dst!r} is not an IPv4 address") from None
    pname, pnum = _proto(proto)
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535):
        raise ValueError(f"port {port!r} must be an int 0-65535")
    if port is not None and pnum not in (6, 17):
        raise ValueError(f"port {port} only applies to tcp and udp, not {pname}")
    if port is None and pname in DEFAULT_PORTS:
        port = DEFAULT_PORTS[pname]
    frame = build_frame(net, eni, d, pnum, port, src_ip=sip)
    source = _verdict_source(where, net, verdict)
    v = source(frame, eni.port)

    ex = _Explain(net, eni, sip, d, pnum)
    expected = ex.run()
    hops = ex.hops
    got = (v.action, v.reason, v.egress, v.route)
    agrees = got == expected
    if not agrees:
        hops.append(Hop("warning", "mismatch", f"the explanation predicts {expected[0].name} {expected[1].name} "
                        f"egress {expected[2]} route {expected[3]}, the data plane says {v.action.name} "
                        f"{v.reason.name} egress {v.egress} route {v.route}: the data plane's verdict is reported"))
        if v.route >= 0 and v.route < len(ex.routes):
            r = ex.routes[v.route]
            hops.append(Hop("route", f"{r.destination} -> {r.target.name}",
                            f"route #{v.route} reported by the data plane, in {r.route_table.name}, origin {r.origin}"))
    hops.append(_verdict_hop(net, v, d))
    try:
        egress_name = net.by_port(v.egress).name if v.egress >= 0 else None
    except KeyError:
        egress_name = None
    return Trace(src=str(src.name if isinstance(src, Eni) else src), dst=str(d), proto=pname, port=port,
                 ingress=eni.name, src_ip=str(sip), action=v.action, reason=v.reason, egress=v.egress,
                 egress_name=egress_name, route=v.route, hops=hops, ra_code=RA_CODES.get(v.reason),
                 agrees=agrees, verdict_source=getattr(source, "name", "?"), frame=v.frame)
