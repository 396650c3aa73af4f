"""``replay --ingress GATEWAY``: a capture of what outside hosts sent in (taken on the internet side of
an internet gateway, or on a VPN link) enters on the gateway's port, as in ``process()`` and live
mode (DESIGN §6): translated to the private IP, filtered, delivered, or dropped with the reason."""

from __future__ import annotations

import ipaddress
import json

import pytest

import fastvpc as fv
from fastvpc import packets as pk
from fastvpc.cli import main
from fastvpc.errors import FastVpcError
from fastvpc.pcap import read_pcap, write_pcap
from fastvpc.replay import replay

OUTSIDE_MAC = "02:00:5e:10:00:01"


def _net() -> fv.Network:
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    igw = vpc.add_internet_gateway(name="igw")
    vpc.main_route_table.add_route("0.0.0.0/0", igw)
    sg = vpc.add_security_group(name="web-sg")
    sg.authorize_ingress("tcp", 443, "0.0.0.0/0")
    web.add_eni("10.0.1.10", name="w1", public_ip="203.0.113.10", security_groups=[sg])
    web.add_eni("10.0.1.11", name="w2", security_groups=[sg])
    return net


def _capture(net: fv.Network, path) -> None:
    igw = net.find("igw")

    def f(dst, dport, mac=igw.mac):
        return pk.ethernet(mac, OUTSIDE_MAC, pk.ETH_IPV4, pk.tcp("198.51.100.10", dst, 40000, dport), pad_to=60)

    frames = [f("203.0.113.10", 443),                  # DELIVER to w1, translated
              f("203.0.113.10", 22),                   # SG_INGRESS
              f("203.0.113.99", 443),                  # no public IP of the VPC
              f("10.0.1.11", 443),                     # a private address is not reachable from outside
              f("203.0.113.10", 443, mac="02:00:00:00:99:99")]   # not addressed to the gateway
    write_pcap(path, fv.FrameBatch.from_frames(frames, port=[0] * len(frames)))


def test_a_capture_from_the_internet_enters_on_the_igw(tmp_path):
    net = _net()
    _capture(net, tmp_path / "in.pcap")
    s = replay(net, tmp_path / "in.pcap", tmp_path / "out.pcap", drops_path=tmp_path / "drops.pcap", ingress="igw")
    assert (s.frames, s.unmapped) == (5, 0)
    assert dict(s.by_action) == {"DELIVER": 1, "DROP": 4}
    assert dict(s.by_reason) == {"SG_INGRESS": 1, "NO_SUCH_PUBLIC_IP": 2, "UNKNOWN_MAC": 1}
    assert set(s.per_eni) == {"igw"}
    out = read_pcap(tmp_path / "out.pcap")
    assert len(out) == 1
    f = bytes(out.frame(0))
    w1 = net.find("w1")
    assert ipaddress.IPv4Address(f[30:34]) == ipaddress.IPv4Address("10.0.1.10")     # translated to the private IP
    assert f[0:6] == bytes.fromhex(w1.mac.replace(":", ""))
    assert len(read_pcap(tmp_path / "drops.pcap")) == 4
    # mapped by source MAC instead, the outside host is no ENI: every frame UNKNOWN_PORT
    assert replay(net, tmp_path / "in.pcap").unmapped == 5


def test_ingress_names_an_eni_or_an_entry_gateway(tmp_path):
    net = _net()
    _capture(net, tmp_path / "in.pcap")
    with pytest.raises(FastVpcError, match="'web' is a Subnet, not an ENI or an internet, VPN or transit gateway"):
        replay(net, tmp_path / "in.pcap", ingress="web")
    with pytest.raises(FastVpcError, match="'nobody'"):
        replay(net, tmp_path / "in.pcap", ingress="nobody")
    assert replay(net, tmp_path / "in.pcap", ingress=net.find("igw")).by_action["DELIVER"] == 1


def test_cli_replays_a_capture_from_the_internet(tmp_path, capsys):
    net = _net()
    fv.files.save(net, tmp_path / "topo.json")
    _capture(net, tmp_path / "in.pcap")
    assert main(["replay", str(tmp_path / "topo.json"), str(tmp_path / "in.pcap"), "-o", str(tmp_path / "o.pcap"),
                 "--ingress", "igw", "--json", "-"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["by_action"] == {"DELIVER": 1, "DROP": 4} and list(d["per_eni"]) == ["igw"]
