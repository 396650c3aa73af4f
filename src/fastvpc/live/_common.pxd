# What the two I/O engines (BatchIO in _mmsg.pyx, RxRing/TxRing in _rings.pyx) share: the
# indices of the stats array, the socket limit, and the verdict -> output port rule with its
# argument checks, so both send paths apply exactly the same rules.

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memmove

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
    _ST_RX_SEGMENTED = 9    # TCP packets over the slot (TSO/GSO from a veth) cut into MTU-sized segments
    _ST_TX_REFUSED = 10     # frames the egress interface refused (veth: over its peer's MTU; peer down): dropped
    _ST_RX_VLAN = 11        # frames whose VLAN tag the kernel had stripped into the metadata: tag put back
    _STATS_LEN = 12

# The IP MTU the segments of a cut TSO/GSO packet respect (Ethernet's; the lab's hosts have it).
cdef enum:
    _SEG_MTU = 1500


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


cdef inline int64_t _put_tagged(uint8_t *dst,          # OUT: the frame with its tag, ln + 4 bytes
                                const uint8_t *src,    # IN:  the frame as received (may overlap dst, dst <= src)
                                int64_t ln,            # IN:  its length, >= 12
                                uint32_t vlan) noexcept nogil:   # IN: (TPID << 16) | TCI (fv_pkt_vlan)
    """Write the frame back as it was on the wire: the kernel took its 802.1Q/802.1ad tag off into the
    packet metadata (rx-vlan-offload), so without it a tagged frame would pass for an untagged one; with
    it the pass sees the tag (NON_IPV4, DESIGN §1).  Returns the new length."""
    cdef uint8_t macs[12]
    memcpy(macs, src, 12)             # before the tail moves: it may land on them
    memmove(dst + 16, src + 12, <size_t>(ln - 12))
    memcpy(dst, macs, 12)
    dst[12] = <uint8_t>(vlan >> 24)
    dst[13] = <uint8_t>(vlan >> 16)
    dst[14] = <uint8_t>(vlan >> 8)
    dst[15] = <uint8_t>vlan
    return ln + 4


cdef inline bint _must_cut(int64_t ln) noexcept nogil:
    """Is an Ethernet frame of ``ln`` bytes longer than the MTU, so the receive ring must cut it (when it is
    TCP/IPv4) before forwarding?  Every TSO/GSO packet is, whether or not it exceeds the ring's slot: a
    two-segment packet with a short tail (1448 + 224 bytes) is a 1738-byte frame, under a 2048-byte
    slot, and left whole the egress veth drops it (over its MTU: ENOBUFS) while the transmit ring puts
    it back and retries it forever, stalling the port."""
    return ln > 14 + _SEG_MTU


cdef inline int _tcp_split(const uint8_t *f, int64_t ln, int64_t mtu, uint8_t *out, int64_t room,
                           int maxseg, int64_t *offsets, int64_t base, int64_t *used) noexcept nogil:
    """Split the TCP/IPv4 packet in Ethernet frame ``f`` (``ln`` bytes; a TSO/GSO packet a veth handed
    over whole) into segments of at most ``mtu`` IP bytes, as the sender's NIC would: written back to
    back at ``out`` (``room`` bytes), ``offsets[j]`` := ``base`` + segment ``j``'s start, ``used`` := the
    bytes written.  Each segment: the headers copied, IP total length, ID (+j) and header checksum, TCP
    sequence number (+ payload offset), FIN/PSH only on the last, CWR only on the first, and the
    full TCP checksum.  Returns the number of segments; 0 when they do not fit in ``room`` or
    ``maxseg``; -1 when the frame is not a whole unfragmented TCP/IPv4 packet."""
    cdef const uint8_t *ip
    cdef const uint8_t *tcp
    cdef uint8_t *o
    cdef uint8_t *oip
    cdef uint8_t *otcp
    cdef int64_t ihl, thl, tot, hdr, mss, payload, nseg, j, L, pos = 0
    cdef uint32_t seq0, seq, ipid
    cdef uint64_t s
    cdef int k
    if ln < 54 or f[12] != 0x08 or f[13] != 0x00:
        return -1
    ip = f + 14
    if (ip[0] >> 4) != 4:
        return -1
    ihl = (ip[0] & 15) * 4
    tot = (ip[2] << 8) | ip[3]
    if ihl < 20 or ip[9] != 6 or (ip[6] & 0x3F) or ip[7] or tot < ihl + 20 or 14 + tot > ln:
        return -1
    tcp = ip + ihl
    thl = (tcp[12] >> 4) * 4
    if thl < 20 or ihl + thl > tot:
        return -1
    hdr = 14 + ihl + thl
    mss = mtu - ihl - thl
    payload = tot - ihl - thl
    if mss < 8 or payload <= 0:
        return -1
    nseg = (payload + mss - 1) // mss
    if nseg > maxseg or nseg * hdr + payload > room:
        return 0
    seq0 = (<uint32_t>tcp[4] << 24) | (<uint32_t>tcp[5] << 16) | (<uint32_t>tcp[6] << 8) | tcp[7]
    for j in range(nseg):
        L = payload - j * mss
        if L > mss:
            L = mss
        o = out + pos
        memcpy(o, f, <size_t>hdr)
        memcpy(o + hdr, f + hdr + j * mss, <size_t>L)
        oip = o + 14
        oip[2] = <uint8_t>((ihl + thl + L) >> 8)
        oip[3] = <uint8_t>((ihl + thl + L) & 0xFF)
        ipid = (((<uint32_t>ip[4] << 8) | ip[5]) + <uint32_t>j) & 0xFFFF
        oip[4] = <uint8_t>(ipid >> 8)
        oip[5] = <uint8_t>(ipid & 0xFF)
        oip[10] = 0
        oip[11] = 0
        s = 0
        k = 0
        while k < ihl:
            s += (oip[k] << 8) | oip[k + 1]
            k += 2
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        oip[10] = <uint8_t>((~s >> 8) & 0xFF)
        oip[11] = <uint8_t>(~s & 0xFF)
        otcp = oip + ihl
        seq = seq0 + <uint32_t>(j * mss)
        otcp[4] = <uint8_t>(seq >> 24)
        otcp[5] = <uint8_t>(seq >> 16)
        otcp[6] = <uint8_t>(seq >> 8)
        otcp[7] = <uint8_t>seq
        if j < nseg - 1:
            otcp[13] &= ~0x09          # FIN, PSH: the last segment's
        if j > 0:
            otcp[13] &= ~0x80          # CWR: the first segment's
        _complete_l4_csum(o, hdr + L)
        offsets[j] = base + pos
        pos += hdr + L
    used[0] = pos
    return <int>nseg
