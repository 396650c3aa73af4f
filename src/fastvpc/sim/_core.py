"""The part every simulator adapter shares: same-instant micro-batching over a SimPy clock.

A simulated switch receives frames one at a time (``submit``).  The first frame submitted at a
simulated instant schedules a zero-delay SimPy event of a priority below SimPy's own (``NORMAL``
and ``URGENT``): SimPy orders the events of one instant by priority before order of scheduling, so
this event fires only when no other event of the instant is left, also those scheduled after it (a
process woken later in the instant by a ``timeout(0)``, a ``Store`` hand-off, another process's
end).  Every frame submitted at the instant before it fires joins the batch, and the event pushes
the whole batch through **one** ``Dataplane.process()`` call with ``now`` = the simulator's clock in
ns.  The results come out at the same simulated instant: the simulation's timing is unchanged while
the kernel sees batches instead of single frames.  What the flush's own results make the simulation
submit at that instant (a frame delivered to an element that passes it on at once, a host woken by
its inbox that answers at once) is a later batch at the same instant: the flush arms the next one,
so nothing is lost, and no event is scheduled while no frame waits.  A run stopped at the instant
(``env.run(until=...)`` on an event of it) leaves the instant's batch to the next ``run()``, which
starts at the same instant.  The wall clock is never read.

``process()`` grows keywords as the data plane grows (``state=``/``now=`` with connection tracking,
``log=`` with flow logs); the core looks at its signature once, at construction, and passes them
when the installed data plane takes them.
"""

from __future__ import annotations

import inspect
import math
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np

from fastvpc.batch import FrameBatch
from fastvpc.errors import FastVpcError
from fastvpc.verdicts import Action, DropReason

__all__ = ["SimError", "SwitchCore", "Verdict", "process_keywords"]

_ACTIONS = list(Action)
_REASONS: dict[int, DropReason] = {int(r): r for r in DropReason}
_NCODES = 256 * (max(int(a) for a in Action) + 1)
#: The SimPy priority of the event that closes an instant's batch: after ``simpy.events.NORMAL`` (1)
#: and ``URGENT`` (0), the priorities of every other event (SimPy's queue is ordered by time, then
#: priority, then order of scheduling).
END_OF_INSTANT = 2


def schedule_end_of_instant(env: Any, callback: Callable[[Any], None]) -> Any:
    """Call ``callback(event)`` at ``env.now``, after every other event of this instant (also those
    scheduled after this call): an event of priority :data:`END_OF_INSTANT`.

    The event is made as ``simpy.Timeout`` makes itself (triggered, value None, then scheduled), with
    the priority given: SimPy's public ``Environment.schedule`` takes one, its ``timeout()`` does not."""
    ev = env.event()
    ev.callbacks.append(callback)
    ev._ok = True
    ev._value = None
    env.schedule(ev, END_OF_INSTANT)
    return ev


class SimError(FastVpcError, ValueError):
    """A simulator adapter was given something it cannot use (a port the switch lacks, a packet
    without frame bytes, a keyword the installed data plane does not take); ``value`` is the bad value."""

    def __init__(self, message: str, *, value: object = None) -> None:
        super().__init__(message)
        self.value = value


class Verdict(NamedTuple):
    """What the switch did with one frame."""

    action: Action
    reason: DropReason
    egress: int        #: receiving port (DELIVER, FORWARD), the ingress port (REPLY), -1 (DROP)
    frame: bytes       #: the frame after processing (rewritten MACs, the reply built in place)


def process_keywords(forwarder: Any) -> set[str]:
    """The keyword names ``forwarder.process`` accepts (read once: the adapters decide at construction
    whether they may pass ``state=``, ``now=`` and ``log=``)."""
    try:
        params = inspect.signature(forwarder.process).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return set()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return {"state", "now", "log", "n_threads"}
    return set(params)


