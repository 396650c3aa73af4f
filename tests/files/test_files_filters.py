"""Topology files hold security groups, NACLs, prefix lists and ENI tracking: the schema of
docs/topology-files.md, its defaults, and located errors for each of its parts."""

from __future__ import annotations

import json

import pytest
import yaml

import fastvpc as fv
from fastvpc import files
from fastvpc.errors import TopologyFileError

DOC = """
fastvpc: 1
prefix_lists:
  - {name: pl-s3, cidrs: [52.216.0.0/15, 54.231.0.0/16]}
vpcs:
  - name: prod
    cidrs: [10.0.0.0/16]
    security_groups:
      - name: web-sg
        ingress:
          - {protocol: tcp, ports: [443, 443], cidr: 0.0.0.0/0}
          - {protocol: icmp, icmp: [8, -1], cidr: 10.0.0.0/16}
      - name: db-sg
        group_name: database
        description: the databases
        ingress:
          - {protocol: tcp, ports: [5432, 5432], group: web-sg}
        egress:
          - {protocol: udp, ports: [53, 53], cidr: 10.0.0.2/32}
          - {protocol: tcp, ports: [443, 443], prefix_list: pl-s3}
          - {protocol: 47, cidrs: [192.0.2.0/24, 198.51.100.0/24]}
    network_acls:
      - name: db-acl
        entries:
          - {number: 100, direction: ingress, action: allow, protocol: tcp, ports: [5432, 5432], cidr: 10.0.1.0/24}
          - {number: 100, direction: egress, action: allow, protocol: tcp, ports: [1024, 65535], cidr: 10.0.1.0/24}
    subnets:
      - name: web
        cidr: 10.0.1.0/24
        enis:
          - {name: web1, ip: 10.0.1.10, security_groups: [web-sg]}
          - {name: plain, ip: 10.0.1.11}
      - name: db
        cidr: 10.0.3.0/24
        network_acl: db-acl
        enis:
          - {name: db1, ip: 10.0.3.10, security_groups: [db-sg, web-sg], tracking: {tcp_established: 350, udp: 60}}
"""


def test_hand_written_document_builds_what_it_says():
    net = files.loads(DOC, "yaml")
    vpc = net.find("prod")
    web_sg, db_sg = net.find("web-sg"), net.find("db-sg")
    assert [g.name for g in vpc.security_groups] == [vpc.default_security_group.name, "web-sg", "db-sg"]
    # egress not given: AWS's allow-all stays; given: exactly the file's rules
    assert [r.describe() for r in web_sg.egress] == ["all to 0.0.0.0/0"]
    assert [r.describe() for r in web_sg.ingress] == ["tcp 443 from 0.0.0.0/0", "icmp type 8 from 10.0.0.0/16"]
    assert [r.describe() for r in db_sg.egress] == ["udp 53 to 10.0.0.2/32", "tcp 443 to pl-s3",
                                                    "47 to 192.0.2.0/24, 198.51.100.0/24"]
    assert db_sg.ingress[0].peer is web_sg and db_sg.group_name == "database" and db_sg.description == "the databases"
    assert net.find("web1").security_groups == [web_sg]
    assert net.find("plain").security_groups == [vpc.default_security_group]  # the default when omitted
    db1 = net.find("db1")
    assert db1.security_groups == [db_sg, web_sg]
    assert (db1.tracking.tcp_established, db1.tracking.udp, db1.tracking.udp_stream) == (350, 60, 180)
    assert net.find("db").network_acl is net.find("db-acl")
    assert net.find("web").network_acl is vpc.default_network_acl
    assert net.find("db-acl").evaluate("ingress", 6, "10.0.1.5", 5432) == (True, 100)
    assert vpc.default_network_acl.evaluate("egress", 6, "8.8.8.8", 1) == (True, 100)  # defaults kept
    # and it round-trips
    for fmt in ("json", "yaml"):
        text = files.dumps(net, fmt)
        back = files.loads(text, fmt)
        assert back == net and files.dumps(back, fmt) == text


