# The fused forwarding pass of fastvpc (docs/forwarding-model.md, step by step).
#
# Structure (VPP/DPDK style), per chunk of CHUNK frames, one chunk per thread at a time:
#   stage 1  one software-pipelined loop: while frame j is classified and checked (port, Ethernet,
#            ARP, IPv4 validity, broadcast/multicast, source/dest check, MAC, router, link-local,
#            same-subnet delivery), the ingress record of frame j + 2*FV_DIST and the (VPC, dst)
#            hash slot of frame j + FV_DIST are prefetched; frames that need a route lookup are
#            appended (branch-free) to small on-stack scratch lists (frame, table, destination);
#   stage 2  one batch LPM call on the chunk's scratch (fastvpc.lpm C API, interleaved there),
#            then each result turned into a global route index once (and its record prefetched);
#   stage 3  resolve each matched route's target: exact-match delivery, rewrite.
# Scratch lives on the calling thread's stack, so concurrent calls on one Dataplane share
# nothing but read-only tables; nothing is allocated per frame or per batch.
#
# Tables (built by fastvpc/compiler.py, all read-only):
#   enis     EniRec[n_eni]      (32-byte records, see compiler.ENI_DTYPE)
#   subnets  SubnetRec[n_sub]   (32-byte records, see compiler.SUBNET_DTYPE)
#   routes   RouteRec[n_route]  (16-byte records, see compiler.ROUTE_DTYPE), index = Network.routes() order
#   port_eni IngRec[max_port+1] (16-byte records, see compiler.PORT_DTYPE) what the ingress checks need of
#                               each port's ENI (subnet -1: the port is no ENI), dense case; else empty
#   deliv    DelivRec[n_eni]    (16-byte records, see compiler.DELIV_DTYPE) what delivery to an ENI needs
#   ip/mac hash  uint64[2*cap]  exact-match hash (key, value) pairs, see types.pxd
#   lpm      fastvpc.lpm.RouteTables, table id = route table index, value = global route index

cimport cython
from cython.parallel cimport prange
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t

import numpy as np


from fastvpc._kernels.types cimport *
from fastvpc.lpm._lookup cimport RtsView, rts_view_init, rts_lookup_batch


cdef extern from *:
    """
    #define FV_CHUNK 256
    #define FV_NO_ROUTE 0xFFFFFFFFu
    #ifndef FV_DIST
    #define FV_DIST 8
    #endif
    #if defined(__GNUC__) || defined(__clang__)
    #define fv_prefetch(p) __builtin_prefetch((const void*)(p), 0, 3)
    #else
    #define fv_prefetch(p) ((void)(p))
    #endif
    """
    enum: FV_CHUNK
    enum: FV_DIST
    const uint32_t FV_NO_ROUTE
    void fv_prefetch(const void* p) noexcept nogil


cdef packed struct EniRec:
    uint64_t mac          # 48-bit MAC
    uint32_t ip0          # primary IP
    int32_t subnet        # subnet index
    int32_t port          # port number
    uint32_t sdc          # 1 = source/dest check on
    uint32_t vpc          # VPC index
    uint32_t pad

cdef packed struct SubnetRec:
    uint32_t base         # network address
    uint32_t mask         # netmask
    uint32_t router       # base + 1
    uint32_t bcast        # last address
    uint64_t gwmac        # gateway (router) MAC
    int32_t vpc           # VPC index
    uint32_t table        # route table index (LPM table id)

cdef packed struct RouteRec:
    uint32_t kind         # RK_*
    int32_t port          # target port (FORWARD), else -1
    int32_t arg           # ENI index (RK_ENI), peer VPC index (RK_PEERING), else -1
    uint32_t pad


cdef packed struct IngRec:
    uint64_t mac          # 48-bit MAC; bit 63: source/dest check on
    uint32_t ip0          # primary IP
    int32_t subnet        # subnet index; -1: the port is no ENI's

cdef packed struct DelivRec:
    uint64_t mac          # 48-bit MAC
    int32_t port          # port number
    int32_t subnet        # subnet index


cdef struct HashTab:
    const uint64_t* slots      # 2*cap uint64: (key, value) pairs
    uint64_t mask              # cap - 1
    int shift                  # 64 - log2(cap)


