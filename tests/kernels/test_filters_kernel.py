"""The compiled filter stages (issue 10): rows #45-#56 of vpc-behaviour.md on the kernel, and the
kernel's SG / NACL verdicts against fastvpc.topology.filters' own functions on random rules."""

from __future__ import annotations

import ipaddress
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastvpc as fv
from fastvpc import packets as pk
from fastvpc.errors import SnapshotError
from filters_oracle import Oracle, frames_of, verdicts

A, R = fv.Action, fv.DropReason
SYN, SYNACK, ACK = 0x02, 0x12, 0x10


def eth(src: fv.Eni, payload: bytes, dst_mac: str | None = None) -> bytes:
    return pk.ethernet(dst_mac or src.subnet.gateway_mac, src.mac, pk.ETH_IPV4, payload)


def tcp(src: fv.Eni, dst: object, dport: int, sport: int = 40000, flags: int = SYN, src_ip: object = None) -> bytes:
    return eth(src, pk.tcp(src_ip or src.ip, dst, sport, dport, flags=flags))


def udp(src: fv.Eni, dst: object, dport: int, sport: int = 40000) -> bytes:
    return eth(src, pk.udp(src.ip, dst, sport, dport, b"x" * 8))


def ping(src: fv.Eni, dst: object, request: bool = True) -> bytes:
    return eth(src, pk.icmp_echo(src.ip, dst, request=request))


def run(dp: fv.Dataplane, frames: list[tuple[bytes, fv.Eni]], **kw: object) -> fv.Result:
    return dp.process(fv.FrameBatch.from_frames([f for f, _ in frames], port=[e.port for _, e in frames]), **kw)


def one(dp: fv.Dataplane, frame: bytes, eni: fv.Eni) -> tuple[fv.Action, fv.DropReason, int]:
    r = run(dp, [(frame, eni)])
    return A(r.action[0]), R(r.reason[0]), int(r.egress[0])


@pytest.fixture()
def seed() -> fv.Network:
    """The seed VPC with a web tier group, an app group that admits web on 8080, a db group."""
    net = fv.examples.seed_vpc()
    vpc = net.vpcs[0]
    sg_web = vpc.add_security_group(name="sg-web")
    sg_web.authorize_ingress("tcp", 443, "0.0.0.0/0")
    sg_app = vpc.add_security_group(name="sg-app")
    sg_app.authorize_ingress("tcp", 8080, sg_web)
    sg_db = vpc.add_security_group(name="sg-db")
    sg_db.authorize_ingress("tcp", 5432, sg_app)
    for n in ("web1", "web2"):
        net.find(n).security_groups = [sg_web]
    for n in ("app1", "app2"):
        net.find(n).security_groups = [sg_app]
    for n in ("db1", "db2"):
        net.find(n).security_groups = [sg_db]
    return net


# --------------------------------------------------------------------------- #45 allow-only, default deny

def test_45_no_ingress_rule_denies_and_an_empty_egress_lets_nothing_out(seed: fv.Network) -> None:
    w1, a1 = seed.find("web1"), seed.find("app1")
    dp = seed.compile()
    assert one(dp, tcp(w1, a1.ip, 22), w1)[:2] == (A.DROP, R.SG_INGRESS)
    assert one(dp, tcp(w1, a1.ip, 8080), w1)[:2] == (A.DELIVER, R.NONE)
    seed.find("sg-web").clear_rules("egress")
    dp = seed.compile()
    assert one(dp, tcp(w1, a1.ip, 8080), w1)[:2] == (A.DROP, R.SG_EGRESS)
    assert one(dp, tcp(w1, "8.8.8.8", 443), w1)[:2] == (A.DROP, R.SG_EGRESS)


def test_45_filters_false_is_the_unfiltered_pass(seed: fv.Network) -> None:
    w1, a1 = seed.find("web1"), seed.find("app1")
    frames = [(tcp(w1, a1.ip, 22), w1), (tcp(w1, "8.8.8.8", 443), w1), (ping(w1, w1.subnet.router_ip), w1)]
    off = run(seed.compile(filters=False), frames)
    assert [A(a) for a in off.action] == [A.DELIVER, A.FORWARD, A.REPLY]
    assert not seed.compile(filters=False).filters and seed.compile().filters


