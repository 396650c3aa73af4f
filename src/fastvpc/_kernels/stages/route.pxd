# Stage "route": docs/forwarding-model.md step 19, after the batch LPM: act on the matched route's
# target.  Decides only; the MACs of a DELIVER are rewritten by the rewrite stage.
#
# IN   p.route (global route index from the LPM, -1: no match), p.h.dst, p.hv
# OUT  next: NEXT_REWRITE (DELIVER; FORWARD through an internet gateway: the translation), NEXT_COMMIT
#      (FORWARD), or a drop; p.route kept for every verdict
#
# routed_within_subnet(): whether a destination's route leads to an ENI of the subnet itself (for the
# egress NACL, which is decided before the batch LPM: stages/nacl_egress.pxd, nat.pxd nat_route_on).

from libc.stdint cimport uint32_t, uint64_t, int32_t

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.pkt cimport *
from fastvpc._kernels.stages.edge_egress cimport stage_edge_egress
from fastvpc.lpm._lookup cimport rts_lookup_one


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


cdef inline bint routed_within_subnet(const FwdTables* t,
                                      int32_t sub,       # IN  the subnet the frame is routed from (index)
                                      uint32_t dst,      # IN  its destination, outside the subnet
                                      ) noexcept nogil:
    """Whether ``sub``'s route table sends ``dst`` to an ENI of ``sub`` itself (a middlebox in the subnet):
    the frame then never leaves the subnet, so no NACL applies to it (#55).  A lookup of its own, not the
    driver's batch LPM: its caller, the egress NACL, decides before the route (an applicable NACL's deny
    comes before the route's own verdicts, DESIGN.md §5), and asks only when the NACL denies."""
    cdef uint32_t tab = t.subnets[sub].table
    cdef uint32_t val
    cdef uint64_t r
    cdef const RouteRec* rr
    if tab >= <uint64_t>t.n_tables:
        return 0
    val = rts_lookup_one(&t.lpm, tab, dst)
    if val == 0xFFFFFFFFu:
        return 0
    r = <uint64_t>t.table_base[tab] + val
    if r >= <uint64_t>t.n_routes:
        return 0
    rr = &t.routes[r]
    return rr.kind == RK_ENI and t.enis[rr.arg].subnet == sub
