# Frame spans in a batch buffer: the one offsets check of every kernel (forward, classify) and of
# fastvpc._batchops (FrameBatch), and the per-frame span read the kernels use under nogil.
#
# A FrameBatch checks its offsets when it is built, but it wraps the caller's arrays without copying,
# so the offsets can change afterwards (even while a kernel runs, from another thread: issue 15).
# Hence two layers: fv_check_offsets before the nogil pass gives a typed error for a batch that was
# changed before the call; fv_load_once + fv_span_len inside the pass read each frame's start and end once and
# check that span against the buffer's length, so a concurrent writer can make verdicts meaningless but
# can never make a kernel read or write outside the buffer.

from libc.stdint cimport uint8_t, uint64_t, int64_t


cdef inline int64_t fv_first_bad_offset(const int64_t* off, int64_t n, int64_t nd) noexcept nogil:
    """-1 when 0 <= off[0] <= off[1] <= ... <= off[n] <= nd, else the first index that breaks it."""
    cdef int64_t i
    if off[0] < 0:
        return 0
    for i in range(n):
        if off[i + 1] < off[i]:
            return i + 1
    if off[n] > nd:
        return n
    return -1


cdef inline int fv_check_offsets(const int64_t[::1] offsets, int64_t n, int64_t nd) except -1:
    """Raise FrameBatchError naming the first offset that breaks the frame spans (see above)."""
    cdef int64_t bad
    with nogil:
        bad = fv_first_bad_offset(&offsets[0], n, nd)
    if bad >= 0:
        from fastvpc.errors import FrameBatchError
        raise FrameBatchError(f"offsets[{bad}] = {offsets[bad]} breaks 0 <= offsets[i] <= offsets[i+1] <= "
                              f"len(data) = {nd} (the batch's arrays changed after it was built?)")
    return 0


cdef extern from *:
    """
    /* One read of an offset that another thread may be rewriting: volatile, so the value checked
       is the value used (the compiler may neither re-read it nor split it). */
    static inline int64_t fv_load_once(const int64_t* p) { return *(const volatile int64_t*)p; }
    """
    int64_t fv_load_once(const int64_t* p) noexcept nogil


cdef inline int64_t fv_span_len(int64_t start, int64_t end, int64_t nd) noexcept nogil:
    """end - start when 0 <= start <= end <= nd, else -1 (the caller treats the frame as empty)."""
    if <uint64_t>start <= <uint64_t>end and <uint64_t>end <= <uint64_t>nd:
        return end - start
    return -1


cdef inline int64_t fv_first_start(const int64_t* offsets, int64_t lo, int64_t nd) noexcept nogil:
    """offsets[lo], read once, clamped into [0, nd]: the start that fv_next_span carries through
    frames lo, lo + 1, ... (a clamped start gives an empty or wrong frame, never one outside data)."""
    cdef int64_t s = fv_load_once(&offsets[lo])
    if <uint64_t>s > <uint64_t>nd:
        s = nd
    return s


cdef inline int64_t fv_next_span(const int64_t* offsets, int64_t i, int64_t nd,
                                 int64_t* start) noexcept nogil:
    """Frame ``i``'s length, its start being ``start[0]`` (offsets[i] as read once for frame i - 1,
    or by fv_first_start, and known to lie in [0, nd]); reads offsets[i + 1] once and leaves it in
    ``start[0]`` for frame i + 1.  A span that is not inside [start, nd] (offsets changed under the
    pass) gives length 0 and leaves ``start[0]`` unchanged.  Each offset is read once per pass and
    one unsigned compare checks the span: end - start <= nd - start holds exactly when
    start <= end <= nd, as 0 <= start <= nd."""
    cdef int64_t s = start[0]
    cdef int64_t e = fv_load_once(&offsets[i + 1])
    cdef int64_t L = e - s
    if <uint64_t>L > <uint64_t>(nd - s):
        return 0
    start[0] = e
    return L
