"""A trace can start outside the VPC: a packet entering on an internet, VPN or transit gateway's port
(DESIGN §6), so ``trace`` answers "can the internet reach my server?" hop by hop, both engines agreeing."""

from __future__ import annotations

import ipaddress
import json

import pytest

import fastvpc as fv
from fastvpc.cli import main
from fastvpc.trace import OUTSIDE_IP, trace_packet


def _net(open_https: bool = True) -> fv.Network:
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    igw = vpc.add_internet_gateway(name="igw")
    vgw = vpc.add_vpn_gateway(name="vgw")
    vpc.main_route_table.add_route("0.0.0.0/0", igw)
    vpc.main_route_table.add_route("192.168.0.0/16", vgw)
    sg = vpc.add_security_group(name="web-sg")
    if open_https:
        sg.authorize_ingress("tcp", 443, "0.0.0.0/0")
    web.add_eni("10.0.1.10", name="w1", public_ip="203.0.113.10", security_groups=[sg])
    web.add_eni("10.0.1.11", name="w2", security_groups=[sg])
    return net


def _ips(frame: bytes) -> tuple[str, str]:
    return str(ipaddress.IPv4Address(frame[26:30])), str(ipaddress.IPv4Address(frame[30:34]))


def test_the_internet_reaches_a_public_ip_through_the_igw_hop_by_hop():
    net = _net()
    t = trace_packet(net, "igw", "203.0.113.10", proto="tcp", port=443)
    assert (t.verdict, t.egress_name, t.ingress, t.agrees) == ("DELIVER", "w1", "igw", True)
    assert t.src_ip == str(OUTSIDE_IP)
    # the receiver sees the outside host's address and its own private one (the 1:1 translation)
    assert _ips(t.frame) == (str(OUTSIDE_IP), "10.0.1.10")
    igw_hops = [h.detail for h in t.hops if h.kind == "igw"]
    assert any("203.0.113.10" in d and "10.0.1.10" in d for d in igw_hops), igw_hops
    kinds = [h.kind for h in t.hops]
    assert kinds.index("igw") < kinds.index("sg")            # translated first, then the receiver's groups
    assert json.loads(json.dumps(t.to_dict()))["ingress"] == "igw"
    # the same by object, and with the outside host named
    t2 = trace_packet(net, net.find("igw"), "203.0.113.10", proto="tcp", port=443, src_ip="8.8.4.4")
    assert t2.verdict == "DELIVER" and _ips(t2.frame) == ("8.8.4.4", "10.0.1.10") and t2.agrees


@pytest.mark.parametrize("dst, proto, port, open_https, reason", [
    ("203.0.113.10", "tcp", 22, True, "SG_INGRESS"),      # not allowed by web-sg
    ("203.0.113.10", "tcp", 443, False, "SG_INGRESS"),    # no inbound rule at all
    ("203.0.113.99", "tcp", 443, True, "NO_SUCH_PUBLIC_IP"),  # not an address of the VPC
    ("10.0.1.11", "tcp", 443, True, "NO_SUCH_PUBLIC_IP"),     # a private address is not reachable from the internet
])
def test_what_the_internet_cannot_reach_is_a_drop_with_its_reason(dst, proto, port, open_https, reason):
    t = trace_packet(_net(open_https), "igw", dst, proto=proto, port=port)
    assert (t.verdict, t.agrees) == (f"DROP {reason}", True)
    assert t.ingress == "igw"


def test_the_reply_of_an_inbound_connection_leaves_with_the_public_ip():
    t = trace_packet(_net(), "igw", "203.0.113.10", proto="tcp", port=443, reply=True)
    assert t.forward is not None and t.forward.verdict == "DELIVER"
    # the SYN-ACK from w1: admitted by its tracked entry, translated back to its public IP at the IGW
    assert (t.verdict, t.egress_name, t.agrees) == ("FORWARD", "igw", True)
    assert _ips(t.frame) == ("203.0.113.10", str(OUTSIDE_IP))
    assert t.ingress == "w1"


