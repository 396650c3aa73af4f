"""Built-in example topologies.

``seed_vpc()`` is the VPC that Ivan Pepelnjak used to explain Amazon VPC forwarding
("Packet Forwarding in Amazon VPC", 2013): three subnets, each with its own route
table acting as a VRF -- web to the internet gateway, db to the VPN gateway (the data
centre), app local only.
"""

from __future__ import annotations

from fastvpc.topology import Network

__all__ = ["seed_vpc"]


def seed_vpc() -> Network:
    """The seed VPC 10.0.0.0/16: web, app and db subnets with two VMs each.

    - web 10.0.1.0/24: rt-web, 0.0.0.0/0 -> igw (internet gateway)
    - app 10.0.2.0/24: the main table, local only
    - db  10.0.3.0/24: rt-db, 0.0.0.0/0 -> vgw (VPN gateway to on-premises)

    VMs are ``.10`` and ``.20`` of each subnet, named web1/web2, app1/app2, db1/db2;
    db1 also owns the secondary IP 10.0.3.11.
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
    web.add_eni("10.0.1.10", name="web1")
    web.add_eni("10.0.1.20", name="web2")
    app.add_eni("10.0.2.10", name="app1")
    app.add_eni("10.0.2.20", name="app2")
    db.add_eni("10.0.3.10", name="db1", secondary_ips=["10.0.3.11"])
    db.add_eni("10.0.3.20", name="db2")
    return net
