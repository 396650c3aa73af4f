"""AWS import of security groups, ENI groups and network ACLs (small describe folders in tmp_path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import fastvpc as fv
from fastvpc.aws import import_aws
from fastvpc.errors import TopologyFileError

VPC, PEER = "vpc-1", "vpc-2"


def perm(proto: str, lo: int | None = None, hi: int | None = None, **peers: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"IpProtocol": proto, "IpRanges": [{"CidrIp": c} for c in peers.get("cidrs", [])],
                         "Ipv6Ranges": [{"CidrIpv6": c} for c in peers.get("v6", [])],
                         "PrefixListIds": [{"PrefixListId": x} for x in peers.get("pls", [])],
                         "UserIdGroupPairs": [{"GroupId": g, "UserId": "1"} for g in peers.get("groups", [])]}
    if lo is not None:
        p["FromPort"], p["ToPort"] = lo, hi
    return p


ALL_OUT = perm("-1", cidrs=["0.0.0.0/0"])


def docs() -> dict[str, Any]:
    """A fresh copy each call: tests edit it in place (ALL_OUT included, which must not leak)."""
    return json.loads(json.dumps(_docs()))


def _docs() -> dict[str, Any]:
    return {
        "Vpcs.json": {"Vpcs": [{"VpcId": VPC, "CidrBlock": "10.0.0.0/16"}, {"VpcId": PEER, "CidrBlock": "10.1.0.0/16"}]},
        "Subnets.json": {"Subnets": [
            {"SubnetId": "subnet-web", "VpcId": VPC, "CidrBlock": "10.0.1.0/24"},
            {"SubnetId": "subnet-db", "VpcId": VPC, "CidrBlock": "10.0.3.0/24"},
            {"SubnetId": "subnet-peer", "VpcId": PEER, "CidrBlock": "10.1.1.0/24"}]},
        "VpcPeeringConnections.json": {"VpcPeeringConnections": [
            {"VpcPeeringConnectionId": "pcx-1", "Status": {"Code": "active"},
             "RequesterVpcInfo": {"VpcId": VPC}, "AccepterVpcInfo": {"VpcId": PEER}}]},
        "PrefixLists.json": {"PrefixLists": [{"PrefixListId": "pl-s3", "PrefixListName": "s3",
                                              "Cidrs": ["52.216.0.0/15", "54.231.0.0/16"]}]},
        "SecurityGroups.json": {"SecurityGroups": [
            {"GroupId": "sg-def", "GroupName": "default", "VpcId": VPC, "Description": "default VPC security group",
             "IpPermissions": [perm("-1", groups=["sg-def"])], "IpPermissionsEgress": [ALL_OUT]},
            {"GroupId": "sg-web", "GroupName": "web", "VpcId": VPC, "Description": "web servers",
             "IpPermissions": [perm("tcp", 443, 443, cidrs=["0.0.0.0/0"], v6=["::/0"]),
                               perm("icmp", 8, -1, cidrs=["10.0.0.0/16"]),
                               perm("6", 8000, 8080, cidrs=["10.0.0.0/24", "10.9.0.0/16"])],
             "IpPermissionsEgress": [ALL_OUT]},
            {"GroupId": "sg-db", "GroupName": "db", "VpcId": VPC,
             "IpPermissions": [perm("tcp", 5432, 5432, groups=["sg-web", "sg-gone"]),
                               perm("tcp", 5432, 5432, groups=["sg-peer"])],
             "IpPermissionsEgress": [perm("tcp", 443, 443, pls=["pl-s3", "pl-missing"]),
                                     perm("udp", 53, 53, cidrs=["10.0.0.2/32"]),
                                     perm("50", cidrs=["192.0.2.0/24"])]},
            {"GroupId": "sg-peer", "GroupName": "peer", "VpcId": PEER, "IpPermissions": [],
             "IpPermissionsEgress": [ALL_OUT]},
        ]},
        "NetworkInterfaces.json": {"NetworkInterfaces": [
            {"NetworkInterfaceId": "eni-web", "SubnetId": "subnet-web", "VpcId": VPC, "PrivateIpAddress": "10.0.1.10",
             "MacAddress": "02:00:00:00:01:0a", "Groups": [{"GroupId": "sg-web", "GroupName": "web"}]},
            {"NetworkInterfaceId": "eni-db", "SubnetId": "subnet-db", "VpcId": VPC, "PrivateIpAddress": "10.0.3.10",
             "MacAddress": "02:00:00:00:03:0a",
             "Groups": [{"GroupId": "sg-db"}, {"GroupId": "sg-web"}, {"GroupId": "sg-nowhere"}]},
            {"NetworkInterfaceId": "eni-plain", "SubnetId": "subnet-web", "VpcId": VPC,
             "PrivateIpAddress": "10.0.1.11", "MacAddress": "02:00:00:00:01:0b"},
        ]},
        "NetworkAcls.json": {"NetworkAcls": [
            {"NetworkAclId": "acl-def", "VpcId": VPC, "IsDefault": True,
             "Associations": [{"SubnetId": "subnet-web", "NetworkAclId": "acl-def"}],
             "Entries": [
                 {"RuleNumber": 100, "Egress": True, "Protocol": "-1", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"},
                 {"RuleNumber": 32767, "Egress": True, "Protocol": "-1", "RuleAction": "deny",
                  "CidrBlock": "0.0.0.0/0"},
                 {"RuleNumber": 100, "Egress": False, "Protocol": "-1", "RuleAction": "allow",
                  "CidrBlock": "0.0.0.0/0"},
                 {"RuleNumber": 101, "Egress": False, "Protocol": "-1", "RuleAction": "allow",
                  "Ipv6CidrBlock": "::/0"},
                 {"RuleNumber": 32767, "Egress": False, "Protocol": "-1", "RuleAction": "deny",
                  "CidrBlock": "0.0.0.0/0"}]},
            {"NetworkAclId": "acl-db", "VpcId": VPC, "IsDefault": False,
             "Associations": [{"SubnetId": "subnet-db", "NetworkAclId": "acl-db"},
                              {"SubnetId": "subnet-ghost", "NetworkAclId": "acl-db"}],
             "Entries": [  # deliberately out of order, as JSON may come
                 {"RuleNumber": 200, "Egress": False, "Protocol": "-1", "RuleAction": "allow",
                  "CidrBlock": "10.0.0.0/16"},
                 {"RuleNumber": 100, "Egress": False, "Protocol": "6", "RuleAction": "deny",
                  "PortRange": {"From": 22, "To": 22}, "CidrBlock": "0.0.0.0/0"},
                 {"RuleNumber": 110, "Egress": False, "Protocol": "1", "RuleAction": "allow",
                  "IcmpTypeCode": {"Type": 8, "Code": -1}, "CidrBlock": "192.0.2.0/24"},
                 {"RuleNumber": 100, "Egress": True, "Protocol": "6", "RuleAction": "allow",
                  "PortRange": {"From": 1024, "To": 65535}, "CidrBlock": "100.68.0.18/18"}]},
        ]},
    }


def write(folder: Path, d: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, doc in d.items():
        (folder / name).write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return folder


def test_security_groups_and_enis(tmp_path):
    imp = import_aws(write(tmp_path / "f", docs()))
    net, report = imp.network, imp.report
    vpc, peer = net.find(VPC), net.find(PEER)
    assert vpc.default_security_group is net.find("sg-def")
    assert [(r.protocol, r.peer) for r in net.find("sg-def").ingress] == [(-1, net.find("sg-def"))]
    web = net.find("sg-web")
    assert web.group_name == "web" and web.description == "web servers"
    assert [r.describe() for r in web.ingress] == [
        "tcp 443 from 0.0.0.0/0", "icmp type 8 from 10.0.0.0/16",
        "tcp 8000-8080 from 10.0.0.0/24", "tcp 8000-8080 from 10.9.0.0/16"]  # one rule per IpRanges CIDR
    db = net.find("sg-db")
    assert [r.describe() for r in db.ingress] == ["tcp 5432 from sg-web", "tcp 5432 from sg-peer"]
    assert [r.describe() for r in db.egress] == ["tcp 443 to pl-s3", "udp 53 to 10.0.0.2/32", "50 to 192.0.2.0/24"]
    assert [str(c) for c in net.find("pl-s3").cidrs] == ["52.216.0.0/15", "54.231.0.0/16"]
    assert net.find("sg-peer").vpc is peer and peer.default_security_group.name != "sg-peer"
    # ENIs
    assert net.find("eni-web").security_groups == [web]
    assert net.find("eni-db").security_groups == [db, web]
    assert net.find("eni-plain").security_groups == [vpc.default_security_group]
    # the rules judge as AWS would
    eni_db = net.find("eni-db")
    assert fv.topology.security_groups_admit(eni_db.security_groups, "ingress", 6, "10.0.1.10", 5432) is not None
    assert fv.topology.security_groups_admit(eni_db.security_groups, "ingress", 6, "10.0.1.11", 5432) is None
    # the report
    assert any("sg-gone" in e.element and e.status == "skipped" for e in report)
    assert any("pl-missing" in e.element and e.status == "skipped" for e in report)
    assert any(e.element == "eni-db" and "sg-nowhere" in e.why and e.status == "changed" for e in report)
    v6 = [e for e in report if e.element == "SecurityGroups" and e.status == "not modelled"]
    assert len(v6) == 1 and "1 IPv6 rule" in v6[0].why
    c = report.counts
    assert c["security groups"] == 5 and c["network ACLs"] == 3
    assert c["security group rules"] == sum(len(g.ingress) + len(g.egress) for v in net.vpcs
                                            for g in v.security_groups)


def test_network_acls(tmp_path):
    imp = import_aws(write(tmp_path / "f", docs()))
    net, report = imp.network, imp.report
    vpc = net.find(VPC)
    assert vpc.default_network_acl is net.find("acl-def")
    assert net.find("subnet-web").network_acl is vpc.default_network_acl
    acl = net.find("acl-db")
    assert net.find("subnet-db").network_acl is acl
    assert [e.describe() for e in acl.entries] == [
        "100 deny tcp 22 from 0.0.0.0/0", "110 allow icmp type 8 from 192.0.2.0/24", "200 allow all from 10.0.0.0/16",
        "100 allow tcp 1024-65535 to 100.68.0.0/18"]
    assert acl.evaluate("ingress", 6, "10.0.1.10", 22) == (False, 100)   # sorted by number, first match
    assert acl.evaluate("ingress", 6, "10.0.1.10", 80) == (True, 200)
    assert acl.evaluate("ingress", 1, "192.0.2.7", icmp=(8, 0)) == (True, 110)
    assert acl.evaluate("egress", 6, "100.68.1.1", 80) == (False, 32767)
    assert [e.number for e in vpc.default_network_acl.entries] == [100, 100]  # 32767 is implicit
    assert any(e.element == "acl-db" and "subnet-ghost" in e.why for e in report)
    assert any(e.element == "NetworkAcls" and e.status == "not modelled" and "IPv6" in e.why for e in report)
    # a VPC without NACL data keeps AWS's default allow-all NACL
    assert net.find(PEER).default_network_acl.evaluate("ingress", 17, "8.8.8.8", 53) == (True, 100)


def test_import_round_trips_through_a_topology_file(tmp_path):
    net = import_aws(write(tmp_path / "f", docs())).network
    for suffix in (".json", ".yaml"):
        p = tmp_path / f"t{suffix}"
        net.save(p)
        assert fv.load(p) == net


def test_no_security_group_data_puts_enis_in_default_groups(tmp_path):
    d = docs()
    del d["SecurityGroups.json"], d["NetworkAcls.json"]
    imp = import_aws(write(tmp_path / "f", d))
    eni = imp.network.find("eni-web")
    assert eni.security_groups == [imp.network.find(VPC).default_security_group]
    assert any(e.element == "eni-web" and "sg-web" in e.why for e in imp.report)
    assert any(e.element == "SecurityGroups" and e.status == "note" for e in imp.report)


@pytest.mark.parametrize("edit, where, value", [
    (lambda d: d["SecurityGroups.json"]["SecurityGroups"][1].update(IpPermissions={"x": 1}),
     "SecurityGroups[sg-web].IpPermissions", {"x": 1}),
    (lambda d: d["SecurityGroups.json"]["SecurityGroups"][1]["IpPermissions"][0].update(IpProtocol="tcpx"),
     "SecurityGroups[sg-web].IpPermissions[0].IpProtocol", "tcpx"),
    (lambda d: d["SecurityGroups.json"]["SecurityGroups"][1]["IpPermissions"][0].update(FromPort="443"),
     "SecurityGroups[sg-web].IpPermissions[0].FromPort", "443"),
    (lambda d: d["SecurityGroups.json"]["SecurityGroups"][1]["IpPermissions"][0].pop("IpProtocol"),
     "SecurityGroups[sg-web].IpPermissions[0]", None),
    (lambda d: d["SecurityGroups.json"]["SecurityGroups"][1]["IpPermissions"][0]["IpRanges"].append(7),
     "SecurityGroups[sg-web].IpPermissions[0].IpRanges[1]", 7),
    (lambda d: d["SecurityGroups.json"]["SecurityGroups"][1]["IpPermissions"][0]["IpRanges"].append({"CidrIp": 7}),
     "SecurityGroups[sg-web].IpPermissions[0].IpRanges[1].CidrIp", 7),
    (lambda d: d["SecurityGroups.json"]["SecurityGroups"][2]["IpPermissions"][0]["UserIdGroupPairs"].append({}),
     "SecurityGroups[sg-db].IpPermissions[0].UserIdGroupPairs[2].GroupId", None),
    (lambda d: d["SecurityGroups.json"]["SecurityGroups"][1].update(GroupName=5),
     "SecurityGroups[sg-web].GroupName", 5),
    (lambda d: d["NetworkInterfaces.json"]["NetworkInterfaces"][0].update(Groups="sg-web"),
     "NetworkInterfaces[eni-web].Groups", "sg-web"),
    (lambda d: d["NetworkAcls.json"]["NetworkAcls"][1]["Entries"][0].update(RuleNumber="200"),
     "NetworkAcls[acl-db].Entries[0].RuleNumber", "200"),
    (lambda d: d["NetworkAcls.json"]["NetworkAcls"][1]["Entries"][0].update(Egress="no"),
     "NetworkAcls[acl-db].Entries[0].Egress", "no"),
    (lambda d: d["NetworkAcls.json"]["NetworkAcls"][1]["Entries"][0].update(RuleAction="permit"),
     "NetworkAcls[acl-db].Entries[0].RuleAction", "permit"),
    (lambda d: d["NetworkAcls.json"]["NetworkAcls"][1]["Entries"][1].update(PortRange=[22, 22]),
     "NetworkAcls[acl-db].Entries[1].PortRange", [22, 22]),
    (lambda d: d["NetworkAcls.json"]["NetworkAcls"][1]["Entries"][0].update(CidrBlock=None),
     "NetworkAcls[acl-db].Entries[0].CidrBlock", None),
    (lambda d: d["NetworkAcls.json"]["NetworkAcls"][1].update(IsDefault="false"),
     "NetworkAcls[acl-db].IsDefault", "false"),
])
def test_malformed_filters_name_file_place_and_value(tmp_path, edit, where, value):
    d = docs()
    edit(d)
    with pytest.raises(TopologyFileError) as ei:
        import_aws(write(tmp_path / "f", d))
    err = ei.value
    assert err.where == where, str(err)
    assert err.value == value, str(err)
    assert err.path.endswith(".json") and err.path in str(err)


def test_values_aws_would_not_hold_skip_that_rule_only(tmp_path):
    d = docs()
    perms = d["SecurityGroups.json"]["SecurityGroups"][1]["IpPermissions"]
    perms.append(perm("tcp", -1, 50, cidrs=["1.2.3.4/32"]))      # Batfish's "invalid interval"
    perms.append(perm("tcp", 90, 80, cidrs=["1.2.3.4/32"]))      # reversed
    perms.append(perm("icmp", -1, 9, cidrs=["0.0.0.0/0"]))       # a code without a type
    d["NetworkAcls.json"]["NetworkAcls"][1]["Entries"].append(
        {"RuleNumber": 300, "Egress": False, "Protocol": "6", "RuleAction": "allow",
         "PortRange": {"From": 70000, "To": 70001}, "CidrBlock": "0.0.0.0/0"})
    imp = import_aws(write(tmp_path / "f", d))
    web = imp.network.find("sg-web")
    assert len(web.ingress) == 4  # the three bad permissions are left out, the good ones stay
    skipped = [e for e in imp.report if e.status == "skipped" and e.element.startswith(("sg-web", "acl-db"))
               and "association" not in e.why]
    assert len(skipped) == 4, [str(e) for e in skipped]
    assert any("FromPort" in e.why and "-1" in e.why for e in skipped)
    assert any("code 9" in e.why or "without a type" in e.why for e in skipped)
    assert any("70000" in e.why for e in skipped)
    assert 300 not in [e.number for e in imp.network.find("acl-db").entries]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo (POSIX)")
def test_a_fifo_named_json_is_not_opened(tmp_path):
    folder = write(tmp_path / "f", docs())
    os.mkfifo(folder / "Blocked.json")
    sub = folder / "region"
    sub.mkdir()
    os.mkfifo(sub / "Other.json")
    code = textwrap.dedent(f"""
        from fastvpc.aws import import_aws
        imp = import_aws({str(folder)!r})
        print(len(imp.network.vpcs), sum(1 for e in imp.report if 'not a regular file' in e.why))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2", "2"]


