"""The port index of the filter rule lists (compiler/filters.py build_port_index, _kernels/acl.pxd
acl_candidates): the masks against a brute force over every l4 key, and the kernel's verdicts with
every list indexed, and with none, against the frame-at-a-time oracle on random rule sets (port-range
edges 0 and 65535, overlapping ranges, ICMP type / code, all-protocol rules, group references)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastvpc as fv
import fastvpc.compiler.filters as cf
from fastvpc import packets as pk
from fastvpc.errors import SnapshotError
from filters_oracle import Oracle, frames_of, verdicts

SYN, SYNACK, ACK = 0x02, 0x12, 0x10


def eth(src: fv.Eni, payload: bytes) -> bytes:
    return pk.ethernet(src.subnet.gateway_mac, src.mac, pk.ETH_IPV4, payload)
EDGE_PORTS = [0, 1, 21, 22, 23, 53, 79, 80, 81, 443, 1023, 1024, 8080, 40000, 65534, 65535]


def _masks_by_key(blk: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """What acl_candidates reads for each key (the same search, in numpy)."""
    nb = int(blk[0])
    cuts = blk[1:1 + nb].astype(np.int64)
    m = 1 + nb
    m += m & 1
    masks = blk[m:m + 2 * (nb + 1)].view(np.uint64)
    return masks[np.searchsorted(cuts, keys, side="right")]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 0x10000 - 1), st.integers(0, 0x10000 - 1)),
                min_size=1, max_size=64))
def test_the_masks_are_the_rules_whose_range_holds_the_key(rows: list[tuple[bool, int, int]]) -> None:
    ranged = np.array([r[0] for r in rows])
    lo = np.array([min(r[1], r[2]) for r in rows], dtype=np.int64)
    hi = np.array([max(r[1], r[2]) for r in rows], dtype=np.int64)
    blk = np.require(cf._index_block(lo, hi, ranged), requirements="A")
    # every key at or next to a range end, the ends of the key space, and L4_NONE
    keys = np.unique(np.clip(np.concatenate([lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, [0, 0xFFFF, cf.L4_NONE]]),
                             0, cf.L4_NONE))
    got = _masks_by_key(blk, keys)
    for key, mask in zip(keys.tolist(), got.tolist()):
        want = sum(1 << k for k in range(len(rows))
                   if not ranged[k] or (lo[k] <= key <= hi[k] and key != cf.L4_NONE))
        assert mask == want, key


def test_a_list_of_one_rule_and_the_full_range() -> None:
    blk = cf._index_block(np.array([0]), np.array([0xFFFF]), np.array([True]))
    assert _masks_by_key(blk, np.array([0, 65535, cf.L4_NONE])).tolist() == [1, 1, 0]


# --------------------------------------------------------------------------- the kernel on random rules

PEERS = ["0.0.0.0/0", "10.0.0.0/16", "10.0.1.0/24", "10.0.2.0/25", "10.0.2.10/32", "8.8.8.0/24", "10.1.0.0/16"]
ICMP = [None, (8, -1), (8, 0), (0, -1), (0, 0), (3, 4), (3, -1), (11, 0), (13, -1), (255, -1), (0, 255)]


@st.composite
def ports(draw: st.DrawFn) -> object:
    return draw(st.one_of(st.none(), st.sampled_from(EDGE_PORTS),
                          st.tuples(st.sampled_from(EDGE_PORTS), st.sampled_from(EDGE_PORTS))
                          .map(lambda t: (min(t), max(t)))))


@st.composite
def rule(draw: st.DrawFn, groups: int) -> tuple[object, object, object]:
    proto = draw(st.sampled_from(["tcp", "udp", "udp", "tcp", "icmp", "all", 47]))
    if proto in ("tcp", "udp"):
        p = draw(ports())
    elif proto == "icmp":
        p = draw(st.sampled_from(ICMP))
    else:
        p = None
    peer = draw(st.one_of(st.sampled_from(PEERS), st.integers(0, groups - 1)))
    return proto, p, peer


@st.composite
def scenario(draw: st.DrawFn) -> tuple[fv.Network, list[bytes], list[int]]:
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v")
    igw = vpc.add_internet_gateway(name="igw")
    subs = [vpc.add_subnet(f"10.0.{k}.0/24", name=f"s{k}") for k in (1, 2, 3)]
    vpc.main_route_table.add_route("0.0.0.0/0", igw)
    n_groups = 3
    groups = [vpc.add_security_group(name=f"g{k}") for k in range(n_groups)]
    for g in groups:
        if draw(st.booleans()):
            g.clear_rules("egress")
        for d, r in draw(st.lists(st.tuples(st.sampled_from(["ingress", "egress"]), rule(n_groups)), max_size=24)):
            g.authorize(d, r[0], r[1], groups[r[2]] if isinstance(r[2], int) else r[2])
    acls = [vpc.add_network_acl(name=f"acl{k}") for k in range(2)]
    for a in acls:
        seen = set()
        for _ in range(draw(st.integers(0, 20))):
            num, d = draw(st.integers(1, 400)), draw(st.sampled_from(["ingress", "egress"]))
            proto, p, peer = draw(rule(1))
            if (num, d) not in seen:
                seen.add((num, d))
                a.add_entry(num, d, draw(st.sampled_from(["allow", "deny"])), proto, p,
                            peer if isinstance(peer, str) else "10.0.0.0/16")
        if draw(st.booleans()):
            a.add_entry(32000, "ingress", "allow", "all", None, "0.0.0.0/0")
            a.add_entry(32000, "egress", "allow", "all", None, "0.0.0.0/0")
    for s in subs:
        s.associate_network_acl(acls[draw(st.integers(0, 1))])
    enis = []
    for k, s in enumerate(subs):
        for h in (10, 20):
            gs = draw(st.lists(st.sampled_from(groups), min_size=1, max_size=3, unique_by=id))
            enis.append(s.add_eni(f"10.0.{k + 1}.{h}", security_groups=gs))
    dsts = [str(e.ip) for e in enis] + ["8.8.8.8"]
    frames, fports = [], []
    for _ in range(draw(st.integers(1, 40))):
        src = draw(st.sampled_from(enis))
        dst = draw(st.sampled_from(dsts))
        proto = draw(st.sampled_from([6, 17, 17, 1, 47]))
        sp, dp_ = draw(st.sampled_from(EDGE_PORTS)), draw(st.sampled_from(EDGE_PORTS))
        shape = draw(st.sampled_from(["full"] * 6 + ["short", "frag"]))
        if shape == "short":
            pkt = pk.ipv4(src.ip, dst, proto, b"\x00\x35" * 2)
        elif shape == "frag":
            pkt = pk.ipv4(src.ip, dst, proto, b"\x00\x35" * 12, flags_frag=0x0003)
        elif proto == 6:
            pkt = pk.tcp(src.ip, dst, sp, dp_, flags=draw(st.sampled_from([SYN, SYNACK, ACK])))
        elif proto == 17:
            pkt = pk.udp(src.ip, dst, sp, dp_)
        elif proto == 1:
            pkt = pk.icmp_echo(src.ip, dst, ident=sp, request=draw(st.booleans()))
            body = bytearray(pkt[20:])
            body[0], body[1] = draw(st.sampled_from([(8, 0), (0, 0), (3, 4), (3, 0), (11, 0), (13, 0), (0, 255),
                                                     (255, 255)]))
            pkt = pk.ipv4(src.ip, dst, 1, bytes(body))
        else:
            pkt = pk.ipv4(src.ip, dst, 47, b"g" * 12)
        frames.append(eth(src, pkt))
        fports.append(src.port)
    return net, frames, fports


@pytest.mark.parametrize("index_min", [0, 64], ids=["every-list-indexed", "no-list-indexed"])
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                 HealthCheck.function_scoped_fixture])
@given(sc=scenario())
def test_indexed_and_linear_lists_give_the_oracles_verdicts(monkeypatch: pytest.MonkeyPatch, index_min: int,
                                                            sc: tuple[fv.Network, list[bytes], list[int]]) -> None:
    net, frames, ports_ = sc
    monkeypatch.setattr(cf, "_INDEX_MIN", index_min)
    dp = net.compile()
    indexed = (dp._compiled.sg_index[:4 * dp._compiled.sg_dirs.size] != cf.NO_INDEX).any()
    assert not indexed or index_min == 0
    oracle = Oracle(net, dp)
    want, want_frames = oracle.run(frames, ports_)
    res = dp.process(fv.FrameBatch.from_frames(frames, port=ports_))
    assert verdicts(res) == want
    assert frames_of(res) == want_frames
    now = np.arange(len(frames), dtype=np.int64) * 10**9
    ref = fv.FlowTable(capacity=64)
    want_s, _ = oracle.run(frames, ports_, state=ref, now=now)
    flows = fv.FlowTable(capacity=64)
    b = fv.FrameBatch(np.frombuffer(b"".join(frames), np.uint8).copy(),
                      np.concatenate([[0], np.cumsum([len(f) for f in frames])]).astype(np.int64),
                      np.array(ports_, np.int32), now)
    assert verdicts(dp.process(b, state=flows)) == want_s


def _pair(rules: Callable[[Any, Any], None]) -> tuple[fv.Network, Any, fv.Eni, fv.Eni]:
    """A VPC of two subnets, an ENI in each in group g, the second subnet's NACL a; ``rules(g, a)`` fills
    them.  Returns the network, its compile and the two ENIs."""
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v")
    s1, s2 = vpc.add_subnet("10.0.1.0/24", name="s1"), vpc.add_subnet("10.0.2.0/24", name="s2")
    g = vpc.add_security_group(name="g")
    acl = vpc.add_network_acl(name="a")
    rules(g, acl)
    s2.associate_network_acl(acl)
    a = s1.add_eni("10.0.1.10", security_groups=[g])
    b = s2.add_eni("10.0.2.10", security_groups=[g])
    return net, net.compile(), a, b


def test_the_benchmark_shape_is_indexed_and_a_tampered_index_is_refused() -> None:
    def rules(g: Any, acl: Any) -> None:
        for p in range(5000, 5012):
            g.authorize_ingress("udp", p, "10.0.0.0/16")
        for k in range(10):
            acl.add_entry(10 + k, "ingress", "deny", "udp", (100 + k, 200 + k), "10.0.0.0/16")
        acl.add_entry(300, "ingress", "allow", "all", None, "10.0.0.0/8")
        acl.add_entry(300, "egress", "allow", "all", None, "10.0.0.0/8")

    _, dp, a, b = _pair(rules)
    ct = dp._compiled
    assert (ct.sg_index[:4 * ct.sg_dirs.size] != cf.NO_INDEX).any()
    assert (ct.nacl_index[:4 * ct.nacl_dirs.size] != cf.NO_INDEX).any()

    def udp(dport: int) -> bytes:
        return eth(a, pk.udp(a.ip, b.ip, 40000, dport))

    res = dp.process(fv.FrameBatch.from_frames([udp(5000), udp(5011), udp(5012), udp(150), udp(4999)],
                                               port=[a.port] * 5))
    assert [fv.Action(x) for x in res.action] == [fv.Action.DELIVER] * 2 + [fv.Action.DROP] * 3
    assert [fv.DropReason(x).name for x in res.reason[2:]] == ["SG_INGRESS", "NACL_INGRESS", "SG_INGRESS"]

    from fastvpc.dataplane import _validate

    fn, args = dp.__reduce__()
    state = dict(args[0])
    for name, rows in (("sg_index", ct.sg_dirs.size), ("nacl_index", ct.nacl_dirs.size)):
        ix = np.frombuffer(state[name], dtype=np.uint32).copy()
        first = int(np.flatnonzero(ix[:4 * rows] != cf.NO_INDEX)[0])
        blk = int(ix[first])
        m = blk + 1 + int(ix[blk])
        m += m & 1
        nb = int(ix[blk])
        assert nb > cf.BUCKET_MIN                     # these blocks have a bucket table
        w = m + 2 * (nb + 1)
        last = int(ix[:4 * rows][ix[:4 * rows] != cf.NO_INDEX].max())
        assert int(ix[last]) > cf.BUCKET_MIN          # the array ends with a bucket table
        edits = {"head": "block .* words\\) for", "mask": "names a rule past its list",
                 "cuts": "cuts, past the end of the array", "bucket": "bucket table does not match its cuts",
                 "short": "bucket table runs past the end"}
        for edit, says in edits.items():
            bad = ix.copy()
            if edit == "head":
                bad[first] = ix.size + 10             # a block past the end
            elif edit == "mask":
                bad[m] = 0xFFFFFFFF                   # a mask naming rules past the list
            elif edit == "bucket":
                bad[w] = ix[w] + (1 << 16)            # bucket 1 said to start one cut later: a wrong piece
            elif edit == "short":
                bad = ix[:-1]                         # the last block's bucket table cut off by one word
            else:
                bad[blk] = 1 << 20                    # more cuts than the array holds
            st2 = dict(state)
            st2[name] = bad.tobytes()
            st2["digest"] = _validate.digest(_validate._decode(st2))   # structural checks, not the digest
            with pytest.raises(SnapshotError, match=f"{name}.*{says}"):
                fn(st2)
    dp2 = pickle.loads(pickle.dumps(dp))
    assert np.array_equal(dp2.process(fv.FrameBatch.from_frames([udp(5000), udp(150)], port=[a.port] * 2)).reason,
                          res.reason[[0, 3]])


def test_the_compiler_writes_bucket_tables_where_the_kernel_reads_them() -> None:
    """The kernel decides from a block's cut count whether a bucket table follows its masks; a compiler
    that wrote tables for other blocks would have the kernel read masks as bucket bases."""
    from fastvpc._kernels import forward

    assert forward.ACL_BUCKET_MIN_CUTS == cf.BUCKET_MIN
    for n_rules in (cf.BUCKET_MIN - 2, cf.BUCKET_MIN - 1):
        # ports 1..n_rules, one rule each: cuts 1..n_rules + 1 and L4_NONE, BUCKET_MIN and one more
        lo = np.arange(1, n_rules + 1, dtype=np.uint32)
        blk = cf._index_block(lo, lo, np.ones(n_rules, dtype=bool))
        nb = int(blk[0])
        assert nb == n_rules + 2
        masks_end = 1 + nb + ((1 + nb) & 1) + 2 * (nb + 1)
        has_table = nb > forward.ACL_BUCKET_MIN_CUTS
        assert blk.size == masks_end + (cf.BUCKET_WORDS if has_table else 0)
        if has_table:
            assert np.array_equal(blk[masks_end:].view(np.uint16), cf.bucket_bases(blk[1:1 + nb]))


def _layout(name: str) -> list[int]:
    if name == "spread":          # 60 ports 7 apart in 1000..1420: ~40 cuts in each of buckets 3-5
        return [1000 + 7 * k + (k % 2) for k in range(60)]
    if name == "one bucket":      # 40 ports in 1..118: ~80 cuts in bucket 0, counted from its start
        return [1 + 3 * k for k in range(40)]
    if name == "bucket edges":    # ports either side of bucket edges (B << 8), and the key space's ends
        return sorted({q for b in (1, 2, 255) for q in ((b << 8) - 1, b << 8)} | {0, 1, 65534, 65535})
    return [100 + k for k in range(5)]   # "few": adjacent ports share cuts, 7 in all: counted


@pytest.mark.parametrize("layout", ["spread", "one bucket", "bucket edges", "few"])
def test_the_bucket_table_finds_the_piece_of_every_port(layout: str) -> None:
    """acl_candidates counts the cuts of a block of at most BUCKET_MIN cuts and, in a longer one, only
    the cuts of the key's 256-key bucket (compiler/filters.py bucket_bases).  A group and a NACL of
    single-port UDP rules laid out across, inside and at the edges of buckets, probed at every rule's
    port and its neighbours, give the oracle's verdicts."""
    ports = _layout(layout)

    def rules(g: Any, acl: Any) -> None:
        for k, p in enumerate(ports):
            g.authorize_ingress("udp", p, "10.0.0.0/16" if k % 3 else "10.0.1.0/24")
        for k, p in enumerate(ports[:40]):     # AWS's most entries a direction; the rest: implicit deny
            acl.add_entry(1 + k, "ingress", "deny" if k % 4 == 1 else "allow", "udp", p, "10.0.0.0/16")
        acl.add_entry(1, "egress", "allow", "all", None, "0.0.0.0/0")

    net, dp, a, b = _pair(rules)
    ct = dp._compiled
    nb = {int(ct.nacl_index[int(w)]) for w in ct.nacl_index[:4 * ct.nacl_dirs.size] if w != cf.NO_INDEX}
    assert nb and (max(nb) > cf.BUCKET_MIN) == (layout != "few")
    probes = sorted({min(max(q, 0), 65535) for p in ports for q in (p - 1, p, p + 1)} | {0, 255, 256, 65535})
    frames = [eth(a, pk.udp(a.ip, b.ip, 40000, q)) for q in probes]
    want, want_frames = Oracle(net, dp).run(frames, [a.port] * len(frames))
    res = dp.process(fv.FrameBatch.from_frames(frames, port=[a.port] * len(frames)))
    assert verdicts(res) == want and frames_of(res) == want_frames
    got = dict(zip(probes, res.action))
    assert all(got[p] == (fv.Action.DROP if k % 4 == 1 or k >= 40 else fv.Action.DELIVER) for k, p in enumerate(ports))
