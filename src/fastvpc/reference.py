"""The reference forwarder: the VPC data plane, one frame at a time, in plain Python.

This module is the readable model of fastvpc.  It is the oracle that the compiled kernels are
tested against, and, with its recorder on, it is ``fastvpc trace``: every stage notes a
:class:`Hop` (kind, object name, one-line explanation) as it decides.  It is written from the
contract (DESIGN.md section 1 and ``docs/forwarding-model.md``), not from the kernels, and it works
directly on the control-plane objects of :mod:`fastvpc.topology` (``Network``, ``Vpc``, ``Subnet``,
``RouteTable``, ``Eni`` ...), never on compiled arrays; it shares no table and no code with them.

Speed is not a goal; readability is.  The pipeline is :attr:`ReferenceForwarder.STAGES`, the same
stage names, in the same order, as the compiled kernel's driver (``forward.stage_names()``):

============  ======================================================================
ingress       steps 1-3, 9-14: port, Ethernet, IPv4 validity, group MAC, broadcast,
              multicast, source/destination check, destination MAC
arp           steps 4-8: the ARP proxy (decides the answer; the reply is built by rewrite)
router        steps 15-17: the own router (ICMP echo), other subnets' routers, link-local services
edge_ingress  (edge=True) a frame from a gateway's port: the IGW's public -> private translation, the VPC it
              enters, the gateway route table (docs/edge.md §3)
sg_egress     the sender ENI's security groups, egress (with ``state=``: its tracked flows)
nacl_egress   the sender subnet's network ACL, egress, when the packet leaves the subnet
local         step 18: a destination in the sender's own subnet, no route lookup
route         step 19: longest-prefix match in the subnet's route table, then the target
nat           (edge=True) NAT gateways (docs/edge.md §4): translate, then back to nacl_egress from the NAT
              gateway's subnet (the one backwards step of the pipeline), as the compiled nat stage does;
              nat=False keeps NAT gateways opaque exits (a frame routed to one is forwarded to its port)
edge_egress   (edge=True) out through an internet gateway: the 1:1 source translation or NO_PUBLIC_IP (§2)
nacl_ingress  the receiving subnet's network ACL, ingress, when the packet enters another subnet
sg_ingress    the receiving ENI's security groups, ingress (with ``state=``: its tracked flows)
rewrite       section 4: the only stage that writes the frame (DELIVER MACs, ARP and echo replies)
============  ======================================================================

The four filter stages (DESIGN.md section 5, rows #45-#56) call the control plane's own rule
semantics (:func:`fastvpc.topology.filters.security_groups_admit`, ``flow_is_untracked``,
:meth:`NetworkAcl.evaluate`); with ``state=`` (a :class:`ReferenceFlowTable`, the dict model of
``fastvpc.FlowTable``) the security-group stages consult and update the connection tracking.  The
verdicts of ingress/arp/router and frames to the VPC's Amazon DNS resolver (primary CIDR base + 2)
are never filtered (#50); ``ReferenceForwarder(net, filters=False)`` skips the four stages.

Each stage is one method taking the per-frame context :class:`Packet` and returning the name of
the next stage, or None when the verdict is final; a drop raises inside the stage.  Finer steps are
helper methods, each citing the step number of ``docs/forwarding-model.md`` (``step N``) and the
row of ``vpc-behaviour.md`` (``#N``) it implements.  A later stage (security groups, network ACLs,
NAT...) is one more method and one more name in ``STAGES``.

Any bytes and any port give a :class:`Verdict`; nothing here raises on frame content.

Usage::

    ref = ReferenceForwarder(net)                    # arp_mode="target" (default) or "single_mac"; filters=True
    v = ref.forward(frame_bytes, port=eni.port)      # Verdict(action, reason, egress, route, frame)
    hops: list[Hop] = []
    v = ref.forward(frame_bytes, eni.port, hops=hops)  # the same verdict, and why, stage by stage
    res = ref.process(batch)                         # like Dataplane.process: numpy arrays + frames
    flows = ReferenceFlowTable(capacity=1000)        # connection tracking (the dict model)
    res = ref.process(batch, state=flows, now=t_ns)  # stateful: frame by frame, in batch order
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import operator
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from fastvpc.errors import FrameBatchError
from fastvpc.reference_conntrack import ReferenceFlow, ReferenceFlowTable, reference_timeouts
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
from fastvpc.topology.filters import (
    IMPLICIT_DENY_NUMBER,
    NetworkAclEntry,
    SecurityGroupRule,
    flow_is_untracked,
    protocol_label,
    security_groups_admit,
)
from fastvpc.dataplane.state import Admit, FlowState, TrackCode
from fastvpc.reference_edge import (MAX_FLOWS_PER_DESTINATION, FragmentTable, NatTable, PublicIpMap, is_fragment, nat_inbound, nat_outbound,
                                    translate_destination, translate_source)
from fastvpc.verdicts import Action, DropReason

__all__ = ["STAGES", "Hop", "Packet", "ReferenceFlow", "ReferenceFlowTable", "ReferenceForwarder",
           "ReferenceResult", "Verdict"]

#: the forwarding pipeline, in order (the kernel's driver lists the same; tests hold them equal)
STAGES: tuple[str, ...] = ("ingress", "arp", "router", "edge_ingress", "sg_egress", "nacl_egress", "local", "route",
                           "nat", "edge_egress", "nacl_ingress", "sg_ingress", "rewrite")

ARP_MODES = ("target", "single_mac")

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETH_HEADER = 14
ARP_FRAME_MIN = 42  # Ethernet header + the 28-byte IPv4-over-Ethernet ARP packet
IPV4_FRAME_MIN = 34  # Ethernet header + a 20-byte IPv4 header
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
#: bytes of a complete L4 header (within the IPv4 total length) for the filters to read its fields
L4_HEADER = {IPPROTO_TCP: 20, IPPROTO_UDP: 8, IPPROTO_ICMP: 8}
ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
ECHO_REPLY_TTL = 64
LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
MULTICAST_RANGE = ipaddress.IPv4Network("224.0.0.0/4")
UNSPECIFIED = ipaddress.IPv4Address("0.0.0.0")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What the data plane does with one frame.

    ``egress``: port of the receiving ENI (DELIVER) or target (FORWARD), the ingress port
    (REPLY), -1 (DROP).  ``route``: index into ``Network.routes()`` of the route that
    decided, -1 when no route decided.  ``frame``: the output bytes (same length as the
    input; rewritten for DELIVER and REPLY, untouched otherwise).
    """

    action: Action
    reason: DropReason
    egress: int
    route: int
    frame: bytes = b""


@dataclasses.dataclass(frozen=True)
class Hop:
    """One step of an explanation: ``kind`` (port, frame, eni, arp, subnet, router, route-table, route,
    igw, vgw, nat, tgw, vpce, pcx, vpc, blackhole, sg, acl; the trace adds verdict and warning), the
    object's ``name``, a one-line ``detail``, and the ``stage`` of :data:`STAGES` that recorded it.
    The filter stages' hops (kinds ``sg`` and ``acl``) also carry the ``direction`` and the deciding
    ``rule`` (a security-group rule or a network ACL entry as a dict; None when none decided)."""

    kind: str
    name: str
    detail: str
    stage: str = ""
    #: the filter stages: the direction evaluated ("egress" / "ingress"), shown after the name
    direction: str = ""
    #: the filter stages: the deciding rule or entry as plain data (None: no rule decided)
    rule: dict[str, Any] | None = dataclasses.field(default=None, compare=False)

    def __str__(self) -> str:
        name = f"{self.name} {self.direction}" if self.direction else self.name
        return f"{self.kind:<11} {name}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "name": self.name, "detail": self.detail, "stage": self.stage}
        if self.direction:
            d["direction"] = self.direction
            d["rule"] = self.rule
        return d


@dataclasses.dataclass
class ReferenceResult:
    """Same shape as ``Dataplane.process``'s result: one entry per frame of the batch.

    With NAT gateways modelled (``edge=True``, ``nat`` on) in a network that has one, the four arrays of
    what they did, as ``Result.nat_gw`` & co. (docs/flow-logs.md "Through a NAT gateway"); else None."""

    action: npt.NDArray[np.uint8]
    reason: npt.NDArray[np.uint8]
    egress: npt.NDArray[np.int32]
    route: npt.NDArray[np.int32]
    frames: Any  # fastvpc.batch.FrameBatch
    nat_gw: npt.NDArray[np.int32] | None = None
    nat_dir: npt.NDArray[np.uint8] | None = None
    nat_ip: npt.NDArray[np.uint32] | None = None
    nat_l4: npt.NDArray[np.uint16] | None = None

    def __len__(self) -> int:
        return int(self.action.size)


# --------------------------------------------------------------------------- byte helpers

def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def _mac_text(b: bytes | bytearray) -> str:
    return ":".join(f"{x:02x}" for x in b)


def _u16(buf: bytes | bytearray, at: int) -> int:
    return (buf[at] << 8) | buf[at + 1]


def _ip_at(buf: bytes | bytearray, at: int) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(bytes(buf[at:at + 4]))


# The checksum is written again here (fastvpc.packets has one too) on purpose: the oracle shares no
# code with what it checks.
def internet_checksum(data: bytes | bytearray) -> int:
    """RFC 1071 checksum: one's complement of the one's-complement sum of 16-bit words.

    An odd-length input is summed as if padded with one zero byte.
    """
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def ones_complement_sum(data: bytes | bytearray) -> int:
    """The folded one's-complement sum (0xFFFF for a header whose checksum is valid)."""
    return (~internet_checksum(data)) & 0xFFFF


