"""Differential: the compiled edge against the reference on random networks with Elastic IPs,
internet / VPN / transit gateways, gateway route tables and traffic in both directions (frames on
gateway ports and ENI traffic out through internet gateways): the same verdict, route and output
bytes for every frame, with and without the filters, with and without connection tracking."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastvpc as fv
from fastvpc.reference import ReferenceFlowTable, ReferenceForwarder
from fastvpc.testing import edge_scenarios

NS = 1_000_000_000


def _compare(net, items, filters, state):
    dp = net.compile(filters=filters, edge=True)
    ref = ReferenceForwarder(net, filters=filters, edge=True)
    batch = fv.FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items])
    if state:
        ft, rt = fv.FlowTable(10_000), ReferenceFlowTable(10_000)
        for t in (NS, 2 * NS):   # twice: the second pass meets the first pass's tracked flows
            rk = dp.process(batch, copy=True, state=ft, now=t)
            rr = ref.process(batch, copy=True, state=rt, now=t)
            _same(rk, rr, len(items))
    else:
        _same(dp.process(batch, copy=True), ref.process(batch, copy=True), len(items))


def _same(rk, rr, n):
    for i in range(n):
        k = (int(rk.action[i]), int(rk.reason[i]), int(rk.egress[i]), int(rk.route[i]))
        r = (int(rr.action[i]), int(rr.reason[i]), int(rr.egress[i]), int(rr.route[i]))
        assert k == r, f"frame {i}: kernel {k} reference {r}"
        assert bytes(rk.frames.frame(i)) == bytes(rr.frames.frame(i)), f"frame {i}: bytes differ"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario=edge_scenarios(), filters=st.booleans(), state=st.booleans())
def test_the_edge_engines_agree(scenario, filters, state):
    net, items = scenario
    _compare(net, items, filters, state)   # with filters=False a FlowTable holds only NAT gateway bindings


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario=edge_scenarios())
def test_edge_false_gives_the_routing_verdicts_of_both_engines(scenario):
    net, items = scenario
    batch = fv.FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items])
    for filters in (False, True):
        rk = net.compile(filters=filters, edge=False).process(batch, copy=True)
        rr = ReferenceForwarder(net, filters=filters, edge=False).process(batch, copy=True)
        _same(rk, rr, len(items))
        for i in range(len(items)):      # nothing is translated without the edge
            assert int(rk.reason[i]) not in (22, 23) and \
                (int(rk.action[i]) != 2 or bytes(rk.frames.frame(i)) == items[i][0])
