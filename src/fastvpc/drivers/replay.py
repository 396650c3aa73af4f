"""Replay a capture through a compiled network: pcap in, processed pcap out, counts.

A pcap has no ingress port, so each frame is mapped to the ENI that sent it: by
source MAC (default) or by source IP (IPv4 source address, or the ARP sender
address).  Frames that map to no ENI -- or, by IP, to ENIs of several VPCs with
overlapping CIDRs -- are *unmapped*: they go through the data plane with port -1
(so they are dropped ``UNKNOWN_PORT``) and are counted and reported separately,
never silently lost.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from fastvpc.batch import FrameBatch
from fastvpc.dataplane.classify import FLAG_ARP, FLAG_ETH, FLAG_IPV4, classify
from fastvpc.errors import FastVpcError
from fastvpc.topology import Network, mac_to_int
from fastvpc.verdicts import Action, DropReason

__all__ = ["PortMap", "ReplaySummary", "replay"]

PortBy = Literal["src-mac", "src-ip"]


@dataclass
class PortMap:
    """Vectorised frame -> ingress port mapping for a network's ENIs."""

    keys: npt.NDArray[np.uint64]
    ports: npt.NDArray[np.int32]
    by: PortBy

    @classmethod
    def for_network(cls, net: Network, by: PortBy = "src-mac") -> PortMap:
        if by not in ("src-mac", "src-ip"):
            raise FastVpcError(f"port mapping {by!r} must be 'src-mac' or 'src-ip'")
        owners: dict[int, int] = {}
        for eni in net.enis:
            keys = [mac_to_int(eni.mac)] if by == "src-mac" else [int(ip) for ip in eni.ips]
            for k in keys:
                owners[k] = -2 if k in owners else eni.port  # -2: ambiguous (overlapping VPCs)
        items = sorted(owners.items())
        return cls(np.array([k for k, _ in items], dtype=np.uint64),
                   np.array([p for _, p in items], dtype=np.int32), by)

    def ports_for(self, batch: FrameBatch) -> npt.NDArray[np.int32]:
        """The ingress port of every frame; -1 where it maps to no single ENI."""
        fields = classify(batch)
        if self.by == "src-mac":
            key = fields.src_mac
            ok = (fields.flags & FLAG_ETH) != 0
        else:  # IPv4 source, or the ARP sender address (classify puts both in ip_src)
            key = fields.ip_src.astype(np.uint64)
            ok = (fields.flags & (FLAG_IPV4 | FLAG_ARP)) != 0
        out = np.full(len(batch), -1, dtype=np.int32)
        if self.keys.size:
            pos = np.searchsorted(self.keys, key)
            pos_c = np.minimum(pos, self.keys.size - 1)
            hit = ok & (self.keys[pos_c] == key) & (self.ports[pos_c] >= 0)
            out[hit] = self.ports[pos_c[hit]]
        return out


@dataclass
class ReplaySummary:
    frames: int = 0
    unmapped: int = 0
    by_action: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)
    per_eni: dict[str, Counter[str]] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "unmapped": self.unmapped, "by_action": dict(self.by_action),
                "by_reason": dict(self.by_reason), "per_eni": {k: dict(v) for k, v in self.per_eni.items()},
                "seconds": round(self.seconds, 6)}

    def __str__(self) -> str:
        lines = [f"{self.frames:,} frames in {self.seconds:.2f} s; {self.unmapped:,} mapped to no ENI "
                 "(dropped UNKNOWN_PORT)"]
        lines.append("by action: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.by_action.items())))
        if self.by_reason:
            lines.append("drops by reason: " + ", ".join(f"{k} {v:,}" for k, v in self.by_reason.most_common()))
        if self.per_eni:
            lines.append("per ingress ENI:")
            for eni, c in sorted(self.per_eni.items()):
                lines.append(f"  {eni:<20} " + ", ".join(f"{k} {v:,}" for k, v in sorted(c.items())))
        return "\n".join(lines)


def replay(net: Network, in_path: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None, *,
           drops_path: str | os.PathLike[str] | None = None, port_by: PortBy = "src-mac",
           batch_size: int = 65536, arp_mode: str = "target", progress: bool = False) -> ReplaySummary:
    """Stream ``in_path`` through ``net.compile()`` in batches.

    ``out_path`` receives the frames the data plane emits (DELIVER, FORWARD, REPLY), rewritten,
    in capture order; ``drops_path`` the dropped frames as they came.  Timestamps are kept.
    """
    from fastvpc.pcap import PcapWriter, iter_pcap

    dp = net.compile(arp_mode=arp_mode)
    pmap = PortMap.for_network(net, port_by)
    names = {t.port: t.name for t in net.targets}
    summary = ReplaySummary()
    out_w = PcapWriter(out_path, nanosecond=True) if out_path is not None else None
    drop_w = PcapWriter(drops_path, nanosecond=True) if drops_path is not None else None
    total = os.path.getsize(in_path)
    t0 = time.perf_counter()
    seen_bytes = 24
    try:
        for chunk in iter_pcap(in_path, batch_size=batch_size):
            ports = pmap.ports_for(chunk)
            batch = FrameBatch(chunk.data, chunk.offsets, ports, chunk.timestamp)
            result = dp.process(batch, copy=False)
            n = len(batch)
            summary.frames += n
            summary.unmapped += int(np.count_nonzero(ports < 0))
            acts = np.bincount(result.action[:n], minlength=4)
            for a in Action:
                if acts[a]:
                    summary.by_action[a.name] += int(acts[a])
            drop = result.action[:n] == Action.DROP
            reasons = np.bincount(result.reason[:n][drop], minlength=len(DropReason))
            for r in DropReason:
                if r < len(reasons) and reasons[r]:
                    summary.by_reason[r.name] += int(reasons[r])
            # per-ENI counts: vectorised over (port, action) pairs
            mapped = ports >= 0
            pairs, counts = np.unique(np.stack([ports[mapped], result.action[:n][mapped].astype(np.int32)]),
                                      axis=1, return_counts=True)
            for (p, a), c in zip(pairs.T, counts):
                summary.per_eni.setdefault(names.get(int(p), str(p)), Counter())[Action(int(a)).name] += int(c)
            if out_w is not None:
                out_w.write(result.frames.select(~drop))
            if drop_w is not None:
                drop_w.write(batch.select(drop))
            if progress and total > 0:
                seen_bytes += int(batch.offsets[-1] - batch.offsets[0]) + 16 * n  # record headers
                print(f"\r{summary.frames:,} frames ({min(100.0, 100 * seen_bytes / total):.0f}%)", end="",
                      file=sys.stderr, flush=True)
    finally:
        if out_w is not None:
            out_w.close()
        if drop_w is not None:
            drop_w.close()
        if progress:
            print(file=sys.stderr)
    summary.seconds = time.perf_counter() - t0
    return summary


def write_json(summary: ReplaySummary, path: str | os.PathLike[str]) -> None:
    with open(path, "w") as fh:
        json.dump(summary.to_dict(), fh, indent=2, sort_keys=True)