def test_files_without_filters_get_aws_defaults():
    net = files.loads(json.dumps({"fastvpc": 1, "vpcs": [
        {"name": "v", "cidrs": ["10.0.0.0/16"], "subnets": [{"cidr": "10.0.1.0/24", "enis": [{"ip": "10.0.1.10"}]}]}
    ]}))
    vpc = net.find("v")
    d = vpc.default_security_group
    assert net.enis[0].security_groups == [d]
    assert [(r.protocol, r.peer) for r in d.ingress] == [(-1, d)]
    assert [e.describe() for e in vpc.default_network_acl.entries] == ["100 allow all from 0.0.0.0/0",
                                                                       "100 allow all to 0.0.0.0/0"]


def test_default_group_and_nacl_rules_can_be_changed_and_saved(tmp_path):
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v", default_security_group="sg-0d", default_network_acl="acl-0d")
    vpc.default_security_group.revoke_ingress("all", None, vpc.default_security_group)
    vpc.default_security_group.authorize_ingress("tcp", 22, "192.0.2.0/24")
    vpc.default_network_acl.replace_entry(100, "ingress", "deny", "all", None, "0.0.0.0/0")
    for suffix in (".json", ".yaml"):
        path = tmp_path / f"n{suffix}"
        net.save(path)
        back = fv.load(path)
        assert back == net
        bvpc = back.find("v")
        assert bvpc.default_security_group.name == "sg-0d" and bvpc.default_network_acl.name == "acl-0d"
        assert [r.describe() for r in bvpc.default_security_group.ingress] == ["tcp 22 from 192.0.2.0/24"]
        assert bvpc.default_network_acl.evaluate("ingress", 6, "1.1.1.1", 80) == (False, 100)


def test_stale_reference_round_trips():
    net = fv.Network()
    a, b = net.add_vpc("10.0.0.0/16", name="a"), net.add_vpc("10.1.0.0/16", name="b")
    pcx = net.add_peering(a, b, name="pcx")
    far = b.add_security_group(name="far")
    sg = a.add_security_group(name="near")
    rule = sg.authorize_ingress("tcp", 22, far)
    pcx.delete()
    assert rule.is_stale
    back = files.loads(files.dumps(net))
    assert back == net and back.find("near").ingress[0].is_stale


def _doc():
    return yaml.safe_load(DOC)


