"""FrameBatch: construction without copies, validation, accessors, select/concat, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastvpc._batchops import check_offsets, gather_spans
from fastvpc.batch import FrameBatch
from fastvpc.errors import FastVpcError, FrameBatchError

FRAMES = [b"\x01" * 14, b"", b"abcdefghijklmnopqrstuvwxyz", b"\xff" * 60]


def make(frames=FRAMES, port=None, ts=None, base=0, tail=0):
    """A batch built by hand, with ``base`` junk bytes before the frames and ``tail`` after."""
    data = np.frombuffer(b"J" * base + b"".join(frames) + b"T" * tail, np.uint8).copy()
    offsets = np.array([base] + list(np.cumsum([len(f) for f in frames]) + base), np.int64)
    port = np.arange(len(frames), dtype=np.int32) if port is None else port
    return FrameBatch(data, offsets, port, ts)


# ----------------------------------------------------------------------------- construction

def test_constructor_wraps_without_copy():
    data = np.arange(100, dtype=np.uint8)
    offsets = np.array([0, 10, 10, 64], np.int64)
    port = np.array([1, 2, 3], np.int32)
    ts = np.array([5, 6, 7], np.int64)
    b = FrameBatch(data, offsets, port, ts)
    assert np.shares_memory(b.data, data)
    assert np.shares_memory(b.offsets, offsets)
    assert np.shares_memory(b.port, port)
    assert np.shares_memory(b.timestamp, ts)
    assert b.writeable
    data[0] = 99  # the batch sees the caller's buffer
    assert b.frame(0)[0] == 99
    assert len(b) == 3 and b.frame(1) == b"" and b.frame(2) == bytes(range(10, 64))


def test_bytes_data_is_wrapped_read_only():
    raw = b"0123456789"
    b = FrameBatch(raw, [2, 5, 10], [7, 8])
    assert not b.writeable
    assert not b.data.flags.writeable
    assert np.shares_memory(b.data, np.frombuffer(raw, np.uint8))
    assert list(b) == [b"234", b"56789"]
    assert "read-only" in repr(b)
    # a writeable bytearray is wrapped writeable
    ba = bytearray(raw)
    b2 = FrameBatch(ba, [0, 10], [0])
    assert b2.writeable
    ba[0] = ord("X")
    assert b2.frame(0).startswith(b"X")


def test_lossless_conversions_copy():
    data = list(range(10))  # a list of byte values: copied into a new buffer
    offsets = np.array([0, 4, 10], np.int32)
    port = [3, -1]
    ts = np.array([1, 2], np.uint32)
    b = FrameBatch(data, offsets, port, ts)
    assert b.data.dtype == np.uint8 and b.offsets.dtype == np.int64
    assert b.port.dtype == np.int32 and b.timestamp.dtype == np.int64
    assert not np.shares_memory(b.data, data)
    assert b.frame(1) == bytes(range(4, 10))
    assert b.port.tolist() == [3, -1]


def test_data_arrays_that_would_need_a_converting_copy_are_refused():
    """Frames are rewritten in place in ``data``: a silent copy would leave the caller's array untouched."""
    big = np.arange(40, dtype=np.uint8)
    with pytest.raises(FrameBatchError, match="C-contiguous"):
        FrameBatch(big[::2], np.array([0, 3, 20]), np.zeros(2, np.int32))
    with pytest.raises(FrameBatchError, match="int64"):
        FrameBatch(np.arange(10, dtype=np.int64), [0, 10], [0])
    signed = np.array([1, 2, 255 - 256], np.int8)  # int8 bytes are taken as they are, without a copy
    b = FrameBatch(signed, [0, 3], [0])
    assert np.shares_memory(b.data, signed) and b.frame(0) == bytes([1, 2, 255])


