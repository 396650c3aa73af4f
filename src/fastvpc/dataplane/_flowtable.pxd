# fastvpc.dataplane._flowtable C-level API: connection tracking state for a kernel stage
# (cimport, nogil).  The model is fastvpc.lpm._lookup's RtsView.
#
#   from fastvpc.dataplane._flowtable cimport (FtView, FtPkt, FtTimeouts, ft_view_init, ft_acquire,
#       ft_release, ft_first_backwards, ft_make_pkt, ft_prefetch, ft_insert_or_update, ft_track_batch, ...)
#
#   cdef FtView v
#   ft_view_init(&v, flows)                 # flows: a fastvpc.FlowTable; needs the GIL
#   if ft_acquire(&v) != 0: raise ...       # one pass at a time per table (an atomic flag)
#   with nogil:
#       bad = ft_first_backwards(&v, now, n) # -1, or the first packet whose time runs backwards
#       for i in range(n):                   # (or ft_track_batch over an FtPkt array: it prefetches)
#           ft_make_pkt(&pkts[i], eni_id, zone, proto, src, dst, sport, dport, l4flags)
#       ft_track_batch(&v, pkts, lengths, now, admitted, timeouts, timeout_idx, code, direction, state, n)
#   ft_release(&v)
#
# What the stage passes, per packet:
#   eni_id    the *stable* 32-bit identity of the ENI whose table this is (not the compiled ENI index,
#             which changes with every recompile): e.g. a 32-bit hash of the ENI's id/name, or the low
#             32 bits of its MAC (AWS assigns one per ENI) -- anything that is the same after a recompile.
#             Two ENIs must not share one: 100k random 32-bit identities collide with probability ~0.7
#             (birthday bound), so the compiler has to check them for distinctness and settle a clash
#             deterministically (e.g. rehash the later name with a salt), or flows of the two ENIs would
#             meet in one table wherever their 5-tuples coincide (overlapping VPC CIDRs).
#   zone      8 bits that separate tables sharing one FlowTable (0 for the SG tables; NAT etc. later).
#   proto     IP protocol.  6 TCP and 17 UDP are tracked by the 5-tuple, 1 ICMP by (requester,
#             responder, identifier, query type), every other protocol by (addresses, protocol) only.
#   src, dst  IPv4 host-order uint32; sport, dport host-order (ICMP: sport = identifier, dport ignored).
#   l4flags   TCP: the flags byte (FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 ...); ICMP: the type.
#   length    bytes counted for the flow (the IP total length).
#   now       int64 ns, non-decreasing along the batch and never before the table's clock (check with
#             ft_first_backwards first: the table trusts the stage here).
#   admitted  FT_DENY (the rules deny a first packet), FT_ADMIT (they admit it: open an entry if the
#             packet may open one), FT_ADMIT_UNTRACKED (admitted by AWS's untracked-flow rule: never
#             opens an entry, but an existing tracked entry still matches).
#   timeouts  the ENI's FtTimeouts (seconds); build them with fastvpc.dataplane.state.timeouts_record().
# Results: code FT_MISS / FT_HIT / FT_NEW / FT_FULL / FT_PASS, direction FT_ORIGINAL / FT_REPLY, and the
# flow's state after the packet (FT_S_*; 0 = no entry).  FT_FULL -> DROP(FLOW_TABLE_FULL); FT_MISS ->
# the SG's own drop; FT_HIT / FT_NEW / FT_PASS -> admitted.
#
# The view holds raw pointers into the table and no references: keep the FlowTable alive while the
# view is used; FlowTable.clear() and pickling keep the same buffers, so a view stays valid.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t

# --- per-packet result codes ----------------------------------------------------------------
cdef enum:
    FT_MISS = 0           # no tracked flow, and the rules deny: no entry
    FT_HIT = 1            # the packet belongs to a tracked flow (admitted whatever the rules say now)
    FT_NEW = 2            # no tracked flow, the rules admit it and it opened an entry
    FT_FULL = 3           # it needed a new entry and every one of `capacity` entries is live
    FT_PASS = 4           # no tracked flow, admitted by the rules, opens none (lone SYN-ACK/FIN/RST,
                          # ICMP reply or error, untracked flow)
    FT_LATER = 5          # (admitted == FT_ADMIT_LATER only) no live entry of the flow: evaluate the
                          # rules and call again with their answer, through ft_insert_or_update (an
                          # inline re-probe would find nothing again).  ft_step answers it changing only
                          # the clock; ft_insert_or_update answers it after deleting a TCP re-open's old
                          # TIME_WAIT/CLOSE entry, which the second call deletes otherwise: the same

