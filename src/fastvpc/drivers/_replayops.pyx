"""Compiled helpers of replay: verdict counts and pcap records of the selected frames.

``count_verdicts`` tallies (ingress port, action) and drop reasons in one pass (what three
``np.bincount`` calls did); ``pack_selected`` writes classic pcap records (little-endian,
nanosecond) for the frames whose action is, or is not, DROP, straight from the processed
batch (one copy instead of a select-copy followed by a pack).  Const memoryviews in,
caller-provided outputs, no GIL, nothing allocated; indices are checked inside the loops.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from libc.string cimport memcpy


cdef int64_t _count(const int32_t[::1] port, const uint8_t[::1] action, const uint8_t[::1] reason,
                    int64_t[:, ::1] by_port, int64_t[::1] by_reason) noexcept nogil:
    cdef Py_ssize_t i, n = port.shape[0]
    cdef Py_ssize_t nrow = by_port.shape[0], nact = by_port.shape[1], nreason = by_reason.shape[0]
    cdef int64_t row
    if action.shape[0] < n or reason.shape[0] < n:
        return -2
    for i in range(n):
        row = <int64_t>port[i] + 1          # row 0: unmapped (port -1)
        if row < 0 or row >= nrow or action[i] >= nact or reason[i] >= nreason:
            return i
        by_port[row, action[i]] += 1
        by_reason[reason[i]] += 1
    return -1


def count_verdicts(const int32_t[::1] port,      # IN: ingress port of each frame (-1: unmapped), n
                   const uint8_t[::1] action,    # IN: action of each frame (>= n entries)
                   const uint8_t[::1] reason,    # IN: drop reason of each frame (>= n entries)
                   int64_t[:, ::1] by_port,      # IN/OUT: [port + 1, action] counts, added to
                   int64_t[::1] by_reason,       # IN/OUT: [reason] counts, added to
                   ) -> int:
    """Add each frame to ``by_port[port + 1, action]`` and ``by_reason[reason]``.  Returns -1,
    the index of the first frame outside the tables (nothing counted from it on), or -2."""
    cdef int64_t r
    with nogil:
        r = _count(port, action, reason, by_port, by_reason)
    return r


cdef inline void _put32(uint8_t* p, uint32_t v) noexcept nogil:
    p[0] = v & 0xFF
    p[1] = (v >> 8) & 0xFF
    p[2] = (v >> 16) & 0xFF
    p[3] = (v >> 24) & 0xFF


cdef int64_t _pack(const uint8_t[::1] data, const int64_t[::1] offsets, const int64_t[::1] ts,
                   const uint8_t[::1] action, bint drops, uint8_t[::1] out, int64_t snaplen,
                   int64_t* written) noexcept nogil:
    cdef Py_ssize_t i, n = offsets.shape[0] - 1
    cdef int64_t a, b, length, caplen, t, sec, pos = 0, size = data.shape[0], cap = out.shape[0]
    cdef bint has_ts = ts.shape[0] > 0
    written[0] = 0
    if n < 0 or action.shape[0] < n or (has_ts and ts.shape[0] < n):
        return -2
    for i in range(n):
        if (action[i] == 0) != drops:        # 0 is Action.DROP
            continue
        a = offsets[i]
        b = offsets[i + 1]
        if a < 0 or b < a or b > size:
            return i
        length = b - a
        caplen = length if length < snaplen else snaplen
        if pos + 16 + caplen > cap:
            return i
        t = ts[i] if has_ts else 0
        if t < 0:
            t = 0
        sec = t // 1000000000
        if sec > <int64_t>0xFFFFFFFF:
            return i
        _put32(&out[pos], <uint32_t>sec)
        _put32(&out[pos + 4], <uint32_t>(t - sec * 1000000000))
        _put32(&out[pos + 8], <uint32_t>caplen)
        _put32(&out[pos + 12], <uint32_t>length)
        if caplen > 0:
            memcpy(&out[pos + 16], &data[a], <size_t>caplen)
        pos += 16 + caplen
    written[0] = pos
    return -1


def pack_selected(const uint8_t[::1] data,      # IN: frame bytes
                  const int64_t[::1] offsets,   # IN: Arrow-style offsets, n+1
                  const int64_t[::1] ts,        # IN: timestamps ns (n), or empty for all 0; < 0 written as 0
                  const uint8_t[::1] action,    # IN: action of each frame (>= n entries)
                  bint drops,                   # IN: pack the DROP frames (else every other frame)
                  uint8_t[::1] out,             # OUT: records; 16*n + sum(lengths) bytes always suffice
                  int64_t snaplen,              # IN: frames longer are cut (orig_len keeps the length)
                  ) -> tuple[int, int]:
    """Write classic pcap records (little-endian, nanoseconds, no file header) for the selected
    frames into ``out``.  Returns ``(status, bytes_written)``: status -1, or the index of the
    first frame that cannot be written (bad offsets, timestamp past 2106, ``out`` too small),
    or -2 when the array lengths disagree."""
    cdef int64_t r, w = 0
    if snaplen < 1:
        return -2, 0
    with nogil:
        r = _pack(data, offsets, ts, action, drops, out, snaplen, &w)
    return r, w