class SwitchCore:
    """Same-instant batching of frames into ``dp.process()`` on a SimPy environment.

    ``stateful``: None (default) tracks connections in a :class:`fastvpc.FlowTable` of this switch
    when the installed ``process()`` takes ``state=``; True requires it; False never tracks.
    ``flow_table``: use this table instead of a new one of ``capacity`` entries.  ``log``: a flow
    log passed to every ``process()`` as ``log=`` (refused when ``process()`` takes none).
    ``ns_per_unit``: nanoseconds per unit of ``env.now`` (ns.py and SimPy scripts count seconds:
    1e9).  ``batching=False`` calls ``process()`` once per frame, at once (the slow path, kept to
    measure what batching buys).
    """

    def __init__(self, env: Any, dp: Any, *, stateful: bool | None = None, flow_table: Any = None,
                 capacity: int = 1_000_000, log: Any = None, ns_per_unit: float = 1e9,
                 batching: bool = True, n_threads: int = 1) -> None:
        if not hasattr(dp, "process"):
            raise SimError(f"dp must be a compiled Dataplane (Network.compile()), not {type(dp).__name__}",
                           value=dp)
        if not (isinstance(ns_per_unit, (int, float)) and not isinstance(ns_per_unit, bool) and ns_per_unit > 0
                and math.isfinite(ns_per_unit)):
            raise SimError(f"ns_per_unit must be a positive finite number, got {ns_per_unit!r}", value=ns_per_unit)
        self.env = env
        self.dp = dp
        # an integral scale kept as an int: a clock counted in integer units (ns since the epoch, 1) then
        # maps to ns exactly, where a float product loses the low digits past 2**53
        self.ns_per_unit: float = int(ns_per_unit) if float(ns_per_unit).is_integer() else float(ns_per_unit)
        self.batching = bool(batching)
        names = getattr(dp, "port_names", None)
        self.ports: frozenset[int] = frozenset(int(p) for p in names) if names else frozenset()
        keywords = process_keywords(dp)
        can_track = "state" in keywords and "now" in keywords
        if stateful and not can_track:
            raise SimError("stateful=True, but this fastvpc's Dataplane.process() takes no state=/now= "
                           "(connection tracking is not installed)", value=stateful)
        track = can_track if stateful is None else bool(stateful)
        if flow_table is not None and not track:
            raise SimError("flow_table given, but the switch does not track connections "
                           f"(stateful={stateful!r}, process() takes state=: {can_track})", value=flow_table)
        self.flows: Any = None
        if track:
            if flow_table is None:
                from fastvpc.dataplane.state import FlowTable

                flow_table = FlowTable(capacity)
            self.flows = flow_table
        if log is not None and "log" not in keywords:
            raise SimError("log= given, but this fastvpc's Dataplane.process() takes no log= "
                           "(flow logs are not installed)", value=log)
        self.log = log
        kw: dict[str, Any] = {}
        if "n_threads" in keywords:
            kw["n_threads"] = n_threads
        if self.flows is not None:
            kw["state"] = self.flows
        if log is not None:
            kw["log"] = log
        self._kw = kw
        # now = the simulator's clock on every call that can take it, stateless ones included: a flow
        # log needs it (its records' start/end) even when no FlowTable is kept
        self._pass_now = "now" in keywords
        self._frames: list[bytes] = []
        self._ports: list[int] = []
        self._tokens: list[Any] = []
        self._armed = False         # an end-of-instant event is scheduled
        self._codes = np.zeros(_NCODES, np.int64)
        #: frames per process() call: how well same-instant batching worked
        self.batches = 0
        self.frames = 0
        #: frames delivered to a port no element was connected to, by port
        self.unconnected: Counter[int] = Counter()

    # ------------------------------------------------------------------ input
    def check_port(self, port: Any, what: str = "frame") -> int:
        """``port`` as an int when the switch has it; SimError naming it otherwise."""
        if isinstance(port, bool) or not isinstance(port, (int, np.integer)):
            raise SimError(f"{what} for port {port!r}: a port is an int (Eni.port, InternetGateway.port...)",
                           value=port)
        p = int(port)
        if p not in self.ports:
            have = ", ".join(str(q) for q in sorted(self.ports)) or "none"
            raise SimError(f"{what} for port {p}, which this switch does not have (its ports: {have})", value=p)
        return p

    @staticmethod
    def frame_bytes(frame: Any, what: str = "frame") -> bytes:
        if type(frame) is bytes:
            return frame
        if isinstance(frame, (bytearray, memoryview)):
            return bytes(frame)
        raise SimError(f"{what} must be the bytes of an Ethernet frame, not {type(frame).__name__}", value=frame)

    def submit(self, frame: bytes, port: int, token: Any) -> None:
        """Queue one (checked) frame for the current instant; ``token`` comes back in :meth:`emit`."""
        self._frames.append(frame)
        self._ports.append(port)
        self._tokens.append(token)
        if not self.batching:
            self.flush()
        elif not self._armed:
            # the first frame of this batch: an event after every other one of this instant closes
            # it (every frame put at this instant before it fires is in the batch, and the results
            # leave at the same instant)
            self._armed = True
            schedule_end_of_instant(self.env, self._end_of_instant)

    def _end_of_instant(self, _event: Any) -> None:
        self._armed = False     # first: a frame the flush's results submit arms the next batch
        self.flush()

    # ------------------------------------------------------------------ the batch
    def now_ns(self) -> int:
        """The simulator's clock in ns: exact for an integer clock and an integral scale; otherwise the
        exact product of the two values, rounded to the nearest ns."""
        t, u = self.env.now, self.ns_per_unit
        if isinstance(t, int) and isinstance(u, int):
            return t * u
        return round(Fraction(t) * Fraction(u))

    def flush(self, _event: Any = None) -> None:
        """Push every queued frame through one ``process()`` call and hand out the verdicts (done at
        the end of every instant with frames; a call in between flushes what is queued so far)."""
        frames, ports, tokens = self._frames, self._ports, self._tokens
        if not frames:
            return
        self._frames, self._ports, self._tokens = [], [], []
        # the batch built directly: every frame is already bytes (checked at submit)
        n = len(frames)
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(np.fromiter(map(len, frames), np.int64, n), out=offsets[1:])
        batch = FrameBatch(np.frombuffer(bytearray(b"".join(frames)), np.uint8), offsets,
                           np.array(ports, np.int32))
        if self._pass_now:
            res = self.dp.process(batch, now=self.now_ns(), **self._kw)
        else:
            res = self.dp.process(batch, **self._kw)
        self.batches += 1
        self.frames += n
        codes = res.action.astype(np.int64) * 256 + res.reason
        self._codes += np.bincount(codes, minlength=_NCODES)[:_NCODES]
        out = res.frames
        data = out.data.tobytes()
        off = out.offsets.tolist()
        act = res.action.tolist()
        rsn = res.reason.tolist()
        egr = res.egress.tolist()
        emit = self.emit
        for i in range(n):
            emit(tokens[i], ports[i], act[i], rsn[i], egr[i], data[off[i]:off[i + 1]])

    def emit(self, token: Any, ingress: int, action: int, reason: int, egress: int,
             frame: bytes) -> None:  # pragma: no cover - every adapter overrides it
        raise NotImplementedError

    @staticmethod
    def verdict(action: int, reason: int, egress: int, frame: bytes) -> Verdict:
        return Verdict(_ACTIONS[action], _REASONS[reason], egress, frame)

    # ------------------------------------------------------------------ counters
    @property
    def counts(self) -> Counter[str]:
        """Frames per verdict: ``"DELIVER"``, ``"FORWARD"``, ``"REPLY"``, ``"DROP NO_ROUTE"``..."""
        c: Counter[str] = Counter()
        for code in np.flatnonzero(self._codes).tolist():
            a, r = divmod(code, 256)
            c[f"DROP {_REASONS[r].name}" if a == Action.DROP else _ACTIONS[a].name] = int(self._codes[code])
        return c

    @property
    def by_action(self) -> Counter[str]:
        per = self._codes.reshape(-1, 256).sum(axis=1)
        return Counter({_ACTIONS[a].name: int(v) for a, v in enumerate(per.tolist()) if v})

    @property
    def by_reason(self) -> Counter[str]:
        per = self._codes.reshape(-1, 256)[int(Action.DROP)]
        return Counter({_REASONS[r].name: int(v) for r, v in enumerate(per.tolist()) if v})

    def summary(self) -> str:
        """The counters as readable lines."""
        lines = [f"{self.frames:,} frames in {self.batches:,} process() calls"]
        for k, v in sorted(self.counts.items()):
            lines.append(f"  {k:<28} {v:,}")
        if self.unconnected:
            lines.append("  sent to ports with nothing connected: "
                         + ", ".join(f"{p}: {n}" for p, n in sorted(self.unconnected.items())))
        return "\n".join(lines)


PortOf = Callable[[Any], Any]
