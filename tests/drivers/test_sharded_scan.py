"""The pieces the sharded replay is built of, without Dask: the public pcap scan/resume API
(``check_pcap``, ``scan_pcap``, ``iter_pcap_chunk``) reads every chunk exactly as ``iter_pcap`` reads
the capture; the compiled shard pass (``_shardops``) is the numpy reference ``shard_of_frames``."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest

from fastvpc.batch import FrameBatch
from fastvpc.drivers import sharded as sh
from fastvpc.drivers._shardops import select_shard, shard_frames
from fastvpc.errors import PcapError
from fastvpc.examples import seed_vpc
from fastvpc.pcap import PcapChunk, check_pcap, iter_pcap, iter_pcap_chunk, read_pcap, scan_pcap, write_pcap

import drivers.sharded_frames as sf
from drivers.sharded_frames import ctx as _ctx
from drivers.sharded_frames import frames as _frames
from drivers.sharded_frames import write as _write


@pytest.fixture(scope="module")
def frames():
    return _frames(3000, seed=11)


@pytest.fixture(scope="module")
def capture(tmp_path_factory, frames):
    path = tmp_path_factory.mktemp("scan") / "in.pcap"
    _write(path, frames)
    return path


def _same(a: FrameBatch, b: FrameBatch) -> None:
    assert len(a) == len(b)
    assert np.array_equal(a.offsets - a.offsets[0], b.offsets - b.offsets[0])
    assert bytes(a.data[a.offsets[0]:a.offsets[-1]]) == bytes(b.data[b.offsets[0]:b.offsets[-1]])
    assert np.array_equal(a.timestamp, b.timestamp)


@pytest.mark.parametrize("reuse", [False, True])
@pytest.mark.parametrize("chunk_frames", [1, 7, 1000, 2999, 3000, 5000])
def test_chunks_read_back_are_the_capture(capture, chunk_frames, reuse):
    whole = read_pcap(capture)
    sc = scan_pcap(capture, chunk_frames)
    assert sc.frames == len(whole) == 3000 and sc.warnings == []
    assert sc.nbytes == int(whole.offsets[-1])
    assert [c.index for c in sc.chunks] == list(range(len(sc.chunks)))
    assert all(c.frames == chunk_frames for c in sc.chunks[:-1]) and 0 < sc.chunks[-1].frames <= chunk_frames
    got = []
    for c in sc.chunks:
        c = pickle.loads(pickle.dumps(c))   # as a worker gets it
        parts = [b.copy() if reuse else b for b in iter_pcap_chunk(capture, c, batch_size=256, reuse=reuse)]
        assert all(len(b) <= 256 for b in parts)
        assert sum(len(b) for b in parts) == c.frames
        assert sum(int(b.offsets[-1] - b.offsets[0]) for b in parts) == c.nbytes
        got.extend(parts)
    _same(FrameBatch.concat(got), whole)


def test_pcapng_and_big_endian_microsecond_chunks(tmp_path, frames):
    from fastvpc.drivers.pcapout import open_capture

    batch = FrameBatch.from_frames(frames[:500], port=-1,
                                   timestamp=1_700_000_000 * 10**9 + np.arange(500, dtype=np.int64) * 1000)
    be = tmp_path / "be.pcap"
    write_pcap(str(be), batch, byteorder="big")
    ng = tmp_path / "x.pcapng"
    w = open_capture(str(ng), lambda p: f"p{p}", str)
    w.write(batch, np.ones(500, bool), 500, np.arange(500, dtype=np.int32) % 3, np.zeros(500, np.int64))
    w.commit()
    for path in (be, ng):
        whole = read_pcap(path)
        sc = scan_pcap(path, 64)
        assert sc.frames == 500
        for reuse in (False, True):
            got = [b.copy() for c in sc.chunks for b in iter_pcap_chunk(path, c, 50, reuse=reuse)]
            _same(FrameBatch.concat(got), whole)


def test_damage_raises_or_ends_the_chunks_where_it_starts(tmp_path, capture):
    data = capture.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:len(data) - 30])
    with pytest.raises(PcapError, match="truncated record at byte offset") as e:
        scan_pcap(cut, 1000)
    sc = scan_pcap(cut, 1000, on_error="stop")
    assert sc.frames == 2999 and len(sc.warnings) == 1 and str(e.value.offset) in sc.warnings[0]
    serial = []
    with pytest.warns(Warning, match="stopped there"):
        serial = list(iter_pcap(cut, on_error="stop"))
    assert sc.warnings[0].startswith(str(e.value.args[0]))
    _same(FrameBatch.concat([b for c in sc.chunks for b in iter_pcap_chunk(cut, c)]), FrameBatch.concat(serial))


def test_a_changed_capture_is_refused_by_chunk(tmp_path, capture):
    path = tmp_path / "c.pcap"
    data = capture.read_bytes()
    path.write_bytes(data)
    sc = scan_pcap(path, 1000)
    path.write_bytes(data[:len(data) // 2])
    for reuse in (False, True):
        with pytest.raises(PcapError, match="chunk 2 at byte offset"):
            for _ in iter_pcap_chunk(path, sc.chunks[2], reuse=reuse):
                pass


def test_check_pcap_reads_the_header_only(tmp_path, capture):
    check_pcap(capture)
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(PcapError, match="bad magic"):
        check_pcap(bad)
    check_pcap(bad, on_error="stop")      # left to scan_pcap's warning, as iter_pcap does
    sll = tmp_path / "sll.pcap"
    sll.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 113))
    for on_error in ("raise", "stop"):
        with pytest.raises(PcapError, match="LINKTYPE_LINUX_SLL"):
            check_pcap(sll, on_error=on_error)


def test_bad_arguments(capture):
    with pytest.raises(ValueError, match="chunk_frames"):
        scan_pcap(capture, 0)
    with pytest.raises(ValueError, match="on_error"):
        scan_pcap(capture, 10, on_error="skip")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="PcapChunk"):
        list(iter_pcap_chunk(capture, 3))  # type: ignore[arg-type]
    c = scan_pcap(capture, 10).chunks[0]
    assert isinstance(c, PcapChunk)
    with pytest.raises(ValueError, match="batch_size"):
        list(iter_pcap_chunk(capture, c, 0))


# --------------------------------------------------------------------------- the compiled shard pass

@pytest.mark.parametrize("n_shards", [1, 2, 3, 7, 64])
def test_compiled_shards_are_the_reference(frames, n_shards):
    net = seed_vpc()
    ctx = _ctx(net, n_shards)
    b = FrameBatch.from_frames(frames, port=-1, timestamp=np.arange(len(frames), dtype=np.int64))
    ports = ctx.ports_for(b)
    for first in (0, 5, 1001):
        want = sh.shard_of_frames(b, ports, ctx, first)
        got = np.zeros(len(b), np.uint16)
        assert shard_frames(b.data, b.offsets, ports, ctx.is_eni.view(np.uint8), ctx.inside_lo, ctx.inside_hi,
                            n_shards, first, got) == -1
        assert np.array_equal(got, want)
        if n_shards > 1:
            assert len(set(want.tolist())) == n_shards     # every shard gets frames
        kept_total = 0
        for k in range(n_shards):
            c = b.copy()
            n = len(c)
            oo, op, ot, opos = (np.zeros(n + 1, np.int64), np.zeros(n, np.int32), np.zeros(n, np.int64),
                                np.zeros(n, np.int64))
            m = select_shard(c.data, c.offsets, ports, c.timestamp, ctx.is_eni.view(np.uint8), ctx.inside_lo,
                             ctx.inside_hi, n_shards, k, first, oo, op, ot, opos)
            mine = np.flatnonzero(want == k)
            assert m == mine.size
            assert np.array_equal(opos[:m], mine + first)
            assert np.array_equal(op[:m], ports[mine]) and np.array_equal(ot[:m], b.timestamp[mine])
            _same(FrameBatch(c.data, oo[:m + 1], op[:m], ot[:m]), b.select(mine))
            kept_total += m
        assert kept_total == len(b)


def test_compiled_shard_pass_refuses_bad_arguments(frames):
    net = seed_vpc()
    ctx = _ctx(net, 2)
    b = FrameBatch.from_frames(frames[:10], port=-1)
    e = ctx.is_eni.view(np.uint8)
    with pytest.raises(ValueError, match="n_shards"):
        shard_frames(b.data, b.offsets, b.port, e, ctx.inside_lo, ctx.inside_hi, 0, 0, np.zeros(10, np.uint16))
    with pytest.raises(ValueError, match="room for 3"):
        shard_frames(b.data, b.offsets, b.port, e, ctx.inside_lo, ctx.inside_hi, 2, 0, np.zeros(3, np.uint16))
    bad = b.offsets.copy()
    bad[4] = 10**9
    assert shard_frames(b.data, bad, b.port, e, ctx.inside_lo, ctx.inside_hi, 2, 0, np.zeros(10, np.uint16)) == 3
    z = np.zeros(11, np.int64)
    with pytest.raises(ValueError, match="shard 2 of 2"):
        select_shard(b.data, b.offsets, b.port, np.zeros(0, np.int64), e, ctx.inside_lo, ctx.inside_hi, 2, 2, 0,
                     z, np.zeros(10, np.int32), z, z)
    with pytest.raises(ValueError, match="too short"):
        select_shard(b.data, b.offsets, b.port, np.zeros(0, np.int64), e, ctx.inside_lo, ctx.inside_hi, 2, 0, 0,
                     z[:5], np.zeros(10, np.int32), z, z)


def test_merge_records_puts_every_shards_records_in_capture_order(frames):
    from fastvpc.drivers._replayops import pack_selected
    from fastvpc.drivers._shardops import merge_records

    n = 500
    b = FrameBatch.from_frames(frames[:n], port=-1, timestamp=np.arange(n, dtype=np.int64) * 7)
    from fastvpc.verdicts import Action

    keep = np.full(n, int(Action.DELIVER), np.uint8)
    whole = np.empty(16 * n + int(b.offsets[-1]), np.uint8)
    r, w = pack_selected(b.data, b.offsets, b.timestamp, keep, False, whole, 262144)
    assert r == -1 and w == whole.size
    shard = np.random.default_rng(5).integers(0, 3, n)
    srcs, pos = [], []
    for k in range(3):
        mine = np.flatnonzero(shard == k)
        part = b.select(mine)
        buf = np.empty(16 * mine.size + int(part.offsets[-1]), np.uint8)
        _r, nb = pack_selected(part.data, part.offsets, part.timestamp, keep[:mine.size], False, buf,
                               262144)
        srcs.append(buf[:nb])
        pos.append(mine.astype(np.int32))
    starts = np.concatenate([[0], np.cumsum([p.size for p in pos])]).astype(np.int64)
    out = np.zeros(w, np.uint8)
    assert merge_records(srcs, np.concatenate(pos), starts, out) == w
    assert bytes(out) == bytes(whole[:w])
    with pytest.raises(ValueError, match="room for"):
        merge_records(srcs, np.concatenate(pos), starts, np.zeros(w - 1, np.uint8))
    with pytest.raises(ValueError, match="do not increase"):
        merge_records(srcs, np.concatenate([pos[0][::-1], pos[1], pos[2]]), starts, out)
    with pytest.raises(ValueError, match="overrun|beyond"):
        merge_records([srcs[0][:-1], srcs[1], srcs[2]], np.concatenate(pos), starts, out)


def test_nat_keys_send_a_private_nat_flow_and_its_replies_to_one_shard():
    """Through a NAT gateway between inside addresses the far side is the key, as for the outside: the flow from
    b (routed to the NAT gateway) and the replies to the NAT gateway's address meet; the compiled pass is the
    numpy one."""
    from fastvpc import packets as pk

    net, a, b, c, nat = sf.private_nat_net()
    srcs = [b.add_eni(f"10.0.1.{10 + i}") for i in range(30)]
    far = c.add_eni("10.0.2.10")
    other = a.add_eni("10.0.0.50")
    rng = np.random.default_rng(1)
    items = []
    for e in srcs:
        sp, np_ = (int(x) for x in rng.integers(1024, 65535, 2))
        items.append((pk.ethernet(b.gateway_mac, e.mac, pk.ETH_IPV4, pk.udp(e.ip, far.ip, sp, 53)), e.port))
        items.append((pk.ethernet(c.gateway_mac, far.mac, pk.ETH_IPV4, pk.udp(far.ip, nat.ip, 53, np_)), far.port))
        items.append((pk.ethernet(a.gateway_mac, other.mac, pk.ETH_IPV4, pk.udp(other.ip, far.ip, sp, 53)),
                      other.port))
    ctx = _ctx(net, 7)
    ctx.nat_keys = sh.nat_keys(net, ctx.is_eni.size)
    assert ctx.nat_keys.size > 0
    bt = FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items])
    ports = bt.port.copy()
    want = sh.shard_of_frames(bt, ports, ctx)
    got = np.zeros(len(bt), np.uint16)
    assert shard_frames(bt.data, bt.offsets, ports, ctx.is_eni.view(np.uint8), ctx.inside_lo, ctx.inside_hi, 7, 0,
                        got, ctx.nat_keys) == -1
    assert np.array_equal(got, want)
    fwd, back, plain = want[0::3], want[1::3], want[2::3]
    assert len(set(fwd.tolist()) | set(back.tolist())) == 1       # one far host: one shard for all of it
    assert len(set(plain.tolist())) > 1                              # a's own flows (no NAT): by 5-tuple


def test_nat_keys_words_that_do_not_fit_are_refused(frames):
    ctx = _ctx(seed_vpc(), 2)
    b = FrameBatch.from_frames(frames[:10], port=-1)
    e = ctx.is_eni.view(np.uint8)
    for words, what in (([5, 1], "too few for 5 NAT addresses"), ([0, 9, 0], "too few for 9 rows"),
                        ([0, 1, 0, 2, 1, 2], "do not span"), ([0, 2, 0, 3, 2, 1, 2, 3, 4], "decrease")):
        with pytest.raises(ValueError, match=what):
            shard_frames(b.data, b.offsets, b.port, e, ctx.inside_lo, ctx.inside_hi, 2, 0, np.zeros(10, np.uint16),
                         np.array(words, np.uint32))
