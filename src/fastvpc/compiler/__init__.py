"""Network -> Dataplane: pack the control plane into read-only numpy arrays.

The records and encodings are :mod:`fastvpc.compiler.layout` (dtypes built from the kernel's own
struct offsets); :func:`compile_network` fills them and hands them over as one
:class:`~fastvpc.compiler.layout.CompiledTables` (by field name) to ``Dataplane._create``:

* ``enis``, ``subnets``, ``route_targets``, ``port_eni``, ``eni_deliver``: record arrays (see layout).
  When ports are too sparse for a dense ``port_eni`` array (a user-chosen port in the millions), it
  is empty and ports are looked up in the MAC hash table instead (``port_hashed``).
* ``ip_hash``, ``mac_hash`` ``uint64[2 * cap]``: open-addressing exact-match tables (load <= 0.5,
  linear probing, (key, value) pairs, built by ``compiler._hash.build_hash``): (VPC, IP) -> ENI /
  router of subnet / broadcast of subnet; MAC -> ENI / gateway of subnet, and sparse ports.  Key and
  value encodings in ``_kernels/tables.pxd``.  Every lookup the kernel makes per frame is O(1).
* ``lpm``      a :class:`fastvpc.lpm.RouteTables`: table id = route table index
  (``Network.route_tables`` order), value = the route's index within its table; the global route
  index (``Network.routes()`` order) is ``table_base[table] + value``.  Local values keep a table's
  LPM unchanged when routes are added to other tables.
* ``table_base`` ``uint32[n_tables]``: global index of each table's first route.
* the filters (``filters=True``): security-group sets, NACLs, tracking identities and timeouts,
  :mod:`fastvpc.compiler.filters`.

Recompiling reuses the previous snapshot's LPM tables that did not change (kept per Network in a
weak cache): only changed route tables are rebuilt, with ``RouteTables.replaced``.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from fastvpc.compiler._hash import build_hash
from fastvpc.compiler.filters import compile_filters, no_filters
from fastvpc.compiler.layout import (
    _HK_IP, _HK_MAC, _HK_PORT, _HV_BCAST, _HV_ENI, _HV_GWMAC, _HV_ROUTER, _MAX_INDEX, ARP_MODES, DELIV_DTYPE,
    ENI_DTYPE, PORT_DTYPE, ROUTE_BLACKHOLE, ROUTE_DTYPE, ROUTE_ENI, ROUTE_FORWARD, ROUTE_KIND_NAMES, ROUTE_LOCAL,
    ROUTE_IGW, ROUTE_NAT, ROUTE_PEERING, SUBNET_DTYPE, CompiledTables)
from fastvpc.compiler.edge import compile_edge, nat_gateways, no_edge
from fastvpc.errors import TopologyError
from fastvpc.lpm import RouteTables

if TYPE_CHECKING:  # pragma: no cover
    from fastvpc.dataplane import Dataplane
    from fastvpc.topology import Network

__all__ = ["ENI_DTYPE", "PORT_DTYPE", "DELIV_DTYPE", "SUBNET_DTYPE", "ROUTE_DTYPE", "ROUTE_LOCAL", "ROUTE_ENI", "ROUTE_PEERING",
           "ROUTE_FORWARD", "ROUTE_BLACKHOLE", "RouteInfo", "compile_network", "ARP_MODES", "CompiledTables"]


class RouteInfo(NamedTuple):
    """Plain-data summary of one route (``Dataplane.routes[i]``), picklable without the topology."""

    number: int         #: position in ``Network.routes()`` (the value reported in ``Result.route``)
    route_table: str    #: name of its route table
    vpc: str            #: name of the table's VPC
    destination: str    #: CIDR
    target: str         #: target name: ``local``, ``blackhole`` or the object's name
    target_kind: str    #: ``local``, ``eni``, ``pcx``, ``igw``, ``vgw``, ``nat``, ``tgw``, ``vpce``, ``blackhole``
    target_port: int    #: the target's port, -1 for local / blackhole
    origin: str         #: local, static, propagated or prefix-list
    state: str          #: active or blackhole
    deleted_target: str | None  #: name of the deleted target of a blackhole route


# previous compile per Network (keyed by id, checked through a weak reference; Network is unhashable):
# (weakref to the network, per-table route signatures, RouteTables, its arrays when cached) for
# incremental LPM builds.  The arrays are compared on reuse: a snapshot's ``dp.lpm`` changed by
# hand with replace() must not leak into the next compile.
_LPM_CACHE: dict[int, tuple[Any, list[tuple[Any, ...]], RouteTables, Any]] = {}


def _forget(key: int) -> None:
    _LPM_CACHE.pop(key, None)


def _table_arrays(sig: tuple[Any, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pfx = np.array([p for p, _, _ in sig], dtype=np.uint32)
    ln = np.array([n for _, n, _ in sig], dtype=np.uint8)
    val = np.array([v for _, _, v in sig], dtype=np.uint32)
    return pfx, ln, val


def _build_lpm(net: Network, sigs: list[tuple[Any, ...]]) -> RouteTables:
    """RouteTables for these per-table signatures, reusing the previous compile's tables when possible."""
    key = id(net)
    prev = _LPM_CACHE.get(key)
    if prev is not None and prev[0]() is net and len(prev[1]) == len(sigs) \
            and getattr(prev[2], "_state", None) is prev[3]:
        _, old_sigs, rts, _state = prev
        changed = [t for t, (a, b) in enumerate(zip(old_sigs, sigs)) if a != b]
        if len(changed) <= max(1, len(sigs) // 4):
            for t in changed:
                rts = rts.replaced(t, *_table_arrays(sigs[t]))
            _LPM_CACHE[key] = (prev[0], sigs, rts, getattr(rts, "_state", None))
            return rts
    tid = np.array([t for t, sig in enumerate(sigs) for _ in sig], dtype=np.uint32)
    flat = [x for sig in sigs for x in sig]
    pfx, ln, val = _table_arrays(tuple(flat))
    rts = RouteTables.from_arrays(tid, pfx, ln, val, n_tables=len(sigs))
    if prev is None or prev[0]() is not net:
        weakref.finalize(net, _forget, key)
    _LPM_CACHE[key] = (weakref.ref(net), sigs, rts, getattr(rts, "_state", None))
    return rts


def _hash(keys: list[int], vals: list[int]) -> np.ndarray:
    ht = build_hash(np.array(keys, dtype=np.uint64), np.array(vals, dtype=np.uint32))
    if isinstance(ht, int):  # pragma: no cover - topology validation makes keys unique
        raise TopologyError(f"compile: duplicate address or MAC (hash key {keys[ht]:#x})", value=keys[ht])
    return ht


def compile_network(net: Network, arp_mode: str = "target", filters: bool = True, edge: bool = True) -> Dataplane:
    """Pack ``net`` into a :class:`fastvpc.dataplane.Dataplane` (see the module docstring).

    ``filters=True`` compiles the security groups, network ACLs and tracking identities
    (:mod:`fastvpc.compiler.filters`) and the pass runs the four filter stages; ``filters=False``
    leaves them out (Batfish's ignoreFilters): exactly the unfiltered verdicts.  ``edge=True`` compiles
    the edge (:mod:`fastvpc.compiler.edge`: the internet gateway's 1:1 translation, frames on gateway
    ports); ``edge=False`` keeps gateways opaque exits and their ports unknown (docs/edge.md §5)."""
    from fastvpc.dataplane import Dataplane
    from fastvpc.files import network_to_dict
    from fastvpc.topology import BLACKHOLE, LOCAL, Eni, PeeringConnection, mac_to_int

    if not isinstance(filters, bool):
        raise TopologyError(f"filters must be True or False, not {filters!r}", obj=None, value=filters)
    if not isinstance(edge, bool):
        raise TopologyError(f"edge must be True or False, not {edge!r}", obj=None, value=edge)
    from fastvpc.topology import InternetGateway
    if arp_mode not in ARP_MODES:
        raise TopologyError(f"arp_mode {arp_mode!r} must be one of {', '.join(map(repr, ARP_MODES))}",
                            obj=None, value=arp_mode)
    vpcs = list(net.vpcs)
    subnets = net.subnets
    enis = net.enis
    tables = net.route_tables
    routes = net.routes()
    if max(len(vpcs), len(subnets), len(enis), len(routes)) > _MAX_INDEX:  # pragma: no cover
        raise TopologyError("network too large to compile (more than 2**30 objects of one kind)")
    vidx = {id(v): i for i, v in enumerate(vpcs)}
    sidx = {id(s): i for i, s in enumerate(subnets)}
    tidx = {id(t): i for i, t in enumerate(tables)}
    eidx = {id(e): i for i, e in enumerate(enis)}

    # subnets
    sub = np.zeros(len(subnets), dtype=SUBNET_DTYPE)
    if subnets:
        base = np.array([int(s.cidr.network_address) for s in subnets], dtype=np.uint64)
        plen = np.array([s.cidr.prefixlen for s in subnets], dtype=np.uint64)
        mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
        sub["base"] = base
        sub["mask"] = mask
        sub["router"] = base + 1
        sub["bcast"] = base | (~mask & 0xFFFFFFFF)
        sub["gwmac"] = [mac_to_int(s.gateway_mac) for s in subnets]
        sub["vpc"] = [vidx[id(s.vpc)] for s in subnets]
        sub["table"] = [tidx[id(s.route_table)] for s in subnets]

    # ENIs
    eni = np.zeros(len(enis), dtype=ENI_DTYPE)
    if enis:
        eni["mac"] = [mac_to_int(e.mac) for e in enis]
        eni["ip"] = [int(e.ip) for e in enis]
        eni_sub = np.array([sidx[id(e.subnet)] for e in enis], dtype=np.int32)
        eni["subnet"] = eni_sub
        eni["port"] = [e.port for e in enis]
        eni["sdc"] = [1 if e.source_dest_check else 0 for e in enis]
        eni["vpc"] = sub["vpc"][eni_sub]

    # routes
    nidx = {id(g): i for i, g in enumerate(nat_gateways(net))} if edge else {}
    rt = np.zeros(len(routes), dtype=ROUTE_DTYPE)
    infos: list[RouteInfo] = []
    sigs: list[list[tuple[int, int, int]]] = [[] for _ in tables]
    table_base = np.zeros(len(tables), dtype=np.uint32)
    for g, r in enumerate(routes):
        tgt = r.target
        t_i = tidx[id(r.route_table)]
        if not sigs[t_i]:
            table_base[t_i] = g
        elif table_base[t_i] + len(sigs[t_i]) != g:  # pragma: no cover - routes() lists tables in order
            raise TopologyError(f"compile: routes of table {r.route_table.name} are not contiguous")
        sigs[t_i].append((int(r.destination.network_address), r.destination.prefixlen, len(sigs[t_i])))
        port, arg = -1, -1
        if tgt is LOCAL:
            kind = ROUTE_LOCAL
        elif tgt is BLACKHOLE:
            kind = ROUTE_BLACKHOLE
        elif isinstance(tgt, Eni):
            if id(tgt) not in eidx:  # pragma: no cover - deleting an ENI blackholes its routes
                kind = ROUTE_BLACKHOLE
            else:
                kind, port, arg = ROUTE_ENI, tgt.port, eidx[id(tgt)]
        elif isinstance(tgt, PeeringConnection):
            kind, port, arg = ROUTE_PEERING, tgt.port, vidx[id(tgt.peer_of(r.route_table.vpc))]
        elif edge and isinstance(tgt, InternetGateway):
            kind, port = ROUTE_IGW, tgt.port
        elif edge and id(tgt) in nidx:                # docs/edge.md §4: the nat stage
            kind, port, arg = ROUTE_NAT, tgt.port, nidx[id(tgt)]
        else:
            kind, port = ROUTE_FORWARD, tgt.port
        rt[g] = (kind, port, arg, 0)
        infos.append(RouteInfo(g, r.route_table.name, r.route_table.vpc.name, str(r.destination), tgt.name,
                               tgt.kind, tgt.port, r.origin, r.state, r.deleted_target))
    lpm = _build_lpm(net, [tuple(s) for s in sigs])

    # ports
    targets = net.targets
    max_port = net.max_port
    dense = max_port + 1 <= max(1 << 16, 8 * len(targets))
    port_eni = np.zeros(max_port + 1 if dense else 0, dtype=PORT_DTYPE)
    port_eni["subnet"] = -1
    if dense and enis:
        rows = port_eni[eni["port"]]
        rows["mac"] = eni["mac"] | (eni["sdc"].astype(np.uint64) << np.uint64(63))
        rows["ip"] = eni["ip"]
        rows["subnet"] = eni["subnet"]
        port_eni[eni["port"]] = rows
    deliv = np.zeros(len(enis), dtype=DELIV_DTYPE)
    if enis:
        deliv["mac"] = eni["mac"]
        deliv["port"] = eni["port"]
        deliv["subnet"] = eni["subnet"]

    # exact-match hashes: (vpc, ip) in one table, MACs and sparse ports in another (the per-frame
    # (vpc, dst) lookup then touches a table half the size)
    ip_keys: list[int] = []
    ip_vals: list[int] = []
    mac_keys: list[int] = []
    mac_vals: list[int] = []
    for i, e in enumerate(enis):
        vk = vidx[id(e.vpc)] << 32
        for ip in e.ips:
            ip_keys.append(vk | int(ip))
            ip_vals.append(_HV_ENI | i)
        mac_keys.append((_HK_MAC << 56) | int(eni["mac"][i]))
        mac_vals.append(_HV_ENI | i)
        if not dense:
            mac_keys.append((_HK_PORT << 56) | e.port)
            mac_vals.append(_HV_ENI | i)
    for j in range(len(subnets)):
        vk = int(sub["vpc"][j]) << 32
        ip_keys += [vk | int(sub["router"][j]), vk | int(sub["bcast"][j])]
        ip_vals += [_HV_ROUTER | j, _HV_BCAST | j]
        mac_keys.append((_HK_MAC << 56) | int(sub["gwmac"][j]))
        mac_vals.append(_HV_GWMAC | j)
    ip_hash = _hash(ip_keys, ip_vals)
    mac_hash = _hash(mac_keys, mac_vals)

    port_names = {t.port: t.name for t in targets}
    port_kinds = {t.port: t.kind for t in targets}
    filt = (compile_filters(net, enis, subnets, vpcs, port_eni.size, not dense) if filters else no_filters())
    compiled = CompiledTables(enis=eni, subnets=sub, route_targets=rt, table_base=table_base, port_eni=port_eni,
                              eni_deliver=deliv, ip_hash=ip_hash, mac_hash=mac_hash, lpm=lpm, port_hashed=not dense,
                              arp_mode=arp_mode, **filt,
                              **(compile_edge(net, vidx, tidx) if edge else no_edge()))
    return Dataplane._create(
        compiled, routes=tuple(infos),
        port_names=port_names, port_kinds=port_kinds,
        eni_names=tuple(e.name for e in enis), subnet_names=tuple(s.name for s in subnets),
        vpc_names=tuple(v.name for v in vpcs), route_table_names=tuple(t.name for t in tables),
        topology=network_to_dict(net),
    )
