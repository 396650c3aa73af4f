"""The edge's control plane (DESIGN §6; rows #17, #30, #33, #40-#41 of vpc-behaviour.md):
Elastic IPs and their associations, NAT gateways' addressing, gateway route tables, gateway MACs.

Every refused configuration must raise ``TopologyError`` naming the object and the value, and
leave the network as it was.
"""

from __future__ import annotations

import ipaddress

import pytest

from fastvpc.errors import TopologyError
from fastvpc.topology import BLACKHOLE, LOCAL, Address, ElasticIp, Network, is_public


def refused(fn, *needles):
    with pytest.raises(TopologyError) as info:
        fn()
    msg = str(info.value)
    for n in needles:
        assert str(n) in msg, f"{n!r} not named in {msg!r}"
    return info.value


@pytest.fixture
def net():
    return Network()


@pytest.fixture
def vpc(net):
    return net.add_vpc("10.0.0.0/16", name="prod")


@pytest.fixture
def web(vpc):
    return vpc.add_subnet("10.0.1.0/24", name="web")


# --------------------------------------------------------------------------- public addresses

@pytest.mark.parametrize("ip", ["0.1.2.3", "10.0.0.1", "100.64.0.1", "100.127.255.254", "127.0.0.1",
                                "169.254.1.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "224.0.0.1",
                                "239.1.1.1", "240.0.0.1", "255.255.255.255"])
def test_non_public_addresses_are_refused(net, ip):
    refused(lambda: net.allocate_address(ip, name="eip"), "eip", ip, "not a public address")
    assert not is_public(ip)
    assert net.addresses == []
    with pytest.raises(KeyError):
        net.find("eip")


@pytest.mark.parametrize("ip", ["203.0.113.10", "198.51.100.1", "192.0.2.7", "8.8.8.8", "100.63.255.255",
                                "100.128.0.0", "172.15.255.255", "172.32.0.0", "1.0.0.0", "223.255.255.255"])
def test_public_addresses_are_accepted(net, ip):
    eip = net.allocate_address(ip, name="eip")
    assert isinstance(eip, ElasticIp) and Address is ElasticIp
    assert eip.public_ip == ipaddress.IPv4Address(ip) and eip.association is None
    assert is_public(ip) and net.addresses == [eip] and net.find("eip") is eip
    assert net.address_for(ip) is eip


@pytest.mark.parametrize("bad", ["203.0.113.300", "eip", 12345, None, "203.0.113.0/24", "::1"])
def test_malformed_address_is_refused(net, bad):
    refused(lambda: net.allocate_address(bad, name="eip"), repr(bad))


def test_double_allocation_is_refused(net):
    a = net.allocate_address("203.0.113.10", name="a")
    refused(lambda: net.allocate_address("203.0.113.10", name="b"), "b", "203.0.113.10", "already allocated", "a")
    assert net.addresses == [a]
    refused(lambda: net.allocate_address("203.0.113.11", name="a"), "'a'", "already used")


def test_auto_names_are_unique(net):
    a = net.allocate_address("203.0.113.10")
    b = net.allocate_address("203.0.113.11")
    assert a.name != b.name and a.name.startswith("eip-")


# --------------------------------------------------------------------------- ENI associations

def test_associate_and_disassociate(net, web):
    w1 = web.add_eni("10.0.1.10", name="w1")
    eip = net.allocate_address("203.0.113.10", name="eip-web")
    assert w1.public_ip is None
    assert w1.associate_address(eip) is eip
    assert w1.public_ip == ipaddress.IPv4Address("203.0.113.10")
    assert eip.association is w1 and eip.private_ip == w1.ip and w1.address is eip
    w1.associate_address(eip)  # the same pair again: nothing changes
    assert w1.disassociate_address() is eip
    assert w1.public_ip is None and eip.association is None and eip.private_ip is None
    assert w1.disassociate_address() is None
    # by name and by public IP text
    w1.associate_address("eip-web")
    assert w1.address is eip
    w1.disassociate_address()
    w1.associate_address("203.0.113.10")
    assert w1.address is eip


