# fastvpc.lpm._lookup C-level API, for other Cython modules (cimport, nogil).
#
#   from fastvpc.lpm._lookup cimport RtsView, rts_view_init, rts_lookup_batch, rts_lookup_one
#
#   cdef RtsView v
#   rts_view_init(&v, rts)          # rts: a RouteTables or an LpmTable (table id 0); needs the GIL
#   with nogil:
#       rts_lookup_batch(&v, table_ids, addrs, out, n)   # out[i] = value, or 0xFFFFFFFF (miss)
#       x = rts_lookup_one(&v, table_id, addr)
#
# The view holds raw pointers into the object's packed arrays and no references: keep the
# object alive while the view is used, and re-initialise the view after rts.replace(...)
# (replace swaps the arrays; objects returned by rts.replaced(...) never change).
# A table id >= v.n_tables, or an empty table, gives the miss value 0xFFFFFFFF.
# Addresses are IPv4 as host-order uint32 (10.0.0.1 == 0x0A000001).
from libc.stdint cimport uint8_t, uint32_t

cdef struct RtsView:
    const uint32_t* header     # n_tables rows of 8 uint32 (see _lpm_layout.h)
    const uint8_t* data        # the packed pool, 64-byte aligned
    uint32_t n_tables

cdef int rts_view_init(RtsView* v, object rts) except -1
cdef void rts_lookup_batch(const RtsView* v, const uint32_t* table_ids, const uint32_t* addrs,
                           uint32_t* out, Py_ssize_t n) noexcept nogil
cdef void rts_lookup_table(const RtsView* v, uint32_t table_id, const uint32_t* addrs,
                           uint32_t* out, Py_ssize_t n) noexcept nogil
cdef uint32_t rts_lookup_one(const RtsView* v, uint32_t table_id, uint32_t addr) noexcept nogil
