"""The compiled tables' layout: record dtypes, value encodings, and the :class:`CompiledTables` handover.

The record structs are declared once, in the kernel (``_kernels/tables.pxd``).  The numpy dtypes
here are *built from* the offsets and sizes the kernel reports (``forward.record_layouts()``), with
each field's numpy type named here and checked against the kernel's size, so a field reordered,
resized, added or removed in the kernel either flows into the dtypes or fails at import, never a
silent misread.

Records (one per object, 32/16-byte rows so that one frame touches one cache line per object):

* ``ENI_DTYPE``     (``EniRec``) per ENI in ``Network.enis`` order: MAC (48-bit int), primary IP,
  subnet index, port, source/dest check, VPC index.
* ``SUBNET_DTYPE``  (``SubnetRec``) per subnet in ``Network.subnets`` order: network address, mask,
  router IP (base+1), broadcast (last address), gateway MAC, VPC index, route table index.
* ``ROUTE_DTYPE``   (``RouteRec``) per route in ``Network.routes()`` order: target kind
  (``ROUTE_*``), target port (FORWARD targets), argument (ENI index for an ENI target, peer VPC
  index for a peering).
* ``PORT_DTYPE``    (``IngRec``) per port: what the ingress checks need of its ENI (MAC with the
  source/dest check flag in bit 63, primary IP, subnet index; subnet -1 for ports that are no ENI).
* ``DELIV_DTYPE``   (``DelivRec``) per ENI: what delivering to it needs (MAC, port, subnet).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fastvpc._kernels import forward as _fw

__all__ = ["ENI_DTYPE", "SUBNET_DTYPE", "ROUTE_DTYPE", "PORT_DTYPE", "DELIV_DTYPE", "RECORD_FIELDS",
           "FILT_DTYPE", "SUBNET_FILT_DTYPE", "ACL_DIR_DTYPE", "ACL_RULE_DTYPE", "FILTER_ARRAYS",
           "EDGE_ARRAYS", "GW_DTYPE", "EDGE_CIDR_DTYPE", "ROUTE_IGW", "ROUTE_NAT",
           "ROUTE_LOCAL", "ROUTE_ENI", "ROUTE_PEERING", "ROUTE_FORWARD", "ROUTE_BLACKHOLE", "ROUTE_KIND_NAMES",
           "ARP_MODES", "CompiledTables", "record_dtype"]

#: per record: (dtype field name, numpy type, kernel struct field), in the kernel's field order
RECORD_FIELDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "EniRec": (("mac", "<u8", "mac"), ("ip", "<u4", "ip0"), ("subnet", "<i4", "subnet"), ("port", "<i4", "port"),
               ("sdc", "<u4", "sdc"), ("vpc", "<u4", "vpc"), ("pad", "<u4", "pad")),
    "SubnetRec": (("base", "<u4", "base"), ("mask", "<u4", "mask"), ("router", "<u4", "router"),
                  ("bcast", "<u4", "bcast"), ("gwmac", "<u8", "gwmac"), ("vpc", "<i4", "vpc"),
                  ("table", "<u4", "table")),
    "RouteRec": (("kind", "<u4", "kind"), ("port", "<i4", "port"), ("arg", "<i4", "arg"), ("pad", "<u4", "pad")),
    "IngRec": (("mac", "<u8", "mac"), ("ip", "<u4", "ip0"), ("subnet", "<i4", "subnet")),
    "DelivRec": (("mac", "<u8", "mac"), ("port", "<i4", "port"), ("subnet", "<i4", "subnet")),
    # the filters (compiler/filters.py)
    "FiltRec": (("sgset", "<i4", "sgset"), ("ident", "<u4", "ident"), ("tmo", "<u4", "tmo"), ("eni", "<i4", "eni")),
    "SubnetFilt": (("nacl", "<i4", "nacl"), ("dns", "<u4", "dns")),
    "AclDir": (("off", "(4,)<u4", "off"), ("n", "(4,)<u2", "n"), ("flags", "<u4", "flags"), ("pad", "<u4", "pad")),
    "GwRec": (("mac", "<u8", "mac"), ("kind", "<i4", "kind"), ("vpc", "<i4", "vpc"), ("table", "<i4", "table"),
              ("off", "<u4", "off"), ("n", "<u4", "n"), ("pad", "<u4", "pad")),
    "EdgeCidr": (("base", "<u4", "base"), ("mask", "<u4", "mask"), ("vpc", "<i4", "vpc"), ("pad", "<u4", "pad")),
    "AclRule": (("addr", "<u4", "addr"), ("mask", "<u4", "mask"), ("lo", "<u2", "lo"), ("hi", "<u2", "hi"),
                ("proto", "u1", "proto"), ("flags", "u1", "flags"), ("number", "<u2", "number")),
}


def record_dtype(record: str, layouts: dict[str, Any] | None = None,
                 itemsizes: dict[str, int] | None = None) -> np.dtype:
    """The numpy dtype of kernel record ``record``, at the kernel's offsets (``layouts`` and
    ``itemsizes`` default to what the compiled kernel reports).  Raises ImportError when the
    kernel's fields and RECORD_FIELDS disagree in names, sizes or count."""
    layouts = _fw.record_layouts() if layouts is None else layouts
    itemsizes = _fw.record_itemsizes() if itemsizes is None else itemsizes
    kernel = {name: (off, size) for name, off, size in layouts[record]}
    spec = RECORD_FIELDS[record]
    if sorted(kernel) != sorted(k for _, _, k in spec):
        raise ImportError(f"fastvpc.compiler.layout: {record} fields {sorted(kernel)} in the kernel, "
                          f"{sorted(k for _, _, k in spec)} here")
    names, formats, offsets = [], [], []
    for name, fmt, field in spec:
        off, size = kernel[field]
        if np.dtype(fmt).itemsize != size:
            raise ImportError(f"fastvpc.compiler.layout: {record}.{field} is {size} bytes in the kernel, "
                              f"{fmt} here")
        names.append(name)
        formats.append(fmt)
        offsets.append(off)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": itemsizes[record]})


