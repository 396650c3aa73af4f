# Stage "sg_ingress": for a frame delivered to an ENI, the receiving ENI's security groups, direction
# ingress, peer = the source IP.
#
# IN   p.action (DELIVER), p.out_eni, p.h.src, p.h.proto, x.l4, x.ct (CT_FRAG: passed)
# OUT  x.adm_i (FT_ADMIT_LATER), x.ct |= CT_I (stateful); next: NEXT_REWRITE, or drop SG_INGRESS (stateless only; with a
#      FlowTable the driver's in-order pass decides after the table step)

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.pkt cimport *
from fastvpc._kernels.acl cimport *
from fastvpc.dataplane._flowtable cimport FT_ADMIT_LATER


cdef inline int stage_sg_ingress(const FwdTables* t, Pkt* p, Flt* x, bint stateful) noexcept nogil:
    cdef uint8_t a
    if not (x.ct & CT_FILT) or (x.ct & CT_FRAG):     # a non-first fragment: see sg_egress.pxd
        return goto(p, NEXT_REWRITE)
    if stateful:
        # evaluated in the table pass, only when the receiver tracks no live flow of the packet
        x.adm_i = FT_ADMIT_LATER
        x.ct |= CT_I
        return goto(p, NEXT_REWRITE)
    a = sg_eval(t, t.eni_filt[p.out_eni].sgset, DIR_INGRESS, p.h.proto, p.h.src, x.l4)
    if a == ADM_DENY:
        return drop(p, R_SG_INGRESS)
    return goto(p, NEXT_REWRITE)
