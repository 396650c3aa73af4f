"""Filters and connection tracking (issue 10): the compiled pass with security groups, network ACLs and
a FlowTable, against the unfiltered pass and a Python-dict conntrack loop, in one run.

Topology: the forwarding benchmark's (benchmarks/_forward_data.py: 4 peered VPCs, 1,000 subnets,
100,000 ENIs) plus, per subnet, 3 security groups of 20 rules each (15 ingress: 7 TCP and 6 UDP port
rules from VPC/private CIDRs, ICMP echo, one group reference to the previous subnet's group of the
same role; 5 egress) that every ENI of the subnet is in (1,000 distinct sets, 3,000 groups), and a
20-entry NACL per subnet (19 entries that the benchmark traffic does not match, then allow 10/8).

Traffic: 65,536 64-byte UDP frames per batch between ENIs of different subnets of one VPC (both
NACLs and both SG sets judged).  A FlowTable (capacity 2.5M) is warmed with 500,000 flows, i.e.
1,000,000 entries (each flow is tracked at its sender and its receiver).  80% of each batch's frames
are packets of warmed flows (either direction); 20% are first packets of flows new in that round
(their source port is rewritten per round, untimed), admitted by the rules: each makes two new
entries.

    python -m pytest benchmarks/test_bench_filters.py --benchmark-only -q -p no:cacheprovider

Peers in the same run: the unfiltered pass (``compile(filters=False)``) on the same frames, the
filtered pass without state (rules only), ``fastvpc.reference.ReferenceFlowTable`` on a sample, and the
naive peer of issue 10, a plain-Python dict conntrack loop on the same sample.  The tests run the
unfiltered pass first, so each later one records its ratios in ``extra_info`` (``vs_unfiltered_1_thread``,
and for the 2-thread stateful pass ``vs_1_thread``; the dict peers ``per_frame_vs_stateful``): read them in
``--benchmark-json``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from _forward_data import N_VPC, Big, _put_mac, _put_u16, _put_u32

import fastvpc as fv
from fastvpc.batch import FrameBatch
from fastvpc.dataplane import Result

N = 65536
N_FLOWS = 500_000
TRACKED = 0.8
SAMPLE = 4096
T0 = 10**9
#: medians (s per batch / per sample) of the tests run so far, for the ratios in extra_info
_MEDIANS: dict[str, float] = {}


def _median(benchmark: Any) -> float | None:
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    return float(stats.median) if stats is not None else None


def _ratios(benchmark: Any, name: str) -> None:
    """Record this test's median, and its speed against the tests before it."""
    med = _median(benchmark)
    if med is None:      # --benchmark-disable: nothing timed
        return
    _MEDIANS[name] = med
    if "unfiltered_1" in _MEDIANS and name != "unfiltered_1":
        benchmark.extra_info["vs_unfiltered_1_thread"] = round(_MEDIANS["unfiltered_1"] / med, 3)
    if name.endswith("_2") and name[:-2] + "_1" in _MEDIANS:
        benchmark.extra_info["vs_1_thread"] = round(_MEDIANS[name[:-2] + "_1"] / med, 3)


