"""AWS's published flow log record examples (VPC User Guide, *Flow log record examples*), rebuilt as
scenarios: the network, its security groups and NACLs, the packets pushed batch after batch through
``Dataplane.process(batch, state=flows, now=..., log=log)``, and the records compared with AWS's
lines field by field.

Where the model's rules make a field differ from the published line, the test says why: AWS's
capture windows are per interface and start when a flow is first seen, the model's are aligned to
multiples of the window since the epoch (DESIGN.md §7), so the times of the TCP-flag example are
moved into aligned windows; the kernel takes no frames from a gateway's port, so the example's
internet client is an instance of another subnet.
"""

from __future__ import annotations

import fastvpc as fv
from fastvpc import packets as pk
from fastvpc.dataplane.flowlogs import FlowLog
from fastvpc.verdicts import Action, DropReason

NS = 10**9


def _tcp(sender: fv.Eni, dst: fv.Eni, sport: int, dport: int, flags: int, size: int) -> bytes:
    """A TCP segment of IPv4 total length ``size`` (20 + 20 header bytes, the rest payload)."""
    assert size >= 40
    ip = pk.tcp(sender.ip, dst.ip, sport, dport, b"d" * (size - 40), flags=flags)
    assert len(ip) == size
    return pk.ethernet(sender.subnet.gateway_mac if dst.subnet is not sender.subnet else dst.mac,
                       sender.mac, pk.ETH_IPV4, ip)


