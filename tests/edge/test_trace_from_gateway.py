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
