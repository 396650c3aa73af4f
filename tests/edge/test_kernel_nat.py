"""NAT gateways in the compiled pass (docs/edge.md §4, row #33): the kernel's nat stage against the
reference (``ReferenceForwarder(edge=True, nat=True)``) on the same frames and the same state, byte for
byte, with scapy recomputing every checksum the kernel rewrote (IP, TCP, UDP, ICMP, the RST)."""

from __future__ import annotations

import ipaddress
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastvpc as fv
from frames import assert_checksums as _assert_checksums
from nat_net import EIP, NS, OUTSIDE_MAC, Pair, nat_network
from fastvpc.dataplane.state import FlowTableError
from fastvpc.reference import ReferenceForwarder
from fastvpc.testing import assert_same_verdicts, fresh_states, nat_rows, nat_scenarios
from fastvpc.verdicts import Action, DropReason

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from scapy.compat import raw
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import Ether

def assert_checksums(buf: bytes) -> Ether:
    """This file's frames may carry UDP checksum 0 (none): accepted."""
    return _assert_checksums(buf, udp_zero_ok=True)


def world(private_nat: bool = False):
    w = nat_network(private=private_nat)
    a1 = w.app.add_eni("10.0.2.10", name="a1")
    a2 = w.app.add_eni("10.0.2.11", name="a2")
    return w.net, w.igw, w.nat, a1, a2


def out_frame(eni, l4, dst="8.8.8.8", **ip):
    return raw(Ether(src=eni.mac, dst=eni.subnet.gateway_mac) / IP(src=str(eni.ip), dst=dst, **ip) / l4)


def in_frame(igw, l4, dst=EIP, src="8.8.8.8", **ip):
    return raw(Ether(src=OUTSIDE_MAC, dst=igw.mac) / IP(src=src, dst=dst, **ip) / l4)


def test_out_through_the_nat_gateway_and_the_igw_and_the_reply_back():
    net, igw, nat, a1, _ = world()
    pr = Pair(net)
    [(act, _, egress, frame)] = pr.step([(out_frame(a1, TCP(sport=40000, dport=443, flags="S")), a1.port)], NS)
    assert (act, egress) == (Action.FORWARD, igw.port)
    pkt = assert_checksums(frame)
    assert (pkt[IP].src, pkt[TCP].sport, pkt[IP].dst) == (EIP, 40000, "8.8.8.8")
    [row] = pr.st.kernel.nat_bindings()
    assert (int(row["nat_ip"]), int(row["nat_port"])) == (int(nat.ip), 40000)
    [(act, _, egress, frame)] = pr.step([(in_frame(igw, TCP(sport=443, dport=40000, flags="SA")), igw.port)], 2 * NS)
    assert (act, egress) == (Action.DELIVER, a1.port)
    pkt = assert_checksums(frame)
    assert (pkt[IP].dst, pkt[TCP].dport, pkt.dst, pkt.src) == ("10.0.2.10", 40000, a1.mac, a1.subnet.gateway_mac)


def test_udp_and_icmp_echo_ports_are_allocated_per_destination_and_replies_come_back():
    net, igw, nat, a1, a2 = world()
    pr = Pair(net)
    out = [(out_frame(a1, UDP(sport=5000, dport=53) / b"q1"), a1.port),
           (out_frame(a2, UDP(sport=5000, dport=53) / b"q2"), a2.port),           # same inside port: the next one
           (out_frame(a2, UDP(sport=5000, dport=53) / b"q3", dst="8.8.4.4"), a2.port),   # another destination
           (out_frame(a1, UDP(sport=6000, dport=53, chksum=0) / b"nocsum"), a1.port),
           (out_frame(a1, ICMP(id=7, seq=1) / b"ping"), a1.port)]
    got = pr.step(out, NS)
    ports = [assert_checksums(f)[UDP].sport for _, _, _, f in got[:4]]
    assert ports == [5000, 5001, 5000, 6000]
    assert Ether(got[3][3])[UDP].chksum == 0                                     # no checksum stays none
    assert assert_checksums(got[4][3])[ICMP].id == 1024                          # echo ids below 1024 move up
    replies = [(in_frame(igw, UDP(sport=53, dport=5001) / b"a"), igw.port),
               (in_frame(igw, ICMP(type=0, id=1024, seq=1) / b"ping"), igw.port),
               (in_frame(igw, UDP(sport=53, dport=5002) / b"a"), igw.port),          # no such binding
               (in_frame(igw, ICMP(type=8, id=1024)), igw.port)]                      # a ping to the Elastic IP
    got = pr.step(replies, 2 * NS)
    assert [(a, e) for a, _, e, _ in got[:2]] == [(Action.DELIVER, a2.port), (Action.DELIVER, a1.port)]
    assert assert_checksums(got[0][3])[UDP].dport == 5000 and assert_checksums(got[1][3])[ICMP].id == 7
    assert [r for _, r, _, _ in got[2:]] == [DropReason.NAT_NO_BINDING] * 2


