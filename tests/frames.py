"""Frame builders and dissectors for tests, on scapy (an independent oracle for bytes and checksums).

Every builder returns ``bytes``.  Wherever a MAC or an IP is wanted, an ``Eni`` may be
given instead (its ``.mac`` / primary ``.ip``), and a ``Subnet`` stands for its router
(``.gateway_mac`` / ``.router_ip``).  Import from a test file with::

    from frames import arp_request, udp_frame, ...      # tests/ is put on sys.path by the caller

Builders:

* ``arp_request(eni_or_mac, ip, target_ip)``: who-has ``target_ip`` tell ``ip`` (broadcast);
  ``arp_frame(...)`` for any op / field.
* ``ipv4_frame(src, dst_ip, dst_mac, l4)``, ``udp_frame``, ``tcp_frame``, ``icmp_echo``:
  IPv4 from an ENI (source IP defaults to its primary IP) to an IP, with a chosen Ethernet
  destination (an ENI, a subnet = its gateway MAC, or a MAC string).
* ``pad(frame, n)``: Ethernet padding up to ``n`` bytes.

Dissectors / oracles: ``ether(frame)`` (scapy ``Ether``), ``ip_checksum_ok``,
``icmp_checksum_ok``, ``l4_checksum_ok``.
"""

from __future__ import annotations

import ipaddress
import warnings
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from scapy.compat import raw
    from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP, IPOption_RR  # noqa: F401
    from scapy.layers.l2 import ARP, Dot1Q, Ether
    from scapy.packet import Packet, Raw
    from scapy.utils import checksum

__all__ = [
    "ARP", "Dot1Q", "Ether", "ICMP", "IP", "Raw", "TCP", "UDP", "IPOption_NOP", "IPOption_RR",
    "BROADCAST_MAC", "arp_frame", "arp_request", "ether", "icmp_checksum_ok", "icmp_echo", "ip_checksum_ok",
    "ip_of", "ipv4_frame", "l4_checksum_ok", "mac_of", "pad", "tcp_frame", "udp_frame",
]

BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"


def mac_of(x: Any) -> str:
    """A MAC string from an Eni (its MAC), a Subnet (its gateway MAC), bytes or a string."""
    if hasattr(x, "gateway_mac"):
        return str(x.gateway_mac)
    if hasattr(x, "mac"):
        return str(x.mac)
    if isinstance(x, (bytes, bytearray)):
        return ":".join(f"{b:02x}" for b in x)
    return str(x)


def ip_of(x: Any) -> str:
    """An IPv4 string from an Eni (primary IP), a Subnet (router IP), an address or a string."""
    if hasattr(x, "router_ip"):
        return str(x.router_ip)
    if hasattr(x, "ip"):
        return str(x.ip)
    return str(ipaddress.IPv4Address(x) if not isinstance(x, str) else x)


def pad(frame: bytes, n: int = 60, fill: bytes = b"\xa5") -> bytes:
    """``frame`` with trailing Ethernet padding up to ``n`` bytes (fill byte chosen to be visible)."""
    return frame + fill * max(0, n - len(frame))


# --------------------------------------------------------------------------- ARP

def arp_frame(src: Any, sender_ip: Any, target_ip: Any, *, op: int = 1, eth_dst: Any = BROADCAST_MAC,
              sha: Any = None, tha: str = "00:00:00:00:00:00") -> bytes:
    """An Ethernet/ARP frame (IPv4 over Ethernet).  ``src`` gives eth.src and, by default, sha."""
    mac = mac_of(src)
    return raw(Ether(src=mac, dst=mac_of(eth_dst)) /
               ARP(op=op, hwsrc=mac_of(sha) if sha is not None else mac, psrc=ip_of(sender_ip),
                   hwdst=tha, pdst=ip_of(target_ip)))


def arp_request(eni_or_mac: Any, ip: Any, target_ip: Any, **kw: Any) -> bytes:
    """Who-has ``target_ip`` tell ``ip``, broadcast from ``eni_or_mac``.

    ``ip=None`` with an Eni uses its primary IP.
    """
    if ip is None:
        ip = eni_or_mac.ip
    return arp_frame(eni_or_mac, ip, target_ip, op=1, **kw)


# --------------------------------------------------------------------------- IPv4

