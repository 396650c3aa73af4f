"""fastvpc flow logs: the compiled aggregation of a pass's verdicts into VPC Flow Log records.

The public class is :class:`fastvpc.dataplane.flowlogs.FlowLog` (``fastvpc.FlowLog``); this module is
its storage and its per-frame work, with no Python per frame:

* ``FlowLogCore._observe`` reads, for each frame of a processed batch, its verdict (``Result.action``,
  ``reason``, ``egress``, ``route``) and its IPv4/TCP/UDP/ICMP header (the shared parser,
  ``_kernels/headers.pxd``), decides which records the frame adds to (DESIGN.md §7: the sender's
  egress record, the receiver's ingress record, ACCEPT or REJECT) and adds it to them in one
  open-addressing hash table.  nogil, nothing allocated: when the table would pass its load limit the
  pass stops and returns the index of the first frame it did not touch; the caller grows the table
  (``_grow``, a compiled rehash) and calls again from there, so a frame is never half counted.
* ``_format_text`` writes records as AWS's space-separated text lines into a caller's buffer, and
  ``format_ipv4`` dotted quads for the string columns of ``records()`` and Parquet.

Table layout.  ``n_slots`` (a power of two) 64-byte ``FlEntry`` slots, 64-byte aligned,, linear probing from
``hash & (n_slots - 1)``; an empty slot (``seq == 0``) ends every probe; the load stays <= 0.6.
Entries are never deleted one by one: ``_take`` (closing windows) rebuilds the table from what stays.

The key of a record: (interface, the packet's 5-tuple, direction, action, window start).  The
packet's own addresses are kept (``pkt-srcaddr``/``pkt-dstaddr``); ``srcaddr``/``dstaddr`` are made
at output from them and the interface's primary IPv4, as AWS does.

Speed: frames go in chunks of CHUNK.  The first half of a chunk parses the frames and makes their
legs (the records they count in, with the key's hash), prefetching each leg's home slot; the second
half counts the legs in frame order.  So ~CHUNK cache misses into a large table are in flight at once
instead of one, and the result is exactly that of counting frame by frame.
"""
cimport cython
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t
from libc.string cimport memset, memcpy

import numpy as np

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.headers cimport (Hdr, parse_headers, CF_IPV4_OK, CF_L4, IPPROTO_TCP, IPPROTO_UDP,
                                       IPPROTO_ICMP)
from fastvpc._kernels.tables cimport (HashTab, ht_get, RK_ENI, RK_PEERING, RK_LOCAL, FV_HV_NONE,
                                      FV_HV_INDEX_MASK, FV_HV_ENI)
from fastvpc._kernels.spans cimport fv_first_start, fv_next_span

cdef extern from *:
    """
    #define FL_NS 1000000000LL
    #define FL_CHUNK 64
    #define FL_IF_NONE 0xFFFFFFFFu
    #if defined(__GNUC__) || defined(__clang__)
    #define fl_prefetch_w(p) __builtin_prefetch((const void*)(p), 1, 3)
    #define fl_prefetch_r(p) __builtin_prefetch((const void*)(p), 0, 3)
    #else
    #define fl_prefetch_w(p) ((void)(p))
    #define fl_prefetch_r(p) ((void)(p))
    #endif
    """
    void fl_prefetch_w(const void* p) noexcept nogil
    void fl_prefetch_r(const void* p) noexcept nogil
    enum: CHUNK "FL_CHUNK"      # frames per make-legs / count-legs round (legs on the stack)
    const int64_t NS "FL_NS"
    const uint32_t IF_NONE "FL_IF_NONE"   # no interface of this log (no ENI, or one the log does not cover)


# ----------------------------------------------------------------------------- the record slot

cdef packed struct FlEntry:
    # 64 bytes: one cache line per slot (the storage is 64-byte aligned)
    uint64_t seq          # 1 + order of creation across the log's life; 0 = empty slot
    int64_t wstart        # window start, Unix seconds (a multiple of the window)
    uint64_t packets
    uint64_t bytes        # IPv4 total length, summed
    uint32_t iface        # index into the FlowLog's interface table (which holds its primary IPv4)
    uint32_t src          # the packet's source IPv4                             -> pkt-srcaddr
    uint32_t dst          # the packet's destination IPv4                        -> pkt-dstaddr
    uint16_t sport        # TCP/UDP ports; 0 for ICMP, other protocols, non-first fragments
    uint16_t dport
    uint16_t first        # first packet's time in the window, seconds after wstart -> start
    uint16_t last         # last packet's time in the window, seconds after wstart  -> end
    uint8_t proto
    uint8_t dirn          # DIR_INGRESS / DIR_EGRESS
    uint8_t action        # ACT_ACCEPT / ACT_REJECT
    uint8_t tcpflags      # OR of the reported flags (FIN 1, SYN 2, RST 4, SYN-ACK 18)
    uint8_t path          # traffic-path 1..8; 0 = none ("-": ingress records, unknown)
    uint8_t pad[7]


cdef struct Leg:
    # one (record, packet) observation, made in the first half of a chunk and counted in the second
    uint64_t hash
    uint64_t seq          # the seq a record made by this leg gets; 0: the table's next (see _observe)
    int64_t wstart
    uint32_t iface
    uint32_t src
    uint32_t dst
    uint32_t length
    uint16_t sport
    uint16_t dport
    uint16_t off          # seconds after wstart
    uint8_t proto
    uint8_t dirn
    uint8_t action
    uint8_t flags
    uint8_t path

cdef enum:
    DIR_INGRESS = 0
    DIR_EGRESS = 1
    DIR_NONE = 2          # SKIPDATA / NODATA records: no direction ("-")
    ACC_ACCEPT = 0
    ACC_REJECT = 1
    ACC_SKIPDATA = 2      # log-status SKIPDATA: packets of (interface, window) whose records did not fit
    ACC_NODATA = 3        # log-status NODATA: no traffic on the interface in the window (made by flush)
    NAT_NONE = 0          # nat_dir: the frame was not translated by a NAT gateway
    NAT_OUT = 1           # the NAT gateway replaced the source (inside host -> NAT private IP, its port)
    NAT_BACK = 2          # the NAT gateway replaced the destination (reply: NAT private IP -> inside host)


# What a verdict logs (REASON_LOG[reason] for DROPs; DELIVER/FORWARD are handled before the table).
cdef enum:
    LOG_NONE = 0            # dropped before the sender's filters (or a REPLY): not logged
    LOG_SENDER_REJECT = 1   # the sender's filters denied it: the sender's REJECT record only
    LOG_RECEIVER_REJECT = 2 # the receiver's filters denied it: the sender's ACCEPT, the receiver's REJECT
    LOG_SENDER_ACCEPT = 3   # admitted by the sender's filters, dropped by a later stage: the sender's ACCEPT
    LOG_IF_ROUTED = 4       # SRC_DST_CHECK: at the route's target ENI (route >= 0) as 3, at the sender as 0

