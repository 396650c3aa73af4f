"""Replay a capture on a Dask distributed cluster: ``replay_sharded`` (``fastvpc replay --workers N``).

The result is the serial replay's (:func:`fastvpc.drivers.replay.replay`), byte for byte: the same
output and drops captures, the same counts, the same flow log.  How:

1. **Scan** (the client, before any task is sent; while a local cluster starts): the capture is
   indexed once, without copying a frame, and cut into chunks of ``chunk_frames`` records
   (:func:`fastvpc.pcap.scan_pcap`): each chunk is where it starts and the reader's state there, so
   a worker reads its byte range of the file itself (:func:`fastvpc.pcap.iter_pcap_chunk`): paths and
   offsets go to the workers, never frames.  A damaged capture fails here (``on_error="raise"``), or
   is cut where the damage starts (``"stop"``), exactly as the serial replay does.

With connection tracking (``stateful=True``, the serial replay's default; also ``shard_by="flow"``)
and classic pcap outputs:

2. **Flow shards** (one task per shard, ``workers`` shards, each pinned to its own worker): every
   shard reads every chunk in capture order and one compiled pass (``_shardops.select_shard``) gives
   each frame its shard by a direction-symmetric flow key, so both directions of a flow land in one
   shard, and moves the shard's own frames down into a batch of their own: between two addresses of
   the network's VPCs the unordered 5-tuple (the FlowTable's flow hash); between the VPC and the
   outside (a gateway's side) the outside address and protocol, which a NAT gateway or an internet
   gateway's 1:1 translation leaves alone, so a translated flow, its replies and their later
   fragments (no ports) also meet (docs/scale-out.md).
   Frames with no flow (ARP, non-IPv4) are spread by position.  The shard's frames go through the
   compiled snapshot (fetched once per worker: :func:`_shared`) with the shard's one
   :class:`fastvpc.FlowTable`, kept inside the task for the whole capture (never pickled), in capture
   order, which is what a FlowTable needs.  Their emitted and dropped records are packed by the
   serial replay's compiled pass and appended to the shard's scratch files, with each record's place
   in its chunk and its length.
3. **Merge** (one task per chunk and output): the shards' records of the chunk are read back, put in
   capture order by one compiled gather, and written at the chunk's offset in the output (whose
   size the client computed from the shards' counts).

Without connection tracking every verdict is the frame's own, so no frame needs to move: one task
per chunk replays it whole (as the serial replay does) into its worker's memory, and writes its
records at their offset in the outputs as soon as the chunks before it have reported their sizes.
pcapng outputs (interfaces are declared as they first appear, a sequential affair) take the older
flow path: a map task per chunk, shard tasks writing the verdicts and frames to scratch files at
their capture positions, and the client writing the pcapng.

Every task is idempotent (it rewrites the same bytes at the same places), so a worker that dies
mid-run costs only its tasks' re-execution: Dask recomputes what was lost, and the output is still
complete and identical (the shards' results are gathered before the merges start, so a worker lost
during the merges re-runs merges only).  The capture, the outputs and the scratch folder (beside the
first output) must be visible at the same paths to every worker: on one machine they are; on a
cluster use a shared file system (docs/scale-out.md).

Per-shard FlowTables are exact for every flow (both directions meet one table); what is per ENI or
per NAT gateway across flows (a full FlowTable, NAT port exhaustion) is per shard: with the default
capacity no table fills up, and the capture would have to exhaust the table for results to differ.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pickle
import shutil
import struct
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from fastvpc.batch import FrameBatch
from fastvpc.errors import FastVpcError
from fastvpc.pcap import PcapChunk, check_pcap

__all__ = ["DaskMissingError", "SchedulerUnreachableError", "replay_sharded", "shard_of_frames"]

_SNAPLEN = 262144          # what PcapOut writes (drivers/pcapout.py)
_MAGIC_NSEC = 0xA1B23C4D
_EXTRA_HINT = "pip install 'fastvpc[dask]'"
_QUIET_WORKERS = {"distributed.worker.profile.enabled": False, "distributed.admin.system-monitor.interval": "2s",
                  "distributed.worker.memory.monitor-interval": "1s"}


class DaskMissingError(FastVpcError, ImportError):
    """``dask.distributed`` is not installed: the message names the extra to install."""


class SchedulerUnreachableError(FastVpcError, ConnectionError):
    """No Dask scheduler answered at the address given; ``address`` is that address."""

    def __init__(self, message: str, address: str) -> None:
        super().__init__(message)
        self.address = address


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise DaskMissingError(f"--workers needs Dask distributed, which is not installed ({exc.name or exc}): "
                               f"{_EXTRA_HINT}") from None
    return distributed


# --------------------------------------------------------------------------- the capture, in chunks

_Chunk = PcapChunk   # a chunk of the capture: where it starts and the reader's state there (fastvpc.pcap)


def scan_capture(path: str, chunk_frames: int, on_error: str) -> tuple[list[PcapChunk], list[str]]:
    """Index the whole capture (no frame copied) into chunks (:func:`fastvpc.pcap.scan_pcap`); raises
    PcapError on damage unless ``on_error="stop"`` (then the chunks end where the damage starts and the
    warning is returned)."""
    from fastvpc.pcap import scan_pcap

    sc = scan_pcap(path, chunk_frames, on_error=cast(Any, on_error))
    return sc.chunks, sc.warnings


def _data_bases(chunks: Sequence[PcapChunk]) -> list[int]:
    bases, at = [], 0
    for c in chunks:
        bases.append(at)
        at += c.nbytes
    return bases


def iter_chunk(path: str, chunk: PcapChunk, batch_size: int = 65536, reuse: bool = False) -> Iterator[FrameBatch]:
    """The frames of ``chunk`` as FrameBatches of at most ``batch_size`` frames with timestamps (port
    -1), as ``iter_pcap`` reads them (:func:`fastvpc.pcap.iter_pcap_chunk`)."""
    from fastvpc.pcap import iter_pcap_chunk

    return iter_pcap_chunk(path, chunk, batch_size, reuse=reuse)


def read_chunk(path: str, chunk: PcapChunk) -> FrameBatch:
    """Every frame of ``chunk`` in one FrameBatch."""
    parts = list(iter_chunk(path, chunk, chunk.frames))
    return parts[0] if len(parts) == 1 else FrameBatch.concat(parts)


# --------------------------------------------------------------------------- sharding

@dataclass
class _Context:
    """What every task needs besides the snapshot (sent once per worker)."""

    pmap: Any                           # PortMap, or None with ``ingress_port``
    ingress_port: int | None
    is_eni: npt.NDArray[np.bool_]       # [port + 1]: the port is an ENI's
    inside_lo: npt.NDArray[np.uint32]   # merged VPC CIDRs, as sorted inclusive intervals
    inside_hi: npt.NDArray[np.uint32]
    n_shards: int
    n_act: int
    n_reason: int
    max_port: int
    stateful: bool
    capacity: int
    batch_size: int = 65536
    flow_log_window: int = 0            # a FlowLog per task with this window (0: no flow log)
    flow_log_base: int = 0              # added to every frame's capture position (the caller's log's own)
    nat_keys: npt.NDArray[np.uint32] = field(   # nat_keys(net, ...): empty when no NAT is keyed
        default_factory=lambda: np.zeros(0, np.uint32))

    def new_flow_log(self) -> Any:
        if not self.flow_log_window:
            return None
        from fastvpc.dataplane.flowlogs import FlowLog

        return FlowLog(window=self.flow_log_window)

    def ports_for(self, batch: FrameBatch) -> npt.NDArray[np.int32]:
        ports = batch.port
        if self.pmap is not None:
            self.pmap.ports_for(batch, out=ports)
        else:
            ports.fill(self.ingress_port)
        return ports


def _inside_intervals(net: Any) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    nets = ipaddress.collapse_addresses([c for v in net.vpcs for c in v.cidrs])
    spans = sorted((int(n.network_address), int(n.broadcast_address)) for n in nets)
    return np.array([a for a, _ in spans], np.uint32), np.array([b for _, b in spans], np.uint32)


def nat_keys(net: Any, n_rows: int) -> npt.NDArray[np.uint32]:
    """What the shard key needs to know of the NAT gateways, as words for ``_shardops``: the NAT gateways'
    private IPs (a frame to one is on its reply path: keyed by its source, the far side), and per ENI row
    (port + 1, ``n_rows`` of them) the inside addresses its subnet's route table sends to a NAT gateway (keyed
    by the destination, the far side), as sorted inclusive ranges.  Layout: n_ips, the sorted IPs, n_rows,
    n_rows + 1 range offsets, every range's first address, then every range's last one.  Empty when no ENI's table routes an inside address to a NAT gateway
    and no NAT gateway has an address inside: outside traffic is keyed by its far side anyway."""
    from fastvpc.reference import ReferenceForwarder
    from fastvpc.topology import NatGateway

    lo_in, hi_in = _inside_intervals(net)

    def inside(a: int) -> bool:
        k = int(np.searchsorted(lo_in, a, side="right")) - 1
        return k >= 0 and a <= int(hi_in[k])

    ips = sorted({int(g.ip) for v in net.vpcs for g in v.gateways
                  if isinstance(g, NatGateway) and g.ip is not None and inside(int(g.ip))})
    by_table: dict[int, list[tuple[int, int]]] = {}
    rows: list[list[tuple[int, int]]] = [[] for _ in range(n_rows)]
    for e in net.enis:
        rt = e.subnet.route_table
        spans = by_table.get(id(rt))
        if spans is None:
            spans = by_table[id(rt)] = []
            nat_dests = [r.destination for r in rt.routes if isinstance(r.target, NatGateway)]
            if nat_dests:
                # the LPM's answer is constant between the edges of the routes nested in a NAT route (a route
                # around it is shorter and loses inside it): ask it once per piece (the reference's, which
                # the kernel is checked against)
                cuts = sorted({x for r in rt.routes if any(r.destination.subnet_of(d) for d in nat_dests)
                               for x in (int(r.destination.network_address), int(r.destination.broadcast_address) + 1)})
                for a, b in zip(cuts, cuts[1:]):
                    m = ReferenceForwarder.longest_prefix_match(e.subnet, ipaddress.IPv4Address(a))
                    if m is not None and isinstance(m.target, NatGateway):
                        if spans and spans[-1][1] + 1 == a:
                            spans[-1] = (spans[-1][0], b - 1)
                        else:
                            spans.append((a, b - 1))
        if 0 <= e.port + 1 < n_rows:
            rows[e.port + 1] = spans
    if not ips and not any(rows):
        return np.zeros(0, np.uint32)
    words = [len(ips), *ips, n_rows]
    off = 0
    offs = [0]
    for r in rows:
        off += len(r)
        offs.append(off)
    words += offs
    words += [a for r in rows for a, _ in r]
    words += [b for r in rows for _, b in r]
    return np.array(words, np.uint32)


def _nat_far(ctx: _Context, ports: npt.NDArray[np.int32], src: npt.NDArray[np.uint32],
             dst: npt.NDArray[np.uint32]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """numpy's reading of ``ctx.nat_keys`` (as ``_shardops._shard``): per frame, (to a NAT gateway's address,
    routed to a NAT gateway by its ENI's subnet)."""
    w = ctx.nat_keys
    n = src.size
    to_nat = np.zeros(n, np.bool_)
    via_nat = np.zeros(n, np.bool_)
    if w.size == 0:
        return to_nat, via_nat
    n_ips = int(w[0])
    ips = w[1:1 + n_ips]
    n_rows = int(w[1 + n_ips])
    off = w[2 + n_ips:3 + n_ips + n_rows].astype(np.int64)
    ends = w[3 + n_ips + n_rows:]
    first, last = ends[:ends.size // 2], ends[ends.size // 2:]
    if n_ips:
        k = np.minimum(np.searchsorted(ips, dst), n_ips - 1)
        to_nat = ips[k] == dst
    row = np.clip(ports.astype(np.int64) + 1, 0, max(n_rows - 1, 0))
    for r in np.unique(row):
        a, b = int(off[r]), int(off[r + 1])
        if b <= a:
            continue
        sel = row == r
        lo, hi = first[a:b], last[a:b]
        k = np.searchsorted(lo, dst[sel], side="right") - 1
        via_nat[sel] = (k >= 0) & (dst[sel] <= hi[np.maximum(k, 0)])
    return to_nat, via_nat


_W = 64    # header bytes gathered per frame: Ethernet + IPv4 without options + 8 bytes of L4


def shard_of_frames(batch: FrameBatch, ports: npt.NDArray[np.int32], ctx: _Context, first: int = 0) -> npt.NDArray[np.uint16]:
    """The shard of every frame (see the module doc): both directions of a flow, translated or not,
    get the same shard; frames without a flow are spread by their global position ``first + i``.

    The first 64 bytes of every frame are gathered into an ``n x 64`` matrix by one compiled pass;
    the fields are then columns of it (frames with IPv4 options read their ports from the frame)."""
    from fastvpc._batchops import gather_spans
    from fastvpc.dataplane._flowtable import flow_hash_batch

    n = len(batch)
    S = ctx.n_shards
    spread = ((np.arange(n, dtype=np.int64) + first) % S).astype(np.uint16)
    if n == 0 or S == 1:
        return spread
    off = batch.offsets
    ln = np.diff(off)
    H = np.zeros((n, _W), np.uint8)
    r = gather_spans(batch.data, off[:-1], np.minimum(ln, _W), H.reshape(-1), np.arange(0, n * _W, _W, dtype=np.int64))
    if r != -1:  # pragma: no cover - a FrameBatch's offsets are validated when it is made
        raise FastVpcError(f"internal error: frame {r} outside its batch")
    v4 = (H[:, 12] == 8) & (H[:, 13] == 0) & ((H[:, 14] >> 4) == 4) & (ln >= 34)
    ihl = (H[:, 14] & 15).astype(np.int64) * 4
    proto = np.ascontiguousarray(H[:, 23])
    src = np.ascontiguousarray(H[:, 26:30]).view(">u4").ravel().astype(np.uint32)
    dst = np.ascontiguousarray(H[:, 30:34]).view(">u4").ravel().astype(np.uint32)
    whole = ((H[:, 20] & 0x1F) == 0) & (H[:, 21] == 0)           # offset 0 (a first fragment too): ports here
    room = ln - 14 - ihl
    tcpudp = ((proto == 6) | (proto == 17)) & whole & (room >= 4) & (ihl >= 20)
    icmp = (proto == 1) & whole & (room >= 8) & (ihl >= 20)
    l4 = np.ascontiguousarray(H[:, 34:42])
    sport = l4[:, 0:2].copy().view(">u2").ravel().astype(np.uint16)
    dport = l4[:, 2:4].copy().view(">u2").ravel().astype(np.uint16)
    ident = l4[:, 4:6].copy().view(">u2").ravel().astype(np.uint16)
    opt = np.flatnonzero(v4 & (ihl > 20) & (tcpudp | icmp))
    if opt.size:   # IPv4 options: the L4 header is further in; read it from the frame
        d = batch.data
        at = off[opt] + 14 + ihl[opt]
        sport[opt] = (d[at].astype(np.uint16) << 8) | d[at + 1]
        dport[opt] = (d[at + 2].astype(np.uint16) << 8) | d[at + 3]
        ok = icmp[opt]
        ati = np.where(ok, at + 4, at)
        ident[opt] = np.where(ok, (d[ati].astype(np.uint16) << 8) | d[ati + 1], 0)
    sport = np.where(tcpudp, sport, 0).astype(np.uint16)
    dport = np.where(tcpudp, dport, 0).astype(np.uint16)
    ident = np.where(icmp, ident, 0).astype(np.uint16)
    from_eni = ctx.is_eni[np.clip(ports.astype(np.int64) + 1, 0, ctx.is_eni.size - 1)]
    k = np.searchsorted(ctx.inside_lo, dst, side="right") - 1
    dst_inside = (k >= 0) & (dst <= ctx.inside_hi[np.maximum(k, 0)])
    inner = from_eni & dst_inside
    # a NAT gateway between inside addresses: keyed by the far side, as an outside flow (nat_keys)
    to_nat, via_nat = _nat_far(ctx, ports, src, dst)
    to_nat &= inner
    inner = inner & ~to_nat & ~via_nat
    far = np.where(to_nat, src, dst)
    # inner flow: the unordered 5-tuple (ICMP: the echo identifier as a port); a flow with the outside:
    # the outside address (a NAT or the IGW translates only the inside one; a later fragment has no port)
    a = np.where(inner, src, np.where(from_eni, far, src))
    b = np.where(inner, dst, 0).astype(np.uint32)
    pa = np.where(inner, np.where(icmp, ident, sport), 0).astype(np.uint16)
    pb = np.where(inner, dport, 0).astype(np.uint16)
    h = np.empty(n, np.uint64)
    flow_hash_batch(proto, a, b, pa, pb, h)
    # the hash's high 32 bits pick the shard (a multiply, not a division: _shardops does the same)
    return np.where(v4, (((h >> np.uint64(32)) * np.uint64(S)) >> np.uint64(32)).astype(np.uint16), spread)


def _map_task(path: str, chunk: _Chunk, ctx: _Context) -> npt.NDArray[np.uint16]:
    """The shard of every frame of ``chunk`` (the compiled ``shard_of_frames``)."""
    from fastvpc.drivers._shardops import shard_frames

    out = np.zeros(chunk.frames, np.uint16)
    is_eni = ctx.is_eni.view(np.uint8)
    for done, b in _counted(iter_chunk(path, chunk, ctx.batch_size, reuse=True)):
        r = shard_frames(b.data, b.offsets, ctx.ports_for(b), is_eni, ctx.inside_lo, ctx.inside_hi, ctx.n_shards,
                         chunk.first + done, out[done:done + len(b)], ctx.nat_keys)
        if r != -1:  # pragma: no cover - a FrameBatch's offsets are validated when it is made
            raise FastVpcError(f"internal error: frame {r} outside its batch")
    return out


def _counted(batches: Iterator[FrameBatch]) -> Iterator[tuple[int, FrameBatch]]:
    """(frames before this batch in the chunk, batch)."""
    done = 0
    for b in batches:
        yield done, b
        done += len(b)


# --------------------------------------------------------------------------- shards

@dataclass(frozen=True)
class _Scratch:
    """Scratch files every worker opens by path (frames: processed frame bytes at their chunk
    positions; verdicts: one byte per frame, action; ports/egress/reason only for pcapng outputs)."""

    folder: str
    total_frames: int
    total_bytes: int
    frames: bool
    detail: bool
    data_base: tuple[int, ...] = ()   # per chunk: where its frame bytes start in the frames file

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def open(self, name: str, dtype: Any, n: int) -> np.memmap:
        return np.memmap(self.path(name), dtype=dtype, mode="r+", shape=(max(n, 1),))


@dataclass
class _ShardResult:
    shard: int
    frames: int
    by_port: npt.NDArray[np.int64]
    reasons: npt.NDArray[np.int64]
    out_bytes: npt.NDArray[np.int64]     # per chunk: bytes of the emitted records
    drop_bytes: npt.NDArray[np.int64]    # per chunk: bytes of the dropped records
    out_frames: npt.NDArray[np.int64]
    drop_frames: npt.NDArray[np.int64]
    flow_log: Any = None                 # the task's FlowLog (its records ordered by capture position)


def _shard_task(path: str, chunks: Sequence[_Chunk], shards: Sequence[npt.NDArray[np.uint16]], k: int,
                dp: Any, ctx: _Context, scratch: _Scratch | None) -> _ShardResult:
    from fastvpc.drivers._replayops import count_verdicts

    by_port = np.zeros((ctx.max_port + 2, ctx.n_act), np.int64)
    reasons = np.zeros(ctx.n_reason, np.int64)
    C = len(chunks)
    out_bytes, drop_bytes = np.zeros(C, np.int64), np.zeros(C, np.int64)
    out_frames, drop_frames = np.zeros(C, np.int64), np.zeros(C, np.int64)
    kw: dict[str, Any] = {"n_threads": 1}
    if ctx.stateful:
        from fastvpc.dataplane.state import FlowTable

        kw["state"] = FlowTable(ctx.capacity)
    frames_mm = verdict_mm = None
    detail: dict[str, np.memmap] = {}
    if scratch is not None:
        verdict_mm = scratch.open("action.u8", np.uint8, scratch.total_frames)
        if scratch.frames:
            frames_mm = scratch.open("frames.bin", np.uint8, scratch.total_bytes)
        if scratch.detail:
            detail = {"reason": scratch.open("reason.u8", np.uint8, scratch.total_frames),
                      "egress": scratch.open("egress.i32", np.int32, scratch.total_frames),
                      "port": scratch.open("port.i32", np.int32, scratch.total_frames)}
    from fastvpc.verdicts import Action

    drop = int(Action.DROP)
    result = None
    total = 0
    flow_log = ctx.new_flow_log()
    from fastvpc._batchops import gather_spans

    for c, chunk in enumerate(chunks):
        if not np.any(shards[c] == k):
            continue
        done = nbytes = 0
        for whole in iter_chunk(path, chunk, ctx.batch_size):
            m = len(whole)
            mine = np.flatnonzero(shards[c][done:done + m] == k)
            if mine.size:
                batch = whole.select(mine) if mine.size != m else whole
                ports = ctx.ports_for(batch)
                result = dp.process(batch, copy=False, out=result, **kw)
                action, reason = result.action, result.reason
                if flow_log is not None:
                    flow_log.observe(dp, batch, result, order=ctx.flow_log_base + chunk.first + done + mine)
                total += mine.size
                if count_verdicts(ports, action, reason, by_port, reasons) != -1:  # pragma: no cover
                    raise FastVpcError("internal error: a verdict outside the count tables")
                lengths = np.diff(batch.offsets)
                rec = 16 + np.minimum(lengths, _SNAPLEN)
                dropped = action == drop
                nd = int(np.count_nonzero(dropped))
                db = int(rec[dropped].sum()) if nd else 0
                drop_bytes[c] += db
                out_bytes[c] += int(rec.sum()) - db
                drop_frames[c] += nd
                out_frames[c] += mine.size - nd
                g = chunk.first + done + mine
                if verdict_mm is not None:
                    verdict_mm[g] = action
                if detail:
                    detail["reason"][g] = reason
                    detail["egress"][g] = result.egress
                    detail["port"][g] = ports
                if frames_mm is not None:
                    assert scratch is not None
                    dst = scratch.data_base[chunk.index] + nbytes + whole.offsets[mine]
                    r = gather_spans(batch.data, batch.offsets[:-1], lengths, frames_mm, dst)
                    if r != -1:  # pragma: no cover - the scratch file was sized from the scan
                        raise FastVpcError(f"internal error: frame {r} outside the scratch file")
            done += m
            nbytes += int(whole.offsets[-1])
    # no msync: the pages are the files' page cache, which every process on this machine sees at once
    # (and a worker on another machine reads them through the shared file system after the close)
    del frames_mm, verdict_mm, detail
    return _ShardResult(k, total, by_port, reasons, out_bytes, drop_bytes, out_frames, drop_frames, flow_log)


# --------------------------------------------------------------------------- flow shards, classic pcap outputs

@dataclass
class _FlowResult:
    """What a flow-shard task reports: its counts, and per chunk what it left in its scratch files."""

    shard: int
    frames: int                          # frames of the shard
    by_port: npt.NDArray[np.int64]
    reasons: npt.NDArray[np.int64]
    out_bytes: npt.NDArray[np.int64]     # per chunk: bytes of the shard's emitted records
    out_frames: npt.NDArray[np.int64]    # per chunk: its emitted frames
    drop_bytes: npt.NDArray[np.int64]
    drop_frames: npt.NDArray[np.int64]
    flow_log: Any = None


class _Appender:
    """One scratch file, appended to (opened afresh, so a re-run task rewrites it whole)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)

    def write(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            n = os.write(self.fd, view)
            view = view[n:]

    def close(self) -> None:
        os.close(self.fd)


def _flow_files(scratch: str, k: int, what: str) -> tuple[str, str]:
    """Shard ``k``'s scratch files for ``what`` ("out" or "drop"): its packed records (each one's length
    is in its own header) and, per record, its frame's position in its chunk (int32)."""
    return os.path.join(scratch, f"{what}-{k}.rec"), os.path.join(scratch, f"{what}-{k}.pos")


