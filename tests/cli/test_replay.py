"""fastvpc replay: pcap in (written by scapy), processed pcap out (read back by scapy)."""

from __future__ import annotations

import json

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether
from scapy.utils import rdpcap, wrpcap

from fastvpc import packets as pk
from fastvpc.cli import main
from fastvpc.examples import seed_vpc
from fastvpc.replay import replay


@pytest.fixture()
def capture(tmp_path):
    net = seed_vpc()
    f = net.find
    web1, app1, web = f("web1"), f("app1"), f("web")
    frames = [
        pk.ethernet(web.gateway_mac, web1.mac, pk.ETH_IPV4, pk.icmp_echo(web1.ip, app1.ip)),       # DELIVER app1
        pk.ethernet(web.gateway_mac, web1.mac, pk.ETH_IPV4, pk.icmp_echo(web1.ip, web.router_ip)),  # REPLY
        pk.arp_request(web1.mac, web1.ip, "10.0.1.99"),                                            # DROP
        pk.ethernet(web.gateway_mac, web1.mac, pk.ETH_IPV4, pk.tcp(web1.ip, "8.8.8.8", 1, 443)),   # FORWARD igw
        # sent by a MAC no ENI has, but with web1's source IP
        pk.ethernet(web.gateway_mac, "02:aa:bb:cc:dd:ee", pk.ETH_IPV4, pk.icmp_echo(web1.ip, app1.ip)),
    ]
    path = tmp_path / "in.pcap"
    pkts = [Ether(fr) for fr in frames]
    for i, p in enumerate(pkts):
        p.time = 1700000000 + i / 10
    wrpcap(str(path), pkts)
    return net, path, frames


def test_replay_by_source_mac_writes_emitted_and_dropped_frames(tmp_path, capture):
    net, path, frames = capture
    out, drops = tmp_path / "out.pcap", tmp_path / "drops.pcap"
    s = replay(net, path, out, drops_path=drops)
    assert s.frames == 5 and s.unmapped == 1
    assert s.by_action == {"DELIVER": 1, "REPLY": 1, "FORWARD": 1, "DROP": 2}
    assert s.by_reason == {"ARP_NO_ENTRY": 1, "UNKNOWN_PORT": 1}
    assert s.per_eni["web1"] == {"DELIVER": 1, "REPLY": 1, "FORWARD": 1, "DROP": 1}
    emitted = rdpcap(str(out))
    assert len(emitted) == 3
    assert emitted[0][Ether].dst == net.find("app1").mac          # rewritten for delivery
    assert emitted[1][ICMP].type == 0 and emitted[1][IP].src == "10.0.1.1"
    assert bytes(emitted[2]) == frames[3]                          # FORWARD: untouched
    assert float(emitted[1].time) == pytest.approx(1700000000.1)   # timestamps kept
    dropped = rdpcap(str(drops))
    assert [bytes(p) for p in dropped] == [frames[2], frames[4]]
    assert ARP in dropped[0]


def test_replay_by_source_ip_maps_the_unknown_mac(tmp_path, capture):
    net, path, _ = capture
    s = replay(net, path, tmp_path / "o.pcap", port_by="src-ip")
    assert s.unmapped == 0
    # the source MAC is not checked (only the source IP is, by the source/dest check)
    assert s.by_action["DELIVER"] == 2 and s.per_eni["web1"]["DELIVER"] == 2


def test_replay_cli_prints_counts_and_writes_json(tmp_path, capture, capsys):
    net, path, _ = capture
    topo = tmp_path / "seed.json"
    net.save(topo)
    summary = tmp_path / "s.json"
    assert main(["replay", str(topo), str(path), "-o", str(tmp_path / "o.pcap"), "--json", str(summary)]) == 0
    text = capsys.readouterr().out
    assert "5 frames" in text and "UNKNOWN_PORT" in text and "web1" in text
    data = json.loads(summary.read_text())
    assert data["frames"] == 5 and data["unmapped"] == 1 and data["by_action"]["FORWARD"] == 1


def test_replay_of_a_corrupt_capture_names_the_offset(tmp_path, capture):
    net, path, _ = capture
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(path.read_bytes()[:-7])
    assert main(["replay", "seed", str(bad), "-o", str(tmp_path / "o.pcap")]) == 2
