"""Replay's compiled parts against independent oracles: the port map against fv.classify,
the counts against the data plane's own verdicts, pcap output against scapy, pcapng output
against tshark (interfaces named by port, the verdict as each packet's comment)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from conftest import require_tool
from fastvpc import packets as pk
from fastvpc.batch import FrameBatch
from fastvpc.dataplane.classify import FLAG_ARP, FLAG_ETH, FLAG_IPV4, classify
from fastvpc.dataplane.ports import PortMap
from fastvpc.examples import seed_vpc, write_starter_files
from fastvpc.pcap import read_pcap, write_pcap
from fastvpc.replay import replay
from fastvpc.topology import mac_to_int
from fastvpc.verdicts import Action, DropReason


def _random_frames(net, n, seed):
    """Frames from the seed's VMs and from strangers: IPv4, ARP, IPv6, short, garbage."""
    rng = np.random.default_rng(seed)
    enis = net.enis
    out = []
    for _ in range(n):
        e = enis[rng.integers(len(enis))]
        other = enis[rng.integers(len(enis))]
        src_mac = e.mac if rng.random() < 0.7 else "02:99:%02x:00:00:01" % rng.integers(256)
        src_ip = e.ip if rng.random() < 0.7 else "10.0.%d.%d" % (rng.integers(1, 4), rng.integers(2, 250))
        kind = rng.integers(6)
        if kind == 0:
            fr = pk.arp_request(src_mac, src_ip, other.ip)
        elif kind == 1:
            fr = pk.ethernet(other.mac, src_mac, pk.ETH_IPV6, pk.ipv6_udp("fe80::1", "fe80::2"))
        elif kind == 2:
            fr = bytes(rng.integers(0, 256, rng.integers(1, 40), dtype=np.uint8))
        else:
            fr = pk.ethernet(e.subnet.gateway_mac, src_mac, pk.ETH_IPV4, pk.udp(src_ip, other.ip, 1, 2))
        out.append(fr)
    return out


