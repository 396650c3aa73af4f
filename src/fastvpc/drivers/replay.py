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

Per batch the work is: the compiled pcap gather, the port map (:mod:`fastvpc.dataplane.ports`),
``Dataplane.process`` in place into reused result buffers, three ``bincount`` over small ints
for every count, and the outputs written by mask (:mod:`fastvpc.drivers.pcapout`).
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

from fastvpc.dataplane.ports import PortBy, PortMap
from fastvpc.errors import FastVpcError
from fastvpc.topology import Eni, Network
from fastvpc.verdicts import Action, DropReason

__all__ = ["PortMap", "ReplaySummary", "check_paths", "replay", "write_json"]

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


def replay(net: Network, in_path: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None, *,
           drops_path: str | os.PathLike[str] | None = None, port_by: PortBy = "src-mac",
           ingress: str | Eni | None = None, batch_size: int = 65536, arp_mode: str = "target",
           progress: bool = False, on_error: str = "raise", n_threads: int | None = None,
           flow_log: Any = None) -> ReplaySummary:
    """Stream ``in_path`` through ``net.compile()`` in batches.

    ``out_path`` receives the frames the data plane emits (DELIVER, FORWARD, REPLY), rewritten,
    in capture order; ``drops_path`` the dropped frames as they came.  Timestamps are kept.  A
    name ending in ``.pcapng`` gives pcapng: one interface per egress port (per ingress port
    for the drops) and the verdict as each packet's comment.  ``ingress``: every frame enters
    on that ENI (name or object) instead of being mapped by ``port_by``.
    """
    from fastvpc.drivers._replayops import count_verdicts
    from fastvpc.drivers.pcapout import CaptureOut, PcapOut, open_capture
    from fastvpc.pcap import PcapTruncatedWarning, iter_pcap

    if on_error not in ("raise", "stop"):
        raise FastVpcError(f"on_error must be 'raise' or 'stop', got {on_error!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise FastVpcError(f"batch_size must be a positive int, got {batch_size!r}")
    check_paths(in_path, {"output": out_path, "drops output": drops_path})
    ingress_port: int | None = None
    if ingress is not None:
        eni = net.find(ingress) if isinstance(ingress, str) else ingress
        if not isinstance(eni, Eni):
            raise FastVpcError(f"ingress {getattr(eni, 'name', eni)!r} is a {type(eni).__name__}, not an ENI")
        ingress_port = eni.port
    dp = net.compile(arp_mode=arp_mode)
    pmap = PortMap.for_network(net, port_by) if ingress_port is None else None
    names = {t.port: t.name for t in net.targets}

    def port_name(p: int) -> str:
        return names.get(p, "unmapped" if p < 0 else str(p))

    summary = ReplaySummary()
    max_port = max(names, default=-1)
    by_port = np.zeros((max_port + 2, _NACT), np.int64)   # [port + 1, action]; row 0: unmapped
    reason_counts = np.zeros(_NREASON, np.int64)
    writers: list[tuple[str, CaptureOut]] = []
    outs: CaptureOut | None = None
    drops: CaptureOut | None = None
    result = None
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
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PcapTruncatedWarning)
            for batch in iter_pcap(in_path, batch_size=batch_size, on_error=on_error):  # type: ignore[arg-type]
                n = len(batch)
                ports = batch.port            # the batch's own port array (writeable): filled in place
                if pmap is not None:
                    pmap.ports_for(batch, out=ports)
                else:
                    ports.fill(ingress_port)
                result = dp.process(batch, copy=False, out=result, n_threads=n_threads)
                if flow_log is not None:
                    flow_log.observe(dp, batch, result)
                action, reason = result.action, result.reason
                summary.frames += n
                if count_verdicts(ports, action, reason, by_port, reason_counts) != -1:  # pragma: no cover
                    raise FastVpcError("internal error: a verdict outside the count tables")
                if outs is not None:
                    if isinstance(outs, PcapOut):
                        outs.write_by_action(batch, action, False)
                    else:
                        keep = action != Action.DROP
                        outs.write(batch, keep, int(np.count_nonzero(keep)), result.egress,
                                   action.astype(np.int64) * 256 + reason)
                if drops is not None:
                    if isinstance(drops, PcapOut):
                        drops.write_by_action(batch, action, True)
                    else:
                        gone = action == Action.DROP
                        drops.write(batch, gone, int(np.count_nonzero(gone)), ports,
                                    action.astype(np.int64) * 256 + reason)
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
    summary.unmapped = int(by_port[0].sum())
    for a in Action:
        total_a = int(by_port[:, int(a)].sum())
        if total_a:
            summary.by_action[a.name] = total_a
    for r in DropReason:
        if r != DropReason.NONE and reason_counts[int(r)]:
            summary.by_reason[r.name] = int(reason_counts[int(r)])
    per = by_port
    for row in np.flatnonzero(per[1:].any(axis=1)):
        p = int(row)
        c = Counter({Action(a).name: int(per[p + 1, a]) for a in range(_NACT) if per[p + 1, a]})
        summary.per_eni[port_name(p)] = c
    return summary


def write_json(summary: ReplaySummary, path: str | os.PathLike[str]) -> None:
    if os.fspath(path) == "-":
        print(json.dumps(summary.to_dict(), indent=2, sort_keys=True), flush=True)
        return
    with open(path, "w") as fh:
        json.dump(summary.to_dict(), fh, indent=2, sort_keys=True)

