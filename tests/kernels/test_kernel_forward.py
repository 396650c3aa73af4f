"""Compiled forwarding pass: one test per step of docs/forwarding-model.md, on scapy-built frames.

Each test checks action, reason, egress, route and the output bytes (dissected with scapy).
"""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

import fastvpc.topology as T
from fastvpc.batch import FrameBatch
from fastvpc.dataplane import Dataplane, Result
from fastvpc.errors import FrameBatchError, TopologyError
from fastvpc.verdicts import Action as A
from fastvpc.verdicts import DropReason as R


def _csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


class Topo:
    def __init__(self) -> None:
        net = self.net = T.Network()
        vpc = self.vpc = net.add_vpc("10.0.0.0/16", name="prod")
        self.web = vpc.add_subnet("10.0.1.0/24", name="web")
        self.app = vpc.add_subnet("10.0.2.0/24", name="app")
        self.db = vpc.add_subnet("10.0.3.0/24", name="db")
        self.igw = vpc.add_internet_gateway(name="igw")
        self.w1 = self.web.add_eni("10.0.1.10", name="w1")
        self.w2 = self.web.add_eni("10.0.1.11", name="w2", secondary_ips=["10.0.1.12"])
        self.a1 = self.app.add_eni("10.0.2.10", name="a1", secondary_ips=["10.0.2.11"])
        self.fw = self.app.add_eni("10.0.2.50", name="fw", source_dest_check=False)
        self.d1 = self.db.add_eni("10.0.3.10", name="d1")
        self.mb = self.db.add_eni("10.0.3.20", name="mb")  # a middlebox that keeps its check on
        peer = self.peer = net.add_vpc("192.168.0.0/16", name="peer")
        self.psub = peer.add_subnet("192.168.1.0/24", name="psub")
        self.p1 = self.psub.add_eni("192.168.1.10", name="p1")
        self.pcx = net.add_peering(vpc, peer, name="pcx")
        rt = self.rt_web = vpc.add_route_table(name="rt-web")
        self.r_default = rt.add_route("0.0.0.0/0", self.igw)
        self.r_black = rt.add_route("10.9.0.0/16", T.BLACKHOLE)
        self.r_peer = rt.add_route("192.168.0.0/16", self.pcx)
        self.r_fw = rt.add_route("172.16.0.0/12", self.fw)
        self.r_mb = rt.add_route("172.32.0.0/16", self.mb)
        self.r_db = rt.add_route("10.0.3.0/24", self.fw)  # more specific than local: whole subnet to an ENI
        self.web.associate(rt)
        prt = peer.main_route_table
        prt.add_route("10.0.0.0/16", self.pcx)
        self.dp = net.compile(filters=False, edge=False)

    def ridx(self, route: T.Route) -> int:
        return next(i for i, r in enumerate(self.net.routes()) if r is route)

    def local_of(self, rt: T.RouteTable) -> int:
        return self.ridx(rt.routes[0])


@pytest.fixture(scope="module")
def topo() -> Topo:
    return Topo()


def run(dp: Dataplane, frames: list[bytes], ports: list[int] | int) -> tuple[Result, FrameBatch]:
    b = FrameBatch.from_frames(frames, port=ports)
    return dp.process(b), b


def one(dp: Dataplane, frame: bytes, port: int) -> tuple[int, int, int, int, bytes]:
    res, b = run(dp, [frame], port)
    return int(res.action[0]), int(res.reason[0]), int(res.egress[0]), int(res.route[0]), b.frame(0)


def ip_frame(src_eni: T.Eni, dst_ip: str, *, dst_mac: str | None = None, src_ip: str | None = None,
             l4: object = None) -> bytes:
    mac = dst_mac if dst_mac is not None else src_eni.subnet.gateway_mac
    pkt = Ether(src=src_eni.mac, dst=mac) / IP(src=src_ip or str(src_eni.ip), dst=dst_ip, ttl=17)
    pkt = pkt / (l4 if l4 is not None else UDP(sport=1234, dport=53) / Raw(b"hello"))
    return bytes(pkt)


def assert_drop(got: tuple[int, int, int, int, bytes], reason: R, frame: bytes, route: int = -1) -> None:
    act, why, eg, rt, out = got
    assert (A(act), R(why), eg, rt) == (A.DROP, reason, -1, route)
    assert out == frame  # drops leave the frame untouched


