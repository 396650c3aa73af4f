"""Pickling a FlowTable: round trips keep every flow and the clock; a tampered pickle is refused with a
FlowTableError naming the field (never read out of bounds, never a hang); random byte flips are
refused or load equal, never crash (checked in a subprocess with a timeout)."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastvpc.dataplane import state as S
from fastvpc.dataplane.state import ENTRY_DTYPE, FlowTable, FlowTableError, TrackCode

A, B = 0x0A000001, 0x0A000002
SEC = 1_000_000_000


def _sample(capacity: int = 64) -> FlowTable:
    ft = FlowTable(capacity)
    ft.track(1, 6, A, B, np.arange(10) + 1000, 80, 0x02, 60, SEC, 1)              # SYN_SENT
    ft.track(1, 6, B, A, 80, np.arange(5) + 1000, 0x12, 60, 2 * SEC, 0)           # 5 SYN_RECV
    ft.track(2, 17, A, B, 53, 5353, 0, 80, 3 * SEC, 1, zone=2)
    ft.track(2, 1, B, A, 9, 0, 8, 84, 4 * SEC, 1)
    ft.track(3, 47, B, A, 0, 0, 0, 100, 5 * SEC, 1)
    return ft


def _same(a: FlowTable, b: FlowTable) -> None:
    assert (a.capacity, len(a), a.clock, a.reclaimed) == (b.capacity, len(b), b.clock, b.reclaimed)
    assert a.flows().tobytes() == b.flows().tobytes()


def test_round_trip_and_same_behaviour_after():
    ft = _sample()
    back = pickle.loads(pickle.dumps(ft))
    _same(ft, back)
    for t in (ft, back):
        r = t.track(1, 6, [B, A, B], [A, B, A], [80, 1007, 80], [1007, 80, 1009], [0x12, 0x10, 0x12], 60,
                    [6 * SEC, 7 * SEC, 8 * SEC], [0, 0, 0])
        assert r.code.tolist() == [TrackCode.HIT, TrackCode.HIT, TrackCode.HIT]
    _same(ft, back)
    with pytest.raises(ValueError, match="backwards"):
        back.expire(SEC)


def test_empty_and_fresh_round_trip():
    for ft in (FlowTable(3), _sample(20)):
        ft.expire(10**12)
        back = pickle.loads(pickle.dumps(ft))
        _same(ft, back)
    fresh = pickle.loads(pickle.dumps(FlowTable(5)))
    assert fresh.clock is None and len(fresh) == 0


def _args(ft: FlowTable) -> list:
    fn, args = ft.__reduce__()
    assert fn is S._restore
    return list(args)


def _rows(args: list) -> np.ndarray:
    return np.frombuffer(args[4], dtype=ENTRY_DTYPE).copy()


def _resealed(args: list, rows: np.ndarray | None = None) -> list:
    """Edited pickle arguments with a recomputed digest: validation, not the checksum, must refuse them."""
    if rows is not None:
        args[4] = rows.tobytes()
    args[5] = S._digest(*args[:5])
    return args


@pytest.mark.parametrize("field, edit", [
    ("state", lambda r: r.__setitem__("state", np.where(r["proto"] == 6, 12, r["state"]))),   # a UDP state on TCP
    ("state", lambda r: r["state"].__setitem__(0, 99)),
    ("flags", lambda r: r["flags"].__setitem__(0, 0x80)),
    ("flags", lambda r: r["flags"].__setitem__(np.flatnonzero(r["proto"] == 1)[0], 1)),
    ("pa", lambda r: (r.__setitem__("a", np.where(r["proto"] == 6, B, r["a"])),
                      r.__setitem__("b", np.where(r["proto"] == 6, A, r["b"])))),
    ("pb", lambda r: r["pb"].__setitem__(np.flatnonzero(r["proto"] == 1)[0], 3)),
    ("pa", lambda r: r["pa"].__setitem__(np.flatnonzero(r["proto"] == 47)[0], 7)),
    ("packets", lambda r: r["packets"].__setitem__(0, 0)),
    ("first_ns", lambda r: r["first_ns"].__setitem__(0, r["last_ns"][0] + 1)),
    ("last_ns", lambda r: r["last_ns"].__setitem__(0, 10**15)),
])
def test_tampered_rows_are_refused_naming_the_field(field, edit):
    args = _args(_sample())
    rows = _rows(args)
    edit(rows)
    with pytest.raises(FlowTableError) as ei:
        S._restore(*_resealed(args, rows))
    assert ei.value.field == field
    assert field in str(ei.value)


def test_duplicate_rows_refused():
    args = _args(_sample())
    rows = _rows(args)
    with pytest.raises(FlowTableError, match="key") as ei:
        S._restore(*_resealed(args, np.concatenate([rows, rows[:1]])))
    assert ei.value.field == "key"


@pytest.mark.parametrize("index, value, field", [
    (0, 2, "version"), (1, 0, "capacity"), (1, 3, "rows"), (1, "64", "capacity"), (2, -5, "clock"),
    (2, 10**30, "clock"), (3, -1, "reclaimed"), (4, b"\x00" * 47, "rows"), (4, "x", "rows"),
    (1, S.MAX_CAPACITY + 1, "capacity"),
])
def test_tampered_header_refused(index, value, field):
    args = _args(_sample())
    args[index] = value
    if field != "digest":
        args = _resealed(args) if isinstance(args[4], bytes) and not isinstance(args[1], str) else args
    with pytest.raises(FlowTableError) as ei:
        S._restore(*args)
    assert ei.value.field == field


def test_changed_contents_fail_the_digest():
    args = _args(_sample())
    rows = _rows(args)
    rows["packets"][0] += 1              # still a valid table: only the digest tells
    args[4] = rows.tobytes()
    with pytest.raises(FlowTableError) as ei:
        S._restore(*args)
    assert ei.value.field == "digest"


def test_clock_without_flows_and_flows_without_clock():
    args = _args(_sample())
    args[2] = -1
    with pytest.raises(FlowTableError) as ei:
        S._restore(*_resealed(args))
    assert ei.value.field == "clock"


FLIP_SCRIPT = textwrap.dedent("""
    import pickle, sys, random
    import numpy as np
    from fastvpc.dataplane.state import FlowTable
    data = sys.stdin.buffer.read()
    ref = pickle.loads(data)
    want = ref.flows().tobytes()
    rnd = random.Random(int(sys.argv[1]))
    refused = equal = 0
    for _ in range(int(sys.argv[2])):
        b = bytearray(data)
        for _ in range(rnd.choice([1, 1, 2, 3])):
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        try:
            ft = pickle.loads(bytes(b))
        except Exception:
            refused += 1
            continue
        if not isinstance(ft, FlowTable):   # the flip broke the pickle's framing, not our loader's input
            refused += 1
            continue
        assert ft.flows().tobytes() == want and ft.capacity == ref.capacity and ft.clock == ref.clock
        # and it works
        ft.track(1, 6, 0x0A000002, 0x0A000001, 80, 1000, 0x12, 60, 10**10, 0)
        ft.expire(10**12)
        equal += 1
    print(refused, equal)
""")


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_random_byte_flips_refused_or_equal_never_crash(protocol):
    data = pickle.dumps(_sample(16), protocol=protocol)
    proc = subprocess.run([sys.executable, "-c", FLIP_SCRIPT, str(protocol), "400"], input=data,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    refused, equal = map(int, proc.stdout.split())
    assert refused + equal == 400
    assert refused > 300       # nearly every flip lands in the rows, the digest or the framing
