"""Building blocks of the reference forwarder's edge stages (docs/edge.md), in plain Python.

The reference forwarder (``fastvpc.reference``) will call these from its ``edge_ingress``,
``nat`` and ``edge_egress`` stages; the compiled stages are tested against the reference.  Each
piece is small and tested on its own:

* :func:`checksum_adjust` — RFC 1624 (eqn. 3) incremental one's-complement checksum update.
* :func:`translate_source` / :func:`translate_destination` — rewrite an IPv4 address (and the
  TCP/UDP port or ICMP echo id) of an Ethernet/IPv4 frame in place, fixing the IPv4 header
  checksum and the TCP/UDP/ICMP checksum incrementally, never writing past the frame.
* :class:`PublicIpMap` — the internet gateway's 1:1 private↔public map of a network.
* :class:`NatTable` — NAT gateway bindings: the port allocation rule of docs/edge.md §4.1,
  the 55,000-flows-per-destination limit, the 350 s idle timeout.
* :func:`tcp_rst_for` — the RST a NAT gateway answers a stale inside TCP packet with, built in
  the frame's own buffer.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from fastvpc.verdicts import DropReason

if TYPE_CHECKING:  # pragma: no cover
    from fastvpc.topology import Eni, NatGateway, Network, Vpc

__all__ = [
    "IDLE_TIMEOUT_NS",
    "EdgeOutcome",
    "FragmentTable",
    "MAX_FLOWS_PER_DESTINATION",
    "NAT_PORT_MAX",
    "NAT_PORT_MIN",
    "NatBinding",
    "NatDecision",
    "NatTable",
    "PublicIpMap",
    "checksum_adjust",
    "igw_egress",
    "igw_ingress",
    "Translated",
    "internet_checksum",
    "is_fragment",
    "l4_ports",
    "nat_inbound",
    "nat_outbound",
    "tcp_rst_for",
    "translate_destination",
    "translate_source",
]

ETH_LEN = 14
ETH_IPV4 = 0x0800
PROTO_ICMP, PROTO_TCP, PROTO_UDP = 1, 6, 17
ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST = 0, 8
TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10

#: NAT gateway source ports (RA REMAP_EPHEMERAL_PORT) and its per-destination limit (#33).
NAT_PORT_MIN, NAT_PORT_MAX = 1024, 65535
MAX_FLOWS_PER_DESTINATION = 55_000
#: A NAT gateway forgets a connection idle this long (350 s, in ns like ``process(now=)``).
IDLE_TIMEOUT_NS = 350 * 1_000_000_000


# --------------------------------------------------------------------------- checksums

def _fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def internet_checksum(data: bytes | bytearray | memoryview) -> int:
    """The RFC 1071 checksum of ``data`` (odd lengths padded with a zero byte)."""
    b = bytes(data)
    if len(b) % 2:
        b += b"\0"
    s = sum(int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2))
    return ~_fold(s) & 0xFFFF


def checksum_adjust(checksum: int, old: Iterable[int], new: Iterable[int]) -> int:
    """RFC 1624 eqn. 3: the checksum after the 16-bit words ``old`` became ``new``:
    ``HC' = ~(~HC + ~m + m')``, summed over every changed word (no -0 problem of eqn. 2)."""
    s = ~checksum & 0xFFFF
    for m, m2 in zip(old, new, strict=True):
        s += (~m & 0xFFFF) + (m2 & 0xFFFF)
    return ~_fold(s) & 0xFFFF


def _words(ip: int) -> tuple[int, int]:
    return (ip >> 16) & 0xFFFF, ip & 0xFFFF


def _u16(buf: bytearray, off: int) -> int:
    return (buf[off] << 8) | buf[off + 1]


def _put16(buf: bytearray, off: int, v: int) -> None:
    buf[off] = (v >> 8) & 0xFF
    buf[off + 1] = v & 0xFF


def _ip_int(value: Any) -> int:
    return int(ipaddress.IPv4Address(value))


# --------------------------------------------------------------------------- translation

@dataclasses.dataclass(frozen=True)
class Translated:
    """What a translation changed: the address always; the port (or echo id) and the L4
    checksum only when the L4 header was wholly inside the packet."""

    old_ip: ipaddress.IPv4Address
    old_port: int | None
    l4_updated: bool


def _parse(frame: bytearray) -> tuple[int, int, int, int, bool]:
    """(IP header offset, IHL bytes, protocol, IP packet end, first fragment) or ValueError."""
    if len(frame) < ETH_LEN + 20 or _u16(frame, 12) != ETH_IPV4:
        raise ValueError("not an Ethernet/IPv4 frame")
    ver_ihl = frame[ETH_LEN]
    ihl = (ver_ihl & 0x0F) * 4
    if ver_ihl >> 4 != 4 or ihl < 20 or ETH_LEN + ihl > len(frame):
        raise ValueError("bad IPv4 header")
    total = _u16(frame, ETH_LEN + 2)
    if total < ihl or ETH_LEN + total > len(frame):
        raise ValueError("IPv4 total length runs past the frame")
    first = (_u16(frame, ETH_LEN + 6) & 0x1FFF) == 0
    return ETH_LEN, ihl, frame[ETH_LEN + 9], ETH_LEN + total, first


def _l4_kind(frame: bytearray, l4: int, end: int, proto: int, first: bool) -> str | None:
    """Which L4 header the packet carries whole: ``tcp``, ``udp``, ``echo`` (ICMP echo) or None."""
    if not first:
        return None
    if proto == PROTO_TCP and l4 + 20 <= end:
        return "tcp"
    if proto == PROTO_UDP and l4 + 8 <= end:
        return "udp"
    if proto == PROTO_ICMP and l4 + 8 <= end and frame[l4] in (ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY):
        return "echo"
    return None


def _translate(frame: bytearray, addr_off: int, port_field: int, new_ip: Any, new_port: int | None) -> Translated:
    ip0, ihl, proto, end, first = _parse(frame)
    new = _ip_int(new_ip)
    l4 = ip0 + ihl
    kind = _l4_kind(frame, l4, end, proto, first)
    if new_port is not None:  # refused before anything is written
        if kind is None:
            raise ValueError("the port cannot be translated: no complete TCP/UDP header or ICMP echo in the packet")
        if not 0 <= new_port <= 0xFFFF:
            raise ValueError(f"port {new_port!r} is not 0-65535")
    old = int.from_bytes(frame[addr_off:addr_off + 4], "big")
    # IPv4 header checksum: the address's two words
    _put16(frame, ip0 + 10, checksum_adjust(_u16(frame, ip0 + 10), _words(old), _words(new)))
    frame[addr_off:addr_off + 4] = new.to_bytes(4, "big")
    old_port = None
    if kind in ("tcp", "udp"):
        csum_off = l4 + (16 if kind == "tcp" else 6)
        old_port = _u16(frame, l4 + port_field)
        words_old, words_new = [*_words(old)], [*_words(new)]  # the pseudo-header's address
        if new_port is not None:
            words_old.append(old_port)
            words_new.append(new_port)
            _put16(frame, l4 + port_field, new_port)
        c = _u16(frame, csum_off)
        if kind == "tcp":
            _put16(frame, csum_off, checksum_adjust(c, words_old, words_new))
        elif c != 0:  # UDP checksum 0: the sender computed none (RFC 768); it stays 0
            _put16(frame, csum_off, checksum_adjust(c, words_old, words_new) or 0xFFFF)
    elif kind == "echo":
        # no pseudo-header: only the echo id (the ICMP "port") changes the ICMP checksum
        old_port = _u16(frame, l4 + 4)
        if new_port is not None:
            _put16(frame, l4 + 2, checksum_adjust(_u16(frame, l4 + 2), [old_port], [new_port]))
            _put16(frame, l4 + 4, new_port)
    return Translated(ipaddress.IPv4Address(old), old_port, kind is not None)


def translate_source(frame: bytearray, new_ip: Any, new_port: int | None = None) -> Translated:
    """Rewrite the source IPv4 address (and the TCP/UDP source port or the ICMP echo id when
    ``new_port`` is given) of ``frame`` in place, updating every checksum incrementally.

    The L4 header is touched only when it lies wholly inside the IP packet and the packet is a
    first (or no) fragment.  Anything that cannot be done (not IPv4, a header running past the
    frame, a port for a packet without a complete TCP/UDP header or ICMP echo) raises ValueError
    before the frame is changed.
    """
    return _translate(frame, ETH_LEN + 12, 0, new_ip, new_port)


def translate_destination(frame: bytearray, new_ip: Any, new_port: int | None = None) -> Translated:
    """As :func:`translate_source` for the destination address and port (ICMP: the echo id)."""
    return _translate(frame, ETH_LEN + 16, 2, new_ip, new_port)


def l4_ports(frame: bytes | bytearray) -> tuple[int, int | None, int | None, int | None]:
    """(protocol, source port or echo id, destination port or echo id, TCP flags) of a first
    fragment with a complete L4 header; Nones where absent."""
    buf = bytearray(frame)
    ip0, ihl, proto, end, first = _parse(buf)
    l4 = ip0 + ihl
    kind = _l4_kind(buf, l4, end, proto, first)
    if kind == "tcp":
        return proto, _u16(buf, l4), _u16(buf, l4 + 2), buf[l4 + 13]
    if kind == "udp":
        return proto, _u16(buf, l4), _u16(buf, l4 + 2), None
    if kind == "echo":
        ident = _u16(buf, l4 + 4)
        return proto, ident, ident, None
    return proto, None, None, None


def is_fragment(frame: bytes | bytearray) -> bool:
    """MF set or a non-zero fragment offset."""
    buf = bytearray(frame)
    ip0 = _parse(buf)[0]
    return (_u16(buf, ip0 + 6) & 0x3FFF) != 0


# --------------------------------------------------------------------------- the IGW's 1:1 map

class PublicIpMap:
    """The internet gateway's map of one network: (VPC, private IP) <-> public IP.

    Built from the control plane: every ENI's primary IP with an Elastic IP, every NAT
    gateway's private IP with one (DESIGN §6)."""

    def __init__(self, net: Network) -> None:
        self._out: dict[tuple[str, ipaddress.IPv4Address], ipaddress.IPv4Address] = {}
        self._in: dict[tuple[str, ipaddress.IPv4Address], tuple[Eni | NatGateway, ipaddress.IPv4Address]] = {}
        for a in net.addresses:
            owner = a.association
            if owner is None or owner.ip is None:
                continue
            vpc = owner.vpc.name
            self._out[(vpc, owner.ip)] = a.public_ip
            self._in[(vpc, a.public_ip)] = (owner, owner.ip)

    def public_ip_of(self, vpc: Vpc | str, private_ip: Any) -> ipaddress.IPv4Address | None:
        """edge_egress: the public IP a packet from ``private_ip`` leaves with, or None
        (``NO_PUBLIC_IP``)."""
        name = vpc if isinstance(vpc, str) else vpc.name
        return self._out.get((name, ipaddress.IPv4Address(private_ip)))

    def private_ip_of(self, vpc: Vpc | str, public_ip: Any) -> tuple[Eni | NatGateway, ipaddress.IPv4Address] | None:
        """edge_ingress: (owner, private IP) of a public IP of the VPC, or None (``NO_SUCH_PUBLIC_IP``)."""
        name = vpc if isinstance(vpc, str) else vpc.name
        return self._in.get((name, ipaddress.IPv4Address(public_ip)))

    def __len__(self) -> int:
        return len(self._out)