def _flow_task(path: str, chunks: Sequence[PcapChunk], k: int, dp: Any, ctx: _Context, scratch: str | None,
               want_out: bool, want_drops: bool) -> _FlowResult:
    """Shard ``k`` of the capture: every chunk read in capture order (its byte range of the file, read
    here), each frame's shard found by one compiled pass that also moves this shard's frames down into
    a batch of their own (``_shardops.select_shard``), that batch processed with the shard's one
    FlowTable (kept here, never pickled), counted, and its emitted and dropped records packed
    (``_replayops.emit_records``) and appended to the shard's scratch files with, per record, its
    position in its chunk and its length: what the merge needs to put every record at its place."""
    from fastvpc.dataplane import _check_since, _state_times
    from fastvpc.drivers.replay import capture_time_error
    from fastvpc.drivers._replayops import I_DROP_BYTES, I_EMIT_BYTES, I_STATUS, N_INFO, ST_TIMESTAMP, emit_records
    from fastvpc.drivers._shardops import select_shard
    from fastvpc.verdicts import Action

    C = len(chunks)
    by_port = np.zeros((ctx.max_port + 2, ctx.n_act), np.int64)
    reasons = np.zeros(ctx.n_reason, np.int64)
    out_bytes, out_frames = np.zeros(C, np.int64), np.zeros(C, np.int64)
    drop_bytes, drop_frames = np.zeros(C, np.int64), np.zeros(C, np.int64)
    table = None
    if ctx.stateful:
        from fastvpc.dataplane.state import FlowTable

        table = FlowTable(ctx.capacity)
    flow_log = ctx.new_flow_log()
    is_eni = ctx.is_eni.view(np.uint8)
    drop = int(Action.DROP)
    files: dict[str, tuple[_Appender, _Appender]] = {}
    cap = 0
    own_off = own_ts = own_pos = np.zeros(0, np.int64)
    own_port = np.zeros(0, np.int32)
    ebuf = np.zeros(0, np.uint8)
    dbuf = np.zeros(0, np.uint8)
    info = np.zeros(N_INFO, np.int64)
    result = None
    total = 0
    clock: int | None = None   # the latest frame time of the capture so far (what one serial table has seen)
    try:
        if scratch is not None:
            for what, want in (("out", want_out), ("drop", want_drops)):
                if want:
                    made: list[_Appender] = []
                    for name in _flow_files(scratch, k, what):
                        made.append(_Appender(name))
                    files[what] = (made[0], made[1])
        for chunk in chunks:
            c = chunk.index
            done = 0
            for batch in iter_chunk(path, chunk, ctx.batch_size, reuse=True):
                n = len(batch)
                ports = ctx.ports_for(batch)
                if n > cap:
                    cap = max(n, 2 * cap)
                    own_off, own_ts, own_pos = np.zeros(cap + 1, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64)
                    own_port = np.zeros(cap, np.int32)
                ts = batch.timestamp if batch.timestamp is not None else np.zeros(0, np.int64)
                if table is not None:
                    # the serial replay's one table checks the time of every frame, this shard's or not
                    # (a frame of another shard may go back in time): the same check, the same words
                    try:
                        times = _state_times(table, batch, None)
                        _check_since(clock, times)
                    except ValueError as exc:
                        raise capture_time_error(chunk.first + done, n, exc) from None
                    if times.size:
                        clock = int(times[-1])
                m = select_shard(batch.data, batch.offsets, ports, ts, is_eni, ctx.inside_lo, ctx.inside_hi,
                                 ctx.n_shards, k, chunk.first + done, own_off, own_port, own_ts, own_pos,
                                 ctx.nat_keys)
                done += n
                if not m:
                    continue
                own = FrameBatch(batch.data, own_off[:m + 1], own_port[:m], own_ts[:m] if ts.size else None)
                # its frames' times: checked above with the whole batch's
                result = dp.process(own, copy=False, out=result, n_threads=1, state=table)
                pos = own_pos[:m]   # capture positions
                if flow_log is not None:
                    flow_log.observe(dp, own, result, order=pos + ctx.flow_log_base)
                need = 16 * m + int(own_off[m])
                if want_out and ebuf.size < need:
                    ebuf = np.empty(max(need, 2 * ebuf.size), np.uint8)
                if want_drops and dbuf.size < need:
                    dbuf = np.empty(max(need, 2 * dbuf.size), np.uint8)
                r = emit_records(own.data, own.offsets, own_ts[:m] if ts.size else ts, own.port, result.action,
                                 result.reason, by_port, reasons, ebuf, want_out, dbuf, want_drops, _SNAPLEN, info)
                if r != -1:
                    if int(info[I_STATUS]) == ST_TIMESTAMP:
                        from fastvpc.errors import PcapError

                        raise PcapError(f"frame {int(pos[r])} cannot be written: timestamp "
                                        f"{int(own_ts[r])} ns is past the 32-bit seconds field of pcap (2106-02-07)")
                    raise FastVpcError(f"internal error: frame {int(pos[r])} could not be counted "  # pragma: no cover
                                       f"or written (status {int(info[I_STATUS])})")
                total += m
                if files:
                    dropped = result.action == drop
                    for what, buf, nbytes, sel in (("out", ebuf, int(info[I_EMIT_BYTES]), ~dropped),
                                                   ("drop", dbuf, int(info[I_DROP_BYTES]), dropped)):
                        if what not in files:
                            continue
                        rec_f, pos_f = files[what]
                        p = (pos[sel] - chunk.first).astype(np.int32)   # in the chunk
                        if not p.size:
                            continue
                        rec_f.write(buf[:nbytes])
                        pos_f.write(p)
                        if what == "out":
                            out_bytes[c] += nbytes
                            out_frames[c] += p.size
                        else:
                            drop_bytes[c] += nbytes
                            drop_frames[c] += p.size
            if done != chunk.frames:  # pragma: no cover - iter_pcap_chunk raises first
                raise FastVpcError(f"{path}: chunk {c} read {done} frames, {chunk.frames} scanned")
    finally:
        for trio in files.values():
            for f in trio:
                f.close()
    return _FlowResult(k, total, by_port, reasons, out_bytes, out_frames, drop_bytes, drop_frames, flow_log)