cdef enum:
    FT_ORIGINAL = 0
    FT_REPLY = 1

cdef enum:
    FT_DENY = 0
    FT_ADMIT = 1
    FT_ADMIT_UNTRACKED = 2
    FT_ADMIT_LATER = 3    # the rules are not evaluated yet (a stage that evaluates them only for packets
                          # of no tracked flow: 80% of the traffic needs no rule scan); answer FT_LATER

# --- flow states (fastvpc.dataplane.state.FlowState mirrors these) --------------------------
cdef enum:
    FT_S_NONE = 0
    FT_S_TCP_SYN_SENT = 1
    FT_S_TCP_SYN_RECV = 2
    FT_S_TCP_ESTABLISHED = 3
    FT_S_TCP_FIN_WAIT = 4
    FT_S_TCP_CLOSE_WAIT = 5
    FT_S_TCP_LAST_ACK = 6
    FT_S_TCP_TIME_WAIT = 7
    FT_S_TCP_CLOSE = 8
    FT_S_TCP_SYN_SENT2 = 9
    FT_S_UDP_UNREPLIED = 10
    FT_S_UDP_REPLIED = 11
    FT_S_UDP_STREAM = 12
    FT_S_ICMP_UNREPLIED = 13
    FT_S_ICMP_REPLIED = 14
    FT_S_OTHER_UNREPLIED = 15
    FT_S_OTHER_REPLIED = 16
    FT_S_COUNT = 17

# entry flag bits
cdef enum:
    FT_F_ORIG_HI = 0x01       # the flow's original direction is from the (b, pb) side of the key
    FT_F_LAST_REPLY = 0x02    # UDP: the last packet went in the reply direction
    FT_F_MASK = 0x03

cdef enum:
    FT_MAX_TIMEOUT = 1048575  # seconds: a timeout is stored in 20 bits (AWS's largest is 432,000)
    FT_BYTES_BITS = 44        # bytes counter width (saturates at 2**44 - 1, 17.6 TB)

# One tracked flow: 48 bytes.  The key is normalised so both directions find one entry:
# (a, pa) <= (b, pb) for TCP/UDP/other (ports 0 for other protocols); for ICMP a = requester,
# b = responder, pa = identifier, pb = the request's type (8 echo, 13 timestamp, 15 info, 17 mask).
cdef packed struct FtEntry:
    uint32_t eni          # stable ENI identity
    uint32_t a            # key address a
    uint32_t b            # key address b
    uint16_t pa           # key port a
    uint16_t pb           # key port b
    uint8_t proto
    uint8_t zone
    uint8_t state         # FT_S_*; 0 = empty slot
    uint8_t flags         # FT_F_*
    uint32_t packets      # saturating
    int64_t first_ns      # first packet (ns)
    int64_t last_ns       # latest packet (ns)
    uint64_t bytes_tmo    # bytes (low 44 bits, saturating) | idle timeout in s (high 20 bits)

# Mutable table-wide scalars (owned by the FlowTable object).
cdef struct FtHeader:
    uint64_t count        # entries held (live or expired, not yet reclaimed)
    int64_t clock         # latest `now` seen (ns); -1 before any
    int64_t min_expiry    # a lower bound of every held entry's expiry time (ns)
    uint64_t n_reclaimed  # entries reclaimed since creation (statistics)
    int busy              # the one-pass-at-a-time flag (atomic)

cdef struct FtView:
    FtEntry* slots        # n_slots entries, 64-byte aligned
    uint64_t n_slots      # > capacity: an empty slot always exists
    uint64_t capacity     # most entries held at once
    FtHeader* hdr

# Per-ENI idle timeouts in seconds (each <= FT_MAX_TIMEOUT).  Defaults (timeouts_record()): AWS's
# where AWS documents one, Linux nf_conntrack's otherwise; see _flowtable.pyx.
cdef struct FtTimeouts:
    uint32_t tcp_syn_sent
    uint32_t tcp_syn_recv
    uint32_t tcp_established
    uint32_t tcp_fin_wait
    uint32_t tcp_close_wait
    uint32_t tcp_last_ack
    uint32_t tcp_time_wait
    uint32_t tcp_close
    uint32_t tcp_syn_sent2
    uint32_t udp
    uint32_t udp_stream
    uint32_t icmp
    uint32_t other
    uint32_t reserved0
    uint32_t reserved1
    uint32_t reserved2

