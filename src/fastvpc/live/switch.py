"""The live switch: a data plane between real Linux interfaces (see :mod:`fastvpc.live`)."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from fastvpc.errors import FastVpcError, LiveError
from fastvpc.live._mmsg import STATS_LEN, BatchIO
from fastvpc.live._neigh import Neighbours
from fastvpc.live._rings import RxRing, TxRing
from fastvpc.live.sockets import open_packet_socket, open_tx_socket
from fastvpc.verdicts import Action, DropReason

__all__ = ["LIVE_FLOW_CAPACITY", "Switch"]

_STAT_NAMES = ("rx", "rx_truncated", "rx_outgoing", "rx_errors", "tx", "tx_errors", "tx_unattached", "rounds",
               "rx_csum_completed", "rx_segmented", "tx_refused", "rx_vlan_tagged")
#: the route targets whose attached interface is an outside link (the switch resolves next hops there)
_OUTSIDE_KINDS = ("igw", "vgw", "tgw")
#: the largest batch_size, and the smallest and largest snaplen (``fastvpc live`` checks the same
#: ranges when it parses --batch-size and --snaplen: fastvpc.cli.live)
BATCH_SIZE_MAX = 65536
SNAPLEN_MIN = 64
SNAPLEN_MAX = 262144
_NREASON = max(int(r) for r in DropReason) + 1
_NACTION = max(int(a) for a in Action) + 1


def _resolve_port(key: Any, network: Any) -> tuple[int, str]:
    """``key`` (an ENI/target object, a port number or a name) -> (port, label)."""
    if isinstance(key, bool):
        raise LiveError(f"cannot attach {key!r}: not an ENI, a gateway, a port number or a name")
    if isinstance(key, (int, np.integer)):
        port = int(key)
        label = str(port)
        if network is not None:
            try:
                label = network.by_port(port).name
            except (KeyError, LookupError, FastVpcError):
                raise LiveError(f"cannot attach port {port}: no ENI or gateway of the network has it") from None
        return port, label
    if isinstance(key, str):
        if network is None:
            raise LiveError(f"cannot attach {key!r} by name: pass network= (or a dataplane that has .network)")
        try:
            obj = network.find(key)
        except KeyError:
            raise LiveError(f"cannot attach {key!r}: the network has no ENI or gateway of that name") from None
        key = obj
    obj_port = getattr(key, "port", None)
    if not isinstance(obj_port, (int, np.integer)) or obj_port < 0:
        raise LiveError(f"cannot attach {key!r}: it has no port (attach ENIs and route targets)")
    return int(obj_port), str(getattr(key, "name", obj_port))


def _port_owner(port: int, network: Any) -> Any:
    """The ENI or route target whose port is ``port``, or None (no network, or nothing has it)."""
    if network is None:
        return None
    try:
        return network.by_port(port)
    except (KeyError, LookupError, FastVpcError):
        return None


def _no_wire(obj: Any, dataplane: Any) -> str | None:
    """Why the port of ``obj`` carries nothing under ``dataplane`` (no frame is ever sent out of it and
    every frame entering on it is ``DROP(UNKNOWN_PORT)``), or None when it can be attached."""
    kind = getattr(obj, "kind", None)
    if kind == "pcx":
        return ("it is a peering connection, whose port has no wire: the data plane carries frames across the "
                "peering into the peer VPC itself, sends nothing out of the port and drops every frame that "
                "enters on it (UNKNOWN_PORT)")
    if kind == "nat" and getattr(dataplane, "nat_enabled", getattr(dataplane, "edge", False)):
        return ("it is a NAT gateway, whose port has no wire: the data plane carries frames through the NAT "
                "gateway itself, on to the target its subnet's route table names (attach that one, e.g. the "
                "internet gateway), sends nothing out of the port and drops every frame that enters on it "
                "(UNKNOWN_PORT)")
    return None


def _outside_gateways(ports: Mapping[int, str], network: Any) -> list[tuple[int, str]]:
    """(port, MAC) of each attached internet, VPN or transit gateway (their interfaces are outside links)."""
    out: list[tuple[int, str]] = []
    for port in ports:
        obj = _port_owner(port, network)
        if getattr(obj, "kind", None) in _OUTSIDE_KINDS and isinstance(getattr(obj, "mac", None), str):
            out.append((port, obj.mac))
    return out


#: flows the switch's own connection-tracking table holds by default, for all ENIs together (DESIGN §5:
#: one table, ``capacity`` table-wide): FlowTable(262_144).nbytes is 16.6 MB (63 bytes a flow), and a
#: topology with a NAT gateway adds its bindings' region, 23.2 MB, when a frame first meets one
LIVE_FLOW_CAPACITY = 262_144


def _auto_state(dataplane: Any, capacity: int) -> Any:
    """A fresh table of ``capacity`` flows for ``dataplane`` when its ``process()`` takes ``state=``, else None."""
    import inspect

    try:
        params = inspect.signature(dataplane.process).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return None
    if "state" not in params:
        return None
    from fastvpc.testing import fresh_state

    return fresh_state(dataplane, capacity)


class Switch:
    """The data plane between real interfaces.

    ``attach`` maps ports to interface names; a key is an ENI or gateway object, its name
    (resolved through ``network``, or ``dataplane.network`` when present) or a port number.
    ``state="auto"`` gives the switch its own connection-tracking table of ``flow_capacity`` flows
    (default :data:`LIVE_FLOW_CAPACITY`, 262,144), one for all attached ENIs: a VM that opens that
    many flows leaves none for the others, whose new flows are ``DROP(FLOW_TABLE_FULL)`` until
    entries expire (AWS's per-ENI allowance is not modelled).

    A NAT gateway (when ``dataplane`` models NAT gateways, as the compiled one does) and a
    peering connection cannot be attached: their ports carry nothing (:class:`LiveError` says so).
    ``batch_size`` frames at most per round (1..65536); ``snaplen`` is the largest frame accepted
    (64..262144; longer ones are counted as ``rx_truncated`` and dropped).

    On the interface of an internet, VPN or transit gateway (the outside world, DESIGN §6) the
    switch is that gateway's router: it learns the outside hosts' MACs from what they send there
    and gives every frame forwarded out of it the gateway's MAC as source and the next hop's as
    destination, resolving unknown next hops with ARP (:mod:`fastvpc.live._neigh`;
    ``neighbours`` entries per interface, 0: frames leave as ``process()`` made them).

    Use ``run(duration)`` in the foreground (stops on SIGINT/SIGTERM when called from the
    main thread), or ``start()``/``stop()`` to run in a background thread.  The compiled
    I/O and ``Dataplane.process`` release the GIL.
    """

    def __init__(self, dataplane: Any, attach: Mapping[Any, str], *, network: Any = None,
                 batch_size: int = 1024, snaplen: int = 2048, rx_ring: bool = True,
                 tx_ring: bool = True, spin: int = 0, state: Any = "auto", flow_log: Any = None,
                 neighbours: int = 1024, flow_capacity: int | None = None) -> None:
        if not callable(getattr(dataplane, "process", None)):
            raise TypeError(f"dataplane must have a process(batch) method, got {type(dataplane).__name__}")
        if not attach:
            raise LiveError("nothing to attach: give at least one port=interface pair")
        if not 1 <= int(batch_size) <= BATCH_SIZE_MAX:
            raise LiveError(f"batch_size {batch_size} must be in 1..{BATCH_SIZE_MAX}")
        if not SNAPLEN_MIN <= int(snaplen) <= SNAPLEN_MAX:
            raise LiveError(f"snaplen {snaplen} must be in {SNAPLEN_MIN}..{SNAPLEN_MAX}")
        auto = isinstance(state, str) and state == "auto"
        if flow_capacity is not None:
            if isinstance(flow_capacity, bool) or not isinstance(flow_capacity, (int, np.integer)) \
                    or flow_capacity < 1:
                raise LiveError(f"flow_capacity {flow_capacity!r} must be a positive whole number")
            if not auto:
                raise LiveError("flow_capacity sizes the table the switch makes (state='auto'): "
                                "give it or state=, not both")
        self.dataplane = dataplane
        #: connection tracking across batches, timed by the monotonic clock ("auto": a fresh table of the
        #: dataplane's kind when its process() takes state=, of flow_capacity flows (default
        #: LIVE_FLOW_CAPACITY) shared by every ENI; None: stateless, every packet a first packet)
        self.state = _auto_state(dataplane, LIVE_FLOW_CAPACITY if flow_capacity is None else int(flow_capacity)) \
            if auto else state
        #: a fastvpc.FlowLog fed after every batch (None: no flow log).  Its times are the monotonic
        #: clock's, anchored to the epoch when the switch is made, so they never go backwards (a wall
        #: clock step would) and its windows are AWS's, aligned to the epoch
        if flow_log is not None:
            from fastvpc.dataplane import Dataplane
            from fastvpc.dataplane.flowlogs import FlowLog

            if not isinstance(flow_log, FlowLog):
                raise TypeError(f"flow_log must be a fastvpc.FlowLog, not {type(flow_log).__name__}")
            if not isinstance(dataplane, Dataplane):
                raise LiveError(f"a flow log needs the compiled data plane (fastvpc.Dataplane), not "
                                f"{type(dataplane).__name__}")
        self.flow_log = flow_log
        self._epoch_offset = time.time_ns() - time.monotonic_ns()
        network = network if network is not None else getattr(dataplane, "network", None)
        self.network = network
        ports: dict[int, str] = {}
        labels: dict[int, str] = {}
        ifnames: dict[str, str] = {}
        for key, ifname in attach.items():
            port, label = _resolve_port(key, network)
            why = _no_wire(_port_owner(port, network), dataplane)
            if why is not None:
                raise LiveError(f"cannot attach {label}: {why}")
            if port in ports:
                raise LiveError(f"port {port} ({label}) is attached twice ({ports[port]!r} and {ifname!r})")
            if ifname in ifnames:
                raise LiveError(f"interface {ifname!r} is attached twice ({ifnames[ifname]} and {label})")
            ports[port] = ifname
            labels[port] = label
            ifnames[ifname] = label
        if len(ports) > 64:
            raise LiveError(f"{len(ports)} interfaces: at most 64 per switch")
        self.attachments: dict[int, str] = ports
        self.labels: dict[int, str] = labels
        self.batch_size = int(batch_size)
        self.snaplen = int(snaplen)
        self.rx_ring = bool(rx_ring)
        self.tx_ring = bool(tx_ring)
        if int(spin) < 0:
            raise LiveError(f"spin {spin} must be >= 0")
        self.spin = int(spin)
        #: how frames are read: "ring" (TPACKET_V3 mmap ring) or "recvmmsg" (fallback); None until open()
        self.rx_mode: str | None = None
        self.rx_ring_error: str | None = None
        self._ring: RxRing | None = None
        #: how frames are sent: "ring" (TPACKET_V2 tx ring, one send() per batch) or "sendmmsg"
        self.tx_mode: str | None = None
        self.tx_ring_error: str | None = None
        self._txring: TxRing | None = None
        self._txsocks: list[socket.socket] = []
        self._io = BatchIO(self.batch_size, self.snaplen)
        self._data = np.zeros(self._io.buffer_size, dtype=np.uint8)
        self._offsets = np.zeros(self.batch_size + 1, dtype=np.int64)
        self._port = np.zeros(self.batch_size, dtype=np.int32)
        self._stats = np.zeros(STATS_LEN, dtype=np.int64)
        self._counts = np.zeros(_NACTION * _NREASON, dtype=np.int64)
        self._socks: list[socket.socket] = []
        self._fds = np.zeros(0, dtype=np.int32)
        self._fd_ports = np.zeros(0, dtype=np.int32)
        self._port_fd = np.full(max(ports) + 1, -1, dtype=np.int32)
        if int(neighbours) < 0:
            raise LiveError(f"neighbours {neighbours} must be >= 0")
        #: the outside links' neighbour tables (None: no gateway interface attached, or neighbours=0)
        self.neighbours: Neighbours | None = None
        outside = _outside_gateways(ports, network) if int(neighbours) else []
        if outside:
            macs = np.array([[int(b, 16) for b in mac.split(":")] for _, mac in outside], dtype=np.uint8)
            self.neighbours = Neighbours(np.array([p for p, _ in outside], dtype=np.int32), macs,
                                         capacity=int(neighbours), queue=64, slot=self.snaplen)
            k = min(self.neighbours.drain_capacity, self.batch_size)
            self._hold = np.zeros(self.batch_size, dtype=np.uint8)
            self._xdata = np.zeros(self.neighbours.drain_buffer_size, dtype=np.uint8)
            self._xoffsets = np.zeros(k + 1, dtype=np.int64)
            self._xport = np.zeros(k, dtype=np.int32)
            self._xaction = np.full(k, int(Action.FORWARD), dtype=np.uint8)
            self._xreason = np.zeros(k, dtype=np.uint8)
            self._xcounts = np.zeros(_NACTION * _NREASON, dtype=np.int64)   # not the data plane's verdicts
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.elapsed = 0.0

    # ------------------------------------------------------------------ sockets
    @property
    def is_open(self) -> bool:
        return bool(self._socks)

    def open(self) -> Switch:
        """Open and bind one packet socket per attached interface (idempotent).

        With ``rx_ring`` each socket gets a ``TPACKET_V3`` receive ring; when that cannot be
        set up (old kernel, memory limits) the sockets are reopened plain and frames are read
        with ``recvmmsg``.  ``rx_mode`` says which; ``rx_ring_error`` why the ring failed.
        """
        if self._socks:
            return self
        self._open_sockets()
        self.rx_mode = "recvmmsg"
        if self.rx_ring:
            try:
                self._ring = RxRing(self._fds, self._fd_ports, self.batch_size, self.snaplen)
                self.rx_mode = "ring"
            except OSError as exc:
                self.rx_ring_error = str(exc)
                self._close_sockets()   # a half-configured socket may feed a ring nobody reads
                self._open_sockets()
        self.tx_mode = "sendmmsg"
        if self.tx_ring:
            txsocks: list[socket.socket] = []
            try:
                port_fd = np.full(len(self._port_fd), -1, dtype=np.int32)
                for port, ifname in self.attachments.items():
                    txsocks.append(open_tx_socket(ifname))
                    port_fd[port] = txsocks[-1].fileno()
                slot = 2048
                while slot < self.snaplen + 42:     # tpacket2_hdr (32) + virtio_net_hdr (10) + frame
                    slot *= 2
                self._txring = TxRing(port_fd, slot, 1024)
                self._txsocks = txsocks
                self.tx_mode = "ring"
            except (OSError, ValueError) as exc:
                self.tx_ring_error = str(exc)
                for s in txsocks:
                    s.close()
        return self

    def _open_sockets(self) -> None:
        socks = []
        try:
            for port, ifname in self.attachments.items():
                socks.append((port, open_packet_socket(ifname)))
        except BaseException:
            for _, s in socks:
                s.close()
            raise
        self._socks = [s for _, s in socks]
        self._fds = np.array([s.fileno() for _, s in socks], dtype=np.int32)
        self._fd_ports = np.array([p for p, _ in socks], dtype=np.int32)
        for p, s in socks:
            self._port_fd[p] = s.fileno()

    def close(self) -> None:
        """Stop a background run and close the sockets."""
        self.stop()
        self._close_sockets()

    def _close_sockets(self) -> None:
        if self._ring is not None:
            self._ring.close()      # unmap before the sockets go
            self._ring = None
        if self._txring is not None:
            self._txring.close()
            self._txring = None
        for s in self._txsocks:
            s.close()
        self._txsocks = []
        for s in self._socks:
            s.close()
        self._socks = []
        self._fds = np.zeros(0, dtype=np.int32)
        self._port_fd[:] = -1

    def __enter__(self) -> Switch:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ forwarding
    def poll_once(self, timeout_ms: int = 100) -> int:
        """Wait up to ``timeout_ms`` for frames; process and send one batch; return its size."""
        if not self._socks:
            raise LiveError("the switch is not open: call open() or use it as a context manager")
        if self._ring is not None:
            n = self._ring.recv(self._data, self._offsets, self._port, self._stats, int(timeout_ms), self.spin)
        else:
            n = self._io.recv(self._fds, self._fd_ports, self._data, self._offsets, self._port,
                              self._stats, int(timeout_ms))
        neigh = self.neighbours
        if n == 0:
            if neigh is not None and neigh.pending:
                self._send_neighbours(time.monotonic_ns())   # ARP retries, giving up
            return 0
        from fastvpc.batch import FrameBatch

        batch = FrameBatch(self._data, self._offsets[:n + 1], self._port[:n])
        mono = time.monotonic_ns()
        if neigh is not None:   # before process(), which rewrites the frames in place
            neigh.learn(self._data, self._offsets[:n + 1], self._port[:n], mono)
            if neigh.pending:
                # frames held for a next hop this batch resolved leave before this batch's frames to it:
                # sent after them, they would arrive out of order (a UDP sender's first datagram behind
                # its second)
                self._send_neighbours(mono)
        if self.state is not None:
            res = self.dataplane.process(batch, state=self.state, now=mono)
        else:
            res = self.dataplane.process(batch)
        frames = getattr(res, "frames", None)
        if frames is None:
            frames = batch
        if self.flow_log is not None:
            # after the pass, before the frames are sent (the buffer is reused by the next batch)
            self.flow_log.observe(self.dataplane, frames, res, now=self._epoch_offset + mono)
        action = np.ascontiguousarray(res.action, dtype=np.uint8)
        reason = np.ascontiguousarray(res.reason, dtype=np.uint8)
        egress = np.ascontiguousarray(res.egress, dtype=np.int32)
        hold = None
        if neigh is not None and frames.writeable:
            # out of a gateway's interface: the gateway's MAC as source, the next hop's as destination
            if neigh.resolve(frames.data, frames.offsets, action, egress, self._hold, mono):
                hold = self._hold[:n]
        if self._txring is not None:
            self._txring.send(frames.data, frames.offsets, self._port[:n], action, reason, egress,
                              self._counts, _NREASON, self._stats, hold)
        else:
            self._io.send(self._port_fd, frames.data, frames.offsets, self._port[:n], action, reason, egress,
                          self._counts, _NREASON, self._stats, hold)
        if neigh is not None and neigh.pending:
            self._send_neighbours(mono)
        return n

    def _send_neighbours(self, now: int) -> None:
        """Send what the neighbour tables have ready: ARP requests, frames whose next hop was resolved."""
        neigh = self.neighbours
        assert neigh is not None
        k = neigh.drain(self._xdata, self._xoffsets, self._xport, now)
        if k == 0:
            return
        args = (self._xdata, self._xoffsets[:k + 1], self._xport[:k], self._xaction[:k], self._xreason[:k],
                self._xport[:k], self._xcounts, _NREASON, self._stats)
        if self._txring is not None:
            self._txring.send(*args)
        else:
            self._io.send(self._port_fd, *args)

    def run(self, duration: float | None = None, *, handle_signals: bool = True,
            stop: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Forward until ``duration`` seconds pass, ``stop()`` returns true, :meth:`stop` is
        called or (in the main thread, with ``handle_signals``) SIGINT/SIGTERM arrives.
        Returns :meth:`counters`."""
        self.open()
        self._stop.clear()
        old: dict[signal.Signals, Any] = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                old[sig] = signal.signal(sig, lambda *_: self._stop.set())
        t0 = time.monotonic()
        deadline = None if duration is None else t0 + max(0.0, float(duration))
        try:
            while not self._stop.is_set():
                timeout = 100
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    timeout = max(0, min(100, int(left * 1000) + 1))
                self.poll_once(timeout)
                if stop is not None and stop():
                    break
        finally:
            self.elapsed += time.monotonic() - t0
            for sig, handler in old.items():
                signal.signal(sig, handler)
        return self.counters()

    def start(self) -> Switch:
        """Run in a background thread until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self.open()
        self._stop.clear()
        self._error = None

        def body() -> None:
            try:
                self.run(handle_signals=False)
            except BaseException as exc:  # reported by stop()
                self._error = exc

        self._thread = threading.Thread(target=body, name="fastvpc-live-switch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop a background run (waits for it); re-raises an error the loop hit."""
        self._stop.set()
        th, self._thread = self._thread, None
        if th is not None:
            th.join(timeout=10)
            if self._error is not None:
                err, self._error = self._error, None
                raise err

    # ------------------------------------------------------------------ counters
    def counters(self) -> dict[str, Any]:
        """Counters so far: frames by action, drops by reason, and I/O totals."""
        counts = self._counts.reshape(_NACTION, _NREASON)
        by_action = {Action(a).name: int(counts[a].sum()) for a in range(_NACTION)}
        by_reason = {DropReason(r).name: int(counts[int(Action.DROP), r])
                     for r in range(_NREASON) if counts[int(Action.DROP), r]}
        out: dict[str, Any] = {name: int(v) for name, v in zip(_STAT_NAMES, self._stats)}
        out["by_action"] = by_action
        out["by_reason"] = by_reason
        out["elapsed"] = self.elapsed
        if self.neighbours is not None:
            out["neighbours"] = self.neighbours.counters()
        return out

    @property
    def rx(self) -> int:
        """Frames received so far (cheap: no dictionaries built)."""
        return int(self._stats[0])

    @property
    def tx(self) -> int:
        """Frames sent so far."""
        return int(self._stats[4])

    def reset_counters(self) -> None:
        self._counts[:] = 0
        self._stats[:] = 0
        self.elapsed = 0.0

    def format_counters(self) -> str:
        """The counters as readable text (what ``fastvpc live`` prints when it stops)."""
        c = self.counters()
        lines = [f"received {c['rx']} frames in {c['elapsed']:.1f} s, sent {c['tx']} "
                 f"(receive: {self.rx_mode or '-'}, send: {self.tx_mode or '-'})"]
        lines.append("by action:")
        for name, v in c["by_action"].items():
            lines.append(f"  {name:<10} {v}")
        if c["by_reason"]:
            lines.append("drops by reason:")
            for name, v in c["by_reason"].items():
                lines.append(f"  {name:<22} {v}")
        extra = [(k, c[k]) for k in ("tx_unattached", "tx_errors", "rx_truncated", "rx_outgoing", "rx_errors",
                                     "rx_csum_completed", "rx_segmented", "tx_refused", "rx_vlan_tagged") if c[k]]
        if extra:
            lines.append("i/o:")
            for name, v in extra:
                lines.append(f"  {name:<22} {v}")
        nb = {k: v for k, v in c.get("neighbours", {}).items() if v}
        if nb:
            lines.append("gateway interfaces (next hops):")
            for name, v in nb.items():
                lines.append(f"  {name:<22} {v}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        att = ", ".join(f"{self.labels[p]}={i}" for p, i in self.attachments.items())
        return f"<Switch {att} {'open' if self._socks else 'closed'}>"
