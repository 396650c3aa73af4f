# The rule matching shared by the four filter stages (stages/sg_egress, nacl_egress, nacl_ingress,
# sg_ingress): security-group sets and network ACLs compiled by fastvpc/compiler/filters.py into
# AclDir / AclRule records (tables.pxd).  The semantics are fastvpc.topology.filters'
# (SecurityGroupRule.matches, security_groups_admit, flow_is_untracked, NetworkAcl.evaluate).
#
# Structure (chosen by measurement, BENCHMARKS.md "Filters"): per (SG set, direction) one short rule
# list per protocol class (TCP, UDP, ICMP, other), each holding that protocol's rules and the
# all-protocol ones, so a packet scans only the rules that can match its protocol; the 0.0.0.0/0 rules
# come first (so the first match also answers AWS's untracked-flow question), group references last
# (a hash probe of (group, IP) in sg_members instead of a /32 per member).  A rule is 16 bytes: a
# 60-rule set's class list is a few cache lines, scanned linearly with one compare chain per rule.
# NACLs: per (NACL, direction) one list per protocol class in entry-number order (an entry of another
# protocol never matches, so first-match order is kept), first match final.
#
# Port index (compiler/filters.py build_port_index, chosen by measurement: BENCHMARKS.md "Filters", port
# index): a class list of 5-64 rules has a block in sg_index / nacl_index that cuts the l4 key space at
# every rule's range ends and gives each piece the 64-bit mask of the rules whose range holds it; the
# eval finds the piece (counting the cuts below the key: all of them in a short block, only those of
# the key's 256-port bucket in a long one, through its bucket table) and tests only those rules
# (protocol and address), lowest bit first = list order, so the first match is the linear scan's.
# Other lists are scanned linearly.
#
# The l4 key: TCP/UDP destination port; ICMP type << 8 | code; L4_NONE (0x10000, above every rule's
# range) when the packet's port or ICMP header is not known (truncated, a non-first fragment), so it
# matches only rules without a port / type check, as filters._port_matches / _icmp_matches say.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t

from fastvpc._kernels.bytes cimport rd16
from fastvpc._kernels.headers cimport *
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.pkt cimport *

cdef extern from *:
    """
    #define FV_ACL_NO_INDEX 0xFFFFFFFFu
    #define FV_ACL_BUCKET_MIN 8      /* == compiler/filters.py BUCKET_MIN: longer blocks have a bucket table */
    static inline int fv_ctz64(uint64_t m) { return __builtin_ctzll(m); }
    """
    const uint32_t ACL_NO_INDEX "FV_ACL_NO_INDEX"
    enum: ACL_BUCKET_MIN "FV_ACL_BUCKET_MIN"
    int fv_ctz64(uint64_t m) noexcept nogil

cdef enum:
    DIR_INGRESS = 0         # AclDir row 2*k + direction
    DIR_EGRESS = 1
    ADM_DENY = 0            # == FT_DENY / FT_ADMIT / FT_ADMIT_UNTRACKED (dataplane/_flowtable.pxd)
    ADM_ADMIT = 1
    ADM_UNTRACKED = 2


cdef inline int acl_class(uint8_t proto) noexcept nogil:
    if proto == IPPROTO_TCP:
        return ACL_C_TCP
    if proto == IPPROTO_UDP:
        return ACL_C_UDP
    if proto == IPPROTO_ICMP:
        return ACL_C_ICMP
    return ACL_C_OTHER


cdef inline bint rule_matches(const FwdTables* t, const AclRule* r, uint8_t proto, uint32_t ip,
                              uint32_t l4) noexcept nogil:
    """Does rule / entry ``r`` match (protocol, peer or entry address ``ip``, l4 key)?"""
    cdef uint8_t fl = r.flags
    if not (fl & RF_ANYPROTO) and r.proto != proto:
        return 0
    if (fl & RF_L4) and not (r.lo <= l4 and l4 <= r.hi):
        return 0
    if fl & RF_GROUP:
        return ht_get(&t.sgm, (<uint64_t>r.addr << 32) | ip) != FV_HV_NONE
    return (ip & r.mask) == r.addr


cdef inline bint rule_hit(const FwdTables* t, const AclRule* r, uint8_t proto, uint32_t ip) noexcept nogil:
    """rule_matches without the l4 range check (the port index's mask has checked it)."""
    cdef uint8_t fl = r.flags
    if not (fl & RF_ANYPROTO) and r.proto != proto:
        return 0
    if fl & RF_GROUP:
        return ht_get(&t.sgm, (<uint64_t>r.addr << 32) | ip) != FV_HV_NONE
    return (ip & r.mask) == r.addr


