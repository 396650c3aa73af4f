"""``Dataplane.tracking_identities()`` names the owners of a FlowTable's entries: the ENI of each
tracked flow and the NAT gateway of each binding, the same for every snapshot of one network."""

from __future__ import annotations

import pickle

import fastvpc as fv
from fastvpc import packets as pk
from nat_net import nat_network


def _net() -> fv.Network:
    w = nat_network()
    w.web.add_eni("10.0.1.10", name="w1", public_ip="203.0.113.10")
    w.app.add_eni("10.0.2.10", name="a1")
    return w.net


def test_flows_and_bindings_map_back_to_their_owners():
    net = _net()
    dp = net.compile()
    w1, a1 = net.find("w1"), net.find("a1")
    frames = [pk.ethernet(w1.subnet.gateway_mac, w1.mac, pk.ETH_IPV4, pk.tcp(w1.ip, "8.8.8.8", 40000, 443)),
              pk.ethernet(a1.subnet.gateway_mac, a1.mac, pk.ETH_IPV4, pk.tcp(a1.ip, "8.8.8.8", 40001, 443))]
    table = fv.FlowTable(1000)
    res = dp.process(fv.FrameBatch.from_frames(frames, port=[w1.port, a1.port]), state=table, now=10**9)
    assert [fv.Action(a) for a in res.action] == [fv.Action.FORWARD, fv.Action.FORWARD]
    names = dp.tracking_identities()
    owners = {names[int(e)] for e in table.flows()["eni"]}
    assert owners == {"w1", "a1"}
    assert {names[int(n)] for n in table.nat_bindings()["nat"]} == {"nat"}
    # names only: a recompile, a pickle and a changed network keep every identity
    again = pickle.loads(pickle.dumps(net.compile(filters=False)))
    assert again.tracking_identities() == names
    net.find("app").add_eni("10.0.2.20", name="a2")
    grown = net.compile().tracking_identities()
    assert {k: v for k, v in grown.items() if v != "a2"} == names and "a2" in grown.values()
    assert "nat" not in net.compile(edge=False).tracking_identities().values()   # no NAT bindings without the edge


# --------------------------------------------------------------------------- clashes (DESIGN §5)

import copy

import pytest

import hashlib


def plain_identity(name: str) -> int:      # written out: fastvpc.topology.identities.plain_identity
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "little")


def plain_nat_identity(vpc: str, name: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{vpc}/{name}".encode(), digest_size=4, person=b"fastvpc-natgw").digest(),
                          "little")


SYN, SYNACK, ACK, PSH_ACK = 0x02, 0x12, 0x10, 0x18
S = 10**9
# (newcomer, existing): names whose plain identities (BLAKE2b, 4 bytes) are equal, the newcomer
# sorting first (a set of names resolved in name order would give it the plain value)
CLASHES = [("e26151", "e73069"), ("eni-130299", "eni-37209")]


def _tcp(src: fv.Eni, dst: fv.Eni, sport: int, dport: int, flags: int) -> bytes:
    return pk.ethernet(src.subnet.gateway_mac, src.mac, pk.ETH_IPV4,
                       pk.tcp(src.ip, dst.ip, sport, dport, flags=flags, payload=b"x" if flags == PSH_ACK else b""))


def _client_server() -> tuple[fv.Network, fv.Subnet]:
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v")
    web, app = vpc.add_subnet("10.0.1.0/24", name="web"), vpc.add_subnet("10.0.2.0/24", name="app")
    vpc.add_subnet("10.0.3.0/24", name="db")
    client = vpc.add_security_group(name="client")                   # egress all, no ingress
    server = vpc.add_security_group(name="server")
    server.revoke_egress("all", None, "0.0.0.0/0")                  # replies only as tracked flows
    server.authorize_ingress("tcp", 22, "10.0.1.0/24")
    web.add_eni("10.0.1.10", name="c1", security_groups=[client])
    return net, app


def _run(dp: fv.Dataplane, frames: list[tuple[bytes, fv.Eni]], table: fv.FlowTable, now: int) -> list[fv.Action]:
    import numpy as np

    b = fv.FrameBatch.from_frames([f for f, _ in frames], port=[e.port for _, e in frames])
    b = fv.FrameBatch(b.data, b.offsets, b.port, np.full(len(frames), now, dtype=np.int64))
    return [fv.Action(a) for a in dp.process(b, state=table, now=now).action]


