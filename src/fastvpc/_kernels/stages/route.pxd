# Stage "route": docs/forwarding-model.md step 19, after the batch LPM: act on the matched route's
# target.  Decides only; the MACs of a DELIVER are rewritten by the rewrite stage.
#
# IN   p.route (global route index from the LPM, -1: no match), p.h.dst, p.hv
# OUT  next: NEXT_REWRITE (DELIVER; FORWARD through an internet gateway: the translation), NEXT_COMMIT
#      (FORWARD), or a drop; p.route kept for every verdict

from libc.stdint cimport uint32_t

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.pkt cimport *
from fastvpc._kernels.stages.edge_egress cimport stage_edge_egress


cdef inline int stage_route(const FwdTables* t, Pkt* p) noexcept nogil:
    cdef const RouteRec* rr
    cdef const EniRec* tr
    cdef uint32_t h2, dst = p.h.dst
    cdef int32_t tgt
    if p.route < 0:
        return drop(p, R_NO_ROUTE)
    rr = &t.routes[p.route]
    if rr.kind == RK_LOCAL:
        if p.hv != FV_HV_NONE and tag_of(p.hv) == FV_HV_ENI:
            return deliver_to(p, <int32_t>(p.hv & FV_HV_INDEX_MASK))
        if t.edge and p.er.subnet >= 0:         # a NAT gateway's private IP: the reply path (stages/nat.pxd)
            h2 = ht_get(&t.edt, edge_key(HK_NATIP, <uint32_t>t.subnets[p.er.subnet].vpc, dst))
            if h2 != FV_HV_NONE:
                return nat_needs(p, 2 * h2 + 1)
        return drop(p, R_NO_SUCH_HOST)
    if rr.kind == RK_FORWARD:
        return forward_to(p, rr.port)
    if rr.kind == RK_ENI:
        tgt = rr.arg
        tr = &t.enis[tgt]
        if tr.sdc and dst != tr.ip0 and ht_get(&t.ipt, ip_key(tr.vpc, dst)) != (FV_HV_ENI | <uint32_t>tgt):
            return drop(p, R_SRC_DST_CHECK)
        return deliver_to(p, tgt)
    if rr.kind == RK_PEERING:
        h2 = ht_get(&t.ipt, ip_key(<uint32_t>rr.arg, dst))
        if h2 != FV_HV_NONE and tag_of(h2) == FV_HV_ENI:
            return deliver_to(p, <int32_t>(h2 & FV_HV_INDEX_MASK))
        return drop(p, R_NO_SUCH_HOST)
    if rr.kind == RK_IGW:                   # compile(edge=True) only
        return stage_edge_egress(t, p, rr.port)
    if rr.kind == RK_NAT:                   # compile(edge=True) only: the NAT gateway (stages/nat.pxd)
        return nat_needs(p, 2 * <uint32_t>rr.arg)
    return drop(p, R_BLACKHOLE)
