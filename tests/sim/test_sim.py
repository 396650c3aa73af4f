"""fastvpc.sim: same-instant batching into one process() call with the simulator's clock, verdicts
routed as the data plane says, ports checked, SimHost frames, the SimPy adapter."""

from __future__ import annotations

import pytest

simpy = pytest.importorskip("simpy", reason="the test extra installs simpy")
pytest.importorskip("ns", reason="the test extra installs ns.py")

from ns.packet.sink import PacketSink  # noqa: E402

import fastvpc as fv  # noqa: E402
from fastvpc.batch import FrameBatch  # noqa: E402
from fastvpc.examples import seed_vpc  # noqa: E402
from fastvpc.sim import NsPySwitch, SimError, SimHost, SimPySwitch, Verdict, process_keywords  # noqa: E402


class Recorder:
    """A sink recording (time, packet)."""

    def __init__(self, env):
        self.env = env
        self.got = []

    def put(self, packet):
        self.got.append((self.env.now, packet))


class ClockedDataplane:
    """A Dataplane whose process() takes state=/now= (as with connection tracking installed): it
    records what it was given and forwards statelessly."""

    def __init__(self, dp):
        self.dp = dp
        self.port_names = dp.port_names
        self.calls = []

    def process(self, batch, copy=False, out=None, n_threads=None, state=None, now=None):
        self.calls.append((len(batch), state, now))
        return self.dp.process(batch, copy=copy, out=out, n_threads=n_threads)


@pytest.fixture
def world():
    net = seed_vpc()
    return net, net.compile()


def _hosts(net):
    return {n: SimHost(n, net) for n in ("web1", "web2", "app1", "db1")}


def test_frames_of_one_instant_go_through_one_process_call_at_the_simulated_clock(world):
    net, dp = world
    env = simpy.Environment(initial_time=2.5)
    cdp = ClockedDataplane(dp)
    sw = NsPySwitch(env, cdp)
    h = _hosts(net)
    for host in h.values():
        sw.connect(host.port, Recorder(env))

    def sender(env, host, peer, times):
        for t in times:
            yield env.timeout(t - env.now)
            sw.put(host.packet(env, host.udp(peer.ip, 1000, 7)))

    env.process(sender(env, h["web1"], h["web2"], [3.0, 4.0, 4.0]))
    env.process(sender(env, h["app1"], h["web1"], [3.0, 4.0]))
    env.process(sender(env, h["db1"], h["app1"], [4.0, 5.25]))
    env.run()
    # one call per instant, now = env.now in ns: 3.0 (2 frames), 4.0 (4 frames), 5.25 (1 frame); web1's
    # second frame at 4.0 comes after a zero-delay timeout, i.e. after the instant's flush event was
    # scheduled: the flush runs after every other event of the instant, so it is in the same batch
    assert [(n, now) for n, _, now in cdp.calls] == [(2, 3_000_000_000), (4, 4_000_000_000), (1, 5_250_000_000)]
    assert all(state is sw.flows and state is not None for _, state, _ in cdp.calls)
    assert isinstance(sw.flows, fv.FlowTable)
    assert sw.batches == 3 and sw.frames == 7 and sw.counts == {"DELIVER": 7}


def test_a_clock_in_integer_ns_since_the_epoch_reaches_process_exactly(world):
    """now = the simulator's clock, to the ns: a SimPy clock counting ns since the epoch (ns_per_unit=1)
    is past 2**53, where a float product rounds it by up to 128 ns."""
    net, dp = world
    t0 = 1_700_000_400_000_000_123
    env = simpy.Environment(initial_time=t0)
    cdp = ClockedDataplane(dp)
    sw = SimPySwitch(env, cdp, ns_per_unit=1)
    h = _hosts(net)

    def sender(env):
        yield sw.send(h["web1"].port, h["web1"].udp(h["app1"].ip, 1, 2))
        yield env.timeout(100)
        yield sw.send(h["web1"].port, h["web1"].udp(h["app1"].ip, 1, 2))

    env.process(sender(env))
    env.run()
    assert [now for _, _, now in cdp.calls] == [t0, t0 + 100]
    # a float clock in seconds keeps its exact value, rounded to the ns
    env = simpy.Environment(initial_time=0.1)
    cdp = ClockedDataplane(dp)
    sw = SimPySwitch(env, cdp)
    assert sw.now_ns() == 100_000_000
    for bad in (float("inf"), float("nan"), -1, True):
        with pytest.raises(SimError, match="ns_per_unit"):
            SimPySwitch(env, cdp, ns_per_unit=bad)


