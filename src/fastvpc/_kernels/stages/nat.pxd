# Stage "nat" (docs/edge.md §4): NAT gateways, compile(edge=True).
#
# Where a frame meets a NAT gateway the stage that finds it (route: a route to a NAT gateway, RK_NAT;
# route / local: a destination that is a NAT gateway's private IP; edge_ingress: the same after the
# internet gateway's translation) calls nat_needs(): DROP(NAT_NEEDS_STATE) with the NAT gateway's code
# in out_eni (index * 2, + 1 for the reply direction).  Without a FlowTable that is the verdict.  With
# one (the driver's ModeState), the frame waits for the table pass like every stateful frame, and
# there, in frame order, nat_pass() does the NAT gateway's work on the bindings (dataplane/_nattable.pxd):
#   outbound  protocol checks, the NAT subnet's NACL (ingress), the binding (or the RST, a REPLY built
#             in place), the source translation (address + port / echo id, RFC 1624 checksums);
#   reply     the NAT subnet's NACL (ingress), the binding (else NAT_NO_BINDING), the destination
#             translated back to the inside host;
# then the frame is routed on from the NAT gateway's subnet by the ordinary stages (nacl_egress of that
# subnet, local / route, edge_egress for an internet gateway), and a DELIVER gets the receiver's NACL and
# its security groups' table step.  A frame that meets a NAT gateway again is NAT_UNSUPPORTED.  The
# frame's first bytes are saved first and put back when the verdict is a drop (a dropped frame leaves
# untouched, as in the reference).  Exactly fastvpc.reference.ReferenceForwarder.nat / nat_reply and
# fastvpc.reference_edge.nat_outbound / nat_inbound / tcp_rst_for.
#
# IN   p (the parked context: h, er = the sender's ingress record or subnet -1 from a gateway, route,
#      out_eni = the NAT code), x (l4, ct), the FlowTable (conntrack v, bindings nv), now
# OUT  the final verdict in p and the frame; DELIVER leaves p.er.subnet = -1 (the rewrite stage then
#      writes the receiving subnet's gateway MAC as source), FORWARD the NAT subnet (edge_egress's
#      1:1 translation to the Elastic IP is written by the rewrite stage); and, when the caller asked
#      for them (NatOut, Result.nat_gw & co.), what the NAT gateway did to frame i, for the flow log
#      (docs/flow-logs.md "Through a NAT gateway"): the port of the NAT gateway it reached (the last one:
#      a second NAT hop names the second, which did nothing), 1 / 2 when it replaced the source / the
#      destination, and the address and port / echo id it replaced (0 for a later UDP fragment)

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t
from libc.string cimport memcpy

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.bytes cimport rd16, rd32, rd48, wr16, wr32, wr48, csum_add, csum_fold
from fastvpc._kernels.headers cimport ETH_HLEN, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.pkt cimport *
from fastvpc._kernels.acl cimport nacl_eval, sg_eval, acl_parse, DIR_INGRESS, DIR_EGRESS
from fastvpc._kernels.edge cimport xlate_addr
from fastvpc._kernels.stages.local cimport stage_local
from fastvpc._kernels.stages.route cimport stage_route, routed_within_subnet
from fastvpc._kernels.stages.nacl_ingress cimport stage_nacl_ingress
from fastvpc.lpm._lookup cimport rts_lookup_one
from fastvpc.dataplane._flowtable cimport (FtView, FtPkt, FtTimeouts, ft_make_pkt, ft_insert_or_update, FT_MISS,
                                           FT_FULL, FT_LATER, FT_ADMIT_LATER)
from fastvpc.dataplane._nattable cimport (NatView, NatB, NatFrag, nat_h5, nat_outbound, nat_inbound, nat_frag_remember,
                                          nat_frag_get, NAT_OK, NAT_RST, NAT_NOBIND, NAT_EXHAUSTED, NAT_FULL)


cdef enum:
    NAT_SAVE = 128          # bytes saved before translating: every header a translation writes (14 + 60 + 20)
    NAT_DIR_OUT = 1         # nat_dir: the NAT gateway replaced the source (outbound)
    NAT_DIR_BACK = 2        # nat_dir: it replaced the destination (a reply)
    NAT_REC_DIST = 16       # the driver's look-ahead: binding records prefetched this many NAT frames ahead