_BUFS = threading.local()


def _buffer(name: str, n: int, dtype: Any) -> npt.NDArray[Any]:
    """A buffer of at least ``n`` items kept per thread from one merge task to the next (no page faults
    on every chunk)."""
    have = getattr(_BUFS, name, None)
    if have is None or have.size < n or have.dtype != np.dtype(dtype):
        have = np.empty(max(n, 1), dtype)
        setattr(_BUFS, name, have)
    return cast("npt.NDArray[Any]", have[:n])


def _mapped(path: str, offset: int, size: int, dtype: Any) -> tuple[Any, npt.NDArray[Any]]:
    """``size`` bytes of scratch file ``path`` from ``offset``, mapped (the page cache itself: no copy)."""
    import mmap

    if not size:
        return None, np.zeros(0, dtype)
    page = mmap.ALLOCATIONGRANULARITY
    start = offset - offset % page
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), size + (offset - start), access=mmap.ACCESS_READ, offset=start)
    view = np.frombuffer(mm, np.uint8, size, offset - start).view(dtype)
    return mm, view


def _merge_task(chunk: PcapChunk, scratch: str, what: str, target: str, at: int,
                parts: Sequence[tuple[int, int, int, int]]) -> int:
    """Chunk ``chunk``'s ``what`` records ("out" or "drop") from every shard's scratch files, merged into
    capture order by one compiled pass (``_shardops.merge_records``) and written at ``at`` in
    ``target``.  ``parts[k]``: shard k's (record byte offset, record bytes, record index, records) for
    this chunk in its scratch files.  Idempotent."""
    from fastvpc.drivers._shardops import merge_records

    S = len(parts)
    total_b = sum(p[1] for p in parts)
    total_n = sum(p[3] for p in parts)
    if not total_n:
        return 0
    maps: list[tuple[Any, npt.NDArray[np.uint8]]] = []
    pos = _buffer("pos", total_n, np.int32)
    pos_start = np.zeros(S + 1, np.int64)
    try:
        f = 0
        for k, (rb, nb, ri, nr) in enumerate(parts):
            rec_p, pos_p = _flow_files(scratch, k, what)
            # the records are copied once, by the merge itself, from the mapped page cache
            maps.append(_mapped(rec_p, rb, nb, np.uint8))
            pos[f:f + nr] = _mapped(pos_p, 4 * ri, 4 * nr, np.int32)[1]
            f += nr
            pos_start[k + 1] = f
        if sum(1 for p in parts if p[3]) == 1:   # one stream: already in order
            k = next(i for i, p in enumerate(parts) if p[3])
            _pwrite_all(target, maps[k][1], at)
            return total_n
        out = _buffer("out", total_b, np.uint8)
        w = merge_records([rec for _mm, rec in maps], pos, pos_start, out)
        if w != total_b:  # pragma: no cover - merge_records checks the streams
            raise FastVpcError(f"internal error: chunk {chunk.index} merged {w} bytes of {total_b}")
        _pwrite_all(target, out, at)
    finally:
        maps.clear()   # the mappings close with their last view (an explicit close() would refuse)
    return total_n