cdef struct FwdTables:
    const EniRec* enis
    int64_t n_enis
    const SubnetRec* subnets
    int64_t n_subnets
    const RouteRec* routes
    int64_t n_routes
    const uint32_t* table_base
    int64_t n_tables
    const IngRec* port_eni     # per port: what the ingress checks need of the port's ENI (subnet -1: none)
    int64_t n_port_dense
    int port_hashed
    const DelivRec* deliv      # per ENI: what delivery to it needs
    HashTab ipt                # (VPC, IP) -> ENI / router / broadcast
    HashTab mact               # MAC -> ENI / gateway; sparse ports
    int single_mac
    RtsView lpm


# ------------------------------------------------------------------ hash tables

cdef inline uint32_t ht_get(const HashTab* t, uint64_t key) noexcept nogil:
    """Value stored under ``key``, or FV_HV_NONE.  Load <= 0.5, so an empty slot always ends the probe."""
    cdef uint64_t slot = (key * FV_HT_MULT) >> t.shift
    cdef uint64_t k
    while True:
        k = t.slots[2 * slot]
        if k == key:
            return <uint32_t>t.slots[2 * slot + 1]
        if k == FV_HT_EMPTY:
            return FV_HV_NONE
        slot = (slot + 1) & t.mask


cdef inline void ht_prefetch(const HashTab* t, uint64_t key) noexcept nogil:
    fv_prefetch(&t.slots[2 * ((key * FV_HT_MULT) >> t.shift)])


cdef inline uint64_t ip_key(uint32_t vpc, uint32_t ip) noexcept nogil:
    return (<uint64_t>HK_IP << 56) | (<uint64_t>vpc << 32) | ip


cdef inline uint64_t mac_key(uint64_t mac) noexcept nogil:
    return (<uint64_t>HK_MAC << 56) | mac


cdef inline uint32_t tag_of(uint32_t h) noexcept nogil:
    return h & 0xC0000000u


cdef inline IngRec ingress_of(const FwdTables* t, int32_t p) noexcept nogil:
    """The ingress record of port ``p`` (subnet -1 when ``p`` is no ENI's port)."""
    cdef uint32_t h
    cdef IngRec r
    cdef const EniRec* er
    if 0 <= p < t.n_port_dense:
        return t.port_eni[p]
    r.mac = 0
    r.ip0 = 0
    r.subnet = -1
    if p >= 0 and t.port_hashed:
        h = ht_get(&t.mact, (<uint64_t>HK_PORT << 56) | <uint32_t>p)
        if h != FV_HV_NONE:
            er = &t.enis[h & FV_HV_INDEX_MASK]
            r.mac = er.mac | ((<uint64_t>(er.sdc != 0)) << 63)
            r.ip0 = er.ip0
            r.subnet = er.subnet
    return r


cdef inline uint64_t mac48(uint64_t m) noexcept nogil:
    return m & 0xFFFFFFFFFFFFULL


# ------------------------------------------------------------------ verdict helpers

cdef inline void set_verdict(int64_t i, uint8_t act, uint8_t why, int32_t eg, int32_t rt,
                             uint8_t* action, uint8_t* reason, int32_t* egress, int32_t* route) noexcept nogil:
    action[i] = act
    reason[i] = why
    egress[i] = eg
    route[i] = rt


cdef inline void deliver(const FwdTables* t, uint8_t* f, const IngRec* er, uint32_t r, int64_t i, int32_t rt,
                         uint8_t* action, uint8_t* reason, int32_t* egress, int32_t* route) noexcept nogil:
    """DELIVER frame ``f`` (length >= 14, checked) from ENI ``er`` to ENI index ``r``: rewrite both MACs."""
    cdef const DelivRec* rr = &t.deliv[r]
    wr48(f, rr.mac)
    if rr.subnet == er.subnet:
        wr48(f + 6, mac48(er.mac))
    else:
        wr48(f + 6, t.subnets[rr.subnet].gwmac)
    set_verdict(i, ACT_DELIVER, R_NONE, rr.port, rt, action, reason, egress, route)


# ------------------------------------------------------------------ stage 1