# --------------------------------------------------------------------------- damaged documents

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_junk = st.one_of(st.none(), st.booleans(), st.integers(-70000, 70000), st.text(max_size=5),
                  st.sampled_from(["tcp", "-1", "6", "icmp", "icmpv6", "0.0.0.0/0", "10.0.1.0/24", "::/0",
                                   "sg-web", "sg-def", "sg-peer", "pl-s3", "acl-db", "subnet-db", "allow", "deny",
                                   VPC, PEER]),
                  st.lists(st.integers(-2, 2), max_size=2), st.dictionaries(st.sampled_from(
                      ["From", "To", "Type", "Code", "CidrIp", "GroupId", "PrefixListId"]), st.integers(-2, 70000),
                      max_size=2))


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


_FILTER_FILES = ("SecurityGroups.json", "NetworkAcls.json", "NetworkInterfaces.json", "PrefixLists.json")
_PATHS = [(f,) + p for f, d in docs().items() if f in _FILTER_FILES for p in _paths(d)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(_PATHS), st.booleans(), _junk), min_size=1, max_size=5))
def test_damaged_filter_json_is_imported_or_named_never_a_crash(tmp_path_factory, edits):
    d = docs()
    for path, delete, value in edits:
        parent: Any = d
        try:
            for k in path[:-1]:
                parent = parent[k]
            if delete:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        imp = import_aws(write(tmp_path_factory.mktemp("m"), d))
    except TopologyFileError as exc:  # malformed filter data: the file, the place and the value
        assert exc.path.endswith(".json") and exc.path in str(exc)
        assert exc.where.startswith(("SecurityGroups[", "NetworkAcls[", "NetworkInterfaces[")), str(exc)
        return
    net = imp.network
    str(imp.report)
    json.dumps(imp.report.to_dict())
    for v in net.vpcs:  # what was imported is valid and saves
        for e in v.enis:
            assert 1 <= len(e.security_groups) <= 5 and all(g.vpc is v for g in e.security_groups)
    assert fv.files.loads(fv.files.dumps(net)) == net