def test_double_association_is_refused(net, web):
    w1, w2 = web.add_eni("10.0.1.10", name="w1"), web.add_eni("10.0.1.11", name="w2")
    a, b = net.allocate_address("203.0.113.10", name="a"), net.allocate_address("203.0.113.11", name="b")
    w1.associate_address(a)
    refused(lambda: w2.associate_address(a), "w2", "a", "203.0.113.10", "already associated", "w1")
    refused(lambda: w1.associate_address(b), "w1", "already has", "a")
    assert w2.public_ip is None and b.association is None and a.association is w1


def test_unknown_address_is_refused(net, web):
    w1 = web.add_eni("10.0.1.10", name="w1")
    refused(lambda: w1.associate_address("203.0.113.99"), "w1", "203.0.113.99", "not an Elastic IP")
    other = Network().allocate_address("203.0.113.10", name="elsewhere")
    refused(lambda: w1.associate_address(other), "elsewhere")
    refused(lambda: w1.associate_address(w1), "w1")


def test_add_eni_public_ip_allocates_and_associates(net, web):
    w1 = web.add_eni("10.0.1.10", name="w1", public_ip="203.0.113.10")
    assert w1.public_ip == ipaddress.IPv4Address("203.0.113.10")
    assert net.addresses == [w1.address] and w1.address.association is w1
    # an existing unassociated Elastic IP object is associated
    eip = net.allocate_address("203.0.113.11", name="e2")
    w2 = web.add_eni("10.0.1.11", name="w2", public_ip=eip)
    assert w2.address is eip


@pytest.mark.parametrize("pip, needles", [("10.1.1.1", ["w9", "10.1.1.1", "not a public"]),
                                          ("203.0.113.10", ["w9", "203.0.113.10", "already allocated"]),
                                          ("nope", ["w9", "nope"])])
def test_add_eni_bad_public_ip_leaves_no_trace(net, web, pip, needles):
    web.add_eni("10.0.1.10", name="w1", public_ip="203.0.113.10")
    before = net.to_dict()
    refused(lambda: web.add_eni("10.0.1.20", name="w9", public_ip=pip), *needles)
    assert net.to_dict() == before
    web.add_eni("10.0.1.20", name="w9")  # the IP and the name are still free


def test_add_eni_with_associated_eip_object_is_refused(net, web):
    w1 = web.add_eni("10.0.1.10", name="w1", public_ip="203.0.113.10")
    refused(lambda: web.add_eni("10.0.1.20", name="w9", public_ip=w1.address), "w9", "already associated", "w1")
    assert len(web.enis) == 1


def test_release(net, web):
    w1 = web.add_eni("10.0.1.10", name="w1", public_ip="203.0.113.10")
    eip = w1.address
    refused(lambda: eip.release(), eip.name, "associated", "w1")
    refused(lambda: net.release_address("203.0.113.10"), "w1")
    assert net.addresses == [eip]
    w1.disassociate_address()
    net.release_address(eip.name)
    assert net.addresses == [] and net.address_for("203.0.113.10") is None
    net.allocate_address("203.0.113.10", name=eip.name)  # both the IP and the name are free again


def test_deleting_an_eni_frees_its_address(net, web):
    w1 = web.add_eni("10.0.1.10", name="w1", public_ip="203.0.113.10")
    eip = w1.address
    w1.delete()
    assert eip.association is None and net.addresses == [eip]
    eip.release()
    assert net.addresses == []


# --------------------------------------------------------------------------- NAT gateways