# --------------------------------------------------------------------------- #46 union

def test_46_rules_of_all_groups_are_a_union(seed: fv.Network) -> None:
    vpc, w1, a1 = seed.vpcs[0], seed.find("web1"), seed.find("app1")
    ssh = vpc.add_security_group(name="sg-ssh")
    ssh.authorize_ingress("tcp", 22, "10.0.1.0/24")
    a1.security_groups = [seed.find("sg-app"), ssh]
    dp = seed.compile()
    assert one(dp, tcp(w1, a1.ip, 22), w1)[0] == A.DELIVER
    assert one(dp, tcp(w1, a1.ip, 8080), w1)[0] == A.DELIVER
    assert one(dp, tcp(w1, a1.ip, 80), w1)[:2] == (A.DROP, R.SG_INGRESS)
    # sets are compiled once: app2 (sg-app only) and app1 (sg-app + sg-ssh) differ, web1/web2 share one
    filt = dp.eni_filt
    idx = {n: i for i, n in enumerate(dp.eni_names)}
    assert filt["sgset"][idx["web1"]] == filt["sgset"][idx["web2"]]
    assert filt["sgset"][idx["app1"]] != filt["sgset"][idx["app2"]]


# --------------------------------------------------------------------------- #47 stateful

def test_47_a_reply_is_admitted_only_with_state(seed: fv.Network) -> None:
    w1, a1 = seed.find("web1"), seed.find("app1")
    dp = seed.compile()
    syn = (tcp(w1, a1.ip, 8080, sport=40000), w1)
    synack = (tcp(a1, w1.ip, 40000, sport=8080, flags=SYNACK), a1)
    # without state: the SYN-ACK is judged by the rules (web admits only 443): dropped at web1
    r = run(dp, [syn, synack])
    assert [(A(a), R(x)) for a, x in zip(r.action, r.reason)] == [(A.DELIVER, R.NONE), (A.DROP, R.SG_INGRESS)]
    # with state, in one batch: the SYN opened entries at web1 and app1, the SYN-ACK is admitted
    flows = fv.FlowTable(capacity=64)
    r = run(dp, [syn, synack], state=flows, now=10**9)
    assert [A(a) for a in r.action] == [A.DELIVER, A.DELIVER]
    assert len(flows) == 2
    # an unsolicited packet from app1 to web1 is still refused
    assert R(run(dp, [(tcp(a1, w1.ip, 40001, sport=8080, flags=SYN), a1)], state=flows, now=2 * 10**9).reason[0]) \
        == R.SG_INGRESS


def test_47_the_senders_entry_stays_when_a_later_stage_drops(seed: fv.Network) -> None:
    w1, a1 = seed.find("web1"), seed.find("app1")
    dp = seed.compile()
    flows = fv.FlowTable(capacity=64)
    r = run(dp, [(tcp(w1, a1.ip, 22), w1)], state=flows, now=1)
    assert R(r.reason[0]) == R.SG_INGRESS
    f = flows.flows()
    assert len(f) == 1 and int(f["eni"][0]) == int(dp.eni_filt["ident"][list(dp.eni_names).index("web1")])


# --------------------------------------------------------------------------- #48 group references

def test_48_a_group_reference_matches_the_members_private_ips(seed: fv.Network) -> None:
    w1, a1, d1 = seed.find("web1"), seed.find("app1"), seed.find("db1")
    dp = seed.compile()
    assert one(dp, tcp(a1, d1.ip, 5432), a1)[0] == A.DELIVER
    assert one(dp, tcp(w1, d1.ip, 5432), w1)[:2] == (A.DROP, R.SG_INGRESS)
    # a secondary IP of a member matches too (source/dest check: w1 sends from its own secondary)
    app3 = seed.find("app").add_eni("10.0.2.30", secondary_ips=["10.0.2.31"], security_groups=[seed.find("sg-app")])
    dp = seed.compile()
    assert one(dp, tcp(app3, d1.ip, 5432, src_ip="10.0.2.31"), app3)[0] == A.DELIVER
    # membership changes are picked up by a recompile
    app3.security_groups = [seed.vpcs[0].default_security_group]
    dp = seed.compile()
    assert one(dp, tcp(app3, d1.ip, 5432, src_ip="10.0.2.31"), app3)[:2] == (A.DROP, R.SG_INGRESS)


