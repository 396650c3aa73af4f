"""Checks run on a pickled :class:`~fastvpc.dataplane.Dataplane` before the kernel sees it.

The forwarding kernel trusts every index stored in its tables (it runs without the GIL and
checks nothing per frame), and its hash probe loop ends only at an empty slot.  So unpickling
checks, for the state dict made by ``Dataplane.__reduce__``:

* the shape of the state: exactly the known keys, each array 1-D with the record dtype of
  :mod:`fastvpc.compiler`, the metadata of the right types and lengths;
* every index the kernel follows: an ENI's subnet (and VPC), a subnet's VPC and route table, a
  route target's ENI or peer VPC, an ingress row's subnet, a delivery record's subnet, every
  value stored in the hash tables (tag and index), ``table_base`` against the routes and the
  LPM tables (whose own packed arrays ``fastvpc.lpm`` checks when they are unpickled);
* the hash tables: a power-of-two size, at least one empty slot, every key findable from its
  home slot, no key twice;
* that the derived tables agree with the ENI records they were made from;
* a digest (BLAKE2b) over everything, written by ``__reduce__``: a byte flipped in a file
  (or a pickle of another version) is refused instead of giving silently different verdicts.
  The structural checks do not depend on it: a state with a valid digest is checked the same.

Anything wrong raises :class:`fastvpc.errors.SnapshotError` naming the field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from fastvpc.compiler import (
    ARP_MODES,
    DELIV_DTYPE,
    ENI_DTYPE,
    PORT_DTYPE,
    ROUTE_BLACKHOLE,
    ROUTE_DTYPE,
    ROUTE_ENI,
    ROUTE_PEERING,
    SUBNET_DTYPE,
    RouteInfo,
)
from fastvpc.compiler.layout import (ACL_DIR_DTYPE, ACL_RULE_DTYPE, EDGE_CIDR_DTYPE, FILT_DTYPE, GW_DTYPE, ROUTE_IGW, ROUTE_NAT,
                                    SUBNET_FILT_DTYPE)
from fastvpc.errors import SnapshotError

__all__ = ["ARRAY_DTYPES", "META_TYPES", "digest", "to_bytes", "validate_state", "validated"]

def _timeouts_dtype() -> np.dtype[Any]:
    from fastvpc.dataplane.state import TIMEOUTS_DTYPE

    return TIMEOUTS_DTYPE


#: The arrays of a Dataplane and their record layouts (``fastvpc.compiler``).
ARRAY_DTYPES: dict[str, np.dtype[Any]] = {
    "enis": ENI_DTYPE, "subnets": SUBNET_DTYPE, "route_targets": ROUTE_DTYPE,
    "table_base": np.dtype(np.uint32), "port_eni": PORT_DTYPE, "eni_deliver": DELIV_DTYPE,
    "ip_hash": np.dtype(np.uint64), "mac_hash": np.dtype(np.uint64),
    # the filters (compiler/filters.py)
    "eni_filt": FILT_DTYPE, "port_filt": FILT_DTYPE, "subnet_filt": SUBNET_FILT_DTYPE, "sg_dirs": ACL_DIR_DTYPE,
    "sg_rules": ACL_RULE_DTYPE, "sg_members": np.dtype(np.uint64), "nacl_dirs": ACL_DIR_DTYPE,
    "nacl_rules": ACL_RULE_DTYPE, "ct_timeouts": _timeouts_dtype(), "sg_index": np.dtype(np.uint32),
    "nacl_index": np.dtype(np.uint32),
    # the edge (compiler/edge.py)
    "edge_gws": GW_DTYPE, "edge_cidrs": EDGE_CIDR_DTYPE, "edge_hash": np.dtype(np.uint64),
}
#: The plain metadata and its types.
META_TYPES: dict[str, type] = {
    "arp_mode": str, "routes": tuple, "port_names": dict, "port_kinds": dict, "eni_names": tuple,
    "subnet_names": tuple, "vpc_names": tuple, "route_table_names": tuple, "topology": str,
}
_OTHER = ("lpm", "port_hashed", "filters", "edge")
_DIGEST = "digest"
_DIGEST_VERSION = b"fastvpc-dataplane-1"

# hash table encodings (fastvpc/_kernels/tables.pxd)
_EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
_MULT = np.uint64(0x9E3779B97F4A7C15)
_HK_IP, _HK_MAC, _HK_PORT = 0, 1, 2
_TAG_ENI, _TAG_ROUTER, _TAG_BCAST, _TAG_GWMAC = 0, 1, 2, 3
_INDEX_MASK = (1 << 30) - 1


def _fail(field: str, message: str) -> SnapshotError:
    return SnapshotError(field, message)


def _lpm_arrays(lpm: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The LPM's packed arrays in their canonical (compacted) form, without a copy when they already are."""
    header, meta, data = lpm._state
    live = int(meta[:, 1].sum())
    end = int((meta[:, 0] + meta[:, 1]).max()) if meta.shape[0] else 0
    if end == live:
        return header, meta, data[:end]
    a = lpm.arrays()
    return a["header"], a["meta"], a["data"]


