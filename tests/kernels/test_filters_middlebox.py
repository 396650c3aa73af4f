"""NACLs at the subnet boundary (#55) on a route to a middlebox ENI: a frame routed to an ENI of the
sender's own subnet never leaves the subnet, so neither the egress nor the ingress NACL applies
(DESIGN.md §5), though its destination is outside the subnet; a route to a middlebox in another subnet
leaves it and meets the egress NACL, which still comes before the route's own verdicts (#56).

Every mode of the kernel (compile(filters=True) without and with a FlowTable, n_threads 1 and 2, the NAT
gateway's hop from its own subnet), the reference forwarder, the trace and the flow log."""

from __future__ import annotations

from typing import Any

import pytest

import fastvpc as fv
from fastvpc import packets as pk
from fastvpc.dataplane.flowlogs import FlowLog
from fastvpc.reference import ReferenceForwarder
from fastvpc.testing import assert_same_verdicts, fresh_states
from nat_net import nat_network

A, R = fv.Action, fv.DropReason
NS = 1_000_000_000
T0 = 1_700_000_000 * NS


def world() -> dict[str, Any]:
    """prod 10.0.0.0/16: web 10.0.1.0/24 (web1 .10; fw .50 and chk .60 middleboxes, source/dest check off and
    on), app 10.0.2.0/24 (app1 .10, mb-app .50 a middlebox), db 10.0.3.0/24 (db1 .10, db-fw .50 a middlebox;
    on the main table).  rt-web: 0/0 -> igw, 10.5/16 -> fw, 10.0.2.0/24 -> fw (more specific than local),
    10.6/16 -> mb-app, 10.7/16 -> chk, 10.8/16 blackhole; main: 10.20/16 -> db-fw.  web and db have a
    custom NACL with no entries (everything in and out denied); app the default (allow all).  Every ENI in
    the default group, which admits everything."""
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="prod")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    app = vpc.add_subnet("10.0.2.0/24", name="app")
    db = vpc.add_subnet("10.0.3.0/24", name="db")
    igw = vpc.add_internet_gateway(name="igw")
    vpc.default_security_group.authorize_ingress("all", None, "0.0.0.0/0")
    e = {"web1": web.add_eni("10.0.1.10", name="web1"),
         "fw": web.add_eni("10.0.1.50", name="fw", source_dest_check=False),
         "chk": web.add_eni("10.0.1.60", name="chk"),
         "app1": app.add_eni("10.0.2.10", name="app1"),
         "mb-app": app.add_eni("10.0.2.50", name="mb-app", source_dest_check=False),
         "db1": db.add_eni("10.0.3.10", name="db1"),
         "db-fw": db.add_eni("10.0.3.50", name="db-fw", source_dest_check=False)}
    rt = vpc.add_route_table(name="rt-web", routes=[("0.0.0.0/0", igw), ("10.5.0.0/16", e["fw"]),
                                                    ("10.0.2.0/24", e["fw"]), ("10.6.0.0/16", e["mb-app"]),
                                                    ("10.7.0.0/16", e["chk"]), ("10.8.0.0/16", fv.BLACKHOLE)])
    web.associate(rt)
    vpc.main_route_table.add_route("10.20.0.0/16", e["db-fw"])
    web.associate_network_acl(vpc.add_network_acl(name="web-deny-all"))
    db.associate_network_acl(vpc.add_network_acl(name="db-deny-all"))
    return {"net": net, "vpc": vpc, "rt": rt, **e}


def ping(src: fv.Eni, dst: str) -> bytes:
    return pk.ethernet(src.subnet.gateway_mac, src.mac, pk.ETH_IPV4, pk.icmp_echo(src.ip, dst, ident=7))


def tcp(src: fv.Eni, dst: str, dport: int = 443) -> bytes:
    return pk.ethernet(src.subnet.gateway_mac, src.mac, pk.ETH_IPV4, pk.tcp(src.ip, dst, 40000, dport, flags=0x02))


def route_of(net: fv.Network, dest: str, rt: str) -> int:
    """The index (Dataplane.route) of route ``dest`` in route table ``rt``."""
    return next(i for i, r in enumerate(net.routes()) if str(r.destination) == dest and r.route_table.name == rt)


