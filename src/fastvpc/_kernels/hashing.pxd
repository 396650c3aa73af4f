# The one mix of every fastvpc hash table, declared once for Cython: the FlowTable's slots
# (dataplane/_flowtable.pxd), the NAT bindings (dataplane/_nattable.pxd, from C) and the flow-log records
# (dataplane/_flowlogs.pyx).  Pickled slots were placed by it: it must never change.  See fv_hash.h.
from libc.stdint cimport uint64_t

cdef extern from "fv_hash.h":
    uint64_t fv_mix64(uint64_t x) noexcept nogil     # murmur3's 64-bit finaliser
    const uint64_t FV_HMUL                            # 2**64 / golden ratio (odd)