@pytest.mark.parametrize(
    "data, offsets, port, ts, match",
    [
        ([300, 1], [0, 2], [0], None, r"data\[0\] = 300"),
        ([-1, 1], [0, 2], [0], None, r"data\[0\] = -1"),
        (np.zeros(4, np.float32), [0, 4], [0], None, "float32"),
        ([0.5, 1.5], [0, 2], [0], None, "integers"),
        (np.zeros((2, 2), np.uint8), [0, 4], [0], None, "1-D"),
        (np.zeros(4, np.uint8), [], [], None, "n\\+1"),
        (np.zeros(4, np.uint8), [-1, 4], [0], None, r"offsets\[0\] = -1"),
        (np.zeros(4, np.uint8), [0, 3, 2, 4], [0, 0, 0], None, r"offsets\[2\] = 2 is smaller than offsets\[1\] = 3"),
        (np.zeros(4, np.uint8), [0, 2, 5], [0, 0], None, r"offsets\[2\] = 5 is past the end of data \(len 4\)"),
        (np.zeros(4, np.uint8), [0, 2, 4], [0], None, "port has 1 entries"),
        (np.zeros(4, np.uint8), [0, 2, 4], [0, 2**31], None, r"port\[1\] = 2147483648"),
        (np.zeros(4, np.uint8), [0, 2, 4], [0, 0], [1], "timestamp has 1 entries"),
        (np.zeros(4, np.uint8), np.array([0, 2**64 - 1], np.uint64), [0], None, r"offsets\[1\] = 18446744073709551615"),
        (np.zeros(4, np.uint8), [0, 4], [0], np.array([1.5]), "integers"),
    ],
)
def test_constructor_rejects(data, offsets, port, ts, match):
    with pytest.raises(FrameBatchError, match=match) as ei:
        FrameBatch(data, offsets, port, ts)
    assert isinstance(ei.value, FastVpcError) and isinstance(ei.value, ValueError)


def test_empty_batch():
    b = FrameBatch(np.zeros(0, np.uint8), np.zeros(1, np.int64), np.zeros(0, np.int32))
    assert len(b) == 0 and list(b) == [] and b.lengths.tolist() == []
    assert b == FrameBatch.empty() == FrameBatch.from_frames([], port=1)
    assert len(b.select(np.zeros(0, bool))) == 0
    assert len(b.select([])) == 0


# ----------------------------------------------------------------------------- from_frames

def test_from_frames_mixed_inputs_and_ports():
    frames = [b"abc", bytearray(b"de"), memoryview(b"xyzw")[1:], np.array([1, 2], np.uint16)]
    b = FrameBatch.from_frames(frames, port=[1, 2, 3, 4], timestamp=[10, 20, 30, 40])
    assert list(b) == [b"abc", b"de", b"yzw", b"\x01\x00\x02\x00"]
    assert b.lengths.tolist() == [3, 2, 3, 4]
    assert b.port.tolist() == [1, 2, 3, 4]
    assert b.timestamp.tolist() == [10, 20, 30, 40]
    assert b.writeable
    b2 = FrameBatch.from_frames(iter([b"a", b"b"]), port=7)
    assert b2.port.tolist() == [7, 7] and b2.timestamp is None


def test_from_frames_copies():
    src = bytearray(b"hello")
    b = FrameBatch.from_frames([src], port=0)
    src[0] = ord("J")
    assert b.frame(0) == b"hello"


@pytest.mark.parametrize(
    "frames, port, match",
    [
        ([b"a", "b"], 0, r"frames\[1\] is a str"),
        ([b"a", 5], 0, r"frames\[1\] is a int"),
        ([b"a", b"b"], [1], "port has 1 entries for 2 frames"),
        ([b"a"], 2**31, "port 2147483648 does not fit int32"),
        ([b"a"], [-(2**31) - 1], r"port\[0\] = -2147483649"),
    ],
)
def test_from_frames_rejects(frames, port, match):
    with pytest.raises(FrameBatchError, match=match):
        FrameBatch.from_frames(frames, port=port)


# ----------------------------------------------------------------------------- accessors

