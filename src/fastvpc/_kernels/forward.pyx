# The forwarding pass of fastvpc: the driver over the stages of docs/forwarding-model.md.
#
# The stages are stages/<name>.pxd, one per section of the model, in forward.stage_names() order
# (== fastvpc.reference.ReferenceForwarder.STAGES):
#   ingress  steps 1-3, 9-14    arp    steps 4-8      router   steps 15-17
#   sg_egress, nacl_egress      the sender's security groups and subnet NACL (compile(filters=True))
#   local    step 18            route  step 19
#   nacl_ingress, sg_ingress    the receiving subnet's NACL and ENI's security groups
#   rewrite  §4 (the only stage that writes frames; with the edge also the internet gateway's 1:1
#            translations, edge.pxd)
#   edge_ingress, edge_egress   the edge (compile(edge=True), docs/edge.md): frames on a gateway's port
#            (called out of line through FwdTables.edge_in), and the 1:1 source translation out through
#            an internet gateway (stage_route, RK_IGW).  nat (stages/nat.pxd): a frame that meets a NAT
#            gateway is NAT_NEEDS_STATE in the stateless variants; in ModeState it waits for the table pass,
#            where nat_pass translates it on the FlowTable's bindings, in frame order, and routes it on
# Each is a `cdef inline int stage_<name>(const FwdTables*, Pkt*)` over one per-frame context
# (pkt.pxd Pkt) returning the next node; commit() (pkt.pxd) is the one writer of the verdict arrays.
# Inlined, they compile to one loop.
#
# This file is the driver only: chunks, the prefetch pipeline, the batch LPM, the stage order and the
# commit.  Per chunk of FV_CHUNK (128) frames, one chunk per thread at a time (VPP/DPDK style):
#   1. one software-pipelined loop: while frame j runs ingress -> arp | router -> local, the ingress
#      record of frame j + 2*FV_DIST and the (VPC, dst) hash slot of frame j + FV_DIST are being
#      fetched; frames bound for the LPM or the rewrite are appended (branch-free) to two index lists,
#      the others are committed at once;
#   2. one batch LPM call on the route list (fastvpc.lpm C API, interleaved there), each result turned
#      into a global route index once (and its record prefetched); per frame route, then rewrite if
#      it delivers, commit;
#   3. the rewrite list (frames decided in loop 1 that need one): rewrite, commit.
# Scratch (Pkt pk[FV_CHUNK] and the lists) lives on the calling thread's stack, so concurrent calls on
# one Dataplane share nothing but read-only tables; nothing is allocated per frame or per batch.
#
# Three variants of run_chunk, chosen per batch (a fused type, so each is compiled on its own and the
# unfiltered one is today's loop, not one with tests of a flag in it):
#   ModePlain  compile(filters=False): no filter stage;
#   ModeFilt   filters, no FlowTable: the rules alone decide (every packet a first packet);
#   ModeState  filters and a FlowTable: the rule verdicts are computed in the loops above but not
#              acted on; the frames that met sg_egress wait in a list (in frame order), and after the
#              route pass one in-order pass makes each frame's table steps (the sender's egress step,
#              then, if the frame was delivered, the receiver's ingress step) with the entries
#              prefetched, turns the results into verdicts, rewrites and commits.  The table steps of
#              a batch are serial and in frame order (one thread), so the result is exactly that of
#              one frame at a time for every n_threads; with several threads it is a pipeline: the
#              others run the stateless part of chunks (contexts parked in a per-batch buffer) while
#              one thread makes the table steps chunk by chunk in frame order as each is ready.  The
#              security-group rules are evaluated in the table pass, only for a step that finds no
#              live entry (FT_ADMIT_LATER / FT_LATER): a tracked flow is admitted whatever they say.
#
# Adding a stage: docs/architecture.md, "The forwarding kernel".
#
# The distutils line at the top raises GCC's inlining limits for this module only: with three
# variants of run_chunk each stage is called from three places, and GCC's default limits then keep
# the large ones (ingress, rewrite) as calls, ~13% more instructions a frame in the unfiltered
# variant (callgrind, BENCHMARKS.md "Filters"); every stage is meant to compile into the loop.
#
# Tables: tables.pxd (record layouts, hash encodings); built by fastvpc/compiler.

cimport cython
from cython.parallel cimport prange
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t
from libc.string cimport memset

import numpy as np

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.bytes cimport rd32
from fastvpc._kernels.headers cimport *
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.spans cimport fv_check_offsets, fv_first_start, fv_next_span
from fastvpc._kernels.pkt cimport *
from fastvpc._kernels.stages.ingress cimport stage_ingress
from fastvpc._kernels.stages.arp cimport stage_arp
from fastvpc._kernels.stages.router cimport stage_router
from fastvpc._kernels.stages.local cimport stage_local
from fastvpc._kernels.stages.route cimport stage_route
from fastvpc._kernels.stages.rewrite cimport stage_rewrite
from fastvpc._kernels.stages.sg_egress cimport stage_sg_egress
from fastvpc._kernels.stages.nacl_egress cimport stage_nacl_egress
from fastvpc._kernels.stages.nacl_ingress cimport stage_nacl_ingress
from fastvpc._kernels.stages.sg_ingress cimport stage_sg_ingress
from fastvpc._kernels.stages.edge_ingress cimport stage_edge_ingress
from fastvpc._kernels.stages.nat cimport (nat_pass, nat_waiting, nat_slot, nat_prefetch_slot, nat_prefetch_rec,
                                          NatOut, NAT_REC_DIST)
from fastvpc.dataplane._nattable cimport NatView, nat_view_init
from fastvpc._kernels.acl cimport acl_parse, ACL_BUCKET_MIN
from fastvpc.lpm._lookup cimport rts_view_init, rts_lookup_batch
from fastvpc._kernels.acl cimport sg_eval, sender_filt, DIR_EGRESS, DIR_INGRESS
from fastvpc.dataplane._flowtable cimport (FtView, FtPkt, FtTimeouts, ft_view_init, ft_make_pkt, ft_prefetch,
                                           ft_prefetch3, ft_pkt_at, ft_step,
                                           ft_insert_or_update, FT_MISS, FT_FULL, FT_HIT, FT_LATER,
                                           FT_ADMIT_LATER)


cdef extern from *:
    """
    #ifndef FV_CHUNK
    #define FV_CHUNK 128   /* 128 contexts of 112 bytes: the scratch stays in L1 (BENCHMARKS.md, issue 9) */
    #endif
    #define FV_NO_ROUTE 0xFFFFFFFFu
    #ifndef FV_DIST
    #define FV_DIST 8
    #endif
    #ifndef FV_CT_DIST
    #define FV_CT_DIST 16
    #endif
    """
    enum: FV_CHUNK
    enum: FV_DIST
    const uint32_t FV_NO_ROUTE
    enum: FV_CT_DIST               # prefetch distance (frames) of the in-order table pass


cdef extern from *:
    """
    #include <sched.h>
    /* the producer/consumer hand-over of the stateful pass on several threads (_forward_state_threads) */
    static inline int64_t fv_load_acq(const int64_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline void fv_store_rel(int64_t* p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    static inline int64_t fv_fetch_add(int64_t* p, int64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
    static inline void fv_wait_hint(int64_t spins) {
    #if defined(__x86_64__) || defined(__i386__)
        if (spins < 64) { __builtin_ia32_pause(); } else { sched_yield(); }   /* a shared machine: give the core away */
    #else
        if (spins >= 64) { sched_yield(); }
    #endif
    }
    """
    int64_t fv_load_acq(const int64_t* p) noexcept nogil
    void fv_store_rel(int64_t* p, int64_t v) noexcept nogil
    int64_t fv_fetch_add(int64_t* p, int64_t v) noexcept nogil
    void fv_wait_hint(int64_t spins) noexcept nogil


# the three variants of run_chunk (see the top of the file): empty marker types of a fused type
cdef struct ModePlain:
    int unused
cdef struct ModeFilt:
    int unused
cdef struct ModeState:
    int unused
ctypedef fused Mode:
    ModePlain
    ModeFilt
    ModeState


# ModeState's table view: the FlowTable's conntrack view first (so a FtView* to it, which is what
# run_chunk and ct_pass take, is one to this), then its NAT bindings (stages/nat.pxd)
cdef struct StateView:
    FtView ft
    NatView nat
    int has_nat             # the tables have NAT gateways and nat is set up
    NatOut out              # the NAT step's per-frame outputs (Result.nat_gw & co.; out.gw NULL: none asked)


