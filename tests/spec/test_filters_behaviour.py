"""Behaviour tests of the filters: one test (or a few) per row #45-#56 of the VPC behaviour table.

Every test runs on both engines (the ``any_engine`` fixture of tests/conftest.py: the reference
forwarder and the compiled kernel, through ``fastvpc.testing``), statefully where the row is about
state (each engine with its own kind of table).  Frames are built with scapy (tests/frames.py) and
the expected verdicts come from DESIGN.md section 5 and the filters spec: allow-only groups that are a
union, connection tracking that admits replies whatever the rules say, stateless NACLs applied only
at subnet boundaries, in the path order SG-out, NACL-out, route, NACL-in, SG-in.
"""

from __future__ import annotations

from typing import Any

import pytest

import frames as F

import fastvpc as fv
from fastvpc.reference import ReferenceForwarder, Verdict
from fastvpc.verdicts import RA_CODES, Action, DropReason

A, R = Action, DropReason
S = 1_000_000_000
SYN, SYNACK, ACK, PA = "S", "SA", "A", "PA"


# --------------------------------------------------------------------------- the topology

def topology() -> fv.Network:
    """prod 10.0.0.0/16: web (web1 .1.10, web2 .1.20; rt-web 0/0 -> igw), app (app1 .2.10, app2 .2.20),
    db (db1 .3.10 + secondary .3.11); groups sg-web, sg-app, sg-db each with AWS's defaults (no
    ingress rule, egress all to 0.0.0.0/0); every subnet on the default NACL (allow all)."""
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="prod")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    app = vpc.add_subnet("10.0.2.0/24", name="app")
    db = vpc.add_subnet("10.0.3.0/24", name="db")
    igw = vpc.add_internet_gateway(name="igw")
    rt = vpc.add_route_table(name="rt-web", routes=[("0.0.0.0/0", igw)])
    web.associate(rt)
    sg_web, sg_app, sg_db = (vpc.add_security_group(name=n) for n in ("sg-web", "sg-app", "sg-db"))
    web.add_eni("10.0.1.10", name="web1", security_groups=[sg_web], public_ip="203.0.113.10")
    web.add_eni("10.0.1.20", name="web2", security_groups=[sg_web])
    app.add_eni("10.0.2.10", name="app1", security_groups=[sg_app])
    app.add_eni("10.0.2.20", name="app2", security_groups=[sg_app])
    db.add_eni("10.0.3.10", name="db1", secondary_ips=["10.0.3.11"], security_groups=[sg_db])
    return net


@pytest.fixture
def net() -> fv.Network:
    return topology()


def mac_to(sender: Any, dst_ip: str) -> Any:
    """What the sender's VM puts as destination MAC: the ENI's within its subnet, else the gateway's."""
    for e in sender.subnet.enis:
        if dst_ip in {str(ip) for ip in e.ips}:
            return e
    return sender.subnet


def tcp(net: fv.Network, src: str, dst_ip: str, dport: int, flags: str = SYN, sport: int = 40000) -> tuple[bytes, int]:
    e = net.find(src)
    return F.tcp_frame(e, dst_ip, mac_to(e, dst_ip), sport=sport, dport=dport, tcp_flags=flags), e.port


def udp(net: fv.Network, src: str, dst_ip: str, dport: int, sport: int = 40000) -> tuple[bytes, int]:
    e = net.find(src)
    return F.udp_frame(e, dst_ip, mac_to(e, dst_ip), sport=sport, dport=dport), e.port


def icmp(net: fv.Network, src: str, dst_ip: str, icmp_type: int = 8, ident: int = 0x77) -> tuple[bytes, int]:
    e = net.find(src)
    return F.icmp_echo(e, dst_ip, mac_to(e, dst_ip), icmp_type=icmp_type, ident=ident), e.port


def ip(net: fv.Network, name: str) -> str:
    return str(net.find(name).ip)


