# Header parsing shared by classify (fastvpc.classify) and the forwarding pass's ingress stage, so the
# two cannot drift: one set of validity rules (the CF_* flags) and one reader of every field.
#
# parse_headers(f, L, &h, full) reads Ethernet, then ARP or IPv4 (and, when ``full``, the first
# TCP/UDP/ICMP header), and returns the CF_* flags (also stored in h.flags).  A field is written only
# when the flag that covers it is set (the others keep whatever the struct held: the forwarding pass
# never reads them, and classify writes its documented absent values from the flags):
#
#   CF_ETH       dst_mac, ethertype (the source MAC is not parsed: only classify reports it, and
#                the rewrite stage reads it from the frame)
#   CF_ARP       arp_op, src (sender IP, spa), dst (target IP, tpa)
#   CF_IPV4      hl (IHL*4), tl (total length), frag (flags + fragment offset), proto, src, dst;
#                ttl (full only)
#   CF_L4        TCP/UDP: sport, dport (tcp_flags for TCP, else 0), icmp_type = icmp_code = 255;
#                ICMP: icmp_type, icmp_code, sport = dport = tcp_flags = 0
#
# ``full`` is a constant at each call site (classify: 1; the forwarding pass's ingress: 0), so the C
# compiler drops the unused stores: the validity rules and every field both read are one code path.
# With ``full`` = 0 the parse also returns as soon as CF_IPV4_OK is known not to hold (length or
# checksum bad): the flags of such a frame then lack the bits not yet computed, which the forwarding
# pass never reads (it drops the frame as malformed).  The early returns let the compiler fold
# ingress's CF_IPV4_OK test into the parse's branches (~4 instructions a frame, BENCHMARKS.md).
# The forwarding pass parses L4 lazily: a stage that needs it calls parse_l4 (router for the echo
# check today; the security-group and flow-log stages will), since doing it for every frame costs
# ~12 instructions a frame that no other stage reads.
#
# Every read is preceded by a length check against the frame's own length L.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t

from fastvpc._kernels.bytes cimport rd16, rd32, rd48, ipv4_csum_ok

# --- Ethernet / ARP / IPv4 ------------------------------------------------------
cdef enum:
    ETH_HLEN = 14
    ETHERTYPE_IPV4 = 0x0800
    ETHERTYPE_ARP = 0x0806
    ARP_LEN = 42            # Ethernet + ARP for IPv4 over Ethernet
    IPV4_MIN_FRAME = 34     # Ethernet + 20-byte IPv4 header
    IPPROTO_ICMP = 1
    IPPROTO_TCP = 6
    IPPROTO_UDP = 17

# --- valid-flag bits (fastvpc.classify.Classified.flags) ------------------------
cdef enum:
    CF_ETH = 0x01           # frame holds a complete Ethernet header (>= 14 bytes)
    CF_ARP = 0x02           # ethertype 0x0806 and a complete 28-byte IPv4-over-Ethernet ARP body
    CF_IPV4 = 0x04          # ethertype 0x0800, version 4, IHL >= 5, header within the frame
    CF_IP_LEN_OK = 0x08     # IHL*4 <= total length and 14 + total length <= frame length
    CF_CSUM_OK = 0x10       # IPv4 header checksum verifies
    CF_FRAGMENT = 0x20      # MF set or fragment offset != 0
    CF_L4 = 0x40            # first fragment whose TCP (20)/UDP (8)/ICMP (8) header lies within total length
    CF_GROUP_MAC = 0x80     # destination MAC has the group bit (broadcast/multicast)
    CF_IPV4_OK = CF_IPV4 | CF_IP_LEN_OK | CF_CSUM_OK   # what step 9 of the forwarding model requires


cdef struct Hdr:
    uint64_t dst_mac        # 48-bit destination MAC                       (CF_ETH)
    uint32_t src            # IPv4 source, or ARP sender IP                (CF_IPV4 / CF_ARP)
    uint32_t dst            # IPv4 destination, or ARP target IP           (CF_IPV4 / CF_ARP)
    uint16_t ethertype      #                                              (CF_ETH)
    uint16_t hl             # IPv4 header length in bytes (IHL*4)          (CF_IPV4)
    uint16_t tl             # IPv4 total length                            (CF_IPV4)
    uint16_t frag           # IPv4 flags and fragment offset word          (CF_IPV4)
    uint16_t sport          # TCP/UDP source port                          (CF_L4)
    uint16_t dport          # TCP/UDP destination port                     (CF_L4)
    uint16_t arp_op         # ARP operation                                (CF_ARP)
    uint8_t proto           # IPv4 protocol                                (CF_IPV4)
    uint8_t ttl             # IPv4 TTL                                     (CF_IPV4, full)
    uint8_t icmp_type       # ICMP type, 255 for TCP/UDP                   (CF_L4)
    uint8_t icmp_code       # ICMP code, 255 for TCP/UDP                   (CF_L4)
    uint8_t tcp_flags       # TCP flags byte (FIN 0x01 ... CWR 0x80), 0 for UDP/ICMP (CF_L4)
    uint8_t flags           # CF_* of this frame