class _Relay:
    """An ns.py-style element for ``host``: whatever it gets, it answers at once with a frame of its own
    to ``peer`` (a zero-delay hop: the flush's own output makes a new frame at the same instant),
    while the shared ``budget`` lasts."""

    def __init__(self, switch, host, peer, budget):
        self.switch, self.host, self.peer, self.budget, self.got = switch, host, peer, budget, []

    def put(self, packet):
        env = self.switch.env
        self.got.append(env.now)
        if self.budget[0] > 0:
            self.budget[0] -= 1
            self.switch.put(self.host.packet(env, self.host.udp(self.peer.ip, 2000, 7)))


def _late_senders(env, put, h, go):
    """Three senders at t=1.0: web1 at once (then hands off to db1 through the Store ``go``), web2 after
    an extra zero-delay step, db1 when web1's hand-off wakes it: all three frames are put at t=1.0,
    two of them after the first one scheduled the instant's flush."""
    def web1(env):
        yield env.timeout(1.0)
        put(h["web1"], h["app1"])
        go.put("go")

    def web2(env):
        yield env.timeout(1.0)
        yield env.timeout(0)
        yield env.timeout(0)
        put(h["web2"], h["app1"])

    def db1(env):
        yield go.get()
        put(h["db1"], h["app1"])

    return [env.process(p(env)) for p in (web1, web2, db1)]


def test_frames_put_late_in_an_instant_still_join_its_one_batch_nspy(world):
    """DESIGN §8 (the audit's case): frames put at one instant by processes woken later in it (an extra
    ``timeout(0)``, a Store hand-off) are in the instant's one process() call."""
    net, dp = world
    env = simpy.Environment()
    cdp = ClockedDataplane(dp)
    sw = NsPySwitch(env, cdp)
    h = _hosts(net)
    sinks = {n: Recorder(env) for n in h}
    for n, host in h.items():
        sw.connect(host.port, sinks[n])
    _late_senders(env, lambda src, dst: sw.put(src.packet(env, src.udp(dst.ip, 1000, 7))), h, simpy.Store(env))
    env.run()
    assert [(n, now) for n, _, now in cdp.calls] == [(3, 1_000_000_000)]
    assert [t for t, _ in sinks["app1"].got] == [1.0, 1.0, 1.0]


def test_frames_put_late_in_an_instant_still_join_its_one_batch_simpy(world):
    net, dp = world
    env = simpy.Environment()
    cdp = ClockedDataplane(dp)
    sw = SimPySwitch(env, cdp)
    h = _hosts(net)
    inbox = sw.port(h["app1"].port).inbox
    verdicts = []

    def put(src, dst):
        ev = sw.send(src.port, src.udp(dst.ip, 1000, 7))
        ev.callbacks.append(lambda e: verdicts.append((env.now, e.value.action)))

    _late_senders(env, put, h, simpy.Store(env))
    env.run()
    assert [(n, now) for n, _, now in cdp.calls] == [(3, 1_000_000_000)]
    assert verdicts == [(1.0, fv.Action.DELIVER)] * 3
    assert len(inbox.items) == 3 and not sw.unconnected