def assert_deliver(got: tuple[int, int, int, int, bytes], to: T.Eni, src_mac: str, frame: bytes,
                   route: int = -1) -> None:
    act, why, eg, rt, out = got
    assert (A(act), R(why), eg, rt) == (A.DELIVER, R.NONE, to.port, route)
    e = Ether(out)
    assert e.dst == to.mac and e.src == src_mac
    assert out[12:] == frame[12:]  # IP header (TTL included) and payload untouched


# ----------------------------------------------------------------------------- step 0-3

def test_unknown_ports(topo: Topo) -> None:
    f = ip_frame(topo.w1, "10.0.2.10")
    for port in (-1, -(2**31), topo.igw.port, topo.pcx.port, topo.net.max_port + 1, 2**31 - 1):
        assert_drop(one(topo.dp, f, port), R.UNKNOWN_PORT, f)


def test_deleted_eni_port_is_unknown() -> None:
    t = Topo()
    port = t.d1.port
    t.d1.delete()
    dp = t.net.compile(filters=False, edge=False)
    f = ip_frame(t.d1, "10.0.2.10")
    assert_drop(one(dp, f, port), R.UNKNOWN_PORT, f)
    # the old snapshot still knows it
    assert one(t.dp, f, port)[0] == A.DELIVER


def test_short_frames_malformed(topo: Topo) -> None:
    full = ip_frame(topo.w1, "10.0.2.10")
    for n in (0, 1, 13):
        assert_drop(one(topo.dp, full[:n], topo.w1.port), R.MALFORMED, full[:n])


@pytest.mark.parametrize("pkt", [
    Ether() / IPv6(dst="fe80::1") / UDP(),
    Ether() / Dot1Q(vlan=5) / IP(dst="10.0.2.10") / UDP(),
    Ether(type=0x88CC) / Raw(b"\0" * 40),
    Ether(type=0x0000) / Raw(b"x"),
])
def test_non_ipv4(topo: Topo, pkt: Ether) -> None:
    f = bytes(pkt)
    assert_drop(one(topo.dp, f, topo.w1.port), R.NON_IPV4, f)


def test_ethertype_only_is_non_ipv4_or_malformed(topo: Topo) -> None:
    f14 = bytes(Ether(src=topo.w1.mac, dst=topo.web.gateway_mac, type=0x0800))
    assert_drop(one(topo.dp, f14, topo.w1.port), R.MALFORMED, f14)
    f14 = bytes(Ether(src=topo.w1.mac, dst=topo.web.gateway_mac, type=0x86DD))
    assert_drop(one(topo.dp, f14, topo.w1.port), R.NON_IPV4, f14)


# ----------------------------------------------------------------------------- ARP

def arp_req(src: T.Eni, tpa: str, spa: str | None = None, **kw: object) -> bytes:
    return bytes(Ether(src=src.mac, dst="ff:ff:ff:ff:ff:ff") /
                 ARP(op=kw.pop("op", 1), hwsrc=src.mac, psrc=spa if spa is not None else str(src.ip), pdst=tpa,
                     **kw))


def assert_arp_reply(got: tuple[int, int, int, int, bytes], req: bytes, port: int, mac: str) -> None:
    act, why, eg, rt, out = got
    assert (A(act), R(why), eg, rt) == (A.REPLY, R.NONE, port, -1)
    q, r = Ether(req), Ether(out)
    assert r.dst == q.src and r.src == mac and r.type == 0x0806
    assert r[ARP].op == 2 and r[ARP].hwsrc == mac and r[ARP].psrc == q[ARP].pdst
    assert r[ARP].hwdst == q[ARP].hwsrc and r[ARP].pdst == q[ARP].psrc
    assert (r[ARP].hwtype, r[ARP].ptype, r[ARP].hwlen, r[ARP].plen) == (1, 0x0800, 6, 4)
    assert out[42:] == req[42:] and len(out) == len(req)


def test_arp_router(topo: Topo) -> None:
    req = arp_req(topo.w1, "10.0.1.1") + b"\xaa" * 18  # padded to 60 bytes: padding untouched
    assert_arp_reply(one(topo.dp, req, topo.w1.port), req, topo.w1.port, topo.web.gateway_mac)


@pytest.mark.parametrize("target", ["w2", "a1", "d1"])
def test_arp_eni_same_vpc(topo: Topo, target: str) -> None:
    t = getattr(topo, target)
    for ip in t.ips:
        req = arp_req(topo.w1, str(ip))
        assert_arp_reply(one(topo.dp, req, topo.w1.port), req, topo.w1.port, t.mac)


