"""fastvpc.testing: the engines, the comparison helper and the hypothesis strategies."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import frames as F

import fastvpc as fv
from fastvpc.batch import FrameBatch
from fastvpc.dataplane import Forwarder
from fastvpc.reference import ReferenceForwarder, Verdict
from fastvpc.testing import (
    ENGINE_NAMES,
    Engines,
    assert_same_verdicts,
    engine,
    engines,
    frames,
    run,
    scenarios,
    verdicts,
)
from fastvpc.verdicts import Action, DropReason


def _items(net: fv.Network) -> list[tuple[bytes, int]]:
    w1, web, a1, app = net.find("web1"), net.find("web"), net.find("app1"), net.find("app")
    return [(F.udp_frame(w1, "10.0.2.20", web), w1.port),          # DELIVER, rewritten
            (F.arp_request(w1, None, "10.0.1.1"), w1.port),         # REPLY
            (F.udp_frame(w1, "8.8.8.8", web), w1.port),            # FORWARD
            (F.udp_frame(a1, "8.8.8.8", app), a1.port),            # DROP NO_ROUTE
            (b"\x01\x02", w1.port)]                                 # DROP MALFORMED


class Lying:
    """A Forwarder that changes one field (or one byte) of frame ``at`` of another's answer."""

    def __init__(self, inner: Any, at: int, what: str) -> None:
        self.inner, self.at, self.what = inner, at, what
        self.arp_mode = inner.arp_mode

    def process(self, batch: FrameBatch, copy: bool = False) -> Any:
        res = self.inner.process(batch, copy=copy)
        if self.what == "route":
            res.route[self.at] += 7
        elif self.what == "frame":
            a = int(res.frames.offsets[self.at])
            res.frames.data[a + 6] ^= 0xFF
        elif self.what == "shape":
            res.action = np.concatenate([res.action, res.action[:1]])
        return res


def test_engines_are_forwarders(seed_net: fv.Network) -> None:
    e = engines(seed_net)
    assert isinstance(e, Engines) and isinstance(e.kernel, fv.Dataplane)
    assert isinstance(e.reference, ReferenceForwarder) and e.reference.net is seed_net
    assert all(isinstance(x, Forwarder) for x in e)
    assert engines(seed_net, arp_mode="single_mac").kernel.arp_mode == "single_mac"
    assert ENGINE_NAMES == ("reference", "kernel")
    assert isinstance(engine(seed_net, "kernel"), fv.Dataplane)
    assert engine(seed_net, "reference", "single_mac").arp_mode == "single_mac"   # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="'turbo'"):
        engine(seed_net, "turbo")
    assert not isinstance(seed_net, Forwarder)


def test_run_gives_one_verdict_per_frame(seed_net: fv.Network) -> None:
    items = _items(seed_net)
    for name in ENGINE_NAMES:
        out = run(engine(seed_net, name), items)
        assert [v.action for v in out] == [Action.DELIVER, Action.REPLY, Action.FORWARD, Action.DROP, Action.DROP]
        assert [v.reason for v in out][3:] == [DropReason.NO_ROUTE, DropReason.MALFORMED]
        assert all(isinstance(v, Verdict) for v in out)
        assert out[0].frame != items[0][0]
        # out through the internet gateway: only the source IP (web1's public IP) and checksums change
        assert out[2].frame[26:30] == bytes([203, 0, 113, 10]) and out[2].frame[:24] == items[2][0][:24]
        assert out[2].frame[30:40] == items[2][0][30:40]
        ref = ReferenceForwarder(seed_net)
        assert out == [ref.forward(f, p) for f, p in items]     # the same record the reference gives
    batch = FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items])
    out = run(engine(seed_net, "kernel"), batch, copy=True)
    assert list(batch) == [f for f, _ in items] and out[0].frame != items[0][0]   # copy=True: input untouched
    res = engine(seed_net, "reference").process(batch, copy=True)
    assert verdicts(res) == out


def test_assert_same_verdicts_passes_and_leaves_the_batch(seed_net: fv.Network, seed_dp: fv.Dataplane) -> None:
    items = _items(seed_net)
    batch = FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items])
    assert_same_verdicts(seed_dp, seed_net, batch)
    assert list(batch) == [f for f, _ in items]
    assert_same_verdicts(seed_dp, ReferenceForwarder(seed_net), items)
    single = seed_net.compile(arp_mode="single_mac")
    arp = [(F.arp_request(seed_net.find("web1"), None, "10.0.1.99"), seed_net.find("web1").port)]
    assert_same_verdicts(single, seed_net, arp)                 # the reference follows dp.arp_mode
    with pytest.raises(AssertionError, match="ARP_NO_ENTRY"):
        assert_same_verdicts(single, seed_net, arp, arp_mode="target")


def test_assert_same_verdicts_names_the_first_difference(seed_net: fv.Network, seed_dp: fv.Dataplane) -> None:
    items = _items(seed_net)
    with pytest.raises(AssertionError) as info:
        assert_same_verdicts(Lying(seed_dp, 2, "route"), seed_net, items)
    msg = str(info.value)
    assert "disagree on 1 of 5 frames" in msg and f"frame 2 on port {items[2][1]}" in msg
    assert "differs in: route" in msg and items[2][0].hex() in msg and "routes (index: route): 0:" in msg
    assert "kernel:    FORWARD/NONE" in msg
    with pytest.raises(AssertionError) as info:
        assert_same_verdicts(Lying(seed_dp, 0, "frame"), ReferenceForwarder(seed_net), items)
    msg = str(info.value)
    assert "frame 0" in msg and "differs in: frame" in msg and "first differing byte at offset 6" in msg
    with pytest.raises(AssertionError, match=r"kernel: action has shape \(6,\), not \(5,\)"):
        assert_same_verdicts(Lying(seed_dp, 0, "shape"), seed_net, items)