def delivered(v: Verdict, net: fv.Network, to: str) -> bool:
    return (v.action, v.reason, v.egress) == (A.DELIVER, R.NONE, net.find(to).port)


def dropped(v: Verdict, reason: DropReason, frame: bytes) -> bool:
    return (v.action, v.reason, v.egress) == (A.DROP, reason, -1) and v.frame == frame


# --------------------------------------------------------------------------- #45 allow-only, default deny

def test_r45_new_group_denies_all_ingress_and_allows_all_egress(net: fv.Network, any_engine: Any) -> None:
    sg = net.find("sg-app")
    assert sg.ingress == [] and [r.describe() for r in sg.egress] == ["all to 0.0.0.0/0"]
    frame, port = tcp(net, "web1", "10.0.2.10", 22)
    v = any_engine.one(net, frame, port)
    assert dropped(v, R.SG_INGRESS, frame) and v.route >= 0      # the route was found: the SG dropped it
    assert RA_CODES[R.SG_INGRESS] == RA_CODES[R.SG_EGRESS] == "ENI_SG_RULES_MISMATCH"
    sg.authorize_ingress("tcp", 22, "10.0.1.0/24")
    assert delivered(any_engine.one(net, frame, port), net, "app1")


def test_r45_no_egress_rule_lets_nothing_out(net: fv.Network, any_engine: Any) -> None:
    net.find("sg-app").authorize_ingress("all", None, "0.0.0.0/0")
    assert net.find("sg-web").revoke_egress("all", None, "0.0.0.0/0")
    for frame, port in (tcp(net, "web1", "10.0.2.10", 80), udp(net, "web1", "10.0.2.10", 53),
                        icmp(net, "web1", "10.0.2.10"), tcp(net, "web1", "8.8.8.8", 443),
                        tcp(net, "web1", "10.0.1.20", 22)):
        assert dropped(any_engine.one(net, frame, port), R.SG_EGRESS, frame)
    # the same frames with filters=False: the routing verdict alone
    assert delivered(any_engine.one(net, *tcp(net, "web1", "10.0.2.10", 80), filters=False), net, "app1")


# --------------------------------------------------------------------------- #46 union of rules

def test_r46_rules_of_all_groups_are_a_union(net: fv.Network, any_engine: Any) -> None:
    vpc = net.find("prod")
    a, b = vpc.add_security_group(name="sg-a"), vpc.add_security_group(name="sg-b")
    a.authorize_ingress("tcp", 22, "0.0.0.0/0")
    b.authorize_ingress("tcp", 80, "10.0.1.0/24")
    net.find("app1").security_groups = [a, b]
    got = any_engine.run(net, [tcp(net, "web1", "10.0.2.10", p) for p in (22, 80, 443)])
    assert [v.action for v in got] == [A.DELIVER, A.DELIVER, A.DROP] and got[2].reason == R.SG_INGRESS
    net.find("app1").security_groups = [b]                        # sg-a gone: 22 denied now
    assert any_engine.one(net, *tcp(net, "web1", "10.0.2.10", 22)).reason == R.SG_INGRESS


# --------------------------------------------------------------------------- #47 stateful