cdef inline int do_arp(const FwdTables* t, uint8_t* f, int64_t L, int32_t p, const IngRec* er, int64_t i,
                       uint8_t* action, uint8_t* reason, int32_t* egress, int32_t* route) noexcept nogil:
    """Steps 4-8 (ARP).  ``f`` has L >= 14 bytes."""
    cdef const SubnetRec* sr = &t.subnets[er.subnet]
    cdef uint32_t spa, tpa, h
    cdef uint64_t m, esrc, sha
    if (L < ARP_LEN or f[14] != 0 or f[15] != 1 or f[16] != 8 or f[17] != 0
            or f[18] != 6 or f[19] != 4):
        set_verdict(i, ACT_DROP, R_MALFORMED, -1, -1, action, reason, egress, route)
        return 0
    if f[20] != 0 or f[21] != 1:
        set_verdict(i, ACT_DROP, R_ARP_IGNORED, -1, -1, action, reason, egress, route)
        return 0
    spa = rd32(f + 28)
    tpa = rd32(f + 38)
    if spa == 0 or spa == tpa:
        set_verdict(i, ACT_DROP, R_ARP_IGNORED, -1, -1, action, reason, egress, route)
        return 0
    if t.single_mac or tpa == sr.router:
        m = sr.gwmac
    else:
        h = ht_get(&t.ipt, ip_key(<uint32_t>sr.vpc, tpa))
        if h == FV_HV_NONE or tag_of(h) != FV_HV_ENI:
            set_verdict(i, ACT_DROP, R_ARP_NO_ENTRY, -1, -1, action, reason, egress, route)
            return 0
        m = t.enis[h & FV_HV_INDEX_MASK].mac
    esrc = rd48(f + 6)
    sha = rd48(f + 22)
    wr48(f, esrc)
    wr48(f + 6, m)
    f[20] = 0
    f[21] = 2
    wr48(f + 22, m)
    wr32(f + 28, tpa)
    wr48(f + 32, sha)
    wr32(f + 38, spa)
    set_verdict(i, ACT_REPLY, R_NONE, p, -1, action, reason, egress, route)
    return 0


cdef inline void echo_reply(const SubnetRec* sr, uint8_t* f, int64_t hl, int64_t tl, uint32_t src) noexcept nogil:
    """Step 15 rewrite: ICMP echo reply in place (lengths already checked: 14 + tl <= L, tl >= hl + 8)."""
    cdef uint64_t esrc = rd48(f + 6)
    cdef uint8_t* ic = f + ETH_HLEN + hl
    wr48(f, esrc)
    wr48(f + 6, sr.gwmac)
    wr32(f + 26, sr.router)
    wr32(f + 30, src)
    f[22] = 64
    f[24] = 0
    f[25] = 0
    wr16(f + 24, <uint16_t>(~csum_add(f + ETH_HLEN, hl) & 0xFFFF))
    ic[0] = 0
    ic[1] = 0
    ic[2] = 0
    ic[3] = 0
    wr16(ic + 2, <uint16_t>(~csum_add(ic, tl - hl) & 0xFFFF))