def test_public_nat_gateway(net, vpc, web):
    eip = net.allocate_address("203.0.113.20", name="eip-nat")
    nat = web.add_nat_gateway(name="nat", address=eip)
    assert nat.connectivity == "public" and nat.address is eip and eip.association is nat
    assert nat.public_ip == eip.public_ip and nat.subnet is web and nat.vpc is vpc
    assert nat.ip in web.cidr and nat.ip not in web.reserved_ips
    assert eip.private_ip == nat.ip
    assert nat.port >= 0 and net.by_port(nat.port) is nat
    assert nat.mac not in {web.gateway_mac}
    # its private IP is taken: no ENI can have it, and no other NAT gateway is given it
    refused(lambda: web.add_eni(str(nat.ip), name="x"), str(nat.ip), "NAT gateway nat")
    other = web.add_nat_gateway(name="nat2", connectivity="private")
    assert other.ip != nat.ip
    assert vpc.eni_for_ip(nat.ip) is None  # a NAT gateway is not an ENI


def test_nat_gateway_ip_given_and_default(net, web):
    web.add_eni("10.0.1.254", name="top")
    nat = web.add_nat_gateway(name="nat", connectivity="private")
    assert nat.ip == ipaddress.IPv4Address("10.0.1.253")  # the highest free address
    n2 = web.add_nat_gateway(name="n2", connectivity="private", ip="10.0.1.50")
    assert n2.ip == ipaddress.IPv4Address("10.0.1.50")
    refused(lambda: web.add_nat_gateway(name="n3", connectivity="private", ip="10.0.1.50"), "10.0.1.50")
    refused(lambda: web.add_nat_gateway(name="n3", connectivity="private", ip="10.0.1.255"), "10.0.1.255",
            "reserved")
    refused(lambda: web.add_nat_gateway(name="n3", connectivity="private", ip="10.0.2.5"), "10.0.2.5", "outside")


def test_full_subnet_refuses_a_nat_gateway(net, vpc):
    s = vpc.add_subnet("10.0.9.0/28", name="tiny")
    for k in range(4, 15):
        s.add_eni(f"10.0.9.{k}")
    refused(lambda: s.add_nat_gateway(name="nat", connectivity="private"), "nat", "tiny", "no free IP")
    assert s.nat_gateways == []


def test_private_nat_gateway(net, web):
    natp = web.add_nat_gateway(name="natp", connectivity="private")
    assert natp.connectivity == "private" and natp.address is None and natp.public_ip is None
    eip = net.allocate_address("203.0.113.20", name="eip")
    refused(lambda: natp.associate_address(eip), "natp", "private")
    refused(lambda: web.add_nat_gateway(name="n2", connectivity="private", address=eip), "n2", "private", "eip")
    assert eip.association is None


def test_public_nat_gateway_needs_an_address(net, web):
    refused(lambda: web.add_nat_gateway(name="nat", connectivity="public"), "nat", "needs an Elastic IP")
    refused(lambda: web.add_nat_gateway(name="nat", connectivity="sideways"), "nat", "sideways")
    assert web.nat_gateways == []


def test_nat_gateway_address_refusals(net, web):
    w1 = web.add_eni("10.0.1.10", name="w1", public_ip="203.0.113.10")
    refused(lambda: web.add_nat_gateway(name="nat", address=w1.address), "nat", "already associated", "w1")
    refused(lambda: web.add_nat_gateway(name="nat", address="203.0.113.99"), "nat", "203.0.113.99")
    assert web.nat_gateways == []
    eip = net.allocate_address("203.0.113.20", name="e")
    nat = web.add_nat_gateway(name="nat", address="e")  # by name
    refused(lambda: w1.disassociate_address() and w1.associate_address(eip), "w1", "nat")


def test_nat_gateway_without_address_gets_one_later(net, web):
    nat = web.add_nat_gateway(name="nat")  # as before the edge was modelled
    assert nat.connectivity == "public" and nat.address is None and nat.ip in web.cidr
    eip = net.allocate_address("203.0.113.20", name="e")
    nat.associate_address(eip)
    assert nat.public_ip == eip.public_ip
    refused(lambda: nat.associate_address(net.allocate_address("203.0.113.21")), "nat", "already has")


