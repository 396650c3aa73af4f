"""Build test frames without scapy: Ethernet, ARP, IPv4, ICMP echo, UDP, TCP.

A small, dependency-free builder for simulators, the demo and benchmarks.  Every
checksum is computed (IPv4 header, ICMP, UDP and TCP with the pseudo-header), so
the frames are what a Linux VM would send.  Addresses are strings, ints or
``ipaddress`` objects; MACs are ``"aa:bb:cc:dd:ee:ff"`` strings or 6 bytes.
"""

from __future__ import annotations

import ipaddress
import operator
import struct
from typing import Any, Union

__all__ = [
    "ETH_ARP",
    "ETH_IPV4",
    "ETH_IPV6",
    "BROADCAST_MAC",
    "arp_request",
    "arp_reply",
    "checksum",
    "ethernet",
    "icmp_echo",
    "ipv4",
    "ipv6_udp",
    "mac_bytes",
    "tcp",
    "udp",
]

ETH_IPV4, ETH_ARP, ETH_IPV6 = 0x0800, 0x0806, 0x86DD
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"

MacLike = Union[str, bytes]
IpLike = Union[str, int, ipaddress.IPv4Address]


def mac_bytes(mac: MacLike) -> bytes:
    """``"02:00:00:00:00:01"`` (or 6 bytes) as 6 bytes; ValueError naming a bad MAC."""
    if isinstance(mac, (bytes, bytearray)):
        if len(mac) != 6:
            raise ValueError(f"MAC {bytes(mac)!r} is not 6 bytes")
        return bytes(mac)
    parts = str(mac).replace("-", ":").split(":")
    try:
        raw = bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"MAC {mac!r} is not xx:xx:xx:xx:xx:xx") from None
    if len(raw) != 6 or any(len(p) != 2 for p in parts):
        raise ValueError(f"MAC {mac!r} is not xx:xx:xx:xx:xx:xx")
    return raw


def _ip(addr: IpLike) -> bytes:
    return ipaddress.IPv4Address(addr).packed


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``; odd lengths are padded with a zero byte."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ethernet(dst: MacLike, src: MacLike, ethertype: int, payload: bytes, *, pad_to: int = 0) -> bytes:
    """An Ethernet II frame (no FCS), zero-padded to ``pad_to`` bytes if shorter."""
    frame = mac_bytes(dst) + mac_bytes(src) + struct.pack("!H", ethertype) + payload
    return frame + b"\0" * max(0, pad_to - len(frame))


def _arp(op: int, sha: MacLike, spa: IpLike, tha: MacLike, tpa: IpLike) -> bytes:
    return struct.pack("!HHBBH", 1, ETH_IPV4, 6, 4, op) + mac_bytes(sha) + _ip(spa) + mac_bytes(tha) + _ip(tpa)


def arp_request(src_mac: MacLike, src_ip: IpLike, target_ip: IpLike, *, pad_to: int = 60) -> bytes:
    """Who-has ``target_ip`` tell ``src_ip``, broadcast, padded to the 60-byte Ethernet minimum."""
    return ethernet(BROADCAST_MAC, src_mac, ETH_ARP, _arp(1, src_mac, src_ip, b"\0" * 6, target_ip), pad_to=pad_to)


def arp_reply(src_mac: MacLike, src_ip: IpLike, dst_mac: MacLike, dst_ip: IpLike, *, pad_to: int = 60) -> bytes:
    """``src_ip`` is-at ``src_mac``, unicast to ``dst_mac``."""
    return ethernet(dst_mac, src_mac, ETH_ARP, _arp(2, src_mac, src_ip, dst_mac, dst_ip), pad_to=pad_to)


def ipv4(src: IpLike, dst: IpLike, proto: int, payload: bytes, *, ttl: int = 64, ident: int = 0,
         flags_frag: int = 0x4000, tos: int = 0, options: bytes = b"") -> bytes:
    """An IPv4 packet with a valid header checksum (DF set unless ``flags_frag`` says otherwise)."""
    if len(options) % 4:
        raise ValueError(f"IPv4 options must be a multiple of 4 bytes, got {len(options)}")
    ihl = 5 + len(options) // 4
    total = ihl * 4 + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, total, ident, flags_frag, ttl, proto, 0,
                      _ip(src), _ip(dst)) + options
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return hdr + payload


