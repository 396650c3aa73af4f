# Stage "rewrite": docs/forwarding-model.md §4, the only stage that writes the frame.
#   DELIVER  eth.dst := the receiving ENI's MAC; eth.src := the sender's MAC (same subnet) or the
#            receiving subnet's gateway MAC; the egress port is the receiving ENI's
#   REPLY    ARP reply (step 8) or ICMP echo reply (step 15), built in place
#   FORWARD  (compile(edge=True)) the internet gateway's 1:1 translations (edge.pxd)
#   others   frame untouched
#
# IN   p.action, p.out_eni (DELIVER; ARP REPLY: whose MAC, -1 the gateway's), p.h, p.er
# OUT  the frame; p.out_port (DELIVER); next: NEXT_COMMIT

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.bytes cimport *
from fastvpc._kernels.headers cimport *
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.pkt cimport *
from fastvpc._kernels.edge cimport xlate_addr


cdef inline void arp_reply(uint64_t m, Pkt* p) noexcept nogil:
    """Step 8: the request becomes the reply announcing MAC ``m``, bytes 0-41 only (L >= 42 checked
    by CF_ARP)."""
    cdef uint8_t* f = p.f
    cdef uint64_t esrc = rd48(f + 6)
    cdef uint64_t sha = rd48(f + 22)
    wr48(f, esrc)
    wr48(f + 6, m)
    f[20] = 0
    f[21] = 2
    wr48(f + 22, m)
    wr32(f + 28, p.h.dst)
    wr48(f + 32, sha)
    wr32(f + 38, p.h.src)


cdef inline void echo_reply(const SubnetRec* sr, Pkt* p) noexcept nogil:
    """Step 15: ICMP echo reply in place (lengths checked by CF_IPV4_OK and CF_L4: 14 + tl <= L,
    tl >= hl + 8)."""
    cdef uint8_t* f = p.f
    cdef int64_t hl = p.h.hl
    cdef int64_t tl = p.h.tl
    cdef uint8_t* ic = f + ETH_HLEN + hl
    cdef uint64_t esrc = rd48(f + 6)
    wr48(f, esrc)
    wr48(f + 6, sr.gwmac)
    wr32(f + 26, sr.router)
    wr32(f + 30, p.h.src)
    f[22] = 64
    f[24] = 0
    f[25] = 0
    wr16(f + 24, <uint16_t>(~csum_add(f + ETH_HLEN, hl) & 0xFFFF))
    ic[0] = 0
    ic[1] = 0
    ic[2] = 0
    ic[3] = 0
    wr16(ic + 2, <uint16_t>(~csum_add(ic, tl - hl) & 0xFFFF))


cdef inline int stage_rewrite(const FwdTables* t, Pkt* p) noexcept nogil:
    cdef const DelivRec* rr
    if p.action == ACT_DELIVER:
        rr = &t.deliv[p.out_eni]
        wr48(p.f, rr.mac)
        p.out_port = rr.port
        if rr.subnet == p.er.subnet:
            wr48(p.f + 6, mac48(p.er.mac))
        else:
            wr48(p.f + 6, t.subnets[rr.subnet].gwmac)
            # from an internet gateway (p.er.subnet -1, never a receiver's): public -> private
            if p.er.subnet < 0 and rd32(p.f + 30) != p.h.dst:
                xlate_addr(p.f, ETH_HLEN + 16, p.h.dst)
    elif p.action == ACT_FORWARD:           # compile(edge=True) only: the edge's translations
        if p.er.subnet >= 0:
            # out through an internet gateway (stages/edge_egress.pxd): source -> its public IP.  Other
            # FORWARDs reach here too with a FlowTable (every frame waiting for its table steps does)
            if p.route >= 0 and t.routes[p.route].kind == RK_IGW:
                xlate_addr(p.f, ETH_HLEN + 12, <uint32_t>p.out_eni)
            p.out_eni = -1
        elif rd32(p.f + 30) != p.h.dst:     # from an internet gateway to a GWLB endpoint
            xlate_addr(p.f, ETH_HLEN + 16, p.h.dst)
    elif p.action == ACT_REPLY:
        if p.h.ethertype == ETHERTYPE_ARP:
            arp_reply(t.subnets[p.er.subnet].gwmac if p.out_eni < 0 else t.enis[p.out_eni].mac, p)
        elif p.h.proto == IPPROTO_ICMP:     # (a NAT gateway's RST is built by stages/nat.pxd)
            echo_reply(&t.subnets[p.er.subnet], p)
    return goto(p, NEXT_COMMIT)
