"""The reference forwarder: the VPC data plane, one frame at a time, in plain Python.

This module is the oracle that the compiled kernels are tested against.  It is written
from the contract (DESIGN.md section 1 and ``docs/forwarding-model.md``), not from the
kernels, and it works directly on the control-plane objects of :mod:`fastvpc.topology`
(``Network``, ``Vpc``, ``Subnet``, ``RouteTable``, ``Eni`` ...), never on compiled arrays.

Speed is not a goal; readability is.  Every step of the forwarding model is one method
below, named after the step, and cites the step number of ``docs/forwarding-model.md``
(``step N``) and the row of ``vpc-behaviour.md`` (``#N``) it implements.  Reading
:meth:`ReferenceForwarder.forward` top to bottom reads the behaviour table.

Any bytes and any port give a :class:`Verdict`; nothing here raises on frame content.

Usage::

    ref = ReferenceForwarder(net)                    # arp_mode="target" (default) or "single_mac"
    v = ref.forward(frame_bytes, port=eni.port)      # Verdict(action, reason, egress, route, frame)
    res = ref.process(batch)                         # like Dataplane.process: numpy arrays + frames
"""

from __future__ import annotations

import dataclasses
import ipaddress
import operator
from typing import Any

import numpy as np
import numpy.typing as npt

from fastvpc.errors import FrameBatchError
from fastvpc.topology import (
    BLACKHOLE,
    LOCAL,
    RESERVED_SERVICE_RANGE,
    Eni,
    Network,
    PeeringConnection,
    Route,
    Subnet,
    Target,
    Vpc,
)
from fastvpc.verdicts import Action, DropReason

__all__ = ["ReferenceForwarder", "ReferenceResult", "Verdict"]

ARP_MODES = ("target", "single_mac")

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETH_HEADER = 14
ARP_FRAME_MIN = 42  # Ethernet header + the 28-byte IPv4-over-Ethernet ARP packet
IPV4_FRAME_MIN = 34  # Ethernet header + a 20-byte IPv4 header
IPPROTO_ICMP = 1
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


@dataclasses.dataclass
class ReferenceResult:
    """Same shape as ``Dataplane.process``'s result: one entry per frame of the batch."""

    action: npt.NDArray[np.uint8]
    reason: npt.NDArray[np.uint8]
    egress: npt.NDArray[np.int32]
    route: npt.NDArray[np.int32]
    frames: Any  # fastvpc.batch.FrameBatch

    def __len__(self) -> int:
        return int(self.action.size)


# --------------------------------------------------------------------------- byte helpers

def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def _u16(buf: bytes | bytearray, at: int) -> int:
    return (buf[at] << 8) | buf[at + 1]


def _ip_at(buf: bytes | bytearray, at: int) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(bytes(buf[at:at + 4]))


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


# --------------------------------------------------------------------------- the forwarder

class _Drop(Exception):
    """Internal: a step decided to drop the frame (``route`` is the deciding route or -1)."""

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