@pytest.mark.parametrize("tpa", ["10.0.1.99", "10.0.1.2", "10.0.1.255", "10.0.1.0", "10.0.2.1", "192.168.1.10",
                                 "8.8.8.8", "10.0.200.5"])
def test_arp_no_entry(topo: Topo, tpa: str) -> None:
    req = arp_req(topo.w1, tpa)
    assert_drop(one(topo.dp, req, topo.w1.port), R.ARP_NO_ENTRY, req)


def test_arp_single_mac() -> None:
    t = Topo()
    dp = t.net.compile(arp_mode="single_mac", filters=False, edge=False)
    assert dp.arp_mode == "single_mac"
    for tpa in ("10.0.1.99", "10.0.1.11", "8.8.8.8", "10.0.1.1"):
        req = arp_req(t.w1, tpa)
        assert_arp_reply(one(dp, req, t.w1.port), req, t.w1.port, t.web.gateway_mac)
    req = arp_req(t.w1, "10.0.1.1", op=2)
    assert_drop(one(dp, req, t.w1.port), R.ARP_IGNORED, req)
    with pytest.raises(TopologyError, match="arp_mode"):
        t.net.compile(arp_mode="proxy")


@pytest.mark.parametrize("kw", [dict(op=2), dict(op=3), dict(op=0), dict(spa="0.0.0.0"), dict(spa="10.0.1.10", tpa="10.0.1.10")])
def test_arp_ignored(topo: Topo, kw: dict[str, object]) -> None:
    tpa = str(kw.pop("tpa", "10.0.1.1"))
    req = arp_req(topo.w1, tpa, **kw)  # type: ignore[arg-type]
    assert_drop(one(topo.dp, req, topo.w1.port), R.ARP_IGNORED, req)


@pytest.mark.parametrize("kw", [dict(hwtype=6), dict(ptype=0x86DD), dict(hwlen=8), dict(plen=6)])
def test_arp_bad_fields_malformed(topo: Topo, kw: dict[str, object]) -> None:
    req = bytes(Ether(src=topo.w1.mac, dst="ff:ff:ff:ff:ff:ff") /
                ARP(op=1, hwsrc=topo.w1.mac, psrc="10.0.1.10", pdst="10.0.1.1", **kw))
    req = req[:42] + b"\0" * max(0, 42 - len(req))
    assert_drop(one(topo.dp, req, topo.w1.port), R.MALFORMED, req)


def test_arp_truncated(topo: Topo) -> None:
    req = arp_req(topo.w1, "10.0.1.1")
    assert len(req) == 42
    assert_drop(one(topo.dp, req[:41], topo.w1.port), R.MALFORMED, req[:41])
    assert one(topo.dp, req, topo.w1.port)[0] == A.REPLY


# ----------------------------------------------------------------------------- IPv4 validity

def test_ipv4_malformed_variants(topo: Topo) -> None:
    good = ip_frame(topo.w1, "10.0.2.10")
    assert one(topo.dp, good, topo.w1.port)[0] == A.DELIVER
    bad: list[bytes] = [good[:33]]
    b = bytearray(good); b[14] = 0x65; bad.append(bytes(b))                            # version 6
    b = bytearray(good); b[14] = 0x44; bad.append(bytes(b))                            # IHL 4
    bad.append(bytes(Ether(src=topo.w1.mac, dst=topo.web.gateway_mac) /
                     IP(src="10.0.1.10", dst="10.0.2.10", ihl=15, options=[]) / Raw(b"x" * 10)))  # IHL past frame
    bad.append(bytes(Ether(src=topo.w1.mac, dst=topo.web.gateway_mac) /
                     IP(src="10.0.1.10", dst="10.0.2.10", len=19) / Raw(b"x" * 10)))   # tl < IHL*4
    bad.append(bytes(Ether(src=topo.w1.mac, dst=topo.web.gateway_mac) /
                     IP(src="10.0.1.10", dst="10.0.2.10", len=200) / Raw(b"x" * 10)))  # tl past frame
    b = bytearray(good); b[24] ^= 0xFF; bad.append(bytes(b))                           # bad checksum
    b = bytearray(good); b[22] = 99; bad.append(bytes(b))                              # TTL changed, checksum stale
    for f in bad:
        assert_drop(one(topo.dp, f, topo.w1.port), R.MALFORMED, f)


