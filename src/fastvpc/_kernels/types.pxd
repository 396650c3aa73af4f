# Shared C types, constants and inline byte readers of the data-plane kernels
# (classify.pyx, forward.pyx).  The Action / DropReason numbers mirror
# fastvpc/verdicts.py; tests/test_kernel_types.py checks that they match.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t
from libc.string cimport memcpy

# --- fastvpc.Action -----------------------------------------------------------
cdef enum:
    ACT_DROP = 0
    ACT_DELIVER = 1
    ACT_FORWARD = 2
    ACT_REPLY = 3

# --- fastvpc.DropReason -------------------------------------------------------
cdef enum:
    R_NONE = 0
    R_MALFORMED = 1
    R_NON_IPV4 = 2
    R_ARP_NO_ENTRY = 3
    R_ARP_IGNORED = 4
    R_L2_BROADCAST = 5
    R_BROADCAST = 6
    R_MULTICAST = 7
    R_SRC_DST_CHECK = 8
    R_ROUTER_UNSUPPORTED = 9
    R_ROUTER_NOT_OWN_SUBNET = 10
    R_NO_SUCH_HOST = 11
    R_BLACKHOLE = 12
    R_NO_ROUTE = 13
    R_UNKNOWN_MAC = 14
    R_UNKNOWN_PORT = 15
    R_LINK_LOCAL_SERVICE = 16

# --- Ethernet / IPv4 ----------------------------------------------------------
cdef enum:
    ETH_HLEN = 14
    ETHERTYPE_IPV4 = 0x0800
    ETHERTYPE_ARP = 0x0806
    ARP_LEN = 42            # Ethernet + ARP for IPv4 over Ethernet
    IPV4_MIN_FRAME = 34     # Ethernet + 20-byte IPv4 header

# --- classify valid-flag bits (fastvpc.classify.Classified.flags) -------------
cdef enum:
    CF_ETH = 0x01           # frame holds a complete Ethernet header (>= 14 bytes)
    CF_ARP = 0x02           # ethertype 0x0806 and a complete 28-byte IPv4-over-Ethernet ARP body
    CF_IPV4 = 0x04          # ethertype 0x0800, version 4, IHL >= 5, header within the frame
    CF_IP_LEN_OK = 0x08     # IHL*4 <= total length and 14 + total length <= frame length
    CF_CSUM_OK = 0x10       # IPv4 header checksum verifies
    CF_FRAGMENT = 0x20      # MF set or fragment offset != 0
    CF_L4 = 0x40            # first fragment whose TCP (20)/UDP (8)/ICMP (8) header lies within total length
    CF_GROUP_MAC = 0x80     # destination MAC has the group bit (broadcast/multicast)

# --- route target kinds (compiler.py ROUTE_* mirror these) --------------------
cdef enum:
    RK_LOCAL = 0
    RK_ENI = 1
    RK_PEERING = 2
    RK_FORWARD = 3
    RK_BLACKHOLE = 4

# --- exact-match hash table (compiler.py builds it) ---------------------------
# Keys (uint64): kind in bits 56..63.
#   HK_IP:   (HK_IP << 56)   | (vpc index << 32) | ipv4
#   HK_MAC:  (HK_MAC << 56)  | mac48
#   HK_PORT: (HK_PORT << 56) | port            (only when ports are too sparse for a dense array)
# Values (uint32): tag in bits 30..31, index below.
#   HV_ENI | eni index, HV_ROUTER | subnet index, HV_BCAST | subnet index, HV_GWMAC | subnet index
# Slots: uint64 pairs (key, value) in one array of 2*cap; empty key = HT_EMPTY; linear probing.
cdef enum:
    HK_IP = 0
    HK_MAC = 1
    HK_PORT = 2

cdef enum:
    HV_TAG_SHIFT = 30

cdef extern from *:
    """
    #define FV_HT_EMPTY 0xFFFFFFFFFFFFFFFFULL
    #define FV_HV_NONE 0xFFFFFFFFu
    #define FV_HV_INDEX_MASK 0x3FFFFFFFu
    #define FV_HV_ENI 0x00000000u
    #define FV_HV_ROUTER 0x40000000u
    #define FV_HV_BCAST 0x80000000u
    #define FV_HV_GWMAC 0xC0000000u
    #define FV_HT_MULT 0x9E3779B97F4A7C15ULL
    """
    const uint64_t FV_HT_EMPTY
    const uint32_t FV_HV_NONE
    const uint32_t FV_HV_INDEX_MASK
    const uint32_t FV_HV_ENI
    const uint32_t FV_HV_ROUTER
    const uint32_t FV_HV_BCAST
    const uint32_t FV_HV_GWMAC
    const uint64_t FV_HT_MULT


