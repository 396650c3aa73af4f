# Stage "nacl_ingress": for a frame delivered to an ENI in another subnet than the sender's (routed
# through local, a peering or an ENI target), the receiving subnet's network ACL, direction ingress,
# ip = the source IP, port = the destination port.
#
# IN   p.action (DELIVER), p.out_eni, p.er.subnet, p.h.src, p.h.proto, x.l4, x.ct
# OUT  next: NEXT_REWRITE, or drop NACL_INGRESS

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.pkt cimport *
from fastvpc._kernels.acl cimport *


cdef inline int stage_nacl_ingress(const FwdTables* t, Pkt* p, Flt* x) noexcept nogil:
    cdef int32_t rs
    if not (x.ct & CT_FILT):
        return goto(p, NEXT_REWRITE)
    rs = t.deliv[p.out_eni].subnet
    if rs == p.er.subnet:
        return goto(p, NEXT_REWRITE)
    if not nacl_eval(t, t.subnet_filt[rs].nacl, DIR_INGRESS, p.h.proto, p.h.src, x.l4):
        return drop(p, R_NACL_INGRESS)
    return goto(p, NEXT_REWRITE)
