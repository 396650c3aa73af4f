"""fastvpc.classify against scapy and dpkt dissection of random and mutated frames."""

from __future__ import annotations

import struct

import dpkt
import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from fastvpc.batch import FrameBatch
from fastvpc.dataplane.classify import (FLAG_ARP, FLAG_CSUM_OK, FLAG_ETH, FLAG_FRAGMENT, FLAG_GROUP_MAC, FLAG_IP_LEN_OK,
                              FLAG_IPV4, FLAG_L4, Classified, classify)
from fastvpc.errors import FrameBatchError


def _mac(b: bytes) -> int:
    return int.from_bytes(b, "big")


def oracle(f: bytes) -> dict[str, int]:
    """Independent field extraction with dpkt (Ethernet/ARP) and scapy (IPv4, checksum via IP(raw))."""
    out = dict(ethertype=0, dst_mac=0, src_mac=0, ip_src=0, ip_dst=0, proto=0, ttl=0, ip_len=0, sport=0, dport=0,
               icmp_type=255, icmp_code=255, arp_op=0, flags=0)
    if len(f) < 14:
        return out
    out["flags"] = FLAG_ETH | (FLAG_GROUP_MAC if f[0] & 1 else 0)
    out["dst_mac"], out["src_mac"] = _mac(f[0:6]), _mac(f[6:12])
    et = struct.unpack("!H", f[12:14])[0]
    out["ethertype"] = et
    body = f[14:]
    if et == 0x0806:
        if len(body) >= 28:
            arp = dpkt.arp.ARP(body[:28])
            if (arp.hrd, arp.pro, arp.hln, arp.pln) == (1, 0x0800, 6, 4):
                out["flags"] |= FLAG_ARP
                out["arp_op"] = arp.op
                out["ip_src"] = struct.unpack("!I", arp.spa)[0]
                out["ip_dst"] = struct.unpack("!I", arp.tpa)[0]
    elif et == 0x0800 and len(body) >= 20:
        ver, ihl = body[0] >> 4, body[0] & 15
        if ver == 4 and ihl >= 5 and ihl * 4 <= len(body):
            hl = ihl * 4
            ip = IP(body[:hl])  # scapy with the header only: no payload to mis-dissect
            out["flags"] |= FLAG_IPV4
            out["ip_src"] = int.from_bytes(bytes(map(int, ip.src.split("."))), "big")
            out["ip_dst"] = int.from_bytes(bytes(map(int, ip.dst.split("."))), "big")
            out["proto"], out["ttl"], out["ip_len"] = ip.proto, ip.ttl, ip.len
            if ip.flags.MF or ip.frag:
                out["flags"] |= FLAG_FRAGMENT
            raw = body[:hl]
            s = sum(struct.unpack(f"!{hl // 2}H", raw))
            while s >> 16:
                s = (s & 0xFFFF) + (s >> 16)
            if s == 0xFFFF:
                out["flags"] |= FLAG_CSUM_OK
            tl = ip.len
            if hl <= tl <= len(body):
                out["flags"] |= FLAG_IP_LEN_OK
                l4 = body[hl:tl]
                if ip.frag == 0:
                    if ip.proto == 6 and len(l4) >= 20:
                        t = TCP(l4[:20])  # scapy: lenient about the data offset, as the kernel is
                        out["sport"], out["dport"] = t.sport, t.dport
                        out["flags"] |= FLAG_L4
                    elif ip.proto == 17 and len(l4) >= 8:
                        u = dpkt.udp.UDP(l4[:8])
                        out["sport"], out["dport"] = u.sport, u.dport
                        out["flags"] |= FLAG_L4
                    elif ip.proto == 1 and len(l4) >= 8:
                        out["icmp_type"], out["icmp_code"] = l4[0], l4[1]
                        out["flags"] |= FLAG_L4
    return out


def check(frames: list[bytes]) -> Classified:
    b = FrameBatch.from_frames(frames, port=0)
    c = classify(b)
    for i, f in enumerate(frames):
        want = oracle(f)
        got = {k: int(getattr(c, k)[i]) for k in want}
        assert got == want, (i, f.hex())
    return c


