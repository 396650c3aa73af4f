"""A firewall between the NAT gateway and the internet gateway (AWS Network Firewall's NAT gateway design):
the NAT gateway's subnet sends 0.0.0.0/0 to a firewall ENI, and the internet gateway's gateway route table
sends the NAT gateway's subnet to the same ENI, so the replies to the NAT gateway's Elastic IP pass the
firewall before the NAT gateway translates them back (docs/edge.md §3, §4.2).  The kernel and the reference
forwarder give the same verdicts on every frame (``Pair``), and scapy checks every rewritten checksum."""

from __future__ import annotations

import warnings

import pytest

import fastvpc as fv
from fastvpc.verdicts import Action, DropReason
from frames import assert_checksums as _assert_checksums
from nat_net import NS, OUTSIDE_MAC, Pair

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from scapy.compat import raw
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether

EIP = "203.0.113.40"
REMOTE = "198.51.100.7"


def assert_checksums(buf: bytes) -> Ether:
    return _assert_checksums(buf, udp_zero_ok=True)   # the UDP frames here carry checksum 0 (none)


def firewalled(edge_route: bool = True):
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v")
    natsub = vpc.add_subnet("10.0.1.0/24", name="natsub")
    app = vpc.add_subnet("10.0.2.0/24", name="app")
    fwsub = vpc.add_subnet("10.0.3.0/24", name="fwsub")
    igw = vpc.add_internet_gateway(name="igw")
    vpc.main_route_table.add_route("0.0.0.0/0", igw)           # fwsub: out to the internet
    sg_fw = vpc.add_security_group(name="fw-sg")
    sg_fw.authorize_ingress("all", None, "0.0.0.0/0")
    fw = fwsub.add_eni("10.0.3.10", name="fw", source_dest_check=False, security_groups=[sg_fw])
    nat = natsub.add_nat_gateway(name="nat", address=net.allocate_address(EIP))
    natsub.associate(vpc.add_route_table(name="rt-nat", routes=[("0.0.0.0/0", fw)]))
    app.associate(vpc.add_route_table(name="rt-app", routes=[("0.0.0.0/0", nat)]))
    edge = vpc.add_route_table(name="edge")
    if edge_route:
        edge.add_route("10.0.1.0/24", fw)
    edge.associate_gateway(igw)
    a1 = app.add_eni("10.0.2.10", name="a1")
    return net, igw, nat, fw, a1


def via(eni, frame: bytes) -> bytes:
    """``frame`` as the ENI forwards it (a firewall that passes what it gets): to its subnet's router."""
    e = Ether(frame)
    e.src, e.dst = eni.mac, eni.subnet.gateway_mac
    return raw(e)


def test_the_nat_gateways_traffic_passes_the_firewall_both_ways():
    net, igw, nat, fw, a1 = firewalled()
    pr = Pair(net)
    syn = raw(Ether(src=a1.mac, dst=a1.subnet.gateway_mac) / IP(src=str(a1.ip), dst=REMOTE)
              / TCP(sport=40000, dport=443, flags="S"))
    [(act, _, egress, out)] = pr.step([(syn, a1.port)], NS)
    # NAT gateway, then its subnet's table: to the firewall, with the NAT gateway's private IP and port
    assert (act, egress) == (Action.DELIVER, fw.port)
    seen = assert_checksums(out)
    assert (seen[IP].src, seen[IP].dst, seen[Ether].dst) == (str(nat.ip), REMOTE, fw.mac)
    nat_port = seen[TCP].sport
    assert 1024 <= nat_port <= 65535
    [(act, _, egress, out)] = pr.step([(via(fw, out), fw.port)], 2 * NS)
    assert (act, egress) == (Action.FORWARD, igw.port)
    seen = assert_checksums(out)
    assert (seen[IP].src, seen[TCP].sport) == (EIP, nat_port)      # the IGW maps the NAT's IP to its EIP
    # the answer to the Elastic IP: the gateway route table sends the NAT gateway's subnet to the firewall
    synack = raw(Ether(src=OUTSIDE_MAC, dst=igw.mac) / IP(src=REMOTE, dst=EIP)
                 / TCP(sport=443, dport=nat_port, flags="SA"))
    [(act, reason, egress, back)] = pr.step([(synack, igw.port)], 3 * NS)
    assert (act, reason, egress) == (Action.DELIVER, DropReason.NONE, fw.port)
    seen = assert_checksums(back)
    assert (seen[IP].dst, seen[TCP].dport) == (str(nat.ip), nat_port)   # not yet translated back
    # the firewall passes it on: the local route takes it to the NAT gateway, which translates it back
    [(act, _, egress, home)] = pr.step([(via(fw, back), fw.port)], 4 * NS)
    assert (act, egress) == (Action.DELIVER, a1.port)
    seen = assert_checksums(home)
    assert (seen[IP].src, seen[IP].dst, seen[TCP].sport, seen[TCP].dport) == (REMOTE, str(a1.ip), 443, 40000)


