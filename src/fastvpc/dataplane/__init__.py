"""Dataplane: an immutable, picklable compiled snapshot of a Network, and ``process()``.

``Network.compile()`` builds one (see :mod:`fastvpc.compiler` for the array layout);
``Dataplane.process(batch)`` pushes a :class:`fastvpc.FrameBatch` through the compiled
forwarding pass (``fastvpc._kernels.forward``, docs/forwarding-model.md) and returns a
:class:`Result` of numpy verdict arrays.  The kernel releases the GIL and keeps its per-chunk
scratch on the calling thread's stack, so any number of threads may call ``process`` on one
Dataplane at once (on different batches).
"""

from __future__ import annotations

import json
import mmap
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from fastvpc._kernels import forward as _fw
from fastvpc._threads import resolve_n_threads
from fastvpc.batch import FrameBatch
from fastvpc.compiler import CompiledTables, RouteInfo
from fastvpc.compiler.layout import EDGE_ARRAYS, FILTER_ARRAYS
from fastvpc.dataplane import _validate
from fastvpc.errors import FrameBatchError

__all__ = ["Dataplane", "Forwarder", "Result", "ResultLike"]

#: the CompiledTables fields that are numpy arrays (copied, aligned and frozen by _create)
_ARRAYS = ("enis", "subnets", "route_targets", "table_base", "port_eni", "eni_deliver", "ip_hash", "mac_hash",
           *FILTER_ARRAYS, *EDGE_ARRAYS)
_META = ("routes", "port_names", "port_kinds", "eni_names", "subnet_names", "vpc_names",
         "route_table_names", "topology")


_HUGE = 2 << 20


