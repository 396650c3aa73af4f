"""Unpickling a Dataplane checks every index and hash invariant before the kernel reads a table.

Regression for the adversarial run's finding: one flipped index in a pickled snapshot (an ENI's
subnet, a delivery record's subnet, a route target's ENI or peer VPC, a subnet's table or VPC,
``table_base``, a hash value) made ``process()`` read out of bounds or silently change verdicts,
and a hash table without an empty slot made the kernel spin forever with the GIL released.
"""

from __future__ import annotations

import copyreg
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastvpc as fv
from fastvpc import packets as pk
from fastvpc.compiler import ROUTE_ENI, ROUTE_NAT, ROUTE_PEERING
from fastvpc.dataplane import _rebuild, _validate
from fastvpc.errors import FastVpcError, SnapshotError
from nat_net import nat_network

RICH = """
import fastvpc as fv
from fastvpc import packets as pk


def rich_network(sparse_ports=False):
    net = fv.Network()
    a = net.add_vpc("10.0.0.0/16", "a")
    b = net.add_vpc("10.1.0.0/16", "b")
    pcx = net.add_peering(a, b, "pcx")
    igw = a.add_internet_gateway("igw")
    sa = a.add_subnet("10.0.1.0/24", "sa")
    sa2 = a.add_subnet("10.0.2.0/24", "sa2")
    sb = b.add_subnet("10.1.1.0/24", "sb")
    port = (lambda i: 5_000_000 + i) if sparse_ports else (lambda i: None)
    w1 = sa.add_eni("10.0.1.10", "w1", secondary_ips=["10.0.1.11"], port=port(1))
    fw = sa2.add_eni("10.0.2.10", "fw", source_dest_check=False, port=port(2))
    w3 = sb.add_eni("10.1.1.10", "w3", port=port(3))
    rt = a.add_route_table("rta", routes=[("0.0.0.0/0", igw), ("10.1.0.0/16", pcx), ("192.168.0.0/16", fw)])
    sa.associate(rt)
    rtb = b.add_route_table("rtb", routes=[("10.0.0.0/16", pcx)])
    sb.associate(rtb)
    return net


def frames(net):
    w1, w3 = net.find("w1"), net.find("w3")
    gw = net.find("sa").gateway_mac
    out = []
    for dst in ("8.8.8.8", "10.1.1.10", "10.1.1.99", "192.168.3.4", "10.0.2.10", "10.0.1.11", "10.0.1.1",
                "10.0.1.255", "10.0.9.9"):
        out.append(pk.ethernet(gw, w1.mac, pk.ETH_IPV4, pk.tcp(w1.ip, dst, 1000, 443)))
        out.append(pk.ethernet(gw, w1.mac, pk.ETH_IPV4, pk.icmp_echo(w1.ip, dst)))
    out.append(pk.arp_request(w1.mac, w1.ip, "10.0.1.11"))
    out.append(pk.ethernet(net.find("sb").gateway_mac, w3.mac, pk.ETH_IPV4, pk.tcp(w3.ip, "10.0.1.10", 9, 22)))
    ports = [w1.port] * (len(out) - 1) + [w3.port]
    return fv.FrameBatch.from_frames(out, port=ports)
"""
exec(RICH)  # noqa: S102 - the same builders are run in the subprocess below


def _state(dp: fv.Dataplane) -> dict:
    fn, (state,) = dp.__reduce__()
    assert fn is _rebuild
    assert all(isinstance(state[name], bytes) for name in _validate.ARRAY_DTYPES)  # no pickled dtypes
    state = _validate._decode(state)
    for name in _validate.ARRAY_DTYPES:
        state[name] = np.array(state[name])  # writeable copies
    return state


class _Pickled:
    """Pickles as a Dataplane state (so the test goes through pickle.loads like a file would)."""

    def __init__(self, state: dict, redigest: bool = True) -> None:
        self.state = dict(state)
        if redigest:  # the structural checks must refuse it on their own, not only the digest
            self.state["digest"] = _validate.digest(self.state)


copyreg.pickle(_Pickled, lambda p: (_rebuild, (p.state,)))


def _load(state: dict, redigest: bool = True) -> fv.Dataplane:
    return pickle.loads(pickle.dumps(_Pickled(state, redigest)))


@pytest.fixture(scope="module")
def rich():
    net = rich_network()
    return net, net.compile(), frames(net)


@pytest.fixture(scope="module")
def sparse():
    net = rich_network(sparse_ports=True)
    return net, net.compile(), frames(net)