def test_48_a_reference_into_a_peered_vpc() -> None:
    net = fv.Network()
    v1 = net.add_vpc("10.0.0.0/16", name="a")
    v2 = net.add_vpc("10.1.0.0/16", name="b")
    pcx = net.add_peering(v1, v2, name="pcx")
    s1, s2 = v1.add_subnet("10.0.1.0/24"), v2.add_subnet("10.1.1.0/24")
    v1.main_route_table.add_route("10.1.0.0/16", pcx)
    v2.main_route_table.add_route("10.0.0.0/16", pcx)
    g1 = v1.add_security_group(name="g1")
    g2 = v2.add_security_group(name="g2")
    g2.authorize_ingress("udp", 53, g1)
    x = s1.add_eni("10.0.1.10", security_groups=[g1])
    y = s1.add_eni("10.0.1.20")
    z = s2.add_eni("10.1.1.10", security_groups=[g2])
    dp = net.compile()
    assert one(dp, udp(x, z.ip, 53), x)[0] == A.DELIVER
    assert one(dp, udp(y, z.ip, 53), y)[:2] == (A.DROP, R.SG_INGRESS)


# --------------------------------------------------------------------------- #49 timeouts, untracked

def test_49_an_idle_udp_flow_times_out_per_eni_tracking(seed: fv.Network) -> None:
    w1, a1 = seed.find("web1"), seed.find("app1")
    seed.find("sg-app").authorize_ingress("udp", 5000, seed.find("sg-web"))
    a1.tracking = fv.Tracking(udp=30)
    w1.tracking = fv.Tracking(udp=60)
    dp = seed.compile()
    flows = fv.FlowTable(capacity=64)
    s = 10**9
    assert run(dp, [(udp(w1, a1.ip, 5000), w1)], state=flows, now=0).action[0] == A.DELIVER
    reply = (eth(a1, pk.udp(a1.ip, w1.ip, 5000, 40000, b"y" * 8)), a1)
    # 29 s later the reply is admitted (both tables hold the flow) ...
    assert run(dp, [reply], state=flows, now=29 * s).action[0] == A.DELIVER
    # ... 40 s after that app1's entry (30 s) has expired: the reply is judged by sg-app's egress (all): it opens a
    # new entry there, and web1's entry (60 s) still admits it
    assert run(dp, [reply], state=flows, now=69 * s).action[0] == A.DELIVER
    # 61 s later both are gone: web1's rules (443 only) refuse the reply
    assert R(run(dp, [reply], state=flows, now=140 * s).reason[0]) == R.SG_INGRESS


def test_49_untracked_flows_make_no_entry() -> None:
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16")
    s = vpc.add_subnet("10.0.1.0/24")
    g = vpc.add_security_group(name="open")
    g.authorize_ingress("tcp", None, "0.0.0.0/0")          # egress: the new group's all to 0.0.0.0/0
    a = s.add_eni("10.0.1.10", security_groups=[g])
    b = s.add_eni("10.0.1.20", security_groups=[g])
    dp = net.compile()
    flows = fv.FlowTable(capacity=16)
    r = run(dp, [(tcp(a, b.ip, 80), a)], state=flows, now=5)
    assert r.action[0] == A.DELIVER
    assert len(flows) == 0          # untracked at a (egress all to 0/0, ingress to 0/0) and at b
    g.authorize_ingress("udp", 53, "10.0.0.0/16")          # not 0.0.0.0/0: tracked
    dp = net.compile()
    run(dp, [(udp(a, b.ip, 53), a)], state=flows, now=6)
    assert len(flows) == 2          # at b: not a 0.0.0.0/0 rule; at a: no udp rule for 0.0.0.0/0 the other way
    g.authorize_ingress("tcp", 80, "0.0.0.0/0")            # narrower than all ports: still untracked both ends
    run(net.compile(), [(tcp(a, b.ip, 80, sport=40001), a)], state=flows, now=7)
    assert len(flows) == 2


