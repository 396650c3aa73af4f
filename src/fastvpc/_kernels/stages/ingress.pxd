# Stage "ingress": docs/forwarding-model.md steps 1-3 and 9-14 (port, Ethernet, IPv4 validity, group
# MAC, broadcast, multicast, source/destination check, destination MAC).
#
# IN   p.er (ingress record of p.port), p.f / p.L, p.hv (hash value of (ingress VPC, IPv4 dst))
# OUT  p.h (parsed headers, headers.pxd), p.route = -1; next: NEXT_ARP, NEXT_ROUTER, NEXT_EDGE (not an
#      ENI's port, compile(edge=True)), or a drop

from libc.stdint cimport uint8_t, uint32_t, uint64_t

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.headers cimport *
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.pkt cimport *


cdef inline int stage_ingress(const FwdTables* t, Pkt* p) noexcept nogil:
    cdef const SubnetRec* sr
    cdef uint8_t fl
    cdef uint32_t src, dst, hm, hs
    cdef uint64_t dm
    p.route = -1
    # step 1: the port must be an ENI's
    if p.er.subnet < 0:
        if t.edge:
            return goto(p, NEXT_EDGE)     # a gateway's port, perhaps (stages/edge_ingress.pxd)
        return drop(p, R_UNKNOWN_PORT)
    fl = parse_headers(p.f, p.L, &p.h, 0)   # L4 parsed lazily by the stages that need it
    # steps 2-3: Ethernet
    if not (fl & CF_ETH):
        return drop(p, R_MALFORMED)
    if p.h.ethertype == ETHERTYPE_ARP:
        return goto(p, NEXT_ARP)
    if p.h.ethertype != ETHERTYPE_IPV4:
        return drop(p, R_NON_IPV4)
    # step 9: IPv4 validity
    if (fl & CF_IPV4_OK) != CF_IPV4_OK:
        return drop(p, R_MALFORMED)
    # step 10
    if fl & CF_GROUP_MAC:
        return drop(p, R_L2_BROADCAST)
    sr = &t.subnets[p.er.subnet]
    src = p.h.src
    dst = p.h.dst
    # step 11
    if dst == 0xFFFFFFFFu:
        return drop(p, R_BROADCAST)
    if p.hv != FV_HV_NONE and tag_of(p.hv) == FV_HV_BCAST:
        return drop(p, R_BROADCAST)
    # step 12
    if (dst >> 28) == 0xE:
        return drop(p, R_MULTICAST)
    # step 13: src must be an IP of this ENI: the ENI owning it has this port (ports are unique)
    if (p.er.mac >> 63) and src != p.er.ip0:
        hs = ht_get(&t.ipt, ip_key(<uint32_t>sr.vpc, src))
        if hs == FV_HV_NONE or tag_of(hs) != FV_HV_ENI or t.deliv[hs & FV_HV_INDEX_MASK].port != p.port:
            return drop(p, R_SRC_DST_CHECK)
    # step 14: addressed to the router or to an ENI of the subnet
    dm = p.h.dst_mac
    if dm != sr.gwmac:
        hm = ht_get(&t.mact, mac_key(dm))
        if hm == FV_HV_NONE or tag_of(hm) != FV_HV_ENI or t.enis[hm & FV_HV_INDEX_MASK].subnet != p.er.subnet:
            return drop(p, R_UNKNOWN_MAC)
    return goto(p, NEXT_ROUTER)