cdef inline uint8_t parse_l4(const uint8_t* f, Hdr* h) noexcept nogil:
    """CF_L4 when the IPv4 packet in ``f`` (parsed by parse_headers with CF_IP_LEN_OK: 14 + tl <= L;
    the caller has checked it is a first fragment, frag & 0x1FFF == 0) holds a complete TCP, UDP or
    ICMP header, and its fields in ``h``; else 0.  Also ORs the flag into h.flags."""
    cdef int64_t l4 = ETH_HLEN + h.hl
    cdef int64_t room = <int64_t>h.tl - h.hl
    cdef uint32_t w
    if h.proto == IPPROTO_UDP or h.proto == IPPROTO_TCP:
        if room < (20 if h.proto == IPPROTO_TCP else 8):
            return 0
        w = rd32(f + l4)
        h.sport = <uint16_t>(w >> 16)
        h.dport = <uint16_t>w
        h.tcp_flags = f[l4 + 13] if h.proto == IPPROTO_TCP else 0
        h.icmp_type = 255
        h.icmp_code = 255
        h.flags |= CF_L4
        return CF_L4
    if h.proto == IPPROTO_ICMP and room >= 8:
        h.icmp_type = f[l4]
        h.icmp_code = f[l4 + 1]
        h.sport = 0
        h.dport = 0
        h.tcp_flags = 0
        h.flags |= CF_L4
        return CF_L4
    return 0


cdef inline uint8_t parse_ipv4(const uint8_t* f, int64_t L, Hdr* h, uint8_t fl, int64_t hl,
                               bint full) noexcept nogil:
    """parse_headers' IPv4 part: ``f`` holds version 4 and an IHL*4 = ``hl`` >= 20 header within its
    ``L`` bytes (checked by the caller); returns ``fl`` with CF_IPV4 and the bits it establishes."""
    cdef int64_t tl = rd16(f + 16)
    cdef uint16_t fr = rd16(f + 20)
    fl |= CF_IPV4
    h.hl = <uint16_t>hl
    h.tl = <uint16_t>tl
    h.frag = fr
    if full:
        h.ttl = f[22]
    h.proto = f[23]
    h.src = rd32(f + 26)
    h.dst = rd32(f + 30)
    if fr & 0x3FFF:
        fl |= CF_FRAGMENT
    if tl >= hl and ETH_HLEN + tl <= L:
        fl |= CF_IP_LEN_OK
    elif not full:          # the forwarding pass: not CF_IPV4_OK, decided (see above)
        return fl
    if ipv4_csum_ok(f + ETH_HLEN, hl):
        fl |= CF_CSUM_OK
    elif not full:
        return fl
    if full and (fl & CF_IP_LEN_OK) and (fr & 0x1FFF) == 0:
        fl |= parse_l4(f, h)
    return fl


cdef inline uint8_t parse_headers(const uint8_t* f, int64_t L, Hdr* h, bint full) noexcept nogil:
    """Parse frame ``f`` of ``L`` bytes into ``h`` (see the table above); returns the CF_* flags."""
    cdef uint8_t fl, b0
    cdef uint16_t et
    cdef int64_t hl
    if L < ETH_HLEN:
        h.flags = 0
        return 0
    fl = CF_ETH | ((f[0] & 1) << 7)            # group bit -> CF_GROUP_MAC (0x80)
    h.dst_mac = rd48(f)
    et = rd16(f + 12)
    h.ethertype = et
    if et == ETHERTYPE_IPV4:
        if L >= IPV4_MIN_FRAME:
            b0 = f[14]
            # version 4, IHL >= 5, header inside the frame.  The common header (0x45: IHL 5, inside
            # as L >= 34) has its own copy of the IPv4 parse with hl = 20 a constant: its length and
            # checksum checks fold (no option loop, no hl kept live; BENCHMARKS.md issue 9, 2026-12-02)
            if b0 == 0x45:
                fl = parse_ipv4(f, L, h, fl, 20, full)
            else:
                hl = (b0 & 15) * 4
                if (b0 >> 4) == 4 and hl >= 20 and ETH_HLEN + hl <= L:
                    fl = parse_ipv4(f, L, h, fl, hl, full)
    elif et == ETHERTYPE_ARP:
        if (L >= ARP_LEN and f[14] == 0 and f[15] == 1 and f[16] == 8 and f[17] == 0
                and f[18] == 6 and f[19] == 4):
            fl |= CF_ARP
            h.arp_op = rd16(f + 20)
            h.src = rd32(f + 28)
            h.dst = rd32(f + 38)
    h.flags = fl
    return fl