# --------------------------------------------------------------------------- #50 services not filtered

def test_50_dns_router_and_link_local_are_not_filtered(seed: fv.Network) -> None:
    vpc, w1 = seed.vpcs[0], seed.find("web1")
    seed.find("sg-web").clear_rules("egress")
    acl = vpc.add_network_acl(name="deny-all")
    w1.subnet.associate_network_acl(acl)
    dp, plain = seed.compile(), seed.compile(filters=False)
    frames = [(udp(w1, "10.0.0.2", 53), w1), (ping(w1, w1.subnet.router_ip), w1),
              (pk.arp_request(w1.mac, w1.ip, w1.subnet.router_ip), w1), (udp(w1, "169.254.169.253", 53), w1)]
    assert verdicts(run(dp, frames)) == verdicts(run(plain, frames))
    assert A(run(dp, frames[1:2]).action[0]) == A.REPLY
    flows = fv.FlowTable(capacity=8)
    assert verdicts(run(dp, frames, state=flows, now=1)) == verdicts(run(plain, frames))
    assert len(flows) == 0          # untracked too
    # but 10.0.0.3 (not the resolver) is filtered
    assert one(dp, udp(w1, "10.0.0.3", 53), w1)[:2] == (A.DROP, R.SG_EGRESS)


# --------------------------------------------------------------------------- #51-#55 NACLs

def test_51_53_default_nacl_allows_a_new_custom_one_denies(seed: fv.Network) -> None:
    vpc, w1, a1 = seed.vpcs[0], seed.find("web1"), seed.find("app1")
    dp = seed.compile()
    assert one(dp, tcp(w1, a1.ip, 8080), w1)[0] == A.DELIVER
    acl = vpc.add_network_acl(name="custom")
    a1.subnet.associate_network_acl(acl)
    dp = seed.compile()
    assert one(dp, tcp(w1, a1.ip, 8080), w1)[:2] == (A.DROP, R.NACL_INGRESS)
    w1.subnet.associate_network_acl(acl)
    dp = seed.compile()
    assert one(dp, tcp(w1, a1.ip, 8080), w1)[:2] == (A.DROP, R.NACL_EGRESS)


def test_52_lowest_number_first_match_is_final(seed: fv.Network) -> None:
    vpc, w1, a1 = seed.vpcs[0], seed.find("web1"), seed.find("app1")
    seed.find("sg-app").authorize_ingress("tcp", 22, "10.0.0.0/16")
    acl = vpc.add_network_acl(name="ordered")
    acl.add_entry(200, "ingress", "allow", "all", None, "0.0.0.0/0")
    acl.add_entry(100, "ingress", "deny", "tcp", 22, "0.0.0.0/0")
    a1.subnet.associate_network_acl(acl)
    dp = seed.compile()
    assert one(dp, tcp(w1, a1.ip, 22), w1)[:2] == (A.DROP, R.NACL_INGRESS)
    assert one(dp, tcp(w1, a1.ip, 8080), w1)[0] == A.DELIVER
    acl.replace_entry(100, "ingress", "deny", "tcp", 22, "10.0.9.0/24")
    assert one(seed.compile(), tcp(w1, a1.ip, 22), w1)[0] == A.DELIVER


def test_54_nacls_are_stateless(seed: fv.Network) -> None:
    vpc, w1, a1 = seed.vpcs[0], seed.find("web1"), seed.find("app1")
    acl = vpc.add_network_acl(name="app-acl")
    acl.add_entry(100, "ingress", "allow", "tcp", 8080, "10.0.1.0/24")
    acl.add_entry(100, "egress", "allow", "tcp", 80, "0.0.0.0/0")
    a1.subnet.associate_network_acl(acl)
    dp = seed.compile()
    flows = fv.FlowTable(capacity=16)
    syn = (tcp(w1, a1.ip, 8080), w1)
    synack = (tcp(a1, w1.ip, 40000, sport=8080, flags=SYNACK), a1)
    r = run(dp, [syn, synack], state=flows, now=1)
    # the SG tracks the flow, but the reply to :40000 meets app's egress NACL (80 only)
    assert [(A(a), R(x)) for a, x in zip(r.action, r.reason)] == [(A.DELIVER, R.NONE), (A.DROP, R.NACL_EGRESS)]