cdef uint8_t REASON_LOG[256]
memset(REASON_LOG, LOG_NONE, 256)
REASON_LOG[R_SG_EGRESS] = LOG_SENDER_REJECT
REASON_LOG[R_NACL_EGRESS] = LOG_SENDER_REJECT
REASON_LOG[R_NACL_INGRESS] = LOG_RECEIVER_REJECT
REASON_LOG[R_SG_INGRESS] = LOG_RECEIVER_REJECT
REASON_LOG[R_NO_SUCH_HOST] = LOG_SENDER_ACCEPT
REASON_LOG[R_BLACKHOLE] = LOG_SENDER_ACCEPT
REASON_LOG[R_NO_ROUTE] = LOG_SENDER_ACCEPT
REASON_LOG[R_FLOW_TABLE_FULL] = LOG_SENDER_ACCEPT
REASON_LOG[R_NO_PUBLIC_IP] = LOG_SENDER_ACCEPT
REASON_LOG[R_NO_SUCH_PUBLIC_IP] = LOG_SENDER_ACCEPT
REASON_LOG[R_NAT_NEEDS_STATE] = LOG_SENDER_ACCEPT
REASON_LOG[R_NAT_UNSUPPORTED] = LOG_SENDER_ACCEPT
REASON_LOG[R_NAT_NO_BINDING] = LOG_SENDER_ACCEPT
REASON_LOG[R_NAT_PORTS_EXHAUSTED] = LOG_SENDER_ACCEPT
REASON_LOG[R_SRC_DST_CHECK] = LOG_IF_ROUTED


def reason_log_kinds() -> bytes:
    """REASON_LOG as 256 bytes (the LOG_* code of each DropReason value), for docs and tests."""
    return bytes([REASON_LOG[i] for i in range(256)])


# ----------------------------------------------------------------------------- hashing

# the one mix of every fastvpc hash table (_kernels/hashing.pxd); pickled slots depend on it
from fastvpc._kernels.hashing cimport fv_mix64 as _mix, FV_HMUL as HMUL


cdef inline uint64_t _key_hash(uint32_t iface, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
                               uint8_t proto, uint8_t dirn, uint8_t action, int64_t wstart) noexcept nogil:
    # A flow record's hash leaves out the interface, the direction and the action: the records of one
    # packet (the sender's egress, the receiver's ingress) share a home slot, so linear probing puts them
    # side by side and one frame costs one random cache miss, not two.  A SKIPDATA / NODATA record's key
    # is (interface, window) alone: its hash is the interface's (else one window's would all collide).
    cdef uint64_t a = (<uint64_t>src << 32) | dst
    cdef uint64_t b = (<uint64_t>sport << 48) | (<uint64_t>dport << 32) | (<uint64_t>proto << 16)
    if action >= ACC_SKIPDATA:
        b ^= (<uint64_t>iface) * HMUL + action
    return _mix(a ^ _mix(b) ^ (<uint64_t>wstart * HMUL))


cdef inline uint64_t _entry_hash(const FlEntry* e) noexcept nogil:
    return _key_hash(e.iface, e.src, e.dst, e.sport, e.dport, e.proto, e.dirn, e.action, e.wstart)


cdef inline bint _key_eq(const FlEntry* e, uint32_t iface, uint32_t src, uint32_t dst, uint16_t sport,
                         uint16_t dport, uint8_t proto, uint8_t dirn, uint8_t action, int64_t wstart) noexcept nogil:
    return (e.src == src and e.dst == dst and e.iface == iface and e.sport == sport and e.dport == dport
            and e.wstart == wstart and e.proto == proto and e.dirn == dirn and e.action == action)


# ----------------------------------------------------------------------------- per-frame helpers

cdef struct Topo:
    # read-only views of the Dataplane, made by flowlogs._DpView (all indexes checked there)
    const int32_t* port_eni     # dense: dp ENI index per port, -1 = no ENI (n_port_dense entries)
    int64_t n_port_dense
    const int32_t* sp_port      # sparse (n_port_dense == 0): sorted ports of the ENIs ...
    const int32_t* sp_eni       # ... and their dp ENI index
    int64_t n_sparse
    const uint32_t* eni_iface   # per dp ENI: the FlowLog's interface index
    const uint32_t* eni_ip      # per dp ENI: primary IPv4
    const int32_t* eni_vpc      # per dp ENI: VPC index
    int64_t n_eni
    const uint32_t* vpc_dns     # per VPC: the Amazon DNS address (primary CIDR base + 2)
    int64_t n_vpc
    const uint8_t* route_kind   # per route: RK_*
    const int32_t* route_arg    # per route: ENI index (RK_ENI), peer VPC (RK_PEERING)
    const int32_t* route_vpc    # per route: the VPC of its route table
    const uint8_t* route_path   # per route: traffic-path of an egress record decided by it (0 none)
    int64_t n_route
    HashTab ipt                 # the Dataplane's (VPC, IP) -> ENI hash
    const uint32_t* port_info   # dense case: per port, its ENI's interface index or IF_NONE: one 4-byte load
                                # per sender / receiver (4 bytes a port: 100k ports stay in a core's L2)
    const uint32_t* dns_sorted  # every VPC's Amazon DNS address, sorted: only a frame to one of them needs
    int64_t n_dns               #   its sender's VPC looked up
    const uint32_t* gw_iface    # per port: the NAT gateway's interface index (IF_NONE: none / not covered)
    const uint32_t* gw_ip       # per port: the NAT gateway's private IPv4
    int64_t n_gw
    const int32_t* nat_gw       # per frame (or NULL): the port of the NAT gateway the frame reached, -1 none
    const uint32_t* nat_ip      # per frame: the address the NAT gateway replaced (NAT_OUT: the source,
    const uint16_t* nat_l4      #   NAT_BACK: the destination) and its TCP/UDP port or ICMP echo id
    const uint8_t* nat_dir      # per frame: NAT_NONE / NAT_OUT / NAT_BACK
    const uint32_t* sent_src    # per frame (or NULL): the IPv4 source as the frame entered the pass (an
                                # internet gateway rewrites it to the public IP; the sender logs this one)
    const uint32_t* in_dst      # per frame (or NULL): for a frame dropped after entering on a gateway's port, the
                                # destination inside the VPC (an internet gateway's 1:1 map applied: the frame
                                # itself is left as it came), 0: the frame's own
    const int32_t* in_vpc       # per frame (with in_dst): the VPC such a frame entered, -1 none


cdef inline int32_t _eni_of_port(const Topo* t, int32_t port) noexcept nogil:
    cdef int64_t lo, hi, mid
    if port < 0:
        return -1
    if t.n_port_dense:
        return t.port_eni[port] if port < t.n_port_dense else -1
    lo = 0
    hi = t.n_sparse
    while lo < hi:
        mid = (lo + hi) >> 1
        if t.sp_port[mid] < port:
            lo = mid + 1
        else:
            hi = mid
    if lo < t.n_sparse and t.sp_port[lo] == port:
        return t.sp_eni[lo]
    return -1


cdef inline int32_t _eni_of_ip(const Topo* t, int64_t vpc, uint32_t ip) noexcept nogil:
    cdef uint32_t v
    if vpc < 0 or vpc >= t.n_vpc or t.ipt.slots == NULL:
        return -1
    v = ht_get(&t.ipt, (<uint64_t>vpc << 32) | ip)
    if v == FV_HV_NONE or (v & ~FV_HV_INDEX_MASK) != FV_HV_ENI:
        return -1
    v &= FV_HV_INDEX_MASK
    return <int32_t>v if v < <uint64_t>t.n_eni else -1


cdef inline int32_t _receiver(const Topo* t, int32_t route, int32_t sender, uint32_t dst) noexcept nogil:
    """The ENI a frame was on its way to when the receiver's filters dropped it (egress is -1 for a
    DROP): the route's target ENI, else the owner of the destination in the VPC the route leads to
    (the peer VPC for a peering, the route table's VPC for local), else, with no route (delivery in
    the sender's subnet), the owner in the sender's VPC."""
    cdef uint8_t k
    if route >= 0:
        if route >= t.n_route:
            return -1
        k = t.route_kind[route]
        if k == RK_ENI:
            return t.route_arg[route] if t.route_arg[route] < t.n_eni else -1
        if k == RK_PEERING:
            return _eni_of_ip(t, t.route_arg[route], dst)
        if k == RK_LOCAL:
            return _eni_of_ip(t, t.route_vpc[route], dst)
        return -1
    if sender < 0:
        return -1
    return _eni_of_ip(t, t.eni_vpc[sender], dst)