def _table_copy(arr: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``arr``; arrays of 1 MiB or more are placed 2 MiB-aligned in an anonymous
    mapping advised for transparent huge pages (the kernel's random lookups then miss the TLB far less)."""
    arr = np.ascontiguousarray(arr)
    if arr.nbytes < (1 << 20) or not hasattr(mmap, "MADV_HUGEPAGE"):
        return _aligned_copy(arr)
    size = arr.nbytes + _HUGE
    try:
        mm = mmap.mmap(-1, size + _HUGE)
        mm.madvise(mmap.MADV_HUGEPAGE)
    except (OSError, ValueError):  # pragma: no cover - no THP support
        return _aligned_copy(arr)
    raw = np.frombuffer(mm, dtype=np.uint8)
    skip = (-raw.ctypes.data) % _HUGE
    out: np.ndarray = raw[skip:skip + arr.nbytes].view(arr.dtype)
    out[...] = arr.reshape(-1)
    return out


def _aligned_copy(arr: np.ndarray) -> np.ndarray:
    """A copy of the C-contiguous ``arr`` starting on a 64-byte boundary (a 32-byte record never straddles
    two cache lines)."""
    raw = np.empty(arr.nbytes + 64, dtype=np.uint8)
    skip = (-raw.ctypes.data) % 64
    out: np.ndarray = raw[skip:skip + arr.nbytes].view(arr.dtype)
    if arr.size:
        out[...] = arr.reshape(-1)
    return out


# --- the Forwarder protocol: what tests, traces and drivers run (fastvpc.testing uses it) -------------
class ResultLike(Protocol):
    """What every :class:`Forwarder` returns: :class:`Result`, ``fastvpc.reference.ReferenceResult``."""

    action: npt.NDArray[np.uint8]
    reason: npt.NDArray[np.uint8]
    egress: npt.NDArray[np.int32]
    route: npt.NDArray[np.int32]
    frames: FrameBatch

    def __len__(self) -> int: ...


@runtime_checkable
class Forwarder(Protocol):
    """Anything that forwards a :class:`fastvpc.FrameBatch` like :meth:`Dataplane.process`: the compiled
    :class:`Dataplane` and the readable ``fastvpc.reference.ReferenceForwarder`` are both Forwarders, so
    tests (``fastvpc.testing``), ``trace`` and drivers can run either engine.

    ``process(batch, copy=False)`` returns one verdict per frame in the arrays of :class:`ResultLike`;
    ``copy=False`` rewrites the frames in place (``res.frames is batch``), ``copy=True`` leaves ``batch``
    untouched and returns the processed frames in a new batch.
    """

    def process(self, batch: FrameBatch, copy: bool = False) -> ResultLike: ...
# --- end of the Forwarder protocol ----------------------------------------------------------------------


class Result:
    """Verdicts of one ``process()`` call, one row per frame.

    * ``action``  ``uint8[n]``:  :class:`fastvpc.Action` values (DROP, DELIVER, FORWARD, REPLY)
    * ``reason``  ``uint8[n]``:  :class:`fastvpc.DropReason` values (NONE unless DROP)
    * ``egress``  ``int32[n]``:  receiving ENI's port (DELIVER), target's port (FORWARD), the ingress
      port (REPLY), -1 (DROP)
    * ``route``   ``int32[n]``:  index into ``Dataplane.routes`` / ``Network.routes()`` of the route that
      decided, -1 when no route decided
    * ``frames``  the processed frames: the input batch itself (``copy=False``) or a new one.

    A snapshot with NAT gateways (``compile(edge=True)``) also gives what the NAT gateways did, for the
    flow log (docs/flow-logs.md "Through a NAT gateway"; ``None`` in a snapshot without one):

    * ``nat_gw``  ``int32[n]``:  the port of the NAT gateway the frame reached, -1 none (and for every
      frame of a pass without ``state=``: no NAT gateway works without its bindings)
    * ``nat_dir`` ``uint8[n]``:  0 not translated, 1 the source replaced (outbound), 2 the destination
      replaced (a reply)
    * ``nat_ip``  ``uint32[n]``: the address the NAT gateway replaced (outbound: the inside host's; a
      reply: the NAT gateway's private IP), 0 when not translated
    * ``nat_l4``  ``uint16[n]``: ... and its TCP/UDP port or ICMP echo id (0 for a later UDP fragment)

    Passing a Result back as ``process(..., out=res)`` reuses its buffers when they hold at least
    ``n`` rows (they are grown otherwise); the call then returns ``res`` itself with the arrays
    re-pointed at the first ``n`` rows of those buffers.  The previous verdicts are overwritten.
    """

    __slots__ = ("action", "reason", "egress", "route", "frames", "nat_gw", "nat_dir", "nat_ip", "nat_l4", "_buf",
                 "_nbuf")

    action: npt.NDArray[np.uint8]
    reason: npt.NDArray[np.uint8]
    egress: npt.NDArray[np.int32]
    route: npt.NDArray[np.int32]
    frames: FrameBatch
    nat_gw: npt.NDArray[np.int32] | None
    nat_dir: npt.NDArray[np.uint8] | None
    nat_ip: npt.NDArray[np.uint32] | None
    nat_l4: npt.NDArray[np.uint16] | None
    _nbuf: tuple[npt.NDArray[np.int32], npt.NDArray[np.uint8], npt.NDArray[np.uint32], npt.NDArray[np.uint16]] | None

    def __init__(self, n: int = 0) -> None:
        self._buf = (np.empty(n, np.uint8), np.empty(n, np.uint8), np.empty(n, np.int32), np.empty(n, np.int32))
        self._view(n)
        self.frames = FrameBatch.empty()
        self._nbuf = None
        self.nat_gw = self.nat_dir = self.nat_ip = self.nat_l4 = None

    def _view(self, n: int) -> None:
        if self._buf[0].shape[0] < n:
            cap = max(n, 2 * self._buf[0].shape[0])
            self._buf = (np.empty(cap, np.uint8), np.empty(cap, np.uint8), np.empty(cap, np.int32),
                         np.empty(cap, np.int32))
        a, r, e, t = self._buf
        self.action, self.reason, self.egress, self.route = a[:n], r[:n], e[:n], t[:n]

    def _nat_view(self, n: int) -> dict[str, np.ndarray]:
        """The four NAT arrays of ``n`` rows (their buffers made or grown as the main four's), as the
        kernel's keyword arguments."""
        if self._nbuf is None or self._nbuf[0].shape[0] < n:
            cap = max(n, 2 * self._nbuf[0].shape[0]) if self._nbuf is not None else n
            self._nbuf = (np.empty(cap, np.int32), np.empty(cap, np.uint8), np.empty(cap, np.uint32),
                          np.empty(cap, np.uint16))
        g, d, ip, l4 = self._nbuf
        self.nat_gw, self.nat_dir, self.nat_ip, self.nat_l4 = g[:n], d[:n], ip[:n], l4[:n]
        return {"nat_gw": self.nat_gw, "nat_dir": self.nat_dir, "nat_ip": self.nat_ip, "nat_l4": self.nat_l4}

    @property
    def capacity(self) -> int:
        """Rows the reusable buffers hold."""
        return int(self._buf[0].shape[0])

    def __len__(self) -> int:
        return int(self.action.shape[0])

    def __repr__(self) -> str:
        return f"<Result {len(self)} frames>"


class Dataplane:
    """A compiled, immutable snapshot of a :class:`fastvpc.Network`.

    Attributes (read-only): ``arp_mode``; ``routes`` (tuple of :class:`fastvpc.compiler.RouteInfo`,
    index = ``Result.route``); ``port_names`` / ``port_kinds`` (dict port -> name / kind);
    ``eni_names``, ``subnet_names``, ``vpc_names``, ``route_table_names`` (tuples in the order of the
    compiled arrays); the packed arrays ``enis``, ``subnets``, ``route_targets``, ``table_base``,
    ``port_eni``, ``eni_deliver``, ``ip_hash``, ``mac_hash`` (non-writeable numpy arrays) and ``lpm`` (a RouteTables).
    """

    __slots__ = (*_ARRAYS, *_META, "arp_mode", "filters", "edge", "lpm", "_compiled", "_tables", "_port_hashed", "_network")

    arp_mode: str
    #: whether the filter stages run (``Network.compile(filters=...)``)
    filters: bool
    #: whether the edge stages run (``Network.compile(edge=...)``)
    edge: bool
    routes: tuple[RouteInfo, ...]
    enis: np.ndarray
    subnets: np.ndarray
    route_targets: np.ndarray
    table_base: npt.NDArray[np.uint32]
    port_eni: np.ndarray
    eni_deliver: np.ndarray
    ip_hash: npt.NDArray[np.uint64]
    mac_hash: npt.NDArray[np.uint64]
    lpm: Any
    _compiled: CompiledTables
    _tables: _fw.Tables
    _port_hashed: bool
    port_names: dict[int, str]
    port_kinds: dict[int, str]
    eni_names: tuple[str, ...]
    subnet_names: tuple[str, ...]
    vpc_names: tuple[str, ...]
    route_table_names: tuple[str, ...]
    #: the compiled network as a JSON topology document (``fastvpc.files``' format): what traces explain
    topology: str
    _network: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a Dataplane is made by Network.compile()")

    @classmethod
    def _create(cls, compiled: CompiledTables, **meta: Any) -> Dataplane:
        """The snapshot of ``compiled`` (arrays copied, aligned and frozen; the LPM frozen) with the
        plain metadata ``meta`` (every name of ``_META``)."""
        self = object.__new__(cls)
        arrays: dict[str, Any] = {}
        for name in _ARRAYS:
            arr = _table_copy(getattr(compiled, name))
            arr.flags.writeable = False
            arrays[name] = arr
            object.__setattr__(self, name, arr)
        for name in _META:
            value = meta[name]
            if name == "topology":  # kept as JSON text: nothing a caller holds can change it
                value = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            elif isinstance(value, dict):
                value = MappingProxyType(dict(value))
            object.__setattr__(self, name, value)
        lpm = compiled.lpm.frozen()  # an alias of the same arrays whose replace() raises: the snapshot cannot change
        compiled = compiled._replace(lpm=lpm, port_hashed=bool(compiled.port_hashed), filters=bool(compiled.filters),
                                     edge=bool(compiled.edge), **arrays)
        object.__setattr__(self, "arp_mode", compiled.arp_mode)
        object.__setattr__(self, "filters", compiled.filters)
        object.__setattr__(self, "edge", compiled.edge)
        object.__setattr__(self, "lpm", lpm)
        object.__setattr__(self, "_compiled", compiled)
        object.__setattr__(self, "_tables", _fw.Tables(compiled))
        object.__setattr__(self, "_port_hashed", compiled.port_hashed)
        object.__setattr__(self, "_network", None)
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Dataplane is immutable (cannot set {name!r}); compile the network again")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Dataplane is immutable (cannot delete {name!r})")

    # pickling: arrays + plain metadata; the kernel view is rebuilt on load
    def __reduce__(self) -> tuple[Any, ...]:
        state = {name: getattr(self, name) for name in (*_ARRAYS, *_META, "arp_mode", "filters", "edge")}
        state.update({k: dict(v) for k, v in state.items() if isinstance(v, MappingProxyType)})
        state["lpm"] = self.lpm
        state["port_hashed"] = self._port_hashed
        state["digest"] = _validate.digest(state)  # checked on load: a flipped byte is refused, not obeyed
        # arrays as raw bytes: a corrupt pickled numpy dtype can crash numpy before any check runs
        state.update({name: _validate.to_bytes(state[name]) for name in _ARRAYS})
        return (_rebuild, (state,))

    # ------------------------------------------------------------------ processing
    def process(self, batch: FrameBatch, copy: bool = False, out: Result | None = None,
                n_threads: int | None = None, *, state: Any = None, now: int | None = None,
                log: Any = None) -> Result:
        """Forward every frame of ``batch``; returns a :class:`Result`.

        ``copy=False`` (default) rewrites the frames in place (``batch.data`` must be writeable;
        a read-only buffer raises :class:`fastvpc.FrameBatchError`: pass ``copy=True``), and
        ``res.frames is batch``.  ``copy=True`` leaves ``batch`` untouched and ``res.frames`` is a
        new batch.  ``out`` reuses a previous Result's buffers (see :class:`Result`).
        ``n_threads`` follows :func:`fastvpc._threads.resolve_n_threads` (None: every usable core).
        Releases the GIL; safe to call from several threads at once (with different ``state``).

        ``state``: a :class:`fastvpc.FlowTable` for connection tracking (DESIGN.md §5): the security
        groups admit a packet of a tracked flow whatever their rules say, and every frame that meets a
        security-group stage makes its table step, in frame order, exactly as one frame at a time
        (for every ``n_threads``).  ``now``: int ns for every frame of the batch; without it each
        frame's ``batch.timestamp``.  With ``state`` and no time (no ``now`` and no timestamps, or a
        frame with timestamp -1), time going backwards (``now`` before the table's clock, or
        timestamps decreasing along the batch) -> ``ValueError`` naming the frame, nothing changed.
        A second concurrent ``process()`` on one table raises :class:`fastvpc.FlowTableBusyError`.
        Without ``state`` every packet is judged by the rules alone, as the first of its flow.

        ``log``: a :class:`fastvpc.FlowLog` (DESIGN.md §7) that gets this pass's records (its times:
        ``now``, else the batch's timestamps; a batch it would refuse is refused before any frame is
        processed).
        """
        if not isinstance(batch, FrameBatch):
            raise FrameBatchError(f"process() wants a fastvpc.FrameBatch, not {type(batch).__name__}")
        if log is not None:
            from fastvpc.dataplane.flowlogs import FlowLog

            if not isinstance(log, FlowLog):
                raise TypeError(f"log must be a fastvpc.FlowLog, not {type(log).__name__}")
            log.check(batch, now)
        if not isinstance(copy, (bool, np.bool_)):
            raise TypeError(f"copy must be True or False, not {copy!r}")
        nt = resolve_n_threads(n_threads)
        times = None
        if state is not None:
            times = _state_times(state, batch, now)
        elif now is not None:
            _check_now(now)     # checked, unused without state (the rules alone decide)
        if copy:
            frames = batch.copy()
        else:
            if not batch.writeable:
                raise FrameBatchError("process(): the batch's data buffer is read-only and frames are rewritten "
                                      "in place; pass copy=True to process a copy")
            frames = batch
        n = len(frames)
        if out is None:
            res = Result(n)
        elif isinstance(out, Result):
            res = out
            res._view(n)
        else:
            raise TypeError(f"out must be a fastvpc Result from an earlier process() call, not {type(out).__name__}")
        res.frames = frames
        nat: dict[str, np.ndarray] = {}
        if self._tables.has_nat:        # what the NAT gateways did (Result.nat_*), for the flow log
            nat = res._nat_view(n)
        else:
            res.nat_gw = res.nat_dir = res.nat_ip = res.nat_l4 = None
        if state is None or times is None:
            _fw.forward_batch(self._tables, frames.data, frames.offsets, frames.port,
                              res.action, res.reason, res.egress, res.route, nt, **nat)
        else:
            state.acquire()     # FlowTableBusyError while another pass holds it
            try:
                _check_clock(state, times)
                _fw.forward_batch(self._tables, frames.data, frames.offsets, frames.port,
                                  res.action, res.reason, res.egress, res.route, nt, state, times, **nat)
            finally:
                state.release()
        if log is not None:
            log.observe(self, frames, res, now=now)
        return res

    # ------------------------------------------------------------------ explanation
    @property
    def network(self) -> Any:
        """A fresh :class:`fastvpc.Network` equal to the one compiled (rebuilt once, then cached).

        It is a copy: changing it does not change this snapshot.
        """
        if self._network is None:
            from fastvpc.files import network_from_dict

            object.__setattr__(self, "_network", network_from_dict(json.loads(self.topology),
                                                                   source="Dataplane.topology"))
        return self._network

    def trace(self, src: Any, dst: Any, proto: str | int = "icmp", port: int | None = None, **kwargs: Any) -> Any:
        """Explain, hop by hop, what this snapshot does with one packet from ``src`` to ``dst``.

        ``src`` is an ENI name or an IP owned by one ENI; ``proto`` icmp (echo request), tcp (SYN),
        udp or a protocol number; ``port`` the destination port.  The verdict comes from
        :meth:`process`; the hops from the reference forwarder with its recorder on, and ``.agrees``
        says whether the two verdicts are the same.  Returns a :class:`fastvpc.trace.Trace`
        (``.action``, ``.reason``, ``.hops``, ``.agrees``, ``str()``, ``.to_dict()``).
        """
        from fastvpc.trace import trace_packet

        return trace_packet(self, src, dst, proto, port, **kwargs)

    # ------------------------------------------------------------------ introspection
    @property
    def n_ports(self) -> int:
        return len(self.port_names)

    def tracking_identities(self) -> dict[int, str]:
        """The name of the ENI or NAT gateway behind each stable identity a :class:`FlowTable` keys
        its entries by: ``{ident: name for ...}`` maps ``flows()["eni"]`` and ``nat_bindings()["nat"]``
        back to names.  The identities are the ones this snapshot was compiled with (its tables';
        without the filters, the ones its network holds).  A network keeps each ENI's identity while
        the ENI exists (a table survives a recompile), so every snapshot of one network agrees on the
        ENIs both have."""
        from fastvpc.compiler.edge import HK_NATID, HK_NATPORT, nat_gateways

        if self.filters:
            idents = self._compiled.eni_filt["ident"].tolist()
        else:
            net = self.network
            idents = net._eni_identities([net.find(n) for n in self.eni_names])
        out = {int(i): name for i, name in zip(idents, self.eni_names)}
        if self.edge:
            slots = self._compiled.edge_hash.reshape(-1, 2)
            kind = slots[:, 0] >> np.uint64(56)
            ident_of = {key & 0xFFFFFFFF: val for key, val in slots[kind == HK_NATID].tolist()}
            port_of = {key & 0xFFFFFFFF: val for key, val in slots[kind == HK_NATPORT].tolist()}
            names: list[str] | None = None
            for g in sorted(ident_of):
                name = self.port_names.get(port_of[g]) if g in port_of else None
                if name is None:    # a snapshot without the NAT gateways' ports: by compile order
                    names = names or [n.name for n in nat_gateways(self.network)]
                    name = names[g] if g < len(names) else None
                if name is not None:
                    out.setdefault(int(ident_of[g]), name)
        return out

    def __repr__(self) -> str:
        return (f"<Dataplane {len(self.vpc_names)} VPCs, {len(self.subnet_names)} subnets, "
                f"{len(self.eni_names)} ENIs, {len(self.routes)} routes, arp_mode={self.arp_mode}>")


def _check_now(now: Any) -> int:
    from fastvpc.dataplane.state import MAX_NOW

    if isinstance(now, bool) or not isinstance(now, (int, np.integer)):
        raise TypeError(f"now must be an int number of ns, got {now!r}")
    if not 0 <= int(now) <= MAX_NOW:
        raise ValueError(f"now = {int(now)} ns is outside 0..{MAX_NOW}")
    return int(now)


def _state_times(state: Any, batch: FrameBatch, now: Any) -> npt.NDArray[np.int64]:
    """The ns of each frame of a stateful pass (one value when ``now`` is given), checked before the
    table is touched: given, in range, non-decreasing along the batch."""
    from fastvpc.dataplane.state import MAX_NOW, FlowTable

    if not isinstance(state, FlowTable):
        raise TypeError(f"state must be a fastvpc.FlowTable, not {type(state).__name__}")
    if now is not None:
        return np.array([_check_now(now)], dtype=np.int64)
    ts = batch.timestamp
    if len(batch) == 0:
        return np.zeros(0, dtype=np.int64)
    if ts is None:
        raise ValueError("process(state=...): the batch has no timestamps; pass now= (int ns)")
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    bad = np.flatnonzero((ts < 0) | (ts > MAX_NOW))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"process(state=...): frame {i} has timestamp {int(ts[i])}, no time (pass now=, "
                         f"or timestamps in 0..{MAX_NOW} ns)")
    back = np.flatnonzero(ts[1:] < ts[:-1])
    if back.size:
        i = int(back[0]) + 1
        raise ValueError(f"process(state=...): frame {i}'s timestamp {int(ts[i])} ns goes backwards "
                         f"(frame {i - 1} is at {int(ts[i - 1])} ns)")
    return ts


def _check_clock(state: Any, times: npt.NDArray[np.int64]) -> None:
    _check_since(state.clock, times)


def _check_since(clock: int | None, times: npt.NDArray[np.int64]) -> None:
    """``times`` (checked by _state_times) must not start before ``clock``, the latest ns a FlowTable has seen."""
    if clock is not None and times.size and int(times[0]) < clock:
        raise ValueError(f"process(state=...): frame 0's time {int(times[0])} ns goes backwards: this FlowTable "
                         f"has seen {clock} ns")


def _rebuild(state: dict[str, Any]) -> Dataplane:
    """Unpickle: every index and hash invariant the kernel relies on is checked first (SnapshotError)."""
    state = _validate.validated(state)
    compiled = CompiledTables(**{name: state[name] for name in _ARRAYS}, lpm=state["lpm"],
                              port_hashed=state["port_hashed"], arp_mode=state["arp_mode"], filters=state["filters"],
                              edge=state.get("edge", False))
    return Dataplane._create(compiled, **{k: state[k] for k in _META})