def cases(w: dict[str, Any]) -> list[tuple[bytes, fv.Eni, tuple[A, R, str | None, str | None]]]:
    """(frame, sender, (action, reason, receiver, route)) with web's and db's NACLs denying everything."""
    main = w["vpc"].main_route_table.name
    return [
        # the two of the report: routed to fw in the sender's own subnet
        (ping(w["web1"], "10.5.0.1"), w["web1"], (A.DELIVER, R.NONE, "fw", "10.5.0.0/16@rt-web")),
        (ping(w["web1"], "10.0.2.10"), w["web1"], (A.DELIVER, R.NONE, "fw", "10.0.2.0/24@rt-web")),
        (tcp(w["web1"], "10.5.9.9", 22), w["web1"], (A.DELIVER, R.NONE, "fw", "10.5.0.0/16@rt-web")),
        # the middlebox sends to its own route: back to itself, still inside web
        (tcp(w["fw"], "10.5.0.1"), w["fw"], (A.DELIVER, R.NONE, "fw", "10.5.0.0/16@rt-web")),
        # a target in web with its source/dest check on: the route's own verdict, not the NACL's
        (ping(w["web1"], "10.7.0.1"), w["web1"], (A.DROP, R.SRC_DST_CHECK, None, "10.7.0.0/16@rt-web")),
        # leaving web: a middlebox in another subnet, a blackhole, the internet gateway: the NACL-out first
        (ping(w["web1"], "10.6.0.1"), w["web1"], (A.DROP, R.NACL_EGRESS, None, None)),
        (tcp(w["web1"], "10.6.0.1", 80), w["web1"], (A.DROP, R.NACL_EGRESS, None, None)),
        (ping(w["web1"], "10.8.0.1"), w["web1"], (A.DROP, R.NACL_EGRESS, None, None)),
        (tcp(w["web1"], "8.8.8.8"), w["web1"], (A.DROP, R.NACL_EGRESS, None, None)),
        # db's main table routes 10.20/16 to db-fw: from db it stays inside db ...
        (ping(w["db1"], "10.20.0.1"), w["db1"], (A.DELIVER, R.NONE, "db-fw", f"10.20.0.0/16@{main}")),
        # ... and a destination with no route from db meets db's NACL-out before NO_ROUTE
        (ping(w["db1"], "8.8.8.8"), w["db1"], (A.DROP, R.NACL_EGRESS, None, None)),
        # from app (allow all out) the same route enters db: db's NACL-in
        (ping(w["app1"], "10.20.0.1"), w["app1"], (A.DROP, R.NACL_INGRESS, None, f"10.20.0.0/16@{main}")),
        # app's table has no route for 10.6/16 (app's NACL admits it: the route's own drop); web1 to fw's own
        # address: inside web, no route lookup, no NACL
        (ping(w["app1"], "10.6.0.1"), w["app1"], (A.DROP, R.NO_ROUTE, None, None)),
        (ping(w["web1"], "10.0.1.50"), w["web1"], (A.DELIVER, R.NONE, "fw", None)),
    ]


def expected(net: fv.Network, want: tuple[A, R, str | None, str | None]) -> tuple[int, int, int, int]:
    action, reason, to, route = want
    egress = net.find(to).port if to is not None else -1
    if route is None:
        rt = -1
    else:
        dest, table = route.split("@")
        rt = route_of(net, dest, table)
    return int(action), int(reason), egress, rt


def batch_of(items: list[tuple[bytes, fv.Eni]], times: int = 1) -> fv.FrameBatch:
    """The items repeated ``times`` times (more than one chunk of 128 frames: both threads get work)."""
    frames = [f for f, _ in items] * times
    ports = [e.port for _, e in items] * times
    return fv.FrameBatch.from_frames(frames, port=ports, timestamp=[T0] * len(frames))


def verdicts(res: Any) -> list[tuple[int, int, int, int]]:
    return [(int(a), int(r), int(e), int(t)) for a, r, e, t in zip(res.action, res.reason, res.egress, res.route)]


@pytest.fixture(scope="module")
def w() -> dict[str, Any]:
    return world()