ENI_DTYPE = record_dtype("EniRec")
SUBNET_DTYPE = record_dtype("SubnetRec")
ROUTE_DTYPE = record_dtype("RouteRec")
#: per port: what the ingress checks need of the port's ENI (``mac`` bit 63: source/dest check; subnet -1: no ENI)
PORT_DTYPE = record_dtype("IngRec")
#: per ENI: what delivering a frame to it needs
DELIV_DTYPE = record_dtype("DelivRec")

#: per ENI / per port: security-group set, stable identity, timeout record, ENI index (filters)
FILT_DTYPE = record_dtype("FiltRec")
#: per subnet: network ACL index, the VPC's Amazon DNS address (filters)
SUBNET_FILT_DTYPE = record_dtype("SubnetFilt")
#: per (SG set | NACL, direction): rule ranges per protocol class (filters)
ACL_DIR_DTYPE = record_dtype("AclDir")
#: one SG rule or NACL entry (filters)
ACL_RULE_DTYPE = record_dtype("AclRule")

GW_DTYPE = record_dtype("GwRec")
EDGE_CIDR_DTYPE = record_dtype("EdgeCidr")

#: Route target kinds stored in ``routes["kind"]`` (mirrors RK_* in _kernels/tables.pxd).
ROUTE_LOCAL, ROUTE_ENI, ROUTE_PEERING, ROUTE_FORWARD, ROUTE_BLACKHOLE, ROUTE_IGW = 0, 1, 2, 3, 4, 5
ROUTE_NAT = 6   # compile(edge=True) only: to a NAT gateway, arg = its index (compiler/edge.py nat_gateways)
ROUTE_KIND_NAMES = ("local", "eni", "peering", "forward", "blackhole")   # ROUTE_IGW: compile(edge=True) only

