"""Unit tests of the reference forwarder alone (its API, robustness, helpers)."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import frames as F  # noqa: E402

from fastvpc.batch import FrameBatch  # noqa: E402
from fastvpc.examples import seed_vpc  # noqa: E402
from fastvpc.reference import Hop, ReferenceForwarder, Verdict, internet_checksum  # noqa: E402
from fastvpc.verdicts import Action, DropReason  # noqa: E402

NET = seed_vpc()
REF = ReferenceForwarder(NET)
PORTS = sorted({e.port for e in NET.enis} | {t.port for t in NET.targets} | {-1, 10**6})


def test_bad_arp_mode_rejected() -> None:
    with pytest.raises(ValueError, match="bogus"):
        ReferenceForwarder(NET, arp_mode="bogus")


def test_verdict_is_frozen() -> None:
    v = REF.forward(b"", NET.find("web1").port)
    assert v == Verdict(Action.DROP, DropReason.MALFORMED, -1, -1, b"")
    with pytest.raises(AttributeError):
        v.action = Action.DELIVER  # type: ignore[misc]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=100), st.sampled_from(PORTS))
def test_never_raises_on_garbage(frame: bytes, port: int) -> None:
    v = REF.forward(frame, port)
    assert isinstance(v.action, Action) and isinstance(v.reason, DropReason)
    assert len(v.frame) == len(frame)
    assert (v.reason == DropReason.NONE) == (v.action != Action.DROP)
    assert (v.egress == -1) == (v.action == Action.DROP)
    if v.action in (Action.DROP, Action.FORWARD):
        assert v.frame == frame


@pytest.mark.parametrize("thing", [None, 10**9, "abc", object(), 1.5, -1])
def test_never_raises_on_non_bytes(thing: object) -> None:
    v = REF.forward(thing, NET.find("web1").port)
    assert v.action == Action.DROP
    assert REF.forward(b"\x00" * 20, thing).reason == DropReason.UNKNOWN_PORT


@given(st.binary(max_size=200))
def test_internet_checksum_matches_scapy(data: bytes) -> None:
    from scapy.utils import checksum

    assert internet_checksum(data) == checksum(data)


def _batch() -> tuple[list[bytes], list[int]]:
    w1, web, a1 = NET.find("web1"), NET.find("web"), NET.find("app1")
    frames = [F.udp_frame(w1, "10.0.2.20", web), F.arp_request(w1, None, "10.0.1.1"),
              F.icmp_echo(a1, "10.0.2.1", NET.find("app"), payload=b"odd"), b"\x01\x02",
              F.udp_frame(w1, "8.8.8.8", web), F.udp_frame(a1, "8.8.8.8", NET.find("app"))]
    return frames, [w1.port, w1.port, a1.port, w1.port, w1.port, a1.port]


def test_process_matches_forward_and_rewrites_in_place() -> None:
    frames, ports = _batch()
    batch = FrameBatch.from_frames(frames, port=ports)
    res = REF.process(batch)
    assert res.frames is batch
    assert res.action.dtype == np.uint8 and res.reason.dtype == np.uint8
    assert res.egress.dtype == np.int32 and res.route.dtype == np.int32
    for i, (f, p) in enumerate(zip(frames, ports)):
        v = REF.forward(f, p)
        assert (res.action[i], res.reason[i], res.egress[i], res.route[i]) == (v.action, v.reason, v.egress, v.route)
        assert batch.frame(i) == v.frame
    assert list(res.action) == [Action.DELIVER, Action.REPLY, Action.REPLY, Action.DROP, Action.FORWARD,
                                Action.DROP]
    assert batch.frame(0) != frames[0]  # rewritten in place


def test_process_copy_leaves_input_untouched() -> None:
    frames, ports = _batch()
    batch = FrameBatch.from_frames(frames, port=ports)
    res = REF.process(batch, copy=True)
    assert res.frames is not batch
    assert list(batch) == frames
    assert res.frames.frame(1) != frames[1]


def test_reads_network_live() -> None:
    """No snapshot: a route added after construction is seen (build it next to compile())."""
    net = seed_vpc()
    ref = ReferenceForwarder(net)
    a1 = net.find("app1")
    frame = F.udp_frame(a1, "8.8.8.8", net.find("app"))
    assert ref.forward(frame, a1.port).reason == DropReason.NO_ROUTE
    net.find("rt-main").add_route("0.0.0.0/0", net.find("vgw"))
    assert ref.forward(frame, a1.port).action == Action.FORWARD


def test_process_read_only_batch_needs_copy() -> None:
    from fastvpc.errors import FrameBatchError

    frames, ports = _batch()
    data = np.frombuffer(b"".join(frames), dtype=np.uint8)  # read-only view
    offsets = np.cumsum([0] + [len(f) for f in frames]).astype(np.int64)
    batch = FrameBatch(data, offsets, np.array(ports, np.int32))
    assert not batch.writeable
    with pytest.raises(FrameBatchError, match="read-only"):
        REF.process(batch)
    res = REF.process(batch, copy=True)
    assert list(batch) == frames and res.frames.frame(1) != frames[1]


# --------------------------------------------------------------------------- the pipeline and its recorder

def test_stages_are_the_pipeline() -> None:
    """The stage names are shared with the kernel's driver (forward.stage_names()): fixed, in this order."""
    from fastvpc.reference import STAGES

    assert ReferenceForwarder.STAGES == STAGES == ("ingress", "arp", "router", "edge_ingress", "sg_egress",
                                                  "nacl_egress", "local", "route", "nat", "edge_egress",
                                                  "nacl_ingress", "sg_ingress", "rewrite")
    for name in STAGES:
        assert callable(getattr(REF, name)), name


