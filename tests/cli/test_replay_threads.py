"""A one-thread replay starts no thread: no OpenMP team whose workers would spin-wait for a core
(on a loaded machine an OpenMP active wait made replays 3-10x slower)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_one_thread_replay_starts_no_thread(tmp_path):
    code = textwrap.dedent(f"""
        import os
        import numpy as np
        from fastvpc import packets as pk
        from fastvpc.batch import FrameBatch
        from fastvpc.examples import seed_vpc
        from fastvpc.pcap import write_pcap
        from fastvpc.drivers.replay import replay

        def threads():
            return len(os.listdir("/proc/self/task"))

        net = seed_vpc()
        w1, w2 = net.find("web1"), net.find("web2")
        fr = pk.ethernet(w2.mac, w1.mac, pk.ETH_IPV4, pk.udp(w1.ip, w2.ip, 4000, 53))
        ts = 10**18 + np.arange(50_000, dtype=np.int64)
        write_pcap({str(tmp_path / 'in.pcap')!r}, FrameBatch.from_frames([fr] * 50_000, port=-1, timestamp=ts))
        before = threads()
        for stateful in (False, True):
            s = replay(net, {str(tmp_path / 'in.pcap')!r}, {str(tmp_path / 'out.pcap')!r} + str(stateful),
                       n_threads=1, stateful=stateful)
            assert s.by_action["DELIVER"] == 50_000, s
        print(before, threads())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    before, after = map(int, out.stdout.split())
    assert after == before, f"replay(n_threads=1) started {after - before} thread(s)"
