"""Compiled record indexers for classic pcap and pcapng, and the classic pcap packer.

The indexers walk a file's bytes (a window read with pread) without the GIL and write, for each
packet record, where its frame starts in the file, its captured length and its
timestamp in nanoseconds into caller-provided arrays.  They stop at the first problem
and report it through ``state`` (an error code, the byte offset of the bad record or
block, and the bad value); they stop, without error, when the output arrays are full,
so a caller can stream a file in chunks by calling again from ``state[S_POS]``.
``compact_pcap`` does the classic pcap indexing and, in the same pass, moves each frame down
over the record headers before it, so a window read from the file becomes a FrameBatch in
place (``iter_pcap(reuse=True)``, the replay reader).

Every read is bounds-checked against the buffer length before it happens: random or
truncated input yields an error code, never a read past the end.
"""
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

from fastvpc._kernels.bytes cimport fv_copy

# ---- state slots (int64 array of at least N_STATE entries) ---------------------------
S_POS = 0        # IN/OUT: byte offset where indexing (re)starts / stopped
S_ERR = 1        # OUT: error code (ERR_*), ERR_NONE when stopped cleanly
S_ERRPOS = 2     # OUT: byte offset of the bad record or block
S_ERRVAL = 3     # OUT: the bad value (a length, a linktype, an interface id, ...)
S_BE = 4         # IN/OUT (pcapng): current section is big-endian
S_NIF = 5        # IN/OUT (pcapng): interfaces defined in the current section
S_SKIPPED = 6    # IN/OUT: packets skipped because of their linktype
S_SECTION = 7    # IN/OUT (pcapng): a Section Header Block has been seen
N_STATE = 8

# ---- error codes --------------------------------------------------------------------
ERR_NONE = 0
ERR_TRUNC_HEADER = 1     # a record header / block header runs past the end of the file
ERR_TRUNC_DATA = 2       # caplen / block length runs past the end of the file
ERR_CAPLEN_SNAPLEN = 3   # caplen larger than the snapshot length
ERR_ZERO_LEN = 4         # a record with caplen 0
ERR_BLOCK_LEN = 5        # pcapng block length not a multiple of 4, or too short for its type
ERR_TRAILER = 6          # pcapng trailing block length differs from the leading one
ERR_BOM = 7              # pcapng byte-order magic is neither 0x1A2B3C4D nor its swap
ERR_LINKTYPE = 8         # a packet on a non-Ethernet link (value: the linktype)
ERR_IFACE = 9            # a packet names an interface that was not described
ERR_IFACE_FULL = 10      # the interface table is full: grow it and call again
ERR_OPTION = 11          # an option runs past the end of its block
ERR_VERSION = 12         # pcapng section major version is not 1
ERR_TSRESOL = 13         # if_tsresol out of range
ERR_NO_SECTION = 14      # a pcapng block before any Section Header Block
ERR_CAPLEN_BLOCK = 15    # pcapng caplen larger than its block

# ---- interface table columns (int64[:, N_IFCOL]) --------------------------------------
IF_LINKTYPE = 0
IF_SNAPLEN = 1
IF_TSKIND = 2    # 0: decimal resolution 10^-k, 1: binary resolution 2^-k
IF_TSEXP = 3     # k
IF_TSOFFSET = 4  # if_tsoffset in seconds
N_IFCOL = 5

cdef enum:
    _S_POS = 0
    _S_ERR = 1
    _S_ERRPOS = 2
    _S_ERRVAL = 3
    _S_BE = 4
    _S_NIF = 5
    _S_SKIPPED = 6
    _S_SECTION = 7
    _N_STATE = 8

cdef enum:
    _IF_LINKTYPE = 0
    _IF_SNAPLEN = 1
    _IF_TSKIND = 2
    _IF_TSEXP = 3
    _IF_TSOFFSET = 4
    _N_IFCOL = 5

cdef enum:
    E_NONE = 0
    E_TRUNC_HEADER = 1
    E_TRUNC_DATA = 2
    E_CAPLEN_SNAPLEN = 3
    E_ZERO_LEN = 4
    E_BLOCK_LEN = 5
    E_TRAILER = 6
    E_BOM = 7
    E_LINKTYPE = 8
    E_IFACE = 9
    E_IFACE_FULL = 10
    E_OPTION = 11
    E_VERSION = 12
    E_TSRESOL = 13
    E_NO_SECTION = 14
    E_CAPLEN_BLOCK = 15