def _hops(frame: bytes, port: int, net: object = NET) -> tuple[Verdict, list[Hop]]:
    hops: list[Hop] = []
    ref = REF if net is NET else net if isinstance(net, ReferenceForwarder) else ReferenceForwarder(net)  # type: ignore[arg-type]
    return ref.forward(frame, port, hops=hops), hops


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100), st.sampled_from(PORTS))
def test_recorder_changes_nothing_and_follows_the_stages(frame: bytes, port: int) -> None:
    from fastvpc.reference import STAGES

    v, hops = _hops(frame, port)
    assert v == REF.forward(frame, port)
    assert hops, "every verdict is explained"
    order = [STAGES.index(h.stage) for h in hops]
    assert order == sorted(order)
    assert all(h.kind and h.name is not None and h.detail for h in hops)


def test_recorder_on_the_seed_paths() -> None:
    w1, web, web2 = NET.find("web1"), NET.find("web"), NET.find("web2")
    v, hops = _hops(F.udp_frame(w1, "10.0.3.10", web), w1.port)          # routed DELIVER to db1
    assert v.action == Action.DELIVER
    assert [(h.stage, h.kind) for h in hops] == [("ingress", "eni"), ("sg_egress", "sg"), ("nacl_egress", "acl"),
                                                 ("local", "subnet"), ("route", "route-table"), ("route", "route"),
                                                 ("route", "vpc"), ("nacl_ingress", "acl"), ("sg_ingress", "sg"),
                                                 ("rewrite", "eni")]
    _, plain = _hops(F.udp_frame(w1, "10.0.3.10", web), w1.port, ReferenceForwarder(NET, filters=False))
    assert [(h.stage, h.kind) for h in plain] == [("ingress", "eni"), ("local", "subnet"), ("route", "route-table"),
                                                  ("route", "route"), ("route", "vpc"), ("rewrite", "eni")]
    assert hops[-1].name == "db1" and NET.find("db").gateway_mac in hops[-1].detail
    v, hops = _hops(F.arp_request(w1, None, "10.0.1.20"), w1.port)       # ARP for web2
    assert v.action == Action.REPLY
    assert [(h.stage, h.kind, h.name) for h in hops] == [("ingress", "eni", "web1"), ("arp", "arp", "web2")]
    assert web2.mac in hops[1].detail
    v, hops = _hops(F.arp_request(w1, None, "10.0.1.99"), w1.port)
    assert v.reason == DropReason.ARP_NO_ENTRY and hops[-1].kind == "arp" and "10.0.1.99" in hops[-1].detail
    v, hops = _hops(F.udp_frame(w1, "10.0.2.20", web), NET.find("igw").port, ReferenceForwarder(NET, edge=False))
    assert v.reason == DropReason.UNKNOWN_PORT and [h.kind for h in hops] == ["port"]
    assert "igw" in hops[0].detail
    v, hops = _hops(b"\x00" * 10, w1.port)
    assert v.reason == DropReason.MALFORMED and (hops[0].kind, hops[0].name) == ("frame", "web1")
    bad = bytearray(F.udp_frame(w1, "10.0.2.20", web))
    bad[24] ^= 0xFF                                                       # header checksum
    v, hops = _hops(bytes(bad), w1.port)
    assert v.reason == DropReason.MALFORMED and "checksum" in hops[-1].detail
    v, hops = _hops(F.udp_frame(w1, "10.0.2.20", "02:00:00:00:00:99"), w1.port)
    assert v.reason == DropReason.UNKNOWN_MAC and hops[-1].kind == "frame" and "02:00:00:00:00:99" in hops[-1].detail
    v, hops = _hops(F.udp_frame(w1, "10.0.2.20", web, src_ip="10.0.1.99"), w1.port)
    assert v.reason == DropReason.SRC_DST_CHECK and "not one of its addresses" in hops[0].detail


def test_hops_are_plain_data() -> None:
    h = Hop("eni", "web1", "ingress", "ingress")
    assert h.to_dict() == {"kind": "eni", "name": "web1", "detail": "ingress", "stage": "ingress"}
    assert str(h).startswith("eni         web1: ingress")
    with pytest.raises(AttributeError):
        h.kind = "x"  # type: ignore[misc]


def test_process_is_a_forwarder() -> None:
    from fastvpc.dataplane import Forwarder

    assert isinstance(REF, Forwarder)
