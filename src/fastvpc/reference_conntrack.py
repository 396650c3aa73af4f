"""The reference connection-tracking table: a plain-Python dict model of ``fastvpc.FlowTable``.

:class:`ReferenceFlowTable` is what the reference forwarder's security-group stages consult with
``ReferenceForwarder.process(batch, state=table, now=...)`` (re-exported as
``fastvpc.reference.ReferenceFlowTable``).  It is written from the documented semantics of the
compiled table (``fastvpc/dataplane/_flowtable.pyx``'s module docstring, DESIGN.md section 5,
/work/filters-spec.md), not from its code: one dict from a normalised flow key to a small record,
nothing about slots, probing or hashing.  It is also the naive "Python dict conntrack loop" that the
kernel's benchmark measures against.

Semantics (the same as the compiled table's, which the tests hold equal):

* A flow is keyed per ENI (here the ENI's *name*, or any hashable: the readable oracle needs no
  32-bit identities), per zone (0 for the security groups), and by the flow with both directions
  folded together: TCP/UDP by the unordered pair of (address, port); ICMP query types (echo 8/0,
  timestamp 13/14, information 15/16, address mask 17/18) by (requester, responder, identifier,
  query type); every other protocol by the unordered address pair (AWS's "IP addresses and
  protocol" tracking).  ICMP errors and other non-query types are never tracked (AWS admits no
  "related" ICMP).
* An entry is *live* at ``now`` while ``now <= last_seen + timeout``; the timeout is the one of the
  flow's state after its latest packet, from that packet's ENI timeouts (``Eni.tracking``).  An
  expired entry is as good as absent.
* ``admitted`` says what the rules make of a packet that belongs to no live flow:
  :attr:`Admit.DENY` -> ``MISS``; :attr:`Admit.ADMIT` -> open an entry when the packet may open one
  (``NEW``), else ``PASS``; :attr:`Admit.UNTRACKED` (AWS's untracked-flow rule) -> ``PASS``, never an
  entry.  A packet of a live flow is ``HIT`` whatever ``admitted`` says.
* TCP states follow Linux nf_conntrack's state table; only a SYN (``SYN_SENT``) or a plain ACK
  (``ESTABLISHED``: loose pickup) opens an entry; a lone SYN-ACK, FIN, RST or flagless segment opens
  none.  Transitions Linux calls invalid or ignored keep the state (the packet still refreshes the
  flow).  An original-direction SYN on a ``TIME_WAIT`` or ``CLOSE`` flow ends it and is judged as the
  first packet of a new flow.
* UDP: ``UNREPLIED`` -> ``REPLIED`` (the first reply) -> ``STREAM`` (a reply that follows an
  original-direction packet sent after the first reply: a second request-response exchange).
* ICMP: a request opens ``ICMP_UNREPLIED``; its reply moves it to ``ICMP_REPLIED``; replies open
  nothing.  Other protocols: ``OTHER_UNREPLIED`` -> ``OTHER_REPLIED``.
* At most ``capacity`` live entries: a packet that needs a new entry while ``capacity`` are live is
  ``FULL`` (the stage drops it ``FLOW_TABLE_FULL``); expired entries make room.
* Time never goes backwards: a ``now`` before the table's clock (the latest ``now`` seen) raises
  ``ValueError`` and changes nothing.
* Packets and bytes saturate as the compiled counters do (2**32 - 1 packets, 2**44 - 1 bytes).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

from fastvpc.dataplane.state import Admit, Direction, FlowState, FlowTableBusyError, TrackCode

__all__ = ["REFERENCE_TIMEOUTS", "ReferenceFlow", "ReferenceFlowTable", "reference_timeouts"]

NS = 1_000_000_000
MAX_PACKETS = 2**32 - 1
MAX_BYTES = 2**44 - 1
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10

#: Idle timeouts in seconds when an ENI says nothing else: AWS's where AWS documents one (TCP
#: established 432,000 s, UDP 30 s, UDP stream 180 s, other protocols 600 s), Linux nf_conntrack's
#: for the TCP states and ICMP AWS does not document (as ``fastvpc.Tracking``'s defaults).
REFERENCE_TIMEOUTS: Mapping[str, int] = {
    "tcp_syn_sent": 120, "tcp_syn_recv": 60, "tcp_established": 432_000, "tcp_fin_wait": 120,
    "tcp_close_wait": 60, "tcp_last_ack": 30, "tcp_time_wait": 120, "tcp_close": 10, "tcp_syn_sent2": 120,
    "udp": 30, "udp_stream": 180, "icmp": 30, "other": 600,
}

# Linux nf_conntrack_proto_tcp.c's state table, per (direction, flag class): old state -> new state.
# A (state, class) pair not listed is Linux's INVALID or IGNORE: the state stays.
_S = FlowState
_TCP_ORIGINAL: dict[str, dict[FlowState, FlowState]] = {
    "syn": {_S.NONE: _S.TCP_SYN_SENT, _S.TCP_SYN_SENT: _S.TCP_SYN_SENT, _S.TCP_TIME_WAIT: _S.TCP_SYN_SENT,
            _S.TCP_CLOSE: _S.TCP_SYN_SENT, _S.TCP_SYN_SENT2: _S.TCP_SYN_SENT2},
    "synack": {_S.TCP_SYN_SENT2: _S.TCP_SYN_RECV},
    "fin": {_S.TCP_SYN_RECV: _S.TCP_FIN_WAIT, _S.TCP_ESTABLISHED: _S.TCP_FIN_WAIT,
            _S.TCP_FIN_WAIT: _S.TCP_LAST_ACK, _S.TCP_CLOSE_WAIT: _S.TCP_LAST_ACK,
            _S.TCP_LAST_ACK: _S.TCP_LAST_ACK, _S.TCP_TIME_WAIT: _S.TCP_TIME_WAIT, _S.TCP_CLOSE: _S.TCP_CLOSE},
    "ack": {_S.NONE: _S.TCP_ESTABLISHED, _S.TCP_SYN_RECV: _S.TCP_ESTABLISHED,
            _S.TCP_ESTABLISHED: _S.TCP_ESTABLISHED, _S.TCP_FIN_WAIT: _S.TCP_CLOSE_WAIT,
            _S.TCP_CLOSE_WAIT: _S.TCP_CLOSE_WAIT, _S.TCP_LAST_ACK: _S.TCP_TIME_WAIT,
            _S.TCP_TIME_WAIT: _S.TCP_TIME_WAIT, _S.TCP_CLOSE: _S.TCP_CLOSE},
    "rst": {s: _S.TCP_CLOSE for s in (_S.TCP_SYN_SENT, _S.TCP_SYN_RECV, _S.TCP_ESTABLISHED, _S.TCP_FIN_WAIT,
                                      _S.TCP_CLOSE_WAIT, _S.TCP_LAST_ACK, _S.TCP_TIME_WAIT, _S.TCP_CLOSE,
                                      _S.TCP_SYN_SENT2)},
    "none": {},
}
_TCP_REPLY: dict[str, dict[FlowState, FlowState]] = {
    "syn": {_S.TCP_SYN_SENT: _S.TCP_SYN_SENT2, _S.TCP_SYN_SENT2: _S.TCP_SYN_SENT2},
    "synack": {_S.TCP_SYN_SENT: _S.TCP_SYN_RECV, _S.TCP_SYN_SENT2: _S.TCP_SYN_RECV},
    "fin": _TCP_ORIGINAL["fin"],
    "ack": {_S.TCP_SYN_RECV: _S.TCP_SYN_RECV, _S.TCP_ESTABLISHED: _S.TCP_ESTABLISHED,
            _S.TCP_FIN_WAIT: _S.TCP_CLOSE_WAIT, _S.TCP_CLOSE_WAIT: _S.TCP_CLOSE_WAIT,
            _S.TCP_LAST_ACK: _S.TCP_TIME_WAIT, _S.TCP_TIME_WAIT: _S.TCP_TIME_WAIT, _S.TCP_CLOSE: _S.TCP_CLOSE},
    "rst": _TCP_ORIGINAL["rst"],
    "none": {},
}
#: which timeout each state uses
_TIMEOUT_OF: dict[FlowState, str] = {
    _S.TCP_SYN_SENT: "tcp_syn_sent", _S.TCP_SYN_RECV: "tcp_syn_recv", _S.TCP_ESTABLISHED: "tcp_established",
    _S.TCP_FIN_WAIT: "tcp_fin_wait", _S.TCP_CLOSE_WAIT: "tcp_close_wait", _S.TCP_LAST_ACK: "tcp_last_ack",
    _S.TCP_TIME_WAIT: "tcp_time_wait", _S.TCP_CLOSE: "tcp_close", _S.TCP_SYN_SENT2: "tcp_syn_sent2",
    _S.UDP_UNREPLIED: "udp", _S.UDP_REPLIED: "udp", _S.UDP_STREAM: "udp_stream",
    _S.ICMP_UNREPLIED: "icmp", _S.ICMP_REPLIED: "icmp", _S.OTHER_UNREPLIED: "other", _S.OTHER_REPLIED: "other",
}
#: ICMP query types: request -> itself, reply -> its request
_ICMP_REQUESTS = {8: 8, 13: 13, 15: 15, 17: 17}
_ICMP_REPLIES = {0: 8, 14: 13, 16: 15, 18: 17}


def tcp_flag_class(flags: int) -> str:
    """Linux's flag classes, most significant first: rst > syn / synack > fin > ack > none."""
    if flags & RST:
        return "rst"
    if flags & SYN:
        return "synack" if flags & ACK else "syn"
    if flags & FIN:
        return "fin"
    if flags & ACK:
        return "ack"
    return "none"