#: the stage order of run_chunk (tests/kernels/test_stages.py holds it to ReferenceForwarder.STAGES)
STAGES = ("ingress", "arp", "router", "edge_ingress", "sg_egress", "nacl_egress", "local", "route", "nat",
          "edge_egress", "nacl_ingress", "sg_ingress", "rewrite")

#: a port-index block of more cuts than this has a bucket table, as this build reads the index
#: (compiler/filters.py BUCKET_MIN writes it; tests/kernels/test_filters_index.py holds them equal)
ACL_BUCKET_MIN_CUTS = ACL_BUCKET_MIN


# ------------------------------------------------------------------ the edge's gateway-port path

ctypedef int (*edge_fn_t)(const FwdTables*, Pkt*, Flt*, int) noexcept nogil


cdef int edge_ingress_call(const FwdTables* t,
                           Pkt* p,              # IN/OUT the frame (loop 1's context)
                           Flt* x,              # IN/OUT its filter context (mode 0: not touched)
                           int mode,            # IN  0 plain, 1 filters, 2 filters with a FlowTable
                           ) noexcept nogil:
    """Loop 1 for a frame on a gateway's port: stage edge_ingress, then on a DELIVER the receiver's
    filters (nacl_ingress, sg_ingress; with a FlowTable the table step waits, CT_I).  Reached through
    FwdTables.edge_in, never inlined: the unfiltered loop stays today's."""
    cdef int nx = stage_edge_ingress(t, p)
    if mode == 2 and nat_waiting(p):
        x.ct = CT_FILT | CT_N      # to a NAT gateway's private IP: the table pass's NAT step (nat_pass)
        return nx
    if mode == 0 or nx != NEXT_REWRITE or p.action != ACT_DELIVER:
        return nx
    acl_parse(p, x)
    x.ct = CT_FILT | (CT_FRAG if p.h.frag & 0x1FFF else 0)    # a later fragment: the groups pass it
    nx = stage_nacl_ingress(t, p, x)
    if nx == NEXT_REWRITE:
        nx = stage_sg_ingress(t, p, x, mode == 2)
    return nx


# ------------------------------------------------------------------ the pipeline's look-ahead

cdef inline void fetch(const FwdTables* t,
                       uint8_t* data,            # IN  the batch buffer
                       int64_t nd,               # IN  its length
                       const int64_t* offsets,   # IN  n+1 offsets (may be changing under us: read once)
                       const int32_t* port,      # IN  ingress ports
                       int64_t i,                # IN  frame index (called for lo, lo + 1, ... in order)
                       int64_t* pos,             # IN/OUT frame i's start, in [0, nd] (spans.pxd fv_next_span)
                       Pkt* p,                   # OUT f, L, port, er, key
                       bint filt,                # IN  a filtered variant (a constant): the record from port_both
                       ) noexcept nogil:
    """Frame ``i``'s span, port, ingress record and (VPC, dst) hash key; prefetches the key's slot."""
    cdef int64_t start = pos[0]
    cdef int64_t L = fv_next_span(offsets, i, nd, pos)   # not inside the buffer: an empty frame
    cdef const uint8_t* f = data + start
    cdef uint64_t k
    p.f = data + start
    p.L = L
    p.port = port[i]
    if filt and 0 <= p.port < t.n_port_filt:
        p.er = t.port_both[p.port].ing       # the line sg_egress reads the sender's filter record from
    else:
        p.er = ingress_of(t, p.port)
    k = FV_HT_EMPTY
    if p.er.subnet >= 0 and L >= IPV4_MIN_FRAME and f[12] == 0x08 and f[13] == 0x00:
        k = ip_key(<uint32_t>t.subnets[p.er.subnet].vpc, rd32(f + 30))
        ht_prefetch(&t.ipt, k)
    p.key = k                 # stored once (the FV_HT_EMPTY default and the key were two stores)


# ------------------------------------------------------------------ one frame of the passes after the LPM
#
# These run a frame's stages on a context local to the function (q, loaded by pkt.pxd unpark), not
# on its slot in the chunk's scratch: every store to the frame or to the outputs goes through a
# uint8_t* (and the build has -fno-strict-aliasing), so on the slot the compiler would reload each
# context field after each such store; a local whose address does not escape stays in registers.

cdef inline void route_one(Mode* mode,          # IN  the variant (a type only)
                           const FwdTables* t,
                           Pkt* s,              # IN  the frame (loop 1's context); OUT its verdict when parked
                           Flt* x,              # IN/OUT its filter context (not read by ModePlain)
                           int32_t rt,          # IN  its global route index from the batch LPM (-1: none)
                           int64_t i,           # IN  frame index
                           uint8_t* action, uint8_t* reason, int32_t* egress, int32_t* route_out,   # OUT [i]
                           const FtView* v,     # ModePlain: the FlowTable (NAT gateways) or NULL; unread by the others
                           const FtPkt* ke,     # ModeState: IN  the frame's sender-side key (CT_E: made in loop 1)
                           FtPkt* ki,           # ModeState: OUT the frame's receiver-side table key (NULL: none made)
                           ) noexcept nogil:
    """Loop 2 for one frame: route, the ingress filters if it delivers, then rewrite (while its records
    are hot) and commit -- or, stateful and waiting for its table steps, its verdict parked in ``s``."""
    cdef Pkt q
    cdef Pkt* p = &q
    cdef int nx
    unpark(p, s)
    q.route = rt
    nx = stage_route(t, p)
    if Mode is ModePlain:
        if v != NULL and nat_waiting(p):   # compile(filters=False) with a FlowTable: nat_plain takes it up
            s.route = q.route
            s.out_eni = q.out_eni
            s.action = q.action
            s.reason = q.reason
            # its binding's hash slot, in flight while the chunk's other frames are routed and rewritten
            nat_prefetch_nat(t, <StateView*>v, s)
    if Mode is ModeFilt:
        if nx == NEXT_REWRITE and p.action == ACT_DELIVER:   # (a FORWARD through an IGW rewrites too)
            nx = stage_nacl_ingress(t, p, x)
            if nx == NEXT_REWRITE:
                nx = stage_sg_ingress(t, p, x, 0)
    if Mode is ModeState:
        if nx == NEXT_REWRITE and p.action == ACT_DELIVER:
            nx = stage_nacl_ingress(t, p, x)
            if nx == NEXT_REWRITE:
                nx = stage_sg_ingress(t, p, x, 1)
                if ki != NULL and (x.ct & CT_I):
                    if x.ct & CT_E:       # the sender's key at the receiver: the same flow's key, copied
                        ft_pkt_at(ki, ke, t.eni_filt[q.out_eni].ident)
                    else:                 # the key's fields from s: unpark copied only some of h
                        ct_make_key(t, s, t.eni_filt[q.out_eni].ident, ki)
        if x.ct & (CT_E | CT_N):      # waits for the table pass (CT_N alone: to the Amazon DNS address)
            s.route = q.route
            s.out_eni = q.out_eni
            s.out_port = q.out_port
            s.action = q.action
            s.reason = q.reason
            return
    if nx == NEXT_REWRITE:
        nx = stage_rewrite(t, p)
    commit(p, i, action, reason, egress, route_out)


cdef inline void rewrite_one(const FwdTables* t,
                             Pkt* s,            # IN  the parked frame
                             int64_t i,         # IN  frame index
                             uint8_t* action, uint8_t* reason, int32_t* egress, int32_t* route_out,   # OUT [i]
                             ) noexcept nogil:
    """Loop 3 for one frame: rewrite, commit."""
    cdef Pkt q
    cdef Pkt* p = &q
    unpark(p, s)
    stage_rewrite(t, p)
    commit(p, i, action, reason, egress, route_out)


# ------------------------------------------------------------------ one chunk