def test_what_a_flush_puts_back_at_its_instant_is_a_later_batch_of_that_instant(world):
    """The flush's output answered at once (web1 and app1 answer each other, three answers in all):
    each answer is a process() call of its own at the same instant, after the one call of the frames
    put before the flush; none is lost, and the simulation ends (no event is scheduled while no frame
    waits)."""
    net, dp = world
    env = simpy.Environment()
    cdp = ClockedDataplane(dp)
    sw = NsPySwitch(env, cdp)
    h = _hosts(net)
    budget = [3]
    relays = {"web1": _Relay(sw, h["web1"], h["app1"], budget), "app1": _Relay(sw, h["app1"], h["web1"], budget)}
    for n, r in relays.items():
        sw.connect(h[n].port, r)
    db1 = Recorder(env)
    sw.connect(h["db1"].port, db1)

    def sender(env):
        yield env.timeout(2.0)
        sw.put(h["web1"].packet(env, h["web1"].udp(h["app1"].ip, 1000, 7)))
        yield env.timeout(0)
        sw.put(h["web2"].packet(env, h["web2"].udp(h["db1"].ip, 1000, 7)))

    env.process(sender(env))
    env.run()
    assert [(n, now) for n, _, now in cdp.calls] == [(2, 2_000_000_000)] + [(1, 2_000_000_000)] * 3
    assert relays["app1"].got == [2.0, 2.0] and relays["web1"].got == [2.0, 2.0] and len(db1.got) == 1
    assert sw.frames == 5 and sw.counts == {"DELIVER": 5} and env.now == 2.0


def test_a_simpy_host_answering_its_inbox_at_once_is_a_later_batch_of_the_instant(world):
    net, dp = world
    env = simpy.Environment()
    cdp = ClockedDataplane(dp)
    sw = SimPySwitch(env, cdp)
    h = _hosts(net)
    got = []

    def client(env):
        yield env.timeout(3.0)
        sw.send(h["web1"].port, h["web1"].udp(h["app1"].ip, 1000, 7))
        yield env.timeout(0)
        sw.send(h["web2"].port, h["web2"].udp(h["app1"].ip, 1000, 7))
        for _ in range(2):
            _, came_from = yield sw.port(h["web1"].port).inbox.get()
            got.append((env.now, came_from))

    def server(env):   # answers every frame at once (the inbox hand-off wakes it at the same instant)
        inbox = sw.port(h["app1"].port).inbox
        while True:
            _, came_from = yield inbox.get()
            if came_from == h["web1"].port:
                verdict = yield sw.send(h["app1"].port, h["app1"].udp(h["web1"].ip, 7, 1000))
                assert verdict.action == fv.Action.DELIVER
                sw.send(h["app1"].port, h["app1"].udp(h["web1"].ip, 7, 1001))   # after its verdict: later still

    env.process(client(env))
    env.process(server(env))
    env.run()
    assert [(n, now) for n, _, now in cdp.calls] == [(2, 3_000_000_000), (1, 3_000_000_000), (1, 3_000_000_000)]
    assert got == [(3.0, h["app1"].port)] * 2 and env.now == 3.0


def test_a_run_stopped_by_an_event_of_the_instant_leaves_the_batch_to_the_next_run(world):
    """The instant's call comes after every other event of it, so ``env.run(until=process)`` returns
    before it; the next ``run()`` makes it, at the same instant, and loses nothing."""
    net, dp = world
    env = simpy.Environment()
    sw = SimPySwitch(env, dp)
    h = _hosts(net)
    got = []

    def host(env):
        yield env.timeout(1.0)
        sw.send(h["web1"].port, h["web1"].udp(h["app1"].ip, 1, 7)).callbacks.append(lambda e: got.append(env.now))

    env.run(until=env.process(host(env)))
    assert (env.now, sw.frames, got) == (1.0, 0, [])
    env.run()
    assert (env.now, sw.frames, sw.batches, got) == (1.0, 1, 1, [1.0])


