# What the two I/O engines (BatchIO in _mmsg.pyx, RxRing/TxRing in _rings.pyx) share: the
# indices of the stats array, the socket limit, and the verdict -> output port rule with its
# argument checks, so both send paths apply exactly the same rules.

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t

# The Action numbers come from the kernels' shared declarations (one source, checked against
# fastvpc.verdicts by tests/kernels/test_kernel_types.py).
from fastvpc._kernels.verdicts cimport ACT_DELIVER, ACT_FORWARD, ACT_REPLY

# Largest number of sockets one BatchIO / RxRing / TxRing serves (Python: MAX_SOCKETS).
cdef enum:
    _MAX_SOCKETS = 64

# Indices into the ``stats`` array (``int64``, at least STATS_LEN entries); Python: ST_*.
cdef enum:
    _ST_RX = 0              # frames received and handed on
    _ST_RX_TRUNCATED = 1    # frames longer than the slot: dropped
    _ST_RX_OUTGOING = 2     # frames the host sent itself: dropped
    _ST_RX_ERRORS = 3       # recvmmsg failures other than EAGAIN/EINTR, corrupt ring headers
    _ST_TX = 4              # frames sent
    _ST_TX_ERRORS = 5       # frames that could not be sent (queue full after retries, link down, ...)
    _ST_TX_UNATTACHED = 6   # DELIVER/FORWARD/REPLY whose egress has no attached interface
    _ST_ROUNDS = 7          # recv calls that returned at least one frame
    _ST_RX_CSUM = 8         # frames the kernel marked checksum-not-ready whose TCP/UDP checksum was completed
    _STATS_LEN = 9


cdef inline int32_t _verdict_port(Py_ssize_t i, const uint8_t *action, const uint8_t *reason,
                                  const int32_t *egress, const int32_t *in_port, int64_t *counts,
                                  Py_ssize_t ncount, int nreason) noexcept nogil:
    """Tally frame ``i``'s verdict; return the port it leaves by (the egress port for DELIVER and
    FORWARD, the ingress port for REPLY), or -1 for a DROP.  Shared by both send paths."""
    cdef int64_t a = action[i]
    cdef int64_t idx = a * nreason + reason[i]
    if 0 <= idx < ncount:
        counts[idx] += 1
    if a == ACT_DELIVER or a == ACT_FORWARD:
        return egress[i]
    if a == ACT_REPLY:
        return in_port[i]
    return -1


cdef inline bint _span_ok(const int64_t *offsets, Py_ssize_t i, int64_t dlen) noexcept nogil:
    """Frame ``i`` is a non-empty span inside the buffer."""
    return 0 <= offsets[i] < offsets[i + 1] <= dlen


cdef inline int _check_send_args(Py_ssize_t n, const int64_t[::1] offsets, const int32_t[::1] in_port,
                                 const uint8_t[::1] reason, const int32_t[::1] egress, int64_t[::1] stats,
                                 int nreason) except -1:
    """The argument checks both send paths make before going nogil."""
    if offsets.shape[0] < n + 1 or in_port.shape[0] < n or reason.shape[0] < n or egress.shape[0] < n:
        raise ValueError(f"arrays are shorter than the {n} frames of action "
                         f"(offsets {offsets.shape[0]}, in_port {in_port.shape[0]}, "
                         f"reason {reason.shape[0]}, egress {egress.shape[0]})")
    if stats.shape[0] < _STATS_LEN:
        raise ValueError(f"stats needs {_STATS_LEN} entries, has {stats.shape[0]}")
    if nreason < 1:
        raise ValueError(f"nreason {nreason} must be >= 1")
    return 0


cdef inline int _check_hold(Py_ssize_t n, const uint8_t[::1] hold) except -1:
    """``hold`` (frames to tally but not send: the gateway neighbour table queued them) covers n frames."""
    if hold.shape[0] < n:
        raise ValueError(f"hold has {hold.shape[0]} entries, the batch {n} frames")
    return 0


cdef inline int _complete_l4_csum(uint8_t *f, int64_t ln) noexcept nogil:
    """Write the full TCP/UDP checksum of Ethernet frame ``f`` (``ln`` bytes) over its IPv4 packet.

    For frames the kernel marks checksum-not-ready (``TP_STATUS_CSUMNOTREADY``: the sender's
    CHECKSUM_PARTIAL, e.g. a veth whose peer keeps checksum offload on), whose checksum field holds
    only the pseudo-header sum.  Returns 1 when a checksum was written, 0 when the frame is not a
    whole (unfragmented) IPv4 TCP/UDP packet inside ``ln`` bytes (left untouched)."""
    cdef int64_t off = 14, ihl, tot, l4len, k
    cdef int et, proto, coff
    cdef uint8_t *ip
    cdef uint8_t *l4
    cdef uint64_t s
    cdef uint32_t c
    if ln < 34:
        return 0
    et = (f[12] << 8) | f[13]
    if et == 0x8100:            # one 802.1Q tag
        if ln < 38:
            return 0
        et = (f[16] << 8) | f[17]
        off = 18
    if et != 0x0800:
        return 0
    ip = f + off
    if (ip[0] >> 4) != 4:
        return 0
    ihl = (ip[0] & 15) * 4
    tot = (ip[2] << 8) | ip[3]
    if ihl < 20 or tot < ihl or off + tot > ln:
        return 0
    if (ip[6] & 0x3F) or ip[7]:      # MF or a fragment offset: no whole L4 segment here
        return 0
    proto = ip[9]
    if proto == 6:
        coff = 16
    elif proto == 17:
        coff = 6
    else:
        return 0
    l4 = ip + ihl
    l4len = tot - ihl
    if l4len < coff + 2:
        return 0
    l4[coff] = 0
    l4[coff + 1] = 0
    s = (<uint64_t>((ip[12] << 8) | ip[13]) + ((ip[14] << 8) | ip[15]) + ((ip[16] << 8) | ip[17])
         + ((ip[18] << 8) | ip[19]) + <uint64_t>proto + <uint64_t>l4len)
    k = 0
    while k + 1 < l4len:
        s += (l4[k] << 8) | l4[k + 1]
        k += 2
    if k < l4len:
        s += l4[k] << 8
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    c = (~(<uint32_t>s)) & 0xFFFF
    if proto == 17 and c == 0:
        c = 0xFFFF
    l4[coff] = <uint8_t>(c >> 8)
    l4[coff + 1] = <uint8_t>(c & 0xFF)
    return 1