# A packet's normalised key, hash and role, made once by ft_make_pkt (32 bytes).
cdef struct FtPkt:
    uint64_t hash         # slot hash (zone, symmetric flow hash; not the ENI: _slot_hash)
    uint32_t eni
    uint32_t a
    uint32_t b
    uint16_t pa
    uint16_t pb
    uint8_t proto
    uint8_t zone
    uint8_t from_hi       # the packet travels from the (b, pb) side (TCP/UDP/other)
    uint8_t kind          # FT_K_*: how the table treats it
    uint8_t l4flags       # TCP flags, ICMP type

cdef enum:
    FT_K_TCP = 0
    FT_K_UDP = 1
    FT_K_ICMP_REQUEST = 2
    FT_K_ICMP_REPLY = 3
    FT_K_ICMP_OTHER = 4    # errors and other non-query types: never tracked (AWS admits no "related")
    FT_K_OTHER = 5

cdef int ft_view_init(FtView* v, object table) except -1
cdef int ft_acquire(FtView* v) noexcept nogil          # 0, or -1 when another pass holds the table
cdef void ft_release(FtView* v) noexcept nogil
cdef Py_ssize_t ft_first_backwards(const FtView* v, const int64_t* now, Py_ssize_t n) noexcept nogil
cdef int64_t ft_lookup(const FtView* v, const FtPkt* p, int64_t now) noexcept nogil   # slot, or -1
cdef uint8_t ft_insert_or_update(FtView* v, const FtPkt* p, uint32_t length, int64_t now,
                                 uint8_t admitted, const FtTimeouts* t, uint8_t* direction,
                                 uint8_t* state) noexcept nogil                       # FT_* code
cdef void ft_track_batch(FtView* v, const FtPkt* pkts, const uint32_t* lengths, const int64_t* now,
                         const uint8_t* admitted, const FtTimeouts* timeouts, const uint32_t* timeout_idx,
                         uint8_t* code, uint8_t* direction, uint8_t* state, Py_ssize_t n) noexcept nogil
cdef uint64_t ft_expire(FtView* v, int64_t now) noexcept nogil                          # reclaimed
cdef void ft_default_timeouts(FtTimeouts* t) noexcept nogil
cdef void ft_delete(FtView* v, uint64_t i) noexcept nogil        # backward-shift deletion of slot i


# ----------------------------------------------------------------------------- inline: hashing, keys
# Defined here, not in _flowtable.pyx, so that a kernel stage's key making and slot prefetch compile
# into its loop (a call to another module's cdef function is an indirect call: the loop's live values
# are spilled around it).  _flowtable.pyx uses the same definitions.

cdef extern from *:
    """
    #include <stdint.h>
    /* A prefetch the compiler must keep.  GCC treats __builtin_prefetch as free of side effects, so a
       helper made only of prefetches that is not inlined early is found "pure" (local-pure-const) and
       its call, whose result is unused, deleted: the FlowTable's slot prefetch silently vanished from
       a pass that called it through a small helper (BENCHMARKS.md "Filters", the ctspeed
       round).  An asm volatile is a side effect.  prefetcht1 (into L2): the table's random lines are
       many and each used once or twice soon after; into L2 more of them are in flight than the L1's
       miss buffers hold (A/B vs prefetcht0: 1.02-1.06x on the stateful pass).  The write hint
       (prefetchw) would need PRFCHW. */
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    #define ft_prefetch_w(p) __asm__ __volatile__("prefetcht1 %0" : : "m"(*(const char*)(p)))
    #elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
    #define ft_prefetch_w(p) __asm__ __volatile__("prfm pstl1keep, %0" : : "Q"(*(const char*)(p)))
    #elif defined(__GNUC__) || defined(__clang__)
    #define ft_prefetch_w(p) __builtin_prefetch((const void*)(p), 1, 3)
    #else
    #define ft_prefetch_w(p) ((void)(p))
    #endif
    static inline uint64_t ft_range(uint64_t h, uint64_t n) {
    #if defined(__SIZEOF_INT128__)
        return (uint64_t)(((unsigned __int128)h * n) >> 64);
    #else
        return ((h >> 32) * n) >> 32;   /* n < 2**32 here */
    #endif
    }
    """
    void ft_prefetch_w(const void* p) noexcept nogil
    uint64_t ft_range(uint64_t h, uint64_t n) noexcept nogil