def test_verdicts_are_the_dataplanes_and_leave_where_it_says(world):
    net, dp = world
    env = simpy.Environment()
    drops = Recorder(env)
    sw = NsPySwitch(env, dp, drop=drops)
    h = _hosts(net)
    rx = {name: Recorder(env) for name in h}
    for name, host in h.items():
        sw.connect(host.port, rx[name])
    igw = Recorder(env)
    sw.connect(net.find("igw").port, igw)
    w1, w2, a1 = h["web1"], h["web2"], h["app1"]
    web = net.find("web")
    frames = [(w1, w1.udp(w2.ip, 1, 2)), (w1, w1.tcp(a1.ip, 3, 4)), (w1, w1.ping(web.router_ip)),
              (w1, w1.tcp("8.8.8.8", 5, 443)), (a1, a1.udp("8.8.8.8", 6, 53)), (w1, w1.arp(w2.ip)),
              (w1, w1.udp(web.broadcast_ip, 7, 8))]
    expect = dp.process(FrameBatch.from_frames([f for _, f in frames], port=[s.port for s, _ in frames]))

    sent = []

    def go(env):
        yield env.timeout(1)
        for s, f in frames:
            sent.append(s.packet(env, f))
            sw.put(sent[-1])

    env.run(env.process(go(env)))
    env.run()
    by_id = {}
    for name, r in [*rx.items(), ("igw", igw), ("drop", drops)]:
        for t, p in r.got:
            assert t == 1          # the switch adds no delay
            by_id[id(p)] = (name, p)
    assert len(by_id) == len(frames)
    for i, p in enumerate(sent):
        name = by_id[id(p)][0]
        v = p.vpc_verdict
        assert isinstance(v, Verdict)
        assert (int(v.action), int(v.reason), v.egress) == (expect.action[i], expect.reason[i], expect.egress[i])
        assert p.payload == expect.frames.frame(i) == v.frame and p.size == len(p.payload)
        if v.action == fv.Action.DROP:
            assert name == "drop"
        elif v.action == fv.Action.REPLY:
            assert name == "web1"  # back to the sender
        else:
            assert dp.port_names[v.egress] == name
    assert sw.by_action == {"DELIVER": 2, "REPLY": 2, "FORWARD": 1, "DROP": 2}
    assert sw.by_reason == {"NO_ROUTE": 1, "BROADCAST": 1}


def test_per_packet_mode_gives_the_same_verdicts(world):
    net, dp = world
    results = []
    for batching in (True, False):
        env = simpy.Environment()
        sw = NsPySwitch(env, dp, batching=batching, stateful=False)
        seen = []
        sw.on_verdict = lambda p, ingress, v: seen.append((p.packet_id, ingress, v))
        h = _hosts(net)
        for host in h.values():
            sw.connect(host.port, Recorder(env))

        def go(env, h=h, sw=sw):
            for t in range(3):
                for a in h.values():
                    for b in h.values():
                        sw.put(a.packet(env, a.tcp(b.ip, 100 + t, 22)))
                yield env.timeout(1)

        env.process(go(env))
        env.run()
        results.append((seen, sw.counts, sw.batches))
    assert results[0][0] == results[1][0] and results[0][1] == results[1][1]
    assert results[0][2] == 3 and results[1][2] == 48


def test_ports_the_switch_lacks_are_refused_naming_the_port(world):
    net, dp = world
    env = simpy.Environment()
    sw = NsPySwitch(env, dp)
    w1 = SimHost("web1", net)
    pkt = w1.packet(env, w1.udp("10.0.1.20", 1, 2))
    pkt.src = 99
    with pytest.raises(SimError, match="port 99"):
        sw.put(pkt)
    for call in (lambda: sw.ingress(99), lambda: sw.connect(99, Recorder(env)),
                 lambda: SimPySwitch(env, dp).port(99), lambda: SimPySwitch(env, dp).send(-3, b"x" * 60)):
        with pytest.raises(SimError, match=r"port (99|-3)"):
            call()
    with pytest.raises(SimError, match="port 'eth0'"):
        sw.ingress("eth0")
    with pytest.raises(SimError, match="no put"):
        sw.connect(w1.port, object())
    pkt.src = w1.port
    pkt.payload = None
    with pytest.raises(SimError, match="bytes of an Ethernet frame"):
        sw.put(pkt)
    assert sw.frames == 0 and sw.batches == 0


def test_stateful_and_log_follow_what_process_takes(world):
    net, dp = world
    env = simpy.Environment()
    keywords = process_keywords(dp)
    if "state" in keywords:
        assert isinstance(NsPySwitch(env, dp).flows, fv.FlowTable)
    else:
        assert NsPySwitch(env, dp).flows is None
        with pytest.raises(SimError, match="takes no state="):
            NsPySwitch(env, dp, stateful=True)
    if "log" not in keywords:
        with pytest.raises(SimError, match="takes no log="):
            NsPySwitch(env, dp, log=object())
    assert NsPySwitch(env, dp, stateful=False).flows is None
    with pytest.raises(SimError, match="ns_per_unit"):
        NsPySwitch(env, dp, ns_per_unit=0)
    with pytest.raises(SimError, match="compiled Dataplane"):
        NsPySwitch(env, net)


