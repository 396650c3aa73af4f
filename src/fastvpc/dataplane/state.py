"""Connection tracking state: :class:`FlowTable` (``fastvpc.FlowTable``).

A FlowTable is the mutable state a stateful ``Dataplane.process(batch, state=flows, now=...)`` reads
and writes (DESIGN.md §5); it lives outside the immutable Dataplane and is keyed by stable
identities (a 32-bit ENI identity, a zone, the normalised 5-tuple), so it survives a recompile.
The table itself is compiled (``fastvpc.dataplane._flowtable``, a C API a kernel stage cimports);
this module adds the Python face: validation, ``track()`` for tests and drivers, ``flows()``,
``expire()``, pickling with full validation on load, and the one-pass-at-a-time guard.

Semantics in brief (the module docstring of ``_flowtable.pyx`` has the details):

* an entry is live while ``now <= last_seen + timeout``; timeouts come from the ENI's tracking
  record (:func:`timeouts_record`), AWS's where AWS gives one (TCP established 432,000 s, UDP 30 s,
  UDP stream 180 s, other protocols 600 s), Linux nf_conntrack's otherwise;
* TCP states as Linux conntrack; only a SYN or a plain ACK opens an entry (loose pickup);
* UDP: UNREPLIED -> REPLIED -> STREAM (a second request-response exchange);
* ICMP query types by (requester, responder, identifier, query type); errors are never tracked;
* a new entry when ``capacity`` entries are live -> ``FULL`` (the stage drops ``FLOW_TABLE_FULL``);
  expired entries are reclaimed when space is needed, or by :meth:`FlowTable.expire`.
"""

from __future__ import annotations

import enum
import hashlib
import mmap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from fastvpc.dataplane import _flowtable as _ft
from fastvpc.dataplane.nattable import BINDING_DTYPE, IDLE_TIMEOUT_NS, MAX_FLOWS_PER_DESTINATION, NatRegion
from fastvpc.errors import FastVpcError

__all__ = [
    "ENTRY_DTYPE",
    "FLOWS_DTYPE",
    "TIMEOUTS_DTYPE",
    "Admit",
    "Direction",
    "FlowState",
    "FlowTable",
    "FlowTableBusyError",
    "FlowTableError",
    "TrackCode",
    "Tracked",
    "flow_hash",
    "timeouts_array",
    "timeouts_record",
]

_LAYOUT = _ft._layout()
MAX_TIMEOUT: int = _LAYOUT["max_timeout"]
MAX_NOW: int = 1 << 62          # ns (146 years): keeps now + timeout far from int64 overflow
MAX_CAPACITY: int = 1 << 31
LOAD: float = 0.76              # most held entries per slot: 48 B / 0.76 = 63.2 B per tracked flow


class FlowTableError(FastVpcError, ValueError):
    """A FlowTable input or a pickled FlowTable is invalid; ``field`` names the field, ``value`` the value."""

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (self.args[0] if self.args else "", self.field, self.value))


def _rebuild_error(message: str, field: str | None, value: object) -> FlowTableError:
    return FlowTableError(message, field=field, value=value)


class FlowTableBusyError(FastVpcError, RuntimeError):
    """A second pass tried to use a FlowTable while another holds it (one ``process()`` at a time)."""


class TrackCode(enum.IntEnum):
    """Per-packet result of tracking (what the conntrack stage does with it)."""

    MISS = _LAYOUT["codes"]["MISS"]   # no tracked flow and the rules deny: the SG's drop
    HIT = _LAYOUT["codes"]["HIT"]     # a tracked flow: admitted whatever the rules say now
    NEW = _LAYOUT["codes"]["NEW"]     # admitted by the rules, opened an entry
    FULL = _LAYOUT["codes"]["FULL"]   # needed an entry, `capacity` entries are live: DROP(FLOW_TABLE_FULL)
    PASS = _LAYOUT["codes"]["PASS"]   # admitted by the rules, opens no entry


class Direction(enum.IntEnum):
    ORIGINAL = 0    # as the flow's first packet
    REPLY = 1


class Admit(enum.IntEnum):
    """What the rules say about a packet that belongs to no tracked flow (``track(admitted=...)``)."""

    DENY = 0
    ADMIT = 1        # admitted: open an entry when the packet may open one
    UNTRACKED = 2    # admitted by AWS's untracked-flow rule: never opens an entry