def test_r47_replies_of_a_tracked_flow_pass_whatever_the_rules(net: fv.Network, any_engine: Any) -> None:
    net.find("sg-app").authorize_ingress("tcp", 8080, net.find("sg-web"))
    syn = tcp(net, "web1", "10.0.2.10", 8080, SYN)
    synack = tcp(net, "app1", "10.0.1.10", 40000, SYNACK, sport=8080)
    # without state every packet is a first packet: sg-web has no ingress rule, the SYN-ACK is dropped
    got = any_engine.run(net, [syn, synack])
    assert delivered(got[0], net, "app1") and dropped(got[1], R.SG_INGRESS, synack[0])
    flows = any_engine.state(capacity=64)
    got = any_engine.run(net, [syn, synack, tcp(net, "web1", "10.0.2.10", 8080, ACK),
                               tcp(net, "app1", "10.0.1.10", 40000, PA, sport=8080)], state=flows, now=5 * S)
    assert [v.action for v in got] == [A.DELIVER] * 4
    # an unsolicited packet from app1 is not part of the flow: dropped
    unsolicited = tcp(net, "app1", "10.0.1.10", 22, SYN, sport=40001)
    assert dropped(any_engine.one(net, *unsolicited, state=flows, now=6 * S), R.SG_INGRESS, unsolicited[0])
    # the reply direction's own SG: app1 with no egress rule at all still answers its tracked flow
    net.find("sg-app").revoke_egress("all", None, "0.0.0.0/0")
    assert delivered(any_engine.one(net, *tcp(net, "app1", "10.0.1.10", 40000, PA, sport=8080), state=flows,
                                    now=7 * S), net, "web1")
    assert any_engine.one(net, *tcp(net, "app1", "10.0.1.10", 40000, PA, sport=8080)).reason == R.SG_EGRESS


def test_r47_rule_changes_do_not_cut_tracked_flows(net: fv.Network, any_engine: Any) -> None:
    net.find("sg-app").authorize_ingress("tcp", 8080, "10.0.1.0/24")
    flows = any_engine.state(capacity=64)
    assert delivered(any_engine.one(net, *tcp(net, "web1", "10.0.2.10", 8080, SYN), state=flows, now=0), net, "app1")
    net.find("sg-app").revoke_ingress("tcp", 8080, "10.0.1.0/24")          # recompiled for the kernel
    got = any_engine.run(net, [tcp(net, "web1", "10.0.2.10", 8080, ACK), tcp(net, "web1", "10.0.2.10", 8080, SYN,
                                                                            sport=40002)], state=flows, now=S)
    assert delivered(got[0], net, "app1") and got[1].reason == R.SG_INGRESS   # old flow passes, a new one not


def test_r47_a_lone_synack_opens_nothing_and_a_midstream_ack_is_picked_up(net: fv.Network, any_engine: Any) -> None:
    net.find("sg-app").authorize_ingress("tcp", 80, "10.0.1.0/24")
    flows = any_engine.state(capacity=64)
    # a SYN-ACK admitted by the rules opens no entry: the answer back is judged by sg-web's (absent) rules
    got = any_engine.run(net, [tcp(net, "web1", "10.0.2.10", 80, SYNACK), tcp(net, "app1", "10.0.1.10", 40000, ACK,
                                                                             sport=80)], state=flows, now=0)
    assert delivered(got[0], net, "app1") and got[1].reason == R.SG_INGRESS
    # a plain ACK (a capture that starts mid-connection) starts tracking (Linux's loose pickup)
    got = any_engine.run(net, [tcp(net, "web1", "10.0.2.10", 80, PA), tcp(net, "app1", "10.0.1.10", 40000, PA,
                                                                         sport=80)], state=flows, now=S)
    assert [v.action for v in got] == [A.DELIVER, A.DELIVER]


def test_r47_icmp_echo_reply_by_identifier(net: fv.Network, any_engine: Any) -> None:
    net.find("sg-app").authorize_ingress("icmp", (8, -1), "10.0.1.0/24")
    flows = any_engine.state(capacity=64)
    got = any_engine.run(net, [icmp(net, "web1", "10.0.2.10", 8, ident=5), icmp(net, "app1", "10.0.1.10", 0, ident=5),
                               icmp(net, "app1", "10.0.1.10", 0, ident=6), icmp(net, "app1", "10.0.1.10", 8, ident=5),
                               icmp(net, "app1", "10.0.1.10", 3, ident=5)], state=flows, now=0)
    assert [v.action for v in got] == [A.DELIVER, A.DELIVER, A.DROP, A.DROP, A.DROP]
    assert {v.reason for v in got[2:]} == {R.SG_INGRESS}          # another id, app1's own ping, an error