def _run_flow(distributed: Any, client: Any, in_path: str, chunks: Sequence[PcapChunk], dp_f: Any, ctx_f: Any,
              folder: str | None, n_shards: int, token: str, report: Any, out_s: str | None, drops_s: str | None,
              partials: list[tuple[str, str]]) -> list[_FlowResult]:
    """Connection tracking with classic pcap outputs (or none): one task per flow shard over the whole
    capture (each on its own worker when the cluster has enough), then one merge task per chunk and
    output.  The shards' results are gathered here before the merges are sent, so a worker lost
    during the merges costs only its merges (no shard is recomputed under them)."""
    want_out, want_drops = out_s is not None, drops_s is not None
    addrs = sorted(client.scheduler_info(n_workers=-1).get("workers", {}))
    shard_f = []
    for k in range(n_shards):
        pin = {"workers": [addrs[k % len(addrs)]], "allow_other_workers": True} if len(addrs) >= n_shards else {}
        shard_f.append(client.submit(_flow_task, in_path, chunks, k, dp_f, ctx_f, folder, want_out, want_drops,
                                     pure=False, key=f"fastvpc-flow-{k}-{token}", **pin))
    results: list[_FlowResult] = _wait(distributed, shard_f, "process", report, None)
    del shard_f
    if folder is None:
        return results
    merge_f = []
    for what, target, label in (("out", out_s, "output"), ("drop", drops_s, "drops")):
        if target is None:
            continue
        nbytes = np.array([getattr(r, f"{what}_bytes") for r in results])    # [shard, chunk]
        nrec = np.array([getattr(r, f"{what}_frames") for r in results])
        per_chunk = nbytes.sum(axis=0)
        starts = 24 + np.concatenate([[0], np.cumsum(per_chunk)[:-1]]).astype(np.int64)
        rb = np.concatenate([np.zeros((n_shards, 1), np.int64), np.cumsum(nbytes, axis=1)[:, :-1]], axis=1)
        ri = np.concatenate([np.zeros((n_shards, 1), np.int64), np.cumsum(nrec, axis=1)[:, :-1]], axis=1)
        final = _new_partial(target, int(per_chunk.sum()))
        partials.append((label, target))
        for c in chunks:
            if not per_chunk[c.index]:
                continue
            parts = [(int(rb[k, c.index]), int(nbytes[k, c.index]), int(ri[k, c.index]), int(nrec[k, c.index]))
                     for k in range(n_shards)]
            merge_f.append(client.submit(_merge_task, c, folder, what, final, int(starts[c.index]), parts,
                                         pure=False, key=f"fastvpc-merge-{what}-{c.index}-{token}"))
    if merge_f:
        _wait(distributed, merge_f, "write", report, None)
    return results