def _verdicts(dp, batch):
    r = dp.process(batch, copy=True)
    return [r.action.copy(), r.reason.copy(), r.egress.copy(), r.route.copy(), r.frames.data.copy()]


def test_an_intact_snapshot_round_trips_with_the_same_verdicts(rich, sparse):
    for _, dp, batch in (rich, sparse):
        again = pickle.loads(pickle.dumps(dp))
        for a, b in zip(_verdicts(dp, batch), _verdicts(again, batch)):
            np.testing.assert_array_equal(a, b)
        assert again.eni_names == dp.eni_names and again.routes == dp.routes
        _load(_state(dp))  # a re-digested untouched state also loads
    assert sparse[1]._port_hashed and sparse[1].port_eni.size == 0


def _set(name, field, value, where=0):
    def change(st, dp):
        arr = st[name]
        if callable(where):
            i = where(st, dp)
        else:
            i = where
        arr[field][i] = value(st, dp) if callable(value) else value
    return change


def _nat_route(arg):
    """Make route 0 a route to a NAT gateway of index ``arg`` (CI fuzz finding, 2026-12-02: a pickle with
    its route targets edited this way reached the kernel's own ValueError, not a SnapshotError)."""
    def change(st, dp):
        st["route_targets"]["kind"][0] = ROUTE_NAT
        st["route_targets"]["arg"][0] = arg
    return change


def _route_of_kind(kind):
    return lambda st, dp: int(np.flatnonzero(st["route_targets"]["kind"] == kind)[0])


def _hash_value(name, tag, index):
    def change(st, dp):
        ht = st[name]
        used = np.flatnonzero(ht[0::2] != np.uint64(2**64 - 1))
        ht[2 * used[0] + 1] = (tag << 30) | (index(st, dp) if callable(index) else index)
    return change


def _hash_full(name):
    def change(st, dp):
        ht = st[name]
        empty = np.flatnonzero(ht[0::2] == np.uint64(2**64 - 1))
        ht[2 * empty] = np.uint64(0x00FF_0000_0000_0000) + empty.astype(np.uint64)  # distinct junk keys
        ht[2 * empty + 1] = 0
    return change


def _hash_moved(name):
    def change(st, dp):
        ht = st[name]
        keys = ht[0::2]
        used = np.flatnonzero(keys != np.uint64(2**64 - 1))
        empty = np.flatnonzero(keys == np.uint64(2**64 - 1))
        src = used[0]
        # put it right after an empty slot that is not its home: linear probing can no longer reach it
        cap = keys.size
        for e in empty:
            dst = (e + 1) % cap
            if keys[dst] == np.uint64(2**64 - 1) and dst != src:
                ht[2 * dst], ht[2 * dst + 1] = ht[2 * src], ht[2 * src + 1]
                ht[2 * src] = np.uint64(2**64 - 1)
                home = _home(int(ht[2 * dst]), cap)
                if home != dst:
                    return
                ht[2 * src], ht[2 * src + 1] = ht[2 * dst], ht[2 * dst + 1]  # undo, try the next
                ht[2 * dst] = np.uint64(2**64 - 1)
        raise AssertionError("no slot to move a key to")
    return change


def _home(key, cap):
    return ((key * 0x9E3779B97F4A7C15) & (2**64 - 1)) >> (64 - (cap.bit_length() - 1))


def _resize(name, words):
    def change(st, dp):
        st[name] = np.full(words, np.uint64(2**64 - 1), np.uint64)
    return change


def _replace(name, value):
    def change(st, dp):
        st[name] = value(st, dp)
    return change


def _edge_port_value(index):
    """Point the first gateway-port entry of the edge hash at ``index`` (a gateway record)."""
    from fastvpc.compiler.edge import HK_GWPORT

    def change(st, dp):
        ht = st["edge_hash"]
        keys = ht[0::2]
        used = np.flatnonzero((keys != np.uint64(2**64 - 1)) & ((keys >> np.uint64(56)) == np.uint64(HK_GWPORT)))
        ht[2 * used[0] + 1] = index(st, dp)
    return change


N_SUB = lambda st, dp: st["subnets"].size  # noqa: E731
N_ENI = lambda st, dp: st["enis"].size  # noqa: E731
N_VPC = lambda st, dp: len(st["vpc_names"])  # noqa: E731

