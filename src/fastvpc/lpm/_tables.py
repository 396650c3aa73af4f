"""The fastvpc.lpm table classes: ``RouteTables``, ``FrozenRouteTables`` and ``LpmTable``
(building, lookups, one-table replacement, queries on the route lists, pickling and files).

The packed layout and its safety checks are in ``_packed.py``; ``fastvpc.lpm`` re-exports the
public names.
"""

from __future__ import annotations

import ipaddress
import operator
import os
from collections.abc import Iterable
from typing import Any, Union

import numpy as np

from fastvpc._threads import resolve_n_threads
from fastvpc.errors import LpmError
from fastvpc.lpm import _build, _lookup
from fastvpc.lpm._packed import (
    _HDR,
    _KIND_EMPTY,
    _KIND_POPTRIE,
    _LINE,
    _META,
    _aligned_copy,
    _aligned_empty,
    _check_packed,
    _compacted,
    _nfields,
    _Pool,
    _Routes,
)

__all__ = ["MISS", "FrozenRouteTables", "LpmTable", "RouteTables", "kernel_variant"]

MISS: int = 0xFFFFFFFF
KEY_BITS = 32  # IPv4 now; IPv6 keys would be a second key width with the same API
_BTREE_MAX = int(_build.BTREE_MAX_INTERVALS)  # 8 * 17**3 intervals: 3 internal levels
_BTREE_AUTO = _BTREE_MAX  # measured: the B-tree beats a per-table poptrie up to here (BENCHMARKS.md)
_COMPACT_MIN = 1 << 18  # replaced()/replace() compact once dead bytes exceed both this and the live bytes

PrefixLike = Union[str, ipaddress.IPv4Network, tuple[int, int]]


def kernel_variant() -> str:
    """The compiled inner loop in use: ``"popcnt"`` (runtime-detected) or ``"baseline"``."""
    return str(_lookup.kernel_variant())


def _int_array(x: Any, name: str, dtype: type, hi: int) -> np.ndarray:
    """1-D C-contiguous array of ``dtype`` from ``x``; other integer dtypes are range-checked."""
    try:
        a = np.asarray(x)
    except Exception as exc:  # noqa: BLE001 - anything numpy refuses
        raise LpmError(f"{name} cannot be read as an array: {exc}") from None
    if a.ndim != 1:
        raise LpmError(f"{name} must be one-dimensional, got shape {a.shape}")
    if a.dtype == dtype:
        return np.ascontiguousarray(a)
    if a.size == 0:
        return np.zeros(0, dtype=dtype)
    if a.dtype.kind not in "iu" and a.dtype != np.bool_:
        raise LpmError(f"{name} must be an integer array ({np.dtype(dtype).name}), got dtype {a.dtype}")
    lo, top = int(a.min()), int(a.max())
    if lo < 0 or top > hi:
        bad = lo if lo < 0 else top
        raise LpmError(f"{name} value {bad} out of range 0..{hi}")
    return a.astype(dtype)


def _addr_array(x: Any, name: str = "addrs") -> np.ndarray:
    """Addresses (any shape) as a C-contiguous uint32 array of the same shape."""
    a = np.asarray(x)
    if a.dtype == np.uint32:
        return np.ascontiguousarray(a)
    if a.size == 0 and a.dtype.kind in "iufb":
        return np.zeros(a.shape, dtype=np.uint32)
    if a.dtype.kind not in "iu":
        raise LpmError(f"{name} must be an integer array (uint32 IPv4 addresses), got dtype {a.dtype}")
    if a.size:
        lo, top = int(a.min()), int(a.max())
        if lo < 0 or top > 0xFFFFFFFF:
            raise LpmError(f"{name} value {lo if lo < 0 else top} is not an IPv4 address (0..2**32-1)")
    return np.ascontiguousarray(a.astype(np.uint32))


def _out_array(out: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=np.uint32)
    if not isinstance(out, np.ndarray) or out.dtype != np.uint32 or out.shape != shape \
            or not out.flags.c_contiguous or not out.flags.writeable:
        desc = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise LpmError(f"out must be a writeable C-contiguous uint32 array of shape {shape}, got {desc}")
    return out


