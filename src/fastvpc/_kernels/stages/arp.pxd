# Stage "arp": docs/forwarding-model.md steps 4-8 (ARP requests answered by the VPC, never learned).
#
# IN   p.h (CF_ARP, arp_op, src = spa, dst = tpa), p.er
# OUT  p.out_eni (the ENI whose MAC the reply announces, -1: the gateway's); next: NEXT_REWRITE (REPLY) or a drop

from libc.stdint cimport uint32_t, int32_t

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.headers cimport *
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.pkt cimport *


cdef inline int stage_arp(const FwdTables* t, Pkt* p) noexcept nogil:
    cdef const SubnetRec* sr = &t.subnets[p.er.subnet]
    cdef uint32_t spa, tpa, h
    # step 4
    if not (p.h.flags & CF_ARP):
        return drop(p, R_MALFORMED)
    # step 5
    if p.h.arp_op != 1:
        return drop(p, R_ARP_IGNORED)
    # step 6: probes and gratuitous ARP
    spa = p.h.src
    tpa = p.h.dst
    if spa == 0 or spa == tpa:
        return drop(p, R_ARP_IGNORED)
    # step 7: the answer
    if t.single_mac or tpa == sr.router:
        p.out_eni = -1
    else:
        h = ht_get(&t.ipt, ip_key(<uint32_t>sr.vpc, tpa))
        if h == FV_HV_NONE or tag_of(h) != FV_HV_ENI:
            return drop(p, R_ARP_NO_ENTRY)
        p.out_eni = <int32_t>(h & FV_HV_INDEX_MASK)
    # step 8: REPLY, built by the rewrite stage
    return reply(p)