def test_the_cases_on_the_reference_forwarder(w: dict[str, Any]) -> None:
    ref = ReferenceForwarder(w["net"])
    for frame, src, want in cases(w):
        v = ref.forward(frame, src.port)
        assert (int(v.action), int(v.reason), v.egress, v.route) == expected(w["net"], want), want


@pytest.mark.parametrize("n_threads", [1, 2])
def test_the_cases_without_a_flow_table(w: dict[str, Any], n_threads: int) -> None:
    net, cs = w["net"], cases(w)
    dp = net.compile()
    items = [(f, e) for f, e, _ in cs]
    want = [expected(net, x) for _, _, x in cs] * 3
    res = dp.process(batch_of(items, 3), n_threads=n_threads)
    assert verdicts(res) == want
    assert_same_verdicts(dp, net, [(f, e.port) for f, e in items])


@pytest.mark.parametrize("n_threads", [1, 2])
def test_the_cases_with_a_flow_table(w: dict[str, Any], n_threads: int) -> None:
    """Statefully: NACLs stay stateless, and the repeats of each flow (tracked after the first) keep the
    verdict; the table holds what the reference's holds."""
    net, cs = w["net"], cases(w)
    dp = net.compile()
    items = [(f, e) for f, e, _ in cs]
    want = [expected(net, x) for _, _, x in cs] * 20
    flows = fv.FlowTable(capacity=10_000)
    res = dp.process(batch_of(items, 20), n_threads=n_threads, state=flows, now=T0)
    assert len(res) > 2 * 128 and verdicts(res) == want
    st = fresh_states(10_000)
    assert_same_verdicts(dp, net, [(f, e.port) for f, e in items] * 20, state=st, now=T0)
    assert sorted(map(tuple, flows.flows().tolist())) == sorted(map(tuple, st.kernel.flows().tolist()))


def test_unfiltered_compile_is_the_route_alone(w: dict[str, Any]) -> None:
    net = w["net"]
    dp = net.compile(filters=False)
    res = dp.process(batch_of([(ping(w["web1"], "10.5.0.1"), w["web1"]), (ping(w["web1"], "10.6.0.1"), w["web1"])]))
    assert [A(a) for a in res.action] == [A.DELIVER, A.DELIVER]
    assert [int(e) for e in res.egress] == [w["fw"].port, w["mb-app"].port]


def test_an_allow_entry_opens_the_way_to_a_middlebox_in_another_subnet(w: dict[str, Any]) -> None:
    net = world()["net"]
    acl = net.find("web-deny-all")
    acl.add_entry(100, "egress", "allow", "icmp", None, "10.6.0.0/16")
    dp = net.compile()
    web1, mb = net.find("web1"), net.find("mb-app")
    for state in (None, fv.FlowTable(capacity=100)):
        kw: dict[str, Any] = {} if state is None else {"state": state, "now": T0}
        res = dp.process(batch_of([(ping(web1, "10.6.0.1"), web1), (tcp(web1, "10.6.0.1"), web1)]), **kw)
        assert verdicts(res)[0][:3] == (int(A.DELIVER), int(R.NONE), mb.port)
        assert verdicts(res)[1] == (int(A.DROP), int(R.NACL_EGRESS), -1, -1)


def test_the_trace_evaluates_no_nacl_on_the_way_to_a_middlebox_in_the_subnet(w: dict[str, Any]) -> None:
    dp = w["net"].compile()
    for dst in ("10.5.0.1", "10.0.2.10"):
        tr = dp.trace(src="10.0.1.10", dst=dst, proto="icmp")
        assert tr.agrees and tr.action == A.DELIVER and tr.egress == w["fw"].port
        acl = [h for h in tr.hops if h.kind == "acl"]
        # no NACL is evaluated: only the two notes that say why not (egress: the route stays in web;
        # ingress: the receiver is in the sender's subnet)
        assert [h.direction for h in acl] == ["egress", "ingress"]
        assert all(h.detail.startswith("not evaluated:") and h.rule is None for h in acl)
        assert "leads to fw in subnet web itself" in acl[0].detail
    tr = dp.trace(src="10.0.1.10", dst="10.6.0.1", proto="icmp")
    assert tr.agrees and tr.reason == R.NACL_EGRESS
    acl = [h for h in tr.hops if h.kind == "acl"]
    assert len(acl) == 1 and acl[0].direction == "egress" and "denied by the implicit deny" in acl[0].detail
    assert not any(h.kind == "route" for h in tr.hops)        # decided before the route