def _parse_prefix(p: PrefixLike, normalize: bool = False) -> tuple[int, int]:
    """(network int, length) from a CIDR string, an IPv4Network or an (int, len) pair."""
    if isinstance(p, tuple) and len(p) == 2:
        try:  # integers only (ints, numpy integers): 1.5 or "10" are refused, not truncated or parsed
            addr, ln = operator.index(p[0]), operator.index(p[1])
        except TypeError:
            raise LpmError(f"bad prefix {p!r:.80}: an (address, length) pair must hold two integers") from None
        if not 0 <= ln <= 32:
            raise LpmError(f"prefix length {ln} out of range 0..32")
        if not 0 <= addr <= 0xFFFFFFFF:
            raise LpmError(f"prefix address {addr} is not an IPv4 address")
        net = ipaddress.IPv4Network((addr, ln), strict=False)
        if int(net.network_address) != addr and not normalize:
            raise LpmError(f"host bits set in {ipaddress.IPv4Address(addr)}/{ln}")
        return int(net.network_address), ln
    if isinstance(p, ipaddress.IPv6Network) or (isinstance(p, str) and ":" in p):
        raise LpmError(f"IPv6 prefix {p} is not supported yet (IPv4 keys only)")
    try:
        net = p if isinstance(p, ipaddress.IPv4Network) else ipaddress.IPv4Network(str(p), strict=not normalize)
    except ValueError as exc:
        raise LpmError(f"bad prefix {p!r}: {exc}") from None
    return int(net.network_address), int(net.prefixlen)


def _whole(x: Any, what: str) -> int:
    """``x`` as an int when it is one (int, numpy integer); a float, str or bool is refused, not converted."""
    if isinstance(x, bool):
        raise LpmError(f"{what} {x!r} must be an integer, not a bool")
    try:
        return operator.index(x)
    except TypeError:
        raise LpmError(f"{what} {x!r:.40} must be an integer, not {type(x).__name__}") from None


