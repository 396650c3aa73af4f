"""Compiled helpers for FrameBatch: offset validation and span gathers.

Every function takes ``const`` typed memoryviews in and caller-provided arrays out,
runs without the GIL and allocates nothing.  Bounds are checked inside the loops
(cheap integer compares), so a bad argument returns an error index instead of reading
or writing out of bounds.
"""
from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memmove

from fastvpc._kernels.spans cimport fv_first_bad_offset


def check_offsets(const int64_t[::1] offsets,   # IN: Arrow-style offsets, n+1 entries
                  int64_t data_len,              # IN: length of the data buffer
                  ) -> int:
    """Index of the first bad offset, or -1 when all are good.

    An offset is bad when it is negative (index 0), smaller than its predecessor, or,
    for the last one, past ``data_len``.  Returns -2 for an empty offsets array.
    """
    cdef int64_t r
    if offsets.shape[0] == 0:
        return -2
    with nogil:   # the kernels' own check (_kernels/spans.pxd), so FrameBatch and they agree
        r = fv_first_bad_offset(&offsets[0], offsets.shape[0] - 1, data_len)
    return r


cdef int64_t _gather(const uint8_t[::1] src, const int64_t[::1] start, const int64_t[::1] length,
                     uint8_t[::1] dst, const int64_t[::1] dst_offsets) noexcept nogil:
    cdef Py_ssize_t i, n = start.shape[0]
    cdef int64_t s, ln, d, src_len = src.shape[0], dst_len = dst.shape[0]
    if length.shape[0] != n or dst_offsets.shape[0] < n:
        return -2
    for i in range(n):
        s = start[i]
        ln = length[i]
        d = dst_offsets[i]
        if s < 0 or ln < 0 or d < 0 or ln > src_len - s or ln > dst_len - d:
            return i
        if ln:
            memmove(&dst[d], &src[s], <size_t>ln)  # src and dst may be one buffer (in-place compaction)
    return -1


def gather_spans(const uint8_t[::1] src,          # IN: source bytes
                 const int64_t[::1] start,        # IN: start of span i in src
                 const int64_t[::1] length,       # IN: length of span i
                 uint8_t[::1] dst,                # OUT: destination bytes
                 const int64_t[::1] dst_offsets,  # IN: where span i goes in dst (>= n entries)
                 ) -> int:
    """Copy ``src[start[i]:start[i]+length[i]]`` to ``dst[dst_offsets[i]:]`` for every i.

    ``src`` and ``dst`` may be views of one buffer when every span moves towards the start and the
    spans are in order (pcap reading compacts frames in place this way): copies are ``memmove``.
    Returns -1 on success, the index of the first span that would fall outside ``src``
    or ``dst`` (nothing is copied for it or after it), or -2 when the array lengths
    disagree.
    """
    cdef int64_t r
    with nogil:
        r = _gather(src, start, length, dst, dst_offsets)
    return r
