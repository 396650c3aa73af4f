"""Which ENI sent each frame of a capture: the ingress port a pcap does not record.

``PortMap.for_network(net, by="src-mac")`` (or ``"src-ip"``: the IPv4 source address, or the
ARP sender address) and ``pmap.ports_for(batch, out=None)`` -> ``int32[n]``, -1 where a frame
maps to no single ENI (no such key, too short, or, by IP, an address owned by ENIs of several
VPCs with overlapping CIDRs).

Why not :func:`fastvpc.classify`: it parses every header field into a dozen arrays; a port
needs 6 (MAC) or 4 (IP) bytes at a fixed offset.  One compiled pass
(:func:`fastvpc.dataplane._ports.map_ports`) reads the key and looks it up in a hash table of
the ENIs' keys (multiplicative hash; the table is grown until every key has its own slot, so a
lookup is one probe and one compare).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from fastvpc.batch import FrameBatch
from fastvpc.dataplane._ports import map_ports
from fastvpc.errors import FastVpcError

__all__ = ["PortBy", "PortMap"]

PortBy = Literal["src-mac", "src-ip"]

_GOLDEN = np.uint64(0x9E37_79B9_7F4A_7C15)
_AMBIGUOUS = -2


def _mac_key(mac: str) -> int:
    """The MAC as the frame's bytes 6..11 read as a little-endian integer."""
    return int.from_bytes(bytes.fromhex(mac.replace(":", "").replace("-", "")), "little")


def _ip_key(ip: Any) -> int:
    """The IPv4 address as its 4 wire bytes read as a little-endian integer."""
    return int.from_bytes(int(ip).to_bytes(4, "big"), "little")


@dataclass
class PortMap:
    """Vectorised frame -> ingress port mapping for a network's ENIs.

    ``keys``/``ports`` (sorted by key) are what was mapped; the hash table is built from them.
    """

    keys: npt.NDArray[np.uint64]
    ports: npt.NDArray[np.int32]
    by: PortBy
    _slot_key: npt.NDArray[np.uint64] = field(init=False, repr=False)
    _slot_port: npt.NDArray[np.int32] = field(init=False, repr=False)
    _shift: np.uint64 = field(init=False, repr=False)
    _mult: np.uint64 = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.by not in ("src-mac", "src-ip"):
            raise FastVpcError(f"port mapping {self.by!r} must be 'src-mac' or 'src-ip'")
        self.keys = np.asarray(self.keys, np.uint64)
        self.ports = np.asarray(self.ports, np.int32)
        self._build_table()

    @classmethod
    def for_network(cls, net: Any, by: PortBy = "src-mac") -> PortMap:
        if by not in ("src-mac", "src-ip"):
            raise FastVpcError(f"port mapping {by!r} must be 'src-mac' or 'src-ip'")
        owners: dict[int, int] = {}
        for eni in net.enis:
            keys = [_mac_key(eni.mac)] if by == "src-mac" else [_ip_key(ip) for ip in eni.ips]
            for k in keys:
                owners[k] = _AMBIGUOUS if k in owners else eni.port
        items = sorted(owners.items())
        return cls(np.array([k for k, _ in items], dtype=np.uint64),
                   np.array([p for _, p in items], dtype=np.int32), by)

    def _build_table(self) -> None:
        # a slot per key, at least 4x as many slots as keys; a key that is never present (all ones
        # beyond 48/32 bits) marks the empty slots
        n = max(1, self.keys.size)
        bits = max(4, int(4 * n - 1).bit_length())
        empty = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
        mult = _GOLDEN
        for attempt in range(64):
            shift = np.uint64(64 - bits)
            slots = (self.keys * mult) >> shift if self.keys.size else np.zeros(0, np.uint64)
            if np.unique(slots).size == slots.size:
                break
            if attempt % 4 == 3:
                bits += 1
            mult = np.uint64((int(mult) * 6364136223846793005 + 1442695040888963407) % (1 << 64) | 1)
        else:  # pragma: no cover - 64 tries over growing tables always separate distinct keys
            raise FastVpcError("cannot build the ENI port table")
        self._slot_key = np.full(1 << bits, empty, np.uint64)
        self._slot_port = np.full(1 << bits, -1, np.int32)
        self._slot_key[slots.astype(np.intp)] = self.keys
        self._slot_port[slots.astype(np.intp)] = np.where(self.ports >= 0, self.ports, -1)
        self._shift, self._mult = shift, mult

    def ports_for(self, batch: FrameBatch, out: npt.NDArray[np.int32] | None = None) -> npt.NDArray[np.int32]:
        """The ingress port of every frame; -1 where it maps to no single ENI.  ``out``: write there."""
        n = len(batch)
        res = np.empty(n, np.int32) if out is None else out
        if not isinstance(res, np.ndarray) or res.dtype != np.int32 or res.shape != (n,):
            raise FastVpcError(f"ports_for: out must be an int32 array of {n} entries")
        r = map_ports(batch.data, batch.offsets, self._slot_key, self._slot_port, int(self._mult),
                      int(self._shift), self.by == "src-ip", res)
        if r != -1:  # pragma: no cover - a FrameBatch's offsets are validated when it is made
            raise FastVpcError(f"ports_for: frame {r} is out of its batch's buffer")
        return res
