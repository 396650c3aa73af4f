"""The NAT test network that the edge, trace and snapshot tests share (fastvpc only, no scapy).

    from nat_net import nat_network        # tests/ is on sys.path (pyproject.toml pythonpath)

``Pair`` runs the kernel and the reference forwarder side by side on one pair of states.

One VPC ``v`` 10.0.0.0/16: a public subnet ``web`` 10.0.1.0/24 whose main route table sends 0.0.0.0/0 to
the internet gateway ``igw``, the NAT gateway ``nat`` in ``web`` (public, with the Elastic IP ``EIP``, or
``connectivity="private"``), and a private subnet ``app`` 10.0.2.0/24 whose table ``private`` sends
0.0.0.0/0 to the NAT gateway.  No ENIs: each test adds its own.
"""

from __future__ import annotations

import pickle
from typing import NamedTuple

import fastvpc as fv
from fastvpc.reference import ReferenceForwarder
from fastvpc.testing import assert_same_verdicts, fresh_states
from fastvpc.verdicts import Action, DropReason

EIP = "203.0.113.30"
NS = 1_000_000_000
OUTSIDE_MAC = "02:99:00:00:00:01"     # an outside host's, on a gateway's port


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


class Pair:
    """The kernel and the reference over one network and one pair of states, frame batches in turn."""

    def __init__(self, net, capacity=1000, nat_max_per_destination=None):
        self.dp = net.compile()
        self.ref = ReferenceForwarder(net, edge=True, nat=True)
        self.st = fresh_states(capacity, nat_max_per_destination=nat_max_per_destination)

    def run(self, items, now):
        assert_same_verdicts(self.dp, self.ref, items, state=self.st, now=now)
        batch = fv.FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items])
        # the verdicts asserted equal above; these are the kernel's, for the behaviour checks (a copy of
        # the state, so the pair stays in step)
        st = pickle.loads(pickle.dumps(self._before))
        return self.dp.process(batch, copy=True, state=st, now=now)

    def step(self, items, now):
        self._before = pickle.loads(pickle.dumps(self.st.kernel))
        res = self.run(items, now)
        return [(Action(int(res.action[i])), DropReason(int(res.reason[i])), int(res.egress[i]), res.frames.frame(i))
                for i in range(len(items))]


def seed_with_nat_and_peering() -> fv.Network:
    """The seed VPC with a NAT gateway ``nat`` (Elastic IP ``eip-nat`` 203.0.113.30) in web and a peered VPC
    ``other`` (10.9.0.0/16) holding ``far1``: every kind of route target a live switch meets."""
    from fastvpc.examples import seed_vpc

    net = seed_vpc()
    vpc = net.vpcs[0]
    net.find("web").add_nat_gateway(name="nat", address=net.allocate_address("203.0.113.30", name="eip-nat"))
    other = net.add_vpc("10.9.0.0/16", name="other")
    other.add_subnet("10.9.1.0/24", name="far").add_eni("10.9.1.10", name="far1")
    net.add_peering(vpc, other, name="pcx")
    return net
