"""Flow-log records of traffic that enters the VPC through a gateway and is dropped inside (DESIGN §7: a
record on each ENI the packet passed, ACCEPT or REJECT from the SG / NACL verdicts).

A frame entering on an internet, VPN or transit gateway's port has no sender ENI, and a dropped frame is
left as it came (an internet gateway's Elastic IP still in it): the log must still find the receiver the
filters refused it at (by the gateway route table's route, else the owner of the destination in the VPC
the frame entered) and show the address inside, as the ACCEPTed frame's record does.
"""

from __future__ import annotations

import fastvpc as fv
from fastvpc import packets as pk
from fastvpc.verdicts import Action, DropReason

T0 = 1_700_000_040 * 10**9          # a multiple of 60 s
OUTSIDE_MAC = "00:11:22:33:44:55"
FIELDS = "${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr} ${flow-direction} ${action}"


def _net(open_sg: bool) -> dict:
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="prod")
    pub = vpc.add_subnet("10.0.0.0/24", name="pub")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    priv = vpc.add_subnet("10.0.2.0/24", name="priv")
    app = vpc.add_subnet("10.0.3.0/24", name="app")
    igw = vpc.add_internet_gateway(name="igw")
    vgw = vpc.add_vpn_gateway(name="vgw")
    sg = vpc.add_security_group(name="sg")
    if open_sg:
        sg.authorize_ingress("all", None, "0.0.0.0/0")
    rt_pub = vpc.add_route_table(name="rt-pub", routes=[("0.0.0.0/0", igw)])
    pub.associate(rt_pub)
    web.associate(rt_pub)
    nat = pub.add_nat_gateway(name="nat", address=net.allocate_address("203.0.113.20", name="eip-nat"))
    priv.associate(vpc.add_route_table(name="rt-priv", routes=[("0.0.0.0/0", nat)]))
    w1 = web.add_eni("10.0.1.10", name="web1", security_groups=[sg])
    w1.associate_address(net.allocate_address("203.0.113.10", name="eip-web"))
    w2 = web.add_eni("10.0.1.20", name="web2", security_groups=[sg])
    p1 = priv.add_eni("10.0.2.10", name="priv1", security_groups=[sg])
    fw = app.add_eni("10.0.3.50", name="fw", source_dest_check=False, security_groups=[sg])
    return dict(net=net, vpc=vpc, igw=igw, vgw=vgw, w1=w1, w2=w2, p1=p1, fw=fw, app=app, priv=priv)


def _syn(gw, dst: str, dport: int = 22) -> bytes:
    return pk.ethernet(gw.mac, OUTSIDE_MAC, pk.ETH_IPV4, pk.tcp("198.51.100.10", dst, 5555, dport, b"", flags=0x02))


def _run(dp, frames: list[tuple[bytes, int]], state=None, now: int = T0, log=None):
    log = log if log is not None else fv.FlowLog(window=60, fields=FIELDS)
    res = dp.process(fv.FrameBatch.from_frames([f for f, _ in frames], port=[p for _, p in frames]),
                     state=state if state is not None else fv.FlowTable(capacity=1000), now=now, log=log)
    return res, [" ".join(str(v) for v in r) for r in log.records()]


def test_internet_inbound_refused_by_the_receivers_group_is_its_reject_record():
    for open_sg, action, reason in ((True, Action.DELIVER, DropReason.NONE), (False, Action.DROP, DropReason.SG_INGRESS)):
        t = _net(open_sg)
        res, recs = _run(t["net"].compile(), [(_syn(t["igw"], "203.0.113.10"), t["igw"].port)])
        assert (res.action[0], res.reason[0]) == (action, reason)
        # the same record but for the verdict: the receiver's private address, as the IGW translated it
        verdict = "ACCEPT" if open_sg else "REJECT"
        assert recs == [f"web1 198.51.100.10 10.0.1.10 198.51.100.10 10.0.1.10 ingress {verdict}"]


