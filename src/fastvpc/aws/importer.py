"""Import ``aws ec2 describe-*`` JSON into a :class:`fastvpc.Network`.

The input is laid out as Batfish stores it: one JSON file per describe call, the
**top-level key** names the call (``Vpcs``, ``Subnets``, ``RouteTables`` ...), file
names do not matter.  The folder may be a single region folder, hold region folders
or ``accounts/<ID>/<REGION>/`` folders, or be a Batfish snapshot with ``aws_configs/``
inside (then only ``aws_configs/`` is read).  Everything found goes into one
``Network``: VPC, subnet and ENI ids are unique across regions and accounts.

Objects are named by their AWS ids (``vpc-...``, ``subnet-...``, ``rtb-...``,
``eni-...``, ``igw-...``, ``vgw-...``, ``nat-...``, ``tgw-...``, ``pcx-...``,
``vpce-...``); ENIs keep their real MACs.

Real account data breaks fastvpc's validation in places.  The import never stops on
it: the offending element is skipped (or, for a route, turned into a blackhole) and a
line is added to the :class:`ImportReport` saying what and why.  See
``docs/aws-import.md`` for every decision.

Usage::

    net = fv.from_aws("snapshot/")                  # the Network
    imp = fv.from_aws("snapshot/", report=True)     # AwsImport: .network, .report
    print(imp.report)
"""

from __future__ import annotations

import ipaddress
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, overload

from fastvpc.aws.reader import (
    ID_FIELDS,
    ORIGIN_RANK,
    ROUTE_TARGET_FIELDS,
    VM_INTERFACE_TYPES,
    _AWS_ORIGINS,
    _d,
    _Item,
    _l,
    _Reader,
    _s,
)
from fastvpc.aws.filters import FilterImporter
from fastvpc.aws.report import AwsImport, ImportReport, ReportEntry
from fastvpc.errors import TopologyError, TopologyFileError
from fastvpc.topology import (
    BLACKHOLE,
    LOCAL,
    ElasticIp,
    Eni,
    InternetGateway,
    NatGateway,
    Network,
    PeeringConnection,
    Route,
    RouteTable,
    Subnet,
    Target,
    TransitGateway,
    Vpc,
    VpnGateway,
    int_to_mac,
    mac_to_int,
)

__all__ = ["AwsImport", "ImportReport", "ReportEntry", "from_aws", "import_aws"]


# --------------------------------------------------------------------------- the importer

def _cidr(value: Any) -> ipaddress.IPv4Network | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.IPv4Network(value.strip(), strict=False)
    except ValueError:
        return None


