"""fastvpc.FlowLog: the compiled flow-log aggregation against a Python model written from DESIGN.md §7,
the AWS text and Parquet outputs field by field, windows, what is not logged, tcp-flags, bad input.

The model below (``model_records``) knows nothing of the compiled table: it reads the frames with
``struct``, the topology from the ``Network`` objects, and applies the rules of DESIGN.md §7:
a record per (ENI, 5-tuple, direction, action, window), egress at the sender (the ingress port's
ENI), ingress at the receiver; which verdicts log what; what AWS never logs.  The filter reasons
(SG_*/NACL_*) come from Results built here until the filter stages are in the kernel.
"""

from __future__ import annotations

import gzip
import ipaddress
import os
import pickle
import struct
import sys
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastvpc as fv
from fastvpc import packets as pk
from fastvpc.dataplane import Result
from fastvpc.dataplane.flowlogs import (DEFAULT_FORMAT, ENTRY_DTYPE, FIELDS, FlowLog, FlowLogBusyError, FlowLogError,
                                        parse_format)
from fastvpc.verdicts import Action, DropReason

T0 = 1_700_000_000 * 10**9          # ns; 1700000000 % 60 == 20
ALL = " ".join(f"${{{f}}}" for f in FIELDS)
R = DropReason


# --------------------------------------------------------------------------- the topology

def build_net() -> fv.Network:
    """Two peered VPCs; web -> db through a middlebox ENI (fw, source/dest check off); web1 an instance."""
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="vpc-a")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    app = vpc.add_subnet("10.0.2.0/24", name="app")
    db = vpc.add_subnet("10.0.3.0/24", name="db")
    igw = vpc.add_internet_gateway(name="igw")
    web.add_eni("10.0.1.10", name="web1")
    web.add_eni("10.0.1.20", name="web2")
    app.add_eni("10.0.2.10", name="app1")
    fw = app.add_eni("10.0.2.50", name="fw", source_dest_check=False)
    db.add_eni("10.0.3.10", name="db1", secondary_ips=["10.0.3.11"])
    peer = net.add_vpc("10.1.0.0/16", name="vpc-b")
    pb = peer.add_subnet("10.1.1.0/24", name="pb")
    pb.add_eni("10.1.1.10", name="b1")
    pcx = net.add_peering(vpc, peer, name="pcx")
    rt_web = vpc.add_route_table(name="rt-web", routes=[("0.0.0.0/0", igw), ("10.1.0.0/16", pcx),
                                                        ("10.0.3.0/24", fw), ("10.9.0.0/16", fv.BLACKHOLE)])
    web.associate(rt_web)
    peer.main_route_table.add_route("10.0.0.0/16", pcx)
    net.aliases["i-0123456789abcdef0"] = ["web1"]
    return net


NET = build_net()
DP = NET.compile()
DP_ROUTING = NET.compile(edge=False)   # web1 has no public IP: with the edge its internet frames are NO_PUBLIC_IP
ENIS = {e.name: e for e in NET.enis}
BY_PORT = {e.port: e for e in NET.enis}
PORTS = sorted(t.port for t in NET.targets)


def frame(sender: fv.Eni | str, dst: str, proto: str = "tcp", sport: int = 40000, dport: int = 443,
          flags: int = 0x02, *, to_mac: str | None = None, payload: bytes = b"") -> bytes:
    src = ENIS[sender] if isinstance(sender, str) else sender
    if proto == "tcp":
        ip = pk.tcp(src.ip, dst, sport, dport, payload, flags=flags)
    elif proto == "udp":
        ip = pk.udp(src.ip, dst, sport, dport, payload)
    elif proto == "icmp":
        ip = pk.icmp_echo(src.ip, dst, ident=sport)
    else:
        ip = pk.ipv4(src.ip, dst, 47, payload or b"\0" * 8)
    return pk.ethernet(to_mac or src.subnet.gateway_mac, src.mac, pk.ETH_IPV4, ip)


def batch_of(frames, ports, times):
    return fv.FrameBatch.from_frames(frames, port=ports, timestamp=times)


def made_result(n, action, reason, egress, route) -> Result:
    r = Result(n)
    r.action[:] = action
    r.reason[:] = reason
    r.egress[:] = egress
    r.route[:] = route
    return r


# --------------------------------------------------------------------------- the model

def _parse(fr: bytes):
    """(src, dst, proto, sport, dport, tcp_flags, total_length) of a valid IPv4 frame, else None."""
    if len(fr) < 34 or fr[12:14] != b"\x08\x00":
        return None
    b0 = fr[14]
    ihl = (b0 & 15) * 4
    if b0 >> 4 != 4 or ihl < 20 or 14 + ihl > len(fr):
        return None
    tl = struct.unpack_from("!H", fr, 16)[0]
    if tl < ihl or 14 + tl > len(fr) or pk.checksum(fr[14:14 + ihl]) != 0:
        return None
    frag = struct.unpack_from("!H", fr, 20)[0]
    proto = fr[23]
    src, dst = struct.unpack_from("!II", fr, 26)
    sport = dport = flags = 0
    if frag & 0x1FFF == 0 and proto in (6, 17) and tl - ihl >= (20 if proto == 6 else 8):
        sport, dport = struct.unpack_from("!HH", fr, 14 + ihl)
        if proto == 6:
            flags = fr[14 + ihl + 13]
    return src, dst, proto, sport, dport, flags, tl


def _aws_flags(f: int) -> int:
    out = f & 0x07
    if f & 0x02 and f & 0x10:
        out |= 18
    return out


_SENDER_REJECT = {R.SG_EGRESS, R.NACL_EGRESS}
_RECEIVER_REJECT = {R.NACL_INGRESS, R.SG_INGRESS}
_SENDER_ACCEPT = {R.NO_SUCH_HOST, R.BLACKHOLE, R.NO_ROUTE, R.FLOW_TABLE_FULL, R.NO_PUBLIC_IP,
                  R.NO_SUCH_PUBLIC_IP, R.NAT_NEEDS_STATE, R.NAT_UNSUPPORTED, R.NAT_NO_BINDING,
                  R.NAT_PORTS_EXHAUSTED}
_PATH = {"local": 1, "eni": 1, "nat": 1, "tgw": 1, "igw": 2, "vgw": 3, "pcx": 4}


def _owner(vpc, ip: int):
    return vpc.eni_for_ip(ipaddress.IPv4Address(ip)) if vpc is not None else None


def _receiver_of_drop(net, dp, route: int, sender, dst: int):
    """Where a packet the receiver's filters dropped was going (from the Network, not the tables)."""
    if route >= 0:
        info = dp.routes[route]
        if info.target_kind == "eni":
            return net.find(info.target)
        if info.target_kind == "pcx":
            vpc = net.find(info.vpc)
            return _owner(net.find(info.target).peer_of(vpc), dst)
        if info.target_kind == "local":
            return _owner(net.find(info.vpc), dst)
        return None
    return _owner(sender.vpc, dst) if sender is not None else None