def test_nat_gateway_without_subnet(net, vpc):
    nat = vpc.add_nat_gateway("nat")
    assert nat.ip is None and nat.subnet is None and nat.mac
    refused(lambda: vpc.add_nat_gateway("n2", ip="10.0.1.5"), "n2", "10.0.1.5", "needs a subnet")


def test_deleting_a_nat_gateway_frees_its_ip_mac_and_address(net, vpc, web):
    eip = net.allocate_address("203.0.113.20", name="e")
    nat = web.add_nat_gateway(name="nat", address=eip, mac="12:34:56:78:9a:bc")
    ip = nat.ip
    rt = vpc.main_route_table
    rt.add_route("0.0.0.0/0", nat)
    nat.delete()
    assert eip.association is None and rt.route("0.0.0.0/0").target is BLACKHOLE
    web.add_eni(str(ip), name="x", mac="12:34:56:78:9a:bc")  # IP and MAC are free
    eip.release()


def test_deleting_a_subnet_deletes_its_nat_gateways(net, vpc, web):
    eip = net.allocate_address("203.0.113.20", name="e")
    web.add_nat_gateway(name="nat", address=eip)
    web.delete()
    assert vpc.nat_gateways == [] and eip.association is None


# --------------------------------------------------------------------------- gateway MACs

def test_every_gateway_has_a_unique_deterministic_mac(net, vpc, web):
    other = net.add_vpc("10.1.0.0/16", name="other")

    def build():
        n = Network()
        v = n.add_vpc("10.0.0.0/16", name="prod")
        o = n.add_vpc("10.1.0.0/16", name="other")
        s = v.add_subnet("10.0.1.0/24", name="web")
        gws = [v.add_internet_gateway("igw"), v.add_vpn_gateway("vgw"),
               s.add_nat_gateway(name="nat", connectivity="private"), v.add_endpoint("vpce"),
               v.add_transit_gateway("tgw"), n.add_peering(v, o, "pcx")]
        return n, gws

    n1, g1 = build()
    n2, g2 = build()
    macs = [g.mac for g in g1]
    assert macs == [g.mac for g in g2]  # deterministic
    assert len(set(macs)) == len(macs)
    assert not set(macs) & {s.gateway_mac for s in n1.subnets}
    for m in macs:
        first = int(m[:2], 16)
        assert first & 2 and not first & 1  # locally administered unicast
    # an ENI cannot take a gateway's MAC
    s = n1.find("web")
    refused(lambda: s.add_eni("10.0.1.10", mac=macs[0]), macs[0], "igw")
    del other


def test_gateway_mac_given_and_changed(net, vpc, web):
    igw = vpc.add_internet_gateway("igw", mac="0A:00:00:00:00:01")
    assert igw.mac == "0a:00:00:00:00:01"
    refused(lambda: vpc.add_vpn_gateway("vgw", mac="0a:00:00:00:00:01"), "vgw", "0a:00:00:00:00:01", "igw")
    refused(lambda: vpc.add_vpn_gateway("vgw", mac="01:00:5e:00:00:01"), "vgw", "multicast")
    refused(lambda: vpc.add_vpn_gateway("vgw", mac="zz"), "vgw", "zz")
    assert vpc.vpn_gateways == []
    vgw = vpc.add_vpn_gateway("vgw")
    igw.mac = "0a:00:00:00:00:02"
    web.add_eni("10.0.1.10", mac="0a:00:00:00:00:01")  # the old MAC is free again
    with pytest.raises(TopologyError, match="vgw"):
        igw.mac = vgw.mac
    with pytest.raises(TopologyError, match="not a MAC"):
        igw.mac = "nope"
    assert igw.mac == "0a:00:00:00:00:02"
    igw.delete()
    web.add_eni("10.0.1.11", mac="0a:00:00:00:00:02")