def test_accessors_with_offset_base():
    b = make(base=5, tail=3, ts=np.array([1, 2, 3, 4]))
    assert len(b) == 4
    assert [b.frame(i) for i in range(4)] == FRAMES
    assert list(b) == FRAMES
    assert b.lengths.tolist() == [len(f) for f in FRAMES]
    assert b.lengths.dtype == np.int64
    assert b.nbytes == sum(map(len, FRAMES))
    assert b.frame(np.int64(2)) == FRAMES[2]


@pytest.mark.parametrize("i", [-1, 4, 10**12])
def test_frame_index_out_of_range(i):
    b = make()
    with pytest.raises(IndexError, match=f"frame index {i} out of range for a batch of 4 frames"):
        b.frame(i)


def test_frame_index_type():
    with pytest.raises(TypeError):
        make().frame(1.0)  # type: ignore[arg-type]


def test_copy_is_deep():
    b = make(ts=np.array([1, 2, 3, 4]))
    c = b.copy()
    assert c == b
    for a1, a2 in [(b.data, c.data), (b.offsets, c.offsets), (b.port, c.port), (b.timestamp, c.timestamp)]:
        assert not np.shares_memory(a1, a2)
    c.data[0] ^= 0xFF
    c.port[0] = 99
    assert b.frame(0) == FRAMES[0] and b.port[0] == 0
    assert c != b
    ro = FrameBatch(b"abc", [0, 3], [1])
    assert ro.copy().writeable


# ----------------------------------------------------------------------------- select

def test_select_mask_and_indices():
    b = make(base=3, ts=np.array([10, 11, 12, 13]))
    m = b.select(np.array([True, False, True, True]))
    assert list(m) == [FRAMES[0], FRAMES[2], FRAMES[3]]
    assert m.port.tolist() == [0, 2, 3] and m.timestamp.tolist() == [10, 12, 13]
    s = b.select([3, 3, 0, 1])
    assert list(s) == [FRAMES[3], FRAMES[3], FRAMES[0], FRAMES[1]]
    assert s.port.tolist() == [3, 3, 0, 1]
    assert s.offsets[0] == 0 and s.data.size == s.nbytes  # compact
    assert not np.shares_memory(s.data, b.data)
    assert b.select(np.array([2], np.uint8)).frame(0) == FRAMES[2]
    assert make().select([1]).timestamp is None


@pytest.mark.parametrize(
    "which, exc, match",
    [
        ([0, 4], IndexError, r"select index 4 \(position 1\) out of range for a batch of 4 frames"),
        ([-1], IndexError, r"select index -1"),
        (np.array([True, False]), FrameBatchError, "mask has 2 entries"),
        (np.array([0.5]), FrameBatchError, "dtype float64"),
        (np.zeros((2, 2), np.int64), FrameBatchError, "1-D"),
    ],
)
def test_select_rejects(which, exc, match):
    with pytest.raises(exc, match=match):
        make().select(which)


@settings(max_examples=60, deadline=None)
@given(
    frames=st.lists(st.binary(max_size=40), max_size=30),
    data=st.data(),
)
def test_select_matches_python(frames, data):
    b = FrameBatch.from_frames(frames, port=list(range(len(frames))), timestamp=list(range(100, 100 + len(frames))))
    if frames:
        idx = data.draw(st.lists(st.integers(0, len(frames) - 1), max_size=50))
    else:
        idx = []
    s = b.select(np.array(idx, np.int64))
    assert list(s) == [frames[i] for i in idx]
    assert s.port.tolist() == idx
    assert s.timestamp.tolist() == [100 + i for i in idx]
    mask = data.draw(st.lists(st.booleans(), min_size=len(frames), max_size=len(frames)))
    m = b.select(np.array(mask, bool))
    assert list(m) == [f for f, k in zip(frames, mask) if k]