# --------------------------------------------------------------------------- the per-frame context

class _Drop(Exception):
    """Internal: a stage decided to drop the frame (``route`` is the deciding route or -1)."""

    def __init__(self, reason: DropReason, route: int = -1) -> None:
        super().__init__(reason.name)
        self.reason = reason
        self.route = route


@dataclasses.dataclass(frozen=True)
class _Ipv4:
    """The fields of a well-formed IPv4 packet that the forwarding steps look at."""

    ihl_bytes: int
    total_length: int
    proto: int
    more_fragments: bool
    fragment_offset: int
    src: ipaddress.IPv4Address
    dst: ipaddress.IPv4Address


@dataclasses.dataclass(frozen=True)
class _L4:
    """What the filters match a packet on (filters-spec "What a packet is matched on").

    ``port``: the TCP/UDP destination port, None when the L4 header is not complete in the packet or
    it is a non-first fragment (then only all-ports rules match); ``icmp``: (type, code), None likewise.
    For the tracking: ``sport`` (ICMP: the echo identifier), ``dport``, ``flags`` (TCP flags; ICMP
    type, 255 when unknown: never tracked) -- 0 when the header is incomplete."""

    port: int | None
    icmp: tuple[int, int] | None
    sport: int
    dport: int
    flags: int


@dataclasses.dataclass
class Packet:
    """What the stages know about one frame so far (the kernel keeps the same in its ``Pkt``).

    Filled in stage order: ``eni``, ``ethertype`` and ``ip`` by ingress; the pending verdict
    (``action``, ``egress``, ``route``, and for rewrite ``receiver``/``reply``/``arp_mac``) by the
    stage that decides; ``hops`` is the recorder (None: off).
    """

    frame: bytearray
    port: Any
    hops: list[Hop] | None = None
    stage: str = ""
    eni: Eni | None = None
    ethertype: int = 0
    ip: _Ipv4 | None = None
    action: Action = Action.DROP
    egress: int = -1
    route: int = -1
    receiver: Eni | None = None   # DELIVER: the receiving ENI
    via: str = ""                 # DELIVER: how the receiver was reached, for the explanation
    reply: str = ""               # REPLY: "arp" or "echo"
    arp_mac: str = ""             # ARP REPLY: the MAC the reply announces
    filtered: bool = False        # the four filter stages apply (set by router)
    l4: _L4 | None = None         # what the filters match on (set by sg_egress)
    state: ReferenceFlowTable | None = None   # connection tracking (None: every packet is a first packet)
    now: int = 0                  # ns, for the tracking
    gateway: Any = None           # edge: the internet / VPN / transit gateway the frame entered on (None: an ENI)
    rx_vpc: Vpc | None = None     # edge: the VPC a gateway frame enters
    nat_out: Any = None           # nat: the NAT gateway the frame is routed to (outbound)
    nat_in: Any = None            # nat: the NAT gateway whose private IP the frame is addressed to (the reply)
    nat_crossed: Any = None       # nat: the NAT gateway the frame crossed: it is routed on from its subnet
    #: nat, with state: what the last NAT gateway the frame reached did, as (its port, 0 none / 1 source /
    #: 2 destination replaced, the address replaced, its port or echo id): ``Result.nat_*`` of one frame
    nat_note: tuple[int, int, int, int] = (-1, 0, 0, 0)
    #: whether the recorder is on (the stages build their explanations only then)
    recording: bool = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.recording = self.hops is not None

    def note(self, kind: str, name: str, detail: str) -> None:
        """Record one hop (when the recorder is on)."""
        if self.hops is not None:
            self.hops.append(Hop(kind, name, detail, self.stage))

    def add(self, hop: Hop) -> None:
        """Record a ready-made hop (the filter stages': with a direction and a rule)."""
        if self.hops is not None:
            self.hops.append(hop)

    def drop(self, reason: DropReason, kind: str, name: str, detail: str, route: int = -1) -> _Drop:
        """Record why, and return the drop for the stage to raise."""
        self.note(kind, name, detail)
        return _Drop(reason, route)


# --------------------------------------------------------------------------- the forwarder