def _net(p: int, ln: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network((int(p), int(ln)))


# ----------------------------------------------------------------------------- RouteTables

def _packed_ints(x: Any, name: str, dtype: type, lo: int, hi: int) -> np.ndarray:
    """A packed integer array as a C-contiguous ``dtype`` array; floats, strings, objects and values out of
    ``lo..hi`` are refused (a cast would silently truncate or wrap them)."""
    a = np.asarray(x)
    if a.dtype.kind not in "iu":
        raise LpmError(f"packed {name} must be an integer array ({np.dtype(dtype).name}), got dtype {a.dtype}")
    if a.size and a.dtype != dtype:
        if int(a.min()) < lo or int(a.max()) > hi:
            bad = int(a.min()) if int(a.min()) < lo else int(a.max())
            raise LpmError(f"packed {name} holds {bad}, outside the range of {np.dtype(dtype).name}")
    return np.ascontiguousarray(a, dtype=dtype)


_NPZ_MEMBERS = ("header", "meta", "data")


def _save_npz(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> None:
    """``arrays`` as an .npz archive at ``path`` itself: ``np.savez`` given a name appends ".npz" to one
    without it, where ``load(path)`` would not find it; given an open file it writes there."""
    with open(os.fspath(path), "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]


def _load_npz(path: Any) -> tuple[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(file name, (header, meta, data)) of an .npz written by ``save``.  Opening the file may raise the
    usual OSError (missing, a directory, no permission); whatever is wrong inside it is an LpmError naming
    the file and the member."""
    name = os.fspath(path)
    with open(name, "rb") as f:
        try:
            z = np.load(f, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - numpy/zipfile raise many types for a bad file
            raise LpmError(f"{name}: not an .npz file of LPM tables ({type(exc).__name__}: {exc!s:.120})") from None
        if not hasattr(z, "files"):
            raise LpmError(f"{name}: a single .npy array, not an .npz archive of LPM tables "
                           f"(members {', '.join(_NPZ_MEMBERS)})")
        with z:
            out = []
            for member in _NPZ_MEMBERS:
                if member not in z.files:
                    raise LpmError(f"{name}: member {member!r} is missing (the archive holds "
                                   f"{', '.join(map(repr, z.files[:8])) or 'nothing'})")
                try:
                    a = z[member]
                except Exception as exc:  # noqa: BLE001 - a damaged member: zlib, zipfile, numpy format errors
                    raise LpmError(f"{name}: member {member!r} cannot be read ({type(exc).__name__}: "
                                   f"{exc!s:.120})") from None
                if a.dtype.kind not in "iu":
                    raise LpmError(f"{name}: member {member!r} has dtype {a.dtype}, not integers")
                out.append(a)
    return name, (out[0], out[1], out[2])


class RouteTables:
    """Many LPM tables packed into shared numpy arrays; one lookup over (table, address) pairs.

    Build with :meth:`from_arrays` (or :meth:`from_cidrs`); look up with :meth:`lookup`.
    ``replace`` swaps one table in place (atomic attribute swap, other tables untouched);
    ``replaced`` returns a new object and leaves this one unchanged (snapshots).
    """

    miss: int = MISS
    key_bits: int = KEY_BITS

    __slots__ = ("_state", "_pool", "__weakref__")
    #: (header, meta, data), swapped as one object so that readers (lookups, the C API's
    #: rts_view_init, queries) always see a consistent triple, even across a compacting replace()
    _state: tuple[np.ndarray, np.ndarray, np.ndarray]
    _pool: _Pool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("use RouteTables.from_arrays(...), from_cidrs(...) or from_packed(...)")

    @classmethod
    def _new(cls, header: np.ndarray, meta: np.ndarray, data: np.ndarray, pool: _Pool) -> RouteTables:
        self = object.__new__(cls)
        header.flags.writeable = False
        meta.flags.writeable = False
        self._state = (header, meta, data)
        self._pool = pool
        return self

    @property
    def _header(self) -> np.ndarray:
        return self._state[0]

    @property
    def _meta(self) -> np.ndarray:
        return self._state[1]

    @property
    def _data(self) -> np.ndarray:
        return self._state[2]

    # -- building
    @classmethod
    def from_arrays(cls, table_id: Any, prefix: Any, length: Any, value: Any, *,
                    n_tables: int | None = None, normalize: bool = False,
                    structure: str = "auto") -> RouteTables:
        """Build from parallel arrays: table id, prefix (uint32), length (uint8), value (uint32).

        ``n_tables`` defaults to ``max(table_id) + 1``; tables without routes miss everywhere.
        A duplicate (table, prefix, length) or host bits under the mask raise :class:`LpmError`
        naming the prefix; ``normalize=True`` clears host bits instead.  ``structure``:
        ``"auto"`` (B-tree up to 39,304 intervals, poptrie above), ``"poptrie"`` (every
        non-empty table) or ``"btree"`` (B-tree wherever it fits, poptrie otherwise).
        """
        tid = _int_array(table_id, "table_id", np.uint32, 0xFFFFFFFF)
        pfx = _int_array(prefix, "prefix", np.uint32, 0xFFFFFFFF)
        ln = _int_array(length, "length", np.uint8, 255)
        val = _int_array(value, "value", np.uint32, 0xFFFFFFFF)
        if n_tables is None:
            n_tables = int(tid.max()) + 1 if tid.size else 0
        n_tables = int(n_tables)
        if n_tables < 0:
            raise LpmError(f"n_tables must be >= 0, got {n_tables}")
        header, meta, blob = cls._build(tid, pfx, ln, val, n_tables, normalize, structure)
        # spare capacity so that replacing tables does not copy the pool at once (amortised growth)
        buf = _aligned_empty(blob.size + max(1 << 20, blob.size // 8))
        buf[:blob.size] = blob
        pool = _Pool(buf, blob.size)
        return cls._new(header, meta, buf, pool)

    @staticmethod
    def _build(tid: np.ndarray, pfx: np.ndarray, ln: np.ndarray, val: np.ndarray, n_tables: int,
               normalize: bool, structure: str = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        limits = {"auto": _BTREE_AUTO, "btree": _BTREE_MAX, "poptrie": 0}
        if structure not in limits:
            raise LpmError(f"structure must be 'auto', 'btree' or 'poptrie', got {structure!r}")
        if not (tid.size == pfx.size == ln.size == val.size):
            raise LpmError(f"table_id, prefix, length and value differ in length: "
                           f"{tid.size}, {pfx.size}, {ln.size}, {val.size}")
        try:
            return _build.build_tables(tid, pfx, ln, val, n_tables, bool(normalize), limits[structure])
        except ValueError as exc:
            raise LpmError(str(exc)) from None

    @classmethod
    def from_cidrs(cls, routes: Iterable[tuple[int, PrefixLike, int]], *, n_tables: int | None = None,
                   normalize: bool = False, structure: str = "auto") -> RouteTables:
        """Build from ``(table_id, cidr, value)`` triples (cidr: str or IPv4Network)."""
        tids, pfxs, lens, vals = [], [], [], []
        for i, item in enumerate(routes):
            try:
                t, c, v = item
            except (TypeError, ValueError):
                raise LpmError(f"route {i}: {item!r:.80} is not a (table_id, cidr, value) triple") from None
            p, ln = _parse_prefix(c, normalize)
            tids.append(_whole(t, f"route {i} ({c!s:.40}): table id"))
            vals.append(_whole(v, f"route {i} ({c!s:.40}): value"))
            pfxs.append(p)
            lens.append(ln)
        return cls.from_arrays(np.array(tids, dtype=np.int64), np.array(pfxs, dtype=np.int64),
                               np.array(lens, dtype=np.int64), np.array(vals, dtype=np.int64),
                               n_tables=n_tables, normalize=normalize, structure=structure)

    # -- lookups
    def lookup(self, table_ids: Any, addrs: Any, out: np.ndarray | None = None,
               n_threads: int | None = None) -> np.ndarray:
        """Values for each ``(table_ids[i], addrs[i])``; ``miss`` where no route or unknown table."""
        a = _addr_array(addrs)
        t = np.asarray(table_ids)
        if t.ndim == 0:
            t = np.full(a.shape, t)
        if t.shape != a.shape:
            raise LpmError(f"table_ids shape {t.shape} differs from addrs shape {a.shape}")
        if t.dtype != np.uint32:
            if t.dtype.kind not in "iu":
                raise LpmError(f"table_ids must be an integer array, got dtype {t.dtype}")
            # negative or huge ids are unknown tables: map them to an id that misses
            t64 = t.astype(np.int64)
            t = np.where((t64 < 0) | (t64 > 0xFFFFFFFF), 0xFFFFFFFF, t64).astype(np.uint32)
        t = np.ascontiguousarray(t)
        o = _out_array(out, a.shape)
        _lookup.lookup_pairs(self, t.reshape(-1), a.reshape(-1), o.reshape(-1), resolve_n_threads(n_threads))
        return o

    def lookup_table(self, table_id: int, addrs: Any, out: np.ndarray | None = None,
                     n_threads: int | None = None) -> np.ndarray:
        """Look every address up in one table (``miss`` for an unknown table id)."""
        a = _addr_array(addrs)
        o = _out_array(out, a.shape)
        tid = int(table_id)
        tid = tid if 0 <= tid < len(self) else 0xFFFFFFFF
        _lookup.lookup_table(self, tid, a.reshape(-1), o.reshape(-1), resolve_n_threads(n_threads))
        return o

    # -- changing one table
    def _with_table(self, table_id: int, prefix: Any, length: Any, value: Any,
                    normalize: bool, structure: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, _Pool]:
        """(header, meta, data, pool) with table ``table_id`` rebuilt.  The new region is appended to
        the shared pool, unless dead regions (replaced tables, or other snapshots' tables) would then
        exceed the live ones (and 256 KiB): then the live regions are compacted into a fresh pool of
        their own, so memory stays bounded however often tables are replaced.  Objects using the old
        pool keep it unchanged."""
        t = int(table_id)
        if not 0 <= t < len(self):
            raise LpmError(f"table id {table_id} out of range (n_tables={len(self)})")
        pfx = _int_array(prefix, "prefix", np.uint32, 0xFFFFFFFF)
        ln = _int_array(length, "length", np.uint8, 255)
        val = _int_array(value, "value", np.uint32, 0xFFFFFFFF)
        h1, m1, blob = self._build(np.zeros(pfx.size, np.uint32), pfx, ln, val, 1, normalize, structure)
        header, meta, data = self._state
        header = header.copy()
        meta = meta.copy()
        header[t] = 0
        meta[t] = 0
        pool = self._pool
        grow = (blob.size + _LINE - 1) // _LINE * _LINE
        live = int(meta[:, 1].sum()) + grow
        dead = pool.used + grow - live
        if dead > max(live, _COMPACT_MIN):
            header, meta, buf, used = _compacted(header, meta, data, spare=grow + max(live // 2, 1 << 16))
            pool = _Pool(buf, used)
            data = buf
        if blob.size:
            data, base = pool.append(blob)
        else:
            base = 0
        row = h1[0].copy()
        if row[0] != _KIND_EMPTY:
            row[1:1 + _nfields(int(row[0]))] += base // _LINE
            m1[0, 0] += base
            m1[0, 3] += base
        else:
            m1[0] = 0
        header[t] = row
        meta[t] = m1[0]
        return header, meta, data, pool

    def replaced(self, table_id: int, prefix: Any, length: Any, value: Any, *,
                 normalize: bool = False, structure: str = "auto") -> RouteTables:
        """A new RouteTables with table ``table_id`` rebuilt from these routes; ``self`` unchanged.

        The new object shares its parent's pool (only the new table is written) until replaced
        tables' dead regions outweigh the live ones; then it gets a compacted pool of its own."""
        header, meta, data, pool = self._with_table(table_id, prefix, length, value, normalize, structure)
        return type(self)._new(header, meta, data, pool)

    def frozen(self) -> RouteTables:
        """A read-only alias of these tables (the same arrays, no copy): its :meth:`replace`
        raises, :meth:`replaced` still gives modified copies.  A compiled Dataplane's ``lpm``."""
        if isinstance(self, FrozenRouteTables):
            return self
        header, meta, data = self._state
        return FrozenRouteTables._new(header, meta, data, self._pool)

    def replace(self, table_id: int, prefix: Any, length: Any, value: Any, *,
                normalize: bool = False, structure: str = "auto") -> None:
        """Rebuild table ``table_id`` in place; the other tables are not rebuilt.

        Lookups already running keep the arrays they started with.
        """
        header, meta, data, pool = self._with_table(table_id, prefix, length, value, normalize, structure)
        header.flags.writeable = False
        meta.flags.writeable = False
        self._state = (header, meta, data)  # one store: readers see the old triple or the new one
        self._pool = pool

    # -- introspection
    def __len__(self) -> int:
        return int(self._header.shape[0])

    @property
    def n_tables(self) -> int:
        return len(self)

    @property
    def n_routes(self) -> int:
        """Total routes over all tables."""
        return int(self._meta[:, 2].sum())

    @property
    def nbytes(self) -> int:
        """Bytes held for this object's tables: per-table header and meta rows, and each table's
        region (lookup structure + its route list: 4 bytes of prefix a route, values raw (4 B)
        or as a uint8/uint16 index into the table's distinct values, lengths as 1 B a route or
        34 offsets).  Dead regions of replaced tables in a shared pool are not counted."""
        return int(self._header.nbytes + self._meta.nbytes + self._meta[:, 1].sum())

    @property
    def lookup_nbytes(self) -> int:
        """Bytes of what lookups read: the per-table header and the B-tree/poptrie arrays
        (``nbytes`` minus the sorted route lists kept for ``routes``/``lookup_exact``/``covering``)."""
        live = self._meta[:, 2] > 0
        return int(self._header.nbytes + (self._meta[live, 3] - self._meta[live, 0]).sum())

    def table_kind(self, table_id: int) -> str:
        """``"empty"``, ``"btree"`` or ``"poptrie"``: the structure chosen for that table."""
        k = int(self._header[self._tid(table_id), 0])
        return "empty" if k == _KIND_EMPTY else "poptrie" if k == _KIND_POPTRIE else "btree"

    def _tid(self, table_id: int) -> int:
        t = int(table_id)
        if not 0 <= t < len(self):
            raise LpmError(f"table id {table_id} out of range (n_tables={len(self)})")
        return t

    def _routes(self, table_id: int) -> _Routes:
        t = self._tid(table_id)
        _, meta, data = self._state  # one consistent pair even if replace() runs meanwhile
        return _Routes(data, int(meta[t, 2]), int(meta[t, 3]), int(meta[t, 4]))

    def routes(self, table_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(prefix, length, value) of one table, sorted by (prefix, length); copies."""
        r = self._routes(table_id)
        ln = r.lengths()
        order = np.lexsort((ln, r.pfx))
        return r.pfx[order], ln[order], r.values(order)

    def _find(self, r: _Routes, p: int, m: int) -> int:
        """Position of route p/m in ``r``, or -1 (binary search in the length-m group)."""
        lo, g = r.group(m)
        i = int(np.searchsorted(g, p))
        return lo + i if i < g.size and int(g[i]) == p else -1

    def lookup_exact(self, table_id: int, prefix: PrefixLike) -> int | None:
        """The value stored for exactly this prefix, or None."""
        p, ln = _parse_prefix(prefix)
        r = self._routes(table_id)
        i = self._find(r, p, ln)
        return None if i < 0 else int(r.values(slice(i, i + 1))[0])

    def covering(self, table_id: int, prefix: PrefixLike) -> list[tuple[ipaddress.IPv4Network, int]]:
        """Routes that contain ``prefix`` (itself included), shortest first."""
        p, ln = _parse_prefix(prefix)
        r = self._routes(table_id)
        res = []
        for m in range(ln + 1):
            q = p & ((0xFFFFFFFF << (32 - m)) & 0xFFFFFFFF)
            i = self._find(r, q, m)
            if i >= 0:
                res.append((_net(q, m), int(r.values(slice(i, i + 1))[0])))
        return res

    def covered(self, table_id: int, prefix: PrefixLike) -> list[tuple[ipaddress.IPv4Network, int]]:
        """Routes inside ``prefix`` (itself included), sorted by (address, length)."""
        p, ln = _parse_prefix(prefix)
        r = self._routes(table_id)
        end = p + (1 << (32 - ln)) - 1
        found: list[tuple[int, int, int]] = []
        for m in range(ln, 33):
            lo, g = r.group(m)
            a, b = int(np.searchsorted(g, p)), int(np.searchsorted(g, end, side="right"))
            found.extend((int(x), m, lo + a + j) for j, x in enumerate(g[a:b].tolist()))
        found.sort()
        if not found:
            return []
        vals = r.values(np.array([i for _, _, i in found], dtype=np.int64)).tolist()
        return [(_net(x, m), v) for (x, m, _), v in zip(found, vals)]

    # -- packed arrays, pickling, files
    def arrays(self) -> dict[str, np.ndarray]:
        """The packed arrays (compacted: regions of replaced tables dropped); see :meth:`from_packed`."""
        header, meta, data = self._state
        live = int(meta[:, 1].sum())
        end = int((meta[:, 0] + meta[:, 1]).max()) if len(self) else 0
        if end != live:  # dead regions (replaced tables) or foreign regions in a shared pool: compact
            header, meta, data, _ = _compacted(header, meta, data, spare=0)
        else:
            data = data[:end]
        return {"header": np.array(header), "meta": np.array(meta), "data": np.array(data)}

    @classmethod
    def from_packed(cls, header: np.ndarray, meta: np.ndarray, data: np.ndarray) -> RouteTables:
        """Rebuild from :meth:`arrays` output without re-running the builder (bounds-checked)."""
        header = _packed_ints(header, "header", np.uint32, 0, 0xFFFFFFFF)
        meta = _packed_ints(meta, "meta", np.int64, -(2**63), 2**63 - 1)
        d = np.asarray(data)
        if d.dtype != np.uint8 or d.ndim != 1:
            raise LpmError(f"packed data must be 1-D uint8, got {d.dtype} {d.shape}")
        _check_packed(header, meta, d)
        d = _aligned_copy(d) if d.ctypes.data % _LINE or not d.flags.c_contiguous else d
        return cls._new(header.copy(), meta.copy(), d, _Pool(d, d.size))

    def __reduce__(self) -> tuple[Any, ...]:
        return _reduce_packed(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the packed arrays to a numpy ``.npz`` file at ``path`` exactly (loads without a rebuild)."""
        arrays = self.arrays()
        arrays["kind"] = np.array(["RouteTables"])
        _save_npz(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RouteTables:
        """Read a file written by :meth:`save`; anything else (or a damaged file) raises LpmError naming it."""
        name, arrays = _load_npz(path)
        try:
            return cls.from_packed(*arrays)
        except LpmError as exc:
            raise LpmError(f"{name}: {exc}") from None

    def __repr__(self) -> str:
        return f"<RouteTables {len(self)} tables, {self.n_routes} routes, {self.nbytes} bytes>"


# ----------------------------------------------------------------------------- LpmTable

class FrozenRouteTables(RouteTables):
    """RouteTables that cannot change in place: what a compiled ``Dataplane`` holds as ``lpm``."""

    __slots__ = ()

    def replace(self, table_id: int, prefix: Any, length: Any, value: Any, *,
                normalize: bool = False, structure: str = "auto") -> None:
        raise LpmError("these route tables belong to an immutable snapshot (a compiled Dataplane): use "
                       "replaced() for a modified copy, or change the Network and compile again")

    def replaced(self, table_id: int, prefix: Any, length: Any, value: Any, *,
                 normalize: bool = False, structure: str = "auto") -> RouteTables:
        header, meta, data, pool = self._with_table(table_id, prefix, length, value, normalize, structure)
        return RouteTables._new(header, meta, data, pool)


class LpmTable:
    """One LPM table: ``lookup(addrs)`` -> values, ``miss`` (0xFFFFFFFF) where no route matches."""

    miss: int = MISS
    key_bits: int = KEY_BITS

    __slots__ = ("_rts", "__weakref__")
    _rts: RouteTables

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("use LpmTable.from_arrays(...), from_cidrs(...) or load(...)")

    @classmethod
    def _wrap(cls, rts: RouteTables) -> LpmTable:
        self = object.__new__(cls)
        self._rts = rts
        return self

    @classmethod
    def from_arrays(cls, prefix: Any, length: Any, value: Any, *, normalize: bool = False,
                    structure: str = "auto") -> LpmTable:
        """Build from prefix (uint32), length (uint8) and value (uint32) arrays.

        A duplicate prefix, a length > 32, host bits set under the mask (unless ``normalize``)
        or the reserved value 0xFFFFFFFF raise :class:`LpmError` naming the prefix.
        """
        pfx = _int_array(prefix, "prefix", np.uint32, 0xFFFFFFFF)
        return cls._wrap(RouteTables.from_arrays(np.zeros(pfx.size, np.uint32), pfx, length, value,
                                                 n_tables=1, normalize=normalize, structure=structure))

    @classmethod
    def from_cidrs(cls, routes: Iterable[tuple[PrefixLike, int]], *, normalize: bool = False,
                   structure: str = "auto") -> LpmTable:
        """Build from ``(cidr, value)`` pairs; cidr is a string, an IPv4Network or (int, len)."""
        triples = []
        for i, item in enumerate(routes):
            if isinstance(item, (str, bytes)) or not isinstance(item, (tuple, list)) or len(item) != 2:
                raise LpmError(f"route {i}: {item!r:.80} is not a (cidr, value) pair")
            triples.append((0, item[0], item[1]))
        return cls._wrap(RouteTables.from_cidrs(triples, n_tables=1, normalize=normalize, structure=structure))

    def lookup(self, addrs: Any, out: np.ndarray | None = None, n_threads: int | None = None) -> np.ndarray:
        """Value of the longest matching prefix of each address (any shape), ``miss`` if none."""
        return self._rts.lookup_table(0, addrs, out=out, n_threads=n_threads)

    def __len__(self) -> int:
        return self._rts.n_routes

    @property
    def nbytes(self) -> int:
        """Bytes held by the packed structure."""
        return self._rts.nbytes

    @property
    def lookup_nbytes(self) -> int:
        """Bytes of what lookups read (``nbytes`` minus the sorted route list)."""
        return self._rts.lookup_nbytes

    @property
    def kind(self) -> str:
        """``"empty"``, ``"btree"`` or ``"poptrie"``."""
        return self._rts.table_kind(0)

    @property
    def route_tables(self) -> RouteTables:
        """This table as a one-table RouteTables (shares the arrays)."""
        return self._rts

    @property
    def _state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # the C API (rts_view_init) reads this
        return self._rts._state

    @property
    def _header(self) -> np.ndarray:
        return self._rts._header

    @property
    def _data(self) -> np.ndarray:
        return self._rts._data

    def routes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(prefix, length, value) sorted by (prefix, length)."""
        return self._rts.routes(0)

    def lookup_exact(self, prefix: PrefixLike) -> int | None:
        """The value stored for exactly this prefix, or None."""
        return self._rts.lookup_exact(0, prefix)

    def covering(self, prefix: PrefixLike) -> list[tuple[ipaddress.IPv4Network, int]]:
        """Routes that contain ``prefix`` (itself included), shortest first."""
        return self._rts.covering(0, prefix)

    def covered(self, prefix: PrefixLike) -> list[tuple[ipaddress.IPv4Network, int]]:
        """Routes inside ``prefix`` (itself included), sorted by (address, length)."""
        return self._rts.covered(0, prefix)

    def arrays(self) -> dict[str, np.ndarray]:
        return self._rts.arrays()

    @classmethod
    def from_packed(cls, header: np.ndarray, meta: np.ndarray, data: np.ndarray) -> LpmTable:
        rts = RouteTables.from_packed(header, meta, data)
        if len(rts) != 1:
            raise LpmError(f"an LpmTable has exactly one table, packed arrays hold {len(rts)}")
        return cls._wrap(rts)

    def __reduce__(self) -> tuple[Any, ...]:
        return _reduce_packed(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the packed arrays to a numpy ``.npz`` file at ``path`` exactly (loads without a rebuild)."""
        arrays = self.arrays()
        arrays["kind"] = np.array(["LpmTable"])
        _save_npz(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LpmTable:
        """Read a file written by :meth:`save`; anything else (or a damaged file) raises LpmError naming it."""
        name, arrays = _load_npz(path)
        try:
            return cls.from_packed(*arrays)
        except LpmError as exc:
            raise LpmError(f"{name}: {exc}") from None

    def __repr__(self) -> str:
        return f"<LpmTable {len(self)} routes, {self.kind}, {self.nbytes} bytes>"


def _reduce_packed(obj: RouteTables | LpmTable) -> tuple[Any, ...]:
    """How RouteTables and LpmTable pickle: the packed arrays as raw bytes, not numpy arrays (a
    corrupt pickled dtype can crash numpy itself before any check); :func:`_unpickle` checks them."""
    a = obj.arrays()
    return (_unpickle, (type(obj), a["header"].tobytes(), a["meta"].tobytes(), a["data"].tobytes()))


def _unpickle(cls: Any, header: Any, meta: Any, data: Any) -> Any:
    """Rebuild a pickled RouteTables / FrozenRouteTables / LpmTable from its packed arrays' bytes (checked)."""
    if not (isinstance(cls, type) and issubclass(cls, (RouteTables, LpmTable))):
        raise LpmError(f"pickled LPM tables name the class {cls!r:.60}, not RouteTables or LpmTable")
    parts = []
    for name, raw, dtype, cols in (("header", header, np.uint32, _HDR), ("meta", meta, np.int64, _META),
                                   ("data", data, np.uint8, 1)):
        if not isinstance(raw, (bytes, bytearray)):
            raise LpmError(f"pickled LPM tables: {name} is a {type(raw).__name__}, not bytes")
        width = np.dtype(dtype).itemsize * cols
        if len(raw) % width:
            raise LpmError(f"pickled LPM tables: {name} has {len(raw)} bytes, not whole rows of {width}")
        a = np.frombuffer(raw, dtype=dtype)
        parts.append(a.reshape(-1, cols) if cols > 1 else a)
    return cls.from_packed(*parts)
