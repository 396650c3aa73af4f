# Big-endian field access, Internet checksums and short-frame copies over frame bytes (the caller has
# checked that every byte touched lies inside the frame).
#
# Loads/stores are one unaligned native load/store plus a byte swap (a memcpy of exactly the field's
# bytes: never reads or writes outside it); the byte loops they replaced cost ~45 instructions a frame.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from libc.string cimport memcpy

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

    /* fv_copy: memmove of a short frame without a call.  Up to 64 bytes every byte is loaded into
       registers (two overlapping head/tail pieces of 8, 16 or 32 bytes) before any is stored, so the
       ranges may overlap either way; up to 512 bytes, when dst <= src or the ranges are apart, 32-byte
       pieces front to back (the last 32 source bytes loaded first), each read before its bytes are
       written: a frame moving down over its own old bytes stays whole; otherwise memmove.  The
       pieces are register-sized locals (SSE2 on x86-64, pairs of 64-bit words elsewhere), never a
       buffer on the stack: a store forwarded through memory stalled the copy loops it replaced. */
    #if defined(__SSE2__)
    #include <emmintrin.h>
    typedef __m128i fv_v16;
    static inline fv_v16 fv_ld16(const uint8_t* p) { return _mm_loadu_si128((const __m128i*)p); }
    static inline void fv_st16(uint8_t* p, fv_v16 v) { _mm_storeu_si128((__m128i*)p, v); }
    #else
    typedef struct { uint64_t a, b; } fv_v16;
    static inline fv_v16 fv_ld16(const uint8_t* p) { fv_v16 v; memcpy(&v.a, p, 8); memcpy(&v.b, p + 8, 8); return v; }
    static inline void fv_st16(uint8_t* p, fv_v16 v) { memcpy(p, &v.a, 8); memcpy(p + 8, &v.b, 8); }
    #endif
    static inline void fv_copy(uint8_t* dst, const uint8_t* src, int64_t n) {
        if (n <= 16) {
            if (n >= 8) {
                uint64_t a, b; memcpy(&a, src, 8); memcpy(&b, src + n - 8, 8);
                memcpy(dst, &a, 8); memcpy(dst + n - 8, &b, 8);
            } else if (n >= 4) {
                uint32_t a, b; memcpy(&a, src, 4); memcpy(&b, src + n - 4, 4);
                memcpy(dst, &a, 4); memcpy(dst + n - 4, &b, 4);
            } else if (n >= 2) {
                uint16_t a, b; memcpy(&a, src, 2); memcpy(&b, src + n - 2, 2);
                memcpy(dst, &a, 2); memcpy(dst + n - 2, &b, 2);
            } else if (n == 1) {
                dst[0] = src[0];
            }
            return;
        }
        if (n <= 32) {
            fv_v16 a = fv_ld16(src), b = fv_ld16(src + n - 16);
            fv_st16(dst, a); fv_st16(dst + n - 16, b);
            return;
        }
        if (n <= 64) {
            fv_v16 a = fv_ld16(src), b = fv_ld16(src + 16), c = fv_ld16(src + n - 32), d = fv_ld16(src + n - 16);
            fv_st16(dst, a); fv_st16(dst + 16, b); fv_st16(dst + n - 32, c); fv_st16(dst + n - 16, d);
            return;
        }
        if (n > 512 || ((uintptr_t)dst > (uintptr_t)src && (uintptr_t)dst - (uintptr_t)src < (uint64_t)n)) {
            memmove(dst, src, (size_t)n);
            return;
        }
        {
            fv_v16 c = fv_ld16(src + n - 32), d = fv_ld16(src + n - 16);
            int64_t j;
            for (j = 0; j + 32 < n; j += 32) {
                fv_v16 a = fv_ld16(src + j), b = fv_ld16(src + j + 16);
                fv_st16(dst + j, a); fv_st16(dst + j + 16, b);
            }
            fv_st16(dst + n - 32, c); fv_st16(dst + n - 16, d);
        }
    }
    """
    uint16_t fv_ld16be(const uint8_t* p) noexcept nogil
    uint32_t fv_ld32be(const uint8_t* p) noexcept nogil
    void fv_st16be(uint8_t* p, uint16_t v) noexcept nogil
    void fv_st32be(uint8_t* p, uint32_t v) noexcept nogil
    uint32_t fv_native16_to_be(uint32_t v) noexcept nogil
    # dst[0:n] = src[0:n] (n <= 0: nothing); the ranges may overlap (memmove semantics), see above
    void fv_copy(uint8_t* dst, const uint8_t* src, int64_t n) noexcept nogil

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
    # The end-around-carry fold of a sum s > 0 lies in [1, 0xFFFF] and is congruent to s modulo
    # 0xFFFF (2^16 = 1 mod 0xFFFF), so it is 0xFFFF exactly when 0xFFFF divides s; s = 0 folds to 0.
    # The divisibility test by a constant is a multiply and a compare (~5 instructions, where the
    # four folds were ~13: BENCHMARKS.md issue 9, 2026-12-02).
    return s != 0 and s % 0xFFFF == 0