cdef inline int32_t _gateway_receiver(const Topo* t, int64_t i, int32_t route, uint32_t dst) noexcept nogil:
    """The ENI a frame that entered on a gateway's port was on its way to when the receiver's filters
    dropped it: by the gateway route table's route when one decided, else the owner of the destination in
    the VPC the frame entered (``in_vpc``)."""
    if route >= 0:
        return _receiver(t, route, -1, dst)
    if t.in_vpc == NULL:
        return -1
    return _eni_of_ip(t, t.in_vpc[i], dst)


cdef inline uint8_t _reported_flags(uint8_t f) noexcept nogil:
    # AWS reports FIN 1, SYN 2, RST 4 and SYN-ACK 18 only: ACK counts only together with SYN
    return (f & 0x07) | ((f & 0x10) if (f & 0x02) else 0)


cdef inline bint _not_logged_address(uint32_t ip) noexcept nogil:
    # 169.254.168.0/22: the instance's link-local services (IMDS .254, Time Sync .123, DNS .253)
    return (ip & 0xFFFFFC00u) == 0xA9FEA800u


cdef struct Table:
    FlEntry* slots
    uint64_t n_slots      # power of two
    uint64_t count
    uint64_t limit        # most entries before a grow (load 0.6)
    uint64_t next_seq
    uint64_t max_ok       # most flow (OK) records held; 0: no limit.  Past it a packet whose record is
                          # new counts in its interface's SKIPDATA record of the window instead
    uint64_t n_skip       # SKIPDATA records held (count - n_skip are OK records)


cdef inline void _count(Table* T, const Leg* g0) noexcept nogil:
    """Count one leg in its record (the caller has checked count < limit).  A leg whose record is
    new while the table holds max_ok flow records counts in the SKIPDATA record of its interface and
    window instead (AWS's log-status SKIPDATA: records skipped for a capacity constraint)."""
    cdef uint64_t mask = T.n_slots - 1
    cdef uint64_t i = g0.hash & mask
    cdef FlEntry* e
    cdef Leg skip
    cdef const Leg* g = g0
    while True:
        e = &T.slots[i]
        if e.seq == 0:
            break
        if _key_eq(e, g.iface, g.src, g.dst, g.sport, g.dport, g.proto, g.dirn, g.action, g.wstart):
            e.packets += 1
            e.bytes += g.length
            e.tcpflags |= g.flags
            if g.off < e.first:
                e.first = g.off
            if g.off > e.last:
                e.last = g.off
            return
        i = (i + 1) & mask
    if g.action < ACC_SKIPDATA and T.max_ok != 0 and T.count - T.n_skip >= T.max_ok:
        skip = g[0]
        skip.src = 0
        skip.dst = 0
        skip.sport = 0
        skip.dport = 0
        skip.proto = 0
        skip.dirn = DIR_NONE
        skip.action = ACC_SKIPDATA
        skip.flags = 0
        skip.path = 0
        skip.hash = _key_hash(skip.iface, 0, 0, 0, 0, 0, DIR_NONE, ACC_SKIPDATA, skip.wstart)
        _count(T, &skip)
        return
    if g.seq != 0:
        # a position in a longer stream (sharded replay): records sort as if counted there
        e.seq = g.seq
        if g.seq > T.next_seq:
            T.next_seq = g.seq
    else:
        T.next_seq += 1
        e.seq = T.next_seq
    e.wstart = g.wstart
    e.packets = 1
    e.bytes = g.length
    e.iface = g.iface
    e.src = g.src
    e.dst = g.dst
    e.sport = g.sport
    e.dport = g.dport
    e.first = g.off
    e.last = g.off
    e.proto = g.proto
    e.dirn = g.dirn
    e.action = g.action
    e.tcpflags = g.flags
    e.path = g.path
    T.count += 1
    if g.action == ACC_SKIPDATA:
        T.n_skip += 1


cdef inline void _leg(Leg* g, const Table* T, uint32_t iface, uint32_t src, uint32_t dst, uint16_t sport,
                      uint16_t dport, uint8_t proto, uint8_t dirn, uint8_t action, int64_t wstart, uint16_t off,
                      uint32_t length, uint8_t flags, uint8_t path) noexcept nogil:
    g.hash = _key_hash(iface, src, dst, sport, dport, proto, dirn, action, wstart)
    g.seq = 0
    g.wstart = wstart
    g.iface = iface
    g.src = src
    g.dst = dst
    g.length = length
    g.sport = sport
    g.dport = dport
    g.off = off
    g.proto = proto
    g.dirn = dirn
    g.action = action
    g.flags = flags
    g.path = path
    fl_prefetch_w(&T.slots[g.hash & (T.n_slots - 1)])
    # the next slot too: a packet's second record lands there (same home, see _key_hash), and so does a
    # probe past an occupied home
    fl_prefetch_w(&T.slots[(g.hash + 1) & (T.n_slots - 1)])


cdef inline void _insert_row(Table* T, const FlEntry* src) noexcept nogil:
    cdef uint64_t mask = T.n_slots - 1
    cdef uint64_t i = _entry_hash(src) & mask
    while T.slots[i].seq != 0:
        i = (i + 1) & mask
    memcpy(&T.slots[i], src, sizeof(FlEntry))
    T.count += 1
    if src.action == ACC_SKIPDATA:
        T.n_skip += 1


cdef inline bint _is_a_dns(const Topo* t, uint32_t ip) noexcept nogil:
    # binary search of the sorted Amazon DNS addresses (a few: one per VPC)
    cdef int64_t lo = 0, hi = t.n_dns, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if t.dns_sorted[mid] < ip:
            lo = mid + 1
        else:
            hi = mid
    return lo < t.n_dns and t.dns_sorted[lo] == ip


cdef inline uint32_t _iface_of_eni(const Topo* t, int32_t eni) noexcept nogil:
    if eni < 0 or eni >= t.n_eni:
        return IF_NONE
    return t.eni_iface[eni]


cdef inline uint32_t _iface_of_port(const Topo* t, int32_t port) noexcept nogil:
    # the dense table is one 8-byte load; the sparse case searches the sorted ports
    if t.n_port_dense:
        if port < 0 or port >= t.n_port_dense:
            return IF_NONE
        return t.port_info[port]
    return _iface_of_eni(t, _eni_of_port(t, port))