def icmp_echo(src: IpLike, dst: IpLike, *, ident: int = 1, seq: int = 1, payload: bytes = b"fastvpc!" * 4,
              request: bool = True) -> bytes:
    """An IPv4 ICMP echo request (or reply) packet, checksums valid."""
    body = struct.pack("!BBHHH", 8 if request else 0, 0, 0, ident, seq) + payload
    body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
    return ipv4(src, dst, 1, body)


def _l4_checksum(src: IpLike, dst: IpLike, proto: int, segment: bytes) -> int:
    pseudo = _ip(src) + _ip(dst) + struct.pack("!BBH", 0, proto, len(segment))
    return checksum(pseudo + segment)


#: TCP flag letters as scapy and tcpdump write them (``"S"``, ``"SA"``, ``"PA"``, ``"FA"``, ``"R"``).
TCP_FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40, "C": 0x80}


def _field(name: str, value: Any, bits: int) -> int:
    """``value`` as an unsigned ``bits``-bit header field, or a ValueError/TypeError naming it."""
    try:
        v: int = operator.index(value)  # ints and numpy integers; not floats or strings
    except TypeError:
        raise TypeError(f"{name} must be an int, got {value!r}") from None
    if not 0 <= v < 1 << bits:
        raise ValueError(f"{name} = {v} is outside 0..{(1 << bits) - 1}")
    return v


def tcp_flags(flags: int | str) -> int:
    """The TCP flags byte from an int (0..255) or letters (``"SA"`` = SYN+ACK; :data:`TCP_FLAG_BITS`)."""
    if isinstance(flags, str):
        bad = sorted(set(flags.upper()) - set(TCP_FLAG_BITS))
        if bad:
            raise ValueError(f"TCP flags {flags!r}: unknown letter(s) {''.join(bad)!r} "
                             f"(use {''.join(TCP_FLAG_BITS)})")
        return sum({TCP_FLAG_BITS[c] for c in flags.upper()})
    return _field("TCP flags", flags, 8)


def udp(src: IpLike, dst: IpLike, sport: int, dport: int, payload: bytes = b"", *, ttl: int = 64) -> bytes:
    """An IPv4 UDP packet, checksums valid."""
    seg = struct.pack("!HHHH", _field("sport", sport, 16), _field("dport", dport, 16), 8 + len(payload), 0) + payload
    csum = _l4_checksum(src, dst, 17, seg) or 0xFFFF
    return ipv4(src, dst, 17, seg[:6] + struct.pack("!H", csum) + seg[8:], ttl=ttl)


def tcp(src: IpLike, dst: IpLike, sport: int, dport: int, payload: bytes = b"", *, flags: int | str = 0x02,
        seq: int = 1, ack: int = 0, ttl: int = 64) -> bytes:
    """An IPv4 TCP segment (SYN by default), checksums valid.  ``flags``: an int or letters (``"SA"``)."""
    seg = struct.pack("!HHIIBBHHH", _field("sport", sport, 16), _field("dport", dport, 16), _field("seq", seq, 32),
                      _field("ack", ack, 32), 5 << 4, tcp_flags(flags), 65535, 0, 0) + payload
    csum = _l4_checksum(src, dst, 6, seg)
    return ipv4(src, dst, 6, seg[:16] + struct.pack("!H", csum) + seg[18:], ttl=ttl)


def ipv6_udp(src: str, dst: str, sport: int = 5353, dport: int = 5353, payload: bytes = b"") -> bytes:
    """An IPv6 UDP packet (checksum zero: fastvpc drops IPv6 before looking at it)."""
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return (struct.pack("!IHBB", 6 << 28, len(seg), 17, 64) + ipaddress.IPv6Address(src).packed
            + ipaddress.IPv6Address(dst).packed + seg)