def test_the_names_clash():
    for a, b in CLASHES:
        assert plain_identity(a) == plain_identity(b) and a < b


@pytest.mark.parametrize("newcomer, existing", CLASHES)
def test_a_clashing_newcomer_takes_no_identity_and_no_flow_of_an_existing_eni(newcomer, existing):
    net, app = _client_server()
    c1, srv = net.find("c1"), app.add_eni("10.0.2.10", name=existing, security_groups=[net.find("server")])
    dp = net.compile()
    table = fv.FlowTable(100)
    opened = [(_tcp(c1, srv, 40000, 22, SYN), c1), (_tcp(srv, c1, 22, 40000, SYNACK), srv),
              (_tcp(c1, srv, 40000, 22, ACK), c1)]
    assert _run(dp, opened, table, S) == [fv.Action.DELIVER] * 3
    before = dp.tracking_identities()
    assert before[plain_identity(existing)] == existing
    net.find("db").add_eni("10.0.3.10", name=newcomer)               # sorts first, same plain identity
    dp2 = net.compile()
    after = dp2.tracking_identities()
    assert {k: v for k, v in after.items() if v != newcomer} == before   # nobody's identity moved
    assert after[plain_identity(existing)] == existing
    assert len(after) == len(set(after.values())) == 3
    # the server's reply is still a tracked flow of the server (its group has no egress rule)
    assert _run(dp2, [(_tcp(srv, c1, 22, 40000, PSH_ACK), srv)], table, 2 * S) == [fv.Action.DELIVER]
    assert {after[int(e)] for e in table.flows()["eni"]} == {"c1", existing}


def test_tracking_identities_are_the_compiled_ones():
    net, app = _client_server()
    app.add_eni("10.0.2.10", name="e73069")
    app.add_eni("10.0.2.11", name="e26151")                           # salted: the plain value is held
    for dp in (net.compile(), pickle.loads(pickle.dumps(net.compile())), net.compile(filters=False)):
        names = dp.tracking_identities()
        compiled = dict(zip(net.compile().eni_names, net.compile().eni_filt["ident"].tolist()))
        assert {v: k for k, v in names.items()} == compiled
        assert names[plain_identity("e73069")] == "e73069" and "e26151" in names.values()


def test_a_deleted_enis_identity_is_never_given_to_another_name():
    net, app = _client_server()
    old = app.add_eni("10.0.2.10", name="e73069")
    ident = dict(zip(net.compile().eni_names, net.compile().eni_filt["ident"].tolist()))["e73069"]
    old.delete()                                    # a FlowTable may still hold its flows
    app.add_eni("10.0.2.11", name="e26151")
    ids = net.compile().tracking_identities()
    assert ident not in ids and ids[next(k for k, v in ids.items() if v == "e26151")] == "e26151"
    back = app.add_eni("10.0.2.12", name="e73069")  # the same name again: the same identity
    assert net.compile().tracking_identities()[ident] == back.name


def test_pickles_and_copies_of_a_network_keep_its_identities():
    net, app = _client_server()
    app.add_eni("10.0.2.10", name="e73069")
    net.compile()
    for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        other.find("db").add_eni("10.0.3.10", name="e26151")
        ids = other.compile().tracking_identities()
        assert ids[plain_identity("e73069")] == "e73069"


def test_a_network_pickled_before_the_memo_gets_the_identities_it_was_compiled_with():
    net, app = _client_server()
    app.add_eni("10.0.2.10", name="e73069")
    app.add_eni("10.0.2.11", name="e26151")
    del net.__dict__["_tracking"]                   # what an older pickle holds
    from fastvpc.compiler.filters import eni_identities

    dp = net.compile()
    assert dp.eni_filt["ident"].tolist() == eni_identities(list(dp.eni_names)).tolist()   # names in order


def test_nat_gateway_and_eni_identities_never_meet():
    # the plain identity of NAT gateway prod/nat40362 is the plain identity of ENI e75024
    assert plain_nat_identity("prod", "nat40362") == plain_identity("e75024")
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="prod")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    nat = web.add_nat_gateway(name="nat40362", address=net.allocate_address("203.0.113.30"))
    eni = web.add_eni("10.0.1.10", name="e75024")
    ids = net.compile().tracking_identities()
    assert sorted(ids.values()) == ["e75024", "nat40362"]          # both named: the values differ
    assert ids[plain_nat_identity("prod", "nat40362")] == nat.name  # the first keeps the plain value
    assert ids[plain_identity(eni.name)] != eni.name
