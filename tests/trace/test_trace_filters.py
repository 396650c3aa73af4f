"""Traces of the filter stages: hops naming the deciding security-group rule or NACL entry, the JSON
carrying the same, ``reply=True`` / ``--reply`` tracing the return packet with the forward flow
tracked, and what a trace says it did not evaluate."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

import fastvpc as fv
from fastvpc.trace import trace_packet
from fastvpc.verdicts import Action, DropReason


def topology() -> fv.Network:
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="prod")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    app = vpc.add_subnet("10.0.2.0/24", name="app")
    db = vpc.add_subnet("10.0.3.0/24", name="db")
    sg_web = vpc.add_security_group(name="sg-web")
    sg_app = vpc.add_security_group(name="sg-app")
    sg_app.authorize_ingress("tcp", 8080, sg_web)
    sg_web.revoke_egress("all", None, "0.0.0.0/0")
    sg_web.authorize_egress("tcp", (8000, 8080), "10.0.0.0/16")
    acl = vpc.add_network_acl(name="acl-db")
    acl.add_entry(100, "ingress", "deny", "tcp", 5432, "10.0.1.0/24")
    acl.add_entry(200, "ingress", "allow", "all", None, "0.0.0.0/0")
    db.associate_network_acl(acl)
    web.add_eni("10.0.1.10", name="web1", security_groups=[sg_web])
    app.add_eni("10.0.2.10", name="app1", security_groups=[sg_app])
    db.add_eni("10.0.3.10", name="db1", security_groups=[sg_app])
    return net


@pytest.fixture(params=["reference", "auto"])
def verdict(request: pytest.FixtureRequest) -> str:
    """The reference alone, and the compiled data plane checked against it."""
    return str(request.param)


def filter_hops(t: Any) -> list[tuple[str, str, str, str]]:
    return [(h.stage, h.kind, h.name, h.direction) for h in t.hops if h.kind in ("sg", "acl")]


def test_hops_name_the_deciding_rules(verdict: str) -> None:
    net = topology()
    t = trace_packet(net, "web1", "10.0.2.10", proto="tcp", port=8080, verdict=verdict)
    assert t.action == Action.DELIVER and t.agrees
    acl = net.find("prod").default_network_acl.name
    assert filter_hops(t) == [("sg_egress", "sg", "sg-web", "egress"), ("nacl_egress", "acl", acl, "egress"),
                              ("nacl_ingress", "acl", acl, "ingress"), ("sg_ingress", "sg", "sg-app", "ingress")]
    text = str(t)
    assert "sg-web egress: allowed by tcp 8000-8080 to 10.0.0.0/16" in text
    assert "sg-app ingress: allowed by tcp 8080 from sg-web" in text
    d = json.loads(json.dumps(t.to_dict()))
    sg_in = next(h for h in d["hops"] if h["stage"] == "sg_ingress")
    assert sg_in["kind"] == "sg" and sg_in["name"] == "sg-app" and sg_in["direction"] == "ingress"
    assert sg_in["rule"] == {"group": "sg-app", "direction": "ingress", "protocol": "tcp", "ports": [8080, 8080],
                             "icmp": None, "peer": "sg-web", "description": "tcp 8080 from sg-web"}
    assert d["reply"] is False and "forward" not in d
    assert any("connection tracking" in x for x in t.not_evaluated)


def test_denials_name_the_entry_or_say_no_rule(verdict: str) -> None:
    net = topology()
    t = trace_packet(net, "app1", "10.0.3.10", proto="tcp", port=5432, src_ip=None, verdict=verdict)
    assert (t.action, t.reason) == (Action.DROP, DropReason.SG_INGRESS)
    assert t.hops[-2].detail == "no rule admits tcp 5432 from 10.0.2.10"       # db1's sg-app: 8080 only
    t = trace_packet(net, "web1", "10.0.3.10", proto="tcp", port=8000, verdict=verdict)
    assert (t.action, t.reason, t.ra_code) == (Action.DROP, DropReason.SG_INGRESS, "ENI_SG_RULES_MISMATCH")
    net.find("sg-web").authorize_egress("tcp", 5432, "10.0.3.0/24")
    t = trace_packet(net, "web1", "10.0.3.10", proto="tcp", port=5432, verdict=verdict)
    assert (t.reason, t.ra_code) == (DropReason.NACL_INGRESS, "SUBNET_ACL_RESTRICTION")
    assert str(t.hops[-2]).split(None, 1)[1].startswith("acl-db ingress: denied by entry 100 (deny tcp 5432 from "
                                                         "10.0.1.0/24)")
    assert t.to_dict()["hops"][-2]["rule"]["number"] == 100
    t = trace_packet(net, "web1", "8.8.8.8", proto="udp", port=53, verdict=verdict)
    assert t.reason == DropReason.SG_EGRESS and t.hops[-2].detail == "no rule admits udp 53 to 8.8.8.8"
    net.find("app").associate_network_acl(net.find("prod").add_network_acl(name="acl-empty"))
    t = trace_packet(net, "web1", "10.0.2.10", proto="tcp", port=8080, verdict=verdict)
    assert t.reason == DropReason.NACL_INGRESS
    assert "denied by the implicit deny (entry 32767)" in t.hops[-2].detail


def test_reply_is_admitted_by_tracking_only(verdict: str) -> None:
    net = topology()
    plain = trace_packet(net, "app1", "10.0.1.10", proto="tcp", port=49152, verdict=verdict)
    assert plain.reason == DropReason.SG_INGRESS                   # sg-web has no ingress rule at all
    t = trace_packet(net, "web1", "10.0.2.10", proto="tcp", port=8080, verdict=verdict, reply=True)
    assert t.agrees and t.forward is not None and t.forward.action == Action.DELIVER
    assert (t.action, t.egress_name, t.ingress, t.src_ip, t.dst, t.port) == (Action.DELIVER, "web1", "app1",
                                                                             "10.0.2.10", "10.0.1.10", 49152)
    sg = [h for h in t.hops if h.kind == "sg"]
    assert [h.detail for h in sg] == ["admitted by tracked flow (SYN_RECV) of app1",
                                      "admitted by tracked flow (SYN_RECV) of web1"]
    text = str(t)
    assert text.splitlines()[0] == "trace reply 10.0.2.10 (app1) -> 10.0.1.10 tcp port 49152: DELIVER"
    assert "forward packet first, tracked: 10.0.1.10 (web1) -> 10.0.2.10 tcp port 8080: DELIVER" in text
    d = json.loads(json.dumps(t.to_dict()))
    assert d["reply"] is True and d["forward"]["action"] == "DELIVER"
    assert d["hops"][1]["rule"] == {"tracked": True, "state": "TCP_SYN_RECV"}
    assert not any("return path" in x or "connection tracking" in x for x in t.not_evaluated)
    # an ICMP echo: the reply by identifier; sg-web lets no ICMP out, so there is nothing to return
    with pytest.raises(ValueError, match="no return packet"):
        trace_packet(net, "web1", "10.0.2.10", proto="icmp", verdict=verdict, reply=True)
    net.find("sg-web").authorize_egress("icmp", None, "0.0.0.0/0")
    net.find("sg-app").authorize_ingress("icmp", (8, -1), "10.0.1.0/24")
    t = trace_packet(net, "web1", "10.0.2.10", proto="icmp", verdict=verdict, reply=True)
    assert t.action == Action.DELIVER and "tracked flow (REPLIED) of web1" in t.hops[-3].detail


def test_filters_false_says_what_it_did_not_evaluate() -> None:
    net = topology()
    t = trace_packet(net, "web1", "8.8.8.8", proto="udp", port=53, filters=False, verdict="reference")
    assert t.reason == DropReason.NO_ROUTE and not filter_hops(t)
    assert "security groups and network ACLs not evaluated" in t.not_evaluated[0]
    assert "not evaluated: security groups and network ACLs not evaluated" in str(t)
    assert t.to_dict()["not_evaluated"] == t.not_evaluated


def _cli(argv: list[str]) -> int:
    from fastvpc.cli import trace as cli_trace

    parser = argparse.ArgumentParser(prog="fastvpc")
    cli_trace.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_reply_and_no_filters(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "net.json"
    topology().save(path)
    assert _cli(["trace", str(path), "--from", "app1", "--to", "10.0.1.10", "--proto", "tcp", "--port", "49152"]) == 1
    assert "no rule admits tcp 49152 from 10.0.2.10" in capsys.readouterr().out
    assert _cli(["trace", str(path), "--from", "web1", "--to", "10.0.2.10", "--proto", "tcp", "--port", "8080",
                 "--reply", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["reply"] is True and d["action"] == "DELIVER" and d["forward"]["ingress"] == "web1"
    assert _cli(["trace", str(path), "--from", "web1", "--to", "10.0.3.10", "--proto", "tcp", "--port", "9",
                 "--no-filters"]) == 0
    out = capsys.readouterr().out
    assert "DELIVER" in out.splitlines()[0] and "security groups and network ACLs not evaluated" in out
