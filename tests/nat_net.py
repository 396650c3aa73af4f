"""The NAT test network that the edge, trace and snapshot tests share (fastvpc only, no scapy).

    from nat_net import nat_network        # tests/ is on sys.path (pyproject.toml pythonpath)

One VPC ``v`` 10.0.0.0/16: a public subnet ``web`` 10.0.1.0/24 whose main route table sends 0.0.0.0/0 to
the internet gateway ``igw``, the NAT gateway ``nat`` in ``web`` (public, with the Elastic IP ``EIP``, or
``connectivity="private"``), and a private subnet ``app`` 10.0.2.0/24 whose table ``private`` sends
0.0.0.0/0 to the NAT gateway.  No ENIs: each test adds its own.
"""

from __future__ import annotations

from typing import NamedTuple

import fastvpc as fv

EIP = "203.0.113.30"


class NatNet(NamedTuple):
    net: fv.Network
    vpc: fv.Vpc
    web: fv.Subnet
    app: fv.Subnet
    igw: fv.InternetGateway
    nat: fv.NatGateway


def nat_network(*, private: bool = False, eip: str = EIP) -> NatNet:
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    app = vpc.add_subnet("10.0.2.0/24", name="app")
    igw = vpc.add_internet_gateway(name="igw")
    vpc.main_route_table.add_route("0.0.0.0/0", igw)
    if private:
        nat = web.add_nat_gateway(name="nat", connectivity="private")
    else:
        nat = web.add_nat_gateway(name="nat", address=net.allocate_address(eip))
    app.associate(vpc.add_route_table(name="private", routes=[("0.0.0.0/0", nat)]))
    return NatNet(net, vpc, web, app, igw, nat)