def test_ipv4_padding_options_fragments_valid(topo: Topo) -> None:
    padded = ip_frame(topo.w1, "10.0.2.10") + b"\xee" * 20
    assert_deliver(one(topo.dp, padded, topo.w1.port), topo.a1, topo.app.gateway_mac, padded,
                   topo.local_of(topo.rt_web))
    opts = bytes(Ether(src=topo.w1.mac, dst=topo.web.gateway_mac) /
                 IP(src="10.0.1.10", dst="10.0.2.10", options=[b"\x01\x01\x01\x00"]) / UDP() / b"x")
    assert Ether(opts)[IP].ihl == 6
    assert_deliver(one(topo.dp, opts, topo.w1.port), topo.a1, topo.app.gateway_mac, opts,
                   topo.local_of(topo.rt_web))
    frag = bytes(Ether(src=topo.w1.mac, dst=topo.web.gateway_mac) /
                 IP(src="10.0.1.10", dst="10.0.2.10", flags="MF", frag=0) / Raw(b"y" * 8))
    assert_deliver(one(topo.dp, frag, topo.w1.port), topo.a1, topo.app.gateway_mac, frag,
                   topo.local_of(topo.rt_web))


# ----------------------------------------------------------------------------- steps 10-14

@pytest.mark.parametrize("mac", ["ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:05", "33:33:00:00:00:01"])
def test_l2_broadcast(topo: Topo, mac: str) -> None:
    f = ip_frame(topo.w1, "10.0.2.10", dst_mac=mac)
    assert_drop(one(topo.dp, f, topo.w1.port), R.L2_BROADCAST, f)


@pytest.mark.parametrize("dst", ["255.255.255.255", "10.0.1.255", "10.0.2.255", "10.0.3.255"])
def test_broadcast(topo: Topo, dst: str) -> None:
    f = ip_frame(topo.w1, dst)
    assert_drop(one(topo.dp, f, topo.w1.port), R.BROADCAST, f)


def test_peer_broadcast_is_not_broadcast(topo: Topo) -> None:
    f = ip_frame(topo.w1, "192.168.1.255")
    assert_drop(one(topo.dp, f, topo.w1.port), R.NO_SUCH_HOST, f, topo.ridx(topo.r_peer))


@pytest.mark.parametrize("dst", ["224.0.0.5", "239.255.255.250", "230.1.2.3"])
def test_multicast(topo: Topo, dst: str) -> None:
    f = ip_frame(topo.w1, dst)
    assert_drop(one(topo.dp, f, topo.w1.port), R.MULTICAST, f)


def test_src_dst_check(topo: Topo) -> None:
    f = ip_frame(topo.w1, "10.0.2.10", src_ip="10.0.1.11")  # w2's IP from w1
    assert_drop(one(topo.dp, f, topo.w1.port), R.SRC_DST_CHECK, f)
    f = ip_frame(topo.w2, "10.0.2.10", src_ip="10.0.1.12")  # w2's secondary
    assert one(topo.dp, f, topo.w2.port)[0] == A.DELIVER
    f = ip_frame(topo.fw, "10.0.1.10", src_ip="8.8.8.8")     # fw has its check off
    assert_deliver(one(topo.dp, f, topo.fw.port), topo.w1, topo.web.gateway_mac, f,
                   topo.local_of(topo.vpc.main_route_table))


def test_unknown_mac(topo: Topo) -> None:
    for mac in (topo.a1.mac, topo.app.gateway_mac, "02:12:34:56:78:9a", topo.p1.mac):
        f = ip_frame(topo.w1, "10.0.2.10", dst_mac=mac)
        assert_drop(one(topo.dp, f, topo.w1.port), R.UNKNOWN_MAC, f)
    # the MAC of a VM of the subnet is fine, whatever the IP destination
    f = ip_frame(topo.w1, "10.0.2.10", dst_mac=topo.w2.mac)
    assert_deliver(one(topo.dp, f, topo.w1.port), topo.a1, topo.app.gateway_mac, f, topo.local_of(topo.rt_web))


# ----------------------------------------------------------------------------- router