cdef inline int stage1(const FwdTables* t,
                       uint8_t* f,            # IN/OUT frame bytes (rewritten for REPLY / same-subnet DELIVER)
                       int64_t L,             # IN  frame length
                       int32_t p,             # IN  ingress port
                       const IngRec* er,      # IN  ingress record of port p (ingress_of; subnet -1: none)
                       uint32_t h,            # IN  ht_get(ip_key(er's VPC, dst)) when the frame is IPv4 and L >= 34
                       int64_t i,             # IN  frame index (row of the outputs)
                       uint8_t* action, uint8_t* reason, int32_t* egress, int32_t* route,   # OUT [i]
                       uint32_t* o_tab,       # OUT LPM table id (when 1 is returned)
                       uint32_t* o_dst,       # OUT destination IP (when 1 is returned)
                       ) noexcept nogil:
    """Steps 1-18.  Returns 1 when the frame needs a route lookup (step 19), 2 when it is to be
    delivered inside the subnet to the ENI of hash value ``h`` (step 18, done by the caller), else 0
    (verdict written)."""
    cdef const SubnetRec* sr
    cdef uint16_t et
    cdef uint8_t b0
    cdef int64_t hl, tl
    cdef uint32_t src, dst, hm, hs
    cdef uint64_t dm
    if er.subnet < 0:
        set_verdict(i, ACT_DROP, R_UNKNOWN_PORT, -1, -1, action, reason, egress, route)
        return 0
    if L < ETH_HLEN:
        set_verdict(i, ACT_DROP, R_MALFORMED, -1, -1, action, reason, egress, route)
        return 0
    et = rd16(f + 12)
    if et == ETHERTYPE_ARP:
        return do_arp(t, f, L, p, er, i, action, reason, egress, route)
    if et != ETHERTYPE_IPV4:
        set_verdict(i, ACT_DROP, R_NON_IPV4, -1, -1, action, reason, egress, route)
        return 0
    # step 9: IPv4 validity
    if L < IPV4_MIN_FRAME:
        set_verdict(i, ACT_DROP, R_MALFORMED, -1, -1, action, reason, egress, route)
        return 0
    b0 = f[14]
    hl = (b0 & 15) * 4
    tl = rd16(f + 16)
    if b0 == 0x45:   # common case: version 4, no options (the header fits: L >= 34 was checked)
        if tl < 20 or ETH_HLEN + tl > L:
            set_verdict(i, ACT_DROP, R_MALFORMED, -1, -1, action, reason, egress, route)
            return 0
    elif (b0 >> 4) != 4 or hl < 20 or ETH_HLEN + hl > L or tl < hl or ETH_HLEN + tl > L:
        set_verdict(i, ACT_DROP, R_MALFORMED, -1, -1, action, reason, egress, route)
        return 0
    if not ipv4_csum_ok(f + ETH_HLEN, hl):
        set_verdict(i, ACT_DROP, R_MALFORMED, -1, -1, action, reason, egress, route)
        return 0
    # step 10
    if f[0] & 1:
        set_verdict(i, ACT_DROP, R_L2_BROADCAST, -1, -1, action, reason, egress, route)
        return 0
    sr = &t.subnets[er.subnet]
    src = rd32(f + 26)
    dst = rd32(f + 30)
    # step 11
    if dst == 0xFFFFFFFFu:
        set_verdict(i, ACT_DROP, R_BROADCAST, -1, -1, action, reason, egress, route)
        return 0
    if h != FV_HV_NONE and tag_of(h) == FV_HV_BCAST:
        set_verdict(i, ACT_DROP, R_BROADCAST, -1, -1, action, reason, egress, route)
        return 0
    # step 12
    if (dst >> 28) == 0xE:
        set_verdict(i, ACT_DROP, R_MULTICAST, -1, -1, action, reason, egress, route)
        return 0
    # step 13
    if (er.mac >> 63) and src != er.ip0:
        # src must be an IP of this ENI: the ENI owning it has this port (ports are unique)
        hs = ht_get(&t.ipt, ip_key(<uint32_t>sr.vpc, src))
        if hs == FV_HV_NONE or tag_of(hs) != FV_HV_ENI or t.deliv[hs & FV_HV_INDEX_MASK].port != p:
            set_verdict(i, ACT_DROP, R_SRC_DST_CHECK, -1, -1, action, reason, egress, route)
            return 0
    # step 14
    dm = rd48(f)
    if dm != sr.gwmac:
        hm = ht_get(&t.mact, mac_key(dm))
        if hm == FV_HV_NONE or tag_of(hm) != FV_HV_ENI or t.enis[hm & FV_HV_INDEX_MASK].subnet != er.subnet:
            set_verdict(i, ACT_DROP, R_UNKNOWN_MAC, -1, -1, action, reason, egress, route)
            return 0
    # step 15
    if dst == sr.router:
        if (f[23] == 1 and tl >= hl + 8 and (rd16(f + 20) & 0x3FFF) == 0
                and f[ETH_HLEN + hl] == 8 and f[ETH_HLEN + hl + 1] == 0):
            echo_reply(sr, f, hl, tl, src)
            set_verdict(i, ACT_REPLY, R_NONE, p, -1, action, reason, egress, route)
        else:
            set_verdict(i, ACT_DROP, R_ROUTER_UNSUPPORTED, -1, -1, action, reason, egress, route)
        return 0
    # step 16
    if h != FV_HV_NONE and tag_of(h) == FV_HV_ROUTER:
        set_verdict(i, ACT_DROP, R_ROUTER_NOT_OWN_SUBNET, -1, -1, action, reason, egress, route)
        return 0
    # step 17
    if (dst & 0xFFFFFC00u) == 0xA9FEA800u:
        set_verdict(i, ACT_DROP, R_LINK_LOCAL_SERVICE, -1, -1, action, reason, egress, route)
        return 0
    # step 18
    if (dst & sr.mask) == sr.base:
        if h != FV_HV_NONE and tag_of(h) == FV_HV_ENI:
            return 2
        set_verdict(i, ACT_DROP, R_NO_SUCH_HOST, -1, -1, action, reason, egress, route)
        return 0
    # step 19 follows after the batch lookup
    o_tab[0] = sr.table
    o_dst[0] = dst
    return 1