def test_gateway_ports_unchanged(net, vpc):
    igw = vpc.add_internet_gateway("igw", port=7)
    assert igw.port == 7 and net.by_port(7) is igw


# --------------------------------------------------------------------------- gateway route tables

@pytest.fixture
def edge(net, vpc, web):
    app = vpc.add_subnet("10.0.2.0/24", name="app")
    fw = app.add_eni("10.0.2.5", name="fw", source_dest_check=False, public_ip="203.0.113.5")
    igw = vpc.add_internet_gateway("igw")
    vgw = vpc.add_vpn_gateway("vgw")
    rt = vpc.add_route_table("edge")
    gwlbe = vpc.add_endpoint("gwlbe", endpoint_type="gatewayloadbalancer")
    app.add_nat_gateway(name="natp", connectivity="private")
    return rt, igw, vgw, fw, gwlbe


def test_gateway_route_table_association(vpc, edge):
    rt, igw, vgw, fw, gwlbe = edge
    assert igw.route_table is None and rt.gateways == []
    rt.associate_gateway(igw)
    rt.add_route("10.0.1.0/24", fw)
    rt.add_route("10.0.2.0/24", gwlbe)
    rt.replace_route("10.0.0.0/16", fw)  # the whole VPC CIDR: the local route pointed at the appliance
    assert igw.route_table is rt and rt.gateways == [igw] and rt.is_gateway_table
    rt.associate_gateway(igw)  # again: nothing changes
    rt.disassociate_gateway(igw)
    assert igw.route_table is None and rt.gateways == []


@pytest.mark.parametrize("route, needles", [
    (("0.0.0.0/0", "fw"), ["0.0.0.0/0", "edge", "destination must be"]),
    (("10.0.1.0/25", "fw"), ["10.0.1.0/25"]),
    (("192.0.2.0/24", "fw"), ["192.0.2.0/24", "destination must be"]),
    (("10.0.1.0/24", "natp"), ["natp", "target must be local, an ENI or a Gateway Load Balancer endpoint"]),
])
def test_gateway_route_table_refuses_routes(vpc, edge, route, needles):
    rt, igw, vgw, fw, gwlbe = edge
    rt.associate_gateway(igw)
    dest, tname = route
    before = [(r.destination, r.target) for r in rt.routes]
    refused(lambda: rt.add_route(dest, vpc.network.find(tname)), *needles)
    assert [(r.destination, r.target) for r in rt.routes] == before


def test_gateway_route_table_refuses_propagated_and_prefix_list_routes(vpc, edge):
    rt, igw, vgw, fw, gwlbe = edge
    rt.associate_gateway(igw)
    refused(lambda: rt.add_route("10.0.1.0/24", fw, origin="propagated"), "propagated")
    refused(lambda: rt.add_route("10.0.1.0/24", fw, origin="prefix-list", prefix_list="pl-1"), "prefix-list")


def test_association_checks_existing_routes(vpc, edge):
    rt, igw, vgw, fw, gwlbe = edge
    rt.add_route("0.0.0.0/0", igw)
    refused(lambda: rt.associate_gateway(igw), "0.0.0.0/0", "edge", "igw")
    assert igw.route_table is None
    rt.remove_route("0.0.0.0/0")
    rt.associate_gateway(igw)


def test_replacing_a_route_keeps_the_rules(vpc, edge):
    rt, igw, vgw, fw, gwlbe = edge
    rt.associate_gateway(igw)
    rt.add_route("10.0.1.0/24", fw)
    refused(lambda: rt.replace_route("10.0.1.0/24", "natp"), "natp", "target must be")
    assert rt.route("10.0.1.0/24").target is fw
    rt.replace_route("10.0.0.0/16", fw)
    rt.replace_route("10.0.0.0/16", LOCAL)


