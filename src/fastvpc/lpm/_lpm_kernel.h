/* fastvpc.lpm lookup inner loops (C, included by _lookup.pyx only).
 *
 * Why C and not Cython for the innermost loops: the poptrie step needs the POPCNT
 * instruction, which baseline x86-64 lacks.  Each batch loop is compiled twice, once with
 * __attribute__((target("popcnt"))) and once for the baseline, and a function pointer chosen
 * once at import (__builtin_cpu_supports) picks the variant: runtime, not build-time, detection.
 * The Cython module owns the threading (prange over chunks), validation and the C-level API.
 *
 * Batches are processed in groups of LPM_GROUP independent lookups, stage by stage, with a
 * software prefetch of the next stage's line so several cache misses are in flight at once.
 */
#ifndef FASTVPC_LPM_KERNEL_H
#define FASTVPC_LPM_KERNEL_H
#include <stddef.h>
#include <stdint.h>
#include "_lpm_layout.h"

#if defined(__GNUC__)
#define LPM_INLINE static inline __attribute__((always_inline))
#define LPM_PREFETCH(p) __builtin_prefetch((const void*)(p), 0, 3)
#else
#define LPM_INLINE static inline
#define LPM_PREFETCH(p) ((void)0)
#endif

#define LPM_GROUP 16

typedef struct lpm_view_c {
    const uint32_t* header; /* n_tables * LPM_HDR_WORDS */
    const uint8_t* data;    /* the pool, 64-byte aligned */
    uint32_t n_tables;
} lpm_view_c;

#define LPM_LINEPTR(data, line) ((const int32_t*)((data) + ((size_t)(line) << 6)))

#if defined(__GNUC__) && !defined(LPM_SCALAR_COUNT)
/* Line search with GCC/Clang vector extensions (SSE2 on baseline x86-64, NEON on aarch64; no
 * -march, no intrinsics): each 4-key compare gives -1/0 lanes, the lanes are summed vertically
 * and then across, and the count is minus that sum.  Lines are 64-byte aligned (the pool is, and
 * _lookup.pyx checks it), so the 16-byte loads are aligned and fold into the compares on x86. */
typedef int32_t lpm_v4 __attribute__((vector_size(16), may_alias));

LPM_INLINE uint32_t lpm_vsum_neg(lpm_v4 s) {
#if defined(__clang__)
    s += __builtin_shufflevector(s, s, 2, 3, 0, 1);
    s += __builtin_shufflevector(s, s, 1, 0, 3, 2);
#else
    s += __builtin_shuffle(s, (lpm_v4){2, 3, 0, 1});
    s += __builtin_shuffle(s, (lpm_v4){1, 0, 3, 2});
#endif
    return (uint32_t)(-s[0]);
}

LPM_INLINE uint32_t lpm_count8(const int32_t* k, int32_t a) {
    const lpm_v4* q = (const lpm_v4*)k;
    const lpm_v4 va = {a, a, a, a};
    return lpm_vsum_neg((lpm_v4)(q[0] < va) + (lpm_v4)(q[1] < va));
}

LPM_INLINE uint32_t lpm_count16(const int32_t* k, int32_t a) {
    const lpm_v4* q = (const lpm_v4*)k;
    const lpm_v4 va = {a, a, a, a};
    return lpm_vsum_neg(((lpm_v4)(q[0] < va) + (lpm_v4)(q[1] < va)) + ((lpm_v4)(q[2] < va) + (lpm_v4)(q[3] < va)));
}
#else
LPM_INLINE uint32_t lpm_count8(const int32_t* k, int32_t a) {
    uint32_t c = 0;
    for (int i = 0; i < 8; ++i) c += (uint32_t)(k[i] < a);
    return c;
}

LPM_INLINE uint32_t lpm_count16(const int32_t* k, int32_t a) {
    uint32_t c = 0;
    for (int i = 0; i < 16; ++i) c += (uint32_t)(k[i] < a);
    return c;
}
#endif