# The NAT step's context for one pass (one thread makes the NAT steps of a batch):
#   * per-frame outputs (Result.nat_gw / nat_dir / nat_ip / nat_l4), gw NULL: not asked for.  The driver
#     fills them with -1 / 0 before the pass; nat_pass writes only the frames it handles;
#   * the constants of the NAT gateway met last (its subnet, private IP, identity and port: four edge-hash
#     probes, made again only when a frame meets another NAT gateway).  The driver sets g = -1.
cdef struct NatOut:
    int32_t* gw             # the port of the NAT gateway the frame reached, -1 none
    uint8_t* dir            # 0 not translated, NAT_DIR_OUT, NAT_DIR_BACK
    uint32_t* ip            # the address the NAT gateway replaced (outbound: the inside host's; a reply: its own)
    uint16_t* l4            # ... and the TCP/UDP port or ICMP echo id (0: a later UDP fragment, no L4 header)
    int64_t g               # the NAT gateway whose constants follow, -1 none yet
    uint32_t sub            # its subnet index (FV_HV_NONE: none)
    uint32_t nip            # its private IP (FV_HV_NONE: none)
    uint32_t ident          # its stable identity (the bindings' key)
    int32_t port            # its port (-1: not in the tables, an old snapshot)


cdef inline NatOut* nat_gw_of(const FwdTables* t, NatOut* o, uint32_t g) noexcept nogil:
    """o, holding NAT gateway g's constants."""
    if o.g != <int64_t>g:
        o.g = g
        o.sub = ht_get(&t.edt, edge_key(HK_NATSUB, 0, g))
        o.nip = ht_get(&t.edt, edge_key(HK_NATADDR, 0, g))
        o.ident = ht_get(&t.edt, edge_key(HK_NATID, 0, g))
        o.port = <int32_t>ht_get(&t.edt, edge_key(HK_NATPORT, 0, g))   # absent (an old snapshot): -1
    return o


cdef inline void nat_note_gw(const FwdTables* t, NatOut* o, int64_t i, uint32_t g) noexcept nogil:
    """Frame i reached NAT gateway g (nothing translated yet)."""
    if o.gw != NULL:
        o.gw[i] = nat_gw_of(t, o, g).port
        o.dir[i] = 0
        o.ip[i] = 0
        o.l4[i] = 0


cdef inline void nat_note(NatOut* o, int64_t i, uint8_t d, uint32_t ip, uint16_t l4) noexcept nogil:
    """The NAT gateway replaced the source (d = NAT_DIR_OUT) or the destination (NAT_DIR_BACK) ip:l4."""
    if o.gw != NULL:
        o.dir[i] = d
        o.ip[i] = ip
        o.l4[i] = l4


cdef inline uint16_t cs_adj(uint16_t hc, const uint16_t* old, const uint16_t* new, int n) noexcept nogil:
    """RFC 1624 eqn. 3 over n changed 16-bit words (fastvpc.reference_edge.checksum_adjust)."""
    cdef uint64_t s = (~hc) & 0xFFFFu
    cdef int k
    for k in range(n):
        s += ((~old[k]) & 0xFFFFu) + new[k]
    return <uint16_t>(~csum_fold(s) & 0xFFFFu)