def test_vgw_table_cannot_target_a_gwlb_endpoint(vpc, edge):
    rt, igw, vgw, fw, gwlbe = edge
    rt.add_route("10.0.1.0/24", gwlbe)
    refused(lambda: rt.associate_gateway(vgw), "VPN gateway", "Gateway Load Balancer", "gwlbe")
    rt.associate_gateway(igw)
    refused(lambda: rt.associate_gateway(vgw), "gwlbe")
    rt.remove_route("10.0.1.0/24")
    rt.associate_gateway(vgw)
    assert rt.gateways == [igw, vgw]
    refused(lambda: rt.add_route("10.0.1.0/24", gwlbe), "gwlbe")


def test_main_table_and_other_refusals(net, vpc, edge):
    rt, igw, vgw, fw, gwlbe = edge
    refused(lambda: vpc.main_route_table.associate_gateway(igw), vpc.main_route_table.name, "main")
    refused(lambda: rt.associate_gateway(fw), "fw", "not an internet or VPN gateway")
    refused(lambda: rt.associate_gateway(gwlbe), "gwlbe", "not an internet or VPN gateway")
    other = net.add_vpc("10.1.0.0/16", name="other")
    oigw = other.add_internet_gateway("oigw")
    refused(lambda: rt.associate_gateway(oigw), "oigw", "other")
    rt.associate_gateway(igw)
    rt2 = vpc.add_route_table("edge2")
    refused(lambda: rt2.associate_gateway(igw), "igw", "already associated", "edge")
    refused(lambda: vpc.set_main_route_table(rt), "edge", "cannot be main")
    refused(lambda: rt.delete(), "edge", "igw")
    rt.disassociate_gateway()
    rt.delete()


def test_deleting_the_gateway_drops_the_association(vpc, edge):
    rt, igw, vgw, fw, gwlbe = edge
    rt.associate_gateway(igw)
    igw.delete()
    assert rt.gateways == []
    rt.add_route("0.0.0.0/0", vgw)  # no longer a gateway table
    rt.delete()


def test_deleting_the_target_eni_leaves_a_blackhole(vpc, edge):
    rt, igw, vgw, fw, gwlbe = edge
    rt.associate_gateway(igw)
    rt.add_route("10.0.1.0/24", fw)
    fw.delete()
    assert rt.route("10.0.1.0/24").target is BLACKHOLE


# --------------------------------------------------------------------------- compile still works

def test_compile_with_edge_objects(net, vpc, web, edge):
    rt, igw, vgw, fw, gwlbe = edge
    rt.associate_gateway(igw)
    rt.add_route("10.0.1.0/24", fw)
    eip = net.allocate_address("203.0.113.30", name="eip-nat")
    nat = web.add_nat_gateway(name="nat", address=eip)
    vpc.main_route_table.add_route("0.0.0.0/0", nat)
    dp = net.compile()
    assert dp is not None


def test_deleting_a_vpc_frees_the_address_of_a_subnetless_nat_gateway(net, vpc):
    eip = net.allocate_address("203.0.113.20", name="e")
    vpc.add_nat_gateway("nat", address=eip)
    net.remove(vpc)
    assert eip.association is None and net.addresses == [eip]


# --------------------------------------------------------------------------- random operations keep the invariants

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