# the one mix of every fastvpc hash table (_kernels/hashing.pxd); pickled slots depend on it
from fastvpc._kernels.hashing cimport fv_mix64 as _mix, FV_HMUL as HMUL


cdef inline uint64_t _tuple_hash(uint8_t proto, uint32_t lo, uint32_t hi, uint16_t plo, uint16_t phi) noexcept nogil:
    # the port/protocol word times an odd constant (a bijection that spreads it over all 64 bits),
    # folded into the address word, then one full-avalanche mix
    return _mix(((<uint64_t>lo << 32) | hi) ^ (((<uint64_t>plo << 24) | (<uint64_t>phi << 8) | proto) * HMUL))


cdef inline uint64_t ft_flow_hash(uint8_t proto, uint32_t src, uint32_t dst, uint16_t sport,
                                  uint16_t dport) noexcept nogil:
    """Direction-symmetric hash of a flow (no ENI): both directions of one flow hash alike.

    TCP/UDP hash the unordered pair {(src, sport), (dst, dport)}; ICMP the unordered address pair and
    the identifier (``sport``; ``dport`` ignored); other protocols the unordered address pair."""
    cdef uint32_t t
    if proto == 6 or proto == 17:
        if src > dst or (src == dst and sport > dport):
            t = src
            src = dst
            dst = t
            t = sport
            sport = dport
            dport = <uint16_t>t
        return _tuple_hash(proto, src, dst, sport, dport)
    if src > dst:
        t = src
        src = dst
        dst = t
    if proto == 1:
        return _tuple_hash(proto, src, dst, sport, 0)
    return _tuple_hash(proto, src, dst, 0, 0)


cdef inline uint64_t _slot_hash(uint64_t flow_hash, uint8_t zone) noexcept nogil:
    # The ENI is deliberately not hashed: a flow between two ENIs is tracked at both (the sender's
    # egress step and the receiver's ingress step of one frame), and with one home slot for both
    # entries the two steps probe the same one or two cache lines instead of two random ones
    # (BENCHMARKS.md "Filters", the shared-home round).  The key compare still includes the ENI; a
    # flow's 5-tuple is held by at most the two ENIs whose addresses it carries (a source address is
    # the sender's own: the ingress stage drops others), so a home gains at most one entry per VPC
    # that shares the addresses (overlapping CIDRs), which leaves the probe lengths as they were.
    return _mix(flow_hash + zone * HMUL)


cdef inline uint8_t _icmp_request_of(uint8_t t) noexcept nogil:
    """The query type of an ICMP request (itself) or reply (its request); 0xFF for non-query types."""
    if t == 8 or t == 13 or t == 15 or t == 17:
        return t
    if t == 0:
        return 8
    if t == 14 or t == 16 or t == 18:
        return t - 1
    return 0xFF


cdef inline void ft_make_pkt(FtPkt* p, uint32_t eni, uint8_t zone, uint8_t proto, uint32_t src, uint32_t dst,
                             uint16_t sport, uint16_t dport, uint8_t l4flags) noexcept nogil:
    cdef uint8_t q
    p.eni = eni
    p.zone = zone
    p.proto = proto
    p.l4flags = l4flags
    p.from_hi = 0
    if proto == 6 or proto == 17:
        p.kind = FT_K_TCP if proto == 6 else FT_K_UDP
        if src > dst or (src == dst and sport > dport):
            p.a = dst
            p.b = src
            p.pa = dport
            p.pb = sport
            p.from_hi = 1
        else:
            p.a = src
            p.b = dst
            p.pa = sport
            p.pb = dport
    elif proto == 1:
        q = _icmp_request_of(l4flags)
        p.pa = sport                 # identifier
        p.pb = q
        if q == 0xFF:
            p.kind = FT_K_ICMP_OTHER
            p.a = src
            p.b = dst
        elif q == l4flags:
            p.kind = FT_K_ICMP_REQUEST
            p.a = src                # requester
            p.b = dst
        else:
            p.kind = FT_K_ICMP_REPLY
            p.a = dst
            p.b = src
    else:
        p.kind = FT_K_OTHER
        p.pa = 0
        p.pb = 0
        if src > dst:
            p.a = dst
            p.b = src
            p.from_hi = 1
        else:
            p.a = src
            p.b = dst
    p.hash = _slot_hash(ft_flow_hash(proto, src, dst, sport, dport), zone)