def model_records(net, dp, batches, window):
    """Records (dicts with AWS field names) of ``batches`` [(batch, result)] or [(batch, result, dp)]
    (the Dataplane whose routes the result's indices are, when it was recompiled between batches) or
    [(batch, result, dp, sent)] (``sent``: the batch before the pass, whose sources the senders' records
    show: an internet gateway translates them), in window then creation order."""
    recs: OrderedDict = OrderedDict()
    by_port = {e.port: e for e in net.enis}
    dp0 = dp
    for batch, res, *at in batches:
        dp = at[0] if at else dp0
        sent = at[1] if len(at) > 1 else None
        for i in range(len(batch)):
            act, reason, route = int(res.action[i]), int(res.reason[i]), int(res.route[i])
            if act == Action.REPLY:
                continue
            kind = None
            if act in (Action.DELIVER, Action.FORWARD):
                kind = "accept"
            elif reason in _SENDER_REJECT:
                kind = "sender-reject"
            elif reason in _RECEIVER_REJECT:
                kind = "receiver-reject"
            elif reason in _SENDER_ACCEPT or (reason == R.SRC_DST_CHECK and route >= 0):
                kind = "accept"
            if kind is None:
                continue
            h = _parse(batch.frame(i))
            if h is None:
                continue
            src, dst, proto, sport, dport, tflags, tl = h
            if proto == 17 and {sport, dport} == {67, 68}:
                continue
            if any(ipaddress.IPv4Address(a) in ipaddress.IPv4Network("169.254.168.0/22") for a in (src, dst)):
                continue
            sender = by_port.get(int(batch.port[i]))
            if sender is not None and dst == int(sender.vpc.cidr.network_address) + 2:
                continue
            t_s = int(batch.timestamp[i]) // 10**9
            wstart = t_s - t_s % window
            legs = []
            if sender is not None:
                if route >= 0:
                    info = dp.routes[route]
                    if info.target_kind == "vpce":   # a gateway endpoint: 2; one with an ENI in the VPC: 1
                        path = 2 if net.find(info.target).endpoint_type == "gateway" else 1
                    else:
                        path = _PATH.get(info.target_kind, -1)
                elif act == Action.DELIVER or kind == "receiver-reject" or reason == R.NO_SUCH_HOST:
                    path = 1
                else:
                    path = -1
                s_src = struct.unpack_from("!I", sent.frame(i), 26)[0] if sent is not None else src
                legs.append((sender, "egress", "REJECT" if kind == "sender-reject" else "ACCEPT", path, s_src))
            recv = None
            if act == Action.DELIVER:
                recv = by_port.get(int(res.egress[i]))
            elif kind == "receiver-reject":
                recv = _receiver_of_drop(net, dp, route, sender, dst)
            if recv is not None:
                legs.append((recv, "ingress", "REJECT" if kind == "receiver-reject" else "ACCEPT", -1, src))
            for eni, direction, action, path, src in legs:
                key = (wstart, eni.name, src, dst, sport, dport, proto, direction, action)
                r = recs.get(key)
                if r is None:
                    ip = int(eni.ip)
                    inst = [k for k, v in net.aliases.items() if k.startswith("i-") and eni.name in v]
                    r = recs[key] = {
                        "interface-id": eni.name, "vpc-id": eni.vpc.name, "subnet-id": eni.subnet.name,
                        "instance-id": inst[0] if inst else "-",
                        "srcaddr": str(ipaddress.IPv4Address(ip if direction == "egress" else src)),
                        "dstaddr": str(ipaddress.IPv4Address(dst if direction == "egress" else ip)),
                        "pkt-srcaddr": str(ipaddress.IPv4Address(src)), "pkt-dstaddr": str(ipaddress.IPv4Address(dst)),
                        "srcport": sport, "dstport": dport, "protocol": proto, "packets": 0, "bytes": 0,
                        "start": t_s, "end": t_s, "action": action, "log-status": "OK",
                        "tcp-flags": 0, "type": "IPv4", "flow-direction": direction, "traffic-path": path,
                        "_w": wstart,
                    }
                r["packets"] += 1
                r["bytes"] += tl
                r["start"] = min(r["start"], t_s)
                r["end"] = max(r["end"], t_s)
                r["tcp-flags"] |= _aws_flags(tflags) if proto == 6 else 0
    out = list(recs.values())
    out.sort(key=lambda r: r["_w"])            # stable: creation order within a window
    return out


def as_dicts(rec: np.ndarray) -> list[dict]:
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in zip(rec.dtype.names, row)} for row in rec]


def compare(log: FlowLog, expected: list[dict]) -> None:
    got = as_dicts(log.records())
    key = ("interface-id", "pkt-srcaddr", "pkt-dstaddr", "srcport", "dstport", "protocol", "flow-direction", "action")
    if len(got) != len(expected) and all(k in log.fields for k in key):
        g = {tuple(r[k] for k in key) for r in got}
        e = {tuple(r[k] for k in key) for r in expected}
        raise AssertionError(f"records only the log has: {sorted(g - e)}; only the model has: {sorted(e - g)}")
    assert len(got) == len(expected) == len(log)
    for g, e in zip(got, expected):
        for f in log.fields:
            if f in e:
                assert g[f] == e[f], (f, g, e)


# --------------------------------------------------------------------------- random traffic

DSTS = ["10.0.1.10", "10.0.1.20", "10.0.2.10", "10.0.2.50", "10.0.3.10", "10.0.3.11", "10.0.3.99",
        "10.1.1.10", "10.1.1.99", "10.0.0.2", "10.1.0.2", "169.254.169.254", "169.254.169.123",
        "8.8.8.8", "10.9.1.1", "10.0.1.1", "10.0.2.255", "255.255.255.255"]

packet_st = st.tuples(
    st.sampled_from([e.name for e in NET.enis]),
    st.sampled_from(DSTS),
    st.sampled_from(["tcp", "udp", "icmp", "gre"]),
    st.sampled_from([40000, 40001, 67, 68, 53]),
    st.sampled_from([443, 22, 67, 68, 53]),
    st.integers(0, 255),                       # TCP flags byte
    st.integers(0, 3 * 600 * 10**9),           # ns after T0
    st.booleans(),                             # addressed to the gateway MAC (else a random unicast MAC)
    st.integers(0, 40),                        # payload bytes
)


def make_batch(packets):
    frames, ports, times = [], [], []
    for name, dst, proto, sport, dport, flags, dt, gw, plen in packets:
        mac = None if gw else "02:99:00:00:00:01"
        frames.append(frame(name, dst, proto, sport, dport, flags, to_mac=mac, payload=b"x" * plen))
        ports.append(ENIS[name].port)
        times.append(T0 + dt)
    order = np.argsort(times, kind="stable")
    return batch_of([frames[i] for i in order], [ports[i] for i in order], [times[i] for i in order])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(packet_st, min_size=0, max_size=40), min_size=1, max_size=3),
       st.sampled_from([60, 600]))
def test_records_of_real_passes_equal_the_model(batches, window):
    log = FlowLog(window=window, fields=ALL)
    fed = []
    for pkts in batches:
        b = make_batch(pkts)
        res = DP.process(b)
        log.observe(DP, b, res)
        fed.append((b, res))
    compare(log, model_records(NET, DP, fed, window))