class ReferenceForwarder:
    """The readable one-frame-at-a-time forwarder over a live :class:`Network`.

    The forwarder reads ``net`` at each call (it keeps no snapshot), so build it right
    next to the ``net.compile()`` it is compared with.
    """

    STAGES = ("ingress", "arp", "router", "local", "route", "rewrite")

    def __init__(self, net: Network, arp_mode: str = "target") -> None:
        if arp_mode not in ARP_MODES:
            raise ValueError(f"arp_mode {arp_mode!r} must be one of {', '.join(ARP_MODES)}")
        self.net = net
        self.arp_mode = arp_mode

    # ------------------------------------------------------------------ public API
    def forward(self, frame: Any, port: Any) -> Verdict:
        """The verdict for one frame entering on ``port``.  Never raises on frame content."""
        try:
            data = memoryview(frame).tobytes()
        except (TypeError, ValueError):
            data = b""
        out = bytearray(data)
        try:
            action, egress, route = self._forward(out, port)
        except _Drop as drop:
            return Verdict(Action.DROP, drop.reason, -1, drop.route, data)
        return Verdict(action, DropReason.NONE, egress, route, bytes(out))

    def process(self, batch: Any, copy: bool = False) -> ReferenceResult:
        """Every frame of a ``FrameBatch``, like ``Dataplane.process``.

        ``copy=False`` writes the output frames back into ``batch`` (whose buffer must then be
        writeable, else :class:`fastvpc.FrameBatchError`) and ``res.frames is batch``;
        ``copy=True`` leaves ``batch`` untouched and ``res.frames`` is a new batch.
        """
        if not copy and not batch.writeable:
            raise FrameBatchError("process(): the batch's data buffer is read-only and frames are rewritten "
                                  "in place; pass copy=True to process a copy")
        n = len(batch)
        action = np.zeros(n, dtype=np.uint8)
        reason = np.zeros(n, dtype=np.uint8)
        egress = np.full(n, -1, dtype=np.int32)
        route = np.full(n, -1, dtype=np.int32)
        out = batch.copy() if copy else batch
        offsets = out.offsets
        ports = batch.port
        for i in range(n):
            v = self.forward(batch.frame(i), int(ports[i]))
            action[i], reason[i], egress[i], route[i] = int(v.action), int(v.reason), v.egress, v.route
            a, b = int(offsets[i]), int(offsets[i + 1])
            out.data[a:b] = np.frombuffer(v.frame, dtype=np.uint8)
        return ReferenceResult(action, reason, egress, route, out)

    # ------------------------------------------------------------------ the steps in order
    def _forward(self, f: bytearray, port: Any) -> tuple[Action, int, int]:
        """Run the steps of docs/forwarding-model.md; returns (action, egress, route) or raises _Drop."""
        eni = self.ingress_eni(port)                          # step 1
        ethertype = self.ethernet(f)                          # steps 2-3, #1
        if ethertype == ETHERTYPE_ARP:
            return self.arp(f, eni)                           # steps 4-8, #5-#7
        return self.ipv4(f, eni)                              # steps 9-19

    # step 1 ---------------------------------------------------------------
    def ingress_eni(self, port: Any) -> Eni:
        """Step 1: the port must be an ENI of the network (not a gateway, peering, or nothing)."""
        try:
            p = operator.index(port)
        except TypeError:
            raise _Drop(DropReason.UNKNOWN_PORT) from None
        obj = self.net._by_port.get(p)
        if not isinstance(obj, Eni) or not self.net._holds(obj) or obj not in obj.subnet.enis:
            raise _Drop(DropReason.UNKNOWN_PORT)
        return obj

    # steps 2-3, #1 --------------------------------------------------------
    @staticmethod
    def ethernet(f: bytearray) -> int:
        """Steps 2-3 (#1): 14 bytes at least; only ARP and IPv4 pass (VLAN-tagged frames do not)."""
        if len(f) < ETH_HEADER:
            raise _Drop(DropReason.MALFORMED)
        ethertype = _u16(f, 12)
        if ethertype not in (ETHERTYPE_ARP, ETHERTYPE_IPV4):
            raise _Drop(DropReason.NON_IPV4)
        return ethertype

    # steps 4-8: the ARP proxy (#5, #6, #7) ----------------------------------
    def arp(self, f: bytearray, eni: Eni) -> tuple[Action, int, int]:
        """Steps 4-8: answer requests from the mapping; never learn, never flood."""
        self.arp_well_formed(f)                               # step 4
        if _u16(f, 20) != 1:                                  # step 5: replies and other ops
            raise _Drop(DropReason.ARP_IGNORED)
        spa, tpa = _ip_at(f, 28), _ip_at(f, 38)
        if spa == UNSPECIFIED or spa == tpa:                  # step 6: probes, gratuitous ARP
            raise _Drop(DropReason.ARP_IGNORED)
        mac = self.arp_answer(tpa, eni)                       # step 7
        self.build_arp_reply(f, mac)                          # step 8
        return Action.REPLY, eni.port, -1

    @staticmethod
    def arp_well_formed(f: bytearray) -> None:
        """Step 4: a whole Ethernet/IPv4 ARP packet (htype 1, ptype 0x0800, hlen 6, plen 4)."""
        if len(f) < ARP_FRAME_MIN or _u16(f, 14) != 1 or _u16(f, 16) != ETHERTYPE_IPV4 or f[18] != 6 or f[19] != 4:
            raise _Drop(DropReason.MALFORMED)

    def arp_answer(self, tpa: ipaddress.IPv4Address, eni: Eni) -> str:
        """Step 7: the MAC to answer with; #6 router -> gateway MAC, #5 ENI IP -> its MAC, #7 else none."""
        subnet = eni.subnet
        if self.arp_mode == "single_mac":                     # early VPCs: one MAC for everything
            return subnet.gateway_mac
        if tpa == subnet.router_ip:                           # #6
            return subnet.gateway_mac
        owner = self.eni_owning(eni.vpc, tpa)                 # #5 (any subnet of the VPC)
        if owner is not None:
            return owner.mac
        raise _Drop(DropReason.ARP_NO_ENTRY)                  # #7

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

    # steps 9-19: IPv4 -----------------------------------------------------
    def ipv4(self, f: bytearray, eni: Eni) -> tuple[Action, int, int]:
        """Steps 9-19, in the order of the spec."""
        subnet, vpc = eni.subnet, eni.vpc
        ip = self.ipv4_well_formed(f)                         # step 9
        self.l2_group_address(f)                              # step 10, #4
        self.broadcast(ip.dst, vpc)                           # step 11, #2
        self.multicast(ip.dst)                                # step 12, #3
        self.source_check(ip.src, eni)                        # step 13, #43
        self.known_mac(f, subnet)                             # step 14, #11
        if ip.dst == subnet.router_ip:                        # step 15, #57/#59
            return self.own_router(f, ip, eni)
        self.other_router(ip.dst, eni)                        # step 16, #58
        self.link_local_service(ip.dst)                       # step 17, #16
        if ip.dst in subnet.cidr:                             # step 18, #8
            return self.intra_subnet(f, ip.dst, eni)
        return self.routed(f, ip.dst, eni)                    # step 19, #20/#22/#27/#28/#36/#37

    @staticmethod
    def ipv4_well_formed(f: bytearray) -> _Ipv4:
        """Step 9: version 4, IHL >= 5, header and total length inside the frame, valid checksum."""
        L = len(f)
        if L < IPV4_FRAME_MIN:
            raise _Drop(DropReason.MALFORMED)
        version, ihl = f[14] >> 4, f[14] & 0x0F
        if version != 4 or ihl < 5:
            raise _Drop(DropReason.MALFORMED)
        hlen = ihl * 4
        if ETH_HEADER + hlen > L:
            raise _Drop(DropReason.MALFORMED)
        tl = _u16(f, 16)
        if tl < hlen or ETH_HEADER + tl > L:  # bytes after 14 + tl are Ethernet padding
            raise _Drop(DropReason.MALFORMED)
        if ones_complement_sum(f[ETH_HEADER:ETH_HEADER + hlen]) != 0xFFFF:
            raise _Drop(DropReason.MALFORMED)
        flags_frag = _u16(f, 20)
        return _Ipv4(ihl_bytes=hlen, total_length=tl, proto=f[23],
                     more_fragments=bool(flags_frag & 0x2000), fragment_offset=flags_frag & 0x1FFF,
                     src=_ip_at(f, 26), dst=_ip_at(f, 30))

    @staticmethod
    def l2_group_address(f: bytearray) -> None:
        """Step 10 (#4): IPv4 to a broadcast/multicast MAC is not flooded."""
        if f[0] & 1:
            raise _Drop(DropReason.L2_BROADCAST)

    @staticmethod
    def broadcast(dst: ipaddress.IPv4Address, vpc: Vpc) -> None:
        """Step 11 (#2): limited broadcast, or the last address of any subnet of the VPC."""
        if dst == LIMITED_BROADCAST or any(dst == s.broadcast_ip for s in vpc.subnets):
            raise _Drop(DropReason.BROADCAST)

    @staticmethod
    def multicast(dst: ipaddress.IPv4Address) -> None:
        """Step 12 (#3): no multicast in a VPC."""
        if dst in MULTICAST_RANGE:
            raise _Drop(DropReason.MULTICAST)

    @staticmethod
    def source_check(src: ipaddress.IPv4Address, eni: Eni) -> None:
        """Step 13 (#43): with source/dest check on, an ENI sends only from its own IPs (#44: secondaries too)."""
        if eni.source_dest_check and src not in eni.ips:
            raise _Drop(DropReason.SRC_DST_CHECK)

    @staticmethod
    def known_mac(f: bytearray, subnet: Subnet) -> None:
        """Step 14 (#11): unicast IPv4 must be addressed to the subnet's router or to one of its ENIs."""
        dst_mac = bytes(f[0:6])
        known = [_mac_bytes(subnet.gateway_mac)] + [_mac_bytes(e.mac) for e in subnet.enis]
        if dst_mac not in known:
            raise _Drop(DropReason.UNKNOWN_MAC)

    def own_router(self, f: bytearray, ip: _Ipv4, eni: Eni) -> tuple[Action, int, int]:
        """Step 15: the subnet's router answers ICMP echo (#57) and nothing else (#59)."""
        h = ETH_HEADER + ip.ihl_bytes
        is_echo = (ip.proto == IPPROTO_ICMP and not ip.more_fragments and ip.fragment_offset == 0
                   and ip.total_length >= ip.ihl_bytes + 8 and f[h] == ICMP_ECHO_REQUEST and f[h + 1] == 0)
        if not is_echo:
            raise _Drop(DropReason.ROUTER_UNSUPPORTED)
        self.build_echo_reply(f, ip, eni.subnet)
        return Action.REPLY, eni.port, -1

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

    @staticmethod
    def other_router(dst: ipaddress.IPv4Address, eni: Eni) -> None:
        """Step 16 (#58): another subnet's router address is not reachable."""
        if any(dst == s.router_ip for s in eni.vpc.subnets if s is not eni.subnet):
            raise _Drop(DropReason.ROUTER_NOT_OWN_SUBNET)

    @staticmethod
    def link_local_service(dst: ipaddress.IPv4Address) -> None:
        """Step 17 (#16): 169.254.168.0/22 is never routed, whatever the table says."""
        if dst in RESERVED_SERVICE_RANGE:
            raise _Drop(DropReason.LINK_LOCAL_SERVICE)

    def intra_subnet(self, f: bytearray, dst: ipaddress.IPv4Address, eni: Eni) -> tuple[Action, int, int]:
        """Step 18 (#8): inside the own subnet, no route lookup: the owning ENI or nothing."""
        for r in eni.subnet.enis:
            if dst in r.ips:
                return self.deliver(f, eni, r, route=-1)
        raise _Drop(DropReason.NO_SUCH_HOST)

    def routed(self, f: bytearray, dst: ipaddress.IPv4Address, eni: Eni) -> tuple[Action, int, int]:
        """Step 19: longest-prefix match in the source subnet's table (#15, #18, #20, #22), then the target."""
        match = self.longest_prefix_match(eni.subnet, dst)
        if match is None:                                     # #27
            raise _Drop(DropReason.NO_ROUTE)
        index = self.route_index(match)
        target = match.target
        if target is BLACKHOLE:                               # #28: no fallback to a shorter route
            raise _Drop(DropReason.BLACKHOLE, index)
        if target is LOCAL:                                   # #21
            owner = self.eni_owning(eni.vpc, dst)
            if owner is None:
                raise _Drop(DropReason.NO_SUCH_HOST, index)
            return self.deliver(f, eni, owner, index)
        if isinstance(target, Eni):                           # #37 middlebox; #43 check at the receiver
            if target.source_dest_check and dst not in target.ips:
                raise _Drop(DropReason.SRC_DST_CHECK, index)
            return self.deliver(f, eni, target, index)
        if isinstance(target, PeeringConnection):             # #36: enter the peer, never onward
            peer = target.peer_of(eni.vpc)
            owner = self.eni_owning(peer, dst)
            if owner is None:
                raise _Drop(DropReason.NO_SUCH_HOST, index)
            return self.deliver(f, eni, owner, index)
        if isinstance(target, Target):                        # #29/#34: igw, vgw, nat, tgw, vpce
            return Action.FORWARD, target.port, index
        raise _Drop(DropReason.BLACKHOLE, index)  # pragma: no cover - every target kind is handled above

    # ------------------------------------------------------------------ lookups and rewrites
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
    def deliver(f: bytearray, sender: Eni, receiver: Eni, route: int) -> tuple[Action, int, int]:
        """Section 4 (#10): dst MAC := receiver; src MAC := sender within a subnet, else the
        receiving subnet's gateway MAC.  TTL and the IP packet are untouched (#9)."""
        f[0:6] = _mac_bytes(receiver.mac)
        src = sender.mac if receiver.subnet is sender.subnet else receiver.subnet.gateway_mac
        f[6:12] = _mac_bytes(src)
        return Action.DELIVER, receiver.port, route