cdef inline void nat_xlate(uint8_t* f,          # IN/OUT the frame (validated IPv4)
                           uint32_t at,         # IN  14 + 12 (source) or 14 + 16 (destination)
                           uint32_t pf,         # IN  the port field: 0 (source) or 2 (destination)
                           uint32_t new_ip,     # IN
                           int32_t new_port,    # IN  the new port / echo id, -1: the address only
                           ) noexcept nogil:
    """fastvpc.reference_edge._translate: the address, and the TCP/UDP port or ICMP echo id, with every
    checksum updated incrementally; L4 only in a first fragment whose L4 header is complete."""
    cdef uint32_t hl = (f[ETH_HLEN] & 0x0F) * 4
    cdef uint32_t end = ETH_HLEN + rd16(f + ETH_HLEN + 2)
    cdef uint32_t l4 = ETH_HLEN + hl
    cdef uint8_t proto = f[ETH_HLEN + 9]
    cdef bint first = (rd16(f + ETH_HLEN + 6) & 0x1FFF) == 0
    cdef uint32_t old = rd32(f + at)
    cdef uint16_t wo[3]
    cdef uint16_t wn[3]
    cdef uint16_t c
    cdef uint32_t co
    cdef int n = 2
    wo[0] = <uint16_t>(old >> 16)
    wo[1] = <uint16_t>old
    wn[0] = <uint16_t>(new_ip >> 16)
    wn[1] = <uint16_t>new_ip
    wr16(f + ETH_HLEN + 10, cs_adj(rd16(f + ETH_HLEN + 10), wo, wn, 2))
    wr32(f + at, new_ip)
    if not first:
        return
    if (proto == IPPROTO_TCP and l4 + 20 <= end) or (proto == IPPROTO_UDP and l4 + 8 <= end):
        co = l4 + (16 if proto == IPPROTO_TCP else 6)
        if new_port >= 0:
            wo[2] = rd16(f + l4 + pf)
            wn[2] = <uint16_t>new_port
            n = 3
            wr16(f + l4 + pf, <uint16_t>new_port)
        c = rd16(f + co)
        if proto == IPPROTO_TCP:
            wr16(f + co, cs_adj(c, wo, wn, n))
        elif c != 0:            # UDP checksum 0: none was sent (RFC 768), it stays 0
            c = cs_adj(c, wo, wn, n)
            wr16(f + co, c if c != 0 else 0xFFFF)
    elif proto == IPPROTO_ICMP and l4 + 8 <= end and (f[l4] == 8 or f[l4] == 0) and new_port >= 0:
        # no pseudo-header: only the echo id changes the ICMP checksum
        wo[0] = rd16(f + l4 + 4)
        wn[0] = <uint16_t>new_port
        wr16(f + l4 + 2, cs_adj(rd16(f + l4 + 2), wo, wn, 1))
        wr16(f + l4 + 4, <uint16_t>new_port)


cdef inline void nat_rst(uint8_t* f, uint64_t gwmac) noexcept nogil:
    """fastvpc.reference_edge.tcp_rst_for: the RST from the remote end to the inside host, in place in
    the first 54 bytes (the segment has a complete TCP header: the frame holds them)."""
    cdef uint32_t hl = (f[ETH_HLEN] & 0x0F) * 4
    cdef int64_t end = ETH_HLEN + rd16(f + ETH_HLEN + 2)
    cdef uint32_t l4 = ETH_HLEN + hl
    cdef uint32_t src = rd32(f + ETH_HLEN + 12)
    cdef uint32_t dst = rd32(f + ETH_HLEN + 16)
    cdef uint16_t sport = rd16(f + l4)
    cdef uint16_t dport = rd16(f + l4 + 2)
    cdef uint32_t seq = rd32(f + l4 + 4)
    cdef uint32_t ack = rd32(f + l4 + 8)
    cdef uint8_t fl = f[l4 + 13]
    cdef int64_t seg = end - l4 - (f[l4 + 12] >> 4) * 4
    cdef uint32_t rseq, rack
    cdef uint8_t rfl
    cdef uint64_t host = rd48(f + 6)
    cdef uint8_t* ip = f + ETH_HLEN
    cdef uint8_t* tcp = f + ETH_HLEN + 20
    cdef uint64_t s
    cdef int k
    if fl & 0x02:
        seg += 1
    if fl & 0x01:
        seg += 1
    if fl & 0x10:
        rseq, rack, rfl = ack, 0, 0x04
    else:
        rseq, rack, rfl = 0, <uint32_t>(<int64_t>seq + seg), 0x14   # mod 2**32
    wr48(f, host)
    wr48(f + 6, gwmac)
    for k in range(40):
        ip[k] = 0
    ip[0] = 0x45
    wr16(ip + 2, 40)
    ip[8] = 64
    ip[9] = IPPROTO_TCP
    wr32(ip + 12, dst)
    wr32(ip + 16, src)
    wr16(ip + 10, <uint16_t>(~csum_add(ip, 20) & 0xFFFF))
    wr16(tcp, dport)
    wr16(tcp + 2, sport)
    wr32(tcp + 4, rseq)
    wr32(tcp + 8, rack)
    tcp[12] = 5 << 4
    tcp[13] = rfl
    s = <uint64_t>csum_add(tcp, 20) + (dst >> 16) + (dst & 0xFFFF) + (src >> 16) + (src & 0xFFFF) + IPPROTO_TCP + 20
    wr16(tcp + 16, <uint16_t>(~csum_fold(s) & 0xFFFF))


