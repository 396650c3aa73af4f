# Stage "nacl_egress": the sender subnet's network ACL, direction egress, ip = the destination IP,
# port = the destination port -- only where the frame leaves the sender's subnet (#55): not when the
# destination is inside the subnet, nor when the subnet's route table sends it to an ENI of the subnet
# itself (a middlebox in the subnet: the frame stays inside).  Stateless (#54), first match final (#52).
#
# The route is known only after the batch LPM, but an applicable NACL's deny comes before the route's
# verdicts (NO_ROUTE, BLACKHOLE, ...; DESIGN.md §5): so the stage evaluates the NACL first and, only
# when it denies, looks the route up itself (route.pxd routed_within_subnet).  A frame the NACL admits
# costs nothing more; a denied frame routed to a middlebox of its own subnet goes on (local, then the
# batch LPM again, route; nacl_ingress skips it too: the receiver is in the sender's subnet).
#
# IN   p.h.dst, p.h.proto, p.er, x.l4, x.ct
# OUT  next: NEXT_LOCAL, or drop NACL_EGRESS

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.pkt cimport *
from fastvpc._kernels.acl cimport *
from fastvpc._kernels.stages.route cimport routed_within_subnet


cdef inline int stage_nacl_egress(const FwdTables* t, Pkt* p, Flt* x) noexcept nogil:
    cdef const SubnetRec* sr
    if not (x.ct & CT_FILT):
        return goto(p, NEXT_LOCAL)
    sr = &t.subnets[p.er.subnet]
    if (p.h.dst & sr.mask) == sr.base:
        return goto(p, NEXT_LOCAL)
    if not nacl_eval(t, t.subnet_filt[p.er.subnet].nacl, DIR_EGRESS, p.h.proto, p.h.dst, x.l4):
        if not routed_within_subnet(t, p.er.subnet, p.h.dst):   # on a deny only: see the top
            return drop(p, R_NACL_EGRESS)
    return goto(p, NEXT_LOCAL)