# --------------------------------------------------------------------------- NAT bindings

@dataclasses.dataclass
class NatBinding:
    nat: str
    proto: int
    inside_ip: int
    inside_port: int
    remote_ip: int
    remote_port: int
    nat_ip: int
    nat_port: int
    first_seen: int
    last_seen: int


@dataclasses.dataclass(frozen=True)
class NatDecision:
    """What :meth:`NatTable.outbound` decided: ``ok`` (translate to ``binding``), ``rst``
    (answer with a RST: a non-SYN TCP packet with no live binding), ``no_binding`` (a RST with
    no live binding: dropped, never answered), ``exhausted`` (``NAT_PORTS_EXHAUSTED``) or
    ``full`` (``FLOW_TABLE_FULL``)."""

    status: str
    binding: NatBinding | None = None


class NatTable:
    """NAT gateway bindings (docs/edge.md §4): keyed by the inside 5-tuple and by the outside one.

    ``now`` is in ns, as ``Dataplane.process(now=)``.  A binding idle ``idle_timeout_ns`` is gone
    (reclaimed lazily).  ``capacity`` bounds the table (``FLOW_TABLE_FULL`` when a new binding is
    needed and none has expired)."""

    def __init__(self, *, capacity: int = 1 << 20, max_per_destination: int = MAX_FLOWS_PER_DESTINATION,
                 idle_timeout_ns: int = IDLE_TIMEOUT_NS) -> None:
        if capacity < 1 or max_per_destination < 1 or idle_timeout_ns < 1:
            raise ValueError("capacity, max_per_destination and idle_timeout_ns must be positive")
        self.capacity, self.max_per_destination, self.idle_timeout_ns = capacity, max_per_destination, idle_timeout_ns
        self._inside: dict[tuple[str, int, int, int, int, int], NatBinding] = {}
        self._outside: dict[tuple[str, int, int, int, int, int], NatBinding] = {}
        # (nat, nat ip, remote ip, remote port, proto) -> NAT ports in use towards that destination
        self._used: dict[tuple[str, int, int, int, int], set[int]] = {}

    def __len__(self) -> int:
        return len(self._inside)

    def bindings(self) -> list[NatBinding]:
        return list(self._inside.values())

    def _live(self, b: NatBinding | None, now: int) -> NatBinding | None:
        if b is None:
            return None
        if now - b.last_seen >= self.idle_timeout_ns:
            self._drop(b)
            return None
        return b

    def _drop(self, b: NatBinding) -> None:
        self._inside.pop((b.nat, b.proto, b.inside_ip, b.inside_port, b.remote_ip, b.remote_port), None)
        self._outside.pop((b.nat, b.proto, b.nat_ip, b.nat_port, b.remote_ip, b.remote_port), None)
        used = self._used.get((b.nat, b.nat_ip, b.remote_ip, b.remote_port, b.proto))
        if used is not None:
            used.discard(b.nat_port)
            if not used:
                del self._used[(b.nat, b.nat_ip, b.remote_ip, b.remote_port, b.proto)]

    def expire(self, now: int) -> int:
        """Drop every binding idle past the timeout; returns how many."""
        old = [b for b in self._inside.values() if now - b.last_seen >= self.idle_timeout_ns]
        for b in old:
            self._drop(b)
        return len(old)

    def _allocate(self, dest: tuple[str, int, int, int, int], inside_port: int, now: int) -> int | None:
        """The inside port when free and in range, else the next free one above it, wrapping.  A port
        whose binding has expired is free (that binding is dropped here: a binding idle 350 s is gone)."""
        span = NAT_PORT_MAX - NAT_PORT_MIN + 1
        start = inside_port if NAT_PORT_MIN <= inside_port <= NAT_PORT_MAX else NAT_PORT_MIN
        nat, n_ip, r_ip, r_port, proto = dest
        for k in range(span):
            p = NAT_PORT_MIN + (start - NAT_PORT_MIN + k) % span
            used = self._used.get(dest)
            if used is None or p not in used:
                return p
            holder = self._outside.get((nat, proto, n_ip, p, r_ip, r_port))
            if holder is not None and self._live(holder, now) is None:
                return p
        return None

    def outbound(self, nat: str, nat_ip: Any, proto: int, inside_ip: Any, inside_port: int, remote_ip: Any,
                 remote_port: int, now: int, tcp_flags: int | None = None) -> NatDecision:
        """An inside packet through NAT gateway ``nat`` (its private IP ``nat_ip``)."""
        n_ip, i_ip, r_ip = _ip_int(nat_ip), _ip_int(inside_ip), _ip_int(remote_ip)
        key = (nat, proto, i_ip, inside_port, r_ip, remote_port)
        b = self._live(self._inside.get(key), now)
        if b is not None:
            b.last_seen = now
            return NatDecision("ok", b)
        if proto == PROTO_TCP and (tcp_flags or 0) & TCP_RST:
            return NatDecision("no_binding")  # never a RST in answer to a RST (RFC 793)
        if proto == PROTO_TCP and ((tcp_flags or 0) & (TCP_SYN | TCP_ACK)) != TCP_SYN:
            return NatDecision("rst")
        dest = (nat, n_ip, r_ip, remote_port, proto)
        used = self._used.get(dest, set())
        if len(used) >= self.max_per_destination or len(self._inside) >= self.capacity:
            self.expire(now)  # reclaim what has idled out before refusing (lazy expiry)
            used = self._used.get(dest, set())
        if len(used) >= self.max_per_destination:
            return NatDecision("exhausted")
        port = self._allocate(dest, inside_port, now)
        if port is None:
            return NatDecision("exhausted")
        if len(self._inside) >= self.capacity:
            return NatDecision("full")
        b = NatBinding(nat, proto, i_ip, inside_port, r_ip, remote_port, n_ip, port, now, now)
        self._inside[key] = b
        self._outside[(nat, proto, n_ip, port, r_ip, remote_port)] = b
        self._used.setdefault(dest, set()).add(port)
        return NatDecision("ok", b)

    def inbound(self, nat: str, nat_ip: Any, proto: int, remote_ip: Any, remote_port: int, nat_port: int,
                now: int) -> NatBinding | None:
        """A packet from outside to the NAT gateway's ``nat_ip``:``nat_port``: its binding, or
        None (``NAT_NO_BINDING``)."""
        key = (nat, proto, _ip_int(nat_ip), nat_port, _ip_int(remote_ip), remote_port)
        b = self._live(self._outside.get(key), now)
        if b is not None:
            b.last_seen = now
        return b


