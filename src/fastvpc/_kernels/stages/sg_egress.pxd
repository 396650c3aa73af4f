# Stage "sg_egress": the sender ENI's security groups, direction egress, peer = the destination IP
# (DESIGN.md §5, /work/filters-spec.md; rows #45-#48 of vpc-behaviour.md).  Every frame that passes
# `router` meets it, except frames to the sender VPC's Amazon DNS resolver (primary CIDR base + 2,
# #50), which no filter stage sees.
#
# IN   p.h (IPv4; L4 parsed here, acl.pxd acl_parse), p.port, p.er
# OUT  x.l4, x.s_eni, x.ct (CT_FILT; stateful: CT_E; to the resolver, stateful: CT_N alone), x.adm_e (stateful: FT_ADMIT_LATER, the rules wait);
#      next: NEXT_LOCAL, or drop SG_EGRESS (stateless only: with a FlowTable the verdict waits for the
#      table step in the driver's in-order pass, since a tracked flow is admitted whatever the rules say)

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.headers cimport *
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.pkt cimport *
from fastvpc._kernels.acl cimport *
from fastvpc.dataplane._flowtable cimport FT_ADMIT_LATER


cdef inline int stage_sg_egress(const FwdTables* t, Pkt* p, Flt* x, bint stateful) noexcept nogil:
    cdef const FiltRec* fr
    cdef uint8_t a
    if p.h.dst == t.subnet_filt[p.er.subnet].dns:
        if stateful:
            # not filtered, but a route may still send it to a NAT gateway, whose step (and the filters
            # after its hop) is the table pass's: it waits in frame order with the others (CT_N)
            acl_parse(p, x)
            x.ct = CT_N
        else:
            x.ct = 0
        return goto(p, NEXT_LOCAL)
    fr = sender_filt(t, p.port)
    acl_parse(p, x)
    x.s_eni = fr.eni
    if p.h.frag & 0x1FFF:
        # a non-first fragment carries no L4 header: the groups judge its datagram by the first fragment
        # (rules or a tracked flow), and pass the rest, which a host reassembles only with that first one;
        # no table step (docs/forwarding-model.md §3b).  Stateful, it still waits in frame order for a NAT
        # step a route may lead to (CT_N); the network ACLs (stateless) still judge it.
        x.ct = (CT_FILT | CT_N | CT_FRAG) if stateful else (CT_FILT | CT_FRAG)
        return goto(p, NEXT_LOCAL)
    if stateful:
        # the rules are evaluated by the driver's table pass, and only for a packet of no tracked
        # flow (ct_pass: FT_ADMIT_LATER / FT_LATER): a tracked flow is admitted whatever they say
        x.adm_e = FT_ADMIT_LATER
        x.ct = CT_FILT | CT_E
        return goto(p, NEXT_LOCAL)
    a = sg_eval(t, fr.sgset, DIR_EGRESS, p.h.proto, p.h.dst, x.l4)
    x.ct = CT_FILT
    if a == ADM_DENY:
        return drop(p, R_SG_EGRESS)
    return goto(p, NEXT_LOCAL)