verdict_st = st.tuples(
    st.sampled_from([0, 0, 1, 1, 2, 3]),       # action
    st.integers(0, 27),                        # reason (for DROP)
    st.sampled_from([-1, *PORTS]),             # egress
    st.integers(-1, len(DP.routes) - 1),       # route
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(packet_st, verdict_st), min_size=1, max_size=60), st.sampled_from([60, 600]))
def test_records_of_made_verdicts_equal_the_model(rows, window):
    """Every action/reason (the filter reasons included) with any egress and route."""
    b = make_batch([p for p, _ in rows])
    n = len(b)
    # make_batch sorted the packets by time: the verdicts follow the same order
    order = np.argsort([T0 + p[6] for p, _ in rows], kind="stable")
    v = [rows[i][1] for i in order]
    act = [a for a, _, _, _ in v]
    res = made_result(n, act, [r if a == 0 else 0 for a, r, _, _ in v], [e for _, _, e, _ in v],
                      [t for _, _, _, t in v])
    log = FlowLog(window=window, fields=ALL)
    log.observe(DP, b, res)
    compare(log, model_records(NET, DP, [(b, res)], window))


def test_many_flows_grow_the_table_and_match_the_model():
    rng = np.random.default_rng(7)
    pkts = [("web1", "10.0.2.10", "udp", int(s), 53, 0, int(rng.integers(0, 600 * 10**9)), True, 0)
            for s in rng.integers(1024, 65535, 6000)]
    pkts += [("app1", "10.0.1.10", "tcp", 443, int(s), 0x10, int(rng.integers(0, 600 * 10**9)), True, 0)
             for s in rng.integers(1024, 65535, 3000)]
    b = make_batch(pkts)
    res = DP.process(b)
    log = FlowLog(window=60, fields=ALL)
    log.observe(DP, b, res)
    assert log._core.n_slots > 1024                     # it grew (several times) inside one observe()
    compare(log, model_records(NET, DP, [(b, res)], 60))


# --------------------------------------------------------------------------- AWS's format, field by field

def test_default_format_is_version_2s_14_fields_in_order():
    assert parse_format(None) == ("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport",
                                  "dstport", "protocol", "packets", "bytes", "start", "end", "action",
                                  "log-status")
    assert parse_format(DEFAULT_FORMAT) == parse_format(None)
    log = FlowLog()
    assert log.version == 2 and log.window == 600


def test_text_lines_field_by_field(tmp_path):
    b = batch_of([frame("web1", "10.0.2.10", "tcp", 40000, 22, 0x02), frame("web1", "10.0.2.10", "tcp", 40000, 22, 0x10),
                  frame("web1", "8.8.8.8", "icmp", 7)],
                 ENIS["web1"].port, [T0 + 5 * 10**9, T0 + 9 * 10**9, T0 + 10 * 10**9])
    res = DP_ROUTING.process(b)
    assert list(res.action) == [Action.DELIVER, Action.DELIVER, Action.FORWARD]
    log = FlowLog(window=60, account_id="111122223333")
    log.observe(DP, b, res)
    path = log.write(tmp_path / "flows.log")
    text = (tmp_path / "flows.log").read_text()
    lines = text.splitlines()
    assert lines[0] == "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
    assert [ln.split(" ") for ln in lines[1:]] == [
        ["2", "111122223333", "web1", "10.0.1.10", "10.0.2.10", "40000", "22", "6", "2", "80",
         "1700000005", "1700000009", "ACCEPT", "OK"],
        ["2", "111122223333", "app1", "10.0.1.10", "10.0.2.10", "40000", "22", "6", "2", "80",
         "1700000005", "1700000009", "ACCEPT", "OK"],
        # ICMP: ports 0 0; echo request of 8 + 32 payload + 20 bytes
        ["2", "111122223333", "web1", "10.0.1.10", "8.8.8.8", "0", "0", "1", "1", "60",
         "1700000010", "1700000010", "ACCEPT", "OK"],
    ]
    assert log.text() == text and path == str(tmp_path / "flows.log")
    gz = log.write(tmp_path / "flows.log.gz")
    with gzip.open(gz) as fh:
        assert fh.read().decode() == log.text()


def test_custom_format_versions_and_missing_fields_as_dash():
    fmt = ("${version} ${interface-id} ${vpc-id} ${subnet-id} ${instance-id} ${srcaddr} ${dstaddr} "
           "${pkt-srcaddr} ${pkt-dstaddr} ${tcp-flags} ${type} ${region} ${az-id} ${sublocation-type} "
           "${sublocation-id} ${pkt-src-aws-service} ${pkt-dst-aws-service} ${flow-direction} ${traffic-path}")
    b = batch_of([frame("web1", "10.0.3.11", "tcp", 1000, 5432, 0x12)], ENIS["web1"].port, [T0])
    res = DP.process(b)
    assert res.action[0] == Action.DELIVER and BY_PORT[int(res.egress[0])].name == "fw"   # the middlebox route
    log = FlowLog(window=600, fields=fmt)
    assert log.version == 5
    log.observe(DP, b, res)
    lines = log.text().splitlines()
    assert lines[0].split() == [f.strip("${}") for f in fmt.split()]
    # egress at web1 (instance known from the aliases), then ingress at fw: dstaddr = fw's own primary IP,
    # pkt-dstaddr the packet's (db1's secondary) address; SYN-ACK = 18
    assert lines[1].split() == ["5", "web1", "vpc-a", "web", "i-0123456789abcdef0", "10.0.1.10", "10.0.3.11",
                                "10.0.1.10", "10.0.3.11", "18", "IPv4", "-", "-", "-", "-", "-", "-", "egress", "1"]
    assert lines[2].split() == ["5", "fw", "vpc-a", "app", "-", "10.0.1.10", "10.0.2.50",
                                "10.0.1.10", "10.0.3.11", "18", "IPv4", "-", "-", "-", "-", "-", "-", "ingress", "-"]
    assert FlowLog(fields="${version} ${vpc-id}").version == 3
    assert FlowLog(fields="${az-id}").version == 4
    assert FlowLog(fields=["srcaddr"], version=5).version == 5


def test_secondary_ip_destination_shows_the_primary_as_dstaddr():
    db1 = ENIS["db1"]
    b = batch_of([frame("app1", "10.0.3.11", "udp", 5000, 53)], ENIS["app1"].port, [T0])
    res = DP.process(b)
    assert res.action[0] == Action.DELIVER and int(res.egress[0]) == db1.port
    log = FlowLog(fields="${interface-id} ${srcaddr} ${dstaddr} ${pkt-dstaddr} ${flow-direction}")
    log.observe(DP, b, res)
    assert log.text().splitlines()[1:] == ["app1 10.0.2.10 10.0.3.11 10.0.3.11 egress",
                                           "db1 10.0.2.10 10.0.3.10 10.0.3.11 ingress"]


