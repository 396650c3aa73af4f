"""trace_packet: hop-by-hop explanations that agree with Dataplane.process.

These are the routing traces, on snapshots compiled with ``filters=False`` (the hops of the security
groups, network ACLs and connection tracking are tests/trace/test_trace_filters.py)."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastvpc.batch import FrameBatch
from fastvpc.examples import seed_vpc
from fastvpc.reference import ReferenceForwarder
from fastvpc.testing import assert_same_verdicts, compile_network, filters_of, run
from fastvpc.topology import BLACKHOLE, Network
from fastvpc.trace import Hop, Trace, build_frame, trace_packet
from fastvpc.verdicts import Action, DropReason


def kinds(t: Trace) -> list[str]:
    return [h.kind for h in t.hops]


def names(t: Trace) -> list[str]:
    return [h.name for h in t.hops]


@pytest.fixture(scope="module")
def net() -> Network:
    """The seed VPC, plus a peer VPC (10.1.0.0/16) peered with prod and routed from rt-web."""
    n = seed_vpc()
    peer = n.add_vpc("10.1.0.0/16", name="peer", main_route_table="rt-peer")
    ps = peer.add_subnet("10.1.1.0/24", name="psub")
    ps.add_eni("10.1.1.10", name="p1")
    pcx = n.add_peering(n.find("prod"), peer, name="pcx")
    n.find("rt-web").add_route("10.1.0.0/16", pcx)
    peer.main_route_table.add_route("10.0.0.0/16", pcx)
    fw = n.find("app").add_eni("10.0.2.50", name="fw", source_dest_check=False)
    n.find("rt-web").add_route("192.168.0.0/16", fw)
    n.find("rt-web").add_route("172.16.0.0/12", n.find("app1"))     # an ENI target with the check on
    n.find("rt-db").add_route("10.9.0.0/16", BLACKHOLE)
    return n


@pytest.fixture(scope="module")
def dp(net: Network) -> Any:
    return compile_network(net, filters=False)


def route_index(net: Network, table: str, dest: str) -> int:
    r = net.find(table).route(dest)
    return next(i for i, x in enumerate(net.routes()) if x is r)


# --------------------------------------------------------------------------- the seed cases

def test_web_to_internet(net: Network, dp: Any) -> None:
    t = trace_packet(dp, "web1", "8.8.8.8", network=net)
    assert (t.action, t.reason, t.egress, t.egress_name) == (Action.FORWARD, DropReason.NONE, net.find("igw").port, "igw")
    assert t.route == route_index(net, "rt-web", "0.0.0.0/0")
    assert kinds(t) == ["eni", "subnet", "route-table", "route", "igw", "igw", "verdict"]
    assert "203.0.113.10" in t.hops[5].detail           # out through the igw with web1's public IP (#30)
    assert names(t)[:4] == ["web1", "web", "rt-web", "0.0.0.0/0 -> igw"]
    assert "origin static" in t.hops[3].detail and f"route #{t.route}" in t.hops[3].detail
    assert "explicitly associated" in t.hops[2].detail
    assert "source/dest check on" in t.hops[0].detail
    assert t.agrees and t.ra_code is None and t.verdict_source == "dataplane"


def test_app_to_internet_no_route(net: Network, dp: Any) -> None:
    t = trace_packet(dp, "app1", "8.8.8.8", network=net)
    assert (t.action, t.reason, t.route, t.egress) == (Action.DROP, DropReason.NO_ROUTE, -1, -1)
    assert t.ra_code == "NO_ROUTE_TO_DESTINATION"
    assert kinds(t) == ["eni", "subnet", "route-table", "route", "verdict"]
    assert t.hops[2].name == "rt-main" and "main route table" in t.hops[2].detail
    assert "NO_ROUTE_TO_DESTINATION" in t.hops[-1].detail
    assert "NO_ROUTE_TO_DESTINATION" in str(t)


def test_db_to_on_prem_via_vgw(net: Network, dp: Any) -> None:
    t = trace_packet(dp, "db1", "192.168.10.5", proto="tcp", port=1433, network=net)
    assert (t.action, t.egress_name) == (Action.FORWARD, "vgw")
    assert t.route == route_index(net, "rt-db", "0.0.0.0/0")
    assert kinds(t)[-2:] == ["vgw", "verdict"] and "VPN gateway" in t.hops[-2].detail
    assert t.proto == "tcp" and t.port == 1433


def test_cross_subnet_deliver(net: Network, dp: Any) -> None:
    t = trace_packet(dp, "web1", "10.0.3.11", proto="udp", network=net)   # db1's secondary IP
    assert (t.action, t.egress_name) == (Action.DELIVER, "db1")
    assert t.route == route_index(net, "rt-web", "10.0.0.0/16")
    assert kinds(t) == ["eni", "subnet", "route-table", "route", "vpc", "eni", "verdict"]
    assert "origin local" in t.hops[3].detail
    assert net.find("db").gateway_mac in t.hops[5].detail      # src MAC := receiving subnet's gateway MAC
    # the frame really was rewritten that way
    assert t.frame[:6] == bytes.fromhex(net.find("db1").mac.replace(":", ""))
    assert t.frame[6:12] == bytes.fromhex(net.find("db").gateway_mac.replace(":", ""))


def test_same_subnet_deliver_without_lookup(net: Network, dp: Any) -> None:
    t = trace_packet(dp, "10.0.1.10", "10.0.1.20", network=net)      # source given as an IP
    assert (t.action, t.egress_name, t.route, t.ingress) == (Action.DELIVER, "web2", -1, "web1")
    assert kinds(t) == ["eni", "subnet", "eni", "verdict"] and "without a route lookup" in t.hops[1].detail
    assert t.frame[6:12] == bytes.fromhex(net.find("web1").mac.replace(":", ""))  # sender's MAC kept


def test_other_subnets_router(net: Network, dp: Any) -> None:
    t = trace_packet(dp, "web1", "10.0.2.1", network=net)
    assert (t.action, t.reason) == (Action.DROP, DropReason.ROUTER_NOT_OWN_SUBNET)
    assert t.hops[1] .kind == "router" and t.hops[1].name == "app"


def test_own_router(net: Network, dp: Any) -> None:
    t = trace_packet(dp, "web1", "10.0.1.1", network=net)
    assert (t.action, t.egress) == (Action.REPLY, net.find("web1").port)
    assert kinds(t) == ["eni", "router", "verdict"]
    t = trace_packet(dp, "web1", "10.0.1.1", proto="tcp", port=22, network=net)
    assert (t.action, t.reason) == (Action.DROP, DropReason.ROUTER_UNSUPPORTED)


def test_peering(net: Network, dp: Any) -> None:
    t = trace_packet(dp, "web1", "10.1.1.10", network=net)
    assert (t.action, t.egress_name) == (Action.DELIVER, "p1")
    assert kinds(t) == ["eni", "subnet", "route-table", "route", "pcx", "eni", "verdict"]
    assert "enters VPC peer" in t.hops[4].detail and "no transit" in t.hops[4].detail
    t = trace_packet(dp, "web1", "10.1.1.99", network=net)
    assert (t.action, t.reason) == (Action.DROP, DropReason.NO_SUCH_HOST)
    assert kinds(t)[-3:] == ["pcx", "vpc", "verdict"]
    # the peer's side, through its main table
    t = trace_packet(dp, "p1", "10.0.3.10", network=net)
    assert (t.action, t.egress_name) == (Action.DELIVER, "db1") and t.hops[2].name == "rt-peer"
    # no transit: the peer cannot reach prod's internet gateway
    t = trace_packet(dp, "p1", "8.8.8.8", network=net)
    assert t.reason == DropReason.NO_ROUTE


def test_blackhole_and_eni_targets(net: Network, dp: Any) -> None:
    t = trace_packet(dp, "db1", "10.9.1.1", network=net)
    assert (t.action, t.reason, t.ra_code) == (Action.DROP, DropReason.BLACKHOLE, "BAD_STATE_ROUTE")
    assert t.route == route_index(net, "rt-db", "10.9.0.0/16") and kinds(t)[-2] == "blackhole"
    t = trace_packet(dp, "web1", "192.168.1.1", network=net)     # to the middlebox, check off
    assert (t.action, t.egress_name) == (Action.DELIVER, "fw") and "source/dest check off" in t.hops[-2].detail
    t = trace_packet(dp, "web1", "172.16.1.1", network=net)      # to app1, whose check is on
    assert (t.action, t.reason, t.ra_code) == (Action.DROP, DropReason.SRC_DST_CHECK,
                                               "ENI_SOURCE_DEST_CHECK_RESTRICTION")


def test_source_dest_check_at_ingress(net: Network, dp: Any) -> None:
    t = trace_packet(dp, "web1", "8.8.8.8", src_ip="10.0.1.99", network=net)
    assert (t.action, t.reason) == (Action.DROP, DropReason.SRC_DST_CHECK)
    assert "not one of its addresses" in t.hops[0].detail and t.src_ip == "10.0.1.99"
    t = trace_packet(dp, "fw", "8.8.8.8", src_ip="1.2.3.4", network=net)   # check off: routed (no route in main)
    assert (t.action, t.reason) == (Action.DROP, DropReason.NO_ROUTE) and "check off" in t.hops[0].detail


@pytest.mark.parametrize("dst,reason", [
    ("10.0.1.255", DropReason.BROADCAST), ("10.0.3.255", DropReason.BROADCAST),
    ("255.255.255.255", DropReason.BROADCAST), ("224.0.0.5", DropReason.MULTICAST),
    ("169.254.169.254", DropReason.LINK_LOCAL_SERVICE), ("10.0.1.77", DropReason.NO_SUCH_HOST),
    ("10.0.2.77", DropReason.NO_SUCH_HOST),
])
def test_drops(net: Network, dp: Any, dst: str, reason: DropReason) -> None:
    t = trace_packet(dp, "web1", dst, network=net)
    assert (t.action, t.reason) == (Action.DROP, reason) and t.agrees


def test_output_forms(net: Network, dp: Any) -> None:
    t = trace_packet(dp, "web1", "8.8.8.8", network=net)
    text = str(t)
    assert text.splitlines()[0] == "trace 10.0.1.10 (web1) -> 8.8.8.8 icmp: FORWARD"
    # the hops, then what was not evaluated (an IGW exit: filters, the public-IP check, the return path)
    assert len(text.splitlines()) == len(t.hops) + 3 and "1. eni" in text
    assert text.splitlines()[-2].startswith("  not evaluated: security groups and network ACLs")
    assert "public IP" in text.splitlines()[-2]
    assert t.to_dict()["not_evaluated"] == t.not_evaluated and len(t.not_evaluated) == 3
    assert text.splitlines()[-1].strip() == "the reference forwarder agrees with the data plane"
    d = json.loads(json.dumps(t.to_dict()))
    assert d["action"] == "FORWARD" and d["egress_name"] == "igw" and d["hops"][0] == t.hops[0].to_dict()
    assert isinstance(t.hops[0], Hop) and str(t.hops[0]).startswith("eni")


def test_sources_and_entry_points(net: Network, dp: Any) -> None:
    a = trace_packet(net, "db1", "10.0.1.10", filters=False)          # Network: compiled for the verdict
    b = trace_packet(dp, "db1", "10.0.1.10", network=net)
    c = trace_packet(net, "db1", "10.0.1.10", verdict="reference", filters=False)
    assert a.to_dict() == b.to_dict()
    assert {k: v for k, v in c.to_dict().items() if k != "verdict_source"} == \
           {k: v for k, v in a.to_dict().items() if k != "verdict_source"}
    assert c.verdict_source == "reference"
    t = trace_packet(net, "10.0.3.11", "10.0.1.10")                   # a secondary IP names its ENI
    assert t.ingress == "db1" and t.src_ip == "10.0.3.11"
    t = trace_packet(net, "i-db", "10.0.1.10", aliases={"i-db": ["db1"]})
    assert t.ingress == "db1"

    class WithNetwork:       # what Dataplane must provide: process() and the compiled topology
        def __init__(self) -> None:
            self.network = net

        def process(self, batch: FrameBatch, copy: bool = False) -> Any:
            return dp.process(batch, copy=copy)

    assert trace_packet(WithNetwork(), "db1", "10.0.1.10").to_dict() == b.to_dict()
    # a Dataplane carries its compiled topology: no network= needed, and dp.trace is the same call
    assert trace_packet(dp, "db1", "10.0.1.10").to_dict() == b.to_dict()
    assert dp.trace("db1", "10.0.1.10").to_dict() == b.to_dict()
    with pytest.raises(TypeError, match="topology"):
        trace_packet(object(), "db1", "10.0.1.10")


def test_bad_arguments(net: Network) -> None:
    with pytest.raises(KeyError, match="nobody"):
        trace_packet(net, "nobody", "8.8.8.8")
    with pytest.raises(KeyError, match="10.0.1.99"):
        trace_packet(net, "10.0.1.99", "8.8.8.8")
    with pytest.raises(ValueError, match="not an ENI or an internet, VPN or transit gateway"):
        trace_packet(net, "web", "8.8.8.8")             # a subnet (a trace from the igw enters from outside)
    with pytest.raises(ValueError, match="destination"):
        trace_packet(net, "web1", "8.8.8")
    with pytest.raises(ValueError, match="protocol"):
        trace_packet(net, "web1", "8.8.8.8", proto="sctp-ish")
    with pytest.raises(ValueError, match="port"):
        trace_packet(net, "web1", "8.8.8.8", proto="tcp", port=70000)
    with pytest.raises(ValueError, match="only applies"):
        trace_packet(net, "web1", "8.8.8.8", proto="icmp", port=80)
    with pytest.raises(ValueError, match="verdict"):
        trace_packet(net, "web1", "8.8.8.8", verdict="guess")


def test_ambiguous_source_ip() -> None:
    n = Network()
    for name in ("a", "b"):
        v = n.add_vpc("10.0.0.0/16", name=name)
        v.add_subnet("10.0.1.0/24", name=f"s{name}").add_eni("10.0.1.10", name=f"e{name}")
    with pytest.raises(ValueError, match="ea, eb"):
        trace_packet(n, "10.0.1.10", "10.0.1.20")
    assert trace_packet(n, "eb", "10.0.1.20").reason == DropReason.NO_SUCH_HOST


def test_frames_are_what_a_vm_sends(net: Network) -> None:
    """scapy, an independent parser, accepts the frames: checksums, MACs, ports."""
    import scapy.all as scapy_all  # a test dependency: never skipped

    web1 = net.find("web1")
    for proto, dst, port in [("icmp", "8.8.8.8", None), ("tcp", "10.0.1.20", 443), ("udp", "10.0.3.10", 53), (47, "8.8.8.8", None)]:
        raw = build_frame(net, web1, dst, proto, port)
        pkt = scapy_all.Ether(raw)
        ip = pkt[scapy_all.IP]
        assert ip.src == "10.0.1.10" and ip.dst == dst and ip.ttl == 64
        rebuilt = scapy_all.Ether(raw)
        del rebuilt[scapy_all.IP].chksum
        if proto in ("tcp", "udp", "icmp"):
            del rebuilt[scapy_all.IP].payload.chksum
        assert bytes(rebuilt)[:len(raw)] == raw[:len(bytes(rebuilt))]   # the checksums scapy computes match
        want = net.find("web2").mac if dst == "10.0.1.20" else net.find("web").gateway_mac
        assert pkt.dst == want and pkt.src == web1.mac
        if port is not None:
            assert pkt[2].dport == port


# --------------------------------------------------------------------------- agreement on random cases

def _random_network(data: st.DataObject) -> Network:
    n = seed_vpc()
    prod = n.find("prod")
    peer = n.add_vpc("10.1.0.0/16", name="peer")
    ps = peer.add_subnet("10.1.1.0/24", name="psub")
    ps.add_eni("10.1.1.10", name="p1")
    pcx = n.add_peering(prod, peer, name="pcx")
    nat = n.find("web").add_nat_gateway(name="nat")
    mbox = n.find("app").add_eni("10.0.2.50", name="mbox",
                                 source_dest_check=data.draw(st.booleans(), label="mbox check"))
    tables = [n.find("rt-web"), n.find("rt-db"), n.find("rt-main"), peer.main_route_table]
    targets: list[Any] = [n.find("igw"), n.find("vgw"), nat, mbox, n.find("db2"), BLACKHOLE, pcx]
    for _ in range(data.draw(st.integers(0, 8), label="n routes")):
        rt = data.draw(st.sampled_from(tables))
        plen = data.draw(st.integers(0, 28))
        addr = data.draw(st.integers(0, 2**32 - 1))
        dest = ipaddress.IPv4Network((addr >> (32 - plen) << (32 - plen) if plen else 0, plen))
        tgt = data.draw(st.sampled_from(targets))
        try:
            rt.add_route(dest, tgt)
        except Exception:  # refused by validation (target in another VPC, #23, overlaps...): fine
            pass
    if data.draw(st.booleans(), label="app1 check off"):
        n.find("app1").source_dest_check = False
    return n


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_trace_agrees_with_process(data: st.DataObject) -> None:
    n = _random_network(data)
    dp = n.compile()
    ref = ReferenceForwarder(n, filters=filters_of(dp))
    enis = n.enis
    eni = data.draw(st.sampled_from(enis), label="src")
    pool = [str(ip) for e in enis for ip in e.ips]
    pool += [str(s.router_ip) for s in n.subnets] + [str(s.broadcast_ip) for s in n.subnets]
    pool += ["8.8.8.8", "192.168.1.1", "10.0.1.77", "10.0.7.7", "10.1.1.99", "224.0.0.5", "255.255.255.255",
             "169.254.169.254", "10.0.3.11"]
    dst = data.draw(st.one_of(st.sampled_from(pool), st.ip_addresses(v=4).map(str)), label="dst")
    proto = data.draw(st.sampled_from(["icmp", "tcp", "udp"]), label="proto")
    src_ip = data.draw(st.one_of(st.none(), st.sampled_from(pool)), label="src_ip")
    t = trace_packet(dp, eni, dst, proto, src_ip=src_ip, network=n)
    assert t.agrees, str(t)
    frame = build_frame(n, eni, dst, proto, src_ip=src_ip)
    assert_same_verdicts(dp, ref, [(frame, eni.port)])
    got = run(dp, [(frame, eni.port)])[0]
    if got.reason == DropReason.NAT_NEEDS_STATE:   # the trace crosses a NAT gateway on fresh tables (docs/edge.md §4)
        from fastvpc.dataplane.state import FlowTable
        from fastvpc.trace import REPLY_T0
        got = run(dp, [(frame, eni.port)], state=FlowTable(64), now=REPLY_T0)[0]
    assert (t.action, t.reason, t.egress, t.route, t.frame) == (got.action, got.reason, got.egress, got.route,
                                                                 got.frame)
    assert t.expected == got
    assert t.hops[-1].kind == "verdict" and t.hops[0].name == eni.name
    if t.route >= 0:
        r = n.routes()[t.route]
        assert any(h.kind == "route" and h.name == f"{r.destination} -> {r.target.name}" for h in t.hops)


def test_cli_trace_seed(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from fastvpc.cli import trace as cli_trace

    parser = argparse.ArgumentParser(prog="fastvpc")
    cli_trace.add_parser(parser.add_subparsers(dest="command"))

    def run(argv: list[str]) -> int:
        args = parser.parse_args(argv)
        return int(args.func(args))

    assert run(["trace", "seed", "--from", "app1", "--to", "8.8.8.8"]) == 1      # exit 1: dropped
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "trace 10.0.2.10 (app1) -> 8.8.8.8 icmp: DROP NO_ROUTE [NO_ROUTE_TO_DESTINATION]"
    assert run(["trace", "seed", "--from", "10.0.3.10", "--to", "192.168.1.1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["action"], d["egress_name"], [h["kind"] for h in d["hops"]][-2:]) == ("FORWARD", "vgw", ["vgw", "verdict"])
    assert run(["trace", "seed", "--from", "web1", "--to", "8.8.8.8", "--proto", "gre"]) == 2
    assert "protocol" in capsys.readouterr().err


def test_trace_is_the_reference_with_a_recorder(net: Network, dp: Any) -> None:
    """The hops are the reference forwarder's, stage by stage, then the verdict."""
    from fastvpc.reference import STAGES

    t = trace_packet(dp, "web1", "10.1.1.10", network=net)
    hops: list[Hop] = []
    v = ReferenceForwarder(net, filters=False).forward(build_frame(net, net.find("web1"), "10.1.1.10"),
                                                       net.find("web1").port, hops)
    assert t.hops[:-1] == hops and t.expected == v
    assert [h.stage for h in t.hops] == ["ingress", "local", "route", "route", "route", "rewrite", ""]
    assert all(h.stage in STAGES for h in t.hops[:-1])
    d = t.to_dict()
    assert d["reference"] == {"action": "DELIVER", "reason": "NONE", "egress": net.find("p1").port,
                              "route": t.route}
    assert d["hops"][0]["stage"] == "ingress"