cdef int64_t run_chunk(Mode* mode,               # IN  the variant (a type only)
                       const FwdTables* t,
                       uint8_t* data,            # IN/OUT the batch buffer (frames rewritten in place)
                       int64_t nd,               # IN  its length
                       const int64_t* offsets,   # IN  n+1 offsets
                       const int32_t* port,      # IN  ingress ports
                       int64_t lo, int64_t hi,   # IN  frame range of this chunk (hi - lo <= FV_CHUNK)
                       uint8_t* action, uint8_t* reason, int32_t* egress, int32_t* route_out,   # OUT [lo:hi]
                       Pkt* pk_park,             # ModeState, several threads: OUT the chunk's contexts; else NULL
                       Flt* fx_park,             # ModeState, several threads: OUT their filter contexts
                       int32_t* ct_park,         # ModeState, several threads: OUT the frames waiting for the table
                       FtPkt* ke_park,           # ModeState, several threads: OUT their sender-side table keys
                       FtPkt* ki_park,           # ModeState, several threads: OUT their receiver-side keys
                       FtView* v,                # ModeState, one thread: IN/OUT the FlowTable (NULL: park instead)
                       const int64_t* now,       # ModeState: IN  ns per frame (now_step 1) or for all (0)
                       int64_t now_step,         # IN
                       ) noexcept nogil:
    """One chunk: the stages in order, the batch LPM between local and route, commit.  Returns the
    number of frames parked for the table pass (ModeState with v == NULL), else 0."""
    cdef Pkt pk_local[FV_CHUNK]        # per frame: the context every stage reads and writes
    cdef Flt fx_local[FV_CHUNK]        # per frame: the filter stages' context (filtered variants)
    cdef int32_t ct_local[FV_CHUNK]    # ModeState: the frames that met sg_egress, in frame order
    cdef FtPkt ke_local[FV_CHUNK]      # ModeState, one thread: per frame its sender-side table key (made in loop 1)
    cdef FtPkt ki_local[FV_CHUNK]      # ... and its receiver-side key (made in the route pass)
    cdef FtPkt* ke = ke_local          # ModeState: where the keys go (parked, with several threads)
    cdef FtPkt* ki = ki_local
    cdef uint32_t lk_tab[FV_CHUNK]     # route list: LPM table id
    cdef uint32_t lk_dst[FV_CHUNK]     # route list: destination
    cdef uint32_t lk_val[FV_CHUNK]     # route list: lookup result
    cdef int32_t lk_i[FV_CHUNK]        # route list: frame offset in the chunk
    cdef int32_t rw_i[FV_CHUNK]        # rewrite list: frame offset in the chunk
    cdef int64_t j, k, n = hi - lo, nl = 0, nr = 0, nc = 0, m
    cdef int nx
    cdef uint32_t h
    cdef uint64_t r
    cdef Pkt* p
    cdef Flt* x
    cdef Pkt* pk = pk_local
    cdef Flt* fx = fx_local
    cdef int32_t* ct_i = ct_local
    cdef bint pend
    cdef int64_t pos = fv_first_start(offsets, lo, nd)   # start of the next frame to fetch
    if Mode is ModeState:
        if v == NULL:
            pk = pk_park
            fx = fx_park
            ct_i = ct_park
            ke = ke_park           # the keys are made here too: the table pass (serial) only steps
            ki = ki_park
    # 1. ingress -> arp | router -> [sg_egress -> nacl_egress] -> local [-> nacl_ingress -> sg_ingress],
    #    pipelined: the ingress record of frame j + 2*FV_DIST and the (VPC, dst) hash slot of frame
    #    j + FV_DIST are in flight while frame j is decided.
    m = n if n < 2 * FV_DIST else 2 * FV_DIST
    for j in range(m):
        if Mode is ModePlain:
            prefetch_port(t, port[lo + j])
        else:
            prefetch_filt(t, port[lo + j])
    m = n if n < FV_DIST else FV_DIST
    for j in range(m):
        fetch(t, data, nd, offsets, port, lo + j, &pos, &pk[j], Mode is not ModePlain)
    for j in range(n):
        if j + 2 * FV_DIST < n:
            if Mode is ModePlain:
                prefetch_port(t, port[lo + j + 2 * FV_DIST])
            else:
                prefetch_filt(t, port[lo + j + 2 * FV_DIST])
        if j + FV_DIST < n:
            fetch(t, data, nd, offsets, port, lo + j + FV_DIST, &pos, &pk[j + FV_DIST], Mode is not ModePlain)
            if Mode is not ModePlain:
                prefetch_filt2(t, &pk[j + FV_DIST])
        p = &pk[j]
        x = &fx[j]
        h = ht_get(&t.ipt, p.key) if p.key != FV_HT_EMPTY else FV_HV_NONE
        p.hv = h
        if tag_of(h) == FV_HV_ENI:   # FV_HV_NONE has another tag
            fv_prefetch(&t.deliv[h & FV_HV_INDEX_MASK])
            if Mode is not ModePlain:
                fv_prefetch(&t.eni_filt[h & FV_HV_INDEX_MASK])   # the receiver's groups (sg_ingress)
        if Mode is not ModePlain:
            x.ct = 0
        nx = stage_ingress(t, p)
        if nx == NEXT_ARP:
            nx = stage_arp(t, p)
        elif nx == NEXT_ROUTER:
            nx = stage_router(t, p)
            if nx == NEXT_LOCAL:
                if Mode is ModeFilt:
                    nx = stage_sg_egress(t, p, x, 0)
                    if nx == NEXT_LOCAL:
                        nx = stage_nacl_egress(t, p, x)
                if Mode is ModeState:
                    nx = stage_sg_egress(t, p, x, 1)     # decides nothing yet: the table step will
                    if x.ct & CT_E:
                        ct_make_key(t, p, sender_filt(t, p.port).ident, &ke[j])
                    if nx == NEXT_LOCAL:
                        nx = stage_nacl_egress(t, p, x)
                if nx == NEXT_LOCAL:
                    nx = stage_local(t, p)
                    if Mode is not ModePlain:
                        if nx == NEXT_REWRITE:          # DELIVER within the subnet: no NACL, the SG
                            nx = stage_nacl_ingress(t, p, x)
                            if nx == NEXT_REWRITE:
                                if Mode is ModeState:
                                    nx = stage_sg_ingress(t, p, x, 1)
                                    if x.ct & CT_I:
                                        if x.ct & CT_E:
                                            ft_pkt_at(&ki[j], &ke[j], t.eni_filt[p.out_eni].ident)
                                        else:
                                            ct_make_key(t, p, t.eni_filt[p.out_eni].ident, &ki[j])
                                else:
                                    nx = stage_sg_ingress(t, p, x, 0)
        elif nx == NEXT_EDGE:       # compile(edge=True): a frame on a gateway's port (out of line)
            if Mode is ModePlain:
                nx = (<edge_fn_t>t.edge_in)(t, p, x, 0)
            elif Mode is ModeFilt:
                nx = (<edge_fn_t>t.edge_in)(t, p, x, 1)
            else:
                nx = (<edge_fn_t>t.edge_in)(t, p, x, 2)
        # branch-free appends: the slot past the end is overwritten later
        lk_i[nl] = <int32_t>j
        lk_tab[nl] = p.table
        lk_dst[nl] = p.h.dst
        nl += nx == NEXT_ROUTE
        rw_i[nr] = <int32_t>j
        if Mode is ModeState:
            pend = (x.ct & (CT_E | CT_I | CT_N)) != 0   # waits for its table steps (then rewrite, commit);
                                                 # CT_I / CT_N alone: a frame from a gateway (edge), no sender step
            ct_i[nc] = <int32_t>j
            nc += pend
            nr += (nx == NEXT_REWRITE) and not pend
            if nx == NEXT_COMMIT and not pend:
                commit(p, lo + j, action, reason, egress, route_out)
        else:
            nr += nx == NEXT_REWRITE
            if nx == NEXT_COMMIT:
                commit(p, lo + j, action, reason, egress, route_out)
    # 2. batch LPM, then route (and the ingress filters)
    if nl:
        rts_lookup_batch(&t.lpm, lk_tab, lk_dst, lk_val, nl)
        for k in range(nl):   # global route index (or FV_NO_ROUTE) and a prefetch of its record
            r = FV_NO_ROUTE
            if lk_val[k] != 0xFFFFFFFFu and lk_tab[k] < <uint64_t>t.n_tables:
                r = <uint64_t>t.table_base[lk_tab[k]] + lk_val[k]
                if r < <uint64_t>t.n_routes and r < FV_NO_ROUTE:
                    fv_prefetch(&t.routes[r])
                else:
                    r = FV_NO_ROUTE
            lk_val[k] = <uint32_t>r      # handed to route_one (FV_NO_ROUTE is -1 there: no route)
        for k in range(nl):
            j = lk_i[k]
            route_one(mode, t, &pk[j], &fx[j], <int32_t>lk_val[k], lo + j, action, reason, egress, route_out, v,
                      &ke[j], &ki[j])
    # 3. the frames decided in loop 1 that need a rewrite (same-subnet DELIVER, ARP and echo REPLY;
    #    deferred so that the receiving ENI's record prefetched in loop 1 has arrived), commit
    for k in range(nr):
        j = rw_i[k]
        rewrite_one(t, &pk[j], lo + j, action, reason, egress, route_out)
    if Mode is ModePlain:
        if v != NULL:      # compile(filters=False) with a FlowTable and NAT gateways (one thread)
            nat_plain(t, v, pk, fx, lo, n, now, now_step, action, reason, egress, route_out)
    if Mode is ModeState:
        if v == NULL:
            return nc          # several threads: the table pass runs later, in frame order over chunks
        # 4. one thread: the table steps of this chunk's frames in order, then their rewrite and commit
        ct_pass(t, v, pk, fx, ct_i, nc, lo, now, now_step, ke, ki)
        ct_finish(t, pk, ct_i, nc, lo, action, reason, egress, route_out)
    return 0


