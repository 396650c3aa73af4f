"""Unit tests of the reference forwarder alone (its API, robustness, helpers)."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import frames as F  # noqa: E402

from fastvpc.batch import FrameBatch  # noqa: E402
from fastvpc.examples import seed_vpc  # noqa: E402
from fastvpc.reference import ReferenceForwarder, Verdict, internet_checksum  # noqa: E402
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