def reference_timeouts(tracking: Any = None) -> dict[str, int]:
    """An ENI's timeouts (seconds) by name: :data:`REFERENCE_TIMEOUTS` overridden by ``tracking``
    (a ``fastvpc.Tracking``, anything with those attributes, or a mapping); ``None`` values keep the
    default.  ``Tracking`` has no ``tcp_syn_sent2``: it stays Linux's 120 s."""
    out = dict(REFERENCE_TIMEOUTS)
    if tracking is None:
        return out
    for name in REFERENCE_TIMEOUTS:
        v = tracking.get(name) if isinstance(tracking, Mapping) else getattr(tracking, name, None)
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"timeout {name} must be a non-negative int number of seconds, got {v!r}")
            out[name] = int(v)
    return out


class ReferenceFlow(NamedTuple):
    """One tracked flow as :meth:`ReferenceFlowTable.flows` lists it (the fields of
    ``fastvpc.dataplane.state.FLOWS_DTYPE``; ``eni`` is whatever the table was keyed by)."""

    eni: Hashable
    zone: int
    proto: int
    src: int          # the flow's original direction (its first packet's source), host-order IPv4
    dst: int
    sport: int        # ICMP: the identifier; other protocols: 0
    dport: int        # ICMP: the request's type; other protocols: 0
    state: FlowState
    first_seen: int   # ns
    last_seen: int    # ns
    packets: int
    bytes: int
    timeout: int      # s, as of the last packet
    expires: int      # last_seen + timeout (ns): live while now <= expires