def test_55_no_nacl_within_a_subnet(seed: fv.Network) -> None:
    vpc, w1, w2 = seed.vpcs[0], seed.find("web1"), seed.find("web2")
    seed.find("sg-web").authorize_ingress("udp", 9, "10.0.1.0/24")
    w1.subnet.associate_network_acl(vpc.add_network_acl(name="deny-all"))
    dp = seed.compile()
    assert one(dp, udp(w1, w2.ip, 9), w1)[0] == A.DELIVER
    assert one(dp, udp(w1, "10.0.2.10", 9), w1)[:2] == (A.DROP, R.NACL_EGRESS)


# --------------------------------------------------------------------------- #56 order on the path

def test_56_the_first_stage_that_denies_gives_the_reason(seed: fv.Network) -> None:
    vpc, w1, a1 = seed.vpcs[0], seed.find("web1"), seed.find("app1")
    sg = seed.find("sg-web")
    # no route (app subnet has the main table, local only), SG egress denies: SG_EGRESS
    sg.clear_rules("egress")
    dp = seed.compile()
    assert one(dp, udp(a1, "8.8.8.8", 53), a1)[:2] != (A.DROP, R.SG_EGRESS)   # app's group allows egress
    assert one(dp, udp(w1, "10.9.9.9", 53), w1)[:2] == (A.DROP, R.SG_EGRESS)
    sg.authorize_egress("all", None, "0.0.0.0/0")
    acl = vpc.add_network_acl(name="deny")
    a1.subnet.associate_network_acl(acl)
    dp = seed.compile()
    assert one(dp, udp(a1, "8.8.8.8", 53), a1)[:2] == (A.DROP, R.NACL_EGRESS)    # before NO_ROUTE
    acl.add_entry(10, "egress", "allow", "all", None, "0.0.0.0/0")
    dp = seed.compile()
    assert one(dp, udp(a1, "8.8.8.8", 53), a1)[:2] == (A.DROP, R.NO_ROUTE)
    # delivered: receiving NACL before the receiving SG
    assert one(dp, tcp(w1, a1.ip, 22), w1)[:2] == (A.DROP, R.NACL_INGRESS)
    acl.add_entry(10, "ingress", "allow", "all", None, "0.0.0.0/0")
    assert one(seed.compile(), tcp(w1, a1.ip, 22), w1)[:2] == (A.DROP, R.SG_INGRESS)
    # a FORWARD meets only the egress half
    assert one(seed.compile(), tcp(w1, "8.8.8.8", 22), w1)[0] == A.FORWARD


# --------------------------------------------------------------------------- ports, ICMP, fragments

def test_icmp_type_code_and_incomplete_headers(seed: fv.Network) -> None:
    vpc, w1, a1 = seed.vpcs[0], seed.find("web1"), seed.find("app1")
    g = seed.find("sg-app")
    g.authorize_ingress("icmp", (8, -1), "10.0.1.0/24")
    g.authorize_ingress("udp", None, "10.0.1.10/32")
    dp = seed.compile()
    assert one(dp, ping(w1, a1.ip), w1)[0] == A.DELIVER
    assert one(dp, ping(w1, a1.ip, request=False), w1)[:2] == (A.DROP, R.SG_INGRESS)
    # a TCP packet with no complete header has no port: only all-ports rules match (sg-app: 8080 only)
    short = eth(w1, pk.ipv4(w1.ip, a1.ip, 6, b"\x1f\x90" * 4))
    assert one(dp, short, w1)[:2] == (A.DROP, R.SG_INGRESS)
    # a non-first fragment of UDP: the all-ports udp rule from web1 admits it
    frag = eth(w1, pk.ipv4(w1.ip, a1.ip, 17, b"z" * 16, flags_frag=0x0002))
    assert one(dp, frag, w1)[0] == A.DELIVER


