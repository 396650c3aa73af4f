"""Packed layout of fastvpc.lpm tables: the shared byte pool, the route-list layout, compaction,
and the safety checks run on packed arrays from outside (``from_packed``, ``load``, unpickling).

Every offset and index a lookup kernel follows is checked here, so corrupt or tampered arrays raise
:class:`~fastvpc.errors.LpmError` instead of reading outside the pool.  The table classes are in
``_tables.py``; this module knows nothing about them.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from fastvpc.errors import LpmError
from fastvpc.lpm import _build

_HDR = int(_build.HDR_WORDS)
_KIND_EMPTY = int(_build.KIND_EMPTY)
_KIND_POPTRIE = int(_build.KIND_POPTRIE)
_LINE = 64
_META = int(_build.META_COLS)  # meta row: region offset, region bytes, routes, routes offset, distinct values
_OFFS_ABOVE = int(_build.ROUTES_OFFSETS_ABOVE)
_ALL_LENGTHS = np.arange(34)


def _aligned_empty(nbytes: int) -> np.ndarray:
    """A zeroed uint8 array of ``nbytes`` whose data starts on a 64-byte boundary."""
    raw = np.zeros(nbytes + _LINE, dtype=np.uint8)
    skip = (-raw.ctypes.data) % _LINE
    return raw[skip:skip + nbytes]


def _aligned_copy(a: np.ndarray) -> np.ndarray:
    out = _aligned_empty(a.size)
    out[:] = a
    return out


def _nfields(kind: int) -> int:
    """How many of a header row's offset fields (h[1..4]) a table kind uses."""
    return 0 if kind == _KIND_EMPTY else 4 if kind == _KIND_POPTRIE else kind


def _route_layout(n: int, nd: int) -> tuple[int, int, int, int, int, int]:
    """Byte offsets (from the routes offset) of a route list of ``n`` routes, ``nd`` distinct
    values (0: raw values); see ``write_routes`` in _build.cpp.  Returns (values, length
    offsets or -1, value index or -1, index width, lengths or -1, total bytes)."""
    at = 4 * n
    vals = at
    at += 4 * (nd if nd else n)
    offs = -1
    if n > _OFFS_ABOVE:
        offs, at = at, at + 4 * 34
    idx, w = -1, (1 if nd <= 256 else 2)
    if nd:
        idx, at = at, at + w * n
    lens = -1
    if n <= _OFFS_ABOVE:
        lens, at = at, at + n
    return vals, offs, idx, w, lens, at


class _Routes:
    """Zero-copy views of one table's route list (ordered by (length, prefix))."""

    __slots__ = ("pfx", "off", "_raw", "_vt", "_idx", "_lens")
    pfx: np.ndarray
    off: np.ndarray
    _raw: np.ndarray | None
    _vt: np.ndarray | None
    _idx: np.ndarray | None
    _lens: np.ndarray | None

    def __init__(self, data: np.ndarray, n: int, ro: int, nd: int) -> None:
        vals, offs, idx, w, lens, _ = _route_layout(n, nd)
        self.pfx = data[ro:ro + 4 * n].view(np.uint32)
        self._raw = self._vt = self._idx = self._lens = None
        if nd:
            self._vt = data[ro + vals:ro + vals + 4 * nd].view(np.uint32)
            self._idx = data[ro + idx:ro + idx + w * n].view(np.uint8 if w == 1 else np.uint16)
        else:
            self._raw = data[ro + vals:ro + vals + 4 * n].view(np.uint32)
        if offs >= 0:
            self.off = data[ro + offs:ro + offs + 136].view(np.uint32).astype(np.int64)
        else:
            self._lens = data[ro + lens:ro + lens + n]
            self.off = np.searchsorted(self._lens, _ALL_LENGTHS).astype(np.int64)
            self.off[33] = n

    def lengths(self) -> np.ndarray:
        if self._lens is not None:
            lens: np.ndarray = self._lens.copy()
            return lens
        out: np.ndarray = np.repeat(np.arange(33, dtype=np.uint8), np.diff(self.off[:34]))
        return out

    def values(self, sel: Any = slice(None)) -> np.ndarray:
        """Values of the routes at positions ``sel`` (slice or index array)."""
        if self._raw is not None:
            return np.array(self._raw[sel], dtype=np.uint32)
        assert self._vt is not None and self._idx is not None
        out: np.ndarray = self._vt[self._idx[sel]]
        return out

    def group(self, m: int) -> tuple[int, np.ndarray]:
        """(first position, prefixes) of the routes of length ``m`` (sorted)."""
        lo, hi = int(self.off[m]), int(self.off[m + 1])
        return lo, self.pfx[lo:hi]