@pytest.mark.parametrize("payload", [b"", b"a", b"abcde", b"x" * 101])
@pytest.mark.parametrize("options", [[], [b"\x01\x01\x01\x00"]])
def test_echo_reply(topo: Topo, payload: bytes, options: list[bytes]) -> None:
    req = bytes(Ether(src=topo.w1.mac, dst=topo.web.gateway_mac) /
                IP(src="10.0.1.10", dst="10.0.1.1", ttl=3, id=777, options=options) /
                ICMP(type=8, id=0x1234, seq=42) / Raw(payload)) + b"\xab" * 7  # Ethernet padding
    act, why, eg, rt, out = one(topo.dp, req, topo.w1.port)
    assert (A(act), R(why), eg, rt) == (A.REPLY, R.NONE, topo.w1.port, -1)
    q, r = Ether(req), Ether(out)
    assert r.dst == topo.w1.mac and r.src == topo.web.gateway_mac
    ip = r[IP]
    assert (ip.src, ip.dst, ip.ttl, ip.id, ip.ihl, ip.len) == ("10.0.1.1", "10.0.1.10", 64, 777, q[IP].ihl, q[IP].len)
    hl = ip.ihl * 4
    assert _csum(out[14:14 + hl]) == 0xFFFF
    icmp = out[14 + hl:14 + ip.len]
    assert _csum(icmp) == 0xFFFF
    assert (r[ICMP].type, r[ICMP].code, r[ICMP].id, r[ICMP].seq) == (0, 0, 0x1234, 42)
    assert icmp[8:] == payload
    assert out[14 + ip.len:] == req[14 + ip.len:]
    assert out[14 + 20:14 + hl] == req[14 + 20:14 + hl]  # options kept


@pytest.mark.parametrize("l4", [
    UDP(dport=53),
    TCP(dport=80),
    ICMP(type=0),
    ICMP(type=8, code=1),
    ICMP(type=13),
])
def test_router_unsupported(topo: Topo, l4: object) -> None:
    f = ip_frame(topo.w1, "10.0.1.1", l4=l4)
    assert_drop(one(topo.dp, f, topo.w1.port), R.ROUTER_UNSUPPORTED, f)


def test_router_unsupported_fragments_and_truncated(topo: Topo) -> None:
    base = Ether(src=topo.w1.mac, dst=topo.web.gateway_mac)
    for ip in (IP(src="10.0.1.10", dst="10.0.1.1", flags="MF"), IP(src="10.0.1.10", dst="10.0.1.1", frag=3)):
        f = bytes(base / ip / ICMP(type=8) / b"data")
        assert_drop(one(topo.dp, f, topo.w1.port), R.ROUTER_UNSUPPORTED, f)
    # ICMP header shorter than 8 bytes inside the total length
    f = bytes(base / IP(src="10.0.1.10", dst="10.0.1.1", proto=1) / Raw(b"\x08\x00\x00\x00"))
    assert_drop(one(topo.dp, f, topo.w1.port), R.ROUTER_UNSUPPORTED, f)
    # ... even when the frame carries more bytes (padding after the total length)
    f = bytes(base / IP(src="10.0.1.10", dst="10.0.1.1", proto=1) / Raw(b"\x08\x00\x00\x00")) + b"\0" * 20
    assert_drop(one(topo.dp, f, topo.w1.port), R.ROUTER_UNSUPPORTED, f)


@pytest.mark.parametrize("dst", ["10.0.2.1", "10.0.3.1"])
def test_router_not_own_subnet(topo: Topo, dst: str) -> None:
    f = ip_frame(topo.w1, dst, l4=ICMP(type=8))
    assert_drop(one(topo.dp, f, topo.w1.port), R.ROUTER_NOT_OWN_SUBNET, f)


@pytest.mark.parametrize("dst", ["169.254.169.254", "169.254.169.253", "169.254.168.0", "169.254.171.255"])
def test_link_local_service(topo: Topo, dst: str) -> None:
    f = ip_frame(topo.w1, dst)
    assert_drop(one(topo.dp, f, topo.w1.port), R.LINK_LOCAL_SERVICE, f)


def test_link_local_outside_service_range_is_routed(topo: Topo) -> None:
    f = ip_frame(topo.w1, "169.254.172.1")
    act, why, eg, rt, out = one(topo.dp, f, topo.w1.port)
    assert (A(act), eg, rt, out) == (A.FORWARD, topo.igw.port, topo.ridx(topo.r_default), f)


# ----------------------------------------------------------------------------- delivery