def test_the_flow_log_records_a_delivery_inside_the_subnet(w: dict[str, Any]) -> None:
    net = w["net"]
    dp = net.compile()
    web1 = w["web1"]
    b = batch_of([(ping(web1, "10.5.0.1"), web1), (ping(web1, "10.6.0.1"), web1)])
    for state in (None, fv.FlowTable(capacity=100)):
        kw: dict[str, Any] = {} if state is None else {"state": state, "now": T0}
        res = dp.process(b.copy(), **kw)
        log = FlowLog(fields="${interface-id} ${dstaddr} ${pkt-dstaddr} ${flow-direction} ${traffic-path} ${action}")
        log.observe(dp, b, res)
        assert log.text().splitlines()[1:] == [
            "web1 10.5.0.1 10.5.0.1 egress 1 ACCEPT",       # delivered to fw: the sender's ACCEPT ...
            "fw 10.0.1.50 10.5.0.1 ingress - ACCEPT",       # ... and the middlebox's (its own primary IP)
            "web1 10.6.0.1 10.6.0.1 egress - REJECT",       # NACL_EGRESS: the sender's REJECT only
        ]


# --------------------------------------------------------------------------- the NAT gateway's hop

def nat_world() -> dict[str, Any]:
    """tests/nat_net.py's network (the NAT gateway in web, app's table 0/0 -> it) with a middlebox wfw in web
    and mb in app; web's (main) table: 10.30/16 -> wfw, 10.31/16 -> mb; web's NACL admits everything in and
    nothing out."""
    n = nat_network()
    n.vpc.default_security_group.authorize_ingress("all", None, "0.0.0.0/0")
    a1 = n.app.add_eni("10.0.2.10", name="a1")
    wfw = n.web.add_eni("10.0.1.50", name="wfw", source_dest_check=False)
    mb = n.app.add_eni("10.0.2.50", name="mb", source_dest_check=False)
    n.vpc.main_route_table.add_route("10.30.0.0/16", wfw)
    n.vpc.main_route_table.add_route("10.31.0.0/16", mb)
    acl = n.vpc.add_network_acl(name="web-in-only")
    acl.add_entry(100, "ingress", "allow", "all", None, "0.0.0.0/0")
    n.web.associate_network_acl(acl)
    return {"net": n.net, "a1": a1, "wfw": wfw, "mb": mb, "nat": n.nat}


@pytest.mark.parametrize("n_threads", [1, 2])
def test_routed_on_from_the_nat_gateway_to_a_middlebox_of_its_own_subnet(n_threads: int) -> None:
    w = nat_world()
    net, a1 = w["net"], w["a1"]
    items = [(tcp(a1, "10.30.0.1"), a1), (tcp(a1, "10.31.0.1"), a1), (tcp(a1, "8.8.8.8"), a1)]
    dp = net.compile()
    res = dp.process(batch_of(items, 50), n_threads=n_threads, state=fv.FlowTable(capacity=10_000), now=T0)
    got = verdicts(res)
    assert len(got) == 150
    for i in range(0, 150, 3):
        # to wfw in the NAT gateway's own subnet: no NACL-out there, delivered (from the NAT's address)
        assert got[i][:3] == (int(A.DELIVER), int(R.NONE), w["wfw"].port)
        # leaving web (mb in app, the internet gateway): web's NACL-out
        assert got[i + 1][:2] == got[i + 2][:2] == (int(A.DROP), int(R.NACL_EGRESS))
    assert_same_verdicts(dp, ReferenceForwarder(net, edge=True, nat=True), [(f, e.port) for f, e in items] * 4,
                         state=fresh_states(10_000), now=T0)
    assert res.frames.frame(0)[26:30] == w["nat"].ip.packed     # the source: the NAT gateway's private IP
