"""AWS describe-* import: small JSON documents written here (never /work/shared)."""

from __future__ import annotations

import copy
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastvpc.aws import AwsImport, ImportReport, from_aws, import_aws
from fastvpc.errors import TopologyFileError
from fastvpc.topology import BLACKHOLE, LOCAL, Eni, Network

VPC = "vpc-0a"
PEER = "vpc-0b"


def _eni(eid: str, subnet: str, ip: str, mac: str, *, secondary: tuple[str, ...] = (), sdc: bool = True,
         itype: str = "interface", instance: str | None = None, vpc: str = VPC) -> dict[str, Any]:
    el: dict[str, Any] = {
        "NetworkInterfaceId": eid, "SubnetId": subnet, "VpcId": vpc, "PrivateIpAddress": ip,
        "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": ip}]
        + [{"Primary": False, "PrivateIpAddress": s} for s in secondary],
        "MacAddress": mac, "SourceDestCheck": sdc, "InterfaceType": itype, "Status": "in-use",
    }
    if instance:
        el["Attachment"] = {"InstanceId": instance, "DeviceIndex": 0, "Status": "attached"}
    return el


def _route(dest: str, *, origin: str = "CreateRoute", state: str = "active", **target: str) -> dict[str, Any]:
    r: dict[str, Any] = {"Origin": origin, "State": state, **target}
    if dest.startswith("pl-"):
        r["DestinationPrefixListId"] = dest
    else:
        r["DestinationCidrBlock"] = dest
    return r


def base_docs() -> dict[str, dict[str, Any]]:
    """One VPC (two CIDRs, one more disassociated), web/app/db subnets, igw, vgw, a NAT gateway."""
    return {
        "Vpcs.json": {"Vpcs": [{
            "VpcId": VPC, "CidrBlock": "10.0.0.0/16", "State": "available",
            "CidrBlockAssociationSet": [
                {"CidrBlock": "10.0.0.0/16", "CidrBlockState": {"State": "associated"}},
                {"CidrBlock": "10.1.0.0/16", "CidrBlockState": {"State": "associated"}},
                {"CidrBlock": "10.2.0.0/16", "CidrBlockState": {"State": "disassociated"}},
            ],
            "Ipv6CidrBlockAssociationSet": [],
        }]},
        "Subnets.json": {"Subnets": [
            {"SubnetId": "subnet-web", "VpcId": VPC, "CidrBlock": "10.0.1.0/24", "State": "available"},
            {"SubnetId": "subnet-app", "VpcId": VPC, "CidrBlock": "10.0.2.0/24", "State": "available"},
            {"SubnetId": "subnet-db", "VpcId": VPC, "CidrBlock": "10.1.3.0/24", "State": "available"},
        ]},
        "InternetGateways.json": {"InternetGateways": [
            {"InternetGatewayId": "igw-1", "Attachments": [{"State": "available", "VpcId": VPC}]},
            {"InternetGatewayId": "igw-detached", "Attachments": []},
        ]},
        "VpnGateways.json": {"VpnGateways": [
            {"VpnGatewayId": "vgw-1", "State": "available", "VpcAttachments": [{"State": "attached", "VpcId": VPC}]},
        ]},
        "NatGateways.json": {"NatGateways": [
            {"NatGatewayId": "nat-1", "State": "available", "SubnetId": "subnet-web", "VpcId": VPC,
             "NatGatewayAddresses": [{"NetworkInterfaceId": "eni-nat", "PrivateIp": "10.0.1.200"}]},
            {"NatGatewayId": "nat-gone", "State": "deleted", "SubnetId": "subnet-web", "VpcId": VPC},
        ]},
        "NetworkInterfaces.json": {"NetworkInterfaces": [
            _eni("eni-web1", "subnet-web", "10.0.1.10", "02:aa:00:00:01:0a", instance="i-web1"),
            _eni("eni-app1", "subnet-app", "10.0.2.10", "02:aa:00:00:02:0a", secondary=("10.0.2.11",),
                 instance="i-app1"),
            _eni("eni-fw", "subnet-app", "10.0.2.50", "02:aa:00:00:02:32", sdc=False, instance="i-fw"),
            _eni("eni-db1", "subnet-db", "10.1.3.10", "02:aa:00:00:03:0a", instance="i-db1"),
            _eni("eni-nat", "subnet-web", "10.0.1.200", "02:aa:00:00:01:c8", sdc=False, itype="nat_gateway"),
        ]},
        "RouteTables.json": {"RouteTables": [
            {"RouteTableId": "rtb-main", "VpcId": VPC,
             "Associations": [{"Main": True, "RouteTableId": "rtb-main"}],
             "Routes": [_route("10.0.0.0/16", origin="CreateRouteTable", GatewayId="local"),
                        _route("10.1.0.0/16", origin="CreateRouteTable", GatewayId="local"),
                        _route("0.0.0.0/0", NatGatewayId="nat-1")]},
            {"RouteTableId": "rtb-web", "VpcId": VPC,
             "Associations": [{"Main": False, "RouteTableId": "rtb-web", "SubnetId": "subnet-web"}],
             "Routes": [_route("10.0.0.0/16", origin="CreateRouteTable", GatewayId="local"),
                        _route("0.0.0.0/0", GatewayId="igw-1"),
                        _route("192.168.0.0/16", NetworkInterfaceId="eni-fw", InstanceId="i-fw")]},
            {"RouteTableId": "rtb-db", "VpcId": VPC,
             "Associations": [{"Main": False, "RouteTableId": "rtb-db", "SubnetId": "subnet-db",
                               "AssociationState": {"State": "associated"}}],
             "Routes": [_route("10.0.0.0/16", origin="CreateRouteTable", GatewayId="local"),
                        _route("0.0.0.0/0", origin="EnableVgwRoutePropagation", GatewayId="vgw-1"),
                        _route("172.16.0.0/12", origin="EnableVgwRoutePropagation", GatewayId="vgw-1"),
                        _route("10.99.0.0/16", state="blackhole", NatGatewayId="nat-old")]},
        ]},
        "SecurityGroups.json": {"SecurityGroups": [{"GroupId": f"sg-{i}"} for i in range(7)]},
        "NetworkAcls.json": {"NetworkAcls": [{"NetworkAclId": "acl-1"}, {"NetworkAclId": "acl-2"}]},
    }