CORRUPTIONS = {
    "enis.subnet": _set("enis", "subnet", N_SUB),
    "enis.subnet-negative": _set("enis", "subnet", -1),
    "enis.vpc": _set("enis", "vpc", 7),
    "subnets.table": _set("subnets", "table", lambda st, dp: st["table_base"].size),
    "subnets.vpc": _set("subnets", "vpc", N_VPC),
    "subnets.vpc-negative": _set("subnets", "vpc", -5),
    "route_targets.arg-eni": _set("route_targets", "arg", N_ENI, _route_of_kind(ROUTE_ENI)),
    "route_targets.arg-eni-negative": _set("route_targets", "arg", -1, _route_of_kind(ROUTE_ENI)),
    "route_targets.arg-peering": _set("route_targets", "arg", N_VPC, _route_of_kind(ROUTE_PEERING)),
    "route_targets.kind": _set("route_targets", "kind", 9),
    "route_targets.arg-nat-negative": _nat_route(-1),
    "route_targets.arg-nat": _nat_route(1 << 29),
    "table_base": _set("table_base", (), lambda st, dp: st["route_targets"].size, 1),
    "table_base-order": _set("table_base", (), 0, 1),
    "port_eni.subnet": _set("port_eni", "subnet", N_SUB, lambda st, dp: int(st["enis"]["port"][0])),
    "eni_deliver.subnet": _set("eni_deliver", "subnet", N_SUB),
    "eni_deliver.port": _set("eni_deliver", "port", 12345),
    "ip_hash-eni-index": _hash_value("ip_hash", 0, N_ENI),
    "ip_hash-subnet-index": _hash_value("ip_hash", 1, N_SUB),
    "ip_hash-tag": _hash_value("ip_hash", 3, 0),
    "mac_hash-eni-index": _hash_value("mac_hash", 0, 1 << 29),
    "ip_hash-full": _hash_full("ip_hash"),
    "mac_hash-full": _hash_full("mac_hash"),
    "ip_hash-unfindable": _hash_moved("ip_hash"),
    "mac_hash-size": _resize("mac_hash", 6),
    "ip_hash-size": _resize("ip_hash", 2),
    "enis-dtype": _replace("enis", lambda st, dp: st["enis"].view(np.uint8)),
    "subnets-shape": _replace("subnets", lambda st, dp: st["subnets"].reshape(1, -1)),
    "lpm": _replace("lpm", lambda st, dp: st["lpm"].replaced(0, *(lambda p, n, v: (p, n, v + 50))(
        *st["lpm"].routes(0))).frozen()),
    "arp_mode": _replace("arp_mode", lambda st, dp: "flood"),
    "eni_names": _replace("eni_names", lambda st, dp: st["eni_names"][:-1]),
    "port_hashed": _replace("port_hashed", lambda st, dp: 1),
    # the edge (the fuzzer's finding: an edited gateway record reached the kernel's own ValueError)
    "edge_gws.table": _set("edge_gws", "table", lambda st, dp: st["table_base"].size),
    "edge_gws.table-negative": _set("edge_gws", "table", -2),
    "edge_gws.vpc": _set("edge_gws", "vpc", N_VPC),
    "edge_gws.kind": _set("edge_gws", "kind", 9),
    "edge_gws.off": _set("edge_gws", "off", 1),
    "edge_hash-gateway-index": _edge_port_value(lambda st, dp: st["edge_gws"].size),
}
FIELD = {k: k.split("-")[0] for k in CORRUPTIONS}
FIELD["route_targets.arg-eni"] = FIELD["route_targets.arg-peering"] = "route_targets.arg"
FIELD["route_targets.arg-nat"] = FIELD["route_targets.arg-nat-negative"] = "route_targets.arg"
FIELD["table_base-order"] = "table_base"
FIELD["edge_hash-gateway-index"] = "edge_hash"


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_a_corrupt_field_is_refused_with_a_snapshot_error_naming_it(rich, case):
    _, dp, _ = rich
    st = _state(dp)
    CORRUPTIONS[case](st, dp)
    with pytest.raises(SnapshotError) as info:
        _load(st)
    assert info.value.field == FIELD[case], str(info.value)
    assert FIELD[case] in str(info.value)
    assert isinstance(info.value, FastVpcError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("case", ["enis.subnet", "mac_hash-eni-index", "mac_hash-full"])
def test_sparse_port_snapshots_are_checked_too(sparse, case):
    _, dp, _ = sparse
    st = _state(dp)
    CORRUPTIONS[case](st, dp)
    with pytest.raises(SnapshotError, match=FIELD[case]):
        _load(st)


def test_a_changed_value_that_breaks_no_index_is_caught_by_the_digest(rich):
    _, dp, _ = rich
    st = _state(dp)
    st["enis"]["mac"][0] ^= 1  # a different MAC: every index is still fine, the verdicts would change
    st["eni_deliver"]["mac"][0] ^= 1
    with pytest.raises(SnapshotError, match="digest"):
        _load(st, redigest=False)
    st = _state(dp)
    st["port_hashed"] = not st["port_hashed"]
    with pytest.raises(SnapshotError):
        _load(st, redigest=False)
    st = _state(dp)
    st["nonsense"] = 1
    with pytest.raises(SnapshotError, match="nonsense"):
        _load(st)
    st = _state(dp)
    del st["table_base"]
    with pytest.raises(SnapshotError, match="table_base"):
        _load(st, redigest=False)


def test_snapshot_errors_pickle():
    err = pickle.loads(pickle.dumps(SnapshotError("ip_hash", "bad")))
    assert err.field == "ip_hash" and str(err) == "Dataplane snapshot: ip_hash: bad"


FLIPS = RICH + textwrap.dedent("""
    import pickle, sys
    import numpy as np

    rng = np.random.default_rng(int(sys.argv[1]))
    subjects = []
    for sparse in (False, True):
        net = rich_network(sparse)
        for arp_mode in ("target", "single_mac"):
            dp = net.compile(arp_mode=arp_mode)
            batch = frames(net)
            r = dp.process(batch, copy=True)
            subjects.append((pickle.dumps(dp, protocol=int(sys.argv[3])), batch,
                             [r.action, r.reason, r.egress, r.route, r.frames.data]))
    refused = same = 0
    for it in range(int(sys.argv[2])):
        blob, batch, want = subjects[it % len(subjects)]
        b = bytearray(blob)
        for _ in range(int(rng.integers(1, 4))):
            b[int(rng.integers(0, len(b)))] ^= int(rng.integers(1, 256))
        try:
            dp = pickle.loads(bytes(b))
        except Exception:
            refused += 1
            continue
        if not isinstance(dp, fv.Dataplane):  # the flip ended the pickle early: it holds something else
            refused += 1
            continue
        r = dp.process(batch, copy=True)
        got = [r.action, r.reason, r.egress, r.route, r.frames.data]
        if not all(np.array_equal(x, y) for x, y in zip(got, want)):
            print("DIFFERENT", it, file=sys.stderr)
            sys.exit(3)
        same += 1
    print(refused, same)
""")


@pytest.mark.parametrize("seed,protocol", [(1, 4), (2, 5)])
def test_random_byte_flips_never_crash_hang_or_change_a_verdict(seed, protocol):
    """Each flipped pickle is either refused (any exception) or gives exactly the original verdicts;
    the process never dies (SIGSEGV) or hangs (a full hash table), checked in a subprocess."""
    n = 400
    proc = subprocess.run([sys.executable, "-c", FLIPS, str(seed), str(n), str(protocol)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
    refused, same = map(int, proc.stdout.split())
    assert refused + same == n and refused > n // 2


def _nat_snapshot() -> fv.Dataplane:
    w = nat_network()
    w.app.add_eni("10.0.2.10", name="a1")
    return w.net.compile()


@pytest.mark.parametrize("tag_name, value", [("HK_NATSUB", 2), ("HK_NATSUB", 1 << 40), ("HK_NATIP", 1 << 29)])
def test_a_nat_gateway_entry_of_the_edge_hash_pointing_outside_is_refused(tag_name, value):
    """The NAT gateway's subnet (HK_NATSUB) and the reply path's address -> NAT gateway (HK_NATIP)
    entries: the kernel refused them with a ValueError of its own; the snapshot check names the field."""
    import fastvpc.compiler.edge as edge

    dp = _nat_snapshot()
    st = _state(dp)
    _load(st)  # intact: loads
    ht, tag = st["edge_hash"], np.uint64(getattr(edge, tag_name))
    keys = ht[0::2]
    used = np.flatnonzero((keys != np.uint64(2**64 - 1)) & ((keys >> np.uint64(56)) == tag))
    assert used.size == 1
    ht[2 * used[0] + 1] = value
    with pytest.raises(SnapshotError, match="edge_hash") as info:
        _load(st)
    assert info.value.field == "edge_hash" and str(value) in str(info.value)