def test_vpn_and_transit_inbound_refused_by_group_or_acl_are_logged_at_the_receiver():
    t = _net(False)
    vpc, net = t["vpc"], t["net"]
    other = net.add_vpc("10.9.0.0/16", name="other")
    osub = other.add_subnet("10.9.1.0/24", name="osub")
    osub.add_eni("10.9.1.10", name="o1")                   # the other VPC's default group: no ingress from outside
    tgw = vpc.add_transit_gateway(name="tgw")
    tgw.attach(other)
    acl = vpc.add_network_acl(name="app-acl")
    acl.add_entry(100, "egress", "allow", "all", None, "0.0.0.0/0")   # ingress: only the implicit deny
    t["app"].associate_network_acl(acl)
    t["fw"].security_groups = [vpc.default_security_group]
    vpc.default_security_group.authorize_ingress("all", None, "0.0.0.0/0")
    dp = net.compile()
    res, recs = _run(dp, [(_syn(t["vgw"], "10.0.1.20"), t["vgw"].port)])
    assert res.reason[0] == DropReason.SG_INGRESS
    assert recs == ["web2 198.51.100.10 10.0.1.20 198.51.100.10 10.0.1.20 ingress REJECT"]
    res, recs = _run(dp, [(_syn(t["vgw"], "10.0.3.50"), t["vgw"].port)])
    assert res.reason[0] == DropReason.NACL_INGRESS
    assert recs == ["fw 198.51.100.10 10.0.3.50 198.51.100.10 10.0.3.50 ingress REJECT"]
    res, recs = _run(dp, [(_syn(tgw, "10.0.1.20"), tgw.port)])
    assert res.reason[0] == DropReason.SG_INGRESS
    assert recs == ["web2 198.51.100.10 10.0.1.20 198.51.100.10 10.0.1.20 ingress REJECT"]
    # the transit gateway's frame enters the attached VPC whose CIDR holds the destination
    res, recs = _run(dp, [(_syn(tgw, "10.9.1.10"), tgw.port)])
    assert res.reason[0] == DropReason.SG_INGRESS
    assert recs == ["o1 198.51.100.10 10.9.1.10 198.51.100.10 10.9.1.10 ingress REJECT"]


def test_gateway_route_table_reject_shows_the_translated_destination():
    for open_sg in (True, False):
        t = _net(open_sg)
        rt = t["vpc"].add_route_table(name="edge")
        rt.associate_gateway(t["igw"])
        rt.add_route("10.0.1.0/24", t["fw"])               # inbound for web passes the firewall ENI
        res, recs = _run(t["net"].compile(), [(_syn(t["igw"], "203.0.113.10"), t["igw"].port)])
        assert res.route[0] >= 0
        assert res.action[0] == (Action.DELIVER if open_sg else Action.DROP)
        verdict = "ACCEPT" if open_sg else "REJECT"
        assert recs == [f"fw 198.51.100.10 10.0.3.50 198.51.100.10 10.0.1.10 ingress {verdict}"]


def test_unsolicited_internet_frame_to_a_nat_gateway_shows_its_private_address():
    t = _net(True)
    dp = t["net"].compile()
    flows = fv.FlowTable(capacity=1000)
    log = fv.FlowLog(window=60, fields=FIELDS)
    p1, igw = t["p1"], t["igw"]
    out = pk.ethernet(t["priv"].gateway_mac, p1.mac, pk.ETH_IPV4, pk.udp("10.0.2.10", "8.8.8.8", 5000, 53))
    _run(dp, [(out, p1.port)], state=flows, log=log)
    back = pk.ethernet(igw.mac, OUTSIDE_MAC, pk.ETH_IPV4, pk.udp("8.8.8.8", "203.0.113.20", 53, 5000))
    stray = pk.ethernet(igw.mac, OUTSIDE_MAC, pk.ETH_IPV4, pk.udp("8.8.8.8", "203.0.113.20", 53, 6000))
    res, recs = _run(dp, [(back, igw.port), (stray, igw.port)], state=flows, now=T0 + 10**9, log=log)
    assert res.action[0] == Action.DELIVER
    assert (res.action[1], res.reason[1]) == (Action.DROP, DropReason.NAT_NO_BINDING)
    nat_in = sorted(r for r in recs if r.startswith("nat ") and " ingress " in r)
    # the reply's and the stray frame's records at the NAT gateway's interface: its private address
    assert "nat 8.8.8.8 10.0.0.254 8.8.8.8 10.0.0.254 ingress ACCEPT" in nat_in
    assert not any("203.0.113.20" in r for r in recs)


def test_frames_from_enis_and_accepted_frames_are_unchanged():
    # the path for frames of ENIs is not the gateway path: a refusal between ENIs keeps both records
    t = _net(False)
    w1, w2 = t["w1"], t["w2"]
    f = pk.ethernet(w2.mac, w1.mac, pk.ETH_IPV4, pk.tcp("10.0.1.10", "10.0.1.20", 5555, 22, b"", flags=0x02))
    res, recs = _run(t["net"].compile(), [(f, w1.port)])
    assert res.reason[0] == DropReason.SG_INGRESS
    assert recs == ["web1 10.0.1.10 10.0.1.20 10.0.1.10 10.0.1.20 egress ACCEPT",
                    "web2 10.0.1.10 10.0.1.20 10.0.1.10 10.0.1.20 ingress REJECT"]


def test_a_transit_gateway_attached_to_nothing_logs_nothing_and_does_not_fail():
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v")
    vpc.add_subnet("10.0.1.0/24", name="s").add_eni("10.0.1.10", name="e1")
    tgw = net.add_transit_gateway(name="tgw")             # a network's transit gateway, attached to no VPC
    res, recs = _run(net.compile(), [(_syn(tgw, "10.0.1.10"), tgw.port)])
    assert res.action[0] == Action.DROP and recs == []
