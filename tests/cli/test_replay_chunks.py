"""drivers.replay.process_chunk and the reused-window replay: chunking never changes the answer.

Oracles: one ``Dataplane.process`` over the whole capture (read with ``read_pcap``) and
``write_pcap`` of the selected frames; the replay's output bytes with the default window against
tiny windows and batch sizes (every record cut somewhere); the concatenated records of
``process_chunk`` over arbitrary chunks against the serial replay's file."""

from __future__ import annotations

import numpy as np
import pytest

from fastvpc import pcap
from fastvpc.batch import FrameBatch
from fastvpc.dataplane.ports import PortMap
from fastvpc.drivers.replay import ChunkScratch, VerdictCounts, pcap_header, process_chunk, replay
from fastvpc.errors import FastVpcError, PcapError
from fastvpc.examples import seed_vpc
from fastvpc.pcap import read_pcap, write_pcap
from fastvpc.verdicts import Action
from fastvpc import packets as pk


def _random_frames(net, n, seed):
    """Frames from the seed's VMs and from strangers: IPv4 to every ENI, ARP, IPv6, short garbage."""
    rng = np.random.default_rng(seed)
    enis = net.enis
    out = []
    for _ in range(n):
        e, other = enis[rng.integers(len(enis))], enis[rng.integers(len(enis))]
        src_mac = e.mac if rng.random() < 0.8 else "02:99:%02x:00:00:01" % rng.integers(256)
        kind = rng.integers(5)
        if kind == 0:
            fr = pk.arp_request(src_mac, e.ip, other.ip)
        elif kind == 1:
            fr = pk.ethernet(other.mac, src_mac, pk.ETH_IPV6, pk.ipv6_udp("fe80::1", "fe80::2"))
        elif kind == 2:
            fr = bytes(rng.integers(0, 256, rng.integers(1, 40), dtype=np.uint8))
        else:
            fr = pk.ethernet(e.subnet.gateway_mac, src_mac, pk.ETH_IPV4, pk.udp(e.ip, other.ip, 1, 2))
        out.append(fr)
    return out


@pytest.fixture()
def capture(tmp_path):
    net = seed_vpc()
    frames = _random_frames(net, 3000, 21)
    ts = 1_700_000_000 * 10**9 + np.arange(len(frames), dtype=np.int64) * 977
    src = tmp_path / "in.pcap"
    write_pcap(src, FrameBatch.from_frames(frames, port=-1, timestamp=ts), nanosecond=False)  # us: converted
    return net, src


def _oracle(net, src):
    batch = read_pcap(src)
    b = FrameBatch(batch.data.copy(), batch.offsets, PortMap.for_network(net).ports_for(batch), batch.timestamp)
    res = net.compile().process(b)
    return b, res


@pytest.mark.parametrize("window,batch_size", [(1 << 20, 65536), (97, 1), (500, 7), (4096, 100000)])
def test_outputs_do_not_depend_on_windows_or_batches(tmp_path, capture, monkeypatch, window, batch_size):
    net, src = capture
    monkeypatch.setattr(pcap, "_REUSE_WINDOW", window)
    monkeypatch.setattr(pcap, "_REUSE_WINDOW_MAX", max(window, 4096))
    s = replay(net, src, tmp_path / "o.pcap", drops_path=tmp_path / "d.pcap", batch_size=batch_size)
    b, res = _oracle(net, src)
    keep = res.action != Action.DROP
    want_o, want_d = tmp_path / "want-o.pcap", tmp_path / "want-d.pcap"
    write_pcap(want_o, b.select(keep), nanosecond=True)
    original = read_pcap(src)
    write_pcap(want_d, original.select(~keep), nanosecond=True)
    assert (tmp_path / "o.pcap").read_bytes() == want_o.read_bytes()
    assert (tmp_path / "d.pcap").read_bytes() == want_d.read_bytes()
    assert s.frames == len(b) and s.by_action["DROP"] == int((~keep).sum())