# --- byte readers (the caller has checked the frame's length) -----------------
# Big-endian loads/stores as unaligned native loads/stores plus a byte swap (memcpy of exactly the
# field's bytes: never reads or writes outside it).
cdef extern from *:
    """
    #include <string.h>
    #if defined(__GNUC__) || defined(__clang__)
    #define fv_bswap16(x) __builtin_bswap16(x)
    #define fv_bswap32(x) __builtin_bswap32(x)
    #else
    #define fv_bswap16(x) ((uint16_t)((((x) & 0xFFu) << 8) | (((x) >> 8) & 0xFFu)))
    #define fv_bswap32(x) ((((x) & 0xFFu) << 24) | (((x) & 0xFF00u) << 8) | (((x) >> 8) & 0xFF00u) | ((x) >> 24))
    #endif
    static inline int fv_little_endian(void) { const uint16_t one = 1; unsigned char b; memcpy(&b, &one, 1); return b; }
    static inline uint16_t fv_ld16be(const uint8_t* p) {
        uint16_t v; memcpy(&v, p, 2); return fv_little_endian() ? fv_bswap16(v) : v; }
    static inline uint32_t fv_ld32be(const uint8_t* p) {
        uint32_t v; memcpy(&v, p, 4); return fv_little_endian() ? fv_bswap32(v) : v; }
    static inline void fv_st16be(uint8_t* p, uint16_t v) {
        if (fv_little_endian()) v = fv_bswap16(v); memcpy(p, &v, 2); }
    static inline void fv_st32be(uint8_t* p, uint32_t v) {
        if (fv_little_endian()) v = fv_bswap32(v); memcpy(p, &v, 4); }
    static inline uint32_t fv_native16_to_be(uint32_t v) {
        return fv_little_endian() ? (uint32_t)fv_bswap16((uint16_t)v) : v; }
    """
    uint16_t fv_ld16be(const uint8_t* p) noexcept nogil
    uint32_t fv_ld32be(const uint8_t* p) noexcept nogil
    void fv_st16be(uint8_t* p, uint16_t v) noexcept nogil
    void fv_st32be(uint8_t* p, uint32_t v) noexcept nogil
    uint32_t fv_native16_to_be(uint32_t v) noexcept nogil

cdef inline uint16_t rd16(const uint8_t* p) noexcept nogil:
    return fv_ld16be(p)

cdef inline uint32_t rd32(const uint8_t* p) noexcept nogil:
    return fv_ld32be(p)

cdef inline uint64_t rd48(const uint8_t* p) noexcept nogil:
    return (<uint64_t>fv_ld32be(p) << 16) | fv_ld16be(p + 4)

cdef inline void wr16(uint8_t* p, uint16_t v) noexcept nogil:
    fv_st16be(p, v)

cdef inline void wr32(uint8_t* p, uint32_t v) noexcept nogil:
    fv_st32be(p, v)

cdef inline void wr48(uint8_t* p, uint64_t v) noexcept nogil:
    fv_st32be(p, <uint32_t>(v >> 16))
    fv_st16be(p + 4, <uint16_t>v)

cdef inline uint32_t csum_add(const uint8_t* p, int64_t n) noexcept nogil:
    """One's-complement sum of the big-endian 16-bit words of p[0:n] (odd n: last byte padded with
    zero), folded to 16 bits (0 only when every word is 0).

    Whole 32-bit words are summed in native order and folded (the folded sum of byte-swapped words
    is the byte-swapped folded sum, and a swap keeps 0 and 0xFFFF), the tail word by word.
    """
    cdef uint64_t s = 0
    cdef uint32_t w
    cdef int64_t i = 0
    while i + 4 <= n:
        memcpy(&w, p + i, 4)
        s += w
        i += 4
    s = (s & 0xFFFFFFFFu) + (s >> 32)
    s = (s & 0xFFFFFFFFu) + (s >> 32)
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    s = fv_native16_to_be(<uint32_t>s)
    while i + 1 < n:
        s += (<uint32_t>p[i] << 8) | p[i + 1]
        i += 2
    if i < n:
        s += <uint32_t>p[i] << 8
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return <uint32_t>s


cdef inline uint16_t csum_fold(uint64_t s) noexcept nogil:
    """Fold a 16-bit-word sum to 16 bits (not complemented)."""
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return <uint16_t>s

cdef inline bint ipv4_csum_ok(const uint8_t* p, int64_t hl) noexcept nogil:
    """IPv4 header checksum check over hl bytes (a multiple of 4, all inside the frame).

    Sums native-order 32-bit words and folds: the one's-complement sum is byte-order
    independent up to a byte swap, and 0xFFFF is its own swap.
    """
    cdef uint64_t s = 0
    cdef uint32_t w, w1, w2, w3, w4
    cdef int64_t k = 0
    if hl == 20:                  # no options: the common case, unrolled
        memcpy(&w, p, 4)
        memcpy(&w1, p + 4, 4)
        memcpy(&w2, p + 8, 4)
        memcpy(&w3, p + 12, 4)
        memcpy(&w4, p + 16, 4)
        s = <uint64_t>w + w1 + w2 + w3 + w4
        k = hl
    while k < hl:
        memcpy(&w, p + k, 4)
        s += w
        k += 4
    s = (s & 0xFFFFFFFFu) + (s >> 32)
    s = (s & 0xFFFFFFFFu) + (s >> 32)
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


# Every frame's span must lie inside the buffer before any kernel reads it.  FrameBatch checks
# this when it is built, but it wraps the caller's arrays without copying, so the offsets can
# change afterwards: the kernels check again (one sequential pass, well under 1 ns a frame).
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