OPS = st.lists(st.tuples(st.integers(0, 9), st.integers(0, 50), st.integers(0, 50)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(OPS)
def test_random_edge_operations_keep_the_invariants(ops):
    from fastvpc import files

    net = Network()
    vpc = net.add_vpc("10.0.0.0/16", name="prod")
    subnets = [vpc.add_subnet(f"10.0.{k}.0/28", name=f"s{k}") for k in range(3)]
    igw, vgw = vpc.add_internet_gateway("igw"), vpc.add_vpn_gateway("vgw")
    tables = [vpc.add_route_table(f"rt{k}") for k in range(2)]

    def attempt(fn, *a, **kw):
        try:
            return fn(*a, **kw)
        except TopologyError:
            return None

    for op, x, y in ops:
        enis, nats, eips = net.enis, vpc.nat_gateways, net.addresses
        if op == 0:
            attempt(net.allocate_address, f"203.0.113.{x}")
        elif op == 1 and enis and eips:
            attempt(enis[x % len(enis)].associate_address, eips[y % len(eips)])
        elif op == 2 and enis:
            enis[x % len(enis)].disassociate_address()
        elif op == 3 and eips:
            attempt(eips[x % len(eips)].release)
        elif op == 4:
            s = subnets[x % 3]
            attempt(s.add_eni, str(s.cidr.network_address + 4 + y % 11),
                    public_ip=f"198.51.100.{y}" if y % 2 else None)
        elif op == 5:
            s = subnets[x % 3]
            free = [a for a in eips if a.association is None]
            attempt(s.add_nat_gateway, connectivity="private" if y % 3 == 0 else None,
                    address=free[0] if free and y % 3 == 1 else None)
        elif op == 6 and (enis or nats):
            objs = [*enis, *nats]
            attempt(objs[x % len(objs)].delete)
        elif op == 7:
            rt = tables[x % 2]
            attempt(rt.associate_gateway, igw if y % 2 else vgw)
        elif op == 8:
            rt = tables[x % 2]
            targets = [*enis, *vpc.endpoints]
            if targets:
                attempt(rt.add_route, subnets[y % 3].cidr, targets[y % len(targets)])
            else:
                attempt(rt.add_route, "0.0.0.0/0", igw)
        elif op == 9:
            tables[x % 2].disassociate_gateway()

    # every address has at most one owner, and the owner points back at it
    owners = [o for o in [*net.enis, *vpc.nat_gateways] if o.address is not None]
    assert len({id(o.address) for o in owners}) == len(owners)
    for o in owners:
        assert o.address.association is o and o.address in net.addresses
        assert o.public_ip == o.address.public_ip
    for a in net.addresses:
        assert a.association is None or a.association.address is a
        assert net.address_for(a.public_ip) is a
    assert len({a.public_ip for a in net.addresses}) == len(net.addresses)
    # no private IP is held twice (ENIs and NAT gateways), and every NAT IP is in its subnet
    held = [ip for e in net.enis for ip in e.ips] + [n.ip for n in vpc.nat_gateways if n.ip is not None]
    assert len(held) == len(set(held))
    for n in vpc.nat_gateways:
        assert n.ip in n.subnet.cidr and n.ip not in n.subnet.reserved_ips
        assert (n.connectivity == "private") <= (n.address is None)
    # every MAC once
    macs = [e.mac for e in net.enis] + [g.mac for g in net.targets if not hasattr(g, "subnet") or g.kind == "nat"]
    macs += [s.gateway_mac for s in net.subnets]
    assert len(macs) == len(set(macs))
    # gateway tables hold only what #41 allows, and are never main
    for rt in vpc.route_tables:
        if rt.gateways:
            assert not rt.is_main
            for r in rt.routes:
                assert r.destination in vpc.cidrs or any(s.cidr == r.destination for s in vpc.subnets)
                assert r.target is LOCAL or r.target is BLACKHOLE or r.target.kind in ("eni", "vpce")
    # and the files keep all of it
    assert files.loads(files.dumps(net, "json"), "json") == net


def test_a_bad_nat_connectivity_names_the_nat_gateway_and_the_value(net, web):
    e = refused(lambda: web.add_nat_gateway(name="natx", connectivity="internet"), "NAT gateway natx", "'internet'")
    assert e.obj == "natx" and e.value == "internet"
    refused(lambda: web.add_nat_gateway(connectivity=3), "NAT gateway", "3", "'public' or 'private'")
    assert web.nat_gateways == []
