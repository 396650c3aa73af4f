"""The reference forwarder's filter stages and its connection-tracking table on their own (the
differential tests against the kernel are tests/spec/test_differential_filters.py)."""

from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import frames as F

import fastvpc as fv
from fastvpc.batch import FrameBatch
from fastvpc.dataplane.state import Admit, Direction, FlowState, FlowTableBusyError, TrackCode
from fastvpc.reference import ReferenceFlow, ReferenceFlowTable, ReferenceForwarder
from fastvpc.testing import frame_lists, networks, run, stateful_scenarios, Step
from fastvpc.verdicts import Action, DropReason

S = 1_000_000_000
A, B = 0x0A000001, 0x0A000002


def small() -> fv.Network:
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v")
    s1, s2 = vpc.add_subnet("10.0.1.0/24", name="s1"), vpc.add_subnet("10.0.2.0/24", name="s2")
    g1, g2 = vpc.add_security_group(name="g1"), vpc.add_security_group(name="g2")
    g2.authorize_ingress("tcp", 80, g1)
    g2.authorize_ingress("udp", None, "10.0.1.0/24")
    s1.add_eni("10.0.1.10", name="a", security_groups=[g1])
    s2.add_eni("10.0.2.10", name="b", security_groups=[g2])
    return net


def syn(net: fv.Network, dport: int = 80, **kw: object) -> tuple[bytes, int]:
    a = net.find("a")
    return F.tcp_frame(a, "10.0.2.10", a.subnet, dport=dport, **kw), a.port


def synack(net: fv.Network) -> tuple[bytes, int]:
    b = net.find("b")
    return F.tcp_frame(b, "10.0.1.10", b.subnet, sport=80, dport=40000, tcp_flags="SA"), b.port


# --------------------------------------------------------------------------- the stages

def test_filters_false_skips_the_four_stages() -> None:
    net = small()
    hops: list = []
    v = ReferenceForwarder(net, filters=False).forward(*syn(net, 22), hops=hops)
    assert v.action == Action.DELIVER and {h.kind for h in hops}.isdisjoint({"sg", "acl"})
    assert ReferenceForwarder(net).forward(*syn(net, 22)).reason == DropReason.SG_INGRESS
    with pytest.raises(TypeError, match="filters"):
        ReferenceForwarder(net, filters="yes")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(networks(2), st.data())
def test_allow_all_filters_change_no_verdict(net: fv.Network, data: st.DataObject) -> None:
    """With every group admitting everything both ways and the default NACLs, the filters change no verdict
    (statelessly and statefully): they only ever add drops.  Statefully the routing view is stateful too:
    a NAT gateway translates only with a table (without one its traffic is NAT_NEEDS_STATE either way)."""
    for v in net.vpcs:
        for g in v.security_groups:
            g.authorize_ingress("all", None, "0.0.0.0/0")
    items = data.draw(frame_lists(net), label="frames")
    plain = run(ReferenceForwarder(net, filters=False), items, copy=True)
    assert run(ReferenceForwarder(net), items, copy=True) == plain
    plain_state = run(ReferenceForwarder(net, filters=False), items, copy=True, state=ReferenceFlowTable(10_000), now=0)
    assert run(ReferenceForwarder(net), items, copy=True, state=ReferenceFlowTable(10_000), now=0) == plain_state


def test_non_first_fragments_pass_the_groups_and_meet_the_nacls_without_a_port() -> None:
    """A later fragment has no L4 header: the groups judged its datagram by the first fragment and pass it (no
    table step, so a tracked flow's fragmented reply arrives whole); the stateless NACLs judge it, and only
    entries for all ports can match it."""
    net = small()
    ref = ReferenceForwarder(net)
    a, s1 = net.find("a"), net.find("s1")
    whole_tcp = F.tcp_frame(a, "10.0.2.10", s1, dport=81)
    assert ref.forward(whole_tcp, a.port).reason == DropReason.SG_INGRESS           # tcp 81 is not admitted
    frag = F.tcp_frame(a, "10.0.2.10", s1, dport=81, frag=5)
    assert ref.forward(frag, a.port).action == Action.DELIVER                        # its first fragment was judged
    table = ReferenceFlowTable(100)
    assert ref.forward(frag, a.port, state=table, now=0).action == Action.DELIVER
    assert len(table) == 0                                                           # no entry for a fragment
    ufrag = F.udp_frame(a, "10.0.2.10", s1, dport=9, frag=5)
    net.find("v").default_network_acl.add_entry(50, "egress", "deny", "udp", 9, "0.0.0.0/0")
    assert ref.forward(ufrag, a.port).action == Action.DELIVER              # port unknown: the entry does not match
    whole = F.udp_frame(a, "10.0.2.10", s1, dport=9)
    assert ref.forward(whole, a.port).reason == DropReason.NACL_EGRESS
    net.find("v").default_network_acl.add_entry(40, "egress", "deny", "udp", None, "0.0.0.0/0")
    assert ref.forward(ufrag, a.port).reason == DropReason.NACL_EGRESS     # all ports: it matches


