"""AWS import of the edge (DESIGN §6): Addresses.json (Elastic IPs and their associations), each
ENI's Association.PublicIp, NAT gateways (subnet, ConnectivityType, NatGatewayAddresses) and
gateway (edge) associations of route tables.  Small documents written here (never /work/shared)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from fastvpc import files
from fastvpc.aws import import_aws
from fastvpc.topology import ElasticIp, NatGateway

VPC = "vpc-0e"


def _eni(eid: str, subnet: str, ip: str, mac: str, *, itype: str = "interface", public: str | None = None,
         instance: str | None = None, secondary: tuple[str, ...] = ()) -> dict[str, Any]:
    el: dict[str, Any] = {
        "NetworkInterfaceId": eid, "SubnetId": subnet, "VpcId": VPC, "PrivateIpAddress": ip,
        "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": ip}]
        + [{"Primary": False, "PrivateIpAddress": s} for s in secondary],
        "MacAddress": mac, "SourceDestCheck": True, "InterfaceType": itype, "Status": "in-use",
    }
    if public:
        el["Association"] = {"IpOwnerId": "amazon", "PublicIp": public}
    if instance:
        el["Attachment"] = {"InstanceId": instance, "DeviceIndex": 0, "Status": "attached"}
    return el


def docs() -> dict[str, Any]:
    return {
        "Vpcs.json": {"Vpcs": [{"VpcId": VPC, "CidrBlock": "10.0.0.0/16", "State": "available"}]},
        "Subnets.json": {"Subnets": [
            {"SubnetId": "subnet-pub", "VpcId": VPC, "CidrBlock": "10.0.1.0/24"},
            {"SubnetId": "subnet-priv", "VpcId": VPC, "CidrBlock": "10.0.2.0/24"},
            {"SubnetId": "subnet-fw", "VpcId": VPC, "CidrBlock": "10.0.4.0/24"},
        ]},
        "InternetGateways.json": {"InternetGateways": [
            {"InternetGatewayId": "igw-1", "Attachments": [{"State": "available", "VpcId": VPC}]}]},
        "VpnGateways.json": {"VpnGateways": [
            {"VpnGatewayId": "vgw-1", "State": "available", "VpcAttachments": [{"State": "attached", "VpcId": VPC}]}]},
        "Addresses.json": {"Addresses": [
            {"AllocationId": "eipalloc-web", "PublicIp": "203.0.113.10", "Domain": "vpc",
             "NetworkInterfaceId": "eni-web", "PrivateIpAddress": "10.0.1.10", "AssociationId": "eipassoc-1"},
            {"AllocationId": "eipalloc-nat", "PublicIp": "203.0.113.20", "Domain": "vpc",
             "NetworkInterfaceId": "eni-natif", "PrivateIpAddress": "10.0.1.200"},
            {"AllocationId": "eipalloc-free", "PublicIp": "198.51.100.5", "Domain": "vpc"},
            {"AllocationId": "eipalloc-inst", "PublicIp": "198.51.100.6", "Domain": "vpc", "InstanceId": "i-app"},
            {"AllocationId": "eipalloc-sec", "PublicIp": "198.51.100.7", "Domain": "vpc",
             "NetworkInterfaceId": "eni-fw", "PrivateIpAddress": "10.0.4.11"},
            {"AllocationId": "eipalloc-private", "PublicIp": "10.9.9.9", "Domain": "vpc"},
            {"AllocationId": "eipalloc-dup", "PublicIp": "203.0.113.10", "Domain": "vpc"},
            {"PublicIp": "192.0.2.50", "Domain": "standard"},
            {"AllocationId": "eipalloc-noip", "Domain": "vpc"},
            "not an object",
        ]},
        "NatGateways.json": {"NatGateways": [
            {"NatGatewayId": "nat-pub", "State": "available", "SubnetId": "subnet-pub", "VpcId": VPC,
             "ConnectivityType": "public",
             "NatGatewayAddresses": [{"AllocationId": "eipalloc-nat", "PublicIp": "203.0.113.20",
                                      "NetworkInterfaceId": "eni-natif", "PrivateIp": "10.0.1.200",
                                      "IsPrimary": True},
                                     {"AllocationId": "eipalloc-second", "PublicIp": "203.0.113.21",
                                      "PrivateIp": "10.0.1.201", "IsPrimary": False}]},
            {"NatGatewayId": "nat-priv", "State": "available", "SubnetId": "subnet-priv", "VpcId": VPC,
             "ConnectivityType": "private",
             "NatGatewayAddresses": [{"NetworkInterfaceId": "eni-natpriv", "PrivateIp": "10.0.2.77"}]},
            {"NatGatewayId": "nat-own", "State": "available", "SubnetId": "subnet-priv", "VpcId": VPC,
             "NatGatewayAddresses": [{"AllocationId": "eipalloc-own", "PublicIp": "198.51.100.99",
                                      "PrivateIp": "10.0.2.88"}]},
            {"NatGatewayId": "nat-weird", "State": "available", "SubnetId": "subnet-priv", "VpcId": VPC,
             "ConnectivityType": "sideways", "NatGatewayAddresses": [{"PrivateIp": "10.0.2.300"}]},
        ]},
        "NetworkInterfaces.json": {"NetworkInterfaces": [
            _eni("eni-web", "subnet-pub", "10.0.1.10", "02:ee:00:00:01:0a", public="203.0.113.10"),
            _eni("eni-auto", "subnet-pub", "10.0.1.11", "02:ee:00:00:01:0b", public="54.1.2.3"),
            _eni("eni-app", "subnet-priv", "10.0.2.10", "02:ee:00:00:02:0a", instance="i-app"),
            _eni("eni-fw", "subnet-fw", "10.0.4.10", "02:ee:00:00:04:0a", secondary=("10.0.4.11",)),
            _eni("eni-natif", "subnet-pub", "10.0.1.200", "02:ee:00:00:01:c8", itype="nat_gateway",
                 public="203.0.113.20"),
            _eni("eni-natpriv", "subnet-priv", "10.0.2.77", "02:ee:00:00:02:4d", itype="nat_gateway"),
        ]},
        "RouteTables.json": {"RouteTables": [
            {"RouteTableId": "rtb-main", "VpcId": VPC, "Associations": [{"Main": True}],
             "Routes": [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "Origin": "CreateRouteTable"}]},
            {"RouteTableId": "rtb-pub", "VpcId": VPC,
             "Associations": [{"SubnetId": "subnet-pub"}],
             "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1", "Origin": "CreateRoute"}]},
            {"RouteTableId": "rtb-priv", "VpcId": VPC, "Associations": [{"SubnetId": "subnet-priv"}],
             "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-pub", "Origin": "CreateRoute"}]},
            {"RouteTableId": "rtb-edge", "VpcId": VPC,
             "Associations": [{"GatewayId": "igw-1", "RouteTableAssociationId": "rtbassoc-e",
                               "AssociationState": {"State": "associated"}}],
             "Routes": [{"DestinationCidrBlock": "10.0.1.0/24", "NetworkInterfaceId": "eni-fw",
                         "Origin": "CreateRoute"}]},
            {"RouteTableId": "rtb-badedge", "VpcId": VPC,
             "Associations": [{"GatewayId": "vgw-1"}],
             "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "NetworkInterfaceId": "eni-fw",
                         "Origin": "CreateRoute"}]},
            {"RouteTableId": "rtb-ghostedge", "VpcId": VPC, "Associations": [{"GatewayId": "igw-ghost"}],
             "Routes": []},
        ]},
    }


def write(folder: Path, d: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, doc in d.items():
        (folder / name).write_text(json.dumps(doc))
    return folder


@pytest.fixture
def imp(tmp_path):
    return import_aws(write(tmp_path / "snap", docs()))


def statuses(imp, element):
    return [e.status for e in imp.report.about(element)]


def test_elastic_ips_and_eni_associations(imp):
    net = imp.network
    web, auto, app, fw = (net.find(n) for n in ("eni-web", "eni-auto", "eni-app", "eni-fw"))
    assert web.public_ip == ipaddress.IPv4Address("203.0.113.10") and web.address is net.find("eipalloc-web")
    # an auto-assigned public IP (Association.PublicIp, no Addresses.json entry) is an address too
    assert auto.public_ip == ipaddress.IPv4Address("54.1.2.3") and auto.address.association is auto
    # an address naming only the instance: its primary ENI
    assert app.address is net.find("eipalloc-inst")
    # associated with a secondary private IP: not modelled, reported, left unassociated
    assert fw.public_ip is None and net.find("eipalloc-sec").association is None
    assert "not modelled" in statuses(imp, "eipalloc-sec")
    assert net.find("eipalloc-free").association is None
    assert isinstance(net.find("eipalloc-free"), ElasticIp)


def test_bad_addresses_are_reported_not_raised(imp):
    net = imp.network
    assert statuses(imp, "eipalloc-private") == ["skipped"]
    assert "10.9.9.9" in imp.report.about("eipalloc-private")[0].why
    # the same PublicIp listed twice is one address (the reader keeps the first copy)
    assert net.address_for("203.0.113.10").name == "eipalloc-web"
    with pytest.raises(KeyError):
        net.find("eipalloc-dup")
    assert statuses(imp, "192.0.2.50") == ["skipped"]  # EC2-Classic
    assert net.address_for("192.0.2.50") is None and net.address_for("10.9.9.9") is None
    # elements without a PublicIp or not objects: one line each, naming the file
    lines = [e for e in imp.report.about("Addresses")]
    assert any("PublicIp" in e.why for e in lines) and any("not an object" in e.why for e in lines)
    assert all(e.file.endswith("Addresses.json") for e in lines)


def test_nat_gateways(imp):
    net = imp.network
    pub, priv, own = net.find("nat-pub"), net.find("nat-priv"), net.find("nat-own")
    assert isinstance(pub, NatGateway) and pub.connectivity == "public"
    assert str(pub.ip) == "10.0.1.200" and pub.mac == "02:ee:00:00:01:c8" and pub.subnet is net.find("subnet-pub")
    assert pub.address is net.find("eipalloc-nat") and pub.public_ip == ipaddress.IPv4Address("203.0.113.20")
    assert "not modelled" in statuses(imp, "nat-pub")  # its secondary address
    assert net.address_for("203.0.113.21") is None
    assert priv.connectivity == "private" and priv.address is None and str(priv.ip) == "10.0.2.77"
    assert priv.mac == "02:ee:00:00:02:4d"
    # ConnectivityType absent = public; its Elastic IP only in NatGatewayAddresses: allocated here
    assert own.connectivity == "public" and own.address.name == "eipalloc-own" and str(own.ip) == "10.0.2.88"
    # a bad ConnectivityType and a bad PrivateIp: imported with what can be, and reported
    weird = net.find("nat-weird")
    assert weird.connectivity == "public" and weird.ip in net.find("subnet-priv").cidr
    assert statuses(imp, "nat-weird").count("changed") >= 2
    # the id of the interface AWS gave each NAT gateway names its flow log records
    assert (pub.network_interface_id, priv.network_interface_id, own.network_interface_id) == \
        ("eni-natif", "eni-natpriv", None)
    # the NAT gateways' interfaces are not ENIs; their IPs are the gateways'
    for eid in ("eni-natif", "eni-natpriv"):
        with pytest.raises(KeyError):
            net.find(eid)
    assert any("NAT gateway interface" in e.why for e in imp.report.about("ENIs of type nat_gateway"))
    assert net.find("rtb-priv").route("0.0.0.0/0").target is pub


def test_gateway_route_table_associations(imp):
    net = imp.network
    igw, vgw = net.find("igw-1"), net.find("vgw-1")
    assert igw.route_table is net.find("rtb-edge") and net.find("rtb-edge").gateways == [igw]
    assert vgw.route_table is None
    bad = imp.report.about("rtb-badedge")
    assert [e.status for e in bad] == ["skipped"] and "vgw-1" in bad[0].why and "0.0.0.0/0" in bad[0].why
    assert statuses(imp, "rtb-ghostedge") == ["skipped"] and "igw-ghost" in imp.report.about("rtb-ghostedge")[0].why


def test_counts_and_round_trip(imp):
    c = imp.report.counts
    assert c["Elastic IPs"] == len(imp.network.addresses) == 7
    assert c["public IPs on ENIs"] == 3 and c["gateway route tables"] == 1 and c["NAT gateways"] == 4
    net = imp.network
    assert files.loads(files.dumps(net, "json"), "json") == net
    net.compile()


def test_addresses_alone_is_not_an_error(tmp_path):
    d = docs()
    d["Addresses.json"] = {"Addresses": []}
    imp = import_aws(write(tmp_path / "s", d))
    # no Addresses.json entry: the NAT gateway's Elastic IP comes from NatGatewayAddresses
    assert imp.network.find("nat-pub").address.name == "eipalloc-nat"
    assert imp.network.find("eni-web").address.public_ip == ipaddress.IPv4Address("203.0.113.10")


def test_malformed_addresses_file(tmp_path):
    d = docs()
    d["Addresses.json"] = {"Addresses": {"AllocationId": "x"}}
    imp = import_aws(write(tmp_path / "s", d))
    e = imp.report.about("Addresses")
    assert e and e[0].status == "skipped" and "not a list" in e[0].why and e[0].file.endswith("Addresses.json")
    assert imp.network.find("eni-web").public_ip == ipaddress.IPv4Address("203.0.113.10")  # from the ENI itself
