"""The edge's compiled tables (``compile(edge=True)``; docs/edge.md, DESIGN §6).

* ``edge_gws``   ``GW_DTYPE`` (the kernel's ``GwRec``): one record per internet, VPN and transit
  gateway of the network: its MAC, kind, VPC (internet gateway), gateway route table (LPM table id,
  -1: none; transit gateways have none, their route tables are not modelled) and, for VPN and
  transit gateways, the rows of ``edge_cidrs`` that say which VPC a destination enters.
* ``edge_cidrs`` ``EDGE_CIDR_DTYPE`` (``EdgeCidr``): (base, mask, VPC index) rows: a VPN gateway's
  VPC's CIDRs; a transit gateway's attached VPCs' CIDRs in attachment order (the first VPC whose
  CIDR holds the destination wins).
* ``edge_hash``  ``uint64[2 * cap]``: the internet gateway's 1:1 map both ways (``HK_PUB_OUT``:
  (VPC, private IP) -> public IP; ``HK_PUB_IN``: (VPC, public IP) -> private IP: every ENI's
  primary IP and NAT gateway's private IP with an Elastic IP) and the gateways' ports
  (``HK_GWPORT``: port -> index into ``edge_gws``).  Encodings in ``_kernels/tables.pxd``.

NAT gateways (docs/edge.md §4), by their index in :func:`nat_gateways`, in ``edge_hash`` too:
``HK_NATIP`` (VPC, private IP) -> index (NAT gateways with a subnet and an address: the reply
path), ``HK_NATSUB`` index -> subnet index, ``HK_NATADDR`` index -> private IP, ``HK_NATID`` index
-> its stable 32-bit identity (the key of its bindings in a FlowTable, so they survive a recompile;
``Network._tracking``, distinct from every ENI's and other NAT gateway's identity),
``HK_NATPORT`` index -> its port (what ``Result.nat_gw`` reports: docs/flow-logs.md).

Routes to an internet gateway get the route kind ``ROUTE_IGW`` (the kernel's ``RK_IGW``: the
1:1 source translation or ``NO_PUBLIC_IP``), routes to a NAT gateway ``ROUTE_NAT`` (``RK_NAT``,
arg = the NAT gateway's index); every other route is compiled as without the edge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fastvpc.compiler._hash import build_hash
from fastvpc.compiler.layout import EDGE_CIDR_DTYPE, GW_DTYPE
from fastvpc.errors import TopologyError
from fastvpc.topology.identities import plain_nat_identity

if TYPE_CHECKING:  # pragma: no cover
    from fastvpc.topology import Network

__all__ = ["GW_IGW", "GW_VGW", "GW_TGW", "HK_PUB_OUT", "HK_PUB_IN", "HK_GWPORT", "HK_NATIP", "HK_NATSUB", "HK_NATADDR",
           "HK_NATID", "HK_NATPORT", "compile_edge", "nat_gateways", "nat_identity", "no_edge"]

GW_IGW, GW_VGW, GW_TGW = 1, 2, 3
HK_PUB_OUT, HK_PUB_IN, HK_GWPORT = 3, 4, 5
HK_NATIP, HK_NATSUB, HK_NATADDR, HK_NATID, HK_NATPORT = 6, 7, 8, 9, 10
_EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)


def nat_gateways(net: Network) -> list[Any]:
    """The network's NAT gateways in compile order (VPCs in order, each VPC's gateways in order)."""
    from fastvpc.topology import NatGateway

    return [g for vpc in net.vpcs for g in vpc.gateways if isinstance(g, NatGateway)]


def nat_identity(vpc_name: str, name: str) -> int:
    """A NAT gateway's plain 32-bit identity (BLAKE2b of ``VPC/name``).  The one compiled is what its
    network gave it (``Network._tracking``: the plain one unless that value was already held by an ENI
    or another NAT gateway; :mod:`fastvpc.topology.identities`), kept for as long as it exists so its
    bindings survive a recompile."""
    return plain_nat_identity(vpc_name, name)


def no_edge() -> dict[str, Any]:
    """The edge fields of ``compile(edge=False)``: empty (the kernel reads none of them)."""
    return dict(edge=False, edge_gws=np.zeros(0, GW_DTYPE), edge_cidrs=np.zeros(0, EDGE_CIDR_DTYPE),
                edge_hash=np.full(4, _EMPTY))


def _key(kind: int, vpc: int, v: int) -> int:
    return (kind << 56) | (vpc << 32) | v


def compile_edge(net: Network, vidx: dict[int, int], tidx: dict[int, int]) -> dict[str, Any]:
    """The edge fields of ``compile(edge=True)`` (``vidx``/``tidx``: id(VPC) / id(route table) -> index)."""
    from fastvpc.topology import InternetGateway, VpnGateway, mac_to_int

    gws: list[Any] = []
    for vpc in net.vpcs:
        gws += [g for g in vpc.gateways if isinstance(g, (InternetGateway, VpnGateway))]
    gws += list(net.transit_gateways)
    recs = np.zeros(len(gws), dtype=GW_DTYPE)
    rows: list[tuple[int, int, int, int]] = []
    keys: list[int] = []
    vals: list[int] = []
    for i, g in enumerate(gws):
        rt = getattr(g, "route_table", None)
        table = tidx[id(rt)] if rt is not None else -1
        off = len(rows)
        if isinstance(g, InternetGateway):
            kind, vpc_i = GW_IGW, vidx[id(g.vpc)]
        else:
            kind, vpc_i = (GW_VGW, -1) if isinstance(g, VpnGateway) else (GW_TGW, -1)
            for v in ([g.vpc] if isinstance(g, VpnGateway) else list(g.attachments)):
                for c in v.cidrs:
                    rows.append((int(c.network_address), int(c.netmask), vidx[id(v)], 0))
        recs[i] = (mac_to_int(g.mac), kind, vpc_i, table, off, len(rows) - off, 0)
        keys.append(_key(HK_GWPORT, 0, g.port))
        vals.append(i)
    for a in net.addresses:
        owner = a.association
        if owner is None or owner.ip is None:
            continue
        v = vidx[id(owner.vpc)]
        keys += [_key(HK_PUB_OUT, v, int(owner.ip)), _key(HK_PUB_IN, v, int(a.public_ip))]
        vals += [int(a.public_ip), int(owner.ip)]
    sidx = {id(s): j for j, s in enumerate(net.subnets)}
    ids = net._settle_identities()
    for i, n in enumerate(nat_gateways(net)):
        keys += [_key(HK_NATID, 0, i), _key(HK_NATPORT, 0, i)]
        vals += [ids.assign_nat(n.vpc.name, n.name), n.port]   # given: settled above
        if n.subnet is None or n.ip is None or id(n.subnet) not in sidx:
            continue   # no address: the nat stage says NAT_UNSUPPORTED
        keys += [_key(HK_NATSUB, 0, i), _key(HK_NATADDR, 0, i), _key(HK_NATIP, vidx[id(n.vpc)], int(n.ip))]
        vals += [sidx[id(n.subnet)], int(n.ip), i]
    cidrs = np.array(rows, dtype=EDGE_CIDR_DTYPE) if rows else np.zeros(0, EDGE_CIDR_DTYPE)
    if keys:
        ht = build_hash(np.array(keys, dtype=np.uint64), np.array(vals, dtype=np.uint32))
        if isinstance(ht, int):  # pragma: no cover - the control plane keeps ports and addresses unique
            raise TopologyError(f"compile: duplicate edge key {keys[ht]:#x}", value=keys[ht])
    else:
        ht = np.full(4, _EMPTY)
    return dict(edge=True, edge_gws=recs, edge_cidrs=cidrs, edge_hash=ht)