def test_a_vpn_gateway_source_enters_with_a_private_address():
    t = trace_packet(_net(), "vgw", "10.0.1.11", proto="tcp", port=443, src_ip="192.168.7.7")
    assert (t.verdict, t.egress_name, t.ingress, t.agrees) == ("DELIVER", "w2", "vgw", True)
    assert _ips(t.frame) == ("192.168.7.7", "10.0.1.11")


def test_a_source_that_is_neither_an_eni_nor_an_entry_gateway_is_refused_by_name():
    net = _net()
    net.find("web").add_nat_gateway(name="nat", address=net.allocate_address("203.0.113.30"))
    with pytest.raises(ValueError, match="'nat' is a NatGateway, not an ENI or an internet, VPN or transit"):
        trace_packet(net, "nat", "10.0.1.10")


def test_cli_traces_from_the_igw_with_exit_status_and_close_names(capsys):
    assert main(["trace", "seed", "--from", "igw", "--to", "203.0.113.10", "--proto", "tcp", "--port", "443",
                 "--json", "-"]) in (0, 1)
    out = json.loads(capsys.readouterr().out)
    assert out["ingress"] == "igw" and out["src_ip"] == str(OUTSIDE_IP)
    # the seed's exit status follows its verdict: 0 delivered, 1 dropped
    code = main(["trace", "seed", "--from", "igw", "--to", "203.0.113.99"])
    text = capsys.readouterr().out
    assert code == 1 and "NO_SUCH_PUBLIC_IP" in text
    assert main(["trace", "seed", "--from", "igww", "--to", "203.0.113.10"]) == 2
    err = capsys.readouterr().err
    assert "did you mean" in err and "igw" in err.split("did you mean", 1)[1]


def _net_out() -> fv.Network:
    """web (public, to the IGW) with w1 (public IP) and a NAT gateway; app (private, to the NAT
    gateway) with a1; a VPN gateway for 192.168.0.0/16."""
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    app = vpc.add_subnet("10.0.2.0/24", name="app")
    igw = vpc.add_internet_gateway(name="igw")
    vgw = vpc.add_vpn_gateway(name="vgw")
    rt_web = vpc.add_route_table(name="rt-web")
    rt_web.add_route("0.0.0.0/0", igw)
    web.associate(rt_web)
    nat = web.add_nat_gateway(name="nat", address=net.allocate_address("203.0.113.30"))
    rt_app = vpc.add_route_table(name="rt-app")
    rt_app.add_route("0.0.0.0/0", nat)
    rt_app.add_route("192.168.0.0/16", vgw)
    app.associate(rt_app)
    web.add_eni("10.0.1.10", name="w1", public_ip="203.0.113.10")
    app.add_eni("10.0.2.10", name="a1")
    return net


def _ports(frame: bytes) -> tuple[int, int]:
    l4 = 14 + (frame[14] & 0x0F) * 4
    return int.from_bytes(frame[l4:l4 + 2], "big"), int.from_bytes(frame[l4 + 2:l4 + 4], "big")


@pytest.mark.parametrize("verdict", ["dataplane", "reference"])
@pytest.mark.parametrize("proto, port", [("tcp", 443), ("udp", 53), ("icmp", None)])
def test_the_reply_to_a_flow_out_through_the_igw_comes_back_in_to_its_public_ip(proto, port, verdict):
    t = trace_packet(_net_out(), "w1", "8.8.8.8", proto=proto, port=port, reply=True, verdict=verdict)
    assert t.forward is not None and (t.forward.verdict, t.forward.egress_name) == ("FORWARD", "igw")
    # in on the IGW's port from the remote host to w1's public IP, translated back, admitted by the
    # entry the forward packet opened (sg-1 has no inbound rule)
    assert (t.ingress, t.src_ip, t.dst) == ("igw", "8.8.8.8", "203.0.113.10")
    assert (t.verdict, t.egress_name, t.agrees) == ("DELIVER", "w1", True)
    assert _ips(t.frame) == ("8.8.8.8", "10.0.1.10")
    assert any(h.kind == "sg" and "tracked flow" in h.detail for h in t.hops), [str(h) for h in t.hops]
    if proto != "icmp":
        assert _ports(t.frame) == (port, _ports(t.forward.frame)[0])


