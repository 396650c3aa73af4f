# Stage "edge_egress" (docs/edge.md §2): a frame whose route target is an internet gateway leaves with
# its source translated 1:1 to the public IP of its address (an ENI's primary IP with an Elastic IP, a
# NAT gateway's private IP with one), else DROP(NO_PUBLIC_IP).  Called by stage_route for RK_IGW routes,
# which only compile(edge=True) emits.  Decides only: the translation is written by the rewrite stage
# (so a frame a later table step drops, with a FlowTable, leaves untouched).
#
# IN   p.h.src, p.er (the sender's subnet -> VPC), the route's port
# OUT  FORWARD with p.out_eni := the public IP (bits of a uint32: a FORWARD has no receiving ENI), next
#      NEXT_REWRITE; or drop NO_PUBLIC_IP

from libc.stdint cimport uint32_t, uint64_t, int32_t

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.pkt cimport *


cdef inline int stage_edge_egress(const FwdTables* t, Pkt* p, int32_t port) noexcept nogil:
    cdef uint32_t pub = ht_get(&t.edt, edge_key(HK_PUB_OUT, <uint32_t>t.subnets[p.er.subnet].vpc, p.h.src))
    if pub == FV_HV_NONE:
        return drop(p, R_NO_PUBLIC_IP)
    p.action = ACT_FORWARD
    p.reason = R_NONE
    p.out_port = port
    p.out_eni = <int32_t>pub
    return NEXT_REWRITE