cdef inline void ft_prefetch(const FtView* v, uint64_t hash) noexcept nogil:
    """Prefetch (for writing) the home slot of ``hash``: a 48-byte slot may straddle two lines."""
    cdef const char* p = <const char*>&v.slots[ft_range(hash, v.n_slots)]
    ft_prefetch_w(p)
    ft_prefetch_w(p + 47)


cdef inline void ft_prefetch3(const FtView* v, uint64_t hash) noexcept nogil:
    """Prefetch (for writing) the three slots from the home slot of ``hash`` (144 bytes, three lines):
    the probe for a tracked flow often ends a slot or two past its home, a first packet's at the end of
    the run.  Measured (BENCHMARKS.md "Filters", the ctspeed round): 2 -> 3 slots 1.10x, 3 -> 4 slots
    0.92x."""
    cdef const char* p = <const char*>&v.slots[ft_range(hash, v.n_slots)]
    ft_prefetch_w(p)
    ft_prefetch_w(p + 64)
    ft_prefetch_w(p + 143)


cdef inline void ft_pkt_at(FtPkt* k, const FtPkt* src, uint32_t eni) noexcept nogil:
    """``src``'s key at another ENI: the same flow's normalised key, role and slot hash (the slot hash
    does not depend on the ENI: _slot_hash), copied instead of made again by ft_make_pkt."""
    k[0] = src[0]
    k.eni = eni


# ----------------------------------------------------------------------------- inline: the table step
# ft_step and its helpers, here for the same reason as the key making: the pass's table steps compile
# into its loop instead of calling into this module (two calls a frame, the loop's live values spilled
# around each).  _flowtable.pyx uses the same definitions (ft_insert_or_update, ft_track_batch).

cdef extern from *:
    """
    /* Linux nf_conntrack_proto_tcp.c tcp_conntracks[dir][class][state], states numbered as
       FT_S_* (0 NONE, 1 SYN_SENT, 2 SYN_RECV, 3 ESTABLISHED, 4 FIN_WAIT, 5 CLOSE_WAIT, 6 LAST_ACK,
       7 TIME_WAIT, 8 CLOSE, 9 SYN_SENT2); 0xFE = Linux's sIV (invalid), 0xFF = sIG (ignore):
       both keep the state here.  Classes: 0 SYN, 1 SYN-ACK, 2 FIN, 3 ACK, 4 RST, 5 none. */
    #define FT_IV 0xFE
    #define FT_IG 0xFF
    static const unsigned char ft_tcp_next_tbl[2][6][10] = {
      { /* original direction */
        {1, 1, FT_IG, FT_IG, FT_IG, FT_IG, FT_IG, 1, 1, 9},                  /* SYN */
        {FT_IV, FT_IV, FT_IG, FT_IG, FT_IG, FT_IG, FT_IG, FT_IG, FT_IG, 2},  /* SYN-ACK */
        {FT_IV, FT_IV, 4, 4, 6, 6, 6, 7, 8, FT_IV},                          /* FIN */
        {3, FT_IV, 3, 3, 5, 5, 7, 7, 8, FT_IV},                              /* ACK */
        {FT_IV, 8, 8, 8, 8, 8, 8, 8, 8, 8},                                  /* RST */
        {FT_IV, FT_IV, FT_IV, FT_IV, FT_IV, FT_IV, FT_IV, FT_IV, FT_IV, FT_IV} /* none */
      },
      { /* reply direction */
        {FT_IV, 9, FT_IV, FT_IV, FT_IV, FT_IV, FT_IV, FT_IV, FT_IV, 9},
        {FT_IV, 2, FT_IG, FT_IG, FT_IG, FT_IG, FT_IG, FT_IG, FT_IG, 2},
        {FT_IV, FT_IV, 4, 4, 6, 6, 6, 7, 8, FT_IV},
        {FT_IV, FT_IG, 2, 3, 5, 5, 7, 7, 8, FT_IG},
        {FT_IV, 8, 8, 8, 8, 8, 8, 8, 8, 8},
        {FT_IV, FT_IV, FT_IV, FT_IV, FT_IV, FT_IV, FT_IV, FT_IV, FT_IV, FT_IV}
      }
    };
    static inline unsigned ft_tcp_next(unsigned dir, unsigned cls, unsigned st) {
        return ft_tcp_next_tbl[dir][cls][st];
    }
    /* which FtTimeouts field (uint32 index) gives each state's idle timeout */
    static const unsigned char ft_tmo_field_tbl[17] = {
        12, 0, 1, 2, 3, 4, 5, 6, 7, 8,   /* NONE (unused), TCP SYN_SENT .. SYN_SENT2 */
        9, 9, 10,                        /* UDP UNREPLIED, REPLIED -> udp; STREAM -> udp_stream */
        11, 11,                          /* ICMP */
        12, 12                           /* other protocols */
    };
    static inline unsigned ft_tmo_field(unsigned st) { return ft_tmo_field_tbl[st < 17 ? st : 0]; }
    #include <string.h>
    static inline uint64_t ft_ld64(const void* p) { uint64_t v; memcpy(&v, p, 8); return v; }
    static inline uint16_t ft_ld16(const void* p) { uint16_t v; memcpy(&v, p, 2); return v; }
    #define FT_NS 1000000000ULL
    #define FT_BYTES_MASK ((1ULL << 44) - 1ULL)
    """
    unsigned ft_tcp_next(unsigned dir, unsigned cls, unsigned st) noexcept nogil
    unsigned ft_tmo_field(unsigned st) noexcept nogil
    enum: FT_IV
    enum: FT_IG
    const uint64_t NS "FT_NS"
    const uint64_t BYTES_MASK "FT_BYTES_MASK"   # bytes field of bytes_tmo (FT_BYTES_BITS = 44 bits)
    uint64_t ft_ld64(const void* p) noexcept nogil
    uint16_t ft_ld16(const void* p) noexcept nogil