@dataclass
class _ChunkOut:
    """A chunk replayed whole: its counts and its packed records (kept in the worker's memory until
    they are written at their offset)."""

    counts: _ShardResult
    out: list[npt.NDArray[np.uint8]] | None      # one packed buffer per batch, in order
    drops: list[npt.NDArray[np.uint8]] | None


def _chunk_task(path: str, chunk: _Chunk, dp: Any, ctx: _Context, want_out: bool, want_drops: bool) -> _ChunkOut:
    """Without connection tracking every frame's verdict is its own: a chunk is replayed whole, as the
    serial replay does it (ports, process, counts, the records packed), into memory."""
    from fastvpc.drivers._replayops import count_verdicts

    by_port = np.zeros((ctx.max_port + 2, ctx.n_act), np.int64)
    reasons = np.zeros(ctx.n_reason, np.int64)
    result = None
    packed: tuple[list[npt.NDArray[np.uint8]], list[npt.NDArray[np.uint8]]] = ([], [])
    flow_log = ctx.new_flow_log()
    for done, batch in _counted(iter_chunk(path, chunk, ctx.batch_size, reuse=True)):
        ports = ctx.ports_for(batch)
        result = dp.process(batch, copy=False, out=result, n_threads=1)
        if flow_log is not None:
            flow_log.observe(dp, batch, result,
                             order=np.arange(len(batch), dtype=np.int64) + (ctx.flow_log_base + chunk.first + done))
        if count_verdicts(ports, result.action, result.reason, by_port, reasons) != -1:  # pragma: no cover
            raise FastVpcError("internal error: a verdict outside the count tables")
        for want, parts, is_drop in ((want_out, packed[0], False), (want_drops, packed[1], True)):
            if want:
                parts.append(_pack(batch, result.action, is_drop, path, chunk.first + done))
    out = packed[0] if want_out else None
    drops = packed[1] if want_drops else None
    sizes = (np.array([sum(int(a.size) for a in packed[0])], np.int64),
             np.array([sum(int(a.size) for a in packed[1])], np.int64))
    zero = np.zeros(1, np.int64)
    return _ChunkOut(_ShardResult(chunk.index, chunk.frames, by_port, reasons, sizes[0], sizes[1], zero, zero,
                                  flow_log), out, drops)


def _chunk_counts(out: _ChunkOut) -> _ShardResult:
    """The small part of a chunk's result (runs where the chunk's result is: no bytes move)."""
    return out.counts


def _write_chunk(out: _ChunkOut, out_at: tuple[str, int] | None, drops_at: tuple[str, int] | None) -> int:
    """Write a chunk's packed records into the outputs at their offsets."""
    for data, at in ((out.out, out_at), (out.drops, drops_at)):
        if at is not None and data:
            _pwrite_all(at[0], data, at[1])
    return out.counts.shard


# --------------------------------------------------------------------------- writing

def _pack(batch: FrameBatch, action: npt.NDArray[np.uint8], drops: bool, path: str, first: int) -> npt.NDArray[np.uint8]:
    from fastvpc.drivers._replayops import pack_selected
    from fastvpc.errors import PcapError

    n = len(batch)
    buf = np.empty(16 * n + int(batch.offsets[-1] - batch.offsets[0]), np.uint8)
    ts = batch.timestamp if batch.timestamp is not None else np.zeros(0, np.int64)
    r, written = pack_selected(batch.data, batch.offsets, ts, action, drops, buf, _SNAPLEN)
    if r != -1:
        t = int(ts[r]) if r >= 0 and ts.size else None
        raise PcapError(f"{path}: frame {first + r} cannot be written: timestamp {t} ns "
                        "is past the 32-bit seconds field of pcap (2106-02-07)", path=path)
    return buf[:written]


def _pwrite_all(path: str, data: Any, pos: int) -> None:
    """Write ``data`` (bytes-like, or a list of them: one pwritev) at ``pos``."""
    views = [memoryview(d).cast("B") for d in (data if isinstance(data, list) else [data])]
    views = [v for v in views if len(v)]
    fd = os.open(path, os.O_WRONLY)
    try:
        while views:
            n = os.pwritev(fd, views[:512], pos)
            pos += n
            while views and n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            if views and n:
                views[0] = views[0][n:]
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- the driver

class _Progress:
    def __init__(self, total: int) -> None:
        self.total = max(1, total)
        self.t0 = time.perf_counter()

    def __call__(self, stage: str, done: int, total: int, frames: int) -> None:
        dt = max(time.perf_counter() - self.t0, 1e-9)
        print(f"\r{stage}: {done}/{total} tasks, {frames:,} frames, {frames / dt / 1e6:.1f} M frames/s, "
              f"{dt:.0f} s   ", end="", file=sys.stderr, flush=True)