@pytest.mark.parametrize("edit, where, value", [
    (lambda d: d["vpcs"][0]["subnets"][0]["enis"][0].update(security_groups=["nope"]),
     "vpcs[0].subnets[0].enis[0].security_groups[0]", "nope"),
    (lambda d: d["vpcs"][0]["subnets"][0]["enis"][0].update(security_groups=[]),
     "vpcs[0].subnets[0].enis[0]", []),
    (lambda d: d["vpcs"][0]["subnets"][1]["enis"][0].update(tracking={"udp": 99}),
     "vpcs[0].subnets[1].enis[0].tracking", 99),
    (lambda d: d["vpcs"][0]["subnets"][1]["enis"][0].update(tracking={"udpp": 30}),
     "vpcs[0].subnets[1].enis[0].tracking.udpp", "udpp"),
    (lambda d: d["vpcs"][0]["subnets"][1].update(network_acl="acl-x"), "vpcs[0].subnets[1].network_acl", "acl-x"),
    (lambda d: d["vpcs"][0]["security_groups"][0]["ingress"][0].update(protocol="tcpx"),
     "vpcs[0].security_groups[0].ingress[0]", "tcpx"),
    (lambda d: d["vpcs"][0]["security_groups"][0]["ingress"][0].update(protocol=True),
     "vpcs[0].security_groups[0].ingress[0].protocol", True),
    (lambda d: d["vpcs"][0]["security_groups"][0]["ingress"][0].update(ports=[90, 80]),
     "vpcs[0].security_groups[0].ingress[0]", (90, 80)),
    (lambda d: d["vpcs"][0]["security_groups"][0]["ingress"][0].update(ports=[1, 2, 3]),
     "vpcs[0].security_groups[0].ingress[0].ports", [1, 2, 3]),
    (lambda d: d["vpcs"][0]["security_groups"][0]["ingress"][0].update(icmp=[3, 4]),
     "vpcs[0].security_groups[0].ingress[0].icmp", [3, 4]),
    (lambda d: d["vpcs"][0]["security_groups"][0]["ingress"][1].update(ports=[3, 4]),
     "vpcs[0].security_groups[0].ingress[1].icmp", [8, -1]),
    (lambda d: d["vpcs"][0]["security_groups"][0]["ingress"][0].update(group="db-sg"),
     "vpcs[0].security_groups[0].ingress[0]", ["cidr", "group"]),
    (lambda d: d["vpcs"][0]["security_groups"][0]["ingress"][0].pop("cidr"),
     "vpcs[0].security_groups[0].ingress[0]", []),
    (lambda d: d["vpcs"][0]["security_groups"][1]["ingress"][0].update(group="ghost"),
     "vpcs[0].security_groups[1].ingress[0].group", "ghost"),
    (lambda d: d["vpcs"][0]["security_groups"][1]["egress"][1].update(prefix_list="web-sg"),
     "vpcs[0].security_groups[1].egress[1].prefix_list", "web-sg"),
    (lambda d: d["vpcs"][0]["security_groups"][1]["egress"][0].update(cidr="10.0.0.2/33"),
     "vpcs[0].security_groups[1].egress[0]", "10.0.0.2/33"),
    (lambda d: d["vpcs"][0]["security_groups"][1].update(group_name="default"),
     "vpcs[0].security_groups[1]", "default"),
    (lambda d: d["vpcs"][0]["security_groups"][1].update(rules=[]),
     "vpcs[0].security_groups[1].rules", "rules"),
    (lambda d: d["vpcs"][0]["network_acls"][0]["entries"][1].update(direction="ingress"),
     "vpcs[0].network_acls[0].entries[1]", 100),
    (lambda d: d["vpcs"][0]["network_acls"][0]["entries"][0].update(number=40000),
     "vpcs[0].network_acls[0].entries[0]", 40000),
    (lambda d: d["vpcs"][0]["network_acls"][0]["entries"][0].update(action="permit"),
     "vpcs[0].network_acls[0].entries[0]", "permit"),
    (lambda d: d["vpcs"][0]["network_acls"][0]["entries"][0].pop("cidr"),
     "vpcs[0].network_acls[0].entries[0]", "cidr"),
    (lambda d: d["prefix_lists"][0].update(cidrs=["nope"]), "prefix_lists[0]", "nope"),
    (lambda d: d["prefix_lists"][0].update(max_entries="5"), "prefix_lists[0].max_entries", "5"),
])
def test_errors_name_the_place_and_the_value(edit, where, value):
    d = _doc()
    edit(d)
    for fmt in ("json", "yaml"):
        text = json.dumps(d) if fmt == "json" else yaml.safe_dump(d)
        with pytest.raises(TopologyFileError) as ei:
            files.loads(text, fmt, source=f"t.{fmt}")
        err = ei.value
        assert err.where == where, str(err)
        assert err.value == value, str(err)
        assert f"t.{fmt}" in str(err)


def test_show_lists_groups_rules_nacls_and_associations():
    from fastvpc.cli.show import render

    text = render(files.loads(DOC, "yaml"))
    lines = [ln.strip() for ln in text.splitlines()]
    sec = text.split("  Security groups\n")[1].split("  Network ACLs\n")[0]
    acls = text.split("  Network ACLs\n")[1].split("  Gateways and peerings")[0]
    assert "web-sg  ENIs web1, db1" in sec and "db-sg (group name database)  ENIs db1" in sec
    assert any(ln.split() == ["ingress", "tcp", "5432", "group", "web-sg"] for ln in lines)
    assert any(ln.split() == ["ingress", "icmp", "type", "8", "10.0.0.0/16"] for ln in lines)
    assert any(ln.split() == ["egress", "tcp", "443", "prefix", "list", "pl-s3"] for ln in lines)
    assert any(ln.split() == ["egress", "47", "all", "[192.0.2.0/24,", "198.51.100.0/24]"] for ln in lines)
    assert "(default group)  ENIs plain" in sec
    assert "db-acl  subnets db" in acls and "(default NACL)  subnets web" in acls
    assert any(ln.split() == ["egress", "100", "allow", "tcp", "1024-65535", "10.0.1.0/24"] for ln in lines)
    assert sum(1 for ln in acls.splitlines() if ln.split()[1:3] == ["*", "deny"]) == 4  # implicit, each way
    # the subnet and ENI tables name their NACL and groups
    assert any(ln.split()[:1] == ["db"] and "db-acl" in ln and "(explicit)" in ln for ln in lines)
    assert any(ln.split()[:1] == ["db1"] and ln.endswith("db-sg, web-sg") for ln in lines)
    assert "pl-s3  2" in text