cdef inline bint nat_waiting(const Pkt* p) noexcept nogil:
    """The frame waits for nat_pass (the verdict nat_needs left)."""
    return p.action == ACT_DROP and p.reason == R_NAT_NEEDS_STATE


cdef inline void nat_route_on(const FwdTables* t, FtView* v, Pkt* p, Flt* x, uint32_t sub, int64_t now,
                              const FtTimeouts* tmo, NatOut* o, int64_t i) noexcept nogil:
    """§4.1 step 6 / §4.2 step 4: routed on from the NAT gateway's subnet, then the receiver's filters."""
    cdef const SubnetRec* sr = &t.subnets[sub]
    cdef const FiltRec* fr
    cdef uint32_t val, tab
    cdef uint64_t r
    cdef int nx
    cdef FtPkt k
    cdef uint8_t fl, code, a, dirn, st
    cdef uint64_t key = ip_key(<uint32_t>sr.vpc, p.h.dst)
    p.er.subnet = <int32_t>sub             # the hop subnet: nacl_egress, local, route, edge_egress read it
    if t.filters and (p.h.dst & sr.mask) != sr.base:
        # nacl_egress of the NAT's subnet: not when the route keeps the frame in it (a middlebox ENI of the
        # subnet, #55; looked up on a deny only, as stages/nacl_egress.pxd does)
        if not nacl_eval(t, t.subnet_filt[sub].nacl, DIR_EGRESS, p.h.proto, p.h.dst, x.l4) \
                and not routed_within_subnet(t, <int32_t>sub, p.h.dst):
            drop(p, R_NACL_EGRESS)
            return
    if key != p.key:                       # outbound from the NAT's VPC: loop 1's (VPC, dst) lookup holds
        p.hv = ht_get(&t.ipt, key)
    nx = stage_local(t, p)
    if nx == NEXT_ROUTE:
        tab = p.table
        val = rts_lookup_one(&t.lpm, tab, p.h.dst)
        p.route = -1
        if val != 0xFFFFFFFFu and tab < <uint64_t>t.n_tables:
            r = <uint64_t>t.table_base[tab] + val
            if r < <uint64_t>t.n_routes:
                p.route = <int32_t>r
        stage_route(t, p)
    if p.action == ACT_DROP:
        if p.reason == R_NAT_NEEDS_STATE:   # a second NAT gateway (itself included): not served
            p.reason = R_NAT_UNSUPPORTED
            nat_note_gw(t, o, i, <uint32_t>p.out_eni >> 1)   # the NAT gateway reached last: it did nothing
        return
    if p.action != ACT_DELIVER:
        return                             # FORWARD (an internet gateway: the rewrite stage translates)
    if t.filters:
        if stage_nacl_ingress(t, p, x) == NEXT_COMMIT:
            return
        if p.h.frag & 0x1FFF:              # a non-first fragment: the groups pass it (stages/sg_egress.pxd)
            p.er.subnet = -1
            return
        fr = &t.eni_filt[p.out_eni]
        fl = p.h.tcp_flags if p.h.proto == IPPROTO_TCP else (p.h.icmp_type if p.h.proto == IPPROTO_ICMP else 0)
        ft_make_pkt(&k, fr.ident, 0, p.h.proto, p.h.src, p.h.dst, p.h.sport, p.h.dport, fl)
        code = ft_insert_or_update(v, &k, p.h.tl, now, FT_ADMIT_LATER, tmo + fr.tmo, &dirn, &st)
        if code == FT_LATER:
            a = sg_eval(t, fr.sgset, DIR_INGRESS, p.h.proto, p.h.src, x.l4)
            code = ft_insert_or_update(v, &k, p.h.tl, now, a, tmo + fr.tmo, &dirn, &st)
        if code == FT_MISS:
            drop(p, R_SG_INGRESS)
            return
        if code == FT_FULL:
            drop(p, R_FLOW_TABLE_FULL)
            return
    p.er.subnet = -1                       # the rewrite: source MAC := the receiving subnet's gateway MAC