class _Pool:
    """Append-only aligned byte pool shared by a RouteTables and everything derived from it.

    ``used`` is shared, so two derived objects never write the same region; growing copies the
    used part into a new buffer (objects holding the old buffer keep reading it unchanged).
    """

    def __init__(self, buf: np.ndarray, used: int) -> None:
        self.buf = buf
        self.used = (used + _LINE - 1) // _LINE * _LINE  # appended regions must start on a line
        self.lock = threading.Lock()

    def append(self, blob: np.ndarray) -> tuple[np.ndarray, int]:
        n = int(blob.size)
        with self.lock:
            off = self.used
            need = off + n
            if need > self.buf.size:
                nb = _aligned_empty(max(need, 2 * self.buf.size, 1 << 16))
                keep = min(off, self.buf.size)
                nb[:keep] = self.buf[:keep]
                self.buf = nb
            self.buf[off:need] = blob
            self.used = (need + _LINE - 1) // _LINE * _LINE
            return self.buf, off


def _check_packed(header: np.ndarray, meta: np.ndarray, data: np.ndarray) -> None:
    """Bounds check of packed arrays from outside (pickle, npz): every offset inside its region."""
    if header.ndim != 2 or header.shape[1] != _HDR or meta.shape != (header.shape[0], _META):
        raise LpmError(f"packed arrays have bad shapes: header {header.shape}, meta {meta.shape}")
    kind = header[:, 0].astype(np.int64)
    ok_kind = (kind == _KIND_EMPTY) | ((kind >= 1) & (kind <= 4)) | (kind == _KIND_POPTRIE)
    if not ok_kind.all():
        raise LpmError(f"packed header has an unknown table kind {int(kind[~ok_kind][0])}")
    live = kind != _KIND_EMPTY
    roff, rlen = meta[:, 0], meta[:, 1]
    if (roff < 0).any() or (rlen < 0).any() or (roff % _LINE != 0).any() or ((roff + rlen) > data.size).any():
        raise LpmError("packed meta has a region outside the data array")
    nfields = np.where(kind == _KIND_POPTRIE, 4, kind)  # btree: d + 1 = kind levels
    lines = header[:, 1:5].astype(np.int64) * _LINE
    used = np.arange(4)[None, :] < nfields[:, None]
    inside = (lines >= roff[:, None]) & (lines < (roff + rlen)[:, None])
    if (live[:, None] & used & ~inside).any():
        raise LpmError("packed header points outside its table's region")
    nr, ro, nd = meta[:, 2], meta[:, 3], meta[:, 4]
    # a route takes at least 4 bytes of data: a larger count is damage (and would wrap the int64
    # size arithmetic below, letting a bogus list pass the region check: fuzz finding P1)
    if ((nr < 0) | (nd < 0) | (nd > 65536) | (nd > nr) | (nr > data.size // 4) | (ro < 0) | (ro > data.size)
            | (~live & (nr != 0)) | (live & (ro % 4 != 0))).any():
        raise LpmError("packed meta has a bad route count, value count or route list offset")
    # the route list's size, as _route_layout computes it
    rbytes = 4 * nr + np.where(nd > 0, 4 * nd + np.where(nd <= 256, 1, 2) * nr, 4 * nr) \
        + np.where(nr > _OFFS_ABOVE, 4 * 34, nr)
    if (live & ((ro < roff) | (ro + rbytes > roff + rlen))).any():
        raise LpmError("packed meta has a route list outside its region")
    # value indices inside their value table, length offsets monotone (only big or indexed lists)
    for t in np.flatnonzero(live & ((nd > 0) | (nr > _OFFS_ABOVE))):
        r = _Routes(data, int(nr[t]), int(ro[t]), int(nd[t]))
        if r._idx is not None and r._idx.size and int(r._idx.max()) >= int(nd[t]):
            raise LpmError(f"packed route list of table {t} has a value index >= {int(nd[t])}")
        if r._lens is None and (r.off[0] != 0 or r.off[33] != nr[t] or (np.diff(r.off) < 0).any()):
            raise LpmError(f"packed route list of table {t} has bad length offsets")
    # the route lists (what routes/lookup_exact/covering/covered binary-search): lengths 0..32 in order,
    # no host bits under a route's mask, each (length, prefix) once and sorted
    for t in np.flatnonzero(live & (nr > 0)):
        _check_route_list(int(t), _Routes(data, int(nr[t]), int(ro[t]), int(nd[t])))
    # the lookup structures themselves: lookups trust every index stored in them
    for t in np.flatnonzero(kind == _KIND_POPTRIE):
        _check_poptrie(int(t), header[t], int(ro[t]), data)
    _check_btrees(header, meta, data)


def _check_route_list(t: int, r: _Routes) -> None:
    ln = r.lengths().astype(np.int64)
    if int(ln.max()) > 32 or (np.diff(ln) < 0).any():
        raise LpmError(f"packed route list of table {t} has a prefix length past 32 or out of order")
    p = r.pfx.astype(np.int64)
    host = p & ((1 << (32 - ln)) - 1)
    if host.any():
        i = int(np.flatnonzero(host)[0])
        a = int(p[i])
        raise LpmError(f"packed route list of table {t}: route {i} has host bits set in "
                       f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}/{int(ln[i])}")
    key = (ln << 32) | p
    if (np.diff(key) <= 0).any():
        raise LpmError(f"packed route list of table {t} is not sorted, or holds a prefix twice")


def _compacted(header: np.ndarray, meta: np.ndarray, data: np.ndarray,
               spare: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Copies of ``header``/``meta`` rebased onto a fresh aligned buffer holding only the tables'
    regions, in pool order, with ``spare`` free bytes after them; returns (header, meta, buffer, used)."""
    rlen = meta[:, 1]
    sel = np.flatnonzero(rlen > 0)
    order = sel[np.argsort(meta[sel, 0], kind="stable")]
    off, n = meta[order, 0], rlen[order]
    pos = np.cumsum(n) - n
    delta = off - pos  # >= 0 and a multiple of 64: regions are 64-byte aligned and never overlap
    header = header.copy()
    meta = meta.copy()
    kind = header[order, 0].astype(np.int64)
    nfields = np.where(kind == _KIND_POPTRIE, 4, np.where(kind == _KIND_EMPTY, 0, kind))
    used_cols = np.arange(4)[None, :] < nfields[:, None]
    header[order, 1:5] -= np.where(used_cols, (delta // _LINE)[:, None], 0).astype(np.uint32)
    meta[order, 0] -= delta
    meta[order, 3] -= delta
    live = int(n.sum())
    buf = _aligned_empty(live + spare)
    # copy runs of adjacent regions (a fresh build is one run; each replaced table adds one or two)
    if order.size:
        brk = np.flatnonzero(off[1:] != off[:-1] + n[:-1]) + 1
        starts = np.concatenate([[0], brk])
        ends = np.concatenate([brk, [order.size]])
        for a, b in zip(starts.tolist(), ends.tolist()):
            o, p, m = int(off[a]), int(pos[a]), int(pos[b - 1] + n[b - 1] - pos[a])
            buf[p:p + m] = data[o:o + m]
    return header, meta, buf, live


_NODE = np.dtype([("vector", "<u8"), ("leafvec", "<u8"), ("base0", "<u4"), ("base1", "<u4")])  # lpm_pt_node
_INT32_MAX = 0x7FFFFFFF


def _ranges(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Concatenation of arange(start[i], start[i] + count[i]) (int64)."""
    count = count.astype(np.int64)
    first = np.cumsum(count) - count
    return np.repeat(start.astype(np.int64) - first, count) + np.arange(int(count.sum()), dtype=np.int64)


def _check_poptrie(t: int, h: np.ndarray, ro: int, data: np.ndarray) -> None:
    """Every index a poptrie lookup can compute stays inside its array, and walks end by depth 3."""
    o_dp, o_nodes, o_leaves, o_vals = (int(x) * _LINE for x in h[1:5])
    if not o_dp + (4 << 18) <= o_nodes <= o_leaves <= o_vals < ro:  # 2**18 uint32 direct-pointing entries
        raise LpmError(f"packed poptrie of table {t} has its arrays out of order")
    n_nodes, n_leaves, n_vals = (o_leaves - o_nodes) // _NODE.itemsize, (o_vals - o_leaves) // 4, (ro - o_vals) // 4
    dp = data[o_dp:o_dp + (4 << 18)].view(np.uint32)
    nodes = data[o_nodes:o_nodes + n_nodes * _NODE.itemsize].view(_NODE)
    leaves = data[o_leaves:o_leaves + 4 * n_leaves].view(np.uint32)
    leaf = dp >= 0x80000000
    if ((dp[leaf] & 0x7FFFFFFF) >= n_vals).any() or (dp[~leaf] >= n_nodes).any() \
            or (leaves.size and int(leaves.max()) >= n_vals):
        raise LpmError(f"packed poptrie of table {t} points outside its arrays")
    frontier = np.unique(dp[~leaf])
    for level in range(3):  # the address bits after the 18 direct ones are 3 strides of 6
        nd = nodes[frontier]
        vec, lv = nd["vector"], nd["leafvec"]
        pv, pl = np.bitwise_count(vec).astype(np.int64), np.bitwise_count(lv).astype(np.int64)
        zero = ~vec
        low_zero = zero & (np.uint64(0) - zero)
        low_leaf = lv & (np.uint64(0) - lv)
        if (level == 2 and (vec != 0).any()) or (nd["base1"] + pv > n_nodes).any() \
                or (nd["base0"] + pl > n_leaves).any() \
                or ((zero != 0) & ((lv == 0) | (low_leaf > low_zero))).any():
            raise LpmError(f"packed poptrie of table {t} has a bad node")
        frontier = np.unique(_ranges(nd["base1"], pv))


def _check_btrees(header: np.ndarray, meta: np.ndarray, data: np.ndarray) -> None:
    """In every B-tree, each child a lookup can reach exists and leaves end with a padding key."""
    lines = data[:data.size // _LINE * _LINE].view(np.int32).reshape(-1, 16)
    kind = header[:, 0].astype(np.int64)
    for d in range(4):
        sel = np.flatnonzero(kind == _build.KIND_BTREE + d)
        if not sel.size:
            continue
        starts = header[sel, 1:2 + d].astype(np.int64)  # line of each level, root first
        ends = np.concatenate([starts[:, 1:], (meta[sel, 3] // _LINE)[:, None]], axis=1)
        sizes = ends - starts
        if (sizes < 1).any():
            raise LpmError(f"packed B-tree of table {int(sel[int(np.flatnonzero((sizes < 1).any(1))[0])])} "
                           f"has an empty level")
        for lev in range(d):
            ln = _ranges(starts[:, lev], sizes[:, lev])
            j = ln - np.repeat(starts[:, lev], sizes[:, lev])
            reach = 17 * j + (lines[ln] != _INT32_MAX).sum(axis=1)
            if (reach >= np.repeat(sizes[:, lev + 1], sizes[:, lev])).any():
                raise LpmError("packed B-tree has a node whose children are missing")
        if (lines[_ranges(starts[:, d], sizes[:, d]), 7] != _INT32_MAX).any():
            raise LpmError("packed B-tree has a leaf without its padding key")
