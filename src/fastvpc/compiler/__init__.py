"""Network -> Dataplane: pack the control plane into read-only numpy arrays.

Layout (what ``fastvpc._kernels.forward`` reads; one record per object, 32/16-byte aligned rows
so that one frame touches one cache line per object):

* ``enis``     ``ENI_DTYPE[n_eni]`` in ``Network.enis`` order: MAC (48-bit int), primary IP,
  subnet index, port, source/dest check, VPC index.
* ``subnets``  ``SUBNET_DTYPE[n_subnet]`` in ``Network.subnets`` order: network address, mask,
  router IP (base+1), broadcast (last address), gateway MAC, VPC index, route table index.
* ``routes``   ``ROUTE_DTYPE[n_route]`` in ``Network.routes()`` order: target kind (``ROUTE_*``),
  target port (FORWARD targets), argument (ENI index for an ENI target, peer VPC index for a
  peering).
* ``port_eni`` ``PORT_DTYPE[max_port + 1]``: per port, what the ingress checks need of its ENI in one
  16-byte row (MAC with the source/dest check flag in bit 63, primary IP, subnet index; subnet -1 for
  ports that are no ENI): one cache line per frame for the sender.
* ``eni_deliver`` ``DELIV_DTYPE[n_eni]``: per ENI, what delivering to it needs (MAC, port, subnet) in
  16 bytes: the receiver costs one small line, not a 32-byte ENI record.
  When ports are too sparse for a dense array (a user-chosen port in the millions), the array is
  empty and ports are looked up in the hash table instead.
* ``ip_hash``, ``mac_hash`` ``uint64[2 * cap]``: open-addressing exact-match tables (load <= 0.5,
  linear probing, (key, value) pairs): (VPC, IP) -> ENI / router of subnet / broadcast of subnet;
  MAC -> ENI / gateway of subnet, and sparse ports.  Key and value encodings in
  ``_kernels/types.pxd``.  Every lookup the kernel makes per frame is O(1).
* ``lpm``      a :class:`fastvpc.lpm.RouteTables`: table id = route table index
  (``Network.route_tables`` order), value = the route's index within its table; the global route
  index (``Network.routes()`` order) is ``table_base[table] + value``.  Local values keep a table's
  LPM unchanged when routes are added to other tables.
* ``table_base`` ``uint32[n_tables]``: global index of each table's first route.

Recompiling reuses the previous snapshot's LPM tables that did not change (kept per Network in a
weak cache): only changed route tables are rebuilt, with ``RouteTables.replaced``.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from fastvpc._kernels import forward as _fw
from fastvpc.errors import TopologyError
from fastvpc.lpm import RouteTables

if TYPE_CHECKING:  # pragma: no cover
    from fastvpc.dataplane import Dataplane
    from fastvpc.topology import Network

__all__ = ["ENI_DTYPE", "PORT_DTYPE", "DELIV_DTYPE", "SUBNET_DTYPE", "ROUTE_DTYPE", "ROUTE_LOCAL", "ROUTE_ENI", "ROUTE_PEERING",
           "ROUTE_FORWARD", "ROUTE_BLACKHOLE", "RouteInfo", "compile_network", "ARP_MODES"]

ENI_DTYPE = np.dtype([("mac", "<u8"), ("ip", "<u4"), ("subnet", "<i4"), ("port", "<i4"), ("sdc", "<u4"),
                      ("vpc", "<u4"), ("pad", "<u4")])
SUBNET_DTYPE = np.dtype([("base", "<u4"), ("mask", "<u4"), ("router", "<u4"), ("bcast", "<u4"),
                         ("gwmac", "<u8"), ("vpc", "<i4"), ("table", "<u4")])
ROUTE_DTYPE = np.dtype([("kind", "<u4"), ("port", "<i4"), ("arg", "<i4"), ("pad", "<u4")])
#: per port: what the ingress checks need of the port's ENI (``mac`` bit 63: source/dest check; subnet -1: no ENI)
PORT_DTYPE = np.dtype([("mac", "<u8"), ("ip", "<u4"), ("subnet", "<i4")])
#: per ENI: what delivering a frame to it needs
DELIV_DTYPE = np.dtype([("mac", "<u8"), ("port", "<i4"), ("subnet", "<i4")])

#: Route target kinds stored in ``routes["kind"]`` (mirrors RK_* in _kernels/types.pxd).
ROUTE_LOCAL, ROUTE_ENI, ROUTE_PEERING, ROUTE_FORWARD, ROUTE_BLACKHOLE = 0, 1, 2, 3, 4
ROUTE_KIND_NAMES = ("local", "eni", "peering", "forward", "blackhole")

ARP_MODES = ("target", "single_mac")

_HK_IP, _HK_MAC, _HK_PORT = 0, 1, 2
_HV_ENI, _HV_ROUTER, _HV_BCAST, _HV_GWMAC = 0, 1 << 30, 2 << 30, 3 << 30
_MAX_INDEX = (1 << 30) - 1

if (_fw.record_sizes() != (ENI_DTYPE.itemsize, SUBNET_DTYPE.itemsize, ROUTE_DTYPE.itemsize)
        or _fw.ingress_sizes() != (PORT_DTYPE.itemsize, DELIV_DTYPE.itemsize)):  # pragma: no cover
    raise ImportError(f"fastvpc.compiler: record dtypes do not match the kernel's structs {_fw.record_sizes()}")


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
    ht = _fw.build_hash(np.array(keys, dtype=np.uint64), np.array(vals, dtype=np.uint32))
    if isinstance(ht, int):  # pragma: no cover - topology validation makes keys unique
        raise TopologyError(f"compile: duplicate address or MAC (hash key {keys[ht]:#x})", value=keys[ht])
    return ht


def compile_network(net: Network, arp_mode: str = "target") -> Dataplane:
    """Pack ``net`` into a :class:`fastvpc.dataplane.Dataplane` (see the module docstring)."""
    from fastvpc.dataplane import Dataplane
    from fastvpc.files import network_to_dict
    from fastvpc.topology import BLACKHOLE, LOCAL, Eni, PeeringConnection, mac_to_int

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
    return Dataplane._create(
        arp_mode=arp_mode, enis=eni, subnets=sub, routes_arr=rt, port_eni=port_eni, port_hashed=not dense,
        eni_deliver=deliv,
        ip_hash=ip_hash, mac_hash=mac_hash, lpm=lpm, table_base=table_base, routes=tuple(infos),
        port_names=port_names, port_kinds=port_kinds,
        eni_names=tuple(e.name for e in enis), subnet_names=tuple(s.name for s in subnets),
        vpc_names=tuple(v.name for v in vpcs), route_table_names=tuple(t.name for t in tables),
        topology=network_to_dict(net),
    )