cdef inline void prefetch_filt(const FwdTables* t, int32_t p) noexcept nogil:
    """The filtered variants' prefetch_port: the port's ingress and filter records, one line (port_both)."""
    if 0 <= p < t.n_port_filt:
        fv_prefetch(&t.port_both[p])
    else:
        prefetch_port(t, p)


cdef inline void prefetch_filt2(const FwdTables* t, const Pkt* p) noexcept nogil:
    """FV_DIST ahead (the port's filter record was prefetched 2*FV_DIST ahead): the sender set's egress
    rule ranges and the sender subnet's filter record."""
    cdef int32_t q = p.port
    if p.er.subnet >= 0 and 0 <= q < t.n_port_filt and t.port_both[q].filt.sgset >= 0:
        fv_prefetch(&t.sg_dirs[2 * t.port_both[q].filt.sgset + 1])
        fv_prefetch(&t.subnet_filt[p.er.subnet])


cdef inline void ct_make_key(const FwdTables* t, const Pkt* p, uint32_t ident,
                             FtPkt* k,            # OUT the key (ct_pass uses it: made once)
                             ) noexcept nogil:
    """The packet's FlowTable key at ENI ``ident``, made as soon as the filter stage knows it (loop 1 /
    the route pass, while the header fields are in registers).  Its slot is prefetched by ct_pass,
    FV_CT_DIST frames ahead, not here: prefetching every key of a chunk at once (up to 256 slots before
    the first probe) kept more misses outstanding than the core tracks, and the stateless stages' own
    record loads waited behind them (BENCHMARKS.md "Filters", the port index round)."""
    cdef uint8_t fl = p.h.tcp_flags if p.h.proto == IPPROTO_TCP else (p.h.icmp_type if p.h.proto == IPPROTO_ICMP else 0)
    ft_make_pkt(k, ident, 0, p.h.proto, p.h.src, p.h.dst, p.h.sport, p.h.dport, fl)


cdef inline void ct_prefetch(const FtView* v, uint8_t ct, const FtPkt* pe, const FtPkt* pi, int64_t j) noexcept nogil:
    """The table lines frame j's steps will probe: three slots from the home.  A frame with both steps
    probes one home for both (its two keys differ only in the ENI, which the slot hash leaves out)."""
    if ct & CT_E:
        ft_prefetch3(v, pe[j].hash)
    elif ct & CT_I:
        ft_prefetch3(v, pi[j].hash)


cdef void ct_pass(const FwdTables* t,
                  FtView* v,                # IN/OUT the FlowTable
                  Pkt* pk,                  # IN/OUT the chunk's contexts (verdicts of table drops)
                  const Flt* fx,            # IN  their filter contexts
                  const int32_t* ct_i,      # IN  the nc frames (offsets in the chunk) to step, in frame order
                  int64_t nc,
                  int64_t lo,               # IN  the chunk's first frame index
                  const int64_t* now,       # IN  ns per frame (now_step 1) or for all (now_step 0)
                  int64_t now_step,
                  FtPkt* pe,                # IN  per chunk frame: sender-side keys (made by loop 1)
                  FtPkt* pi,                # IN/OUT receiver-side keys (CT_I; made here for a gateway's frame)
                  ) noexcept nogil:
    """The table steps of nc frames in frame order: each frame's egress step at its sender, then (if it
    was delivered) its ingress step at the receiver; FT_MISS / FT_FULL become the verdict.  The rules
    (sg_eval) are evaluated here, only for a step that finds no live entry (FT_LATER): a packet of a
    tracked flow is admitted whatever they say, so they would be evaluated for nothing."""
    cdef const FtTimeouts* tmo = <const FtTimeouts*>t.ct_timeouts
    cdef int64_t k, j, tn
    cdef Pkt* p
    cdef const Flt* x
    cdef const FiltRec* fs
    cdef const FiltRec* fr
    cdef uint8_t code, dirn, st, a
    # loop 1 / route_one made the keys of frames from ENIs (parked with them on several threads); a
    # frame from a gateway's port (edge_ingress, decided in loop 1) has only a receiver step, whose key
    # is made here
    for k in range(nc):
        j = ct_i[k]
        x = &fx[j]
        if (x.ct & CT_I) and not (x.ct & CT_E):
            ct_make_key(t, &pk[j], t.eni_filt[pk[j].out_eni].ident, &pi[j])
    # the slots FV_CT_DIST frames ahead are in flight while a frame's steps are made
    for k in range(nc if nc < FV_CT_DIST else FV_CT_DIST):
        ct_prefetch(v, fx[ct_i[k]].ct, pe, pi, ct_i[k])
    for k in range(nc):
        if k + FV_CT_DIST < nc:
            ct_prefetch(v, fx[ct_i[k + FV_CT_DIST]].ct, pe, pi, ct_i[k + FV_CT_DIST])
        j = ct_i[k]
        p = &pk[j]
        x = &fx[j]
        tn = now[(lo + j) * now_step]
        code = FT_HIT                   # admitted: no sender step (a frame from a gateway)
        if x.ct & CT_E:
            fs = sender_filt(t, p.port)      # the sender's record (== eni_filt[x.s_eni]), hot since sg_egress
            code = ft_step(v, &pe[j], p.h.tl, tn, x.adm_e, tmo + fs.tmo, &dirn, &st)
            if code == FT_LATER:     # no live entry: the rules decide; then the full step (no inline re-probe)
                a = sg_eval(t, fs.sgset, DIR_EGRESS, p.h.proto, p.h.dst, x.l4)
                code = ft_insert_or_update(v, &pe[j], p.h.tl, tn, a, tmo + fs.tmo, &dirn, &st)
        if code == FT_MISS:
            p.route = -1             # decided at sg_egress, before the route
            drop(p, R_SG_EGRESS)
        elif code == FT_FULL:
            p.route = -1
            drop(p, R_FLOW_TABLE_FULL)
        elif nat_waiting(p):            # it meets a NAT gateway (stages/nat.pxd): translated here, in frame order
            if (<StateView*>v).has_nat:
                nat_pass(t, v, &(<StateView*>v).nat, p, <Flt*>x, tn, tmo, &(<StateView*>v).out, lo + j)
        elif x.ct & CT_I:
            fr = &t.eni_filt[p.out_eni]
            code = ft_step(v, &pi[j], p.h.tl, tn, x.adm_i, tmo + fr.tmo, &dirn, &st)
            if code == FT_LATER:
                a = sg_eval(t, fr.sgset, DIR_INGRESS, p.h.proto, p.h.src, x.l4)
                code = ft_insert_or_update(v, &pi[j], p.h.tl, tn, a, tmo + fr.tmo, &dirn, &st)
            if code == FT_MISS:
                drop(p, R_SG_INGRESS)
            elif code == FT_FULL:
                drop(p, R_FLOW_TABLE_FULL)


cdef inline void nat_prefetch_nat(const FwdTables* t, StateView* sv, const Pkt* p) noexcept nogil:
    """route_one, compile(filters=False) with a FlowTable: the hash slot of a NAT frame's binding."""
    cdef int64_t slot = nat_slot(t, &sv.nat, &sv.out, p)
    if slot >= 0:
        nat_prefetch_slot(&sv.nat, slot)


