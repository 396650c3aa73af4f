"""Topology files: a ``Network`` as plain JSON or YAML, and back.

The schema (``fastvpc: 1``) is documented in ``docs/topology-files.md``.  In short::

    fastvpc: 1
    vpcs:
      - name: prod
        cidrs: [10.0.0.0/16]
        main_route_table: rt-main
        subnets:
          - name: web
            cidr: 10.0.1.0/24
            route_table: rt-web             # omitted: the subnet follows the main table
            gateway_mac: 06:00:0a:00:01:00
            enis:
              - {name: web1, ip: 10.0.1.10, mac: 02:00:0a:00:01:0a, secondary_ips: [],
                 source_dest_check: true, port: 2, address: eip-web}   # address: an Elastic IP
        route_tables:
          - name: rt-main
            routes: []                      # the local route of each CIDR is implicit
          - name: rt-web
            routes:
              - {destination: 0.0.0.0/0, target: igw, origin: static}
          - name: rt-edge                   # a gateway route table (#40, #41)
            gateways: [igw]
            routes: [{destination: 10.0.1.0/24, target: fw, origin: static}]
        internet_gateways: [{name: igw, port: 0, mac: 1e:00:00:00:00:00}]
        vpn_gateways: []
        nat_gateways: []                    # {name, port, mac, subnet?, ip?, connectivity?, address?,
                                            #  network_interface_id?}
        endpoints: []                       # {name, port, type, service?}
        default_security_group: sg-1       # and its default_network_acl
        security_groups:                    # {name, group_name?, description?, ingress, egress}
          - {name: web-sg, ingress: [{protocol: tcp, ports: [443, 443], cidr: 0.0.0.0/0}],
             egress: [{protocol: all, cidr: 0.0.0.0/0}]}
        network_acls:                       # {name, entries: [{number, direction, action, protocol, ...}]}
          - {name: db-acl, entries: []}
    peerings: [{name: pcx, vpcs: [prod, peer], port: 9}]
    transit_gateways: [{name: tgw, port: 10, attachments: [prod]}]
    prefix_lists: [{name: pl-1, cidrs: [192.0.2.0/24]}]
    addresses: [{name: eip-web, public_ip: 203.0.113.10}]   # Elastic IPs

:func:`network_to_dict` is canonical and complete (every name, port and MAC, routes in
order), so ``save`` then ``load`` gives an equal network and saving twice gives the same
bytes.  Loading builds the network through the public topology API, so every validation
rule applies; any mistake raises :class:`fastvpc.TopologyFileError` naming the file, the
place in the document (``vpcs[0].subnets[2].cidr``, with the line when known) and the
bad value.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import reprlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

from fastvpc.errors import TopologyError, TopologyFileError
from fastvpc.topology import (
    BLACKHOLE,
    LOCAL,
    ElasticIp,
    Endpoint,
    Eni,
    InternetGateway,
    NatGateway,
    Network,
    NetworkAcl,
    NetworkAclEntry,
    PeeringConnection,
    PrefixList,
    Route,
    RouteTable,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
    Target,
    Tracking,
    TransitGateway,
    Vpc,
    VpnGateway,
)
from fastvpc.topology.filters import PROTOCOL_LABELS
from fastvpc.topology.identities import MAX_IDENTITY, plain_identity, plain_nat_identity

__all__ = [
    "SCHEMA_VERSION",
    "dumps",
    "load",
    "loads",
    "network_from_dict",
    "network_to_dict",
    "save",
]

#: The value of the ``fastvpc:`` key that this module writes and reads.
SCHEMA_VERSION = 1

_FORMATS = {"json": "json", "yaml": "yaml", "yml": "yaml"}
_EXTENSIONS = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}

Place = tuple[Any, ...]  # ("vpcs", 0, "subnets", 2, "cidr")


# =========================================================================== writing

def _route_to_dict(r: Route) -> dict[str, Any]:
    d: dict[str, Any] = {"destination": str(r.destination), "target": r.target.name, "origin": r.origin}
    if r.prefix_list is not None:
        d["prefix_list"] = r.prefix_list
    if r.target is BLACKHOLE and r.deleted_target is not None:
        d["deleted_target"] = r.deleted_target
    return d


def _eni_to_dict(e: Eni) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": e.name,
        "ip": str(e.ip),
        "mac": e.mac,
        "secondary_ips": [str(a) for a in e.secondary_ips],
        "source_dest_check": bool(e.source_dest_check),
        "port": e.port,
        "security_groups": [g.name for g in e.security_groups],
    }
    changed = e.tracking.changes()
    if changed:
        d["tracking"] = changed
    if e.address is not None:
        d["address"] = e.address.name
    ident = e.network._tracking_ids().get(e.name)
    if ident is not None and ident != plain_identity(e.name):   # salted on a clash: kept as given
        d["tracking_id"] = ident
    return d


def _protocol_to_doc(proto: int) -> str | int:
    return PROTOCOL_LABELS.get(proto, proto)


def _match_to_dict(proto: int, ports: tuple[int, int] | None, icmp: tuple[int, int] | None) -> dict[str, Any]:
    d: dict[str, Any] = {"protocol": _protocol_to_doc(proto)}
    if ports is not None:
        d["ports"] = list(ports)
    if icmp is not None:
        d["icmp"] = list(icmp)
    return d


def _rule_to_dict(r: SecurityGroupRule) -> dict[str, Any]:
    d = _match_to_dict(r.protocol, r.ports, r.icmp)
    p = r.peer
    if isinstance(p, SecurityGroup):
        d["group"] = p.name
    elif isinstance(p, PrefixList):
        d["prefix_list"] = p.name
    elif isinstance(p, tuple):
        d["cidrs"] = [str(c) for c in p]
    else:
        d["cidr"] = str(p)
    return d


def _group_to_dict(g: SecurityGroup) -> dict[str, Any]:
    d: dict[str, Any] = {"name": g.name}
    if g.group_name != g.name:
        d["group_name"] = g.group_name
    if g.description and not g.is_default:
        d["description"] = g.description
    d["ingress"] = [_rule_to_dict(r) for r in g.ingress]
    d["egress"] = [_rule_to_dict(r) for r in g.egress]
    return d


def _entry_to_dict(e: NetworkAclEntry) -> dict[str, Any]:
    d: dict[str, Any] = {"number": e.number, "direction": e.direction, "action": e.action}
    d.update(_match_to_dict(e.protocol, e.ports, e.icmp))
    d["cidr"] = str(e.cidr)
    return d


def _acl_to_dict(a: NetworkAcl) -> dict[str, Any]:
    return {"name": a.name, "entries": [_entry_to_dict(e) for e in a.entries]}


def _subnet_to_dict(s: Subnet) -> dict[str, Any]:
    d: dict[str, Any] = {"name": s.name, "cidr": str(s.cidr)}
    if s.explicit_route_table is not None:
        d["route_table"] = s.explicit_route_table.name
    if s.explicit_network_acl is not None:
        d["network_acl"] = s.explicit_network_acl.name
    d["gateway_mac"] = s.gateway_mac
    d["enis"] = [_eni_to_dict(e) for e in s.enis]
    return d


def _vpc_to_dict(v: Vpc) -> dict[str, Any]:
    tables = []
    for rt in v.route_tables:
        # local routes are implicit; only a replaced local target (#21) is written
        routes = [_route_to_dict(r) for r in rt.routes if not (r.is_local and r.target is LOCAL)]
        td: dict[str, Any] = {"name": rt.name}
        if rt.gateways:
            td["gateways"] = [g.name for g in rt.gateways]
        td["routes"] = routes
        tables.append(td)
    nats = []
    for n in v.nat_gateways:
        nd: dict[str, Any] = {"name": n.name, "port": n.port, "mac": n.mac}
        if n.subnet is not None:
            nd["subnet"] = n.subnet.name
        if n.ip is not None:
            nd["ip"] = str(n.ip)
        if n.connectivity != "public":  # public is the default; it then needs its address
            nd["connectivity"] = n.connectivity
        if n.address is not None:
            nd["address"] = n.address.name
        if n.network_interface_id is not None:
            nd["network_interface_id"] = n.network_interface_id
        ident = n.network._tracking_ids().nat(n.name)
        if ident is not None and ident != plain_nat_identity(v.name, n.name):   # salted on a clash
            nd["tracking_id"] = ident
        nats.append(nd)
    endpoints = []
    for ep in v.endpoints:
        ed: dict[str, Any] = {"name": ep.name, "port": ep.port, "mac": ep.mac, "type": ep.endpoint_type}
        if ep.service is not None:
            ed["service"] = ep.service
        endpoints.append(ed)
    return {
        "name": v.name,
        "cidrs": [str(c) for c in v.cidrs],
        "main_route_table": v.main_route_table.name,
        "default_security_group": v.default_security_group.name,
        "default_network_acl": v.default_network_acl.name,
        "subnets": [_subnet_to_dict(s) for s in v.subnets],
        "route_tables": tables,
        "internet_gateways": [{"name": g.name, "port": g.port, "mac": g.mac} for g in v.internet_gateways],
        "vpn_gateways": [{"name": g.name, "port": g.port, "mac": g.mac} for g in v.vpn_gateways],
        "nat_gateways": nats,
        "endpoints": endpoints,
        "security_groups": [_group_to_dict(g) for g in v.security_groups],
        "network_acls": [_acl_to_dict(a) for a in v.network_acls],
    }


def network_to_dict(net: Network) -> dict[str, Any]:
    """The canonical, complete document of ``net``: plain dicts, lists, str, int and bool.

    Two networks are equal (``Network.__eq__``) exactly when their documents are.
    """
    net._settle_identities()   # every ENI's and NAT gateway's tracking identity given: a salted one is written
    d: dict[str, Any] = {
        "fastvpc": SCHEMA_VERSION,
        "vpcs": [_vpc_to_dict(v) for v in net.vpcs],
        "peerings": [{"name": p.name, "vpcs": [p.requester.name, p.accepter.name], "port": p.port, "mac": p.mac}
                     for p in net.peerings],
        "transit_gateways": [{"name": t.name, "port": t.port, "mac": t.mac,
                              "attachments": [v.name for v in t.attachments]} for t in net.transit_gateways],
        "prefix_lists": [_prefix_list_to_dict(pl) for pl in net.prefix_lists],
        "addresses": [{"name": a.name, "public_ip": str(a.public_ip)} for a in net.addresses],
    }
    aliases = getattr(net, "aliases", None)
    if aliases:  # other names of objects (AWS instance ids, Name tags): only when there are some
        d["aliases"] = {k: list(v) for k, v in sorted(aliases.items())}
    return d


def _prefix_list_to_dict(pl: PrefixList) -> dict[str, Any]:
    d: dict[str, Any] = {"name": pl.name, "cidrs": [str(c) for c in pl.cidrs]}
    if pl.max_entries != max(1, len(pl.cidrs)):
        d["max_entries"] = pl.max_entries
    return d


def _yaml_module() -> Any:
    try:
        import yaml  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # pragma: no cover - exercised with a monkeypatched import
        raise ImportError("YAML topology files need the 'pyyaml' package: pip install pyyaml "
                          "(or pip install 'fastvpc[yaml]'); JSON files need nothing") from None
    return yaml


def _normalise_format(format: str | None, path: str | None = None) -> str:
    if not isinstance(format, str) or format.lower() not in _FORMATS:
        raise TopologyFileError(path or "<string>", "(format)", f"unknown topology file format "
                                f"{_show(format)}: use 'json' or 'yaml'", value=format)
    return _FORMATS[format.lower()]


def dumps(net: Network, format: str = "json") -> str:
    """``net`` as the text of a JSON or YAML topology file (ends with a newline)."""
    fmt = _normalise_format(format)
    doc = network_to_dict(net)
    if fmt == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    yaml = _yaml_module()
    text: str = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, allow_unicode=True, width=100)
    return text


def _format_for_path(path: str, format: str | None) -> str | None:
    if format is not None:
        return _normalise_format(format, path)
    return _EXTENSIONS.get(os.path.splitext(path)[1].lower())


def save(net: Network, path: str | os.PathLike[str], format: str | None = None) -> None:
    """Write ``net`` to ``path`` as JSON or YAML: ``format``, else by extension (.json, .yaml, .yml)."""
    p = os.fspath(path)
    fmt = _format_for_path(p, format)
    if fmt is None:
        raise TopologyFileError(p, "(file name)", f"cannot tell the format of {p!r} from its extension: name it "
                                ".json, .yaml or .yml, or pass format='json' or format='yaml'", value=p)
    text = dumps(net, fmt)
    Path(p).write_text(text, encoding="utf-8")


# =========================================================================== reading

_MISSING = object()


def _fmt_place(place: Place) -> str:
    out = ""
    for part in place:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if isinstance(part, str) and _encodable(part) and len(part) <= 80 else _show(part)
            out += f".{text}" if out else text
    return out or "(document)"


class _ShortRepr(reprlib.Repr):
    """repr() that formats only what is shown: containers cut after a few items and levels, strings and
    numbers cut before they are formatted (a value built from YAML aliases or a 5,000-digit integer
    must not be formatted whole just to be cut to 80 characters)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxtuple = self.maxlist = self.maxarray = self.maxdict = 6
        self.maxset = self.maxfrozenset = self.maxdeque = 6
        self.maxstring = self.maxother = 80
        self.maxlong = 40

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 128:  # about 39 digits: never convert the whole number to text
            return f"<an integer of about {int(x.bit_length() * 0.30103) + 1} digits>"
        return super().repr_int(x, level)

    def repr_str(self, x: str, level: int) -> str:
        return repr(x[:self.maxstring]) + ("..." if len(x) > self.maxstring else "")

    def repr_bytes(self, x: bytes, level: int) -> str:
        return repr(x[:self.maxstring]) + ("..." if len(x) > self.maxstring else "")


