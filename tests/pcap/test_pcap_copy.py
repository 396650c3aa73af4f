"""The one short-frame copy (``_kernels/bytes.pxd`` ``fv_copy``) the pcap compaction and the replay
records share: memmove semantics for every length and every overlap, both ways.

Oracles: numpy's own copy of the same bytes (``copy_within``); ``pack_pcap`` (libc ``memcpy``) for
the records ``emit_records`` writes; the frames as written for what ``compact_pcap`` leaves."""

from __future__ import annotations

import numpy as np
import pytest

from fastvpc import _pcapindex as k
from fastvpc.batch import FrameBatch
from fastvpc.drivers import _replayops as ro

# every size class of the copy: tails of 1/2/4/8 bytes, 16- and 32-byte halves, the 32-byte loop, memmove
LENGTHS = [*range(0, 140), 191, 192, 193, 255, 256, 257, 480, 511, 512, 513, 700, 4096]


@pytest.mark.parametrize("n", LENGTHS)
def test_copy_within_is_memmove_for_every_overlap(n):
    rng = np.random.default_rng(n)
    size = 2 * n + 80
    for src, dst in [(40, 0), (40, 39), (40, 41), (40, 40), (0, 40 + n), (40 + n, 0), (40, 8), (8, 40),
                     (40, 40 - min(n, 40) // 2), (40, 40 + max(1, n // 2)), (40, 40 + n - 1 if n else 40)]:
        if dst + n > size or src + n > size:
            continue
        buf = rng.integers(0, 256, size, dtype=np.uint8)
        want = buf.copy()
        want[dst:dst + n] = buf[src:src + n].copy()
        k.copy_within(buf, dst, src, n)
        assert np.array_equal(buf, want), (n, src, dst)


def test_copy_within_refuses_ranges_outside_the_buffer():
    buf = np.zeros(10, np.uint8)
    for dst, src, n in [(0, 0, 11), (5, 0, 6), (0, 5, 6), (-1, 0, 1), (0, -1, 1), (0, 0, -1)]:
        with pytest.raises(ValueError, match="do not fit"):
            k.copy_within(buf, dst, src, n)


def _records(frames, ts):
    out = bytearray()
    for f, t in zip(frames, ts):
        out += int(t // 10**9).to_bytes(4, "little") + int(t % 10**9).to_bytes(4, "little")
        out += len(f).to_bytes(4, "little") * 2 + f
    return bytes(out)


def test_compaction_and_records_keep_every_frame_length_whole():
    rng = np.random.default_rng(7)
    lens = [ln for ln in LENGTHS if ln] * 3
    rng.shuffle(lens)
    frames = [bytes(rng.integers(0, 256, ln, dtype=np.uint8)) for ln in lens]
    ts = 1_700_000_000 * 10**9 + np.arange(len(frames), dtype=np.int64) * 999_999_937
    raw = np.frombuffer(_records(frames, ts), np.uint8).copy()
    # compact in place: each frame moves down over the headers before it (overlapping for long frames)
    offsets = np.zeros(len(frames) + 1, np.int64)
    out_ts = np.empty(len(frames), np.int64)
    st = np.zeros(k.N_STATE, np.int64)
    assert k.compact_pcap(raw, raw.size, offsets, out_ts, st, False, True, 0) == len(frames)
    assert st[k.S_ERR] == k.ERR_NONE and np.array_equal(out_ts, ts)
    assert [bytes(raw[offsets[i]:offsets[i + 1]]) for i in range(len(frames))] == frames
    # records of the compacted batch: byte for byte what pack_pcap (libc memcpy) writes
    batch = FrameBatch.from_frames(frames, port=-1, timestamp=ts)
    n, total = len(batch), int(batch.offsets[-1]) + 16 * len(batch)
    want = np.empty(total, np.uint8)
    assert k.pack_pcap(batch.data, batch.offsets, ts, want, False, True, 262144) == -1
    action = np.ones(n, np.uint8)          # every frame emitted (DELIVER)
    info = np.zeros(ro.N_INFO, np.int64)
    emit, drop = np.full(total, 0xAA, np.uint8), np.zeros(0, np.uint8)
    by_port, by_reason = np.zeros((2, 4), np.int64), np.zeros(32, np.int64)
    r = ro.emit_records(raw[:offsets[-1]], offsets, out_ts, np.full(n, -1, np.int32), action,
                        np.zeros(n, np.uint8), by_port, by_reason, emit, True, drop, False, 262144, info)
    assert r == -1 and info[ro.I_EMIT_BYTES] == total and info[ro.I_EMIT_FRAMES] == n
    assert emit.tobytes() == want.tobytes()
    assert by_port[0, 1] == n