def write(folder: Path, docs: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (folder / name).write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return folder


def routes_of(net: Network, rtb: str) -> dict[str, tuple[str, str, str | None, str | None]]:
    rt = net.find(rtb)
    return {str(r.destination): (r.target.name, r.origin, r.prefix_list, r.deleted_target) for r in rt.routes}


def shape(net: Network) -> list[Any]:
    """Everything the import decides, as plain data (deterministic, comparable)."""
    out: list[Any] = []
    for v in net.vpcs:
        out.append((v.name, [str(c) for c in v.cidrs], v.main_route_table.name, [g.name for g in v.gateways]))
        for s in v.subnets:
            out.append((s.name, str(s.cidr), s.route_table.name, s.gateway_mac,
                        [(e.name, [str(i) for i in e.ips], e.mac, e.source_dest_check, e.port) for e in s.enis]))
        for rt in v.route_tables:
            out.append((rt.name, [(str(r.destination), r.target.name, r.origin, r.prefix_list, r.deleted_target)
                                  for r in rt.routes]))
    out.append([(p.name, p.requester.name, p.accepter.name, p.port) for p in net.peerings])
    out.append([(t.name, [v.name for v in t.attachments], t.port) for t in net.transit_gateways])
    return out


# --------------------------------------------------------------------------- the basic import

def test_basic_import(tmp_path: Path) -> None:
    imp = from_aws(write(tmp_path / "f", base_docs()), report=True)
    assert isinstance(imp, AwsImport)
    net, report = imp.network, imp.report
    vpc = net.find(VPC)
    assert [str(c) for c in vpc.cidrs] == ["10.0.0.0/16", "10.1.0.0/16"]   # disassociated 10.2 left out
    assert vpc.main_route_table.name == "rtb-main"
    assert net.find("subnet-web").route_table.name == "rtb-web"
    assert net.find("subnet-app").route_table.name == "rtb-main"            # implicit: main
    assert net.find("subnet-db").route_table.name == "rtb-db"
    web1 = net.find("eni-web1")
    assert isinstance(web1, Eni) and web1.mac == "02:aa:00:00:01:0a" and str(web1.ip) == "10.0.1.10"
    assert [str(i) for i in net.find("eni-app1").ips] == ["10.0.2.10", "10.0.2.11"]
    assert net.find("eni-fw").source_dest_check is False
    assert net.find("eni-web1").source_dest_check is True
    assert net.find("igw-1").vpc is vpc and net.find("vgw-1").vpc is vpc
    assert net.find("nat-1").subnet is net.find("subnet-web")
    with pytest.raises(KeyError):
        net.find("igw-detached")
    with pytest.raises(KeyError):
        net.find("nat-gone")
    # routes: local per VPC CIDR, origins, targets
    assert routes_of(net, "rtb-main") == {
        "10.0.0.0/16": ("local", "local", None, None), "10.1.0.0/16": ("local", "local", None, None),
        "0.0.0.0/0": ("nat-1", "static", None, None)}
    web = routes_of(net, "rtb-web")
    assert web["0.0.0.0/0"] == ("igw-1", "static", None, None)
    assert web["192.168.0.0/16"] == ("eni-fw", "static", None, None)     # NetworkInterfaceId beats InstanceId
    assert web["10.1.0.0/16"] == ("local", "local", None, None)          # local routes follow the VPC CIDRs
    db = routes_of(net, "rtb-db")
    assert db["0.0.0.0/0"] == ("vgw-1", "propagated", None, None)
    assert db["172.16.0.0/12"] == ("vgw-1", "propagated", None, None)
    assert db["10.99.0.0/16"] == ("blackhole", "static", None, "nat-old")  # AWS blackhole state
    # the NAT gateway's own ENI is the NAT gateway's interface: its private IP and real MAC (DESIGN §6)
    nat = net.find("nat-1")
    assert str(nat.ip) == "10.0.1.200" and nat.mac == "02:aa:00:00:01:c8"
    assert nat.connectivity == "public" and nat.address is None  # the data gives it no Elastic IP
    with pytest.raises(KeyError):
        net.find("eni-nat")
    assert nat.vpc.eni_for_ip(nat.ip) is None
    assert imp.instances == {"i-web1": ["eni-web1"], "i-app1": ["eni-app1"], "i-fw": ["eni-fw"],
                             "i-db1": ["eni-db1"]}
    # the report: groups and NACLs without a VPC are skipped (one line each), skipped gateways
    for i in range(7):
        assert [e.status for e in report.about(f"sg-{i}")] == ["skipped"]
    assert [e.status for e in report.about("acl-2")] == ["skipped"]
    assert [e.status for e in report.about("igw-detached")] == ["skipped"]
    assert [e.status for e in report.about("nat-gone")] == ["skipped"]
    assert any(e.status == "note" and "nat_gateway" in e.element for e in report)
    assert any("10.2.0.0/16" in e.why for e in report.about(VPC))
    assert report.counts["VPCs"] == 1 and report.counts["ENIs"] == 4 and report.counts["subnets"] == 3
    text = str(report)
    assert text.splitlines()[0].startswith("AWS import of") and "sg-3" in text
    json.dumps(report.to_dict())
    # from_aws without report gives the Network; unpacking an AwsImport works
    assert isinstance(from_aws(tmp_path / "f"), Network)
    n2, r2 = from_aws(tmp_path / "f", report=True)
    assert isinstance(n2, Network) and isinstance(r2, ImportReport)


def test_gateway_macs_avoid_eni_macs(tmp_path: Path) -> None:
    docs = base_docs()
    # an ENI whose real MAC is what fastvpc would pick for subnet-web's router
    docs["NetworkInterfaces.json"]["NetworkInterfaces"][0]["MacAddress"] = "06:00:0a:00:01:00"
    net = from_aws(write(tmp_path, docs))
    assert net.find("eni-web1").mac == "06:00:0a:00:01:00"
    gw = net.find("subnet-web").gateway_mac
    assert gw != "06:00:0a:00:01:00" and int(gw[:2], 16) & 3 == 2    # locally administered unicast


def test_imported_network_forwards(tmp_path: Path) -> None:
    """The imported network behaves: the reference forwarder's routing view (edge=False: web1 has no
    public IP in these describe files) sends web1's internet traffic to igw-1."""
    from fastvpc.reference import ReferenceForwarder
    from fastvpc.trace import build_frame

    net = from_aws(write(tmp_path, base_docs()))
    ref = ReferenceForwarder(net, edge=False)
    web1, app1 = net.find("eni-web1"), net.find("eni-app1")
    v = ref.forward(build_frame(net, web1, "8.8.8.8"), web1.port)
    assert (v.action.name, v.egress) == ("FORWARD", net.find("igw-1").port)
    v = ref.forward(build_frame(net, app1, "8.8.8.8"), app1.port)
    assert (v.action.name, v.egress) == ("FORWARD", net.find("nat-1").port)
    v = ref.forward(build_frame(net, app1, "10.1.3.10"), app1.port)
    assert (v.action.name, v.egress) == ("DELIVER", net.find("eni-db1").port)
    db1 = net.find("eni-db1")
    v = ref.forward(build_frame(net, db1, "10.99.1.1"), db1.port)
    assert (v.action.name, v.reason.name) == ("DROP", "BLACKHOLE")


def test_from_aws_keeps_instance_ids_for_flow_logs_and_files(tmp_path: Path) -> None:
    """The network from_aws returns names each ENI's instance (Attachment.InstanceId) as an alias, as the
    CLI's import-aws writes it: flow logs' instance-id field and a saved topology keep it."""
    import fastvpc as fv
    from fastvpc import packets as pk

    net = from_aws(write(tmp_path / "f", base_docs()))
    assert net.aliases["i-web1"] == ["eni-web1"] and net.aliases["i-fw"] == ["eni-fw"]
    web1, app1 = net.find("eni-web1"), net.find("eni-app1")
    frame = pk.ethernet(web1.subnet.gateway_mac, web1.mac, pk.ETH_IPV4, pk.udp(web1.ip, app1.ip, 5000, 53))
    log = fv.FlowLog(window=60, fields="${interface-id} ${instance-id} ${flow-direction}")
    net.compile().process(fv.FrameBatch.from_frames([frame], port=[web1.port]), state=fv.FlowTable(),
                          now=1_700_000_040 * 10**9, log=log)
    recs = sorted(" ".join(str(v) for v in r) for r in log.records())
    assert "eni-web1 i-web1 egress" in recs
    net.save(tmp_path / "t.json")
    assert fv.load(tmp_path / "t.json").aliases["i-web1"] == ["eni-web1"]


# --------------------------------------------------------------------------- layouts

@pytest.mark.parametrize("layout", ["flat", "region", "accounts", "batfish", "odd-names"])
def test_layouts(tmp_path: Path, layout: str) -> None:
    docs = base_docs()
    if layout == "flat":
        root = write(tmp_path / "in", docs)
    elif layout == "region":
        write(tmp_path / "in" / "us-east-1", docs)
        root = tmp_path / "in"
    elif layout == "accounts":
        write(tmp_path / "in" / "accounts" / "111111111111" / "eu-west-1", docs)
        root = tmp_path / "in"
    elif layout == "batfish":
        write(tmp_path / "snap" / "aws_configs" / "us-west-2", docs)
        # other Batfish snapshot content must not be read as AWS data
        write(tmp_path / "snap" / "hosts", {"host1.json": {"hostname": "h1", "Vpcs": "not aws"}})
        write(tmp_path / "snap" / "batfish", {"runtime_data.json": [1, 2, 3]})
        root = tmp_path / "snap"
    else:  # file names do not matter, only the top-level keys
        root = write(tmp_path / "in", {f"x{i}.JSON" if i % 2 else f"call-{i}.json": d
                                       for i, d in enumerate(docs.values())})
    imp = import_aws(root)
    ref = import_aws(write(tmp_path / "ref", base_docs()))
    assert shape(imp.network) == shape(ref.network)
    # the same report (bar file paths): nothing of the Batfish hosts/ or batfish/ folders was read
    assert [(e.element, e.status, e.why) for e in imp.report] == [(e.element, e.status, e.why) for e in ref.report]
    assert len(imp.report.files) == len(docs)


def test_multi_region_and_multi_account_make_one_network(tmp_path: Path) -> None:
    a = {
        "Vpcs.json": {"Vpcs": [{"VpcId": VPC, "CidrBlock": "10.1.0.0/16"}]},
        "Subnets.json": {"Subnets": [{"SubnetId": "subnet-a", "VpcId": VPC, "CidrBlock": "10.1.1.0/24"}]},
        "NetworkInterfaces.json": {"NetworkInterfaces": [_eni("eni-a", "subnet-a", "10.1.1.100", "12:00:00:00:00:01")]},
    }
    b = {
        "Vpcs.json": {"Vpcs": [{"VpcId": PEER, "CidrBlock": "10.2.0.0/16"}]},
        "Subnets.json": {"Subnets": [{"SubnetId": "subnet-b", "VpcId": PEER, "CidrBlock": "10.2.1.0/24"}]},
        "NetworkInterfaces.json": {"NetworkInterfaces": [
            _eni("eni-b", "subnet-b", "10.2.1.100", "12:00:00:00:00:02", vpc=PEER)]},
    }
    pcx = {"VpcPeeringConnectionId": "pcx-1", "Status": {"Code": "active"},
           "RequesterVpcInfo": {"VpcId": VPC}, "AccepterVpcInfo": {"VpcId": PEER}}
    # each account sees the peering, with slightly different details
    a["Peerings.json"] = {"VpcPeeringConnections": [pcx]}
    b["Peerings.json"] = {"VpcPeeringConnections": [dict(pcx, Tags=[{"Key": "Name", "Value": "x"}])]}
    a["RouteTables.json"] = {"RouteTables": [{"RouteTableId": "rtb-a", "VpcId": VPC,
                                              "Associations": [{"Main": True}],
                                              "Routes": [_route("10.2.0.0/16", VpcPeeringConnectionId="pcx-1")]}]}
    write(tmp_path / "accounts" / "111" / "us-east-1", a)
    write(tmp_path / "accounts" / "222" / "us-east-1", b)
    imp = import_aws(tmp_path)
    net = imp.network
    assert [v.name for v in net.vpcs] == [VPC, PEER]
    assert [(p.name, p.requester.name, p.accepter.name) for p in net.peerings] == [("pcx-1", VPC, PEER)]
    assert routes_of(net, "rtb-a")["10.2.0.0/16"] == ("pcx-1", "static", None, None)
    assert not imp.report.by_status("skipped")
    assert net.find(PEER).main_route_table.name == f"{PEER}-main"
    assert any("no main route table" in e.why for e in imp.report.about(PEER))


# --------------------------------------------------------------------------- routes

def test_prefix_lists_and_precedence(tmp_path: Path) -> None:
    docs = base_docs()
    docs["PrefixLists.json"] = {"PrefixLists": [
        {"PrefixListId": "pl-b", "PrefixListName": "s3", "Cidrs": ["52.216.0.0/15", "3.5.0.0/20", "9.9.9.0/24"]},
        {"PrefixListId": "pl-a", "PrefixListName": "ddb", "Cidrs": ["3.5.0.0/20", "52.94.0.0/22"]},
    ]}
    docs["VpcEndpoints.json"] = {"VpcEndpoints": [
        {"VpcEndpointId": "vpce-s3", "VpcEndpointType": "Gateway", "VpcId": VPC, "State": "available",
         "ServiceName": "com.amazonaws.us-east-1.s3"},
        {"VpcEndpointId": "vpce-ddb", "VpcEndpointType": "Gateway", "VpcId": VPC, "State": "available"},
    ]}
    rt = docs["RouteTables.json"]["RouteTables"][2]["Routes"]   # rtb-db
    rt += [_route("pl-b", GatewayId="vpce-s3"), _route("pl-a", GatewayId="vpce-ddb"),
           _route("pl-unknown", GatewayId="vpce-s3"),
           _route("9.9.9.0/24", NatGatewayId="nat-1"),                                   # static beats pl-b
           _route("52.94.0.0/22", origin="EnableVgwRoutePropagation", GatewayId="vgw-1"),  # pl-a beats propagated
           _route("172.16.0.0/12", GatewayId="igw-1")]                                  # static beats propagated
    imp = import_aws(write(tmp_path, docs))
    db = routes_of(imp.network, "rtb-db")
    assert db["52.216.0.0/15"] == ("vpce-s3", "prefix-list", "pl-b", None)
    assert db["3.5.0.0/20"] == ("vpce-ddb", "prefix-list", "pl-a", None)     # overlapping lists: lowest id wins
    assert db["52.94.0.0/22"] == ("vpce-ddb", "prefix-list", "pl-a", None)
    assert db["9.9.9.0/24"] == ("nat-1", "static", None, None)
    assert db["172.16.0.0/12"] == ("igw-1", "static", None, None)
    assert db["0.0.0.0/0"] == ("vgw-1", "propagated", None, None)
    losers = imp.report.by_status("skipped")
    assert {e.element for e in losers} >= {"rtb-db 3.5.0.0/20 -> vpce-s3", "rtb-db 9.9.9.0/24 -> vpce-s3",
                                           "rtb-db 52.94.0.0/22 -> vgw-1", "rtb-db 172.16.0.0/12 -> vgw-1"}
    assert any("pl-unknown" in e.element and "not in PrefixLists" in e.why for e in losers)
    # the same input in another order gives the same routes
    rt.reverse()
    again = import_aws(write(tmp_path / "rev", docs))
    assert routes_of(again.network, "rtb-db") == db


def test_missing_targets_become_blackholes(tmp_path: Path) -> None:
    docs = base_docs()
    rt = docs["RouteTables.json"]["RouteTables"][1]["Routes"]   # rtb-web
    rt += [_route("1.0.0.0/8", GatewayId="igw-absent"), _route("2.0.0.0/8", VpcPeeringConnectionId="pcx-absent"),
           _route("3.0.0.0/8", TransitGatewayId="tgw-absent"), _route("4.0.0.0/8", GatewayId="igw-detached"),
           _route("5.0.0.0/8", NatGatewayId="nat-gone"), _route("6.0.0.0/8", CarrierGatewayId="cagw-1"),
           _route("7.0.0.0/8", InstanceId="i-unknown"), _route("8.0.0.0/8", InstanceId="i-fw"),
           _route("11.0.0.0/8", Foo="bar")]
    imp = import_aws(write(tmp_path, docs))
    web = routes_of(imp.network, "rtb-web")
    for dest, tid in [("1.0.0.0/8", "igw-absent"), ("2.0.0.0/8", "pcx-absent"), ("3.0.0.0/8", "tgw-absent"),
                      ("4.0.0.0/8", "igw-detached"), ("5.0.0.0/8", "nat-gone"), ("6.0.0.0/8", "cagw-1"),
                      ("7.0.0.0/8", "i-unknown")]:
        assert web[dest] == ("blackhole", "static", None, tid), dest
        assert [e.status for e in imp.report.about(f"rtb-web {dest}")] == ["blackholed"]
    assert web["8.0.0.0/8"] == ("eni-fw", "static", None, None)   # InstanceId alone: its primary ENI
    assert web["11.0.0.0/8"] == ("blackhole", "static", None, None)
    assert imp.network.find("rtb-web").route("1.0.0.0/8").target is BLACKHOLE


def test_routes_refused_by_validation_are_reported(tmp_path: Path) -> None:
    docs = base_docs()
    docs["Vpcs.json"]["Vpcs"].append({"VpcId": PEER, "CidrBlock": "10.50.0.0/16"})
    docs["InternetGateways.json"]["InternetGateways"].append(
        {"InternetGatewayId": "igw-peer", "Attachments": [{"State": "available", "VpcId": PEER}]})
    rt = docs["RouteTables.json"]["RouteTables"][1]["Routes"]   # rtb-web
    rt += [_route("10.0.2.0/24", GatewayId="igw-1"),        # more specific than local, to an igw (#23)
           _route("10.0.9.0/24", NetworkInterfaceId="eni-fw"),  # more specific than local, not a whole subnet
           _route("169.254.169.0/24", GatewayId="igw-1"),   # into the reserved service range (#16)
           _route("10.0.0.0/16", GatewayId="igw-1"),        # duplicates the local route
           _route("20.0.0.0/8", GatewayId="igw-peer"),      # another VPC's gateway
           _route("not-a-cidr", GatewayId="igw-1"),
           {"DestinationIpv6CidrBlock": "::/0", "GatewayId": "igw-1", "State": "active"},
           _route("30.0.0.1/8", GatewayId="igw-1")]         # host bits: normalised
    imp = import_aws(write(tmp_path, docs))
    web = routes_of(imp.network, "rtb-web")
    assert "10.0.2.0/24" not in web and "10.0.9.0/24" not in web and "169.254.169.0/24" not in web
    assert web["10.0.0.0/16"] == ("local", "local", None, None)
    assert web["20.0.0.0/8"] == ("blackhole", "static", None, "igw-peer")
    assert web["30.0.0.0/8"] == ("igw-1", "static", None, None)
    rep = imp.report
    assert [e.status for e in rep.about("rtb-web 10.0.2.0/24")] == ["skipped"]
    assert [e.status for e in rep.about("rtb-web 10.0.9.0/24")] == ["skipped"]
    assert [e.status for e in rep.about("rtb-web 169.254.169.0/24")] == ["skipped"]
    assert [e.status for e in rep.about("rtb-web 10.0.0.0/16 -> igw-1")] == ["skipped"]
    assert [e.status for e in rep.about("rtb-web 20.0.0.0/8")] == ["blackholed"]
    assert [e.status for e in rep.about("rtb-web 'not-a-cidr'")] == ["skipped"]
    assert [e.status for e in rep.about("rtb-web 30.0.0.1/8")] == ["changed"]
    assert any(e.status == "not modelled" and "IPv6" in e.why for e in rep.about("RouteTables"))


def test_local_route_pointed_at_an_eni(tmp_path: Path) -> None:
    docs = base_docs()
    main = docs["RouteTables.json"]["RouteTables"][0]["Routes"]
    main[1] = _route("10.1.0.0/16", origin="CreateRoute", NetworkInterfaceId="eni-fw")  # #21 middlebox
    net = from_aws(write(tmp_path, docs))
    r = net.find("rtb-main").route("10.1.0.0/16")
    assert r.is_local and r.target is net.find("eni-fw")
    assert net.find("rtb-main").route("10.0.0.0/16").target is LOCAL


# --------------------------------------------------------------------------- ENIs and instances

def test_eni_problems_are_reported_not_raised(tmp_path: Path) -> None:
    docs = base_docs()
    enis = docs["NetworkInterfaces.json"]["NetworkInterfaces"]
    enis += [
        _eni("eni-reserved", "subnet-app", "10.0.2.1", "02:bb:00:00:00:01"),        # the router's address
        _eni("eni-outside", "subnet-app", "10.0.7.5", "02:bb:00:00:00:02"),         # not in its subnet
        _eni("eni-dupip", "subnet-app", "10.0.2.10", "02:bb:00:00:00:03"),          # app1's address
        _eni("eni-dupmac", "subnet-app", "10.0.2.60", "02:aa:00:00:01:0a"),         # web1's MAC
        _eni("eni-badmac", "subnet-app", "10.0.2.61", "ff:ff:ff:ff:ff:ff"),
        _eni("eni-sec", "subnet-app", "10.0.2.62", "02:bb:00:00:00:04", secondary=("10.0.2.255", "10.0.2.63")),
        _eni("eni-nosubnet", "subnet-zzz", "10.0.2.64", "02:bb:00:00:00:05"),
        {"NetworkInterfaceId": "eni-noip", "SubnetId": "subnet-app"},
        {"NetworkInterfaceId": "eni-nomac", "SubnetId": "subnet-app", "PrivateIpAddress": "10.0.2.65"},
        _eni("eni-v6", "subnet-app", "10.0.2.66", "02:bb:00:00:00:06") | {"Ipv6Addresses": [{"Ipv6Address": "::1"}]},
    ]
    imp = import_aws(write(tmp_path, docs))
    net, rep = imp.network, imp.report
    for name in ("eni-reserved", "eni-outside", "eni-dupip", "eni-nosubnet", "eni-noip"):
        with pytest.raises(KeyError):
            net.find(name)
        assert [e.status for e in rep.about(name)] == ["skipped"], name
    assert "reserved" in rep.about("eni-reserved")[0].why
    dup = net.find("eni-dupmac")
    assert dup.mac != "02:aa:00:00:01:0a" and [e.status for e in rep.about("eni-dupmac")] == ["changed"]
    assert net.find("eni-badmac").mac != "ff:ff:ff:ff:ff:ff"
    assert [str(i) for i in net.find("eni-sec").ips] == ["10.0.2.62", "10.0.2.63"]   # broadcast secondary dropped
    assert any("10.0.2.255" in e.why for e in rep.about("eni-sec"))
    assert [e.status for e in rep.about("eni-nomac")] == ["changed"]
    assert net.find("eni-nomac").source_dest_check is True
    assert any("IPv6" in e.why for e in rep.about("NetworkInterfaces"))


def test_service_enis_skip_mode(tmp_path: Path) -> None:
    docs = base_docs()
    docs["NetworkInterfaces.json"]["NetworkInterfaces"].append(
        _eni("eni-vpce", "subnet-app", "10.0.2.70", "02:aa:00:00:02:46", itype="vpc_endpoint"))
    imp = import_aws(write(tmp_path, docs), service_enis="skip")
    with pytest.raises(KeyError):
        imp.network.find("eni-nat")
    with pytest.raises(KeyError):
        imp.network.find("eni-vpce")
    assert imp.network.find("nat-1")              # the gateway itself stays a route target
    assert [e.status for e in imp.report if "vpc_endpoint" in e.element] == ["skipped"]
    # the NAT gateway's own interface is its address in both modes (docs/aws-import.md, ENIs): the same note
    assert [e.status for e in imp.report if "nat_gateway" in e.element] == ["note"]
    assert str(imp.network.find("nat-1").ip) == "10.0.1.200"
    with pytest.raises(ValueError):
        import_aws(tmp_path, service_enis="maybe")


def test_instances_fill_in_missing_enis(tmp_path: Path) -> None:
    docs = base_docs()
    docs["Reservations.json"] = {"Reservations": [{"ReservationId": "r-1", "Instances": [
        {"InstanceId": "i-web1", "State": {"Name": "running"}, "SubnetId": "subnet-web", "VpcId": VPC,
         "NetworkInterfaces": [
             # already in NetworkInterfaces.json: not imported twice
             _eni("eni-web1", "subnet-web", "10.0.1.10", "02:aa:00:00:01:0a"),
             # only here: taken (subnet/VPC inherited from the instance when missing)
             {"NetworkInterfaceId": "eni-web1b", "PrivateIpAddress": "10.0.1.11", "MacAddress": "02:cc:00:00:00:01",
              "SourceDestCheck": False, "Attachment": {"DeviceIndex": 1}},
         ]},
        {"InstanceId": "i-gone", "State": {"Name": "terminated"},
         "NetworkInterfaces": [_eni("eni-gone", "subnet-web", "10.0.1.12", "02:cc:00:00:00:02")]},
        {"InstanceId": "i-bare", "State": {"Name": "running"}, "SubnetId": "subnet-app", "VpcId": VPC,
         "PrivateIpAddress": "10.0.2.77"},
        {"InstanceId": "i-nowhere", "State": {"Name": "stopped"}},
    ]}]}
    docs["RouteTables.json"]["RouteTables"][0]["Routes"].append(_route("99.0.0.0/8", InstanceId="i-bare"))
    imp = import_aws(write(tmp_path, docs))
    net = imp.network
    b = net.find("eni-web1b")
    assert str(b.ip) == "10.0.1.11" and b.mac == "02:cc:00:00:00:01" and not b.source_dest_check
    assert b.subnet is net.find("subnet-web")
    assert imp.instances["i-web1"] == ["eni-web1", "eni-web1b"]
    bare = net.find("i-bare")
    assert isinstance(bare, Eni) and str(bare.ip) == "10.0.2.77"
    assert routes_of(net, "rtb-main")["99.0.0.0/8"] == ("i-bare", "static", None, None)
    with pytest.raises(KeyError):
        net.find("eni-gone")
    assert [e.status for e in imp.report.about("i-gone")] == ["skipped"]
    assert [e.status for e in imp.report.about("i-nowhere")] == ["skipped"]
    assert [e.status for e in imp.report.about("i-bare")] == ["changed"]


# --------------------------------------------------------------------------- peerings, transit gateways

def _two_vpcs() -> dict[str, Any]:
    docs = base_docs()
    docs["Peer.json"] = {
        "Vpcs": [{"VpcId": PEER, "CidrBlock": "172.20.0.0/16"}, {"VpcId": "vpc-overlap", "CidrBlock": "10.0.0.0/16"}],
        "Subnets": [{"SubnetId": "subnet-peer", "VpcId": PEER, "CidrBlock": "172.20.1.0/24"}],
        "VpcPeeringConnections": [
            {"VpcPeeringConnectionId": "pcx-ok", "Status": {"Code": "active"},
             "RequesterVpcInfo": {"VpcId": VPC}, "AccepterVpcInfo": {"VpcId": PEER}},
            {"VpcPeeringConnectionId": "pcx-pending", "Status": {"Code": "pending-acceptance"},
             "RequesterVpcInfo": {"VpcId": VPC}, "AccepterVpcInfo": {"VpcId": PEER}},
            {"VpcPeeringConnectionId": "pcx-overlap", "Status": {"Code": "active"},
             "RequesterVpcInfo": {"VpcId": VPC}, "AccepterVpcInfo": {"VpcId": "vpc-overlap"}},
            {"VpcPeeringConnectionId": "pcx-elsewhere", "Status": {"Code": "active"},
             "RequesterVpcInfo": {"VpcId": VPC}, "AccepterVpcInfo": {"VpcId": "vpc-other-account"}},
        ],
        "TransitGateways": [{"TransitGatewayId": "tgw-1", "State": "available"},
                            {"TransitGatewayId": "tgw-old", "State": "deleted"}],
        "TransitGatewayVpcAttachments": [
            {"TransitGatewayAttachmentId": "tgw-attach-1", "TransitGatewayId": "tgw-1", "VpcId": VPC,
             "State": "available"},
        ],
        "TransitGatewayAttachments": [
            {"TransitGatewayAttachmentId": "tgw-attach-1", "TransitGatewayId": "tgw-1", "ResourceId": VPC,
             "ResourceType": "vpc", "State": "available"},
            {"TransitGatewayAttachmentId": "tgw-attach-2", "TransitGatewayId": "tgw-1", "ResourceId": PEER,
             "ResourceType": "vpc", "State": "deleted"},
            {"TransitGatewayAttachmentId": "tgw-attach-3", "TransitGatewayId": "tgw-1", "ResourceId": "vpn-1",
             "ResourceType": "vpn", "State": "available"},
        ],
        "RouteTables": [{"RouteTableId": "rtb-peer", "VpcId": PEER, "Associations": [{"Main": True}],
                         "Routes": [_route("10.0.0.0/16", VpcPeeringConnectionId="pcx-ok"),
                                    _route("10.1.0.0/16", TransitGatewayId="tgw-1")]}],
    }
    web = docs["RouteTables.json"]["RouteTables"][1]["Routes"]
    web += [_route("172.20.0.0/16", VpcPeeringConnectionId="pcx-ok"),
            _route("172.21.0.0/16", VpcPeeringConnectionId="pcx-pending"),
            _route("172.22.0.0/16", VpcPeeringConnectionId="pcx-elsewhere"),
            _route("172.23.0.0/16", TransitGatewayId="tgw-1"),
            _route("172.24.0.0/16", TransitGatewayId="tgw-old")]
    return docs


def test_peerings_and_transit_gateways(tmp_path: Path) -> None:
    imp = import_aws(write(tmp_path, _two_vpcs()))
    net, rep = imp.network, imp.report
    assert [p.name for p in net.peerings] == ["pcx-ok"]
    assert [(t.name, [v.name for v in t.attachments]) for t in net.transit_gateways] == [("tgw-1", [VPC])]
    web = routes_of(net, "rtb-web")
    assert web["172.20.0.0/16"] == ("pcx-ok", "static", None, None)
    assert web["172.21.0.0/16"] == ("blackhole", "static", None, "pcx-pending")
    assert web["172.22.0.0/16"] == ("blackhole", "static", None, "pcx-elsewhere")
    assert web["172.23.0.0/16"] == ("tgw-1", "static", None, None)
    assert web["172.24.0.0/16"] == ("blackhole", "static", None, "tgw-old")
    peer = routes_of(net, "rtb-peer")
    assert peer["10.0.0.0/16"] == ("pcx-ok", "static", None, None)
    assert peer["10.1.0.0/16"] == ("blackhole", "static", None, "tgw-1")  # tgw not attached to the peer VPC
    for name in ("pcx-pending", "pcx-overlap", "pcx-elsewhere", "tgw-old", "tgw-attach-2"):
        assert "skipped" in [e.status for e in rep.about(name)], name
    assert "overlaps" in [e for e in rep.about("pcx-overlap") if e.status == "skipped"][0].why


# --------------------------------------------------------------------------- robustness

def test_garbage_files_and_unknown_keys(tmp_path: Path) -> None:
    docs: dict[str, Any] = dict(base_docs())
    docs["broken.json"] = "{not json"
    docs["list.json"] = json.dumps([1, 2])
    docs["weird.json"] = {"FancyNewThings": [1, 2, 3], "NextToken": "abc", "Subnets": "oops"}
    docs["mixed.json"] = {"Vpcs": [7, {"CidrBlock": "10.9.0.0/16"}, {"VpcId": "vpc-v6", "CidrBlock": "2001:db8::/56"},
                                   {"VpcId": "vpc-tiny", "CidrBlock": "10.70.0.0/29"},
                                   {"VpcId": "vpc-two", "CidrBlock": "10.80.0.0/16",
                                    "CidrBlockAssociationSet": [{"CidrBlock": "10.80.0.0/8",
                                                                 "CidrBlockState": {"State": "associated"}},
                                                                {"CidrBlock": "10.80.0.0/16",
                                                                 "CidrBlockState": {"State": "associated"}}]}]}
    (tmp_path / "README.txt").parent.mkdir(parents=True, exist_ok=True)
    write(tmp_path, docs)
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    imp = import_aws(tmp_path)
    rep = imp.report
    assert [e.status for e in rep.about("broken.json")] == ["skipped"]
    assert [e.status for e in rep.about("list.json")] == ["skipped"]
    assert [e.status for e in rep.about("bin.json")] == ["skipped"]
    assert [e.status for e in rep.about("FancyNewThings")] == ["not modelled"]
    assert not rep.about("NextToken")
    assert any(e.element == "Subnets" and e.status == "skipped" for e in rep)
    assert [e.status for e in rep.about("vpc-tiny")] == ["skipped"]
    assert [e.status for e in rep.about("vpc-v6")] == ["skipped"]
    assert [str(c) for c in imp.network.find("vpc-two").cidrs] == ["10.80.0.0/16"]
    assert imp.network.find("eni-web1")      # the good data still imported
    with pytest.raises(TopologyFileError):
        import_aws(tmp_path / "does-not-exist")


def test_a_folder_without_any_vpc_is_an_error_not_an_empty_network(tmp_path: Path) -> None:
    with pytest.raises(TopologyFileError, match="no VPC found") as err:
        import_aws(tmp_path)
    assert str(tmp_path) in str(err.value)
    (tmp_path / "x.json").write_text('{"SecurityGroups": []}')
    with pytest.raises(TopologyFileError, match=r"1 files read"):
        from_aws(tmp_path)


_junk = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=5),
                  st.sampled_from(["10.0.1.0/24", "10.0.1.10", "0.0.0.0/0", "vpc-0a", "subnet-web", "igw-1",
                                   "blackhole", "local", "rtb-main", "eni-fw", "02:00:00:00:00:01"]),
                  st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


