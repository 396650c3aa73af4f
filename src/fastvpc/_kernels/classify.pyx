# Batch header classification: one pass over a FrameBatch, no Python per frame.
#
# Field meanings and absent values are documented in fastvpc/dataplane/classify.py (Classified).
# The parse is headers.pxd parse_headers, the one the forwarding pass's ingress stage uses, so the
# two cannot drift; every read is preceded by a length check against the frame's own length.

from cython.parallel cimport prange
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.bytes cimport rd48
from fastvpc._kernels.headers cimport *
from fastvpc._kernels.tables cimport (RK_LOCAL, RK_ENI, RK_PEERING, RK_FORWARD, RK_BLACKHOLE, RK_IGW, HK_PUB_OUT, HK_PUB_IN,
                                        HK_GWPORT, GW_IGW, GW_VGW, GW_TGW, HK_IP, HK_MAC,
                                      HK_PORT, FV_HV_ENI, FV_HV_ROUTER, FV_HV_BCAST, FV_HV_GWMAC, FV_HV_NONE)
from fastvpc._kernels.spans cimport fv_check_offsets, fv_load_once, fv_span_len


cdef inline void classify_one(
        const uint8_t* f,        # IN  frame bytes
        int64_t L,               # IN  frame length
        int64_t i,               # IN  output row
        uint16_t* ethertype,     # OUT [i]
        uint64_t* dst_mac,       # OUT [i]
        uint64_t* src_mac,       # OUT [i]
        uint32_t* ip_src,        # OUT [i]
        uint32_t* ip_dst,        # OUT [i]
        uint8_t* proto,          # OUT [i]
        uint8_t* ttl,            # OUT [i]
        uint16_t* ip_len,        # OUT [i]
        uint16_t* sport,         # OUT [i]
        uint16_t* dport,         # OUT [i]
        uint8_t* icmp_type,      # OUT [i]
        uint8_t* icmp_code,      # OUT [i]
        uint16_t* arp_op,        # OUT [i]
        uint8_t* flags,          # OUT [i]
) noexcept nogil:
    """One frame through headers.pxd parse_headers (the forwarding pass's parser), then every field
    the flags do not cover set to its absent value (fastvpc.dataplane.classify.Classified)."""
    cdef Hdr h
    cdef uint8_t fl = parse_headers(f, L, &h, 1)
    cdef bint eth = (fl & CF_ETH) != 0
    cdef bint ip4 = (fl & CF_IPV4) != 0
    cdef bint l4 = (fl & CF_L4) != 0
    ethertype[i] = h.ethertype if eth else 0
    dst_mac[i] = h.dst_mac if eth else 0
    src_mac[i] = rd48(f + 6) if eth else 0   # a field, not a rule: the one parse_headers leaves out
    ip_src[i] = h.src if fl & (CF_IPV4 | CF_ARP) else 0
    ip_dst[i] = h.dst if fl & (CF_IPV4 | CF_ARP) else 0
    proto[i] = h.proto if ip4 else 0
    ttl[i] = h.ttl if ip4 else 0
    ip_len[i] = h.tl if ip4 else 0
    sport[i] = h.sport if l4 else 0
    dport[i] = h.dport if l4 else 0
    icmp_type[i] = h.icmp_type if l4 else 255
    icmp_code[i] = h.icmp_code if l4 else 255
    arp_op[i] = h.arp_op if fl & CF_ARP else 0
    flags[i] = fl


def classify_batch(
        const uint8_t[::1] data,        # IN  the batch's byte buffer
        const int64_t[::1] offsets,     # IN  n+1 frame offsets (validated by FrameBatch)
        uint16_t[::1] ethertype,        # OUT n
        uint64_t[::1] dst_mac,          # OUT n
        uint64_t[::1] src_mac,          # OUT n
        uint32_t[::1] ip_src,           # OUT n
        uint32_t[::1] ip_dst,           # OUT n
        uint8_t[::1] proto,             # OUT n
        uint8_t[::1] ttl,               # OUT n
        uint16_t[::1] ip_len,           # OUT n
        uint16_t[::1] sport,            # OUT n
        uint16_t[::1] dport,            # OUT n
        uint8_t[::1] icmp_type,         # OUT n
        uint8_t[::1] icmp_code,         # OUT n
        uint16_t[::1] arp_op,           # OUT n
        uint8_t[::1] flags,             # OUT n
        int n_threads,                  # IN  resolved thread count (>= 1)
) -> None:
    """Fill the output arrays (length >= n) with each frame's header fields."""
    cdef int64_t n = offsets.shape[0] - 1
    cdef int64_t chunk = 4096
    cdef int64_t nchunks, c, i, lo, hi, start, ln
    cdef int64_t nd = data.shape[0]
    cdef const uint8_t* base
    if n <= 0:
        return
    if (ethertype.shape[0] < n or dst_mac.shape[0] < n or src_mac.shape[0] < n or ip_src.shape[0] < n
            or ip_dst.shape[0] < n or proto.shape[0] < n or ttl.shape[0] < n or ip_len.shape[0] < n
            or sport.shape[0] < n or dport.shape[0] < n or icmp_type.shape[0] < n or icmp_code.shape[0] < n
            or arp_op.shape[0] < n or flags.shape[0] < n):
        raise ValueError(f"classify_batch: output arrays shorter than {n} frames")
    fv_check_offsets(offsets, n, nd)
    base = &data[0] if nd > 0 else NULL
    nchunks = (n + chunk - 1) // chunk
    if n_threads < 1:
        n_threads = 1
    with nogil:
        for c in prange(nchunks, num_threads=n_threads, schedule="static"):
            lo = c * chunk
            hi = lo + chunk
            if hi > n:
                hi = n
            for i in range(lo, hi):
                # read once and checked here: another thread may be rewriting the offsets (issue 15)
                start = fv_load_once(&offsets[i])
                ln = fv_span_len(start, fv_load_once(&offsets[i + 1]), nd)
                if ln < 0:
                    start = 0
                    ln = 0
                classify_one(base + start, ln, i,
                             &ethertype[0], &dst_mac[0], &src_mac[0], &ip_src[0], &ip_dst[0],
                             &proto[0], &ttl[0], &ip_len[0], &sport[0], &dport[0],
                             &icmp_type[0], &icmp_code[0], &arp_op[0], &flags[0])