def test_traffic_path_by_route_target():
    # routing view (filters=False): the peer VPC's default group would refuse web1's frame (#48)
    dp = NET.compile(filters=False, edge=False)
    b = batch_of([frame("web1", "8.8.8.8"), frame("web1", "10.1.1.10"), frame("web1", "10.0.1.20", to_mac=ENIS["web2"].mac),
                  frame("web1", "10.9.1.1")], ENIS["web1"].port, [T0] * 4)
    res = dp.process(b)
    assert list(res.action) == [Action.FORWARD, Action.DELIVER, Action.DELIVER, Action.DROP]
    assert res.reason[3] == R.BLACKHOLE
    log = FlowLog(fields="${interface-id} ${dstaddr} ${flow-direction} ${traffic-path} ${action}")
    log.observe(dp, b, res)
    assert log.text().splitlines()[1:] == [
        "web1 8.8.8.8 egress 2 ACCEPT",          # internet gateway
        "web1 10.1.1.10 egress 4 ACCEPT",        # intra-Region peering
        "b1 10.1.1.10 ingress - ACCEPT",
        "web1 10.0.1.20 egress 1 ACCEPT",        # same subnet, no route lookup
        "web2 10.0.1.20 ingress - ACCEPT",
        "web1 10.9.1.1 egress - ACCEPT",         # admitted by the sender's filters, then a blackhole
    ]


# --------------------------------------------------------------------------- ACCEPT / REJECT

def test_reject_records_follow_the_stage_that_dropped():
    """SG/NACL egress: the sender's REJECT only; NACL/SG ingress: the sender's ACCEPT and the
    receiver's REJECT (through a route to the middlebox, the peering, and inside the subnet)."""
    fr = [frame("web1", "10.0.2.10"), frame("web1", "10.0.2.10"), frame("web1", "10.0.3.10"),
          frame("web1", "10.1.1.10"), frame("web1", "10.0.1.20", to_mac=ENIS["web2"].mac),
          frame("web1", "10.0.2.10")]
    b = batch_of(fr, ENIS["web1"].port, [T0] * 6)
    real = DP.process(b.copy())
    route = list(real.route)
    res = made_result(6, [0] * 6, [R.SG_EGRESS, R.NACL_EGRESS, R.SG_INGRESS, R.NACL_INGRESS, R.SG_INGRESS,
                                   R.FLOW_TABLE_FULL], [-1] * 6, route)
    log = FlowLog(fields="${interface-id} ${dstaddr} ${pkt-dstaddr} ${flow-direction} ${action}")
    log.observe(DP, b, res)
    assert log.text().splitlines()[1:] == [
        "web1 10.0.2.10 10.0.2.10 egress REJECT",     # SG_EGRESS and NACL_EGRESS: one record, 2 packets
        "web1 10.0.3.10 10.0.3.10 egress ACCEPT",     # SG_INGRESS at the middlebox the route leads to
        "fw 10.0.2.50 10.0.3.10 ingress REJECT",      # dstaddr: the middlebox's own primary IP
        "web1 10.1.1.10 10.1.1.10 egress ACCEPT",     # NACL_INGRESS across the peering
        "b1 10.1.1.10 10.1.1.10 ingress REJECT",
        "web1 10.0.1.20 10.0.1.20 egress ACCEPT",     # SG_INGRESS inside the subnet (no route)
        "web2 10.0.1.20 10.0.1.20 ingress REJECT",
        "web1 10.0.2.10 10.0.2.10 egress ACCEPT",     # FLOW_TABLE_FULL: the sender's ACCEPT
    ]
    rec = log.records()
    assert int(log.records()["dstaddr"].size) == 8 and rec["action"][0] == "REJECT"


def test_stateless_nacl_ping_accept_then_reject_on_the_same_eni():
    """AWS's example: the request is admitted, the reply is denied by the NACL on its way out."""
    a1, d1 = ENIS["app1"], ENIS["db1"]
    req = frame("app1", "10.0.3.10", "icmp", 9)
    rep = pk.ethernet(d1.subnet.gateway_mac, d1.mac, pk.ETH_IPV4, pk.icmp_echo(d1.ip, a1.ip, ident=9, request=False))
    b = batch_of([req, rep], [a1.port, d1.port], [T0, T0 + 10**9])
    res = made_result(2, [Action.DELIVER, Action.DROP], [0, R.NACL_EGRESS], [d1.port, -1], [-1, -1])
    log = FlowLog(fields="${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${flow-direction} ${action}")
    log.observe(DP, b, res)
    assert log.text().splitlines()[1:] == [
        "app1 10.0.2.10 10.0.3.10 0 0 1 egress ACCEPT",
        "db1 10.0.2.10 10.0.3.10 0 0 1 ingress ACCEPT",
        "db1 10.0.3.10 10.0.2.10 0 0 1 egress REJECT",
    ]


def test_not_logged_traffic():
    web1 = ENIS["web1"]
    fr = [
        frame("web1", "10.0.0.2", "udp", 5353, 53),             # Amazon DNS: VPC base + 2
        frame("web1", "169.254.169.254", "tcp", 40000, 80),     # IMDS
        frame("web1", "169.254.169.123", "udp", 123, 123),      # Time Sync
        frame("web1", "10.0.2.10", "udp", 68, 67),              # DHCP
        frame("web1", "10.0.1.1", "icmp"),                      # the router: REPLY
        frame("web1", "10.0.1.1", "tcp"),                       # the router: ROUTER_UNSUPPORTED
        frame("web1", "10.0.2.255"),                            # BROADCAST
        pk.arp_request(web1.mac, web1.ip, "10.0.1.20"),         # ARP: REPLY
        frame("web1", "10.0.2.10")[:30],                        # MALFORMED
        frame("web1", "10.0.2.10", to_mac="02:99:00:00:00:01"), # UNKNOWN_MAC
        frame("web1", "10.0.2.10", "tcp", 1, 2),                # logged (the one record pair)
    ]
    b = batch_of(fr, web1.port, [T0] * len(fr))
    res = DP.process(b)
    log = FlowLog(fields="${interface-id} ${dstaddr} ${srcport}")
    log.observe(DP, b, res)
    assert log.text().splitlines()[1:] == ["web1 10.0.2.10 1", "app1 10.0.2.10 1"]
    # the same frames as if every one had been delivered to app1: the addresses alone keep them out
    made = made_result(len(fr), [Action.DELIVER] * len(fr), [0] * len(fr), [ENIS["app1"].port] * len(fr), [-1] * len(fr))
    log2 = FlowLog(fields="${interface-id} ${dstaddr} ${srcport}")
    log2.observe(DP, b, made)
    got = log2.text().splitlines()[1:]
    assert "web1 10.0.0.2 5353" not in got and not any("169.254" in g for g in got)
    assert not any(g.endswith(" 68") for g in got)
    # the sender's own source/dest check (route -1) is before the filters; a target's (route >= 0) is not
    sdc = made_result(2, [0, 0], [R.SRC_DST_CHECK] * 2, [-1, -1], [-1, 0])
    log3 = FlowLog()
    log3.observe(DP, batch_of([frame("web1", "8.8.8.8")] * 2, web1.port, [T0] * 2), sdc)
    assert len(log3) == 1


