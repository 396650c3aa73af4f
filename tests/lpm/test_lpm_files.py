"""LpmTable.load / RouteTables.load / from_packed / the builders refuse bad input with LpmError.

Regressions from the adversarial run: truncated, random, foreign (.npy, missing members, object
arrays) and tampered .npz files raised EOFError, BadZipFile, KeyError, TypeError, ValueError,
OSError or NotImplementedError; a stored route list with host bits loaded and failed later in
covered(); float values were truncated to integers; a malformed prefix tuple raised a bare error.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from fastvpc.errors import LpmError
from fastvpc.lpm import LpmTable, RouteTables
from fastvpc.lpm._packed import _route_layout


@pytest.fixture()
def saved(tmp_path):
    rts = RouteTables.from_cidrs([(0, "10.0.0.0/8", 1), (0, "10.1.0.0/16", 2), (1, "0.0.0.0/0", 3)])
    t = LpmTable.from_cidrs([("10.0.0.0/8", 1), ("192.168.0.0/16", 2)])
    rts.save(tmp_path / "r.npz")
    t.save(tmp_path / "t.npz")
    return tmp_path, rts, t


LOADERS = [RouteTables.load, LpmTable.load]


def _refused(load, path, *members):
    with pytest.raises(LpmError) as info:
        load(path)
    msg = str(info.value)
    assert str(path) in msg, msg
    for m in members:
        assert repr(m) in msg or m in msg, msg
    return msg


@pytest.mark.parametrize("load", LOADERS)
def test_truncated_files(saved, load):
    tmp, _, _ = saved
    raw = (tmp / "t.npz").read_bytes()
    for cut in (0, 1, 10, 100, len(raw) // 2, len(raw) - 30, len(raw) - 1):
        p = tmp / f"cut{cut}.npz"
        p.write_bytes(raw[:cut])
        _refused(load, p)


@pytest.mark.parametrize("load", LOADERS)
def test_random_and_foreign_files(saved, load):
    tmp, _, _ = saved
    rng = np.random.default_rng(3)
    for i in range(20):
        p = tmp / f"rand{i}.npz"
        p.write_bytes(rng.integers(0, 256, int(rng.integers(1, 5000)), dtype=np.uint8).tobytes())
        _refused(load, p)
    npy = tmp / "a.npy"
    np.save(npy, np.arange(10))
    _refused(load, npy, "npy")
    text = tmp / "x.npz"
    text.write_text("hello, not an archive\n")
    _refused(load, text)
    pickled = tmp / "p.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _refused(load, pickled)


@pytest.mark.parametrize("member", ["header", "meta", "data"])
def test_missing_and_object_members_are_named(saved, member):
    tmp, rts, _ = saved
    a = rts.arrays()
    p = tmp / f"no-{member}.npz"
    np.savez(p, **{k: v for k, v in a.items() if k != member})
    _refused(RouteTables.load, p, member)
    p = tmp / f"obj-{member}.npz"
    b = dict(a)
    b[member] = np.array([object()] * 3, dtype=object)
    np.savez(p, allow_pickle=True, **b)
    _refused(RouteTables.load, p, member)
    for bad in (a[member].astype(np.float64), a[member].astype(np.float64) + 0.5, a[member].astype(str)):
        p = tmp / f"float-{member}.npz"
        b = dict(a)
        b[member] = bad
        np.savez(p, **b)
        _refused(RouteTables.load, p, member)


def test_a_tampered_member_inside_the_zip_is_refused(saved):
    tmp, rts, _ = saved
    src = tmp / "r.npz"
    with zipfile.ZipFile(src) as z:
        items = {n: z.read(n) for n in z.namelist()}
    for n in ("header.npy", "meta.npy"):
        b = dict(items)
        raw = bytearray(b[n])
        raw[10:20] = b"\xff" * 10  # inside the .npy header dict
        b[n] = bytes(raw)
        p = tmp / f"tampered-{n}.npz"
        with zipfile.ZipFile(p, "w") as z:
            for k, v in b.items():
                z.writestr(k, v)
        _refused(RouteTables.load, p, n.split(".")[0])
    # a bit flipped in the stored data: refused by the packed checks, or loads with equal lookups
    raw = bytearray(src.read_bytes())
    rng = np.random.default_rng(5)
    qt = rng.integers(0, 3, 4000).astype(np.uint32)
    qa = rng.integers(0, 2**32, 4000, dtype=np.uint64).astype(np.uint32)
    for i in range(200):
        b = bytearray(raw)
        b[int(rng.integers(0, len(b)))] ^= 1 << int(rng.integers(0, 8))
        p = tmp / "flip.npz"
        p.write_bytes(bytes(b))
        try:
            r = RouteTables.load(p)
        except LpmError as exc:
            assert str(p) in str(exc)
            continue
        r.lookup(qt, qa)  # never out of bounds


def test_missing_file_is_still_a_file_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        LpmTable.load(tmp_path / "nope.npz")


def test_a_stored_route_list_with_host_bits_is_refused_at_load(tmp_path):
    p = (np.arange(40, dtype=np.uint32) << 8).astype(np.uint32)
    for n, nd in ((40, 0), (300, 3)):
        pfx = (np.arange(n, dtype=np.uint32) << 8).astype(np.uint32)
        vals = (np.arange(n) % 3 + 1).astype(np.uint32) if nd else np.arange(n, dtype=np.uint32)
        t = LpmTable.from_arrays(pfx, np.full(n, 24, np.uint8), vals)
        a = t.arrays()
        assert int(a["meta"][0, 4]) == nd
        ro = int(a["meta"][0, 3])
        data = a["data"].copy()
        data[ro + 4 * 5] |= 1  # route 5's prefix now has a host bit under its /24
        with pytest.raises(LpmError, match="host bits"):
            LpmTable.from_packed(a["header"], a["meta"], data)
        np.savez(tmp_path / "h.npz", header=a["header"], meta=a["meta"], data=data)
        _refused(LpmTable.load, tmp_path / "h.npz", "host bits")
        if nd == 0:
            _, _, _, _, lens, _ = _route_layout(n, nd)
            data = a["data"].copy()
            data[ro + lens + 3] = 40  # a length past 32
            with pytest.raises(LpmError, match="length"):
                LpmTable.from_packed(a["header"], a["meta"], data)
    del p


def test_float_values_and_table_ids_are_refused_not_truncated():
    with pytest.raises(LpmError, match="1.5"):
        LpmTable.from_cidrs([("10.0.0.0/8", 1.5)])
    with pytest.raises(LpmError, match="value"):
        LpmTable.from_cidrs([("10.0.0.0/8", 2.0)])
    with pytest.raises(LpmError, match="table id"):
        RouteTables.from_cidrs([(0.5, "10.0.0.0/8", 1)])
    with pytest.raises(LpmError, match="value"):
        LpmTable.from_arrays(np.array([0x0A000000]), np.array([8]), np.array([1.5]))
    assert LpmTable.from_cidrs([("10.0.0.0/8", np.uint32(4))]).lookup_exact("10.0.0.0/8") == 4


@pytest.mark.parametrize("bad", [("a", 8), (1.5, 8), (0x0A000000, 8.5), ((1, 2), 3), (None, 8), (10, "x"),
                                 (2**40, 8), (0x0A000000, 40), (0x0A000000, -1)])
def test_a_malformed_prefix_tuple_names_the_value(bad):
    t = LpmTable.from_cidrs([("10.0.0.0/8", 1)])
    for call in (lambda: LpmTable.from_cidrs([(bad, 1)]), lambda: t.lookup_exact(bad), lambda: t.covering(bad),
                 lambda: t.covered(bad)):
        with pytest.raises(LpmError) as info:
            call()
        shown = str(info.value)
        assert any(repr(x) in shown or str(x) in shown for x in bad), shown


@pytest.mark.parametrize("name", ["routes.lpm", "routes", "routes.npz"])
def test_save_writes_the_path_it_is_given_and_load_reads_it_back(tmp_path, name: str) -> None:
    """save(p) then load(p) round-trips for any name: nothing is appended to a name without ".npz"."""
    rts = RouteTables.from_cidrs([(0, "10.0.0.0/8", 1), (1, "0.0.0.0/0", 3)])
    t = LpmTable.from_cidrs([("10.0.0.0/8", 1), ("192.168.0.0/16", 2)])
    for obj, load, sub in ((rts, RouteTables.load, "r"), (t, LpmTable.load, "t")):
        d = tmp_path / sub
        d.mkdir()
        obj.save(d / name)
        assert [p.name for p in d.iterdir()] == [name]
        back = load(str(d / name))
        assert back.arrays().keys() == obj.arrays().keys()
        assert all(np.array_equal(a, b) for a, b in zip(back.arrays().values(), obj.arrays().values()))