# ------------------------------------------------------------------ stage 3

cdef inline void stage3(const FwdTables* t,
                        uint8_t* f,           # IN/OUT frame bytes (rewritten on DELIVER)
                        int64_t i,            # IN  frame index
                        const IngRec* er,     # IN  ingress ENI
                        uint32_t dst,         # IN  destination IP
                        uint32_t h,           # IN  hash value of (ingress VPC, dst)
                        uint32_t r,           # IN  global route index (< n_routes), or FV_NO_ROUTE
                        uint8_t* action, uint8_t* reason, int32_t* egress, int32_t* route,   # OUT [i]
                        ) noexcept nogil:
    """Step 19: act on the matched route."""
    cdef const RouteRec* rr
    cdef const EniRec* tr
    cdef uint32_t h2
    cdef int32_t tgt
    if r == FV_NO_ROUTE:
        set_verdict(i, ACT_DROP, R_NO_ROUTE, -1, -1, action, reason, egress, route)
        return
    rr = &t.routes[r]
    if rr.kind == RK_LOCAL:
        if h != FV_HV_NONE and tag_of(h) == FV_HV_ENI:
            deliver(t, f, er, h & FV_HV_INDEX_MASK, i, <int32_t>r, action, reason, egress, route)
        else:
            set_verdict(i, ACT_DROP, R_NO_SUCH_HOST, -1, <int32_t>r, action, reason, egress, route)
    elif rr.kind == RK_FORWARD:
        set_verdict(i, ACT_FORWARD, R_NONE, rr.port, <int32_t>r, action, reason, egress, route)
    elif rr.kind == RK_ENI:
        tgt = rr.arg
        tr = &t.enis[tgt]
        if tr.sdc and dst != tr.ip0 and ht_get(&t.ipt, ip_key(tr.vpc, dst)) != (FV_HV_ENI | <uint32_t>tgt):
            set_verdict(i, ACT_DROP, R_SRC_DST_CHECK, -1, <int32_t>r, action, reason, egress, route)
        else:
            deliver(t, f, er, <uint32_t>tgt, i, <int32_t>r, action, reason, egress, route)
    elif rr.kind == RK_PEERING:
        h2 = ht_get(&t.ipt, ip_key(<uint32_t>rr.arg, dst))
        if h2 != FV_HV_NONE and tag_of(h2) == FV_HV_ENI:
            deliver(t, f, er, h2 & FV_HV_INDEX_MASK, i, <int32_t>r, action, reason, egress, route)
        else:
            set_verdict(i, ACT_DROP, R_NO_SUCH_HOST, -1, <int32_t>r, action, reason, egress, route)
    else:
        set_verdict(i, ACT_DROP, R_BLACKHOLE, -1, <int32_t>r, action, reason, egress, route)


cdef inline void prefetch_port(const FwdTables* t, int32_t p) noexcept nogil:
    if 0 <= p < t.n_port_dense:
        fv_prefetch(&t.port_eni[p])


