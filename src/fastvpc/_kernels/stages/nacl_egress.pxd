# Stage "nacl_egress": the sender subnet's network ACL, direction egress, ip = the destination IP,
# port = the destination port -- only when the destination is outside the sender's subnet (the frame
# will be routed; within a subnet no NACL applies, #55).  Stateless (#54), first match final (#52).
#
# IN   p.h.dst, p.h.proto, p.er, x.l4, x.ct
# OUT  next: NEXT_LOCAL, or drop NACL_EGRESS

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.pkt cimport *
from fastvpc._kernels.acl cimport *


cdef inline int stage_nacl_egress(const FwdTables* t, Pkt* p, Flt* x) noexcept nogil:
    cdef const SubnetRec* sr
    if not (x.ct & CT_FILT):
        return goto(p, NEXT_LOCAL)
    sr = &t.subnets[p.er.subnet]
    if (p.h.dst & sr.mask) == sr.base:
        return goto(p, NEXT_LOCAL)
    if not nacl_eval(t, t.subnet_filt[p.er.subnet].nacl, DIR_EGRESS, p.h.proto, p.h.dst, x.l4):
        return drop(p, R_NACL_EGRESS)
    return goto(p, NEXT_LOCAL)