cdef int64_t _observe_frames(Table* T, const Topo* topo, const uint8_t* data, int64_t nd, const int64_t* offsets,
                             int64_t i0, int64_t n, const int32_t* port, const int64_t* ts,
                             const int64_t* ordinal, int64_t now,
                             const uint8_t* action, const uint8_t* reason, const int32_t* egress,
                             const int32_t* route, int64_t window, uint64_t* n_logged) noexcept nogil:
    """Frames i0..n-1 into T; returns n, or the first frame not touched when T reached its limit
    (checked per chunk: a chunk of m frames makes at most 4m legs)."""
    cdef int64_t i, c, m, L, start, t_ns, t_s, wstart
    cdef Hdr h
    cdef uint8_t a, kind, flags, path, nat, acc
    cdef int32_t r, p, gp, sender
    cdef uint32_t s_if, r_if, g_if, g_ip, dns, pre_src, pre_dst, post_src, post_dst, r_dst
    cdef bint in_gw
    cdef uint16_t sport, dport, off, pre_sp, pre_dp, post_sp, post_dp
    cdef bint l4, ports
    cdef Leg legs[4 * CHUNK]
    cdef int nl, j, nl0
    cdef uint64_t seq0
    start = fv_first_start(offsets, i0, nd)
    c = i0
    while c < n:
        m = n - c
        if m > CHUNK:
            m = CHUNK
        if T.count + 4 * <uint64_t>m > T.limit:
            return c
        nl = 0
        # the chunk's sender and receiver lookups into the per-port table (hundreds of KB for a large
        # VPC: a cache miss each), all in flight before the first frame needs one
        if topo.n_port_dense:
            for i in range(c, c + m):
                p = port[i]
                if 0 <= p < topo.n_port_dense:
                    fl_prefetch_r(&topo.port_info[p])
                p = egress[i]
                if 0 <= p < topo.n_port_dense:
                    fl_prefetch_r(&topo.port_info[p])
        # first half: parse, decide, make the legs and prefetch their home slots
        for i in range(c, c + m):
            L = fv_next_span(offsets, i, nd, &start)
            a = action[i]
            if a == ACT_DELIVER or a == ACT_FORWARD:
                kind = LOG_SENDER_ACCEPT
            elif a == ACT_DROP:
                kind = REASON_LOG[reason[i]]
                if kind == LOG_IF_ROUTED:
                    kind = LOG_SENDER_ACCEPT if route[i] >= 0 else LOG_NONE
                if kind == LOG_NONE:
                    continue
            else:
                continue                 # REPLY: the router's and the switch's own answers
            # the frame's header (DELIVER rewrote only MACs: the addresses and ports are as sent)
            if L <= 0 or (parse_headers(data + start - L, L, &h, 1) & CF_IPV4_OK) != CF_IPV4_OK:
                continue
            l4 = (h.flags & CF_L4) != 0
            ports = l4 and (h.proto == IPPROTO_TCP or h.proto == IPPROTO_UDP)
            sport = 0
            dport = 0
            flags = 0
            if ports:
                sport = h.sport
                dport = h.dport
                if h.proto == IPPROTO_TCP:
                    flags = _reported_flags(h.tcp_flags)
                elif (sport == 68 and dport == 67) or (sport == 67 and dport == 68):
                    continue             # DHCP: not logged
            if _not_logged_address(h.dst) or _not_logged_address(h.src):
                continue
            p = port[i]
            sender = -2                  # not looked up (only the receiver-reject path needs the ENI)
            if topo.n_port_dense:
                s_if = topo.port_info[p] if 0 <= p < topo.n_port_dense else IF_NONE
            else:
                sender = _eni_of_port(topo, p)
                if sender >= topo.n_eni:
                    sender = -1
                s_if = _iface_of_eni(topo, sender)
            if _is_a_dns(topo, h.dst):
                if sender == -2:
                    sender = _eni_of_port(topo, p)
                    if sender >= topo.n_eni:
                        sender = -1
                if sender >= 0:
                    r = topo.eni_vpc[sender]
                    if 0 <= r < topo.n_vpc and h.dst == topo.vpc_dns[r]:
                        continue         # Amazon DNS (the sender VPC's primary CIDR base + 2): not logged
            t_ns = ts[i] if ts != NULL else now
            t_s = t_ns // NS
            off = <uint16_t>(t_s % window)
            wstart = t_s - off
            # the NAT gateway the frame reached (the pass's NAT stage), its interface and private IP
            nat = NAT_NONE
            g_if = IF_NONE
            g_ip = 0
            if topo.nat_gw != NULL:
                gp = topo.nat_gw[i]
                if 0 <= gp < topo.n_gw:
                    g_if = topo.gw_iface[gp]
                    g_ip = topo.gw_ip[gp]
                    nat = topo.nat_dir[i]
                    if nat > NAT_BACK:
                        nat = NAT_NONE
            nl0 = nl
            # the destination the receiver's record shows: the frame's, but for a dropped frame that came in
            # on a gateway's port, the address inside (an internet gateway translated it before the drop)
            r_dst = h.dst
            in_gw = topo.in_dst != NULL and topo.in_dst[i] != 0
            if in_gw:
                r_dst = topo.in_dst[i]
            if nat == NAT_NONE:
                r_if = IF_NONE
                if a == ACT_DELIVER:
                    r_if = _iface_of_port(topo, egress[i])
                elif kind == LOG_RECEIVER_REJECT:
                    if g_if != IF_NONE or (topo.nat_gw != NULL and topo.nat_gw[i] >= 0):
                        r_if = g_if      # the NAT gateway's subnet ACL refused it on its way in
                    elif in_gw:
                        r_if = _iface_of_eni(topo, _gateway_receiver(topo, i, route[i], r_dst))
                    else:
                        if sender == -2:
                            sender = _eni_of_port(topo, p)
                            if sender >= topo.n_eni:
                                sender = -1
                        r_if = _iface_of_eni(topo, _receiver(topo, route[i], sender, h.dst))
                if s_if != IF_NONE:
                    # traffic-path of the egress record: by the route that decided; with none, a delivery
                    # (or NO_SUCH_HOST) inside the sender's subnet: path 1, "another resource in the same VPC"
                    r = route[i]
                    if 0 <= r < topo.n_route:
                        path = topo.route_path[r]
                    elif a == ACT_DELIVER or kind == LOG_RECEIVER_REJECT or reason[i] == R_NO_SUCH_HOST:
                        path = 1
                    else:
                        path = 0
                    _leg(&legs[nl], T, s_if, topo.sent_src[i] if topo.sent_src != NULL else h.src, h.dst, sport,
                         dport, h.proto, DIR_EGRESS, ACC_REJECT if kind == LOG_SENDER_REJECT else ACC_ACCEPT, wstart,
                         off, h.tl, flags, path)
                    nl += 1
                if g_if != IF_NONE and kind == LOG_SENDER_ACCEPT and a == ACT_DROP:
                    # it reached the NAT gateway, which dropped it (NAT_* reasons): its ingress ACCEPT
                    r_if = g_if
                if r_if != IF_NONE:
                    _leg(&legs[nl], T, r_if, h.src, r_dst, sport, dport, h.proto, DIR_INGRESS,
                         ACC_REJECT if kind == LOG_RECEIVER_REJECT else ACC_ACCEPT, wstart, off, h.tl, flags, 0)
                    nl += 1
            else:
                # translated by the NAT gateway: the packet before it (pre) and after it (post); the frame
                # holds the one after (and after an internet gateway, the Elastic IP: the NAT's own leg
                # shows its private IP, as AWS's records do)
                if nat == NAT_OUT:
                    pre_src = topo.nat_ip[i]
                    pre_sp = topo.nat_l4[i] if ports else 0
                    pre_dst = h.dst
                    pre_dp = dport
                    post_src = g_ip
                    post_sp = sport
                    post_dst = h.dst
                    post_dp = dport
                else:
                    pre_src = h.src
                    pre_sp = sport
                    pre_dst = topo.nat_ip[i]
                    pre_dp = topo.nat_l4[i] if ports else 0
                    post_src = h.src
                    post_sp = sport
                    post_dst = h.dst
                    post_dp = dport
                if s_if != IF_NONE:          # the sender's egress, routed to the NAT gateway: path 1
                    _leg(&legs[nl], T, s_if, pre_src, pre_dst, pre_sp, pre_dp, h.proto, DIR_EGRESS, ACC_ACCEPT,
                         wstart, off, h.tl, flags, 1)
                    nl += 1
                if g_if != IF_NONE:
                    _leg(&legs[nl], T, g_if, pre_src, pre_dst, pre_sp, pre_dp, h.proto, DIR_INGRESS, ACC_ACCEPT,
                         wstart, off, h.tl, flags, 0)
                    nl += 1
                    r = route[i]
                    if 0 <= r < topo.n_route:
                        path = topo.route_path[r]
                    elif a == ACT_DELIVER or kind == LOG_RECEIVER_REJECT or reason[i] == R_NO_SUCH_HOST:
                        path = 1
                    else:
                        path = 0
                    acc = ACC_REJECT if (a == ACT_DROP and reason[i] == R_NACL_EGRESS) else ACC_ACCEPT
                    _leg(&legs[nl], T, g_if, post_src, post_dst, post_sp, post_dp, h.proto, DIR_EGRESS, acc,
                         wstart, off, h.tl, flags, path)
                    nl += 1
                if not (a == ACT_DROP and reason[i] == R_NACL_EGRESS):
                    r_if = IF_NONE
                    if a == ACT_DELIVER:
                        r_if = _iface_of_port(topo, egress[i])
                    elif kind == LOG_RECEIVER_REJECT:
                        r_if = _iface_of_eni(topo, _receiver(topo, route[i], -1, post_dst))
                    if r_if != IF_NONE:
                        _leg(&legs[nl], T, r_if, post_src, post_dst, post_sp, post_dp, h.proto, DIR_INGRESS,
                             ACC_REJECT if kind == LOG_RECEIVER_REJECT else ACC_ACCEPT, wstart, off, h.tl, flags, 0)
                        nl += 1
            if ordinal != NULL:
                # a position in a longer stream: a frame's legs sort by it, then in the order made
                seq0 = 4 * <uint64_t>ordinal[i] + 1
                for j in range(nl0, nl):
                    legs[j].seq = seq0 + <uint64_t>(j - nl0)
        # second half: count the legs, in frame order
        for j in range(nl):
            _count(T, &legs[j])
        n_logged[0] += <uint64_t>nl
        c += m
    return n


