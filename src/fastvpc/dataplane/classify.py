"""``fastvpc.classify(batch)``: every frame's header fields as numpy arrays, in one compiled pass.

Each field is an array of length ``n`` (one row per frame).  A field that the frame does not
carry holds its *absent value*; ``flags`` says which parts were found.

=============  ========  ====================================================  ===============
field          dtype     meaning                                               absent value
=============  ========  ====================================================  ===============
ethertype      uint16    Ethernet type (bytes 12-13)                           0 (frame < 14 B)
dst_mac        uint64    destination MAC as a 48-bit integer                   0 (frame < 14 B)
src_mac        uint64    source MAC as a 48-bit integer                        0 (frame < 14 B)
ip_src         uint32    IPv4 source; for ARP the sender protocol address      0
ip_dst         uint32    IPv4 destination; for ARP the target protocol address 0
proto          uint8     IPv4 protocol                                         0
ttl            uint8     IPv4 TTL                                              0
ip_len         uint16    IPv4 total length field (as written, even if lying)   0
sport, dport   uint16    TCP/UDP ports (first fragment, complete L4 header)    0
icmp_type      uint8     ICMP type (first fragment, 8-byte ICMP header)        255
icmp_code      uint8     ICMP code (same condition)                            255
arp_op         uint16    ARP operation (1 request, 2 reply)                    0
flags          uint8     bit set of ``FLAG_*`` below                           0
=============  ========  ====================================================  ===============

IPv4 fields (``ip_src`` ... ``ttl``, ``ip_len``) are filled when ``FLAG_IPV4`` is set: ethertype
0x0800, version 4, IHL >= 5 and the whole IHL*4-byte header inside the frame (the checksum and
total length need not be valid; see ``FLAG_CSUM_OK`` / ``FLAG_IP_LEN_OK``).  L4 fields need
``FLAG_IP_LEN_OK``, fragment offset 0, and the TCP (20 bytes), UDP (8) or ICMP (8) header inside
the total length; then ``FLAG_L4`` is set.  ARP fields need ``FLAG_ARP``: ethertype 0x0806, frame
>= 42 bytes, htype 1, ptype 0x0800, hlen 6, plen 4.  VLAN-tagged frames are not looked into.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from fastvpc._kernels import classify as _k
from fastvpc._threads import resolve_n_threads
from fastvpc.batch import FrameBatch
from fastvpc.errors import FrameBatchError

__all__ = ["Classified", "classify", "FLAG_ETH", "FLAG_ARP", "FLAG_IPV4", "FLAG_IP_LEN_OK", "FLAG_CSUM_OK",
           "FLAG_FRAGMENT", "FLAG_L4", "FLAG_GROUP_MAC"]

_C = _k._constants()
#: Complete 14-byte Ethernet header.
FLAG_ETH: int = _C["CF_ETH"]
#: Ethertype 0x0806 with a complete IPv4-over-Ethernet ARP body.
FLAG_ARP: int = _C["CF_ARP"]
#: Ethertype 0x0800, version 4, IHL >= 5, header inside the frame.
FLAG_IPV4: int = _C["CF_IPV4"]
#: IHL*4 <= total length and 14 + total length <= frame length.
FLAG_IP_LEN_OK: int = _C["CF_IP_LEN_OK"]
#: IPv4 header checksum verifies.
FLAG_CSUM_OK: int = _C["CF_CSUM_OK"]
#: MF set or fragment offset non-zero.
FLAG_FRAGMENT: int = _C["CF_FRAGMENT"]
#: TCP/UDP/ICMP header of a first fragment complete within the total length.
FLAG_L4: int = _C["CF_L4"]
#: Destination MAC is a group (broadcast/multicast) address.
FLAG_GROUP_MAC: int = _C["CF_GROUP_MAC"]

_FIELDS = (("ethertype", np.uint16), ("dst_mac", np.uint64), ("src_mac", np.uint64), ("ip_src", np.uint32),
           ("ip_dst", np.uint32), ("proto", np.uint8), ("ttl", np.uint8), ("ip_len", np.uint16),
           ("sport", np.uint16), ("dport", np.uint16), ("icmp_type", np.uint8), ("icmp_code", np.uint8),
           ("arp_op", np.uint16), ("flags", np.uint8))


class Classified(NamedTuple):
    """Header fields of every frame of a batch (see the module docstring for absent values)."""

    ethertype: npt.NDArray[np.uint16]
    dst_mac: npt.NDArray[np.uint64]
    src_mac: npt.NDArray[np.uint64]
    ip_src: npt.NDArray[np.uint32]
    ip_dst: npt.NDArray[np.uint32]
    proto: npt.NDArray[np.uint8]
    ttl: npt.NDArray[np.uint8]
    ip_len: npt.NDArray[np.uint16]
    sport: npt.NDArray[np.uint16]
    dport: npt.NDArray[np.uint16]
    icmp_type: npt.NDArray[np.uint8]
    icmp_code: npt.NDArray[np.uint8]
    arp_op: npt.NDArray[np.uint16]
    flags: npt.NDArray[np.uint8]


def classify(batch: FrameBatch, out: Classified | None = None, n_threads: int | None = None) -> Classified:
    """Header fields of every frame of ``batch``, in one compiled pass (releases the GIL).

    ``out`` reuses the arrays of an earlier result when each holds at least ``n`` rows (the
    result's arrays are then the first ``n`` rows of them).
    """
    if not isinstance(batch, FrameBatch):
        raise FrameBatchError(f"classify() wants a fastvpc.FrameBatch, not {type(batch).__name__}")
    n = len(batch)
    nt = resolve_n_threads(n_threads)
    if out is not None:
        if not isinstance(out, Classified):
            raise TypeError(f"out must be a Classified from an earlier classify() call, not {type(out).__name__}")
        arrays: list[Any] = []
        for (name, dt), arr in zip(_FIELDS, out):
            if not (isinstance(arr, np.ndarray) and arr.dtype == dt and arr.ndim == 1 and arr.flags.c_contiguous
                    and arr.flags.writeable and arr.shape[0] >= n):
                arr = np.empty(n, dtype=dt)
            arrays.append(arr[:n])
    else:
        arrays = [np.empty(n, dtype=dt) for _, dt in _FIELDS]
    args: list[Any] = [batch.data, batch.offsets, *arrays, nt]
    _k.classify_batch(*args)
    return Classified(*arrays)