def test_same_subnet(topo: Topo) -> None:
    for ip in ("10.0.1.11", "10.0.1.12"):
        f = ip_frame(topo.w1, ip)
        assert_deliver(one(topo.dp, f, topo.w1.port), topo.w2, topo.w1.mac, f)
        f = ip_frame(topo.w1, ip, dst_mac=topo.w2.mac)
        assert_deliver(one(topo.dp, f, topo.w1.port), topo.w2, topo.w1.mac, f)
    for ip in ("10.0.1.99", "10.0.1.0", "10.0.1.2", "10.0.1.3"):
        f = ip_frame(topo.w1, ip)
        assert_drop(one(topo.dp, f, topo.w1.port), R.NO_SUCH_HOST, f)


def test_same_subnet_ignores_more_specific_route() -> None:
    # db's traffic inside db never consults a table, even one that routes 10.0.3.0/24 elsewhere
    t = Topo()
    t.db.associate(t.rt_web)
    dp = t.net.compile(filters=False, edge=False)
    f = ip_frame(t.d1, "10.0.3.20")
    assert_deliver(one(dp, f, t.d1.port), t.mb, t.d1.mac, f)


def test_local_route(topo: Topo) -> None:
    lr = topo.local_of(topo.rt_web)
    for ip in ("10.0.2.10", "10.0.2.11"):
        f = ip_frame(topo.w1, ip)
        assert_deliver(one(topo.dp, f, topo.w1.port), topo.a1, topo.app.gateway_mac, f, lr)
    for ip in ("10.0.2.99", "10.0.200.1", "10.0.2.2"):
        f = ip_frame(topo.w1, ip)
        assert_drop(one(topo.dp, f, topo.w1.port), R.NO_SUCH_HOST, f, lr)
    # from app (main table) to web
    f = ip_frame(topo.a1, "10.0.1.11")
    assert_deliver(one(topo.dp, f, topo.a1.port), topo.w2, topo.web.gateway_mac, f,
                   topo.local_of(topo.vpc.main_route_table))


def test_forward_gateway(topo: Topo) -> None:
    f = ip_frame(topo.w1, "8.8.8.8", l4=TCP(dport=443))
    act, why, eg, rt, out = one(topo.dp, f, topo.w1.port)
    assert (A(act), R(why), eg, rt) == (A.FORWARD, R.NONE, topo.igw.port, topo.ridx(topo.r_default))
    assert out == f


def test_blackhole_no_fallback(topo: Topo) -> None:
    f = ip_frame(topo.w1, "10.9.1.1")
    assert_drop(one(topo.dp, f, topo.w1.port), R.BLACKHOLE, f, topo.ridx(topo.r_black))


def test_deleted_target_blackholes() -> None:
    t = Topo()
    t.igw.delete()
    dp = t.net.compile(filters=False, edge=False)
    f = ip_frame(t.w1, "8.8.8.8")
    assert_drop(one(dp, f, t.w1.port), R.BLACKHOLE, f, t.ridx(t.r_default))
    assert dp.routes[t.ridx(t.r_default)].state == "blackhole"
    assert one(t.dp, f, t.w1.port)[0] == A.FORWARD  # old snapshot unchanged


def test_no_route(topo: Topo) -> None:
    f = ip_frame(topo.a1, "8.8.8.8")
    assert_drop(one(topo.dp, f, topo.a1.port), R.NO_ROUTE, f)


def test_eni_target(topo: Topo) -> None:
    f = ip_frame(topo.w1, "172.16.5.5")
    assert_deliver(one(topo.dp, f, topo.w1.port), topo.fw, topo.app.gateway_mac, f, topo.ridx(topo.r_fw))
    # more specific than local: the whole db subnet goes to fw
    f = ip_frame(topo.w1, "10.0.3.10")
    assert_deliver(one(topo.dp, f, topo.w1.port), topo.fw, topo.app.gateway_mac, f, topo.ridx(topo.r_db))
    # a target with its check on drops what is not addressed to it
    f = ip_frame(topo.w1, "172.32.0.1")
    assert_drop(one(topo.dp, f, topo.w1.port), R.SRC_DST_CHECK, f, topo.ridx(topo.r_mb))


def test_eni_target_with_check_own_ip() -> None:
    t = Topo()
    t.rt_web.replace_route("10.0.3.0/24", t.mb)
    dp = t.net.compile(filters=False, edge=False)
    f = ip_frame(t.w1, "10.0.3.20")
    assert_deliver(one(dp, f, t.w1.port), t.mb, t.db.gateway_mac, f, t.ridx(t.r_db))
    f = ip_frame(t.w1, "10.0.3.10")
    assert_drop(one(dp, f, t.w1.port), R.SRC_DST_CHECK, f, t.ridx(t.r_db))


