"""Replay a capture through a compiled network: pcap in, processed pcap out, counts.

A pcap has no ingress port, so each frame is mapped to the ENI that sent it: by
source MAC (default) or by source IP (IPv4 source address, or the ARP sender
address), or every frame to one ENI (``ingress=``: a capture taken on one VM).  Frames
that map to no ENI -- or, by IP, to ENIs of several VPCs with overlapping CIDRs -- are
*unmapped*: they go through the data plane with port -1 (so they are dropped
``UNKNOWN_PORT``) and are counted and reported separately, never silently lost.

Nothing is lost or overwritten by mistake: every output path is checked (not the input, not
another output, its folder writable) before a frame is read; outputs are written to
``NAME.partial`` and renamed when the replay ends, so on an error no truncated file is left
under the name asked for (the partial files are removed and the error says so).  A damaged
capture raises :class:`fastvpc.PcapError` naming the byte offset; with ``on_error="stop"``
the frames before the damage are replayed, the outputs kept, and ``summary.warnings`` says
where it stopped.

Per chunk the work is (:func:`process_chunk`, the part a sharded driver reuses): the port map
(:mod:`fastvpc.dataplane.ports`), ``Dataplane.process`` in place into reused result buffers, and
one compiled pass (``_replayops.emit_records``) that counts every frame per (ingress port,
action) and reason and writes the pcap records of the emitted and of the dropped frames into
reused buffers.  A classic pcap is read with ``iter_pcap(reuse=True)``: one 1 MiB window, its
records indexed and their frames moved down over their headers in one compiled pass, processed
where they lie, and each chunk's records leave in one ``write()``; nothing is allocated per chunk
and no Python code runs per frame.  pcapng outputs are assembled by
:class:`fastvpc.drivers.pcapout.PcapngOut` from the verdicts.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastvpc._threads import resolve_n_threads
from fastvpc.drivers import _replayops
from fastvpc.drivers._replayops import (I_DROP_BYTES, I_DROP_FRAMES, I_EMIT_BYTES, I_EMIT_FRAMES, I_STATUS,
                                        ST_TIMESTAMP)
from fastvpc.dataplane.ports import PortBy, PortMap
from fastvpc.errors import FastVpcError
from fastvpc.topology import Eni, InternetGateway, Network, TransitGateway, VpnGateway
from fastvpc.verdicts import Action, DropReason

__all__ = ["ChunkOutput", "ChunkScratch", "PortMap", "ReplaySummary", "VerdictCounts", "check_paths",
           "pcap_header", "process_chunk", "replay", "write_json"]

_NACT = max(int(a) for a in Action) + 1
_NREASON = max(int(r) for r in DropReason) + 1


@dataclass
class ReplaySummary:
    frames: int = 0
    unmapped: int = 0
    by_action: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)
    per_eni: dict[str, Counter[str]] = field(default_factory=dict)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "unmapped": self.unmapped, "by_action": dict(self.by_action),
                "by_reason": dict(self.by_reason), "per_eni": {k: dict(v) for k, v in self.per_eni.items()},
                "seconds": round(self.seconds, 6), "warnings": list(self.warnings), "outputs": dict(self.outputs)}

    def __str__(self) -> str:
        r = self.frames / self.seconds if self.seconds > 0 else 0.0
        rate = "" if not r else f" ({r / 1e6:.1f} M frames/s)" if r >= 1e5 else f" ({r:,.0f} frames/s)"
        lines = [f"{self.frames:,} frames in {self.seconds:.2f} s{rate}; {self.unmapped:,} mapped to no ENI "
                 "(dropped UNKNOWN_PORT)"]
        lines.append("by action: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.by_action.items())))
        if self.by_reason:
            lines.append("drops by reason: " + ", ".join(f"{k} {v:,}" for k, v in self.by_reason.most_common()))
        if self.per_eni:
            lines.append("per ingress ENI:")
            for eni, c in sorted(self.per_eni.items()):
                lines.append(f"  {eni:<20} " + ", ".join(f"{k} {v:,}" for k, v in sorted(c.items())))
        for what, path in self.outputs.items():
            lines.append(f"wrote {what}: {path}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def _same(a: str, b: str) -> bool:
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_paths(in_path: str | os.PathLike[str], outputs: dict[str, str | os.PathLike[str] | None]) -> None:
    """Refuse, before any frame is read, an output that is the input or another output, a
    folder, or not writable; and an input that is missing.  ``outputs``: label -> path."""
    src = os.fspath(in_path)
    if not os.path.exists(src):
        raise FastVpcError(f"capture {src!r} does not exist")
    if os.path.isdir(src):
        raise FastVpcError(f"capture {src!r} is a directory")
    seen: list[tuple[str, str]] = []
    for label, p in outputs.items():
        if p is None:
            continue
        path = os.fspath(p)
        if _same(path, src):
            raise FastVpcError(f"{label} {path!r} is the input capture: it would be overwritten while being read")
        for other_label, other in seen:
            if _same(path, other):
                raise FastVpcError(f"{label} {path!r} is also the {other_label}")
        if os.path.isdir(path):
            raise FastVpcError(f"{label} {path!r} is a directory")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise FastVpcError(f"{label} {path!r}: folder {folder!r} does not exist")
        if not os.access(folder, os.W_OK):
            raise FastVpcError(f"{label} {path!r}: folder {folder!r} is not writable")
        seen.append((label, path))


class VerdictCounts:
    """The tallies of a replay: ``by_port[port + 1, action]`` (row 0: frames mapped to no ENI) and
    ``by_reason[reason]``, int64.  :func:`process_chunk` adds to them; :meth:`add` merges the counts
    of another run over the same network (a shard's)."""

    __slots__ = ("by_port", "by_reason")

    def __init__(self, max_port: int) -> None:
        self.by_port = np.zeros((max_port + 2, _NACT), np.int64)
        self.by_reason = np.zeros(_NREASON, np.int64)

    @property
    def frames(self) -> int:
        return int(self.by_port.sum())

    def add(self, other: VerdictCounts) -> None:
        if other.by_port.shape != self.by_port.shape:
            raise FastVpcError(f"counts of another network: {other.by_port.shape[0] - 2} ports, "
                               f"not {self.by_port.shape[0] - 2}")
        self.by_port += other.by_port
        self.by_reason += other.by_reason


class ChunkScratch:
    """Buffers :func:`process_chunk` reuses from one chunk to the next (one per thread or worker): the
    ``Result`` and the two record buffers, grown when a chunk needs more."""

    __slots__ = ("result", "emit", "drop", "info")

    def __init__(self) -> None:
        self.result: Any = None
        self.emit = np.zeros(0, np.uint8)
        self.drop = np.zeros(0, np.uint8)
        self.info = np.zeros(_replayops.N_INFO, np.int64)


@dataclass
class ChunkOutput:
    """What :func:`process_chunk` made of one chunk.  Every array is a view of the scratch buffers
    (and ``result.frames`` is the chunk itself, rewritten): valid until the next call with them."""

    result: Any              #: the ``Dataplane.process`` Result: action, reason, egress, route, frames
    emitted: memoryview      #: classic pcap records (little-endian, ns, no file header) of the frames not dropped
    dropped: memoryview      #: the same for the dropped frames, as they came
    n_emitted: int
    n_dropped: int


_SNAPLEN = 262144


def capture_time_error(first: int, n: int, exc: ValueError) -> FastVpcError:
    """The error of frames ``first .. first + n - 1``, whose times connection tracking or a flow log
    cannot use (``exc`` says why): the serial and the sharded replays' one wording."""
    return FastVpcError(f"frames {first}..{first + n - 1}: {exc} (connection tracking and flow logs take the "
                        "time from the capture: replay with stateful=False / --stateless and no flow log for a "
                        "capture without timestamps)")


def process_chunk(dp: Any, batch: Any, counts: VerdictCounts, *, port_map: PortMap | None = None,
                  ingress_port: int | None = None, scratch: ChunkScratch | None = None, emit: bool = True,
                  drops: bool = False, n_threads: int | None = None, first_frame: int = 0,
                  state: Any = None, log: Any = None) -> ChunkOutput:
    """Replay one chunk of a capture: FrameBatch in, verdicts and output records out.

    ``dp``: the compiled ``Dataplane``.  ``batch``: the chunk (its ``port`` array and its frames are
    rewritten in place).  The ingress port of each frame comes from ``port_map``
    (``PortMap.ports_for``; -1 when it maps to no ENI) or is ``ingress_port`` for every frame (exactly
    one of the two).  Then ``dp.process`` runs in place and one compiled pass adds every frame to
    ``counts`` and writes the classic pcap records (little-endian, nanosecond timestamps, no file
    header, ``262144`` snaplen) of the frames not dropped (``emit``: DELIVER, FORWARD, REPLY,
    rewritten) and of the dropped ones (``drops``), in capture order, into ``scratch``'s buffers.

    Chunks are independent (the data plane keeps no state between frames), so a capture may be
    cut into chunks anywhere and the chunks processed in any order or in parallel (one ``scratch``
    each): concatenating their ``emitted`` records in capture order after a pcap file header
    (:func:`pcap_header`) gives the serial replay's output, and adding their ``counts`` its counts.
    ``first_frame`` (the chunk's first frame's index in the capture) only numbers frames in errors.
    ``state`` (a :class:`fastvpc.FlowTable`) and ``log`` (a :class:`fastvpc.FlowLog`) go to
    ``dp.process`` with the frames' own timestamps as the clock: then the chunks of one capture must
    be processed in capture order through one table (the sharded driver gives each shard of flows
    its own table).
    Raises :class:`fastvpc.PcapError` for a timestamp that a pcap cannot hold (after 2106-02-07).
    """
    if (port_map is None) == (ingress_port is None):
        raise FastVpcError("process_chunk needs exactly one of port_map and ingress_port")
    sc = scratch if scratch is not None else ChunkScratch()
    n = len(batch)
    ports = batch.port            # the batch's own port array (writeable): filled in place
    if port_map is not None:
        port_map.ports_for(batch, out=ports)
    else:
        ports.fill(ingress_port)
    if state is None and log is None:
        res = sc.result = dp.process(batch, copy=False, out=sc.result, n_threads=n_threads)
    else:
        try:
            res = sc.result = dp.process(batch, copy=False, out=sc.result, n_threads=n_threads, state=state,
                                         log=log)
        except ValueError as exc:   # a frame without a timestamp (pcapng Simple Packet Block), time backwards
            raise capture_time_error(first_frame, n, exc) from None
    offsets = batch.offsets
    need = 16 * n + int(offsets[-1] - offsets[0])
    if emit and sc.emit.size < need:
        sc.emit = np.empty(max(need, 2 * sc.emit.size), np.uint8)
    if drops and sc.drop.size < need:
        sc.drop = np.empty(max(need, 2 * sc.drop.size), np.uint8)
    ts = batch.timestamp if batch.timestamp is not None else np.zeros(0, np.int64)
    info = sc.info
    r = _replayops.emit_records(batch.data, offsets, ts, ports, res.action, res.reason, counts.by_port,
                                counts.by_reason, sc.emit, emit, sc.drop, drops, _SNAPLEN, info)
    if r != -1:
        if int(info[I_STATUS]) == ST_TIMESTAMP:
            from fastvpc.errors import PcapError

            raise PcapError(f"frame {first_frame + r} cannot be written: timestamp {int(ts[r])} ns is past the "
                            "32-bit seconds field of pcap (2106-02-07)")
        raise FastVpcError(f"internal error: frame {first_frame + r} of a chunk could not be counted or "  # pragma: no cover
                           f"written (status {int(info[I_STATUS])})")
    return ChunkOutput(res, memoryview(sc.emit)[:int(info[I_EMIT_BYTES])],   # type: ignore[arg-type]
                       memoryview(sc.drop)[:int(info[I_DROP_BYTES])],         # type: ignore[arg-type]
                       int(info[I_EMIT_FRAMES]), int(info[I_DROP_FRAMES]))


def pcap_header() -> bytes:
    """The file header of the classic pcap files replay writes (little-endian, ns, Ethernet)."""
    from fastvpc.drivers.pcapout import pcap_file_header

    return pcap_file_header()


def _verdict_text(code: int) -> str:
    a, r = divmod(code, 256)
    act = Action(a)
    return f"DROP {DropReason(r).name}" if act == Action.DROP else act.name


class _Progress:
    """``\\r`` line on stderr: frames, percent of the file, rate, time left (at most 5 per second)."""

    def __init__(self, total_bytes: int) -> None:
        self.total = max(1, total_bytes)
        self.t0 = time.perf_counter()
        self.last = 0.0

    def update(self, frames: int, done_bytes: int, final: bool = False) -> None:
        now = time.perf_counter()
        if not final and now - self.last < 0.2:
            return
        self.last = now
        dt = max(now - self.t0, 1e-9)
        frac = min(1.0, done_bytes / self.total)
        left = dt * (1 - frac) / frac if frac > 0 else 0.0
        print(f"\r{frames:,} frames ({100 * frac:.0f}%), {frames / dt / 1e6:.1f} M frames/s, "
              f"{left:.0f} s left   ", end="", file=sys.stderr, flush=True)


#: the targets a capture may enter on besides an ENI: what an outside host sends in (DESIGN §6)
INGRESS_GATEWAYS = (InternetGateway, VpnGateway, TransitGateway)


def ingress_port_of(net: Network, ingress: str | Eni | InternetGateway | VpnGateway | TransitGateway | None
                    ) -> int | None:
    """The port every frame of a capture enters on: an ENI's (what one VM sent) or an internet, VPN or
    transit gateway's (what outside hosts sent in, addressed to the gateway's MAC), by name or object;
    None for None.  ``FastVpcError`` naming the value for anything else."""
    if ingress is None:
        return None
    obj = ingress
    if isinstance(ingress, str):
        try:
            obj = net.find(ingress)
        except KeyError as exc:
            raise FastVpcError(f"ingress {ingress!r}: {exc.args[0] if exc.args else 'no such name'}") from None
    if not isinstance(obj, (Eni, *INGRESS_GATEWAYS)):
        raise FastVpcError(f"ingress {getattr(obj, 'name', obj)!r} is a {type(obj).__name__}, not an ENI or an "
                           "internet, VPN or transit gateway")
    port = obj.port
    if port is None or port < 0:
        raise FastVpcError(f"ingress {obj.name!r} has no port in this network")
    return int(port)


def replay(net: Network, in_path: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None, *,
           drops_path: str | os.PathLike[str] | None = None, port_by: PortBy = "src-mac",
           ingress: str | Eni | InternetGateway | VpnGateway | TransitGateway | None = None, batch_size: int = 65536, arp_mode: str = "target",
           progress: bool = False, on_error: str = "raise", n_threads: int | None = None,
           flow_log: Any = None, stateful: bool = True, capacity: int = 1_000_000) -> ReplaySummary:
    """Stream ``in_path`` through ``net.compile()`` in batches.

    ``out_path`` receives the frames the data plane emits (DELIVER, FORWARD, REPLY), rewritten,
    in capture order; ``drops_path`` the dropped frames as they came.  Timestamps are kept.  A
    name ending in ``.pcapng`` gives pcapng: one interface per egress port (per ingress port
    for the drops) and the verdict as each packet's comment.  ``ingress``: every frame enters
    on that ENI, or on that internet, VPN or transit gateway's port (a capture of what arrived from
    outside), by name or object, instead of being mapped by ``port_by``.  ``batch_size``: at most
    this many frames per chunk (a classic pcap is read in 1 MiB windows, so 64-byte frames come
    in chunks of about 13,000); the answer never depends on it.  Each chunk goes through
    :func:`process_chunk`.

    ``stateful`` (default): one :class:`fastvpc.FlowTable` of ``capacity`` flows tracks connections
    across the whole capture, its clock the capture's timestamps (DESIGN.md §5), so replies pass the
    security groups as on the wire; ``stateful=False`` judges every packet as the first of its flow.
    ``flow_log``: a :class:`fastvpc.FlowLog` that gets every chunk's records.
    """
    from fastvpc.drivers.pcapout import CaptureOut, PcapOut, open_capture
    from fastvpc.pcap import PcapTruncatedWarning, iter_pcap

    if on_error not in ("raise", "stop"):
        raise FastVpcError(f"on_error must be 'raise' or 'stop', got {on_error!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise FastVpcError(f"batch_size must be a positive int, got {batch_size!r}")
    check_paths(in_path, {"output": out_path, "drops output": drops_path})
    ingress_port = ingress_port_of(net, ingress)
    dp = net.compile(arp_mode=arp_mode)
    state = None
    if stateful:
        from fastvpc.dataplane.state import FlowTable

        state = FlowTable(capacity=capacity)
    pmap = PortMap.for_network(net, port_by) if ingress_port is None else None
    names = {t.port: t.name for t in net.targets}

    def port_name(p: int) -> str:
        return names.get(p, "unmapped" if p < 0 else str(p))

    # one thread: a 1 MiB window, kept in the cache from read to write; several: 4 MiB a thread, so that
    # each parallel region of process() has enough frames to pay for its start (as 65,536-frame batches did)
    nt = resolve_n_threads(n_threads)
    window = None if nt == 1 else (4 << 20) * nt
    summary = ReplaySummary()
    counts = VerdictCounts(max(names, default=-1))
    scratch = ChunkScratch()
    writers: list[tuple[str, CaptureOut]] = []
    outs: CaptureOut | None = None
    drops: CaptureOut | None = None
    total = os.path.getsize(in_path)
    prog = _Progress(total) if progress else None
    t0 = time.perf_counter()
    done_bytes = 24
    try:
        if out_path is not None:
            outs = open_capture(out_path, port_name, _verdict_text)
            writers.append(("output", outs))
        if drops_path is not None:
            drops = open_capture(drops_path, port_name, _verdict_text)
            writers.append(("drops", drops))
        pcap_outs = isinstance(outs, PcapOut)
        pcap_drops = isinstance(drops, PcapOut)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PcapTruncatedWarning)
            for batch in iter_pcap(in_path, batch_size=batch_size, on_error=on_error,  # type: ignore[arg-type]
                                   reuse=True, window=window):
                n = len(batch)
                ch = process_chunk(dp, batch, counts, port_map=pmap, ingress_port=ingress_port, scratch=scratch,
                                   emit=pcap_outs, drops=pcap_drops, n_threads=n_threads,
                                   first_frame=summary.frames, state=state, log=flow_log)
                summary.frames += n
                if outs is not None:
                    if pcap_outs:
                        outs.write_records(ch.emitted, ch.n_emitted)  # type: ignore[attr-defined]
                    else:
                        action = ch.result.action
                        keep = action != Action.DROP
                        outs.write(batch, keep, int(np.count_nonzero(keep)), ch.result.egress,
                                   action.astype(np.int64) * 256 + ch.result.reason)
                if drops is not None:
                    if pcap_drops:
                        drops.write_records(ch.dropped, ch.n_dropped)  # type: ignore[attr-defined]
                    else:
                        action = ch.result.action
                        gone = action == Action.DROP
                        drops.write(batch, gone, int(np.count_nonzero(gone)), batch.port,
                                    action.astype(np.int64) * 256 + ch.result.reason)
                if prog is not None:
                    done_bytes += int(batch.offsets[-1] - batch.offsets[0]) + 16 * n
                    prog.update(summary.frames, done_bytes)
        for wm in caught:
            if issubclass(wm.category, PcapTruncatedWarning):
                summary.warnings.append(str(wm.message))
            else:
                warnings.warn_explicit(wm.message, wm.category, wm.filename, wm.lineno)
    except BaseException as exc:
        removed = []
        for label, writer in writers:
            writer.discard()
            removed.append(f"{label} {writer.path!r}")
        if removed and isinstance(exc, Exception) and exc.args and isinstance(exc.args[0], str):
            exc.args = (exc.args[0] + f" (nothing written: partial {', '.join(removed)} removed)", *exc.args[1:])
        raise
    finally:
        if prog is not None:
            prog.update(summary.frames, total, final=True)
            print(file=sys.stderr)
    for label, writer in writers:
        writer.commit()
        summary.outputs[label] = writer.path
    summary.seconds = time.perf_counter() - t0
    fill_counts(summary, counts.by_port, counts.by_reason, port_name)
    return summary


def fill_counts(summary: ReplaySummary, by_port: Any, reasons: Any, port_name: Any) -> None:
    """``summary``'s ``unmapped``, ``by_action``, ``by_reason`` and ``per_eni`` from the compiled counts:
    ``by_port[port + 1, action]`` (row 0: frames mapped to no port) and ``reasons[reason]``; ``port_name``
    names a port.  Shared by the serial and the sharded replay, so both report alike."""
    summary.unmapped = int(by_port[0].sum())
    for a in Action:
        total_a = int(by_port[:, int(a)].sum())
        if total_a:
            summary.by_action[a.name] = total_a
    for r in DropReason:
        if r != DropReason.NONE and reasons[int(r)]:
            summary.by_reason[r.name] = int(reasons[int(r)])
    n_act = by_port.shape[1]
    for row in np.flatnonzero(by_port[1:].any(axis=1)):
        p = int(row)
        summary.per_eni[port_name(p)] = Counter({Action(a).name: int(by_port[p + 1, a])
                                                 for a in range(n_act) if by_port[p + 1, a]})


def write_json(summary: ReplaySummary, path: str | os.PathLike[str]) -> None:
    if os.fspath(path) == "-":
        print(json.dumps(summary.to_dict(), indent=2, sort_keys=True), flush=True)
        return
    with open(path, "w") as fh:
        json.dump(summary.to_dict(), fh, indent=2, sort_keys=True)