cdef inline bint _key_eq(const FtEntry* e, const FtPkt* p) noexcept nogil:
    # the key fields (eni, a, b, pa, pb, proto, zone) are the same 18 bytes in the same order in both
    # structs (FtEntry from byte 0, FtPkt from byte 8: _flowtable.pyx checks the offsets at import),
    # compared as two 8-byte words and one 2-byte word instead of seven fields
    return (ft_ld64(e) == ft_ld64(&p.eni) and ft_ld64(<const char*>e + 8) == ft_ld64(&p.b)
            and ft_ld16(<const char*>e + 16) == ft_ld16(&p.proto))


cdef inline int64_t _expiry(const FtEntry* e) noexcept nogil:
    return e.last_ns + <int64_t>((e.bytes_tmo >> FT_BYTES_BITS) * NS)


cdef inline uint64_t _next(uint64_t i, uint64_t n) noexcept nogil:
    i += 1
    return 0 if i == n else i


cdef inline void _probe(const FtView* v, const FtPkt* p, int64_t now, bint want_reuse, int64_t* found,
                        int64_t* reuse, int64_t* empty) noexcept nogil:
    """found: the live entry of p's key (or -1); reuse: p's own expired entry, else (when want_reuse:
    the packet may insert) the first expired entry on the probe path (or -1); empty: the empty slot
    that ended the probe."""
    cdef const FtEntry* s = v.slots
    cdef uint64_t n = v.n_slots
    cdef uint64_t i = ft_range(p.hash, n)
    cdef const FtEntry* e
    found[0] = -1
    reuse[0] = -1
    while True:
        e = &s[i]
        if e.state == 0:
            empty[0] = <int64_t>i
            return
        if _key_eq(e, p):
            if now <= _expiry(e):
                found[0] = <int64_t>i
            else:
                reuse[0] = <int64_t>i        # the key occurs once: its expired slot is the one to reuse
            empty[0] = -1
            return
        if want_reuse and reuse[0] < 0 and now > _expiry(e):
            reuse[0] = <int64_t>i
        i = _next(i, n)


cdef inline uint32_t _timeout_of(const FtTimeouts* t, uint8_t state) noexcept nogil:
    cdef uint32_t x = (<const uint32_t*>t)[ft_tmo_field(state)]
    return x if x <= FT_MAX_TIMEOUT else FT_MAX_TIMEOUT


cdef inline void _touch(FtView* v, FtEntry* e, uint8_t state, uint32_t length, int64_t now,
                        const FtTimeouts* t) noexcept nogil:
    cdef uint64_t tmo = _timeout_of(t, state)
    cdef uint64_t b = (e.bytes_tmo & BYTES_MASK) + length
    cdef int64_t ex
    if b > BYTES_MASK:
        b = BYTES_MASK
    if e.packets != <uint32_t>0xFFFFFFFFu:
        e.packets += 1
    e.state = state
    e.last_ns = now
    e.bytes_tmo = b | (tmo << FT_BYTES_BITS)
    ex = now + <int64_t>(tmo * NS)
    if ex < v.hdr.min_expiry:
        v.hdr.min_expiry = ex