cdef enum:
    BT_SHB = 0x0A0D0D0A
    BT_IDB = 1
    BT_OPB = 2
    BT_SPB = 3
    BT_EPB = 6

cdef uint64_t NS = 1000000000
cdef int64_t U32MAX = 4294967295


cdef extern from *:
    uint32_t __builtin_bswap32(uint32_t x) nogil


cdef inline bint _little_host() noexcept nogil:
    cdef uint32_t one = 1
    return (<uint8_t*>&one)[0] == 1      # a constant the compiler folds


cdef inline uint16_t rd16(const uint8_t* p, bint be) noexcept nogil:
    if be:
        return <uint16_t>((<uint16_t>p[0] << 8) | p[1])
    return <uint16_t>((<uint16_t>p[1] << 8) | p[0])


cdef inline uint32_t rd32(const uint8_t* p, bint be) noexcept nogil:
    # one unaligned load and, when the file's byte order is not the host's, one byte swap
    cdef uint32_t v
    memcpy(&v, p, 4)
    if (be != 0) == _little_host():
        v = __builtin_bswap32(v)
    return v


cdef inline void wr32(uint8_t* p, uint32_t v, bint be) noexcept nogil:
    if be:
        p[0] = <uint8_t>(v >> 24); p[1] = <uint8_t>(v >> 16); p[2] = <uint8_t>(v >> 8); p[3] = <uint8_t>v
    else:
        p[3] = <uint8_t>(v >> 24); p[2] = <uint8_t>(v >> 16); p[1] = <uint8_t>(v >> 8); p[0] = <uint8_t>v


cdef inline void set_err(int64_t[::1] state, int64_t code, int64_t pos, int64_t value) noexcept nogil:
    state[_S_ERR] = code
    state[_S_ERRPOS] = pos
    state[_S_ERRVAL] = value


# =========================================================================== classic pcap

cdef Py_ssize_t _index_pcap(const uint8_t[::1] buf, int64_t[::1] out_off, int64_t[::1] out_len,
                            int64_t[::1] out_ts, int64_t[::1] state, bint be, bint nanosecond,
                            int64_t snaplen) noexcept nogil:
    cdef int64_t size = buf.shape[0]
    cdef int64_t pos = state[_S_POS]
    cdef Py_ssize_t n = 0, cap = out_off.shape[0]
    cdef const uint8_t* p
    cdef uint64_t sec, frac, mul = 1 if nanosecond else 1000
    cdef int64_t caplen
    if out_len.shape[0] < cap:
        cap = out_len.shape[0]
    if out_ts.shape[0] < cap:
        cap = out_ts.shape[0]
    state[_S_ERR] = E_NONE
    if pos < 0 or pos > size:
        set_err(state, E_TRUNC_HEADER, pos, size)
        return 0
    while n < cap and pos < size:
        if size - pos < 16:
            set_err(state, E_TRUNC_HEADER, pos, size - pos)
            break
        p = &buf[pos]
        caplen = rd32(p + 8, be)
        if caplen == 0:
            set_err(state, E_ZERO_LEN, pos, 0)
            break
        if snaplen > 0 and caplen > snaplen:
            set_err(state, E_CAPLEN_SNAPLEN, pos, caplen)
            break
        if caplen > size - pos - 16:
            set_err(state, E_TRUNC_DATA, pos, caplen)
            break
        sec = rd32(p, be)
        frac = rd32(p + 4, be)
        out_off[n] = pos + 16
        out_len[n] = caplen
        out_ts[n] = <int64_t>(sec * NS + frac * mul)
        n += 1
        pos += 16 + caplen
    state[_S_POS] = pos
    return n


def index_pcap(const uint8_t[::1] buf,    # IN: the whole file (header included)
               int64_t[::1] out_off,      # OUT: offset of frame i in buf
               int64_t[::1] out_len,      # OUT: captured length of frame i
               int64_t[::1] out_ts,       # OUT: timestamp of frame i, ns since the epoch
               int64_t[::1] state,        # IN/OUT: S_POS in (first record), S_* out
               bint big_endian,           # IN: the file's byte order
               bint nanosecond,           # IN: the file's timestamps are ns (else us)
               int64_t snaplen,           # IN: the header's snaplen (<= 0: no limit)
               ) -> int:
    """Index classic pcap records from ``state[S_POS]`` until the end, an error or full
    output arrays.  Returns the number of records written; ``state[S_POS]`` is left on
    the first record not indexed."""
    cdef Py_ssize_t n
    if state.shape[0] < _N_STATE:
        raise ValueError(f"state needs {_N_STATE} entries, got {state.shape[0]}")
    with nogil:
        n = _index_pcap(buf, out_off, out_len, out_ts, state, big_endian, nanosecond, snaplen)
    return n