def test_out_through_the_internet_gateway_the_sender_logs_its_private_source():
    """web1 with a public IP sends to the internet: the frame leaves translated to the public IP, the
    sender's record shows the packet as sent (pkt-srcaddr the private IP), as on AWS."""
    net = build_net()
    w1 = next(e for e in net.enis if e.name == "web1")
    w1.associate_address(net.allocate_address("203.0.113.10", name="eip-w1"))
    dp = net.compile()
    log = FlowLog(window=60, fields="${interface-id} ${srcaddr} ${pkt-srcaddr} ${pkt-dstaddr} ${flow-direction}")
    fr = frame(w1, "8.8.4.4", "udp", 5000, 53)
    b = batch_of([fr], [w1.port], [T0])
    res = dp.process(b, log=log)
    assert res.action[0] == Action.FORWARD
    assert struct.unpack_from("!I", b.frame(0), 26)[0] == int(ipaddress.IPv4Address("203.0.113.10"))
    assert log.text().splitlines()[1:] == ["web1 10.0.1.10 10.0.1.10 8.8.4.4 egress"]


def test_frames_from_a_gateway_port_have_no_egress_record():
    igw = NET.find("igw")
    b = batch_of([frame("web1", "10.0.1.20")], igw.port, [T0])
    res = made_result(1, [Action.DELIVER], [0], [ENIS["web2"].port], [-1])
    log = FlowLog(fields="${interface-id} ${flow-direction}")
    log.observe(DP, b, res)
    assert log.text().splitlines()[1:] == ["web2 ingress"]


# --------------------------------------------------------------------------- tcp-flags

@pytest.mark.parametrize("flags, expected", [
    ((0x02, 0x01), 3),            # SYN + FIN
    ((0x12, 0x01), 19),           # SYN-ACK + FIN
    ((0x10,), 0),                 # pure ACK
    ((0x18, 0x10), 0),            # PSH-ACK, ACK
    ((0x42,), 2),                 # SYN + ECE
    ((0x04, 0x10), 4),            # RST
    ((0x02, 0x12, 0x10, 0x11), 19),
])
def test_tcp_flags_are_ored_over_the_window(flags, expected):
    fr = [frame("web1", "10.0.2.10", "tcp", 40000, 22, f) for f in flags]
    b = batch_of(fr, ENIS["web1"].port, [T0 + i for i in range(len(fr))])
    res = DP.process(b)
    log = FlowLog(fields="${interface-id} ${tcp-flags} ${packets}")
    log.observe(DP, b, res)
    assert log.text().splitlines()[1:] == [f"web1 {expected} {len(flags)}", f"app1 {expected} {len(flags)}"]


# --------------------------------------------------------------------------- windows

def test_windows_align_to_multiples_of_the_window_since_the_epoch():
    # 1700000039.9 s and 1700000040.0 s: one 600-s window (1699999800..1700000400), two 60-s windows
    times = [1_700_000_039_900_000_000, 1_700_000_040_000_000_000, 1_700_000_099_000_000_000,
             1_700_000_400_000_000_000]
    fr = [frame("web1", "10.0.2.10")] * 4
    b = batch_of(fr, ENIS["web1"].port, times)
    res = DP.process(b)
    recs = {}
    for w in (60, 600):
        log = FlowLog(window=w, fields="${interface-id} ${packets} ${start} ${end}")
        log.observe(DP, b, res)
        recs[w] = [ln for ln in log.text().splitlines()[1:] if ln.startswith("web1")]
    assert recs[60] == ["web1 1 1700000039 1700000039", "web1 2 1700000040 1700000099",
                        "web1 1 1700000400 1700000400"]
    assert recs[600] == ["web1 3 1700000039 1700000099", "web1 1 1700000400 1700000400"]


def test_now_overrides_the_timestamps_and_flush_closes_windows():
    fr = [frame("web1", "10.0.2.10")]
    b = fv.FrameBatch.from_frames(fr, port=ENIS["web1"].port)          # no timestamps
    res = DP.process(b)
    log = FlowLog(window=60, fields="${interface-id} ${packets} ${start}")
    with pytest.raises(FlowLogError, match="no timestamps"):
        log.observe(DP, b, res)
    # through process(): refused before the pass, the message says where the time goes
    with pytest.raises(FlowLogError, match=r"no timestamps; pass now= .*process\(\.\.\., log=\)"):
        DP.process(b, log=log)
    log.observe(DP, b, res, now=T0)
    log.observe(DP, b, res, now=T0 + 30 * 10**9)
    assert len(log) == 2 and log.n_closed == 0
    assert log.flush(T0 + 30 * 10**9) == 0                 # the window 1699999980..1700000040 is still open
    assert log.flush(T0 + 40 * 10**9) == 2                 # now it has ended
    assert log.n_closed == 2 and len(log) == 2
    log.observe(DP, b, res, now=T0 + 35 * 10**9)           # late: a new record in the closed window
    log.observe(DP, b, res, now=T0 + 61 * 10**9)
    assert len(log) == 6
    assert len(log.records(closed_only=True)) == 2
    assert log.flush() == 4 and len(log) == 6
    assert [ln.split()[1:] for ln in log.text().splitlines()[1:] if ln.startswith("web1")] == [
        ["2", "1700000000"], ["1", "1700000035"], ["1", "1700000061"]]


# --------------------------------------------------------------------------- Parquet