@pytest.mark.parametrize("by", ["src-mac", "src-ip"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_port_map_agrees_with_classify(by, seed):
    net = seed_vpc()
    frames = _random_frames(net, 2000, seed)
    batch = FrameBatch.from_frames(frames, port=-1)
    got = PortMap.for_network(net, by).ports_for(batch)
    f = classify(batch)
    owners = {}
    for e in net.enis:
        for k in ([mac_to_int(e.mac)] if by == "src-mac" else [int(ip) for ip in e.ips]):
            owners[k] = e.port
    if by == "src-mac":
        keys, ok = f.src_mac, (f.flags & FLAG_ETH) != 0
    else:
        keys, ok = f.ip_src.astype(np.uint64), (f.flags & (FLAG_IPV4 | FLAG_ARP)) != 0
    want = np.array([owners.get(int(k), -1) if o else -1 for k, o in zip(keys, ok)], np.int32)
    # classify also accepts IPv4 with a bad header as IPv4; the map only needs the source field,
    # so compare where classify vouches for the header
    assert np.array_equal(got[ok | (got < 0)], want[ok | (got < 0)])
    assert (got >= 0).sum() > 100


def test_port_map_ambiguous_ip_is_unmapped():
    import fastvpc as fv

    net = fv.Network()
    for name in ("a", "b"):
        v = net.add_vpc("10.0.0.0/16", name=name)
        v.add_subnet("10.0.1.0/24", name=f"s{name}").add_eni("10.0.1.10", name=f"e{name}")
    frame = pk.ethernet("02:00:00:00:00:01", net.find("ea").mac, pk.ETH_IPV4, pk.udp("10.0.1.10", "10.0.1.20", 1, 2))
    batch = FrameBatch.from_frames([frame], port=-1)
    assert PortMap.for_network(net, "src-ip").ports_for(batch)[0] == -1
    assert PortMap.for_network(net, "src-mac").ports_for(batch)[0] == net.find("ea").port


def test_counts_and_outputs_match_process(tmp_path):
    net = seed_vpc()
    frames = _random_frames(net, 5000, 9)
    ts = 1_700_000_000 * 10**9 + np.arange(len(frames), dtype=np.int64) * 1234
    src = tmp_path / "in.pcap"
    write_pcap(src, FrameBatch.from_frames(frames, port=-1, timestamp=ts), nanosecond=True)
    s = replay(net, src, tmp_path / "o.pcap", drops_path=tmp_path / "d.pcap", batch_size=700)
    # the oracle: one process() over the whole capture
    batch = read_pcap(src)
    batch_ports = PortMap.for_network(net).ports_for(batch)
    b = FrameBatch(batch.data, batch.offsets, batch_ports, batch.timestamp)
    res = net.compile().process(b)
    assert s.frames == len(frames) and s.unmapped == int((batch_ports < 0).sum())
    for a in Action:
        assert s.by_action.get(a.name, 0) == int((res.action == a).sum())
    for r in DropReason:
        if r != DropReason.NONE:
            assert s.by_reason.get(r.name, 0) == int(((res.action == Action.DROP) & (res.reason == r)).sum())
    names = {e.port: e.name for e in net.enis}
    for p, name in names.items():
        for a in Action:
            want = int(((batch_ports == p) & (res.action == a)).sum())
            assert s.per_eni.get(name, {}).get(a.name, 0) == want
    emitted, dropped = read_pcap(tmp_path / "o.pcap"), read_pcap(tmp_path / "d.pcap")
    keep = res.action != Action.DROP
    assert [emitted.frame(i) for i in range(len(emitted))] == [b.frame(int(i)) for i in np.flatnonzero(keep)]
    assert np.array_equal(emitted.timestamp, ts[keep])
    assert [dropped.frame(i) for i in range(len(dropped))] == [frames[int(i)] for i in np.flatnonzero(~keep)]


def test_pcap_output_read_by_scapy(tmp_path):
    from scapy.utils import rdpcap

    d = tmp_path / "lab"
    write_starter_files(d)
    replay(seed_vpc(), d / "in.pcap", d / "o.pcap")
    pkts = rdpcap(str(d / "o.pcap"))
    mine = read_pcap(d / "o.pcap")
    assert [bytes(p) for p in pkts] == [mine.frame(i) for i in range(len(mine))]
    assert [int(p.time * 10**9) // 1000 for p in pkts] == [int(t) // 1000 for t in mine.timestamp]


def test_pcapng_output_interfaces_and_comments(tmp_path):
    tshark = require_tool("tshark")
    d = tmp_path / "lab"
    write_starter_files(d)
    net = seed_vpc()
    replay(net, d / "in.pcap", d / "o.pcapng", drops_path=d / "d.pcapng")
    # our own reader sees the same frames as a classic-pcap replay
    replay(net, d / "in.pcap", d / "o.pcap", drops_path=d / "d.pcap")
    for ng, classic in (("o.pcapng", "o.pcap"), ("d.pcapng", "d.pcap")):
        a, b = read_pcap(d / ng), read_pcap(d / classic)
        assert [a.frame(i) for i in range(len(a))] == [b.frame(i) for i in range(len(b))]
        assert np.array_equal(a.timestamp, b.timestamp)
    # tshark: the interface is the egress port's name, the comment the verdict
    batch = read_pcap(d / "in.pcap")
    ports = PortMap.for_network(net).ports_for(batch)
    res = net.compile().process(FrameBatch(batch.data, batch.offsets, ports, batch.timestamp))
    names = {t.port: t.name for t in net.targets}
    keep = np.flatnonzero(res.action != Action.DROP)
    want = [(names[int(res.egress[i])], Action(int(res.action[i])).name) for i in keep]
    out = subprocess.run([tshark, "-r", str(d / "o.pcapng"), "-T", "fields", "-e", "frame.interface_name",
                          "-e", "frame.comment"], capture_output=True, text=True, check=True).stdout
    assert [tuple(line.split("\t")) for line in out.splitlines()] == want
    gone = np.flatnonzero(res.action == Action.DROP)
    want_d = [(names.get(int(ports[i]), "unmapped"), f"DROP {DropReason(int(res.reason[i])).name}") for i in gone]
    out = subprocess.run([tshark, "-r", str(d / "d.pcapng"), "-T", "fields", "-e", "frame.interface_name",
                          "-e", "frame.comment"], capture_output=True, text=True, check=True).stdout
    assert [tuple(line.split("\t")) for line in out.splitlines()] == want_d


def test_progress_line_shows_rate_and_time_left(tmp_path, capsys):
    d = tmp_path / "lab"
    write_starter_files(d)
    replay(seed_vpc(), d / "in.pcap", d / "o.pcap", progress=True)
    err = capsys.readouterr().err
    assert "M frames/s" in err and "s left" in err and "100%" in err
