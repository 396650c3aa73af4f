"""FlowTable (connection tracking state) against a pure-Python dict model written from the documented
semantics (DESIGN.md §5, the FlowTable docstrings): sequences of packets in both directions, TCP
handshakes and teardowns, UDP exchanges and streams, ICMP queries, timeouts with time advancing, and
small capacities that fill up and reclaim expired entries."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastvpc as fv
from fastvpc.reference import ReferenceFlowTable
from fastvpc.dataplane.state import (
    DEFAULT_TIMEOUTS,
    FLOWS_DTYPE,
    Admit,
    Direction,
    FlowState,
    FlowTable,
    FlowTableBusyError,
    FlowTableError,
    TrackCode,
    flow_hash,
    timeouts_array,
    timeouts_record,
)

S = 1_000_000_000
A, B, C = 0x0A000001, 0x0A000002, 0x0A000103
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

# ----------------------------------------------------------------------------- the model

# The model is the reference's connection-tracking table (fastvpc.reference.ReferenceFlowTable), a dict
# written from the same documented semantics; here keyed by the same integer ENI identities as the table.


class Model:
    """Adapter: the test's (eni, zone, proto, ...) call order onto ReferenceFlowTable.track."""

    def __init__(self, capacity: int) -> None:
        self.table = ReferenceFlowTable(capacity)

    def step(self, eni, zone, proto, src, dst, sport, dport, flags, length, now, admitted, tmo):
        return self.table.track(eni, proto, src, dst, sport, dport, flags, length, now, admitted, zone=zone,
                                timeouts=tmo)

    def live_rows(self, now: int) -> set:
        return {(f.eni, f.zone, f.proto, f.src, f.dst, f.sport, f.dport, int(f.state), f.first_seen, f.last_seen,
                 f.packets, f.bytes, f.timeout) for f in self.table.flows(now)}


def _table_rows(ft: FlowTable) -> set:
    fl = ft.flows()
    return {(int(r["eni"]), int(r["zone"]), int(r["proto"]), int(r["src"]), int(r["dst"]), int(r["sport"]),
             int(r["dport"]), int(r["state"]), int(r["first_seen"]), int(r["last_seen"]), int(r["packets"]),
             int(r["bytes"]), int(r["timeout"])) for r in fl}


# ----------------------------------------------------------------------------- strategies

SHORT = dict(DEFAULT_TIMEOUTS, tcp_syn_sent=3, tcp_syn_recv=2, tcp_established=20, tcp_fin_wait=3,
             tcp_close_wait=2, tcp_last_ack=1, tcp_time_wait=3, tcp_close=1, tcp_syn_sent2=3,
             udp=2, udp_stream=6, icmp=2, other=5)