def test_peering(topo: Topo) -> None:
    rp = topo.ridx(topo.r_peer)
    f = ip_frame(topo.w1, "192.168.1.10")
    assert_deliver(one(topo.dp, f, topo.w1.port), topo.p1, topo.psub.gateway_mac, f, rp)
    for ip in ("192.168.1.1", "192.168.1.99", "192.168.1.0", "192.168.77.7"):
        f = ip_frame(topo.w1, ip)
        assert_drop(one(topo.dp, f, topo.w1.port), R.NO_SUCH_HOST, f, rp)
    # and back
    f = ip_frame(topo.p1, "10.0.2.10")
    assert_deliver(one(topo.dp, f, topo.p1.port), topo.a1, topo.app.gateway_mac, f,
                   topo.ridx(topo.peer.main_route_table.routes[1]))


def test_peering_no_transit(topo: Topo) -> None:
    # the peer routes 10.0.0.0/16 to pcx: an address of prod owned by no ENI is NO_SUCH_HOST, never routed on
    f = ip_frame(topo.p1, "10.0.9.9")
    assert_drop(one(topo.dp, f, topo.p1.port), R.NO_SUCH_HOST, f, topo.ridx(topo.peer.main_route_table.routes[1]))


# ----------------------------------------------------------------------------- process() API

_POOLS: dict[int, tuple[list[bytes], list[int]]] = {}


def _pool(topo: Topo) -> tuple[list[bytes], list[int]]:
    """Every (source, kind, destination) frame once, built with scapy (cached per topology)."""
    if id(topo) not in _POOLS:
        srcs = [topo.w1, topo.w2, topo.a1, topo.fw, topo.d1, topo.p1]
        dsts = ["10.0.2.10", "10.0.1.11", "8.8.8.8", "10.9.0.1", "192.168.1.10", "10.0.1.1", "10.0.3.10",
                "172.16.0.1", "224.0.0.1", "10.0.2.99", "255.255.255.255", "172.32.0.9"]
        frames, ports = [], []
        for s in srcs:
            frames.append(ip_frame(s, s.subnet.router_ip.exploded, l4=ICMP(type=8) / b"ping"))
            ports.append(s.port)
            for d in dsts:
                frames += [arp_req(s, d), ip_frame(s, d)]
                ports += [s.port, s.port]
        _POOLS[id(topo)] = (frames, ports)
    return _POOLS[id(topo)]


def _mixed(topo: Topo, n: int, seed: int = 1) -> FrameBatch:
    rng = np.random.default_rng(seed)
    frames, ports = _pool(topo)
    pick = rng.integers(len(frames), size=n)
    bad_port = rng.integers(20, size=n) == 0
    return FrameBatch.from_frames([frames[i] for i in pick],
                                  port=np.where(bad_port, 999, np.array(ports)[pick]))


def test_copy_keeps_input(topo: Topo) -> None:
    b = _mixed(topo, 300)
    before = b.copy()
    res = topo.dp.process(b, copy=True)
    assert b == before and res.frames is not b
    res2 = topo.dp.process(b)
    assert res2.frames is b
    assert b == res.frames
    for name in ("action", "reason", "egress", "route"):
        assert np.array_equal(getattr(res, name), getattr(res2, name))


def test_read_only_input(topo: Topo) -> None:
    b = _mixed(topo, 10)
    data = b.data.copy()
    data.flags.writeable = False
    ro = FrameBatch(data, b.offsets, b.port)
    with pytest.raises(FrameBatchError, match="copy=True"):
        topo.dp.process(ro)
    res = topo.dp.process(ro, copy=True)
    assert len(res) == 10


def test_out_reuse(topo: Topo) -> None:
    b = _mixed(topo, 500, seed=3)
    ref = topo.dp.process(b, copy=True)
    out = Result(1000)
    bufs = [x for x in out._buf]
    got = topo.dp.process(b, copy=True, out=out)
    assert got is out and len(got) == 500 and out.capacity == 1000
    assert all(a is b_ for a, b_ in zip(out._buf, bufs))
    assert np.shares_memory(got.action, bufs[0])
    for name in ("action", "reason", "egress", "route"):
        assert np.array_equal(getattr(ref, name), getattr(got, name))
    big = _mixed(topo, 1500, seed=4)
    got = topo.dp.process(big, copy=True, out=out)
    assert len(got) == 1500 and out.capacity >= 1500
    with pytest.raises(TypeError):
        topo.dp.process(b, out=np.zeros(3))  # type: ignore[arg-type]


