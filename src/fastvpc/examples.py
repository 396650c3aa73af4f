"""Built-in example topologies.

``seed_vpc()`` is the VPC that Ivan Pepelnjak used to explain Amazon VPC forwarding
("Packet Forwarding in Amazon VPC", 2013): three subnets, each with its own route
table acting as a VRF -- web to the internet gateway, db to the VPN gateway (the data
centre), app local only.
"""

from __future__ import annotations

import os
from typing import Any

from fastvpc.topology import Network

__all__ = ["seed_aws_describe", "seed_instance_id", "seed_vpc", "write_starter_files"]


def seed_vpc() -> Network:
    """The seed VPC 10.0.0.0/16: web, app and db subnets with two VMs each.

    - web 10.0.1.0/24: rt-web, 0.0.0.0/0 -> igw (internet gateway)
    - app 10.0.2.0/24: the main table, local only
    - db  10.0.3.0/24: rt-db, 0.0.0.0/0 -> vgw (VPN gateway to on-premises)

    VMs are ``.10`` and ``.20`` of each subnet, named web1/web2, app1/app2, db1/db2;
    db1 also owns the secondary IP 10.0.3.11; web1 and web2 have the public IPs 203.0.113.10 and
    203.0.113.20 (a public subnet: they reach the internet through igw, DESIGN.md §6).
    """
    net = Network()
    vpc = net.add_vpc("10.0.0.0/16", name="prod", main_route_table="rt-main")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    app = vpc.add_subnet("10.0.2.0/24", name="app")
    db = vpc.add_subnet("10.0.3.0/24", name="db")
    igw = vpc.add_internet_gateway(name="igw")
    vgw = vpc.add_vpn_gateway(name="vgw")
    web.associate(vpc.add_route_table(name="rt-web", routes=[("0.0.0.0/0", igw)]))
    db.associate(vpc.add_route_table(name="rt-db", routes=[("0.0.0.0/0", vgw)]))
    web.add_eni("10.0.1.10", name="web1", public_ip="203.0.113.10")
    web.add_eni("10.0.1.20", name="web2", public_ip="203.0.113.20")
    app.add_eni("10.0.2.10", name="app1")
    app.add_eni("10.0.2.20", name="app2")
    db.add_eni("10.0.3.10", name="db1", secondary_ips=["10.0.3.11"])
    db.add_eni("10.0.3.20", name="db2")
    return net


# --------------------------------------------------------------------------- starter files

#: The seed VPC's AWS ids in :func:`seed_aws_describe`.
SEED_VPC_ID = "vpc-0seed0000000000a"