def test_r47_full_table_drops_what_needs_a_new_entry(net: fv.Network, any_engine: Any) -> None:
    net.find("sg-app").authorize_ingress("udp", 53, "10.0.1.0/24")
    flows = any_engine.state(capacity=2)
    q1, q2 = udp(net, "web1", "10.0.2.10", 53, sport=1111), udp(net, "web1", "10.0.2.10", 53, sport=2222)
    got = any_engine.run(net, [q1, q2, udp(net, "app1", "10.0.1.10", 1111, sport=53)], state=flows, now=0)
    # q1 opens one entry at web1 and one at app1: full; q2 needs a new one at web1
    assert delivered(got[0], net, "app1") and dropped(got[1], R.FLOW_TABLE_FULL, q2[0])
    assert delivered(got[2], net, "web1")                          # a tracked flow still passes
    # 31 s later q1's entries have expired (UDP 30 s): room again
    assert delivered(any_engine.one(net, *q2, state=flows, now=31 * S + 1), net, "app1")


# --------------------------------------------------------------------------- #48 references

def test_r48_group_reference_matches_member_ips(net: fv.Network, any_engine: Any) -> None:
    net.find("sg-db").authorize_ingress("tcp", 3306, net.find("sg-app"))
    got = any_engine.run(net, [tcp(net, "app1", "10.0.3.10", 3306), tcp(net, "web1", "10.0.3.10", 3306),
                               tcp(net, "app2", "10.0.3.11", 3306)])
    assert delivered(got[0], net, "db1") and got[1].reason == R.SG_INGRESS and delivered(got[2], net, "db1")
    # membership is what counts: web1 joins sg-app, app1 leaves it
    net.find("web1").security_groups = [net.find("sg-web"), net.find("sg-app")]
    net.find("app1").security_groups = [net.find("sg-web")]
    got = any_engine.run(net, [tcp(net, "app1", "10.0.3.10", 3306), tcp(net, "web1", "10.0.3.10", 3306)])
    assert got[0].reason == R.SG_INGRESS and delivered(got[1], net, "db1")


def test_r48_reference_across_a_peering_and_prefix_lists(net: fv.Network, any_engine: Any) -> None:
    peer = net.add_vpc("10.1.0.0/16", name="peer")
    ps = peer.add_subnet("10.1.1.0/24", name="psub")
    sg_p = peer.add_security_group(name="sg-p")
    ps.add_eni("10.1.1.10", name="p1", security_groups=[sg_p])
    pcx = net.add_peering(net.find("prod"), peer, name="pcx")
    net.find("prod").main_route_table.add_route("10.1.0.0/16", pcx)
    peer.main_route_table.add_route("10.0.0.0/16", pcx)
    sg_p.authorize_ingress("tcp", 5432, net.find("sg-app"))       # a group of the peered VPC
    pl = net.add_prefix_list(["10.0.3.0/24"], name="pl-db")
    sg_p.authorize_ingress("udp", 53, pl)
    got = any_engine.run(net, [tcp(net, "app1", "10.1.1.10", 5432), tcp(net, "db1", "10.1.1.10", 5432),
                               udp(net, "db1", "10.1.1.10", 53), udp(net, "app1", "10.1.1.10", 53)])
    assert delivered(got[0], net, "p1") and got[1].reason == R.SG_INGRESS
    assert delivered(got[2], net, "p1") and got[3].reason == R.SG_INGRESS


# --------------------------------------------------------------------------- #49 timeouts