def test_sparse_ports_find_the_senders_groups() -> None:
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16")
    s = vpc.add_subnet("10.0.1.0/24")
    g = vpc.add_security_group(name="g")
    g.authorize_ingress("udp", 7, "10.0.1.10/32")
    a = s.add_eni("10.0.1.10", port=5_000_000, security_groups=[g])
    b = s.add_eni("10.0.1.20", port=7_000_000, security_groups=[g])
    dp = net.compile()
    assert dp.port_filt.size == 0          # ports hashed
    assert one(dp, udp(a, b.ip, 7), a)[0] == A.DELIVER
    assert one(dp, udp(b, a.ip, 7), b)[:2] == (A.DROP, R.SG_INGRESS)


# --------------------------------------------------------------------------- identities, pickles

def test_identities_are_stable_and_distinct(seed: fv.Network) -> None:
    from fastvpc.compiler.filters import eni_identities

    dp1 = seed.compile()
    seed.find("web").add_eni("10.0.1.30", name="web3")
    dp2 = seed.compile()
    id1 = dict(zip(dp1.eni_names, dp1.eni_filt["ident"].tolist()))
    id2 = dict(zip(dp2.eni_names, dp2.eni_filt["ident"].tolist()))
    assert all(id2[n] == v for n, v in id1.items())
    names = [f"eni-{i:06d}" for i in range(120_000)]
    ids = eni_identities(names)
    assert np.unique(ids).size == len(names)               # 120k: the birthday bound makes clashes likely
    assert np.array_equal(eni_identities(names[::-1]), ids[::-1])   # independent of the order


def test_a_filtered_dataplane_pickles_and_tampering_is_refused(seed: fv.Network) -> None:
    from fastvpc.dataplane import _validate

    dp = seed.compile()
    w1, a1 = seed.find("web1"), seed.find("app1")
    frames = [(tcp(w1, a1.ip, 8080), w1), (tcp(w1, a1.ip, 22), w1)]
    dp2 = pickle.loads(pickle.dumps(dp))
    assert dp2.filters and verdicts(run(dp2, frames)) == verdicts(run(dp, frames))
    fn, args = dp.__reduce__()
    state = dict(args[0])

    def refused(edit: dict[str, object], field: str) -> None:
        st2 = dict(state)
        st2.update(edit)
        st2["digest"] = _validate.digest(_validate._decode(st2))   # structural checks, not the digest
        with pytest.raises(SnapshotError) as e:
            fn(st2)
        assert field in str(e.value)

    def arr(name: str) -> np.ndarray:
        return np.frombuffer(state[name], dtype=_validate.ARRAY_DTYPES[name]).copy()

    ef = arr("eni_filt")
    ef["sgset"][0] = 10_000
    refused({"eni_filt": ef.tobytes()}, "eni_filt.sgset")
    ef = arr("eni_filt")
    ef["tmo"][1] = 99
    refused({"eni_filt": ef.tobytes()}, "eni_filt.tmo")
    ef = arr("eni_filt")
    ef["ident"][1] = ef["ident"][0]
    refused({"eni_filt": ef.tobytes()}, "eni_filt.ident")
    sd = arr("sg_dirs")
    sd["n"][0, 2] = 60_000
    refused({"sg_dirs": sd.tobytes()}, "sg_dirs")
    nd = arr("nacl_dirs")
    nd["off"][1, 0] = 1 << 30
    refused({"nacl_dirs": nd.tobytes()}, "nacl_dirs")
    sf = arr("subnet_filt")
    sf["nacl"][0] = -1
    refused({"subnet_filt": sf.tobytes()}, "subnet_filt.nacl")
    pf = arr("port_filt")
    pf["sgset"][w1.port] = (pf["sgset"][w1.port] + 1) % 3
    refused({"port_filt": pf.tobytes()}, "port_filt")
    refused({"sg_members": np.zeros(3, np.uint64).tobytes()}, "sg_members")
    refused({"filters": 1}, "filters")
    refused({"ct_timeouts": b""}, "ct_timeouts")
    # a flipped byte without a fresh digest is refused by the digest
    st3 = dict(state)
    raw = bytearray(state["sg_rules"])
    raw[0] ^= 1
    st3["sg_rules"] = bytes(raw)
    with pytest.raises(SnapshotError, match="digest"):
        fn(st3)


# --------------------------------------------------------------------------- bad frames

