"""A frame-at-a-time statement of the filter stages (issue 10) for the kernel tests.

It is built from the control plane's own rule functions (``security_groups_admit``,
``flow_is_untracked``, ``NetworkAcl.evaluate``) and ``FlowTable.track``, applied in path order
around the *unfiltered* compiled pass's verdict (``compile(filters=False)``), one frame at a time:
it shares no code with the compiled filter stages.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np

import fastvpc as fv
from fastvpc.dataplane.classify import FLAG_L4
from fastvpc.dataplane.state import Admit, TrackCode, timeouts_record
from fastvpc.topology.filters import flow_is_untracked, security_groups_admit

A, R = fv.Action, fv.DropReason

#: verdicts the ingress / arp / router stages give: before any filter, never filtered (#50)
PRE_FILTER = {R.MALFORMED, R.NON_IPV4, R.ARP_NO_ENTRY, R.ARP_IGNORED, R.L2_BROADCAST, R.BROADCAST, R.MULTICAST,
              R.ROUTER_UNSUPPORTED, R.ROUTER_NOT_OWN_SUBNET, R.LINK_LOCAL_SERVICE, R.UNKNOWN_MAC, R.UNKNOWN_PORT}

Verdict = tuple[int, int, int, int]


class Oracle:
    """``run(frames, ports, state=, now=)``: the verdicts (and frames) the filtered pass must give."""

    def __init__(self, net: fv.Network, dp: fv.Dataplane) -> None:
        self.net = net
        self.plain = net.compile(arp_mode=dp.arp_mode, filters=False)
        self.by_port = {e.port: e for e in net.enis}
        self.ident = {id(e): int(dp.eni_filt["ident"][i]) for i, e in enumerate(net.enis)}

    def _fields(self, frame: bytes, port: int) -> dict[str, Any]:
        b = fv.FrameBatch.from_frames([frame], port=[port])
        c = fv.classify(b)
        ihl = (frame[14] & 15) * 4 if len(frame) > 14 else 0
        l4 = bool(c.flags[0] & FLAG_L4)
        proto = int(c.proto[0])
        out = {"proto": proto, "src": int(c.ip_src[0]), "dst": int(c.ip_dst[0]), "length": int(c.ip_len[0]),
               "port": None, "icmp": None, "sport": 0, "dport": 0, "flags": 0}
        if l4 and proto in (6, 17):
            out.update(port=int(c.dport[0]), sport=int(c.sport[0]), dport=int(c.dport[0]))
            if proto == 6:
                out["flags"] = frame[14 + ihl + 13]
        elif l4 and proto == 1:
            out.update(icmp=(int(c.icmp_type[0]), int(c.icmp_code[0])), flags=int(c.icmp_type[0]),
                       sport=int.from_bytes(frame[14 + ihl + 4:14 + ihl + 6], "big"))
        elif proto == 1:
            out["flags"] = 255      # ICMP header not complete: a type no table entry is made for
        return out

    def _track(self, state: Any, eni: Any, f: dict[str, Any], now: int, admitted: int) -> int:
        t = state.track(self.ident[id(eni)], f["proto"], f["src"], f["dst"], f["sport"], f["dport"], f["flags"],
                        f["length"], now, admitted, timeouts=timeouts_record(eni.tracking))
        return int(t.code[0])

    def one(self, frame: bytes, port: int, state: Any = None, now: int = 0) -> tuple[Verdict, bytes]:
        base_res = self.plain.process(fv.FrameBatch.from_frames([frame], port=[port]))
        base = (int(base_res.action[0]), int(base_res.reason[0]), int(base_res.egress[0]), int(base_res.route[0]))
        out_frame = base_res.frames.frame(0)
        a, r, e, rt = base
        if a == A.REPLY or (a == A.DROP and (r in PRE_FILTER or (r == R.SRC_DST_CHECK and rt == -1))):
            return base, out_frame
        s = self.by_port[port]
        f = self._fields(frame, port)
        if f["dst"] == int(s.vpc.cidr.network_address) + 2:
            return base, out_frame
        proto, src, dst, p4, icmp = f["proto"], f["src"], f["dst"], f["port"], f["icmp"]

        def drop(why: int, route: int) -> tuple[Verdict, bytes]:
            return (int(A.DROP), int(why), -1, route), frame

        # a non-first fragment (no L4 header): the groups judged its datagram by the first fragment and pass it,
        # with no table step; the NACLs judge it (docs/forwarding-model.md §3b)
        later = len(frame) >= 22 and int.from_bytes(frame[20:22], "big") & 0x1FFF != 0
        ok = later or security_groups_admit(s.security_groups, "egress", proto, dst, p4, icmp) is not None
        if state is not None and not later:
            adm = Admit.DENY if not ok else (
                Admit.UNTRACKED if flow_is_untracked(s.security_groups, "egress", proto, dst, p4) else Admit.ADMIT)
            code = self._track(state, s, f, now, adm)
            if code == TrackCode.MISS:
                return drop(R.SG_EGRESS, -1)
            if code == TrackCode.FULL:
                return drop(R.FLOW_TABLE_FULL, -1)
        elif not ok:
            return drop(R.SG_EGRESS, -1)
        # the NACL-out where the packet leaves the subnet (#55): not to a destination inside it, nor by a
        # route to a middlebox ENI of the subnet itself (the unfiltered pass's route is the one it takes)
        target = self.net.routes()[rt].target if rt >= 0 else None
        stays = isinstance(target, fv.Eni) and target.subnet is s.subnet
        if ipaddress.IPv4Address(dst) not in s.subnet.cidr and not stays:
            allowed, _ = s.subnet.network_acl.evaluate("egress", proto, dst, p4, icmp)
            if not allowed:
                return drop(R.NACL_EGRESS, -1)
        if a != A.DELIVER:
            return base, (out_frame if a != A.DROP else frame)
        rcv = self.by_port[e]
        if rcv.subnet is not s.subnet:
            allowed, _ = rcv.subnet.network_acl.evaluate("ingress", proto, src, p4, icmp)
            if not allowed:
                return drop(R.NACL_INGRESS, rt)
        ok = later or security_groups_admit(rcv.security_groups, "ingress", proto, src, p4, icmp) is not None
        if state is not None and not later:
            adm = Admit.DENY if not ok else (
                Admit.UNTRACKED if flow_is_untracked(rcv.security_groups, "ingress", proto, src, p4) else Admit.ADMIT)
            code = self._track(state, rcv, f, now, adm)
            if code == TrackCode.MISS:
                return drop(R.SG_INGRESS, rt)
            if code == TrackCode.FULL:
                return drop(R.FLOW_TABLE_FULL, rt)
        elif not ok:
            return drop(R.SG_INGRESS, rt)
        return base, out_frame

    def run(self, frames: list[bytes], ports: list[int], state: Any = None,
            now: Any = None) -> tuple[list[Verdict], list[bytes]]:
        vs, fs = [], []
        for i, (fr, p) in enumerate(zip(frames, ports)):
            t = 0 if now is None else (int(now[i]) if np.ndim(now) else int(now))
            v, o = self.one(fr, p, state, t)
            vs.append(v)
            fs.append(o)
        return vs, fs


def verdicts(res: Any) -> list[Verdict]:
    return [(int(a), int(r), int(e), int(t)) for a, r, e, t in zip(res.action, res.reason, res.egress, res.route)]


def frames_of(res: Any) -> list[bytes]:
    return [res.frames.frame(i) for i in range(len(res))]
