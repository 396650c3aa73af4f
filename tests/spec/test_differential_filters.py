"""Differential tests of the filter stages: the compiled kernel against the reference forwarder on
hypothesis-built topologies with random security groups (group references across peerings, prefix
lists, inline CIDR lists, revoked egress), NACLs and per-ENI timeouts; statelessly on random frames,
and statefully on flows with replies, handshakes, teardowns, timeouts, rule changes between batches
and small tables that fill up (``fastvpc.testing.check_stateful``: verdicts and the tables' flows must
agree after every batch)."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastvpc as fv
from fastvpc.reference import ReferenceForwarder
from fastvpc.testing import (Step, _flow_frame, assert_same_verdicts, check_stateful, compile_network,
                             filter_networks, frame_lists, fresh_states, stateful_scenarios)

N_EXAMPLES = int(os.environ.get("FASTVPC_HYPOTHESIS_EXAMPLES", "60"))
_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                        HealthCheck.filter_too_much])
S = 1_000_000_000


@settings(max_examples=N_EXAMPLES, **_SETTINGS)  # type: ignore[arg-type]
@given(filter_networks(), st.data())
def test_stateless_filters_agree(net: fv.Network, data: st.DataObject) -> None:
    """Without state every packet is judged by the rules alone: the kernel's compiled rules are the
    control plane's (security_groups_admit, NetworkAcl.evaluate) on every frame."""
    items = data.draw(frame_lists(net), label="frames")
    assert_same_verdicts(net.compile(), ReferenceForwarder(net), items)


@settings(max_examples=max(10, N_EXAMPLES // 3), **_SETTINGS)  # type: ignore[arg-type]
@given(filter_networks(), st.data())
def test_filters_false_is_the_routing_view(net: fv.Network, data: st.DataObject) -> None:
    items = data.draw(frame_lists(net), label="frames")
    assert_same_verdicts(compile_network(net, filters=False), ReferenceForwarder(net, filters=False), items)


@settings(max_examples=N_EXAMPLES, **_SETTINGS)  # type: ignore[arg-type]
@given(stateful_scenarios())
def test_stateful_runs_agree(scenario: tuple[fv.Network, list[Step], int]) -> None:
    net, steps, capacity = scenario
    check_stateful(net, steps, capacity)


def test_a_long_stateful_run_with_recompiles() -> None:
    """600 frames of 40 flows over 3 subnets and 2 VPCs, time advancing across the UDP and TCP
    timeouts, a capacity that fills, a rule change and a recompile every 100 frames."""
    rng = np.random.default_rng(10)
    net = fv.Network()
    prod = net.add_vpc("10.0.0.0/16", name="prod")
    peer = net.add_vpc("10.1.0.0/16", name="peer")
    pcx = net.add_peering(prod, peer, name="pcx")
    prod.main_route_table.add_route("10.1.0.0/16", pcx)
    peer.main_route_table.add_route("10.0.0.0/16", pcx)
    groups = [prod.add_security_group(name=f"g{i}") for i in range(3)]
    groups[0].authorize_ingress("tcp", (80, 443), "10.0.0.0/8")
    groups[1].authorize_ingress("udp", 53, groups[0])
    groups[2].authorize_ingress("icmp", (8, -1), "0.0.0.0/0")
    groups[2].revoke_egress("all", None, "0.0.0.0/0")
    groups[2].authorize_egress("tcp", None, "10.0.0.0/16")
    pg = peer.add_security_group(name="pg")
    pg.authorize_ingress("tcp", 443, groups[0])
    acl = prod.add_network_acl(name="acl-b")
    acl.add_entry(10, "ingress", "deny", "tcp", 8080, "0.0.0.0/0")
    acl.add_entry(20, "ingress", "allow", "all", None, "0.0.0.0/0")
    acl.add_entry(20, "egress", "allow", "all", None, "0.0.0.0/0")
    enis = []
    for k, cidr in enumerate(["10.0.1.0/24", "10.0.2.0/24"]):
        sub = prod.add_subnet(cidr, name=f"s{k}")
        if k == 1:
            sub.associate_network_acl(acl)
        for j in range(3):
            enis.append(sub.add_eni(f"10.0.{k + 1}.{10 + j}", name=f"e{k}{j}",
                                    security_groups=list(dict.fromkeys([groups[(k + j) % 3], groups[j % 3]])) if j else [groups[k]],
                                    tracking=fv.Tracking(udp=30, tcp_established=60) if j == 2 else None))
    enis.append(peer.add_subnet("10.1.1.0/24", name="ps").add_eni("10.1.1.10", name="p1", security_groups=[pg]))
    flows = []
    for _ in range(40):
        a, b = rng.choice(len(enis), 2, replace=False)
        flows.append((enis[a], enis[b], int(rng.choice([6, 6, 17, 1, 47])), int(rng.choice([80, 443, 53, 8080])),
                      int(rng.integers(30000, 30010))))
    steps: list[Step] = []
    t = 0
    for k in range(6):
        items = []
        for _ in range(100):
            a, b, proto, dport, sport = flows[int(rng.integers(len(flows)))]
            rev = bool(rng.integers(2))
            sender, dst = (b, a.ip) if rev else (a, b.ip)
            sp, dp = (dport, sport) if rev else (sport, dport)
            flags = int(rng.choice([0x02, 0x12, 0x10, 0x18, 0x11, 0x04])) if proto == 6 else \
                int(rng.choice([8, 0, 0, 3])) if proto == 1 else 0
            if proto == 1:
                sp = sport
            items.append((_flow_frame(sender, dst, proto, sp, dp, flags, "whole"), sender.port))
        t += int(rng.choice([S, 20 * S, 40 * S, 70 * S]))
        steps.append(Step(items, t, None))
        if k == 2:
            steps.append(Step([], None, None, lambda n: n.find("g0").revoke_ingress("tcp", (80, 443), "10.0.0.0/8"),
                              "revoke g0 tcp 80-443"))
        if k == 4:
            steps.append(Step([], None, None, lambda n: acl.replace_entry(10, "ingress", "deny", "tcp", 443,
                                                                          "0.0.0.0/0"), "acl-b denies 443"))
    check_stateful(net, steps, capacity=25)


def test_states_survive_a_recompile_and_agree_on_flows() -> None:
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16")
    s = vpc.add_subnet("10.0.1.0/24")
    sg = vpc.add_security_group(name="sg")
    sg.authorize_ingress("tcp", 22, "10.0.1.0/24")
    a = s.add_eni("10.0.1.10", security_groups=[sg])
    b = s.add_eni("10.0.1.20", security_groups=[sg])
    states = fresh_states(16)
    syn = (_flow_frame(a, b.ip, 6, 40000, 22, 0x02, "whole"), a.port)
    assert_same_verdicts(net.compile(), ReferenceForwarder(net), [syn], state=states, now=S)
    sg.revoke_ingress("tcp", 22, "10.0.1.0/24")
    synack = (_flow_frame(b, a.ip, 6, 22, 40000, 0x12, "whole"), b.port)
    assert_same_verdicts(net.compile(), ReferenceForwarder(net), [synack, syn], state=states, now=2 * S)
    assert len(states.reference) == 2            # one flow, tracked at a and at b