_BASE = base_docs()
_PATHS = [(f,) + p for f, d in _BASE.items() for p in _paths(d)]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(_PATHS), st.booleans(), _junk), min_size=1, max_size=6))
def test_mutated_documents_never_crash(tmp_path_factory: pytest.TempPathFactory,
                                       edits: list[tuple[tuple[Any, ...], bool, Any]]) -> None:
    docs = copy.deepcopy(_BASE)
    for path, delete, value in edits:
        parent: Any = docs
        try:
            for k in path[:-1]:
                parent = parent[k]
            if delete:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        imp = import_aws(write(tmp_path_factory.mktemp("m"), docs))
    except TopologyFileError as exc:  # the mutation removed every VPC: a typed, named error
        assert "no VPC found" in str(exc)
        return
    str(imp.report)
    json.dumps(imp.report.to_dict())
    net = imp.network
    for e in net.enis:                       # what was imported is valid
        assert all(ip in e.subnet.cidr for ip in e.ips)
    for rt in net.route_tables:
        assert all(isinstance(r.destination, ipaddress.IPv4Network) for r in rt.routes)


def test_deterministic(tmp_path: Path) -> None:
    a = import_aws(write(tmp_path / "a", _two_vpcs()))
    b = import_aws(write(tmp_path / "b", _two_vpcs()))
    assert shape(a.network) == shape(b.network)
    assert [str(e) for e in a.report] == [str(e) for e in b.report]


