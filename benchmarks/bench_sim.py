"""fastvpc.sim: same-instant batching in the ns.py element vs one process() call per packet.

The same simulation both ways: the seed VPC's six VMs each put 100 ns.py packets (64-byte UDP
frames to each other and to the internet) into one ``NsPySwitch`` every simulated microsecond,
for 100 microseconds (60,000 frames); counting sinks on every port.  ``batching=True`` (the
default) closes each instant with one zero-delay end-of-instant event and one ``process()`` call (100 calls);
``batching=False`` calls ``process()`` once per packet, at once (60,000 calls), as a hand-written
SimPy loop around ``Dataplane.process`` would.  The packets are made once and re-sent, so what is
timed is the switch, SimPy's event loop and the sinks.

Each round runs both, alternating (the machine is shared: the ratio of one round is what to trust);
``extra_info`` has the median of each and their ratio.  Run:
``python -m pytest benchmarks/bench_sim.py --benchmark-only -q -p no:cacheprovider``
"""

from __future__ import annotations

import statistics
import time

import pytest

simpy = pytest.importorskip("simpy")
pytest.importorskip("ns")

from fastvpc.examples import seed_vpc  # noqa: E402
from fastvpc.sim import NsPySwitch, SimHost  # noqa: E402

TICKS, PER_TICK = 100, 100


class _Count:
    def __init__(self) -> None:
        self.n = 0

    def put(self, packet: object) -> None:
        self.n += 1


def simulate(batching: bool, ticks: int = TICKS, per_tick: int = PER_TICK) -> tuple[float, int, int]:
    """(seconds of env.run(), frames, process() calls)."""
    net = seed_vpc()
    dp = net.compile()
    env = simpy.Environment()
    sw = NsPySwitch(env, dp, batching=batching, stateful=False)
    hosts = [SimHost(e.name, net) for e in net.enis]
    sink = _Count()
    for t in net.targets:
        sw.connect(t.port, sink)
    packets = {h.port: [h.packet(env, h.udp(hosts[(i + j) % 6].ip if (i + j) % 7 else "198.51.100.1", 1000 + j, 53))
                        for j in range(per_tick)] for i, h in enumerate(hosts)}

    def vm(env: simpy.Environment, port: int):
        for _ in range(ticks):
            for p in packets[port]:
                sw.put(p)
            yield env.timeout(1e-6)

    for h in hosts:
        env.process(vm(env, h.port))
    t0 = time.perf_counter()
    env.run()
    dt = time.perf_counter() - t0
    assert sw.frames == ticks * per_tick * len(hosts)
    return dt, sw.frames, sw.batches


def test_sim_batched_vs_per_packet(benchmark):
    batched, single = [], []

    def one_round() -> None:
        batched.append(simulate(True)[0])
        single.append(simulate(False)[0])

    benchmark.pedantic(one_round, rounds=5, iterations=1, warmup_rounds=1)
    frames = TICKS * PER_TICK * 6
    b, s = statistics.median(batched[-5:]), statistics.median(single[-5:])
    benchmark.extra_info.update({
        "frames": frames, "batched_s": b, "per_packet_s": s, "batched_frames_per_s": frames / b,
        "per_packet_frames_per_s": frames / s, "ratio": s / b,
        "round_ratios": [round(y / x, 1) for x, y in zip(batched[-5:], single[-5:])]})
    print(f"\nsim: batched {frames / b:,.0f} frames/s, per-packet {frames / s:,.0f} frames/s, ratio {s / b:.1f}x "
          f"(rounds: {benchmark.extra_info['round_ratios']})")
