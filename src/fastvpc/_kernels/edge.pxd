# The edge's byte work (docs/edge.md §6): RFC 1624 incremental checksum updates and the 1:1 address
# translations of the internet gateway, in place.  Used by the edge stages (stages/edge_*.pxd) and the
# rewrite stage; the same arithmetic as fastvpc.reference_edge (checksum_adjust, translate_*), so both
# engines write the same bytes.
#
# Every function works on a frame the ingress checks passed (CF_IPV4_OK: 14 + total length <= L);
# an L4 checksum is touched only when the L4 header lies wholly inside the IP packet of a first
# fragment: nothing is written past the frame.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, int64_t

from fastvpc._kernels.bytes cimport rd16, rd32, wr16, wr32
from fastvpc._kernels.headers cimport ETH_HLEN, IPPROTO_TCP, IPPROTO_UDP


cdef inline uint16_t cs_adj32(uint16_t hc, uint32_t old, uint32_t new) noexcept nogil:
    """RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), over the two 16-bit words of an address."""
    cdef uint32_t s = (~hc & 0xFFFFu) + (~(old >> 16) & 0xFFFFu) + (~old & 0xFFFFu) + (new >> 16) + (new & 0xFFFFu)
    while s >> 16:
        s = (s & 0xFFFFu) + (s >> 16)
    return <uint16_t>(~s & 0xFFFFu)


cdef inline void xlate_addr(uint8_t* f,          # IN/OUT the frame (Ethernet + IPv4, validated)
                            uint32_t at,         # IN  14 + 12 (source) or 14 + 16 (destination)
                            uint32_t new,        # IN  the new address
                            ) noexcept nogil:
    """Rewrite one IPv4 address of the frame 1:1, fixing the IPv4 header checksum and the TCP / UDP
    checksum (pseudo-header) incrementally; a UDP checksum 0 stays 0, a result 0 is written 0xFFFF;
    ICMP has no pseudo-header (untouched); non-first fragments carry no L4 header."""
    cdef uint32_t old = rd32(f + at)
    cdef uint32_t hl = (f[ETH_HLEN] & 0x0F) * 4
    cdef uint32_t tl = rd16(f + ETH_HLEN + 2)
    cdef uint32_t l4 = ETH_HLEN + hl
    cdef uint32_t end = ETH_HLEN + tl
    cdef uint8_t proto = f[ETH_HLEN + 9]
    cdef uint16_t c
    wr16(f + ETH_HLEN + 10, cs_adj32(rd16(f + ETH_HLEN + 10), old, new))
    wr32(f + at, new)
    if (rd16(f + ETH_HLEN + 6) & 0x1FFF) != 0:
        return
    if proto == IPPROTO_TCP and l4 + 20 <= end:
        wr16(f + l4 + 16, cs_adj32(rd16(f + l4 + 16), old, new))
    elif proto == IPPROTO_UDP and l4 + 8 <= end:
        c = rd16(f + l4 + 6)
        if c != 0:
            c = cs_adj32(c, old, new)
            wr16(f + l4 + 6, c if c != 0 else 0xFFFF)