def test_unsupported_protocols_fragments_and_no_state():
    net, igw, nat, a1, _ = world()
    pr = Pair(net)
    gre = raw(Ether(src=a1.mac, dst=a1.subnet.gateway_mac) / IP(src=str(a1.ip), dst="8.8.8.8", proto=47) / (b"x" * 8))
    tcp_frag = out_frame(a1, TCP(sport=1, dport=2), flags="MF")
    udp_first = out_frame(a1, UDP(sport=7000, dport=9999, len=1008) / (b"a" * 16), id=77, flags="MF")
    udp_later = raw(Ether(src=a1.mac, dst=a1.subnet.gateway_mac) / IP(src=str(a1.ip), dst="8.8.8.8", id=77, frag=3,
                                                                      proto=17) / (b"b" * 16))
    orphan = raw(Ether(src=a1.mac, dst=a1.subnet.gateway_mac) / IP(src=str(a1.ip), dst="8.8.8.8", id=78, frag=3,
                                                                   proto=17) / (b"c" * 16))
    ping_error = out_frame(a1, ICMP(type=3, code=1) / (b"x" * 8))
    got = pr.step([(gre, a1.port), (tcp_frag, a1.port), (udp_first, a1.port), (udp_later, a1.port),
                   (orphan, a1.port), (ping_error, a1.port)], NS)
    assert [r for _, r, _, _ in got] == [DropReason.NAT_UNSUPPORTED, DropReason.NAT_UNSUPPORTED, DropReason.NONE,
                                         DropReason.NONE, DropReason.NAT_NO_BINDING, DropReason.NAT_UNSUPPORTED]
    assert Ether(got[3][3])[IP].src == EIP and assert_checksums(got[3][3])
    # without state every NAT frame, both ways, is NAT_NEEDS_STATE in both engines
    items = [(out_frame(a1, TCP(flags="S")), a1.port), (in_frame(igw, TCP(sport=443, dport=40000, flags="SA")),
                                                         igw.port)]
    assert_same_verdicts(pr.dp, pr.ref, items)
    res = pr.dp.process(fv.FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items]), copy=True)
    assert res.reason.tolist() == [DropReason.NAT_NEEDS_STATE] * 2


def test_a_stale_tcp_segment_gets_a_rst_built_in_place_and_a_rst_gets_nothing():
    net, igw, nat, a1, _ = world()
    pr = Pair(net)
    syn = out_frame(a1, TCP(sport=40000, dport=443, flags="S", seq=100))
    assert pr.step([(syn, a1.port)], NS)[0][0] == Action.FORWARD
    ack = out_frame(a1, TCP(sport=40000, dport=443, flags="A", seq=101, ack=5000) / b"data")
    assert pr.step([(ack, a1.port)], 300 * NS)[0][0] == Action.FORWARD
    fin = out_frame(a1, TCP(sport=40001, dport=443, flags="F", seq=9) / b"xy")
    rst = out_frame(a1, TCP(sport=40002, dport=443, flags="R"))
    got = pr.step([(ack, a1.port), (fin, a1.port), (rst, a1.port)], 651 * NS)
    (a, _, e, f), (a2, _, e2, f2), (_, r3, _, _) = got
    assert (a, e, a2, e2, r3) == (Action.REPLY, a1.port, Action.REPLY, a1.port, DropReason.NAT_NO_BINDING)
    p = assert_checksums(f)
    assert (p[IP].src, p[IP].dst, p[TCP].sport, p[TCP].dport, str(p[TCP].flags), p[TCP].seq, p[IP].len,
            p[IP].ttl, p[TCP].window) == ("8.8.8.8", "10.0.2.10", 443, 40000, "R", 5000, 40, 64, 0)
    assert (p.dst, p.src) == (a1.mac, a1.subnet.gateway_mac)
    assert f[54:] == ack[54:]                                   # the rest of the frame stays, as padding
    p2 = assert_checksums(f2)
    assert (str(p2[TCP].flags), p2[TCP].seq, p2[TCP].ack) == ("RA", 0, 9 + 2 + 1)