@dataclasses.dataclass
class _Entry:
    """What the table keeps per flow."""

    eni: Hashable
    zone: int
    proto: int
    origin: tuple[int, int]   # (address, port) the first packet came from (ICMP/other: port 0)
    src: int
    dst: int
    sport: int
    dport: int
    state: FlowState
    first: int
    last: int
    packets: int
    nbytes: int
    timeout: int
    last_reply: bool = False  # UDP: the latest packet went in the reply direction

    @property
    def expires(self) -> int:
        return self.last + self.timeout * NS


class ReferenceFlowTable:
    """Connection tracking in a dict: at most ``capacity`` live flows (see the module docstring).

    ``track(...)`` is one table step; ``len()`` the flows live at the table's clock; ``flows()`` lists
    them; ``expire(now)`` forgets the expired ones.  One pass at a time: ``guard()`` (the reference
    forwarder takes it for a stateful ``process()``) raises :class:`FlowTableBusyError` when another
    pass holds the table, as ``fastvpc.FlowTable`` does.
    """

    def __init__(self, capacity: int = 1_000_000) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int):
            raise TypeError(f"ReferenceFlowTable capacity must be an int, got {capacity!r}")
        if capacity < 1:
            raise ValueError(f"ReferenceFlowTable capacity {capacity} must be at least 1")
        self.capacity = capacity
        self._flows: dict[tuple[Any, ...], _Entry] = {}
        self._clock: int | None = None
        # a lower bound of every held entry's expiry: a full table sweeps only when one may have expired
        self._min_expiry: int | None = None
        self._busy = threading.Lock()

    # ------------------------------------------------------------------ clock and guard
    @property
    def clock(self) -> int | None:
        """The latest ``now`` seen (ns), or None before any."""
        return self._clock

    def check_now(self, now: int, what: str = "now") -> int:
        """``now`` as an int, or ValueError when it is not an int or is before the table's clock."""
        if isinstance(now, bool) or not isinstance(now, int):
            try:
                now = int(now.__index__())  # numpy integers
            except AttributeError:
                raise TypeError(f"{what} must be an int number of ns, got {now!r}") from None
        if now < 0:
            raise ValueError(f"{what} = {now} ns is negative")
        if self._clock is not None and now < self._clock:
            raise ValueError(f"{what} = {now} ns goes backwards: this table has seen {self._clock} ns")
        return now

    def advance_clock(self, now: int) -> None:
        """A step that consulted the table at ``now`` (a NAT gateway's bindings): the clock is at least ``now``."""
        if self._clock is None or now > self._clock:
            self._clock = now

    @contextmanager
    def guard(self) -> Iterator[ReferenceFlowTable]:
        """Hold the table for one pass; FlowTableBusyError when another pass holds it."""
        if not self._busy.acquire(blocking=False):
            raise FlowTableBusyError("this ReferenceFlowTable is in use by another pass (one process() at a time "
                                     "per table)")
        try:
            yield self
        finally:
            self._busy.release()

    # ------------------------------------------------------------------ the key
    @staticmethod
    def key(eni: Hashable, zone: int, proto: int, src: int, dst: int, sport: int, dport: int,
            flags: int) -> tuple[tuple[Any, ...], tuple[int, int], str] | None:
        """(flow key, the endpoint this packet comes from, ICMP role) or None for an untrackable ICMP type.

        The role is ``"request"`` / ``"reply"`` for ICMP queries (their direction is the type's), else ``""``
        (the direction is whether the packet comes from the flow's first packet's endpoint)."""
        if proto in (6, 17):
            lo, hi = sorted([(src, sport), (dst, dport)])
            return (eni, zone, proto, lo, hi), (src, sport), ""
        if proto == 1:
            if flags in _ICMP_REQUESTS:
                return (eni, zone, 1, src, dst, sport, _ICMP_REQUESTS[flags]), (src, 0), "request"
            if flags in _ICMP_REPLIES:
                return (eni, zone, 1, dst, src, sport, _ICMP_REPLIES[flags]), (dst, 0), "reply"
            return None
        return (eni, zone, proto, min(src, dst), max(src, dst)), (src, 0), ""

    # ------------------------------------------------------------------ one step
    def track(self, eni: Hashable, proto: int, src: int, dst: int, sport: int, dport: int, flags: int,
              length: int, now: int, admitted: int, *, zone: int = 0,
              timeouts: Any = None) -> tuple[TrackCode, Direction, FlowState]:
        """One packet: (code, direction, state after it) as ``FlowTable.track`` gives per packet.

        ``src``/``dst`` host-order IPv4 ints; ``sport``/``dport`` (ICMP: ``sport`` = identifier);
        ``flags`` the TCP flags byte, the ICMP type; ``length`` the bytes counted (the IPv4 total
        length); ``now`` ns; ``admitted`` an :class:`Admit`; ``timeouts`` the packet's ENI's
        (a ``Tracking``, a mapping or a dict from :func:`reference_timeouts`; None: the defaults).
        """
        now = self.check_now(now)
        self._clock = now
        tmo = timeouts if isinstance(timeouts, dict) and len(timeouts) == len(REFERENCE_TIMEOUTS) \
            else reference_timeouts(timeouts)
        k = self.key(eni, zone, proto, src, dst, sport, dport, flags)
        if k is None:                                   # ICMP errors and other types: never tracked
            return (TrackCode.MISS if admitted == Admit.DENY else TrackCode.PASS), Direction.ORIGINAL, FlowState.NONE
        key, origin, role = k
        f = self._flows.get(key)
        if f is not None and now > f.expires:           # expired: as good as absent
            del self._flows[key]
            f = None
        if f is not None:
            if role:
                d = Direction.ORIGINAL if role == "request" else Direction.REPLY
            else:
                d = Direction.ORIGINAL if origin == f.origin else Direction.REPLY
            new = self._next_state(f, d, proto, flags)
            if new is None:                             # a SYN re-opens a TIME_WAIT / CLOSE flow
                del self._flows[key]
            else:
                f.state = new
                f.last = now
                f.packets = min(f.packets + 1, MAX_PACKETS)
                f.nbytes = min(f.nbytes + length, MAX_BYTES)
                f.timeout = tmo[_TIMEOUT_OF[new]]
                self._lower_min_expiry(f.expires)
                return TrackCode.HIT, d, new
        # no live flow: the rules decide
        if admitted == Admit.DENY:
            return TrackCode.MISS, Direction.ORIGINAL, FlowState.NONE
        opens = self._opens(proto, flags, role)
        if admitted != Admit.ADMIT or opens is None:
            return TrackCode.PASS, Direction.ORIGINAL, FlowState.NONE
        if not self._room(now):
            return TrackCode.FULL, Direction.ORIGINAL, FlowState.NONE
        if proto in (6, 17):
            sp, dp = sport, dport
        elif proto == 1:
            sp, dp = sport, key[6]
        else:
            sp, dp = 0, 0
        f = _Entry(eni, zone, proto, origin, src if role != "reply" else dst, dst if role != "reply" else src,
                   sp, dp, opens, now, now, 1, min(length, MAX_BYTES), tmo[_TIMEOUT_OF[opens]])
        self._flows[key] = f
        self._lower_min_expiry(f.expires)
        return TrackCode.NEW, Direction.ORIGINAL, opens

    @staticmethod
    def _next_state(f: _Entry, d: Direction, proto: int, flags: int) -> FlowState | None:
        """The state after a packet of flow ``f`` in direction ``d``; None: the flow ends (re-opened)."""
        old = f.state
        if proto == 6:
            cls = tcp_flag_class(flags)
            if d == Direction.ORIGINAL and cls == "syn" and old in (FlowState.TCP_TIME_WAIT, FlowState.TCP_CLOSE):
                return None
            table = _TCP_ORIGINAL if d == Direction.ORIGINAL else _TCP_REPLY
            return table[cls].get(old, old)
        if proto == 17:
            new = old
            if d == Direction.REPLY:
                if old == FlowState.UDP_UNREPLIED:
                    new = FlowState.UDP_REPLIED
                elif old == FlowState.UDP_REPLIED and not f.last_reply:
                    new = FlowState.UDP_STREAM
            f.last_reply = d == Direction.REPLY
            return new
        if proto == 1:
            return FlowState.ICMP_REPLIED if d == Direction.REPLY else old
        return FlowState.OTHER_REPLIED if d == Direction.REPLY else old

    @staticmethod
    def _opens(proto: int, flags: int, role: str) -> FlowState | None:
        """The state a first packet opens, or None (a lone SYN-ACK / FIN / RST, an ICMP reply)."""
        if proto == 6:
            return {"syn": FlowState.TCP_SYN_SENT, "ack": FlowState.TCP_ESTABLISHED}.get(tcp_flag_class(flags))
        if proto == 17:
            return FlowState.UDP_UNREPLIED
        if proto == 1:
            return FlowState.ICMP_UNREPLIED if role == "request" else None
        return FlowState.OTHER_UNREPLIED

    def _room(self, now: int) -> bool:
        """Whether a new entry fits: fewer than ``capacity`` live flows (expired ones are forgotten first)."""
        if len(self._flows) < self.capacity:
            return True
        if self._min_expiry is not None and now > self._min_expiry:
            self._sweep(now)
        return len(self._flows) < self.capacity

    def _lower_min_expiry(self, t: int) -> None:
        if self._min_expiry is None or t < self._min_expiry:
            self._min_expiry = t

    def _sweep(self, now: int) -> int:
        dead = [k for k, f in self._flows.items() if now > f.expires]
        for k in dead:
            del self._flows[k]
        self._min_expiry = min((f.expires for f in self._flows.values()), default=None)
        return len(dead)

    # ------------------------------------------------------------------ inspection
    def expire(self, now: int) -> int:
        """Forget every flow expired at ``now`` (ns); returns how many.  Advances the clock."""
        with self.guard():
            now = self.check_now(now)
            self._clock = now
            return self._sweep(now)

    def clear(self) -> None:
        """Forget every flow and the clock."""
        with self.guard():
            self._flows.clear()
            self._clock = None
            self._min_expiry = None

    def __len__(self) -> int:
        """Flows live at the table's clock."""
        if self._clock is None:
            return len(self._flows)
        return sum(1 for f in self._flows.values() if self._clock <= f.expires)

    def flows(self, now: int | None = None) -> list[ReferenceFlow]:
        """The flows live at ``now`` (default: the table's clock), sorted like ``FlowTable.flows()``
        (ENI, zone, proto, src, dst, sport, dport; ENIs by their text)."""
        at = self._clock if now is None else int(now)
        out = [ReferenceFlow(f.eni, f.zone, f.proto, f.src, f.dst, f.sport, f.dport, f.state, f.first, f.last,
                             f.packets, f.nbytes, f.timeout, f.expires)
               for f in self._flows.values() if at is None or at <= f.expires]
        out.sort(key=lambda r: (str(r.eni), r.zone, r.proto, r.src, r.dst, r.sport, r.dport))
        return out

    def __repr__(self) -> str:
        return f"<ReferenceFlowTable {len(self)} of {self.capacity} flows>"