def test_r49_udp_30s_stream_180s_per_eni(net: fv.Network, any_engine: Any) -> None:
    net.find("sg-app").authorize_ingress("udp", 53, "10.0.1.0/24")
    q, a = udp(net, "web1", "10.0.2.10", 53), udp(net, "app1", "10.0.1.10", 40000, sport=53)
    flows = any_engine.state(capacity=64)
    assert delivered(any_engine.one(net, *q, state=flows, now=0), net, "app1")
    assert delivered(any_engine.one(net, *a, state=flows, now=29 * S), net, "web1")     # within 30 s
    assert any_engine.one(net, *a, state=flows, now=60 * S).reason == R.SG_INGRESS     # 31 s idle: gone
    # a stream (a second exchange) lives 180 s
    flows = any_engine.state(capacity=64)
    any_engine.run(net, [q, a, q, a], state=flows, now=0)
    assert delivered(any_engine.one(net, *a, state=flows, now=170 * S), net, "web1")
    assert any_engine.one(net, *a, state=flows, now=351 * S).reason == R.SG_INGRESS
    # per ENI: web1 keeps single exchanges 60 s (UdpTimeout's maximum)
    net.find("web1").tracking = fv.Tracking(udp=60)
    flows = any_engine.state(capacity=64)
    any_engine.run(net, [q], state=flows, now=0)
    assert delivered(any_engine.one(net, *a, state=flows, now=45 * S), net, "web1")


def test_r49_tcp_established_timeout_and_untracked_flows(net: fv.Network, any_engine: Any) -> None:
    net.find("web1").tracking = fv.Tracking(tcp_established=60)
    net.find("sg-app").authorize_ingress("tcp", 8080, "10.0.1.0/24")
    flows = any_engine.state(capacity=64)
    syn = tcp(net, "web1", "10.0.2.10", 8080, SYN)
    back = tcp(net, "app1", "10.0.1.10", 40000, PA, sport=8080)
    any_engine.run(net, [syn, tcp(net, "app1", "10.0.1.10", 40000, SYNACK, sport=8080),
                         tcp(net, "web1", "10.0.2.10", 8080, ACK)], state=flows, now=0)
    assert delivered(any_engine.one(net, *back, state=flows, now=59 * S), net, "web1")
    assert any_engine.one(net, *back, state=flows, now=120 * S).reason == R.SG_INGRESS   # web1's entry idled out
    # untracked (AWS): app1 admits tcp 80 from 0.0.0.0/0 and sends all to 0.0.0.0/0 -> no entry at app1,
    # so removing its egress rule cuts the reply at once, while the tracked 8080 flow goes on
    net.find("sg-app").authorize_ingress("tcp", 80, "0.0.0.0/0")
    flows = any_engine.state(capacity=64)
    got = any_engine.run(net, [tcp(net, "web1", "10.0.2.10", 80, SYN, sport=41000), syn], state=flows, now=0)
    assert [v.action for v in got] == [A.DELIVER, A.DELIVER]
    net.find("sg-app").revoke_egress("all", None, "0.0.0.0/0")
    got = any_engine.run(net, [tcp(net, "app1", "10.0.1.10", 41000, SYNACK, sport=80),
                               tcp(net, "app1", "10.0.1.10", 40000, SYNACK, sport=8080)], state=flows, now=S)
    assert got[0].reason == R.SG_EGRESS and delivered(got[1], net, "web1")


# --------------------------------------------------------------------------- #50 services not filtered

def test_r50_dns_router_and_link_local_are_not_filtered(net: fv.Network, any_engine: Any) -> None:
    vpc = net.find("prod")
    deny_all = vpc.add_network_acl(name="acl-deny")
    net.find("web").associate_network_acl(deny_all)
    net.find("sg-web").revoke_egress("all", None, "0.0.0.0/0")
    items = [udp(net, "web1", "10.0.0.2", 53), icmp(net, "web1", "10.0.1.1"),
             (F.arp_request(net.find("web1"), None, "10.0.1.20"), net.find("web1").port),
             udp(net, "web1", "169.254.169.253", 53)]
    got = any_engine.run(net, items)
    unfiltered = any_engine.run(net, items, filters=False)
    assert got == unfiltered                                       # exactly the routing verdicts
    assert [v.action for v in got[1:3]] == [A.REPLY, A.REPLY] and got[3].reason == R.LINK_LOCAL_SERVICE
    assert got[0].reason not in (R.SG_EGRESS, R.NACL_EGRESS)
    # the same VPC with a subnet holding base + 2's /24 would deliver nothing there either: never filtered
    assert any_engine.one(net, *udp(net, "web1", "10.0.0.3", 53)).reason == R.SG_EGRESS