class _Importer:
    def __init__(self, folder: Path, service_enis: str) -> None:
        if service_enis not in ("eni", "skip"):
            raise ValueError(f"service_enis={service_enis!r} must be 'eni' or 'skip'")
        self.service_enis = service_enis
        self.report = ImportReport(str(folder))
        self.reader = _Reader(folder, self.report)
        self.net = Network()
        self.instances: dict[str, list[str]] = {}
        self._inst_enis: dict[str, list[tuple[int, str]]] = {}
        self.counts: Counter[str] = Counter()
        self.data_macs: set[int] = set()
        self.prefix_lists: dict[str, list[ipaddress.IPv4Network]] = {}
        self.eni_items: list[_Item] = []
        self.filters = FilterImporter(self)
        #: ENI id -> (address, file) for Addresses.json associations, applied when the ENI is imported
        self.eip_for_eni: dict[str, tuple[ElasticIp, str]] = {}
        #: the ENI id of each NAT gateway's interface -> the NAT gateway's name
        self.nat_enis: dict[str, str] = {}

    # helpers ---------------------------------------------------------------
    def add(self, element: str, file: str, status: str, why: str) -> None:
        self.report.add(element, file, status, why)

    def vpc(self, vpc_id: Any) -> Vpc | None:
        obj = self._find(vpc_id)
        return obj if isinstance(obj, Vpc) else None

    def _find(self, name: Any) -> Any:
        if not isinstance(name, str):
            return None
        try:
            return self.net.find(name)
        except KeyError:
            return None

    def items(self, key: str) -> list[_Item]:
        return self.reader.items[key]

    # the passes, in dependency order ------------------------------------------
    def run(self) -> AwsImport:
        self.collect_enis()
        self.prefix_lists_pass()
        self.vpcs()
        self.subnets()
        self.internet_gateways()
        self.vpn_gateways()
        self.addresses()
        self.nat_gateways()
        self.endpoints()
        self.transit_gateways()
        self.peerings()
        self.filters.security_groups()
        self.enis()
        self.filters.security_group_rules()
        self.route_tables()
        self.filters.network_acls()
        self.filters.summarise()
        self.reader.summarise_not_modelled()
        net = self.net
        n_routes = sum(len(rt.routes) for rt in net.route_tables)
        self.report.counts = {
            "VPCs": len(net.vpcs), "subnets": len(net.subnets), "route tables": len(net.route_tables),
            "routes": n_routes, "ENIs": len(net.enis),
            "internet gateways": sum(len(v.internet_gateways) for v in net.vpcs),
            "VPN gateways": sum(len(v.vpn_gateways) for v in net.vpcs),
            "NAT gateways": sum(len(v.nat_gateways) for v in net.vpcs),
            "Elastic IPs": len(net.addresses),
            "public IPs on ENIs": sum(1 for e in net.enis if e.public_ip is not None),
            "gateway route tables": sum(1 for rt in net.route_tables if rt.gateways),
            "endpoints": sum(len(v.endpoints) for v in net.vpcs),
            "transit gateways": len(net.transit_gateways), "peerings": len(net.peerings),
            "prefix lists": len(self.prefix_lists),
            "security groups": sum(len(v.security_groups) for v in net.vpcs),
            "security group rules": sum(len(g.ingress) + len(g.egress) for v in net.vpcs for g in v.security_groups),
            "network ACLs": sum(len(v.network_acls) for v in net.vpcs),
            "NACL entries": sum(len(a.entries) for v in net.vpcs for a in v.network_acls),
        }
        return AwsImport(net, self.report, self.instances, self.name_tags())

    def name_tags(self) -> dict[str, str]:
        """AWS id -> ``Name`` tag of every element (and instance) that has one."""
        out: dict[str, str] = {}

        def tag(el: dict[str, Any]) -> str:
            for t in _l(el.get("Tags")) + _l(el.get("TagSet")):
                if isinstance(t, dict) and t.get("Key") == "Name" and isinstance(t.get("Value"), str):
                    return str(t["Value"]).strip()
            return ""

        for key, items in self.reader.items.items():
            for el, _ in items:
                els = [i for i in _l(el.get("Instances")) if isinstance(i, dict)] if key == "Reservations" else [el]
                for e in els:
                    idf = "InstanceId" if key == "Reservations" else ID_FIELDS[key]
                    ident = _s(e.get("AllocationId")) or _s(e.get(idf)) if key == "Addresses" else _s(e.get(idf))
                    name = tag(e)
                    if ident and name:
                        out[ident] = name
        return out

    # ENIs from NetworkInterfaces and Reservations (collected first: their MACs steer gateway MACs)
    def collect_enis(self) -> None:
        seen: set[str] = set()
        for el, rel in self.items("NetworkInterfaces"):
            seen.add(el["NetworkInterfaceId"])
            self.eni_items.append((el, rel))
            inst = _d(el.get("Attachment")).get("InstanceId") if isinstance(el.get("Attachment"), dict) else None
            if isinstance(inst, str):
                idx = _d(el.get("Attachment")).get("DeviceIndex")
                self._inst_enis.setdefault(inst, []).append((idx if isinstance(idx, int) else 99,
                                                             el["NetworkInterfaceId"]))
        terminated = ("terminated", "shutting-down")
        for res, rel in self.items("Reservations"):
            for inst in _l(res.get("Instances")):
                if not isinstance(inst, dict):
                    continue
                iid = _s(inst.get("InstanceId")) or "instance"
                state = inst.get("State", {}).get("Name") if isinstance(inst.get("State"), dict) else None
                enis = [e for e in _l(inst.get("NetworkInterfaces")) if isinstance(e, dict)]
                missing = [e for e in enis if _s(e.get("NetworkInterfaceId")) not in seen]
                if state in terminated:
                    if missing:
                        self.add(iid, rel, "skipped", f"instance is {state}: its {len(missing)} ENI(s) not imported")
                    continue
                if not enis and inst.get("SubnetId") and inst.get("PrivateIpAddress"):
                    # an instance listed without its interfaces: one ENI named after the instance
                    synth = {"NetworkInterfaceId": iid, "SubnetId": inst.get("SubnetId"),
                             "VpcId": inst.get("VpcId"), "PrivateIpAddress": inst.get("PrivateIpAddress"),
                             "SourceDestCheck": inst.get("SourceDestCheck", True), "InterfaceType": "interface",
                             "_synthetic": True}
                    missing = [synth]
                    self.add(iid, rel, "changed", "instance lists no NetworkInterfaces: one ENI named after the "
                             "instance was imported from its SubnetId/PrivateIpAddress (MAC auto-assigned)")
                elif not enis:
                    self.add(iid, rel, "skipped", "instance has no network interface and no subnet "
                             f"(state {state or 'unknown'})")
                    continue
                for e in missing:
                    eid = _s(e.get("NetworkInterfaceId"))
                    if not eid or eid in seen:
                        continue
                    e = dict(e)
                    e.setdefault("SubnetId", inst.get("SubnetId"))
                    e.setdefault("VpcId", inst.get("VpcId"))
                    e.setdefault("InterfaceType", "interface")
                    seen.add(eid)
                    self.eni_items.append((e, rel))
                    idx = _d(e.get("Attachment")).get("DeviceIndex") if isinstance(e.get("Attachment"), dict) else None
                    self._inst_enis.setdefault(iid, []).append((idx if isinstance(idx, int) else 99, eid))
        for el, _ in self.eni_items:
            mac = el.get("MacAddress")
            if isinstance(mac, str):
                try:
                    self.data_macs.add(mac_to_int(mac.strip().lower()))
                except ValueError:
                    pass

    def prefix_lists_pass(self) -> None:
        for el, rel in self.items("PrefixLists"):
            pl = el["PrefixListId"]
            cidrs = el.get("Cidrs")
            if not isinstance(cidrs, list):
                self.add(pl, rel, "skipped", "prefix list has no Cidrs list: routes to it cannot be resolved")
                continue
            good = []
            for c in cidrs:
                n = _cidr(c)
                if n is None:
                    self.add(pl, rel, "changed", f"entry {c!r} is not an IPv4 CIDR: left out")
                else:
                    good.append(n)
            self.prefix_lists[pl] = good

    def vpcs(self) -> None:
        mains: dict[str, str] = {}
        for rt, _ in self.items("RouteTables"):
            for a in _l(rt.get("Associations")):
                if isinstance(a, dict) and a.get("Main") is True and self._assoc_active(a):
                    vid = rt.get("VpcId")
                    if isinstance(vid, str):
                        mains.setdefault(vid, rt["RouteTableId"])
        n_v6 = 0
        default_sgs, default_acls = self.filters.default_names()
        for el, rel in self.items("Vpcs"):
            vid = el["VpcId"]
            primary = _s(el.get("CidrBlock"))
            assoc = el.get("CidrBlockAssociationSet")
            blocks: list[str] = []
            if isinstance(assoc, list) and assoc:
                for a in assoc:
                    if not isinstance(a, dict):
                        continue
                    state = _d(a.get("CidrBlockState")).get("State") if isinstance(a.get("CidrBlockState"), dict) else "associated"
                    c = _s(a.get("CidrBlock"))
                    if state == "associated" and c:
                        blocks.append(c)
                    elif c:
                        self.add(vid, rel, "note", f"CIDR {c} is {state}, not associated: left out")
            elif primary:
                blocks = [primary]
            if primary in blocks:  # the primary block first
                blocks.remove(primary)
                blocks.insert(0, primary)
            if el.get("Ipv6CidrBlockAssociationSet"):
                n_v6 += 1
            vpc = None
            for i, c in enumerate(blocks):
                if vpc is None:
                    main = mains.get(vid)
                    try:
                        vpc = self.net.add_vpc(c, name=vid, main_route_table=main or f"{vid}-main",
                                               default_security_group=default_sgs.get(vid),
                                               default_network_acl=default_acls.get(vid))
                    except TopologyError as exc:
                        self.add(vid, rel, "changed" if i + 1 < len(blocks) else "skipped",
                                 f"CIDR {c} refused ({exc})")
                        continue
                    if main is None:
                        self.add(vid, rel, "note", f"no main route table in the data: a local-only main table "
                                 f"named {vid}-main was created")
                else:
                    try:
                        vpc.add_cidr(c)
                    except TopologyError as exc:
                        self.add(vid, rel, "changed", f"secondary CIDR {c} refused ({exc})")
            if vpc is None and not blocks:
                self.add(vid, rel, "skipped", "VPC has no associated IPv4 CIDR block")
        if n_v6:
            self.add("Vpcs", "", "not modelled", f"{n_v6} VPC(s) have IPv6 CIDR blocks: IPv6 is not modelled "
                     "(IPv6 frames are dropped NON_IPV4)")

    def _gateway_mac(self, cidr: ipaddress.IPv4Network) -> str:
        """Like fastvpc's automatic subnet gateway MAC, but avoiding every ENI MAC of the data."""
        used = self.net._macs
        for hi in range(0x06, 256, 8):
            v = (hi << 40) | int(cidr.network_address)
            mac = int_to_mac(v)
            if v not in self.data_macs and mac not in used:
                return mac
        n = 1
        while True:  # pragma: no cover - 32 collisions on one subnet address
            mac = int_to_mac((0x0E << 40) | n)
            if mac_to_int(mac) not in self.data_macs and mac not in used:
                return mac
            n += 1

    def subnets(self) -> None:
        for el, rel in self.items("Subnets"):
            sid = el["SubnetId"]
            vpc = self.vpc(el.get("VpcId"))
            if vpc is None:
                self.add(sid, rel, "skipped", f"its VPC {el.get('VpcId')!r} is not in the data")
                continue
            c = _cidr(el.get("CidrBlock"))
            if c is None:
                self.add(sid, rel, "skipped", f"CidrBlock {el.get('CidrBlock')!r} is not an IPv4 CIDR")
                continue
            try:
                vpc.add_subnet(c, name=sid, gateway_mac=self._gateway_mac(c))
            except TopologyError as exc:
                self.add(sid, rel, "skipped", str(exc))

    # targets ---------------------------------------------------------------
    def _attached_vpc(self, gid: str, rel: str, attachments: Any, states: tuple[str, ...],
                      unattached: str) -> Vpc | None:
        """The VPC of a gateway's first attachment in one of ``states``; reports and returns None if none."""
        atts = [a for a in _l(attachments) if isinstance(a, dict) and a.get("State") in states]
        if not atts:
            self.add(gid, rel, "skipped", unattached)
            return None
        vpc = self.vpc(atts[0].get("VpcId"))
        if vpc is None:
            self.add(gid, rel, "skipped", f"attached to VPC {atts[0].get('VpcId')!r}, which is not in the data")
        return vpc

    def _add_gateway(self, gid: str, rel: str, add: Callable[..., Any]) -> None:
        try:
            add(name=gid)
        except TopologyError as exc:
            self.add(gid, rel, "skipped", str(exc))

    def internet_gateways(self) -> None:
        for el, rel in self.items("InternetGateways"):
            gid = el["InternetGatewayId"]
            vpc = self._attached_vpc(gid, rel, el.get("Attachments"), ("available", "attached"),
                                     "not attached to a VPC: routes to it are blackholes")
            if vpc is not None:
                self._add_gateway(gid, rel, vpc.add_internet_gateway)

    def vpn_gateways(self) -> None:
        for el, rel in self.items("VpnGateways"):
            gid = el["VpnGatewayId"]
            if el.get("State", "available") != "available":
                self.add(gid, rel, "skipped", f"state {el.get('State')!r}, not available")
                continue
            vpc = self._attached_vpc(gid, rel, el.get("VpcAttachments"), ("attached",), "not attached to a VPC")
            if vpc is not None:
                self._add_gateway(gid, rel, vpc.add_vpn_gateway)

    def nat_gateways(self) -> None:
        for el, rel in self.items("NatGateways"):
            gid = el["NatGatewayId"]
            if el.get("State", "available") != "available":
                self.add(gid, rel, "skipped", f"state {el.get('State')!r}, not available: routes to it are blackholes")
                continue
            vpc = self.vpc(el.get("VpcId"))
            if vpc is None:
                self.add(gid, rel, "skipped", f"its VPC {el.get('VpcId')!r} is not in the data")
                continue
            subnet = self._find(el.get("SubnetId"))
            if not isinstance(subnet, Subnet) or subnet.vpc is not vpc:
                if el.get("SubnetId"):
                    self.add(gid, rel, "changed", f"subnet {el.get('SubnetId')!r} is not in the data: imported "
                             "without a subnet")
                subnet = None
            self._add_nat_gateway(gid, rel, el, vpc, subnet)

    def _add_nat_gateway(self, gid: str, rel: str, el: dict[str, Any], vpc: Vpc, subnet: Subnet | None) -> None:
        """One NAT gateway: ConnectivityType, its primary NatGatewayAddresses entry (private IP, the MAC
        of its interface, its Elastic IP); secondary addresses are reported, not modelled."""
        raw_conn = el.get("ConnectivityType", "public")
        conn = str(raw_conn).lower() if isinstance(raw_conn, str) else ""
        if conn not in ("public", "private"):
            self.add(gid, rel, "changed", f"ConnectivityType {raw_conn!r} is not public or private: imported as public")
            conn = "public"
        raw_addrs = el.get("NatGatewayAddresses")
        if raw_addrs is not None and not isinstance(raw_addrs, list):
            self.add(gid, rel, "changed", f"NatGatewayAddresses is a JSON {type(raw_addrs).__name__} "
                     f"({raw_addrs!r:.60}), not a list: read as none")
        addrs = [a for a in _l(raw_addrs) if isinstance(a, dict)]
        primary = next((a for a in addrs if a.get("IsPrimary") is True), addrs[0] if addrs else {})
        if len(addrs) > 1:
            self.add(gid, rel, "not modelled", f"{len(addrs) - 1} secondary address(es) of the NAT gateway left out "
                     "(only its primary private IP and Elastic IP are modelled)")
        eni_id = _s(primary.get("NetworkInterfaceId"))
        ip = _s(primary.get("PrivateIp")) or None
        mac = None
        for e, _ in self.eni_items:
            if eni_id and e.get("NetworkInterfaceId") == eni_id and isinstance(e.get("MacAddress"), str):
                mac = e["MacAddress"]
                break
        address = None
        if conn == "public":
            address = self._nat_address(gid, rel, primary)
        elif primary.get("PublicIp") or primary.get("AllocationId"):
            self.add(gid, rel, "changed", "a private NAT gateway lists an Elastic IP: left out")
        nat = None
        # the interface's id names its flow log records; one a name already holds is left out
        nid = eni_id if eni_id and eni_id not in self.nat_enis and eni_id not in self.net._by_name else None
        if eni_id and nid is None:
            self.add(gid, rel, "changed", f"NetworkInterfaceId {eni_id!r} is already used: its flow log records name "
                     f"the NAT gateway {gid} instead")
        attempts: list[tuple[str | None, str | None]] = [(ip, mac)]
        if mac is not None:
            attempts.append((ip, None))
        if ip is not None:
            attempts.append((None, None))
        why: list[str] = []
        for try_ip, try_mac in attempts:
            try:
                nat = vpc.add_nat_gateway(name=gid, subnet=subnet, connectivity=conn if address or conn == "private"
                                          else None, address=address, ip=try_ip if subnet is not None else None,
                                          mac=try_mac, network_interface_id=nid)
                break
            except TopologyError as exc:
                why.append(str(exc))
        if nat is None:
            self.add(gid, rel, "skipped", why[-1])
            return
        if why:
            self.add(gid, rel, "changed", f"{why[0]}; imported with private IP {nat.ip} and MAC {nat.mac}")
        if subnet is not None and ip is None:
            self.add(gid, rel, "changed", f"no PrivateIp in NatGatewayAddresses: private IP {nat.ip} assigned")
        if conn == "public" and address is None:
            self.add(gid, rel, "note", "public NAT gateway with no Elastic IP in the data: traffic it sends to the "
                     "internet gateway is dropped (NO_PUBLIC_IP) until one is associated")
        if eni_id:
            self.nat_enis[eni_id] = nat.name

    def _nat_address(self, gid: str, rel: str, primary: dict[str, Any]) -> ElasticIp | None:
        """The Elastic IP of a NAT gateway's primary address: allocated from Addresses.json, else here."""
        pub, alloc = _s(primary.get("PublicIp")), _s(primary.get("AllocationId"))
        if not pub and not alloc:
            return None
        known = self._find(alloc) if alloc else None
        if not isinstance(known, ElasticIp) and pub:
            try:
                known = self.net.address_for(pub)
            except TopologyError:
                known = None
        if isinstance(known, ElasticIp):
            if known.association is not None:
                self.add(gid, rel, "changed", f"Elastic IP {known.name} is already associated with "
                         f"{known.association.name}: the NAT gateway is imported without it")
                return None
            return known
        if not pub:
            self.add(gid, rel, "changed", f"Elastic IP {alloc} is not in the data and no PublicIp is given: "
                     "imported without an address")
            return None
        try:
            return self.net.allocate_address(pub, name=alloc or None)
        except TopologyError as exc:
            self.add(gid, rel, "changed", f"its Elastic IP refused ({exc}): imported without an address")
            return None

    # Elastic IPs ----------------------------------------------------------
    def addresses(self) -> None:
        """Addresses.json: each address allocated (named by its AllocationId); its association with an
        ENI is applied when the ENI is imported; a NAT gateway's is found by the NAT gateway pass."""
        for el, rel in self.items("Addresses"):
            pub = el["PublicIp"]
            alloc = _s(el.get("AllocationId"))
            label = alloc or pub
            if el.get("Domain") == "standard":
                self.add(label, rel, "skipped", "an EC2-Classic address (Domain standard): not modelled")
                continue
            if alloc and self._find(alloc) is not None:
                self.add(label, rel, "skipped", f"name {alloc} is already used by {self._find(alloc)!r}")
                continue
            try:
                eip = self.net.allocate_address(pub, name=alloc or None)
            except TopologyError as exc:
                self.add(label, rel, "skipped", str(exc))
                continue
            eni_id = _s(el.get("NetworkInterfaceId"))
            if eni_id:
                self.eip_for_eni[eni_id] = (eip, rel)
                priv = _s(el.get("PrivateIpAddress"))
                if priv:
                    eip._aws_private_ip = priv  # type: ignore[attr-defined]  # checked against the ENI's primary IP
            elif el.get("InstanceId"):
                self.add(label, rel, "note", f"associated with instance {el.get('InstanceId')} but names no "
                         "NetworkInterfaceId: associated with the instance's primary ENI when it is imported")
                self.eip_for_eni[f"instance:{el.get('InstanceId')}"] = (eip, rel)

    def endpoints(self) -> None:
        kinds = {"gateway": "gateway", "gatewayloadbalancer": "gatewayloadbalancer", "interface": "interface"}
        for el, rel in self.items("VpcEndpoints"):
            eid = el["VpcEndpointId"]
            state = str(el.get("State", "available")).lower()
            if state != "available":
                self.add(eid, rel, "skipped", f"state {el.get('State')!r}, not available")
                continue
            kind = kinds.get(str(el.get("VpcEndpointType", "Gateway")).lower())
            if kind is None:
                self.add(eid, rel, "skipped", f"endpoint type {el.get('VpcEndpointType')!r} is not known")
                continue
            vpc = self.vpc(el.get("VpcId"))
            if vpc is None:
                self.add(eid, rel, "skipped", f"its VPC {el.get('VpcId')!r} is not in the data")
                continue
            try:
                vpc.add_endpoint(name=eid, endpoint_type=kind, service=_s(el.get("ServiceName")) or None)
            except TopologyError as exc:
                self.add(eid, rel, "skipped", str(exc))

    def transit_gateways(self) -> None:
        for el, rel in self.items("TransitGateways"):
            tid = el["TransitGatewayId"]
            if el.get("State", "available") != "available":
                self.add(tid, rel, "skipped", f"state {el.get('State')!r}, not available")
                continue
            try:
                self.net.add_transit_gateway(name=tid)
            except TopologyError as exc:
                self.add(tid, rel, "skipped", str(exc))
        attached: set[tuple[str, str]] = set()
        atts: list[tuple[str, Any, Any, str]] = []
        for el, rel in self.items("TransitGatewayVpcAttachments"):
            atts.append((el["TransitGatewayAttachmentId"], el.get("TransitGatewayId"), el.get("VpcId"), rel))
            if el.get("State", "available") != "available":
                atts[-1] = (atts[-1][0], None, el.get("State"), rel)
        for el, rel in self.items("TransitGatewayAttachments"):
            if el.get("ResourceType") != "vpc":
                continue
            entry = (el["TransitGatewayAttachmentId"], el.get("TransitGatewayId"), el.get("ResourceId"), rel)
            atts.append(entry if el.get("State", "available") == "available" else (entry[0], None, el.get("State"), rel))
        for aid, tid, vid, rel in atts:
            if tid is None:
                self.add(aid, rel, "skipped", f"attachment state {vid!r}, not available")
                continue
            if (str(tid), str(vid)) in attached:
                continue
            tgw, vpc = self._find(tid), self.vpc(vid)
            if tgw is None or vpc is None:
                missing = tid if tgw is None else vid
                self.add(aid, rel, "skipped", f"{missing!r} is not in the data (or not available)")
                continue
            try:
                tgw.attach(vpc)
            except (TopologyError, AttributeError) as exc:
                self.add(aid, rel, "skipped", str(exc))
                continue
            attached.add((str(tid), str(vid)))

    def peerings(self) -> None:
        for el, rel in self.items("VpcPeeringConnections"):
            pid = el["VpcPeeringConnectionId"]
            code = _d(el.get("Status")).get("Code")
            if code != "active":
                self.add(pid, rel, "skipped", f"peering status {code!r}, not active")
                continue
            req = _d(el.get("RequesterVpcInfo")).get("VpcId")
            acc = _d(el.get("AccepterVpcInfo")).get("VpcId")
            a, b = self.vpc(req), self.vpc(acc)
            if a is None or b is None:
                missing = req if a is None else acc
                self.add(pid, rel, "skipped", f"peer VPC {missing!r} is not in the data: routes to the peering "
                         "are blackholes")
                continue
            try:
                self.net.add_peering(a, b, name=pid)
            except TopologyError as exc:
                self.add(pid, rel, "skipped", str(exc))

    # ENIs ------------------------------------------------------------------
    def enis(self) -> None:
        service: Counter[str] = Counter()
        service_skipped: Counter[str] = Counter()
        n_v6 = n_prefix = n_unattached = nat_interfaces = 0
        for el, rel in self.eni_items:
            eid = _s(el.get("NetworkInterfaceId"))
            itype = _s(el.get("InterfaceType")) or "interface"
            is_service = itype not in VM_INTERFACE_TYPES
            if eid in self.nat_enis:    # the NAT gateway's own address, whatever service_enis says
                nat_interfaces += 1
                continue
            if is_service and self.service_enis == "skip":
                service_skipped[itype] += 1
                continue
            subnet = self._find(el.get("SubnetId"))
            if not isinstance(subnet, Subnet):
                self.add(eid, rel, "skipped", f"its subnet {el.get('SubnetId')!r} is not in the data")
                continue
            if el.get("Ipv6Addresses"):
                n_v6 += 1
            if el.get("Ipv4Prefixes"):
                n_prefix += 1
            if el.get("Status") == "available":
                n_unattached += 1
            primary = _s(el.get("PrivateIpAddress"))
            seconds: list[str] = []
            for p in _l(el.get("PrivateIpAddresses")):
                if not isinstance(p, dict):
                    continue
                ip = _s(p.get("PrivateIpAddress"))
                if p.get("Primary") is True and not primary:
                    primary = ip
                elif ip and ip != primary and ip not in seconds:
                    seconds.append(ip)
            if not primary:
                self.add(eid, rel, "skipped", "no primary private IPv4 address")
                continue
            sdc = el.get("SourceDestCheck", True)
            if not isinstance(sdc, bool):
                self.add(eid, rel, "changed", f"SourceDestCheck {sdc!r} is not true or false: the check is on "
                         "(AWS's default)")
                sdc = True
            mac = el.get("MacAddress")
            eni: Eni | None = None
            try:
                eni = subnet.add_eni(primary, name=eid, mac=mac if isinstance(mac, str) else None,
                                     source_dest_check=sdc)
            except TopologyError as exc:
                if mac is None:
                    self.add(eid, rel, "skipped", str(exc))
                    continue
                try:
                    eni = subnet.add_eni(primary, name=eid, source_dest_check=sdc)
                except TopologyError:
                    self.add(eid, rel, "skipped", str(exc))
                    continue
                self.add(eid, rel, "changed", f"MAC {mac!r} refused ({exc}); auto-assigned {eni.mac}")
            if mac is None and not el.get("_synthetic"):
                self.add(eid, rel, "changed", f"no MacAddress in the data; auto-assigned {eni.mac}")
            for ip in seconds:
                try:
                    eni.add_secondary_ip(ip)
                except TopologyError as exc:
                    self.add(eid, rel, "changed", f"secondary IP {ip} left out ({exc})")
            self.filters.eni_groups(eni, el, rel)
            self.filters.eni_tracking(eni, el, rel)
            self._eni_public_ip(eni, el, rel)
            if is_service:
                service[itype] += 1
        for itype, n in sorted(service.items()):
            self.add(f"ENIs of type {itype}", "", "note",
                     f"{n} service-managed ENI(s) imported as ENIs (real MAC, IPs, source/dest check): their IPs "
                     "answer ARP and frames addressed to them are delivered to their port; routes to the "
                     "gateway itself still FORWARD to the gateway's own target port")
        if nat_interfaces:
            self.add("ENIs of type nat_gateway", "", "note",
                     f"{nat_interfaces} NAT gateway interface(s) imported as their NAT gateway's private IP and MAC, "
                     "not as ENIs")
        for iid, names in self._instance_names().items():  # Addresses.json entries naming only an instance
            pending = self.eip_for_eni.pop(f"instance:{iid}", None)
            if pending is not None:
                self._associate(self.net.find(names[0]), pending[0], pending[1])
        for key, (eip, rel) in sorted(self.eip_for_eni.items()):
            if eip.association is None:
                self.add(eip.name, rel, "note", f"associated with {key.removeprefix('instance:')}, which was not "
                         "imported: left unassociated")
        for itype, n in sorted(service_skipped.items()):
            self.add(f"ENIs of type {itype}", "", "skipped",
                     f"{n} service-managed ENI(s) left out (service_enis='skip'): their IPs own no ENI")
        if n_v6:
            self.add("NetworkInterfaces", "", "not modelled", f"{n_v6} ENI(s) have IPv6 addresses: IPv6 is not modelled")
        if n_prefix:
            self.add("NetworkInterfaces", "", "not modelled",
                     f"{n_prefix} ENI(s) have delegated IPv4 prefixes: only their individual IPs are modelled")
        if n_unattached:
            self.add("NetworkInterfaces", "", "note", f"{n_unattached} ENI(s) have status 'available' (not attached "
                     "to an instance): imported, their IPs still answer ARP")
        # instance id -> ENI names, primary first, only ENIs that were imported
        self.instances.update(self._instance_names())

    def _instance_names(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for iid, pairs in self._inst_enis.items():
            names = [e for _, e in sorted(pairs, key=lambda p: p[0]) if isinstance(self._find(e), Eni)]
            if names:
                out[iid] = names
        return out

    def _associate(self, eni: Eni, eip: ElasticIp, rel: str) -> None:
        if eni.address is eip:
            return
        try:
            eni.associate_address(eip)
        except TopologyError as exc:
            self.add(eip.name, rel, "skipped", f"association with {eni.name} refused ({exc})")

    def _eni_public_ip(self, eni: Eni, el: dict[str, Any], rel: str) -> None:
        """The ENI's public IP: its Addresses.json association, else its own ``Association.PublicIp``
        (an Elastic IP of the data, or an auto-assigned public IP, allocated here)."""
        pending = self.eip_for_eni.pop(eni.name, None)
        if pending is not None:
            eip, arel = pending
            priv = getattr(eip, "_aws_private_ip", None)
            if priv is not None and priv != str(eni.ip):
                self.add(eip.name, arel, "not modelled", f"associated with secondary private IP {priv} of {eni.name}: "
                         "only an ENI's primary IP has a public IP in fastvpc; left unassociated")
            else:
                self._associate(eni, eip, arel)
        assoc = el.get("Association")
        pub = _s(assoc.get("PublicIp")) if isinstance(assoc, dict) else ""
        if not pub:
            return
        if eni.public_ip is not None:
            if str(eni.public_ip) != pub:
                self.add(eni.name, rel, "changed", f"Association.PublicIp {pub} differs from the Elastic IP "
                         f"{eni.address.name} ({eni.public_ip}) of Addresses.json: that one is kept")  # type: ignore[union-attr]
            return
        try:
            found = self.net.address_for(pub)
        except TopologyError as exc:
            self.add(eni.name, rel, "changed", f"Association.PublicIp refused ({exc})")
            return
        if found is not None:
            eip = found
        else:
            alloc = _s(assoc.get("AllocationId")) if isinstance(assoc, dict) else ""
            name = alloc if alloc and self._find(alloc) is None else None
            try:
                eip = self.net.allocate_address(pub, name=name)
            except TopologyError as exc:
                self.add(eni.name, rel, "changed", f"Association.PublicIp refused ({exc})")
                return
        self._associate(eni, eip, rel)

    # route tables ------------------------------------------------------------
    @staticmethod
    def _assoc_active(a: dict[str, Any]) -> bool:
        st = a.get("AssociationState")
        return not isinstance(st, dict) or st.get("State", "associated") == "associated"

    def route_tables(self) -> None:
        n_v6 = 0
        for el, rel in self.items("RouteTables"):
            rid = el["RouteTableId"]
            vpc = self.vpc(el.get("VpcId"))
            if vpc is None:
                self.add(rid, rel, "skipped", f"its VPC {el.get('VpcId')!r} is not in the data")
                continue
            assocs = [a for a in _l(el.get("Associations")) if isinstance(a, dict) and self._assoc_active(a)]
            existing = self._find(rid)
            if isinstance(existing, RouteTable):
                if existing.vpc is not vpc:
                    self.add(rid, rel, "skipped", f"route table id already used in VPC {existing.vpc.name}")
                    continue
                rt = existing
            elif existing is not None:
                self.add(rid, rel, "skipped", f"name {rid} is already used by {existing!r}")
                continue
            else:
                try:
                    rt = vpc.add_route_table(name=rid)
                except TopologyError as exc:
                    self.add(rid, rel, "skipped", str(exc))
                    continue
            n_v6 += self.routes(rt, el.get("Routes"), rel)
            for a in assocs:
                if a.get("Main") is True:
                    if vpc.main_route_table is not rt:
                        self.add(rid, rel, "note", f"VPC {vpc.name} has several main tables in the data: "
                                 f"{vpc.main_route_table.name} kept as main")
                    continue
                sid = a.get("SubnetId")
                if sid is None:
                    self._gateway_association(rt, a, rel)
                    continue
                subnet = self._find(sid)
                if not isinstance(subnet, Subnet) or subnet.vpc is not vpc:
                    self.add(rid, rel, "skipped", f"association with subnet {sid!r}, which is not in VPC {vpc.name}")
                    continue
                if subnet.explicit_route_table is not None and subnet.explicit_route_table is not rt:
                    self.add(rid, rel, "skipped", f"subnet {sid} is already associated with "
                             f"{subnet.explicit_route_table.name}")
                    continue
                subnet.associate(rt)
        if n_v6:
            self.add("RouteTables", "", "not modelled", f"{n_v6} IPv6 route(s) left out: IPv6 is not modelled")

    def _gateway_association(self, rt: RouteTable, a: dict[str, Any], rel: str) -> None:
        """An edge association (``Associations[].GatewayId``): the table routes traffic entering
        through that internet or VPN gateway (#40), if it holds only what such a table may (#41)."""
        gid = a.get("GatewayId")
        if not isinstance(gid, str) or not gid:
            what = a.get("RouteTableAssociationId") or "?"
            self.add(rt.name, rel, "skipped", f"association {what} names neither a subnet nor a gateway")
            return
        gw = self._find(gid)
        if not isinstance(gw, (InternetGateway, VpnGateway)) or gw.vpc is not rt.vpc:
            self.add(rt.name, rel, "skipped", f"gateway (edge) association with {gid}, which is not an internet or "
                     f"VPN gateway of VPC {rt.vpc.name} in the data")
            return
        try:
            rt.associate_gateway(gw)
        except TopologyError as exc:
            self.add(rt.name, rel, "skipped", f"gateway (edge) association with {gid} refused: {exc}")

    def _target_id(self, r: dict[str, Any]) -> tuple[str, str]:
        """(field, id) of the route's target; NetworkInterfaceId beats InstanceId."""
        for f in ROUTE_TARGET_FIELDS:
            v = r.get(f)
            if isinstance(v, str) and v:
                if f == "InstanceId" and isinstance(r.get("NetworkInterfaceId"), str):
                    continue
                return f, v
        return "", ""

    def routes(self, rt: RouteTable, routes: Any, rel: str) -> int:
        """Add a table's routes; returns the number of IPv6 routes left out."""
        rid, vpc = rt.name, rt.vpc
        n_v6 = 0
        # (rank, pl-or-"", order, destination, field, target id, state, origin, prefix list)
        cands: list[tuple[int, str, int, ipaddress.IPv4Network, str, str, str, str, str | None]] = []
        if routes is not None and not isinstance(routes, list):
            self.add(rid, rel, "skipped", f"Routes is a JSON {type(routes).__name__} ({routes!r:.60}), not a list: "
                     "only the table's local routes are imported")
        for order, r in enumerate(routes if isinstance(routes, list) else []):
            if not isinstance(r, dict):
                self.add(rid, rel, "skipped", f"a route is a JSON {type(r).__name__} ({r!r:.60}), not an object")
                continue
            field, tid = self._target_id(r)
            state = str(r.get("State", "active"))
            origin = _AWS_ORIGINS.get(str(r.get("Origin", "CreateRoute")), "static")
            if r.get("DestinationIpv6CidrBlock") or r.get("DestinationIpv6PrefixListId"):
                n_v6 += 1
                continue
            if "DestinationPrefixListId" in r:
                pl = _s(r.get("DestinationPrefixListId"))
                cidrs = self.prefix_lists.get(pl)
                if cidrs is None:
                    self.add(f"{rid} {pl or '?'} -> {tid or '?'}", rel, "skipped",
                             f"prefix list {pl!r} is not in PrefixLists data: its CIDRs are unknown")
                    continue
                for c in cidrs:
                    cands.append((ORIGIN_RANK["prefix-list"], pl, order, c, field, tid, state, "prefix-list", pl))
                continue
            raw = r.get("DestinationCidrBlock")
            dest = _cidr(raw)
            if dest is None:
                self.add(f"{rid} {raw!r}", rel, "skipped", "route destination is not an IPv4 CIDR")
                continue
            if str(dest) != str(raw).strip():
                self.add(f"{rid} {raw}", rel, "changed", f"host bits cleared: imported as {dest}")
            if (origin == "local" or (field == "GatewayId" and tid == "local")
                    or any(x.destination == dest for x in rt.routes if x.is_local)):
                self._local_route(rt, dest, field, tid, rel)
                continue
            cands.append((ORIGIN_RANK[origin], "", order, dest, field, tid, state, origin, None))
        # one route per destination: static, then prefix list (lowest id), then propagated;
        # the winners are then added in the order of the data.
        cands.sort(key=lambda c: (c[0], c[1], c[2]))
        winners: dict[ipaddress.IPv4Network, int] = {}
        for i, (_rank, _pl, _order, dest, _f, tid, _st, origin, plist) in enumerate(cands):
            label = f"{rid} {dest} -> {tid or '?'}"
            if dest in winners:
                w = cands[winners[dest]]
                self.add(label, rel, "skipped", f"{origin} route{' from ' + plist if plist else ''} loses to the "
                         f"{w[7]} route{' from ' + w[8] if w[8] else ''} {dest} -> {w[5] or '?'} (static beats "
                         "prefix-list beats propagated; lowest prefix list id first)")
                continue
            if any(r.destination == dest for r in rt.routes if r.is_local):
                self.add(label, rel, "skipped", f"{dest} is a CIDR of VPC {vpc.name}: the local route stays")
                continue
            winners[dest] = i
        for i in sorted(winners.values(), key=lambda i: (cands[i][2], i)):
            _rank, _pl, _order, dest, field, tid, state, origin, plist = cands[i]
            self._add_route(rt, dest, field, tid, state, origin, plist, f"{rid} {dest} -> {tid or '?'}", rel)
        return n_v6

    def _resolve(self, rt: RouteTable, field: str, tid: str) -> tuple[Target | None, str]:
        """The target object for a route, or (None, why)."""
        if not tid:
            return None, "the route names no target"
        if field in ("EgressOnlyInternetGatewayId", "CarrierGatewayId", "LocalGatewayId", "CoreNetworkArn"):
            return None, f"{field} targets are not modelled"
        if field == "InstanceId":
            names = self.instances.get(tid)
            if not names:
                return None, f"instance {tid} has no imported ENI"
            tid = names[0]
        obj = self._find(tid)
        if obj is None or not isinstance(obj, Target):
            return None, f"target {tid} is not in the data (or was not imported)"
        vpc = rt.vpc
        if isinstance(obj, PeeringConnection):
            if vpc not in obj.vpcs:
                return None, f"peering {tid} does not join VPC {vpc.name}"
        elif isinstance(obj, TransitGateway):
            if vpc not in obj.attachments:
                return None, f"transit gateway {tid} has no attachment in VPC {vpc.name}"
        elif getattr(obj, "vpc", None) is not vpc:
            return None, f"target {tid} belongs to VPC {obj.vpc.name}, not {vpc.name}"  # type: ignore[attr-defined]
        return obj, ""

    def _add_route(self, rt: RouteTable, dest: ipaddress.IPv4Network, field: str, tid: str, state: str,
                   origin: str, pl: str | None, label: str, rel: str) -> Route | None:
        if state == "blackhole":
            target: Any = BLACKHOLE
            why = ""
        else:
            target, why = self._resolve(rt, field, tid)
            if state != "active":
                self.add(label, rel, "note", f"route state {state!r} treated as active")
        if target is not None:
            # a route fastvpc's validation refuses (#16, #23 ...) is skipped, not blackholed
            try:
                route = rt.add_route(dest, target, origin=origin, prefix_list=pl)
            except TopologyError as exc:
                self.add(label, rel, "skipped", str(exc))
                return None
            if target is BLACKHOLE:
                route.deleted_target = tid or None
            return route
        # the target is absent or unusable from this VPC: a blackhole (as AWS shows such routes)
        try:
            route = rt.add_route(dest, BLACKHOLE, origin=origin, prefix_list=pl)
        except TopologyError as exc:
            self.add(label, rel, "skipped", f"{why}; and as a blackhole: {exc}")
            return None
        route.deleted_target = tid or None
        self.add(label, rel, "blackholed", why)
        return route

    def _local_route(self, rt: RouteTable, dest: ipaddress.IPv4Network, field: str, tid: str, rel: str) -> None:
        """A ``local`` route of the data: must be a VPC CIDR; a local route pointed elsewhere is replaced."""
        label = f"{rt.name} {dest} -> {tid or 'local'}"
        if not any(r.destination == dest for r in rt.routes if r.is_local):
            self.add(label, rel, "skipped", f"local route for {dest}, which is not an associated CIDR of VPC "
                     f"{rt.vpc.name}")
            return
        if tid in ("local", ""):
            return
        target, why = self._resolve(rt, field, tid)
        if target is None:
            self.add(label, rel, "skipped", f"local route replaced with {tid}: {why}; left local")
            return
        try:
            rt.replace_route(dest, target)
        except TopologyError as exc:
            self.add(label, rel, "skipped", f"local route replaced with {tid}: {exc}; left local")


# --------------------------------------------------------------------------- entry points

def import_aws(folder: str | os.PathLike[str], *, service_enis: str = "eni") -> AwsImport:
    """Import a folder of ``aws ec2 describe-*`` JSON; returns the network and the report.

    ``service_enis``: ``"eni"`` (default) imports service-managed ENIs (NAT gateway, transit
    gateway attachment, interface endpoint, load balancer ...) as ENIs so that their IPs
    answer ARP and receive frames; ``"skip"`` leaves them out (their IPs then own no ENI).

    Raises :class:`fastvpc.TopologyFileError` only when ``folder`` does not exist or holds no
    VPC at all (a wrong path must not look like an empty account); problems in the data are
    never raised, they are reported.
    """
    path = Path(os.fspath(folder))
    if not path.exists():
        raise TopologyFileError(str(path), "folder", "no such file or folder", value=str(path))
    imp = _Importer(path, service_enis).run()
    # the instance ids as aliases of their ENIs (Attachment.InstanceId): what flow logs' instance-id and
    # ``trace --from i-...`` read, and what a topology file written from this network keeps
    for iid, names in imp.instances.items():
        imp.network.aliases.setdefault(iid, list(names))
    if not imp.network.vpcs:
        # a describe-vpcs file that is there but could not be used says why (not "the wrong folder")
        why = [f"{e.file}: {e.why}" for e in imp.report
               if e.status == "skipped" and os.path.basename(e.file).lower().startswith("vpcs")][:2]
        hint = "; ".join(why) if why else "is this the right folder?"
        exc = TopologyFileError(str(path), "folder", "no VPC found in any aws ec2 describe-* JSON file "
                                f"({len(imp.report.files)} files read); {hint} ({imp.report.summary()})",
                                value=str(path))
        exc.report = imp.report     # every skipped line, for a caller to show
        raise exc
    return imp


@overload
def from_aws(folder: str | os.PathLike[str], report: Literal[False] = ..., *, service_enis: str = ...) -> Network: ...
@overload
def from_aws(folder: str | os.PathLike[str], report: Literal[True], *, service_enis: str = ...) -> AwsImport: ...
@overload
def from_aws(folder: str | os.PathLike[str], report: bool, *, service_enis: str = ...) -> Network | AwsImport: ...


def from_aws(folder: str | os.PathLike[str], report: bool = False, *,
             service_enis: str = "eni") -> Network | AwsImport:
    """The :class:`Network` described by a folder of ``aws ec2 describe-*`` JSON.

    With ``report=True`` returns an :class:`AwsImport` (``.network``, ``.report``,
    ``.instances``) instead.  Each instance id is an alias of its ENIs (``network.aliases``: flow logs'
    ``instance-id``, ``trace --from i-...``, kept by ``save``).  See :func:`import_aws`.
    """
    imp = import_aws(folder, service_enis=service_enis)
    return imp if report else imp.network