@cython.boundscheck(False)
@cython.wraparound(False)
def sent_sources(const uint8_t[::1] data,       # IN: a batch's buffer (before the pass)
                 const int64_t[::1] offsets,    # IN: its n + 1 frame offsets
                 uint32_t[::1] out) -> None:    # OUT: n IPv4 sources (0: not an IPv4 frame of 34+ bytes)
    """Each frame's IPv4 source address as it is now (bytes 26-29 of an Ethernet/IPv4 frame), for the
    sender's record of a frame the pass may translate (``Dataplane.process(..., log=)``)."""
    cdef Py_ssize_t i, n = offsets.shape[0] - 1
    cdef int64_t nd = data.shape[0], st, L
    if n < 0 or out.shape[0] < n:
        raise ValueError("sent_sources: out shorter than the batch")
    if n == 0:
        return
    with nogil:
        st = fv_first_start(&offsets[0], 0, nd)
        for i in range(n):
            L = fv_next_span(&offsets[0], i, nd, &st)
            if L >= 34 and data[st - L + 12] == 8 and data[st - L + 13] == 0:
                out[i] = ((<uint32_t>data[st - L + 26] << 24) | (<uint32_t>data[st - L + 27] << 16)
                          | (<uint32_t>data[st - L + 28] << 8) | data[st - L + 29])
            else:
                out[i] = 0


# ----------------------------------------------------------------------------- text output

cdef inline int64_t _put(uint8_t* o, int64_t k, const char* s, int64_t n) noexcept nogil:
    memcpy(o + k, s, n)
    return k + n


cdef inline int64_t _put_u64(uint8_t* o, int64_t k, uint64_t v) noexcept nogil:
    cdef uint8_t tmp[20]
    cdef int j = 0
    while True:
        tmp[j] = <uint8_t>(48 + v % 10)
        j += 1
        v //= 10
        if v == 0:
            break
    while j > 0:
        j -= 1
        o[k] = tmp[j]
        k += 1
    return k


cdef inline int64_t _put_i64(uint8_t* o, int64_t k, int64_t v) noexcept nogil:
    if v < 0:
        o[k] = 45
        return _put_u64(o, k + 1, <uint64_t>(-(v + 1)) + 1)
    return _put_u64(o, k, <uint64_t>v)


cdef inline int64_t _put_ip(uint8_t* o, int64_t k, uint32_t ip) noexcept nogil:
    k = _put_u64(o, k, ip >> 24)
    o[k] = 46
    k = _put_u64(o, k + 1, (ip >> 16) & 255)
    o[k] = 46
    k = _put_u64(o, k + 1, (ip >> 8) & 255)
    o[k] = 46
    return _put_u64(o, k + 1, ip & 255)


# Field codes (flowlogs.FIELDS order): the text formatter's switch.
cdef enum:
    F_VERSION = 0
    F_ACCOUNT = 1
    F_INTERFACE = 2
    F_SRCADDR = 3
    F_DSTADDR = 4
    F_SRCPORT = 5
    F_DSTPORT = 6
    F_PROTOCOL = 7
    F_PACKETS = 8
    F_BYTES = 9
    F_START = 10
    F_END = 11
    F_ACTION = 12
    F_LOG_STATUS = 13
    F_VPC = 14
    F_SUBNET = 15
    F_INSTANCE = 16
    F_TCP_FLAGS = 17
    F_TYPE = 18
    F_PKT_SRCADDR = 19
    F_PKT_DSTADDR = 20
    F_FLOW_DIRECTION = 27
    F_TRAFFIC_PATH = 28
    N_FIELDS = 29

#: per interface, the string columns in the strings blob, in this order
cdef enum:
    S_INTERFACE = 0
    S_VPC = 1
    S_SUBNET = 2
    S_INSTANCE = 3
    N_STR = 4


def text_row_bound(int64_t fixed_len, int64_t max_str) -> int:
    """Bytes one row can take at most: every field at its widest (``fixed_len``: the widest of the
    constant strings, ``max_str``: the longest interface string) plus its separator."""
    return N_FIELDS * (max(max(fixed_len, max_str), 21) + 1) + 1