# =========================================================================== pcapng

cdef inline int64_t ts_to_ns(uint64_t u, const int64_t[:, ::1] ifaces, int64_t i) noexcept nogil:
    cdef int64_t kind = ifaces[i, _IF_TSKIND]
    cdef int64_t k = ifaces[i, _IF_TSEXP]
    cdef uint64_t ns, p10, frac
    cdef int64_t j
    if kind == 0:
        p10 = 1
        if k <= 9:
            for j in range(9 - k):
                p10 *= 10
            ns = u * p10
        else:
            for j in range(k - 9):
                p10 *= 10
            ns = u // p10
    else:
        frac = u & ((<uint64_t>1 << k) - 1) if k > 0 else 0
        ns = (u >> k) * NS
        if k > 33:
            frac >>= (k - 33)
            k = 33
        ns += (frac * NS) >> k
    ns += <uint64_t>ifaces[i, _IF_TSOFFSET] * NS
    return <int64_t>ns


cdef int _parse_idb(const uint8_t* b, int64_t blen, int64_t bpos, bint be,
                    int64_t[:, ::1] ifaces, int64_t row, int64_t[::1] state) noexcept nogil:
    """Fill ifaces[row] from an IDB at b (blen bytes, already checked >= 20). 0 or error."""
    cdef int64_t opos = 16, end = blen - 4, olen, code, v
    ifaces[row, _IF_LINKTYPE] = rd16(b + 8, be)
    ifaces[row, _IF_SNAPLEN] = rd32(b + 12, be)
    ifaces[row, _IF_TSKIND] = 0
    ifaces[row, _IF_TSEXP] = 6
    ifaces[row, _IF_TSOFFSET] = 0
    while opos + 4 <= end:
        code = rd16(b + opos, be)
        olen = rd16(b + opos + 2, be)
        if code == 0:
            break
        if olen > end - opos - 4:
            set_err(state, E_OPTION, bpos + opos, olen)
            return E_OPTION
        if code == 9 and olen >= 1:
            v = b[opos + 4]
            if v & 0x80:
                if (v & 0x7F) > 63:
                    set_err(state, E_TSRESOL, bpos + opos, v)
                    return E_TSRESOL
                ifaces[row, _IF_TSKIND] = 1
                ifaces[row, _IF_TSEXP] = v & 0x7F
            else:
                if v > 18:
                    set_err(state, E_TSRESOL, bpos + opos, v)
                    return E_TSRESOL
                ifaces[row, _IF_TSKIND] = 0
                ifaces[row, _IF_TSEXP] = v
        elif code == 14 and olen >= 8:
            if be:
                ifaces[row, _IF_TSOFFSET] = <int64_t>((<uint64_t>rd32(b + opos + 4, be) << 32) | rd32(b + opos + 8, be))
            else:
                ifaces[row, _IF_TSOFFSET] = <int64_t>((<uint64_t>rd32(b + opos + 8, be) << 32) | rd32(b + opos + 4, be))
        opos += 4 + ((olen + 3) & ~3)
    return 0