cdef inline void fetch_key(const FwdTables* t,
                           const uint8_t* data,      # IN  the batch buffer
                           const int64_t* offsets,   # IN  n+1 offsets
                           const int32_t* port,      # IN  ingress ports
                           int64_t i,                # IN  frame index
                           IngRec* er,               # OUT ingress record of the frame's port
                           uint64_t* key,            # OUT hash key of (VPC, dst) for IPv4 frames, else FV_HT_EMPTY
                           ) noexcept nogil:
    """Ingress record and (VPC, dst) hash key of frame ``i``; prefetches the key's hash slot."""
    cdef int64_t start, L
    cdef const uint8_t* f
    cdef uint64_t k
    er[0] = ingress_of(t, port[i])
    key[0] = FV_HT_EMPTY
    if er.subnet < 0:
        return
    start = offsets[i]
    L = offsets[i + 1] - start
    f = data + start
    if L >= IPV4_MIN_FRAME and f[12] == 0x08 and f[13] == 0x00:
        k = ip_key(<uint32_t>t.subnets[er.subnet].vpc, rd32(f + 30))
        key[0] = k
        ht_prefetch(&t.ipt, k)


# ------------------------------------------------------------------ one chunk

cdef void run_chunk(const FwdTables* t,
                    uint8_t* data,            # IN/OUT the batch buffer (frames rewritten in place)
                    const int64_t* offsets,   # IN  n+1 offsets
                    const int32_t* port,      # IN  ingress ports
                    int64_t lo, int64_t hi,   # IN  frame range of this chunk (hi - lo <= FV_CHUNK)
                    uint8_t* action, uint8_t* reason, int32_t* egress, int32_t* route,   # OUT [lo:hi]
                    ) noexcept nogil:
    """One chunk: pipelined stage 1, batch LPM, stage 3.

    Stage 1 runs ahead of itself at a fixed distance (port -> ingress record -> hash slot of
    (VPC, dst) -> receiving ENI's delivery record), so that the dependent cache misses of several
    frames overlap with the checks of the current one instead of being paid one after another.
    """
    cdef uint32_t sc_tab[FV_CHUNK]     # LPM list: table id
    cdef uint32_t sc_dst[FV_CHUNK]     # LPM list: destination
    cdef uint32_t sc_val[FV_CHUNK]     # LPM list: lookup result
    cdef int32_t sc_i[FV_CHUNK]        # LPM list: frame offset in the chunk
    cdef IngRec sc_er[FV_CHUNK]        # per frame: ingress record
    cdef uint64_t sc_key[FV_CHUNK]     # per frame: hash key of (VPC, dst), or FV_HT_EMPTY
    cdef uint32_t hv[FV_CHUNK]         # per frame: hash value of (VPC, dst)
    cdef int32_t dl_i[FV_CHUNK]        # same-subnet delivery list: frame offset in the chunk
    cdef int64_t i, j, k, n = hi - lo, nl = 0, nd = 0, start, m
    cdef int rc
    cdef uint32_t h
    cdef uint64_t key, r
    # One software-pipelined loop: while frame j goes through stage 1, the ingress record of frame
    # j + 2*FV_DIST and the (VPC, dst) hash slot of frame j + FV_DIST are being fetched.
    m = n if n < 2 * FV_DIST else 2 * FV_DIST
    for j in range(m):
        prefetch_port(t, port[lo + j])
    m = n if n < FV_DIST else FV_DIST
    for j in range(m):
        fetch_key(t, data, offsets, port, lo + j, &sc_er[j], &sc_key[j])
    for j in range(n):
        if j + 2 * FV_DIST < n:
            prefetch_port(t, port[lo + j + 2 * FV_DIST])
        if j + FV_DIST < n:
            fetch_key(t, data, offsets, port, lo + j + FV_DIST, &sc_er[j + FV_DIST], &sc_key[j + FV_DIST])
        key = sc_key[j]
        h = ht_get(&t.ipt, key) if key != FV_HT_EMPTY else FV_HV_NONE
        hv[j] = h
        if tag_of(h) == FV_HV_ENI:   # FV_HV_NONE has another tag
            fv_prefetch(&t.deliv[h & FV_HV_INDEX_MASK])
        i = lo + j
        start = offsets[i]
        rc = stage1(t, data + start, offsets[i + 1] - start, port[i], &sc_er[j], h, i,
                    action, reason, egress, route, &sc_tab[nl], &sc_dst[nl])
        sc_i[nl] = <int32_t>j           # branchless appends: the slot past the end is overwritten later
        nl += rc == 1
        dl_i[nd] = <int32_t>j
        nd += rc == 2
    # stage 2: batch LPM
    if nl:
        rts_lookup_batch(&t.lpm, sc_tab, sc_dst, sc_val, nl)
        for k in range(nl):   # global route index (or FV_NO_ROUTE) and a prefetch of its record
            r = FV_NO_ROUTE
            if sc_val[k] != 0xFFFFFFFFu and sc_tab[k] < <uint64_t>t.n_tables:
                r = <uint64_t>t.table_base[sc_tab[k]] + sc_val[k]
                if r < <uint64_t>t.n_routes and r < FV_NO_ROUTE:
                    fv_prefetch(&t.routes[r])
                else:
                    r = FV_NO_ROUTE
            sc_val[k] = <uint32_t>r
    # stage 3: same-subnet deliveries, then routed frames
    for k in range(nd):
        j = dl_i[k]
        i = lo + j
        deliver(t, data + offsets[i], &sc_er[j], hv[j] & FV_HV_INDEX_MASK, i, -1, action, reason, egress, route)
    for k in range(nl):
        j = sc_i[k]
        i = lo + j
        stage3(t, data + offsets[i], i, &sc_er[j], sc_dst[k], hv[j], sc_val[k],
               action, reason, egress, route)