cdef inline uint64_t acl_candidates(const uint32_t* ix,   # IN  sg_index / nacl_index
                                    uint32_t blk,         # IN  the class list's block offset
                                    uint32_t l4,          # IN  the packet's l4 key
                                    ) noexcept nogil:
    """The mask of the class list's rules whose l4 range holds ``l4`` (bit k: the list's rule k)."""
    cdef uint32_t nb = ix[blk]
    cdef const uint32_t* cuts = ix + blk + 1
    cdef uint32_t b = 0, m, k, e
    cdef const uint16_t* base
    m = blk + 1 + nb
    m += m & 1                   # the masks start at an even word (blocks do: the array is 8-aligned)
    if nb > ACL_BUCKET_MIN:
        # the bucket table after the masks (l4 <= L4_NONE: bucket 256 at most): the cuts below l4's
        # bucket are known; count only the bucket's own (usually none)
        base = <const uint16_t*>(ix + m + 2 * (nb + 1))
        b = base[l4 >> 8]
        e = base[(l4 >> 8) + 1]
        for k in range(base[l4 >> 8], e):
            b += cuts[k] <= l4
    else:
        # b = the number of cuts <= l4 (the piece), counted: no branch on the data (a binary search's
        # branches follow the packet's port: unpredictable in real traffic)
        for k in range(nb):
            b += cuts[k] <= l4
    return (<const uint64_t*>(ix + m))[b]


cdef inline uint8_t sg_eval(const FwdTables* t,
                            int32_t sgset,      # IN  the ENI's security-group set
                            int dirn,           # IN  DIR_INGRESS / DIR_EGRESS
                            uint8_t proto,      # IN  IPv4 protocol
                            uint32_t peer,      # IN  source (ingress) or destination (egress) IP
                            uint32_t l4,        # IN  l4 key
                            ) noexcept nogil:
    """ADM_DENY, ADM_ADMIT, or ADM_UNTRACKED (admitted under AWS's untracked-flow rule)."""
    cdef int row = 2 * sgset + dirn
    cdef const AclDir* d = &t.sg_dirs[row]
    cdef int c = acl_class(proto)
    cdef const AclRule* r = &t.sg_rules[d.off[c]]
    cdef uint32_t k, n = d.n[c]
    cdef uint32_t blk = t.sg_index[4 * row + c]
    cdef uint64_t m
    if blk != ACL_NO_INDEX:
        m = acl_candidates(t.sg_index, blk, l4)
        while m:
            k = <uint32_t>fv_ctz64(m)
            m &= m - 1
            if rule_hit(t, &r[k], proto, peer):
                if (r[k].flags & RF_WIDE) and ((d.flags >> c) & 1):
                    return ADM_UNTRACKED
                return ADM_ADMIT
        return ADM_DENY
    for k in range(n):
        if rule_matches(t, &r[k], proto, peer, l4):
            # 0.0.0.0/0 rules come first: the first match is wide exactly when some wide rule matches
            if (r[k].flags & RF_WIDE) and ((d.flags >> c) & 1):
                return ADM_UNTRACKED
            return ADM_ADMIT
    return ADM_DENY


cdef inline bint nacl_eval(const FwdTables* t,
                           int32_t nacl,        # IN  network ACL index
                           int dirn,            # IN  DIR_INGRESS / DIR_EGRESS
                           uint8_t proto,       # IN
                           uint32_t ip,         # IN  source (ingress) or destination (egress) IP
                           uint32_t l4,         # IN  l4 key (the destination port)
                           ) noexcept nogil:
    """Entries lowest number first, first match final; none: the implicit deny (entry 32767)."""
    cdef int row = 2 * nacl + dirn
    cdef const AclDir* d = &t.nacl_dirs[row]
    cdef int c = acl_class(proto)
    cdef const AclRule* r = &t.nacl_rules[d.off[c]]
    cdef uint32_t k, n = d.n[c]
    cdef uint32_t blk = t.nacl_index[4 * row + c]
    cdef uint64_t m
    if blk != ACL_NO_INDEX:
        m = acl_candidates(t.nacl_index, blk, l4)
        while m:
            k = <uint32_t>fv_ctz64(m)
            m &= m - 1
            if rule_hit(t, &r[k], proto, ip):
                return (r[k].flags & RF_ALLOW) != 0
        return 0
    for k in range(n):
        if rule_matches(t, &r[k], proto, ip, l4):
            return (r[k].flags & RF_ALLOW) != 0
    return 0


cdef inline const FiltRec* sender_filt(const FwdTables* t, int32_t port) noexcept nogil:
    """The sending ENI's filter record (the port passed the ingress stage: it is an ENI's)."""
    cdef uint32_t h
    if 0 <= port < t.n_port_filt:
        return &t.port_both[port].filt
    h = ht_get(&t.mact, (<uint64_t>HK_PORT << 56) | <uint32_t>port)
    return &t.eni_filt[h & FV_HV_INDEX_MASK]


cdef inline void acl_parse(Pkt* p, Flt* x) noexcept nogil:
    """The l4 key, and the fields a table step reads: h.sport (ICMP: the identifier), h.dport,
    h.tcp_flags, h.icmp_type -- zero ports and flags, ICMP type 255, when the L4 header is not
    complete in the frame or the packet is a non-first fragment."""
    if (p.h.frag & 0x1FFF) == 0 and ((p.h.flags & CF_L4) or parse_l4(p.f, &p.h)):
        if p.h.proto == IPPROTO_ICMP:
            x.l4 = (<uint32_t>p.h.icmp_type << 8) | p.h.icmp_code
            p.h.sport = rd16(p.f + ETH_HLEN + p.h.hl + 4)
        else:
            x.l4 = p.h.dport
        return
    x.l4 = L4_NONE
    p.h.sport = 0
    p.h.dport = 0
    p.h.tcp_flags = 0
    p.h.icmp_type = 255
    p.h.icmp_code = 255