cdef Py_ssize_t _index_pcapng(const uint8_t[::1] buf, int64_t[::1] out_off, int64_t[::1] out_len,
                              int64_t[::1] out_ts, int64_t[:, ::1] ifaces, int64_t[::1] state,
                              bint skip_other) noexcept nogil:
    cdef int64_t size = buf.shape[0]
    cdef int64_t pos = state[_S_POS]
    cdef Py_ssize_t n = 0, cap = out_off.shape[0]
    cdef int64_t if_cap = ifaces.shape[0]
    cdef const uint8_t* b
    cdef uint32_t btype, bom
    cdef int64_t blen, caplen, iface, snap, hdr
    cdef uint64_t ts
    cdef bint be = state[_S_BE] != 0
    if out_len.shape[0] < cap:
        cap = out_len.shape[0]
    if out_ts.shape[0] < cap:
        cap = out_ts.shape[0]
    state[_S_ERR] = E_NONE
    if ifaces.shape[1] < _N_IFCOL:
        set_err(state, E_IFACE_FULL, pos, 0)
        return 0
    if pos < 0 or pos > size:
        set_err(state, E_TRUNC_HEADER, pos, size)
        return 0
    while pos < size:
        if size - pos < 12:
            set_err(state, E_TRUNC_HEADER, pos, size - pos)
            break
        b = &buf[pos]
        btype = rd32(b, be)
        if btype == BT_SHB:
            bom = rd32(b + 8, False)
            if bom == 0x1A2B3C4D:
                be = False
            elif bom == 0x4D3C2B1A:
                be = True
            else:
                set_err(state, E_BOM, pos, bom)
                break
        elif not state[_S_SECTION]:
            set_err(state, E_NO_SECTION, pos, btype)
            break
        blen = rd32(b + 4, be)
        if blen < 12 or (blen & 3):
            set_err(state, E_BLOCK_LEN, pos, blen)
            break
        if blen > size - pos:
            set_err(state, E_TRUNC_DATA, pos, blen)
            break
        if rd32(b + blen - 4, be) != <uint32_t>blen:
            set_err(state, E_TRAILER, pos, rd32(b + blen - 4, be))
            break
        if btype == BT_SHB:
            if blen < 28:
                set_err(state, E_BLOCK_LEN, pos, blen)
                break
            if rd16(b + 12, be) != 1:
                set_err(state, E_VERSION, pos, rd16(b + 12, be))
                break
            state[_S_BE] = be
            state[_S_SECTION] = 1
            state[_S_NIF] = 0
        elif btype == BT_IDB:
            if blen < 20:
                set_err(state, E_BLOCK_LEN, pos, blen)
                break
            if state[_S_NIF] >= if_cap:
                set_err(state, E_IFACE_FULL, pos, state[_S_NIF])
                break
            if _parse_idb(b, blen, pos, be, ifaces, state[_S_NIF], state) != 0:
                break
            state[_S_NIF] += 1
        elif btype == BT_EPB or btype == BT_OPB or btype == BT_SPB:
            if n >= cap:
                break
            if btype == BT_SPB:
                hdr = 12
                if blen < 16:
                    set_err(state, E_BLOCK_LEN, pos, blen)
                    break
                iface = 0
                if state[_S_NIF] < 1:
                    set_err(state, E_IFACE, pos, 0)
                    break
                caplen = rd32(b + 8, be)           # original length
                if caplen > blen - 16:
                    caplen = blen - 16
                snap = ifaces[0, _IF_SNAPLEN]
                if snap > 0 and caplen > snap:
                    caplen = snap
            else:
                hdr = 28
                if blen < 32:
                    set_err(state, E_BLOCK_LEN, pos, blen)
                    break
                if btype == BT_EPB:
                    iface = rd32(b + 8, be)
                else:
                    iface = rd16(b + 8, be)
                if iface >= state[_S_NIF]:
                    set_err(state, E_IFACE, pos, iface)
                    break
                caplen = rd32(b + 20, be)
                if caplen > blen - 32:
                    set_err(state, E_CAPLEN_BLOCK, pos, caplen)
                    break
                snap = ifaces[iface, _IF_SNAPLEN]
                if snap > 0 and caplen > snap:
                    set_err(state, E_CAPLEN_SNAPLEN, pos, caplen)
                    break
            if ifaces[iface, _IF_LINKTYPE] != 1:
                if skip_other:
                    state[_S_SKIPPED] += 1
                    pos += blen
                    continue
                set_err(state, E_LINKTYPE, pos, ifaces[iface, _IF_LINKTYPE])
                break
            if caplen == 0:
                set_err(state, E_ZERO_LEN, pos, 0)
                break
            out_off[n] = pos + hdr
            out_len[n] = caplen
            if btype == BT_SPB:
                out_ts[n] = -1
            else:
                ts = (<uint64_t>rd32(b + 12, be) << 32) | rd32(b + 16, be)
                out_ts[n] = ts_to_ns(ts, ifaces, iface)
            n += 1
        pos += blen
    state[_S_POS] = pos
    return n