# ------------------------------------------------------------------ Python-facing objects

@cython.auto_pickle(False)
cdef class Tables:
    """The compiled tables of one Dataplane, as raw pointers for the kernel (read-only).

    Holds references to every array (and the LPM object) so the pointers stay valid.
    """
    cdef FwdTables t
    cdef object _keep

    def __cinit__(self,
                  const uint8_t[::1] enis,        # IN  EniRec records as bytes
                  const uint8_t[::1] subnets,     # IN  SubnetRec records as bytes
                  const uint8_t[::1] routes,      # IN  RouteRec records as bytes
                  const uint32_t[::1] table_base, # IN  global index of each route table's first route
                  const uint8_t[::1] port_eni,    # IN  IngRec per port as bytes (subnet -1: the port is no ENI)
                  bint port_hashed,               # IN  ports beyond port_eni are looked up in mac_hash
                  const uint8_t[::1] deliv,       # IN  DelivRec per ENI as bytes
                  const uint64_t[::1] ip_hash,    # IN  (VPC, IP) hash, 2*cap uint64 (cap a power of two >= 2)
                  const uint64_t[::1] mac_hash,   # IN  MAC (and sparse port) hash, same layout
                  object lpm,                     # IN  fastvpc.lpm.RouteTables
                  bint single_mac):               # IN  arp_mode == "single_mac"
        if enis.shape[0] % sizeof(EniRec) or subnets.shape[0] % sizeof(SubnetRec) \
                or routes.shape[0] % sizeof(RouteRec) or port_eni.shape[0] % sizeof(IngRec):
            raise ValueError("Tables: record arrays do not have whole records")
        if deliv.shape[0] != (enis.shape[0] // sizeof(EniRec)) * sizeof(DelivRec):
            raise ValueError("Tables: deliv must hold one record per ENI")
        _init_hash(&self.t.ipt, ip_hash)
        _init_hash(&self.t.mact, mac_hash)
        # Keep the LPM arrays this view points into, not only the RouteTables: its replace()
        # swaps (and may compact) its arrays, which would free the ones the view reads.
        self._keep = (enis, subnets, routes, table_base, port_eni, deliv, ip_hash, mac_hash, lpm,
                      getattr(lpm, "_state", None))
        self.t.enis = <const EniRec*>&enis[0] if enis.shape[0] else NULL
        self.t.n_enis = enis.shape[0] // sizeof(EniRec)
        self.t.subnets = <const SubnetRec*>&subnets[0] if subnets.shape[0] else NULL
        self.t.n_subnets = subnets.shape[0] // sizeof(SubnetRec)
        self.t.routes = <const RouteRec*>&routes[0] if routes.shape[0] else NULL
        self.t.n_routes = routes.shape[0] // sizeof(RouteRec)
        self.t.table_base = &table_base[0] if table_base.shape[0] else NULL
        self.t.n_tables = table_base.shape[0]
        self.t.port_eni = <const IngRec*>&port_eni[0] if port_eni.shape[0] else NULL
        self.t.n_port_dense = port_eni.shape[0] // sizeof(IngRec)
        self.t.deliv = <const DelivRec*>&deliv[0] if deliv.shape[0] else NULL
        self.t.port_hashed = port_hashed
        self.t.single_mac = single_mac
        rts_view_init(&self.t.lpm, lpm)

    def ip_lookup(self, uint64_t key) -> int:
        """The (VPC, IP) hash table's value for ``key`` (0xFFFFFFFF when absent); for tests."""
        return ht_get(&self.t.ipt, key)

    def mac_lookup(self, uint64_t key) -> int:
        """The MAC hash table's value for ``key`` (0xFFFFFFFF when absent); for tests."""
        return ht_get(&self.t.mact, key)


cdef int _init_hash(HashTab* h, const uint64_t[::1] slots) except -1:
    cdef int64_t cap = slots.shape[0] // 2
    cdef int shift = 64
    if cap < 2 or (cap & (cap - 1)) != 0 or slots.shape[0] != 2 * cap:
        raise ValueError(f"Tables: hash table of {slots.shape[0]} words is not 2 * a power of two >= 2")
    while (<int64_t>1 << (64 - shift)) < cap:
        shift -= 1
    h.slots = &slots[0]
    h.mask = <uint64_t>(cap - 1)
    h.shift = shift
    return 0


def ingress_sizes() -> tuple:
    """sizeof(IngRec), sizeof(DelivRec): compiler.py checks PORT_DTYPE and DELIV_DTYPE against them."""
    return (sizeof(IngRec), sizeof(DelivRec))


def record_sizes() -> tuple:
    """sizeof(EniRec), sizeof(SubnetRec), sizeof(RouteRec): compiler.py checks its dtypes against them."""
    return (sizeof(EniRec), sizeof(SubnetRec), sizeof(RouteRec))


def chunk_size() -> int:
    """Frames per chunk (stage 1 -> batch LPM -> stage 3)."""
    return FV_CHUNK


def forward_batch(Tables tables,                 # IN  compiled tables
                  uint8_t[::1] data,             # IN/OUT frames, rewritten in place
                  const int64_t[::1] offsets,    # IN  n+1 offsets (validated by FrameBatch)
                  const int32_t[::1] port,       # IN  n ingress ports
                  uint8_t[::1] action,           # OUT n (or more)
                  uint8_t[::1] reason,           # OUT n (or more)
                  int32_t[::1] egress,           # OUT n (or more)
                  int32_t[::1] route,            # OUT n (or more)
                  int n_threads) -> None:        # IN  resolved thread count (>= 1)
    """Forward every frame of the batch; releases the GIL."""
    cdef int64_t n = offsets.shape[0] - 1
    cdef int64_t nd = data.shape[0]
    cdef int64_t nchunks, c, lo, hi
    cdef uint8_t* base
    cdef const FwdTables* t = &tables.t
    if n <= 0:
        return
    if port.shape[0] < n or action.shape[0] < n or reason.shape[0] < n or egress.shape[0] < n \
            or route.shape[0] < n:
        raise ValueError(f"forward_batch: port/output arrays shorter than {n} frames")
    fv_check_offsets(offsets, n, nd)
    base = &data[0] if nd > 0 else NULL
    nchunks = (n + FV_CHUNK - 1) // FV_CHUNK
    if n_threads < 1:
        n_threads = 1
    if n_threads > nchunks:
        n_threads = <int>nchunks
    cdef const int64_t* po = &offsets[0]
    cdef const int32_t* pp = &port[0]
    cdef uint8_t* pa = &action[0]
    cdef uint8_t* pr = &reason[0]
    cdef int32_t* pe = &egress[0]
    cdef int32_t* prt = &route[0]
    with nogil:
        if n_threads == 1:
            for c in range(nchunks):
                lo = c * FV_CHUNK
                hi = lo + FV_CHUNK if lo + FV_CHUNK < n else n
                run_chunk(t, base, po, pp, lo, hi, pa, pr, pe, prt)
        else:
            for c in prange(nchunks, num_threads=n_threads, schedule="dynamic", chunksize=8):
                lo = c * FV_CHUNK
                hi = lo + FV_CHUNK if lo + FV_CHUNK < n else n
                run_chunk(t, base, po, pp, lo, hi, pa, pr, pe, prt)


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
        raise ValueError("build_hash: keys and values differ in length")
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