# --------------------------------------------------------------------------- #51 association, default NACL

def test_r51_subnets_use_the_default_nacl_which_allows_all(net: fv.Network, any_engine: Any) -> None:
    vpc = net.find("prod")
    extra = vpc.add_subnet("10.0.9.0/24", name="extra")
    assert extra.network_acl is vpc.default_network_acl and vpc.default_network_acl.is_default
    assert [e.describe() for e in vpc.default_network_acl.entries] == ["100 allow all from 0.0.0.0/0",
                                                                       "100 allow all to 0.0.0.0/0"]
    extra.add_eni("10.0.9.10", name="x1", security_groups=[net.find("sg-app")])
    net.find("sg-app").authorize_ingress("all", None, "0.0.0.0/0")
    for proto_frame in (tcp(net, "web1", "10.0.9.10", 5), udp(net, "web1", "10.0.9.10", 9), icmp(net, "web1", "10.0.9.10")):
        assert delivered(any_engine.one(net, *proto_frame), net, "x1")
    # one NACL per subnet: associating another replaces the default, associating the default returns
    acl = vpc.add_network_acl(name="acl-x")
    extra.associate_network_acl(acl)
    assert any_engine.one(net, *udp(net, "web1", "10.0.9.10", 9)).reason == R.NACL_INGRESS
    extra.associate_network_acl(vpc.default_network_acl)
    assert delivered(any_engine.one(net, *udp(net, "web1", "10.0.9.10", 9)), net, "x1")


# --------------------------------------------------------------------------- #52 ordered, first match

def test_r52_lowest_number_first_and_first_match_is_final(net: fv.Network, any_engine: Any) -> None:
    net.find("sg-app").authorize_ingress("tcp", None, "10.0.0.0/16")
    acl = net.find("prod").add_network_acl(name="acl-app")
    acl.add_entry(200, "ingress", "allow", "all", None, "0.0.0.0/0")      # added first, numbered later
    acl.add_entry(100, "ingress", "deny", "tcp", 22, "0.0.0.0/0")
    acl.add_entry(100, "egress", "allow", "all", None, "0.0.0.0/0")
    net.find("app").associate_network_acl(acl)
    s22, s80 = tcp(net, "web1", "10.0.2.10", 22), tcp(net, "web1", "10.0.2.10", 80)
    got = any_engine.run(net, [s22, s80])
    assert dropped(got[0], R.NACL_INGRESS, s22[0]) and delivered(got[1], net, "app1")
    assert RA_CODES[R.NACL_INGRESS] == RA_CODES[R.NACL_EGRESS] == "SUBNET_ACL_RESTRICTION"
    acl.replace_entry(100, "ingress", "allow", "all", None, "0.0.0.0/0")  # the allow now comes first
    acl.replace_entry(200, "ingress", "deny", "tcp", 22, "0.0.0.0/0")
    assert delivered(any_engine.one(net, *s22), net, "app1")


# --------------------------------------------------------------------------- #53 a new custom NACL denies all