# --------------------------------------------------------------------------- the RST

def tcp_rst_for(frame: bytearray, gateway_mac: bytes) -> None:
    """Rewrite ``frame`` (an inside TCP packet from a host through a NAT gateway) in place into
    the RST the NAT gateway answers it with (docs/edge.md §4.1): from the remote address and
    port to the host, Ethernet dst := the host's MAC, src := ``gateway_mac``."""
    ip0, ihl, proto, end, first = _parse(frame)
    l4 = ip0 + ihl
    if proto != PROTO_TCP or not first or l4 + 20 > end:
        raise ValueError("not a TCP segment with a complete header")
    if len(gateway_mac) != 6:
        raise ValueError("gateway_mac must be 6 bytes")
    src_ip, dst_ip = bytes(frame[ip0 + 12:ip0 + 16]), bytes(frame[ip0 + 16:ip0 + 20])
    sport, dport = _u16(frame, l4), _u16(frame, l4 + 2)
    seq = int.from_bytes(frame[l4 + 4:l4 + 8], "big")
    ack = int.from_bytes(frame[l4 + 8:l4 + 12], "big")
    flags = frame[l4 + 13]
    seg_len = end - l4 - (frame[l4 + 12] >> 4) * 4
    if flags & TCP_SYN:
        seg_len += 1
    if flags & TCP_FIN:
        seg_len += 1
    if flags & TCP_ACK:
        r_seq, r_ack, r_flags = ack, 0, TCP_RST
    else:
        r_seq, r_ack, r_flags = 0, (seq + seg_len) & 0xFFFFFFFF, TCP_RST | TCP_ACK
    host_mac = bytes(frame[6:12])
    frame[0:6] = host_mac
    frame[6:12] = gateway_mac
    # IPv4 header, no options: 20 bytes at ETH_LEN (the reply always fits: the request had >= 40)
    ip = bytearray(20)
    ip[0], ip[8], ip[9] = 0x45, 64, PROTO_TCP
    _put16(ip, 2, 40)
    ip[12:16], ip[16:20] = dst_ip, src_ip
    _put16(ip, 10, internet_checksum(ip))
    tcp = bytearray(20)
    _put16(tcp, 0, dport)
    _put16(tcp, 2, sport)
    tcp[4:8] = r_seq.to_bytes(4, "big")
    tcp[8:12] = r_ack.to_bytes(4, "big")
    tcp[12], tcp[13] = 5 << 4, r_flags
    pseudo = dst_ip + src_ip + bytes([0, PROTO_TCP]) + (20).to_bytes(2, "big")
    _put16(tcp, 16, internet_checksum(pseudo + bytes(tcp)))
    frame[ETH_LEN:ETH_LEN + 20] = ip
    frame[ETH_LEN + 20:ETH_LEN + 40] = tcp