/* one B-tree lookup; h is the table's header row */
LPM_INLINE uint32_t lpm_bt_one(const uint8_t* data, const uint32_t* h, uint32_t addr) {
    const int d = (int)(h[0] - LPM_KIND_BTREE);
    const int32_t a = (int32_t)(addr ^ 0x80000000u);
    uint32_t node = 0;
    for (int l = 0; l < d; ++l) node = node * 17u + lpm_count16(LPM_LINEPTR(data, h[1 + l] + node), a);
    const int32_t* leaf = LPM_LINEPTR(data, h[1 + d] + node);
    return (uint32_t)leaf[8 + lpm_count8(leaf, a)];
}

typedef struct lpm_pt {
    const uint32_t* dp;
    const lpm_pt_node* nodes;
    const uint32_t* leaves;
    const uint32_t* vals;
} lpm_pt;

LPM_INLINE lpm_pt lpm_pt_of(const uint8_t* data, const uint32_t* h) {
    lpm_pt p;
    p.dp = (const uint32_t*)LPM_LINEPTR(data, h[1]);
    p.nodes = (const lpm_pt_node*)LPM_LINEPTR(data, h[2]);
    p.leaves = (const uint32_t*)LPM_LINEPTR(data, h[3]);
    p.vals = (const uint32_t*)LPM_LINEPTR(data, h[4]);
    return p;
}

/* returns a leaf id; e is dp[addr >> 14] */
LPM_INLINE uint32_t lpm_pt_walk(const lpm_pt* p, uint32_t e, uint32_t addr) {
    if (e & LPM_LEAF_FLAG) return e & ~LPM_LEAF_FLAG;
    uint64_t x = (uint64_t)addr << 4;
    int sh = 12;
    uint32_t idx = e;
    for (;;) {
        const lpm_pt_node* n = &p->nodes[idx];
        uint32_t v = (uint32_t)(x >> sh) & 63u;
        uint64_t m = (((uint64_t)2) << v) - 1u; /* v == 63 -> all ones */
        uint64_t vec = n->vector;
        if (vec >> v & 1u) {
            idx = n->base1 + (uint32_t)__builtin_popcountll(vec & m) - 1u;
            sh -= 6;
        } else {
            return p->leaves[n->base0 + (uint32_t)__builtin_popcountll(n->leafvec & m) - 1u];
        }
    }
}

LPM_INLINE uint32_t lpm_one(const lpm_view_c* v, uint32_t tid, uint32_t addr) {
    if (tid >= v->n_tables) return LPM_MISS;
    const uint32_t* h = v->header + (size_t)tid * LPM_HDR_WORDS;
    uint32_t kind = h[0];
    if (kind == LPM_KIND_EMPTY) return LPM_MISS;
    if (kind == LPM_KIND_POPTRIE) {
        lpm_pt p = lpm_pt_of(v->data, h);
        return p.vals[lpm_pt_walk(&p, p.dp[addr >> (32 - LPM_DP_BITS)], addr)];
    }
    return lpm_bt_one(v->data, h, addr);
}

/* ---- batch loops (bodies shared by the popcnt and baseline variants) ---- */

/* all addresses in one table */
#define LPM_BODY_SINGLE                                                                   \
    if (tid >= v->n_tables || v->header[(size_t)tid * LPM_HDR_WORDS] == LPM_KIND_EMPTY) { \
        for (ptrdiff_t i = 0; i < n; ++i) out[i] = LPM_MISS;                             \
        return;                                                                           \
    }                                                                                     \
    const uint32_t* h = v->header + (size_t)tid * LPM_HDR_WORDS;                          \
    const uint8_t* data = v->data;                                                        \
    if (h[0] == LPM_KIND_POPTRIE) {                                                       \
        lpm_pt p = lpm_pt_of(data, h);                                                    \
        ptrdiff_t i = 0;                                                                  \
        uint32_t e[LPM_GROUP];                                                            \
        for (; i + LPM_GROUP <= n; i += LPM_GROUP) {                                      \
            for (int g = 0; g < LPM_GROUP; ++g) e[g] = p.dp[addrs[i + g] >> 14];          \
            for (int g = 0; g < LPM_GROUP; ++g) e[g] = lpm_pt_walk(&p, e[g], addrs[i + g]); \
            for (int g = 0; g < LPM_GROUP; ++g) out[i + g] = p.vals[e[g]];                \
        }                                                                                 \
        for (; i < n; ++i) out[i] = p.vals[lpm_pt_walk(&p, p.dp[addrs[i] >> 14], addrs[i])]; \
    } else {                                                                              \
        for (ptrdiff_t i = 0; i < n; ++i) out[i] = lpm_bt_one(data, h, addrs[i]);         \
    }