def test_hops_name_the_deciding_rule_and_entry() -> None:
    net = small()
    hops: list = []
    ReferenceForwarder(net).forward(*syn(net, 22), hops=hops)
    sg = [h for h in hops if h.kind == "sg"]
    assert str(sg[0]).split(None, 1)[1] == "g1 egress: allowed by all to 0.0.0.0/0"
    assert sg[0].rule == {"group": "g1", "direction": "egress", "protocol": "all", "ports": None, "icmp": None,
                          "peer": "0.0.0.0/0", "description": "all to 0.0.0.0/0"}
    assert str(sg[1]).split(None, 1)[1] == "g2 ingress: no rule admits tcp 22 from 10.0.1.10"
    assert sg[1].rule is None and sg[1].to_dict()["direction"] == "ingress"
    acl = net.find("v").add_network_acl(name="acl-x")
    acl.add_entry(100, "ingress", "deny", "tcp", 80, "0.0.0.0/0")
    net.find("s2").associate_network_acl(acl)
    hops = []
    ReferenceForwarder(net).forward(*syn(net, 80), hops=hops)
    assert str(hops[-1]).split(None, 1)[1].startswith("acl-x ingress: denied by entry 100 (deny tcp 80 from 0.0.0.0/0)")
    assert hops[-1].rule["number"] == 100 and hops[-1].stage == "nacl_ingress"
    hops = []
    ReferenceForwarder(net).forward(*synack(net), hops=hops)
    assert "denied by the implicit deny (entry 32767)" in hops[-1].detail and hops[-1].stage == "nacl_egress"


def test_tracked_hops_say_so() -> None:
    net = small()
    flows = ReferenceFlowTable(10)
    ref = ReferenceForwarder(net)
    ref.forward(*syn(net), state=flows, now=0)
    hops: list = []
    v = ref.forward(*synack(net), hops=hops, state=flows, now=S)
    assert v.action == Action.DELIVER
    assert [h.detail for h in hops if h.kind == "sg"] == [
        "admitted by tracked flow (SYN_RECV) of b", "admitted by tracked flow (SYN_RECV) of a"]


# --------------------------------------------------------------------------- process(state=, now=)

@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(stateful_scenarios())
def test_a_stateful_batch_is_its_frames_one_at_a_time(scenario: tuple[fv.Network, list[Step], int]) -> None:
    net, steps, capacity = scenario
    ref = ReferenceForwarder(net)
    batched, single = ReferenceFlowTable(capacity), ReferenceFlowTable(capacity)
    for step in steps:
        if step.change is not None:
            step.change(net)
            continue
        times = step.timestamps or [step.now] * len(step.items)
        batch = FrameBatch.from_frames([f for f, _ in step.items], port=[p for _, p in step.items], timestamp=times)
        got = ref.process(batch, copy=True, state=batched)
        for i, (frame, port) in enumerate(step.items):
            v = ref.forward(frame, port, state=single, now=times[i])
            assert (int(got.action[i]), int(got.reason[i]), int(got.egress[i])) == (v.action, v.reason, v.egress)
    assert batched.flows() == single.flows()