def index_pcapng(const uint8_t[::1] buf,      # IN: the whole file
                 int64_t[::1] out_off,        # OUT: offset of frame i in buf
                 int64_t[::1] out_len,        # OUT: captured length of frame i
                 int64_t[::1] out_ts,         # OUT: timestamp of frame i, ns (-1: none, SPB)
                 int64_t[:, ::1] ifaces,      # IN/OUT: interface table, IF_* columns
                 int64_t[::1] state,          # IN/OUT: S_POS, S_BE, S_NIF, S_SECTION, S_SKIPPED in; S_* out
                 bint skip_other,             # IN: skip (and count) non-Ethernet packets
                 ) -> int:
    """Index pcapng packet blocks (EPB, SPB, obsolete PB) from ``state[S_POS]`` until the
    end, an error, or full output arrays; other blocks are skipped by their length.
    Returns the number of frames written."""
    cdef Py_ssize_t n
    if state.shape[0] < _N_STATE:
        raise ValueError(f"state needs {_N_STATE} entries, got {state.shape[0]}")
    with nogil:
        n = _index_pcapng(buf, out_off, out_len, out_ts, ifaces, state, skip_other)
    return n


# =========================================================================== writer

cdef int64_t _pack_pcap(const uint8_t[::1] data, const int64_t[::1] offsets, const int64_t[::1] ts,
                        uint8_t[::1] out, bint be, bint nanosecond, int64_t snaplen) noexcept nogil:
    cdef Py_ssize_t i, n = offsets.shape[0] - 1
    cdef int64_t pos = 0, a, ln, caplen, t, size = out.shape[0], dlen = data.shape[0]
    cdef uint64_t sec, frac
    cdef bint have_ts = ts.shape[0] > 0
    if n < 0 or (have_ts and ts.shape[0] != n):
        return -2
    for i in range(n):
        a = offsets[i]
        ln = offsets[i + 1] - a
        if a < 0 or ln < 0 or ln > dlen - a:
            return i
        caplen = ln if ln < snaplen else snaplen
        if caplen > U32MAX or ln > U32MAX or 16 + caplen > size - pos:
            return i
        t = ts[i] if have_ts else 0
        if t < 0:
            t = 0
        sec = <uint64_t>t // NS
        frac = <uint64_t>t % NS
        if sec > <uint64_t>U32MAX:
            return i
        if not nanosecond:
            frac //= 1000
        wr32(&out[pos], <uint32_t>sec, be)
        wr32(&out[pos + 4], <uint32_t>frac, be)
        wr32(&out[pos + 8], <uint32_t>caplen, be)
        wr32(&out[pos + 12], <uint32_t>ln, be)
        if caplen:
            memcpy(&out[pos + 16], &data[a], <size_t>caplen)
        pos += 16 + caplen
    return -1


def pack_pcap(const uint8_t[::1] data,       # IN: frame bytes
              const int64_t[::1] offsets,    # IN: Arrow-style offsets, n+1
              const int64_t[::1] ts,         # IN: timestamps ns (n), or empty for all 0; < 0 written as 0
              uint8_t[::1] out,              # OUT: 16*n + sum(min(len, snaplen)) bytes of records
              bint big_endian,               # IN: byte order to write
              bint nanosecond,               # IN: write ns fractions (else us, truncated)
              int64_t snaplen,               # IN: frames longer are cut (orig_len keeps the length)
              ) -> int:
    """Write classic pcap records (no file header) for every frame into ``out``.
    Returns -1, or the index of the first frame that cannot be written (bad offsets,
    timestamp past 2106, ``out`` too small), or -2 when the array lengths disagree."""
    cdef int64_t r
    with nogil:
        r = _pack_pcap(data, offsets, ts, out, big_endian, nanosecond, snaplen)
    return r


# =========================================================================== index + compact