# --------------------------------------------------------------------------- the CLI

def _cli(argv: list[str]) -> int:
    import argparse

    from fastvpc.cli import trace as cli_trace

    parser = argparse.ArgumentParser(prog="fastvpc")
    cli_trace.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_import_aws(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fastvpc.files import load

    folder = write(tmp_path / "in", _two_vpcs())
    out = tmp_path / "topo.json"
    assert _cli(["import-aws", str(folder), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("AWS import of") and "pcx-pending" in text and "SecurityGroups" in text
    loaded = load(out)                                  # the written topology loads back, same network
    assert shape(loaded) == shape(import_aws(folder).network)
    assert _cli(["import-aws", str(folder), "--json", "--service-enis", "skip"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["VPCs"] == 3 and any(e["element"] == "pcx-pending" for e in doc["entries"])


def test_cli_trace_from_aws(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write(tmp_path / "in", base_docs())
    # through the NAT gateway (docs/edge.md §4) to the internet gateway, where nat-1, imported without an
    # Elastic IP, has no public address
    assert _cli(["trace", "--aws", str(folder), "--from", "i-app1", "--to", "8.8.8.8", "--proto", "tcp",
                 "--port", "443"]) == 1
    out = capsys.readouterr()
    assert out.out.splitlines()[0] == ("trace 10.0.2.10 (eni-app1) -> 8.8.8.8 tcp port 443: DROP NO_PUBLIC_IP "
                                       "[IGW_PUBLIC_IP_ASSOCIATION_FOR_EGRESS]")
    assert "nat-1: source 10.0.2.10:49152 translated" in out.out and "AWS import of" in out.err
    assert _cli(["trace", "--aws", str(folder), "--from", "10.1.3.10", "--to", "10.99.0.1", "--json"]) == 1  # dropped
    d = json.loads(capsys.readouterr().out)
    assert (d["ingress"], d["action"], d["reason"], d["ra_code"]) == ("eni-db1", "DROP", "BLACKHOLE",
                                                                     "BAD_STATE_ROUTE")
    assert _cli(["trace", "--aws", str(folder), "--from", "eni-nobody", "--to", "8.8.8.8"]) == 2
    assert "eni-nobody" in capsys.readouterr().err


# --------------------------------------------------------------------------- what the report names

def test_an_unusable_vpcs_file_is_named_as_the_cause_when_no_vpc_is_imported(tmp_path: Path) -> None:
    folder = write(tmp_path, base_docs())
    (folder / "Vpcs.json").write_bytes(b"\xff\xfegarbage")
    with pytest.raises(TopologyFileError) as info:
        from_aws(folder)
    msg = str(info.value)
    assert "Vpcs.json: file is not readable JSON" in msg and "right folder" not in msg, msg
    rep = info.value.report
    assert isinstance(rep, ImportReport)
    assert any(e.file == "Vpcs.json" and e.status == "skipped" for e in rep)
    (folder / "Vpcs.json").unlink()                       # no such file at all: the folder is the suspect
    with pytest.raises(TopologyFileError, match="is this the right folder"):
        from_aws(folder)


def test_fields_of_the_wrong_type_are_reported_with_their_value(tmp_path: Path) -> None:
    docs = base_docs()
    docs["NetworkInterfaces.json"]["NetworkInterfaces"][0]["SourceDestCheck"] = "false"
    docs["RouteTables.json"]["RouteTables"][1]["Routes"] = "none"
    docs["Subnets.json"]["Subnets"].append({"SubnetId": 12345, "VpcId": VPC, "CidrBlock": "10.0.9.0/24"})
    docs["NatGateways.json"]["NatGateways"][0]["NatGatewayAddresses"] = "x"
    imp = import_aws(write(tmp_path, docs))
    net, rep = imp.network, imp.report
    assert net.find("eni-web1").source_dest_check is True
    assert [e.status for e in rep.about("eni-web1")] == ["changed"] and "'false'" in rep.about("eni-web1")[0].why
    assert [r.destination for r in net.find("rtb-web").routes if not r.is_local] == []
    assert any("Routes is a JSON str ('none')" in e.why for e in rep.about("rtb-web"))
    assert any("SubnetId 12345" in e.why for e in rep.about("Subnets"))
    assert any("NatGatewayAddresses is a JSON str ('x')" in e.why for e in rep.about("nat-1"))


def test_an_object_listed_twice_in_one_file_with_different_content_is_noted(tmp_path: Path) -> None:
    docs = base_docs()
    subnets = docs["Subnets.json"]["Subnets"]
    subnets.append(dict(subnets[0], CidrBlock="10.0.99.0/24"))
    subnets.append(dict(subnets[1]))                      # an identical copy: nothing to say
    imp = import_aws(write(tmp_path, docs))
    first, second = subnets[0]["SubnetId"], subnets[1]["SubnetId"]
    assert str(imp.network.find(first).cidr) == subnets[0]["CidrBlock"]
    assert [e.status for e in imp.report.about(first)] == ["note"]
    assert "listed twice in this file" in imp.report.about(first)[0].why
    assert imp.report.about(second) == []


def test_a_folder_named_like_a_describe_file_is_reported_not_walked_into(tmp_path: Path) -> None:
    docs = base_docs()
    subnets = docs.pop("Subnets.json")
    folder = write(tmp_path, docs)
    (folder / "Subnets.json").mkdir()
    (folder / "Subnets.json" / "inner.json").write_text(json.dumps(subnets))
    rep = import_aws(folder).report
    assert [(e.file, e.status, e.why) for e in rep.about("Subnets.json")] == \
        [("Subnets.json", "skipped", "a folder, not a describe-* file: not read")]
    assert "Subnets.json/inner.json" not in rep.files
