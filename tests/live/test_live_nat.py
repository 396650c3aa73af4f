"""Live mode through a NAT gateway (docs/edge.md §4, row #33): real Linux hosts in namespaces.

The seed VPC with a NAT gateway in the public subnet web (Elastic IP 203.0.113.30) and the app subnet's
0.0.0.0/0 routed to it; the internet gateway's namespace is the "internet" host (203.0.113.1/24).  A VM in
app opens a TCP connection to the internet host, which sees the NAT gateway's Elastic IP as the peer; a
connection the internet host opens to the Elastic IP fails (no binding: NAT_NO_BINDING).
"""

from __future__ import annotations

import hashlib
import random
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import fastvpc.examples as examples
from fastvpc.live import Switch
from fastvpc.live.netns import Lab, cleanup_leftovers

sys.path.insert(0, str(Path(__file__).parent))   # the lab helpers of test_live.py, beside this file
from test_live import IGW_ADDR, IGW_IP, TCP_CLIENT, TCP_SERVER, Live, _require_lab  # noqa: E402

pytestmark = [pytest.mark.live, pytest.mark.requires_tool("ip", "ethtool", "ping", "arping")]

EIP = "203.0.113.30"

CONNECT = textwrap.dedent(r"""
    import socket, sys
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
        print("connected")
    except OSError as e:
        print("failed", type(e).__name__)
""")


@pytest.fixture(scope="module")
def live_nat() -> Iterator[Live]:
    _require_lab()
    cleanup_leftovers()
    net = examples.seed_vpc()
    vpc = net.vpcs[0]
    nat = net.find("web").add_nat_gateway(name="nat", address=net.allocate_address(EIP))
    net.find("app").associate(vpc.add_route_table(name="rt-app", routes=[("0.0.0.0/0", nat)]))
    dp = net.compile()
    with Lab(net, gateways={"igw": IGW_ADDR}) as lab:
        # The lab's gateway namespace is an outside host with only an address and a default route: the
        # switch answers its ARP with the internet gateway's MAC and resolves its MAC for the replies.
        switch = Switch(dp, lab.attachments, network=net)
        switch.start()
        try:
            yield Live(lab, switch, net)
        finally:
            switch.close()


def test_tcp_through_the_nat_gateway_shows_its_elastic_ip(live_nat: Live) -> None:
    app1, igw = live_nat["app1"], live_nat["igw"]
    size, seed = 200_000, 20261202
    server = igw.popen([sys.executable, "-c", TCP_SERVER, IGW_IP, "5601"])
    assert server.stdout is not None
    assert server.stdout.readline().strip() == "ready"
    client = app1.run([sys.executable, "-c", TCP_CLIENT, IGW_IP, "5601", str(seed), str(size)], timeout=40)
    assert client.returncode == 0, client.stderr
    out, err = server.communicate(timeout=30)
    n, digest, peer = out.split()
    expected = hashlib.sha256(random.Random(seed).randbytes(size)).hexdigest()
    # every byte arrived, and the internet host's socket saw the NAT gateway's Elastic IP, not 10.0.2.10
    assert (int(n), digest, peer) == (size, expected, EIP), err


def test_an_unsolicited_connection_to_the_elastic_ip_fails(live_nat: Live) -> None:
    app1, igw = live_nat["app1"], live_nat["igw"]
    before = live_nat.drops("NAT_NO_BINDING")
    server = app1.popen([sys.executable, "-c", TCP_SERVER, "0.0.0.0", "5602"])   # listening inside: unreachable
    assert server.stdout is not None
    assert server.stdout.readline().strip() == "ready"
    got = igw.run([sys.executable, "-c", CONNECT, EIP, "5602", "2"], timeout=20)
    assert got.stdout.split()[0] == "failed", got.stdout
    deadline = time.monotonic() + 3
    while live_nat.drops("NAT_NO_BINDING") <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_nat.drops("NAT_NO_BINDING") > before
    server.kill()


BIG_UDP_SERVER = textwrap.dedent(r"""
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], int(sys.argv[2])))
    s.settimeout(10)
    print("ready", flush=True)
    data, peer = s.recvfrom(2048)
    s.sendto(bytes(i % 251 for i in range(int(sys.argv[3]))), peer)
    print(peer[0], flush=True)
""")

BIG_UDP_CLIENT = textwrap.dedent(r"""
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(b"query", (sys.argv[1], int(sys.argv[2])))
    try:
        data = s.recv(65535)
        print(len(data), data == bytes(i % 251 for i in range(len(data))))
    except socket.timeout:
        print("timeout")
""")


def test_a_fragmented_udp_answer_comes_back_through_the_nat_gateway(live_nat: Live) -> None:
    """The internet host answers a 4,000-byte datagram (three fragments on its 1,500-byte link): the NAT
    gateway translates the later fragments by the binding the first one found (docs/edge.md §4.2), the
    groups pass them (the first is the tracked flow's), and app1's kernel reassembles the answer."""
    app1, igw = live_nat["app1"], live_nat["igw"]
    server = igw.popen([sys.executable, "-c", BIG_UDP_SERVER, IGW_IP, "5603", "4000"])
    assert server.stdout is not None
    assert server.stdout.readline().strip() == "ready"
    client = app1.run([sys.executable, "-c", BIG_UDP_CLIENT, IGW_IP, "5603"], timeout=20)
    out, _ = server.communicate(timeout=20)
    assert out.strip() == EIP                         # the internet host saw the Elastic IP
    assert client.stdout.split() == ["4000", "True"], client.stdout + client.stderr