TCP_FLAGS = [SYN, SYN | ACK, ACK, PSH | ACK, FIN | ACK, FIN, RST, RST | ACK, 0, SYN | FIN]
ICMP_TYPES = [8, 0, 8, 0, 13, 14, 3, 11, 5]
DT = [0, 0, 1, S // 2, S, 2 * S, 3 * S, 5 * S, 7 * S, 21 * S]


@st.composite
def packets(draw, max_len: int = 60):
    n = draw(st.integers(1, max_len))
    flows = draw(st.lists(st.tuples(st.sampled_from([1, 2]), st.sampled_from([0, 0, 1]),
                                    st.sampled_from([6, 6, 17, 17, 1, 47]),
                                    st.sampled_from([A, B, C]), st.sampled_from([A, B, C]),
                                    st.sampled_from([1000, 80, 1001])), min_size=1, max_size=5))
    t = 0
    out = []
    for _ in range(n):
        eni, zone, proto, a, b, pa = draw(st.sampled_from(flows))
        pb = 80 if pa != 80 else 1000
        if draw(st.booleans()):
            a, b, pa, pb = b, a, pb, pa
        if proto == 6:
            fl = draw(st.sampled_from(TCP_FLAGS))
        elif proto == 1:
            fl = draw(st.sampled_from(ICMP_TYPES))
            pb = draw(st.sampled_from([0, 7]))     # ignored for ICMP
        else:
            fl = 0
        t += draw(st.sampled_from(DT))
        adm = draw(st.sampled_from([0, 1, 1, 1, 2]))
        out.append((eni, zone, proto, a, b, pa, pb, fl, draw(st.integers(0, 1500)), t, adm))
    return out


def _columns(pkts):
    cols = list(zip(*pkts))
    names = ["eni", "zone", "proto", "src", "dst", "sport", "dport", "flags", "length", "now", "admitted"]
    return {k: np.array(v) for k, v in zip(names, cols)}


def _run_table(ft: FlowTable, pkts, tmo, splits=()):
    cols = _columns(pkts)
    rec = timeouts_record(tmo)
    res = []
    bounds = [0, *sorted(set(s for s in splits if 0 < s < len(pkts))), len(pkts)]
    for lo, hi in zip(bounds, bounds[1:]):
        sl = {k: v[lo:hi] for k, v in cols.items()}
        r = ft.track(sl["eni"], sl["proto"], sl["src"], sl["dst"], sl["sport"], sl["dport"], sl["flags"],
                     sl["length"], sl["now"], sl["admitted"], zone=sl["zone"], timeouts=rec)
        res.extend(zip(r.code.tolist(), r.direction.tolist(), r.state.tolist()))
    return res


def _run_model(m: Model, pkts, tmo):
    out = []
    for eni, zone, proto, a, b, pa, pb, fl, ln, t, adm in pkts:
        c, d, s = m.step(eni, zone, proto, a, b, pa, pb, fl, ln, t, adm, tmo)
        out.append((int(c), int(d), int(s)))
    return out


# ----------------------------------------------------------------------------- differential

@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pkts=packets(), capacity=st.integers(1, 6), short=st.booleans(),
       splits=st.lists(st.integers(0, 60), max_size=4))
def test_table_equals_dict_model(pkts, capacity, short, splits):
    tmo = SHORT if short else dict(DEFAULT_TIMEOUTS)
    ft = FlowTable(capacity)
    m = Model(capacity)
    got = _run_table(ft, pkts, tmo, splits)
    want = _run_model(m, pkts, tmo)
    assert got == want
    assert len(ft) <= capacity
    end = pkts[-1][9]
    ft.expire(end)
    assert _table_rows(ft) == m.live_rows(end)
    assert len(ft) == len(m.live_rows(end))