def test_the_55000_limit_per_destination_with_a_small_limit_and_idle_expiry():
    net, igw, nat, a1, a2 = world()
    pr = Pair(net, nat_max_per_destination=3)
    flows = [(out_frame(a1, UDP(sport=2000 + k, dport=53)), a1.port) for k in range(4)]
    flows.append((out_frame(a2, UDP(sport=2000, dport=53), dst="8.8.4.4"), a2.port))
    got = pr.step(flows, NS)
    assert [r for _, r, _, _ in got] == [DropReason.NONE] * 3 + [DropReason.NAT_PORTS_EXHAUSTED, DropReason.NONE]
    got = pr.step(flows[3:4], 400 * NS)            # the others idled out: a port is free again
    assert got[0][0] == Action.FORWARD


def test_flow_table_full_and_a_second_nat_hop_and_nacls():
    net, igw, nat, a1, a2 = world()
    pr = Pair(net, capacity=2)
    got = pr.step([(out_frame(a1, UDP(sport=3000 + k, dport=53)), a1.port) for k in range(3)], NS)
    assert DropReason.FLOW_TABLE_FULL in [r for _, r, _, _ in got]
    # the NAT gateway's own subnet routed to a NAT gateway: a second hop is not served
    net, igw, nat, a1, a2 = world()
    rt2 = nat.subnet.vpc.add_route_table(name="nat-own")
    rt2.add_route("0.0.0.0/0", nat)
    nat.subnet.associate(rt2)
    pr = Pair(net)
    assert pr.step([(out_frame(a1, UDP(sport=1, dport=2)), a1.port)], NS)[0][1] == DropReason.NAT_UNSUPPORTED
    # the NAT subnet's NACL applies both ways
    net, igw, nat, a1, a2 = world()
    acl = nat.subnet.vpc.add_network_acl(name="nat-acl")
    acl.add_entry(10, "ingress", "deny", "udp", 53, "0.0.0.0/0")
    acl.add_entry(20, "ingress", "allow", "all", None, "0.0.0.0/0")
    acl.add_entry(10, "egress", "deny", "tcp", 25, "0.0.0.0/0")
    acl.add_entry(20, "egress", "allow", "all", None, "0.0.0.0/0")
    nat.subnet.associate_network_acl(acl)
    pr = Pair(net)
    got = pr.step([(out_frame(a1, UDP(sport=1, dport=53)), a1.port),
                   (out_frame(a1, TCP(sport=1025, dport=25, flags="S")), a1.port),
                   (out_frame(a1, TCP(sport=1025, dport=443, flags="S")), a1.port)], NS)
    assert [r for _, r, _, _ in got] == [DropReason.NACL_INGRESS, DropReason.NACL_EGRESS, DropReason.NONE]


def test_a_private_nat_gateway_has_no_public_ip_at_the_igw():
    net, igw, nat, a1, _ = world(private_nat=True)
    pr = Pair(net)
    got = pr.step([(out_frame(a1, TCP(sport=40000, dport=443, flags="S")), a1.port)], NS)
    assert got[0][1] == DropReason.NO_PUBLIC_IP
    assert got[0][3] == out_frame(a1, TCP(sport=40000, dport=443, flags="S"))    # a dropped frame is untouched


def test_threads_give_the_one_frame_at_a_time_result():
    net, igw, nat, a1, a2 = world()
    dp = net.compile()
    frames, ports = [], []
    for k in range(600):
        e = a1 if k % 2 else a2
        if k % 3 == 0:
            frames.append(out_frame(e, UDP(sport=1024 + k % 50, dport=53) / b"x"))
            ports.append(e.port)
        elif k % 3 == 1:
            frames.append(in_frame(igw, UDP(sport=53, dport=1024 + k % 60) / b"y"))
            ports.append(igw.port)
        else:
            frames.append(out_frame(e, TCP(sport=2000 + k % 40, dport=443, flags="S" if k % 4 else "A")))
            ports.append(e.port)
    batch = fv.FrameBatch.from_frames(frames, port=ports)
    results = []
    for threads in (1, 2, 3):
        ft = fv.FlowTable(10_000)
        res = dp.process(batch, copy=True, n_threads=threads, state=ft, now=NS)
        results.append((res.action.tolist(), res.reason.tolist(), bytes(res.frames.data), sorted(nat_rows(ft))))
    assert results[0] == results[1] == results[2]
    assert_same_verdicts(dp, ReferenceForwarder(net, edge=True, nat=True), batch, state=fresh_states(10_000), now=NS)


