/* fastvpc.lpm packed layout: shared by the C++ builder (_build.cpp) and the lookup
 * kernel (_lpm_kernel.h).  Everything lives in one byte pool, in 64-byte lines.
 *
 * Per table, a header row of LPM_HDR_WORDS uint32 (hot, read by every lookup):
 *   h[0] kind: LPM_KIND_EMPTY (every lookup misses),
 *              LPM_KIND_BTREE + d (d = 0..3 internal levels of a static B-tree over intervals),
 *              LPM_KIND_POPTRIE
 *   btree:   h[1 + l] = line offset of level l (l = 0 root .. d leaves), nodes of a level consecutive
 *   poptrie: h[1] direct-pointing array, h[2] nodes, h[3] leaves, h[4] value table (line offsets)
 *
 * B-tree over intervals.  The table is flattened to intervals [s_j, s_{j+1}) with value v_j
 * (s_0 = 0, adjacent equal values merged).  Keys are stored as int32 (s_j - 1) ^ 0x80000000 so that
 * "key < (addr ^ 0x80000000)" (signed) means s_j <= addr; padding keys are INT32_MAX.
 *   leaf line:     int32 k[8] (k[7] = INT32_MAX) then uint32 v[8]: 8 intervals, value = v[count(k < a)]
 *   internal line: int32 sep[16]; child = 17 * node + count(sep < a)
 *
 * Poptrie (after Asai & Ohara 2015; 6-bit strides, direct pointing on the top 18 bits).
 *   The address is widened to 36 bits (a << 4) so that three 6-bit strides follow the 18 direct bits.
 *   dp[a >> 14]: bit 31 set -> leaf id (low 31 bits), else node index.
 *   node: vector (bit c: child c is a node), leafvec (bit c: a leaf run starts at child c),
 *         base0 (first leaf), base1 (first child node).
 *   leaves: uint32 ids into the value table; value table[0] is the miss value.
 */
#ifndef FASTVPC_LPM_LAYOUT_H
#define FASTVPC_LPM_LAYOUT_H
#include <stdint.h>

#define LPM_MISS 0xFFFFFFFFu
#define LPM_HDR_WORDS 8
#define LPM_KIND_EMPTY 0u
#define LPM_KIND_BTREE 1u   /* 1..4: 1 + number of internal levels */
#define LPM_KIND_POPTRIE 8u
#define LPM_BTREE_MAX_DEPTH 3
#define LPM_LINE 64
#define LPM_DP_BITS 18
#define LPM_LEAF_FLAG 0x80000000u
#define LPM_META_COLS 5              /* per-table meta row (Python side only, see _build.cpp) */
#define LPM_ROUTES_OFFSETS_ABOVE 136 /* route lists longer than this store 34 length offsets, else a length per route */

typedef struct lpm_pt_node {
    uint64_t vector;
    uint64_t leafvec;
    uint32_t base0;
    uint32_t base1;
} lpm_pt_node;

#endif