class Filtered:
    """``big`` with the groups and NACLs added; both compiles of it; the warm flows and the batch."""

    def __init__(self, big: Big) -> None:
        net = big.net
        t0 = time.perf_counter()
        self.groups: list[list[Any]] = []
        for vk, vpc in enumerate(big.vpcs):
            prev: list[Any] | None = None
            for s in vpc.subnets:
                gs = []
                for role in range(3):
                    g = vpc.add_security_group(name=f"sg-{s.name}-{role}")
                    g.clear_rules("egress")
                    base = 10 * role
                    for i in range(7):
                        g.authorize_ingress("tcp", 8000 + base + i, f"10.{vk}.0.0/16")
                    for i in range(6):
                        g.authorize_ingress("udp", 5000 + base + i, "10.0.0.0/8" if i % 2 else f"10.{vk}.0.0/16")
                    g.authorize_ingress("icmp", (8, -1), "10.0.0.0/8")
                    g.authorize_ingress("tcp", 22, prev[role] if prev else g)
                    g.authorize_egress("udp", (1024, 65535), "10.0.0.0/8")
                    g.authorize_egress("tcp", None, "10.0.0.0/8")
                    g.authorize_egress("udp", 53, f"10.{vk}.0.2/32")
                    g.authorize_egress("tcp", 443, "0.0.0.0/0")
                    g.authorize_egress("icmp", None, "10.0.0.0/8")
                    gs.append(g)
                prev = gs
                self.groups.append(gs)
                for e in s.enis:
                    e.security_groups = gs
                acl = vpc.add_network_acl(name=f"acl-{s.name}")
                for d in ("ingress", "egress"):
                    for k in range(19):
                        acl.add_entry(10 + 10 * k, d, "deny" if k % 3 else "allow", "tcp" if k % 2 else "udp",
                                      (100 + k, 200 + k), f"192.168.{k}.0/24")
                    acl.add_entry(300, d, "allow", "all", None, "10.0.0.0/8")
                s.associate_network_acl(acl)
        self.build_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        self.dp = net.compile()
        self.compile_s = time.perf_counter() - t1
        self.plain = net.compile(filters=False)
        self.big = big
        self._flows(big)

    def _flows(self, big: Big) -> None:
        rng = np.random.default_rng(11)
        n_eni = big.eni_port.size
        per_vpc = n_eni // N_VPC
        src = rng.integers(0, n_eni, size=N_FLOWS)
        vpc = src // per_vpc
        dst = vpc * per_vpc + rng.integers(0, per_vpc, size=N_FLOWS)
        same = (dst // big.per_subnet) == (src // big.per_subnet)
        dst[same] = vpc[same] * per_vpc + (dst[same] - vpc[same] * per_vpc + big.per_subnet) % per_vpc
        role = rng.integers(0, 3, size=N_FLOWS)
        self.f_src, self.f_dst = src, dst
        self.f_sport = rng.integers(10_000, 60_000, size=N_FLOWS)
        self.f_dport = 5000 + 10 * role + rng.integers(0, 6, size=N_FLOWS)

    def frames(self, src: np.ndarray, dst: np.ndarray, sport: np.ndarray, dport: np.ndarray) -> FrameBatch:
        big = self.big
        n = src.size
        buf = np.zeros((n, 64), dtype=np.uint8)
        _put_mac(buf, 0, big.sub_gwmac[big.eni_sub[src]])
        _put_mac(buf, 6, big.eni_mac[src])
        buf[:, 12], buf[:, 13], buf[:, 14], buf[:, 22], buf[:, 23] = 0x08, 0x00, 0x45, 64, 17
        _put_u16(buf, 16, np.full(n, 50))
        _put_u32(buf, 26, big.eni_ip[src])
        _put_u32(buf, 30, big.eni_ip[dst])
        w = buf[:, 14:34].astype(np.uint32).reshape(n, 10, 2)
        s = (w[:, :, 0] << 8 | w[:, :, 1]).sum(axis=1)
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        _put_u16(buf, 24, (~s) & 0xFFFF)
        _put_u16(buf, 34, sport)
        _put_u16(buf, 36, dport)
        _put_u16(buf, 38, np.full(n, 30))
        return FrameBatch(buf.reshape(-1), np.arange(n + 1, dtype=np.int64) * 64, big.eni_port[src])

    def warm(self) -> fv.FlowTable:
        flows = fv.FlowTable(capacity=2_500_000)
        b = self.frames(self.f_src, self.f_dst, self.f_sport, self.f_dport)
        r = self.dp.process(b, state=flows, now=T0)
        assert np.count_nonzero(r.action == 1) == N_FLOWS, "the rules must admit the warm flows"
        return flows

    def batch(self, seed: int = 3) -> tuple[FrameBatch, np.ndarray]:
        """The benchmark batch and the indices of its new-flow frames (their sport is rewritten per round)."""
        rng = np.random.default_rng(seed)
        k = rng.integers(0, N_FLOWS, size=N)
        reply = rng.integers(0, 2, size=N).astype(bool)
        src = np.where(reply, self.f_dst[k], self.f_src[k])
        dst = np.where(reply, self.f_src[k], self.f_dst[k])
        sport = np.where(reply, self.f_dport[k], self.f_sport[k])
        dport = np.where(reply, self.f_sport[k], self.f_dport[k])
        new = rng.random(N) >= TRACKED
        src[new], dst[new], sport[new], dport[new] = self.f_src[k[new]], self.f_dst[k[new]], 0, self.f_dport[k[new]]
        return self.frames(src, dst, sport, dport), np.flatnonzero(new)


@pytest.fixture(scope="module")
def filt(big: Big) -> Filtered:
    return Filtered(big)


def _bench(benchmark: Any, filt: Filtered, dp: Any, n_threads: int, state: bool, name: str) -> None:
    batch, new = filt.batch()
    work = batch.copy()
    out = Result(N)
    flows = filt.warm() if state else None
    rnd = [0]
    now = [T0]

    def restore() -> None:
        np.copyto(work.data, batch.data)
        rnd[0] += 1
        sp = (1024 + (rnd[0] * 7919 + np.arange(new.size) * 13) % 8000).astype(np.uint16)   # new flows this round
        rows = work.data.reshape(-1, 64)
        rows[new, 34] = sp >> 8
        rows[new, 35] = sp & 0xFF
        now[0] += 10**6

    def run() -> None:
        if state:
            dp.process(work, out=out, n_threads=n_threads, state=flows, now=now[0])
        else:
            dp.process(work, out=out, n_threads=n_threads)

    benchmark.extra_info["frames"] = N
    benchmark.pedantic(run, setup=restore, rounds=30, iterations=1, warmup_rounds=2)
    delivered = np.count_nonzero(out.action == 1)
    benchmark.extra_info["delivered"] = int(delivered)
    # with state (or no filters) every frame is admitted; by the rules alone the replies (to the
    # client's ephemeral port) are refused by the client's ingress rules: about 40%
    assert delivered > (0.95 * N if state or not dp.filters else 0.5 * N)
    if flows is not None:
        benchmark.extra_info["flows"] = len(flows)
        benchmark.extra_info["bytes_per_flow"] = flows.nbytes / flows.capacity
    _ratios(benchmark, name)


# the unfiltered peer first: the filtered tests record their ratio to it (extra_info)
def test_peer_unfiltered_1_thread(benchmark: Any, filt: Filtered) -> None:
    _bench(benchmark, filt, filt.plain, 1, False, "unfiltered_1")


def test_peer_unfiltered_2_threads(benchmark: Any, filt: Filtered) -> None:
    _bench(benchmark, filt, filt.plain, 2, False, "unfiltered_2")


def test_filters_rules_only_1_thread(benchmark: Any, filt: Filtered) -> None:
    _bench(benchmark, filt, filt.dp, 1, False, "rules_1")


def test_filters_state_1_thread(benchmark: Any, filt: Filtered) -> None:
    _bench(benchmark, filt, filt.dp, 1, True, "state_1")


def test_filters_state_2_threads(benchmark: Any, filt: Filtered) -> None:
    _bench(benchmark, filt, filt.dp, 2, True, "state_2")


def test_filters_compile(benchmark: Any, filt: Filtered) -> None:
    """The filter part of the compile (compiler.filters.compile_filters) for the 3,000 groups."""
    from fastvpc.compiler.filters import compile_filters

    net = filt.big.net
    benchmark.extra_info["groups"] = sum(len(g) for g in filt.groups)
    benchmark.extra_info["full_compile_s"] = filt.compile_s
    benchmark.pedantic(lambda: compile_filters(net, net.enis, net.subnets, list(net.vpcs), filt.dp.port_eni.size,
                                               False), rounds=3, iterations=1, warmup_rounds=0)


def _sample_rows(filt: Filtered) -> list[tuple[int, ...]]:
    """(ENI identity, proto, src, dst, sport, dport, IP length) of the first SAMPLE frames of the batch."""
    batch, _ = filt.batch()
    c = fv.classify(batch)
    ident = filt.dp.eni_filt["ident"]
    eni_of_port = {int(p): i for i, p in enumerate(filt.big.eni_port)}
    return [(int(ident[eni_of_port[int(batch.port[i])]]), int(c.proto[i]), int(c.ip_src[i]), int(c.ip_dst[i]),
             int(c.sport[i]), int(c.dport[i]), int(c.ip_len[i])) for i in range(SAMPLE)]


def _per_frame_ratio(benchmark: Any, name: str) -> None:
    med = _median(benchmark)
    if med is None:
        return
    _MEDIANS[name] = med
    if "state_1" in _MEDIANS:   # how many times faster a frame the stateful pass (1 thread) is
        benchmark.extra_info["per_frame_vs_stateful"] = round((med / SAMPLE) / (_MEDIANS["state_1"] / N), 1)


def test_peer_reference_flow_table(benchmark: Any, filt: Filtered) -> None:
    """``fastvpc.reference.ReferenceFlowTable.track`` one frame at a time on a sample of the batch (rules not
    evaluated: only the table steps, at the sender)."""
    from fastvpc.reference import ReferenceFlowTable

    rows = _sample_rows(filt)
    ref = ReferenceFlowTable(capacity=4 * SAMPLE)
    for e, p, s, d, sp, dp, ln in rows[: SAMPLE // 2]:   # half of them tracked already
        ref.track(e, p, s, d, sp, dp, 0, ln, T0, 1)
    clock = [T0]

    def run() -> int:
        clock[0] += 1
        hits = 0
        for e, p, s, d, sp, dp, ln in rows:
            hits += int(ref.track(e, p, s, d, sp, dp, 0, ln, clock[0], 1)[0]) == 1
        return hits

    benchmark.extra_info["frames"] = SAMPLE
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)
    _per_frame_ratio(benchmark, "reference_flow_table")


def test_peer_dict_conntrack(benchmark: Any, filt: Filtered) -> None:
    """Issue 10's naive peer: a Python dict keyed by (ENI, protocol, normalised address/port pairs), one
    frame at a time on the same sample (rules not evaluated: only the table step, with an idle timeout)."""
    rows = _sample_rows(filt)
    table: dict[tuple[int, ...], list[int]] = {}
    for e, p, s, d, sp, dp, ln in rows[: SAMPLE // 2]:   # half of them tracked already
        a, b = ((s, sp), (d, dp)) if (s, sp) <= (d, dp) else ((d, dp), (s, sp))
        table[(e, p, *a, *b)] = [1, 0, T0]
    clock = [T0]

    def run() -> int:
        clock[0] += 1
        now = clock[0]
        hits = 0
        for e, p, s, d, sp, dp, ln in rows:
            a, b = ((s, sp), (d, dp)) if (s, sp) <= (d, dp) else ((d, dp), (s, sp))
            key = (e, p, *a, *b)
            ent = table.get(key)
            if ent is None or now > ent[2] + 30 * 10**9:
                table[key] = [1, ln, now]
            else:
                ent[0] += 1
                ent[1] += ln
                ent[2] = now
                hits += 1
        return hits

    benchmark.extra_info["frames"] = SAMPLE
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)
    _per_frame_ratio(benchmark, "dict_conntrack")