def test_select_large_vectorised():
    rng = np.random.default_rng(1)
    n = 200_000
    lengths = rng.integers(0, 100, n)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = rng.integers(0, 256, int(offsets[-1]), dtype=np.uint8)
    b = FrameBatch(data, offsets, rng.integers(-1, 50, n).astype(np.int32))
    idx = rng.integers(0, n, n // 2)
    s = b.select(idx)
    # oracle: a numpy repeat/arange byte gather
    starts = offsets[idx]
    ln = lengths[idx]
    pos = np.repeat(starts - np.concatenate([[0], np.cumsum(ln)[:-1]]), ln) + np.arange(ln.sum())
    assert np.array_equal(s.data, data[pos])
    assert np.array_equal(s.lengths, ln)
    assert np.array_equal(s.port, b.port[idx])


# ----------------------------------------------------------------------------- concat / eq / repr / pickle

def test_concat():
    a = make(base=2, ts=np.array([1, 2, 3, 4]))
    b = FrameBatch.from_frames([b"zz", b"y"], port=9)
    c = FrameBatch.concat([a, b, FrameBatch.empty()])
    assert list(c) == FRAMES + [b"zz", b"y"]
    assert c.port.tolist() == [0, 1, 2, 3, 9, 9]
    assert c.timestamp.tolist() == [1, 2, 3, 4, -1, -1]
    assert FrameBatch.concat([b, b]).timestamp is None
    assert FrameBatch.concat([]) == FrameBatch.empty()
    with pytest.raises(FrameBatchError, match="item 1 is a bytes"):
        FrameBatch.concat([a, b"x"])  # type: ignore[list-item]


def test_eq_compares_contents_not_layout():
    a = make(base=0)
    b = make(base=7, tail=9)
    assert a == b
    assert a != make(port=np.array([0, 1, 2, 4], np.int32))
    assert a != make(frames=[FRAMES[0], FRAMES[1], FRAMES[2][:-1] + b"!", FRAMES[3]])
    # same bytes split differently
    assert a != make(frames=[FRAMES[0] + b"a", b"", FRAMES[2][1:], FRAMES[3]])
    assert a != make(ts=np.arange(4))
    assert make(ts=np.arange(4)) != make(ts=np.arange(1, 5))
    assert a != make(frames=FRAMES[:3], port=np.arange(3, dtype=np.int32))
    assert (a == "x") is False
    with pytest.raises(TypeError):
        hash(a)


def test_repr():
    r = repr(make(ts=np.arange(4)))
    assert "n=4" in r and "bytes=100" in r and "timestamp=yes" in r and "ports={0, 1, 2, 3}" in r


def test_pickle_round_trip():
    for b in [make(base=3, tail=2, ts=np.arange(4)), FrameBatch(b"abc", [0, 1, 3], [1, 2]), FrameBatch.empty()]:
        c = pickle.loads(pickle.dumps(b))
        assert c == b and isinstance(c, FrameBatch)


# ----------------------------------------------------------------------------- the kernels directly

def test_check_offsets_kernel():
    assert check_offsets(np.array([0, 1, 1, 5], np.int64), 5) == -1
    assert check_offsets(np.array([0, 1, 1, 5], np.int64), 4) == 3
    assert check_offsets(np.array([2, 1], np.int64), 5) == 1
    assert check_offsets(np.array([-2], np.int64), 5) == 0
    assert check_offsets(np.zeros(0, np.int64), 5) == -2


def test_gather_kernel_refuses_out_of_bounds():
    src = np.arange(10, dtype=np.uint8)
    dst = np.zeros(6, np.uint8)
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    assert gather_spans(src, i64(8, 0), i64(2, 3), dst, i64(0, 2)) == -1
    assert dst[:5].tolist() == [8, 9, 0, 1, 2]
    assert gather_spans(src, i64(0, 9), i64(1, 2), dst, i64(0, 1)) == 1       # past src
    assert gather_spans(src, i64(0, 0), i64(1, 2), dst, i64(0, 5)) == 1       # past dst
    assert gather_spans(src, i64(-1), i64(1), dst, i64(0)) == 0
    assert gather_spans(src, i64(0), i64(-1), dst, i64(0)) == 0
    assert gather_spans(src, i64(0, 1), i64(1), dst, i64(0, 1)) == -2