def ipv4_frame(src: Any, dst_ip: Any, dst_mac: Any, l4: Packet | bytes | None = None, *,
               src_ip: Any = None, src_mac: Any = None, ttl: int = 64, ip_id: int = 1,
               options: Any = None, flags: int | str = 0, frag: int = 0, proto: int | None = None,
               tos: int = 0) -> bytes:
    """An Ethernet/IPv4 frame from ``src`` (an Eni, or a MAC with ``src_ip`` given) to ``dst_ip``.

    ``dst_mac`` is an Eni, a Subnet (its router's MAC) or a MAC string.
    """
    s_ip = ip_of(src_ip if src_ip is not None else src)
    s_mac = mac_of(src_mac if src_mac is not None else src)
    ip_kw: dict[str, Any] = dict(src=s_ip, dst=ip_of(dst_ip), ttl=ttl, id=ip_id, flags=flags, frag=frag, tos=tos)
    if options is not None:
        ip_kw["options"] = options
    if proto is not None:
        ip_kw["proto"] = proto
    pkt = Ether(src=s_mac, dst=mac_of(dst_mac)) / IP(**ip_kw)
    if l4 is not None:
        pkt = pkt / (Raw(l4) if isinstance(l4, (bytes, bytearray)) else l4)
    return raw(pkt)


def udp_frame(src: Any, dst_ip: Any, dst_mac: Any, *, sport: int = 40000, dport: int = 53,
              payload: bytes = b"hello", **kw: Any) -> bytes:
    return ipv4_frame(src, dst_ip, dst_mac, UDP(sport=sport, dport=dport) / Raw(payload), **kw)


def tcp_frame(src: Any, dst_ip: Any, dst_mac: Any, *, sport: int = 40000, dport: int = 22,
              tcp_flags: str = "S", payload: bytes = b"", **kw: Any) -> bytes:
    l4 = TCP(sport=sport, dport=dport, flags=tcp_flags)
    if payload:
        l4 = l4 / Raw(payload)
    return ipv4_frame(src, dst_ip, dst_mac, l4, **kw)


def icmp_echo(src: Any, dst_ip: Any, dst_mac: Any, *, ident: int = 0x1234, seq: int = 1,
              payload: bytes = b"ping", icmp_type: int = 8, code: int = 0, **kw: Any) -> bytes:
    return ipv4_frame(src, dst_ip, dst_mac, ICMP(type=icmp_type, code=code, id=ident, seq=seq) / Raw(payload),
                      **kw)


# --------------------------------------------------------------------------- dissection / oracles

def ether(frame: bytes) -> Ether:
    """Dissect with scapy."""
    return Ether(frame)


def _ip_span(frame: bytes) -> tuple[int, int, int]:
    ihl = (frame[14] & 0x0F) * 4
    tl = int.from_bytes(frame[16:18], "big")
    return 14, 14 + ihl, 14 + tl


def ip_checksum_ok(frame: bytes) -> bool:
    """The IPv4 header checksum verifies (scapy's RFC 1071 sum over the header is 0)."""
    a, b, _ = _ip_span(frame)
    return checksum(frame[a:b]) == 0


def icmp_checksum_ok(frame: bytes) -> bool:
    """The ICMP checksum over the whole ICMP message (odd lengths included) verifies."""
    _, b, c = _ip_span(frame)
    return checksum(frame[b:c]) == 0


def l4_checksum_ok(frame: bytes) -> bool:
    """UDP/TCP checksum still valid (scapy recomputes it for comparison)."""
    pkt = Ether(frame)
    layer = pkt.getlayer(UDP) or pkt.getlayer(TCP)
    if layer is None:
        return True
    want = layer.chksum
    layer.chksum = None
    return bool(want == Ether(raw(pkt)).getlayer(type(layer)).chksum)


def assert_checksums(buf: bytes, *, udp_zero_ok: bool = False) -> Ether:
    """Every checksum of an IPv4 frame is the one scapy recomputes from scratch: the IP header's, and
    (unless the packet is a fragment, whose L4 checksum covers bytes not here) the TCP, UDP or ICMP
    one.  ``udp_zero_ok``: a UDP checksum of 0 ("none", RFC 768) is accepted.  Returns the dissection."""
    got = Ether(bytes(buf))
    p = got.copy()
    del p[IP].chksum
    for layer in (TCP, UDP, ICMP):
        if p.haslayer(layer) and not (layer is UDP and udp_zero_ok and p[UDP].chksum == 0):
            del p[layer].chksum
    want = Ether(raw(p))
    assert got[IP].chksum == want[IP].chksum, "IPv4 header checksum"
    if not got[IP].frag and not got[IP].flags.MF:
        for layer in (TCP, UDP, ICMP):
            if got.haslayer(layer):
                assert got[layer].chksum == want[layer].chksum, layer.__name__
    return got
