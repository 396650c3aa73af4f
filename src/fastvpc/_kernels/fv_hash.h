/* The one mix of every fastvpc hash table: the FlowTable's slots (dataplane/_flowtable.pxd), the NAT
   bindings (dataplane/_nattable.pxd) and the flow-log records (dataplane/_flowlogs.pyx).  Slots of a
   pickled FlowTable are stored where this hash put them, so it must never change.  In _kernels/
   because that folder is on every compiled module's include path (setup.py). */
#ifndef FV_HASH_H
#define FV_HASH_H
#include <stdint.h>

/* 2**64 / golden ratio, odd: multiplying by it is a bijection that spreads a small word over 64 bits */
#define FV_HMUL 0x9E3779B97F4A7C15ULL

/* murmur3's 64-bit finaliser (fmix64): every input bit affects every output bit */
static inline uint64_t fv_mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDULL;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ULL;
    x ^= x >> 33;
    return x;
}
#endif