def _probe_scheduler(distributed: Any, address: str, timeout: float) -> None:
    """Raise SchedulerUnreachableError unless a Dask scheduler answers at ``address`` within about
    ``timeout`` seconds: reaching it (Dask's connect, retried until ``timeout``), Dask's handshake
    and an ``identity`` request, on one connection that is then dropped.

    ``distributed.Client`` bounds only the first of these: a peer that accepts the connection and
    says nothing holds it in the handshake for ever, and one that answers other bytes (an HTTP
    server) makes it read them as a frame header and try to allocate exabytes.  The probe runs on an
    event loop of its own in a thread of its own (the caller may be inside a running loop), and every
    failure on this path, MemoryError included, becomes the one error naming the address."""
    import asyncio

    from distributed.comm import CommClosedError, connect
    from distributed.security import Security

    # Dask's connect gives up reaching the address after ``timeout``; the handshake that follows has
    # no deadline of its own, so the whole exchange gets a little more: past it, the address was
    # reached and nothing answered
    grace = min(1.0, timeout / 4)
    box: dict[str, Any] = {}

    async def exchange() -> Any:
        comm = await connect(address, timeout=timeout, **Security().get_connection_args("client"))
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    async def bounded() -> None:
        task = asyncio.ensure_future(exchange())
        done, _ = await asyncio.wait({task}, timeout=timeout + grace)
        if not done:
            task.cancel()
            box["silent"] = True
            return
        try:
            box["identity"] = task.result()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    th = threading.Thread(target=lambda: asyncio.run(bounded()), name="fastvpc-probe", daemon=True)
    th.start()
    th.join(timeout + grace + 5.0)

    def fail(what: str) -> SchedulerUnreachableError:
        return SchedulerUnreachableError(f"no Dask scheduler at {address!r}: {what}", address)

    err = box.get("error")
    if box.get("silent"):
        raise fail(f"the connection was made, but nothing answered Dask's handshake within {timeout:g} s")
    if th.is_alive():   # the probe's own loop did not end (a name lookup that never returns, say)
        raise fail(f"nothing answered within {timeout:g} s")
    if isinstance(err, ValueError):
        raise SchedulerUnreachableError(f"{address!r} is not a Dask scheduler address: {err}", address)
    if isinstance(err, CommClosedError):
        raise fail(f"the peer closed the connection during Dask's handshake ({err})")
    if isinstance(err, OSError):
        raise SchedulerUnreachableError(f"cannot reach the Dask scheduler at {address!r} "
                                        f"(waited {timeout:g} s): {err}", address)
    if isinstance(err, MemoryError):
        raise fail("what it sent is not Dask's protocol (its first bytes, read as a Dask frame header, "
                   "announce an impossible size)")
    if err is not None:
        raise fail(f"what it sent is not Dask's protocol ({type(err).__name__}: {err})")
    info = box.get("identity")
    kind = info.get("type") if isinstance(info, dict) else None
    if kind != "Scheduler":
        raise fail(f"it is a Dask {kind}, not a scheduler" if isinstance(kind, str) and kind
                   else "its answer to Dask's identity request is not a scheduler's")


def _connect(distributed: Any, address: str, timeout: float) -> Any:
    """A ``distributed.Client`` of the scheduler at ``address`` (probed first: :func:`_probe_scheduler`).

    A Client whose constructor fails has already started its event-loop thread: left to the garbage
    collector, its ``__del__`` tries to close it at interpreter exit, waits twice the timeout and
    prints a traceback.  So it is made in two steps, and closed here when its ``__init__`` fails."""
    _probe_scheduler(distributed, address, timeout)
    client = distributed.Client.__new__(distributed.Client)
    try:
        client.__init__(address, timeout=timeout, set_as_default=False)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            client.close(timeout=timeout)
        if getattr(client, "status", "closed") != "closed":
            client.status = "closed"   # its __del__ then does nothing (the close above could not finish)
        if isinstance(exc, (OSError, TimeoutError, ValueError)):
            raise SchedulerUnreachableError(f"cannot reach the Dask scheduler at {address!r} "
                                            f"(waited {timeout:g} s): {exc}", address) from None
        if isinstance(exc, MemoryError):   # a peer's bytes read as a frame header (the probe saw a scheduler)
            raise SchedulerUnreachableError(f"no Dask scheduler at {address!r}: what it sent is not Dask's "
                                            "protocol", address) from None
        raise
    return client


def _client(distributed: Any, workers: int, scheduler: str | None, connect_timeout: float) -> tuple[Any, Any]:
    """(client, cluster-or-None): a LocalCluster of ``workers`` processes, or the scheduler given."""
    if scheduler is not None:
        return _connect(distributed, scheduler, connect_timeout), None
    import logging

    # the workers would log every restart and lost task to the terminal: the driver reports instead
    for name in ("distributed", "distributed.nanny", "distributed.worker", "distributed.scheduler"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    import dask

    # each worker runs one long task at a time: Dask's sampling profiler (every 10 ms) and its 0.5 s
    # system monitor would only take CPU from it
    with dask.config.set(_QUIET_WORKERS):
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=":0", silence_logs=logging.CRITICAL)
    return distributed.Client(cluster, set_as_default=False), cluster


