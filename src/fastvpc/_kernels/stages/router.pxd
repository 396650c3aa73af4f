# Stage "router": docs/forwarding-model.md steps 15-17 (the subnet's own router address: ICMP echo;
# another subnet's router; link-local services).
#
# IN   p.h (IPv4 fields; parses L4 with parse_l4 for the echo check), p.er, p.hv
# OUT  next: NEXT_REWRITE (echo REPLY), NEXT_LOCAL, or a drop

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.headers cimport *
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.pkt cimport *


cdef inline int stage_router(const FwdTables* t, Pkt* p) noexcept nogil:
    cdef const SubnetRec* sr = &t.subnets[p.er.subnet]
    # step 15: an ICMP echo request (not a fragment, ICMP header complete) to the own router
    if p.h.dst == sr.router:
        if (p.h.proto == IPPROTO_ICMP and not (p.h.flags & CF_FRAGMENT) and parse_l4(p.f, &p.h)
                and p.h.icmp_type == 8 and p.h.icmp_code == 0):
            return reply(p)
        return drop(p, R_ROUTER_UNSUPPORTED)
    # step 16
    if p.hv != FV_HV_NONE and tag_of(p.hv) == FV_HV_ROUTER:
        return drop(p, R_ROUTER_NOT_OWN_SUBNET)
    # step 17
    if (p.h.dst & 0xFFFFFC00u) == 0xA9FEA800u:
        return drop(p, R_LINK_LOCAL_SERVICE)
    return goto(p, NEXT_LOCAL)