def test_simhost_resolves_macs_from_the_topology(world):
    net, dp = world
    w1 = SimHost("web1", net)
    w2, app, web = net.find("web2"), net.find("app1"), net.find("web")
    assert w1.next_hop_mac(w2.ip) == w2.mac
    assert w1.next_hop_mac(app.ip) == web.gateway_mac
    assert w1.next_hop_mac("8.8.8.8") == web.gateway_mac
    assert w1.next_hop_mac("10.0.1.77") == web.gateway_mac   # nobody there: the router's MAC
    frames = [w1.udp(w2.ip, 1, 2), w1.tcp(app.ip, 1, 2), w1.ping(web.router_ip), w1.arp(w2.ip)]
    res = dp.process(FrameBatch.from_frames(frames, port=w1.port))
    assert res.action.tolist() == [fv.Action.DELIVER, fv.Action.DELIVER, fv.Action.REPLY, fv.Action.REPLY]
    out = SimHost.outside(net.find("igw"), "198.51.100.1")
    assert out.port == net.find("igw").port and out.ip.exploded == "198.51.100.1"
    with pytest.raises(SimError, match="wants an ENI"):
        SimHost(net.find("igw"))
    with pytest.raises(SimError, match="wants a gateway"):
        SimHost.outside(net.find("web1"), "1.2.3.4")
    with pytest.raises(SimError, match="needs network="):
        SimHost("web1")


def test_simpy_adapter_send_and_inbox(world):
    net, dp = world
    env = simpy.Environment()
    sw = SimPySwitch(env, dp, stateful=False)
    h = _hosts(net)
    ports = {n: sw.port(host.port) for n, host in h.items()}
    log = []

    def client(env):
        yield env.timeout(0.5)
        v1, v2 = yield env.all_of([ports["web1"].send(h["web1"].udp(h["web2"].ip, 1, 7)),
                                   ports["app1"].send(h["app1"].ping(net.find("app").router_ip))])
        log.append(("sent", env.now))

    def server(env):
        frame, came_from = yield ports["web2"].inbox.get()
        log.append(("web2 got", env.now, came_from))
        reply, _ = yield ports["app1"].inbox.get()
        log.append(("app1 got reply", env.now, reply[34]))   # ICMP type 0: echo reply

    env.process(client(env))
    env.process(server(env))
    env.run()
    assert ("web2 got", 0.5, h["web1"].port) in log and ("sent", 0.5) in log
    assert ("app1 got reply", 0.5, 0) in log
    assert sw.batches == 1 and sw.counts == {"DELIVER": 1, "REPLY": 1}
    with pytest.raises(SimError, match="bytes of an Ethernet frame"):
        ports["web1"].send("not bytes")


def test_a_stateless_switch_with_a_flow_log_passes_the_simulated_clock(world):
    # stateful=False keeps no FlowTable, but process() still gets now= (DESIGN §8: now = the
    # simulator's clock): the flow log's records are stamped with the simulated time, not refused
    net, dp = world
    env = simpy.Environment(initial_time=120.0)
    log = fv.FlowLog(window=60)
    sw = SimPySwitch(env, dp, stateful=False, log=log)
    web1, web2 = SimHost("web1", net), SimHost("web2", net)
    got = []

    def host(env):
        yield env.timeout(5)
        got.append((yield sw.port(web1.eni.port).send(web1.udp(web2.eni.ip, 4000, 7))))

    env.process(host(env))
    env.run()
    assert sw.flows is None
    assert [v.action for v in got] == [fv.Action.DELIVER]
    rec = log.records()
    assert len(rec) == 2                      # egress at web1, ingress at web2
    assert set(rec["start"].tolist()) == {125} and set(rec["end"].tolist()) == {125}