def templates() -> list[bytes]:
    m1, m2 = "02:00:00:00:00:01", "06:00:00:00:00:02"
    return [bytes(p) for p in [
        Ether(src=m1, dst=m2) / IP(src="10.0.1.10", dst="8.8.8.8", ttl=9) / TCP(sport=1000, dport=443) / (b"x" * 30),
        Ether(src=m1, dst=m2) / IP(src="10.0.1.10", dst="8.8.4.4") / UDP(sport=5353, dport=53) / b"q",
        Ether(src=m1, dst=m2) / IP(src="10.0.1.10", dst="10.0.1.1") / ICMP(type=8, code=0) / b"ping",
        Ether(src=m1, dst=m2) / IP(src="10.0.1.10", dst="10.0.1.1", options=[b"\x01\x01\x01\x00"]) / UDP(),
        Ether(src=m1, dst=m2) / IP(src="1.2.3.4", dst="5.6.7.8", flags="MF") / UDP(sport=1, dport=2) / (b"a" * 20),
        Ether(src=m1, dst=m2) / IP(src="1.2.3.4", dst="5.6.7.8", frag=5) / Raw(b"\x00\x01\x00\x02" * 8),
        Ether(src=m1, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=m1, psrc="10.0.1.10", pdst="10.0.1.1"),
        Ether(src=m1, dst=m2) / ARP(op=2, hwsrc=m1, psrc="10.0.1.10", pdst="10.0.1.1") / (b"\0" * 18),
        Ether(src=m1, dst=m2) / Dot1Q(vlan=3) / IP() / UDP(),
        Ether(src=m1, dst="01:00:5e:00:00:01") / IP(dst="224.0.0.1", proto=2) / b"igmp....",
        Ether(src=m1, dst=m2) / IP(proto=47) / b"gre.",
        Ether(src=m1, dst=m2, type=0x86DD) / (b"\x60" + b"\0" * 39),
    ]]


def test_templates_and_absent_values() -> None:
    frames = templates()
    c = check(frames)
    assert c.sport[0] == 1000 and c.dport[0] == 443 and c.ttl[0] == 9
    assert c.icmp_type[2] == 8 and c.icmp_type[0] == 255 and c.icmp_code[1] == 255
    assert c.flags[4] & FLAG_FRAGMENT and c.flags[4] & FLAG_L4  # first fragment keeps its ports
    assert c.flags[5] & FLAG_FRAGMENT and not c.flags[5] & FLAG_L4
    assert c.arp_op[6] == 1 and c.flags[6] & FLAG_ARP and c.flags[6] & FLAG_GROUP_MAC
    assert c.ethertype[8] == 0x8100 and c.flags[8] == FLAG_ETH
    assert all(c.flags[i] & FLAG_CSUM_OK for i in range(6))


def test_truncations() -> None:
    frames = [f[:n] for f in templates() for n in range(0, len(f) + 1)]
    check(frames)


def test_random_mutations() -> None:
    rng = np.random.default_rng(11)
    base = templates()
    frames = []
    for _ in range(3000):
        f = bytearray(base[rng.integers(len(base))])
        for _ in range(rng.integers(1, 4)):
            pos = int(rng.integers(min(len(f), 60)))
            f[pos] = int(rng.integers(256))
        if rng.integers(4) == 0:
            f = f[:int(rng.integers(len(f) + 1))]
        frames.append(bytes(f))
    # random bytes with IPv4/ARP ethertypes forced, some with version 4 / IHL forced
    for _ in range(2000):
        n = int(rng.integers(0, 90))
        f = bytearray(rng.integers(0, 256, size=n, dtype=np.uint8).tobytes())
        if n >= 14:
            f[12:14] = b"\x08\x00" if rng.integers(3) else b"\x08\x06"
        if n >= 15 and rng.integers(2):
            f[14] = 0x40 | int(rng.integers(16))
        frames.append(bytes(f))
    check(frames)


def test_lying_total_length_and_ihl() -> None:
    f = bytearray(templates()[1])
    out = []
    for tl in (0, 19, 20, 27, 28, len(f) - 14, len(f) - 13, 0xFFFF):
        g = bytearray(f)
        g[16:18] = struct.pack("!H", tl)
        out.append(bytes(g))
    for ihl in range(16):
        g = bytearray(f)
        g[14] = 0x40 | ihl
        out.append(bytes(g))
    check(out)


def test_out_reuse_and_threads() -> None:
    frames = templates() * 500
    b = FrameBatch.from_frames(frames, port=0)
    ref = classify(b, n_threads=1)
    two = classify(b, n_threads=2)
    for a, c in zip(ref, two):
        assert np.array_equal(a, c)
    big = classify(FrameBatch.from_frames(frames * 2, port=0))
    again = classify(b, out=big)
    for a, c, buf in zip(ref, again, big):
        assert np.array_equal(a, c) and np.shares_memory(c, buf)
    assert len(classify(FrameBatch.empty()).flags) == 0
    with pytest.raises(FrameBatchError):
        classify(b"abc")  # type: ignore[arg-type]


def test_read_only_batch() -> None:
    b = FrameBatch.from_frames(templates(), port=0)
    d = b.data.copy()
    d.flags.writeable = False
    c = classify(FrameBatch(d, b.offsets, b.port))
    assert c.ethertype[0] == 0x0800