def test_an_enis_connection_tracking_configuration_sets_its_timeouts(tmp_path):
    # describe-network-interfaces gives each ENI's ConnectionTrackingConfiguration (seconds); the
    # imported ENI tracks with those idle timeouts, one outside AWS's range keeps the default
    d = docs()
    enis = d["NetworkInterfaces.json"]["NetworkInterfaces"]
    enis[0]["ConnectionTrackingConfiguration"] = {"TcpEstablishedTimeout": 350, "UdpStreamTimeout": 60,
                                                  "UdpTimeout": 45}
    enis[1]["ConnectionTrackingConfiguration"] = {"TcpEstablishedTimeout": 30, "UdpTimeout": 60}
    imp = import_aws(write(tmp_path / "f", d))
    net = imp.network
    web = net.find("eni-web").tracking
    assert (web.tcp_established, web.udp_stream, web.udp, web.other) == (350, 60, 45, 600)
    db = net.find("eni-db").tracking
    assert (db.tcp_established, db.udp_stream, db.udp) == (432_000, 180, 60)
    assert net.find("eni-plain").tracking == fv.Tracking()
    assert any(e.element == "eni-db" and e.status == "changed" and "TcpEstablishedTimeout" in e.why
               and "30" in e.why for e in imp.report)
    enis[0]["ConnectionTrackingConfiguration"] = {"UdpTimeout": "45"}
    with pytest.raises(fv.TopologyFileError, match="UdpTimeout"):
        import_aws(write(tmp_path / "g", d))