def _constants() -> dict:
    """The Action / DropReason numbers and flag bits compiled into the kernels (for tests)."""
    return {
        "ACT_DROP": ACT_DROP, "ACT_DELIVER": ACT_DELIVER, "ACT_FORWARD": ACT_FORWARD, "ACT_REPLY": ACT_REPLY,
        "R_NONE": R_NONE, "R_MALFORMED": R_MALFORMED, "R_NON_IPV4": R_NON_IPV4,
        "R_ARP_NO_ENTRY": R_ARP_NO_ENTRY, "R_ARP_IGNORED": R_ARP_IGNORED, "R_L2_BROADCAST": R_L2_BROADCAST,
        "R_BROADCAST": R_BROADCAST, "R_MULTICAST": R_MULTICAST, "R_SRC_DST_CHECK": R_SRC_DST_CHECK,
        "R_ROUTER_UNSUPPORTED": R_ROUTER_UNSUPPORTED, "R_ROUTER_NOT_OWN_SUBNET": R_ROUTER_NOT_OWN_SUBNET,
        "R_NO_SUCH_HOST": R_NO_SUCH_HOST, "R_BLACKHOLE": R_BLACKHOLE, "R_NO_ROUTE": R_NO_ROUTE,
        "R_UNKNOWN_MAC": R_UNKNOWN_MAC, "R_UNKNOWN_PORT": R_UNKNOWN_PORT,
        "R_LINK_LOCAL_SERVICE": R_LINK_LOCAL_SERVICE,
        "R_SG_EGRESS": R_SG_EGRESS, "R_NACL_EGRESS": R_NACL_EGRESS, "R_NACL_INGRESS": R_NACL_INGRESS,
        "R_SG_INGRESS": R_SG_INGRESS, "R_FLOW_TABLE_FULL": R_FLOW_TABLE_FULL, "R_NO_PUBLIC_IP": R_NO_PUBLIC_IP,
        "R_NO_SUCH_PUBLIC_IP": R_NO_SUCH_PUBLIC_IP, "R_NAT_NEEDS_STATE": R_NAT_NEEDS_STATE,
        "R_NAT_UNSUPPORTED": R_NAT_UNSUPPORTED, "R_NAT_NO_BINDING": R_NAT_NO_BINDING,
        "R_NAT_PORTS_EXHAUSTED": R_NAT_PORTS_EXHAUSTED,
        "CF_ETH": CF_ETH, "CF_ARP": CF_ARP, "CF_IPV4": CF_IPV4, "CF_IP_LEN_OK": CF_IP_LEN_OK,
        "CF_CSUM_OK": CF_CSUM_OK, "CF_FRAGMENT": CF_FRAGMENT, "CF_L4": CF_L4, "CF_GROUP_MAC": CF_GROUP_MAC,
        "RK_LOCAL": RK_LOCAL, "RK_ENI": RK_ENI, "RK_PEERING": RK_PEERING, "RK_FORWARD": RK_FORWARD,
        "RK_BLACKHOLE": RK_BLACKHOLE, "HK_IP": HK_IP, "HK_MAC": HK_MAC, "HK_PORT": HK_PORT,
        "RK_IGW": RK_IGW, "HK_PUB_OUT": HK_PUB_OUT, "HK_PUB_IN": HK_PUB_IN, "HK_GWPORT": HK_GWPORT,
        "GW_IGW": GW_IGW, "GW_VGW": GW_VGW, "GW_TGW": GW_TGW,
        "HV_ENI": FV_HV_ENI, "HV_ROUTER": FV_HV_ROUTER, "HV_BCAST": FV_HV_BCAST, "HV_GWMAC": FV_HV_GWMAC,
        "HV_NONE": FV_HV_NONE,
    }
