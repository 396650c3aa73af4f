"""Behaviour tests: one test (or a few) per core row of the VPC behaviour table.

Each test is named after its row (``test_r08_...`` is row #8) and runs against both
engines: ``reference`` (fastvpc.reference.ReferenceForwarder, the readable oracle) and
``kernel`` (``net.compile(arp_mode=...)``), both through ``process(FrameBatch)`` by
``fastvpc.testing.run``.  Frames are built and
dissected with scapy (tests/frames.py), which is also the checksum oracle.

Expected verdicts come from the contract (DESIGN.md section 1 and
docs/forwarding-model.md); route indices are looked up independently in ``net.routes()``.
"""

from __future__ import annotations

from typing import Any

import pytest

import frames as F  # noqa: E402

import fastvpc.topology as topo  # noqa: E402
from fastvpc.errors import TopologyError  # noqa: E402
from fastvpc.examples import seed_vpc  # noqa: E402
from fastvpc.reference import Verdict  # noqa: E402
from fastvpc.testing import ENGINE_NAMES, run  # noqa: E402
from fastvpc.testing import engine as engine_named  # noqa: E402
from fastvpc.verdicts import Action, DropReason  # noqa: E402

A, R = Action, DropReason


# --------------------------------------------------------------------------- engines

Out = Verdict  # one record per frame: action, reason, egress, route, output frame