cdef void nat_plain(const FwdTables* t, FtView* v, Pkt* pk, Flt* fx, int64_t lo, int64_t n, const int64_t* now,
                    int64_t now_step,
                    uint8_t* action, uint8_t* reason, int32_t* egress, int32_t* route_out,   # IN/OUT [lo:lo+n]
                    ) noexcept nogil:
    """compile(filters=False) with a FlowTable: the chunk's frames that met a NAT gateway (committed
    NAT_NEEDS_STATE), in frame order, through the NAT step; no other frame touches the table (no
    filters), so chunk after chunk on one thread this is frame order."""
    cdef int64_t j, k, m = 0
    cdef int32_t idx[FV_CHUNK]
    cdef int64_t slot[FV_CHUNK]
    cdef NatView* nv = &(<StateView*>v).nat
    cdef NatOut* o = &(<StateView*>v).out
    for j in range(n):
        idx[m] = <int32_t>j
        m += action[lo + j] == ACT_DROP and reason[lo + j] == R_NAT_NEEDS_STATE and nat_waiting(&pk[j])
    # the bindings are a 1M-entry table: each probe is two dependent cache misses (the hash slot, the record).
    # The slots of the frames route_one handed over (a route decided: route >= 0) were prefetched there; those
    # of frames decided in loop 1 (replies from a gateway's port) are prefetched here; the records
    # NAT_REC_DIST frames ahead.
    for k in range(m):
        slot[k] = nat_slot(t, nv, o, &pk[idx[k]])
        if slot[k] >= 0 and pk[idx[k]].route < 0:
            nat_prefetch_slot(nv, slot[k])
    for k in range(m if m < NAT_REC_DIST else NAT_REC_DIST):
        if slot[k] >= 0:
            nat_prefetch_rec(nv, slot[k])
    for k in range(m):
        if k + NAT_REC_DIST < m and slot[k + NAT_REC_DIST] >= 0:
            nat_prefetch_rec(nv, slot[k + NAT_REC_DIST])
        j = idx[k]
        nat_pass(t, v, nv, &pk[j], &fx[j], now[(lo + j) * now_step], NULL, o, lo + j)
        rewrite_one(t, &pk[j], lo + j, action, reason, egress, route_out)


cdef void ct_finish(const FwdTables* t,
                    Pkt* pk,                  # IN  the chunk's contexts, verdicts final
                    const int32_t* ct_i,      # IN  the nc frames the table pass decided
                    int64_t nc,
                    int64_t lo,
                    uint8_t* action, uint8_t* reason, int32_t* egress, int32_t* route_out,   # OUT
                    ) noexcept nogil:
    """After the table pass: rewrite (a DELIVER) and commit each of its frames."""
    cdef int64_t k, j
    for k in range(nc):
        j = ct_i[k]
        rewrite_one(t, &pk[j], lo + j, action, reason, egress, route_out)


# ------------------------------------------------------------------ Python-facing objects