def test_imports_without_hypothesis() -> None:
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import fastvpc.testing as t\n"
            "from fastvpc.examples import seed_vpc\n"
            "n = seed_vpc(); k, r = t.engines(n); t.assert_same_verdicts(k, r, [(b'', n.find('web1').port)])\n"
            "try:\n    t.networks()\nexcept ImportError as e:\n    print('needs', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "needs fastvpc.testing's strategies need hypothesis" in out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios())
def test_library_strategies_engines_agree(scenario: tuple[fv.Network, list[tuple[bytes, int]], str]) -> None:
    """The differential test again, with the library's own frame builder (fastvpc.packets)."""
    net, items, arp_mode = scenario
    assert_same_verdicts(net.compile(arp_mode=arp_mode), net, items)


def _verdicts_reached(net: fv.Network, n: int) -> dict[tuple[Action, DropReason], int]:
    """How often ``frames(net)`` (n examples, derandomized) meets each (action, reason) of the reference."""
    peer = net.add_vpc("10.1.0.0/16", name="peer")
    peer.add_subnet("10.1.1.0/24", name="psub").add_eni("10.1.1.10", name="p1")
    pcx = net.add_peering(net.find("prod"), peer, name="pcx")
    net.find("rt-web").add_route("10.1.0.0/16", pcx)
    net.find("rt-db").add_route("10.0.0.0/8", fv.BLACKHOLE)      # db -> the peer VPC: blackholed
    for table in ("rt-web", "rt-main"):
        net.find(table).add_route("1.1.1.0/24", fv.BLACKHOLE)
    # the routing view (edge=False): frames(net) aims at §1's verdicts, where a frame on a gateway's port
    # is UNKNOWN_PORT; with the edge those frames meet the gateway (tests/edge has its own strategies)
    ref = ReferenceForwarder(net, edge=False)
    seen: dict[tuple[Action, DropReason], int] = {}

    @settings(max_examples=n, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(frames(net))
    def draw(item: tuple[bytes, int]) -> None:
        v = ref.forward(*item)
        seen[v.action, v.reason] = seen.get((v.action, v.reason), 0) + 1

    draw()
    return seen


COMMON = {DropReason.MALFORMED, DropReason.NON_IPV4, DropReason.ARP_IGNORED, DropReason.ARP_NO_ENTRY,
          DropReason.UNKNOWN_PORT, DropReason.SRC_DST_CHECK, DropReason.UNKNOWN_MAC, DropReason.ROUTER_UNSUPPORTED,
          DropReason.ROUTER_NOT_OWN_SUBNET, DropReason.LINK_LOCAL_SERVICE, DropReason.NO_SUCH_HOST,
          DropReason.NO_ROUTE}


def test_frame_strategy_reaches_the_common_verdicts(seed_net: fv.Network) -> None:
    """frames(net) is aimed well: every action, and the drops that most frames can meet."""
    seen = _verdicts_reached(seed_net, 400)
    assert {a for a, _ in seen} == set(Action)
    missing = COMMON - {r for _, r in seen}
    assert not missing, sorted(r.name for r in missing)


@pytest.mark.slow
def test_frame_strategy_reaches_every_verdict(seed_net: fv.Network) -> None:
    """... and, given enough examples, every drop reason of the model (the rare ones need one address and
    one MAC at once: broadcast, multicast, group MAC, a blackholed destination)."""
    seen = _verdicts_reached(seed_net, 4000)
    # the filters' reasons are reached by the filter strategies (below); the edge's (NAT, public IPs) by its own
    missing = set(DropReason) - {r for _, r in seen} - {DropReason.NONE} - FILTER_REASONS - EDGE_REASONS
    assert not missing, sorted(r.name for r in missing)


FILTER_REASONS = {DropReason.SG_EGRESS, DropReason.NACL_EGRESS, DropReason.NACL_INGRESS, DropReason.SG_INGRESS,
                  DropReason.FLOW_TABLE_FULL}
EDGE_REASONS = {r for r in DropReason if r.value >= 22}


def test_stateful_scenarios_reach_every_filter_verdict() -> None:
    """stateful_scenarios() is aimed well: every filter drop, deliveries through tracked flows, and
    deliveries the rules alone would have dropped (so tracking is exercised)."""
    from hypothesis import HealthCheck, given, settings

    from fastvpc.reference import ReferenceFlowTable, ReferenceForwarder
    from fastvpc.testing import stateful_scenarios

    seen: set[DropReason] = set()
    tracked_only = [0]

    @settings(max_examples=200, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(stateful_scenarios())
    def collect(scenario: Any) -> None:
        net, steps, capacity = scenario
        ref, table = ReferenceForwarder(net), ReferenceFlowTable(capacity)
        for step in steps:
            if step.change is not None:
                step.change(net)
                continue
            for frame, port in step.items:
                now = step.now if step.now is not None else (table.clock or 0)
                v = ref.forward(frame, port, state=table, now=now)
                seen.add(v.reason)
                if v.action == Action.DELIVER and ref.forward(frame, port).action == Action.DROP:
                    tracked_only[0] += 1

    collect()
    assert FILTER_REASONS <= seen, sorted(r.name for r in FILTER_REASONS - seen)
    assert tracked_only[0] > 0