_SHORT = _ShortRepr()


def _show(value: Any) -> str:
    text = _SHORT.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _encodable(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (no lone surrogates)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Doc:
    """The document being read: its name, and the line of each place when known."""

    def __init__(self, source: str, lines: dict[Place, int] | None = None) -> None:
        self.source = source
        self.lines = lines or {}
        #: Ports written in the document: an object without one gets the lowest port that no
        #: object of the document claims, so explicit and generated ports never clash.
        self.explicit_ports: set[int] = set()
        self._next_auto = 0

    def auto_port(self) -> int:
        while self._next_auto in self.explicit_ports:
            self._next_auto += 1
        self._next_auto += 1
        return self._next_auto - 1

    def error(self, place: Place, message: str, value: Any = _MISSING) -> TopologyFileError:
        line = self.lines.get(place)
        if line is None:  # the nearest enclosing place with a known line
            for n in range(len(place) - 1, -1, -1):
                line = self.lines.get(place[:n])
                if line is not None:
                    break
        text = message if line is None else f"line {line}: {message}"
        err = TopologyFileError(self.source, _fmt_place(place), text,
                                value=None if value is _MISSING else value)
        err.line = line  # type: ignore[attr-defined]
        return err

    def fail(self, place: Place, message: str, value: Any = _MISSING) -> NoReturn:
        raise self.error(place, message, value)

    @contextlib.contextmanager
    def building(self, place: Place) -> Iterator[None]:
        """Wrap any TopologyError raised while building the element at ``place``."""
        try:
            yield
        except TopologyFileError:
            raise
        except TopologyError as exc:
            value = exc.value if exc.value is not None else _MISSING
            raise self.error(place, str(exc), value) from exc

    # typed getters ---------------------------------------------------------------
    def mapping(self, value: Any, place: Place, what: str, required: tuple[str, ...],
                optional: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(place, f"{what} must be a mapping (with keys {', '.join(required + optional)}), "
                             f"not {type(value).__name__} {_show(value)}", value)
        allowed = required + optional
        for key in value:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                self.fail(place + (key,) if isinstance(key, str) else place,
                          f"unknown key {key!r} in {what}{extra}; allowed: {', '.join(allowed)}", key)
        for key in required:
            if key not in value:
                self.fail(place, f"{what} is missing the required key {key!r}", key)
        return dict(value)

    def str_(self, value: Any, place: Place, what: str) -> str:
        if not isinstance(value, str):
            hint = " (quote it)" if isinstance(value, (int, float, bool)) or value is None else ""
            self.fail(place, f"{what} must be a string, not {type(value).__name__} {_show(value)}{hint}", value)
        return value

    def opt_str(self, d: Mapping[str, Any], key: str, place: Place, what: str) -> str | None:
        value = d.get(key)
        return None if value is None else self.str_(value, place + (key,), what)

    def int_(self, value: Any, place: Place, what: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(place, f"{what} must be an integer, not {type(value).__name__} {_show(value)}", value)
        return value

    def bool_(self, value: Any, place: Place, what: str) -> bool:
        if not isinstance(value, bool):
            self.fail(place, f"{what} must be true or false, not {type(value).__name__} {_show(value)}", value)
        return value

    def list_(self, value: Any, place: Place, what: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(place, f"{what} must be a list, not {type(value).__name__} {_show(value)}", value)
        return value

    def str_list(self, value: Any, place: Place, what: str) -> list[str]:
        items = self.list_(value, place, what)
        return [self.str_(v, place + (i,), f"{what} entry") for i, v in enumerate(items)]


_TOP_KEYS = ("fastvpc", "vpcs", "peerings", "transit_gateways", "prefix_lists", "addresses", "aliases")
_VPC_REQUIRED = ("name",)
_VPC_OPTIONAL = ("cidrs", "cidr", "main_route_table", "route_tables", "internet_gateways", "vpn_gateways",
                 "nat_gateways", "endpoints", "subnets", "default_security_group", "default_network_acl",
                 "security_groups", "network_acls")


def network_from_dict(d: Any, source: str = "<dict>") -> Network:
    """Build a ``Network`` from a document (the shape :func:`network_to_dict` writes).

    Raises :class:`fastvpc.TopologyFileError` naming ``source``, the place and the bad value.
    """
    return _build(d, _Doc(source))


def _build(d: Any, doc: _Doc) -> Network:
    try:
        return _build_document(d, doc)
    except RecursionError:  # a self-referencing document
        raise TopologyFileError(doc.source, "(document)", "the document refers to itself (or is nested too "
                                "deeply)", value=None) from None


def _build_document(d: Any, doc: _Doc) -> Network:
    top = doc.mapping(d, (), "the topology document", ("fastvpc",), _TOP_KEYS[1:])
    version = top["fastvpc"]
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        doc.fail(("fastvpc",), f"unsupported schema version {_show(version)}: this fastvpc reads "
                               f"'fastvpc: {SCHEMA_VERSION}'", version)
    net = Network()
    _collect_ports(top, doc.explicit_ports)
    vpc_docs = doc.list_(top.get("vpcs"), ("vpcs",), "vpcs")
    _reserve_tracking_ids(doc, net, vpc_docs)
    peering_docs = doc.list_(top.get("peerings"), ("peerings",), "peerings")
    tgw_docs = doc.list_(top.get("transit_gateways"), ("transit_gateways",), "transit_gateways")

    # 1. VPCs with all their CIDRs and route tables (empty: routes come last) -----------
    vpcs: dict[str, Vpc] = {}
    specs: list[tuple[Place, Vpc, dict[str, Any]]] = []
    for i, raw in enumerate(vpc_docs):
        place: Place = ("vpcs", i)
        vd = doc.mapping(raw, place, "a VPC", _VPC_REQUIRED, _VPC_OPTIONAL)
        vpc = _build_vpc(doc, net, vd, place)
        vpcs[vpc.name] = vpc
        specs.append((place, vpc, vd))

    def vpc_ref(value: Any, place: Place, what: str) -> Vpc:
        name = doc.str_(value, place, what)
        if name not in vpcs:
            known = ", ".join(vpcs) or "none"
            doc.fail(place, f"{what} {name!r} is not a VPC of this file (VPCs: {known})", name)
        return vpcs[name]

    # 2. peerings and transit gateways: routes may name them -----------------------------
    for i, raw in enumerate(peering_docs):
        place = ("peerings", i)
        pd = doc.mapping(raw, place, "a peering", ("vpcs",), ("name", "port", "mac"))
        pair = doc.list_(pd["vpcs"], place + ("vpcs",), "peering vpcs")
        if len(pair) != 2:
            doc.fail(place + ("vpcs",), f"a peering joins exactly two VPCs, not {len(pair)}: {_show(pair)}", pair)
        a = vpc_ref(pair[0], place + ("vpcs", 0), "peering VPC")
        b = vpc_ref(pair[1], place + ("vpcs", 1), "peering VPC")
        name = doc.opt_str(pd, "name", place, "peering name")
        port = _opt_port(doc, pd, place)
        mac = doc.opt_str(pd, "mac", place, "mac")
        with doc.building(place):
            net.add_peering(a, b, name, port=port, mac=mac)
    for i, raw in enumerate(tgw_docs):
        place = ("transit_gateways", i)
        td = doc.mapping(raw, place, "a transit gateway", (), ("name", "port", "mac", "attachments"))
        name = doc.opt_str(td, "name", place, "transit gateway name")
        port = _opt_port(doc, td, place)
        mac = doc.opt_str(td, "mac", place, "mac")
        with doc.building(place):
            tgw = net.add_transit_gateway(name, port=port, mac=mac)
        for j, ref in enumerate(doc.list_(td.get("attachments"), place + ("attachments",), "attachments")):
            vpc = vpc_ref(ref, place + ("attachments", j), "transit gateway attachment")
            with doc.building(place + ("attachments", j)):
                tgw.attach(vpc)

    # 3. inside each VPC: gateways, groups and NACLs, subnets and ENIs, then routes, then
    #    associations; group rules last, as they may name groups of peered VPCs -----------
    _build_prefix_lists(doc, net, top)
    _build_addresses(doc, net, top)
    for place, vpc, vd in specs:
        _build_vpc_contents(doc, net, vpc, vd, place)
    for place, vpc, vd in specs:
        _build_group_rules(doc, net, vpc, vd, place)

    # 4. aliases: another name (an instance id, a Name tag) -> the names of its objects --------
    if "aliases" in top:
        amap = doc.mapping(top["aliases"], ("aliases",), "aliases", (), tuple(
            k for k in top["aliases"] if isinstance(k, str)) if isinstance(top["aliases"], Mapping) else ())
        for key, names in amap.items():
            place = ("aliases", key)
            targets = doc.str_list(names, place, "alias")
            for j, name in enumerate(targets):
                if name not in net._by_name:
                    doc.fail(place + (j,), f"alias {key!r} names {name!r}, which is not an object of this file",
                             name)
            net.aliases[key] = targets
    return net


def _opt_port(doc: _Doc, d: Mapping[str, Any], place: Place) -> int:
    value = d.get("port")
    return doc.auto_port() if value is None else doc.int_(value, place + ("port",), "port")


def _collect_ports(top: Any, out: set[int]) -> None:
    """Every ``port`` written in the document (iterative; each container visited once, so
    YAML aliases cannot make it exponential)."""
    seen: set[int] = set()
    stack = [top]
    while stack:
        x = stack.pop()
        if not isinstance(x, (Mapping, list)) or id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, Mapping):
            port = x.get("port")
            if isinstance(port, int) and not isinstance(port, bool):
                out.add(port)
            stack.extend(x.values())
        else:
            stack.extend(x)


def _build_vpc(doc: _Doc, net: Network, vd: dict[str, Any], place: Place) -> Vpc:
    name = doc.str_(vd["name"], place + ("name",), "VPC name")
    if "cidrs" in vd and "cidr" in vd:
        doc.fail(place + ("cidr",), f"give either 'cidr' ({_show(vd['cidr'])}) or 'cidrs' "
                                   f"({_show(vd['cidrs'])}), not both", vd["cidr"])
    if "cidr" in vd:
        cidrs = [doc.str_(vd["cidr"], place + ("cidr",), "VPC cidr")]
    elif "cidrs" in vd:
        cidrs = doc.str_list(vd["cidrs"], place + ("cidrs",), "VPC cidrs")
    else:
        doc.fail(place, "a VPC is missing the required key 'cidrs'", "cidrs")
    if not cidrs:
        doc.fail(place + ("cidrs",), f"VPC {name} needs at least one CIDR", cidrs)
    tables = doc.list_(vd.get("route_tables"), place + ("route_tables",), "route_tables")
    table_specs: list[tuple[Place, str]] = []
    for j, raw in enumerate(tables):
        tp = place + ("route_tables", j)
        td = doc.mapping(raw, tp, "a route table", ("name",), ("routes", "gateways"))
        table_specs.append((tp, doc.str_(td["name"], tp + ("name",), "route table name")))
    main = doc.opt_str(vd, "main_route_table", place, "main_route_table")
    if main is not None and table_specs and main not in [n for _, n in table_specs]:
        doc.fail(place + ("main_route_table",), f"main_route_table {main!r} is not one of the route tables of "
                                                f"VPC {name} ({', '.join(n for _, n in table_specs)})", main)
    # The first table is created with the VPC (it is main until set_main_route_table below),
    # so the tables keep the file's order, and with it the route numbering.
    first = table_specs[0][1] if table_specs else main
    default_sg = doc.opt_str(vd, "default_security_group", place, "default_security_group")
    default_acl = doc.opt_str(vd, "default_network_acl", place, "default_network_acl")
    with doc.building(place):
        vpc = net.add_vpc(cidrs[0], name, main_route_table=first, default_security_group=default_sg,
                          default_network_acl=default_acl)
    for k, c in enumerate(cidrs[1:], start=1):
        with doc.building(place + ("cidrs", k)):
            vpc.add_cidr(c)
    for tp, tname in table_specs[1:]:
        with doc.building(tp):
            vpc.add_route_table(tname)
    if main is not None and main != vpc.main_route_table.name:
        with doc.building(place + ("main_route_table",)):
            vpc.set_main_route_table(net.find(main))
    return vpc


def _build_vpc_contents(doc: _Doc, net: Network, vpc: Vpc, vd: dict[str, Any], place: Place) -> None:
    tables = {rt.name: rt for rt in vpc.route_tables}

    for key, adder, what in (("internet_gateways", vpc.add_internet_gateway, "an internet gateway"),
                             ("vpn_gateways", vpc.add_vpn_gateway, "a VPN gateway")):
        for j, raw in enumerate(doc.list_(vd.get(key), place + (key,), key)):
            gp = place + (key, j)
            gd = doc.mapping(raw, gp, what, (), ("name", "port", "mac"))
            gname = doc.opt_str(gd, "name", gp, "name")
            port = _opt_port(doc, gd, gp)
            gmac = doc.opt_str(gd, "mac", gp, "mac")
            with doc.building(gp):
                adder(gname, port=port, mac=gmac)
    for j, raw in enumerate(doc.list_(vd.get("endpoints"), place + ("endpoints",), "endpoints")):
        ep = place + ("endpoints", j)
        ed = doc.mapping(raw, ep, "an endpoint", (), ("name", "port", "mac", "type", "service"))
        ename = doc.opt_str(ed, "name", ep, "name")
        etype = doc.opt_str(ed, "type", ep, "endpoint type") or "gateway"
        service = doc.opt_str(ed, "service", ep, "endpoint service")
        port = _opt_port(doc, ed, ep)
        emac = doc.opt_str(ed, "mac", ep, "mac")
        with doc.building(ep):
            vpc.add_endpoint(ename, endpoint_type=etype, service=service, port=port, mac=emac)

    _build_groups_and_acls(doc, vpc, vd, place)
    subnet_docs = doc.list_(vd.get("subnets"), place + ("subnets",), "subnets")
    associations: list[tuple[Place, Subnet, str]] = []
    for j, raw in enumerate(subnet_docs):
        sp = place + ("subnets", j)
        sd = doc.mapping(raw, sp, "a subnet", ("cidr",), ("name", "route_table", "gateway_mac", "enis",
                                                          "network_acl"))
        sname = doc.opt_str(sd, "name", sp, "subnet name")
        cidr = doc.str_(sd["cidr"], sp + ("cidr",), "subnet cidr")
        gmac = doc.opt_str(sd, "gateway_mac", sp, "gateway_mac")
        rt_name = doc.opt_str(sd, "route_table", sp, "route_table")
        if rt_name is not None and rt_name not in tables:
            doc.fail(sp + ("route_table",), f"route_table {rt_name!r} is not a route table of VPC {vpc.name} "
                                            f"({', '.join(tables)})", rt_name)
        with doc.building(sp):
            subnet = vpc.add_subnet(cidr, sname, gateway_mac=gmac)
        if rt_name is not None:
            associations.append((sp + ("route_table",), subnet, rt_name))
        _associate_acl(doc, subnet, sd, sp)
        for k, eraw in enumerate(doc.list_(sd.get("enis"), sp + ("enis",), "enis")):
            _build_eni(doc, subnet, eraw, sp + ("enis", k))

    for j, raw in enumerate(doc.list_(vd.get("nat_gateways"), place + ("nat_gateways",), "nat_gateways")):
        npl = place + ("nat_gateways", j)
        nd = doc.mapping(raw, npl, "a NAT gateway", (), ("name", "port", "mac", "subnet", "ip", "connectivity",
                                                         "address", "tracking_id", "network_interface_id"))
        nname = doc.opt_str(nd, "name", npl, "name")
        nmac = doc.opt_str(nd, "mac", npl, "mac")
        nip = doc.opt_str(nd, "ip", npl, "NAT gateway ip")
        conn = doc.opt_str(nd, "connectivity", npl, "connectivity")
        naddr = _address_ref(doc, net, nd, npl)
        nif = doc.opt_str(nd, "network_interface_id", npl, "network_interface_id")
        sub_name = doc.opt_str(nd, "subnet", npl, "NAT gateway subnet")
        nat_subnet: Subnet | None = None
        if sub_name is not None:
            nat_subnet = next((s for s in vpc.subnets if s.name == sub_name), None)
            if nat_subnet is None:
                doc.fail(npl + ("subnet",), f"subnet {sub_name!r} is not a subnet of VPC {vpc.name} "
                                            f"({', '.join(s.name for s in vpc.subnets) or 'none'})", sub_name)
        port = _opt_port(doc, nd, npl)
        with doc.building(npl):
            vpc.add_nat_gateway(nname, subnet=nat_subnet, port=port, address=naddr, connectivity=conn, ip=nip,
                                mac=nmac, network_interface_id=nif)

    for j, raw in enumerate(doc.list_(vd.get("route_tables"), place + ("route_tables",), "route_tables")):
        tp = place + ("route_tables", j)
        rt = tables[raw["name"]]  # shape checked in _build_vpc
        for k, rraw in enumerate(doc.list_(raw.get("routes"), tp + ("routes",), "routes")):
            _build_route(doc, net, rt, rraw, tp + ("routes", k))

    for ap, subnet, rt_name in associations:
        with doc.building(ap):
            subnet.associate(tables[rt_name])

    # gateway (edge) associations last: they check the table's routes (#41)
    gateways: dict[str, InternetGateway | VpnGateway] = {g.name: g for g in vpc.internet_gateways}
    gateways.update((g.name, g) for g in vpc.vpn_gateways)
    for j, raw in enumerate(doc.list_(vd.get("route_tables"), place + ("route_tables",), "route_tables")):
        tp = place + ("route_tables", j)
        rt = tables[raw["name"]]
        for k, gname in enumerate(doc.str_list(raw.get("gateways"), tp + ("gateways",), "gateways")):
            gpl = tp + ("gateways", k)
            if gname not in gateways:
                doc.fail(gpl, f"gateway {gname!r} is not an internet or VPN gateway of VPC {vpc.name} "
                              f"({', '.join(gateways) or 'none'})", gname)
            with doc.building(gpl):
                rt.associate_gateway(gateways[gname])


def _reserve_tracking_ids(doc: _Doc, net: Network, vpc_docs: list[Any]) -> None:
    """Give the file's ENIs and NAT gateways their tracking identities before any is built: a
    ``tracking_id`` as written (one salted on a clash keeps its identity), then the other names,
    ENIs first, in name order (the plain identity of each, as the writer saw it).  Only the
    ``tracking_id`` values are checked here; the shapes are checked where they are built."""
    explicit: dict[int, tuple[str, Place]] = {}
    plain_enis: list[tuple[str, Place]] = []
    plain_nats: list[tuple[str, str, Place]] = []     # (name, VPC name, place)
    ids = net._tracking_ids()

    def note(kind: str, what: str, d: Mapping[str, Any], place: Place) -> None:
        name, ident = d.get("name"), d["tracking_id"]
        tp = place + ("tracking_id",)
        if not isinstance(name, str):
            doc.fail(tp, f"{what} with a tracking_id needs its name (tracking_id {_show(ident)})", ident)
        if isinstance(ident, bool) or not isinstance(ident, int) or not 0 <= ident <= MAX_IDENTITY:
            doc.fail(tp, f"{what} {name}: tracking_id must be an integer in 0..{MAX_IDENTITY}, not "
                         f"{type(ident).__name__} {_show(ident)}", ident)
        if ident in explicit:
            doc.fail(tp, f"{what} {name}: tracking_id {ident} is also the tracking_id of {explicit[ident][0]} "
                         f"({_fmt_place(explicit[ident][1])})", ident)
        if (ids.get(name) if kind == "eni" else ids.nat(name)) is not None:
            return   # the name twice: refused where the second one is built
        explicit[ident] = (f"{what} {name}", place)
        if kind == "eni":
            ids.reserve(name, ident)
        else:
            ids.reserve_nat(name, ident)

    for i, vd in enumerate(vpc_docs):
        if not isinstance(vd, Mapping):
            continue
        subnets = vd.get("subnets")
        for j, sd in enumerate(subnets if isinstance(subnets, list) else ()):
            enis = sd.get("enis") if isinstance(sd, Mapping) else None
            for k, ed in enumerate(enis if isinstance(enis, list) else ()):
                if not isinstance(ed, Mapping):
                    continue
                if "tracking_id" in ed:
                    note("eni", "ENI", ed, ("vpcs", i, "subnets", j, "enis", k))
                elif isinstance(ed.get("name"), str):
                    plain_enis.append((ed["name"], ("vpcs", i, "subnets", j, "enis", k)))
        nats = vd.get("nat_gateways")
        for j, nd in enumerate(nats if isinstance(nats, list) else ()):
            if not isinstance(nd, Mapping):
                continue
            if "tracking_id" in nd:
                note("nat", "NAT gateway", nd, ("vpcs", i, "nat_gateways", j))
            elif isinstance(nd.get("name"), str) and isinstance(vd.get("name"), str):
                plain_nats.append((nd["name"], vd["name"], ("vpcs", i, "nat_gateways", j)))
    plain_enis.sort()
    plain_nats.sort()
    if explicit:   # none may hold what another object's plain identity is
        for what, name, ident, place in (*(("ENI", n, plain_identity(n), p) for n, p in plain_enis),
                                         *(("NAT gateway", n, plain_nat_identity(v, n), p) for n, v, p in plain_nats)):
            if ident in explicit and (ids.get(name) if what == "ENI" else ids.nat(name)) is None:
                owner, op = explicit[ident]
                doc.fail(op + ("tracking_id",), f"{owner}: tracking_id {ident} is the tracking identity of {what} "
                                                f"{name} ({_fmt_place(place)})", ident)
    for name, _ in plain_enis:
        ids.assign(name)
    for name, vpc_name, _ in plain_nats:
        ids.assign_nat(vpc_name, name)


def _build_eni(doc: _Doc, subnet: Subnet, raw: Any, place: Place) -> Eni:
    ed = doc.mapping(raw, place, "an ENI", ("ip",), ("name", "mac", "secondary_ips", "source_dest_check", "port",
                                                    "security_groups", "tracking", "address", "tracking_id"))
    name = doc.opt_str(ed, "name", place, "ENI name")
    ip = doc.str_(ed["ip"], place + ("ip",), "ENI ip")
    mac = doc.opt_str(ed, "mac", place, "ENI mac")
    seconds = doc.str_list(ed.get("secondary_ips"), place + ("secondary_ips",), "secondary_ips")
    sdc = ed.get("source_dest_check", True)
    sdc = doc.bool_(sdc, place + ("source_dest_check",), "source_dest_check")
    port = _opt_port(doc, ed, place)
    groups = _eni_groups(doc, subnet.vpc, ed, place)
    tracking = _eni_tracking(doc, ed, place)
    address = _address_ref(doc, subnet.network, ed, place)
    with doc.building(place):
        return subnet.add_eni(ip, name, mac=mac, secondary_ips=seconds, source_dest_check=sdc, port=port,
                              security_groups=groups, tracking=tracking, public_ip=address)


def _build_addresses(doc: _Doc, net: Network, top: Mapping[str, Any]) -> None:
    for i, raw in enumerate(doc.list_(top.get("addresses"), ("addresses",), "addresses")):
        place: Place = ("addresses", i)
        ad = doc.mapping(raw, place, "an Elastic IP", ("public_ip",), ("name",))
        name = doc.opt_str(ad, "name", place, "Elastic IP name")
        ip = doc.str_(ad["public_ip"], place + ("public_ip",), "public_ip")
        with doc.building(place):
            net.allocate_address(ip, name)


def _address_ref(doc: _Doc, net: Network, d: Mapping[str, Any], place: Place) -> ElasticIp | None:
    """The Elastic IP an ENI or NAT gateway names with ``address``: one of the file's ``addresses``."""
    name = doc.opt_str(d, "address", place, "address")
    if name is None:
        return None
    obj = net._by_name.get(name)
    if not isinstance(obj, ElasticIp):
        known = ", ".join(a.name for a in net.addresses) or "none"
        doc.fail(place + ("address",), f"address {name!r} is not an Elastic IP of this file (addresses: {known})",
                 name)
    if obj.association is not None:
        doc.fail(place + ("address",), f"address {name!r} is already associated with {obj.association.name}",
                 name)
    return obj


_TARGET_TYPES = (Eni, InternetGateway, VpnGateway, NatGateway, Endpoint, PeeringConnection, TransitGateway)


def _build_route(doc: _Doc, net: Network, rt: RouteTable, raw: Any, place: Place) -> None:
    rd = doc.mapping(raw, place, "a route", ("destination", "target"), ("origin", "prefix_list", "deleted_target"))
    dest = doc.str_(rd["destination"], place + ("destination",), "route destination")
    target = doc.str_(rd["target"], place + ("target",), "route target")
    origin = doc.opt_str(rd, "origin", place, "route origin") or "static"
    prefix_list = doc.opt_str(rd, "prefix_list", place, "prefix_list")
    deleted = doc.opt_str(rd, "deleted_target", place, "deleted_target")
    if origin not in Route.ORIGINS:
        doc.fail(place + ("origin",), f"route origin {origin!r} must be one of {', '.join(Route.ORIGINS)}", origin)
    low = target.lower()
    if low not in ("local", "blackhole"):
        try:
            obj = net.find(target)
        except KeyError:
            obj = None
        if obj is None:
            doc.fail(place + ("target",), f"route {dest} in {rt.name}: unknown target {target!r} (not the name of "
                                          "an ENI, gateway, endpoint, peering or transit gateway, nor local or "
                                          "blackhole)", target)
        if not isinstance(obj, _TARGET_TYPES):
            doc.fail(place + ("target",), f"route {dest} in {rt.name}: target {target!r} is a "
                                          f"{type(obj).__name__}, which cannot be a route target", target)
    if deleted is not None and low != "blackhole":
        doc.fail(place + ("deleted_target",), f"route {dest} in {rt.name}: deleted_target {deleted!r} is only "
                                              "meaningful on a blackhole route", deleted)
    if origin == "local":
        if prefix_list is not None:
            doc.fail(place + ("prefix_list",), f"local route {dest} in {rt.name} cannot have a prefix_list",
                     prefix_list)
        with doc.building(place):
            cidr = next((c for c in rt.vpc.cidrs if str(c) == dest.strip()), None)
            if cidr is None:
                doc.fail(place + ("destination",), f"route {dest} in {rt.name} has origin local but is not a CIDR "
                                                   f"of VPC {rt.vpc.name} ({', '.join(map(str, rt.vpc.cidrs))})",
                         dest)
            rt.replace_route(cidr, target)
        return
    with doc.building(place):
        route = rt.add_route(dest, target, origin=origin, prefix_list=prefix_list)
    if deleted is not None:
        route.deleted_target = deleted


# --------------------------------------------------------------------------- filters (schema)

def _build_prefix_lists(doc: _Doc, net: Network, top: Mapping[str, Any]) -> None:
    for i, raw in enumerate(doc.list_(top.get("prefix_lists"), ("prefix_lists",), "prefix_lists")):
        place: Place = ("prefix_lists", i)
        pd = doc.mapping(raw, place, "a prefix list", ("cidrs",), ("name", "max_entries"))
        name = doc.opt_str(pd, "name", place, "prefix list name")
        cidrs = doc.str_list(pd["cidrs"], place + ("cidrs",), "prefix list cidrs")
        mx = pd.get("max_entries")
        if mx is not None:
            mx = doc.int_(mx, place + ("max_entries",), "max_entries")
        with doc.building(place):
            net.add_prefix_list(cidrs, name, max_entries=mx)


def _build_groups_and_acls(doc: _Doc, vpc: Vpc, vd: Mapping[str, Any], place: Place) -> None:
    """The VPC's groups (rules come later: they may name groups of peered VPCs) and NACLs."""
    default_sg = vpc.default_security_group
    built = _groups_built(doc)
    for j, raw in enumerate(doc.list_(vd.get("security_groups"), place + ("security_groups",), "security_groups")):
        gp = place + ("security_groups", j)
        gd = doc.mapping(raw, gp, "a security group", (), ("name", "group_name", "description", "ingress",
                                                              "egress"))
        name = doc.opt_str(gd, "name", gp, "security group name")
        gname = doc.opt_str(gd, "group_name", gp, "group_name")
        desc = doc.opt_str(gd, "description", gp, "description")
        if name is not None and name == default_sg.name:
            if gname is not None and gname != "default":
                doc.fail(gp + ("group_name",), f"the default group {name} has group_name 'default', not "
                                               f"{gname!r}", gname)
            built[gp] = default_sg
            continue
        with doc.building(gp):
            built[gp] = vpc.add_security_group(name, group_name=gname, description=desc or "")
    default_acl = vpc.default_network_acl
    for j, raw in enumerate(doc.list_(vd.get("network_acls"), place + ("network_acls",), "network_acls")):
        ap = place + ("network_acls", j)
        ad = doc.mapping(raw, ap, "a network ACL", (), ("name", "entries"))
        name = doc.opt_str(ad, "name", ap, "network ACL name")
        if name is not None and name == default_acl.name:
            acl = default_acl
        else:
            with doc.building(ap):
                acl = vpc.add_network_acl(name)
        if "entries" in ad:  # given: exactly these entries (else AWS's defaults stay)
            acl.clear_entries()
            for k, eraw in enumerate(doc.list_(ad["entries"], ap + ("entries",), "entries")):
                ep = ap + ("entries", k)
                ed = doc.mapping(eraw, ep, "a network ACL entry", ("number", "direction", "action", "protocol",
                                                                   "cidr"), ("ports", "icmp"))
                proto, ports = _match_from_doc(doc, ed, ep)
                with doc.building(ep):
                    acl.add_entry(ed["number"], ed["direction"], ed["action"], proto, ports, ed["cidr"])


def _match_from_doc(doc: _Doc, d: Mapping[str, Any], place: Place) -> tuple[Any, Any]:
    """(protocol, ports) for the API from a rule's or entry's ``protocol``/``ports``/``icmp``."""
    proto = d["protocol"]
    if isinstance(proto, bool) or not isinstance(proto, (str, int)):
        doc.fail(place + ("protocol",), f"protocol must be a name (tcp, udp, icmp, all) or a number, not "
                                        f"{type(proto).__name__} {_show(proto)}", proto)
    if "ports" in d and "icmp" in d:
        doc.fail(place + ("icmp",), "give either 'ports' (TCP/UDP) or 'icmp' (ICMP type and code), not both",
                 d["icmp"])
    key = "icmp" if "icmp" in d else "ports"
    value = d.get(key)
    if isinstance(value, list):
        if len(value) != 2:
            doc.fail(place + (key,), f"{key} must be a [from, to] pair, not {_show(value)}", value)
        value = (value[0], value[1])
    if key == "icmp" and value is not None:
        low = str(proto).lower()
        if low not in ("icmp", "1"):
            doc.fail(place + ("icmp",), f"'icmp' is only for protocol icmp, not {proto!r}", d["icmp"])
    elif key == "ports" and value is not None and str(proto).lower() in ("icmp", "1"):
        doc.fail(place + ("ports",), "an ICMP rule takes 'icmp: [type, code]', not 'ports'", d["ports"])
    return proto, value


def _build_group_rules(doc: _Doc, net: Network, vpc: Vpc, vd: Mapping[str, Any], place: Place) -> None:
    for j, raw in enumerate(doc.list_(vd.get("security_groups"), place + ("security_groups",), "security_groups")):
        gp = place + ("security_groups", j)
        group = _groups_built(doc)[gp]  # shape checked in _build_groups_and_acls
        for direction in ("ingress", "egress"):
            if direction not in raw:
                continue  # not given: AWS's defaults stay
            group.clear_rules(direction)
            for k, rraw in enumerate(doc.list_(raw[direction], gp + (direction,), direction)):
                rp = gp + (direction, k)
                rd = doc.mapping(rraw, rp, "a security group rule", ("protocol",),
                                 ("ports", "icmp", "cidr", "cidrs", "group", "prefix_list"))
                proto, ports = _match_from_doc(doc, rd, rp)
                peers = [k2 for k2 in ("cidr", "cidrs", "group", "prefix_list") if k2 in rd]
                if len(peers) != 1:
                    doc.fail(rp, "a rule needs exactly one peer: cidr, cidrs, group or prefix_list"
                                 + (f" (it has {', '.join(peers)})" if peers else ""), peers)
                kind = peers[0]
                if kind == "cidrs":
                    peer: Any = doc.str_list(rd["cidrs"], rp + ("cidrs",), "rule cidrs")
                elif kind == "cidr":
                    peer = doc.str_(rd["cidr"], rp + ("cidr",), "rule cidr")
                else:
                    ref = doc.str_(rd[kind], rp + (kind,), f"rule {kind}")
                    want = SecurityGroup if kind == "group" else PrefixList
                    try:
                        peer = net.find(ref)
                    except KeyError:
                        peer = None
                    if not isinstance(peer, want):
                        what = "security group" if kind == "group" else "prefix list"
                        doc.fail(rp + (kind,), f"{ref!r} is not a {what} of this file", ref)
                with doc.building(rp):
                    group.authorize(direction, proto, ports, peer, allow_stale=True)


def _groups_built(doc: _Doc) -> dict[Place, SecurityGroup]:
    """The group built for each place of the document (rules are added in a later pass)."""
    built: dict[Place, SecurityGroup] | None = getattr(doc, "_filter_groups", None)
    if built is None:
        built = {}
        doc._filter_groups = built  # type: ignore[attr-defined]
    return built


def _associate_acl(doc: _Doc, subnet: Subnet, sd: Mapping[str, Any], place: Place) -> None:
    acl_name = doc.opt_str(sd, "network_acl", place, "network_acl")
    if acl_name is None:
        return
    acl = next((a for a in subnet.vpc.network_acls if a.name == acl_name), None)
    if acl is None:
        doc.fail(place + ("network_acl",), f"network_acl {acl_name!r} is not a network ACL of VPC "
                                           f"{subnet.vpc.name} ({', '.join(a.name for a in subnet.vpc.network_acls)})",
                 acl_name)
    with doc.building(place + ("network_acl",)):
        subnet.associate_network_acl(acl)


def _eni_groups(doc: _Doc, vpc: Vpc, ed: Mapping[str, Any], place: Place) -> list[SecurityGroup] | None:
    if "security_groups" not in ed:
        return None
    names = doc.str_list(ed["security_groups"], place + ("security_groups",), "security_groups")
    groups = {g.name: g for g in vpc.security_groups}
    out = []
    for k, n in enumerate(names):
        if n not in groups:
            doc.fail(place + ("security_groups", k), f"security group {n!r} is not a group of VPC {vpc.name} "
                                                     f"({', '.join(groups)})", n)
        out.append(groups[n])
    return out


def _eni_tracking(doc: _Doc, ed: Mapping[str, Any], place: Place) -> Tracking | None:
    if ed.get("tracking") is None:
        return None
    fields = tuple(Tracking().to_dict())
    td = doc.mapping(ed["tracking"], place + ("tracking",), "ENI tracking", (), fields)
    values = {k: doc.int_(v, place + ("tracking", k), f"tracking {k}") for k, v in td.items()}
    with doc.building(place + ("tracking",)):
        return Tracking(**values)


# --------------------------------------------------------------------------- parsing

def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _line_text(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def _parse_json(text: str, source: str) -> tuple[Any, _Doc]:
    doc = _Doc(source)
    try:
        data = json.loads(text, object_pairs_hook=_json_pairs)
    except json.JSONDecodeError as exc:
        near = _line_text(text, exc.lineno)
        err = TopologyFileError(source, f"line {exc.lineno}, column {exc.colno}",
                                f"invalid JSON: {exc.msg} (in {near[:80]!r})", value=near)
        err.line = exc.lineno  # type: ignore[attr-defined]
        raise err from None
    except _DuplicateKey as exc:
        raise TopologyFileError(source, "(document)", f"key {exc.key!r} appears twice in one JSON object",
                                value=exc.key) from None
    except RecursionError:
        raise TopologyFileError(source, "(document)", "JSON nested too deeply", value=None) from None
    except ValueError as exc:  # an integer literal past Python's int/str conversion limit (4300 digits)
        m = re.search(r"\d{%d,}" % _MAX_INT_DIGITS, text)
        line = text.count("\n", 0, m.start()) + 1 if m else None
        where = f"line {line}" if line else "(document)"
        err = TopologyFileError(source, where, f"an integer of {len(m.group()) if m else 'too many'} digits "
                                f"(at most {_MAX_INT_DIGITS} are read): {str(exc)[:80]}", value=None)
        err.line = line  # type: ignore[attr-defined]
        raise err from None
    return data, doc


def _parse_yaml(text: str, source: str) -> tuple[Any, _Doc]:
    yaml = _yaml_module()
    lines: dict[Place, int] = {}
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, _Doc(source)
            _yaml_lines(node, (), lines, source, _YamlWalk(), node.start_mark.line + 1)
            try:
                data = loader.construct_document(node)
            except yaml.YAMLError:
                raise
            except (ValueError, ArithmeticError, LookupError, AttributeError, TypeError) as exc:
                # PyYAML's constructors raise these for explicitly tagged scalars they cannot read
                # (``!!int _``: IndexError, ``!!bool ""``: KeyError, ``!!timestamp x``: AttributeError,
                # a 13th month: ValueError); name the scalar and its line
                raise _yaml_bad_scalar(node, source, exc) from None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        col = mark.column + 1 if mark is not None else None
        near = _line_text(text, line) if line else ""
        problem = exc.problem or exc.context or "syntax error"
        where = f"line {line}, column {col}" if line else "(document)"
        err = TopologyFileError(source, where, f"invalid YAML: {problem} (in {near[:80]!r})", value=near)
        err.line = line  # type: ignore[attr-defined]
        raise err from None
    except yaml.YAMLError as exc:
        raise TopologyFileError(source, "(document)", f"invalid YAML: {exc}", value=None) from None
    except RecursionError:
        raise TopologyFileError(source, "(document)", "YAML nested too deeply", value=None) from None
    return data, _Doc(source, lines)


def _yaml_bad_scalar(root: Any, source: str, exc: BaseException) -> TopologyFileError:
    """The error for a document whose construction failed with ``exc``: the first scalar that a fresh
    constructor cannot read, with its line, column, tag and text (the whole document when none is
    found alone)."""
    import yaml  # type: ignore[import-untyped,unused-ignore]

    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            try:
                yaml.constructor.SafeConstructor().construct_object(node, deep=True)
            except Exception as bad:  # noqa: BLE001 - any failure of PyYAML's constructor is the finding
                line, col = node.start_mark.line + 1, node.start_mark.column + 1
                tag = node.tag.replace("tag:yaml.org,2002:", "!!")
                err = TopologyFileError(source, f"line {line}, column {col}",
                                        f"invalid YAML value {_show(node.value)} for tag {tag} "
                                        f"({type(bad).__name__}: {str(bad)[:80]})", value=node.value)
                err.line = line  # type: ignore[attr-defined]
                return err
        elif isinstance(node, yaml.MappingNode):
            for knode, vnode in reversed(node.value):
                stack.extend((vnode, knode))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
    return TopologyFileError(source, "(document)", f"invalid YAML value ({type(exc).__name__}: "
                                                   f"{str(exc)[:120]})", value=None)


#: Nodes that YAML aliases may add to a document, in all (each use of an alias adds the nodes of what
#: it names).  A "billion laughs" of a few hundred bytes would otherwise expand to 10**9 values.
_ALIAS_LIMIT = 100_000
#: Longest integer literal read (Python's own limit for converting decimal text to int).
_MAX_INT_DIGITS = 4300
_YAML_INT_TAG = "tag:yaml.org,2002:int"


class _YamlWalk:
    """State of one walk over a composed YAML document: expanded size of each node, alias budget."""

    def __init__(self) -> None:
        self.size: dict[int, int | None] = {}  # None: being walked (a use of it then is a recursive alias)
        self.extra = 0


def _yaml_fail(source: str, place: Place, line: int, message: str, value: Any = None) -> NoReturn:
    err = TopologyFileError(source, _fmt_place(place), f"line {line}: {message}", value=value)
    err.line = line  # type: ignore[attr-defined]
    raise err


def _yaml_lines(node: Any, place: Place, out: dict[Place, int], source: str, walk: _YamlWalk,
                use_line: int) -> int:
    """Record the line of every place; refuse duplicate keys (YAML would keep the last silently),
    recursive aliases, aliases that add more than ``_ALIAS_LIMIT`` nodes and integers too long to read.
    Returns the node's expanded size.  ``use_line`` is the line where this node is used (for an alias,
    the line of the alias, not of its anchor).

    A node reached again through an alias is not walked again (linear in the document's size)."""
    import yaml  # type: ignore[import-untyped,unused-ignore]

    out[place] = node.start_mark.line + 1
    key_id = id(node)
    if key_id in walk.size:
        size = walk.size[key_id]
        if size is None:
            _yaml_fail(source, place, use_line, "recursive YAML alias (a value that contains itself)")
        walk.extra += size
        if walk.extra > _ALIAS_LIMIT:
            _yaml_fail(source, place, use_line, f"YAML aliases expand the document by more than {_ALIAS_LIMIT} "
                                                "values (an alias bomb?); write the values out instead")
        return size
    walk.size[key_id] = None
    size = 1
    if isinstance(node, yaml.MappingNode):
        keys_seen: set[Any] = set()
        for knode, vnode in node.value:
            key = knode.value if isinstance(knode, yaml.ScalarNode) else None
            line = knode.start_mark.line + 1
            if key is not None:
                if key in keys_seen:
                    _yaml_fail(source, place + (key,), line, f"key {_show(key)} appears twice", key)
                keys_seen.add(key)
                size += _yaml_lines(vnode, place + (key,), out, source, walk, line)
            else:
                size += _yaml_lines(knode, place, out, source, walk, line)
                size += _yaml_lines(vnode, place, out, source, walk, line)
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            size += _yaml_lines(child, place + (i,), out, source, walk, node.start_mark.line + 1)
    elif node.tag == _YAML_INT_TAG and len(node.value) > _MAX_INT_DIGITS:
        _yaml_fail(source, place, node.start_mark.line + 1,
                   f"an integer of {len(node.value)} digits (at most {_MAX_INT_DIGITS} are read)")
    walk.size[key_id] = size
    return size


def _check_text(data: Any, doc: _Doc) -> None:
    """Refuse strings (keys and values) that cannot be written back as UTF-8: lone surrogates, which
    JSON and YAML escapes (\\ud800) can produce.  ``save``/``show`` would fail on them later."""
    stack: list[tuple[Any, Place]] = [(data, ())]
    while stack:
        value, place = stack.pop()
        if isinstance(value, str):
            if not _encodable(value):
                doc.fail(place, f"{_show(value)} holds a lone surrogate (not a character, cannot be written "
                                "as UTF-8)", value)
        elif isinstance(value, Mapping):
            for k, v in value.items():
                if isinstance(k, str) and not _encodable(k):
                    doc.fail(place, f"key {_show(k)} holds a lone surrogate (not a character, cannot be "
                                    "written as UTF-8)", k)
                stack.append((v, place + (k,)))
        elif isinstance(value, list):
            stack.extend((v, place + (i,)) for i, v in enumerate(value))


def loads(text: str, format: str = "json", *, source: str = "<string>") -> Network:
    """Build a ``Network`` from the text of a JSON or YAML topology file."""
    fmt = _normalise_format(format)
    if not isinstance(text, str):
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise TopologyFileError(source, f"byte {exc.start}", "not UTF-8 text",
                                        value=bytes(text[exc.start:exc.start + 4])) from None
        else:
            raise TypeError(f"loads() wants the text of a topology file, not {type(text).__name__}")
    data, doc = _parse_json(text, source) if fmt == "json" else _parse_yaml(text, source)
    _check_text(data, doc)
    return _build(data, doc)


def load(path: str | os.PathLike[str], format: str | None = None) -> Network:
    """Read a JSON or YAML topology file (by ``format``, else extension, else content)."""
    p = os.fspath(path)
    fmt = _format_for_path(p, format)
    try:
        raw = Path(p).read_bytes()
    except OSError as exc:
        raise TopologyFileError(p, "(file)", f"cannot read the file: {exc.strerror or exc}", value=p) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TopologyFileError(p, f"byte {exc.start}", "not UTF-8 text",
                                value=raw[exc.start:exc.start + 4]) from None
    if fmt is None:
        fmt = "json" if text.lstrip().startswith(("{", "[")) else "yaml"
    return loads(text, fmt, source=p)