class Engine:
    """Runs frames through one engine (``fastvpc.testing.engine``: ``reference`` or ``kernel``, both
    ``process()`` a FrameBatch in place) and returns one Verdict per frame."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def run(self, net: topo.Network, items: list[tuple[bytes, int]], arp_mode: str = "target") -> list[Out]:
        # the routing rows, judged as Batfish's ignoreFilters: the filter rows #45-#56 are test_filters_behaviour.py
        return run(engine_named(net, self.kind, arp_mode, filters=False, edge=False), items)

    def one(self, net: topo.Network, frame: bytes, port: int, arp_mode: str = "target") -> Out:
        return self.run(net, [(frame, port)], arp_mode)[0]


@pytest.fixture(params=ENGINE_NAMES)
def engine(request: pytest.FixtureRequest) -> Engine:
    return Engine(request.param)


@pytest.fixture
def net() -> topo.Network:
    return seed_vpc()


def find(net: topo.Network, name: str) -> Any:
    return net.find(name)


def ridx(net: topo.Network, table: str, dest: str) -> int:
    """Index in ``net.routes()`` of the route ``dest`` of table ``table`` (identity)."""
    route = net.find(table).route(dest)
    return next(i for i, r in enumerate(net.routes()) if r is route)


def assert_drop(out: Out, reason: DropReason, frame: bytes, route: int = -1) -> None:
    assert (out.action, out.reason, out.egress, out.route) == (A.DROP, reason, -1, route)
    assert out.frame == frame  # dropped frames are untouched


def assert_forward(out: Out, port: int, route: int, frame: bytes) -> None:
    assert (out.action, out.reason, out.egress, out.route) == (A.FORWARD, R.NONE, port, route)
    assert out.frame == frame  # FORWARD leaves the frame untouched


def assert_delivered(out: Out, frame: bytes, receiver: topo.Eni, src_mac: str, route: int) -> None:
    """DELIVER to ``receiver``: only the two MACs change; TTL, IP header and payload unchanged (#9, #10)."""
    assert (out.action, out.reason, out.egress, out.route) == (A.DELIVER, R.NONE, receiver.port, route)
    assert len(out.frame) == len(frame)
    e = F.ether(out.frame)
    assert e.dst == receiver.mac
    assert e.src == src_mac
    assert out.frame[12:] == frame[12:]
    assert e[F.IP].ttl == F.ether(frame)[F.IP].ttl


def assert_arp_reply(out: Out, request: bytes, requester: topo.Eni, answer_mac: str) -> None:
    """Step 8: reply built in place, bytes 0-41, padding untouched."""
    assert (out.action, out.reason, out.egress, out.route) == (A.REPLY, R.NONE, requester.port, -1)
    assert len(out.frame) == len(request)
    q, r = F.ether(request), F.ether(out.frame)
    assert r.dst == q.src and r.src == answer_mac and r.type == 0x0806
    a = r[F.ARP]
    assert (a.hwtype, a.ptype, a.hwlen, a.plen, a.op) == (1, 0x0800, 6, 4, 2)
    assert a.hwsrc == answer_mac and a.psrc == q[F.ARP].pdst
    assert a.hwdst == q[F.ARP].hwsrc and a.pdst == q[F.ARP].psrc
    assert out.frame[42:] == request[42:]


def assert_echo_reply(out: Out, request: bytes, requester: topo.Eni) -> None:
    """Step 15 / section 4: echo reply from the router, checksums valid (scapy)."""
    subnet = requester.subnet
    assert (out.action, out.reason, out.egress, out.route) == (A.REPLY, R.NONE, requester.port, -1)
    assert len(out.frame) == len(request)
    q, r = F.ether(request), F.ether(out.frame)
    assert r.dst == q.src and r.src == subnet.gateway_mac
    assert r[F.IP].src == str(subnet.router_ip) and r[F.IP].dst == q[F.IP].src
    assert r[F.IP].ttl == 64 and r[F.IP].options == q[F.IP].options
    assert r[F.IP].len == q[F.IP].len and r[F.IP].id == q[F.IP].id and r[F.IP].proto == 1
    assert (r[F.ICMP].type, r[F.ICMP].code) == (0, 0)
    assert (r[F.ICMP].id, r[F.ICMP].seq) == (q[F.ICMP].id, q[F.ICMP].seq)
    ihl = (request[14] & 15) * 4
    tl = int.from_bytes(request[16:18], "big")
    assert out.frame[14 + ihl + 4:14 + tl] == request[14 + ihl + 4:14 + tl]  # id, seq, payload kept
    assert out.frame[14 + tl:] == request[14 + tl:]  # Ethernet padding untouched
    assert F.ip_checksum_ok(out.frame) and F.icmp_checksum_ok(out.frame)


# --------------------------------------------------------------------------- small topologies

def middlebox_net(fw_sdc: bool = False) -> topo.Network:
    """Seed VPC plus a 'sec' subnet holding fw (middlebox) and a NAT gateway."""
    net = seed_vpc()
    vpc = net.find("prod")
    sec = vpc.add_subnet("10.0.9.0/24", name="sec")
    sec.add_eni("10.0.9.50", name="fw", source_dest_check=fw_sdc)
    vpc.add_nat_gateway("nat", subnet=sec)
    return net


def peered_nets() -> topo.Network:
    """Three VPCs in a chain A - B - C, routes on both sides of each peering."""
    net = topo.Network()
    a = net.add_vpc("10.0.0.0/16", name="A")
    b = net.add_vpc("10.1.0.0/16", name="B")
    c = net.add_vpc("10.2.0.0/16", name="C")
    sa = a.add_subnet("10.0.1.0/24", name="a1")
    sb = b.add_subnet("10.1.1.0/24", name="b1")
    sc = c.add_subnet("10.2.1.0/24", name="c1")
    sa.add_eni("10.0.1.10", name="ea")
    sb.add_eni("10.1.1.10", name="eb", secondary_ips=["10.1.1.11"])
    sc.add_eni("10.2.1.10", name="ec")
    ab = net.add_peering(a, b, name="pcx-ab")
    bc = net.add_peering(b, c, name="pcx-bc")
    a.add_internet_gateway(name="igw-a")
    a.main_route_table.add_route("10.1.0.0/16", ab)
    a.main_route_table.add_route("10.2.0.0/16", ab)       # tries to transit B: must not work
    b.main_route_table.add_route("10.0.0.0/16", ab)
    b.main_route_table.add_route("10.2.0.0/16", bc)
    b.main_route_table.add_route("0.0.0.0/0", ab)         # tries to use A's IGW: must not work
    c.main_route_table.add_route("10.1.0.0/16", bc)
    return net


# =========================================================================== port, L2 admission

def test_step1_unknown_port(engine: Engine, net: topo.Network) -> None:
    w1, web = find(net, "web1"), find(net, "web")
    frame = F.udp_frame(w1, "10.0.1.20", find(net, "web2"))
    for port in (find(net, "igw").port, -1, 10_000, net.max_port + 1):
        assert_drop(engine.one(net, frame, port), R.UNKNOWN_PORT, frame)
    assert engine.one(net, frame, w1.port).action == A.DELIVER
    assert web.router_ip  # the seed subnet has a router


def test_l2_runt_and_truncated_headers(engine: Engine, net: topo.Network) -> None:
    w1, web = find(net, "web1"), find(net, "web")
    good = F.udp_frame(w1, "10.0.2.20", web)
    arp = F.arp_request(w1, None, "10.0.1.20")
    for frame in (b"", b"\x02" * 13, good[:14], good[:33], arp[:41]):
        assert_drop(engine.one(net, frame, w1.port), R.MALFORMED, frame)


@pytest.mark.parametrize("ethertype", [0x86DD, 0x8100, 0x88CC, 0x88A8, 0x0000, 0xFFFF])
def test_r01_non_ipv4_ethertypes_dropped(engine: Engine, net: topo.Network, ethertype: int) -> None:
    w1 = find(net, "web1")
    frame = F.udp_frame(w1, "10.0.1.20", find(net, "web2"))
    frame = frame[:12] + ethertype.to_bytes(2, "big") + frame[14:]
    assert_drop(engine.one(net, frame, w1.port), R.NON_IPV4, frame)


def test_r01_vlan_tagged_ipv4_is_non_ipv4(engine: Engine, net: topo.Network) -> None:
    w1, w2 = find(net, "web1"), find(net, "web2")
    frame = bytes(F.Ether(src=w1.mac, dst=w2.mac) / F.Dot1Q(vlan=5) / F.IP(src="10.0.1.10", dst="10.0.1.20"))
    assert_drop(engine.one(net, frame, w1.port), R.NON_IPV4, frame)


def test_r01_ipv6_frame_dropped(engine: Engine, net: topo.Network) -> None:
    from scapy.layers.inet6 import IPv6

    w1, w2 = find(net, "web1"), find(net, "web2")
    frame = bytes(F.Ether(src=w1.mac, dst=w2.mac) / IPv6(src="fe80::1", dst="fe80::2") / F.UDP())
    assert_drop(engine.one(net, frame, w1.port), R.NON_IPV4, frame)


@pytest.mark.parametrize("dst", ["10.0.1.255", "255.255.255.255", "10.0.2.255", "10.0.3.255"])
def test_r02_ipv4_broadcast_dropped(engine: Engine, net: topo.Network, dst: str) -> None:
    w1, web = find(net, "web1"), find(net, "web")
    frame = F.udp_frame(w1, dst, web, dport=137)
    assert_drop(engine.one(net, frame, w1.port), R.BROADCAST, frame)


def test_r02_broadcast_of_small_subnet_and_second_cidr(engine: Engine) -> None:
    net = topo.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v", cidrs=["10.5.0.0/16"])
    s = vpc.add_subnet("10.0.0.0/28", name="tiny")
    vpc.add_subnet("10.5.7.0/24", name="second")
    e = s.add_eni("10.0.0.4", name="e")
    for dst in ("10.0.0.15", "10.5.7.255"):
        frame = F.udp_frame(e, dst, s)
        assert_drop(engine.one(net, frame, e.port), R.BROADCAST, frame)


@pytest.mark.parametrize("dst,proto", [("224.0.0.5", 89), ("224.0.0.22", 2), ("239.1.2.3", 17),
                                       ("224.0.0.251", 17)])
def test_r03_multicast_dropped(engine: Engine, net: topo.Network, dst: str, proto: int) -> None:
    w1, web = find(net, "web1"), find(net, "web")
    frame = F.ipv4_frame(w1, dst, web, b"\x00" * 20, proto=proto)
    assert_drop(engine.one(net, frame, w1.port), R.MULTICAST, frame)


def test_r03_multicast_mac_is_l2_broadcast_first(engine: Engine, net: topo.Network) -> None:
    w1 = find(net, "web1")
    frame = F.ipv4_frame(w1, "224.0.0.5", "01:00:5e:00:00:05", b"\x00" * 20, proto=89)
    assert_drop(engine.one(net, frame, w1.port), R.L2_BROADCAST, frame)


@pytest.mark.parametrize("mac", [F.BROADCAST_MAC, "01:00:5e:01:02:03", "33:33:00:00:00:01", "03:00:00:00:00:00"])
def test_r04_ipv4_to_group_mac_dropped(engine: Engine, net: topo.Network, mac: str) -> None:
    w1 = find(net, "web1")
    frame = F.udp_frame(w1, "10.0.1.20", mac)
    assert_drop(engine.one(net, frame, w1.port), R.L2_BROADCAST, frame)


# =========================================================================== ARP proxy

def test_r05_arp_same_subnet_answers_vm_mac(engine: Engine, net: topo.Network) -> None:
    w1, w2 = find(net, "web1"), find(net, "web2")
    req = F.arp_request(w1, None, "10.0.1.20")
    assert_arp_reply(engine.one(net, req, w1.port), req, w1, w2.mac)


def test_r05_arp_other_subnet_and_secondary_ip(engine: Engine, net: topo.Network) -> None:
    """Decision 1: any ENI address of the same VPC is answered with that ENI's MAC (secondaries too, #44)."""
    w1, a2, d1 = find(net, "web1"), find(net, "app2"), find(net, "db1")
    for target, owner in (("10.0.2.20", a2), ("10.0.3.11", d1), ("10.0.3.10", d1)):
        req = F.arp_request(w1, None, target)
        assert_arp_reply(engine.one(net, req, w1.port), req, w1, owner.mac)


def test_r05_arp_reply_padding_and_unicast_request(engine: Engine, net: topo.Network) -> None:
    """Padding after byte 42 is untouched; the destination MAC of a request is not checked."""
    w1, w2 = find(net, "web1"), find(net, "web2")
    req = F.pad(F.arp_request(w1, None, "10.0.1.20", eth_dst="02:99:99:99:99:99"), 60)
    assert_arp_reply(engine.one(net, req, w1.port), req, w1, w2.mac)


def test_r06_arp_gateway_answers_gateway_mac(engine: Engine, net: topo.Network) -> None:
    for name in ("web1", "app2", "db1"):
        eni = find(net, name)
        req = F.arp_request(eni, None, eni.subnet.router_ip)
        assert_arp_reply(engine.one(net, req, eni.port), req, eni, eni.subnet.gateway_mac)


@pytest.mark.parametrize("target", ["10.0.1.99", "10.0.1.0", "10.0.1.2", "10.0.1.3", "10.0.1.255",
                                    "10.0.2.1", "10.0.0.2", "8.8.8.8", "10.0.77.5", "255.255.255.255"])
def test_r07_arp_no_entry(engine: Engine, net: topo.Network, target: str) -> None:
    w1 = find(net, "web1")
    req = F.arp_request(w1, None, target)
    assert_drop(engine.one(net, req, w1.port), R.ARP_NO_ENTRY, req)


def test_r07_arp_for_peer_vpc_address_no_entry(engine: Engine) -> None:
    net = peered_nets()
    ea = net.find("ea")
    req = F.arp_request(ea, None, "10.1.1.10")
    assert_drop(engine.one(net, req, ea.port), R.ARP_NO_ENTRY, req)


@pytest.mark.parametrize("target", ["10.0.1.99", "10.0.2.20", "8.8.8.8", "10.0.1.1", "10.0.1.20"])
def test_r07_single_mac_mode_answers_everything_with_gateway(engine: Engine, net: topo.Network,
                                                             target: str) -> None:
    w1 = find(net, "web1")
    req = F.arp_request(w1, None, target)
    assert_arp_reply(engine.one(net, req, w1.port, arp_mode="single_mac"), req, w1, find(net, "web").gateway_mac)


def test_arp_replies_gratuitous_probes_ignored(engine: Engine, net: topo.Network) -> None:
    w1, w2 = find(net, "web1"), find(net, "web2")
    frames = [
        F.arp_frame(w1, "10.0.1.10", "10.0.1.20", op=2, eth_dst=w2, tha=w2.mac),   # a reply
        F.arp_frame(w1, "10.0.1.10", "10.0.1.10", op=1),                            # gratuitous request
        F.arp_frame(w1, "10.0.1.10", "10.0.1.10", op=2),                            # gratuitous reply
        F.arp_frame(w1, "0.0.0.0", "10.0.1.10", op=1),                              # probe (RFC 5227)
        F.arp_frame(w1, "10.0.1.10", "10.0.1.20", op=3),                            # RARP op on ARP type
    ]
    for mode in ("target", "single_mac"):
        for frame in frames:
            assert_drop(engine.one(net, frame, w1.port, arp_mode=mode), R.ARP_IGNORED, frame)


def test_arp_malformed(engine: Engine, net: topo.Network) -> None:
    w1 = find(net, "web1")
    req = F.arp_request(w1, None, "10.0.1.20")
    bad = [req[:41],
           req[:14] + b"\x00\x06" + req[16:],      # htype 6
           req[:16] + b"\x86\xdd" + req[18:],      # ptype IPv6
           req[:18] + b"\x08" + req[19:],          # hlen 8
           req[:19] + b"\x10" + req[20:]]          # plen 16
    for frame in bad:
        assert_drop(engine.one(net, frame, w1.port), R.MALFORMED, frame)


# =========================================================================== delivery inside the VPC

def test_r08_intra_subnet_delivered_without_route_lookup(engine: Engine, net: topo.Network) -> None:
    w1, w2, web = find(net, "web1"), find(net, "web2"), find(net, "web")
    for dst_mac in (w2, web):  # to the VM's MAC, or to the router's MAC: both delivered directly
        frame = F.udp_frame(w1, "10.0.1.20", dst_mac)
        assert_delivered(engine.one(net, frame, w1.port), frame, w2, w1.mac, -1)


def test_r08_intra_subnet_ignores_more_specific_subnet_route(engine: Engine) -> None:
    """A whole-subnet route in the subnet's own table does not capture intra-subnet traffic (OPT)."""
    net = middlebox_net()
    net.find("rt-web").add_route("10.0.1.0/24", net.find("fw"))
    w1, w2 = net.find("web1"), net.find("web2")
    frame = F.tcp_frame(w1, "10.0.1.20", w2)
    assert_delivered(engine.one(net, frame, w1.port), frame, w2, w1.mac, -1)


@pytest.mark.parametrize("dst", ["10.0.1.99", "10.0.1.0", "10.0.1.2", "10.0.1.3"])
def test_r08_intra_subnet_no_such_host(engine: Engine, net: topo.Network, dst: str) -> None:
    w1, web = find(net, "web1"), find(net, "web")
    frame = F.udp_frame(w1, dst, web)
    assert_drop(engine.one(net, frame, w1.port), R.NO_SUCH_HOST, frame)


@pytest.mark.parametrize("ttl", [0, 1, 255])
def test_r09_ttl_never_decremented(engine: Engine, net: topo.Network, ttl: int) -> None:
    w1, w2, web, a2 = find(net, "web1"), find(net, "web2"), find(net, "web"), find(net, "app2")
    inter = F.udp_frame(w1, "10.0.2.20", web, ttl=ttl)
    intra = F.udp_frame(w1, "10.0.1.20", w2, ttl=ttl)
    o1, o2 = engine.run(net, [(inter, w1.port), (intra, w1.port)])
    assert_delivered(o1, inter, a2, find(net, "app").gateway_mac, ridx(net, "rt-web", "10.0.0.0/16"))
    assert_delivered(o2, intra, w2, w1.mac, -1)
    for o in (o1, o2):
        assert F.ether(o.frame)[F.IP].ttl == ttl
        assert F.ip_checksum_ok(o.frame) and F.l4_checksum_ok(o.frame)


def test_r10_inter_subnet_rewrite(engine: Engine, net: topo.Network) -> None:
    w1, web, a2, app = find(net, "web1"), find(net, "web"), find(net, "app2"), find(net, "app")
    frame = F.pad(F.tcp_frame(w1, "10.0.2.20", web, dport=443), 64)
    out = engine.one(net, frame, w1.port)
    assert_delivered(out, frame, a2, app.gateway_mac, ridx(net, "rt-web", "10.0.0.0/16"))
    assert F.ether(out.frame)[F.TCP].dport == 443


def test_r10_inter_subnet_via_other_vm_mac_still_routed(engine: Engine, net: topo.Network) -> None:
    """dst MAC of a same-subnet VM but an IP elsewhere: the frame is routed (step 14 passes, step 19)."""
    w1, w2, a2 = find(net, "web1"), find(net, "web2"), find(net, "app2")
    frame = F.udp_frame(w1, "10.0.2.20", w2)
    assert_delivered(engine.one(net, frame, w1.port), frame, a2, find(net, "app").gateway_mac,
                     ridx(net, "rt-web", "10.0.0.0/16"))


@pytest.mark.parametrize("mac", ["02:00:00:00:00:99", "app2", "app", "db"])
def test_r11_wrong_mac_dropped(engine: Engine, net: topo.Network, mac: str) -> None:
    """dst MAC neither web's gateway MAC nor a web ENI's MAC (another subnet's ENI or router is wrong too)."""
    w1 = find(net, "web1")
    dst_mac = F.mac_of(net.find(mac)) if not mac.startswith("02:") else mac
    frame = F.udp_frame(w1, "10.0.2.20", dst_mac)
    assert_drop(engine.one(net, frame, w1.port), R.UNKNOWN_MAC, frame)


def test_r11_checks_after_ip_level_drops(engine: Engine, net: topo.Network) -> None:
    """Step order: broadcast / multicast / src-dst check are decided before the MAC check."""
    w1 = find(net, "web1")
    bad_mac = "02:00:00:00:00:99"
    cases = [(F.udp_frame(w1, "10.0.1.255", bad_mac), R.BROADCAST),
             (F.udp_frame(w1, "224.0.0.9", bad_mac), R.MULTICAST),
             (F.udp_frame(w1, "10.0.2.20", bad_mac, src_ip="10.9.9.9"), R.SRC_DST_CHECK)]
    for frame, reason in cases:
        assert_drop(engine.one(net, frame, w1.port), reason, frame)


# =========================================================================== addressing rows (#12-#16)

def test_r12_subnet_sizes_and_normalisation() -> None:
    net = topo.Network()
    vpc = net.add_vpc("100.68.0.0/16", name="v")
    with pytest.raises(TopologyError):
        vpc.add_subnet("100.68.0.0/29")
    with pytest.raises(TopologyError):
        vpc.add_subnet("100.68.0.0/15")
    s = vpc.add_subnet("100.68.0.18/18", name="s")
    assert str(s.cidr) == "100.68.0.0/18"
    with pytest.raises(TopologyError):
        vpc.add_subnet("100.68.32.0/24")


def test_r12_r13_second_cidr_and_28_subnet_forwarding(engine: Engine) -> None:
    """A /28 subnet in the primary CIDR talks to a subnet in a secondary CIDR via its own local route (#13)."""
    net = topo.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v")
    vpc.add_cidr("10.5.0.0/16")
    tiny = vpc.add_subnet("10.0.0.16/28", name="tiny")
    far = vpc.add_subnet("10.5.7.0/24", name="far")
    e = tiny.add_eni("10.0.0.20", name="e")
    r = far.add_eni("10.5.7.9", name="r")
    rt = vpc.main_route_table
    assert [str(x.destination) for x in rt.routes if x.is_local] == ["10.0.0.0/16", "10.5.0.0/16"]
    frame = F.icmp_echo(e, "10.5.7.9", tiny)
    assert_delivered(engine.one(net, frame, e.port), frame, r, far.gateway_mac,
                     ridx(net, rt.name, "10.5.0.0/16"))
    back = F.icmp_echo(r, "10.0.0.20", far, icmp_type=0)
    assert_delivered(engine.one(net, back, r.port), back, e, tiny.gateway_mac, ridx(net, rt.name, "10.0.0.0/16"))


@pytest.mark.parametrize("dst", ["10.0.2.0", "10.0.2.2", "10.0.2.3", "10.0.0.2", "10.0.200.7"])
def test_r14_reserved_and_unassigned_elsewhere_in_vpc_no_such_host(engine: Engine, net: topo.Network,
                                                                    dst: str) -> None:
    w1, web = find(net, "web1"), find(net, "web")
    frame = F.udp_frame(w1, dst, web)
    assert_drop(engine.one(net, frame, w1.port), R.NO_SUCH_HOST, frame, ridx(net, "rt-web", "10.0.0.0/16"))


def test_r14_reserved_addresses_cannot_be_assigned(net: topo.Network) -> None:
    web = find(net, "web")
    for ip in ("10.0.1.0", "10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.255"):
        with pytest.raises(TopologyError):
            web.add_eni(ip)
    assert web.usable_count == 251


def test_r15_star_uses_source_subnet_table_only(engine: Engine) -> None:
    """web's table sends db's subnet to the firewall; db's own table is irrelevant for web -> db."""
    net = middlebox_net(fw_sdc=False)
    net.find("rt-web").add_route("10.0.3.0/24", net.find("fw"))
    w1, web, fw, d2 = net.find("web1"), net.find("web"), net.find("fw"), net.find("db2")
    frame = F.udp_frame(w1, "10.0.3.20", web)
    assert_delivered(engine.one(net, frame, w1.port), frame, fw, net.find("sec").gateway_mac,
                     ridx(net, "rt-web", "10.0.3.0/24"))
    # app (main table) reaches db directly
    a1 = net.find("app1")
    frame2 = F.udp_frame(a1, "10.0.3.20", net.find("app"))
    assert_delivered(engine.one(net, frame2, a1.port), frame2, d2, net.find("db").gateway_mac,
                     ridx(net, "rt-main", "10.0.0.0/16"))


@pytest.mark.parametrize("dst", ["169.254.169.254", "169.254.169.253", "169.254.169.123", "169.254.168.0",
                                 "169.254.171.255"])
def test_r16_link_local_service_never_routed(engine: Engine, dst: str) -> None:
    net = middlebox_net(fw_sdc=False)
    with pytest.raises(TopologyError):
        net.find("rt-web").add_route("169.254.169.0/24", net.find("fw"))
    net.find("rt-web").add_route("169.254.0.0/16", net.find("fw"))  # allowed, but does not capture them
    w1, web = net.find("web1"), net.find("web")
    frame = F.udp_frame(w1, dst, web)
    assert_drop(engine.one(net, frame, w1.port), R.LINK_LOCAL_SERVICE, frame)
    other = F.udp_frame(w1, "169.254.1.1", web)  # elsewhere in 169.254/16 the route applies
    assert_delivered(engine.one(net, other, w1.port), other, net.find("fw"), net.find("sec").gateway_mac,
                     ridx(net, "rt-web", "169.254.0.0/16"))


# =========================================================================== route tables (#18-#29)

def test_r18_explicit_association_else_main(engine: Engine, net: topo.Network) -> None:
    vpc = find(net, "prod")
    new = vpc.add_subnet("10.0.4.0/24", name="new")
    n1 = new.add_eni("10.0.4.10", name="n1")
    assert new.route_table is vpc.main_route_table
    f_new = F.udp_frame(n1, "8.8.8.8", new)
    w1 = find(net, "web1")
    f_web = F.udp_frame(w1, "8.8.8.8", find(net, "web"))
    o_new, o_web = engine.run(net, [(f_new, n1.port), (f_web, w1.port)])
    assert_drop(o_new, R.NO_ROUTE, f_new)  # main table: local only
    assert_forward(o_web, find(net, "igw").port, ridx(net, "rt-web", "0.0.0.0/0"), f_web)
    new.associate(find(net, "rt-db"))   # shared table: now like db
    o = engine.one(net, f_new, n1.port)
    assert_forward(o, find(net, "vgw").port, ridx(net, "rt-db", "0.0.0.0/0"), f_new)


def test_r19_main_table_replacement(engine: Engine, net: topo.Network) -> None:
    vpc = find(net, "prod")
    a1, w1 = find(net, "app1"), find(net, "web1")
    f_app = F.udp_frame(a1, "8.8.8.8", find(net, "app"))
    f_web = F.udp_frame(w1, "8.8.8.8", find(net, "web"))
    assert_drop(engine.one(net, f_app, a1.port), R.NO_ROUTE, f_app)
    vpc.set_main_route_table(find(net, "rt-db"))       # app (implicit) follows; web (explicit) stays
    o_app, o_web = engine.run(net, [(f_app, a1.port), (f_web, w1.port)])
    assert_forward(o_app, find(net, "vgw").port, ridx(net, "rt-db", "0.0.0.0/0"), f_app)
    assert_forward(o_web, find(net, "igw").port, ridx(net, "rt-web", "0.0.0.0/0"), f_web)


def test_r20_lookup_uses_source_subnet_table(engine: Engine, net: topo.Network) -> None:
    a1, w1 = find(net, "app1"), find(net, "web1")
    f_app = F.tcp_frame(a1, "8.8.8.8", find(net, "app"), dport=443)
    f_web = F.tcp_frame(w1, "8.8.8.8", find(net, "web"), dport=443)
    o_app, o_web = engine.run(net, [(f_app, a1.port), (f_web, w1.port)])
    assert_drop(o_app, R.NO_ROUTE, f_app)
    assert_forward(o_web, find(net, "igw").port, ridx(net, "rt-web", "0.0.0.0/0"), f_web)


def test_r21_local_route_always_present(engine: Engine, net: topo.Network) -> None:
    a1, d2 = find(net, "app1"), find(net, "db2")
    frame = F.udp_frame(a1, "10.0.3.20", find(net, "app"))
    assert_delivered(engine.one(net, frame, a1.port), frame, d2, find(net, "db").gateway_mac,
                     ridx(net, "rt-main", "10.0.0.0/16"))
    with pytest.raises(TopologyError):
        find(net, "rt-main").remove_route("10.0.0.0/16")


def test_r21_local_route_replaced_by_eni_and_restored(engine: Engine) -> None:
    """DESIGN: an ENI target is DELIVERed to that ENI (the behaviour table's FORWARD(eni-fw))."""
    net = middlebox_net(fw_sdc=False)
    rt = net.find("rt-web")
    rt.replace_route("10.0.0.0/16", net.find("fw"))
    w1, web, fw = net.find("web1"), net.find("web"), net.find("fw")
    frame = F.udp_frame(w1, "10.0.2.20", web)
    local_idx = ridx(net, "rt-web", "10.0.0.0/16")
    assert_delivered(engine.one(net, frame, w1.port), frame, fw, net.find("sec").gateway_mac, local_idx)
    intra = F.udp_frame(w1, "10.0.1.20", net.find("web2"))  # own subnet: still direct (step 18)
    assert_delivered(engine.one(net, intra, w1.port), intra, net.find("web2"), w1.mac, -1)
    rt.replace_route("10.0.0.0/16", "local")
    assert_delivered(engine.one(net, frame, w1.port), frame, net.find("app2"), net.find("app").gateway_mac,
                     local_idx)


def test_r22_longest_prefix_match(engine: Engine, net: topo.Network) -> None:
    vpc, rt = find(net, "prod"), find(net, "rt-web")
    nat = vpc.add_nat_gateway("nat", subnet=find(net, "app"))
    ep = vpc.add_endpoint("vpce-s3", endpoint_type="gateway")
    rt.add_route("172.31.0.0/16", find(net, "vgw"))
    rt.add_route("172.31.5.0/24", nat)
    rt.add_route("172.31.5.7/32", ep)
    w1, web = find(net, "web1"), find(net, "web")
    cases = [("172.31.9.9", find(net, "vgw"), "172.31.0.0/16"), ("172.31.5.5", nat, "172.31.5.0/24"),
             ("172.31.5.7", ep, "172.31.5.7/32"), ("172.31.5.8", nat, "172.31.5.0/24"),
             ("8.8.8.8", find(net, "igw"), "0.0.0.0/0"), ("172.32.0.1", find(net, "igw"), "0.0.0.0/0")]
    items = [(F.udp_frame(w1, d, web), w1.port) for d, _, _ in cases]
    for (frame, _), out, (_, tgt, dest) in zip(items, engine.run(net, items), cases):
        assert_forward(out, tgt.port, ridx(net, "rt-web", dest), frame)


def test_r22_transit_gateway_target(engine: Engine, net: topo.Network) -> None:
    tgw = find(net, "prod").add_transit_gateway("tgw")
    find(net, "rt-main").add_route("192.168.0.0/16", tgw)
    a1 = find(net, "app1")
    frame = F.udp_frame(a1, "192.168.1.5", find(net, "app"))
    assert_forward(engine.one(net, frame, a1.port), tgw.port, ridx(net, "rt-main", "192.168.0.0/16"), frame)


def test_r23_more_specific_than_local_to_eni(engine: Engine) -> None:
    net = middlebox_net(fw_sdc=False)
    rt = net.find("rt-web")
    rt.add_route("10.0.2.0/24", net.find("fw"))
    w1, web, fw = net.find("web1"), net.find("web"), net.find("fw")
    frame = F.udp_frame(w1, "10.0.2.20", web)
    assert_delivered(engine.one(net, frame, w1.port), frame, fw, net.find("sec").gateway_mac,
                     ridx(net, "rt-web", "10.0.2.0/24"))
    other = F.udp_frame(w1, "10.0.3.20", web)  # other subnets still via local
    assert_delivered(engine.one(net, other, w1.port), other, net.find("db2"), net.find("db").gateway_mac,
                     ridx(net, "rt-web", "10.0.0.0/16"))
    with pytest.raises(TopologyError):
        rt.add_route("10.0.3.128/25", net.find("fw"))
    with pytest.raises(TopologyError):
        rt.add_route("10.0.3.0/24", net.find("igw"))


def test_r23_more_specific_than_local_to_nat_gateway(engine: Engine) -> None:
    net = middlebox_net()
    net.find("rt-web").add_route("10.0.3.0/24", net.find("nat"))
    w1 = net.find("web1")
    frame = F.udp_frame(w1, "10.0.3.20", net.find("web"))
    assert_forward(engine.one(net, frame, w1.port), net.find("nat").port, ridx(net, "rt-web", "10.0.3.0/24"), frame)


def test_r23_more_specific_to_eni_with_check_on_drops(engine: Engine) -> None:
    net = middlebox_net(fw_sdc=True)
    net.find("rt-web").add_route("10.0.2.0/24", net.find("fw"))
    w1 = net.find("web1")
    frame = F.udp_frame(w1, "10.0.2.20", net.find("web"))
    assert_drop(engine.one(net, frame, w1.port), R.SRC_DST_CHECK, frame, ridx(net, "rt-web", "10.0.2.0/24"))


def test_r27_no_route(engine: Engine, net: topo.Network) -> None:
    a1 = find(net, "app1")
    for dst in ("1.1.1.1", "10.1.0.1", "192.168.50.5"):
        frame = F.udp_frame(a1, dst, find(net, "app"))
        out = engine.one(net, frame, a1.port)
        assert_drop(out, R.NO_ROUTE, frame)  # route -1; no ICMP generated (#59): frame untouched


def test_r28_blackhole_from_deleted_target_no_fallback(engine: Engine, net: topo.Network) -> None:
    vpc, rt = find(net, "prod"), find(net, "rt-web")
    nat = vpc.add_nat_gateway("nat", subnet=find(net, "app"))
    rt.add_route("8.0.0.0/8", nat)
    nat.delete()
    assert rt.route("8.0.0.0/8").state == "blackhole"
    w1, web = find(net, "web1"), find(net, "web")
    f_bh = F.udp_frame(w1, "8.8.8.8", web)
    f_ok = F.udp_frame(w1, "9.9.9.9", web)
    o_bh, o_ok = engine.run(net, [(f_bh, w1.port), (f_ok, w1.port)])
    assert_drop(o_bh, R.BLACKHOLE, f_bh, ridx(net, "rt-web", "8.0.0.0/8"))  # not the igw's 0/0
    assert_forward(o_ok, find(net, "igw").port, ridx(net, "rt-web", "0.0.0.0/0"), f_ok)


def test_r28_blackhole_default_route(engine: Engine, net: topo.Network) -> None:
    """Test idea of #28: 0/0 -> deleted NAT, nothing else: DROP(blackhole); explicit BLACKHOLE too."""
    vpc = find(net, "prod")
    nat = vpc.add_nat_gateway("nat")
    find(net, "rt-main").add_route("0.0.0.0/0", nat)
    find(net, "rt-db").add_route("192.168.0.0/16", topo.BLACKHOLE)
    nat.delete()
    a1, d1 = find(net, "app1"), find(net, "db1")
    f1 = F.udp_frame(a1, "8.8.8.8", find(net, "app"))
    f2 = F.udp_frame(d1, "192.168.50.5", find(net, "db"))
    o1, o2 = engine.run(net, [(f1, a1.port), (f2, d1.port)])
    assert_drop(o1, R.BLACKHOLE, f1, ridx(net, "rt-main", "0.0.0.0/0"))
    assert_drop(o2, R.BLACKHOLE, f2, ridx(net, "rt-db", "192.168.0.0/16"))


def test_r28_deleted_eni_target_blackholes(engine: Engine) -> None:
    net = middlebox_net(fw_sdc=False)
    net.find("rt-main").add_route("0.0.0.0/0", net.find("fw"))
    fw = net.find("fw")
    fw_port = fw.port
    fw.delete()
    a1 = net.find("app1")
    frame = F.udp_frame(a1, "8.8.8.8", net.find("app"))
    assert_drop(engine.one(net, frame, a1.port), R.BLACKHOLE, frame, ridx(net, "rt-main", "0.0.0.0/0"))
    # the deleted ENI's port is no ENI any more (step 1)
    f2 = F.udp_frame(a1, "10.0.1.10", net.find("app"), src_ip="10.0.9.50", src_mac="02:00:0a:00:09:32")
    assert_drop(engine.one(net, f2, fw_port), R.UNKNOWN_PORT, f2)


def test_r29_per_subnet_vrfs(engine: Engine, net: topo.Network) -> None:
    w1, a1, d1 = find(net, "web1"), find(net, "app1"), find(net, "db1")
    web, app, db = find(net, "web"), find(net, "app"), find(net, "db")
    items = [(F.udp_frame(w1, "8.8.8.8", web), w1.port),
             (F.udp_frame(d1, "192.168.50.5", db), d1.port),
             (F.udp_frame(a1, "8.8.8.8", app), a1.port),
             (F.udp_frame(w1, "10.0.2.10", web), w1.port),
             (F.udp_frame(a1, "10.0.3.10", app), a1.port),
             (F.udp_frame(d1, "10.0.1.10", db), d1.port)]
    o = engine.run(net, items)
    assert_forward(o[0], find(net, "igw").port, ridx(net, "rt-web", "0.0.0.0/0"), items[0][0])
    assert_forward(o[1], find(net, "vgw").port, ridx(net, "rt-db", "0.0.0.0/0"), items[1][0])
    assert_drop(o[2], R.NO_ROUTE, items[2][0])
    assert_delivered(o[3], items[3][0], a1, app.gateway_mac, ridx(net, "rt-web", "10.0.0.0/16"))
    assert_delivered(o[4], items[4][0], d1, db.gateway_mac, ridx(net, "rt-main", "10.0.0.0/16"))
    assert_delivered(o[5], items[5][0], w1, web.gateway_mac, ridx(net, "rt-db", "10.0.0.0/16"))


# =========================================================================== targets: peering, ENI

def test_r36_peering_delivers_into_peer(engine: Engine) -> None:
    net = peered_nets()
    ea, eb = net.find("ea"), net.find("eb")
    a1, b1 = net.find("a1"), net.find("b1")
    for dst in ("10.1.1.10", "10.1.1.11"):
        frame = F.udp_frame(ea, dst, a1)
        assert_delivered(engine.one(net, frame, ea.port), frame, eb, b1.gateway_mac,
                         ridx(net, net.find("A").main_route_table.name, "10.1.0.0/16"))
    back = F.udp_frame(eb, "10.0.1.10", b1)
    assert_delivered(engine.one(net, back, eb.port), back, ea, a1.gateway_mac,
                     ridx(net, net.find("B").main_route_table.name, "10.0.0.0/16"))


@pytest.mark.parametrize("dst", ["10.1.1.1", "10.1.1.255", "10.1.1.0", "10.1.1.2", "10.1.1.99", "10.1.200.1"])
def test_r36_peer_router_reserved_broadcast_no_such_host(engine: Engine, dst: str) -> None:
    net = peered_nets()
    ea = net.find("ea")
    frame = F.icmp_echo(ea, dst, net.find("a1"))
    assert_drop(engine.one(net, frame, ea.port), R.NO_SUCH_HOST, frame,
                ridx(net, net.find("A").main_route_table.name, "10.1.0.0/16"))


def test_r36_no_transit_and_no_edge_to_edge(engine: Engine) -> None:
    net = peered_nets()
    ea, eb = net.find("ea"), net.find("eb")
    to_c = F.udp_frame(ea, "10.2.1.10", net.find("a1"))            # A -> C through B
    via_a_igw = F.udp_frame(eb, "8.8.8.8", net.find("b1"))         # B -> internet through A
    o1, o2 = engine.run(net, [(to_c, ea.port), (via_a_igw, eb.port)])
    assert_drop(o1, R.NO_SUCH_HOST, to_c, ridx(net, net.find("A").main_route_table.name, "10.2.0.0/16"))
    assert_drop(o2, R.NO_SUCH_HOST, via_a_igw, ridx(net, net.find("B").main_route_table.name, "0.0.0.0/0"))


def test_r36_deleted_peering_blackholes(engine: Engine) -> None:
    net = peered_nets()
    net.find("pcx-ab").delete()
    ea = net.find("ea")
    frame = F.udp_frame(ea, "10.1.1.10", net.find("a1"))
    assert_drop(engine.one(net, frame, ea.port), R.BLACKHOLE, frame,
                ridx(net, net.find("A").main_route_table.name, "10.1.0.0/16"))


def test_r37_eni_target_nat_instance(engine: Engine) -> None:
    net = middlebox_net(fw_sdc=False)
    net.find("rt-main").add_route("0.0.0.0/0", net.find("fw"))
    a1, fw, sec = net.find("app1"), net.find("fw"), net.find("sec")
    frame = F.tcp_frame(a1, "8.8.8.8", net.find("app"), dport=80)
    assert_delivered(engine.one(net, frame, a1.port), frame, fw, sec.gateway_mac, ridx(net, "rt-main", "0.0.0.0/0"))
    # the appliance sends on with a foreign source (its check is off): routed by sec's table (main)
    onward = F.tcp_frame(fw, "10.0.2.10", sec, src_ip="8.8.8.8", sport=80, dport=40000, tcp_flags="SA")
    assert_delivered(engine.one(net, onward, fw.port), onward, a1, net.find("app").gateway_mac,
                     ridx(net, "rt-main", "10.0.0.0/16"))


def test_r37_eni_target_with_check_on(engine: Engine) -> None:
    net = middlebox_net(fw_sdc=True)
    net.find("rt-main").add_route("0.0.0.0/0", net.find("fw"))
    a1 = net.find("app1")
    frame = F.tcp_frame(a1, "8.8.8.8", net.find("app"))
    assert_drop(engine.one(net, frame, a1.port), R.SRC_DST_CHECK, frame, ridx(net, "rt-main", "0.0.0.0/0"))


def test_r37_eni_target_same_subnet_as_sender(engine: Engine) -> None:
    """Appliance in the sender's own subnet: src MAC is the sender's (same subnet rewrite)."""
    net = seed_vpc()
    app = net.find("app")
    fw = app.add_eni("10.0.2.50", name="fw", source_dest_check=False)
    net.find("rt-main").add_route("0.0.0.0/0", fw)
    a1 = net.find("app1")
    frame = F.udp_frame(a1, "1.2.3.4", app)
    assert_delivered(engine.one(net, frame, a1.port), frame, fw, a1.mac, ridx(net, "rt-main", "0.0.0.0/0"))


# =========================================================================== per-ENI checks

def test_r43_source_dest_check(engine: Engine, net: topo.Network) -> None:
    w1, web = find(net, "web1"), find(net, "web")
    spoof = F.udp_frame(w1, "10.0.2.20", web, src_ip="10.9.9.9")
    assert_drop(engine.one(net, spoof, w1.port), R.SRC_DST_CHECK, spoof)
    other_vm = F.udp_frame(w1, "10.0.2.20", web, src_ip="10.0.1.20")  # a neighbour's IP is not own
    assert_drop(engine.one(net, other_vm, w1.port), R.SRC_DST_CHECK, other_vm)


def test_r43_source_dest_check_off_forwards(engine: Engine) -> None:
    net = seed_vpc()
    fw = net.find("app").add_eni("10.0.2.50", name="fw", source_dest_check=False)
    frame = F.udp_frame(fw, "10.0.1.10", net.find("app"), src_ip="10.9.9.9")
    assert_delivered(engine.one(net, frame, fw.port), frame, net.find("web1"), net.find("web").gateway_mac,
                     ridx(net, "rt-main", "10.0.0.0/16"))


def test_r44_secondary_ip_source_and_destination(engine: Engine, net: topo.Network) -> None:
    d1, d2, w1 = find(net, "db1"), find(net, "db2"), find(net, "web1")
    db, web = find(net, "db"), find(net, "web")
    f_in = F.udp_frame(w1, "10.0.3.11", web)
    f_intra = F.udp_frame(d2, "10.0.3.11", db)
    f_src = F.udp_frame(d1, "10.0.1.10", db, src_ip="10.0.3.11")
    o = engine.run(net, [(f_in, w1.port), (f_intra, d2.port), (f_src, d1.port)])
    assert_delivered(o[0], f_in, d1, db.gateway_mac, ridx(net, "rt-web", "10.0.0.0/16"))
    assert_delivered(o[1], f_intra, d1, d2.mac, -1)
    assert_delivered(o[2], f_src, w1, web.gateway_mac, ridx(net, "rt-db", "10.0.0.0/16"))


# =========================================================================== the router as a host

@pytest.mark.parametrize("payload", [b"", b"a", b"abc", b"abcd", bytes(range(256)) * 5 + b"x"])
def test_r57_ping_own_gateway(engine: Engine, net: topo.Network, payload: bytes) -> None:
    w1, web = find(net, "web1"), find(net, "web")
    req = F.icmp_echo(w1, web, web, ident=0xBEEF, seq=42, payload=payload, ttl=3)
    assert_echo_reply(engine.one(net, req, w1.port), req, w1)


def test_r57_ping_gateway_with_padding_and_ip_options(engine: Engine, net: topo.Network) -> None:
    a1, app = find(net, "app1"), find(net, "app")
    req = F.pad(F.icmp_echo(a1, app, app, payload=b"xyz"), 60)       # padding after IP total length
    assert_echo_reply(engine.one(net, req, a1.port), req, a1)
    opt = F.icmp_echo(a1, app, app, payload=b"12345", options=[F.IPOption_NOP()] * 4)   # IHL 6
    assert (opt[14] & 15) == 6
    assert_echo_reply(engine.one(net, opt, a1.port), opt, a1)


def test_r57_ping_gateway_from_secondary_ip_and_bad_icmp_checksum(engine: Engine, net: topo.Network) -> None:
    d1, db = find(net, "db1"), find(net, "db")
    req = F.icmp_echo(d1, db, db, src_ip="10.0.3.11", payload=b"odd")
    out = engine.one(net, req, d1.port)
    assert_echo_reply(out, req, d1)
    assert F.ether(out.frame)[F.IP].dst == "10.0.3.11"
    broken = bytearray(req)   # the request's ICMP checksum is not checked; the reply's is recomputed
    broken[36] ^= 0xFF
    assert_echo_reply(engine.one(net, bytes(broken), d1.port), bytes(broken), d1)


def test_r57_ping_gateway_to_vm_mac_is_still_router(engine: Engine, net: topo.Network) -> None:
    w1, w2, web = find(net, "web1"), find(net, "web2"), find(net, "web")
    req = F.icmp_echo(w1, web, w2)
    assert_echo_reply(engine.one(net, req, w1.port), req, w1)


@pytest.mark.parametrize("proto", ["icmp", "tcp", "udp"])
def test_r58_other_subnets_router_unreachable(engine: Engine, net: topo.Network, proto: str) -> None:
    w1, web = find(net, "web1"), find(net, "web")
    frame = {"icmp": F.icmp_echo, "tcp": F.tcp_frame, "udp": F.udp_frame}[proto](w1, "10.0.2.1", web)
    assert_drop(engine.one(net, frame, w1.port), R.ROUTER_NOT_OWN_SUBNET, frame)


def test_r59_router_answers_nothing_else(engine: Engine, net: topo.Network) -> None:
    w1, web = find(net, "web1"), find(net, "web")
    frames = [
        F.tcp_frame(w1, web, web, dport=22),
        F.udp_frame(w1, web, web, dport=53),
        F.icmp_echo(w1, web, web, icmp_type=0),                    # echo reply
        F.icmp_echo(w1, web, web, icmp_type=8, code=1),            # echo with non-zero code
        F.icmp_echo(w1, web, web, icmp_type=13),                   # timestamp
        F.icmp_echo(w1, web, web, flags="MF"),                     # first fragment
        F.icmp_echo(w1, web, web, frag=10),                        # later fragment
        F.ipv4_frame(w1, web, web, b"\x08\x00\x00\x00", proto=1),  # ICMP header shorter than 8
        F.ipv4_frame(w1, web, web, b"\x00" * 8, proto=47),         # GRE
    ]
    for frame in frames:
        assert_drop(engine.one(net, frame, w1.port), R.ROUTER_UNSUPPORTED, frame)


def test_r59_no_icmp_errors_for_drops(engine: Engine, net: topo.Network) -> None:
    """NO_ROUTE / NO_SUCH_HOST / TTL 0: dropped or delivered, never answered."""
    a1, app = find(net, "app1"), find(net, "app")
    items = [(F.udp_frame(a1, "8.8.8.8", app, ttl=1), a1.port),
             (F.udp_frame(a1, "10.0.2.99", app), a1.port),
             (F.udp_frame(a1, "10.0.1.10", app, ttl=0), a1.port)]
    outs = engine.run(net, items)
    assert [o.action for o in outs] == [A.DROP, A.DROP, A.DELIVER]
    assert all(o.action != A.REPLY for o in outs)


# =========================================================================== IPv4 well-formedness (step 9)

def _set(frame: bytes, at: int, value: bytes) -> bytes:
    return frame[:at] + value + frame[at + len(value):]


def test_ipv4_malformed(engine: Engine, net: topo.Network) -> None:
    w1, web = find(net, "web1"), find(net, "web")
    good = F.udp_frame(w1, "10.0.2.20", web)
    bad = [
        _set(good, 14, b"\x65"),                                  # version 6 in an IPv4 frame
        _set(good, 14, b"\x44"),                                  # IHL 4
        _set(good, 14, b"\x4f"),                                  # IHL 15: header past the frame
        _set(good, 16, (len(good) - 14 + 1).to_bytes(2, "big")),  # total length past the frame
        _set(good, 16, b"\x00\x13"),                              # total length < header
        _set(good, 24, bytes([good[24] ^ 0x01, good[25]])),       # bad header checksum
        good[:33],
    ]
    for frame in bad:
        assert_drop(engine.one(net, frame, w1.port), R.MALFORMED, frame)


def test_ipv4_padding_and_truncated_payload_by_length(engine: Engine, net: topo.Network) -> None:
    """Bytes after 14 + total length are padding: delivered untouched."""
    w1, web, a2 = find(net, "web1"), find(net, "web"), find(net, "app2")
    frame = F.pad(F.udp_frame(w1, "10.0.2.20", web, payload=b""), 80, fill=b"\x77")
    assert_delivered(engine.one(net, frame, w1.port), frame, a2, find(net, "app").gateway_mac,
                     ridx(net, "rt-web", "10.0.0.0/16"))
    assert engine.one(net, frame, w1.port).frame[-10:] == b"\x77" * 10


# =========================================================================== odd corners of the spec

def test_r13_r36_peering_into_peer_secondary_cidr(engine: Engine) -> None:
    net = peered_nets()
    b = net.find("B")
    b.add_cidr("10.50.0.0/16")
    far = b.add_subnet("10.50.3.0/24", name="b-far")
    eb2 = far.add_eni("10.50.3.9", name="eb2")
    net.find("A").main_route_table.add_route("10.50.0.0/16", net.find("pcx-ab"))
    ea = net.find("ea")
    frame = F.tcp_frame(ea, "10.50.3.9", net.find("a1"))
    assert_delivered(engine.one(net, frame, ea.port), frame, eb2, far.gateway_mac,
                     ridx(net, net.find("A").main_route_table.name, "10.50.0.0/16"))


def test_sparse_user_ports(engine: Engine) -> None:
    """Ports far apart (user-chosen, in the millions) are ENIs and targets like any other (step 1)."""
    net = topo.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v")
    s1 = vpc.add_subnet("10.0.1.0/24", name="s1")
    s2 = vpc.add_subnet("10.0.2.0/24", name="s2")
    e1 = s1.add_eni("10.0.1.10", name="e1", port=5_000_000)
    e2 = s2.add_eni("10.0.2.10", name="e2", port=70_000)
    igw = vpc.add_internet_gateway(name="igw", port=123_456_789)
    vpc.main_route_table.add_route("0.0.0.0/0", igw)
    f1 = F.udp_frame(e1, "10.0.2.10", s1)
    f2 = F.udp_frame(e2, "8.8.8.8", s2)
    f3 = F.udp_frame(e2, "10.0.1.10", s2)
    o = engine.run(net, [(f1, 5_000_000), (f2, 70_000), (f3, 123_456_789), (f3, 5_000_001)])
    assert_delivered(o[0], f1, e2, s2.gateway_mac, ridx(net, vpc.main_route_table.name, "10.0.0.0/16"))
    assert_forward(o[1], 123_456_789, ridx(net, vpc.main_route_table.name, "0.0.0.0/0"), f2)
    assert_drop(o[2], R.UNKNOWN_PORT, f3)
    assert_drop(o[3], R.UNKNOWN_PORT, f3)


def test_arp_is_not_source_checked(engine: Engine, net: topo.Network) -> None:
    """The spec checks no ARP sender field against the ENI: a request with a foreign spa/sha is answered,
    to the request's Ethernet source."""
    w1, w2 = find(net, "web1"), find(net, "web2")
    req = F.arp_frame("02:12:34:56:78:9a", "10.0.1.77", "10.0.1.20")
    assert_arp_reply(engine.one(net, req, w1.port), req, w1, w2.mac)


def test_sdc_off_eni_pings_router_from_foreign_source(engine: Engine) -> None:
    net = seed_vpc()
    app = net.find("app")
    fw = app.add_eni("10.0.2.50", name="fw", source_dest_check=False)
    req = F.icmp_echo(fw, app, app, src_ip="192.0.2.7", payload=b"nat")
    out = engine.one(net, req, fw.port)
    assert_echo_reply(out, req, fw)
    assert F.ether(out.frame)[F.IP].dst == "192.0.2.7"


def test_hairpin_to_own_ip_is_delivered_back(engine: Engine, net: topo.Network) -> None:
    w1 = find(net, "web1")
    frame = F.udp_frame(w1, "10.0.1.10", find(net, "web"))
    assert_delivered(engine.one(net, frame, w1.port), frame, w1, w1.mac, -1)
