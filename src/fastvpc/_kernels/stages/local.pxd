# Stage "local": docs/forwarding-model.md step 18 (a destination inside the sender's own subnet is
# delivered without a route lookup).
#
# IN   p.h.dst, p.er, p.hv
# OUT  p.table (LPM table id for NEXT_ROUTE); next: NEXT_REWRITE (DELIVER), NEXT_ROUTE, or a drop

from libc.stdint cimport uint32_t, int32_t

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.pkt cimport *


cdef inline int stage_local(const FwdTables* t, Pkt* p) noexcept nogil:
    cdef const SubnetRec* sr = &t.subnets[p.er.subnet]
    cdef uint32_t h
    if (p.h.dst & sr.mask) == sr.base:
        if p.hv != FV_HV_NONE and tag_of(p.hv) == FV_HV_ENI:
            return deliver_to(p, <int32_t>(p.hv & FV_HV_INDEX_MASK))
        if t.edge:                              # a NAT gateway's private IP: the reply path (stages/nat.pxd)
            h = ht_get(&t.edt, edge_key(HK_NATIP, <uint32_t>sr.vpc, p.h.dst))
            if h != FV_HV_NONE:
                return nat_needs(p, 2 * h + 1)
        return drop(p, R_NO_SUCH_HOST)
    # step 19 follows the batch LPM
    p.table = sr.table
    return goto(p, NEXT_ROUTE)