def test_long_random_sequence_crosses_chunks():
    """> 256 packets per call (the stack chunk), 40 flows, a capacity that fills, time advancing."""
    rng = np.random.default_rng(7)
    flows = [(int(rng.integers(1, 4)), int(rng.choice([6, 17, 1, 50])), int(rng.integers(A, A + 6)),
              int(rng.integers(A, A + 6)), int(rng.integers(1, 5))) for _ in range(40)]
    pkts = []
    t = 0
    for _ in range(3000):
        eni, proto, a, b, pa = flows[int(rng.integers(len(flows)))]
        pb = 443
        if rng.random() < 0.5:
            a, b, pa, pb = b, a, pb, pa
        fl = int(rng.choice(TCP_FLAGS)) if proto == 6 else int(rng.choice(ICMP_TYPES)) if proto == 1 else 0
        t += int(rng.choice([0, 10_000, S // 4, S]))
        pkts.append((eni, 0, proto, a, b, pa, pb, fl, int(rng.integers(40, 1500)), t, int(rng.choice([0, 1, 1, 2]))))
    ft = FlowTable(12)
    m = Model(12)
    assert _run_table(ft, pkts, SHORT, splits=[700, 1500]) == _run_model(m, pkts, SHORT)
    ft.expire(t)
    assert _table_rows(ft) == m.live_rows(t)
    assert ft.reclaimed > 0


# ----------------------------------------------------------------------------- behaviours

def _one(ft, src, dst, sport, dport, flags, now, admitted=1, proto=6, eni=1, length=60, **kw):
    r = ft.track(eni, proto, src, dst, sport, dport, flags, length, now, admitted, **kw)
    return TrackCode(int(r.code[0])), Direction(int(r.direction[0])), FlowState(int(r.state[0]))


def test_tcp_handshake_and_teardown():
    ft = FlowTable(10)
    seq = [(A, B, 5000, 80, SYN, TrackCode.NEW, Direction.ORIGINAL, FlowState.TCP_SYN_SENT),
           (B, A, 80, 5000, SYN | ACK, TrackCode.HIT, Direction.REPLY, FlowState.TCP_SYN_RECV),
           (A, B, 5000, 80, ACK, TrackCode.HIT, Direction.ORIGINAL, FlowState.TCP_ESTABLISHED),
           (B, A, 80, 5000, PSH | ACK, TrackCode.HIT, Direction.REPLY, FlowState.TCP_ESTABLISHED),
           (A, B, 5000, 80, FIN | ACK, TrackCode.HIT, Direction.ORIGINAL, FlowState.TCP_FIN_WAIT),
           (B, A, 80, 5000, ACK, TrackCode.HIT, Direction.REPLY, FlowState.TCP_CLOSE_WAIT),
           (B, A, 80, 5000, FIN | ACK, TrackCode.HIT, Direction.REPLY, FlowState.TCP_LAST_ACK),
           (A, B, 5000, 80, ACK, TrackCode.HIT, Direction.ORIGINAL, FlowState.TCP_TIME_WAIT)]
    for i, (s, d, sp, dp, f, code, direction, state) in enumerate(seq):
        # the replies are denied by the rules: only tracking admits them
        assert _one(ft, s, d, sp, dp, f, i * S, admitted=1 if i == 0 else 0) == (code, direction, state), i
    fl = ft.flows()
    assert fl["timeout"][0] == DEFAULT_TIMEOUTS["tcp_time_wait"]
    # TIME_WAIT lasts 120 s: a packet at +121 s is no longer tracked
    assert _one(ft, B, A, 80, 5000, ACK, 7 * S + 121 * S, admitted=0)[0] == TrackCode.MISS


def test_only_syn_or_plain_ack_opens_tcp():
    for flags, opens in [(SYN, True), (ACK, True), (PSH | ACK, True), (SYN | ACK, False), (FIN | ACK, False),
                         (RST, False), (RST | ACK, False), (0, False)]:
        ft = FlowTable(4)
        code, _, state = _one(ft, A, B, 999, 22, flags, 0)
        assert (code == TrackCode.NEW) == opens, hex(flags)
        assert code == (TrackCode.NEW if opens else TrackCode.PASS)
        assert len(ft) == (1 if opens else 0)
    ft = FlowTable(4)
    assert _one(ft, A, B, 999, 22, ACK, 0)[2] == FlowState.TCP_ESTABLISHED   # loose pickup
    assert _one(ft, B, A, 22, 999, ACK, 1, admitted=0) == (TrackCode.HIT, Direction.REPLY,
                                                            FlowState.TCP_ESTABLISHED)


def test_tcp_established_timeout_is_awss_and_per_eni():
    ft = FlowTable(4)
    _one(ft, A, B, 1, 2, ACK, 0)
    assert ft.flows()["timeout"][0] == 432_000
    assert _one(ft, B, A, 2, 1, ACK, 432_000 * S, admitted=0)[0] == TrackCode.HIT
    assert _one(ft, B, A, 2, 1, ACK, 2 * 432_000 * S + 1, admitted=0)[0] == TrackCode.MISS

    class Tracking:                     # the shape of fv.Tracking (DESIGN §5)
        tcp_established = 350
        udp = 30
        udp_stream = 60

    ft = FlowTable(4)
    _one(ft, A, B, 1, 2, ACK, 0, timeouts=Tracking())
    assert ft.flows()["timeout"][0] == 350
    assert _one(ft, B, A, 2, 1, ACK, 350 * S, admitted=0, timeouts=Tracking())[0] == TrackCode.HIT
    assert _one(ft, B, A, 2, 1, ACK, 700 * S + 1, admitted=0, timeouts=Tracking())[0] == TrackCode.MISS


def test_udp_single_exchange_30s_stream_180s():
    ft = FlowTable(8)
    assert _one(ft, A, B, 5353, 53, 0, 0, proto=17)[2] == FlowState.UDP_UNREPLIED
    assert _one(ft, B, A, 53, 5353, 0, 1 * S, proto=17, admitted=0)[2] == FlowState.UDP_REPLIED
    # one request-response: 30 s after the last packet it is gone
    assert _one(ft, B, A, 53, 5353, 0, 31 * S + 1, proto=17, admitted=0)[0] == TrackCode.MISS
    ft = FlowTable(8)
    t = 0
    for s, d, sp, dp, want in [(A, B, 7, 9, FlowState.UDP_UNREPLIED), (B, A, 9, 7, FlowState.UDP_REPLIED),
                               (A, B, 7, 9, FlowState.UDP_REPLIED), (B, A, 9, 7, FlowState.UDP_STREAM)]:
        assert _one(ft, s, d, sp, dp, 0, t, proto=17, admitted=int(t == 0))[2] == want
        t += S
    last = t - S
    assert _one(ft, B, A, 9, 7, 0, last + 170 * S, proto=17, admitted=0)[0] == TrackCode.HIT
    assert _one(ft, B, A, 9, 7, 0, last + 170 * S + 180 * S + 1, proto=17, admitted=0)[0] == TrackCode.MISS


def test_icmp_echo_by_identifier():
    ft = FlowTable(8)
    assert _one(ft, A, B, 77, 0, 8, 0, proto=1) == (TrackCode.NEW, Direction.ORIGINAL, FlowState.ICMP_UNREPLIED)
    assert _one(ft, B, A, 77, 0, 0, 1, proto=1, admitted=0) == (TrackCode.HIT, Direction.REPLY,
                                                                 FlowState.ICMP_REPLIED)
    assert _one(ft, B, A, 78, 0, 0, 2, proto=1, admitted=0)[0] == TrackCode.MISS       # another id
    assert _one(ft, B, A, 77, 0, 14, 3, proto=1, admitted=0)[0] == TrackCode.MISS      # timestamp reply
    assert _one(ft, B, A, 77, 0, 8, 4, proto=1, admitted=0)[0] == TrackCode.MISS       # B pinging A: its own flow
    assert _one(ft, A, B, 1, 0, 0, 5, proto=1)[0] == TrackCode.PASS                    # a lone reply opens none
    assert _one(ft, B, A, 0, 0, 3, 6, proto=1, admitted=0)[0] == TrackCode.MISS        # errors are not "related"
    assert _one(ft, B, A, 0, 0, 3, 7, proto=1, admitted=1)[0] == TrackCode.PASS
    fl = ft.flows()
    assert fl.size == 1 and (fl["src"][0], fl["dst"][0], fl["sport"][0], fl["dport"][0]) == (A, B, 77, 8)


def test_other_protocols_by_addresses_600s():
    ft = FlowTable(8)
    assert _one(ft, A, B, 1, 2, 0, 0, proto=47)[0] == TrackCode.NEW
    assert _one(ft, B, A, 9, 9, 0, 599 * S, proto=47, admitted=0) == (TrackCode.HIT, Direction.REPLY,
                                                                       FlowState.OTHER_REPLIED)
    assert _one(ft, B, A, 0, 0, 0, 599 * S + 600 * S + 1, proto=47, admitted=0)[0] == TrackCode.MISS


def test_untracked_admission_opens_nothing_but_matches_tracked():
    ft = FlowTable(8)
    assert _one(ft, A, B, 1, 2, SYN, 0, admitted=Admit.UNTRACKED)[0] == TrackCode.PASS
    assert len(ft) == 0
    _one(ft, A, B, 1, 2, SYN, 1)
    assert _one(ft, B, A, 2, 1, SYN | ACK, 2, admitted=Admit.UNTRACKED)[0] == TrackCode.HIT


def test_zone_and_eni_separate_tables():
    ft = FlowTable(8)
    _one(ft, A, B, 1, 2, SYN, 0, eni=5)
    assert _one(ft, B, A, 2, 1, SYN | ACK, 1, eni=6, admitted=0)[0] == TrackCode.MISS
    assert _one(ft, B, A, 2, 1, SYN | ACK, 1, eni=5, admitted=0, zone=1)[0] == TrackCode.MISS
    assert _one(ft, B, A, 2, 1, SYN | ACK, 1, eni=5, admitted=0)[0] == TrackCode.HIT


def test_full_then_expired_entries_are_reclaimed():
    ft = FlowTable(2)
    assert _one(ft, A, B, 1, 53, 0, 0, proto=17)[0] == TrackCode.NEW
    assert _one(ft, A, B, 2, 53, 0, 0, proto=17)[0] == TrackCode.NEW
    assert _one(ft, A, B, 3, 53, 0, 10 * S, proto=17)[0] == TrackCode.FULL
    assert _one(ft, A, B, 4, 53, 0, 10 * S, proto=17, admitted=0)[0] == TrackCode.MISS    # denied anyway
    assert _one(ft, A, B, 1, 53, 0, 10 * S, proto=17)[0] == TrackCode.HIT                 # tracked still pass
    assert _one(ft, A, B, 3, 53, 0, 31 * S, proto=17)[0] == TrackCode.NEW                 # flow 2 expired
    assert len(ft) == 2
    assert ft.reclaimed >= 1
    assert ft.expire(41 * S) == 1 and len(ft) == 1     # flow 1 (last seen 10 s) expired at 40 s
    assert ft.expire(62 * S) == 1 and len(ft) == 0


def test_full_table_of_many_flows_with_large_capacity():
    n = 5000
    ft = FlowTable(n)
    src = np.arange(n, dtype=np.uint32) + A
    r = ft.track(1, 17, src, B, 1000, 53, 0, 100, 0, 1)
    assert (r.code == TrackCode.NEW).all() and len(ft) == n
    r = ft.track(1, 17, src[:10] + n, B, 1000, 53, 0, 100, S, 1)
    assert (r.code == TrackCode.FULL).all()
    r = ft.track(1, 17, B, src, 53, 1000, 0, 100, 2 * S, 0)        # every reply still tracked
    assert (r.code == TrackCode.HIT).all() and (r.direction == Direction.REPLY).all()
    r = ft.track(1, 17, src[:10] + n, B, 1000, 53, 0, 100, 33 * S, 1)   # all expired (last at 2 s)
    assert (r.code == TrackCode.NEW).all()
    ft.expire(33 * S)
    assert len(ft) == 10


def test_reopen_from_time_wait():
    ft = FlowTable(4)
    for i, (s, d, sp, dp, f) in enumerate([(A, B, 1, 2, SYN), (B, A, 2, 1, SYN | ACK), (A, B, 1, 2, ACK),
                                           (A, B, 1, 2, FIN | ACK), (B, A, 2, 1, FIN | ACK), (A, B, 1, 2, ACK)]):
        _one(ft, s, d, sp, dp, f, i)
    assert ft.flows()["state"][0] == FlowState.TCP_TIME_WAIT
    # the server side opens the same 5-tuple anew: a new flow, originated by B
    assert _one(ft, B, A, 2, 1, SYN, 10, admitted=0)[0] == TrackCode.HIT        # reply-direction SYN: still the old flow
    assert _one(ft, A, B, 1, 2, SYN, 11, admitted=0)[0] == TrackCode.MISS       # re-opening SYN, denied: flow ended
    assert len(ft) == 0
    assert _one(ft, A, B, 1, 2, SYN, 12) == (TrackCode.NEW, Direction.ORIGINAL, FlowState.TCP_SYN_SENT)
    assert ft.flows()["first_seen"][0] == 12


def test_flows_fields():
    ft = FlowTable(16)
    ft.track(9, 6, B, A, 40000, 443, SYN, 60, 1000, 1, zone=3)
    ft.track(9, 6, A, B, 443, 40000, SYN | ACK, 64, 2000, 0, zone=3)
    fl = ft.flows()
    assert fl.dtype == FLOWS_DTYPE and fl.size == 1
    r = fl[0]
    assert (r["eni"], r["zone"], r["proto"], r["src"], r["dst"], r["sport"], r["dport"]) == (9, 3, 6, B, A, 40000, 443)
    assert r["state"] == FlowState.TCP_SYN_RECV
    assert (r["first_seen"], r["last_seen"], r["packets"], r["bytes"]) == (1000, 2000, 2, 124)
    assert r["timeout"] == DEFAULT_TIMEOUTS["tcp_syn_recv"]
    assert r["expires"] == 2000 + 60 * S
    assert ft.flows(now=2000 + 60 * S).size == 1 and ft.flows(now=2000 + 60 * S + 1).size == 0


def test_now_backwards_raises_and_changes_nothing():
    ft = FlowTable(4)
    _one(ft, A, B, 1, 2, SYN, 100)
    with pytest.raises(ValueError, match="backwards"):
        _one(ft, A, B, 3, 4, SYN, 99)
    with pytest.raises(ValueError, match=r"now\[2\]"):
        ft.track(1, 6, A, B, [5, 6, 7], 2, SYN, 60, [100, 200, 150], 1)
    with pytest.raises(ValueError, match="backwards"):
        ft.expire(50)
    assert len(ft) == 1 and ft.clock == 100
    with pytest.raises(ValueError):
        ft.expire(-1)


def test_bad_inputs_are_typed_errors():
    ft = FlowTable(4)
    with pytest.raises(FlowTableError, match="sport"):
        ft.track(1, 6, A, B, 70000, 2, SYN, 60, 0, 1)
    with pytest.raises(FlowTableError, match="admitted"):
        ft.track(1, 6, A, B, 1, 2, SYN, 60, 0, 3)
    with pytest.raises(FlowTableError, match="admitted has 3 values, expected 2"):
        ft.track(1, [6, 6], A, B, 1, 2, SYN, 60, 0, [1, 1, 1])
    with pytest.raises(FlowTableError, match="src"):
        ft.track(1, 6, 1.5, B, 1, 2, SYN, 60, 0, 1)
    with pytest.raises(FlowTableError, match="timeout_index"):
        ft.track(1, 6, A, B, 1, 2, SYN, 60, 0, 1, timeouts=timeouts_array([None, None]), timeout_index=2)
    with pytest.raises(FlowTableError, match="udp"):
        timeouts_record(udp=-1)
    with pytest.raises(FlowTableError, match="tcp_bogus"):
        timeouts_record(tcp_bogus=5)
    with pytest.raises(FlowTableError, match="udp_stream"):
        timeouts_record({"udp_stream": True})
    with pytest.raises(TypeError):
        FlowTable(2.5)  # type: ignore[arg-type]
    with pytest.raises(FlowTableError, match="capacity"):
        FlowTable(0)
    assert len(ft) == 0 and ft.clock is None


def test_per_packet_timeout_records():
    ft = FlowTable(8)
    recs = timeouts_array([None, {"udp": 5}])
    r = ft.track([1, 2], 17, A, B, 1, 2, 0, 10, 0, 1, timeouts=recs, timeout_index=[0, 1])
    assert (r.code == TrackCode.NEW).all()
    fl = ft.flows()
    assert dict(zip(fl["eni"].tolist(), fl["timeout"].tolist())) == {1: 30, 2: 5}


def test_bytes_per_flow_at_most_64():
    for cap in (100, 1000, 12_345, 1_000_000):
        ft = FlowTable(cap)
        assert ft.nbytes / cap <= 64, cap
    assert FlowTable().capacity == 1_000_000


def test_clear():
    ft = FlowTable(4)
    _one(ft, A, B, 1, 2, SYN, 10 * S)
    ft.clear()
    assert len(ft) == 0 and ft.clock is None and ft.flows().size == 0
    assert _one(ft, A, B, 1, 2, SYN, 0)[0] == TrackCode.NEW


def test_exported_as_fastvpc_flowtable():
    assert fv.FlowTable is FlowTable


def test_python_mirrors_match_the_compiled_constants():
    from fastvpc.dataplane import _flowtable
    lay = _flowtable._layout()
    assert {s.name: int(s) for s in FlowState if s.name != "NONE"} == lay["states"]
    assert {c.name: int(c) for c in TrackCode} == lay["codes"]
    assert lay["entry_size"] == 48 and lay["timeouts_size"] == 64


# ----------------------------------------------------------------------------- flow hash

@given(st.sampled_from([6, 17, 1, 47]), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
       st.integers(0, 65535), st.integers(0, 65535), st.integers(0, 65535))
def test_flow_hash_symmetric(proto, s, d, sp, dp, other_port):
    if proto == 1:      # the identifier is in sport both ways; dport is ignored
        assert flow_hash(1, s, d, sp, dp)[0] == flow_hash(1, d, s, sp, other_port)[0]
        return
    h = flow_hash([proto, proto], [s, d], [d, s], [sp, dp], [dp, sp])
    assert h[0] == h[1]
    if proto == 47:     # addresses only
        assert flow_hash(47, s, d, sp, dp)[0] == flow_hash(47, d, s, other_port, 0)[0]


def test_flow_hash_spreads():
    rng = np.random.default_rng(1)
    n = 100_000
    src = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    h = flow_hash(6, src, B, 1000, 80)
    assert np.unique(h).size == np.unique(src).size
    shards = np.bincount((h % np.uint64(8)).astype(np.int64), minlength=8)
    assert shards.min() > n / 8 * 0.95


# ----------------------------------------------------------------------------- the guard

def test_guard_refuses_a_second_user():
    ft = FlowTable(4)
    ft.acquire()
    with pytest.raises(FlowTableBusyError):
        ft.track(1, 6, A, B, 1, 2, SYN, 60, 0, 1)
    with pytest.raises(FlowTableBusyError):
        ft.acquire()
    with pytest.raises(FlowTableBusyError):
        ft.expire(0)
    ft.release()
    with ft.guard():
        with pytest.raises(FlowTableBusyError):
            ft.flows()
    assert _one(ft, A, B, 1, 2, SYN, 0)[0] == TrackCode.NEW


def test_concurrent_track_calls_never_corrupt():
    """Two threads hammer one table: each call either runs whole or raises FlowTableBusyError; the
    result equals running the calls that ran, in the order they took the table."""
    ft = FlowTable(200_000)
    n = 5_000
    busy = [0, 0]
    ran: list[tuple[int, int]] = []
    lock = threading.Lock()
    clock = [0]

    def worker(w: int) -> None:
        for k in range(15):
            with lock:
                clock[0] += 1
                t = clock[0]
            src = np.arange(n, dtype=np.uint32) + A + w * n
            try:
                ft.track(w + 1, 17, src, B, k, 53, 0, 10, t * S, 1)
            except FlowTableBusyError:
                busy[w] += 1
            except ValueError:      # the other thread ran with a later clock first: refused, nothing changed
                pass
            else:
                with lock:
                    ran.append((w, k))

    ts = [threading.Thread(target=worker, args=(w,)) for w in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    held = len(ft)
    assert held == len(ft.flows()) == len({(w, k) for w, k in ran}) * n
