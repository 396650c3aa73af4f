"""fastvpc.lpm lookup kernels: batch LPM over packed tables (nogil, OpenMP through the shim).

The innermost loops live in ``_lpm_kernel.h`` (compiled in a POPCNT and a baseline variant,
chosen at import); this module owns validation-free entry points, threading and the C API
declared in ``_lookup.pxd``.  Inputs are checked by ``fastvpc.lpm`` before they get here.
"""
from cython.parallel cimport prange
from libc.stdint cimport uint8_t, uint32_t
from fastvpc._kernels._omp cimport omp_get_max_threads

cdef extern from "_lpm_kernel.h" nogil:
    ctypedef struct lpm_view_c:
        const uint32_t* header
        const uint8_t* data
        uint32_t n_tables
    int lpm_dispatch_init(int force_base)
    int lpm_dispatch_variant()
    void lpm_lookup_single(const lpm_view_c* v, uint32_t tid, const uint32_t* addrs, uint32_t* out,
                           Py_ssize_t n)
    void lpm_lookup_multi(const lpm_view_c* v, const uint32_t* tids, const uint32_t* addrs,
                          uint32_t* out, Py_ssize_t n)
    uint32_t lpm_lookup_one(const lpm_view_c* v, uint32_t tid, uint32_t addr)

lpm_dispatch_init(0)

cdef Py_ssize_t CHUNK = 16384


cdef int _view_of(RtsView* v, object header, object data) except -1:
    cdef const uint32_t[:, ::1] h = header
    cdef const uint8_t[::1] d = data
    if h.shape[1] != 8:
        raise ValueError("packed header must have 8 columns")
    v.n_tables = <uint32_t>h.shape[0]
    v.header = &h[0, 0] if h.shape[0] > 0 else NULL
    v.data = &d[0] if d.shape[0] > 0 else NULL
    if <size_t>v.data % 64:
        raise ValueError("packed pool must be 64-byte aligned (the kernels load lines as aligned vectors)")
    return 0


cdef int rts_view_init(RtsView* v, object rts) except -1:
    header, data = _arrays_of(rts)
    return _view_of(v, header, data)


cdef tuple _arrays_of(object rts):
    """(header, data) of a RouteTables/LpmTable, read as one consistent pair: replace() swaps the
    whole (header, meta, data) triple in one store and may move every table (compaction)."""
    st = getattr(rts, "_state", None)
    if st is not None:
        return st[0], st[2]
    return rts._header, rts._data


cdef void rts_lookup_batch(const RtsView* v, const uint32_t* table_ids, const uint32_t* addrs,
                           uint32_t* out, Py_ssize_t n) noexcept nogil:
    lpm_lookup_multi(<const lpm_view_c*>v, table_ids, addrs, out, n)


cdef void rts_lookup_table(const RtsView* v, uint32_t table_id, const uint32_t* addrs,
                           uint32_t* out, Py_ssize_t n) noexcept nogil:
    lpm_lookup_single(<const lpm_view_c*>v, table_id, addrs, out, n)


cdef uint32_t rts_lookup_one(const RtsView* v, uint32_t table_id, uint32_t addr) noexcept nogil:
    return lpm_lookup_one(<const lpm_view_c*>v, table_id, addr)


def lookup_table(object rts,                    # IN: RouteTables-like (._state or ._header, ._data)
                 uint32_t table_id,             # IN: the table every address is looked up in
                 const uint32_t[::1] addrs,     # IN: addresses
                 uint32_t[::1] out,             # OUT: values (0xFFFFFFFF = miss)
                 int n_threads):                # IN: resolved thread count (>= 1)
    """Look every address up in one table."""
    cdef RtsView v
    header, data = _arrays_of(rts)  # local references keep the arrays alive even if rts.replace() runs meanwhile
    _view_of(&v, header, data)
    cdef Py_ssize_t n = addrs.shape[0]
    if out.shape[0] != n:
        raise ValueError("out has the wrong length")
    if n == 0:
        return
    cdef Py_ssize_t nchunks = (n + CHUNK - 1) // CHUNK
    if n_threads > nchunks:  # never more threads than pieces of work
        n_threads = <int>nchunks
    cdef Py_ssize_t c, start, cnt
    cdef const uint32_t* a = &addrs[0]
    cdef uint32_t* o = &out[0]
    with nogil:
        if n_threads <= 1 or nchunks == 1:
            lpm_lookup_single(<const lpm_view_c*>&v, table_id, a, o, n)
        else:
            for c in prange(nchunks, num_threads=n_threads, schedule="static"):
                start = c * CHUNK
                cnt = n - start
                if cnt > CHUNK:
                    cnt = CHUNK
                lpm_lookup_single(<const lpm_view_c*>&v, table_id, a + start, o + start, cnt)


def lookup_pairs(object rts,                    # IN: RouteTables-like (._state or ._header, ._data)
                 const uint32_t[::1] table_ids, # IN: table of each address
                 const uint32_t[::1] addrs,     # IN: addresses
                 uint32_t[::1] out,             # OUT: values (0xFFFFFFFF = miss)
                 int n_threads):                # IN: resolved thread count (>= 1)
    """Look each (table id, address) pair up."""
    cdef RtsView v
    header, data = _arrays_of(rts)  # local references keep the arrays alive even if rts.replace() runs meanwhile
    _view_of(&v, header, data)
    cdef Py_ssize_t n = addrs.shape[0]
    if out.shape[0] != n or table_ids.shape[0] != n:
        raise ValueError("table_ids, addrs and out must have the same length")
    if n == 0:
        return
    cdef Py_ssize_t nchunks = (n + CHUNK - 1) // CHUNK
    if n_threads > nchunks:  # never more threads than pieces of work
        n_threads = <int>nchunks
    cdef Py_ssize_t c, start, cnt
    cdef const uint32_t* t = &table_ids[0]
    cdef const uint32_t* a = &addrs[0]
    cdef uint32_t* o = &out[0]
    with nogil:
        if n_threads <= 1 or nchunks == 1:
            lpm_lookup_multi(<const lpm_view_c*>&v, t, a, o, n)
        else:
            for c in prange(nchunks, num_threads=n_threads, schedule="static"):
                start = c * CHUNK
                cnt = n - start
                if cnt > CHUNK:
                    cnt = CHUNK
                lpm_lookup_multi(<const lpm_view_c*>&v, t + start, a + start, o + start, cnt)


def lookup_one(object rts, uint32_t table_id, uint32_t addr) -> int:
    """One lookup (no batching); the miss value is 0xFFFFFFFF."""
    cdef RtsView v
    header, data = _arrays_of(rts)
    _view_of(&v, header, data)
    return rts_lookup_one(&v, table_id, addr)


def kernel_variant() -> str:
    """Which compiled inner loop is in use: ``"popcnt"`` or ``"baseline"``."""
    return "popcnt" if lpm_dispatch_variant() == 1 else "baseline"


def _force_baseline(bint force) -> str:
    """Testing hook: use the baseline (no POPCNT) loops when ``force``; returns the variant."""
    lpm_dispatch_init(1 if force else 0)
    return kernel_variant()