def test_r53_an_empty_custom_nacl_denies_everything_in_and_out(net: fv.Network, any_engine: Any) -> None:
    for g in ("sg-web", "sg-app"):
        net.find(g).authorize_ingress("all", None, "0.0.0.0/0")
    acl = net.find("prod").add_network_acl(name="acl-new")
    assert acl.entries == [] and acl.evaluate("ingress", 6, "10.0.1.10", 80) == (False, 32767)
    net.find("web").associate_network_acl(acl)
    for frame, port in (tcp(net, "web1", "10.0.2.10", 80), udp(net, "web1", "10.0.2.10", 53),
                        icmp(net, "web1", "10.0.2.10"), tcp(net, "web1", "8.8.8.8", 443)):
        assert dropped(any_engine.one(net, frame, port), R.NACL_EGRESS, frame)
    for frame, port in (tcp(net, "app1", "10.0.1.10", 80), icmp(net, "app1", "10.0.1.10")):
        assert dropped(any_engine.one(net, frame, port), R.NACL_INGRESS, frame)


# --------------------------------------------------------------------------- #54 stateless

def test_r54_nacl_replies_need_their_own_entries_even_when_tracked(net: fv.Network, any_engine: Any) -> None:
    net.find("sg-app").authorize_ingress("tcp", 443, "10.0.1.0/24")
    acl = net.find("prod").add_network_acl(name="acl-app")
    acl.add_entry(100, "ingress", "allow", "tcp", 443, "0.0.0.0/0")
    acl.add_entry(100, "egress", "allow", "tcp", 80, "0.0.0.0/0")
    net.find("app").associate_network_acl(acl)
    flows = any_engine.state(capacity=64)
    syn = tcp(net, "web1", "10.0.2.10", 443, SYN, sport=51000)
    synack = tcp(net, "app1", "10.0.1.10", 51000, SYNACK, sport=443)
    got = any_engine.run(net, [syn, synack], state=flows, now=0)
    assert delivered(got[0], net, "app1") and dropped(got[1], R.NACL_EGRESS, synack[0])
    acl.add_entry(110, "egress", "allow", "tcp", (1024, 65535), "10.0.1.0/24")   # the ephemeral ports
    assert delivered(any_engine.one(net, *synack, state=flows, now=S), net, "web1")
    # NACL changes cut at once, tracked or not
    acl.replace_entry(100, "ingress", "deny", "tcp", 443, "0.0.0.0/0")
    assert any_engine.one(net, *tcp(net, "web1", "10.0.2.10", 443, ACK, sport=51000), state=flows,
                          now=2 * S).reason == R.NACL_INGRESS


# --------------------------------------------------------------------------- #55 subnet boundary only

def test_r55_nacls_apply_only_where_a_packet_leaves_or_enters_a_subnet(net: fv.Network, any_engine: Any) -> None:
    net.find("sg-web").authorize_ingress("all", None, "0.0.0.0/0")
    net.find("sg-app").authorize_ingress("all", None, "0.0.0.0/0")
    net.find("web").associate_network_acl(net.find("prod").add_network_acl(name="acl-deny"))
    got = any_engine.run(net, [tcp(net, "web1", "10.0.1.20", 22), tcp(net, "web1", "10.0.2.10", 22)])
    assert delivered(got[0], net, "web2") and got[1].reason == R.NACL_EGRESS
    # a route to a middlebox ENI in the sender's own subnet: the packet never leaves the subnet, so
    # neither the NACL-out nor the NACL-in applies, though the destination is outside the subnet
    mbox = net.find("web").add_eni("10.0.1.50", name="mbox", source_dest_check=False,
                                   security_groups=[net.find("sg-web")])
    net.find("rt-web").add_route("192.168.0.0/16", mbox)
    assert delivered(any_engine.one(net, *tcp(net, "web1", "192.168.1.1", 22)), net, "mbox")
    # ... and a middlebox in another subnet: the packet leaves web, the NACL-out applies
    mbox_app = net.find("app").add_eni("10.0.2.50", name="mbox-app", source_dest_check=False,
                                       security_groups=[net.find("sg-app")])
    net.find("rt-web").add_route("172.16.0.0/12", mbox_app)
    assert any_engine.one(net, *tcp(net, "web1", "172.16.1.1", 22)).reason == R.NACL_EGRESS
    net.find("acl-deny").add_entry(100, "egress", "allow", "all", None, "172.16.0.0/12")
    assert delivered(any_engine.one(net, *tcp(net, "web1", "172.16.1.1", 22)), net, "mbox-app")