class FlowState(enum.IntEnum):
    """Flow states (``flows()['state']``, ``track().state``); the TCP ones are Linux conntrack's.

    The numbers are the compiled FT_S_* (``_flowtable.pxd``); a test checks they match."""

    NONE = 0
    TCP_SYN_SENT = 1
    TCP_SYN_RECV = 2
    TCP_ESTABLISHED = 3
    TCP_FIN_WAIT = 4
    TCP_CLOSE_WAIT = 5
    TCP_LAST_ACK = 6
    TCP_TIME_WAIT = 7
    TCP_CLOSE = 8
    TCP_SYN_SENT2 = 9
    UDP_UNREPLIED = 10      # no reply yet
    UDP_REPLIED = 11        # one request-response exchange
    UDP_STREAM = 12         # more than one: the 180 s class
    ICMP_UNREPLIED = 13
    ICMP_REPLIED = 14
    OTHER_UNREPLIED = 15
    OTHER_REPLIED = 16

_TCP_STATES = range(FlowState.TCP_SYN_SENT, FlowState.TCP_SYN_SENT2 + 1)
_UDP_STATES = range(FlowState.UDP_UNREPLIED, FlowState.UDP_STREAM + 1)
_ICMP_STATES = range(FlowState.ICMP_UNREPLIED, FlowState.ICMP_REPLIED + 1)
_OTHER_STATES = range(FlowState.OTHER_UNREPLIED, FlowState.OTHER_REPLIED + 1)
_F_ORIG_HI = _LAYOUT["flags"]["ORIG_HI"]
_F_LAST_REPLY = _LAYOUT["flags"]["LAST_REPLY"]
_F_MASK = _LAYOUT["flags"]["MASK"]
_BYTES_BITS = _LAYOUT["bytes_bits"]
_ICMP_QUERY_TYPES = (8, 13, 15, 17)

# The compiled FtEntry (48 bytes, native byte order); see _flowtable.pxd.
ENTRY_DTYPE = np.dtype([
    ("eni", "=u4"), ("a", "=u4"), ("b", "=u4"), ("pa", "=u2"), ("pb", "=u2"),
    ("proto", "u1"), ("zone", "u1"), ("state", "u1"), ("flags", "u1"),
    ("packets", "=u4"), ("first_ns", "=i8"), ("last_ns", "=i8"), ("bytes_tmo", "=u8"),
])

TIMEOUT_FIELDS = ("tcp_syn_sent", "tcp_syn_recv", "tcp_established", "tcp_fin_wait", "tcp_close_wait",
                  "tcp_last_ack", "tcp_time_wait", "tcp_close", "tcp_syn_sent2", "udp", "udp_stream",
                  "icmp", "other")
# The compiled FtTimeouts (16 x uint32 seconds, 64 bytes; the last three reserved, zero).
TIMEOUTS_DTYPE = np.dtype([(f, "=u4") for f in TIMEOUT_FIELDS] + [(f"reserved{i}", "=u4") for i in range(3)])

FLOWS_DTYPE = np.dtype([
    ("eni", "u4"),          # stable ENI identity
    ("zone", "u1"),
    ("proto", "u1"),
    ("src", "u4"),          # the flow's original direction (its first packet's source), host order
    ("dst", "u4"),
    ("sport", "u2"),        # ICMP: the identifier
    ("dport", "u2"),        # ICMP: the request's type (8 echo, 13 timestamp, 15 information, 17 mask)
    ("state", "u1"),        # FlowState
    ("first_seen", "i8"),   # ns
    ("last_seen", "i8"),    # ns
    ("packets", "u8"),
    ("bytes", "u8"),
    ("timeout", "u4"),      # idle timeout in s, as of the last packet
    ("expires", "i8"),      # last_seen + timeout (ns): live while now <= expires
])

assert ENTRY_DTYPE.itemsize == _LAYOUT["entry_size"], "ENTRY_DTYPE does not match FtEntry"
assert TIMEOUTS_DTYPE.itemsize == _LAYOUT["timeouts_size"], "TIMEOUTS_DTYPE does not match FtTimeouts"

DEFAULT_TIMEOUTS: Mapping[str, int] = {
    f: int(v) for f, v in zip(TIMEOUT_FIELDS, np.frombuffer(_ft.default_timeouts(), dtype=TIMEOUTS_DTYPE)[0])
}


