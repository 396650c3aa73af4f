"""Compiled pass of the sharded replay (drivers/sharded.py): every frame's flow shard, and one shard's
frames moved down in place into a batch of their own.

``shard_frames`` gives the shard of every frame (``sharded.shard_of_frames`` is the same function in
numpy, kept as the readable reference and checked equal by the tests): both directions of a flow get
one shard.  Between two addresses of the network's VPCs (a frame from an ENI to an inside address)
the key is the unordered 5-tuple (ICMP: the echo identifier as the port; a first fragment's ports
too, so it meets its flow's table entries; a later fragment, which has none and needs no table
step, its address pair); between the VPC and the outside it is the outside address and protocol (a
NAT gateway or the IGW's 1:1 translation rewrites only the inside side, so a translated flow and its
replies meet, and so do a datagram's later fragments, which a NAT gateway translates by the binding
its first fragment found: docs/edge.md §4; a NAT gateway's port allocation is per outside address,
port and protocol, so every piece of its state lies in one shard).  Frames with no IPv4 flow
(ARP, IPv6, runts) are spread by their capture position (``position % n_shards``).  The hash is the
FlowTable's (``ft_flow_hash``); its high 32 bits pick the shard, ``((h >> 32) * n_shards) >> 32``
(a multiply, not a 64-bit division: the division alone cost more than the rest of the pass).

``select_shard`` does the same and keeps one shard's frames: their bytes are moved down over the
others' (in place: a batch read with ``iter_pcap(reuse=True)`` is a reused window the caller owns
until its next read), their offsets, ports, timestamps and positions written to the caller's arrays.

Const memoryviews in, caller-provided outputs, no GIL, nothing allocated, every index checked.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memmove

from fastvpc.dataplane._flowtable cimport ft_flow_hash


cdef inline uint8_t _at(const uint8_t* f, int64_t ln, int64_t i) noexcept nogil:
    # the frame's byte i, or 0 past its end (as the reference's zero-padded 64-byte header matrix)
    return f[i] if i < ln else 0


cdef inline uint16_t _be16(const uint8_t* f, int64_t ln, int64_t i) noexcept nogil:
    return <uint16_t>((<uint16_t>_at(f, ln, i) << 8) | _at(f, ln, i + 1))


cdef inline uint32_t _be32(const uint8_t* f, int64_t ln, int64_t i) noexcept nogil:
    return ((<uint32_t>_at(f, ln, i) << 24) | (<uint32_t>_at(f, ln, i + 1) << 16)
            | (<uint32_t>_at(f, ln, i + 2) << 8) | <uint32_t>_at(f, ln, i + 3))


cdef inline bint _inside(uint32_t a, const uint32_t* lo, const uint32_t* hi, Py_ssize_t m) noexcept nogil:
    # sorted disjoint inclusive intervals [lo[j], hi[j]]: the last one starting at or before a
    cdef Py_ssize_t l = 0, h = m, mid
    while l < h:
        mid = (l + h) >> 1
        if lo[mid] <= a:
            l = mid + 1
        else:
            h = mid
    return l > 0 and a <= hi[l - 1]


cdef struct NatKeys:
    # sharded.nat_keys' words, checked by _nat_keys_view: the NAT gateways' private IPs, and per ENI row (port + 1)
    # the inside addresses its subnet's route table sends to a NAT gateway
    const uint32_t* ips
    Py_ssize_t n_ips
    const uint32_t* off          # [n_rows + 1] range offsets
    Py_ssize_t n_rows
    const uint32_t* lo           # the ranges' first and last addresses (row r's: [off[r], off[r + 1]))
    const uint32_t* hi


cdef inline int64_t _shard(const uint8_t* f,            # IN  the frame
                           int64_t ln,                  # IN  its length
                           int32_t port,                # IN  its ingress port (-1: unmapped)
                           const uint8_t* is_eni,       # IN  [port + 1]: an ENI's port
                           Py_ssize_t n_eni,
                           const uint32_t* lo, const uint32_t* hi, Py_ssize_t m,   # IN  inside intervals
                           uint64_t n_shards,
                           const NatKeys* nk) noexcept nogil:              # IN  (n_ips = n_rows = 0: none)
    # the frame's shard, or -1 for a frame without an IPv4 flow (spread by position by the caller)
    cdef int64_t ihl, room, at, row
    cdef uint8_t proto
    cdef uint32_t src, dst, a, b
    cdef uint16_t sport = 0, dport = 0, ident = 0, pa, pb
    cdef bint whole, tcpudp, icmp, from_eni, inner
    if not (ln >= 34 and f[12] == 8 and f[13] == 0 and (f[14] >> 4) == 4):
        return -1
    ihl = <int64_t>(f[14] & 15) * 4
    proto = f[23]
    src = _be32(f, ln, 26)
    dst = _be32(f, ln, 30)
    whole = (f[20] & 0x1F) == 0 and f[21] == 0     # offset 0 (a first fragment too): the ports are here
    room = ln - 14 - ihl
    tcpudp = (proto == 6 or proto == 17) and whole and room >= 4 and ihl >= 20
    icmp = proto == 1 and whole and room >= 8 and ihl >= 20
    at = 14 + ihl
    if tcpudp:
        sport = _be16(f, ln, at)
        dport = _be16(f, ln, at + 2)
    elif icmp:
        ident = _be16(f, ln, at + 4)
    row = <int64_t>port + 1
    if row < 0:
        row = 0
    if row > n_eni - 1:
        row = n_eni - 1
    from_eni = n_eni > 0 and is_eni[row] != 0
    inner = from_eni and _inside(dst, lo, hi, m)
    if inner and nk.n_ips and _inside(dst, nk.ips, nk.ips, nk.n_ips):     # the addresses as one-address ranges
        # to a NAT gateway's address (its reply path): the far side is the source, as for an outside flow
        inner = False
        dst = src
    elif inner and row < nk.n_rows and nk.off[row + 1] > nk.off[row] \
            and _inside(dst, nk.lo + nk.off[row], nk.hi + nk.off[row], nk.off[row + 1] - nk.off[row]):
        inner = False            # routed to a NAT gateway: the far side is the destination
    if inner:
        a, b = src, dst
        pa = ident if icmp else sport
        pb = dport
    elif from_eni:               # with the outside: its address only (a later fragment has no port)
        a, b, pa, pb = dst, 0, 0, 0
    else:
        a, b, pa, pb = src, 0, 0, 0
    return <int64_t>(((ft_flow_hash(proto, a, b, pa, pb) >> 32) * n_shards) >> 32)


cdef int _nat_keys_view(const uint32_t[::1] w, NatKeys* nk, str who) except -1:
    """nk over ``w`` (sharded.nat_keys' layout: n_ips, the sorted IPs, n_rows, n_rows + 1 range offsets from 0,
    non-decreasing, then the ranges' first addresses, then their last ones), or ValueError naming what does
    not fit."""
    cdef Py_ssize_t n = w.shape[0] if w is not None else 0, at, r, n_ranges
    nk.n_ips = 0
    nk.n_rows = 0
    nk.ips = NULL
    nk.off = NULL
    nk.lo = NULL
    nk.hi = NULL
    if n == 0:
        return 0
    nk.n_ips = w[0]
    at = 1 + nk.n_ips
    if at + 1 > n:
        raise ValueError(f"{who}: nat_keys holds {n} words, too few for {nk.n_ips} NAT addresses")
    nk.n_rows = w[at]
    if at + 1 + nk.n_rows + 1 > n:
        raise ValueError(f"{who}: nat_keys holds {n} words, too few for {nk.n_rows} rows")
    nk.ips = &w[1]
    nk.off = &w[at + 1]
    n_ranges = (n - (at + 2 + nk.n_rows)) // 2
    if nk.off[0] != 0 or nk.off[nk.n_rows] != <uint32_t>n_ranges or at + 2 + nk.n_rows + 2 * n_ranges != n:
        raise ValueError(f"{who}: nat_keys row offsets {nk.off[0]}..{nk.off[nk.n_rows]} do not span its "
                         f"{n - (at + 2 + nk.n_rows)} range words ({n_ranges} ranges)")
    for r in range(nk.n_rows):
        if nk.off[r + 1] < nk.off[r]:
            raise ValueError(f"{who}: nat_keys row {r}'s offsets decrease")
    if n_ranges:
        nk.lo = &w[at + 2 + nk.n_rows]
        nk.hi = nk.lo + n_ranges
    return 0


def shard_frames(const uint8_t[::1] data,         # IN  frame bytes
                 const int64_t[::1] offsets,      # IN  n + 1 frame offsets into data
                 const int32_t[::1] ports,        # IN  n ingress ports (-1: mapped to no ENI)
                 const uint8_t[::1] is_eni,       # IN  [port + 1] != 0: the port is an ENI's
                 const uint32_t[::1] inside_lo,   # IN  the VPCs' addresses: sorted disjoint inclusive
                 const uint32_t[::1] inside_hi,   # IN  intervals [lo, hi]
                 int64_t n_shards,                # IN  >= 1
                 int64_t first,                   # IN  capture position of frame 0 (spreads frames without a flow)
                 uint16_t[::1] out,               # OUT n shards
                 const uint32_t[::1] nat_keys=None,   # IN  sharded.nat_keys (None: no NAT gateway keys)
                 ) -> int:
    """The shard of every frame into ``out``; -1, or the first frame whose offsets lie outside ``data``
    (nothing after it written).  Raises ValueError for mismatched lengths or ``n_shards < 1``."""
    cdef Py_ssize_t n = offsets.shape[0] - 1
    cdef Py_ssize_t i, nd = data.shape[0]
    cdef int64_t s, e
    if n < 0 or ports.shape[0] < n or out.shape[0] < n:
        raise ValueError(f"shard_frames: {n} frames, {ports.shape[0]} ports, room for {out.shape[0]} shards")
    if n_shards < 1 or n_shards > 65535:
        raise ValueError(f"shard_frames: n_shards must be 1..65535, got {n_shards}")
    if inside_lo.shape[0] != inside_hi.shape[0]:
        raise ValueError("shard_frames: inside_lo and inside_hi differ in length")
    cdef NatKeys nk
    _nat_keys_view(nat_keys, &nk, "shard_frames")
    if n == 0:
        return -1
    cdef const uint8_t* base = &data[0] if nd else NULL
    cdef const uint32_t* lo = &inside_lo[0] if inside_lo.shape[0] else NULL
    cdef const uint32_t* hi = &inside_hi[0] if inside_hi.shape[0] else NULL
    cdef const uint8_t* en = &is_eni[0] if is_eni.shape[0] else NULL
    cdef Py_ssize_t bad = -1
    cdef int64_t spread = first % n_shards, h
    with nogil:
        for i in range(n):
            s = offsets[i]
            e = offsets[i + 1]
            if s < 0 or e < s or e > nd:
                bad = i
                break
            h = _shard(base + s, e - s, ports[i], en, is_eni.shape[0], lo, hi, inside_lo.shape[0],
                       <uint64_t>n_shards, &nk)
            out[i] = <uint16_t>(spread if h < 0 else h)
            spread += 1
            if spread == n_shards:
                spread = 0
    return bad


def select_shard(uint8_t[::1] data,               # IN/OUT frame bytes; shard k's frames moved down to the start
                 const int64_t[::1] offsets,      # IN  n + 1 frame offsets into data (increasing)
                 const int32_t[::1] ports,        # IN  n ingress ports
                 const int64_t[::1] ts,           # IN  n timestamps (or none: then out_ts is not written)
                 const uint8_t[::1] is_eni,       # IN  as shard_frames
                 const uint32_t[::1] inside_lo,   # IN
                 const uint32_t[::1] inside_hi,   # IN
                 int64_t n_shards,                # IN
                 int64_t k,                       # IN  the shard kept
                 int64_t first,                   # IN  capture position of frame 0
                 int64_t[::1] out_offsets,        # OUT m + 1 offsets of the kept frames (out_offsets[0] = 0)
                 int32_t[::1] out_ports,          # OUT m ports
                 int64_t[::1] out_ts,             # OUT m timestamps (when ts is given)
                 int64_t[::1] out_position,       # OUT m capture positions (first + i)
                 const uint32_t[::1] nat_keys=None,   # IN  as shard_frames
                 ) -> int:
    """Keep shard ``k``'s frames, in order; returns m, their number.  ``data`` and ``offsets`` may be
    the batch's own (a kept frame only ever moves down, over frames already read: ``offsets`` is read
    before any byte at or after it is written), but ``out_offsets`` must not alias ``offsets``.
    Raises ValueError for short outputs, a bad ``k`` or offsets outside ``data``."""
    cdef Py_ssize_t n = offsets.shape[0] - 1
    cdef Py_ssize_t i, nd = data.shape[0], m = 0
    cdef int64_t s, e, w = 0
    cdef bint with_ts = ts.shape[0] > 0
    if n < 0 or ports.shape[0] < n or (with_ts and ts.shape[0] < n):
        raise ValueError(f"select_shard: {n} frames, {ports.shape[0]} ports, {ts.shape[0]} timestamps")
    if out_offsets.shape[0] < n + 1 or out_ports.shape[0] < n or out_position.shape[0] < n or (with_ts and out_ts.shape[0] < n):
        raise ValueError(f"select_shard: outputs too short for {n} frames")
    if n_shards < 1 or n_shards > 65535 or not 0 <= k < n_shards:
        raise ValueError(f"select_shard: shard {k} of {n_shards}")
    if inside_lo.shape[0] != inside_hi.shape[0]:
        raise ValueError("select_shard: inside_lo and inside_hi differ in length")
    cdef NatKeys nk
    _nat_keys_view(nat_keys, &nk, "select_shard")
    out_offsets[0] = 0
    if n == 0:
        return 0
    if offsets[0] < 0 or offsets[n] > nd:
        raise ValueError(f"select_shard: offsets {offsets[0]}..{offsets[n]} outside {nd} bytes of data")
    cdef uint8_t* base = &data[0] if nd else NULL
    cdef const uint32_t* lo = &inside_lo[0] if inside_lo.shape[0] else NULL
    cdef const uint32_t* hi = &inside_hi[0] if inside_hi.shape[0] else NULL
    cdef const uint8_t* en = &is_eni[0] if is_eni.shape[0] else NULL
    cdef bint bad = False
    cdef int64_t spread = first % n_shards, h
    with nogil:
        for i in range(n):
            s = offsets[i]
            e = offsets[i + 1]
            if e < s or e > nd:
                bad = True
                break
            h = _shard(base + s, e - s, ports[i], en, is_eni.shape[0], lo, hi, inside_lo.shape[0],
                       <uint64_t>n_shards, &nk)
            if h < 0:
                h = spread
            spread += 1
            if spread == n_shards:
                spread = 0
            if h != k:
                continue
            if w != s:
                memmove(base + w, base + s, <size_t>(e - s))
            w += e - s
            out_offsets[m + 1] = w
            out_ports[m] = ports[i]
            if with_ts:
                out_ts[m] = ts[i]
            out_position[m] = first + i
            m += 1
    if bad:
        raise ValueError(f"select_shard: frame {i}'s offsets are not increasing inside the data")
    return m


def merge_records(list srcs,                       # IN  per shard: its pcap records of one chunk (uint8 arrays)
                  const int32_t[::1] pos,          # IN  every shard's records' positions in the chunk, shard after shard,
                                                   #     increasing within a shard
                  const int64_t[::1] pos_start,    # IN  S + 1: shard s's positions are pos[pos_start[s]:pos_start[s + 1]]
                  uint8_t[::1] out,                # OUT the records in capture order (position order)
                  ) -> int:
    """Merge the shards' record streams into capture order: one pass, one copy of every record (its
    length read from its own header: 16 + caplen, little-endian), straight from each shard's buffer
    (a mapped scratch file).  Returns the bytes written; raises ValueError for inconsistent inputs (a
    stream's records not filling its bytes exactly, positions not increasing, ``out`` too small)."""
    cdef Py_ssize_t S = len(srcs)
    cdef Py_ssize_t s, best = -1
    cdef int64_t w = 0, ln, at, bestpos, total = 0
    cdef const uint8_t* r
    cdef const uint8_t[::1] v
    if S < 1 or pos_start.shape[0] != S + 1:
        raise ValueError(f"merge_records: {S} record streams, {pos_start.shape[0]} position starts")
    if S > 256:
        raise ValueError(f"merge_records: at most 256 shards, got {S}")
    if pos_start[0] != 0 or pos_start[S] > pos.shape[0]:
        raise ValueError("merge_records: position starts outside the positions")
    cdef const uint8_t* base[256]
    cdef int64_t size[256]
    cdef int64_t head[256]       # next position index of each shard
    cdef int64_t rhead[256]      # next record byte of each shard
    cdef int64_t last[256]
    keep = []                    # the buffers stay alive (and so their pointers valid) through the pass
    for s in range(S):
        if pos_start[s + 1] < pos_start[s]:
            raise ValueError(f"merge_records: shard {s}'s position starts decrease")
        v = srcs[s]
        keep.append(v)
        base[s] = &v[0] if v.shape[0] else NULL
        size[s] = v.shape[0]
        total += v.shape[0]
        head[s] = pos_start[s]
        rhead[s] = 0
        last[s] = -1
    if out.shape[0] < total:
        raise ValueError(f"merge_records: room for {out.shape[0]} bytes, {total} needed")
    cdef int err = 0
    cdef uint8_t* ob = &out[0] if out.shape[0] else NULL
    with nogil:
        while True:
            best = -1
            bestpos = 0
            for s in range(S):
                if head[s] < pos_start[s + 1] and (best < 0 or pos[head[s]] < bestpos):
                    best = s
                    bestpos = pos[head[s]]
            if best < 0:
                break
            if bestpos <= last[best]:
                err = 1
                break
            last[best] = bestpos
            at = rhead[best]
            if at + 16 > size[best]:
                err = 2
                break
            r = base[best] + at
            ln = 16 + (<int64_t>r[8] | (<int64_t>r[9] << 8) | (<int64_t>r[10] << 16) | (<int64_t>r[11] << 24))
            if at + ln > size[best] or w + ln > total:
                err = 2
                break
            memcpy(ob + w, r, <size_t>ln)
            w += ln
            rhead[best] = at + ln
            head[best] += 1
    if err == 1:
        raise ValueError(f"merge_records: shard {best}'s positions do not increase")
    if err == 2:
        raise ValueError(f"merge_records: shard {best}'s records overrun its bytes")
    for s in range(S):
        if rhead[s] != size[s]:
            raise ValueError(f"merge_records: shard {s} has {size[s] - rhead[s]} bytes beyond its records")
    return w
