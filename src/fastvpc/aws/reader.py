"""Reading a folder of ``aws ec2 describe-*`` JSON: which files, which keys, de-duplication.

The top-level key of each file names the describe call (``Vpcs``, ``Subnets`` ...); file
names do not matter.  Only regular files are opened (a FIFO or device named ``*.json``
would block or never end).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from fastvpc.aws.report import ImportReport

__all__ = ["ID_FIELDS", "MODELLED_KEYS", "NOT_MODELLED_KEYS", "SILENT_KEYS", "Reader"]


# --------------------------------------------------------------------------- describe keys

#: Keys fastvpc reads.
MODELLED_KEYS = (
    "Vpcs", "Subnets", "InternetGateways", "VpnGateways", "NatGateways", "VpcEndpoints",
    "TransitGateways", "TransitGatewayVpcAttachments", "TransitGatewayAttachments",
    "VpcPeeringConnections", "PrefixLists", "NetworkInterfaces", "Reservations", "RouteTables",
    "SecurityGroups", "NetworkAcls", "Addresses",
)

#: Keys that are understood and deliberately not modelled: one summary line each.
NOT_MODELLED_KEYS: dict[str, str] = {
    "CustomerGateways": "customer gateways: beyond the VPN gateway, not modelled",
    "VpnConnections": "VPN connections: beyond the VPN gateway, not modelled",
    "TransitGatewayRouteTables": "transit gateway route tables: the TGW's own forwarding is not modelled",
    "TransitGatewayPropagations": "transit gateway propagations: the TGW's own forwarding is not modelled",
    "TransitGatewayStaticRoutes": "transit gateway static routes: the TGW's own forwarding is not modelled",
    "TransitGatewayPeeringAttachments": "transit gateway peerings: not modelled",
    "AvailabilityZones": "availability zones: not needed for forwarding",
    "DhcpOptions": "DHCP option sets: not needed for forwarding",
    "Tags": "tags: not needed for forwarding",
    "Hosts": "dedicated hosts: not needed for forwarding",
    "InstanceStatuses": "instance statuses: not needed for forwarding",
    "PlacementGroups": "placement groups: not needed for forwarding",
    "MovingAddressStatuses": "moving address statuses: not needed for forwarding",
    "Instances": "ClassicLink instances: EC2-Classic is not modelled",
    "DBInstances": "RDS instances: their ENIs are imported from NetworkInterfaces when present",
    "DomainStatusList": "Elasticsearch domains: their ENIs are imported from NetworkInterfaces when present",
    "LoadBalancers": "load balancers: their ENIs are imported from NetworkInterfaces when present",
    "LoadBalancerAttributes": "load balancer attributes: not modelled",
    "LoadBalancerListeners": "load balancer listeners: not modelled",
    "LoadBalancerTargetHealth": "load balancer target health: not modelled",
    "TargetGroups": "target groups: not modelled",
    "VpcEndpointServices": "endpoint service catalogue: not needed for forwarding",
    "ServiceDetails": "endpoint service catalogue: not needed for forwarding",
    "ServiceNames": "endpoint service catalogue: not needed for forwarding",
    "EgressOnlyInternetGateways": "egress-only internet gateways: IPv6 only, not modelled",
    "ManagedPrefixLists": "managed prefix list metadata (no CIDRs): use describe-prefix-lists output",
    "NetworkFirewalls": "Network Firewall: not modelled",
}

#: Pagination and metadata keys, ignored silently.
SILENT_KEYS = frozenset({"NextToken", "ResponseMetadata", "Marker", "NextMarker"})

#: The id field of each modelled key's elements (for de-duplication across files).
ID_FIELDS: dict[str, str] = {
    "Vpcs": "VpcId", "Subnets": "SubnetId", "InternetGateways": "InternetGatewayId",
    "VpnGateways": "VpnGatewayId", "NatGateways": "NatGatewayId", "VpcEndpoints": "VpcEndpointId",
    "Addresses": "PublicIp",  # EC2-Classic addresses have no AllocationId; every address has its PublicIp
    "TransitGateways": "TransitGatewayId", "TransitGatewayVpcAttachments": "TransitGatewayAttachmentId",
    "TransitGatewayAttachments": "TransitGatewayAttachmentId",
    "VpcPeeringConnections": "VpcPeeringConnectionId", "PrefixLists": "PrefixListId",
    "NetworkInterfaces": "NetworkInterfaceId", "Reservations": "ReservationId", "RouteTables": "RouteTableId",
    "SecurityGroups": "GroupId", "NetworkAcls": "NetworkAclId",
}

#: Route target fields, in the order they are looked at.
ROUTE_TARGET_FIELDS = (
    "GatewayId", "NatGatewayId", "TransitGatewayId", "VpcPeeringConnectionId", "NetworkInterfaceId",
    "InstanceId", "EgressOnlyInternetGatewayId", "CarrierGatewayId", "LocalGatewayId", "CoreNetworkArn",
)

#: Route origins and their precedence when several routes of a table share a destination.
ORIGIN_RANK = {"static": 0, "prefix-list": 1, "propagated": 2}
_AWS_ORIGINS = {"CreateRouteTable": "local", "CreateRoute": "static", "EnableVgwRoutePropagation": "propagated"}

#: ENI interface types that are a VM's own interface; others are service-managed.
VM_INTERFACE_TYPES = frozenset({"", "interface", "efa", "efa-only", "trunk", "branch"})

_Item = tuple[dict[str, Any], str]  # (element, file)


def _state(obj: dict[str, Any]) -> str | None:
    st = obj.get("Status", obj.get("State"))
    if isinstance(st, dict):
        st = st.get("Code", st.get("Name"))
    return st if isinstance(st, str) else None


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


# --------------------------------------------------------------------------- reading files

def _root(folder: Path) -> Path:
    """The folder to read: ``aws_configs/`` inside a Batfish snapshot, else the folder itself."""
    inner = folder / "aws_configs"
    return inner if inner.is_dir() else folder


def _not_regular_why(path: Path) -> str:
    """'' for a regular file (following symlinks), else why it is not read: never a FIFO, socket or device,
    which could block."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:      # a dangling link, a link loop, no permission on the way
        return f"cannot be opened ({exc.strerror or exc}): not read"
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return "a folder, not a describe-* file: not read"
    return "not a regular file (a FIFO, socket or device): not read"


