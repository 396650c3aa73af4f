"""Hop-by-hop explanation of one packet: ``fastvpc trace`` and ``Dataplane.trace``.

A trace is the reference forwarder (:mod:`fastvpc.reference`, the readable model) with its
recorder on, next to the data plane:

1. it builds the frame a VM would send (from an ENI: its MAC and IP; to the gateway MAC of its
   subnet, or to the MAC of the destination ENI when that ENI is in the same subnet);
2. it takes the **verdict from the data plane** (``Dataplane.process``), so a trace always reports
   what ``process()`` does;
3. it runs the same frame through the reference forwarder with a recorder: every stage of the
   pipeline (``ReferenceForwarder.STAGES``) notes what it decided and why: the ingress ENI and its
   source/destination check, the source subnet, the route table in use (explicit or main), the
   matched route with its origin, the target, the peer VPC; the last hop is the verdict with its
   Reachability Analyzer code;
4. ``Trace.agrees`` says whether the two verdicts (and output frames) are the same.  Each trace is
   therefore one more differential check; a disagreement (a bug in one of them) is reported in
   ``str()``, in ``to_dict()`` and by a ``warning`` hop.

Usage::

    t = trace_packet(net, "web1", "8.8.8.8")               # a Network: compiled for the verdict
    t = trace_packet(dp, "10.0.1.10", "10.0.3.10", proto="tcp", port=5432, network=net)
    print(t); t.to_dict()
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from fastvpc import packets as pk
from fastvpc.dataplane.state import FlowTable
from fastvpc.reference import Hop, ReferenceFlowTable, ReferenceForwarder, Verdict
from fastvpc.testing import compile_network, filters_of
from fastvpc.topology import Eni, InternetGateway, NatGateway, Network, TransitGateway, VpnGateway
from fastvpc.verdicts import RA_CODES, Action, DropReason

__all__ = ["OUTSIDE_IP", "Hop", "Trace", "build_frame", "resolve_source", "trace_packet"]

IPv4Address = ipaddress.IPv4Address
PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17}
DEFAULT_PORTS = {"tcp": 80, "udp": 53}
SOURCE_PORT = 49152
VERDICT_SOURCES = ("auto", "dataplane", "reference")


# --------------------------------------------------------------------------- results

@dataclasses.dataclass
class Trace:
    """The verdict for one packet and the hops that explain it.

    ``action``/``reason``/``egress``/``route``/``frame`` are what the verdict source (``Dataplane.process``
    unless ``verdict="reference"``) returned; ``ra_code`` the Reachability Analyzer explanation code of
    the reason, when AWS has one; ``hops`` the reference forwarder's explanation, stage by stage, then
    the verdict; ``expected`` the reference forwarder's own verdict; ``agrees`` whether the two are
    the same (action, reason, egress, route and output frame).
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
    expected: Verdict | None = None
    #: what this verdict depends on that fastvpc does not evaluate yet (said, not implied away)
    not_evaluated: list[str] = dataclasses.field(default_factory=list)
    #: ``reply=True``: the forward packet's trace (run first, through the same connection-tracking state)
    forward: Trace | None = None

    @property
    def verdict(self) -> str:
        return self.action.name if self.action != Action.DROP else f"DROP {self.reason.name}"

    def headline(self) -> str:
        what = f"{self.proto}" + (f" port {self.port}" if self.port is not None else "")
        return (f"{self.src_ip} ({self.ingress}) -> {self.dst} {what}: {self.verdict}"
                + (f" [{self.ra_code}]" if self.ra_code else ""))

    def __str__(self) -> str:
        f = self.forward
        if f is None:
            lines = [f"trace {self.headline()}"]
        else:
            lines = [f"trace reply {self.headline()}",
                     f"  forward packet first, tracked: {f.headline()}"]
            lines += [f"  {i:>2}. {h}" for i, h in enumerate(f.hops, 1)]
            lines.append("  then the reply, with the forward flow tracked:")
        for i, h in enumerate(self.hops, 1):
            lines.append(f"  {i:>2}. {h}")
        if self.not_evaluated:
            lines.append("  not evaluated: " + "; ".join(self.not_evaluated))
        lines.append(f"  {self._agreement()}")
        return "\n".join(lines)

    def _agreement(self) -> str:
        if self.verdict_source == "reference":
            return "verdict from the reference forwarder (no data plane compared)"
        if self.agrees and (self.forward is None or self.forward.agrees):
            return "the reference forwarder agrees with the data plane"
        return "MISMATCH: the reference forwarder disagrees with the data plane (see the warning hop)"

    def to_dict(self) -> dict[str, Any]:
        e = self.expected
        return {
            "src": self.src, "dst": self.dst, "proto": self.proto, "port": self.port,
            "ingress": self.ingress, "src_ip": self.src_ip,
            "action": self.action.name, "reason": self.reason.name, "ra_code": self.ra_code,
            "egress": self.egress, "egress_name": self.egress_name, "route": self.route,
            "agrees": self.agrees, "verdict_source": self.verdict_source,
            "reference": None if e is None else {"action": e.action.name, "reason": e.reason.name,
                                                 "egress": e.egress, "route": e.route},
            "hops": [h.to_dict() for h in self.hops],
            "not_evaluated": list(self.not_evaluated),
            "reply": self.forward is not None,
            **({"forward": self.forward.to_dict()} if self.forward is not None else {}),
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
    net = getattr(where, "network", None)  # Dataplane.network: the compiled topology, rebuilt
    if isinstance(net, Network):
        return net
    raise TypeError(f"trace needs the topology: {type(where).__name__} has no .network; "
                    "pass network=... (the Network that was compiled)")


#: the source address of a packet traced from a gateway's port when ``src_ip`` is not given: a host of
#: TEST-NET-2 (RFC 5737), public by DESIGN §6's rule, in no VPC
OUTSIDE_IP = IPv4Address("198.51.100.10")
#: the source MAC of that packet: a locally administered unicast MAC of "the outside host"
OUTSIDE_MAC = "02:00:5e:10:00:01"
#: the gateways whose port a trace may start at (DESIGN §6: frames entering through them)
SOURCE_GATEWAYS = (InternetGateway, VpnGateway, TransitGateway)

Source = Eni | InternetGateway | VpnGateway | TransitGateway


def resolve_source(net: Network, src: str | Source,
                   aliases: dict[str, list[str]] | None = None) -> tuple[Source, IPv4Address]:
    """The ingress ENI (or gateway) and source IP for ``src``: an ENI, an ENI name, an instance id in
    ``aliases`` (instance -> ENI names, primary first), an IP owned by exactly one ENI, or an internet,
    VPN or transit gateway (object or name): the packet then enters on the gateway's port from an
    outside host, source :data:`OUTSIDE_IP` unless ``src_ip`` says otherwise."""
    if isinstance(src, Eni):
        return src, src.ip
    if isinstance(src, SOURCE_GATEWAYS):
        return src, OUTSIDE_IP
    text = str(src).strip()
    if aliases and text in aliases and aliases[text]:
        text = aliases[text][0]
    try:
        obj = net.find(text)
    except KeyError:
        obj = None
    if isinstance(obj, Eni):
        return obj, obj.ip
    if isinstance(obj, SOURCE_GATEWAYS):
        return obj, OUTSIDE_IP
    if obj is not None:
        raise ValueError(f"source {text!r} is a {type(obj).__name__}, not an ENI or an internet, VPN or transit "
                         "gateway: traces start at an ENI or enter through a gateway")
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


# --------------------------------------------------------------------------- the verdict hop

def _verdict_hop(net: Network, v: Verdict, dst: IPv4Address) -> Hop:
    if v.action == Action.DROP:
        ra = RA_CODES.get(v.reason)
        detail = f"dropped: {v.reason.name}" + (f" (Reachability Analyzer: {ra})" if ra else "")
        return Hop("verdict", f"DROP {v.reason.name}", detail)
    owner = net.port_owner(v.egress)
    name = owner.name if owner is not None else f"port {v.egress}"
    if v.action == Action.REPLY:
        return Hop("verdict", "REPLY", f"answered by the VPC router, sent back out of {name}")
    if v.action == Action.DELIVER:
        return Hop("verdict", "DELIVER", f"delivered to {name} (port {v.egress})")
    return Hop("verdict", "FORWARD", f"handed to {name} (port {v.egress}) towards {dst}")


def _not_evaluated(net: Network, v: Verdict, filters: bool = True, stateful: bool = False,
                   edge: bool = True) -> list[str]:
    """What the verdict ``v`` depends on that this trace did not evaluate (DESIGN.md §5, §6)."""
    out = []
    if not filters:
        out.append("security groups and network ACLs not evaluated (compiled with filters=False: the verdict is "
                   "the routing view)")
    elif not stateful:
        out.append("connection tracking: the packet is judged as the first of its flow (replies need rules both "
                   "ways here; trace the return packet with reply=True / --reply)")
    if v.action == Action.FORWARD:
        owner = net.port_owner(v.egress)
        if isinstance(owner, InternetGateway):
            if edge:
                out.append("the internet beyond the internet gateway (the source was translated 1:1 to its public "
                           "IP); IPv6 (egress-only internet gateways, IPv6 addresses) is not modelled")
            else:
                out.append("the internet gateway's 1:1 NAT: the packet reaches the internet only if the ENI has a "
                           "public IP, which is not checked with edge=False")
        elif isinstance(owner, NatGateway):   # only with ReferenceForwarder(nat=False): the opaque view
            out.append("the NAT gateway's translation and its own subnet's route onward are not evaluated (nat=False):"
                       " the packet is handed to its port")
        elif isinstance(owner, TransitGateway):
            out.append("transit gateway route tables are not modelled: the route beyond the attachment is not "
                       "evaluated")
        elif isinstance(owner, VpnGateway):
            out.append("the VPN connection beyond the virtual private gateway")
        else:
            out.append(f"what {owner.name if owner is not None else 'the target'} does with the packet: "
                       "endpoint services are not modelled")
    if v.action in (Action.DELIVER, Action.FORWARD) and not stateful:
        out.append("the return path (a reply is a separate packet: trace it with reply=True / --reply)")
    return out


def _filters(forwarder: Any, where: Any) -> bool:
    """Whether the verdict source runs the filter stages (the reference is built to match it)."""
    if forwarder is None:
        return bool(getattr(where, "filters", True)) if not isinstance(where, Network) else True
    return filters_of(forwarder)


def _fields(v: Verdict) -> tuple[int, int, int, int]:
    return int(v.action), int(v.reason), v.egress, v.route


def _one(forwarder: Any, frame: bytes, port: int, state: Any = None, now: int | None = None) -> Verdict:
    """One frame through a Forwarder (anything with ``process(batch, copy=True)``; with ``state``,
    ``process(batch, copy=True, state=state, now=now)``)."""
    from fastvpc.batch import FrameBatch

    batch = FrameBatch.from_frames([frame], port=[port])
    if state is None:
        res = forwarder.process(batch, copy=True)
    else:
        res = forwarder.process(batch, copy=True, state=state, now=now)
    return Verdict(Action(int(res.action[0])), DropReason(int(res.reason[0])), int(res.egress[0]),
                   int(res.route[0]), bytes(res.frames.frame(0)))


# --------------------------------------------------------------------------- entry point

def trace_packet(where: Any, src: str | Eni, dst: str | IPv4Address, proto: str | int = "icmp",
                 port: int | None = None, *, src_ip: str | IPv4Address | None = None,
                 network: Network | None = None, verdict: str = "auto",
                 aliases: dict[str, list[str]] | None = None, filters: bool | None = None,
                 reply: bool = False, edge: bool | None = None) -> Trace:
    """Trace one packet from ``src`` to ``dst``.

    ``where``: a :class:`Network` (compiled for the verdict), or a ``Dataplane`` or any other
    ``Forwarder`` (its ``process()`` gives the verdict; the topology comes from ``network=`` or its
    ``.network``).  ``src``: an ENI, ENI name, instance id (with ``aliases``) or an IP owned by one
    ENI; or an internet, VPN or transit gateway (object or name): the packet enters on the gateway's
    port from an outside host (source :data:`OUTSIDE_IP`, addressed to the gateway's MAC), e.g. the
    internet to a public IP: ``trace_packet(net, "igw", "203.0.113.10", "tcp", 443)``.  ``src_ip``
    overrides the source address (to show the source/destination check, or name the outside host).
    ``proto``: icmp (echo request), tcp (SYN), udp, or a number; ``port`` the destination port
    (tcp 80 / udp 53 when omitted).  ``verdict``: ``auto`` or ``dataplane`` (the compiled data plane,
    checked against the reference forwarder) or ``reference`` (the reference forwarder alone).
    ``filters``: with a Network, compile it so (default: compile's default, the filters on); the
    reference forwarder always runs the filters exactly when the verdict source does.  ``edge``: with a
    Network, compile it with the edge stages (docs/edge.md; default on, as ``compile()``); with a
    Dataplane, its own ``edge``; the reference runs the edge exactly when the verdict source does.

    ``reply=True`` traces the return packet instead, with the forward flow tracked: the forward
    packet goes first through a fresh connection-tracking state (a ``FlowTable`` for the data plane,
    a ``ReferenceFlowTable`` for the reference), then the reply (TCP SYN-ACK, UDP response, ICMP echo
    reply, the same protocol back otherwise) one second later, answering the forward packet as it
    arrived (addresses and ports swapped): from the ENI it was delivered to, or, for a packet that left
    through an internet, VPN or transit gateway, from the outside host in on that gateway's port (to
    the public IP and port an internet or NAT gateway gave it).  The returned Trace is the reply's;
    ``.forward`` is the forward packet's.  ``ValueError`` when the forward packet went anywhere else
    (dropped, answered, to a NAT gateway's or an endpoint's own address): there is no return packet.
    """
    if verdict not in VERDICT_SOURCES:
        raise ValueError(f"verdict={verdict!r} must be one of {', '.join(VERDICT_SOURCES)}")
    if not isinstance(reply, bool):
        raise TypeError(f"reply must be True or False, not {reply!r}")
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
    if isinstance(eni, Eni):
        frame = build_frame(net, eni, d, pnum, port, src_ip=sip)
    else:   # from outside, through the gateway's port: addressed to the gateway's MAC (DESIGN §6)
        frame = pk.ethernet(eni.mac, OUTSIDE_MAC, pk.ETH_IPV4, _ip_packet(sip, d, pnum, port), pad_to=60)

    # the explanation and the expected verdict: the reference forwarder with its recorder on
    arp_mode = getattr(where, "arp_mode", "target") if not isinstance(where, Network) else "target"
    if filters is not None and not isinstance(filters, bool):
        raise TypeError(f"filters must be True, False or None, not {filters!r}")
    forwarder = None
    if verdict != "reference":
        forwarder = (compile_network(net, filters=filters is not False, edge=edge is not False) if isinstance(where, Network)
                     else where)
    if filters is None or forwarder is not None:
        filters = _filters(forwarder, where)
    if edge is not None and not isinstance(edge, bool):
        raise TypeError(f"edge must be True, False or None, not {edge!r}")
    edge = bool(getattr(forwarder, "edge", False)) if forwarder is not None else edge is not False
    reference = ReferenceForwarder(net, arp_mode=arp_mode if arp_mode in ("target", "single_mac") else "target",
                                   filters=filters, edge=edge)
    name = str(src.name if isinstance(src, (Eni, *SOURCE_GATEWAYS)) else src)
    if not reply:
        return _trace_one(net, reference, forwarder, frame, eni, sip, d, pname, port, name, filters, None, None)

    states = (ReferenceFlowTable(64), None if forwarder is None else FlowTable(64))
    fwd = _trace_one(net, reference, forwarder, frame, eni, sip, d, pname, port, name, filters, states, REPLY_T0)
    receiver = net.port_owner(fwd.egress) if fwd.action in (Action.DELIVER, Action.FORWARD) else None
    if fwd.action == Action.FORWARD and isinstance(receiver, SOURCE_GATEWAYS) and not edge:
        raise ValueError(f"the forward packet {sip} -> {d} leaves through {receiver.name} in a data plane compiled "
                         "with edge=False, where a gateway's port takes no frames: there is no return packet to trace")
    if not isinstance(receiver, (Eni, *SOURCE_GATEWAYS)):
        raise ValueError(f"the forward packet {sip} -> {d} is neither delivered to an ENI nor sent out through an "
                         f"internet, VPN or transit gateway ({fwd.verdict}): there is no return packet to trace")
    # the reply answers the packet as it arrived: addresses and ports swapped (an internet gateway or a
    # NAT gateway translated them on the way)
    back_pkt = _return_packet(fwd.frame, pnum)
    if back_pkt is None:
        raise ValueError(f"the forward packet {sip} -> {d} left as a frame too short to answer "
                         f"({len(fwd.frame)} bytes)")
    rsrc, rdst, rport, payload = back_pkt
    if isinstance(receiver, Eni):
        rframe = pk.ethernet(_dst_mac(receiver, rdst)[0], receiver.mac, pk.ETH_IPV4, payload, pad_to=60)
    else:   # from the outside host, in on the gateway's port, addressed to the gateway's MAC
        rframe = pk.ethernet(receiver.mac, OUTSIDE_MAC, pk.ETH_IPV4, payload, pad_to=60)
    back = _trace_one(net, reference, forwarder, rframe, receiver, rsrc, rdst, pname, rport, receiver.name, filters,
                      states, REPLY_T0 + 1_000_000_000)
    back.forward = fwd
    back.not_evaluated = [x for x in back.not_evaluated if not x.startswith("the return path")]
    return back


def _return_packet(out: bytes, proto: int) -> tuple[IPv4Address, IPv4Address, int | None, bytes] | None:
    """The return packet (SYN-ACK, UDP response, echo reply, the protocol back) of the forward packet
    as it left (``out``, its Ethernet frame): source and destination addresses and ports swapped, the
    echo id kept.  Returns (source, destination, destination port, IPv4 packet), None if ``out``
    is too short to carry them."""
    if len(out) < 34:
        return None
    src, dst = IPv4Address(out[30:34]), IPv4Address(out[26:30])
    l4 = 14 + (out[14] & 0x0F) * 4
    if proto in (6, 17):
        if len(out) < l4 + 4:
            return None
        sport, dport = int.from_bytes(out[l4 + 2:l4 + 4], "big"), int.from_bytes(out[l4:l4 + 2], "big")
        return (src, dst, dport, pk.tcp(src, dst, sport, dport, flags=0x12) if proto == 6
                else pk.udp(src, dst, sport, dport))
    if proto == 1:
        if len(out) < l4 + 8:
            return None
        ident = int.from_bytes(out[l4 + 4:l4 + 6], "big")
        return src, dst, None, pk.icmp_echo(src, dst, ident=ident, seq=1, payload=b"fastvpc trace...", request=False)
    return src, dst, None, pk.ipv4(src, dst, proto, b"")


#: the time (ns) of the forward packet of a ``reply=True`` trace; the reply follows 1 s later
REPLY_T0 = 1_000_000_000


def _trace_one(net: Network, reference: ReferenceForwarder, forwarder: Any, frame: bytes, eni: Source,
               sip: IPv4Address, d: IPv4Address, pname: str, port: int | None, name: str, filters: bool,
               states: tuple[Any, Any] | None, now: int | None) -> Trace:
    """One frame through the reference (with its recorder) and the verdict source; with ``states``
    (reference table, data plane table) both statefully at ``now``."""
    hops: list[Hop] = []
    ref_state = states[0] if states is not None else None
    expected = reference.forward(frame, eni.port, hops=hops, state=ref_state, now=now)
    if states is None and expected.reason == DropReason.NAT_NEEDS_STATE:
        # a NAT gateway keeps bindings (docs/edge.md §4): the packet goes through fresh tables, as the first
        # of its flow, so the trace shows the NAT gateway's hop and onward (ENI -> NAT gateway -> IGW)
        states, now, hops = (ReferenceFlowTable(64), None if forwarder is None else FlowTable(64)), REPLY_T0, []
        expected = reference.forward(frame, eni.port, hops=hops, state=states[0], now=now)
        nat_fresh = True
    else:
        nat_fresh = False
    # the verdict: the data plane (a Forwarder), or the reference itself
    if forwarder is None:
        v, source = expected, "reference"
    else:
        v, source = _one(forwarder, frame, eni.port, None if states is None else states[1], now), "dataplane"
    agrees = v == expected
    if not agrees:
        hops.append(Hop("warning", "mismatch", f"the reference forwarder predicts {expected.action.name} "
                        f"{expected.reason.name} egress {expected.egress} route {expected.route}"
                        + (" with another output frame" if _fields(v) == _fields(expected) else "")
                        + f", the data plane says {v.action.name} {v.reason.name} egress {v.egress} "
                        f"route {v.route}: the data plane's verdict is reported"))
        routes = net.routes()
        if 0 <= v.route < len(routes):
            r = routes[v.route]
            hops.append(Hop("route", f"{r.destination} -> {r.target.name}",
                            f"route #{v.route} reported by the data plane, in {r.route_table.name}, origin {r.origin}"))
    hops.append(_verdict_hop(net, v, d))
    owner = net.port_owner(v.egress) if v.egress >= 0 else None
    return Trace(src=name, dst=str(d), proto=pname, port=port,
                 ingress=eni.name, src_ip=str(sip), action=v.action, reason=v.reason, egress=v.egress,
                 egress_name=owner.name if owner is not None else None, route=v.route, hops=hops,
                 ra_code=RA_CODES.get(v.reason), agrees=agrees, verdict_source=source, frame=v.frame,
                 expected=expected, not_evaluated=_not_evaluated(net, v, filters, states is not None and not nat_fresh,
                                                                 reference.edge))