@cython.boundscheck(False)
@cython.wraparound(False)
def _format_text(const uint8_t[:, ::1] rows,        # IN: FlEntry rows, in output order
                 const uint8_t[::1] fields,         # IN: field codes, in the format's order
                 const uint8_t[::1] version,        # IN: the version field's text
                 const uint8_t[::1] account,        # IN: the account-id field's text
                 const uint8_t[::1] strings,        # IN: the interface strings, back to back
                 const int64_t[::1] str_off,        # IN: N_STR * n_iface + 1 offsets into strings
                 const uint32_t[::1] iface_ip,      # IN: per interface, its primary IPv4
                 uint8_t[::1] out) -> int:          # OUT: the lines; sized by the caller (text_row_bound)
    """AWS's text lines of ``rows`` into ``out``; returns the bytes written."""
    cdef Py_ssize_t n = rows.shape[0], nf = fields.shape[0]
    cdef Py_ssize_t i, j, s
    cdef int64_t k = 0
    cdef int64_t n_iface = (str_off.shape[0] - 1) // N_STR
    cdef const FlEntry* e
    cdef uint8_t* o
    cdef uint8_t f
    cdef int64_t a, b
    if rows.shape[1] != sizeof(FlEntry):
        raise ValueError(f"rows must be {sizeof(FlEntry)} bytes wide")
    if str_off.shape[0] < 1 or (str_off.shape[0] - 1) % N_STR:
        raise ValueError("str_off must hold N_STR offsets per interface and one more")
    if iface_ip.shape[0] != n_iface:
        raise ValueError(f"iface_ip has {iface_ip.shape[0]} addresses for {n_iface} interfaces")
    for s in range(str_off.shape[0] - 1):
        if not (0 <= str_off[s] <= str_off[s + 1] <= strings.shape[0]):
            raise ValueError(f"str_off[{s}] out of order or past the strings")
    for i in range(n):
        if (<const FlEntry*>&rows[i, 0]).iface >= n_iface:
            raise ValueError(f"row {i}: interface {(<const FlEntry*>&rows[i, 0]).iface} is not in the table")
    if n == 0:
        return 0
    o = &out[0]
    with nogil:
        for i in range(n):
            e = <const FlEntry*>&rows[i, 0]
            for j in range(nf):
                if j:
                    o[k] = 32
                    k += 1
                f = fields[j]
                if e.action >= ACC_SKIPDATA and f != F_VERSION and f != F_ACCOUNT and f != F_INTERFACE \
                        and f != F_VPC and f != F_SUBNET and f != F_INSTANCE and f != F_START and f != F_END:
                    # SKIPDATA / NODATA: "-" for every flow field (AWS), the status word for log-status
                    if f == F_LOG_STATUS:
                        if e.action == ACC_SKIPDATA:
                            k = _put(o, k, "SKIPDATA", 8)
                        else:
                            k = _put(o, k, "NODATA", 6)
                    else:
                        o[k] = 45
                        k += 1
                    continue
                if f == F_VERSION:
                    if version.shape[0]:
                        k = _put(o, k, <const char*>&version[0], version.shape[0])
                elif f == F_ACCOUNT:
                    if account.shape[0]:
                        k = _put(o, k, <const char*>&account[0], account.shape[0])
                elif f == F_INTERFACE or f == F_VPC or f == F_SUBNET or f == F_INSTANCE:
                    s = N_STR * e.iface + (S_INTERFACE if f == F_INTERFACE else S_VPC if f == F_VPC
                                           else S_SUBNET if f == F_SUBNET else S_INSTANCE)
                    a = str_off[s]
                    b = str_off[s + 1]
                    if b > a:
                        k = _put(o, k, <const char*>&strings[a], b - a)
                    else:
                        o[k] = 45
                        k += 1
                elif f == F_SRCADDR:
                    k = _put_ip(o, k, iface_ip[e.iface] if e.dirn == DIR_EGRESS else e.src)
                elif f == F_DSTADDR:
                    k = _put_ip(o, k, e.dst if e.dirn == DIR_EGRESS else iface_ip[e.iface])
                elif f == F_PKT_SRCADDR:
                    k = _put_ip(o, k, e.src)
                elif f == F_PKT_DSTADDR:
                    k = _put_ip(o, k, e.dst)
                elif f == F_SRCPORT:
                    k = _put_u64(o, k, e.sport)
                elif f == F_DSTPORT:
                    k = _put_u64(o, k, e.dport)
                elif f == F_PROTOCOL:
                    k = _put_u64(o, k, e.proto)
                elif f == F_PACKETS:
                    k = _put_u64(o, k, e.packets)
                elif f == F_BYTES:
                    k = _put_u64(o, k, e.bytes)
                elif f == F_START:
                    k = _put_i64(o, k, e.wstart + e.first)
                elif f == F_END:
                    k = _put_i64(o, k, e.wstart + e.last)
                elif f == F_ACTION:
                    if e.action == ACC_REJECT:
                        k = _put(o, k, "REJECT", 6)
                    else:
                        k = _put(o, k, "ACCEPT", 6)
                elif f == F_LOG_STATUS:
                    k = _put(o, k, "OK", 2)
                elif f == F_TCP_FLAGS:
                    k = _put_u64(o, k, e.tcpflags)
                elif f == F_TYPE:
                    k = _put(o, k, "IPv4", 4)
                elif f == F_FLOW_DIRECTION:
                    if e.dirn == DIR_EGRESS:
                        k = _put(o, k, "egress", 6)
                    else:
                        k = _put(o, k, "ingress", 7)
                elif f == F_TRAFFIC_PATH and e.path != 0:
                    k = _put_u64(o, k, e.path)
                else:                          # a field the model cannot know: AWS's "-"
                    o[k] = 45
                    k += 1
            o[k] = 10
            k += 1
    return k


@cython.boundscheck(False)
@cython.wraparound(False)
def format_ipv4(const uint32_t[::1] ips,     # IN: host-order IPv4 addresses
                uint8_t[::1] data,           # OUT: the dotted quads back to back (>= 15 bytes each)
                int64_t[::1] offsets,        # OUT: len(ips) + 1 offsets (Arrow string layout)
                uint8_t[:, ::1] fixed) -> int:   # OUT: (len(ips), 16) NUL-padded copies, or (0, 16): none
    """Dotted-quad text of every address, as Arrow offsets/data and (when ``fixed`` has rows) as fixed
    16-byte NUL-padded strings (numpy ``S16``); returns the bytes of ``data`` used."""
    cdef Py_ssize_t i, n = ips.shape[0]
    cdef int64_t k = 0, k0
    cdef bint fx = fixed.shape[0] > 0
    if data.shape[0] < 15 * n or offsets.shape[0] < n + 1 or (fx and (fixed.shape[0] < n or fixed.shape[1] != 16)):
        raise ValueError("format_ipv4: output arrays too small")
    with nogil:
        offsets[0] = 0
        for i in range(n):
            k0 = k
            k = _put_ip(&data[0], k, ips[i])
            offsets[i + 1] = k
            if fx:
                memset(&fixed[i, 0], 0, 16)
                memcpy(&fixed[i, 0], &data[k0], k - k0)
    return k


# ----------------------------------------------------------------------------- the object

def _zeroed(uint64_t n_slots):
    """Zeroed storage for n_slots slots and 64 bytes of slack (FlowLogCore._attach aligns into it).
    Plain np.zeros: 2 MiB-aligned anonymous mappings advised for transparent huge pages were measured
    1.2-1.7x slower on a 1.6M-record table here (fault-time compaction under a loaded machine)."""
    return np.zeros(n_slots * sizeof(FlEntry) + 64, dtype=np.uint8)