class ReferenceForwarder:
    """The readable one-frame-at-a-time forwarder over a live :class:`Network`.

    The forwarder reads ``net`` at each call (it keeps no snapshot), so build it right
    next to the ``net.compile()`` it is compared with.  It is a ``fastvpc.dataplane.Forwarder``:
    :meth:`process` takes a ``FrameBatch`` and returns the same arrays as ``Dataplane.process``.
    """

    #: the stage methods, in pipeline order (a later stage is one more method and one more name here)
    STAGES: ClassVar[tuple[str, ...]] = STAGES

    def __init__(self, net: Network, arp_mode: str = "target", filters: bool = True, edge: bool = True,
                 nat: bool | None = None) -> None:
        if arp_mode not in ARP_MODES:
            raise ValueError(f"arp_mode {arp_mode!r} must be one of {', '.join(ARP_MODES)}")
        if not isinstance(filters, bool):
            raise TypeError(f"filters must be True or False, not {filters!r}")
        if not isinstance(edge, bool):
            raise TypeError(f"edge must be True or False, not {edge!r}")
        self.net = net
        self.arp_mode = arp_mode
        #: whether the four filter stages run (False: exactly the routing verdicts, as compile(filters=False))
        self.filters = filters
        #: whether the edge stages run (docs/edge.md; False: gateways are opaque exits and frames on
        #: gateway ports UNKNOWN_PORT, as compile(edge=False))
        self.edge = edge
        if nat is None:
            nat = edge          # one model: NAT gateways are part of the edge, in both engines
        if not isinstance(nat, bool):
            raise TypeError(f"nat must be True, False or None, not {nat!r}")
        if nat and not edge:
            raise ValueError("nat=True needs edge=True (NAT gateways are part of the edge)")
        #: whether the nat stage models NAT gateways (docs/edge.md §4; the default wherever the edge is on, as
        #: the compiled pass); False: a frame routed to a NAT gateway is forwarded to its port
        self.nat_enabled = nat
        self._order = {name: i for i, name in enumerate(self.STAGES)}
        self._timeouts: dict[Any, dict[str, int]] = {}

    # ------------------------------------------------------------------ public API
    def forward(self, frame: Any, port: Any, hops: list[Hop] | None = None,
                state: ReferenceFlowTable | None = None, now: int | None = None) -> Verdict:
        """The verdict for one frame entering on ``port``.  Never raises on frame content.

        ``hops``: a list to append the explanation to, one :class:`Hop` per decision, in stage order.
        ``state``: a :class:`ReferenceFlowTable` the security-group stages consult and update, at
        time ``now`` (int ns, required with ``state``; ValueError when before the table's clock).
        """
        return self._forward(frame, port, hops, state, now)[0]

    def _forward(self, frame: Any, port: Any, hops: list[Hop] | None, state: ReferenceFlowTable | None,
                 now: int | None) -> tuple[Verdict, tuple[int, int, int, int]]:
        """:meth:`forward`, and what a NAT gateway did to the frame (``Packet.nat_note``)."""
        if state is not None:
            self._check_state(state)
            if now is None:
                raise ValueError("forward(state=...) needs now= (int ns)")
            now = state.check_now(now)
        try:
            data = memoryview(frame).tobytes()
        except (TypeError, ValueError):
            data = b""
        p = Packet(bytearray(data), port, hops, state=state, now=now or 0)
        try:
            self._run(p)
        except _Drop as drop:  # commit a drop: the frame is untouched (only rewrite writes it)
            return Verdict(Action.DROP, drop.reason, -1, drop.route, data), p.nat_note
        return Verdict(p.action, DropReason.NONE, p.egress, p.route, bytes(p.frame)), p.nat_note  # commit

    def process(self, batch: Any, copy: bool = False, state: ReferenceFlowTable | None = None,
                now: int | None = None) -> ReferenceResult:
        """Every frame of a ``FrameBatch``, like ``Dataplane.process``.

        ``copy=False`` writes the output frames back into ``batch`` (whose buffer must then be
        writeable, else :class:`fastvpc.FrameBatchError`) and ``res.frames is batch``;
        ``copy=True`` leaves ``batch`` untouched and ``res.frames`` is a new batch.

        ``state``: a :class:`ReferenceFlowTable`; the frames are then processed one at a time in batch
        order, each at ``now`` (int ns, for every frame) or else at its ``batch.timestamp``.  With
        ``state``: no time at all, a frame with timestamp -1, a time before the table's clock or
        timestamps going backwards raise ``ValueError`` naming the frame, before anything changes;
        a table another pass holds raises ``FlowTableBusyError``.
        """
        if not copy and not batch.writeable:
            raise FrameBatchError("process(): the batch's data buffer is read-only and frames are rewritten "
                                  "in place; pass copy=True to process a copy")
        n = len(batch)
        times: list[int] | None = None
        if state is not None:
            self._check_state(state)
            times = self._frame_times(batch, state, now)
        action = np.zeros(n, dtype=np.uint8)
        reason = np.zeros(n, dtype=np.uint8)
        egress = np.full(n, -1, dtype=np.int32)
        route = np.full(n, -1, dtype=np.int32)
        notes = self._has_nat_gateways()
        nat = (np.full(n, -1, np.int32), np.zeros(n, np.uint8), np.zeros(n, np.uint32), np.zeros(n, np.uint16)) \
            if notes else None
        out = batch.copy() if copy else batch
        offsets = out.offsets
        ports = batch.port
        guard = state.guard() if state is not None else contextlib.nullcontext()
        with guard:
            for i in range(n):
                v, note = self._forward(batch.frame(i), int(ports[i]), None, state,
                                        None if times is None else times[i])
                action[i], reason[i], egress[i], route[i] = int(v.action), int(v.reason), v.egress, v.route
                if nat is not None:
                    nat[0][i], nat[1][i], nat[2][i], nat[3][i] = note
                a, b = int(offsets[i]), int(offsets[i + 1])
                out.data[a:b] = np.frombuffer(v.frame, dtype=np.uint8)
        if nat is None:
            return ReferenceResult(action, reason, egress, route, out)
        return ReferenceResult(action, reason, egress, route, out, nat_gw=nat[0], nat_dir=nat[1], nat_ip=nat[2],
                               nat_l4=nat[3])

    def _has_nat_gateways(self) -> bool:
        """Whether this forwarder models NAT gateways and the network has one (then process() reports what
        they did, as a compiled snapshot of it does)."""
        return self.edge and self.nat_enabled and any(isinstance(g, NatGateway) for v in self.net.vpcs
                                                      for g in v.gateways)

    @staticmethod
    def _check_state(state: Any) -> None:
        if not isinstance(state, ReferenceFlowTable):
            raise TypeError(f"the reference forwarder's state must be a fastvpc.reference.ReferenceFlowTable, not "
                            f"{type(state).__name__} (a fastvpc.FlowTable is the compiled Dataplane's)")

    @staticmethod
    def _frame_times(batch: Any, state: ReferenceFlowTable, now: int | None) -> list[int]:
        """Each frame's time (ns): ``now`` for all, else its timestamp; checked before anything changes."""
        n = len(batch)
        if now is not None:
            t = state.check_now(now)
            return [t] * n
        ts = batch.timestamp
        if ts is None:
            if n == 0:
                return []
            raise ValueError("process(state=...) needs now= or a batch with timestamps: frame 0 has no time")
        times = [int(x) for x in ts]
        prev = state.clock
        for i, t in enumerate(times):
            if t < 0:
                raise ValueError(f"process(state=...): frame {i} has no timestamp ({t}); pass now=")
            if prev is not None and t < prev:
                what = "the table's clock" if i == 0 else f"frame {i - 1}'s timestamp"
                raise ValueError(f"process(state=...): frame {i}'s timestamp {t} ns goes backwards (before {what} "
                                 f"{prev} ns)")
            prev = t
        return times

    # ------------------------------------------------------------------ the pipeline
    def _run(self, p: Packet) -> None:
        """Run the stages from ``ingress``; each names the next (always a later one) or ends the frame."""
        order = self._order
        stage: str | None = self.STAGES[0]
        while stage is not None:
            p.stage = stage
            nxt = getattr(self, stage)(p)
            if nxt is not None and order[nxt] <= order[stage] and stage != "nat":  # pragma: no cover - a bug
                raise AssertionError(f"stage {stage} sent the frame back to {nxt}")
            stage = nxt

    # stage "ingress": steps 1-3, 9-14 --------------------------------------
    def ingress(self, p: Packet) -> str:
        """Steps 1-3 and 9-14: whose frame, is it well formed, and may it enter the VPC at all."""
        if self.edge:
            gw = self.ingress_gateway(p)
            if gw is not None:                                # docs/edge.md §3: a frame from outside
                return self.gateway_ingress(p, gw)
        eni = p.eni = self.ingress_eni(p)                     # step 1
        subnet, vpc = eni.subnet, eni.vpc
        p.ethertype = self.ethernet(p)                        # steps 2-3, #1
        if p.ethertype == ETHERTYPE_ARP:
            if p.recording:
                p.note("eni", eni.name, self.eni_text(eni))
            return "arp"
        ip = p.ip = self.ipv4_well_formed(p)                  # step 9
        if p.recording:
            p.note("eni", eni.name, f"{self.eni_text(eni)}; {self.source_check_text(ip.src, eni)}")
        self.l2_group_address(p)                              # step 10, #4
        self.broadcast(p, ip.dst, vpc)                        # step 11, #2
        self.multicast(p, ip.dst)                             # step 12, #3
        self.source_check(ip.src, eni)                        # step 13, #43 (explained in the ENI hop)
        self.known_mac(p, subnet)                             # step 14, #11
        return "router"

    def ingress_eni(self, p: Packet) -> Eni:
        """Step 1: the port must be an ENI of the network (not a gateway, peering, or nothing)."""
        try:
            port = operator.index(p.port)
        except TypeError:
            raise p.drop(DropReason.UNKNOWN_PORT, "port", repr(p.port), "not a port number") from None
        obj = self.net.port_owner(port)
        if not isinstance(obj, Eni) or not self.net.holds(obj) or obj not in obj.subnet.enis:
            what = f"the port of {obj.kind} {obj.name}" if obj is not None else "no ENI's or target's port"
            raise p.drop(DropReason.UNKNOWN_PORT, "port", str(port),
                         f"port {port} is {what}: frames enter the VPC only from an ENI")
        return obj

    def ingress_gateway(self, p: Packet) -> InternetGateway | VpnGateway | TransitGateway | None:
        """Edge (docs/edge.md §3): the internet, VPN or transit gateway whose port ``p.port`` is, else None."""
        try:
            port = operator.index(p.port)
        except TypeError:
            return None
        obj = self.net.port_owner(port)
        if isinstance(obj, (InternetGateway, VpnGateway, TransitGateway)) and self.net.holds(obj):
            return obj
        return None

    def gateway_ingress(self, p: Packet, gw: InternetGateway | VpnGateway | TransitGateway) -> str:
        """docs/edge.md §3: the same parsing checks as an ENI's frame; no source/dest check and no router
        answer for outside frames; IPv4 must be addressed to the gateway's MAC."""
        p.gateway = gw
        p.ethertype = self.ethernet(p)
        if p.ethertype == ETHERTYPE_ARP:
            if p.recording:
                p.note(gw.kind, gw.name, f"frame from outside on the port {gw.port} of {describe_target(gw)}")
            return "arp"
        ip = p.ip = self.ipv4_well_formed(p)
        if p.recording:
            p.note(gw.kind, gw.name, f"frame from outside ({ip.src} -> {ip.dst}) on the port {gw.port} of "
                   f"{describe_target(gw)}")
        self.l2_group_address(p)
        if ip.dst == LIMITED_BROADCAST:
            raise p.drop(DropReason.BROADCAST, gw.kind, gw.name, f"{ip.dst} is the limited broadcast address")
        self.multicast(p, ip.dst)
        if bytes(p.frame[0:6]) != _mac_bytes(gw.mac):
            raise p.drop(DropReason.UNKNOWN_MAC, "frame", gw.name,
                         f"destination MAC {_mac_text(p.frame[0:6])} is not the MAC {gw.mac} of {gw.name}")
        return "edge_ingress"

    @staticmethod
    def ethernet(p: Packet) -> int:
        """Steps 2-3 (#1): 14 bytes at least; only ARP and IPv4 pass (VLAN-tagged frames do not)."""
        f, name = p.frame, p.eni.name if p.eni is not None else ""
        if len(f) < ETH_HEADER:
            raise p.drop(DropReason.MALFORMED, "frame", name, f"{len(f)}-byte frame: shorter than an Ethernet header")
        ethertype = _u16(f, 12)
        if ethertype not in (ETHERTYPE_ARP, ETHERTYPE_IPV4):
            raise p.drop(DropReason.NON_IPV4, "frame", name, f"ethertype 0x{ethertype:04x} is neither ARP nor IPv4 "
                         "(IPv6, VLAN tags, LLDP...): not carried")
        return ethertype

    @staticmethod
    def ipv4_well_formed(p: Packet) -> _Ipv4:
        """Step 9: version 4, IHL >= 5, header and total length inside the frame, valid checksum."""
        f = p.frame
        L = len(f)

        def bad(why: str) -> _Drop:
            return p.drop(DropReason.MALFORMED, "frame", p.eni.name if p.eni is not None else "",
                          f"malformed IPv4: {why}")

        if L < IPV4_FRAME_MIN:
            raise bad(f"{L}-byte frame, shorter than Ethernet + a 20-byte header")
        version, ihl = f[14] >> 4, f[14] & 0x0F
        if version != 4 or ihl < 5:
            raise bad(f"version {version}, IHL {ihl}")
        hlen = ihl * 4
        if ETH_HEADER + hlen > L:
            raise bad(f"the {hlen}-byte header runs past the {L}-byte frame")
        tl = _u16(f, 16)
        if tl < hlen or ETH_HEADER + tl > L:  # bytes after 14 + tl are Ethernet padding
            raise bad(f"total length {tl} does not fit the header and the {L}-byte frame")
        if ones_complement_sum(f[ETH_HEADER:ETH_HEADER + hlen]) != 0xFFFF:
            raise bad("bad header checksum")
        flags_frag = _u16(f, 20)
        return _Ipv4(ihl_bytes=hlen, total_length=tl, proto=f[23],
                     more_fragments=bool(flags_frag & 0x2000), fragment_offset=flags_frag & 0x1FFF,
                     src=_ip_at(f, 26), dst=_ip_at(f, 30))

    @staticmethod
    def l2_group_address(p: Packet) -> None:
        """Step 10 (#4): IPv4 to a broadcast/multicast MAC is not flooded."""
        if p.frame[0] & 1:
            raise p.drop(DropReason.L2_BROADCAST, "frame", p.eni.name if p.eni is not None else "",
                         f"destination MAC {_mac_text(p.frame[0:6])} is a group address: the VPC does not flood")

    @staticmethod
    def broadcast(p: Packet, dst: ipaddress.IPv4Address, vpc: Vpc) -> None:
        """Step 11 (#2): limited broadcast, or the last address of any subnet of the VPC."""
        if dst == LIMITED_BROADCAST or any(dst == s.broadcast_ip for s in vpc.subnets):
            subnet = p.eni.subnet.name if p.eni is not None else ""
            raise p.drop(DropReason.BROADCAST, "subnet", subnet,
                         f"{dst} is a broadcast address in VPC {vpc.name}: the VPC has no broadcast")

    @staticmethod
    def multicast(p: Packet, dst: ipaddress.IPv4Address) -> None:
        """Step 12 (#3): no multicast in a VPC."""
        if dst in MULTICAST_RANGE:
            subnet = p.eni.subnet.name if p.eni is not None else ""
            raise p.drop(DropReason.MULTICAST, "subnet", subnet,
                         f"{dst} is multicast: the VPC has no multicast (without a TGW domain)")

    @staticmethod
    def source_check(src: ipaddress.IPv4Address, eni: Eni) -> None:
        """Step 13 (#43): with source/dest check on, an ENI sends only from its own IPs (#44: secondaries too)."""
        if eni.source_dest_check and src not in eni.ips:
            raise _Drop(DropReason.SRC_DST_CHECK)

    @staticmethod
    def eni_text(eni: Eni) -> str:
        return f"ingress ENI ({', '.join(map(str, eni.ips))}, {eni.mac}) in subnet {eni.subnet.name}"

    @staticmethod
    def source_check_text(src: ipaddress.IPv4Address, eni: Eni) -> str:
        """Step 13 in words (the ENI hop says it before the broadcast checks that precede the drop)."""
        if not eni.source_dest_check:
            return "source/dest check off: any source address is accepted"
        if src in eni.ips:
            return f"source/dest check on: source {src} is its own address"
        return f"source/dest check is on and source {src} is not one of its addresses"

    @staticmethod
    def known_mac(p: Packet, subnet: Subnet) -> None:
        """Step 14 (#11): unicast IPv4 must be addressed to the subnet's router or to one of its ENIs."""
        dst_mac = bytes(p.frame[0:6])
        known = [_mac_bytes(subnet.gateway_mac)] + [_mac_bytes(e.mac) for e in subnet.enis]
        if dst_mac not in known:
            raise p.drop(DropReason.UNKNOWN_MAC, "frame", p.eni.name if p.eni is not None else "",
                         f"destination MAC {_mac_text(dst_mac)} is neither the gateway MAC of subnet {subnet.name} "
                         "nor an ENI of it")

    # stage "arp": steps 4-8, the ARP proxy (#5, #6, #7) ---------------------
    def arp(self, p: Packet) -> str:
        """Steps 4-8: answer requests from the mapping; never learn, never flood."""
        if p.gateway is not None:
            return self.gateway_arp(p, p.gateway)
        f, eni = p.frame, p.eni
        assert eni is not None
        if len(f) < ARP_FRAME_MIN or _u16(f, 14) != 1 or _u16(f, 16) != ETHERTYPE_IPV4 or f[18] != 6 or f[19] != 4:
            raise p.drop(DropReason.MALFORMED, "frame", eni.name,   # step 4
                         "not a whole Ethernet/IPv4 ARP packet (42 bytes, htype 1, ptype 0x0800, hlen 6, plen 4)")
        op = _u16(f, 20)
        if op != 1:                                           # step 5: replies and other ops
            raise p.drop(DropReason.ARP_IGNORED, "arp", eni.subnet.name,
                         f"ARP op {op} is not a request: the VPC's mapping is authoritative and never learned")
        spa, tpa = _ip_at(f, 28), _ip_at(f, 38)
        if spa == UNSPECIFIED or spa == tpa:                  # step 6: probes, gratuitous ARP
            what = "a probe (sender 0.0.0.0)" if spa == UNSPECIFIED else "gratuitous (sender = target)"
            raise p.drop(DropReason.ARP_IGNORED, "arp", eni.subnet.name, f"the request for {tpa} is {what}: ignored")
        p.arp_mac = self.arp_answer(p, tpa, eni)              # step 7
        p.action, p.egress, p.reply = Action.REPLY, eni.port, "arp"   # step 8, built by rewrite
        return "rewrite"

    @staticmethod
    def gateway_arp(p: Packet, gw: Any) -> str:
        """docs/edge.md §3: on a gateway's port every ARP request (not a probe, not gratuitous) is answered
        with the gateway's MAC; other ARP is ignored."""
        f = p.frame
        if len(f) < ARP_FRAME_MIN or _u16(f, 14) != 1 or _u16(f, 16) != ETHERTYPE_IPV4 or f[18] != 6 or f[19] != 4:
            raise p.drop(DropReason.MALFORMED, "frame", gw.name,
                         "not a whole Ethernet/IPv4 ARP packet (42 bytes, htype 1, ptype 0x0800, hlen 6, plen 4)")
        op = _u16(f, 20)
        if op != 1:
            raise p.drop(DropReason.ARP_IGNORED, "arp", gw.name, f"ARP op {op} is not a request: ignored")
        spa, tpa = _ip_at(f, 28), _ip_at(f, 38)
        if spa == UNSPECIFIED or spa == tpa:
            what = "a probe (sender 0.0.0.0)" if spa == UNSPECIFIED else "gratuitous (sender = target)"
            raise p.drop(DropReason.ARP_IGNORED, "arp", gw.name, f"the request for {tpa} is {what}: ignored")
        p.note("arp", gw.name, f"who-has {tpa} from outside: answered with the gateway's MAC {gw.mac}")
        p.arp_mac = gw.mac
        p.action, p.egress, p.reply = Action.REPLY, gw.port, "arp"
        return "rewrite"

    def arp_answer(self, p: Packet, tpa: ipaddress.IPv4Address, eni: Eni) -> str:
        """Step 7: the MAC to answer with; #6 router -> gateway MAC, #5 ENI IP -> its MAC, #7 else none."""
        subnet = eni.subnet
        if self.arp_mode == "single_mac":                     # early VPCs: one MAC for everything
            p.note("arp", subnet.name, f"who-has {tpa}: answered with the gateway MAC {subnet.gateway_mac} "
                   "(arp_mode single_mac answers every request so)")
            return subnet.gateway_mac
        if tpa == subnet.router_ip:                           # #6
            p.note("arp", subnet.name, f"who-has {tpa}: the router of subnet {subnet.name}, "
                   f"answered with the gateway MAC {subnet.gateway_mac}")
            return subnet.gateway_mac
        owner = self.eni_owning(eni.vpc, tpa)                 # #5 (any subnet of the VPC)
        if owner is not None:
            p.note("arp", owner.name, f"who-has {tpa}: an address of {owner.name} in subnet {owner.subnet.name}, "
                   f"answered with its MAC {owner.mac}")
            return owner.mac
        raise p.drop(DropReason.ARP_NO_ENTRY, "arp", subnet.name,   # #7
                     f"who-has {tpa}: no ENI of VPC {eni.vpc.name} has it and it is not the subnet's router")

    # stage "router": steps 15-17 --------------------------------------------
    def router(self, p: Packet) -> str:
        """Steps 15-17: the own router answers ICMP echo; other routers and link-local services are not reachable."""
        eni, ip = p.eni, p.ip
        assert eni is not None and ip is not None
        subnet = eni.subnet
        if ip.dst == subnet.router_ip:                        # step 15, #57/#59
            self.own_router(p, ip, subnet)
            p.action, p.egress, p.reply = Action.REPLY, eni.port, "echo"   # built by rewrite
            return "rewrite"
        self.other_router(p, ip.dst, eni)                     # step 16, #58
        self.link_local_service(p, ip.dst)                    # step 17, #16
        if not self.filters:
            return "local"
        if ip.dst == self.amazon_dns(eni.vpc):                # #50: the resolver is never filtered
            if p.recording:
                p.note("vpc", eni.vpc.name, f"{ip.dst} is the Amazon DNS resolver of VPC {eni.vpc.name} (its primary "
                       f"CIDR {eni.vpc.cidr} + 2): security groups and network ACLs do not filter it")
            return "local"
        p.filtered = True
        return "sg_egress"

    @staticmethod
    def amazon_dns(vpc: Vpc) -> ipaddress.IPv4Address:
        """#50: the VPC's Amazon DNS resolver, its primary CIDR's base + 2."""
        return vpc.cidr.network_address + 2

    @staticmethod
    def subnet_text(subnet: Subnet) -> str:
        return (f"subnet {subnet.cidr} of VPC {subnet.vpc.name} (router {subnet.router_ip}, "
                f"gateway MAC {subnet.gateway_mac})")

    def own_router(self, p: Packet, ip: _Ipv4, subnet: Subnet) -> None:
        """Step 15: the subnet's router answers ICMP echo (#57) and nothing else (#59)."""
        f, h = p.frame, ETH_HEADER + ip.ihl_bytes
        is_echo = (ip.proto == IPPROTO_ICMP and not ip.more_fragments and ip.fragment_offset == 0
                   and ip.total_length >= ip.ihl_bytes + 8 and f[h] == ICMP_ECHO_REQUEST and f[h + 1] == 0)
        where = f"{ip.dst} is the router of {self.subnet_text(subnet)}"
        if not is_echo:
            raise p.drop(DropReason.ROUTER_UNSUPPORTED, "router", subnet.name, f"{where}: it answers ICMP echo only")
        p.note("router", subnet.name, f"{where}: it answers ICMP echo itself")

    @staticmethod
    def other_router(p: Packet, dst: ipaddress.IPv4Address, eni: Eni) -> None:
        """Step 16 (#58): another subnet's router address is not reachable."""
        for other in eni.vpc.subnets:
            if other is not eni.subnet and dst == other.router_ip:
                raise p.drop(DropReason.ROUTER_NOT_OWN_SUBNET, "router", other.name,
                             f"{dst} is the router of subnet {other.name} ({other.cidr}); a VM can only reach "
                             f"its own subnet's router ({eni.subnet.router_ip})")

    @staticmethod
    def link_local_service(p: Packet, dst: ipaddress.IPv4Address) -> None:
        """Step 17 (#16): 169.254.168.0/22 is never routed, whatever the table says."""
        if dst in RESERVED_SERVICE_RANGE:
            raise p.drop(DropReason.LINK_LOCAL_SERVICE, "subnet", p.eni.subnet.name if p.eni is not None else "",
                         f"{dst} is in {RESERVED_SERVICE_RANGE} (instance metadata, DNS, time sync): "
                         "served on the host, never routed")

    # stage "edge_ingress": a frame from a gateway's port (docs/edge.md §3) ---
    def edge_ingress(self, p: Packet) -> str | None:
        """The internet gateway's destination translation (public -> private, else NO_SUCH_PUBLIC_IP), or
        a VPN / transit gateway's VPC; then the gateway's route table (else the VPC's local routes)."""
        gw, ip = p.gateway, p.ip
        assert gw is not None and ip is not None
        dst = ip.dst
        if isinstance(gw, InternetGateway):
            vpc = gw.vpc
            found = PublicIpMap(self.net).private_ip_of(vpc, dst)
            if found is None:
                raise p.drop(DropReason.NO_SUCH_PUBLIC_IP, "igw", gw.name,
                             f"{dst} is no public IP associated in VPC {vpc.name}: dropped "
                             "(IGW_PRIVATE_IP_ASSOCIATION_FOR_INGRESS)")
            owner, private = found
            translate_destination(p.frame, private)
            ip = p.ip = dataclasses.replace(ip, dst=private)
            if p.recording:
                p.note("igw", gw.name, f"destination {dst} is the Elastic IP of {owner.name}: translated 1:1 to "
                       f"{private} (IPv4 and L4 checksums updated incrementally)")
            dst = private
        else:
            vpcs = [gw.vpc] if isinstance(gw, VpnGateway) else list(gw.attachments)
            hit = next((v for v in vpcs if v.contains(dst)), None)
            if hit is None:
                raise p.drop(DropReason.NO_ROUTE, gw.kind, gw.name,
                             f"{dst} is in no CIDR of {', '.join(v.name for v in vpcs) or 'any attached VPC'}")
            vpc = hit
            if isinstance(gw, TransitGateway) and p.recording:
                p.note("tgw", gw.name, f"{dst} enters attached VPC {vpc.name} (the first attachment whose CIDR holds "
                       "it); transit gateway route tables are not modelled")
            if any(dst == s.broadcast_ip for s in vpc.subnets):
                raise p.drop(DropReason.BROADCAST, "vpc", vpc.name, f"{dst} is a broadcast address in VPC {vpc.name}")
        p.rx_vpc = vpc
        p.l4 = self.l4_fields(p.frame, ip)
        p.filtered = self.filters
        nat = self.nat_owning(vpc, dst)
        rt = gw.route_table if isinstance(gw, (InternetGateway, VpnGateway)) else None
        if nat is not None and rt is None:                    # the reply path of a NAT gateway (§4.2)
            p.nat_in = nat
            return "nat"
        if rt is None:
            owner_eni = self.eni_owning(vpc, dst)
            if owner_eni is None:
                raise p.drop(DropReason.NO_SUCH_HOST, "vpc", vpc.name,
                             f"{gw.name} has no gateway route table: local routes only, and no ENI of VPC "
                             f"{vpc.name} owns {dst}")
            if p.recording:
                p.note("vpc", vpc.name, f"{gw.name} has no gateway route table: local, {dst} belongs to "
                       f"{owner_eni.name} in subnet {owner_eni.subnet.name}")
            self.deliver_to(p, owner_eni)
            return self.delivered(p)
        if p.recording:
            p.note("route-table", rt.name, f"gateway route table of {gw.name} (edge association)")
        match = None
        for r in rt.routes:
            if dst in r.destination and (match is None or r.destination.prefixlen > match.destination.prefixlen):
                match = r
        if match is None:
            raise p.drop(DropReason.NO_ROUTE, "route", "(none)", f"no route in {rt.name} matches {dst}")
        index = p.route = self.route_index(match)
        target = match.target
        if p.recording:
            p.note("route", f"{match.destination} -> {target.name}", f"longest prefix match for {dst} in "
                   f"{rt.name}: route #{index}, origin {match.origin}, state {match.state}")
        if target is BLACKHOLE:
            raise p.drop(DropReason.BLACKHOLE, "blackhole", str(match.destination),
                         "the route's target is gone: dropped", index)
        if target is LOCAL:
            if nat is not None:                               # §4.2, by the gateway route table's local route
                if p.recording:
                    p.note("vpc", vpc.name, f"local: {dst} is the private IP of NAT gateway {nat.name}")
                p.nat_in = nat
                return "nat"
            owner_eni = self.eni_owning(vpc, dst)
            if owner_eni is None:
                raise p.drop(DropReason.NO_SUCH_HOST, "vpc", vpc.name,
                             f"local route: no ENI of VPC {vpc.name} owns {dst}", index)
            self.deliver_to(p, owner_eni)
            return self.delivered(p)
        if isinstance(target, Eni):                           # #40: the appliance
            if target.source_dest_check and dst not in target.ips:
                raise p.drop(DropReason.SRC_DST_CHECK, "eni", target.name,
                             f"target ENI has source/dest check on and {dst} is not its address: dropped", index)
            self.deliver_to(p, target, via="appliance of the gateway route table; ")
            return self.delivered(p)
        if isinstance(target, Target):                        # a Gateway Load Balancer endpoint
            if p.recording:
                p.note(target.kind, target.name, f"{describe_target(target)}: forwarded on port {target.port}")
            p.action, p.egress = Action.FORWARD, target.port
            return None
        raise _Drop(DropReason.BLACKHOLE, index)  # pragma: no cover

    # stage "nat": NAT gateways (docs/edge.md §4) --------------------------
    @staticmethod
    def hop_subnet(p: Packet) -> Subnet:
        """The subnet the frame is routed from: the sender's, or after a NAT gateway that gateway's (§4.1 step 6)."""
        if p.nat_crossed is not None:
            return p.nat_crossed.subnet
        assert p.eni is not None
        return p.eni.subnet

    def nat_owning(self, vpc: Vpc, ip: ipaddress.IPv4Address) -> NatGateway | None:
        """With NAT gateways modelled (the default with the edge): the NAT gateway of ``vpc`` whose private IP
        ``ip`` is (the reply path, §4.2)."""
        if not self.nat_enabled:
            return None
        for g in vpc.gateways:
            if isinstance(g, NatGateway) and g.ip == ip and g.subnet is not None:
                return g
        return None

    def nat_tables(self, state: Any) -> tuple[NatTable, FragmentTable]:
        """The NAT bindings kept with ``state`` (the reference's flow table), as the kernel's live in its
        FlowTable: every forwarder over the same state sees them."""
        got: tuple[NatTable, FragmentTable] | None = getattr(state, "_nat_bindings", None)
        if got is None:
            got = (NatTable(capacity=state.capacity,
                            max_per_destination=getattr(state, "nat_max_per_destination", MAX_FLOWS_PER_DESTINATION)),
                   FragmentTable())
            state._nat_bindings = got
        return got

    def nat(self, p: Packet) -> str | None:
        """docs/edge.md §4 (the compiled pass's stages/nat.pxd does the same; with ``nat=False`` a frame routed
        to a NAT gateway is forwarded to its port instead)."""
        ip = p.ip
        assert ip is not None
        n = p.nat_in if p.nat_in is not None else p.nat_out
        if p.state is None:
            raise p.drop(DropReason.NAT_NEEDS_STATE, "nat", n.name,
                         "NAT gateway bindings live in the flow table: process(state=...) is needed", p.route)
        p.state.advance_clock(p.now)        # the table has seen now (the kernel's nat_pass moves its clock too)
        p.nat_note = (n.port, 0, 0, 0)      # reached (a second NAT hop: this one, which does nothing)
        if p.nat_crossed is not None:
            raise p.drop(DropReason.NAT_UNSUPPORTED, "nat", n.name,
                         f"the frame already crossed {p.nat_crossed.name}: no second NAT gateway hop", p.route)
        table, frags = self.nat_tables(p.state)
        if p.nat_in is not None:
            return self.nat_reply(p, n, table, frags)
        if n.subnet is None or n.ip is None:
            raise p.drop(DropReason.NAT_UNSUPPORTED, "nat", n.name, "the NAT gateway has no subnet and no address",
                         p.route)
        why = self.nat_protocol(p.frame, ip)
        if why:
            raise p.drop(DropReason.NAT_UNSUPPORTED, "nat", n.name, why, p.route)
        if self.filters and (p.eni is None or p.eni.subnet is not n.subnet):
            if p.l4 is None:
                p.l4 = self.l4_fields(p.frame, ip)
            self.network_acl(p, n.subnet, "ingress", ip.src, DropReason.NACL_INGRESS)
        assert p.eni is not None
        out = nat_outbound(p.frame, n, table, p.now, _mac_bytes(p.eni.subnet.gateway_mac), frags)
        if out.reply:
            if p.recording:
                p.note("nat", n.name, "no live binding for this TCP segment (idle 350 s, or never opened): answered "
                       "with a RST from the remote address to the inside host")
            p.action, p.egress, p.reply = Action.REPLY, p.eni.port, "rst"
            return None
        if out.reason is not None:
            raise p.drop(out.reason, "nat", n.name, f"{out.reason.name} at NAT gateway {n.name}", p.route)
        b = out.binding
        assert b is not None
        p.nat_note = (n.port, 1, int(ip.src), 0 if ip.fragment_offset else b.inside_port)
        p.ip = dataclasses.replace(ip, src=n.ip)
        p.l4 = self.l4_fields(p.frame, p.ip)
        if p.recording:
            p.note("nat", n.name, f"source {ip.src}:{b.inside_port} translated to {n.ip}:{b.nat_port} "
                   f"(binding to {ipaddress.IPv4Address(b.remote_ip)}:{b.remote_port}); routed on from subnet "
                   f"{n.subnet.name}")
        p.nat_crossed = n
        p.action, p.egress = Action.DROP, -1
        return "nacl_egress" if self.filters else "local"

    def nat_reply(self, p: Packet, n: NatGateway, table: NatTable, frags: FragmentTable) -> str:
        """§4.2: the binding translates the destination back to the inside host; routed on from the NAT's subnet."""
        ip = p.ip
        assert ip is not None and n.subnet is not None
        if self.filters:
            if p.l4 is None:
                p.l4 = self.l4_fields(p.frame, ip)
            self.network_acl(p, n.subnet, "ingress", ip.src, DropReason.NACL_INGRESS)
        back = nat_inbound(p.frame, n, table, p.now, frags)
        if back.reason is not None:
            raise p.drop(back.reason, "nat", n.name, f"{back.reason.name}: the NAT gateway did not open this flow "
                         "(it answers no unsolicited traffic)", p.route)
        b = back.binding
        assert b is not None
        p.nat_note = (n.port, 2, int(ip.dst), 0 if ip.fragment_offset else b.nat_port)
        inside = ipaddress.IPv4Address(b.inside_ip)
        p.ip = dataclasses.replace(ip, dst=inside)
        p.l4 = self.l4_fields(p.frame, p.ip)
        if p.recording:
            p.note("nat", n.name, f"reply to {n.ip}:{b.nat_port} translated back to {inside}:{b.inside_port}")
        p.nat_crossed = n
        p.nat_in = None
        p.action, p.egress, p.receiver = Action.DROP, -1, None
        p.filtered = self.filters
        return "nacl_egress" if self.filters else "local"

    @staticmethod
    def nat_protocol(f: bytearray, ip: _Ipv4) -> str:
        """§4.1 step 1: '' when the NAT gateway can translate the packet, else why not."""
        if ip.proto not in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP):
            return f"protocol {ip.proto}: a NAT gateway translates TCP, UDP and ICMP only"
        if is_fragment(f) and ip.proto != IPPROTO_UDP:
            return "a TCP or ICMP fragment: a NAT gateway does not translate them"
        if ip.fragment_offset:
            return ""
        need = L4_HEADER[ip.proto]
        if ip.total_length - ip.ihl_bytes < need:
            return "the L4 header is not complete"
        if ip.proto == IPPROTO_ICMP and f[ETH_HEADER + ip.ihl_bytes] != ICMP_ECHO_REQUEST:
            return "an ICMP message other than an echo request"
        return ""

    # stage "edge_egress": out through the internet gateway (docs/edge.md §2) ---
    def edge_egress(self, p: Packet) -> None:
        """The source becomes its public IP 1:1 (checksums updated incrementally), else NO_PUBLIC_IP."""
        ip = p.ip
        assert ip is not None
        vpc = self.hop_subnet(p).vpc
        igw = self.net.port_owner(p.egress)
        name = igw.name if igw is not None else str(p.egress)
        public = PublicIpMap(self.net).public_ip_of(vpc, ip.src)
        if public is None:
            raise p.drop(DropReason.NO_PUBLIC_IP, "igw", name,
                         f"{ip.src} has no public IP (an ENI's primary IP with an Elastic IP, or a public NAT "
                         "gateway's): dropped (IGW_PUBLIC_IP_ASSOCIATION_FOR_EGRESS)", p.route)
        translate_source(p.frame, public)
        if p.recording:
            p.note("igw", name,
                   f"source {ip.src} translated 1:1 to its public IP {public} (IPv4 and L4 checksums updated "
                   "incrementally); destination unchanged")
        return None

    # stage "sg_egress": the sender's security groups (#45-#49) -------------
    def sg_egress(self, p: Packet) -> str:
        """The sender ENI's groups, egress, peer = the destination IP; with ``state``, its tracked flows."""
        eni, ip = p.eni, p.ip
        assert eni is not None and ip is not None
        p.l4 = self.l4_fields(p.frame, ip)
        if not self.later_fragment(p, eni, "egress"):
            self.security_groups(p, eni, "egress", ip.dst, DropReason.SG_EGRESS)
        return "nacl_egress"

    def later_fragment(self, p: Packet, eni: Eni, direction: str) -> bool:
        """A non-first fragment carries no L4 header: the groups judge its datagram by the first fragment
        (rules or a tracked flow) and pass the rest, which a host reassembles only with that first one (as
        Linux's conntrack judges the reassembled datagram); no table step.  The NACLs still judge it."""
        ip = p.ip
        assert ip is not None
        if not ip.fragment_offset:
            return False
        if p.recording:
            p.add(Hop("sg", ", ".join(g.name for g in eni.security_groups),
                      f"passed: a later fragment (offset {ip.fragment_offset * 8}) has no {protocol_label(ip.proto)} "
                      "header; the security groups judged its datagram by the first fragment",
                      p.stage, direction, {"fragment": True}))
        return True

    # stage "nacl_egress": the sender subnet's network ACL (#51-#55) ---------
    def nacl_egress(self, p: Packet) -> str:
        """The sender subnet's NACL, egress, ip = the destination, when the packet leaves the subnet (#55):
        not when the destination is inside the subnet, nor when the subnet's route sends it to a middlebox
        ENI of the subnet itself (it stays inside).  Decided here, before the route stage, because a NACL
        that applies denies before the route's own drops (#56)."""
        ip = p.ip
        assert ip is not None
        subnet = self.hop_subnet(p)
        if ip.dst in subnet.cidr:                             # #55: within the subnet no NACL applies
            if p.recording:
                acl = subnet.network_acl
                p.add(Hop("acl", acl.name, f"not evaluated: {ip.dst} is inside subnet {subnet.name} "
                                  f"({subnet.cidr}); network ACLs apply only where a packet leaves or enters a subnet",
                                  p.stage, "egress"))
            return "local"
        mbox = self.middlebox_in_subnet(subnet, ip.dst)
        if mbox is not None:                                  # #55: routed to an ENI of the subnet, it stays inside
            if p.recording:
                acl = subnet.network_acl
                p.add(Hop("acl", acl.name, f"not evaluated: the route for {ip.dst} leads to {mbox.name} in subnet "
                                  f"{subnet.name} itself; the packet does not leave the subnet", p.stage, "egress"))
            return "local"
        self.network_acl(p, subnet, "egress", ip.dst, DropReason.NACL_EGRESS)
        return "local"

    def middlebox_in_subnet(self, subnet: Subnet, dst: ipaddress.IPv4Address) -> Eni | None:
        """The ENI of ``subnet`` itself that the subnet's route for ``dst`` targets (a middlebox), else None."""
        match = self.longest_prefix_match(subnet, dst)
        if match is not None and isinstance(match.target, Eni) and match.target.subnet is subnet:
            return match.target
        return None

    # stage "nacl_ingress": the receiving subnet's network ACL ----------------
    def nacl_ingress(self, p: Packet) -> str:
        """The receiving subnet's NACL, ingress, ip = the source, when the receiver is in another subnet."""
        eni, ip, receiver = p.eni, p.ip, p.receiver
        assert ip is not None and receiver is not None
        if (eni is not None or p.nat_crossed is not None) and receiver.subnet is self.hop_subnet(p):
            # a middlebox in the sender's own subnet
            if p.recording:
                acl = receiver.subnet.network_acl
                p.add(Hop("acl", acl.name, f"not evaluated: {receiver.name} is in the sender's own subnet "
                                  f"{receiver.subnet.name}; the packet does not enter another subnet",
                                  p.stage, "ingress"))
            return "sg_ingress"
        self.network_acl(p, receiver.subnet, "ingress", ip.src, DropReason.NACL_INGRESS)
        return "sg_ingress"

    # stage "sg_ingress": the receiver's security groups ----------------------
    def sg_ingress(self, p: Packet) -> str:
        """The receiving ENI's groups, ingress, peer = the source IP; with ``state``, its tracked flows."""
        ip, receiver = p.ip, p.receiver
        assert ip is not None and receiver is not None
        if not self.later_fragment(p, receiver, "ingress"):
            self.security_groups(p, receiver, "ingress", ip.src, DropReason.SG_INGRESS)
        return "rewrite"

    # the filters' helpers ----------------------------------------------------
    @staticmethod
    def l4_fields(f: bytearray, ip: _Ipv4) -> _L4:
        """What the filters match on: the destination port / ICMP (type, code) when the L4 header is
        complete within the IPv4 total length and this is the first fragment (else none: only rules
        for all ports / all ICMP match); for the tracking also the source port (ICMP: the identifier),
        the TCP flags or ICMP type."""
        need = L4_HEADER.get(ip.proto)
        if need is None:                                      # other protocols: addresses only
            return _L4(None, None, 0, 0, 0)
        h = ETH_HEADER + ip.ihl_bytes
        if ip.fragment_offset != 0 or ip.total_length - ip.ihl_bytes < need:
            return _L4(None, None, 0, 0, 255 if ip.proto == IPPROTO_ICMP else 0)
        if ip.proto == IPPROTO_ICMP:
            return _L4(None, (f[h], f[h + 1]), _u16(f, h + 4), 0, f[h])
        sport, dport = _u16(f, h), _u16(f, h + 2)
        return _L4(dport, None, sport, dport, f[h + 13] if ip.proto == IPPROTO_TCP else 0)

    def security_groups(self, p: Packet, eni: Eni, direction: str, peer: ipaddress.IPv4Address,
                        reason: DropReason) -> None:
        """One ENI's groups in one direction (#45 allow-only, #46 union, #48 references); with a state,
        one table step for (ENI, packet, now) first (#47: a tracked flow is admitted whatever the rules)."""
        ip, l4 = p.ip, p.l4
        assert ip is not None and l4 is not None
        groups = eni.security_groups
        rule = security_groups_admit(groups, direction, ip.proto, peer, l4.port, l4.icmp)
        word = "to" if direction == "egress" else "from"
        what = f"{self.packet_text(ip.proto, l4)} {word} {peer}"
        names = ", ".join(g.name for g in groups)
        if p.state is None:                                   # every packet judged as a first packet
            if rule is None:
                raise self.filter_drop(p, reason, "sg", names, direction, f"no rule admits {what}", None)
            if p.recording:
                p.add(Hop("sg", rule.group.name, f"allowed by {rule.describe()}", p.stage, direction,
                                  self.rule_dict(rule)))
            return
        if rule is None:
            admitted = Admit.DENY
        elif flow_is_untracked(groups, direction, ip.proto, peer, l4.port):
            admitted = Admit.UNTRACKED
        else:
            admitted = Admit.ADMIT
        code, _, st = p.state.track(eni.name, ip.proto, int(ip.src), int(ip.dst), l4.sport, l4.dport, l4.flags,
                                    ip.total_length, p.now, admitted, timeouts=self.timeouts_of(eni))
        if code == TrackCode.MISS:
            raise self.filter_drop(p, reason, "sg", names, direction,
                                   f"no rule admits {what}, and it belongs to no tracked flow of {eni.name}", None)
        if code == TrackCode.FULL:
            raise self.filter_drop(p, DropReason.FLOW_TABLE_FULL, "sg", rule.group.name if rule else names,
                                   direction, f"allowed by {rule.describe() if rule else '?'}, but a new tracked flow "
                                   f"is needed and the flow table is full ({p.state.capacity} flows)",
                                   self.rule_dict(rule) if rule else None)
        if not p.recording:
            return
        if code == TrackCode.HIT:
            p.add(Hop("sg", names, f"admitted by tracked flow ({self.state_text(st)}) of {eni.name}",
                              p.stage, direction, {"tracked": True, "state": st.name}))
            return
        assert rule is not None
        if code == TrackCode.NEW:
            how = f"; tracked from now on ({self.state_text(st)})"
        elif admitted == Admit.UNTRACKED:
            how = ("; untracked (AWS: admitted by a 0.0.0.0/0 rule while the other direction allows 0.0.0.0/0 on "
                   "all ports): no entry, replies are judged by the rules")
        else:
            how = "; opens no tracked flow (only a TCP SYN or plain ACK, UDP, an ICMP query or another protocol does)"
        p.add(Hop("sg", rule.group.name, f"allowed by {rule.describe()}{how}", p.stage, direction,
                          self.rule_dict(rule)))

    def network_acl(self, p: Packet, subnet: Subnet, direction: str, addr: ipaddress.IPv4Address,
                    reason: DropReason) -> None:
        """The subnet's NACL in one direction: lowest number first, first match final, else the implicit
        deny (#52, #53); stateless (#54)."""
        ip, l4 = p.ip, p.l4
        assert ip is not None and l4 is not None
        acl = subnet.network_acl
        allowed, number = acl.evaluate(direction, ip.proto, addr, l4.port, l4.icmp)
        entry = None if number == IMPLICIT_DENY_NUMBER else acl.entry(number, direction)
        if entry is None:
            why = f"denied by the implicit deny (entry {IMPLICIT_DENY_NUMBER})"
            data: dict[str, Any] = {"number": IMPLICIT_DENY_NUMBER, "action": "deny", "implicit": True}
        else:
            why = f"{'allowed' if allowed else 'denied'} by entry {number} ({entry.describe().split(' ', 1)[1]})"
            data = self.entry_dict(entry)
        if not allowed:
            word = "to" if direction == "egress" else "from"
            raise self.filter_drop(p, reason, "acl", acl.name, direction,
                                   f"{why}: {self.packet_text(ip.proto, l4)} {word} {addr} (subnet {subnet.name})",
                                   data)
        if p.recording:
            p.add(Hop("acl", acl.name, f"{why} (subnet {subnet.name})", p.stage, direction, data))

    @staticmethod
    def filter_drop(p: Packet, reason: DropReason, kind: str, name: str, direction: str, detail: str,
                    rule: dict[str, Any] | None) -> _Drop:
        if p.hops is not None:
            p.add(Hop(kind, name, detail, p.stage, direction, rule))
        return _Drop(reason, p.route)   # after the route stage: the route that was found stays reported

    def timeouts_of(self, eni: Eni) -> dict[str, int]:
        """The ENI's idle timeouts (``Eni.tracking``) by name, made once per Tracking value."""
        t = eni.tracking
        got = self._timeouts.get(t)
        if got is None:
            got = self._timeouts[t] = reference_timeouts(t)
        return got

    @staticmethod
    def packet_text(proto: int, l4: _L4) -> str:
        """``tcp 22``, ``udp`` (no port known), ``icmp type 8 code 0``, ``protocol 47``."""
        if proto in (IPPROTO_TCP, IPPROTO_UDP):
            return protocol_label(proto) + (f" {l4.port}" if l4.port is not None else " (no port: not a first "
                                                                                      "fragment or truncated)")
        if proto == IPPROTO_ICMP:
            return "icmp" + (f" type {l4.icmp[0]} code {l4.icmp[1]}" if l4.icmp is not None else " (no header)")
        return f"protocol {proto}"

    @staticmethod
    def state_text(st: FlowState) -> str:
        """``ESTABLISHED`` for TCP_ESTABLISHED, ``REPLIED`` for UDP_REPLIED ..."""
        return st.name.split("_", 1)[1]

    @staticmethod
    def rule_dict(rule: SecurityGroupRule) -> dict[str, Any]:
        return {"group": rule.group.name, "direction": rule.direction, "protocol": protocol_label(rule.protocol),
                "ports": list(rule.ports) if rule.ports is not None else None,
                "icmp": list(rule.icmp) if rule.icmp is not None else None, "peer": rule.peer_name,
                "description": rule.describe()}

    @staticmethod
    def entry_dict(e: NetworkAclEntry) -> dict[str, Any]:
        return {"number": e.number, "action": e.action, "direction": e.direction,
                "protocol": protocol_label(e.protocol), "ports": list(e.ports) if e.ports is not None else None,
                "icmp": list(e.icmp) if e.icmp is not None else None, "cidr": str(e.cidr),
                "description": e.describe()}

    # stage "local": step 18 -------------------------------------------------
    def local(self, p: Packet) -> str:
        """Step 18 (#8): inside the own subnet, no route lookup: the owning ENI or nothing."""
        ip = p.ip
        assert ip is not None
        subnet = self.hop_subnet(p)
        if ip.dst not in subnet.cidr:
            if p.recording:
                p.note("subnet", subnet.name, f"{ip.dst} is outside {self.subnet_text(subnet)}: routed")
            return "route"
        for r in subnet.enis:
            if ip.dst in r.ips:
                if p.recording:
                    p.note("subnet", subnet.name, f"{ip.dst} is inside {self.subnet_text(subnet)}: delivered "
                           "without a route lookup")
                self.deliver_to(p, r)
                return "sg_ingress" if p.filtered else "rewrite"   # #55: no NACL within the subnet
        nat = self.nat_owning(subnet.vpc, ip.dst)
        if nat is not None:                                   # the reply path of a NAT gateway (§4.2)
            p.nat_in = nat
            return "nat"
        # the route that decided stays (a frame a NAT gateway translated: the route to it, as the kernel keeps it)
        raise p.drop(DropReason.NO_SUCH_HOST, "subnet", subnet.name,
                     f"{ip.dst} is inside {self.subnet_text(subnet)}: no route lookup, and no ENI owns it", p.route)

    # stage "route": step 19 -------------------------------------------------
    def route(self, p: Packet) -> str | None:
        """Step 19: longest-prefix match in the source subnet's table (#15, #18, #20, #22), then the target."""
        ip = p.ip
        assert ip is not None
        subnet, dst = self.hop_subnet(p), ip.dst
        eni = subnet    # the stage reads .vpc of the sending side: the sender's subnet, or the NAT gateway's
        rt = subnet.route_table
        if p.recording and subnet.explicit_route_table is not None:
            p.note("route-table", rt.name, f"explicitly associated with subnet {subnet.name}")
        elif p.recording:
            p.note("route-table", rt.name, f"main route table of VPC {eni.vpc.name} (subnet {subnet.name} has no "
                   "explicit association)")
        match = self.longest_prefix_match(subnet, dst)
        if match is None:                                     # #27
            raise p.drop(DropReason.NO_ROUTE, "route", "(none)", f"no route in {rt.name} matches {dst}")
        index = p.route = self.route_index(match)
        target = match.target
        if p.recording:
            origin = match.origin + (f" from prefix list {match.prefix_list}" if match.prefix_list else "")
            p.note("route", f"{match.destination} -> {target.name}", f"longest prefix match for {dst} in "
                   f"{rt.name}: route #{index}, origin {origin}, state {match.state}")
        if target is BLACKHOLE:                               # #28: no fallback to a shorter route
            was = f" (was {match.deleted_target})" if match.deleted_target else ""
            raise p.drop(DropReason.BLACKHOLE, "blackhole", str(match.destination),
                         f"the route's target is gone{was}: dropped, no fallback to a shorter route", index)
        if target is LOCAL:                                   # #21
            owner = self.eni_owning(eni.vpc, dst)
            nat = self.nat_owning(eni.vpc, dst) if owner is None else None
            if nat is not None:
                p.nat_in = nat
                return "nat"
            if owner is None:
                raise p.drop(DropReason.NO_SUCH_HOST, "vpc", eni.vpc.name,
                             f"local route: no ENI of VPC {eni.vpc.name} owns {dst}", index)
            if p.recording:
                p.note("vpc", eni.vpc.name, f"local route: {dst} belongs to {owner.name} in subnet "
                       f"{owner.subnet.name}")
            self.deliver_to(p, owner)
            return self.delivered(p)
        if isinstance(target, Eni):                           # #37 middlebox; #43 check at the receiver
            if target.source_dest_check and dst not in target.ips:
                raise p.drop(DropReason.SRC_DST_CHECK, "eni", target.name,
                             f"target ENI ({', '.join(map(str, target.ips))}) has source/dest check on and {dst} "
                             "is not its address: dropped", index)
            chk = "source/dest check off" if not target.source_dest_check else f"{dst} is its own address"
            self.deliver_to(p, target, via=f"target ENI ({chk}); ")
            return self.delivered(p)
        if isinstance(target, PeeringConnection):             # #36: enter the peer, never onward
            peer = target.peer_of(eni.vpc)
            if p.recording:
                p.note("pcx", target.name, f"VPC peering {target.requester.name} <-> {target.accepter.name}: enters "
                       f"VPC {peer.name} ({', '.join(map(str, peer.cidrs))}); never routed onward (no transit)")
            owner = self.eni_owning(peer, dst)
            if owner is None:
                raise p.drop(DropReason.NO_SUCH_HOST, "vpc", peer.name, f"no ENI of peer VPC {peer.name} owns {dst}",
                             index)
            self.deliver_to(p, owner)
            return self.delivered(p)
        if self.nat_enabled and isinstance(target, NatGateway):   # docs/edge.md §4
            if p.recording:
                p.note("nat", target.name, f"{describe_target(target)}: the NAT gateway translates")
            p.nat_out = target
            return "nat"
        if self.edge and isinstance(target, InternetGateway):  # docs/edge.md §2
            if p.recording:
                p.note("igw", target.name, f"{describe_target(target)}: out on port {target.port}")
            p.action, p.egress = Action.FORWARD, target.port
            return "edge_egress"
        if isinstance(target, Target):                        # #29/#34: igw, vgw, nat, tgw, vpce
            if p.recording:
                p.note(target.kind, target.name, f"{describe_target(target)}: forwarded out of the VPC data plane "
                       f"on port {target.port}, frame untouched")
            p.action, p.egress = Action.FORWARD, target.port
            return None                                       # FORWARD: nothing to rewrite
        raise _Drop(DropReason.BLACKHOLE, index)  # pragma: no cover - every target kind is handled above

    @staticmethod
    def delivered(p: Packet) -> str:
        """After a routed DELIVER: the receiving side's filters, else the rewrite."""
        return "nacl_ingress" if p.filtered else "rewrite"

    @staticmethod
    def longest_prefix_match(subnet: Subnet, dst: ipaddress.IPv4Address) -> Route | None:
        """#22: the most specific route of the subnet's table (#18, #19: explicit, else main) containing dst."""
        best: Route | None = None
        for r in subnet.route_table.routes:
            if dst in r.destination and (best is None or r.destination.prefixlen > best.destination.prefixlen):
                best = r
        return best

    def route_index(self, route: Route) -> int:
        """The route's position in ``Network.routes()`` (by identity)."""
        for i, r in enumerate(self.net.routes()):
            if r is route:
                return i
        return -1  # pragma: no cover - the route belongs to a table of the network

    @staticmethod
    def eni_owning(vpc: Vpc, ip: ipaddress.IPv4Address) -> Eni | None:
        """#44: the ENI of ``vpc`` with ``ip`` as its primary or a secondary IP."""
        for s in vpc.subnets:
            if ip in s.cidr:
                for e in s.enis:
                    if ip in e.ips:
                        return e
        return None

    @staticmethod
    def deliver_to(p: Packet, receiver: Eni, via: str = "") -> None:
        """The pending verdict DELIVER to ``receiver`` (the MACs are rewritten by the rewrite stage)."""
        p.action, p.egress, p.receiver, p.via = Action.DELIVER, receiver.port, receiver, via

    # stage "rewrite": section 4 ---------------------------------------------
    def rewrite(self, p: Packet) -> None:
        """Section 4: the only stage that writes the MACs (the edge stages translate addresses in place)."""
        eni = p.eni
        if p.action == Action.DELIVER and p.receiver is not None:
            self.deliver(p, eni if p.nat_crossed is None else None, p.receiver)
        elif p.reply == "arp":
            self.build_arp_reply(p.frame, p.arp_mac)
        elif p.reply == "echo" and p.ip is not None and eni is not None:
            self.build_echo_reply(p.frame, p.ip, eni.subnet)

    @staticmethod
    def deliver(p: Packet, sender: Eni | None, receiver: Eni) -> None:
        """Section 4 (#10): dst MAC := receiver; src MAC := sender within a subnet, else the
        receiving subnet's gateway MAC (always for a frame from a gateway).  TTL is untouched (#9)."""
        same = sender is not None and receiver.subnet is sender.subnet
        src = sender.mac if same and sender is not None else receiver.subnet.gateway_mac
        p.frame[0:6] = _mac_bytes(receiver.mac)
        p.frame[6:12] = _mac_bytes(src)
        if not p.recording:
            return
        src_text = (f"the sender's MAC {sender.mac} (same subnet)" if same and sender is not None
                    else f"the gateway MAC {receiver.subnet.gateway_mac} of subnet {receiver.subnet.name}")
        p.note("eni", receiver.name, f"{p.via}receiving ENI ({', '.join(map(str, receiver.ips))}) in subnet "
               f"{receiver.subnet.name} of VPC {receiver.vpc.name}, port {receiver.port}: dst MAC := {receiver.mac}, "
               f"src MAC := {src_text}; TTL untouched")

    @staticmethod
    def build_arp_reply(f: bytearray, mac: str) -> None:
        """Step 8: turn the request into the reply, in place, bytes 0-41 only."""
        m = _mac_bytes(mac)
        req_eth_src = bytes(f[6:12])
        sha, spa, tpa = bytes(f[22:28]), bytes(f[28:32]), bytes(f[38:42])
        f[0:6] = req_eth_src
        f[6:12] = m
        f[20:22] = b"\x00\x02"
        f[22:28] = m
        f[28:32] = tpa
        f[32:38] = sha
        f[38:42] = spa

    @staticmethod
    def build_echo_reply(f: bytearray, ip: _Ipv4, subnet: Subnet) -> None:
        """Section 4: the echo reply, in place; padding after 14 + total length untouched."""
        req_eth_src = bytes(f[6:12])
        f[0:6] = req_eth_src
        f[6:12] = _mac_bytes(subnet.gateway_mac)
        ip_start, ip_end = ETH_HEADER, ETH_HEADER + ip.ihl_bytes
        f[26:30] = subnet.router_ip.packed             # IP src := router
        f[30:34] = ip.src.packed                       # IP dst := requester
        f[22] = ECHO_REPLY_TTL
        f[24:26] = b"\x00\x00"
        f[24:26] = internet_checksum(f[ip_start:ip_end]).to_bytes(2, "big")
        icmp_end = ETH_HEADER + ip.total_length
        f[ip_end] = ICMP_ECHO_REPLY
        f[ip_end + 1] = 0
        f[ip_end + 2:ip_end + 4] = b"\x00\x00"
        f[ip_end + 2:ip_end + 4] = internet_checksum(f[ip_end:icmp_end]).to_bytes(2, "big")


def describe_target(t: Target) -> str:
    """A route target in words (for the explanation)."""
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