/* (table, address) pairs, in groups of LPM_GROUP: stage 0 reads the (prefetched) header rows
 * and prefetches each root line; each B-tree level then reads the lines prefetched by the
 * previous stage and prefetches the next; poptrie tables take the direct path. */
LPM_INLINE void lpm_multi_group(const lpm_view_c* v, const uint32_t* tids, const uint32_t* addrs,
                                uint32_t* out, const uint32_t* next_tids, int n_next) {
    const uint8_t* data = v->data;
    const uint32_t* hp[LPM_GROUP];
    const int32_t* line[LPM_GROUP];
    uint32_t node[LPM_GROUP];
    int depth[LPM_GROUP];
    int dmax = 0;
    int dmin = LPM_BTREE_MAX_DEPTH + 1; /* ends equal to dmax only when every lookup is a B-tree of one depth */
    /* prefetch never faults, so a bad id just prefetches row 0 (branch-free, unrolled when full) */
    if (n_next == LPM_GROUP) {
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 16
#elif defined(__clang__)
#pragma unroll
#endif
        for (int g = 0; g < LPM_GROUP; ++g) {
            uint32_t t = next_tids[g];
            LPM_PREFETCH(v->header + (size_t)(t < v->n_tables ? t : 0u) * LPM_HDR_WORDS);
        }
    } else {
        for (int g = 0; g < n_next; ++g) {
            uint32_t t = next_tids[g];
            LPM_PREFETCH(v->header + (size_t)(t < v->n_tables ? t : 0u) * LPM_HDR_WORDS);
        }
    }
    for (int g = 0; g < LPM_GROUP; ++g) {
        uint32_t t = tids[g];
        depth[g] = -1;
        hp[g] = 0;
        if (t < v->n_tables) {
            const uint32_t* h = v->header + (size_t)t * LPM_HDR_WORDS;
            uint32_t k = h[0];
            hp[g] = h;
            if (k - LPM_KIND_BTREE <= LPM_BTREE_MAX_DEPTH) {
                int d = (int)(k - LPM_KIND_BTREE);
                depth[g] = d;
                dmax = d > dmax ? d : dmax;
                node[g] = 0;
                line[g] = LPM_LINEPTR(data, h[1]);
                LPM_PREFETCH(line[g]);
            }
        }
        dmin = depth[g] < dmin ? depth[g] : dmin; /* -1 (not a B-tree) rules the fast path out */
    }
    if (dmin == dmax) { /* the usual group (VPC tables): no per-lookup depth tests */
        const int32_t nb = (int32_t)0x80000000u;
        for (int l = 0; l < dmax; ++l) {
            for (int g = 0; g < LPM_GROUP; ++g) {
                uint32_t c = lpm_count16(line[g], (int32_t)addrs[g] ^ nb);
                node[g] = node[g] * 17u + c;
                line[g] = LPM_LINEPTR(data, hp[g][2 + l] + node[g]);
                LPM_PREFETCH(line[g]);
            }
        }
        for (int g = 0; g < LPM_GROUP; ++g) {
            const int32_t* leaf = line[g];
            out[g] = (uint32_t)leaf[8 + lpm_count8(leaf, (int32_t)addrs[g] ^ nb)];
        }
        return;
    }
    for (int l = 0; l < dmax; ++l) {
        for (int g = 0; g < LPM_GROUP; ++g) {
            if (l < depth[g]) {
                uint32_t c = lpm_count16(line[g], (int32_t)(addrs[g] ^ 0x80000000u));
                node[g] = node[g] * 17u + c;
                line[g] = LPM_LINEPTR(data, hp[g][2 + l] + node[g]);
                LPM_PREFETCH(line[g]);
            }
        }
    }
    for (int g = 0; g < LPM_GROUP; ++g) {
        if (depth[g] >= 0) {
            const int32_t* leaf = line[g];
            out[g] = (uint32_t)leaf[8 + lpm_count8(leaf, (int32_t)(addrs[g] ^ 0x80000000u))];
        } else if (hp[g] && hp[g][0] == LPM_KIND_POPTRIE) {
            lpm_pt p = lpm_pt_of(data, hp[g]);
            out[g] = p.vals[lpm_pt_walk(&p, p.dp[addrs[g] >> (32 - LPM_DP_BITS)], addrs[g])];
        } else {
            out[g] = LPM_MISS;
        }
    }
}

