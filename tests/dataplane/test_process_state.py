"""Dataplane.process(batch, state=, now=): connection tracking through the compiled pass (issue 10)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fastvpc as fv
from fastvpc import packets as pk
from fastvpc.dataplane.state import FlowState, FlowTableBusyError
from filters_oracle import Oracle, frames_of, verdicts

A, R = fv.Action, fv.DropReason
SYN, SYNACK, ACK = 0x02, 0x12, 0x10
S = 10**9


def eth(src: fv.Eni, payload: bytes) -> bytes:
    return pk.ethernet(src.subnet.gateway_mac, src.mac, pk.ETH_IPV4, payload)


def tcp(src: fv.Eni, dst: fv.Eni | str, dport: int, sport: int = 40000, flags: int = SYN) -> bytes:
    return eth(src, pk.tcp(src.ip, dst.ip if isinstance(dst, fv.Eni) else dst, sport, dport, flags=flags))


def batch(frames: list[tuple[bytes, fv.Eni]], ts: list[int] | None = None) -> fv.FrameBatch:
    b = fv.FrameBatch.from_frames([f for f, _ in frames], port=[e.port for _, e in frames])
    if ts is None:
        return b
    return fv.FrameBatch(b.data, b.offsets, b.port, np.array(ts, dtype=np.int64))


@pytest.fixture()
def net() -> fv.Network:
    net = fv.examples.seed_vpc()
    vpc = net.vpcs[0]
    web, app = vpc.add_security_group(name="sg-web"), vpc.add_security_group(name="sg-app")
    web.authorize_ingress("tcp", 443, "0.0.0.0/0")
    app.authorize_ingress("tcp", 8080, web)
    for n in ("web1", "web2"):
        net.find(n).security_groups = [web]
    for n in ("app1", "app2"):
        net.find(n).security_groups = [app]
    return net


def test_time_is_required_and_never_goes_backwards(net: fv.Network) -> None:
    w1, a1 = net.find("web1"), net.find("app1")
    dp = net.compile()
    flows = fv.FlowTable(capacity=16)
    frames = [(tcp(w1, a1, 8080), w1), (tcp(w1, a1, 8080, sport=40001), w1)]
    with pytest.raises(ValueError, match="no timestamps"):
        dp.process(batch(frames), state=flows)
    with pytest.raises(ValueError, match="frame 1 has timestamp -1"):
        dp.process(batch(frames, [5, -1]), state=flows)
    with pytest.raises(ValueError, match="frame 1's timestamp 4 ns goes backwards"):
        dp.process(batch(frames, [5, 4]), state=flows)
    with pytest.raises(TypeError):
        dp.process(batch(frames), state=flows, now=1.5)
    with pytest.raises(TypeError):
        dp.process(batch(frames), state={}, now=1)
    assert len(flows) == 0 and flows.clock is None
    dp.process(batch(frames, [10 * S, 11 * S]), state=flows)
    assert len(flows) == 4 and flows.clock == 11 * S
    before = flows.flows()
    b = batch(frames)
    data = b.data.copy()
    with pytest.raises(ValueError, match="goes backwards: this FlowTable has seen"):
        dp.process(b, state=flows, now=10 * S)
    assert np.array_equal(flows.flows(), before) and flows.clock == 11 * S    # nothing changed
    assert np.array_equal(b.data, data)
    # the batch's timestamps are the default time; now= overrides them
    dp.process(batch(frames, [12 * S, 12 * S]), state=flows, now=20 * S)
    assert flows.clock == 20 * S


def test_a_second_concurrent_process_on_one_table_is_refused(net: fv.Network) -> None:
    w1, a1 = net.find("web1"), net.find("app1")
    dp = net.compile()
    flows = fv.FlowTable(capacity=16)
    flows.acquire()            # another pass holds it
    try:
        with pytest.raises(FlowTableBusyError):
            dp.process(batch([(tcp(w1, a1, 8080), w1)]), state=flows, now=1)
    finally:
        flows.release()
    assert len(flows) == 0
    # real concurrency: two threads on one table: every call either runs or raises, never corrupts
    frames = [(tcp(w1, a1, 8080, sport=1024 + i), w1) for i in range(3000)]
    flows = fv.FlowTable(capacity=10_000)
    errors: list[BaseException] = []
    done = [0]

    def worker(k: int) -> None:
        for j in range(20):
            try:
                dp.process(batch(frames), state=flows, now=10**6 * (k * 100 + j + 1) if k == 0 else 1)
                done[0] += 1
            except FlowTableBusyError:
                pass
            except ValueError:
                pass           # the other thread's clock ran ahead: refused before anything changed
            except BaseException as e:  # pragma: no cover
                errors.append(e)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors and done[0] >= 1
    assert len(flows) == 6000      # 3000 flows at two ENIs, whatever interleaving


def test_a_full_table_drops_new_flows_and_keeps_the_tracked_ones(net: fv.Network) -> None:
    w1, a1 = net.find("web1"), net.find("app1")
    dp = net.compile()
    flows = fv.FlowTable(capacity=3)
    frames = [(tcp(w1, a1, 8080, sport=1), w1),                 # 2 entries
              (tcp(w1, a1, 8080, sport=2), w1),                 # web1's entry is the third; app1's does not fit
              (tcp(w1, a1, 8080, sport=3), w1),                 # web1's entry does not fit
              (tcp(a1, w1, 1, sport=8080, flags=SYNACK), a1)]   # the first flow's reply: tracked at both
    r = dp.process(batch(frames), state=flows, now=S)
    assert [(A(a), R(x)) for a, x in zip(r.action, r.reason)] == [
        (A.DELIVER, R.NONE), (A.DROP, R.FLOW_TABLE_FULL), (A.DROP, R.FLOW_TABLE_FULL), (A.DELIVER, R.NONE)]
    assert int(r.route[2]) == -1        # decided at sg_egress, before the route
    assert len(flows) == 3


def test_rule_changes_do_not_cut_tracked_flows(net: fv.Network) -> None:
    w1, a1 = net.find("web1"), net.find("app1")
    app = net.find("sg-app")
    flows = fv.FlowTable(capacity=64)
    dp = net.compile()
    syn = (tcp(w1, a1, 8080), w1)
    ack = (tcp(w1, a1, 8080, flags=ACK), w1)
    synack = (tcp(a1, w1, 40000, sport=8080, flags=SYNACK), a1)
    r = dp.process(batch([syn, synack, ack]), state=flows, now=S)
    assert list(r.action) == [A.DELIVER] * 3
    app.revoke_ingress("tcp", 8080, net.find("sg-web"))
    dp2 = net.compile()
    # the tracked connection goes on after the recompile (identities are stable) ...
    r = dp2.process(batch([ack, synack]), state=flows, now=2 * S)
    assert list(r.action) == [A.DELIVER] * 2
    # ... a new connection is refused, and without state the old one is too
    assert R(dp2.process(batch([(tcp(w1, a1, 8080, sport=40001), w1)]), state=flows, now=3 * S).reason[0]) \
        == R.SG_INGRESS
    assert R(dp2.process(batch([ack])).reason[0]) == R.SG_INGRESS


def test_an_untracked_flow_is_cut_at_once_by_a_rule_change() -> None:
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16")
    s = vpc.add_subnet("10.0.1.0/24")
    g = vpc.add_security_group(name="open")
    g.authorize_ingress("all", None, "0.0.0.0/0")
    a = s.add_eni("10.0.1.10", security_groups=[g])
    b = s.add_eni("10.0.1.20", security_groups=[g])
    flows = fv.FlowTable(capacity=8)
    syn = (tcp(a, b, 22), a)
    ack = (tcp(a, b, 22, flags=ACK), a)
    assert net.compile().process(batch([syn, ack]), state=flows, now=1).action.tolist() == [A.DELIVER] * 2
    assert len(flows) == 0
    g.revoke_ingress("all", None, "0.0.0.0/0")
    assert R(net.compile().process(batch([ack]), state=flows, now=2).reason[0]) == R.SG_INGRESS


def test_state_with_filters_off_changes_nothing(net: fv.Network) -> None:
    w1, a1 = net.find("web1"), net.find("app1")
    plain = net.compile(filters=False)
    flows = fv.FlowTable(capacity=8)
    frames = [(tcp(w1, a1, 22), w1), (tcp(a1, w1, 22), a1)]
    assert verdicts(plain.process(batch(frames), state=flows, now=1)) == verdicts(plain.process(batch(frames)))
    assert len(flows) == 0


def test_now_without_state_is_checked_and_unused(net: fv.Network) -> None:
    w1, a1 = net.find("web1"), net.find("app1")
    dp = net.compile()
    frames = [(tcp(w1, a1, 8080), w1)]
    assert verdicts(dp.process(batch(frames), now=5)) == verdicts(dp.process(batch(frames)))
    with pytest.raises(ValueError):
        dp.process(batch(frames), now=-1)


def _traffic(net: fv.Network, n: int, seed: int) -> tuple[list[bytes], list[int]]:
    """n frames of many short TCP/UDP/ICMP conversations between the seed VPC's ENIs and the internet,
    requests and replies interleaved (so both directions of a flow are often in one chunk or across)."""
    rng = np.random.default_rng(seed)
    enis = list(net.enis)
    frames, ports = [], []
    while len(frames) < n:
        a, b = rng.choice(len(enis), 2, replace=False)
        x, y = enis[a], enis[b]
        dport = int(rng.choice([443, 8080, 22, 53, 5432]))
        sport = int(rng.integers(1024, 1100))
        kind = rng.integers(4)
        if kind == 0:
            conv = [(x, pk.tcp(x.ip, y.ip, sport, dport, flags=SYN)), (y, pk.tcp(y.ip, x.ip, dport, sport, flags=SYNACK)),
                    (x, pk.tcp(x.ip, y.ip, sport, dport, flags=ACK)), (x, pk.tcp(x.ip, y.ip, sport, dport, flags=0x11))]
        elif kind == 1:
            conv = [(x, pk.udp(x.ip, y.ip, sport, dport)), (y, pk.udp(y.ip, x.ip, dport, sport)),
                    (x, pk.udp(x.ip, y.ip, sport, dport)), (y, pk.udp(y.ip, x.ip, dport, sport))]
        elif kind == 2:
            conv = [(x, pk.icmp_echo(x.ip, y.ip, ident=sport)), (y, pk.icmp_echo(y.ip, x.ip, ident=sport, request=False))]
        else:
            conv = [(x, pk.tcp(x.ip, "8.8.8.8", sport, 443, flags=SYN))]
        for e, p in conv:
            frames.append(eth(e, p))
            ports.append(e.port)
    # interleave conversations: a random stable shuffle that keeps each conversation's order
    keys = np.arange(len(frames)) + rng.integers(0, 40, len(frames))
    order = np.argsort(keys, kind="stable")
    return [frames[i] for i in order][:n], [ports[i] for i in order][:n]


@pytest.mark.parametrize("capacity", [40, 100_000])
def test_exact_for_every_n_threads_and_as_one_frame_at_a_time(net: fv.Network, capacity: int) -> None:
    net.find("sg-app").authorize_ingress("udp", 53, "10.0.0.0/16")
    net.find("sg-app").authorize_ingress("icmp", (8, -1), "10.0.1.0/24")
    dp = net.compile()
    frames, ports = _traffic(net, 1500, seed=capacity)
    ts = np.sort(np.random.default_rng(1).integers(0, 200 * S, len(frames))).astype(np.int64)

    def mk() -> fv.FrameBatch:
        b = fv.FrameBatch.from_frames(frames, port=ports)
        return fv.FrameBatch(b.data, b.offsets, b.port, ts)

    runs = []
    for nt in (1, 2, 4):
        flows = fv.FlowTable(capacity=capacity)
        res = dp.process(mk(), n_threads=nt, state=flows)
        runs.append((verdicts(res), frames_of(res), sorted(map(tuple, flows.flows().tolist()))))
    assert runs[0] == runs[1] == runs[2]
    # one frame at a time through process()
    flows = fv.FlowTable(capacity=capacity)
    singles = [dp.process(fv.FrameBatch.from_frames([f], port=[p]), state=flows, now=int(t))
               for f, p, t in zip(frames, ports, ts)]
    assert [verdicts(r)[0] for r in singles] == runs[0][0]
    assert sorted(map(tuple, flows.flows().tolist())) == runs[0][2]
    # and the rule functions + FlowTable.track, frame at a time
    table = fv.FlowTable(capacity=capacity)
    want, want_frames = Oracle(net, dp).run(frames, ports, state=table, now=ts)
    assert runs[0][0] == want and runs[0][1] == want_frames
    assert sorted(map(tuple, table.flows().tolist())) == runs[0][2]
    reasons = {R(v[1]) for v in want}
    assert R.SG_INGRESS in reasons and (capacity > 100 or R.FLOW_TABLE_FULL in reasons)
    assert sum(v[0] == A.DELIVER for v in want) > 100


@pytest.mark.parametrize("capacity", [40, 100_000])
def test_the_kernel_agrees_with_the_reference_forwarder_across_chunks(net: fv.Network, capacity: int) -> None:
    """1,500 frames (12 chunks) of interleaved conversations, in two batches: the compiled pass on its
    FlowTable (every usable thread) and ReferenceForwarder on its ReferenceFlowTable give the same
    verdicts, frames and flows."""
    from fastvpc.testing import assert_same_verdicts, fresh_states

    net.find("sg-app").authorize_ingress("udp", 53, "10.0.0.0/16")
    dp = net.compile()
    frames, ports = _traffic(net, 1500, seed=7 + capacity)
    states = fresh_states(capacity)
    items = list(zip(frames, ports))
    assert_same_verdicts(dp, net, items[:900], state=states, now=5 * S)
    assert_same_verdicts(dp, net, items[900:], state=states, now=50 * S)


FIN = 0x01


@pytest.mark.parametrize("still_allowed", [True, False])
def test_a_tcp_reopen_from_time_wait_through_the_pass(net: fv.Network, still_allowed: bool) -> None:
    """A connection closed to TIME_WAIT at both ENIs, then the client's SYN on the same 5-tuple: with
    the rule still there it opens a new flow at both ENIs (SYN_SENT, first seen now); with the rule
    revoked (recompiled) the receiver's old flow ends and the SYN is dropped SG_INGRESS, while the
    sender's side (egress allows all) re-opens.  The table pass finds no live entry, asks the rules,
    then makes the full step, which ends the old flow before it judges the SYN."""
    w1, a1 = net.find("web1"), net.find("app1")
    dp = net.compile()
    flows = fv.FlowTable(capacity=64)
    close = [(tcp(w1, a1, 8080, flags=SYN), w1), (tcp(a1, w1, 40000, sport=8080, flags=SYNACK), a1),
             (tcp(w1, a1, 8080, flags=ACK), w1), (tcp(w1, a1, 8080, flags=FIN | ACK), w1),
             (tcp(a1, w1, 40000, sport=8080, flags=FIN | ACK), a1), (tcp(w1, a1, 8080, flags=ACK), w1)]
    r = dp.process(batch(close, [S + i for i in range(6)]), state=flows)
    assert list(r.action) == [A.DELIVER] * 6
    assert set(flows.flows()["state"]) == {FlowState.TCP_TIME_WAIT} and len(flows) == 2
    if not still_allowed:
        net.find("sg-app").revoke_ingress("tcp", 8080, net.find("sg-web"))
        dp = net.compile()
    r = dp.process(batch([(tcp(w1, a1, 8080, flags=SYN), w1)], [20 * S]), state=flows)
    held = flows.flows()
    names = dp.tracking_identities()
    by_eni = {names[int(e)]: (FlowState(int(s)), int(f)) for e, s, f in zip(held["eni"], held["state"], held["first_seen"])}
    if still_allowed:
        assert r.action[0] == A.DELIVER
        assert by_eni == {"web1": (FlowState.TCP_SYN_SENT, 20 * S), "app1": (FlowState.TCP_SYN_SENT, 20 * S)}
    else:
        assert (r.action[0], r.reason[0]) == (A.DROP, R.SG_INGRESS)
        assert by_eni == {"web1": (FlowState.TCP_SYN_SENT, 20 * S)}