cdef inline uint8_t _tcp_class(uint8_t f) noexcept nogil:
    if f & 0x04:
        return 4                                  # RST
    if f & 0x02:
        return 1 if f & 0x10 else 0               # SYN-ACK / SYN
    if f & 0x01:
        return 2                                  # FIN
    if f & 0x10:
        return 3                                  # ACK
    return 5


cdef inline uint8_t _open_state(const FtPkt* p) noexcept nogil:
    """The state a first packet opens, or 0 when it opens none."""
    cdef unsigned ns
    if p.kind == FT_K_TCP:
        ns = ft_tcp_next(0, _tcp_class(p.l4flags), 0)
        return <uint8_t>ns if ns == FT_S_TCP_SYN_SENT or ns == FT_S_TCP_ESTABLISHED else 0
    if p.kind == FT_K_UDP:
        return FT_S_UDP_UNREPLIED
    if p.kind == FT_K_ICMP_REQUEST:
        return FT_S_ICMP_UNREPLIED
    if p.kind == FT_K_OTHER:
        return FT_S_OTHER_UNREPLIED
    return 0


cdef inline uint8_t ft_step(FtView* v, const FtPkt* p, uint32_t length, int64_t now, uint8_t admitted,
                          const FtTimeouts* t, uint8_t* direction, uint8_t* state) noexcept nogil:
    """The table step of one packet: the packet of a live tracked flow (the common case: no rule, no
    insert) is stepped here, inline in the caller's loop; everything else -- no live entry, an expired
    one, a TCP re-open, ICMP errors -- by the full step out of line (ft_insert_or_update), which probes
    again.  Exact: this path changes nothing but the clock (idempotent) before it hands over."""
    cdef const FtEntry* s = v.slots
    cdef uint64_t n = v.n_slots
    cdef uint64_t i = ft_range(p.hash, n)
    cdef FtEntry* e
    cdef uint8_t st, dirn
    cdef uint8_t ns
    cdef unsigned nxt
    if now > v.hdr.clock:
        v.hdr.clock = now
    if p.kind != FT_K_ICMP_OTHER:
        while s[i].state != 0:
            if _key_eq(&s[i], p):
                e = &v.slots[i]
                if now > _expiry(e):
                    break
                st = e.state
                if p.kind == FT_K_UDP:
                    # the UDP transition; its twin is in _ft_step_full (one inline helper for both made
                    # GCC lay this pass out worse: 0.82-0.93x, BENCHMARKS.md "Filters", two threads round)
                    dirn = FT_REPLY if p.from_hi != (e.flags & FT_F_ORIG_HI) else FT_ORIGINAL
                    if dirn == FT_REPLY:
                        if st == FT_S_UDP_UNREPLIED:
                            ns = FT_S_UDP_REPLIED
                        elif st == FT_S_UDP_REPLIED and not (e.flags & FT_F_LAST_REPLY):
                            ns = FT_S_UDP_STREAM
                        else:
                            ns = st
                        e.flags |= FT_F_LAST_REPLY
                    else:
                        ns = st
                        e.flags &= ~FT_F_LAST_REPLY
                elif p.kind == FT_K_TCP:
                    dirn = FT_REPLY if p.from_hi != (e.flags & FT_F_ORIG_HI) else FT_ORIGINAL
                    nxt = ft_tcp_next(dirn, _tcp_class(p.l4flags), st)
                    if nxt == FT_S_TCP_SYN_SENT and st >= FT_S_TCP_TIME_WAIT and st <= FT_S_TCP_CLOSE:
                        break           # a re-open: the full step ends the old flow
                    ns = st if (nxt == FT_IV or nxt == FT_IG) else <uint8_t>nxt
                elif p.kind == FT_K_ICMP_REQUEST:
                    dirn = FT_ORIGINAL
                    ns = st
                elif p.kind == FT_K_ICMP_REPLY:
                    dirn = FT_REPLY
                    ns = FT_S_ICMP_REPLIED
                else:
                    dirn = FT_REPLY if p.from_hi != (e.flags & FT_F_ORIG_HI) else FT_ORIGINAL
                    ns = FT_S_OTHER_REPLIED if dirn == FT_REPLY else st
                _touch(v, e, ns, length, now, t)
                direction[0] = dirn
                state[0] = ns
                return FT_HIT
            i = _next(i, n)
    if admitted == FT_ADMIT_LATER:
        # no live entry (empty slot, expired entry, TCP re-open, ICMP error): the full step would only
        # probe again to say so.  A re-open's old entry is left for the caller's second step (the full
        # one, ft_insert_or_update, with the rules' answer), which deletes it before it judges the SYN
        direction[0] = FT_ORIGINAL
        state[0] = FT_S_NONE
        return FT_LATER
    return ft_insert_or_update(v, p, length, now, admitted, t, direction, state)