def seed_aws_describe() -> dict[str, dict[str, Any]]:
    """The seed VPC as a small ``aws ec2 describe-*`` folder: file name -> JSON document.

    Ids look like AWS's (``subnet-0web...``, ``eni-0web1...``), every VM is an instance
    (``i-0web1...``, ``Name`` tag ``web1``) owning one ENI with the seed's IP and MAC, so
    ``fastvpc trace --aws DIR --from i-0web1... --to 8.8.8.8`` and ``--from web1`` both work; web1's and
    web2's public IPs are their ENIs' ``Association.PublicIp`` (auto-assigned, as AWS shows those).
    """
    net = seed_vpc()
    vpc = net.vpcs[0]

    def sid(name: str) -> str:
        return f"subnet-0{name}{'0' * (16 - len(name))}"

    def eid(name: str) -> str:
        return f"eni-0{name}{'0' * (16 - len(name))}"

    def iid(name: str) -> str:
        return f"i-0{name}{'0' * (16 - len(name))}"

    def tags(name: str) -> list[dict[str, str]]:
        return [{"Key": "Name", "Value": name}]

    gw_ids = {"igw": "igw-0seed00000000000a", "vgw": "vgw-0seed00000000000a"}
    rtb_ids = {rt.name: f"rtb-0{rt.name.replace('-', '')}{'0' * (16 - len(rt.name.replace('-', '')))}"
               for rt in vpc.route_tables}
    enis: list[dict[str, Any]] = []
    reservations: list[dict[str, Any]] = []
    for e in net.enis:
        secondary = [{"PrivateIpAddress": str(ip), "Primary": False} for ip in e.secondary_ips]
        primary: dict[str, Any] = {"PrivateIpAddress": str(e.ip), "Primary": True}
        enis.append({
            "NetworkInterfaceId": eid(e.name), "SubnetId": sid(e.subnet.name), "VpcId": SEED_VPC_ID,
            "PrivateIpAddress": str(e.ip), "MacAddress": e.mac, "SourceDestCheck": e.source_dest_check,
            "InterfaceType": "interface", "Status": "in-use", "TagSet": tags(f"{e.name}-eth0"),
            "PrivateIpAddresses": [primary, *secondary],
            "Attachment": {"InstanceId": iid(e.name), "DeviceIndex": 0, "Status": "attached"},
        })
        if e.public_ip is not None:     # an auto-assigned public IP, as describe-network-interfaces shows it
            pub = {"IpOwnerId": "amazon", "PublicIp": str(e.public_ip),
                   "PublicDnsName": f"ec2-{str(e.public_ip).replace('.', '-')}.compute-1.amazonaws.com"}
            enis[-1]["Association"] = pub
            primary["Association"] = dict(pub)
        reservations.append({"Instances": [{
            "InstanceId": iid(e.name), "SubnetId": sid(e.subnet.name), "VpcId": SEED_VPC_ID,
            "PrivateIpAddress": str(e.ip), "State": {"Name": "running"}, "Tags": tags(e.name),
            "NetworkInterfaces": [{"NetworkInterfaceId": eid(e.name)}],
            **({"PublicIpAddress": str(e.public_ip)} if e.public_ip is not None else {}),
        }]})
    tables = []
    for rt in vpc.route_tables:
        assoc: list[dict[str, Any]] = []
        if rt is vpc.main_route_table:
            assoc.append({"Main": True, "RouteTableId": rtb_ids[rt.name]})
        for s in vpc.subnets:
            if s.explicit_route_table is rt:
                assoc.append({"Main": False, "RouteTableId": rtb_ids[rt.name], "SubnetId": sid(s.name),
                              "AssociationState": {"State": "associated"}})
        routes = [{"DestinationCidrBlock": str(vpc.cidrs[0]), "GatewayId": "local", "State": "active",
                   "Origin": "CreateRouteTable"}]
        for r in rt.routes:
            if r.is_local:
                continue
            routes.append({"DestinationCidrBlock": str(r.destination), "GatewayId": gw_ids[r.target.name],
                           "State": "active", "Origin": "CreateRoute"})
        tables.append({"RouteTableId": rtb_ids[rt.name], "VpcId": SEED_VPC_ID, "Associations": assoc,
                       "Routes": routes, "Tags": tags(rt.name)})
    return {
        "Vpcs.json": {"Vpcs": [{"VpcId": SEED_VPC_ID, "CidrBlock": str(vpc.cidrs[0]), "State": "available",
                                "CidrBlockAssociationSet": [{"CidrBlock": str(vpc.cidrs[0]),
                                                             "CidrBlockState": {"State": "associated"}}],
                                "Tags": tags(vpc.name)}]},
        "Subnets.json": {"Subnets": [{"SubnetId": sid(s.name), "VpcId": SEED_VPC_ID, "CidrBlock": str(s.cidr),
                                      "State": "available", "Tags": tags(s.name)} for s in vpc.subnets]},
        "InternetGateways.json": {"InternetGateways": [{
            "InternetGatewayId": gw_ids["igw"], "Attachments": [{"State": "available", "VpcId": SEED_VPC_ID}],
            "Tags": tags("igw")}]},
        "VpnGateways.json": {"VpnGateways": [{
            "VpnGatewayId": gw_ids["vgw"], "State": "available",
            "VpcAttachments": [{"State": "attached", "VpcId": SEED_VPC_ID}], "Tags": tags("vgw")}]},
        "NetworkInterfaces.json": {"NetworkInterfaces": enis},
        "Instances.json": {"Reservations": reservations},
        "RouteTables.json": {"RouteTables": tables},
    }


def seed_instance_id(vm: str) -> str:
    """The instance id of seed VM ``vm`` (``web1`` ...) in :func:`seed_aws_describe`."""
    return f"i-0{vm}{'0' * (16 - len(vm))}"


def write_starter_files(folder: str | os.PathLike[str]) -> dict[str, str]:
    """Write the README's example files into ``folder`` (created if needed); returns what -> path.

    ``topology.yaml`` and ``topology.json`` (the seed VPC), ``in.pcap`` (the demo's frames, one
    per behaviour, 1 ms apart) and ``aws_configs/`` (the seed as describe-* JSON).
    """
    import json

    from fastvpc.batch import FrameBatch
    from fastvpc.cli.demo import demo_cases
    from fastvpc.pcap import write_pcap

    root = os.fspath(folder)
    os.makedirs(root, exist_ok=True)
    net = seed_vpc()
    out = {"topology.yaml": os.path.join(root, "topology.yaml"), "topology.json": os.path.join(root, "topology.json"),
           "in.pcap": os.path.join(root, "in.pcap"), "aws_configs": os.path.join(root, "aws_configs")}
    net.save(out["topology.yaml"])
    net.save(out["topology.json"])
    cases = demo_cases(net)
    batch = FrameBatch.from_frames([c.frame for c in cases], port=-1,
                                   timestamp=[1_700_000_000_000_000_000 + i * 1_000_000 for i in range(len(cases))])
    write_pcap(out["in.pcap"], batch, nanosecond=True)
    os.makedirs(out["aws_configs"], exist_ok=True)
    for name, doc in seed_aws_describe().items():
        with open(os.path.join(out["aws_configs"], name), "w") as fh:
            json.dump(doc, fh, indent=1)
            fh.write("\n")
    return out