cdef inline bint nat_protocol_ok(uint8_t proto, uint16_t ff) noexcept nogil:
    """TCP, UDP and ICMP only; TCP and ICMP fragments are not translated (UDP ones are)."""
    if proto != IPPROTO_TCP and proto != IPPROTO_UDP and proto != IPPROTO_ICMP:
        return 0
    return (ff & 0x3FFF) == 0 or proto == IPPROTO_UDP


cdef inline int32_t nat_frag_binding(NatView* nv, uint32_t src, uint32_t dst, uint16_t ipid,
                                     int64_t now) noexcept nogil:
    """A later UDP fragment's binding, either way: the live one holding the outside key its first fragment
    remembered (by source, destination and IP id), or -1."""
    cdef const NatFrag* fe = nat_frag_get(nv, src, dst, ipid)
    if fe == NULL:
        return -1
    return nat_inbound(nv, fe.nat, fe.proto, fe.nat_ip, fe.nat_port, fe.remote_ip, fe.remote_port, now)


cdef inline void nat_run(const FwdTables* t, FtView* v, NatView* nv, Pkt* p, Flt* x, int64_t now,
                         const FtTimeouts* tmo, NatOut* o, int64_t i) noexcept nogil:
    cdef uint8_t* f = p.f
    cdef uint32_t code = <uint32_t>p.out_eni
    cdef NatOut* gc = nat_gw_of(t, o, code >> 1)
    cdef uint32_t sub = gc.sub
    cdef uint32_t nip = gc.nip
    cdef uint32_t ident = gc.ident
    cdef uint32_t hl, tl, l4, end, src, dst
    cdef uint16_t ff, sport, dport, rport, ipid
    cdef uint8_t proto, fl
    cdef int st
    cdef int32_t bi
    cdef const NatB* b
    if p.er.subnet < 0 and rd32(f + 30) != p.h.dst:
        xlate_addr(f, ETH_HLEN + 16, p.h.dst)     # the internet gateway's public -> private, first
    if sub == FV_HV_NONE or nip == FV_HV_NONE or sub >= <uint64_t>t.n_subnets:
        drop(p, R_NAT_UNSUPPORTED)               # a NAT gateway without a subnet has no address
        return
    acl_parse(p, x)                              # the l4 key and ports of the frame as it is now
    hl = (f[ETH_HLEN] & 0x0F) * 4
    tl = rd16(f + ETH_HLEN + 2)
    l4 = ETH_HLEN + hl
    end = ETH_HLEN + tl
    ff = rd16(f + ETH_HLEN + 6)
    ipid = rd16(f + ETH_HLEN + 4)
    proto = f[ETH_HLEN + 9]
    src = rd32(f + ETH_HLEN + 12)
    dst = rd32(f + ETH_HLEN + 16)
    if code & 1:
        # §4.2, the reply: the NAT subnet's NACL, then the binding
        if t.filters and not nacl_eval(t, t.subnet_filt[sub].nacl, DIR_INGRESS, proto, src, x.l4):
            drop(p, R_NACL_INGRESS)
            return
        if not nat_protocol_ok(proto, ff):
            drop(p, R_NAT_UNSUPPORTED)
            return
        if (ff & 0x1FFF) != 0:
            # a later UDP fragment of a reply: the binding its first fragment found (remembered below), the
            # address only, as outbound (aws-behaviour-more.md: UDP fragments are forwarded)
            bi = nat_frag_binding(nv, src, dst, ipid, now)
            if bi < 0:
                drop(p, R_NAT_NO_BINDING)
                return
            b = &nv.b[bi]
            nat_xlate(f, ETH_HLEN + 16, 2, b.inside_ip, -1)
            nat_note(o, i, NAT_DIR_BACK, nip, 0)
            p.h.dst = b.inside_ip
            nat_route_on(t, v, p, x, sub, now, tmo, o, i)
            return
        if proto == IPPROTO_ICMP:
            if l4 + 8 > end or f[l4] != 0:
                drop(p, R_NAT_NO_BINDING)        # an ICMP error or a request to the NAT: unanswered
                return
            sport = rd16(f + l4 + 4)
            dport = sport
            rport = 0
        else:
            if l4 + (20 if proto == IPPROTO_TCP else 8) > end:
                drop(p, R_NAT_NO_BINDING)
                return
            sport = rd16(f + l4)
            dport = rd16(f + l4 + 2)
            rport = sport
        bi = nat_inbound(nv, ident, proto, nip, dport, src, rport, now)
        if bi < 0:
            drop(p, R_NAT_NO_BINDING)
            return
        b = &nv.b[bi]
        if proto == IPPROTO_UDP and (ff & 0x2000):
            nat_frag_remember(nv, src, dst, ipid, b)     # its later fragments carry no ports
        nat_xlate(f, ETH_HLEN + 16, 2, b.inside_ip, b.inside_port)
        nat_note(o, i, NAT_DIR_BACK, nip, dport)
        p.h.dst = b.inside_ip
        if proto == IPPROTO_ICMP:
            p.h.sport = b.inside_port            # the echo id (the table key's identifier)
        else:
            p.h.dport = b.inside_port
            x.l4 = b.inside_port
        nat_route_on(t, v, p, x, sub, now, tmo, o, i)
        return
    # §4.1, outbound
    if not nat_protocol_ok(proto, ff):
        drop(p, R_NAT_UNSUPPORTED)
        return
    if (ff & 0x1FFF) == 0:
        if <int64_t>tl - hl < (20 if proto == IPPROTO_TCP else 8):
            drop(p, R_NAT_UNSUPPORTED)           # the L4 header is not complete
            return
        if proto == IPPROTO_ICMP and f[l4] != 8:
            drop(p, R_NAT_UNSUPPORTED)           # ICMP other than an echo request
            return
    if t.filters and p.er.subnet != <int32_t>sub:
        if not nacl_eval(t, t.subnet_filt[sub].nacl, DIR_INGRESS, proto, src, x.l4):
            drop(p, R_NACL_INGRESS)
            return
    if (ff & 0x1FFF) != 0:
        # a later UDP fragment: the first one's binding, the address only
        if nat_frag_binding(nv, src, dst, ipid, now) < 0:
            drop(p, R_NAT_NO_BINDING)
            return
        nat_xlate(f, ETH_HLEN + 12, 0, nip, -1)
        nat_note(o, i, NAT_DIR_OUT, src, 0)
        p.h.src = nip
        nat_route_on(t, v, p, x, sub, now, tmo, o, i)
        return
    if proto == IPPROTO_ICMP:
        sport = rd16(f + l4 + 4)
        dport = sport
        rport = 0
        fl = 0
    else:
        sport = rd16(f + l4)
        dport = rd16(f + l4 + 2)
        rport = dport
        fl = f[l4 + 13] if proto == IPPROTO_TCP else 0
    st = nat_outbound(nv, ident, nip, proto, src, sport, dst, rport, now, fl, &bi)
    if st == NAT_RST:
        nat_rst(f, t.subnets[p.er.subnet].gwmac)
        p.action = ACT_REPLY
        p.reason = R_NONE
        p.out_port = p.port
        p.h.proto = IPPROTO_TCP
        return
    if st == NAT_NOBIND:
        drop(p, R_NAT_NO_BINDING)
        return
    if st == NAT_EXHAUSTED:
        drop(p, R_NAT_PORTS_EXHAUSTED)
        return
    if st == NAT_FULL:
        drop(p, R_FLOW_TABLE_FULL)
        return
    b = &nv.b[bi]
    if proto == IPPROTO_UDP and (ff & 0x2000):
        nat_frag_remember(nv, src, dst, ipid, b)
    nat_xlate(f, ETH_HLEN + 12, 0, nip, b.nat_port)
    nat_note(o, i, NAT_DIR_OUT, src, sport)
    p.h.src = nip
    p.h.sport = b.nat_port
    nat_route_on(t, v, p, x, sub, now, tmo, o, i)


