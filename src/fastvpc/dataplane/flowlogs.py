"""VPC Flow Logs from the passes of a :class:`fastvpc.Dataplane` (DESIGN.md §7; docs/flow-logs.md).

``FlowLog(window=600, fields=None, account_id="123456789012", version=None)`` aggregates what each pass
did into AWS's flow log records: one record per (network interface, 5-tuple, direction, action,
capture window), with packets and bytes summed, ``start``/``end`` the first and last packet's time in
the window (Unix seconds) and ``tcp-flags`` OR-ed.  It is fed *after* a pass, from what the pass
leaves (``log.observe(dp, batch, result)``; ``Dataplane.process(..., log=log)`` calls it), and the
per-frame work is compiled (``_flowlogs.pyx``: nogil, nothing allocated per frame).

Which records a frame makes (a record on each ENI the packet passed: egress at the sender -- the ENI
of the ingress port -- and ingress at the receiver):

==========================================  ==============================================
verdict                                     records
==========================================  ==============================================
DELIVER                                     the sender's ACCEPT, the receiver's ACCEPT
FORWARD (to a gateway)                      the sender's ACCEPT
DROP SG_EGRESS / NACL_EGRESS                the sender's REJECT
DROP NACL_INGRESS / SG_INGRESS              the sender's ACCEPT, the receiver's REJECT
DROP by a stage after the sender's filters  the sender's ACCEPT (NO_ROUTE, BLACKHOLE, NO_SUCH_HOST,
                                            a route target's SRC_DST_CHECK, FLOW_TABLE_FULL, the
                                            edge's NO_PUBLIC_IP and NAT_* reasons)
DROP before the filters, REPLY              none (MALFORMED, NON_IPV4, ARP_*, L2_BROADCAST, BROADCAST,
                                            MULTICAST, the sender's SRC_DST_CHECK, UNKNOWN_MAC/PORT,
                                            ROUTER_*, LINK_LOCAL_SERVICE; the router's own replies)
==========================================  ==============================================

A frame the pass's NAT stage handled (``result.nat_gw`` & co., :data:`NAT_ARRAYS`) also makes records on
the NAT gateway's interface: ingress of the packet before the NAT, egress of the packet after it (the
NAT's private IP on its side), REJECT on the leg its subnet's ACL refused (docs/flow-logs.md).

log-status: ``FlowLog(enis=[...])`` covers those interfaces only, and a window :meth:`FlowLog.flush`
closes with no record of a covered interface gets its NODATA record; ``FlowLog(max_records=N)`` holds
at most N open flow records, the packets of further new records counting in their interface's SKIPDATA
record of the window.

Not logged either, as on AWS: traffic to the Amazon DNS server (the sender VPC's primary CIDR base
+ 2) and to or from 169.254.168.0/22 (IMDS, Time Sync, the link-local DNS), and DHCP (UDP 67/68).
A frame from a port that is no ENI (a gateway) has no egress record.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from fastvpc.batch import FrameBatch
from fastvpc.dataplane import _flowlogs as _fl
from fastvpc.dataplane.state import MAX_NOW
from fastvpc.errors import FastVpcError

__all__ = ["FlowLog", "FlowLogError", "FlowLogBusyError", "FIELDS", "DEFAULT_FORMAT", "MODELLED_FIELDS", "parse_format",
           "sent_sources", "NAT_ARRAYS"]


class FlowLogError(FastVpcError, ValueError):
    """A FlowLog argument, format string, input or output path is wrong: the message names the value."""


class FlowLogBusyError(FastVpcError, RuntimeError):
    """A second thread used a FlowLog while an observe(), flush() or read of it was running."""


#: Every field of versions 2-5, AWS's order, with the version that introduced it.  The index of a
#: field is its code in the compiled text formatter (``F_*`` in _flowlogs.pyx).
FIELDS: dict[str, int] = {
    "version": 2, "account-id": 2, "interface-id": 2, "srcaddr": 2, "dstaddr": 2, "srcport": 2,
    "dstport": 2, "protocol": 2, "packets": 2, "bytes": 2, "start": 2, "end": 2, "action": 2,
    "log-status": 2,
    "vpc-id": 3, "subnet-id": 3, "instance-id": 3, "tcp-flags": 3, "type": 3, "pkt-srcaddr": 3,
    "pkt-dstaddr": 3,
    "region": 4, "az-id": 4, "sublocation-type": 4, "sublocation-id": 4,
    "pkt-src-aws-service": 5, "pkt-dst-aws-service": 5, "flow-direction": 5, "traffic-path": 5,
}
_CODE = {name: i for i, name in enumerate(FIELDS)}
#: Fields the model cannot know: always "-" (null in Parquet).  ``instance-id`` is "-" unless the
#: topology names the instance (an AWS import's aliases ``i-...`` -> ENIs).
UNKNOWN_FIELDS = ("region", "az-id", "sublocation-type", "sublocation-id", "pkt-src-aws-service",
                  "pkt-dst-aws-service")
MODELLED_FIELDS = tuple(f for f in FIELDS if f not in UNKNOWN_FIELDS)
#: Integer fields (numpy/Parquet types); the rest are strings.  -1 in ``traffic-path``: none ("-").
_INT_FIELDS = {"version": "int32", "srcport": "int32", "dstport": "int32", "protocol": "int32",
               "packets": "int64", "bytes": "int64", "start": "int64", "end": "int64", "tcp-flags": "int32",
               "traffic-path": "int32"}
DEFAULT_FORMAT = " ".join(f"${{{f}}}" for f in list(FIELDS)[:14])
WINDOWS = (60, 600)

_TOKEN = re.compile(r"\$\{([^}\s]*)\}")

_LAYOUT = _fl._layout()
#: numpy view of the compiled FlEntry rows (built from the offsets the module reports)
ENTRY_DTYPE = np.dtype({"names": [n for n, _, _ in _LAYOUT["fields"]],
                        "formats": [f for _, f, _ in _LAYOUT["fields"]],
                        "offsets": [o for _, _, o in _LAYOUT["fields"]],
                        "itemsize": _LAYOUT["entry_size"]})
_ROW = int(_LAYOUT["entry_size"])
_ACT = _LAYOUT["actions"]            # ACCEPT 0, REJECT 1, SKIPDATA 2, NODATA 3 (the "action" byte of a row)
_DIR_NONE = int(_LAYOUT["dirs"]["none"])
_IF_NONE = int(_LAYOUT["if_none"])
#: Result attributes that carry what the pass's NAT stage did (DESIGN.md §7, docs/flow-logs.md): the port of
#: the NAT gateway a frame reached (-1 none), the address and port it replaced, and which side it replaced
NAT_ARRAYS = (("nat_gw", np.int32), ("nat_ip", np.uint32), ("nat_l4", np.uint16), ("nat_dir", np.uint8))
_PICKLE_VERSION = 2
#: the largest next record sequence number a pickle may hold (2**62 records: never reached; past 2**64 - 1
#: the counter would wrap to 0, which marks an empty slot)
_MAX_SEQ = 1 << 62
_ROUTE_KIND = {"local": 0, "eni": 1, "pcx": 2, "blackhole": 4}   # RK_*; every other target kind: RK_FORWARD (3)


def sent_sources(batch: FrameBatch) -> np.ndarray:
    """Each frame's IPv4 source address now (uint32; 0 for a frame that is not IPv4): taken before a
    pass that may translate sources, for :meth:`FlowLog.observe`'s ``sent_src`` (compiled, one read
    of 4 bytes a frame)."""
    out = np.empty(len(batch), np.uint32)
    _fl.sent_sources(batch.data, batch.offsets, out)
    return out


def parse_format(fields: str | Sequence[str] | None) -> tuple[str, ...]:
    """The field names of an AWS format string (``"${version} ${srcaddr} ..."``) or a sequence of
    names; None: the default format (version 2's 14 fields).  Raises FlowLogError naming an unknown
    or repeated field, or text that is not a ``${field}``."""
    if fields is None:
        return tuple(FIELDS)[:14]
    if isinstance(fields, str):
        rest = _TOKEN.sub(" ", fields)
        if rest.strip():
            bad = rest.split()[0]
            raise FlowLogError(f"flow log format {fields!r}: {bad!r} is not a ${{field}} "
                               "(fields are written as ${name} separated by spaces)")
        names = _TOKEN.findall(fields)
    elif isinstance(fields, Sequence) and all(isinstance(f, str) for f in fields):
        names = list(fields)
    else:
        raise FlowLogError(f"fields must be an AWS format string or a list of field names, not {fields!r}")
    if not names:
        raise FlowLogError(f"flow log format {fields!r} names no field")
    seen: set[str] = set()
    for name in names:
        if name not in FIELDS:
            raise FlowLogError(f"flow log format: unknown field {name!r} (fields of versions 2-5: "
                               f"{', '.join(FIELDS)})")
        if name in seen:
            raise FlowLogError(f"flow log format: field {name!r} appears twice")
        seen.add(name)
    return tuple(names)


class _Topo:
    """What the compiled pass needs of one Dataplane (index arrays), and each ENI's interface key.
    Built once per Dataplane (a small module cache: several FlowLogs on one snapshot share it)."""

    __slots__ = ("dp", "port_eni", "sp_port", "sp_eni", "eni_ip", "eni_vpc", "vpc_dns", "route_kind",
                 "route_arg", "route_vpc", "route_path", "ip_hash", "eni_keys", "is_igw", "pub", "priv", "is_gw",
                 "_gw_vpc", "_tgw_rows", "_vpc_index")

    def __init__(self, dp: Any) -> None:
        self.dp = dp
        enis = dp.enis
        n_eni = len(enis)
        infos = dp.routes
        vpc_index = {name: i for i, name in enumerate(dp.vpc_names)}
        # Amazon DNS: the primary CIDR's base + 2.  A VPC with one CIDR has one local route; with
        # more, the compiled routes need not list the primary's first, and a VPC may have no route
        # listed at all: then the primary is read from the topology document's "cidrs" (primary first)
        self.vpc_dns = np.zeros(len(dp.vpc_names), np.uint32)
        local: dict[int, list[str]] = {}
        for r in infos:
            if r.target_kind == "local":
                v = vpc_index.get(r.vpc, -1)
                if v >= 0:
                    local.setdefault(v, []).append(r.destination)
        # the topology document is read only for what the arrays lack (it can be tens of MB, so
        # only when it has them): the instance ids (aliases), endpoint types, several CIDRs' primary
        text = dp.topology
        instance: dict[str, str] = {}
        doc: dict[str, Any] | None = None
        # (a VPC with several CIDRs: its primary's local route may also have been replaced by a route
        # to a middlebox, leaving only a secondary's listed)
        if len(local) < len(dp.vpc_names) or any(len(set(c)) > 1 for c in local.values()) \
                or re.search(r'"cidrs": \[[^\]]*,', text):
            doc = json.loads(text)
            for vd in doc.get("vpcs", []) if isinstance(doc, dict) else []:
                v = vpc_index.get(vd.get("name"), -1)
                if v >= 0 and vd.get("cidrs"):
                    local[v] = [vd["cidrs"][0]]
        for v, cidrs in local.items():
            self.vpc_dns[v] = int(ipaddress.IPv4Network(cidrs[0]).network_address) + 2
        if '"aliases": ' in text:
            doc = doc if doc is not None else json.loads(text)
            aliases = doc.get("aliases") or {} if isinstance(doc, dict) else {}
            for alias, names in aliases.items():
                if alias.startswith("i-"):
                    for n in names:
                        instance.setdefault(n, alias)
        ep_type: dict[str, str] = {}
        if any(r.target_kind == "vpce" for r in infos):
            for v in (doc if doc is not None else json.loads(text)).get("vpcs", []):
                for ep in v.get("endpoints", []):
                    ep_type[ep.get("name")] = ep.get("type", "gateway")
        ports = enis["port"].astype(np.int32)
        self.eni_ip = np.ascontiguousarray(enis["ip"], np.uint32)
        self.eni_vpc = np.ascontiguousarray(enis["vpc"], np.int32)
        names = list(dp.eni_names)
        vpc_of: list[str] = (np.array(list(dp.vpc_names) or [""], dtype=object)[self.eni_vpc].tolist()
                             if n_eni else [])
        sub_of: list[str] = (np.array(list(dp.subnet_names) or [""], dtype=object)[enis["subnet"]].tolist()
                             if n_eni else [])
        insts = [instance.get(n, "") for n in names] if instance else [""] * n_eni
        self.eni_keys: list[tuple[str, str, str, str, int]] = list(
            zip(names, vpc_of, sub_of, insts, self.eni_ip.tolist()))
        max_port = int(ports.max()) if n_eni else -1
        if max_port < (1 << 22):
            self.port_eni = np.full(max_port + 1, -1, np.int32)
            self.port_eni[ports] = np.arange(n_eni, dtype=np.int32)
            self.sp_port = self.sp_eni = np.zeros(0, np.int32)
        else:
            order = np.argsort(ports, kind="stable")
            self.port_eni = np.zeros(0, np.int32)
            self.sp_port = np.ascontiguousarray(ports[order], np.int32)
            self.sp_eni = np.ascontiguousarray(order, np.int32)
        rt = dp.route_targets
        self.route_kind = np.ascontiguousarray(rt["kind"], np.uint8)
        self.route_arg = np.ascontiguousarray(rt["arg"], np.int32)
        self.route_vpc = np.array([vpc_index.get(r.vpc, -1) for r in infos], np.int32)
        self.route_path = np.array([_traffic_path(r.target_kind, ep_type.get(r.target, "gateway"))
                                    for r in infos], np.uint8)
        self.ip_hash = np.ascontiguousarray(dp.ip_hash, np.uint64)
        # the internet gateways' 1:1 map, public -> private (DESIGN §6: an ENI's primary IP or a NAT
        # gateway's with an Elastic IP): a frame out through one left with its public IP, and the
        # sender's record shows the source as sent
        kinds = dp.port_kinds
        igw_ports = [p for p, k in kinds.items() if k == "igw"]
        # the ports frames enter the VPC on from outside (internet, VPN, transit gateways): a frame dropped
        # after entering there needs its receiver found without a sender ENI (inbound())
        gw_ports = [p for p, k in kinds.items() if k in _INBOUND_KINDS and p >= 0]
        self.is_gw = np.zeros(max(gw_ports) + 1 if gw_ports else 0, np.bool_)
        self.is_gw[gw_ports] = True
        self._gw_vpc: np.ndarray | None = None
        self._tgw_rows: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._vpc_index = vpc_index
        self.is_igw = np.zeros(max(igw_ports) + 1 if igw_ports else 0, np.bool_)
        self.is_igw[igw_ports] = True
        self.pub = self.priv = np.zeros(0, np.uint32)
        if igw_ports and '"address": ' in text:
            doc = doc if doc is not None else json.loads(text)
            public = {a.get("name"): a.get("public_ip") for a in doc.get("addresses", []) if isinstance(a, dict)}
            pairs = []
            for vd in doc.get("vpcs", []):
                owners = [x for s in vd.get("subnets", []) for x in s.get("enis", [])] + vd.get("nat_gateways", [])
                for x in owners:
                    pub = public.get(x.get("address")) if x.get("address") else None
                    if pub and x.get("ip"):
                        pairs.append((int(ipaddress.IPv4Address(pub)), int(ipaddress.IPv4Address(x["ip"]))))
            pairs.sort()
            self.pub = np.array([a for a, _ in pairs], np.uint32)
            self.priv = np.array([b for _, b in pairs], np.uint32)

    def sent_sources(self, batch: FrameBatch, action: np.ndarray, egress: np.ndarray) -> np.ndarray | None:
        """Each frame's source before the pass: the frame's, but for one forwarded to an internet gateway
        with a public source, that address's private IP; None when no frame needs it."""
        if not len(self.pub):
            return None
        fwd = (action == 2) & (egress >= 0) & (egress < len(self.is_igw))
        if not fwd.any():
            return None
        fwd[fwd] = self.is_igw[egress[fwd]]
        if not fwd.any():
            return None
        src = sent_sources(batch)
        k = np.flatnonzero(fwd)
        src[k] = self._private(src[k])
        return src

    def _private(self, addrs: np.ndarray) -> np.ndarray:
        """``addrs`` with every public address of the internet gateways' 1:1 map replaced by its private
        one (the others as they are); ``self.pub`` must not be empty."""
        out = addrs.copy()
        j = np.minimum(np.searchsorted(self.pub, addrs), len(self.pub) - 1)
        hit = self.pub[j] == addrs
        out[hit] = self.priv[j[hit]]
        return out

    def _gateway_vpcs(self) -> np.ndarray:
        """Per port, the VPC an internet or VPN gateway's frames enter (-2: a transit gateway's, by the
        destination: ``_tgw_rows``; -1: no such gateway), from the Dataplane's network (made once)."""
        if self._gw_vpc is not None:
            return self._gw_vpc
        from fastvpc.topology import InternetGateway, VpnGateway

        out = np.full(len(self.is_gw), -1, np.int32)
        net = self.dp.network
        for vpc in net.vpcs:
            for g in vpc.gateways:
                if isinstance(g, (InternetGateway, VpnGateway)) and 0 <= g.port < len(out):
                    out[g.port] = self._vpc_index.get(vpc.name, -1)
        for g in net.transit_gateways:
            rows = [(int(c.network_address), int(c.netmask), self._vpc_index.get(v.name, -1))
                    for v in g.attachments for c in v.cidrs]   # attachment order: the first match wins
            if 0 <= g.port < len(out) and rows:            # attached to no VPC: its frames enter none (-1)
                out[g.port] = -2
                arr = np.array(rows, np.int64)
                self._tgw_rows[g.port] = (arr[:, 0].astype(np.uint32), arr[:, 1].astype(np.uint32),
                                          arr[:, 2].astype(np.int32))
        self._gw_vpc = out
        return out

    def inbound(self, batch: FrameBatch, action: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """For the dropped frames that entered on a gateway's port, the destination inside the VPC (a
        dropped frame is left as it came: an internet gateway's public address is mapped to its private
        one here) and the VPC the frame entered, as the compiled pass's ``in_dst`` / ``in_vpc``; None when
        no frame of the batch is one (the common case: one vectorised test)."""
        n = len(batch)
        if not len(self.is_gw) or n == 0:
            return None
        k = np.flatnonzero(action == 0)              # Action.DROP: few frames of most batches
        if not k.size:
            return None
        dropped_port = batch.port[k]
        inside = (dropped_port >= 0) & (dropped_port < len(self.is_gw))
        inside[inside] = self.is_gw[dropped_port[inside]]
        k = k[inside]
        if not k.size:
            return None
        port = batch.port
        start = batch.offsets[k]
        length = batch.offsets[k + 1] - start
        data = batch.data
        # an Ethernet/IPv4 frame of 34+ bytes (the pass logs no other; shorter ones are not read past)
        ok = length >= 34
        at = np.where(ok, start, 0)
        if data.size < 34:
            return None
        ok &= (data[at + 12] == 8) & (data[at + 13] == 0)
        dst = ((data[at + 30].astype(np.uint32) << 24) | (data[at + 31].astype(np.uint32) << 16)
               | (data[at + 32].astype(np.uint32) << 8) | data[at + 33].astype(np.uint32))
        dst[~ok] = 0
        p = port[k]
        if len(self.pub):
            igw = p < len(self.is_igw)
            igw[igw] = self.is_igw[p[igw]]
            if igw.any():
                dst[igw] = self._private(dst[igw])
        vpc = self._gateway_vpcs()[p]
        for gp, (base, mask, vidx) in self._tgw_rows.items():
            m = np.flatnonzero(p == gp)
            if m.size:
                inside = (dst[m, None] & mask[None, :]) == base[None, :]
                first = np.argmax(inside, axis=1)
                vpc[m] = np.where(inside.any(axis=1), vidx[first], -1)
        in_dst = np.zeros(n, np.uint32)
        in_vpc = np.full(n, -1, np.int32)
        in_dst[k] = dst
        in_vpc[k] = vpc
        return in_dst, in_vpc


_INBOUND_KINDS = ("igw", "vgw", "tgw")
_TOPO_CACHE: list[_Topo] = []   # the last few Dataplanes seen (a Dataplane takes no weak references)


def _topo(dp: Any) -> _Topo:
    for t in _TOPO_CACHE:
        if t.dp is dp:
            return t
    t = _Topo(dp)
    _TOPO_CACHE.insert(0, t)
    del _TOPO_CACHE[4:]
    return t


class _DpView:
    """A Dataplane's _Topo and, per ENI, this FlowLog's interface index (IF_NONE for an ENI the log does
    not cover); per port the interface the compiled pass reads with one 4-byte load; the
    NAT gateways' interfaces (made when a pass reports NAT work, or the log covers a NAT gateway)."""

    __slots__ = ("dp", "t", "eni_iface", "port_info", "gw_iface", "gw_ip", "dns_sorted")

    def __init__(self, dp: Any, log: FlowLog) -> None:
        self.dp = dp
        self.t = t = _topo(dp)
        if not log._ifaces and len(set(t.eni_keys)) == len(t.eni_keys):
            log._ifaces = list(t.eni_keys)            # a new log: its interfaces are this snapshot's ENIs
            log._iface_index = {k: i for i, k in enumerate(t.eni_keys)}
            self.eni_iface = np.arange(len(t.eni_keys), dtype=np.uint32)
        else:
            self.eni_iface = np.array([log._intern(k) for k in t.eni_keys], np.uint32)
        self.gw_iface = np.zeros(0, np.uint32)
        self.gw_ip = np.zeros(0, np.uint32)
        self.dns_sorted = np.unique(t.vpc_dns[t.vpc_dns != 0]).astype(np.uint32)
        covered = log._covered
        if covered is not None:
            names = [k[0] for k in t.eni_keys]
            known = set(names)
            gws = {x for g in _nat_gateways(dp) for x in g[:2]} if not covered <= known else set()
            unknown = sorted(covered - known - gws)
            if unknown:
                raise FlowLogError(f"FlowLog(enis=...): {unknown[0]!r} is no ENI or NAT gateway of this Dataplane")
            for j, name in enumerate(names):
                if name in covered:
                    log._covered_if[name] = int(self.eni_iface[j])
                else:
                    self.eni_iface[j] = _IF_NONE
            if gws & covered:
                self.nat_tables(log)
        n_dense = len(t.port_eni)
        self.port_info = np.full(n_dense, _IF_NONE, np.uint32)
        if n_dense:
            has = t.port_eni >= 0
            self.port_info[has] = self.eni_iface[t.port_eni[has]]

    def nat_tables(self, log: FlowLog) -> None:
        """Per port, the NAT gateways' interfaces in this log (interned: name, VPC, subnet, no instance,
        private IP) and private IPs."""
        if len(self.gw_iface):
            return
        gws = _nat_gateways(self.dp)
        if not gws:
            return
        size = max(g[-1] for g in gws) + 1
        gw_iface = np.full(size, _IF_NONE, np.uint32)
        gw_ip = np.zeros(size, np.uint32)
        for name, iface, vpc, subnet, inst, ip, port in gws:
            k = log._intern((iface, vpc, subnet, inst, ip))
            # enis= may name the NAT gateway or its interface
            cover = None if log._covered is None else next((x for x in (iface, name) if x in log._covered), None)
            if log._covered is None or cover is not None:
                gw_iface[port] = k
                if cover is not None:
                    log._covered_if[cover] = k
            gw_ip[port] = ip
        self.gw_iface, self.gw_ip = gw_iface, gw_ip


def _nat_gateways(dp: Any) -> list[tuple[str, str, str, str, str, int, int]]:
    """(name, interface-id, VPC, subnet, "", private IPv4, port) of every NAT gateway of ``dp`` with a
    subnet and an address (from the Dataplane's network: read only when a log needs them).  The
    interface-id is its ``network_interface_id`` (the ``eni-…`` AWS gave it), else its name."""
    if not any(r.target_kind == "nat" for r in dp.routes) and '"nat' not in dp.topology:
        return []
    out = []
    from fastvpc.topology.core import NatGateway

    for vpc in dp.network.vpcs:
        for g in vpc.gateways:
            if isinstance(g, NatGateway) and g.subnet is not None and g.ip is not None and g.port >= 0:
                out.append((g.name, g.network_interface_id or g.name, vpc.name, g.subnet.name, "", int(g.ip),
                            int(g.port)))
    return out


def _traffic_path(kind: str, endpoint_type: str) -> int:
    """AWS's traffic-path of an egress record by the target of the route that carried it: 1 another
    resource in the same VPC (ENIs, NAT and transit gateways, interface and GWLB endpoints: they have
    an ENI in the VPC), 2 an internet gateway or a gateway endpoint, 3 a virtual private gateway, 4 an
    intra-Region peering; 0 ("-") for a blackhole."""
    if kind in ("local", "eni", "nat", "tgw"):
        return 1
    if kind == "igw":
        return 2
    if kind == "vgw":
        return 3
    if kind == "pcx":
        return 4
    if kind == "vpce":
        return 2 if endpoint_type == "gateway" else 1
    return 0


class _Hold:
    """Holds a FlowLog's lock for one operation; a second thread meanwhile gets FlowLogBusyError."""

    __slots__ = ("lock",)

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock

    def __enter__(self) -> None:
        if not self.lock.acquire(blocking=False):
            raise FlowLogBusyError("this FlowLog is in use by another thread (one observe/flush/read at a time)")

    def __exit__(self, *exc: Any) -> None:
        self.lock.release()


def _check_window(window: Any) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or int(window) not in WINDOWS:
        raise FlowLogError(f"window {window!r} must be 60 or 600 (seconds: AWS's maximum aggregation intervals)")
    return int(window)


class FlowLog:
    """AWS VPC Flow Log records aggregated from passes of a Dataplane.

    ``window``: the aggregation interval, 60 or 600 s (AWS's two choices; 600 is AWS's default).
    Windows are aligned to multiples of ``window`` since the epoch.  ``fields``: AWS's format string
    (``"${version} ${account-id} ..."``) or a list of names, every field of versions 2-5
    (:data:`FIELDS`); default version 2's 14 fields.  ``version``: the ``version`` field's value;
    default the highest version among the fields (as AWS); a smaller one than the fields need is an
    error.  ``account_id``: the ``account-id`` field.  ``enis``: the interfaces the log covers (ENI
    names or objects, NAT gateway names; default every ENI): only their records are kept, and each
    window closed by :meth:`flush` without a record of a covered interface gives it a NODATA record.
    ``max_records``: the most open flow records (default no limit); past it, a packet whose record
    would be new counts in its interface's SKIPDATA record of the window (never silently lost).

    Feed it with :meth:`observe` after each pass; read it with :meth:`records`, :meth:`write`;
    close windows with :meth:`flush`.  ``len()`` is the number of records.  Picklable.
    """

    def __init__(self, window: int = 600, fields: str | Sequence[str] | None = None,
                 account_id: str = "123456789012", version: int | None = None, *,
                 enis: Iterable[Any] | None = None, max_records: int | None = None) -> None:
        self.window = _check_window(window)
        self.fields = parse_format(fields)
        need = max(FIELDS[f] for f in self.fields)
        if version is None:
            version = need
        if isinstance(version, bool) or not isinstance(version, int) or not 2 <= version <= 5:
            raise FlowLogError(f"version {version!r} must be an int from 2 to 5")
        if version < need:
            worst = next(f for f in self.fields if FIELDS[f] == need)
            raise FlowLogError(f"version {version} is too low for field {worst!r} (a version-{need} field)")
        self.version = version
        if not isinstance(account_id, str) or not account_id or any(c.isspace() for c in account_id) \
                or not account_id.isprintable():
            raise FlowLogError(f"account_id {account_id!r} must be a non-empty string without spaces "
                               "(AWS: 12 digits, or 'unknown')")
        self.account_id = account_id
        self._core = _fl.FlowLogCore()
        self._core._init(1024)
        self._closed: list[np.ndarray] = []     # (k, 80) uint8 rows of closed windows
        self._n_closed = 0
        self._ifaces: list[tuple[str, str, str, str, int]] = []   # name, vpc, subnet, instance, primary IP
        self._iface_index: dict[tuple[str, str, str, str, int], int] = {}
        self._view: _DpView | None = None
        self._lock = threading.Lock()
        self._strings_cache: tuple[int, tuple[np.ndarray, np.ndarray, int]] | None = None
        self.packets_logged = 0
        # enis=: the interfaces the log covers (AWS: a flow log of an ENI, or of all of a subnet's...);
        # their windows without traffic become NODATA records when closed
        self._covered: frozenset[str] | None = None
        self._covered_if: dict[str, int] = {}
        if enis is not None:
            if isinstance(enis, (str, bytes)) or not isinstance(enis, Iterable):
                raise FlowLogError(f"enis must be a list of ENI (or NAT gateway) names or objects, not {enis!r}")
            names = []
            for x in enis:
                name = x if isinstance(x, str) else getattr(x, "name", None)
                if not isinstance(name, str) or not name:
                    raise FlowLogError(f"enis: {x!r} is neither an ENI name nor an object with a name")
                names.append(name)
            if not names:
                raise FlowLogError("enis is empty: a flow log covers at least one interface (None: every ENI)")
            self._covered = frozenset(names)
        self._t_first: int | None = None     # seconds: the first and last frame time observed (NODATA span)
        self._t_last: int | None = None
        self._nodata_from: int | None = None  # the first window whose NODATA records are not yet made
        if max_records is not None and (isinstance(max_records, bool) or not isinstance(max_records, (int, np.integer))
                                        or not 1 <= int(max_records) < 2**62):
            raise FlowLogError(f"max_records {max_records!r} must be a positive int (None: no limit)")
        self.max_records = None if max_records is None else int(max_records)
        if self.max_records is not None:
            self._core._set_max_ok(self.max_records)

    # ------------------------------------------------------------------ interfaces
    def _intern(self, key: tuple[str, str, str, str, int]) -> int:
        i = self._iface_index.get(key)
        if i is None:
            i = len(self._ifaces)
            self._ifaces.append(key)
            self._iface_index[key] = i
        return i

    def _dp_view(self, dp: Any) -> _DpView:
        v = self._view
        if v is None or v.dp is not dp:
            v = self._view = _DpView(dp, self)
        return v

    # ------------------------------------------------------------------ feeding
    def check(self, batch: FrameBatch, now: int | None = None) -> None:
        """Raise FlowLogError now if :meth:`observe` would refuse ``batch``'s times (no timestamps and no
        ``now``, a frame without a timestamp, a bad ``now``): ``Dataplane.process(..., log=)`` calls it
        before the pass, so a refused batch is not processed."""
        if not isinstance(batch, FrameBatch):
            raise FlowLogError(f"observe() wants a fastvpc.FrameBatch, not {type(batch).__name__}")
        self._times(batch, now)

    @staticmethod
    def _times(batch: FrameBatch, now: int | None) -> tuple[np.ndarray, int]:
        n = len(batch)
        if now is not None:
            if isinstance(now, bool) or not isinstance(now, (int, np.integer)) or not 0 <= int(now) < 2**63:
                raise FlowLogError(f"now {now!r} must be an int of nanoseconds since the epoch (>= 0)")
            return np.zeros(0, np.int64), int(now)
        t = batch.timestamp
        if n == 0:
            return np.zeros(0, np.int64), 0
        if t is None:
            raise FlowLogError("flow log: the batch has no timestamps; pass now= (int ns) for the batch "
                               "(to process(..., log=) or observe())")
        if int(t.min()) < 0:
            bad = int(np.flatnonzero(t < 0)[0])
            raise FlowLogError(f"flow log: frame {bad} has timestamp {int(t[bad])} (none); pass now= "
                               "(to process(..., log=) or observe()) or give every frame a time")
        return np.ascontiguousarray(t, np.int64), 0

    @property
    def enis(self) -> frozenset[str] | None:
        """The names of the interfaces this log covers (None: every ENI of the Dataplanes it sees)."""
        return self._covered

    @property
    def records_skipped(self) -> int:
        """Open SKIPDATA records (see ``max_records``)."""
        return int(self._core.n_skip)

    def observe(self, dp: Any, batch: FrameBatch, result: Any, now: int | None = None,
                order: np.ndarray | None = None, sent_src: np.ndarray | None = None) -> int:
        """Add the frames of one pass to the records; returns how many (ENI, packet) observations
        were counted.

        ``dp``: the Dataplane that processed ``batch``; ``result``: its :class:`fastvpc.Result` (any
        object with ``action``, ``reason``, ``egress``, ``route`` arrays of the batch's length);
        ``batch``: the frames after the pass (DELIVER rewrites only MACs).  ``now``: int ns for
        every frame of the batch; without it, each frame's ``batch.timestamp`` (FlowLogError when
        the batch has none, or a frame has -1).  Call it once per pass, in time order: a window
        closed by :meth:`flush` that gets a packet again starts a new record.  The compiled part
        releases the GIL; one call at a time per log (another thread's concurrent call raises
        FlowLogBusyError).

        NAT gateways: when ``result`` also has the arrays ``nat_gw`` (int32: the port of the NAT gateway
        the frame reached, -1 none), ``nat_ip`` (uint32) and ``nat_l4`` (uint16: the address and the
        TCP/UDP port or ICMP echo id the NAT gateway replaced) and ``nat_dir`` (uint8: 0 not translated,
        1 the source replaced, outbound; 2 the destination replaced, a reply), a translated frame makes
        AWS's records on the NAT gateway's interface too (its inside leg with the packet before the NAT,
        its outside leg with the NAT's private IP), and the sender's record shows the packet as sent.

        ``sent_src``: each frame's IPv4 source before the pass (uint32, :func:`sent_sources` before it),
        for the senders' records.  Without it, a frame forwarded to an internet gateway with a public
        source (the pass translated it 1:1) is logged at its sender with the private IP it was sent
        from, as on AWS.

        ``order``: each frame's position in a longer stream (int64, >= 0, one per frame), when this log
        sees only some of that stream's frames (a shard of a sharded replay): a record is then ordered
        by the position of the frame that began it, so logs of disjoint parts of one stream, joined
        with :meth:`merge`, come out exactly as one log fed the whole stream in order.
        """
        from fastvpc.dataplane import Dataplane

        if not isinstance(dp, Dataplane):
            raise FlowLogError(f"observe() wants the Dataplane that made the result, not {type(dp).__name__}")
        if not isinstance(batch, FrameBatch):
            raise FlowLogError(f"observe() wants a fastvpc.FrameBatch, not {type(batch).__name__}")
        n = len(batch)
        arrays = []
        for name, dtype in (("action", np.uint8), ("reason", np.uint8), ("egress", np.int32), ("route", np.int32)):
            a = getattr(result, name, None)
            if not isinstance(a, np.ndarray) or a.ndim != 1 or a.shape[0] != n:
                raise FlowLogError(f"result.{name} must be a numpy array of the batch's {n} frames, got "
                                   f"{type(a).__name__}{'' if not isinstance(a, np.ndarray) else ' ' + str(a.shape)}")
            if a.dtype != dtype:
                raise FlowLogError(f"result.{name} has dtype {a.dtype}, not {np.dtype(dtype).name}")
            arrays.append(np.ascontiguousarray(a))
        action, reason, egress, route = arrays
        ts, t_now = self._times(batch, now)
        ordinal = np.zeros(0, np.int64)
        if order is not None:
            if not isinstance(order, np.ndarray) or order.ndim != 1 or order.shape[0] != n \
                    or order.dtype.kind not in "iu":
                raise FlowLogError(f"order must be an int numpy array of the batch's {n} frames, got "
                                   f"{type(order).__name__}{'' if not isinstance(order, np.ndarray) else ' ' + str(order.dtype) + str(order.shape)}")
            if n and (int(order.min()) < 0 or int(order.max()) >= 2**60):
                raise FlowLogError(f"order: positions must be from 0 to 2**60 - 1, got {int(order.min())}..{int(order.max())}")
            ordinal = np.ascontiguousarray(order, np.int64)
        nat: list[Any] = [np.zeros(0, d) for _, d in NAT_ARRAYS]
        if getattr(result, "nat_gw", None) is not None:
            for k, (name, dtype) in enumerate(NAT_ARRAYS):
                a = getattr(result, name, None)
                if not isinstance(a, np.ndarray) or a.ndim != 1 or a.shape[0] != n:
                    raise FlowLogError(f"result.{name} must be a numpy array of the batch's {n} frames (with "
                                       f"result.nat_gw), got {type(a).__name__}")
                if a.dtype != dtype:
                    raise FlowLogError(f"result.{name} has dtype {a.dtype}, not {np.dtype(dtype).name}")
                nat[k] = np.ascontiguousarray(a)
            if n and int(nat[3].max()) > 2:
                bad = int(np.flatnonzero(nat[3] > 2)[0])
                raise FlowLogError(f"result.nat_dir[{bad}] is {int(nat[3][bad])}: 0 none, 1 source, 2 destination")
        sent = np.zeros(0, np.uint32)
        if sent_src is not None:
            if not isinstance(sent_src, np.ndarray) or sent_src.shape != (n,) or sent_src.dtype != np.uint32:
                raise FlowLogError(f"sent_src must be a uint32 numpy array of the batch's {n} frames, got "
                                   f"{type(sent_src).__name__} {getattr(sent_src, 'dtype', '')}"
                                   f"{getattr(sent_src, 'shape', '')}")
            sent = np.ascontiguousarray(sent_src)
        if n == 0:
            return 0
        with self._held():
            v = self._dp_view(dp)
            if sent_src is None:
                got_src = v.t.sent_sources(batch, action, egress)
                if got_src is not None:
                    sent = got_src
            got_in = v.t.inbound(batch, action)
            in_dst, in_vpc = got_in if got_in is not None else (np.zeros(0, np.uint32), np.zeros(0, np.int32))
            if len(nat[0]) and not len(v.gw_iface):
                v.nat_tables(self)
            if self._covered is not None:
                lo, hi = (t_now, t_now) if len(ts) == 0 else (int(ts.min()), int(ts.max()))
                lo, hi = lo // 1_000_000_000, hi // 1_000_000_000
                self._t_first = lo if self._t_first is None else min(self._t_first, lo)
                self._t_last = hi if self._t_last is None else max(self._t_last, hi)
                if self._nodata_from is None:
                    self._nodata_from = lo - lo % self.window
            core = self._core
            start = 0
            logged = 0
            while True:
                t = v.t
                stop, got = core._observe(batch.data, batch.offsets, batch.port, ts, ordinal, t_now, action, reason,
                                          egress, route, t.port_eni, t.sp_port, t.sp_eni, v.eni_iface, t.eni_ip,
                                          t.eni_vpc, t.vpc_dns, t.route_kind, t.route_arg, t.route_vpc,
                                          t.route_path, t.ip_hash, v.port_info, v.dns_sorted, v.gw_iface, v.gw_ip,
                                          nat[0], nat[1], nat[2], nat[3], sent, in_dst, in_vpc, self.window, start)
                logged += got
                if stop >= n:
                    break
                core._grow()
                start = stop
            self.packets_logged += logged
        return logged

    def _held(self) -> _Hold:
        return _Hold(self._lock)

    # ------------------------------------------------------------------ merging
    def merge(self, *others: FlowLog) -> FlowLog:
        """Add every record of ``others`` (logs of other parts of the same traffic, e.g. the shards of
        a sharded replay) to this log's open records, as AWS aggregates: the records of one key
        (interface, 5-tuple, direction, action, window) become one, packets and bytes summed,
        ``start`` the earliest, ``end`` the latest, ``tcp-flags`` OR-ed, and the rest (the order, the
        ``traffic-path``) the earliest-begun one's.  Records are ordered by when they began: for the
        result to be the log of the whole traffic fed in order, the parts must have been observed
        with ``order=`` (their frames' positions, after this log's own frames).  The others must
        have this log's window; they are left as they are.  Returns this log."""
        for o in others:
            if not isinstance(o, FlowLog):
                raise FlowLogError(f"merge() takes FlowLogs, not {type(o).__name__}")
            if o.window != self.window:
                raise FlowLogError(f"merge(): a log with window {o.window}s cannot join one with window {self.window}s")
            if o is self:
                raise FlowLogError("merge(): a log cannot be merged into itself")
        parts: list[np.ndarray] = []
        logged = 0
        for o in others:
            rows = np.ascontiguousarray(np.concatenate(list(o._closed) + [o._open_rows()]))
            if len(rows):
                remap = np.array([self._intern(k) for k in o._ifaces], np.uint32)
                e = rows.reshape(-1).view(ENTRY_DTYPE)
                e["iface"] = remap[e["iface"].astype(np.intp)]
                parts.append(rows)
            logged += o.packets_logged
        if not parts:
            return self
        with self._held():
            mine = self._core._rows()
            rows = np.ascontiguousarray(np.concatenate([mine] + parts))
            rows = _reduce_rows(rows)
            e = rows.reshape(-1).view(ENTRY_DTYPE)
            nod = e["action"] == _ACT["NODATA"]
            if nod.any():     # a part's NODATA where another part has records of that interface and window
                key = e["wstart"] * (len(self._ifaces) + 1) + e["iface"]
                busy = np.isin(key[nod], key[~nod])
                if busy.any():
                    keep = np.ones(len(e), np.bool_)
                    keep[np.flatnonzero(nod)[busy]] = False
                    rows = np.ascontiguousarray(rows[keep])
                    e = rows.reshape(-1).view(ENTRY_DTYPE)
            slots = max(1024, int(self._core.n_slots))
            while slots * 6 // 10 < len(rows) + 2:
                slots *= 4
            next_seq = max(int(self._core.next_seq), int(e["seq"].max()) if len(e) else 0)
            core = _fl.FlowLogCore()
            core._init(slots)
            if self.max_records is not None:
                core._set_max_ok(self.max_records)
            if core._load(rows) >= 0:  # pragma: no cover - _reduce_rows leaves one row per key
                raise FlowLogError("internal error: merged records repeat a key")
            core._set_next_seq(next_seq)
            self._core = core
            self._strings_cache = None
            self.packets_logged += logged
        return self

    # ------------------------------------------------------------------ windows
    def flush(self, now: int | None = None) -> int:
        """Close every window that has ended by ``now`` (int ns; None: every window up to the last
        frame observed): its records move out of the aggregation table (a later packet in a closed
        window makes a new record).  With ``enis=``, every closed window, from the first frame's on, in
        which a covered interface had no record gets that interface's NODATA record.  Returns how many
        records were closed (NODATA ones included)."""
        if now is None:
            cut = 2**62
        else:
            if isinstance(now, bool) or not isinstance(now, (int, np.integer)) or int(now) < 0:
                raise FlowLogError(f"flush(now={now!r}): now must be an int of nanoseconds since the epoch")
            t_s = int(now) // 1_000_000_000
            cut = t_s - self.window + 1        # windows starting before this have ended: wstart + window <= t_s
        with self._held():
            rows = self._core._take(cut)
            if self._covered is not None and self._nodata_from is not None and self._t_last is not None:
                end = cut if now is not None else self._t_last - self._t_last % self.window + self.window
                nodata = self._nodata_rows(rows, self._nodata_from, end)
                self._nodata_from = max(self._nodata_from, -(-end // self.window) * self.window)
                if len(nodata):
                    rows = np.concatenate([rows, nodata]) if len(rows) else nodata
        if len(rows):
            self._closed.append(rows)
            self._n_closed += len(rows)
        return len(rows)

    def _nodata_rows(self, rows: np.ndarray, w0: int, end: int) -> np.ndarray:
        """NODATA rows for every covered interface without a row in ``rows`` in a window from ``w0``
        (a window start) to before ``end`` (seconds); their seqs follow the table's."""
        w = self.window
        starts = np.arange(w0, max(w0, end), w, dtype=np.int64)
        ifs = np.array(sorted(self._covered_if.values()), np.int64)
        if not len(starts) or not len(ifs):
            return np.zeros((0, _ROW), np.uint8)
        n_if = len(self._ifaces) + 1
        e = rows.reshape(-1).view(ENTRY_DTYPE)
        have = (e["wstart"] - w0) // w * n_if + e["iface"].astype(np.int64)
        want = (((starts - w0) // w)[:, None] * n_if + ifs[None, :]).reshape(-1)
        miss = want[~np.isin(want, have)]
        k = len(miss)
        out = np.zeros((k, _ROW), np.uint8)
        if not k:
            return out
        o = out.reshape(-1).view(ENTRY_DTYPE)
        seq0 = int(self._core.next_seq)
        o["seq"] = seq0 + 1 + np.arange(k, dtype=np.uint64)
        self._core._set_next_seq(seq0 + k)
        o["wstart"] = w0 + (miss // n_if) * w
        o["iface"] = (miss % n_if).astype(np.uint32)
        o["last"] = w - 1
        o["dirn"] = _DIR_NONE
        o["action"] = _ACT["NODATA"]
        return out

    def __len__(self) -> int:
        return self._n_closed + int(self._core.count)

    @property
    def n_closed(self) -> int:
        """Records of closed windows (see :meth:`flush`)."""
        return self._n_closed

    def _open_rows(self) -> np.ndarray:
        with self._held():
            return self._core._rows()

    def _all_rows(self, closed_only: bool = False) -> np.ndarray:
        parts = list(self._closed)
        if not closed_only:
            parts.append(self._open_rows())
        rows = np.concatenate(parts) if len(parts) > 1 else (parts[0] if parts else np.zeros((0, _ROW), np.uint8))
        rows = np.ascontiguousarray(rows)
        e = rows.reshape(-1).view(ENTRY_DTYPE)
        # by window, then in the order records began: creation order already is window order unless
        # packets came out of time order (a flush, or a batch going back in time), so one sort by seq
        # and a check suffice nearly always (lexsort of two keys costs ~5x more)
        order = np.argsort(e["seq"])
        w = e["wstart"][order]
        if len(w) > 1 and bool((w[1:] < w[:-1]).any()):
            order = np.lexsort((e["seq"], e["wstart"]))
        return np.ascontiguousarray(rows[order])

    # ------------------------------------------------------------------ output
    def _iface_strings(self) -> tuple[np.ndarray, np.ndarray, int]:
        """The interfaces' string columns back to back (interface, VPC, subnet, instance per
        interface) with their offsets: built once per number of interfaces (they are only appended)."""
        cached = self._strings_cache
        if cached is not None and cached[0] == len(self._ifaces):
            return cached[1]
        parts = [x for t in self._ifaces for x in t[:4]]
        blob_bytes = "".join(parts).encode()
        lens = np.fromiter(map(len, parts), np.int64, len(parts))
        if len(blob_bytes) != int(lens.sum()):       # some non-ASCII name: lengths in bytes
            lens = np.fromiter((len(x.encode()) for x in parts), np.int64, len(parts))
        off = np.zeros(len(parts) + 1, np.int64)
        np.cumsum(lens, out=off[1:])
        blob = np.frombuffer(blob_bytes, np.uint8) if blob_bytes else np.zeros(0, np.uint8)
        out = (np.ascontiguousarray(blob), off, int(lens.max()) if len(lens) else 1)
        self._strings_cache = (len(self._ifaces), out)
        return out

    def records(self, closed_only: bool = False) -> np.ndarray:
        """The records as a numpy structured array, one row per record, the fields of the format
        with AWS's names (``rec["srcaddr"]``, ``rec["log-status"]``...), ordered by window and then
        by when each record began.  Integer fields are ints (-1 where AWS writes "-": ``traffic-path`` of
        ingress records, every flow field of a NODATA / SKIPDATA record); the others strings, "-" where
        AWS writes it.  ``closed_only``: only closed windows."""
        rows = self._all_rows(closed_only)
        e = rows.reshape(-1).view(ENTRY_DTYPE)
        n = len(e)
        cols: dict[str, np.ndarray] = {}
        egress = e["dirn"] == 1
        for f in self.fields:
            cols[f] = self._column(f, e, egress, n)
        dtype = [(f, cols[f].dtype) for f in self.fields]
        out = np.empty(n, dtype=dtype)
        for f in self.fields:
            out[f] = cols[f]
        return out

    def _iface_ips(self) -> np.ndarray:
        return np.array([t[4] for t in self._ifaces] or [0], np.uint32)

    def _ips(self, ips: np.ndarray) -> np.ndarray:
        ips = np.ascontiguousarray(ips, np.uint32)
        n = len(ips)
        fixed = np.zeros((n, 16), np.uint8)
        _fl.format_ipv4(ips, np.empty(max(15 * n, 1), np.uint8), np.empty(n + 1, np.int64), fixed)
        return fixed.reshape(-1).view("S16").astype("U15")

    def _iface_col(self, k: int, idx: np.ndarray) -> np.ndarray:
        vals = np.array([(t[k] or "-") for t in self._ifaces] or ["-"])
        return vals[idx] if len(idx) else np.zeros(0, vals.dtype)

    def _column(self, f: str, e: np.ndarray, egress: np.ndarray, n: int) -> np.ndarray:
        col = self._column_ok(f, e, egress, n)
        flow = e["action"] < _ACT["SKIPDATA"]
        if f == "log-status":
            return np.where(flow, "OK", np.where(e["action"] == _ACT["SKIPDATA"], "SKIPDATA", "NODATA"))
        if f in _STATUS_KEPT or bool(flow.all()):
            return col
        if f in _INT_FIELDS:
            return np.where(flow, col, np.array(-1, col.dtype))
        return np.where(flow, col, "-")

    def _column_ok(self, f: str, e: np.ndarray, egress: np.ndarray, n: int) -> np.ndarray:
        iface = e["iface"].astype(np.intp)
        if f == "version":
            return np.full(n, self.version, np.int32)
        if f == "account-id":
            return np.full(n, self.account_id)
        if f == "interface-id":
            return self._iface_col(0, iface)
        if f == "vpc-id":
            return self._iface_col(1, iface)
        if f == "subnet-id":
            return self._iface_col(2, iface)
        if f == "instance-id":
            return self._iface_col(3, iface)
        if f == "srcaddr":
            return self._ips(np.where(egress, self._iface_ips()[iface], e["src"]))
        if f == "dstaddr":
            return self._ips(np.where(egress, e["dst"], self._iface_ips()[iface]))
        if f == "pkt-srcaddr":
            return self._ips(e["src"])
        if f == "pkt-dstaddr":
            return self._ips(e["dst"])
        if f == "srcport":
            return e["sport"].astype(np.int32)
        if f == "dstport":
            return e["dport"].astype(np.int32)
        if f == "protocol":
            return e["proto"].astype(np.int32)
        if f == "packets":
            return e["packets"].astype(np.int64)
        if f == "bytes":
            return e["bytes"].astype(np.int64)
        if f == "start":
            return e["wstart"] + e["first"].astype(np.int64)
        if f == "end":
            return e["wstart"] + e["last"].astype(np.int64)
        if f == "action":
            return np.where(e["action"] == 1, "REJECT", "ACCEPT")
        if f == "log-status":
            return np.full(n, "OK")
        if f == "tcp-flags":
            return e["tcpflags"].astype(np.int32)
        if f == "type":
            return np.full(n, "IPv4")
        if f == "flow-direction":
            return np.where(egress, "egress", "ingress")
        if f == "traffic-path":
            path = e["path"].astype(np.int32)
            return np.where(path == 0, np.int32(-1), path)
        return np.full(n, "-")     # UNKNOWN_FIELDS

    def _text_chunks(self, rows: np.ndarray, chunk: int = 65536) -> Iterable[memoryview]:
        codes = np.array([_CODE[f] for f in self.fields], np.uint8)
        ver = np.frombuffer(str(self.version).encode(), np.uint8)
        acct = np.frombuffer(self.account_id.encode(), np.uint8)
        blob, off, max_str = self._iface_strings()
        iface_ip = np.array([t[4] for t in self._ifaces], np.uint32)
        bound = _fl.text_row_bound(max(len(acct), 7), max_str)
        buf = np.empty(bound * min(chunk, max(len(rows), 1)), np.uint8)
        yield memoryview((" ".join(self.fields) + "\n").encode())
        for s in range(0, len(rows), chunk):
            part = rows[s:s + chunk]
            k = _fl._format_text(part, codes, ver, acct, blob, off, iface_ip, buf)
            yield buf.data[:k]

    def text(self) -> str:
        """The records as AWS's text: a header line of field names, then one line per record."""
        return b"".join(bytes(c) for c in self._text_chunks(self._all_rows())).decode()

    def to_arrow(self) -> Any:
        """The records as a ``pyarrow.Table`` with AWS's Parquet columns (field names with ``_`` for
        ``-``; int32/int64 for the integer fields, strings, nulls where AWS writes "-")."""
        pa = _pyarrow()
        rows = self._all_rows()
        e = rows.reshape(-1).view(ENTRY_DTYPE)
        n = len(e)
        egress = e["dirn"] == 1
        status = e["action"] >= _ACT["SKIPDATA"]           # SKIPDATA / NODATA rows: nulls for the flow fields
        gone = status if bool(status.any()) else None
        arrays, names = [], []
        for f in self.fields:
            names.append(f.replace("-", "_"))
            if f == "log-status":
                idx = np.where(status, e["action"].astype(np.int32) - 1, 0)
                arrays.append(pa.array(["OK", "SKIPDATA", "NODATA"], pa.string()).take(pa.array(idx)))
                continue
            if gone is not None and f not in _STATUS_KEPT and f not in UNKNOWN_FIELDS \
                    and f not in ("interface-id", "vpc-id", "subnet-id", "instance-id"):
                col = self._column_ok(f, e, egress, n)
                typ = (pa.int32() if _INT_FIELDS.get(f) == "int32" else pa.int64() if _INT_FIELDS.get(f) == "int64"
                       else pa.string())
                mask = gone | (col == -1) if f == "traffic-path" else gone
                if f == "traffic-path":
                    col = e["path"].astype(np.int32)
                    mask = gone | (col == 0)
                arrays.append(pa.array(col, typ, mask=mask))
                continue
            if f in ("srcaddr", "dstaddr", "pkt-srcaddr", "pkt-dstaddr"):
                own = self._iface_ips()[e["iface"].astype(np.intp)]
                ips = {"srcaddr": np.where(egress, own, e["src"]),
                       "dstaddr": np.where(egress, e["dst"], own),
                       "pkt-srcaddr": e["src"], "pkt-dstaddr": e["dst"]}[f]
                ips = np.ascontiguousarray(ips, np.uint32)
                data = np.empty(max(15 * n, 1), np.uint8)
                offs = np.empty(n + 1, np.int64)
                used = _fl.format_ipv4(ips, data, offs, np.zeros((0, 16), np.uint8))
                arrays.append(pa.LargeStringArray.from_buffers(n, pa.py_buffer(offs), pa.py_buffer(data[:used]))
                              .cast(pa.string()))
            elif f in ("interface-id", "vpc-id", "subnet-id", "instance-id"):
                k = ("interface-id", "vpc-id", "subnet-id", "instance-id").index(f)
                vals = pa.array([t[k] or None for t in self._ifaces] or [None], pa.string())
                arrays.append(vals.take(pa.array(e["iface"].astype(np.int32))) if n else pa.array([], pa.string()))
            elif f in UNKNOWN_FIELDS:
                arrays.append(pa.nulls(n, pa.string()))
            elif f == "traffic-path":
                col = e["path"].astype(np.int32)
                arrays.append(pa.array(col, pa.int32(), mask=col == 0))
            elif f in ("account-id", "type"):
                value = {"account-id": self.account_id, "type": "IPv4"}[f]
                arrays.append(pa.array([value], pa.string()).take(pa.array(np.zeros(n, np.int32))))
            elif f in ("action", "flow-direction"):
                words = ["ACCEPT", "REJECT"] if f == "action" else ["ingress", "egress"]
                idx = (e["action"] if f == "action" else e["dirn"]).astype(np.int32)
                arrays.append(pa.array(words, pa.string()).take(pa.array(idx)))
            else:
                col = self._column(f, e, egress, n)
                arrays.append(pa.array(col, pa.int32() if _INT_FIELDS.get(f) == "int32" else
                                       pa.int64() if _INT_FIELDS.get(f) == "int64" else pa.string()))
        return pa.Table.from_arrays(arrays, names=names)

    def write(self, path: str | os.PathLike[str], format: str | None = None) -> str:
        """Write every record to ``path``: AWS's text format (header line, space-separated fields,
        "-" for what is missing; ``.gz``: gzip-compressed) or, for ``.parquet`` (or
        ``format="parquet"``), Parquet with AWS's columns (the ``parquet`` extra: pyarrow).
        Written to a temporary file beside ``path`` and renamed: an existing file is replaced only
        by a complete one.  Returns the path."""
        p = _check_out_path(path)
        if format is None:
            format = "parquet" if p.lower().endswith(".parquet") else "text"
        if format not in ("text", "parquet"):
            raise FlowLogError(f"format {format!r} must be 'text' or 'parquet'")
        table = self.to_arrow() if format == "parquet" else None   # before any file: a missing pyarrow leaves none
        folder = os.path.dirname(os.path.abspath(p))
        try:
            fd, tmp = tempfile.mkstemp(prefix=".flowlog-", suffix=".partial", dir=folder)
        except OSError as exc:
            raise FlowLogError(f"flow log {p!r}: cannot write in folder {folder!r}: {exc.strerror}") from None
        try:
            if table is not None:
                os.close(fd)
                import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

                pq.write_table(table, tmp)
            else:
                with os.fdopen(fd, "wb") as raw:
                    fh: Any = gzip.GzipFile(fileobj=raw, mode="wb") if p.lower().endswith(".gz") else raw
                    for chunk in self._text_chunks(self._all_rows()):
                        fh.write(chunk)
                    if fh is not raw:
                        fh.close()
            if os.path.exists(p):
                try:
                    os.chmod(tmp, os.stat(p).st_mode & 0o7777)
                except OSError:
                    pass
            else:
                mask = os.umask(0)
                os.umask(mask)
                os.chmod(tmp, 0o666 & ~mask)
            os.replace(tmp, p)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise FlowLogError(f"flow log {p!r}: {exc.strerror or exc} (nothing written)") from None
            raise
        return p

    # ------------------------------------------------------------------ pickling
    def __reduce__(self) -> tuple[Any, ...]:
        state = {
            "v": _PICKLE_VERSION, "window": self.window, "fields": list(self.fields), "version": self.version,
            "account_id": self.account_id, "ifaces": [list(t) for t in self._ifaces],
            "closed": b"".join(r.tobytes() for r in self._closed), "open": self._open_rows().tobytes(),
            "next_seq": int(self._core.next_seq), "packets_logged": self.packets_logged,
            "enis": None if self._covered is None else sorted(self._covered), "covered_if": dict(self._covered_if),
            "max_records": self.max_records, "t_first": self._t_first, "t_last": self._t_last,
            "nodata_from": self._nodata_from,
        }
        state["digest"] = _state_digest(state)   # checked on load: a flipped byte is refused, not obeyed
        return (_rebuild, (state,))

    def __repr__(self) -> str:
        return (f"<FlowLog window={self.window}s version={self.version} {len(self)} records "
                f"({self._n_closed} closed), {len(self._ifaces)} interfaces>")


#: the fields a SKIPDATA / NODATA record keeps (the others are "-": AWS's records of those statuses)
_STATUS_KEPT = ("version", "account-id", "interface-id", "vpc-id", "subnet-id", "instance-id", "start", "end",
                "log-status")

_KEY = ("wstart", "iface", "src", "dst", "sport", "dport", "proto", "dirn", "action")


def _reduce_rows(rows: np.ndarray) -> np.ndarray:
    """One row per record key: rows of one key summed (packets, bytes), min/max (first, last), OR-ed
    (tcp-flags); the seq, path and the rest the smallest-seq row's (AWS's aggregation monoid)."""
    e = rows.reshape(-1).view(ENTRY_DTYPE)
    n = len(e)
    if n < 2:
        return rows
    order = np.lexsort(tuple([e["seq"]] + [e[k] for k in reversed(_KEY)]))
    se = e[order]
    same = np.ones(n - 1, np.bool_)
    for k in _KEY:
        same &= se[k][1:] == se[k][:-1]
    if not same.any():
        return rows
    starts = np.concatenate([[0], np.flatnonzero(~same) + 1])
    out = rows[order][starts].copy()
    o = out.reshape(-1).view(ENTRY_DTYPE)
    o["packets"] = np.add.reduceat(se["packets"], starts)
    o["bytes"] = np.add.reduceat(se["bytes"], starts)
    o["first"] = np.minimum.reduceat(se["first"], starts)
    o["last"] = np.maximum.reduceat(se["last"], starts)
    o["tcpflags"] = np.bitwise_or.reduceat(se["tcpflags"], starts)
    return out


def _pyarrow() -> Any:
    try:
        import pyarrow  # type: ignore[import-untyped,unused-ignore]
        import pyarrow.parquet  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
    except ImportError:
        raise FlowLogError("writing Parquet needs pyarrow: pip install 'fastvpc[parquet]'") from None
    return pyarrow


def _check_out_path(path: Any) -> str:
    try:
        p = os.fspath(path)
    except TypeError:
        raise FlowLogError(f"flow log path {path!r} must be a str or os.PathLike") from None
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    if not p:
        raise FlowLogError("flow log path is empty")
    if os.path.isdir(p):
        raise FlowLogError(f"flow log {p!r} is a directory")
    folder = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(folder):
        raise FlowLogError(f"flow log {p!r}: folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise FlowLogError(f"flow log {p!r}: folder {folder!r} is not writable")
    if os.path.exists(p) and not os.access(p, os.W_OK):
        raise FlowLogError(f"flow log {p!r} exists and is not writable")
    return p


def _state_digest(state: dict[str, Any]) -> str:
    """BLAKE2b (hex) of a pickled FlowLog's state but its digest: the rows as bytes, the rest by repr
    (str, int, None, and lists and dicts of them: the same text for the same values)."""
    h = hashlib.blake2b(b"fastvpc-flowlog-1", digest_size=16)
    for key in sorted(k for k in state if k != "digest"):
        v = state[key]
        data = v if isinstance(v, bytes) else repr(v).encode("utf-8", "surrogatepass")
        h.update(f"{key}:{type(v).__name__}:{len(data)}:".encode())
        h.update(data)
    return h.hexdigest()


def _rebuild(state: dict[str, Any]) -> FlowLog:
    """Unpickle, checking every row before it enters the table (a corrupt pickle is refused)."""
    if not isinstance(state, dict) or state.get("v") not in (1, _PICKLE_VERSION):   # 2 adds optional keys
        raise FlowLogError("FlowLog pickle: unknown format version")
    # written since 2026-12-04 (older pickles have none, and get the checks below alone)
    if "digest" in state and state["digest"] != _state_digest(state):
        raise FlowLogError("FlowLog pickle: the digest does not match the contents (corrupted or edited pickle)")
    missing = [k for k in ("window", "fields", "account_id", "version", "ifaces", "closed", "open", "next_seq")
               if k not in state]
    if missing:
        raise FlowLogError(f"FlowLog pickle: no {', '.join(missing)} (corrupted or edited pickle)")
    try:
        return _rebuild_checked(state)
    except FlowLogError:
        raise
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise FlowLogError(f"FlowLog pickle: {type(exc).__name__}: {exc} (corrupted or edited pickle)") from None


def _rebuild_checked(state: dict[str, Any]) -> FlowLog:
    log = FlowLog(window=state["window"], fields=state["fields"], account_id=state["account_id"],
                  version=state["version"], enis=state.get("enis"), max_records=state.get("max_records"))
    ifaces = state["ifaces"]
    if not isinstance(ifaces, list):
        raise FlowLogError("FlowLog pickle: interfaces must be a list")
    for t in ifaces:
        if (not isinstance(t, (list, tuple)) or len(t) != 5 or not all(isinstance(x, str) for x in t[:4])
                or isinstance(t[4], bool) or not isinstance(t[4], int) or not 0 <= t[4] < 2**32):
            raise FlowLogError(f"FlowLog pickle: bad interface {t!r}")
        for x in t[:4]:
            try:
                x.encode("utf-8")
            except UnicodeEncodeError:
                raise FlowLogError(f"FlowLog pickle: interface {t!r}: {x!r} is not text") from None
        if log._intern((t[0], t[1], t[2], t[3], t[4])) != len(log._ifaces) - 1:
            raise FlowLogError(f"FlowLog pickle: interface {t!r} repeated")
    seq_max = 0
    parts = {}
    for key in ("closed", "open"):
        raw = state[key]
        if not isinstance(raw, bytes) or len(raw) % _ROW:
            raise FlowLogError(f"FlowLog pickle: {key} rows are not whole {_ROW}-byte records")
        rows = np.frombuffer(raw, np.uint8).reshape(-1, _ROW).copy()
        e = rows.reshape(-1).view(ENTRY_DTYPE)
        if len(e):
            if (e["iface"] >= len(ifaces)).any() or (e["dirn"] > 2).any() or (e["action"] > 3).any() \
                    or ((e["dirn"] == 2) != (e["action"] >= 2)).any() \
                    or (e["seq"] == 0).any() or ((e["packets"] == 0) != (e["action"] == 3)).any() \
                    or (e["first"] > e["last"]).any() \
                    or (e["wstart"] % log.window != 0).any() or (e["last"] >= log.window).any() \
                    or (e["path"] > 8).any():
                raise FlowLogError(f"FlowLog pickle: a {key} record is inconsistent")
            seq_max = max(seq_max, int(e["seq"].max()))
        parts[key] = rows
    next_seq = state["next_seq"]
    if isinstance(next_seq, bool) or not isinstance(next_seq, int) or next_seq < seq_max:
        raise FlowLogError("FlowLog pickle: next_seq is below a record's")
    if next_seq > _MAX_SEQ:   # a sequence number past it would wrap to 0, the empty-slot mark
        raise FlowLogError(f"FlowLog pickle: next_seq {next_seq} is past {_MAX_SEQ}")
    n_open = len(parts["open"])
    slots = 1024
    while slots * 6 // 10 < n_open + 2:
        slots *= 2
    log._core = _fl.FlowLogCore()
    log._core._init(slots)
    if log.max_records is not None:
        log._core._set_max_ok(log.max_records)
    bad = log._core._load(parts["open"])
    if bad >= 0:
        raise FlowLogError(f"FlowLog pickle: open record {bad} repeats another's key")
    log._core._set_next_seq(next_seq)
    if len(parts["closed"]):
        log._closed = [parts["closed"]]
        log._n_closed = len(parts["closed"])
    log.packets_logged = int(state.get("packets_logged", 0))
    cov = state.get("covered_if") or {}
    if not isinstance(cov, dict) or not all(isinstance(k, str) and isinstance(v, int) and 0 <= v < len(ifaces)
                                            for k, v in cov.items()):
        raise FlowLogError("FlowLog pickle: covered interfaces are inconsistent")
    log._covered_if = dict(cov)
    max_s = MAX_NOW // 10**9
    times = {}
    for key in ("t_first", "t_last", "nodata_from"):
        v = state.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= max_s):
            raise FlowLogError(f"FlowLog pickle: {key} = {v!r} must be None or seconds in 0..{max_s}")
        times[key] = v
    t_first, t_last, nodata_from = times["t_first"], times["t_last"], times["nodata_from"]
    # what observe() keeps: both frame times or neither, in order; the NODATA cursor a window start, never
    # before the first frame's window (it only moves on), so a flush makes no records from before it
    if (t_first is None) != (t_last is None) or (t_first is not None and t_last is not None and t_first > t_last) \
            or (nodata_from is not None and (t_first is None or nodata_from % log.window
                                             or nodata_from < t_first - t_first % log.window)):
        raise FlowLogError(f"FlowLog pickle: frame times {t_first!r}..{t_last!r} and NODATA start {nodata_from!r} "
                           "are inconsistent")
    for key, v in times.items():
        setattr(log, "_" + key, v)
    return log