# --------------------------------------------------------------------------- the stages' decisions

@dataclasses.dataclass(frozen=True)
class EdgeOutcome:
    """What an edge function did to a frame: ``reason`` None = translated in place, carry on;
    else the drop reason.  ``reply``: the frame was rewritten into a REPLY (the NAT gateway's RST).
    ``owner``: for the inbound functions, the ENI or NAT gateway the destination now names."""

    reason: DropReason | None = None
    reply: bool = False
    binding: NatBinding | None = None
    owner: Any = None


def _ips(frame: bytearray) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    return (ipaddress.IPv4Address(bytes(frame[ETH_LEN + 12:ETH_LEN + 16])),
            ipaddress.IPv4Address(bytes(frame[ETH_LEN + 16:ETH_LEN + 20])))


def igw_egress(frame: bytearray, pmap: PublicIpMap, vpc: Vpc | str) -> EdgeOutcome:
    """edge_egress (docs/edge.md §2): the source becomes its public IP, else ``NO_PUBLIC_IP``."""
    _parse(frame)
    src, _ = _ips(frame)
    public = pmap.public_ip_of(vpc, src)
    if public is None:
        return EdgeOutcome(DropReason.NO_PUBLIC_IP)
    translate_source(frame, public)
    return EdgeOutcome()


