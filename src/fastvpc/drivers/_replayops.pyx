"""Compiled helpers of replay: verdict counts and pcap records of the selected frames.

``emit_records`` (what replay runs per chunk) counts every frame per (ingress port, action) and
drop reason and writes the classic pcap records (little-endian, nanosecond) of the emitted and of
the dropped frames, straight from the processed batch, in one pass: headers as one 16-byte store,
short frames copied without a call (``_kernels/bytes.pxd`` ``fv_copy``, shared with the pcap reader's
compaction).  ``count_verdicts`` and ``pack_selected`` are the same two jobs as separate passes (kept
for callers that need one of them).  Const
memoryviews in, caller-provided outputs, no GIL, nothing allocated; indices are checked inside
the loops.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

from fastvpc._kernels.bytes cimport fv_copy


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
            fv_copy(&out[pos + 16], &data[a], caplen)
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


# ---- emit_records: status codes in info[I_STATUS] ------------------------------------------
I_EMIT_BYTES = 0     # OUT: bytes of records written to out_emit
I_EMIT_FRAMES = 1    # OUT: frames written to out_emit
I_DROP_BYTES = 2     # OUT: bytes of records written to out_drop
I_DROP_FRAMES = 3    # OUT: frames written to out_drop
I_STATUS = 4         # OUT: ST_* below
N_INFO = 5
ST_OK = 0
ST_COUNT = 1         # a port, action or reason outside the count tables
ST_TIMESTAMP = 2     # a timestamp past the 32-bit seconds of pcap (2106-02-07)
ST_SPACE = 3         # bad offsets, or an output buffer too small
ST_LENGTHS = 4       # the arrays' lengths disagree

cdef enum:
    _I_EMIT_BYTES = 0
    _I_EMIT_FRAMES = 1
    _I_DROP_BYTES = 2
    _I_DROP_FRAMES = 3
    _I_STATUS = 4
    _N_INFO = 5


cdef inline bint _little_host() noexcept nogil:
    cdef uint32_t one = 1
    return (<uint8_t*>&one)[0] == 1      # a constant the compiler folds


cdef inline uint32_t _le32(uint32_t v) noexcept nogil:
    if _little_host():
        return v
    return ((v & 0xFF) << 24) | ((v & 0xFF00) << 8) | ((v >> 8) & 0xFF00) | (v >> 24)


cdef inline int64_t _record(uint8_t* out, int64_t pos, int64_t cap, const uint8_t* frame, int64_t length,
                            int64_t t, int64_t snaplen) noexcept nogil:
    """One classic pcap record (little-endian, ns) at out[pos]; returns its size, -1 past 2106, -2 no room."""
    cdef int64_t caplen = length if length < snaplen else snaplen
    cdef uint64_t sec, ut
    cdef uint32_t hdr[4]
    if t < 0:
        t = 0
    ut = <uint64_t>t
    sec = ut // 1000000000u               # unsigned: a multiply and a shift, no sign fix-up
    if sec > <uint64_t>0xFFFFFFFF:
        return -1
    if pos + 16 + caplen > cap:
        return -2
    hdr[0] = _le32(<uint32_t>sec)
    hdr[1] = _le32(<uint32_t>(ut - sec * 1000000000u))
    hdr[2] = _le32(<uint32_t>caplen)
    hdr[3] = _le32(<uint32_t>length)
    memcpy(out + pos, hdr, 16)            # one 16-byte store
    fv_copy(out + pos + 16, frame, caplen)
    return 16 + caplen


cdef Py_ssize_t _emit(const uint8_t[::1] data, const int64_t[::1] offsets, const int64_t[::1] ts,
                      const int32_t[::1] port, const uint8_t[::1] action, const uint8_t[::1] reason,
                      int64_t[:, ::1] by_port, int64_t[::1] by_reason, uint8_t[::1] out_emit, bint want_emit,
                      uint8_t[::1] out_drop, bint want_drop, int64_t snaplen, int64_t[::1] info) noexcept nogil:
    cdef Py_ssize_t i = 0, n = offsets.shape[0] - 1
    cdef uint64_t nrow = <uint64_t>by_port.shape[0]
    cdef uint32_t nact = <uint32_t>by_port.shape[1], nreason = <uint32_t>by_reason.shape[0]
    cdef int64_t a, b, t, size = data.shape[0], w
    cdef uint64_t row
    cdef uint32_t act, why
    cdef int64_t ep = 0, ef = 0, dp = 0, df = 0, status = 0, n_none = 0
    cdef int64_t ecap = out_emit.shape[0], dcap = out_drop.shape[0]
    cdef bint has_ts = ts.shape[0] > 0
    cdef uint8_t* eo = &out_emit[0] if ecap > 0 else NULL
    cdef uint8_t* dout = &out_drop[0] if dcap > 0 else NULL
    cdef const uint8_t* d = &data[0] if size > 0 else NULL
    cdef const int64_t* po
    cdef const int64_t* pts = &ts[0] if has_ts else NULL
    cdef const int32_t* pp
    cdef const uint8_t* pa
    cdef const uint8_t* pr
    cdef int64_t* bp = &by_port[0, 0] if nrow > 0 and nact > 0 else NULL
    cdef int64_t* br = &by_reason[0] if nreason > 0 else NULL
    info[_I_STATUS] = 0
    if n < 0 or port.shape[0] < n or action.shape[0] < n or reason.shape[0] < n or (has_ts and ts.shape[0] < n):
        info[_I_STATUS] = 4
        return -2
    if n == 0:
        info[_I_EMIT_BYTES] = 0
        info[_I_EMIT_FRAMES] = 0
        info[_I_DROP_BYTES] = 0
        info[_I_DROP_FRAMES] = 0
        return -1
    po = &offsets[0]
    pp = &port[0]
    pa = &action[0]
    pr = &reason[0]
    for i in range(n):
        # every input of the frame is loaded before the first store: a count or a record written
        # through another pointer would otherwise make the compiler load them again
        act = pa[i]
        why = pr[i]
        row = <uint64_t>(<int64_t>pp[i] + 1)      # row 0: unmapped (port -1); a port < -1 wraps past nrow
        a = po[i]
        b = po[i + 1]
        t = pts[i] if has_ts else 0
        if row >= nrow or act >= nact or why >= nreason:
            status = 1
            break
        bp[row * nact + act] += 1
        if why == 0:                         # NONE (every frame not dropped): a register, not a chain of
            n_none += 1                      # load-add-stores through by_reason[0], one a frame
        else:
            br[why] += 1
        if act == 0:                         # Action.DROP
            if not want_drop:
                continue
        elif not want_emit:
            continue
        if a < 0 or b < a or b > size:
            status = 3
            break
        if act == 0:
            w = _record(dout, dp, dcap, d + a, b - a, t, snaplen) if dout != NULL else -2
            if w < 0:
                status = 2 if w == -1 else 3
                break
            dp += w
            df += 1
        else:
            w = _record(eo, ep, ecap, d + a, b - a, t, snaplen) if eo != NULL else -2
            if w < 0:
                status = 2 if w == -1 else 3
                break
            ep += w
            ef += 1
    if n_none:
        br[0] += n_none
    info[_I_STATUS] = status
    info[_I_EMIT_BYTES] = ep
    info[_I_EMIT_FRAMES] = ef
    info[_I_DROP_BYTES] = dp
    info[_I_DROP_FRAMES] = df
    return -1 if status == 0 else i


def emit_records(const uint8_t[::1] data,      # IN: frame bytes (the processed batch)
                 const int64_t[::1] offsets,   # IN: Arrow-style offsets, n+1
                 const int64_t[::1] ts,        # IN: timestamps ns (n), or empty for all 0; < 0 written as 0
                 const int32_t[::1] port,      # IN: ingress port of each frame (-1: unmapped), >= n
                 const uint8_t[::1] action,    # IN: action of each frame, >= n
                 const uint8_t[::1] reason,    # IN: drop reason of each frame, >= n
                 int64_t[:, ::1] by_port,      # IN/OUT: [port + 1, action] counts, added to
                 int64_t[::1] by_reason,       # IN/OUT: [reason] counts, added to
                 uint8_t[::1] out_emit,        # OUT: records of the frames not dropped (if want_emit)
                 bint want_emit,               # IN: write them
                 uint8_t[::1] out_drop,        # OUT: records of the dropped frames (if want_drop)
                 bint want_drop,               # IN: write them
                 int64_t snaplen,              # IN: frames longer are cut (orig_len keeps the length)
                 int64_t[::1] info,            # OUT: N_INFO entries: I_* bytes/frames written, I_STATUS
                 ) -> int:
    """Count every frame (as :func:`count_verdicts`) and write classic pcap records (little-endian,
    nanoseconds, no file header; as :func:`pack_selected`) of the emitted frames into ``out_emit`` and
    of the dropped ones into ``out_drop``, in one pass.  ``16 * n + offsets[n] - offsets[0]`` bytes in
    each output always suffice.  Returns -1, or the index of the first frame that could not be
    counted or written (``info[I_STATUS]`` says why: ST_COUNT, ST_TIMESTAMP, ST_SPACE; the frames
    before it are counted and written), or -2 (ST_LENGTHS)."""
    cdef Py_ssize_t r
    if info.shape[0] < _N_INFO:
        raise ValueError(f"info needs {_N_INFO} entries, got {info.shape[0]}")
    if snaplen < 1:
        raise ValueError(f"snaplen must be >= 1, got {snaplen}")
    with nogil:
        r = _emit(data, offsets, ts, port, action, reason, by_port, by_reason, out_emit, want_emit,
                  out_drop, want_drop, snaplen, info)
    return r