def _sizes(packets: int, total: int, first: int = 40) -> list[int]:
    """``packets`` sizes summing to ``total``: the first ``first`` bytes (a bare SYN), the others as
    even as can be."""
    rest = total - first
    k = packets - 1
    return [first] + [rest // k + (1 if i < rest % k else 0) for i in range(k)]


def _run(dp, flows, log, timed_frames):
    """Each (t_s, frame, port) alone in a batch at its time, in order (as a switch would see them)."""
    results = []
    for t_s, fr, port in timed_frames:
        b = fv.FrameBatch.from_frames([fr], port=[port])
        results.append(dp.process(b, state=flows, now=t_s * NS, log=log))
    return results


# --------------------------------------------------------------------------- accepted and rejected

def _default_vpc(cidr: str, subnet: str, server_ip: str, client_ip: str, rule) -> tuple[fv.Network, fv.Eni, fv.Eni]:
    """AWS's examples' default VPC 172.31.0.0/16: the server ENI eni-1235b8ca123456789 in a group
    allowing only ``rule`` in; a client in the VPC's default group."""
    net = fv.Network()
    vpc = net.add_vpc(cidr, name="vpc-1")
    sub = vpc.add_subnet(subnet, name="subnet-1")
    sg = vpc.add_security_group(name="sg-server")
    if rule is not None:
        sg.authorize_ingress(*rule)
    server = sub.add_eni(server_ip, name="eni-1235b8ca123456789", security_groups=[sg])
    client = sub.add_eni(client_ip, name="eni-client")
    return net, server, client


def test_accepted_ssh_matches_awss_record():
    """"SSH traffic (destination port 22, TCP protocol) from IP address 172.31.16.139 to network
    interface with private IP address is 172.31.16.21 and ID eni-1235b8ca123456789 in account
    123456789010 was allowed":
    ``2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK``
    20 packets, 4249 bytes, the first at 1418530010 and the last at 1418530070 (a 600 s window),
    the server's replies in between (their own record)."""
    net, server, client = _default_vpc("172.31.0.0/16", "172.31.16.0/20", "172.31.16.21", "172.31.16.139",
                                       ("tcp", 22, "172.31.0.0/16"))
    dp = net.compile()
    flows = fv.FlowTable(capacity=1024)
    log = FlowLog(window=600, account_id="123456789010")
    sizes = _sizes(20, 4249)
    timed = []
    for i, size in enumerate(sizes):
        t = 1418530010 + (60 * i) // 19          # 1418530010 .. 1418530070
        flags = 0x02 if i == 0 else 0x18
        timed.append((t, _tcp(client, server, 20641, 22, flags, size), client.port))
        timed.append((t, _tcp(server, client, 22, 20641, 0x12 if i == 0 else 0x10, 52), server.port))
    res = _run(dp, flows, log, timed)
    assert all(r.action[0] == Action.DELIVER for r in res)
    lines = [x for x in log.text().splitlines()[1:] if x.split()[2] == "eni-1235b8ca123456789"
             and x.split()[3] == "172.31.16.139"]
    assert lines == ["2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 "
                     "1418530010 1418530070 ACCEPT OK"]
    # the same flow leaving the client: the client's own egress record, with its own address first
    rec = log.records()
    out = rec[(rec["interface-id"] == "eni-client") & (rec["srcport"] == 20641)]
    assert len(out) == 1 and (out["srcaddr"][0], out["dstaddr"][0], out["packets"][0], out["bytes"][0]) == \
        ("172.31.16.139", "172.31.16.21", 20, 4249)
    # and the header is version 2's 14 fields
    assert log.text().splitlines()[0].split() == ["version", "account-id", "interface-id", "srcaddr", "dstaddr",
                                                  "srcport", "dstport", "protocol", "packets", "bytes", "start",
                                                  "end", "action", "log-status"]


def test_rejected_rdp_matches_awss_record():
    """"RDP traffic (destination port 3389, TCP protocol) to network interface eni-1235b8ca123456789
    in account 123456789010 was rejected":
    ``2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK``
    The server's group has no rule for 3389: every SYN (retransmitted, never answered) is refused at
    the receiver; the client's side logs the same packets ACCEPTed (its group lets them out)."""
    net, server, client = _default_vpc("172.31.0.0/16", "172.31.0.0/20", "172.31.9.12", "172.31.9.69",
                                       ("tcp", 22, "172.31.0.0/16"))
    dp = net.compile()
    flows = fv.FlowTable(capacity=1024)
    log = FlowLog(window=600, account_id="123456789010")
    sizes = _sizes(20, 4249, first=200)
    timed = [(1418530010 + (60 * i) // 19, _tcp(client, server, 49761, 3389, 0x02, size), client.port)
             for i, size in enumerate(sizes)]
    res = _run(dp, flows, log, timed)
    assert all(r.action[0] == Action.DROP and r.reason[0] == DropReason.SG_INGRESS for r in res)
    assert log.text().splitlines()[1:] == [
        "2 123456789010 eni-client 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 ACCEPT OK",
        "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 "
        "REJECT OK",
    ]


# --------------------------------------------------------------------------- security group and NACL rules

def _ping_net(sg_allows_icmp: bool, nacl_out_allows: bool):
    """AWS's example: a ping to 172.31.16.139 (eni-1235b8ca123456789); its group allows (or not)
    inbound ICMP, its subnet's NACL allows inbound ICMP and (or not) outbound.  The pinging host is an
    instance of another subnet (203.0.113.12 in AWS's example is on the internet)."""
    net = fv.Network()
    vpc = net.add_vpc("172.31.0.0/16", name="vpc-1")
    inside = vpc.add_subnet("172.31.16.0/20", name="inside")
    other = vpc.add_subnet("172.31.32.0/20", name="other")
    acl = vpc.add_network_acl(name="acl-inside")
    acl.add_entry(100, "ingress", "allow", "icmp", None, "0.0.0.0/0")
    if nacl_out_allows:
        acl.add_entry(100, "egress", "allow", "icmp", None, "0.0.0.0/0")
    inside.associate_network_acl(acl)
    sg = vpc.add_security_group(name="sg-ping")
    if sg_allows_icmp:
        sg.authorize_ingress("icmp", None, "0.0.0.0/0")
    target = inside.add_eni("172.31.16.139", name="eni-1235b8ca123456789", security_groups=[sg])
    pinger = other.add_eni("172.31.32.12", name="eni-pinger")
    return net, target, pinger


def _pings(net, target, pinger, log):
    """Four echo requests (84 bytes: 56 data bytes, as ping sends) and the target's replies."""
    dp = net.compile()
    flows = fv.FlowTable(capacity=64)
    data = b"p" * 56
    timed = []
    for k, t in enumerate((1432917027, 1432917050, 1432917094, 1432917142)):
        req = pk.icmp_echo(pinger.ip, target.ip, ident=1, seq=k, payload=data)
        rep = pk.icmp_echo(target.ip, pinger.ip, ident=1, seq=k, payload=data, request=False)
        assert len(req) == len(rep) == 84
        timed.append((t, pk.ethernet(pinger.subnet.gateway_mac, pinger.mac, pk.ETH_IPV4, req), pinger.port))
        timed.append((t, pk.ethernet(target.subnet.gateway_mac, target.mac, pk.ETH_IPV4, rep), target.port))
    return _run(dp, flows, log, timed)


def test_stateless_nacl_ping_shows_accept_then_reject():
    """"the security group ... allows inbound ICMP ... the network ACL ... allows inbound ICMP
    traffic but does not allow outbound ICMP traffic. Because security groups are stateful, the
    response ping ... is allowed. Network ACLs are stateless, therefore the response ping ... is
    dropped" -- two records on the interface:
    ``2 123456789010 eni-1235b8ca123456789 203.0.113.12 172.31.16.139 0 0 1 4 336 1432917027 1432917142 ACCEPT OK``
    ``2 123456789010 eni-1235b8ca123456789 172.31.16.139 203.0.113.12 0 0 1 4 336 1432917094 1432917142 REJECT OK``
    (AWS's second record starts later: in its window the replies were seen later; here each reply
    follows its request.)"""
    net, target, pinger = _ping_net(True, False)
    log = FlowLog(window=600, account_id="123456789010")
    res = _pings(net, target, pinger, log)
    assert [r.action[0] for r in res] == [Action.DELIVER, Action.DROP] * 4
    assert all(r.reason[0] == DropReason.NACL_EGRESS for r in res[1::2])
    mine = [x for x in log.text().splitlines()[1:] if x.split()[2] == "eni-1235b8ca123456789"]
    assert mine == [
        "2 123456789010 eni-1235b8ca123456789 172.31.32.12 172.31.16.139 0 0 1 4 336 1432917027 1432917142 ACCEPT OK",
        "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.32.12 0 0 1 4 336 1432917027 1432917142 REJECT OK",
    ]


def test_security_group_denying_icmp_gives_one_reject_record():
    """"If your security group rules don't allow inbound ICMP ... the flow log displays a single
    REJECT record": the requests are refused on the way in; no reply is ever sent."""
    net, target, pinger = _ping_net(False, True)
    log = FlowLog(window=600, account_id="123456789010")
    dp = net.compile()
    flows = fv.FlowTable(capacity=64)
    data = b"p" * 56
    timed = [(t, pk.ethernet(pinger.subnet.gateway_mac, pinger.mac, pk.ETH_IPV4,
                             pk.icmp_echo(pinger.ip, target.ip, ident=1, seq=k, payload=data)), pinger.port)
             for k, t in enumerate((1432917027, 1432917050, 1432917094, 1432917142))]
    res = _run(dp, flows, log, timed)
    assert all(r.reason[0] == DropReason.SG_INGRESS for r in res)
    mine = [x for x in log.text().splitlines()[1:] if x.split()[2] == "eni-1235b8ca123456789"]
    assert mine == ["2 123456789010 eni-1235b8ca123456789 172.31.32.12 172.31.16.139 0 0 1 4 336 "
                    "1432917027 1432917142 REJECT OK"]


# --------------------------------------------------------------------------- TCP flag sequence

FLAG_FORMAT = ("${version} ${vpc-id} ${subnet-id} ${instance-id} ${interface-id} ${account-id} ${type} ${srcaddr} "
               "${dstaddr} ${srcport} ${dstport} ${pkt-srcaddr} ${pkt-dstaddr} ${protocol} ${bytes} ${packets} "
               "${start} ${end} ${action} ${tcp-flags} ${log-status}")


def test_tcp_flag_sequence_matches_awss_records():
    """AWS's *TCP flag sequence* example (a version-3 custom format): two connections from a client
    to a server on port 5001 (client ports 43416 and 43418).  In the first window the server's
    interface logs each SYN (2) received and each SYN-ACK (18) sent -- ACK and PSH are not reported --
    with AWS's packets and bytes (8/568, 7/376, 70/100701, 12/632); in the next window the
    connection on 43418 is closed: FIN (1) each way (1219/63388 in, 15774/23294588 out).
    AWS's window times are per interface; here they are the aligned one-minute windows."""
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="vpc-abcdefab012345678")
    srv_sub = vpc.add_subnet("10.0.0.0/24", name="subnet-aaaaaaaa012345678")
    cli_sub = vpc.add_subnet("10.0.8.0/24", name="clients")
    sg = vpc.add_security_group(name="sg-iperf")
    sg.authorize_ingress("tcp", 5001, "0.0.0.0/0")
    server = srv_sub.add_eni("10.0.0.62", name="eni-1235b8ca123456789", security_groups=[sg])
    client = cli_sub.add_eni("10.0.8.42", name="eni-client")
    net.aliases["i-01234567890123456"] = ["eni-1235b8ca123456789"]
    dp = net.compile()
    flows = fv.FlowTable(capacity=1024)
    log = FlowLog(window=60, fields=FLAG_FORMAT, account_id="123456789010")
    w1, w2 = 1566848880, 1566848940           # two aligned one-minute windows

    def leg(sport, n, total, first_flags, flags, to_server, t0, t1, first=40):
        out = []
        for i, size in enumerate(_sizes(n, total, first)):
            t = t0 + ((t1 - t0) * i) // max(n - 1, 1)
            f = first_flags if i == 0 else flags
            src, dst = (client, server) if to_server else (server, client)
            sp, dp_ = (sport, 5001) if to_server else (5001, sport)
            out.append((t, _tcp(src, dst, sp, dp_, f, size), src.port))
        return out

    timed = []
    # window 1: SYN in, SYN-ACK out, data ACKed (ACK/PSH: not reported)
    for sport, n_in, b_in, n_out, b_out in ((43416, 8, 568, 7, 376), (43418, 70, 100701, 12, 632)):
        up = leg(sport, n_in, b_in, 0x02, 0x18, True, w1, w1 + 58)
        down = leg(sport, n_out, b_out, 0x12, 0x10, False, w1, w1 + 58, first=44)
        timed += up + down
    timed.sort(key=lambda x: x[0])                # stable: each connection's packets keep their order
    # window 2: the connection on 43418 closed: data, then FIN each way (FIN+ACK: 1)
    up = leg(43418, 1219, 63388, 0x10, 0x10, True, w2, w2 + 58)
    down = leg(43418, 15774, 23294588, 0x10, 0x18, False, w2, w2 + 58, first=1500)
    up[-1] = (up[-1][0], _tcp(client, server, 43418, 5001, 0x11, len(up[-1][1]) - 14), client.port)
    down[-1] = (down[-1][0], _tcp(server, client, 5001, 43418, 0x11, len(down[-1][1]) - 14), server.port)
    timed2 = sorted(up + down, key=lambda x: x[0])
    res = _run(dp, flows, log, timed)
    # window 2 in batches of many frames at a time (a capture's pace), one batch per second
    for t in range(w2, w2 + 60):
        part = [x for x in timed2 if x[0] == t]
        if part:
            b = fv.FrameBatch.from_frames([fr for _, fr, _ in part], port=[p for _, _, p in part])
            res.append(dp.process(b, state=flows, now=t * NS, log=log))
    assert all((r.action == Action.DELIVER).all() for r in res)
    head = "3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 eni-1235b8ca123456789 123456789010 IPv4"
    mine = [x for x in log.text().splitlines()[1:] if x.split()[4] == "eni-1235b8ca123456789"]
    assert mine == [
        f"{head} 10.0.8.42 10.0.0.62 43416 5001 10.0.8.42 10.0.0.62 6 568 8 {w1} {w1 + 58} ACCEPT 2 OK",
        f"{head} 10.0.0.62 10.0.8.42 5001 43416 10.0.0.62 10.0.8.42 6 376 7 {w1} {w1 + 58} ACCEPT 18 OK",
        f"{head} 10.0.8.42 10.0.0.62 43418 5001 10.0.8.42 10.0.0.62 6 100701 70 {w1} {w1 + 58} ACCEPT 2 OK",
        f"{head} 10.0.0.62 10.0.8.42 5001 43418 10.0.0.62 10.0.8.42 6 632 12 {w1} {w1 + 58} ACCEPT 18 OK",
        f"{head} 10.0.8.42 10.0.0.62 43418 5001 10.0.8.42 10.0.0.62 6 63388 1219 {w2} {w2 + 58} ACCEPT 1 OK",
        f"{head} 10.0.0.62 10.0.8.42 5001 43418 10.0.0.62 10.0.8.42 6 23294588 15774 {w2} {w2 + 58} ACCEPT 1 OK",
    ]


def test_short_connection_flags_or_into_one_record():
    """"For short connections, the flags might be set on the same line in the flow log record, for
    example, 19 for SYN-ACK and FIN, and 3 for SYN and FIN": a whole connection SYN -> SYN-ACK ->
    ACK -> data -> FIN -> FIN -> ACK inside one window."""
    net, server, client = _default_vpc("172.31.0.0/16", "172.31.16.0/20", "172.31.16.21", "172.31.16.139",
                                       ("tcp", 22, "172.31.0.0/16"))
    dp = net.compile()
    flows = fv.FlowTable(capacity=64)
    log = FlowLog(window=60, fields="${interface-id} ${srcport} ${dstport} ${packets} ${tcp-flags} ${flow-direction}")
    c, s = client, server
    seq = [(c, s, 0x02), (s, c, 0x12), (c, s, 0x10), (c, s, 0x18), (s, c, 0x10), (c, s, 0x11), (s, c, 0x11),
           (c, s, 0x10)]
    timed = [(1700000000 + i, _tcp(a, b, 50000 if a is c else 22, 22 if a is c else 50000, f, 60), a.port)
             for i, (a, b, f) in enumerate(seq)]
    res = _run(dp, flows, log, timed)
    assert all(r.action[0] == Action.DELIVER for r in res)
    assert sorted(log.text().splitlines()[1:]) == sorted([
        "eni-client 50000 22 5 3 egress",                     # SYN + FIN
        "eni-1235b8ca123456789 50000 22 5 3 ingress",
        "eni-1235b8ca123456789 22 50000 3 19 egress",         # SYN-ACK + FIN
        "eni-client 22 50000 3 19 ingress",
    ])