def test_process_chunk_records_concatenate_to_the_serial_output(tmp_path, capture):
    net, src = capture
    replay(net, src, tmp_path / "serial.pcap")
    dp = net.compile()
    pmap = PortMap.for_network(net)
    whole = read_pcap(src)
    counts = VerdictCounts(max(t.port for t in net.targets))
    scratch = ChunkScratch()
    cuts = [0, 1, 2, 500, 1777, 2999, len(whole)]
    out = [pcap_header()]
    emitted = 0
    for a, b in zip(cuts, cuts[1:]):
        chunk = whole.select(np.arange(a, b))
        ch = process_chunk(dp, chunk, counts, port_map=pmap, scratch=scratch, first_frame=a)
        out.append(bytes(ch.emitted))
        emitted += ch.n_emitted
        assert ch.n_dropped == 0 and len(ch.dropped) == 0 and len(ch.result.action) == b - a
    assert b"".join(out) == (tmp_path / "serial.pcap").read_bytes()
    _, res = _oracle(net, src)
    assert counts.frames == len(whole) and emitted == int((res.action != Action.DROP).sum())
    for act in Action:
        assert int(counts.by_port[:, int(act)].sum()) == int((res.action == act).sum())


def test_process_chunk_counts_merge_like_one_run(capture):
    net, src = capture
    dp, pmap, whole = net.compile(), PortMap.for_network(net), read_pcap(src)
    top = max(t.port for t in net.targets)
    one, parts = VerdictCounts(top), [VerdictCounts(top), VerdictCounts(top)]
    process_chunk(dp, whole.copy(), one, port_map=pmap, emit=False)
    process_chunk(dp, whole.select(np.arange(0, 1000)), parts[0], port_map=pmap, emit=False)
    process_chunk(dp, whole.select(np.arange(1000, len(whole))), parts[1], port_map=pmap, emit=False)
    parts[0].add(parts[1])
    assert np.array_equal(parts[0].by_port, one.by_port) and np.array_equal(parts[0].by_reason, one.by_reason)
    with pytest.raises(FastVpcError, match="ports"):
        one.add(VerdictCounts(top + 3))


def test_process_chunk_needs_one_way_to_map_ports(capture):
    net, src = capture
    dp, whole = net.compile(), read_pcap(src)
    c = VerdictCounts(max(t.port for t in net.targets))
    with pytest.raises(FastVpcError, match="exactly one"):
        process_chunk(dp, whole, c)
    with pytest.raises(FastVpcError, match="exactly one"):
        process_chunk(dp, whole, c, port_map=PortMap.for_network(net), ingress_port=3)


def test_a_timestamp_past_2106_is_a_pcap_error_and_leaves_no_output(tmp_path):
    net = seed_vpc()
    web1, app1, web = net.find("web1"), net.find("app1"), net.find("web")
    fr = pk.ethernet(web.gateway_mac, web1.mac, pk.ETH_IPV4, pk.icmp_echo(web1.ip, app1.ip))
    batch = FrameBatch.from_frames([fr, fr, fr], port=-1, timestamp=[1, 2, 2**32 * 10**9])
    dp = net.compile()
    with pytest.raises(PcapError, match=f"frame 12 cannot be written: timestamp {2**32 * 10**9}"):
        process_chunk(dp, batch, VerdictCounts(max(t.port for t in net.targets)),
                      port_map=PortMap.for_network(net), first_frame=10)


def test_several_threads_read_bigger_windows_and_write_the_same_bytes(tmp_path, capture):
    net, src = capture
    replay(net, src, tmp_path / "one.pcap", drops_path=tmp_path / "d1.pcap", n_threads=1)
    replay(net, src, tmp_path / "two.pcap", drops_path=tmp_path / "d2.pcap", n_threads=2)
    assert (tmp_path / "one.pcap").read_bytes() == (tmp_path / "two.pcap").read_bytes()
    assert (tmp_path / "d1.pcap").read_bytes() == (tmp_path / "d2.pcap").read_bytes()


@pytest.mark.parametrize("window", [0, 63, True, 1.5, "1"])
def test_iter_pcap_refuses_a_bad_window(capture, window):
    _, src = capture
    with pytest.raises(ValueError, match="window"):
        next(pcap.iter_pcap(src, reuse=True, window=window))