def digest(state: Mapping[str, Any]) -> str:
    """BLAKE2b digest (hex) of everything in a Dataplane state: arrays, LPM tables and metadata."""
    h = hashlib.blake2b(_DIGEST_VERSION, digest_size=16)

    def add(tag: str, a: np.ndarray) -> None:
        a = np.ascontiguousarray(a)
        h.update(f"{tag}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.reshape(-1).view(np.uint8).data)

    for name in ARRAY_DTYPES:
        add(name, state[name])
    for tag, a in zip(("lpm.header", "lpm.meta", "lpm.data"), _lpm_arrays(state["lpm"])):
        add(tag, a)
    h.update(f"port_hashed:{bool(state['port_hashed'])}".encode())
    h.update(f"filters:{state['filters']!r}".encode())
    h.update(f"edge:{state['edge']!r}".encode())
    for name in META_TYPES:
        value = state[name]
        text = value if isinstance(value, str) else repr(value)
        h.update(f"{name}:{len(text)}:".encode())
        h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def to_bytes(a: np.ndarray) -> bytes:
    """How ``__reduce__`` stores an array: its raw bytes (the record layout is known: ARRAY_DTYPES)."""
    return np.ascontiguousarray(a).tobytes()


def _decode(state: Any) -> dict[str, Any]:
    """A copy of ``state`` with the arrays stored as bytes turned back into arrays of their record dtype."""
    if not isinstance(state, dict):
        raise _fail("state", f"is a {type(state).__name__}, not a dict")
    out = dict(state)
    for name, dt in ARRAY_DTYPES.items():
        raw = out.get(name)
        if isinstance(raw, (bytes, bytearray)):
            if len(raw) % dt.itemsize:
                raise _fail(name, f"has {len(raw)} bytes, not whole {dt.itemsize}-byte records")
            out[name] = np.frombuffer(raw, dtype=dt)
    return out


def validated(state: Any) -> dict[str, Any]:
    """The state with its arrays decoded, after :func:`validate_state` (raises SnapshotError)."""
    out = _decode(state)
    validate_state(out)
    return out


def _bad_index(field: str, idx: np.ndarray, lo: int, hi: int, what: str) -> None:
    """Refuse when some ``idx`` is outside ``lo..hi-1``; the message names the record and the value."""
    if idx.size == 0:
        return
    bad = (idx < lo) | (idx >= hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _fail(field, f"record {i} has {what} {int(idx[i])}, outside 0..{hi - 1}"
                    if lo == 0 else f"record {i} has {what} {int(idx[i])}, outside {lo}..{hi - 1}")


def _check_shape(state: Mapping[str, Any]) -> None:
    if not isinstance(state, dict):
        raise _fail("state", f"is a {type(state).__name__}, not a dict")
    known = {*ARRAY_DTYPES, *META_TYPES, *_OTHER}
    unknown = sorted(str(k) for k in state if k not in known and k != _DIGEST)
    if unknown:
        raise _fail(unknown[0], "unknown field (a pickle of another fastvpc version, or corrupt)")
    missing = sorted(k for k in known if k not in state)
    if missing:
        raise _fail(missing[0], "missing (a pickle of another fastvpc version, or corrupt)")
    for name, dt in ARRAY_DTYPES.items():
        a = state[name]
        if not isinstance(a, np.ndarray):
            raise _fail(name, f"is a {type(a).__name__}, not a numpy array")
        if a.ndim != 1:
            raise _fail(name, f"has shape {a.shape}, not one dimension")
        if a.dtype != dt:
            raise _fail(name, f"has dtype {a.dtype}, not the record layout {dt}")
    for name, tp in META_TYPES.items():
        if not isinstance(state[name], tp):
            raise _fail(name, f"is a {type(state[name]).__name__}, not a {tp.__name__}")
    if not isinstance(state["port_hashed"], bool):
        raise _fail("port_hashed", f"is a {type(state['port_hashed']).__name__}, not a bool")
    if not isinstance(state["filters"], bool):
        raise _fail("filters", f"is a {type(state['filters']).__name__}, not a bool")
    if not isinstance(state["edge"], bool):
        raise _fail("edge", f"is a {type(state['edge']).__name__}, not a bool")
    from fastvpc.lpm import RouteTables

    if not isinstance(state["lpm"], RouteTables):
        raise _fail("lpm", f"is a {type(state['lpm']).__name__}, not a fastvpc.lpm.RouteTables")
    if state["arp_mode"] not in ARP_MODES:
        raise _fail("arp_mode", f"{state['arp_mode']!r:.40} is not one of {', '.join(ARP_MODES)}")


def _check_meta(state: Mapping[str, Any], n_eni: int, n_sub: int, n_vpc: int, n_routes: int, n_tables: int) -> None:
    for name, n in (("eni_names", n_eni), ("subnet_names", n_sub), ("route_table_names", n_tables),
                    ("routes", n_routes)):
        if len(state[name]) != n:
            raise _fail(name, f"has {len(state[name])} entries for {n} compiled records")
    for name in ("eni_names", "subnet_names", "vpc_names", "route_table_names"):
        if not all(isinstance(x, str) for x in state[name]):
            raise _fail(name, "holds something that is not a name (str)")
    if not all(isinstance(r, RouteInfo) for r in state["routes"]):
        raise _fail("routes", "holds something that is not a RouteInfo")
    for name in ("port_names", "port_kinds"):
        d = state[name]
        if not all(isinstance(k, int) and isinstance(v, str) for k, v in d.items()):
            raise _fail(name, "must map int ports to str")
    if len(state["lpm"]) != n_tables:
        raise _fail("lpm", f"has {len(state['lpm'])} tables, table_base {n_tables}")


def _check_hash(field: str, ht: np.ndarray, allowed: dict[int, int], key_kinds: tuple[int, ...],
                n_vpc: int) -> None:
    """A (key, value) open-addressing table the kernel can probe safely and that finds every key.

    ``allowed`` maps each value tag this table may hold to the bound of its index."""
    cap = ht.size // 2
    if ht.size != 2 * cap or cap < 2 or cap & (cap - 1):
        raise _fail(field, f"has {ht.size} words, not 2 * a power of two >= 2")
    keys, vals = ht[0::2], ht[1::2]
    used = keys != _EMPTY
    if used.all():
        raise _fail(field, "has no empty slot (a probe for an absent key would never end)")
    slots = np.flatnonzero(used)
    k, v = keys[slots], vals[slots]
    if (v > 0xFFFFFFFF).any():
        i = int(slots[int(np.flatnonzero(v > 0xFFFFFFFF)[0])])
        raise _fail(field, f"slot {i} holds value {int(vals[i]):#x}, wider than 32 bits")
    tag = (v >> np.uint64(30)).astype(np.int64)
    idx = (v & np.uint64(_INDEX_MASK)).astype(np.int64)
    bound = np.full(tag.shape, -1, np.int64)
    for t, hi in allowed.items():
        bound[tag == t] = hi
    bad = idx >= bound  # a disallowed tag has bound -1
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        i = int(slots[j])
        what = "a tag this table never holds" if bound[j] < 0 else f"index {int(idx[j])} out of range"
        raise _fail(field, f"slot {i} holds value {int(v[j]):#x}: {what}")
    kind = (k >> np.uint64(56)).astype(np.int64)
    bad = ~np.isin(kind, key_kinds)
    if _HK_IP in key_kinds:
        bad |= (kind == _HK_IP) & (((k >> np.uint64(32)) & np.uint64(0xFFFFFF)).astype(np.int64) >= n_vpc)
    if bad.any():
        i = int(slots[int(np.flatnonzero(bad)[0])])
        raise _fail(field, f"slot {i} holds key {int(keys[i]):#x}, not a key of this table")
    if np.unique(k).size != k.size:
        raise _fail(field, "holds a key twice")
    # findable: no empty slot between a key's home slot and the slot it sits in (linear probing)
    shift = np.uint64(64 - (cap.bit_length() - 1))
    with np.errstate(over="ignore"):
        home = ((k * _MULT) >> shift).astype(np.int64)
    empty = np.flatnonzero(~used)
    nxt = np.searchsorted(empty, home)  # first empty slot at or after home (cyclically)
    first_empty = np.where(nxt < empty.size, empty[np.minimum(nxt, empty.size - 1)], empty[0] + cap)
    if ((slots - home) % cap >= first_empty - home).any():
        j = int(np.flatnonzero((slots - home) % cap >= first_empty - home)[0])
        raise _fail(field, f"key {int(k[j]):#x} in slot {int(slots[j])} cannot be found from its home slot "
                           f"{int(home[j])}")


def validate_state(state: Any) -> None:
    """Refuse (:class:`SnapshotError`, naming the field) a Dataplane state the kernel could not use safely."""
    _check_shape(state)
    enis, subnets, routes = state["enis"], state["subnets"], state["route_targets"]
    table_base, port_eni, deliv = state["table_base"], state["port_eni"], state["eni_deliver"]
    n_eni, n_sub, n_routes, n_tables = enis.size, subnets.size, routes.size, table_base.size
    n_vpc = len(state["vpc_names"])
    _check_meta(state, n_eni, n_sub, n_vpc, n_routes, n_tables)
    if _DIGEST in state and state[_DIGEST] != digest(state):
        raise _fail("digest", "does not match the contents (the file is corrupt or was changed)")

    _bad_index("subnets.vpc", subnets["vpc"], 0, n_vpc, "VPC index")
    _bad_index("subnets.table", subnets["table"], 0, n_tables, "route table index")
    _bad_index("enis.subnet", enis["subnet"], 0, n_sub, "subnet index")
    _bad_index("enis.vpc", enis["vpc"], 0, n_vpc, "VPC index")
    if n_eni and (enis["vpc"].astype(np.int64) != subnets["vpc"][enis["subnet"]]).any():
        i = int(np.flatnonzero(enis["vpc"].astype(np.int64) != subnets["vpc"][enis["subnet"]])[0])
        raise _fail("enis.vpc", f"record {i} has VPC {int(enis['vpc'][i])}, not its subnet's")

    kind = routes["kind"].astype(np.int64)
    _bad_index("route_targets.kind", kind, 0, (ROUTE_NAT if state["edge"] else ROUTE_BLACKHOLE) + 1, "target kind")
    _bad_index("route_targets.arg", routes["arg"][kind == ROUTE_ENI], 0, n_eni, "ENI index")
    _bad_index("route_targets.arg", routes["arg"][kind == ROUTE_PEERING], 0, n_vpc, "peer VPC index")
    # a NAT gateway's index is a key of the edge hash (29 bits: HK_NATID); one that names no NAT
    # gateway misses there and drops the frame, so the field's range is what must hold
    _bad_index("route_targets.arg", routes["arg"][kind == ROUTE_NAT], 0, 1 << 29, "NAT gateway index")

    # table_base: each table's routes are a run [base, base + count) inside the routes, runs in order
    counts = state["lpm"]._meta[:, 2].astype(np.int64)
    base = table_base.astype(np.int64)
    full = counts > 0
    if (base + counts > n_routes).any():
        t = int(np.flatnonzero(base + counts > n_routes)[0])
        raise _fail("table_base", f"table {t} starts at route {int(base[t])} with {int(counts[t])} routes: "
                                  f"past the {n_routes} routes")
    b, c = base[full], counts[full]
    if b.size > 1 and (b[1:] < b[:-1] + c[:-1]).any():
        raise _fail("table_base", "is not monotone: two route tables' runs of routes overlap or are out of order")
    lpm = state["lpm"]
    for tab in np.flatnonzero(full).tolist():
        vals = lpm.routes(tab)[2]
        if vals.size and int(vals.max()) >= int(counts[tab]):
            raise _fail("lpm", f"table {tab} has route value {int(vals.max())}, but {int(counts[tab])} routes")

    # per-port ingress rows and per-ENI delivery records (derived from the ENI records)
    _bad_index("port_eni.subnet", port_eni["subnet"], -1, n_sub, "subnet index")
    if state["port_hashed"] and port_eni.size:
        raise _fail("port_eni", "holds rows although ports are looked up in the hash (port_hashed)")
    if deliv.size != n_eni:
        raise _fail("eni_deliver", f"has {deliv.size} records for {n_eni} ENIs")
    _bad_index("eni_deliver.subnet", deliv["subnet"], 0, n_sub, "subnet index")
    if n_eni:
        for name in ("mac", "port", "subnet"):
            diff = deliv[name] != enis[name]
            if diff.any():
                raise _fail(f"eni_deliver.{name}", f"record {int(np.flatnonzero(diff)[0])} differs from its ENI")
        if not state["port_hashed"]:
            p = enis["port"].astype(np.int64)
            _bad_index("enis.port", p, 0, port_eni.size, "port (no ingress row)")
            rows = port_eni[p]
            want_mac = enis["mac"] | (enis["sdc"].astype(np.uint64) << np.uint64(63))  # as the compiler packs it
            for name, want in (("subnet", enis["subnet"]), ("ip", enis["ip"]), ("mac", want_mac)):
                diff = rows[name] != want
                if diff.any():
                    raise _fail(f"port_eni.{name}", f"the row of ENI {int(np.flatnonzero(diff)[0])}'s port "
                                                    "differs from the ENI")

    _check_hash("ip_hash", state["ip_hash"], {_TAG_ENI: n_eni, _TAG_ROUTER: n_sub, _TAG_BCAST: n_sub},
                (_HK_IP,), n_vpc)
    kinds = (_HK_MAC, _HK_PORT) if state["port_hashed"] else (_HK_MAC,)
    _check_hash("mac_hash", state["mac_hash"], {_TAG_ENI: n_eni, _TAG_GWMAC: n_sub}, kinds, n_vpc)
    _check_filters(state, n_eni, n_sub)
    eh = state["edge_hash"]
    if eh.size < 4 or eh.size & (eh.size - 1) or not (eh[0::2] == _EMPTY).any():
        raise _fail("edge_hash", f"{eh.size} words: not 2 * a power of two with an empty slot")
    if not state["edge"] and (state["edge_gws"].size or state["edge_cidrs"].size):
        raise _fail("edge_gws", "holds records although the snapshot has no edge")
    _check_edge(state, n_vpc, n_sub, n_tables)


def _check_edge(state: Mapping[str, Any], n_vpc: int, n_sub: int, n_tables: int) -> None:
    """Every index the edge stages follow (the kernel refuses them too, but with a ValueError of its
    own: a snapshot is refused here, naming the field): a gateway's kind, VPC, gateway route table
    and run of CIDR rows, each CIDR row's VPC, and the edge hash's gateway-port, NAT-gateway-subnet and
    NAT-address entries."""
    from fastvpc.compiler.edge import GW_IGW, GW_TGW, HK_GWPORT, HK_NATIP, HK_NATSUB

    gws, cidrs, eh = state["edge_gws"], state["edge_cidrs"], state["edge_hash"]
    _bad_index("edge_gws.kind", gws["kind"].astype(np.int64), GW_IGW, GW_TGW + 1, "gateway kind")
    igw = gws["kind"] == GW_IGW
    _bad_index("edge_gws.vpc", gws["vpc"][igw].astype(np.int64), 0, n_vpc, "VPC index")
    _bad_index("edge_gws.table", gws["table"].astype(np.int64), -1, n_tables, "route table index")
    end = gws["off"].astype(np.int64) + gws["n"].astype(np.int64)
    _bad_index("edge_gws.off", end, 0, cidrs.size + 1, "end of its CIDR rows")
    _bad_index("edge_cidrs.vpc", cidrs["vpc"].astype(np.int64), 0, n_vpc, "VPC index")
    keys, vals = eh[0::2], eh[1::2]
    used, tag = keys != _EMPTY, keys >> np.uint64(56)
    port_vals = vals[used & (tag == np.uint64(HK_GWPORT))]
    _bad_index("edge_hash", port_vals.astype(np.int64), 0, gws.size, "gateway index")
    _bad_index("edge_hash", vals[used & (tag == np.uint64(HK_NATSUB))].astype(np.int64), 0, n_sub,
               "NAT gateway's subnet index")
    _bad_index("edge_hash", vals[used & (tag == np.uint64(HK_NATIP))].astype(np.int64), 0, 1 << 29,
               "NAT gateway index")


def _check_port_index(field: str, ix: np.ndarray, dirs: np.ndarray) -> None:
    """The port index of ``dirs``' class lists (compiler/filters.py build_port_index): every block the
    kernel reads inside the array, its cuts ascending, its masks naming only rules of its list, and the
    bucket table of a block of more than BUCKET_MIN cuts the one its cuts give."""
    from fastvpc.compiler.filters import L4_NONE, NO_INDEX, block_layout, bucket_bases

    if ix.size < 4 * dirs.size:
        raise _fail(field, f"has {ix.size} words, fewer than the {4 * dirs.size} heads of {dirs.size} rows")
    head = ix[:4 * dirs.size].astype(np.int64)
    ns = dirs["n"].reshape(-1).astype(np.int64) if dirs.size else np.zeros(0, np.int64)
    seen: dict[int, int] = {}
    for k in np.flatnonzero(head != NO_INDEX):
        x, n = int(head[k]), int(ns[k])
        if seen.get(x, n) != n:
            raise _fail(field, f"block {x} serves lists of {seen[x]} and {n} rules")
        if x in seen:
            continue
        seen[x] = n
        if x + 1 > ix.size or n > 64:
            raise _fail(field, f"row {k // 4} class {k % 4} has block {x} (of {ix.size} words) for {n} rules")
        nb = int(ix[x])
        at_masks, at_table, end = (x + w for w in block_layout(nb))
        if at_table > ix.size:
            raise _fail(field, f"block {x} has {nb} cuts, past the end of the array")
        cuts = ix[x + 1:x + 1 + nb].astype(np.int64)
        if nb and (np.any(np.diff(cuts) <= 0) or cuts[0] < 1 or cuts[-1] > L4_NONE):
            raise _fail(field, f"block {x}'s cuts are not ascending within 1..{L4_NONE}")
        masks = ix[at_masks:at_table].view(np.uint64)
        if n < 64 and np.any(masks >> np.uint64(n)):
            raise _fail(field, f"block {x} names a rule past its list of {n}")
        if end > at_table:    # the kernel counts cuts[base[B]:base[B + 1]]: every base must be the true one
            if end > ix.size:
                raise _fail(field, f"block {x}'s bucket table runs past the end of the array")
            if not np.array_equal(ix[at_table:end].view(np.uint16), bucket_bases(cuts)):
                raise _fail(field, f"block {x}'s bucket table does not match its cuts (a pickle of an older "
                                   "fastvpc, before bucket tables, or corrupt)")


def _check_filters(state: Mapping[str, Any], n_eni: int, n_sub: int) -> None:
    """Every index the filter stages follow: an ENI's / port's SG set and timeout record, a subnet's
    NACL, every (set | NACL, direction) rule range inside the rules, the member hash's structure,
    the per-port rows equal to their ENI's."""
    from fastvpc.dataplane.state import MAX_TIMEOUT, TIMEOUT_FIELDS

    ef, pf, sf = state["eni_filt"], state["port_filt"], state["subnet_filt"]
    sg_dirs, sg_rules, nacl_dirs, nacl_rules = state["sg_dirs"], state["sg_rules"], state["nacl_dirs"], state["nacl_rules"]
    tmo = state["ct_timeouts"]
    if not state["filters"]:
        for name in ("eni_filt", "port_filt", "subnet_filt", "sg_dirs", "sg_rules", "nacl_dirs", "nacl_rules",
                     "ct_timeouts", "sg_index", "nacl_index"):
            if state[name].size:
                raise _fail(name, "holds records although the snapshot has no filters")
        return
    if sg_dirs.size % 2 or nacl_dirs.size % 2:
        raise _fail("sg_dirs" if sg_dirs.size % 2 else "nacl_dirs", "does not hold two directions per set")
    n_set, n_nacl = sg_dirs.size // 2, nacl_dirs.size // 2
    if ef.size != n_eni:
        raise _fail("eni_filt", f"has {ef.size} records for {n_eni} ENIs")
    if sf.size != n_sub:
        raise _fail("subnet_filt", f"has {sf.size} records for {n_sub} subnets")
    if n_eni and tmo.size == 0:
        raise _fail("ct_timeouts", "is empty")
    for f in TIMEOUT_FIELDS:
        if tmo.size and (tmo[f] > MAX_TIMEOUT).any():
            i = int(np.flatnonzero(tmo[f] > MAX_TIMEOUT)[0])
            raise _fail("ct_timeouts", f"record {i} has {f} = {int(tmo[f][i])} s, above {MAX_TIMEOUT}")
    _bad_index("eni_filt.sgset", ef["sgset"], 0, n_set, "security-group set")
    _bad_index("eni_filt.tmo", ef["tmo"], 0, tmo.size, "timeout record")
    if n_eni and (ef["eni"] != np.arange(n_eni)).any():
        raise _fail("eni_filt.eni", f"record {int(np.flatnonzero(ef['eni'] != np.arange(n_eni))[0])} is not its ENI")
    if np.unique(ef["ident"]).size != n_eni:
        raise _fail("eni_filt.ident", "holds an ENI identity twice (the FlowTable keys of two ENIs would meet)")
    _bad_index("subnet_filt.nacl", sf["nacl"], 0, n_nacl, "network ACL index")
    if state["port_hashed"]:
        if pf.size:
            raise _fail("port_filt", "holds rows although ports are looked up in the hash (port_hashed)")
    else:
        if pf.size != state["port_eni"].size:
            raise _fail("port_filt", f"has {pf.size} rows for {state['port_eni'].size} ports")
        _bad_index("port_filt.sgset", pf["sgset"], -1, n_set, "security-group set")
        _bad_index("port_filt.tmo", pf["tmo"], 0, max(tmo.size, 1), "timeout record")
        _bad_index("port_filt.eni", pf["eni"], -1, n_eni, "ENI index")
        if n_eni:
            rows = pf[state["enis"]["port"].astype(np.int64)]
            for name in ("sgset", "ident", "tmo", "eni"):
                diff = rows[name] != ef[name]
                if diff.any():
                    raise _fail(f"port_filt.{name}", f"the row of ENI {int(np.flatnonzero(diff)[0])}'s port differs "
                                                     "from the ENI")
    for field, dirs, rules, classes in (("sg_dirs", sg_dirs, sg_rules, 4), ("nacl_dirs", nacl_dirs, nacl_rules, 4)):
        if dirs.size == 0:
            continue
        end = dirs["off"][:, :classes].astype(np.int64) + dirs["n"][:, :classes].astype(np.int64)
        if (end > rules.size).any():
            i = int(np.flatnonzero((end > rules.size).any(axis=1))[0])
            raise _fail(field, f"record {i} has a rule range past the {rules.size} rules")
    _check_port_index("sg_index", state["sg_index"], sg_dirs)
    _check_port_index("nacl_index", state["nacl_index"], nacl_dirs)
    _check_hash("sg_members", state["sg_members"], {0: 1}, (0,), 1 << 24)