def test_time_errors_name_the_frame_and_change_nothing() -> None:
    net = small()
    ref = ReferenceForwarder(net)
    flows = ReferenceFlowTable(10)
    two = FrameBatch.from_frames([syn(net)[0], synack(net)[0]], port=[syn(net)[1], synack(net)[1]])
    with pytest.raises(ValueError, match="frame 0"):
        ref.process(two, copy=True, state=flows)                         # neither now= nor timestamps
    with pytest.raises(ValueError, match="frame 1.*no timestamp"):
        ref.process(FrameBatch(two.data, two.offsets, two.port, timestamp=[5, -1]), copy=True, state=flows)
    ref.process(two, copy=True, state=flows, now=10 * S)
    held, clock = flows.flows(), flows.clock
    with pytest.raises(ValueError, match="backwards"):
        ref.process(two, copy=True, state=flows, now=9 * S)
    with pytest.raises(ValueError, match=r"frame 1's timestamp .* \(before frame 0's"):
        ref.process(FrameBatch(two.data, two.offsets, two.port, timestamp=[11 * S, 10 * S + 5]), copy=True,
                    state=flows)
    assert flows.flows() == held and flows.clock == clock
    with pytest.raises(ValueError, match="now="):
        ref.forward(*syn(net), state=flows)
    with pytest.raises(TypeError, match="ReferenceFlowTable"):
        ref.process(two, copy=True, state=fv.FlowTable(4), now=0)


def test_one_pass_at_a_time() -> None:
    net = small()
    flows = ReferenceFlowTable(10)
    batch = FrameBatch.from_frames([syn(net)[0]], port=[syn(net)[1]])
    with flows.guard():
        with pytest.raises(FlowTableBusyError):
            ReferenceForwarder(net).process(batch, copy=True, state=flows, now=0)
    ReferenceForwarder(net).process(batch, copy=True, state=flows, now=0)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for k in range(50):
                ReferenceForwarder(net).process(batch, copy=True, state=flows, now=S)
        except FlowTableBusyError as exc:
            errors.append(exc)

    ts = [threading.Thread(target=worker) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(flows) == 2       # whoever ran, the flow is tracked at a and b, once each


# --------------------------------------------------------------------------- the table itself

def test_table_basics() -> None:
    t = ReferenceFlowTable(capacity=2)
    assert (len(t), t.clock, t.flows()) == (0, None, [])
    assert t.track("a", 6, A, B, 1000, 80, 0x02, 60, 0, Admit.ADMIT) == (TrackCode.NEW, Direction.ORIGINAL,
                                                                        FlowState.TCP_SYN_SENT)
    assert t.track("a", 6, B, A, 80, 1000, 0x12, 60, S, Admit.DENY) == (TrackCode.HIT, Direction.REPLY,
                                                                       FlowState.TCP_SYN_RECV)
    assert t.track("b", 6, B, A, 80, 1000, 0x12, 60, S, Admit.DENY)[0] == TrackCode.MISS    # another ENI's table
    assert t.flows() == [ReferenceFlow("a", 0, 6, A, B, 1000, 80, FlowState.TCP_SYN_RECV, 0, S, 2, 120, 60,
                                       61 * S)]
    t.track("a", 17, A, B, 5, 53, 0, 10, S, Admit.ADMIT)
    assert t.track("a", 17, A, B, 6, 53, 0, 10, S, Admit.ADMIT)[0] == TrackCode.FULL
    assert t.track("a", 17, A, B, 6, 53, 0, 10, S, Admit.UNTRACKED)[0] == TrackCode.PASS   # needs no entry
    assert t.expire(32 * S) == 1 and len(t) == 1                     # the UDP flow (30 s) is gone
    with pytest.raises(ValueError, match="backwards"):
        t.track("a", 6, A, B, 1, 2, 2, 1, 0, Admit.ADMIT)
    t.clear()
    assert len(t) == 0 and t.clock is None
    with pytest.raises(TypeError):
        ReferenceFlowTable(2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="capacity"):
        ReferenceFlowTable(0)


def test_eni_tracking_timeouts_are_used() -> None:
    t = ReferenceFlowTable(4)
    t.track("a", 6, A, B, 1, 2, 0x10, 40, 0, Admit.ADMIT, timeouts=fv.Tracking(tcp_established=350))
    assert t.flows()[0].timeout == 350
    t.track("a", 47, A, B, 0, 0, 0, 40, 0, Admit.ADMIT, timeouts={"other": 7})
    assert {f.proto: f.timeout for f in t.flows()} == {6: 350, 47: 7}
