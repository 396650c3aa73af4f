# Stage "edge_ingress" (docs/edge.md §3): a frame entering on the port of an internet, VPN or transit
# gateway (compile(edge=True); stage_ingress hands it over instead of UNKNOWN_PORT).
#   * the parsing checks of any frame (MALFORMED, NON_IPV4); an ARP request (not a probe, not
#     gratuitous) is answered with the gateway's MAC, built here (the rewrite stage's ARP reply reads
#     the sender's subnet, which an outside frame has not); other ARP ARP_IGNORED;
#   * IPv4: group MAC L2_BROADCAST, 255.255.255.255 BROADCAST, multicast MULTICAST, a destination MAC
#     other than the gateway's UNKNOWN_MAC;
#   * internet gateway: the destination must be a public IP associated in its VPC, else
#     NO_SUCH_PUBLIC_IP; p.h.dst := the private IP (the frame is rewritten by the rewrite stage);
#     VPN / transit gateway: the VPC whose CIDR holds the destination (a transit gateway: the first
#     attachment in order), else NO_ROUTE; a subnet broadcast address BROADCAST;
#   * routing: the gateway's route table (one LPM lookup; stage_route acts on the target), else the
#     VPC's local routes (the owning ENI or NO_SUCH_HOST).
# The driver then runs nacl_ingress and sg_ingress on a DELIVER (the filters of an outside frame are
# the receiver's only) and the rewrite.
#
# IN   p.port, p.f / p.L
# OUT  p.h, p.hv (of the VPC and the private destination), p.route, the pending verdict; p.er.subnet
#      stays -1 (the rewrite stage's mark of an outside frame); next: NEXT_REWRITE (DELIVER, FORWARD),
#      NEXT_COMMIT (ARP REPLY, written here) or a drop

from libc.stdint cimport uint8_t, uint32_t, uint64_t, int32_t, int64_t

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.headers cimport *
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.pkt cimport *
from fastvpc._kernels.stages.route cimport stage_route
from fastvpc._kernels.stages.rewrite cimport arp_reply
from fastvpc.lpm._lookup cimport rts_lookup_one


cdef inline int stage_edge_ingress(const FwdTables* t, Pkt* p) noexcept nogil:
    cdef uint32_t g = ht_get(&t.edt, edge_key(HK_GWPORT, 0, <uint32_t>p.port))
    cdef const GwRec* gw
    cdef const EdgeCidr* c
    cdef uint8_t fl
    cdef uint32_t dst, priv, k, tab, val
    cdef int32_t vpc
    cdef uint64_t r
    if g == FV_HV_NONE:
        return drop(p, R_UNKNOWN_PORT)
    gw = &t.gws[g]
    fl = parse_headers(p.f, p.L, &p.h, 0)
    if not (fl & CF_ETH):
        return drop(p, R_MALFORMED)
    if p.h.ethertype == ETHERTYPE_ARP:
        if not (fl & CF_ARP):
            return drop(p, R_MALFORMED)
        if p.h.arp_op != 1 or p.h.src == 0 or p.h.src == p.h.dst:
            return drop(p, R_ARP_IGNORED)
        arp_reply(gw.mac, p)
        p.action = ACT_REPLY
        p.reason = R_NONE
        p.out_port = p.port
        return NEXT_COMMIT
    if p.h.ethertype != ETHERTYPE_IPV4:
        return drop(p, R_NON_IPV4)
    if (fl & CF_IPV4_OK) != CF_IPV4_OK:
        return drop(p, R_MALFORMED)
    if fl & CF_GROUP_MAC:
        return drop(p, R_L2_BROADCAST)
    dst = p.h.dst
    if dst == 0xFFFFFFFFu:
        return drop(p, R_BROADCAST)
    if (dst >> 28) == 0xE:
        return drop(p, R_MULTICAST)
    if p.h.dst_mac != gw.mac:
        return drop(p, R_UNKNOWN_MAC)
    if gw.kind == GW_IGW:
        vpc = gw.vpc
        priv = ht_get(&t.edt, edge_key(HK_PUB_IN, <uint32_t>vpc, dst))
        if priv == FV_HV_NONE:
            return drop(p, R_NO_SUCH_PUBLIC_IP)
        dst = priv
        p.h.dst = priv
        p.hv = ht_get(&t.ipt, ip_key(<uint32_t>vpc, dst))
    else:
        vpc = -1
        for k in range(gw.n):
            c = &t.gw_cidrs[gw.off + k]
            if (dst & c.mask) == c.base:
                vpc = c.vpc
                break
        if vpc < 0:
            return drop(p, R_NO_ROUTE)
        p.hv = ht_get(&t.ipt, ip_key(<uint32_t>vpc, dst))
        if p.hv != FV_HV_NONE and tag_of(p.hv) == FV_HV_BCAST:
            return drop(p, R_BROADCAST)
    # a NAT gateway's private IP: the reply path (stages/nat.pxd), where the VPC's local routes take the
    # frame there: with no gateway route table, or by its `local` route.  The table decides first, so
    # its route for the NAT gateway's subnet to a firewall ENI sends the replies through the firewall
    # (AWS Network Firewall's NAT gateway design), which routes them on to the NAT gateway.
    k = ht_get(&t.edt, edge_key(HK_NATIP, <uint32_t>vpc, dst)) if t.edge else FV_HV_NONE
    if gw.table < 0:
        if k != FV_HV_NONE:
            p.route = -1
            return nat_needs(p, 2 * k + 1)
        if p.hv != FV_HV_NONE and tag_of(p.hv) == FV_HV_ENI:
            deliver_to(p, <int32_t>(p.hv & FV_HV_INDEX_MASK))
            return NEXT_REWRITE
        return drop(p, R_NO_SUCH_HOST)
    tab = <uint32_t>gw.table
    val = rts_lookup_one(&t.lpm, tab, dst)
    p.route = -1
    if val != 0xFFFFFFFFu and tab < <uint64_t>t.n_tables:
        r = <uint64_t>t.table_base[tab] + val
        if r < <uint64_t>t.n_routes:
            p.route = <int32_t>r
    if k != FV_HV_NONE and p.route >= 0 and t.routes[p.route].kind == RK_LOCAL:
        return nat_needs(p, 2 * k + 1)
    if stage_route(t, p) == NEXT_COMMIT and p.action == ACT_FORWARD:
        return NEXT_REWRITE        # to a Gateway Load Balancer endpoint: the translation is written there
    return NEXT_REWRITE if p.action == ACT_DELIVER else NEXT_COMMIT