def test_empty_batch(topo: Topo) -> None:
    res = topo.dp.process(FrameBatch.empty())
    assert len(res) == 0 and res.action.dtype == np.uint8 and res.route.dtype == np.int32


def test_threads_match_single(topo: Topo) -> None:
    b = _mixed(topo, 20000, seed=5)
    r1 = topo.dp.process(b, copy=True, n_threads=1)
    r2 = topo.dp.process(b, copy=True, n_threads=2)
    r4 = topo.dp.process(b, copy=True, n_threads=4)
    for r in (r2, r4):
        assert r.frames == r1.frames
        for name in ("action", "reason", "egress", "route"):
            assert np.array_equal(getattr(r, name), getattr(r1, name))
    # concurrent calls from Python threads on one snapshot
    outs: list[Result] = []
    lock = threading.Lock()

    def work() -> None:
        r = topo.dp.process(b, copy=True, n_threads=1)
        with lock:
            outs.append(r)
    ths = [threading.Thread(target=work) for _ in range(4)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    for r in outs:
        assert r.frames == r1.frames and np.array_equal(r.action, r1.action) and np.array_equal(r.route, r1.route)


def test_pickle_round_trip(topo: Topo) -> None:
    b = _mixed(topo, 3000, seed=6)
    dp2 = pickle.loads(pickle.dumps(topo.dp))
    assert dp2.routes == topo.dp.routes and dp2.port_names == topo.dp.port_names
    r1 = topo.dp.process(b, copy=True)
    r2 = dp2.process(b, copy=True)
    assert r1.frames == r2.frames
    for name in ("action", "reason", "egress", "route"):
        assert np.array_equal(getattr(r1, name), getattr(r2, name))


def test_immutable(topo: Topo) -> None:
    with pytest.raises(AttributeError):
        topo.dp.arp_mode = "single_mac"  # type: ignore[misc]
    with pytest.raises(ValueError):
        topo.dp.enis["mac"][0] = 5
    with pytest.raises(TypeError):
        Dataplane()


def test_recompile_leaves_old_snapshot() -> None:
    t = Topo()
    b = _mixed(t, 3000, seed=7)
    old = t.dp.process(b, copy=True)
    t.rt_web.replace_route("0.0.0.0/0", T.BLACKHOLE)
    t.rt_web.add_route("8.0.0.0/8", t.fw)
    new_dp = t.net.compile(filters=False, edge=False)
    f = ip_frame(t.w1, "8.8.8.8")
    assert one(new_dp, f, t.w1.port)[0] == A.DELIVER
    again = t.dp.process(b, copy=True)
    assert again.frames == old.frames
    for name in ("action", "reason", "egress", "route"):
        assert np.array_equal(getattr(again, name), getattr(old, name))
    # the incremental LPM build equals a fresh compile of an equal network
    r_inc = new_dp.process(b, copy=True)
    from fastvpc import compiler
    compiler._LPM_CACHE.clear()
    r_full = t.net.compile(filters=False, edge=False).process(b, copy=True)
    assert r_inc.frames == r_full.frames
    for name in ("action", "reason", "egress", "route"):
        assert np.array_equal(getattr(r_inc, name), getattr(r_full, name))


def test_sparse_ports_use_hash() -> None:
    net = T.Network()
    vpc = net.add_vpc("10.0.0.0/16")
    s = vpc.add_subnet("10.0.1.0/24")
    e1 = s.add_eni("10.0.1.10", port=5)
    e2 = s.add_eni("10.0.1.11", port=2**31 - 2)
    dp = net.compile(filters=False, edge=False)
    assert dp.port_eni.size == 0
    f = ip_frame(e1, "10.0.1.11")
    assert_deliver(one(dp, f, e1.port), e2, e1.mac, f)
    f = ip_frame(e2, "10.0.1.10")
    assert_deliver(one(dp, f, e2.port), e1, e2.mac, f)
    assert one(dp, f, 6)[1] == R.UNKNOWN_PORT
    assert one(dp, f, 2**31 - 1)[1] == R.UNKNOWN_PORT


def test_empty_network() -> None:
    dp = T.Network().compile(filters=False, edge=False)
    res, _ = run(dp, [b"\0" * 60, b""], [0, 1])
    assert list(res.reason) == [R.UNKNOWN_PORT, R.UNKNOWN_PORT]
