"""Compiled frame -> ingress port mapping (the key lookup of :mod:`fastvpc.dataplane.ports`).

One pass over the frames: read the key (source MAC, or IPv4 source / ARP sender address) at
its fixed offset, hash it into the caller's collision-free open table, compare, write the port.
No allocation, no GIL; every read is checked against the frame's length first.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t


cdef inline uint64_t _load(const uint8_t* p, int n) noexcept nogil:
    # little-endian integer of n bytes (the table's keys are built the same way)
    cdef uint64_t v = 0
    cdef int i
    for i in range(n - 1, -1, -1):
        v = (v << 8) | p[i]
    return v


cdef int64_t _map_ports(const uint8_t[::1] data, const int64_t[::1] offsets, const uint64_t[::1] slot_key,
                        const int32_t[::1] slot_port, uint64_t mult, int shift, bint by_ip,
                        int32_t[::1] out) noexcept nogil:
    cdef Py_ssize_t i, n = offsets.shape[0] - 1
    cdef int64_t a, b, length, size = data.shape[0]
    cdef uint64_t key, slot, nslots = <uint64_t>slot_key.shape[0]
    cdef const uint8_t* p
    cdef int etype
    if n < 0 or out.shape[0] < n or slot_port.shape[0] != slot_key.shape[0] or nslots == 0:
        return -2
    for i in range(n):
        a = offsets[i]
        b = offsets[i + 1]
        out[i] = -1
        if a < 0 or b < a or b > size:
            return i
        length = b - a
        p = &data[a] if length > 0 else NULL
        if not by_ip:
            if length < 14:
                continue
            key = _load(p + 6, 6)
        else:
            if length < 14:
                continue
            etype = (p[12] << 8) | p[13]
            if etype == 0x0800 and length >= 34:
                key = _load(p + 26, 4)
            elif etype == 0x0806 and length >= 42:
                key = _load(p + 28, 4)
            else:
                continue
        slot = (key * mult) >> shift
        if slot < nslots and slot_key[slot] == key:
            out[i] = slot_port[slot]
    return -1


def map_ports(const uint8_t[::1] data,         # IN: frame bytes
              const int64_t[::1] offsets,      # IN: Arrow-style offsets, n+1
              const uint64_t[::1] slot_key,    # IN: open table: key of each slot (absent: a value no key has)
              const int32_t[::1] slot_port,    # IN: port of each slot (-1: none)
              uint64_t mult,                   # IN: hash multiplier
              int shift,                       # IN: hash shift (64 - log2(slots))
              bint by_ip,                      # IN: key = IPv4 source / ARP sender (else source MAC)
              int32_t[::1] out,                # OUT: port of each frame, -1 where none (n entries)
              ) -> int:
    """Write every frame's ingress port into ``out``.  Returns -1, the index of the first
    frame whose offsets are out of bounds, or -2 when the array lengths disagree."""
    cdef int64_t r
    if shift < 0 or shift > 63:
        return -2
    with nogil:
        r = _map_ports(data, offsets, slot_key, slot_port, mult, shift, by_ip, out)
    return r
