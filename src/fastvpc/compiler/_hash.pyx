# The exact-match hash tables' builder (compile time, not the hot path): the kernels' lookups are
# tables.pxd ht_get, over the same slot layout and multiplier.

from libc.stdint cimport uint32_t, uint64_t, int64_t

import numpy as np

from fastvpc._kernels.tables cimport FV_HT_EMPTY, FV_HT_MULT


def build_hash(const uint64_t[::1] keys,        # IN  distinct keys (none equal to 2**64-1)
               const uint32_t[::1] values,      # IN  one value per key
               ) -> object:
    """Open-addressing table (load <= 0.5, linear probing) as uint64[2*cap] (key, value) pairs.

    Returns the array, or the index (int) of the first duplicate key.
    """
    cdef int64_t n = keys.shape[0]
    cdef int64_t cap = 2
    cdef int shift = 63
    cdef int64_t j
    cdef uint64_t slot, key
    if values.shape[0] != n:
        raise ValueError(f"build_hash: {n} keys but {values.shape[0]} values")
    while cap < 2 * n:
        cap *= 2
        shift -= 1
    out = np.full(2 * cap, np.uint64(0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
    cdef uint64_t[::1] o = out
    cdef uint64_t mask = <uint64_t>(cap - 1)
    cdef int64_t dup = -1
    with nogil:
        for j in range(n):
            key = keys[j]
            slot = (key * FV_HT_MULT) >> shift
            while o[2 * slot] != FV_HT_EMPTY and o[2 * slot] != key:
                slot = (slot + 1) & mask
            if o[2 * slot] == key:
                dup = j
                break
            o[2 * slot] = key
            o[2 * slot + 1] = values[j]
    if dup >= 0:
        return int(dup)
    return out