cdef inline void nat_pass(const FwdTables* t,
                          FtView* v,              # IN/OUT the FlowTable's conntrack entries
                          NatView* nv,            # IN/OUT its NAT bindings
                          Pkt* p,                 # IN/OUT the parked frame (nat_waiting); OUT its final verdict
                          Flt* x,                 # IN/OUT its filter context
                          int64_t now,            # IN  ns
                          const FtTimeouts* tmo,  # IN  the timeout records (t.ct_timeouts)
                          NatOut* o,              # OUT [i] what the NAT gateway did (o.gw NULL: not asked for)
                          int64_t i,              # IN  the frame's index in the batch
                          ) noexcept nogil:
    """The table pass's NAT step for one frame (see the top of the file); a drop leaves the frame as it came."""
    cdef uint8_t save[NAT_SAVE]
    cdef int64_t n = p.L if p.L < NAT_SAVE else NAT_SAVE
    memcpy(save, p.f, n)
    if now > v.hdr.clock:
        v.hdr.clock = now       # the table has seen now (without filters no conntrack step may advance it; a
                                # binding's last_seen is never after the clock, which a pickle checks)
    nat_note_gw(t, o, i, <uint32_t>p.out_eni >> 1)
    nat_run(t, v, nv, p, x, now, tmo, o, i)
    if p.action == ACT_DROP:
        memcpy(p.f, save, n)
        p.out_port = -1