cdef inline uint8_t _ft_step_full(FtView* v, const FtPkt* p, uint32_t length, int64_t now, uint8_t admitted,
                                  const FtTimeouts* t, uint8_t* direction, uint8_t* state) noexcept nogil:
    """The full table step of one packet (ft_insert_or_update, out of line, is this)."""
    cdef int64_t found, reuse, empty, slot
    cdef FtEntry* e
    cdef uint8_t st, dirn, op
    cdef uint8_t ns = 0
    cdef unsigned nxt
    cdef bint may_insert = admitted == FT_ADMIT
    direction[0] = FT_ORIGINAL
    state[0] = FT_S_NONE
    if now > v.hdr.clock:
        v.hdr.clock = now
    if p.kind == FT_K_ICMP_OTHER:
        if admitted == FT_ADMIT_LATER:
            return FT_LATER
        return FT_MISS if admitted == FT_DENY else FT_PASS
    _probe(v, p, now, may_insert, &found, &reuse, &empty)
    if found >= 0:
        e = &v.slots[found]
        st = e.state
        if p.kind == FT_K_ICMP_REQUEST:
            dirn = FT_ORIGINAL
            ns = st
        elif p.kind == FT_K_ICMP_REPLY:
            dirn = FT_REPLY
            ns = FT_S_ICMP_REPLIED
        else:
            dirn = FT_REPLY if p.from_hi != (e.flags & FT_F_ORIG_HI) else FT_ORIGINAL
            if p.kind == FT_K_TCP:
                nxt = ft_tcp_next(dirn, _tcp_class(p.l4flags), st)
                if nxt == FT_S_TCP_SYN_SENT and st >= FT_S_TCP_TIME_WAIT and st <= FT_S_TCP_CLOSE:
                    # re-opened: end the old flow, judge this SYN as a first packet
                    ft_delete(v, <uint64_t>found)
                    _probe(v, p, now, may_insert, &found, &reuse, &empty)
                    found = -1
                else:
                    ns = st if (nxt == FT_IV or nxt == FT_IG) else <uint8_t>nxt
            elif p.kind == FT_K_UDP:
                # the UDP transition, twin of ft_step's fast path (kept apart on purpose: see there)
                if dirn == FT_REPLY:
                    if st == FT_S_UDP_UNREPLIED:
                        ns = FT_S_UDP_REPLIED
                    elif st == FT_S_UDP_REPLIED and not (e.flags & FT_F_LAST_REPLY):
                        ns = FT_S_UDP_STREAM
                    else:
                        ns = st
                    e.flags |= FT_F_LAST_REPLY
                else:
                    ns = st
                    e.flags &= ~FT_F_LAST_REPLY
            else:
                ns = FT_S_OTHER_REPLIED if dirn == FT_REPLY else st
        if found >= 0:
            _touch(v, e, ns, length, now, t)
            direction[0] = dirn
            state[0] = ns
            return FT_HIT
    # no live entry of this flow
    if admitted == FT_ADMIT_LATER:
        return FT_LATER            # the caller evaluates the rules and calls again
    if admitted == FT_DENY:
        return FT_MISS
    op = _open_state(p)
    if admitted != FT_ADMIT or op == 0:
        return FT_PASS
    if reuse >= 0:
        slot = reuse
        if not _key_eq(&v.slots[slot], p):
            v.hdr.n_reclaimed += 1
    elif v.hdr.count < v.capacity:
        slot = empty
        v.hdr.count += 1
    elif now > v.hdr.min_expiry and ft_expire(v, now) > 0:
        _probe(v, p, now, may_insert, &found, &reuse, &empty)
        slot = empty
        v.hdr.count += 1
    else:
        return FT_FULL
    e = &v.slots[slot]
    e.eni = p.eni
    e.a = p.a
    e.b = p.b
    e.pa = p.pa
    e.pb = p.pb
    e.proto = p.proto
    e.zone = p.zone
    e.flags = FT_F_ORIG_HI if p.from_hi else 0
    e.packets = 0
    e.first_ns = now
    e.bytes_tmo = 0
    _touch(v, e, op, length, now, t)
    state[0] = op
    return FT_NEW