# ----------------------------------------------------------------------------- timeouts

def _timeout_value(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise FlowTableError(f"timeout {name} must be an int number of seconds, got {v!r}", field=name, value=v)
    if not 0 <= int(v) <= MAX_TIMEOUT:
        raise FlowTableError(f"timeout {name} = {v} s is outside 0..{MAX_TIMEOUT}", field=name, value=v)
    return int(v)


def timeouts_record(tracking: object = None, **overrides: int) -> np.ndarray:
    """One ENI's idle timeouts (seconds) as the compiled ``FtTimeouts`` record (a 0-d TIMEOUTS_DTYPE array).

    ``tracking`` may be None (defaults), an object with attributes named as :data:`TIMEOUT_FIELDS`
    (``fv.Tracking(tcp_established=..., udp=..., udp_stream=...)``: missing or None attributes keep
    the default), or a mapping with those keys; keyword arguments override both.
    """
    vals = dict(DEFAULT_TIMEOUTS)
    if tracking is not None:
        if isinstance(tracking, np.ndarray) and tracking.dtype == TIMEOUTS_DTYPE and tracking.size == 1:
            tracking = {f: int(tracking.reshape(-1)[0][f]) for f in TIMEOUT_FIELDS}
        for f in TIMEOUT_FIELDS:
            v = tracking.get(f) if isinstance(tracking, Mapping) else getattr(tracking, f, None)
            if v is not None:
                vals[f] = _timeout_value(f, v)
        if isinstance(tracking, Mapping):
            unknown = sorted(set(tracking) - set(TIMEOUT_FIELDS))
            if unknown:
                raise FlowTableError(f"unknown timeout {unknown[0]!r} (known: {', '.join(TIMEOUT_FIELDS)})",
                                     field=unknown[0], value=tracking[unknown[0]])
    for f, v in overrides.items():
        if f not in DEFAULT_TIMEOUTS:
            raise FlowTableError(f"unknown timeout {f!r} (known: {', '.join(TIMEOUT_FIELDS)})", field=f, value=v)
        vals[f] = _timeout_value(f, v)
    rec = np.zeros((), dtype=TIMEOUTS_DTYPE)
    for f, v in vals.items():
        rec[f] = v
    return rec


def timeouts_array(trackings: Any) -> np.ndarray:
    """Records for several ENIs (``track(timeouts=..., timeout_index=...)``, or a stage's per-ENI table)."""
    recs = [timeouts_record(t) for t in trackings]
    out = np.zeros(len(recs), dtype=TIMEOUTS_DTYPE)
    for i, r in enumerate(recs):
        out[i] = r
    return out


# ----------------------------------------------------------------------------- hashing

def _int_array(name: str, x: Any, n: int | None, dtype: Any, lo: int, hi: int) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    if a.dtype.kind not in "iu":
        raise FlowTableError(f"{name} must hold integers, got dtype {a.dtype}", field=name, value=a.dtype)
    if a.ndim == 0 and n is not None:
        a = np.full(n, a, dtype=a.dtype)
    if a.ndim != 1:
        raise FlowTableError(f"{name} must be 1-D, got shape {a.shape}", field=name, value=a.shape)
    if n is not None and a.shape[0] != n:
        raise FlowTableError(f"{name} has {a.shape[0]} values, expected {n}", field=name, value=a.shape[0])
    if a.size:
        mn, mx = a.min(), a.max()
        if mn < lo or mx > hi:
            bad = int(np.flatnonzero((a < lo) | (a > hi))[0])
            raise FlowTableError(f"{name}[{bad}] = {a[bad]} is outside {lo}..{hi}", field=name, value=int(a[bad]))
    return np.ascontiguousarray(a, dtype=dtype)


def _length_of(*arrays: Any) -> int:
    """The length of the first 1-D argument (scalars broadcast to it; all scalars: one packet)."""
    for x in arrays:
        if x is not None and len(np.shape(x)) >= 1:
            return int(np.shape(x)[0])
    return 1


def flow_hash(proto: Any, src: Any, dst: Any, sport: Any, dport: Any) -> npt.NDArray[np.uint64]:
    """Direction-symmetric flow hash per packet (uint64): both directions of a flow hash alike.

    TCP (6) and UDP (17) hash the unordered pair of (address, port); ICMP (1) the unordered addresses
    and the identifier (pass it as ``sport``; ``dport`` is ignored); other protocols the unordered
    addresses.  No ENI goes in, so a flow's entries at both of its ENIs meet on one shard: use
    ``flow_hash(...) % n_workers`` to split a replay across workers.  The same function
    (``ft_flow_hash``) is in the C API.
    """
    n = _length_of(proto, src, dst, sport, dport)
    p = _int_array("proto", proto, n, np.uint8, 0, 255)
    s = _int_array("src", src, n, np.uint32, 0, 0xFFFFFFFF)
    d = _int_array("dst", dst, n, np.uint32, 0, 0xFFFFFFFF)
    sp = _int_array("sport", sport, n, np.uint16, 0, 0xFFFF)
    dp = _int_array("dport", dport, n, np.uint16, 0, 0xFFFF)
    out = np.empty(n, dtype=np.uint64)
    _ft.flow_hash_batch(p, s, d, sp, dp, out)
    return out


# ----------------------------------------------------------------------------- storage

def _zeroed_storage(nbytes: int) -> np.ndarray:
    """A zeroed, 64-byte aligned uint8 array; 1 MiB or more in an anonymous mapping advised for
    transparent huge pages (random probes into a 64 MB table then miss the TLB far less)."""
    huge = 2 << 20
    if nbytes >= (1 << 20) and hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            # MAP_PRIVATE: mmap.mmap(-1, n) alone is MAP_SHARED, i.e. shmem, whose huge pages follow
            # shmem_enabled (usually "never"): the table then sat in 4 KiB pages, one TLB miss per probe
            mm = mmap.mmap(-1, nbytes + huge, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            mm.madvise(mmap.MADV_HUGEPAGE)
            raw = np.frombuffer(mm, dtype=np.uint8)
            skip = (-raw.ctypes.data) % huge
            return raw[skip:skip + nbytes]
        except (OSError, ValueError):  # pragma: no cover - no THP support
            pass
    raw = np.zeros(nbytes + 64, dtype=np.uint8)
    skip = (-raw.ctypes.data) % 64
    return raw[skip:skip + nbytes]


def _n_slots(capacity: int) -> int:
    return max(capacity + 1, -(-capacity * 100 // int(LOAD * 100)))


class Tracked(NamedTuple):
    """Per-packet results of :meth:`FlowTable.track` (uint8 arrays)."""

    code: np.ndarray        # TrackCode
    direction: np.ndarray   # Direction (ORIGINAL for codes other than HIT)
    state: np.ndarray       # FlowState after the packet (NONE when it has no entry)


# ----------------------------------------------------------------------------- FlowTable

class FlowTable(_ft.FlowTableCore):
    """Connection tracking state: at most ``capacity`` tracked flows, 63.2 bytes each at most.

    ``len(ft)`` counts held entries (live or expired but not yet reclaimed: call ``expire(now)`` first
    for the live count); ``flows()`` lists them; ``expire(now)`` reclaims the expired ones.  Times are
    int ns and never go backwards (``ValueError``).  One pass at a time: ``acquire()``/``release()``
    (or ``with ft.guard():``) around a pass; every method here takes the guard itself and raises
    :class:`FlowTableBusyError` while another pass holds it.
    """

    def __init__(self, capacity: int = 1_000_000, *, nat_max_per_destination: int = MAX_FLOWS_PER_DESTINATION) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)):
            raise TypeError(f"FlowTable capacity must be an int, got {capacity!r}")
        if not 1 <= int(capacity) <= MAX_CAPACITY:
            raise FlowTableError(f"FlowTable capacity {capacity} is outside 1..{MAX_CAPACITY}",
                                 field="capacity", value=capacity)
        if isinstance(nat_max_per_destination, bool) or not isinstance(nat_max_per_destination, (int, np.integer)) \
                or not 1 <= int(nat_max_per_destination) <= MAX_FLOWS_PER_DESTINATION:
            raise FlowTableError(f"FlowTable nat_max_per_destination {nat_max_per_destination!r} is outside "
                                 f"1..{MAX_FLOWS_PER_DESTINATION}", field="nat_max_per_destination",
                                 value=nat_max_per_destination)
        capacity = int(capacity)
        n_slots = _n_slots(capacity)
        self._attach(_zeroed_storage(n_slots * ENTRY_DTYPE.itemsize), capacity, n_slots)
        #: NAT gateway bindings (docs/edge.md §4), made the first time a pass meets NAT gateways
        self._nat: NatRegion | None = None
        self._nat_max = int(nat_max_per_destination)

    # --- NAT gateway bindings (a region of their own: dataplane/nattable.py, _nattable.pxd)
    @property
    def nat_max_per_destination(self) -> int:
        """Most NAT bindings to one (NAT IP, remote IP, remote port, protocol): 55,000 (AWS), less for tests."""
        return self._nat_max

    def _nat_region(self) -> NatRegion:
        """The bindings' arrays (made on first use; the pass holds the table's guard)."""
        if self._nat is None:
            self._nat = NatRegion(self.capacity, self._nat_max)
        return self._nat

    def nat_bindings(self) -> np.ndarray:
        """The held NAT gateway bindings (live, or expired and not yet reclaimed), ``nattable.BINDING_DTYPE``
        rows: nat (the NAT gateway's identity), proto, inside / remote / NAT addresses and ports, first and
        last seen (ns)."""
        with self.guard():
            return self._nat.bindings() if self._nat is not None else np.zeros(0, BINDING_DTYPE)

    # --- sizes and clock
    @property
    def capacity(self) -> int:
        """Most flows held at once."""
        return int(self._stats()[5])

    @property
    def n_slots(self) -> int:
        return int(self._stats()[4])

    @property
    def nbytes(self) -> int:
        """Bytes of table storage (the slots plus the 40-byte header)."""
        return self.n_slots * ENTRY_DTYPE.itemsize + 40

    @property
    def clock(self) -> int | None:
        """The latest ``now`` seen (ns), or None before any."""
        c = int(self._stats()[1])
        return None if c < 0 else c

    @property
    def reclaimed(self) -> int:
        """Expired entries reclaimed so far (reused on a probe path, swept when full, or by expire())."""
        return int(self._stats()[3])

    def __len__(self) -> int:
        return int(self._stats()[0])

    def __repr__(self) -> str:
        return f"<FlowTable {len(self)} of {self.capacity} flows, {self.nbytes / self.capacity:.1f} B/flow>"

    # --- the guard
    def acquire(self) -> None:
        """Take the table for one pass (an atomic flag); FlowTableBusyError when another pass has it."""
        if not self._acquire():
            raise FlowTableBusyError("this FlowTable is in use by another pass (one process() at a time "
                                     "per table); wait for it or give each concurrent pass its own table")

    def release(self) -> None:
        """Give the table back after :meth:`acquire`."""
        self._release()

    @contextmanager
    def guard(self) -> Iterator[FlowTable]:
        """``with ft.guard(): ...`` holds the table for the block."""
        self.acquire()
        try:
            yield self
        finally:
            self.release()

    # --- operations
    def _check_now(self, now: Any, name: str = "now") -> int:
        if isinstance(now, bool) or not isinstance(now, (int, np.integer)):
            raise TypeError(f"{name} must be an int number of ns, got {now!r}")
        now = int(now)
        if not 0 <= now <= MAX_NOW:
            raise ValueError(f"{name} = {now} ns is outside 0..{MAX_NOW}")
        clock = self.clock
        if clock is not None and now < clock:
            raise ValueError(f"{name} = {now} ns goes backwards: this FlowTable has seen {clock} ns")
        return now

    def expire(self, now: int) -> int:
        """Reclaim every entry expired at ``now`` (ns); returns how many.  Advances the clock."""
        with self.guard():
            now = self._check_now(now)
            return int(self._expire(now))

    def clear(self) -> None:
        """Forget every flow and the clock (the table is as new; the storage is kept)."""
        with self.guard():
            self._clear()
            if self._nat is not None:
                self._nat.clear()

    def track(self, eni: Any, proto: Any, src: Any, dst: Any, sport: Any, dport: Any, flags: Any,
              length: Any, now: Any, admitted: Any, *, zone: Any = 0, timeouts: Any = None,
              timeout_index: Any = None) -> Tracked:
        """Track packets in order, exactly as one at a time (the conntrack stage's table step).

        Per packet: ``eni`` stable ENI identity (uint32), ``proto``, ``src``/``dst`` (host-order IPv4),
        ``sport``/``dport`` (ICMP: ``sport`` = identifier), ``flags`` (TCP flags; ICMP type),
        ``length`` (bytes), ``now`` (int ns, non-decreasing, not before :attr:`clock`), ``admitted``
        (:class:`Admit`, or a bool: would the rules admit it as a first packet?), ``zone`` (0-255).
        Scalars broadcast.  ``timeouts``: None (defaults), a Tracking-like object or record for every
        packet, or an array of records (:func:`timeouts_array`) with ``timeout_index`` per packet.
        Nothing is changed when an input is invalid.
        """
        n = _length_of(eni, proto, src, dst, sport, dport, flags, length, now, admitted, zone, timeout_index)
        e = _int_array("eni", eni, n, np.uint32, 0, 0xFFFFFFFF)
        z = _int_array("zone", zone, n, np.uint8, 0, 255)
        p = _int_array("proto", proto, n, np.uint8, 0, 255)
        s = _int_array("src", src, n, np.uint32, 0, 0xFFFFFFFF)
        d = _int_array("dst", dst, n, np.uint32, 0, 0xFFFFFFFF)
        sp = _int_array("sport", sport, n, np.uint16, 0, 0xFFFF)
        dp = _int_array("dport", dport, n, np.uint16, 0, 0xFFFF)
        fl = _int_array("flags", flags, n, np.uint8, 0, 255)
        ln = _int_array("length", length, n, np.uint32, 0, 0xFFFFFFFF)
        t = _int_array("now", now, n, np.int64, 0, MAX_NOW)
        ad = _int_array("admitted", admitted, n, np.uint8, 0, 2)
        if timeouts is None or not (isinstance(timeouts, np.ndarray) and timeouts.ndim == 1):
            recs = np.ascontiguousarray(timeouts_record(timeouts).reshape(1))
            if timeout_index is not None:
                raise FlowTableError("timeout_index needs an array of timeout records", field="timeout_index")
            ti = np.empty(0, dtype=np.uint32)
        else:
            if timeouts.dtype != TIMEOUTS_DTYPE or timeouts.size == 0:
                raise FlowTableError(f"timeouts must be a non-empty TIMEOUTS_DTYPE array, got {timeouts.dtype} "
                                     f"of {timeouts.size}", field="timeouts", value=timeouts.dtype)
            recs = np.ascontiguousarray(timeouts)
            for f in TIMEOUT_FIELDS:
                over = np.flatnonzero(recs[f] > MAX_TIMEOUT)
                if over.size:
                    raise FlowTableError(f"timeouts[{over[0]}].{f} = {recs[f][over[0]]} s is above {MAX_TIMEOUT}",
                                         field=f, value=int(recs[f][over[0]]))
            if timeout_index is None:
                if recs.size != 1:
                    raise FlowTableError("several timeout records need timeout_index", field="timeout_index")
                ti = np.empty(0, dtype=np.uint32)
            else:
                ti = _int_array("timeout_index", timeout_index, n, np.uint32, 0, recs.size - 1)
        code = np.zeros(n, dtype=np.uint8)
        direction = np.zeros(n, dtype=np.uint8)
        state = np.zeros(n, dtype=np.uint8)
        with self.guard():
            bad_t = self._first_backwards(t)
            if bad_t >= 0:
                prev = self.clock if bad_t == 0 else int(t[bad_t - 1])
                raise ValueError(f"now[{bad_t}] = {int(t[bad_t])} ns goes backwards (after {prev} ns)")
            self._track(e, z, p, s, d, sp, dp, fl, ln, t, ad, recs.view(np.uint8).reshape(-1), ti,
                        code, direction, state)
        return Tracked(code, direction, state)

    # --- inspection
    def _entries(self) -> np.ndarray:
        """A copy of the held raw entries (slot order)."""
        slots = np.asarray(self._buf).view(ENTRY_DTYPE)
        return slots[slots["state"] != 0].copy()

    def flows(self, now: int | None = None) -> np.ndarray:
        """The held flows as a FLOWS_DTYPE array (with ``now``: only those live at ``now``).  ``eni`` is
        the ENI's stable identity: ``dp.tracking_identities()`` maps it to the ENI's name."""
        with self.guard():
            rows = self._entries()
        out = np.zeros(rows.size, dtype=FLOWS_DTYPE)
        hi = (rows["flags"] & _F_ORIG_HI).astype(bool) & (rows["proto"] != 1)
        out["eni"] = rows["eni"]
        out["zone"] = rows["zone"]
        out["proto"] = rows["proto"]
        out["src"] = np.where(hi, rows["b"], rows["a"])
        out["dst"] = np.where(hi, rows["a"], rows["b"])
        out["sport"] = np.where(hi, rows["pb"], rows["pa"])
        out["dport"] = np.where(hi, rows["pa"], rows["pb"])
        out["state"] = rows["state"]
        out["first_seen"] = rows["first_ns"]
        out["last_seen"] = rows["last_ns"]
        out["packets"] = rows["packets"]
        out["bytes"] = rows["bytes_tmo"] & np.uint64((1 << _BYTES_BITS) - 1)
        out["timeout"] = (rows["bytes_tmo"] >> np.uint64(_BYTES_BITS)).astype(np.uint32)
        out["expires"] = rows["last_ns"] + out["timeout"].astype(np.int64) * 1_000_000_000
        if now is not None:
            out = out[out["expires"] >= int(now)]
        order = np.lexsort((out["dport"], out["sport"], out["dst"], out["src"], out["proto"], out["zone"], out["eni"]))
        return out[order]

    # --- pickling
    def __reduce__(self) -> tuple[Any, ...]:
        # (format version, capacity, clock, reclaimed, held rows, digest); rows are re-inserted on load,
        # so slot positions (the hash invariants) are rebuilt, never trusted from the pickle
        with self.guard():
            rows = self._entries()
            count, clock, _, reclaimed, _, capacity = self._stats()
            nat = self._nat.state() if self._nat is not None else None
        if nat is None and self._nat_max == MAX_FLOWS_PER_DESTINATION:
            args = (1, int(capacity), int(clock), int(reclaimed), rows.tobytes())
            return (_restore, (*args, _digest(*args)))
        # version 2: the NAT bindings too (max per destination, idle timeout, binding rows, fragment rows)
        nat = nat if nat is not None else (self._nat_max, IDLE_TIMEOUT_NS, b"", b"")
        args2 = (2, int(capacity), int(clock), int(reclaimed), rows.tobytes(), *nat)
        return (_restore, (*args2[:5], _digest(*args2), *nat))


def _digest(version: int, capacity: int, clock: int, reclaimed: int, rows: bytes, *nat: Any) -> bytes:
    """A keyless checksum of a pickled table: catches corruption (a flipped counter byte would otherwise
    load as a valid, different table).  Deliberate edits can recompute it; validation still applies."""
    h = hashlib.blake2b(digest_size=16, person=b"fastvpc-flowtbl")
    h.update(b"%d %d %d %d %d|" % (version, capacity, clock, reclaimed, len(rows)))
    h.update(rows)
    if nat:   # version 2: the NAT region (ints, then two byte strings)
        h.update(b"|nat %r %r %d %d|" % (nat[0], nat[1], len(nat[2]) if isinstance(nat[2], bytes) else -1,
                                         len(nat[3]) if isinstance(nat[3], bytes) else -1))
        for part in nat[2:]:
            if isinstance(part, bytes):
                h.update(part)
    return h.digest()


def _restore(version: Any, capacity: Any, clock: Any, reclaimed: Any, rows: Any, digest: Any = None,
             *nat: Any) -> FlowTable:
    """Rebuild a pickled FlowTable, validating everything first (a tampered pickle is refused).  Version 2
    adds the NAT region: (max per destination, idle timeout ns, binding rows, fragment rows)."""
    def bad(field: str, value: object, why: str) -> FlowTableError:
        return FlowTableError(f"pickled FlowTable: {field} = {value!r}: {why}", field=field, value=value)

    for name, v in (("version", version), ("capacity", capacity), ("clock", clock), ("reclaimed", reclaimed)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise bad(name, v, "not an int")
    if not isinstance(rows, bytes):
        raise bad("rows", type(rows).__name__, "not bytes")
    if version == 2 and len(nat) != 4:
        raise bad("version", version, f"version 2 holds 4 NAT fields, not {len(nat)}")
    if version != 2 and nat:
        raise bad("version", version, f"{len(nat)} NAT fields in a pickle of version {version} (only 2 has them)")
    if not isinstance(digest, bytes) or digest != _digest(version, capacity, clock, reclaimed, rows, *nat):
        raise bad("digest", digest, "does not match the contents (corrupted or edited pickle)")
    if version not in (1, 2):
        raise bad("version", version, "unknown format version (this fastvpc reads 1 and 2)")
    if not 1 <= capacity <= MAX_CAPACITY:
        raise bad("capacity", capacity, f"outside 1..{MAX_CAPACITY}")
    if not -1 <= clock <= MAX_NOW:
        raise bad("clock", clock, f"outside -1..{MAX_NOW}")
    if not 0 <= reclaimed < 1 << 64:
        raise bad("reclaimed", reclaimed, "outside 0..2**64-1")
    if len(rows) % ENTRY_DTYPE.itemsize:
        raise bad("rows", len(rows), f"length is not a multiple of {ENTRY_DTYPE.itemsize}")
    r = np.frombuffer(rows, dtype=ENTRY_DTYPE)
    if r.size > capacity:
        raise bad("rows", r.size, f"more flows than capacity {capacity}")
    if r.size and clock < 0:
        raise bad("clock", clock, "flows are held but no time was ever seen")
    _validate_rows(r, clock, bad)
    region = None
    if nat:
        region = NatRegion.restore(capacity, nat[0], nat[1], nat[2], nat[3], clock, bad)
        if region.max_per_destination > MAX_FLOWS_PER_DESTINATION:
            raise bad("nat_max_per_destination", nat[0], f"above {MAX_FLOWS_PER_DESTINATION}")
    ft = FlowTable(capacity, nat_max_per_destination=region.max_per_destination if region is not None
                   else MAX_FLOWS_PER_DESTINATION)
    if region is not None and (len(region) or region.fragments().size or region.idle_timeout_ns != IDLE_TIMEOUT_NS):
        ft._nat = region
    dup = ft._load(np.ascontiguousarray(r).view(np.uint8).reshape(r.size, ENTRY_DTYPE.itemsize), clock, reclaimed)
    if dup >= 0:
        raise bad("key", dup, "row repeats an earlier row's flow key")
    return ft


def _validate_rows(r: np.ndarray, clock: int, bad: Any) -> None:
    def first(mask: np.ndarray) -> int | None:
        idx = np.flatnonzero(mask)
        return int(idx[0]) if idx.size else None

    proto, state, flags = r["proto"], r["state"].astype(np.int64), r["flags"]
    tcp, udp, icmp = proto == 6, proto == 17, proto == 1
    other = ~(tcp | udp | icmp)
    ok_state = np.where(tcp, np.isin(state, list(_TCP_STATES)),
                        np.where(udp, np.isin(state, list(_UDP_STATES)),
                                 np.where(icmp, np.isin(state, list(_ICMP_STATES)), np.isin(state, list(_OTHER_STATES)))))
    checks = [
        ("state", ~ok_state, "not a state of the row's protocol"),
        ("flags", (flags & ~np.uint8(_F_MASK)) != 0, "undefined flag bits"),
        ("flags", icmp & ((flags & _F_ORIG_HI) != 0), "ICMP rows carry no direction flag"),
        ("flags", ~udp & ((flags & _F_LAST_REPLY) != 0), "only UDP rows carry the last-reply flag"),
        ("pa", (tcp | udp) & ((r["a"] > r["b"]) | ((r["a"] == r["b"]) & (r["pa"] > r["pb"]))),
         "key not normalised ((a, pa) <= (b, pb))"),
        ("flags", (tcp | udp) & (r["a"] == r["b"]) & (r["pa"] == r["pb"]) & ((flags & _F_ORIG_HI) != 0),
         "a flow between one endpoint and itself has no hi side"),
        ("a", other & (r["a"] > r["b"]), "key not normalised (a <= b)"),
        ("flags", other & (r["a"] == r["b"]) & ((flags & _F_ORIG_HI) != 0),
         "a flow between one address and itself has no hi side"),
        ("pa", other & ((r["pa"] != 0) | (r["pb"] != 0)), "ports of a protocol tracked by addresses only"),
        ("pb", icmp & ~np.isin(r["pb"], _ICMP_QUERY_TYPES), "not an ICMP query type"),
        ("packets", r["packets"] == 0, "a held flow has seen at least one packet"),
        ("first_ns", (r["first_ns"] < 0) | (r["first_ns"] > r["last_ns"]), "outside 0..last_ns"),
        ("last_ns", r["last_ns"] > clock, f"after the table's clock {clock}"),
    ]
    for field, mask, why in checks:
        i = first(mask)
        if i is not None:
            raise bad(field, r[field][i].item() if field in (r.dtype.names or ()) else None, f"row {i}: {why}")