@pytest.mark.parametrize("proto, port", [("tcp", 443), ("udp", 53), ("icmp", None)])
def test_the_reply_to_a_flow_through_a_nat_gateway_reaches_the_inside_host(proto, port):
    t = trace_packet(_net_out(), "a1", "8.8.8.8", proto=proto, port=port, reply=True)
    f = t.forward
    assert f is not None and (f.verdict, f.egress_name) == ("FORWARD", "igw")
    assert _ips(f.frame) == ("203.0.113.30", "8.8.8.8")             # left with the NAT gateway's EIP
    # the reply goes to the EIP (and the port the NAT gateway gave), and the NAT gateway hands it to a1
    assert (t.ingress, t.dst) == ("igw", "203.0.113.30")
    assert (t.verdict, t.egress_name, t.agrees) == ("DELIVER", "a1", True)
    assert _ips(t.frame) == ("8.8.8.8", "10.0.2.10")
    kinds = [h.kind for h in t.hops]
    assert kinds.index("igw") < kinds.index("nat") < kinds.index("sg"), kinds
    if proto != "icmp":
        assert _ports(t.frame) == (port, 49152)     # back to the port a1 sent from


def test_a_subnet_acl_without_the_ephemeral_ports_drops_the_reply_from_the_internet():
    net = _net_out()
    acl = net.find("v").add_network_acl(name="acl-web")
    acl.add_entry(100, "egress", "allow", "all", None, "0.0.0.0/0")
    acl.add_entry(100, "ingress", "allow", "tcp", 443, "0.0.0.0/0")      # the ephemeral ports are not open
    net.find("web").associate_network_acl(acl)
    t = trace_packet(net, "w1", "8.8.8.8", proto="tcp", port=443, reply=True)
    assert t.forward is not None and t.forward.verdict == "FORWARD"
    assert (t.verdict, t.ingress, t.agrees) == ("DROP NACL_INGRESS", "igw", True)
    assert any(h.kind == "acl" and "acl-web ingress: denied" in str(h) for h in t.hops), [str(h) for h in t.hops]


def test_the_reply_through_a_vpn_gateway_enters_on_its_port():
    t = trace_packet(_net_out(), "a1", "192.168.7.7", proto="tcp", port=22, reply=True)
    assert t.forward is not None and (t.forward.verdict, t.forward.egress_name) == ("FORWARD", "vgw")
    assert (t.ingress, t.src_ip, t.verdict, t.egress_name, t.agrees) == ("vgw", "192.168.7.7", "DELIVER", "a1", True)
    assert _ips(t.frame) == ("192.168.7.7", "10.0.2.10") and _ports(t.frame) == (22, 49152)


def test_a_reply_is_refused_where_there_is_no_return_packet():
    net = _net_out()
    # compiled without the edge, a gateway's port takes no frames
    with pytest.raises(ValueError, match="edge=False"):
        trace_packet(net, "w1", "8.8.8.8", proto="tcp", port=443, reply=True, edge=False)
    # dropped: nothing to answer
    with pytest.raises(ValueError, match="no return packet"):
        trace_packet(net, "w1", "10.0.9.9", proto="tcp", port=443, reply=True)


def test_cli_traces_the_reply_of_a_flow_to_the_internet(tmp_path, capsys):
    path = tmp_path / "out.json"
    fv.files.save(_net_out(), path)
    assert main(["trace", str(path), "--from", "a1", "--to", "8.8.8.8", "--proto", "tcp", "--port", "443",
                 "--reply", "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reply"] is True and out["forward"]["action"] == "FORWARD" and out["forward"]["egress_name"] == "igw"
    assert (out["ingress"], out["action"], out["egress_name"], out["dst"]) == ("igw", "DELIVER", "a1", "203.0.113.30")
    # the forward packet dropped: its trace, why there is no reply, and the exit status of a drop
    assert main(["trace", str(path), "--from", "w1", "--to", "10.0.9.9", "--reply"]) == 1
    got = capsys.readouterr()
    assert "DROP" in got.out and "--reply:" in got.out and "no return packet" in got.out
    assert main(["trace", str(path), "--from", "w1", "--to", "10.0.9.9", "--reply", "--json", "-"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["action"] == "DROP" and "no return packet" in out["no_reply"]
    assert not out.get("reply")