def _json_files(root: Path, report: ImportReport | None = None) -> list[Path]:
    if not root.is_dir():
        why = _not_regular_why(root)
        if not why:
            return [root]
        if report is not None:
            report.add(root.name, root.name, "skipped", why)
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        # a folder named like a describe file (Subnets.json/) is reported, not walked into
        for dn in [d for d in dirnames if d.lower().endswith(".json")]:
            dirnames.remove(dn)
            if report is not None:
                report.add(dn, str((Path(dirpath) / dn).relative_to(root)), "skipped",
                           "a folder, not a describe-* file: not read")
        for fn in sorted(filenames):
            if fn.lower().endswith(".json"):
                path = Path(dirpath) / fn
                why = _not_regular_why(path)
                if not why:
                    out.append(path)
                elif report is not None:
                    report.add(fn, str(path.relative_to(root)), "skipped", why)
    return out


class Reader:
    """Loads every describe-* file and groups elements by key, de-duplicated by id."""

    def __init__(self, folder: Path, report: ImportReport) -> None:
        self.report = report
        self.items: dict[str, list[_Item]] = {k: [] for k in MODELLED_KEYS}
        self.not_modelled: dict[str, list[tuple[int, str]]] = {}
        self._seen: dict[tuple[str, str], dict[str, Any]] = {}
        root = _root(folder)
        base = root if root.is_dir() else root.parent
        for path in _json_files(root, report):
            rel = str(path.relative_to(base)) if path != base else path.name
            report.files.append(rel)
            self._load(path, rel)

    def _load(self, path: Path, rel: str) -> None:
        rep = self.report
        try:
            with open(path, "rb") as fh:
                doc = json.loads(fh.read().decode("utf-8-sig"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            rep.add(path.name, rel, "skipped", f"file is not readable JSON ({type(exc).__name__}: {exc})")
            return
        if not isinstance(doc, dict):
            rep.add(path.name, rel, "skipped", f"top level is a JSON {type(doc).__name__}, not an object "
                    "with a describe-* key")
            return
        for key, value in doc.items():
            if key in SILENT_KEYS:
                continue
            if key in self.items:
                if not isinstance(value, list):
                    rep.add(key, rel, "skipped", f"{key} is a JSON {type(value).__name__}, not a list")
                    continue
                for el in value:
                    self._add(key, el, rel)
            elif key in NOT_MODELLED_KEYS:
                n = len(value) if isinstance(value, (list, dict)) else 1
                self.not_modelled.setdefault(key, []).append((n, rel))
            else:
                n = len(value) if isinstance(value, (list, dict)) else 1
                rep.add(key, rel, "not modelled", f"unknown describe-* key {key!r} ({n} elements) ignored")

    def _add(self, key: str, el: Any, rel: str) -> None:
        if not isinstance(el, dict):
            self.report.add(key, rel, "skipped", f"an element of {key} is a JSON {type(el).__name__}, not an object")
            return
        idf = ID_FIELDS[key]
        ident = el.get(idf)
        if not isinstance(ident, str) or not ident:
            if key == "Reservations":  # ids are optional there; instances carry their own
                self.items[key].append((el, rel))
                return
            self.report.add(key, rel, "skipped", f"an element of {key} has no {idf}" if ident is None or ident == ""
                            else f"an element of {key} has {idf} {ident!r}, not an id string")
            return
        prev = self._seen.get((key, ident))
        if prev is not None:
            # The same object seen from two accounts (a peering, a TGW attachment) or listed twice.
            # Keep the first copy unless its state differs: then the active/available copy wins.
            s_old, s_new = _state(prev), _state(el)
            if s_old != s_new:
                if s_new in ("active", "available", "attached") and s_old not in ("active", "available", "attached"):
                    self.items[key] = [(el, rel) if it[0] is prev else it for it in self.items[key]]
                    self._seen[(key, ident)] = el
                self.report.add(ident, rel, "note", f"{key}: {ident} appears in several files with states "
                                f"{s_old!r} and {s_new!r}: the {_state(self._seen[(key, ident)])!r} copy is used")
            elif el != prev and any(e is prev and r == rel for e, r in self.items[key]):
                # listed twice in one file with different content (a hand-edited file): the first copy is used, and
                # the report says so rather than dropping the other without a word.  (Copies in two files are two
                # accounts' views of one object, which differ in tags and options as a matter of course.)
                self.report.add(ident, rel, "note", f"{key}: {ident} is listed twice in this file with different "
                                "content: the first copy is used, the second is not")
            return
        self._seen[(key, ident)] = el
        self.items[key].append((el, rel))

    def summarise_not_modelled(self) -> None:
        for key, seen in sorted(self.not_modelled.items()):
            total = sum(n for n, _ in seen)
            if not total:
                continue
            files = sorted({f for _, f in seen})
            where = files[0] if len(files) == 1 else f"{len(files)} files"
            self.report.add(key, where, "not modelled", f"{total} element(s): {NOT_MODELLED_KEYS[key]}")


_Reader = Reader  # the name the importer has always used
