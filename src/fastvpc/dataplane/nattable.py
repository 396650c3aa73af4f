"""NAT gateway bindings held by a :class:`fastvpc.FlowTable` (docs/edge.md §4, DESIGN §6).

The compiled nat stage reads and writes these arrays in the table pass (``_nattable.pxd`` holds the
C side and the semantics); this module makes them (lazily, the first time a pass needs them, so a
FlowTable that never meets a NAT gateway costs nothing), lists the bindings, and pickles and
validates them with the FlowTable.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np

__all__ = ["BINDING_DTYPE", "FRAG_DTYPE", "IDLE_TIMEOUT_NS", "MAX_FLOWS_PER_DESTINATION", "NatRegion"]

#: the kernel's NatB record (40 bytes)
BINDING_DTYPE = np.dtype([("nat", "<u4"), ("inside_ip", "<u4"), ("remote_ip", "<u4"), ("nat_ip", "<u4"),
                          ("inside_port", "<u2"), ("remote_port", "<u2"), ("nat_port", "<u2"), ("proto", "u1"),
                          ("pad", "u1"), ("first_seen", "<i8"), ("last_seen", "<i8")])
_DEST_DTYPE = np.dtype([("nat", "<u4"), ("nat_ip", "<u4"), ("remote_ip", "<u4"), ("remote_port", "<u2"),
                        ("proto", "u1"), ("pad", "u1"), ("count", "<u4"), ("pad2", "<u4")])
#: the kernel's NatFrag record (32 bytes): a UDP first fragment's (src, dst, IP id) -> its binding's outside key
FRAG_DTYPE = np.dtype([("src", "<u4"), ("dst", "<u4"), ("ipid", "<u2"), ("pad", "<u2"), ("nat", "<u4"),
                       ("nat_ip", "<u4"), ("remote_ip", "<u4"), ("nat_port", "<u2"), ("remote_port", "<u2"),
                       ("proto", "u1"), ("pad2", "u1"), ("pad3", "u1"), ("pad4", "u1")])
N_FRAGS = 4096
MAX_FLOWS_PER_DESTINATION = 55_000
IDLE_TIMEOUT_NS = 350 * 1_000_000_000
# meta slots (_nattable.pxd NM_*)
_COUNT, _NDEST, _CAP, _MAXDEST, _IDLE, _FHEAD, _FCOUNT, _NEXTEXP, _HMASK = range(9)
_N_META = 16
_INT64_MAX = (1 << 63) - 1


def _mix(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xC4CEB9FE1A85EC53)
    x ^= x >> np.uint64(33)
    return x


def _h5(nat: Any, proto: Any, a: Any, pa: Any, r: Any, pr: Any) -> np.ndarray:
    u = np.uint64
    with np.errstate(over="ignore"):
        inner = _mix((np.asarray(r, u) << u(32)) | (np.asarray(pa, u) << u(16)) | np.asarray(pr, u))
        return _mix(((np.asarray(nat, u) << u(32)) | np.asarray(a, u)) ^ inner ^ (np.asarray(proto, u) << u(56)))


class NatRegion:
    """The NAT bindings of one FlowTable: ``capacity`` bindings at most (the FlowTable's), at most
    ``max_per_destination`` to one (NAT IP, remote IP, remote port, protocol), idle ``idle_timeout_ns``."""

    def __init__(self, capacity: int, max_per_destination: int = MAX_FLOWS_PER_DESTINATION,
                 idle_timeout_ns: int = IDLE_TIMEOUT_NS) -> None:
        if capacity < 1 or max_per_destination < 1 or idle_timeout_ns < 1:
            raise ValueError("NAT region: capacity, max_per_destination and idle_timeout_ns must be positive")
        nh = 4
        while nh < 2 * capacity:
            nh *= 2
        from fastvpc.dataplane.state import _zeroed_storage   # huge pages when large: each probe is a TLB miss else

        self.b = _zeroed_storage(capacity * BINDING_DTYPE.itemsize)
        self.d = _zeroed_storage(capacity * _DEST_DTYPE.itemsize)
        self.hin = _zeroed_storage(nh * 4).view(np.int32)
        self.hout = _zeroed_storage(nh * 4).view(np.int32)
        self.hd = _zeroed_storage(nh * 4).view(np.int32)
        for h in (self.hin, self.hout, self.hd):
            h.fill(-1)
        self.fr = np.zeros(N_FRAGS * FRAG_DTYPE.itemsize, dtype=np.uint8)
        self.meta = np.zeros(_N_META, dtype=np.int64)
        self.meta[_CAP] = capacity
        self.meta[_MAXDEST] = max_per_destination
        self.meta[_IDLE] = idle_timeout_ns
        self.meta[_NEXTEXP] = _INT64_MAX
        self.meta[_HMASK] = nh - 1

    @property
    def capacity(self) -> int:
        return int(self.meta[_CAP])

    @property
    def max_per_destination(self) -> int:
        return int(self.meta[_MAXDEST])

    @property
    def idle_timeout_ns(self) -> int:
        return int(self.meta[_IDLE])

    def __len__(self) -> int:
        return int(self.meta[_COUNT])

    def bindings(self) -> np.ndarray:
        """A copy of the held bindings (live or expired but not yet reclaimed), BINDING_DTYPE."""
        return self.b.view(BINDING_DTYPE)[:len(self)].copy()

    def fragments(self) -> np.ndarray:
        """The remembered UDP first fragments, oldest first, FRAG_DTYPE."""
        ring = self.fr.view(FRAG_DTYPE)
        head, n = int(self.meta[_FHEAD]), int(self.meta[_FCOUNT])
        return ring[(head + np.arange(n)) % N_FRAGS].copy()

    def clear(self) -> None:
        self.hin.fill(-1)
        self.hout.fill(-1)
        self.hd.fill(-1)
        self.meta[[_COUNT, _NDEST, _FHEAD, _FCOUNT]] = 0
        self.meta[_NEXTEXP] = _INT64_MAX

    # --- pickling: the rows, rebuilt (hashes and counts) on load, never trusted
    def state(self) -> tuple[int, int, bytes, bytes]:
        return (self.max_per_destination, self.idle_timeout_ns, self.bindings().tobytes(), self.fragments().tobytes())

    @classmethod
    def restore(cls, capacity: int, max_per_destination: Any, idle_timeout_ns: Any, rows: Any, frags: Any,
                clock: int, bad: Any) -> NatRegion:
        """A region holding ``rows`` and ``frags`` (from :meth:`state`), validated; ``bad(field, value,
        why)`` makes the error."""
        for name, v in (("nat_max_per_destination", max_per_destination), ("nat_idle_timeout_ns", idle_timeout_ns)):
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= _INT64_MAX // 4:
                raise bad(name, v, "not a positive int")
        for name, v, dt in (("nat_bindings", rows, BINDING_DTYPE), ("nat_fragments", frags, FRAG_DTYPE)):
            if not isinstance(v, bytes):
                raise bad(name, type(v).__name__, "not bytes")
            if len(v) % dt.itemsize:
                raise bad(name, len(v), f"length is not a multiple of {dt.itemsize}")
        r = np.frombuffer(rows, dtype=BINDING_DTYPE)
        f = np.frombuffer(frags, dtype=FRAG_DTYPE)
        if r.size > capacity:
            raise bad("nat_bindings", r.size, f"more bindings than capacity {capacity}")
        if f.size > N_FRAGS:
            raise bad("nat_fragments", f.size, f"more than {N_FRAGS} fragments")
        checks = [
            ("proto", ~np.isin(r["proto"], (1, 6, 17)), "not TCP, UDP or ICMP"),
            ("nat_port", (r["nat_port"] < 1024), "outside 1024-65535"),
            ("remote_port", (r["proto"] == 1) & (r["remote_port"] != 0), "an ICMP binding has remote port 0"),
            ("pad", r["pad"] != 0, "not zero"),
            ("first_seen", (r["first_seen"] < 0) | (r["first_seen"] > r["last_seen"]), "outside 0..last_seen"),
            ("last_seen", r["last_seen"] > clock, f"after the table's clock {clock}"),
        ]
        fchecks = [("proto", f["proto"] != 17, "a fragment entry is UDP"),
                   ("pad", (f["pad"] != 0) | (f["pad2"] != 0) | (f["pad3"] != 0) | (f["pad4"] != 0), "not zero")]
        for what, arr, cks in (("nat_bindings", r, checks), ("nat_fragments", f, fchecks)):
            for field, mask, why in cks:
                idx = np.flatnonzero(mask)
                if idx.size:
                    raise bad(what, int(idx[0]), f"row {int(idx[0])}: {field} {why}")
        for what, keys in (("inside", (r["nat"], r["proto"], r["inside_ip"], r["inside_port"], r["remote_ip"],
                                       r["remote_port"])),
                           ("outside", (r["nat"], r["proto"], r["nat_ip"], r["nat_port"], r["remote_ip"],
                                        r["remote_port"]))):
            k = np.rec.fromarrays(keys) if r.size else None
            if k is not None and np.unique(k).size != r.size:
                raise bad("nat_bindings", what, f"two bindings share an {what} key")
        fk = np.rec.fromarrays((f["src"], f["dst"], f["ipid"])) if f.size else None
        if fk is not None and np.unique(fk).size != f.size:
            raise bad("nat_fragments", "key", "two fragment entries share a (source, destination, IP id)")
        reg = cls(capacity, max_per_destination, idle_timeout_ns)
        reg._load(r, f)
        dest = np.rec.fromarrays((r["nat"], r["nat_ip"], r["remote_ip"], r["remote_port"], r["proto"])) if r.size \
            else None
        if dest is not None:
            _, counts = np.unique(dest, return_counts=True)
            if counts.max() > max_per_destination:
                raise bad("nat_bindings", int(counts.max()), f"more than {max_per_destination} bindings to one "
                                                               "destination")
        return reg

    def _load(self, r: np.ndarray, f: np.ndarray) -> None:
        n = r.size
        self.b.view(BINDING_DTYPE)[:n] = r
        mask = np.uint64(self.meta[_HMASK])
        hin = _h5(r["nat"], r["proto"], r["inside_ip"], r["inside_port"], r["remote_ip"], r["remote_port"]) & mask
        hout = _h5(r["nat"].astype(np.uint64) ^ np.uint64(0x5BD1E995), r["proto"], r["nat_ip"], r["nat_port"],
                   r["remote_ip"], r["remote_port"]) & mask
        for h, homes in ((self.hin, hin), (self.hout, hout)):
            for i, s in enumerate(homes.tolist()):
                while h[s] >= 0:
                    s = (s + 1) & int(mask)
                h[s] = i
        dests: dict[tuple[int, ...], int] = {}
        for row in r.tolist():
            key = (row[0], row[3], row[2], row[5], row[7])   # nat, nat_ip, remote_ip, remote_port, proto
            dests[key] = dests.get(key, 0) + 1
        drec = self.d.view(_DEST_DTYPE)
        for j, (dk, count) in enumerate(dests.items()):
            drec[j] = (dk[0], dk[1], dk[2], dk[3], dk[4], 0, count, 0)
            s = int(_h5(np.uint64(dk[0]) ^ np.uint64(0x27D4EB2F), dk[4], dk[1], 0, dk[2], dk[3])) & int(mask)
            while self.hd[s] >= 0:
                s = (s + 1) & int(mask)
            self.hd[s] = j
        self.meta[_COUNT] = n
        self.meta[_NDEST] = len(dests)
        self.fr.view(FRAG_DTYPE)[:f.size] = f
        self.meta[_FHEAD] = 0
        self.meta[_FCOUNT] = f.size
        self.meta[_NEXTEXP] = int((r["last_seen"] + self.idle_timeout_ns).min()) if n else _INT64_MAX


def binding_rows_text(rows: np.ndarray) -> list[str]:
    """Readable bindings (for reprs and debugging)."""
    a = ipaddress.IPv4Address
    return [f"{a(int(x['inside_ip']))}:{x['inside_port']} -> {a(int(x['nat_ip']))}:{x['nat_port']} -> "
            f"{a(int(x['remote_ip']))}:{x['remote_port']} proto {x['proto']}" for x in rows]