ARP_MODES = ("target", "single_mac")

# exact-match hash encodings (HK_* / HV_* in _kernels/tables.pxd)
_HK_IP, _HK_MAC, _HK_PORT = 0, 1, 2
_HV_ENI, _HV_ROUTER, _HV_BCAST, _HV_GWMAC = 0, 1 << 30, 2 << 30, 3 << 30
_MAX_INDEX = (1 << 30) - 1


class CompiledTables(NamedTuple):
    """Everything the forwarding kernel reads, as the compiler hands it over (by field name) to
    ``Dataplane._create`` and ``fastvpc._kernels.forward.Tables``."""

    enis: np.ndarray            #: ENI_DTYPE[n_eni]
    subnets: np.ndarray         #: SUBNET_DTYPE[n_subnet]
    route_targets: np.ndarray   #: ROUTE_DTYPE[n_route]
    table_base: np.ndarray      #: uint32[n_table]: global index of each route table's first route
    port_eni: np.ndarray        #: PORT_DTYPE[max_port + 1], or empty when ports are hashed
    eni_deliver: np.ndarray     #: DELIV_DTYPE[n_eni]
    ip_hash: np.ndarray         #: uint64[2 * cap]: (VPC, IP) -> ENI / router / broadcast
    mac_hash: np.ndarray        #: uint64[2 * cap]: MAC -> ENI / gateway, and sparse ports
    lpm: Any                    #: fastvpc.lpm.RouteTables (table id = route table index)
    port_hashed: bool           #: ports beyond port_eni are looked up in mac_hash
    arp_mode: str               #: one of ARP_MODES
    # the filters (compiler/filters.py; compile(filters=False): empty arrays, filters False)
    filters: bool = False       #: the four filter stages run
    eni_filt: Any = None        #: FILT_DTYPE[n_eni]
    port_filt: Any = None       #: FILT_DTYPE[len(port_eni)]: the port's ENI's record (sgset -1: no ENI)
    subnet_filt: Any = None     #: SUBNET_FILT_DTYPE[n_subnet]
    sg_dirs: Any = None         #: ACL_DIR_DTYPE[2 * n_sgset]: row 2*set + direction (0 ingress, 1 egress)
    sg_rules: Any = None        #: ACL_RULE_DTYPE[]
    sg_members: Any = None      #: uint64[2 * cap]: (group << 32 | IP) -> 0, members of referenced groups
    nacl_dirs: Any = None       #: ACL_DIR_DTYPE[2 * n_nacl]
    nacl_rules: Any = None      #: ACL_RULE_DTYPE[]
    sg_index: Any = None        #: uint32[]: the port index of the sg_dirs class lists (compiler/filters.py)
    nacl_index: Any = None      #: uint32[]: the port index of the nacl_dirs class lists
    ct_timeouts: Any = None     #: fastvpc.dataplane.state.TIMEOUTS_DTYPE[n_tracking]
    edge: bool = False          #: the edge stages run (compiler/edge.py)
    edge_gws: Any = None        #: GW_DTYPE[n_gateway]: internet, VPN and transit gateways
    edge_cidrs: Any = None      #: EDGE_CIDR_DTYPE[]: the VPCs a VPN / transit gateway enters
    edge_hash: Any = None       #: uint64[2 * cap]: public IP maps and gateway ports


#: the CompiledTables fields of the filters that are numpy arrays
EDGE_ARRAYS = ("edge_gws", "edge_cidrs", "edge_hash")

#: the CompiledTables fields of the filters that are numpy arrays
FILTER_ARRAYS = ("eni_filt", "port_filt", "subnet_filt", "sg_dirs", "sg_rules", "sg_members", "nacl_dirs",
                 "nacl_rules", "ct_timeouts", "sg_index", "nacl_index")