cdef class FlowLogCore:
    """The open records of a FlowLog (use :class:`fastvpc.FlowLog`)."""

    cdef Table T
    cdef readonly object _buf

    def __cinit__(self, *args, **kwargs):
        memset(&self.T, 0, sizeof(Table))
        self._buf = None

    def __reduce__(self):
        raise TypeError("a bare FlowLogCore cannot be pickled (fastvpc.FlowLog can)")

    def _init(self, uint64_t n_slots) -> None:
        """Empty storage of ``n_slots`` slots (a power of two, >= 8)."""
        if n_slots < 8 or n_slots & (n_slots - 1):
            raise ValueError(f"n_slots {n_slots} must be a power of two >= 8")
        self._attach(_zeroed(n_slots), n_slots)
        self.T.count = 0
        self.T.n_skip = 0

    cdef int _attach(self, object buf, uint64_t n_slots) except -1:
        cdef uint8_t[::1] b = buf
        if <uint64_t>b.shape[0] < n_slots * sizeof(FlEntry) + 64:
            raise ValueError(f"storage of {b.shape[0]} bytes is too small for {n_slots} slots")
        self._buf = buf
        self.T.slots = <FlEntry*>&b[(-(<size_t>&b[0])) % 64]
        self.T.n_slots = n_slots
        self.T.limit = (n_slots * 6) // 10
        return 0

    @property
    def count(self) -> int:
        return self.T.count

    @property
    def n_slots(self) -> int:
        return self.T.n_slots

    @property
    def next_seq(self) -> int:
        return self.T.next_seq

    def _set_next_seq(self, uint64_t s) -> None:
        self.T.next_seq = s

    @property
    def max_ok(self) -> int:
        return self.T.max_ok

    @property
    def n_skip(self) -> int:
        return self.T.n_skip

    def _set_max_ok(self, uint64_t k) -> None:
        """At most ``k`` flow records held (0: no limit); past it, SKIPDATA records (see _count)."""
        self.T.max_ok = k

    def _grow(self) -> None:
        """Twice the slots, every entry rehashed (compiled; done between frames, never inside one)."""
        cdef uint64_t n_new = self.T.n_slots * 2
        cdef uint64_t i, n_old = self.T.n_slots
        cdef FlEntry* old = self.T.slots
        old_buf = self._buf
        self._attach(_zeroed(n_new), n_new)
        self.T.count = 0
        self.T.n_skip = 0
        cdef uint64_t mask = n_new - 1
        with nogil:
            for i in range(n_old):
                if i + 16 < n_old and old[i + 16].seq != 0:      # ~16 writes into the new table in flight
                    fl_prefetch_w(&self.T.slots[_entry_hash(&old[i + 16]) & mask])
                if old[i].seq != 0:
                    _insert_row(&self.T, &old[i])
        del old_buf

    def _rows(self) -> np.ndarray:
        """Every open record as (count, 80) uint8 rows, in slot order."""
        cdef uint64_t i, k = 0
        out = np.empty((self.T.count, sizeof(FlEntry)), dtype=np.uint8)
        cdef uint8_t[:, ::1] o = out
        with nogil:
            for i in range(self.T.n_slots):
                if self.T.slots[i].seq != 0:
                    memcpy(&o[k, 0], &self.T.slots[i], sizeof(FlEntry))
                    k += 1
        return out

    def _take(self, int64_t cut) -> np.ndarray:
        """Remove and return (as rows) every record whose window starts before ``cut`` (seconds)."""
        cdef uint64_t i, k = 0, n_old = self.T.n_slots
        cdef FlEntry* old = self.T.slots
        cdef uint64_t n_take = 0
        with nogil:
            for i in range(n_old):
                if old[i].seq != 0 and old[i].wstart < cut:
                    n_take += 1
        out = np.empty((n_take, sizeof(FlEntry)), dtype=np.uint8)
        if n_take == 0:
            return out
        cdef uint8_t[:, ::1] o = out
        old_buf = self._buf
        self._attach(_zeroed(n_old), n_old)
        self.T.count = 0
        self.T.n_skip = 0
        with nogil:
            for i in range(n_old):
                if old[i].seq == 0:
                    continue
                if old[i].wstart < cut:
                    memcpy(&o[k, 0], &old[i], sizeof(FlEntry))
                    k += 1
                else:
                    _insert_row(&self.T, &old[i])
        del old_buf
        return out

    def _load(self, const uint8_t[:, ::1] rows) -> int:
        """Insert validated rows into the (empty, large enough) table; -1, or the index of the first row
        whose key repeats an earlier row's or whose seq is 0 (the table is then left empty)."""
        cdef Py_ssize_t r, n = rows.shape[0]
        cdef const FlEntry* src
        cdef FlEntry* e
        cdef uint64_t i, mask = self.T.n_slots - 1
        cdef Py_ssize_t bad = -1
        if n and rows.shape[1] != sizeof(FlEntry):
            raise ValueError(f"rows must be {sizeof(FlEntry)} bytes wide")
        if self.T.count != 0 or <uint64_t>n > self.T.limit:
            raise ValueError("can only load into an empty table with room for every row")
        with nogil:
            for r in range(n):
                src = <const FlEntry*>&rows[r, 0]
                if src.seq == 0:
                    bad = r
                    break
                i = _entry_hash(src) & mask
                while self.T.slots[i].seq != 0:
                    e = &self.T.slots[i]
                    if _key_eq(e, src.iface, src.src, src.dst, src.sport, src.dport, src.proto, src.dirn,
                               src.action, src.wstart):
                        bad = r
                        break
                    i = (i + 1) & mask
                if bad >= 0:
                    break
                memcpy(&self.T.slots[i], src, sizeof(FlEntry))
                self.T.count += 1
                if src.action == ACC_SKIPDATA:
                    self.T.n_skip += 1
        if bad >= 0:
            memset(self.T.slots, 0, self.T.n_slots * sizeof(FlEntry))
            self.T.count = 0
            self.T.n_skip = 0
        return bad

    def _observe(self,
                 const uint8_t[::1] data,         # IN: the batch's buffer
                 const int64_t[::1] offsets,      # IN: n + 1 frame offsets (checked by the caller)
                 const int32_t[::1] port,         # IN: ingress port per frame
                 const int64_t[::1] ts,           # IN: ns per frame (>= 0, checked), or empty: ``now``
                 const int64_t[::1] ordinal,      # IN: per frame, its position in a longer stream (>= 0,
                                                  #     checked), or empty: records get the next seqs
                 int64_t now,                     # IN: ns for every frame when ts is empty
                 const uint8_t[::1] action,       # IN: Result.action
                 const uint8_t[::1] reason,       # IN: Result.reason
                 const int32_t[::1] egress,       # IN: Result.egress
                 const int32_t[::1] route,        # IN: Result.route
                 const int32_t[::1] port_eni,     # IN: dense port -> dp ENI (-1 none), or empty: sparse
                 const int32_t[::1] sp_port,      # IN: sorted ENI ports (sparse case)
                 const int32_t[::1] sp_eni,       # IN: their dp ENI
                 const uint32_t[::1] eni_iface,   # IN: per dp ENI, the log's interface index
                 const uint32_t[::1] eni_ip,      # IN: per dp ENI, primary IPv4
                 const int32_t[::1] eni_vpc,      # IN: per dp ENI, VPC index
                 const uint32_t[::1] vpc_dns,     # IN: per VPC, Amazon DNS address
                 const uint8_t[::1] route_kind,   # IN: per route, RK_*
                 const int32_t[::1] route_arg,    # IN: per route, ENI / peer VPC index
                 const int32_t[::1] route_vpc,    # IN: per route, its table's VPC
                 const uint8_t[::1] route_path,   # IN: per route, traffic-path
                 const uint64_t[::1] ip_hash,     # IN: the Dataplane's ip_hash ((key, value) pairs)
                 const uint32_t[::1] port_info,   # IN: dense case: per port, interface or IF_NONE (len(port_eni))
                 const uint32_t[::1] dns_sorted,  # IN: the VPCs' Amazon DNS addresses, sorted
                 const uint32_t[::1] gw_iface,    # IN: per port, NAT gateway interface (IF_NONE: none)
                 const uint32_t[::1] gw_ip,       # IN: per port, NAT gateway private IPv4
                 const int32_t[::1] nat_gw,       # IN: per frame, NAT gateway port reached (-1), or empty
                 const uint32_t[::1] nat_ip,      # IN: per frame, the address the NAT replaced
                 const uint16_t[::1] nat_l4,      # IN: per frame, its port / echo id
                 const uint8_t[::1] nat_dir,      # IN: per frame, NAT_NONE / NAT_OUT / NAT_BACK
                 const uint32_t[::1] sent_src,    # IN: per frame, the source before the pass, or empty
                 const uint32_t[::1] in_dst,      # IN: per frame, a dropped gateway frame's inside destination, or empty
                 const int32_t[::1] in_vpc,       # IN: per frame, the VPC it entered (-1), or empty (with in_dst)
                 int64_t window,                  # IN: seconds, > 0
                 int64_t start) -> tuple:         # IN: first frame to do
        """Frames ``start..n-1`` into the table: (the first frame not done, or n; packets counted in
        records).  Validation-free beyond lengths: flowlogs.FlowLog.observe checks the inputs."""
        cdef int64_t n = offsets.shape[0] - 1
        cdef Topo topo
        cdef int64_t stop
        cdef uint64_t logged = 0
        cdef uint64_t cap
        cdef int shift = 64
        if n < 0 or port.shape[0] < n or action.shape[0] < n or reason.shape[0] < n or egress.shape[0] < n \
                or route.shape[0] < n or (ts.shape[0] != 0 and ts.shape[0] < n) \
                or (ordinal.shape[0] != 0 and ordinal.shape[0] < n):
            raise ValueError("_observe: arrays shorter than the batch")
        if eni_ip.shape[0] != eni_iface.shape[0] or eni_vpc.shape[0] != eni_iface.shape[0] \
                or sp_eni.shape[0] != sp_port.shape[0] or route_arg.shape[0] != route_kind.shape[0] \
                or route_vpc.shape[0] != route_kind.shape[0] or route_path.shape[0] != route_kind.shape[0]:
            raise ValueError("_observe: topology arrays disagree in length")
        if port_info.shape[0] != port_eni.shape[0] or gw_ip.shape[0] != gw_iface.shape[0]:
            raise ValueError("_observe: port_info / gw arrays disagree in length")
        if nat_gw.shape[0] != 0 and (nat_gw.shape[0] < n or nat_ip.shape[0] < n or nat_l4.shape[0] < n
                                     or nat_dir.shape[0] < n):
            raise ValueError("_observe: NAT arrays shorter than the batch")
        if sent_src.shape[0] != 0 and sent_src.shape[0] < n:
            raise ValueError("_observe: sent_src shorter than the batch")
        if (in_dst.shape[0] != 0 or in_vpc.shape[0] != 0) and (in_dst.shape[0] < n or in_vpc.shape[0] < n):
            raise ValueError("_observe: in_dst / in_vpc shorter than the batch")
        if window <= 0:
            raise ValueError(f"window {window} must be positive")
        if self.T.slots == NULL:
            raise ValueError("FlowLogCore has no storage")
        if n <= start:
            return (n, 0)
        memset(&topo, 0, sizeof(Topo))
        topo.n_port_dense = port_eni.shape[0]
        topo.port_eni = &port_eni[0] if port_eni.shape[0] else NULL
        topo.n_sparse = sp_port.shape[0]
        topo.sp_port = &sp_port[0] if sp_port.shape[0] else NULL
        topo.sp_eni = &sp_eni[0] if sp_eni.shape[0] else NULL
        topo.n_eni = eni_iface.shape[0]
        if topo.n_eni:
            topo.eni_iface = &eni_iface[0]
            topo.eni_ip = &eni_ip[0]
            topo.eni_vpc = &eni_vpc[0]
        topo.n_vpc = vpc_dns.shape[0]
        topo.vpc_dns = &vpc_dns[0] if vpc_dns.shape[0] else NULL
        topo.n_route = route_kind.shape[0]
        if topo.n_route:
            topo.route_kind = &route_kind[0]
            topo.route_arg = &route_arg[0]
            topo.route_vpc = &route_vpc[0]
            topo.route_path = &route_path[0]
        cap = <uint64_t>ip_hash.shape[0] // 2
        if cap >= 2 and (cap & (cap - 1)) == 0:
            topo.ipt.slots = &ip_hash[0]
            topo.ipt.mask = cap - 1
            while (<uint64_t>1 << (64 - shift)) < cap:
                shift -= 1
            topo.ipt.shift = shift
        else:
            topo.ipt.slots = NULL
        topo.port_info = &port_info[0] if port_info.shape[0] else NULL
        topo.n_dns = dns_sorted.shape[0]
        topo.dns_sorted = &dns_sorted[0] if dns_sorted.shape[0] else NULL
        for k in range(1, topo.n_dns):
            if dns_sorted[k - 1] > dns_sorted[k]:
                raise ValueError("_observe: dns_sorted is not sorted")
        topo.n_gw = gw_iface.shape[0]
        if topo.n_gw:
            topo.gw_iface = &gw_iface[0]
            topo.gw_ip = &gw_ip[0]
        if nat_gw.shape[0]:
            topo.nat_gw = &nat_gw[0]
            topo.nat_ip = &nat_ip[0]
            topo.nat_l4 = &nat_l4[0]
            topo.nat_dir = &nat_dir[0]
        if sent_src.shape[0]:
            topo.sent_src = &sent_src[0]
        if in_dst.shape[0]:
            topo.in_dst = &in_dst[0]
            topo.in_vpc = &in_vpc[0]
        if topo.n_eni == 0 and topo.n_gw == 0:
            return (n, 0)
        with nogil:
            stop = _observe_frames(&self.T, &topo, &data[0] if data.shape[0] else NULL, data.shape[0],
                                   &offsets[0], start, n, &port[0], &ts[0] if ts.shape[0] else NULL,
                                   &ordinal[0] if ordinal.shape[0] else NULL, now,
                                   &action[0], &reason[0], &egress[0], &route[0], window, &logged)
        return (stop, logged)