def test_parquet_reads_back_with_awss_columns(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    b = batch_of([frame("web1", "10.0.2.10", "tcp", 1, 2, 0x02), frame("web1", "8.8.8.8", "icmp"),
                  frame("app1", "10.0.1.10", "udp", 3, 4)],
                 [ENIS["web1"].port, ENIS["web1"].port, ENIS["app1"].port], [T0, T0 + 1, T0 + 2])
    res = DP.process(b)
    log = FlowLog(fields=ALL)
    log.observe(DP, b, res)
    path = log.write(tmp_path / "flows.parquet")
    t = pq.read_table(path)
    assert t.column_names == [f.replace("-", "_") for f in FIELDS]
    types = {f.name: str(f.type) for f in t.schema}
    assert types["packets"] == types["bytes"] == types["start"] == types["end"] == "int64"
    assert types["srcport"] == types["version"] == types["tcp_flags"] == types["traffic_path"] == "int32"
    assert types["srcaddr"] == types["interface_id"] == "string"
    rec = log.records()
    rows = t.to_pylist()
    assert len(rows) == len(rec) == 5
    for row, r in zip(rows, as_dicts(rec)):
        for f in FIELDS:
            want = r[f]
            if want == "-" or (f == "traffic-path" and want == -1):
                want = None
            assert row[f.replace("-", "_")] == want, f
    assert rows[0]["instance_id"] == "i-0123456789abcdef0" and rows[1]["instance_id"] is None


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    target = tmp_path / "flows.parquet"
    target.write_bytes(b"keep me")
    log = FlowLog()
    with pytest.raises(FlowLogError, match=r"fastvpc\[parquet\]"):
        log.write(target)
    assert target.read_bytes() == b"keep me" and os.listdir(tmp_path) == ["flows.parquet"]


# --------------------------------------------------------------------------- pickling

def test_pickle_round_trip_and_continue():
    b1 = make_batch([("web1", "10.0.2.10", "tcp", 40000, 22, 2, 0, True, 0), ("app1", "10.0.1.10", "udp", 53, 53, 0, 5, True, 0)])
    b2 = make_batch([("web1", "10.0.2.10", "tcp", 40000, 22, 1, 10**9, True, 0)])
    r1, r2 = DP.process(b1), DP.process(b2)
    a = FlowLog(window=60, fields=ALL)
    a.observe(DP, b1, r1)
    a.flush(T0 + 100 * 10**9)
    a.observe(DP, b2, r2)
    c = pickle.loads(pickle.dumps(a))
    assert c.text() == a.text() and len(c) == len(a) and c.n_closed == a.n_closed
    b3 = make_batch([("web1", "10.0.2.10", "tcp", 40000, 22, 0x10, 2 * 10**9, True, 0)])
    r3 = DP.process(b3)
    a.observe(DP, b3, r3)
    c.observe(DP, b3, r3)
    assert c.text() == a.text()


def test_corrupt_pickle_is_refused():
    log = FlowLog(window=60, enis=["web1"])   # enis: the NODATA cursor is kept
    b = make_batch([("web1", "10.0.2.10", "tcp", 40000, 22, 2, 0, True, 0)])
    log.observe(DP, b, DP.process(b))
    fn, (state,) = log.__reduce__()
    # the structural checks, without the digest (a pickle of before the digest has none)
    for key, value in [("open", state["open"][:-1]), ("ifaces", []), ("next_seq", 0), ("v", 99),
                       ("open", state["open"] * 2), ("window", "60"), ("fields", 7), ("enis", 5),
                       # a sequence number that wraps to 0 (the empty-slot mark); NODATA from before the
                       # first frame (millions of records) or times past any clock; text that is not text
                       ("next_seq", 2**64 - 1), ("nodata_from", -1), ("nodata_from", 0), ("t_last", 2**62),
                       ("t_first", state["t_last"] + 1), ("nodata_from", state["nodata_from"] + 1),
                       ("ifaces", [["eni-\udc80", *state["ifaces"][0][1:]]])]:
        bad = dict(state, **{key: value})
        del bad["digest"]
        with pytest.raises(FlowLogError):
            fn(bad)
    for key in ("window", "account_id", "open"):
        bad = {k: v for k, v in state.items() if k not in (key, "digest")}
        with pytest.raises(FlowLogError, match=f"no {key}"):
            fn(bad)
    # a changed count is a valid record: only the digest tells it was edited
    e = np.frombuffer(bytearray(state["open"]), np.uint8).copy()
    rows = e.view(ENTRY_DTYPE)
    rows["packets"][0] += 256
    edited = dict(state, open=e.tobytes())
    with pytest.raises(FlowLogError, match="digest"):
        fn(edited)
    del edited["digest"]
    assert fn(edited).records()["packets"][0] == log.records()["packets"][0] + 256
    data = bytearray(pickle.dumps(log))
    refused = 0
    for i in range(0, len(data), 7):        # a flipped bit anywhere: refused, never a different log
        flipped = bytearray(data)
        flipped[i] ^= 0x10
        try:
            got = pickle.loads(bytes(flipped))
        except Exception:   # noqa: BLE001 - a broken pickle stream raises many kinds before ours
            refused += 1
            continue
        assert isinstance(got, FlowLog) and got.text() == log.text(), i
    assert refused > 0


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("window", [30, 0, -60, True, "60", 60.0, None])
def test_bad_window_names_it(window):
    with pytest.raises(FlowLogError, match="window"):
        FlowLog(window=window)


@pytest.mark.parametrize("fields, named", [
    ("${version} ${nope}", "nope"), ("version srcaddr", "version"), ("${srcaddr} ${srcaddr}", "srcaddr"),
    ("", "no field"), ("${version} ${account-id} ${ecs-task-id}", "ecs-task-id"), (42, "42"),
    ("${}", "''"),
])
def test_bad_format_names_the_field(fields, named):
    with pytest.raises(FlowLogError, match=named.replace("$", r"\$")):
        FlowLog(fields=fields)


def test_bad_version_and_account():
    with pytest.raises(FlowLogError, match="tcp-flags"):
        FlowLog(fields="${version} ${tcp-flags}", version=2)
    with pytest.raises(FlowLogError, match="version 7"):
        FlowLog(version=7)
    with pytest.raises(FlowLogError, match="account_id"):
        FlowLog(account_id="1234 5678")


def test_bad_observe_input():
    b = make_batch([("web1", "10.0.2.10", "tcp", 40000, 22, 2, 0, True, 0)])
    res = DP.process(b)
    log = FlowLog()
    with pytest.raises(FlowLogError, match="Dataplane"):
        log.observe(NET, b, res)
    with pytest.raises(FlowLogError, match="FrameBatch"):
        log.observe(DP, [b.frame(0)], res)
    short = made_result(2, [1, 1], [0, 0], [-1, -1], [-1, -1])
    with pytest.raises(FlowLogError, match="result.action"):
        log.observe(DP, b, short)
    wrong = made_result(1, [1], [0], [-1], [-1])
    wrong.egress = wrong.egress.astype(np.int64)
    with pytest.raises(FlowLogError, match="result.egress has dtype int64"):
        log.observe(DP, b, wrong)
    for now in (-1, 1.5, True):
        with pytest.raises(FlowLogError, match="now"):
            log.observe(DP, b, res, now=now)
    b.timestamp[0] = -1
    with pytest.raises(FlowLogError, match="frame 0 has timestamp -1"):
        log.observe(DP, b, res)
    with pytest.raises(FlowLogError, match="flush"):
        log.flush(-5)
    with pytest.raises(FlowLogError, match="frame 0 has timestamp -1"):
        log.check(b)                                     # what process(..., log=) asks before the pass
    log.check(b, now=T0)
    assert len(log) == 0


def test_one_operation_at_a_time():
    b = make_batch([("web1", "10.0.2.10", "tcp", 40000, 22, 2, 0, True, 0)])
    res = DP.process(b)
    log = FlowLog()
    with log._held():                                    # as if another thread's observe() were running
        with pytest.raises(FlowLogBusyError):
            log.observe(DP, b, res)
        with pytest.raises(FlowLogBusyError):
            log.flush()
        with pytest.raises(FlowLogBusyError):
            log.records()
    assert log.observe(DP, b, res) == 2 and len(log) == 2


def test_bad_paths_are_typed_errors_and_never_destroy_a_file(tmp_path, monkeypatch):
    log = FlowLog()
    b = make_batch([("web1", "10.0.2.10", "tcp", 40000, 22, 2, 0, True, 0)])
    log.observe(DP, b, DP.process(b))
    with pytest.raises(FlowLogError, match="is a directory"):
        log.write(tmp_path)
    with pytest.raises(FlowLogError, match="does not exist"):
        log.write(tmp_path / "missing" / "flows.log")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(FlowLogError, match="a-file"):
        log.write(blocker / "flows.log")               # the "folder" is a file: not writable
    with pytest.raises(FlowLogError, match="format"):
        log.write(tmp_path / "x.log", format="csv")
    with pytest.raises(FlowLogError, match="path"):
        log.write(None)  # type: ignore[arg-type]
    existing = tmp_path / "flows.log"
    existing.write_text("old records\n")

    def broken(self, rows, chunk=65536):
        yield memoryview(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FlowLog, "_text_chunks", broken)
    with pytest.raises(FlowLogError, match="No space left on device"):
        log.write(existing)
    assert existing.read_text() == "old records\n"
    assert sorted(os.listdir(tmp_path)) == ["a-file", "flows.log"]   # no partial file left
    monkeypatch.undo()
    log.write(existing)
    assert existing.read_text() == log.text()


# --------------------------------------------------------------------------- replay --flow-log

def test_replay_cli_writes_the_flow_log(tmp_path):
    from fastvpc.cli import main

    topo = tmp_path / "net.json"
    NET.save(topo)
    b = make_batch([("web1", "10.0.2.10", "tcp", 40000, 22, 2, 0, True, 0),
                    ("web1", "10.0.2.10", "tcp", 40000, 22, 0x10, 70 * 10**9, True, 0),
                    ("web1", "169.254.169.254", "tcp", 40000, 80, 2, 10**9, True, 0)])
    cap = tmp_path / "in.pcap"
    b.to_pcap(cap, nanosecond=True)
    out = tmp_path / "flows.log"
    assert main(["replay", str(topo), str(cap), "--flow-log", str(out), "--flow-log-window", "60",
                 "--no-progress"]) == 0
    net = fv.load(topo)
    dp = net.compile()
    b2 = fv.FrameBatch.from_pcap(cap)
    from fastvpc.dataplane.ports import PortMap
    PortMap.for_network(net, "src-mac").ports_for(b2, out=b2.port)
    log = FlowLog(window=60)
    log.observe(dp, b2, dp.process(b2))
    assert out.read_text() == log.text() and len(log) == 4
    assert main(["replay", str(topo), str(cap), "--flow-log", str(tmp_path / "f.log"),
                 "--flow-log-format", "${version} ${bogus}"]) == 2
    assert not (tmp_path / "f.log").exists()


def test_endpoints_paths_and_dns_of_the_primary_cidr():
    """Gateway endpoint: path 2; Gateway Load Balancer endpoint: path 1 (it has an ENI in the VPC).
    Amazon DNS is the primary CIDR's base + 2 even when another CIDR was added (base + 2 of the
    second CIDR is an ordinary unassigned address: logged)."""
    net = fv.Network()
    v = net.add_vpc("10.0.0.0/16", name="v")
    s = v.add_subnet("10.0.1.0/24", name="s")
    e = s.add_eni("10.0.1.10", name="e")
    gw = v.add_endpoint(name="s3", endpoint_type="gateway", service="com.amazonaws.s3")
    gl = v.add_endpoint(name="gwlbe", endpoint_type="gatewayloadbalancer")
    rt = v.add_route_table(name="rt", routes=[("52.0.0.0/8", gw), ("0.0.0.0/0", gl)])
    s.associate(rt)
    v.add_cidr("10.5.0.0/16")
    dp = net.compile()
    fr = [pk.ethernet(s.gateway_mac, e.mac, pk.ETH_IPV4, pk.udp(e.ip, d, 1, 53))
          for d in ("52.1.2.3", "8.8.8.8", "10.0.0.2", "10.5.0.2")]
    b = batch_of(fr, e.port, [T0] * 4)
    res = dp.process(b)
    assert list(res.action) == [Action.FORWARD, Action.FORWARD, Action.DROP, Action.DROP]
    log = FlowLog(fields="${dstaddr} ${traffic-path}")
    log.observe(dp, b, res)
    assert log.text().splitlines()[1:] == ["52.1.2.3 2", "8.8.8.8 1", "10.5.0.2 1"]


# --------------------------------------------------------------------------- process(..., log=)

def _seed_with_one_way_icmp_acl():
    """The seed VPC, every ENI in the default group (all traffic among members), and app's NACL
    letting ICMP in but nothing out: AWS's published stateless-NACL ping example, inside the VPC."""
    from fastvpc.examples import seed_vpc

    net = seed_vpc()
    vpc = net.vpcs[0]
    acl = vpc.add_network_acl(name="app-acl")
    acl.add_entry(100, "ingress", "allow", "icmp", None, "0.0.0.0/0")
    next(s for s in vpc.subnets if s.name == "app").associate_network_acl(acl)
    return net


def test_process_log_records_the_stateless_nacl_ping_accept_then_reject():
    from fastvpc import FlowTable

    net = _seed_with_one_way_icmp_acl()
    dp = net.compile()
    e = {x.name: x for x in net.enis}
    web1, app1 = e["web1"], e["app1"]
    gw_web, gw_app = web1.subnet.gateway_mac, app1.subnet.gateway_mac
    req = pk.ethernet(gw_web, web1.mac, 0x0800, pk.icmp_echo("10.0.1.10", "10.0.2.10", ident=7))
    rep = pk.ethernet(gw_app, app1.mac, 0x0800, pk.icmp_echo("10.0.2.10", "10.0.1.10", ident=7, request=False))
    flows = FlowTable(capacity=1024)
    log = FlowLog(window=60, fields="${interface-id} ${srcaddr} ${dstaddr} ${action} ${flow-direction} ${packets}")
    t0 = 1_700_000_000 * 10**9
    r1 = dp.process(fv.FrameBatch.from_frames([req], port=[web1.port]), state=flows, now=t0, log=log)
    r2 = dp.process(fv.FrameBatch.from_frames([rep], port=[app1.port]), state=flows, now=t0 + 10**9, log=log)
    assert r1.action[0] == Action.DELIVER
    assert r2.action[0] == Action.DROP and r2.reason[0] == R.NACL_EGRESS   # the reply is not let out
    assert sorted(log.text().splitlines()[1:]) == sorted([
        "web1 10.0.1.10 10.0.2.10 ACCEPT egress 1",     # the request leaves web1
        "app1 10.0.1.10 10.0.2.10 ACCEPT ingress 1",    # and reaches app1
        "app1 10.0.2.10 10.0.1.10 REJECT egress 1",     # the reply, admitted by the SG (tracked), NACL-denied
    ])


def test_process_log_refuses_a_batch_without_times_before_processing():
    net = _seed_with_one_way_icmp_acl()
    dp = net.compile()
    web1 = next(x for x in net.enis if x.name == "web1")
    frame = pk.ethernet(web1.subnet.gateway_mac, web1.mac, 0x0800, pk.icmp_echo("10.0.1.10", "10.0.1.20"))
    b = fv.FrameBatch.from_frames([frame], port=[web1.port])
    before = bytes(b.data)
    with pytest.raises(FlowLogError, match="timestamps"):
        dp.process(b, log=FlowLog())
    assert bytes(b.data) == before                      # refused before the pass rewrote anything
    with pytest.raises(TypeError, match="FlowLog"):
        dp.process(b, log=object())


def test_sparse_port_numbers():
    """Ports too large for a dense port -> ENI array (binary search instead): same records."""
    net = fv.Network()
    v = net.add_vpc("10.0.0.0/16", name="v")
    s = v.add_subnet("10.0.1.0/24", name="s")
    a = s.add_eni("10.0.1.10", name="a", port=5_000_000)
    b_ = s.add_eni("10.0.1.20", name="b", port=7)
    c = s.add_eni("10.0.1.30", name="c", port=2_000_000_000)
    dp = net.compile()
    fr = [pk.ethernet(y.mac, x.mac, pk.ETH_IPV4, pk.udp(x.ip, y.ip, 1, 2))
          for x, y in ((a, b_), (b_, c), (c, a))]
    b = batch_of(fr, [a.port, b_.port, c.port], [T0] * 3)
    res = dp.process(b)
    assert list(res.action) == [Action.DELIVER] * 3
    log = FlowLog(fields="${interface-id} ${flow-direction}")
    log.observe(dp, b, res)
    assert log.text().splitlines()[1:] == ["a egress", "b ingress", "b egress", "c ingress", "c egress",
                                           "a ingress"]
    compare(FlowLog(fields=ALL), [])  # an empty log has no records


# --------------------------------------------------------------------------- differential: kernel vs reference

from fastvpc.testing import check_stateful, fresh_states, stateful_scenarios  # noqa: E402


# derandomized: the same 60 scenarios every run (random seeds found the replaced-local-route case of
# Amazon DNS, now fixed and tested below; 400 random scenarios afterwards found no other mismatch)
@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(stateful_scenarios(), st.sampled_from([60, 600]))
def test_kernel_records_equal_the_records_of_the_references_verdicts(scenario, window):
    """Random stateful traffic with security groups and NACLs (fastvpc.testing's scenarios: handshakes,
    replies, rule changes and recompiles, full tables, time across every timeout): the records the
    kernel pass makes (``process(..., state=, now=, log=)``) equal the model's records computed from the
    reference forwarder's verdicts (``ReferenceForwarder.process`` with a ``ReferenceFlowTable``) on
    the same frames, field by field."""
    from fastvpc.reference import ReferenceForwarder
    from fastvpc.testing import compile_network

    net, steps, capacity = scenario
    states = fresh_states(capacity)
    dp = compile_network(net)
    ref = ReferenceForwarder(net)
    log = FlowLog(window=window, fields=ALL)
    fed = []
    for step in steps:
        if step.change is not None:
            step.change(net)
            dp = compile_network(net)
            ref = ReferenceForwarder(net)
            continue
        frames = [f for f, _ in step.items]
        ports = [p for _, p in step.items]
        times = step.timestamps if step.timestamps is not None else [step.now] * len(frames)
        kb = fv.FrameBatch.from_frames(frames, port=ports, timestamp=step.timestamps)
        rb = fv.FrameBatch.from_frames(frames, port=ports, timestamp=times)
        kres = dp.process(kb, state=states.kernel, now=step.now, log=log)
        rres = ref.process(rb, state=states.reference, now=step.now)
        assert list(kres.action) == list(rres.action) and list(kres.reason) == list(rres.reason)
        fed.append((rb, rres, dp, fv.FrameBatch.from_frames(frames, port=ports, timestamp=times)))
    compare(log, model_records(net, dp, fed, window))


def test_the_differential_sees_rejects_of_both_filters():
    """The scenarios above do reach every kind of record (a check on the strategy, not on the log)."""
    from fastvpc.reference import ReferenceForwarder
    from fastvpc.testing import compile_network

    seen: set[str] = set()

    # derandomized, as the differential above: a strategy check must not depend on the run's seed
    @settings(max_examples=40, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(stateful_scenarios())
    def run(scenario):
        net, steps, capacity = scenario
        states = fresh_states(capacity)
        dp = compile_network(net)
        log = FlowLog(window=60, fields="${action} ${flow-direction}")
        for step in steps:
            if step.change is not None:
                step.change(net)
                dp = compile_network(net)
                continue
            b = fv.FrameBatch.from_frames([f for f, _ in step.items], port=[p for _, p in step.items],
                                          timestamp=step.timestamps)
            dp.process(b, state=states.kernel, now=step.now, log=log)
        seen.update(log.text().splitlines()[1:])

    run()
    assert {"ACCEPT egress", "ACCEPT ingress", "REJECT egress", "REJECT ingress"} <= seen


def test_amazon_dns_is_the_primary_cidrs_even_when_another_local_route_comes_first():
    """The VPC's primary CIDR 10.0.0.0/16 and a secondary 172.16.0.0/20: 10.0.0.2 is Amazon DNS (not
    logged), 172.16.0.2 an ordinary address (logged).  (The differential above found networks whose
    compiled routes list a secondary CIDR's local route first, which had been taken for the primary.)"""
    net = fv.Network()
    v = net.add_vpc("10.0.0.0/16", name="v")
    v.add_cidr("172.16.0.0/20")
    s = v.add_subnet("10.0.1.0/24", name="s")
    e = s.add_eni("10.0.1.10", name="e")
    dp = net.compile()
    fr = [pk.ethernet(s.gateway_mac, e.mac, pk.ETH_IPV4, pk.udp(e.ip, d, 1, 53)) for d in ("10.0.0.2", "172.16.0.2")]
    b = batch_of(fr, e.port, [T0] * 2)
    log = FlowLog(fields="${dstaddr}")
    log.observe(dp, b, dp.process(b))
    assert log.text().splitlines()[1:] == ["172.16.0.2"]


def test_amazon_dns_when_the_primarys_local_route_was_replaced_by_a_middlebox():
    """The primary CIDR's local route replaced by a route to a middlebox ENI (AWS allows it), a
    secondary CIDR's local route left: Amazon DNS is still the primary's base + 2, not logged.
    (Found by the differential with random seeds.)"""
    net = fv.Network()
    v = net.add_vpc("10.0.0.0/16", name="v")
    v.add_cidr("10.100.0.0/16")
    s = v.add_subnet("10.0.1.0/24", name="s")
    e = s.add_eni("10.0.1.10", name="e", source_dest_check=False)
    v.main_route_table.replace_route("10.0.0.0/16", e)
    dp = net.compile()
    assert [(r.destination, r.target_kind) for r in dp.routes if r.vpc == "v"][:2] == \
        [("10.0.0.0/16", "eni"), ("10.100.0.0/16", "local")]
    fr = [pk.ethernet(s.gateway_mac, e.mac, pk.ETH_IPV4, pk.udp(e.ip, d, 1, 53)) for d in ("10.0.0.2", "10.100.0.2")]
    b = batch_of(fr, e.port, [T0] * 2)
    log = FlowLog(fields="${dstaddr}")
    log.observe(dp, b, dp.process(b))
    assert log.text().splitlines()[1:] == ["10.100.0.2"]