def replay_sharded(net: Any, in_path: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None, *,
                   drops_path: str | os.PathLike[str] | None = None, workers: int | None = None,
                   scheduler: str | None = None, batch_size: int = 65536,
                   port_by: str = "src-mac", ingress: Any = None, arp_mode: str = "target", on_error: str = "raise",
                   chunk_frames: int = 1 << 20, stateful: bool | None = None, capacity: int = 1_000_000,
                   progress: bool | Callable[[str, int, int, int], None] = False, scratch_dir: str | None = None,
                   shard_by: str = "auto", flow_log: Any = None,
                   connect_timeout: float = 5.0, client: Any = None) -> Any:
    """Replay ``in_path`` on a Dask cluster; returns the serial replay's :class:`ReplaySummary`.

    ``net``: a Network (compiled with ``arp_mode``) or a compiled Dataplane.  ``workers``: worker
    processes of the LocalCluster started (and stopped) here, and the number of shards; with
    ``scheduler`` (``"tcp://host:8786"``) the cluster is that one, and ``workers`` only the number of
    shards (default: as many as it has workers); ``connect_timeout`` bounds reaching it and Dask's
    handshake (a peer that is no scheduler, silent or not, is one SchedulerUnreachableError naming the
    address, within that and a quarter of it).  ``client``: an existing ``distributed.Client``.
    ``chunk_frames``: records per map/write task.  ``stateful``: one FlowTable per shard (None: as
    the serial replay does).  ``shard_by``: ``"auto"`` shards by flow when the replay tracks
    connections (or writes pcapng) and by chunk otherwise (every verdict is then the frame's own, and
    no frame moves between workers); ``"flow"`` always by flow.  ``progress``: a line on stderr, or a callable
    ``(stage, tasks_done, tasks, frames)``.  ``flow_log``: a :class:`fastvpc.FlowLog` that gets the
    replay's records, as the serial replay's ``flow_log=`` does: every task keeps its own log (its
    records ordered by the capture positions of the frames that began them) and the client merges them
    into ``flow_log`` (one record per key: packets and bytes summed, start/end min/max, tcp-flags OR-ed),
    so its records, and the file it writes, are the serial replay's.  The other keywords are the
    serial replay's.
    """
    from fastvpc.dataplane import Dataplane
    from fastvpc.dataplane.ports import PortMap
    from fastvpc.drivers.replay import ReplaySummary, check_paths, fill_counts, ingress_port_of
    from fastvpc.verdicts import Action, DropReason

    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 4096):
        raise FastVpcError(f"workers must be an int from 1 to 4096, got {workers!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise FastVpcError(f"batch_size must be a positive int, got {batch_size!r}")
    if isinstance(chunk_frames, bool) or not isinstance(chunk_frames, int) or chunk_frames < 1:
        raise FastVpcError(f"chunk_frames must be a positive int, got {chunk_frames!r}")
    if on_error not in ("raise", "stop"):
        raise FastVpcError(f"on_error must be 'raise' or 'stop', got {on_error!r}")
    if port_by not in ("src-mac", "src-ip"):
        raise FastVpcError(f"port mapping {port_by!r} must be 'src-mac' or 'src-ip'")
    if shard_by not in ("auto", "flow"):
        raise FastVpcError(f"shard_by must be 'auto' or 'flow', got {shard_by!r}")
    if flow_log is not None:
        from fastvpc.dataplane.flowlogs import FlowLog

        if not isinstance(flow_log, FlowLog):
            raise FastVpcError(f"flow_log must be a fastvpc.FlowLog, not {type(flow_log).__name__}")
    in_path = os.fspath(in_path)
    out_s = os.fspath(out_path) if out_path is not None else None
    drops_s = os.fspath(drops_path) if drops_path is not None else None
    check_paths(in_path, {"output": out_s, "drops output": drops_s})
    distributed = _distributed()           # a missing Dask is said before any work
    if isinstance(net, Dataplane):
        dp, net = net, net.network
    else:
        dp = net.compile(arp_mode=arp_mode)
    ingress_port = ingress_port_of(net, ingress)
    if stateful is None:
        stateful = _serial_stateful()
    if stateful:
        from fastvpc.sim._core import process_keywords

        if "state" not in process_keywords(dp):
            raise FastVpcError("stateful=True, but this fastvpc's Dataplane.process() takes no state= "
                               "(connection tracking is not installed)")

    t0 = time.perf_counter()
    check_pcap(in_path, on_error=cast(Any, on_error))   # a file that is no capture fails here, before any worker starts
    own_client = client is None
    cluster = None
    if own_client and scheduler is None:
        # the capture is scanned while the local cluster starts (its processes take a second or two to
        # import); a bad capture then stops the cluster before any task is sent
        box: dict[str, Any] = {}

        def scan() -> None:
            try:
                box["scan"] = scan_capture(in_path, chunk_frames, on_error)
            except BaseException as exc:  # handed to the main thread
                box["error"] = exc

        th = threading.Thread(target=scan, name="fastvpc-scan", daemon=True)
        th.start()
        try:
            client, cluster = _client(distributed, workers or 2, None, connect_timeout)
        finally:
            th.join()
        if "error" in box:
            client.close()
            cluster.close()
            raise box["error"]
        chunks, scan_warnings = box["scan"]
    else:
        chunks, scan_warnings = scan_capture(in_path, chunk_frames, on_error)   # a bad capture fails here
        if own_client:
            client, cluster = _client(distributed, workers or 2, scheduler, connect_timeout)
    total_frames = sum(c.frames for c in chunks)
    total_bytes = sum(c.nbytes for c in chunks)
    names = {t.port: t.name for t in net.targets}
    max_port = max(names, default=-1)
    is_eni = np.zeros(max_port + 2, np.bool_)
    for e in net.enis:
        is_eni[e.port + 1] = True
    lo, hi = _inside_intervals(net)
    n_act = max(int(a) for a in Action) + 1
    n_reason = max(int(r) for r in DropReason) + 1

    if workers is None:   # as many shards as the cluster has workers
        workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {}))) if scheduler or not own_client else 2
    n_shards = workers
    token = uuid.uuid4().hex[:12]
    ctx = _Context(PortMap.for_network(net, cast(Any, port_by)) if ingress_port is None else None, ingress_port, is_eni,
                   lo, hi, n_shards, n_act, n_reason, max_port, bool(stateful), capacity, batch_size,
                   flow_log.window if flow_log is not None else 0,
                   # positions after the log's own records: seq = 2 * position + 1 or 2 (FlowLog.observe)
                   (int(flow_log._core.next_seq) + 1) // 2 if flow_log is not None else 0,
                   nat_keys(net, is_eni.size))
    report = progress if callable(progress) else (_Progress(total_frames) if progress else None)
    pcapng = any(p is not None and p.endswith(".pcapng") for p in (out_s, drops_s))
    folder: str | None = None
    partials: list[tuple[str, str]] = []
    summary = ReplaySummary()
    try:
        by_flow = bool(stateful) or pcapng or shard_by == "flow"
        folder = None
        if by_flow and (out_s is not None or drops_s is not None):
            first_out = out_s if out_s is not None else drops_s
            assert first_out is not None
            where = scratch_dir or (_local_scratch(client, total_bytes + 16 * total_frames) if not pcapng else None)
            if where == _SHM:
                _sweep_shm(where)
            folder = tempfile.mkdtemp(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-",
                                      dir=where or os.path.dirname(os.path.abspath(first_out)))
        dp_f, ctx_f = _shared(client, dp, f"fastvpc-snapshot-{token}"), _shared(client, ctx, f"fastvpc-ctx-{token}")
        results: Sequence[Any]
        if by_flow and pcapng:
            assert folder is not None
            scratch = _Scratch(folder, total_frames, total_bytes, True, True, tuple(_data_bases(chunks)))
            results = _run_by_flow(distributed, client, in_path, chunks, dp_f, ctx_f, scratch, n_shards, token,
                                   report, out_s, drops_s, pcapng, partials, names)
        elif by_flow:
            results = _run_flow(distributed, client, in_path, chunks, dp_f, ctx_f, folder, n_shards, token, report,
                                out_s, drops_s, partials)
        else:
            results = _run_by_chunk(distributed, client, in_path, chunks, dp_f, ctx_f, token, report,
                                    out_s, drops_s, partials)
        if flow_log is not None:
            flow_log.merge(*[r.flow_log for r in results if r.flow_log is not None])
        by_port = sum((r.by_port for r in results), np.zeros((max_port + 2, n_act), np.int64))
        reasons = sum((r.reasons for r in results), np.zeros(n_reason, np.int64))
        summary.frames = total_frames
    except BaseException as exc:
        removed = []
        for label, p in partials:
            try:
                os.unlink(p + ".partial")
                removed.append(f"{label} {p!r}")
            except OSError:
                pass
        if removed and isinstance(exc, Exception) and exc.args and isinstance(exc.args[0], str):
            exc.args = (exc.args[0] + f" (nothing written: partial {', '.join(removed)} removed)", *exc.args[1:])
        raise
    finally:
        if report is not None and not callable(progress):
            print(file=sys.stderr)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        if own_client:
            client.close()
            if cluster is not None:
                cluster.close()
    for label, target in partials:
        os.replace(target + ".partial", target)
        summary.outputs[label] = target
    summary.warnings.extend(scan_warnings)
    summary.seconds = time.perf_counter() - t0

    def port_name(p: int) -> str:
        return names.get(p, "unmapped" if p < 0 else str(p))

    fill_counts(summary, by_port, reasons, port_name)
    return summary


_SHM = "/dev/shm"
#: Scratch folders are named ``.fastvpc-shards-<pid of the client>-<random>``: a client killed before
#: its ``finally`` ran (SIGKILL, the OOM killer) leaves its folder behind, and in ``/dev/shm`` that is
#: memory held until reboot, so the next sharded replay removes the folders of clients that are gone.
_SCRATCH_PREFIX = ".fastvpc-shards-"