def test_frames_of_any_shape_get_a_verdict(seed: fv.Network) -> None:
    rng = np.random.default_rng(5)
    w1, a1 = seed.find("web1"), seed.find("app1")
    good = tcp(w1, a1.ip, 8080)
    frames = [good[:k] for k in range(len(good))] + [bytes(rng.integers(0, 256, 80, dtype=np.uint8))
                                                     for _ in range(200)]
    mutated = []
    for _ in range(300):
        f = bytearray(good)
        for _ in range(3):
            f[int(rng.integers(14, len(f)))] = int(rng.integers(0, 256))
        mutated.append(bytes(f))
    frames += mutated
    dp = seed.compile()
    batch = fv.FrameBatch.from_frames(frames, port=[w1.port] * len(frames))
    for kw in ({}, {"state": fv.FlowTable(capacity=32), "now": 1}):
        r = dp.process(batch, copy=True, **kw)
        assert set(np.unique(r.action)) <= {0, 1, 2, 3}
        assert len(r) == len(frames)
    oracle = Oracle(seed, dp)
    want, _ = oracle.run(frames, [w1.port] * len(frames))
    assert verdicts(dp.process(batch, copy=True)) == want


# --------------------------------------------------------------------------- property: random rules

PEERS = ["0.0.0.0/0", "10.0.0.0/16", "10.0.1.0/24", "10.0.2.0/25", "10.0.2.10/32", "8.8.8.0/24", "10.1.0.0/16",
         "10.0.3.128/25"]
PROTOS = ["tcp", "udp", "icmp", "all", 47]
PORTS = [22, 80, 443, 53, 8080, 40000]


@st.composite
def rule(draw: st.DrawFn, groups: int) -> tuple[object, object, object]:
    proto = draw(st.sampled_from(PROTOS))
    if proto in ("tcp", "udp"):
        ports = draw(st.one_of(st.none(), st.sampled_from(PORTS),
                               st.tuples(st.sampled_from([0, 22, 53, 1024]), st.sampled_from([80, 443, 65535]))
                               .map(lambda t: (min(t), max(t)))))
    elif proto == "icmp":
        ports = draw(st.sampled_from([None, (8, -1), (8, 0), (0, -1), (3, 4), 13]))
    else:
        ports = None
    peer = draw(st.one_of(st.sampled_from(PEERS), st.integers(0, groups - 1),
                          st.lists(st.sampled_from(PEERS[1:]), min_size=1, max_size=3, unique=True)))
    return proto, ports, peer