def test_bindings_are_pickled_with_the_flow_table_and_a_tampered_pickle_is_refused():
    net, igw, nat, a1, _ = world()
    pr = Pair(net)
    pr.step([(out_frame(a1, UDP(sport=5000, dport=53)), a1.port),
             (out_frame(a1, UDP(sport=5001, dport=53, len=1008) / (b"z" * 8), id=5, flags="MF"), a1.port)], NS)
    ft = pr.st.kernel
    back = pickle.loads(pickle.dumps(ft))
    assert nat_rows(back) == nat_rows(ft) and len(nat_rows(ft)) == 2
    assert back._nat.fragments().tobytes() == ft._nat.fragments().tobytes()
    # the reply still finds its binding in the restored table
    res = pr.dp.process(fv.FrameBatch.from_frames([in_frame(igw, UDP(sport=53, dport=5000))], port=[igw.port]),
                        copy=True, state=back, now=2 * NS)
    assert Action(int(res.action[0])) == Action.DELIVER
    fn, args = ft.__reduce__()
    rows = bytearray(args[8])
    rows[24:32] = (10 ** 15).to_bytes(8, "little")          # first_seen after last_seen
    bad = list(args)
    bad[8] = bytes(rows)
    with pytest.raises(FlowTableError, match="digest"):
        fn(*bad)
    from fastvpc.dataplane import state as st
    bad[5] = st._digest(*bad[:5], *bad[6:])
    with pytest.raises(FlowTableError, match="first_seen"):
        fn(*bad)
    assert np.array_equal(pickle.loads(pickle.dumps(fv.FlowTable(10))).nat_bindings(), fv.FlowTable(10).nat_bindings())


# --------------------------------------------------------------------------- random networks, with replies

def _replies(net, ref_state, rnd):
    """Frames answering the reference's NAT bindings: from every internet gateway of the binding's VPC to
    the NAT gateway's Elastic IP (or to its private IP, which the IGW refuses), some with the wrong port."""
    from fastvpc.topology import InternetGateway, NatGateway

    got = getattr(ref_state, "_nat_bindings", None)
    if got is None:
        return []
    nats = {g.name: g for v in net.vpcs for g in v.gateways if isinstance(g, NatGateway)}
    out = []
    for b in got[0].bindings():
        n = nats.get(b.nat)
        if n is None:
            continue
        for igw in (g for g in n.vpc.gateways if isinstance(g, InternetGateway)):
            dst = str(n.public_ip) if n.public_ip is not None and rnd.draw(st.integers(0, 4)) else str(n.ip)
            remote = str(ipaddress.IPv4Address(b.remote_ip))
            port = b.nat_port if rnd.draw(st.integers(0, 5)) else b.nat_port ^ 1   # a wrong port, still 16-bit
            if b.proto == 6:
                l4 = TCP(sport=b.remote_port, dport=port, flags=rnd.draw(st.sampled_from(["SA", "A", "R", "PA"])))
            elif b.proto == 17:
                l4 = UDP(sport=b.remote_port, dport=port) / b"r"
            else:
                l4 = ICMP(type=rnd.draw(st.sampled_from([0, 0, 8, 3])), id=port)
            out.append((in_frame(igw, l4, dst=dst, src=remote), igw.port))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario=nat_scenarios(), filters=st.booleans(), limit=st.sampled_from([None, None, 1, 2]),
       capacity=st.sampled_from([10_000, 10_000, 4]), data=st.data())
def test_random_nat_traffic_with_replies_and_timeouts_in_both_engines(scenario, filters, limit, capacity, data):
    net, items = scenario
    dp = net.compile(filters=filters, edge=True)
    ref = ReferenceForwarder(net, filters=filters, edge=True)
    states = fresh_states(capacity, nat_max_per_destination=limit)
    assert_same_verdicts(dp, ref, items, state=states, now=NS)
    replies = _replies(net, states.reference, data)
    assert_same_verdicts(dp, ref, replies + items, state=states, now=2 * NS)
    assert_same_verdicts(dp, ref, items + replies, state=states, now=400 * NS)   # expired: RSTs, new ports