def test_without_the_edge_route_the_reply_goes_straight_to_the_nat_gateway():
    """The gateway route table's own `local` route for the VPC takes a reply to the NAT gateway directly;
    a route of the NAT gateway's subnet to a blackhole-free ENI is what diverts it."""
    net, igw, nat, fw, a1 = firewalled(edge_route=False)
    pr = Pair(net)
    out = raw(Ether(src=a1.mac, dst=a1.subnet.gateway_mac) / IP(src=str(a1.ip), dst=REMOTE)
              / UDP(sport=5000, dport=53))
    [(act, _, egress, out)] = pr.step([(out, a1.port)], NS)
    assert (act, egress) == (Action.DELIVER, fw.port)
    [(act, _, egress, out)] = pr.step([(via(fw, out), fw.port)], 2 * NS)
    assert (act, egress) == (Action.FORWARD, igw.port)
    port = Ether(out)[UDP].sport
    answer = raw(Ether(src=OUTSIDE_MAC, dst=igw.mac) / IP(src=REMOTE, dst=EIP) / UDP(sport=53, dport=port))
    [(act, _, egress, home)] = pr.step([(answer, igw.port)], 3 * NS)
    assert (act, egress) == (Action.DELIVER, a1.port)
    assert Ether(home)[IP].dst == str(a1.ip)


def test_an_unsolicited_frame_to_the_eip_reaches_the_firewall_and_dies_at_the_nat_gateway():
    net, igw, nat, fw, a1 = firewalled()
    pr = Pair(net)
    probe = raw(Ether(src=OUTSIDE_MAC, dst=igw.mac) / IP(src=REMOTE, dst=EIP) / TCP(sport=1234, dport=22, flags="S"))
    [(act, _, egress, seen)] = pr.step([(probe, igw.port)], NS)
    assert (act, egress) == (Action.DELIVER, fw.port)
    [(act, reason, _, _)] = pr.step([(via(fw, seen), fw.port)], 2 * NS)
    assert (act, reason) == (Action.DROP, DropReason.NAT_NO_BINDING)


@pytest.mark.parametrize("edge_route", [True, False])
def test_stateless_the_nat_path_still_needs_state(edge_route):
    """Without state= the gateway route table still decides first: to the firewall (DELIVER, no NAT
    yet) or, by its local route, to the NAT gateway (NAT_NEEDS_STATE)."""
    net, igw, nat, fw, a1 = firewalled(edge_route)
    dp = net.compile()
    probe = raw(Ether(src=OUTSIDE_MAC, dst=igw.mac) / IP(src=REMOTE, dst=EIP) / UDP(sport=53, dport=3000))
    res = dp.process(fv.FrameBatch.from_frames([probe], port=igw.port))
    got = (fv.Action(int(res.action[0])), fv.DropReason(int(res.reason[0])))
    if edge_route:
        assert got == (Action.DELIVER, DropReason.NONE) and int(res.egress[0]) == fw.port
    else:
        assert got == (Action.DROP, DropReason.NAT_NEEDS_STATE)