cdef inline int64_t nat_slot(const FwdTables* t,
                             const NatView* nv,
                             NatOut* o,              # IN/OUT the NAT gateway constants (nat_gw_of)
                             const Pkt* p,           # IN  a frame waiting for the NAT step (nat_waiting)
                             ) noexcept nogil:
    """The hash slot of the frame's binding key, as slot << 1 (the inside-key hash: outbound) or slot << 1 | 1
    (the outside-key hash: a reply); -1 for a frame that looks up no binding (not TCP / UDP / ICMP echo, a
    fragment, a short header).  Reads only; the frame's own NAT step decides."""
    cdef const uint8_t* f = p.f
    cdef uint32_t code = <uint32_t>p.out_eni
    cdef uint32_t hl, l4, end
    cdef uint8_t proto
    cdef uint16_t a, b
    cdef NatOut* gc
    hl = (f[ETH_HLEN] & 0x0F) * 4
    l4 = ETH_HLEN + hl
    end = ETH_HLEN + rd16(f + ETH_HLEN + 2)
    proto = f[ETH_HLEN + 9]
    if (rd16(f + ETH_HLEN + 6) & 0x3FFF) != 0 or l4 + 8 > end or <int64_t>end > p.L:
        return -1
    if proto == IPPROTO_TCP or proto == IPPROTO_UDP:
        a = rd16(f + l4)
        b = rd16(f + l4 + 2)
    elif proto == IPPROTO_ICMP and f[l4] == (0 if code & 1 else 8):
        a = rd16(f + l4 + 4)           # the echo id; the remote port of an ICMP binding is 0
        b = 0
    else:
        return -1
    gc = nat_gw_of(t, o, code >> 1)
    if code & 1:
        # a reply: (NAT IP, NAT port / echo id, remote IP, remote port) in the outside-key hash
        if gc.nip == FV_HV_NONE:
            return -1
        return <int64_t>(nat_h5(gc.ident ^ 0x5bd1e995u, proto, gc.nip, a if proto == IPPROTO_ICMP else b,
                                rd32(f + ETH_HLEN + 12), 0 if proto == IPPROTO_ICMP else a) & nv.mask) << 1 | 1
    return <int64_t>(nat_h5(gc.ident, proto, rd32(f + ETH_HLEN + 12), a, rd32(f + ETH_HLEN + 16), b) & nv.mask) << 1


cdef inline void nat_prefetch_slot(const NatView* nv, int64_t slot) noexcept nogil:
    """Prefetch the hash slot nat_slot returned (>= 0)."""
    fv_prefetch((nv.hout if slot & 1 else nv.hin) + (slot >> 1))


cdef inline void nat_prefetch_rec(const NatView* nv, int64_t slot) noexcept nogil:
    """Prefetch the binding record the hash slot (nat_slot, >= 0, arrived) holds: both its cache lines (a
    40-byte record straddles two in half the cases; the step reads its key and its last_seen)."""
    cdef int32_t k = (nv.hout if slot & 1 else nv.hin)[slot >> 1]
    if k >= 0:
        fv_prefetch(&nv.b[k])
        fv_prefetch(&nv.b[k].last_seen)