cdef Py_ssize_t _compact_pcap(uint8_t[::1] buf, int64_t end, int64_t[::1] offsets, int64_t[::1] out_ts,
                              int64_t[::1] state, bint be, bint nanosecond, int64_t snaplen) noexcept nogil:
    cdef int64_t pos = state[_S_POS]
    cdef int64_t dst = offsets[0]
    cdef Py_ssize_t n = 0, cap = out_ts.shape[0]
    cdef uint8_t* base = &buf[0]
    cdef int64_t* po = &offsets[0]
    cdef int64_t* pts = &out_ts[0] if cap > 0 else NULL
    cdef const uint8_t* p
    cdef uint64_t sec, frac, mul = 1 if nanosecond else 1000
    cdef int64_t caplen
    # a record's header is read whole before its frame moves down over it (dst <= pos), and its
    # length is checked before a byte of the frame is touched
    cdef uint64_t lim = <uint64_t>snaplen if snaplen > 0 else <uint64_t>0xFFFFFFFF
    if offsets.shape[0] - 1 < cap:
        cap = offsets.shape[0] - 1
    state[_S_ERR] = E_NONE
    if end > buf.shape[0] or pos < 0 or pos > end or dst < 0 or dst > pos:
        set_err(state, E_TRUNC_HEADER, pos, end)
        return 0
    while n < cap and pos < end:
        if end - pos < 16:
            set_err(state, E_TRUNC_HEADER, pos, end - pos)
            break
        p = base + pos
        caplen = rd32(p + 8, be)
        if <uint64_t>(caplen - 1) >= lim:           # 0, or past the snaplen: one compare for both
            if caplen == 0:
                set_err(state, E_ZERO_LEN, pos, 0)
            else:
                set_err(state, E_CAPLEN_SNAPLEN, pos, caplen)
            break
        if caplen > end - pos - 16:
            set_err(state, E_TRUNC_DATA, pos, caplen)
            break
        sec = rd32(p, be)
        frac = rd32(p + 4, be)
        pts[n] = <int64_t>(sec * NS + frac * mul)
        fv_copy(base + dst, p + 16, caplen)      # dst <= pos: every record so far lost its 16-byte header
        dst += caplen
        n += 1
        po[n] = dst
        pos += 16 + caplen
    state[_S_POS] = pos
    return n


def compact_pcap(uint8_t[::1] buf,           # IN/OUT: classic pcap records in; their frames moved down to offsets[0]
                 int64_t end,                # IN: bytes of buf that hold file data
                 int64_t[::1] offsets,       # IN/OUT: offsets[0] in (where the first frame goes, <= state[S_POS]);
                                             #         OUT: offsets[1..n], Arrow-style ends of the frames
                 int64_t[::1] out_ts,        # OUT: timestamp of frame i, ns since the epoch
                 int64_t[::1] state,         # IN/OUT: S_POS in (first record), S_* out (as index_pcap)
                 bint big_endian,            # IN: the file's byte order
                 bint nanosecond,            # IN: the file's timestamps are ns (else us)
                 int64_t snaplen,            # IN: the header's snaplen (<= 0: no limit)
                 ) -> int:
    """Index classic pcap records of ``buf[state[S_POS]:end]`` and move their frames, in the same pass,
    down into one contiguous run from ``offsets[0]``: afterwards ``buf[offsets[i]:offsets[i+1]]`` is
    frame i (a FrameBatch over ``buf`` without a second buffer).  Stops like :func:`index_pcap` (the
    end of ``buf[:end]``, an error, or ``min(len(out_ts), len(offsets) - 1)`` frames), with the same
    ``state`` codes; the bytes from ``state[S_POS]`` on are left untouched.  Returns the frames."""
    cdef Py_ssize_t n
    if state.shape[0] < _N_STATE:
        raise ValueError(f"state needs {_N_STATE} entries, got {state.shape[0]}")
    if offsets.shape[0] < 1:
        raise ValueError("offsets needs at least 1 entry (offsets[0]: where the first frame goes)")
    if buf.shape[0] == 0:
        state[_S_ERR] = E_NONE
        return 0
    with nogil:
        n = _compact_pcap(buf, end, offsets, out_ts, state, big_endian, nanosecond, snaplen)
    return n


def copy_within(uint8_t[::1] buf,    # IN/OUT: the bytes
                int64_t dst,          # IN: where the n bytes go
                int64_t src,          # IN: where they come from (the ranges may overlap either way)
                int64_t n,            # IN: how many
                ) -> None:
    """``buf[dst:dst+n] = buf[src:src+n]`` with the copy the compaction and the replay records use
    (``_kernels/bytes.pxd`` ``fv_copy``, memmove semantics), so that it can be checked against
    numpy for every length and overlap.  A range outside ``buf`` raises ValueError."""
    if n < 0 or dst < 0 or src < 0 or n > buf.shape[0] - dst or n > buf.shape[0] - src:
        raise ValueError(f"copy_within: {n} bytes from {src} to {dst} do not fit in {buf.shape[0]}")
    if n == 0:
        return
    with nogil:
        fv_copy(&buf[dst], &buf[src], n)
