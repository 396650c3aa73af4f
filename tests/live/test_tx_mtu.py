"""A frame the egress interface refuses never stops a port.

The kernel's transmit ring (``PACKET_TX_RING``) puts a frame the device refused (a veth drops
one over its *peer's* MTU) back to SEND_REQUEST and stops there without moving on, so before
TxRing skipped such a frame one of them (a non-TCP packet from a host with a larger MTU, a GSO
packet) stopped every later frame on that port.  Judged by a packet socket on the veth's peer,
in a fresh network namespace (``unshare --net`` as root, a user namespace otherwise).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import missing, require_root_namespaces
from fastvpc.live.netns import LabUnavailable, userns_argv

pytestmark = [pytest.mark.live, pytest.mark.requires_tool("ip", "unshare")]

# Sends frames of the given sizes through one send path, then prints the sizes and tags the
# peer received (in order) and the stats of each send() call.
SCRIPT = textwrap.dedent(r"""
    import json, socket, subprocess, sys
    import numpy as np
    import fastvpc as fv
    from fastvpc.live._mmsg import BatchIO, STATS_LEN
    from fastvpc.live._rings import TxRing
    from fastvpc.live.sockets import open_tx_socket

    def ip(*a):
        subprocess.run(["ip", *a], check=True)

    ip("link", "set", "lo", "up")
    ip("link", "add", "txa", "type", "veth", "peer", "name", "txb")
    ip("link", "set", "txa", "up")
    ip("link", "set", "txb", "up")
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88B5))
    rx.bind(("txb", 0x88B5))
    rx.settimeout(0.5)
    tx = open_tx_socket("txa")
    mode, plan = sys.argv[1], json.loads(sys.argv[2])
    ring = TxRing(np.array([tx.fileno()], dtype=np.int32), 4096, 64) if mode == "ring" else None
    io = BatchIO(16, 4096)
    nreason = max(int(r) for r in fv.DropReason) + 1
    tag = 0

    def send(sizes):
        global tag
        frames = []
        for n in sizes:
            tag += 1
            b = bytearray(n)
            b[0:12] = bytes.fromhex("020000000002020000000001")
            b[12:14] = b"\x88\xb5"
            b[14] = tag
            frames.append(bytes(b))
        k = len(frames)
        off = np.zeros(k + 1, np.int64)
        off[1:] = np.cumsum([len(f) for f in frames])
        data = np.frombuffer(b"".join(frames), np.uint8)
        stats = np.zeros(STATS_LEN, np.int64)
        counts = np.zeros(8 * nreason, np.int64)
        args = (data, off, np.zeros(k, np.int32), np.full(k, int(fv.Action.FORWARD), np.uint8),
                np.zeros(k, np.uint8), np.zeros(k, np.int32), counts, nreason, stats)
        if ring is not None:
            ring.send(*args)
        else:
            io.send(np.array([tx.fileno()], np.int32), *args)
        return stats.tolist()

    out = {"stats": []}
    for step in plan:
        if isinstance(step, dict):
            ip("link", "set", step["dev"], "mtu", str(step["mtu"]))
        else:
            out["stats"].append(send(step))
    got = []
    try:
        while True:
            p = rx.recv(65536)
            got.append([len(p), p[14]])
    except socket.timeout:
        pass
    out["got"] = got
    print(json.dumps(out))
""")


def _run(mode: str, plan: list) -> dict:
    require_root_namespaces()
    try:
        argv = ["unshare", "--net"] if os.geteuid() == 0 else userns_argv([])
    except LabUnavailable as exc:
        missing(str(exc))
    p = subprocess.run([*argv, sys.executable, "-c", SCRIPT, mode, json.dumps(plan)],
                       capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["ring", "sendmmsg"])
def test_a_frame_over_the_mtu_does_not_stop_the_port(mode: str) -> None:
    from fastvpc.live._mmsg import ST_TX, ST_TX_ERRORS, ST_TX_REFUSED

    # 1514 = MTU 1500 + Ethernet header: the longest untagged frame both paths take
    out = _run(mode, [[100], [1600], [1514], [100, 200], [100]])
    assert out["got"] == [[100, 1], [1514, 3], [100, 4], [200, 5], [100, 6]], out
    assert out["stats"][1][ST_TX_REFUSED] == 1 and out["stats"][1][ST_TX] == 0, out
    assert all(s[ST_TX_REFUSED] == 0 for i, s in enumerate(out["stats"]) if i != 1), out
    assert all(s[ST_TX_ERRORS] == 0 for s in out["stats"]), out
    assert [s[ST_TX] for i, s in enumerate(out["stats"]) if i != 1] == [1, 1, 2, 1], out


@pytest.mark.parametrize("mode", ["ring", "sendmmsg"])
def test_a_frame_over_the_peers_mtu_is_refused_and_the_port_goes_on(mode: str) -> None:
    from fastvpc.live._mmsg import ST_TX_REFUSED

    # the peer lowered to 1400 while the socket is open: the sender's own MTU passes 1419 but
    # the veth drops it at the peer; 1414 passes and the port goes on.  Both raised to 9000:
    # a 4000-byte frame goes out.
    out = _run(mode, [[1500], {"dev": "txb", "mtu": 1400}, [1419], [1414, 100],
                      {"dev": "txa", "mtu": 9000}, {"dev": "txb", "mtu": 9000}, [4000]])
    assert out["got"] == [[1500, 1], [1414, 3], [100, 4], [4000, 5]], out
    assert [s[ST_TX_REFUSED] for s in out["stats"]] == [0, 1, 0, 0], out