def _layout() -> dict:
    """The FlEntry layout (flowlogs builds its numpy dtype from it) and the LOG_* codes."""
    cdef FlEntry e
    cdef size_t base = <size_t>&e
    return {
        "entry_size": sizeof(FlEntry),
        "fields": [
            ("seq", "<u8", <size_t>&e.seq - base), ("wstart", "<i8", <size_t>&e.wstart - base),
            ("packets", "<u8", <size_t>&e.packets - base), ("bytes", "<u8", <size_t>&e.bytes - base),
            ("iface", "<u4", <size_t>&e.iface - base), ("src", "<u4", <size_t>&e.src - base),
            ("dst", "<u4", <size_t>&e.dst - base),
            ("sport", "<u2", <size_t>&e.sport - base), ("dport", "<u2", <size_t>&e.dport - base),
            ("first", "<u2", <size_t>&e.first - base), ("last", "<u2", <size_t>&e.last - base),
            ("proto", "u1", <size_t>&e.proto - base), ("dirn", "u1", <size_t>&e.dirn - base),
            ("action", "u1", <size_t>&e.action - base), ("tcpflags", "u1", <size_t>&e.tcpflags - base),
            ("path", "u1", <size_t>&e.path - base),
        ],
        "log_kinds": {"NONE": LOG_NONE, "SENDER_REJECT": LOG_SENDER_REJECT,
                      "RECEIVER_REJECT": LOG_RECEIVER_REJECT, "SENDER_ACCEPT": LOG_SENDER_ACCEPT,
                      "IF_ROUTED": LOG_IF_ROUTED},
        "n_fields": N_FIELDS,
        "actions": {"ACCEPT": ACC_ACCEPT, "REJECT": ACC_REJECT, "SKIPDATA": ACC_SKIPDATA, "NODATA": ACC_NODATA},
        "dirs": {"ingress": DIR_INGRESS, "egress": DIR_EGRESS, "none": DIR_NONE},
        "nat_dirs": {"none": NAT_NONE, "out": NAT_OUT, "back": NAT_BACK},
        "if_none": IF_NONE,
    }