@cython.auto_pickle(False)
cdef class Tables:
    """The compiled tables of one Dataplane, as raw pointers for the kernel (read-only).

    Built from a :class:`fastvpc.compiler.CompiledTables` (any object with its field names): the
    record arrays (numpy structured arrays in the kernel's layout, see record_layouts()), the hash
    tables, the LPM and the flags.  Holds references to every array (and the LPM object) so the
    pointers stay valid.
    """
    cdef FwdTables t
    cdef object _keep
    cdef readonly bint has_nat      # edge with NAT gateways: a stateful pass needs the FlowTable's NAT bindings

    def __cinit__(self, compiled):
        cdef const uint8_t[::1] enis = _record_bytes(compiled.enis, sizeof(EniRec), "enis")
        cdef const uint8_t[::1] subnets = _record_bytes(compiled.subnets, sizeof(SubnetRec), "subnets")
        cdef const uint8_t[::1] routes = _record_bytes(compiled.route_targets, sizeof(RouteRec), "route_targets")
        cdef const uint8_t[::1] port_eni = _record_bytes(compiled.port_eni, sizeof(IngRec), "port_eni")
        cdef const uint8_t[::1] deliv = _record_bytes(compiled.eni_deliver, sizeof(DelivRec), "eni_deliver")
        cdef const uint32_t[::1] table_base = compiled.table_base
        cdef const uint64_t[::1] ip_hash = compiled.ip_hash
        cdef const uint64_t[::1] mac_hash = compiled.mac_hash
        lpm = compiled.lpm
        if deliv.shape[0] != (enis.shape[0] // sizeof(EniRec)) * sizeof(DelivRec):
            raise ValueError("Tables: eni_deliver must hold one record per ENI")
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
        self.t.port_hashed = bool(compiled.port_hashed)
        self.t.single_mac = compiled.arp_mode == "single_mac"
        rts_view_init(&self.t.lpm, lpm)
        self.t.filters = 0
        if getattr(compiled, "filters", False):
            self._init_filters(compiled)
        self.t.edge = 0
        if getattr(compiled, "edge", False):
            self._init_edge(compiled)

    cdef int _init_edge(self, compiled) except -1:
        cdef const uint8_t[::1] gws = _record_bytes(compiled.edge_gws, sizeof(GwRec), "edge_gws")
        cdef const uint8_t[::1] cidrs = _record_bytes(compiled.edge_cidrs, sizeof(EdgeCidr), "edge_cidrs")
        cdef const uint64_t[::1] edt = compiled.edge_hash
        cdef int64_t n_gws = gws.shape[0] // sizeof(GwRec)
        cdef int64_t n_cidrs = cidrs.shape[0] // sizeof(EdgeCidr)
        cdef const GwRec* g
        cdef const EdgeCidr* c
        cdef int64_t i
        cdef uint64_t key
        _init_hash(&self.t.edt, edt)
        # every index the edge stages follow, checked once here (a bad table is refused, never followed)
        for i in range(n_gws):
            g = <const GwRec*>&gws[i * sizeof(GwRec)]
            if g.kind == GW_IGW and g.vpc < 0:
                raise ValueError(f"Tables: edge_gws[{i}] has VPC index {g.vpc}")
            if g.table >= self.t.n_tables or g.table < -1 or <int64_t>g.off + g.n > n_cidrs:
                raise ValueError(f"Tables: edge_gws[{i}] has table {g.table}, rows {g.off}+{g.n} of {n_cidrs}")
        for i in range(2 * self.t.edt.mask + 2):
            if i % 2 and self.t.edt.slots[i - 1] != FV_HT_EMPTY and (self.t.edt.slots[i - 1] >> 56) == HK_GWPORT \
                    and self.t.edt.slots[i] >= <uint64_t>n_gws:
                raise ValueError(f"Tables: edge_hash maps a port to gateway {self.t.edt.slots[i]} of {n_gws}")
        self._keep = self._keep + (gws, cidrs, edt)
        self.t.gws = <const GwRec*>&gws[0] if gws.shape[0] else NULL
        self.t.n_gws = n_gws
        self.t.gw_cidrs = <const EdgeCidr*>&cidrs[0] if cidrs.shape[0] else NULL
        self.t.edge_in = <const void*>edge_ingress_call
        self.t.edge = 1
        self.has_nat = 0
        for i in range(self.t.edt.mask + 1):
            key = self.t.edt.slots[2 * i]
            if key == FV_HT_EMPTY:
                continue
            if (key >> 56) == HK_NATSUB and self.t.edt.slots[2 * i + 1] >= <uint64_t>self.t.n_subnets:
                raise ValueError(f"Tables: edge_hash maps a NAT gateway to subnet {self.t.edt.slots[2 * i + 1]}")
            if (key >> 56) == HK_NATIP and self.t.edt.slots[2 * i + 1] >= (1 << 29):
                raise ValueError(f"Tables: edge_hash maps a NAT address to gateway {self.t.edt.slots[2 * i + 1]}")
            if (key >> 56) == HK_NATID:
                self.has_nat = 1
        for i in range(self.t.n_routes):
            if self.t.routes[i].kind == RK_NAT and not 0 <= self.t.routes[i].arg < (1 << 29):
                raise ValueError(f"Tables: route {i} to a NAT gateway has index {self.t.routes[i].arg}")
        return 0

    cdef int _init_filters(self, compiled) except -1:
        cdef const uint8_t[::1] eni_filt = _record_bytes(compiled.eni_filt, sizeof(FiltRec), "eni_filt")
        cdef const uint8_t[::1] port_filt = _record_bytes(compiled.port_filt, sizeof(FiltRec), "port_filt")
        cdef const uint8_t[::1] subnet_filt = _record_bytes(compiled.subnet_filt, sizeof(SubnetFilt), "subnet_filt")
        cdef const uint8_t[::1] sg_dirs = _record_bytes(compiled.sg_dirs, sizeof(AclDir), "sg_dirs")
        cdef const uint8_t[::1] sg_rules = _record_bytes(compiled.sg_rules, sizeof(AclRule), "sg_rules")
        cdef const uint8_t[::1] nacl_dirs = _record_bytes(compiled.nacl_dirs, sizeof(AclDir), "nacl_dirs")
        cdef const uint8_t[::1] nacl_rules = _record_bytes(compiled.nacl_rules, sizeof(AclRule), "nacl_rules")
        cdef const uint8_t[::1] tmo = _record_bytes(compiled.ct_timeouts, sizeof(FtTimeouts), "ct_timeouts")
        cdef const uint64_t[::1] sgm = compiled.sg_members
        cdef const uint32_t[::1] sg_ix = _index_words(compiled.sg_index, sg_dirs.shape[0] // sizeof(AclDir), "sg_index")
        cdef const uint32_t[::1] nacl_ix = _index_words(compiled.nacl_index, nacl_dirs.shape[0] // sizeof(AclDir),
                                                        "nacl_index")
        if eni_filt.shape[0] != self.t.n_enis * sizeof(FiltRec):
            raise ValueError("Tables: eni_filt must hold one record per ENI")
        if subnet_filt.shape[0] != self.t.n_subnets * sizeof(SubnetFilt):
            raise ValueError("Tables: subnet_filt must hold one record per subnet")
        if port_filt.shape[0] != self.t.n_port_dense * sizeof(FiltRec):
            raise ValueError("Tables: port_filt must hold one record per port_eni row")
        if self.t.n_enis and tmo.shape[0] == 0:
            raise ValueError("Tables: ct_timeouts is empty")
        _init_hash(&self.t.sgm, sgm)
        self._keep = self._keep + (eni_filt, port_filt, subnet_filt, sg_dirs, sg_rules, nacl_dirs, nacl_rules,
                                   tmo, sgm, sg_ix, nacl_ix)
        self.t.eni_filt = <const FiltRec*>&eni_filt[0] if eni_filt.shape[0] else NULL
        self.t.port_filt = <const FiltRec*>&port_filt[0] if port_filt.shape[0] else NULL
        self.t.n_port_filt = port_filt.shape[0] // sizeof(FiltRec)
        # the sender's ingress and filter records side by side, 32 bytes a port from a line boundary,
        # so that the filtered variants' loop 1 reads one line a frame for them instead of two
        cdef Py_ssize_t np_ = self.t.n_port_filt
        both = np.zeros(np_ * sizeof(PortFilt) + 64, dtype=np.uint8)
        cdef Py_ssize_t skip = (64 - (<Py_ssize_t>both.ctypes.data & 63)) & 63
        rows = both[skip:skip + np_ * sizeof(PortFilt)].reshape(np_, sizeof(PortFilt))
        rows[:, :sizeof(IngRec)] = np.asarray(_record_bytes(compiled.port_eni, sizeof(IngRec), "port_eni")).reshape(
            np_, sizeof(IngRec))
        rows[:, sizeof(IngRec):] = np.asarray(port_filt).reshape(np_, sizeof(FiltRec))
        rows.flags.writeable = False
        cdef const uint8_t[:, ::1] b_both = rows
        self._keep = self._keep + (both,)
        self.t.port_both = <const PortFilt*>&b_both[0, 0] if np_ else NULL
        self.t.subnet_filt = <const SubnetFilt*>&subnet_filt[0] if subnet_filt.shape[0] else NULL
        self.t.sg_dirs = <const AclDir*>&sg_dirs[0] if sg_dirs.shape[0] else NULL
        self.t.sg_rules = <const AclRule*>&sg_rules[0] if sg_rules.shape[0] else NULL
        self.t.nacl_dirs = <const AclDir*>&nacl_dirs[0] if nacl_dirs.shape[0] else NULL
        self.t.nacl_rules = <const AclRule*>&nacl_rules[0] if nacl_rules.shape[0] else NULL
        self.t.ct_timeouts = <const void*>&tmo[0] if tmo.shape[0] else NULL
        self.t.sg_index = &sg_ix[0] if sg_ix.shape[0] else NULL
        self.t.nacl_index = &nacl_ix[0] if nacl_ix.shape[0] else NULL
        self.t.filters = 1
        return 0

    @property
    def edge(self) -> bool:
        """Whether the edge stages run (compile(edge=True))."""
        return bool(self.t.edge)

    @property
    def filters(self) -> bool:
        """Whether the filter stages run (compile(filters=True))."""
        return bool(self.t.filters)

    def ip_lookup(self, uint64_t key) -> int:
        """The (VPC, IP) hash table's value for ``key`` (0xFFFFFFFF when absent); for tests."""
        return ht_get(&self.t.ipt, key)

    def mac_lookup(self, uint64_t key) -> int:
        """The MAC hash table's value for ``key`` (0xFFFFFFFF when absent); for tests."""
        return ht_get(&self.t.mact, key)


def _record_bytes(arr, size_t size, str name):
    """``arr`` (a record array, or raw bytes) as a flat uint8 view of whole ``size``-byte records."""
    a = np.ascontiguousarray(arr)
    if a.dtype != np.uint8:
        if a.dtype.itemsize != size:
            raise ValueError(f"Tables: {name} records are {a.dtype.itemsize} bytes, the kernel's are {size}")
        a = a.reshape(-1).view(np.uint8)
    if a.ndim != 1 or a.shape[0] % size:
        raise ValueError(f"Tables: {name} ({a.shape[0]} bytes) does not hold whole {size}-byte records")
    return a


def _index_words(arr, Py_ssize_t rows, str name):
    """A port index (compiler/filters.py) as uint32 words: 4 head words per AclDir row, 8-byte aligned
    (its masks are read as uint64); the blocks it points to are checked by dataplane/_validate.py."""
    a = np.ascontiguousarray(arr, dtype=np.uint32)
    if a.ndim != 1 or a.shape[0] < 4 * rows:
        raise ValueError(f"Tables: {name} ({a.size} words) has no head for {rows} rule-list rows")
    if a.ctypes.data % 8:
        a = np.require(a.copy(), requirements="A")   # a fresh numpy array is 16-aligned
    return a


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


# ------------------------------------------------------------------ layouts and introspection

cdef inline tuple _field(const void* rec, const void* field, size_t size, str name):
    return (name, <size_t>(<const char*>field - <const char*>rec), size)


def record_layouts() -> dict:
    """{record: [(field, byte offset, size), ...]} of every table record, as the kernel compiled them
    (fastvpc/compiler/layout.py builds its numpy dtypes from this)."""
    cdef EniRec e
    cdef SubnetRec s
    cdef RouteRec r
    cdef IngRec g
    cdef DelivRec d
    cdef FiltRec fr
    cdef SubnetFilt sf
    cdef AclDir ad
    cdef AclRule ar
    cdef GwRec gr
    cdef EdgeCidr ec
    return {
        "GwRec": [_field(&gr, &gr.mac, sizeof(gr.mac), "mac"), _field(&gr, &gr.kind, sizeof(gr.kind), "kind"),
                  _field(&gr, &gr.vpc, sizeof(gr.vpc), "vpc"), _field(&gr, &gr.table, sizeof(gr.table), "table"),
                  _field(&gr, &gr.off, sizeof(gr.off), "off"), _field(&gr, &gr.n, sizeof(gr.n), "n"),
                  _field(&gr, &gr.pad, sizeof(gr.pad), "pad")],
        "EdgeCidr": [_field(&ec, &ec.base, sizeof(ec.base), "base"), _field(&ec, &ec.mask, sizeof(ec.mask), "mask"),
                     _field(&ec, &ec.vpc, sizeof(ec.vpc), "vpc"), _field(&ec, &ec.pad, sizeof(ec.pad), "pad")],
        "FiltRec": [_field(&fr, &fr.sgset, sizeof(fr.sgset), "sgset"), _field(&fr, &fr.ident, sizeof(fr.ident), "ident"),
                    _field(&fr, &fr.tmo, sizeof(fr.tmo), "tmo"), _field(&fr, &fr.eni, sizeof(fr.eni), "eni")],
        "SubnetFilt": [_field(&sf, &sf.nacl, sizeof(sf.nacl), "nacl"), _field(&sf, &sf.dns, sizeof(sf.dns), "dns")],
        "AclDir": [_field(&ad, &ad.off, sizeof(ad.off), "off"), _field(&ad, &ad.n, sizeof(ad.n), "n"),
                   _field(&ad, &ad.flags, sizeof(ad.flags), "flags"), _field(&ad, &ad.pad, sizeof(ad.pad), "pad")],
        "AclRule": [_field(&ar, &ar.addr, sizeof(ar.addr), "addr"), _field(&ar, &ar.mask, sizeof(ar.mask), "mask"),
                    _field(&ar, &ar.lo, sizeof(ar.lo), "lo"), _field(&ar, &ar.hi, sizeof(ar.hi), "hi"),
                    _field(&ar, &ar.proto, sizeof(ar.proto), "proto"), _field(&ar, &ar.flags, sizeof(ar.flags), "flags"),
                    _field(&ar, &ar.number, sizeof(ar.number), "number")],
        "EniRec": [_field(&e, &e.mac, sizeof(e.mac), "mac"), _field(&e, &e.ip0, sizeof(e.ip0), "ip0"),
                   _field(&e, &e.subnet, sizeof(e.subnet), "subnet"), _field(&e, &e.port, sizeof(e.port), "port"),
                   _field(&e, &e.sdc, sizeof(e.sdc), "sdc"), _field(&e, &e.vpc, sizeof(e.vpc), "vpc"),
                   _field(&e, &e.pad, sizeof(e.pad), "pad")],
        "SubnetRec": [_field(&s, &s.base, sizeof(s.base), "base"), _field(&s, &s.mask, sizeof(s.mask), "mask"),
                      _field(&s, &s.router, sizeof(s.router), "router"),
                      _field(&s, &s.bcast, sizeof(s.bcast), "bcast"),
                      _field(&s, &s.gwmac, sizeof(s.gwmac), "gwmac"), _field(&s, &s.vpc, sizeof(s.vpc), "vpc"),
                      _field(&s, &s.table, sizeof(s.table), "table")],
        "RouteRec": [_field(&r, &r.kind, sizeof(r.kind), "kind"), _field(&r, &r.port, sizeof(r.port), "port"),
                     _field(&r, &r.arg, sizeof(r.arg), "arg"), _field(&r, &r.pad, sizeof(r.pad), "pad")],
        "IngRec": [_field(&g, &g.mac, sizeof(g.mac), "mac"), _field(&g, &g.ip0, sizeof(g.ip0), "ip0"),
                   _field(&g, &g.subnet, sizeof(g.subnet), "subnet")],
        "DelivRec": [_field(&d, &d.mac, sizeof(d.mac), "mac"), _field(&d, &d.port, sizeof(d.port), "port"),
                     _field(&d, &d.subnet, sizeof(d.subnet), "subnet")],
    }


def record_itemsizes() -> dict:
    """{record: sizeof} of every table record."""
    return {"EniRec": sizeof(EniRec), "SubnetRec": sizeof(SubnetRec), "RouteRec": sizeof(RouteRec),
            "IngRec": sizeof(IngRec), "DelivRec": sizeof(DelivRec), "FiltRec": sizeof(FiltRec),
            "SubnetFilt": sizeof(SubnetFilt), "AclDir": sizeof(AclDir), "AclRule": sizeof(AclRule),
            "FtTimeouts": sizeof(FtTimeouts), "GwRec": sizeof(GwRec), "EdgeCidr": sizeof(EdgeCidr)}


def ingress_sizes() -> tuple:
    """sizeof(IngRec), sizeof(DelivRec)."""
    return (sizeof(IngRec), sizeof(DelivRec))


def record_sizes() -> tuple:
    """sizeof(EniRec), sizeof(SubnetRec), sizeof(RouteRec)."""
    return (sizeof(EniRec), sizeof(SubnetRec), sizeof(RouteRec))


def context_size() -> int:
    """sizeof(Pkt): bytes of per-frame context in a chunk's scratch."""
    return sizeof(Pkt)


def filter_context_size() -> int:
    """sizeof(Flt): bytes of per-frame filter context beside it (filtered variants only)."""
    return sizeof(Flt)


def chunk_size() -> int:
    """Frames per chunk (ingress .. local -> batch LPM -> route -> rewrite)."""
    return FV_CHUNK


def stage_names() -> tuple:
    """The forwarding stages in the order run_chunk runs them (docs/forwarding-model.md)."""
    return STAGES


def build_hash(keys, values):
    """fastvpc.compiler._hash.build_hash (the builder lives with the compiler; kept here for callers)."""
    from fastvpc.compiler._hash import build_hash as _build_hash
    return _build_hash(keys, values)


# ------------------------------------------------------------------ the pass

def forward_batch(Tables tables,                 # IN  compiled tables
                  uint8_t[::1] data,             # IN/OUT frames, rewritten in place
                  const int64_t[::1] offsets,    # IN  n+1 offsets (validated by FrameBatch)
                  const int32_t[::1] port,       # IN  n ingress ports
                  uint8_t[::1] action,           # OUT n (or more)
                  uint8_t[::1] reason,           # OUT n (or more)
                  int32_t[::1] egress,           # OUT n (or more)
                  int32_t[::1] route,            # OUT n (or more)
                  int n_threads,                 # IN  resolved thread count (>= 1)
                  object state=None,             # IN/OUT a fastvpc.FlowTable, held by the caller (acquire()),
                                                 #     or None: the rules alone decide
                  const int64_t[::1] now=None,   # IN  with state: ns per frame (n values) or one for all (1),
                                                 #     checked by the caller (non-decreasing, >= the table's clock)
                  int32_t[::1] nat_gw=None,      # OUT n (or more), or None: per frame the port of the NAT gateway
                                                 #     it reached, -1 none (stages/nat.pxd NatOut; all four or none)
                  uint8_t[::1] nat_dir=None,     # OUT 0 not translated, 1 source replaced, 2 destination replaced
                  uint32_t[::1] nat_ip=None,     # OUT the address the NAT gateway replaced
                  uint16_t[::1] nat_l4=None,     # OUT ... and its TCP/UDP port or ICMP echo id
                  ) -> None:
    """Forward every frame of the batch; releases the GIL.  With the nat_* arrays (a snapshot with NAT
    gateways), they are filled with -1 / 0 and the NAT step of a stateful pass writes what it did to each
    frame it handles (docs/flow-logs.md "Through a NAT gateway"); without a FlowTable no frame is handled."""
    cdef int64_t n = offsets.shape[0] - 1
    cdef int64_t nd = data.shape[0]
    cdef int64_t nchunks, c, lo, hi
    cdef uint8_t* base
    cdef const FwdTables* t = &tables.t
    cdef StateView sv
    cdef FtView* pv = &sv.ft
    cdef int mode = 0
    cdef int64_t now_step = 0
    cdef const int64_t* pnow = NULL
    if n <= 0:
        return
    if port.shape[0] < n or action.shape[0] < n or reason.shape[0] < n or egress.shape[0] < n \
            or route.shape[0] < n:
        raise ValueError(f"forward_batch: port/output arrays shorter than {n} frames")
    sv.out.gw = NULL
    sv.out.g = -1                                      # no NAT gateway's constants cached yet
    if nat_gw is not None or nat_dir is not None or nat_ip is not None or nat_l4 is not None:
        if nat_gw is None or nat_dir is None or nat_ip is None or nat_l4 is None:
            raise ValueError("forward_batch: nat_gw, nat_dir, nat_ip and nat_l4 go together")
        if nat_gw.shape[0] < n or nat_dir.shape[0] < n or nat_ip.shape[0] < n or nat_l4.shape[0] < n:
            raise ValueError(f"forward_batch: nat_* arrays shorter than {n} frames")
        sv.out.gw = &nat_gw[0]
        sv.out.dir = &nat_dir[0]
        sv.out.ip = &nat_ip[0]
        sv.out.l4 = &nat_l4[0]
        memset(sv.out.gw, 0xFF, n * sizeof(int32_t))     # -1: no NAT gateway
        memset(sv.out.dir, 0, n * sizeof(uint8_t))
        memset(sv.out.ip, 0, n * sizeof(uint32_t))
        memset(sv.out.l4, 0, n * sizeof(uint16_t))
    if not t.filters and state is not None and tables.has_nat:
        # the routing view with a FlowTable: only NAT gateways use it (nat_plain, one thread)
        if now is None or (now.shape[0] != n and now.shape[0] != 1):
            raise ValueError(f"forward_batch: state needs now (1 or {n} values)")
        now_step = 1 if now.shape[0] == n and n > 1 else 0
        pnow = &now[0]
        ft_view_init(&sv.ft, state)
        nat_view_init(&sv.nat, state._nat_region())
        sv.has_nat = 1
        mode = 3
        n_threads = 1
    if t.filters:
        mode = 1
        if state is not None:
            mode = 2
            if now is None or (now.shape[0] != n and now.shape[0] != 1):
                raise ValueError(f"forward_batch: state needs now (1 or {n} values)")
            now_step = 1 if now.shape[0] == n and n > 1 else 0
            pnow = &now[0]
            ft_view_init(&sv.ft, state)
            sv.has_nat = 0
            if tables.has_nat:
                nat_view_init(&sv.nat, state._nat_region())    # made once, before the pass
                sv.has_nat = 1
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
    if mode == 2 and n_threads > 1:
        _forward_state_threads(t, base, nd, po, pp, n, pa, pr, pe, prt, n_threads, pv, pnow, now_step)
        return
    with nogil:
        if n_threads == 1:
            for c in range(nchunks):
                lo = c * FV_CHUNK
                hi = lo + FV_CHUNK if lo + FV_CHUNK < n else n
                if mode == 0:
                    run_chunk(<ModePlain*>NULL, t, base, nd, po, pp, lo, hi, pa, pr, pe, prt,
                              NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0)
                elif mode == 3:
                    run_chunk(<ModePlain*>NULL, t, base, nd, po, pp, lo, hi, pa, pr, pe, prt,
                              NULL, NULL, NULL, NULL, NULL, pv, pnow, now_step)
                elif mode == 1:
                    run_chunk(<ModeFilt*>NULL, t, base, nd, po, pp, lo, hi, pa, pr, pe, prt,
                              NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0)
                else:
                    run_chunk(<ModeState*>NULL, t, base, nd, po, pp, lo, hi, pa, pr, pe, prt,
                              NULL, NULL, NULL, NULL, NULL, pv, pnow, now_step)
        elif mode == 0:
            for c in prange(nchunks, num_threads=n_threads, schedule="dynamic", chunksize=8):
                lo = c * FV_CHUNK
                hi = lo + FV_CHUNK if lo + FV_CHUNK < n else n
                run_chunk(<ModePlain*>NULL, t, base, nd, po, pp, lo, hi, pa, pr, pe, prt, NULL, NULL, NULL, NULL, NULL,
                          NULL, NULL, 0)
        else:
            for c in prange(nchunks, num_threads=n_threads, schedule="dynamic", chunksize=8):
                lo = c * FV_CHUNK
                hi = lo + FV_CHUNK if lo + FV_CHUNK < n else n
                run_chunk(<ModeFilt*>NULL, t, base, nd, po, pp, lo, hi, pa, pr, pe, prt, NULL, NULL, NULL, NULL, NULL,
                          NULL, NULL, 0)


cdef int _forward_state_threads(const FwdTables* t, uint8_t* base, int64_t nd, const int64_t* po,
                                const int32_t* pp, int64_t n,
                                uint8_t* pa, uint8_t* pr, int32_t* pe, int32_t* prt,   # OUT [0:n]
                                int n_threads, FtView* v, const int64_t* pnow, int64_t now_step) except -1:
    """ModeState on several threads, as a pipeline: n_threads - 1 producers run the stateless part of the
    chunks (taken in order from a shared counter; contexts and FlowTable keys parked in per-batch
    buffers), and one consumer makes the table steps chunk after chunk in frame order as each chunk is
    ready (then its rewrites and commits), so the serial table work overlaps the parallel work instead
    of following it; while its next chunk is not ready the consumer runs an untaken chunk's stateless
    part itself, so no core idles while chunks remain.  The table steps stay serial and in frame order:
    the result is exactly that of one thread.

    No deadlock with fewer threads than roles: roles are statically split into contiguous blocks, the
    consumer is the last role, and a producer never waits, so any thread reaching the consumer role
    either runs it after every producer role of its own block or waits only for other threads'."""
    cdef int64_t nchunks = (n + FV_CHUNK - 1) // FV_CHUNK
    cdef int64_t c, k, lo, hi, role, spins, nc
    cdef int64_t roles = n_threads
    park_pk = np.empty(n * sizeof(Pkt) + 64, dtype=np.uint8)
    park_fx = np.empty(n * sizeof(Flt) + 64, dtype=np.uint8)
    park_ct = np.empty(n, dtype=np.int32)
    park_ke = np.empty(n * sizeof(FtPkt) + 64, dtype=np.uint8)    # the table keys, made by the producers
    park_ki = np.empty(n * sizeof(FtPkt) + 64, dtype=np.uint8)
    counts = np.full(nchunks + 1, -1, dtype=np.int64)     # [c]: -1 until chunk c is parked; [nchunks]: next chunk
    cdef uint8_t[::1] b_pk = park_pk
    cdef uint8_t[::1] b_fx = park_fx
    cdef int32_t[::1] b_ct = park_ct
    cdef uint8_t[::1] b_ke = park_ke
    cdef uint8_t[::1] b_ki = park_ki
    cdef int64_t[::1] b_n = counts
    cdef Pkt* ppk = <Pkt*>(&b_pk[0] + ((-<size_t>&b_pk[0]) % 64))
    cdef Flt* pfx = <Flt*>(&b_fx[0] + ((-<size_t>&b_fx[0]) % 64))
    cdef int32_t* pct = &b_ct[0]
    cdef FtPkt* pke = <FtPkt*>(&b_ke[0] + ((-<size_t>&b_ke[0]) % 64))
    cdef FtPkt* pki = <FtPkt*>(&b_ki[0] + ((-<size_t>&b_ki[0]) % 64))
    cdef int64_t* pn = &b_n[0]
    pn[nchunks] = 0
    with nogil:
        for role in prange(roles, num_threads=n_threads, schedule="static"):
            if role < roles - 1:
                # producer: the stateless part of the next chunk, parked, then published (release)
                while True:
                    c = fv_fetch_add(&pn[nchunks], 1)
                    if c >= nchunks:
                        break
                    lo = c * FV_CHUNK
                    hi = lo + FV_CHUNK if lo + FV_CHUNK < n else n
                    nc = run_chunk(<ModeState*>NULL, t, base, nd, po, pp, lo, hi, pa, pr, pe, prt,
                                   ppk + lo, pfx + lo, pct + lo, pke + lo, pki + lo, NULL, pnow, now_step)
                    fv_store_rel(&pn[c], nc)
            else:
                # consumer: the table steps chunk by chunk in frame order; while chunk c is not ready
                # it runs chunks no producer has taken (so one thread alone, or slow producers, finish)
                for c in range(nchunks):
                    spins = 0
                    while fv_load_acq(&pn[c]) < 0:
                        if fv_load_acq(&pn[nchunks]) < nchunks:
                            # chunk c is not ready: rather than wait, run the next chunk nobody has taken
                            # (c itself, or a later one while a producer finishes c), so the stateless
                            # work is shared whenever the table pass would idle
                            k = fv_fetch_add(&pn[nchunks], 1)
                            if k < nchunks:
                                lo = k * FV_CHUNK
                                hi = lo + FV_CHUNK if lo + FV_CHUNK < n else n
                                nc = run_chunk(<ModeState*>NULL, t, base, nd, po, pp, lo, hi, pa, pr, pe, prt,
                                               ppk + lo, pfx + lo, pct + lo, pke + lo, pki + lo, NULL, pnow, now_step)
                                fv_store_rel(&pn[k], nc)
                        else:
                            fv_wait_hint(spins)
                            spins = spins + 1
                    lo = c * FV_CHUNK
                    nc = fv_load_acq(&pn[c])
                    ct_pass(t, v, ppk + lo, pfx + lo, pct + lo, nc, lo, pnow, now_step, pke + lo, pki + lo)
                    ct_finish(t, ppk + lo, pct + lo, nc, lo, pa, pr, pe, prt)
    return 0