#define LPM_BODY_MULTI                                                                    \
    ptrdiff_t i = 0;                                                                      \
    for (; i + LPM_GROUP <= n; i += LPM_GROUP) {                                          \
        ptrdiff_t rest = n - (i + LPM_GROUP);                                             \
        lpm_multi_group(v, tids + i, addrs + i, out + i, tids + i + LPM_GROUP,            \
                        rest < LPM_GROUP ? (int)rest : LPM_GROUP);                        \
    }                                                                                     \
    for (; i < n; ++i) out[i] = lpm_one(v, tids[i], addrs[i]);

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define LPM_HAVE_DISPATCH 1
__attribute__((target("popcnt"))) static void lpm_single_popcnt(const lpm_view_c* v, uint32_t tid,
                                                                 const uint32_t* addrs, uint32_t* out,
                                                                 ptrdiff_t n) {
    LPM_BODY_SINGLE
}
__attribute__((target("popcnt"))) static void lpm_multi_popcnt(const lpm_view_c* v, const uint32_t* tids,
                                                                const uint32_t* addrs, uint32_t* out,
                                                                ptrdiff_t n) {
    LPM_BODY_MULTI
}
#else
#define LPM_HAVE_DISPATCH 0
#endif

static void lpm_single_base(const lpm_view_c* v, uint32_t tid, const uint32_t* addrs, uint32_t* out,
                            ptrdiff_t n) {
    LPM_BODY_SINGLE
}
static void lpm_multi_base(const lpm_view_c* v, const uint32_t* tids, const uint32_t* addrs, uint32_t* out,
                           ptrdiff_t n) {
    LPM_BODY_MULTI
}

typedef void (*lpm_single_fn)(const lpm_view_c*, uint32_t, const uint32_t*, uint32_t*, ptrdiff_t);
typedef void (*lpm_multi_fn)(const lpm_view_c*, const uint32_t*, const uint32_t*, uint32_t*, ptrdiff_t);

static lpm_single_fn lpm_single = lpm_single_base;
static lpm_multi_fn lpm_multi = lpm_multi_base;
static int lpm_variant = 0; /* 1 when the popcnt variant is in use */

/* choose the variants once, at import; `force_base` keeps the baseline (for tests) */
static int lpm_dispatch_init(int force_base) {
    lpm_single = lpm_single_base;
    lpm_multi = lpm_multi_base;
    lpm_variant = 0;
#if LPM_HAVE_DISPATCH
    __builtin_cpu_init();
    if (!force_base && __builtin_cpu_supports("popcnt")) {
        lpm_single = lpm_single_popcnt;
        lpm_multi = lpm_multi_popcnt;
        lpm_variant = 1;
    }
#endif
    (void)force_base;
    return lpm_variant;
}

static void lpm_lookup_single(const lpm_view_c* v, uint32_t tid, const uint32_t* addrs, uint32_t* out,
                              ptrdiff_t n) {
    lpm_single(v, tid, addrs, out, n);
}
static void lpm_lookup_multi(const lpm_view_c* v, const uint32_t* tids, const uint32_t* addrs, uint32_t* out,
                             ptrdiff_t n) {
    lpm_multi(v, tids, addrs, out, n);
}
static uint32_t lpm_lookup_one(const lpm_view_c* v, uint32_t tid, uint32_t addr) { return lpm_one(v, tid, addr); }
static int lpm_dispatch_variant(void) { return lpm_variant; }

#endif