def test_trace_reports_a_disagreement(net: Network, dp: Any) -> None:
    """A data plane that disagrees with the reference: the trace reports the data plane's verdict, says so
    in a warning hop, in str() and in to_dict()."""

    class Wrong:
        network = net
        arp_mode = "target"

        def __init__(self, what: str) -> None:
            self.what = what

        def process(self, batch: FrameBatch, copy: bool = False) -> Any:
            res = dp.process(batch, copy=copy)
            if self.what == "route":
                res.route[0] = 0
            else:
                res.frames.data[int(res.frames.offsets[0]) + 11] ^= 1
            return res

    t = trace_packet(Wrong("route"), "web1", "8.8.8.8")
    assert not t.agrees and t.route == 0 and t.action == Action.FORWARD
    assert t.expected is not None and t.expected.route == route_index(net, "rt-web", "0.0.0.0/0")
    warning = next(h for h in t.hops if h.kind == "warning")
    assert f"route {t.expected.route}" in warning.detail and "the data plane says FORWARD NONE" in warning.detail
    r0 = net.routes()[0]
    assert any(h.kind == "route" and h.name == f"{r0.destination} -> {r0.target.name}" and "reported by the data "
               "plane" in h.detail for h in t.hops)
    assert str(t).splitlines()[-1].strip().startswith("MISMATCH")
    d = t.to_dict()
    assert d["agrees"] is False and d["route"] == 0 and d["reference"]["route"] == t.expected.route
    t = trace_packet(Wrong("frame"), "web1", "10.0.3.10")       # same verdict, another output frame
    assert not t.agrees and "with another output frame" in next(h for h in t.hops if h.kind == "warning").detail
    t = trace_packet(net, "web1", "8.8.8.8", verdict="reference")
    assert t.agrees and str(t).splitlines()[-1].strip().startswith("verdict from the reference forwarder")


def test_a_drop_needs_nothing_more_evaluated_and_a_delivery_names_the_filters():
    net = seed_vpc()
    dp = compile_network(net, filters=False)
    dropped = dp.trace(src="app1", dst="8.8.8.8", proto="icmp")
    assert dropped.action == Action.DROP and dropped.not_evaluated == ["security groups and network ACLs not "
                                                                       "evaluated (compiled with filters=False: "
                                                                       "the verdict is the routing view)"]
    delivered = dp.trace(src="web1", dst="10.0.2.10", proto="tcp", port=8080)
    assert delivered.action == Action.DELIVER
    assert any("security groups" in x for x in delivered.not_evaluated)
    assert not any("internet gateway" in x for x in delivered.not_evaluated)