def _sweep_shm(root: str = _SHM) -> list[str]:
    """Remove the scratch folders in ``root`` of sharded replays whose client process no longer exists
    (on this machine: ``/dev/shm`` is only used when every worker is local).  Folders of live
    processes, of other users, and names that do not carry a pid are left alone.  Returns the removed."""
    removed: list[str] = []
    try:
        names = os.listdir(root)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(_SCRATCH_PREFIX):
            continue
        pid_text = name[len(_SCRATCH_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        path = os.path.join(root, name)
        try:
            if os.lstat(path).st_uid != os.getuid() or not os.path.isdir(path) or os.path.islink(path):
                continue
            os.kill(int(pid_text), 0)
            continue  # the client is alive (or the pid was reused: leave it)
        except ProcessLookupError:
            pass
        except (OSError, OverflowError, ValueError):
            continue  # PermissionError: another user's live process; anything else: leave it
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _local_scratch(client: Any, need: int) -> str | None:
    """``/dev/shm`` when every worker runs on this machine (a LocalCluster: their addresses are loopback
    ones) and it has room for twice ``need`` bytes: the shards' records then stay in memory and are
    never written back to a disk.  None otherwise (the scratch folder goes beside the output, which a
    cluster sees through its shared file system)."""
    import ipaddress as ip
    from urllib.parse import urlparse

    if not os.path.isdir(_SHM) or not os.access(_SHM, os.W_OK):
        return None
    try:
        st = os.statvfs(_SHM)
        workers = client.scheduler_info(n_workers=-1).get("workers", {})
    except Exception:
        return None
    if st.f_bavail * st.f_frsize < 2 * need or not workers:
        return None
    for addr in workers:
        host = urlparse(addr).hostname or ""
        try:
            if not ip.ip_address(host).is_loopback:
                return None
        except ValueError:
            if host != "localhost":
                return None
    return _SHM


def _new_partial(path: str, size: int) -> str:
    """``path.partial``: a pcap header and room for ``size`` bytes of records (written by the tasks)."""
    partial = path + ".partial"
    with open(partial, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", _MAGIC_NSEC, 2, 4, 0, 0, _SNAPLEN, 1))
        fh.truncate(24 + size)
    return partial


def _run_by_chunk(distributed: Any, client: Any, in_path: str, chunks: Sequence[_Chunk], dp_f: Any, ctx_f: Any,
                  token: str, report: Any, out_s: str | None, drops_s: str | None,
                  partials: list[tuple[str, str]]) -> list[_ShardResult]:
    """No connection tracking: every chunk replayed whole by one task into its worker's memory; as soon
    as every chunk before it has reported its size, a task on the same worker writes it at its offset
    (the outputs are written once, by the workers, while later chunks are still being replayed)."""
    chunk_f = [client.submit(_chunk_task, in_path, c, dp_f, ctx_f, out_s is not None, drops_s is not None,
                             pure=False, key=f"fastvpc-chunk-{c.index}-{token}") for c in chunks]
    count_f = [client.submit(_chunk_counts, f, pure=False, key=f"fastvpc-counts-{c.index}-{token}")
               for c, f in zip(chunks, chunk_f)]
    finals: dict[str, str] = {}
    if out_s is not None or drops_s is not None:
        # the outputs are made now, with their headers; the records are appended at known offsets
        for label, target in (("output", out_s), ("drops", drops_s)):
            if target is not None:
                finals[label] = _new_partial(target, 0)
                partials.append((label, target))
    pos = {label: 24 for label in finals}
    results: list[_ShardResult | None] = [None] * len(chunks)
    write_f = []
    ready = 0
    done = frames = 0
    for fut in distributed.as_completed(count_f, loop=client.loop):
        r: _ShardResult = fut.result()
        results[r.shard] = r
        done += 1
        frames += r.frames
        if report is not None:
            report("replay", done, len(chunks), frames)
        while ready < len(chunks) and results[ready] is not None:
            rr = results[ready]
            assert rr is not None
            at = {}
            for label, size in (("output", int(rr.out_bytes[0])), ("drops", int(rr.drop_bytes[0]))):
                if label in finals:
                    at[label] = (finals[label], pos[label])
                    pos[label] += size
            if finals:
                write_f.append(client.submit(_write_chunk, chunk_f[ready], at.get("output"), at.get("drops"),
                                             pure=False, key=f"fastvpc-write-{ready}-{token}"))
            ready += 1
    if write_f:
        _wait(distributed, write_f, "write", report, None)
    return [r for r in results if r is not None]


def _run_by_flow(distributed: Any, client: Any, in_path: str, chunks: Sequence[_Chunk], dp_f: Any, ctx_f: Any,
                 scratch: _Scratch | None, n_shards: int, token: str, report: Any, out_s: str | None,
                 drops_s: str | None, pcapng: bool, partials: list[tuple[str, str]],
                 names: dict[int, str]) -> list[_ShardResult]:
    """pcapng outputs sharded by flow: map, one task per flow shard writing verdicts and processed frames
    at their capture positions in scratch files, then the pcapng written here."""
    if scratch is not None:
        files = [("action.u8", 1, scratch.total_frames), ("frames.bin", 1, scratch.total_bytes)]
        if pcapng:
            files += [("reason.u8", 1, scratch.total_frames), ("egress.i32", 4, scratch.total_frames),
                      ("port.i32", 4, scratch.total_frames)]
        for name, size, n in files:   # sparse files, the size of what the shards write into them
            with open(scratch.path(name), "wb") as fh:
                fh.truncate(max(n, 1) * size)
    map_f = [client.submit(_map_task, in_path, c, ctx_f, pure=False, key=f"fastvpc-map-{c.index}-{token}")
             for c in chunks]
    _wait(distributed, map_f, "map", report, chunks)
    shard_f = [client.submit(_shard_task, in_path, chunks, map_f, k, dp_f, ctx_f, scratch, pure=False,
                             key=f"fastvpc-shard-{k}-{token}") for k in range(n_shards)]
    results: list[_ShardResult] = _wait(distributed, shard_f, "process", report, None)
    if scratch is not None:
        partials.extend(_write_pcapng_here(in_path, chunks, scratch, out_s, drops_s, names))
    return results


def _unpickle(blob: bytes) -> Any:
    return pickle.loads(blob)


def _shared(client: Any, obj: Any, key: str) -> Any:
    """A future of ``obj`` that every worker fetches once and that survives any worker's death.

    ``client.scatter(obj, broadcast=True)`` sends a copy to every worker too, but scattered data
    cannot be recomputed: once Dask's Active Memory Manager has trimmed the replicas to one, the death
    of the worker holding it cancels every task that needs it ("lost dependencies"; the killed-worker
    test met it).  A task that unpickles the object is recomputed like any other: the pickle stays in
    the scheduler's task graph (a compiled snapshot is numpy arrays: its pickle is their bytes)."""
    import dask

    blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "2GB"}):
        return client.submit(_unpickle, blob, pure=False, key=key)


def _serial_stateful() -> bool:
    """Whether the serial replay tracks connections by default (the sharded one must do the same to give
    the same verdicts): its ``stateful`` keyword's default, False while it has none."""
    import inspect

    from fastvpc.drivers.replay import replay

    p = inspect.signature(replay).parameters.get("stateful")
    return bool(p.default) if p is not None and p.default is not inspect.Parameter.empty else False


def _wait(distributed: Any, futures: list[Any], stage: str, report: Any, chunks: Sequence[_Chunk] | None) -> list[Any]:
    """Every future's result, in order; progress as they complete."""
    done = frames = 0
    for fut in distributed.as_completed(futures, loop=futures[0].client.loop if futures else None):
        done += 1
        if report is not None:
            key = fut.key
            if chunks is not None:
                frames += chunks[int(str(key).split("-")[2])].frames
            else:
                frames += int(getattr(fut.result(), "frames", 0))
            report(stage, done, len(futures), frames)
    return [f.result() for f in futures]


def _write_pcapng_here(in_path: str, chunks: Sequence[_Chunk], scratch: _Scratch, out_s: str | None,
                       drops_s: str | None, names: dict[int, str]) -> list[tuple[str, str]]:
    """pcapng outputs, written here chunk by chunk (interfaces are declared as they first appear)."""
    from fastvpc.drivers.pcapout import PcapOut, open_capture
    from fastvpc.drivers.replay import _verdict_text
    from fastvpc.verdicts import Action

    def port_name(p: int) -> str:
        return names.get(p, "unmapped" if p < 0 else str(p))

    made: list[tuple[str, Any]] = []
    try:
        outs = open_capture(out_s, port_name, _verdict_text) if out_s is not None else None
        if outs is not None:
            made.append(("output", outs))
        drops = open_capture(drops_s, port_name, _verdict_text) if drops_s is not None else None
        if drops is not None:
            made.append(("drops", drops))
        n = scratch.total_frames
        action_all = scratch.open("action.u8", np.uint8, n)
        reason_all = scratch.open("reason.u8", np.uint8, n)
        egress_all = scratch.open("egress.i32", np.int32, n)
        port_all = scratch.open("port.i32", np.int32, n)
        frames_all = scratch.open("frames.bin", np.uint8, scratch.total_bytes) if scratch.frames else None
        for chunk in chunks:
            s = slice(chunk.first, chunk.first + chunk.frames)
            whole = read_chunk(in_path, chunk)
            action = np.asarray(action_all[s])
            code = action.astype(np.int64) * 256 + np.asarray(reason_all[s])
            if outs is not None:
                assert frames_all is not None
                data = np.array(frames_all[scratch.data_base[chunk.index]:scratch.data_base[chunk.index] + chunk.nbytes])
                batch = FrameBatch(data, whole.offsets, np.array(port_all[s]), whole.timestamp)
                if isinstance(outs, PcapOut):
                    outs.write_by_action(batch, action, False)
                else:
                    keep = action != Action.DROP
                    outs.write(batch, keep, int(np.count_nonzero(keep)), np.asarray(egress_all[s]), code)
            if drops is not None:
                assert frames_all is not None
                ports = np.asarray(port_all[s])
                data = np.array(frames_all[scratch.data_base[chunk.index]:scratch.data_base[chunk.index] + chunk.nbytes])
                batch = FrameBatch(data, whole.offsets, ports, whole.timestamp)
                if isinstance(drops, PcapOut):
                    drops.write_by_action(batch, action, True)
                else:
                    gone = action == Action.DROP
                    drops.write(batch, gone, int(np.count_nonzero(gone)), ports, code)
    except BaseException:
        for _, w in made:
            w.discard()
        raise
    for _, w in made:
        w._f.close()       # renamed with the others by the caller (it owns the commit)
        w._done = True
    return [(label, w.path) for label, w in made]