@st.composite
def entry(draw: st.DrawFn) -> tuple[object, ...]:
    r = draw(rule(1))
    peer = r[2] if isinstance(r[2], str) else "10.0.0.0/16"
    return (draw(st.integers(1, 300)), draw(st.sampled_from(["ingress", "egress"])),
            draw(st.sampled_from(["allow", "deny"])), r[0], r[1], peer)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[fv.Network, list[bytes], list[int]]:
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v")
    peer = net.add_vpc("10.1.0.0/16", name="p")
    pcx = net.add_peering(vpc, peer, name="pcx")
    igw = vpc.add_internet_gateway(name="igw")
    subs = [vpc.add_subnet(f"10.0.{k}.0/24", name=f"s{k}") for k in (1, 2, 3)]
    ps = peer.add_subnet("10.1.1.0/24", name="ps")
    vpc.main_route_table.add_route("0.0.0.0/0", igw)
    vpc.main_route_table.add_route("10.1.0.0/16", pcx)
    peer.main_route_table.add_route("10.0.0.0/16", pcx)
    n_groups = 4
    groups = [vpc.add_security_group(name=f"g{k}") for k in range(n_groups - 1)] + [peer.default_security_group]
    for g in groups[:-1]:
        if draw(st.booleans()):
            g.clear_rules("egress")
        for d, r in draw(st.lists(st.tuples(st.sampled_from(["ingress", "egress"]), rule(n_groups)), max_size=8)):
            p = r[2]
            target = groups[p] if isinstance(p, int) else p
            g.authorize(d, r[0], r[1], target)
    acls = [vpc.add_network_acl(name=f"acl{k}") for k in range(2)]
    for a in acls:
        seen = set()
        for num, d, act, proto, ports, cidr in draw(st.lists(entry(), max_size=6)):
            if (num, d) not in seen:
                seen.add((num, d))
                a.add_entry(num, d, act, proto, ports, cidr)
    for s in subs:
        choice = draw(st.integers(0, 2))
        if choice < 2:
            s.associate_network_acl(acls[choice])
    enis = []
    for k, s in enumerate(subs):
        for h in (10, 20):
            gs = draw(st.lists(st.sampled_from(groups[:-1]), min_size=1, max_size=3, unique_by=id))
            enis.append(s.add_eni(f"10.0.{k + 1}.{h}", security_groups=gs, secondary_ips=[f"10.0.{k + 1}.{h + 1}"]))
    enis.append(ps.add_eni("10.1.1.10"))
    dsts = [str(ip) for e in enis for ip in e.ips] + ["8.8.8.8", "10.0.0.2", "10.0.2.99", "10.0.1.1", "10.1.1.99"]
    frames, ports = [], []
    for _ in range(draw(st.integers(1, 24))):
        src = draw(st.sampled_from(enis))
        dst = draw(st.sampled_from(dsts))
        proto = draw(st.sampled_from([6, 17, 1, 47]))
        sp, dp_ = draw(st.sampled_from(PORTS)), draw(st.sampled_from(PORTS))
        shape = draw(st.sampled_from(["full", "full", "full", "short", "frag"]))
        if shape == "short":
            pkt = pk.ipv4(src.ip, dst, proto, b"\x00\x35" * 2)
        elif shape == "frag":
            pkt = pk.ipv4(src.ip, dst, proto, b"\x00\x35" * 12, flags_frag=0x0003)
        elif proto == 6:
            pkt = pk.tcp(src.ip, dst, sp, dp_, flags=draw(st.sampled_from([SYN, SYNACK, ACK, 0x11, 0x04])))
        elif proto == 17:
            pkt = pk.udp(src.ip, dst, sp, dp_)
        elif proto == 1:
            pkt = pk.icmp_echo(src.ip, dst, ident=sp, request=draw(st.booleans()))
            if draw(st.booleans()):
                body = bytearray(pkt[20:])
                body[0], body[1] = draw(st.sampled_from([(3, 4), (13, 0), (14, 0), (11, 0)]))
                pkt = pk.ipv4(src.ip, dst, 1, bytes(body))
        else:
            pkt = pk.ipv4(src.ip, dst, 47, b"g" * 12)
        frames.append(eth(src, pkt))
        ports.append(src.port)
    return net, frames, ports


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario())
def test_kernel_verdicts_are_the_rule_functions(sc: tuple[fv.Network, list[bytes], list[int]]) -> None:
    net, frames, ports = sc
    dp = net.compile()
    oracle = Oracle(net, dp)
    want, want_frames = oracle.run(frames, ports)
    for nt in (1, 2):
        res = dp.process(fv.FrameBatch.from_frames(frames, port=ports), n_threads=nt)
        assert verdicts(res) == want
        assert frames_of(res) == want_frames


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario(), st.integers(1, 6))
def test_stateful_kernel_is_frame_at_a_time_tracking(sc: tuple[fv.Network, list[bytes], list[int]],
                                                     capacity: int) -> None:
    net, frames, ports = sc
    dp = net.compile()
    oracle = Oracle(net, dp)
    now = np.cumsum(np.arange(len(frames), dtype=np.int64) * 7 * 10**9)   # some gaps pass the 30 s UDP timeout
    ref_table = fv.FlowTable(capacity=capacity)
    want, want_frames = oracle.run(frames, ports, state=ref_table, now=now)
    for nt in (1, 2, 4):
        flows = fv.FlowTable(capacity=capacity)
        b = fv.FrameBatch(np.frombuffer(b"".join(frames), np.uint8).copy(),
                          np.concatenate([[0], np.cumsum([len(f) for f in frames])]).astype(np.int64),
                          np.array(ports, np.int32), now)
        res = dp.process(b, n_threads=nt, state=flows)
        assert verdicts(res) == want, nt
        assert frames_of(res) == want_frames, nt
        assert sorted(map(tuple, flows.flows().tolist())) == sorted(map(tuple, ref_table.flows().tolist()))