# --------------------------------------------------------------------------- #56 evaluation order

def test_r56_the_first_stage_on_the_path_that_denies_gives_the_reason(net: fv.Network, any_engine: Any) -> None:
    vpc = net.find("prod")
    deny_out = vpc.add_network_acl(name="acl-deny-out")
    deny_out.add_entry(100, "ingress", "allow", "all", None, "0.0.0.0/0")
    net.find("app").associate_network_acl(deny_out)                 # app: nothing leaves
    no_route = tcp(net, "app1", "8.8.8.8", 443)                     # app's main table has no default route
    assert any_engine.one(net, *no_route).reason == R.NACL_EGRESS   # the NACL comes before the route
    net.find("sg-app").revoke_egress("all", None, "0.0.0.0/0")
    assert any_engine.one(net, *no_route).reason == R.SG_EGRESS     # the SG before the NACL
    net.find("sg-app").authorize_egress("all", None, "0.0.0.0/0")
    deny_out.add_entry(100, "egress", "allow", "all", None, "0.0.0.0/0")
    assert any_engine.one(net, *no_route).reason == R.NO_ROUTE      # both allow: the route's own drop
    # the receiving side: the NACL-in before the SG-in (sg-db has no ingress rule)
    deny_in = vpc.add_network_acl(name="acl-deny-in")
    net.find("db").associate_network_acl(deny_in)
    to_db = tcp(net, "web1", "10.0.3.10", 5432)
    assert any_engine.one(net, *to_db).reason == R.NACL_INGRESS
    net.find("db").associate_network_acl(vpc.default_network_acl)
    assert any_engine.one(net, *to_db).reason == R.SG_INGRESS
    # the route's drops come before the receiving side's filters: NO_SUCH_HOST, not NACL_INGRESS
    net.find("db").associate_network_acl(deny_in)
    assert any_engine.one(net, *tcp(net, "web1", "10.0.3.99", 5432)).reason == R.NO_SUCH_HOST
    # a FORWARD to a gateway meets the egress half only
    assert any_engine.one(net, *tcp(net, "web1", "8.8.8.8", 443)).action == A.FORWARD


def test_r56_trace_shows_the_filter_hops_in_path_order(net: fv.Network) -> None:
    """The reference's recorder: 10.0.1.10 -> 10.0.2.20 meets SG-out, NACL-out, the route, NACL-in, SG-in."""
    net.find("sg-app").authorize_ingress("tcp", 8080, net.find("sg-web"))
    hops: list[Any] = []
    frame, port = tcp(net, "web1", "10.0.2.20", 8080)
    v = ReferenceForwarder(net).forward(frame, port, hops=hops)
    assert delivered(v, net, "app2")
    filt = [(h.stage, h.kind, h.name, h.direction) for h in hops if h.kind in ("sg", "acl")]
    acl = net.find("prod").default_network_acl.name
    assert filt == [("sg_egress", "sg", "sg-web", "egress"), ("nacl_egress", "acl", acl, "egress"),
                    ("nacl_ingress", "acl", acl, "ingress"), ("sg_ingress", "sg", "sg-app", "ingress")]
    stages = [h.stage for h in hops]
    assert stages.index("nacl_egress") < stages.index("route") < stages.index("nacl_ingress")
    assert str(hops[stages.index("sg_egress")]).split(None, 1)[1] == "sg-web egress: allowed by all to 0.0.0.0/0"
    assert str(hops[stages.index("sg_ingress")]).split(None, 1)[1] == \
        "sg-app ingress: allowed by tcp 8080 from sg-web"
    assert hops[stages.index("nacl_ingress")].detail.startswith("allowed by entry 100 (allow all from 0.0.0.0/0)")
