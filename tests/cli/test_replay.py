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
    # FORWARD through the internet gateway: only the source becomes web1's public IP (and the checksums)
    assert emitted[2][IP].src == "203.0.113.10" and bytes(emitted[2])[30:50] == frames[3][30:50]
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


# --------------------------------------------------------------------------- connection tracking

def _tracked_net():
    """web1 may open TCP to app1:8080 (app's group), nothing may open a connection to web1."""
    net = seed_vpc()
    vpc = net.vpcs[0]
    e = {x.name: x for x in net.enis}
    sg_web = vpc.add_security_group(name="sg-web")          # no ingress rule, all egress
    sg_app = vpc.add_security_group(name="sg-app")
    sg_app.authorize_ingress("tcp", 8080, sg_web)
    e["web1"].security_groups = [sg_web]
    e["app1"].security_groups = [sg_app]
    return net, e


def _handshake_capture(path, e):
    import fastvpc as fv

    web1, app1 = e["web1"], e["app1"]
    syn = pk.ethernet(web1.subnet.gateway_mac, web1.mac, pk.ETH_IPV4,
                      pk.tcp(web1.ip, app1.ip, 40000, 8080, flags=0x02))
    synack = pk.ethernet(app1.subnet.gateway_mac, app1.mac, pk.ETH_IPV4,
                         pk.tcp(app1.ip, web1.ip, 8080, 40000, flags=0x12))
    t0 = 1_700_000_000 * 10**9
    fv.FrameBatch.from_frames([syn, synack], port=[web1.port, app1.port],
                              timestamp=[t0, t0 + 10**6]).to_pcap(path, nanosecond=True)


def test_replay_tracks_connections_across_the_capture(tmp_path):
    """The SYN-ACK of web1's connection passes web1's group only because the SYN was tracked
    (DESIGN.md §5: replay keeps one FlowTable, its clock the capture's timestamps); --stateless
    judges it as a first packet, which web1's group refuses."""
    net, e = _tracked_net()
    cap = tmp_path / "hs.pcap"
    _handshake_capture(cap, e)
    tracked = replay(net, cap, tmp_path / "out.pcap")
    assert tracked.by_action["DELIVER"] == 2 and not tracked.by_reason
    assert [p[IP].dst for p in rdpcap(str(tmp_path / "out.pcap"))] == [str(e["app1"].ip), str(e["web1"].ip)]
    stateless = replay(net, cap, tmp_path / "out2.pcap", stateful=False)
    assert stateless.by_action["DELIVER"] == 1 and stateless.by_reason == {"SG_INGRESS": 1}
    net.save(tmp_path / "t.json")
    assert main(["replay", str(tmp_path / "t.json"), str(cap), "-o", str(tmp_path / "o3.pcap"),
                 "--stateless", "--no-progress"]) == 0
    assert len(rdpcap(str(tmp_path / "o3.pcap"))) == 1