def igw_ingress(frame: bytearray, pmap: PublicIpMap, vpc: Vpc | str) -> EdgeOutcome:
    """edge_ingress on an internet gateway's port (§3): the destination public IP becomes the
    private IP of its ENI or NAT gateway (``owner``), else ``NO_SUCH_PUBLIC_IP``."""
    _parse(frame)
    _, dst = _ips(frame)
    found = pmap.private_ip_of(vpc, dst)
    if found is None:
        return EdgeOutcome(DropReason.NO_SUCH_PUBLIC_IP)
    owner, private = found
    translate_destination(frame, private)
    return EdgeOutcome(owner=owner)


class FragmentTable:
    """UDP fragments through a NAT gateway (§4.1): the first fragment's binding, by (source,
    destination, IP id), for the later fragments, which carry no ports.  Bounded: the oldest
    entry goes when ``capacity`` is reached."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._by_key: dict[tuple[bytes, bytes, int], NatBinding] = {}

    def remember(self, key: tuple[bytes, bytes, int], b: NatBinding) -> None:
        if key not in self._by_key and len(self._by_key) >= self.capacity:
            del self._by_key[next(iter(self._by_key))]
        self._by_key[key] = b

    def get(self, key: tuple[bytes, bytes, int]) -> NatBinding | None:
        return self._by_key.get(key)

    def __len__(self) -> int:
        return len(self._by_key)


def _frag_key(frame: bytearray) -> tuple[bytes, bytes, int]:
    return bytes(frame[ETH_LEN + 12:ETH_LEN + 16]), bytes(frame[ETH_LEN + 16:ETH_LEN + 20]), _u16(frame, ETH_LEN + 4)


def _fragment_binding(fragments: FragmentTable | None, table: NatTable, frame: bytearray,
                      now: int) -> tuple[NatBinding | None, NatBinding | None]:
    """A later UDP fragment's bindings, either way: (the one its first fragment remembered, the live one holding
    that binding's outside key now -- what translates it, as the compiled nat stage looks it up), Nones where
    there is none."""
    b = fragments.get(_frag_key(frame)) if fragments is not None else None
    if b is None:
        return None, None
    return b, table.inbound(b.nat, b.nat_ip, b.proto, b.remote_ip, b.remote_port, b.nat_port, now)


def _first_with_more(frame: bytearray) -> bool:
    ff = _u16(frame, ETH_LEN + 6)
    return bool(ff & 0x2000) and (ff & 0x1FFF) == 0


def nat_outbound(frame: bytearray, nat: NatGateway, table: NatTable | None, now: int,
                 gateway_mac: bytes, fragments: FragmentTable | None = None) -> EdgeOutcome:
    """``nat`` for a frame routed to NAT gateway ``nat`` (§4.1 steps 1, 3-5; the NACL step and
    the onward routing are the forwarder's): translate the source to the NAT gateway's private IP
    and port, or answer with a RST (``reply``), or a drop reason."""
    if table is None:
        return EdgeOutcome(DropReason.NAT_NEEDS_STATE)
    ip0, ihl, proto, end, first = _parse(frame)
    if nat.ip is None:  # a NAT gateway without a subnet has no address to translate to
        return EdgeOutcome(DropReason.NAT_UNSUPPORTED)
    if proto not in (PROTO_TCP, PROTO_UDP, PROTO_ICMP):
        return EdgeOutcome(DropReason.NAT_UNSUPPORTED)
    frag = is_fragment(frame)
    if frag and proto != PROTO_UDP:
        return EdgeOutcome(DropReason.NAT_UNSUPPORTED)
    if not first:  # a later UDP fragment: the first one's binding, the address only
        b, live = _fragment_binding(fragments, table, frame, now)
        if b is None or live is None:
            return EdgeOutcome(DropReason.NAT_NO_BINDING)
        translate_source(frame, nat.ip)
        return EdgeOutcome(binding=b)
    _, sport, dport, flags = l4_ports(frame)
    if sport is None or dport is None or (proto == PROTO_ICMP and frame[ip0 + ihl] != ICMP_ECHO_REQUEST):
        return EdgeOutcome(DropReason.NAT_UNSUPPORTED)
    src, dst = _ips(frame)
    remote_port = 0 if proto == PROTO_ICMP else dport
    key = _frag_key(frame)
    d = table.outbound(nat.name, nat.ip, proto, src, sport, dst, remote_port, now, flags)
    if d.status == "rst":
        tcp_rst_for(frame, gateway_mac)
        return EdgeOutcome(reply=True)
    if d.status == "no_binding":
        return EdgeOutcome(DropReason.NAT_NO_BINDING)
    if d.status == "exhausted":
        return EdgeOutcome(DropReason.NAT_PORTS_EXHAUSTED)
    if d.status == "full":
        return EdgeOutcome(DropReason.FLOW_TABLE_FULL)
    assert d.binding is not None
    if proto == PROTO_UDP and _first_with_more(frame) and fragments is not None:
        fragments.remember(key, d.binding)
    translate_source(frame, nat.ip, d.binding.nat_port)
    return EdgeOutcome(binding=d.binding)


def nat_inbound(frame: bytearray, nat: NatGateway, table: NatTable | None, now: int,
                fragments: FragmentTable | None = None) -> EdgeOutcome:
    """``nat`` for a frame addressed to NAT gateway ``nat``'s private IP (§4.2 steps 2-3): the
    destination translated back to the inside host, or ``NAT_NO_BINDING`` (unsolicited).  A later UDP
    fragment of a reply takes the binding its first fragment found (``fragments``), the address only."""
    if table is None:
        return EdgeOutcome(DropReason.NAT_NEEDS_STATE)
    ip0, ihl, proto, end, first = _parse(frame)
    if nat.ip is None or proto not in (PROTO_TCP, PROTO_UDP, PROTO_ICMP):
        return EdgeOutcome(DropReason.NAT_UNSUPPORTED)
    if is_fragment(frame) and proto != PROTO_UDP:
        return EdgeOutcome(DropReason.NAT_UNSUPPORTED)
    if not first:
        # the live binding of the first fragment's outside key (another inside host's, if the port was given out
        # again since)
        _, live = _fragment_binding(fragments, table, frame, now)
        if live is None:
            return EdgeOutcome(DropReason.NAT_NO_BINDING)
        translate_destination(frame, live.inside_ip)
        return EdgeOutcome(binding=live)
    _, sport, dport, _flags = l4_ports(frame)
    if sport is None or dport is None or (proto == PROTO_ICMP and frame[ip0 + ihl] != ICMP_ECHO_REPLY):
        return EdgeOutcome(DropReason.NAT_NO_BINDING)  # ICMP errors and requests to the NAT: unanswered
    src, _ = _ips(frame)
    remote_port = 0 if proto == PROTO_ICMP else sport
    b = table.inbound(nat.name, nat.ip, proto, src, remote_port, dport, now)
    if b is None:
        return EdgeOutcome(DropReason.NAT_NO_BINDING)
    if proto == PROTO_UDP and _first_with_more(frame) and fragments is not None:
        fragments.remember(_frag_key(frame), b)
    translate_destination(frame, b.inside_ip, b.inside_port)
    return EdgeOutcome(binding=b)
