"""Live mode: an outside host behind an internet gateway, as DESIGN §6 promises it: it needs only
an address and a default route.  Its MAC is the kernel's own, its ARP is on, and both it and the
VM keep veth's default offloads (checksum offload included: the switch completes the partial
checksums).  The switch answers its ARP with the gateway's MAC, learns its MAC (or resolves it
by ARP) and sends to it.  Judged by Linux's own ping and small Python TCP programs.

Skips (failures under FASTVPC_REQUIRE_ALL=1) naming what is missing, as test_live.py does.
"""

from __future__ import annotations

import hashlib
import random
import re
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import fastvpc as fv
from fastvpc.live import Switch
from fastvpc.live.netns import Lab, cleanup_leftovers
sys.path.insert(0, str(Path(__file__).parent))   # the lab helpers of test_live.py, beside this file
from test_live import TCP_CLIENT, TCP_SERVER, Live, _require_lab, ping  # noqa: E402

pytestmark = [pytest.mark.live, pytest.mark.requires_tool("ip", "ethtool", "ping")]

OUTSIDE_ADDR = "198.51.100.7/24"       # TEST-NET-2, its default router .1: the switch answers for it
OUTSIDE_IP = OUTSIDE_ADDR.split("/")[0]
PUBLIC_IP = "203.0.113.10"
NEIGHBOURS = 256                       # the switch's table per gateway interface (small: test (b) fills it)


def outside_net() -> fv.Network:
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    igw = vpc.add_internet_gateway(name="igw")
    web.associate(vpc.add_route_table(name="rtw", routes=[("0.0.0.0/0", igw)]))
    sg = vpc.add_security_group(name="sgw")
    sg.authorize_ingress("tcp", 443, "0.0.0.0/0")
    sg.authorize_ingress("icmp", (8, -1), "0.0.0.0/0")
    web.add_eni("10.0.1.10", name="w1", security_groups=[sg], public_ip=PUBLIC_IP)
    return net


@pytest.fixture(scope="module")
def outside() -> Iterator[Live]:
    _require_lab()
    cleanup_leftovers()
    net = outside_net()
    with Lab(net, gateways={"igw": OUTSIDE_ADDR}) as lab:
        # the outside host's default route via a router address nobody configured: the switch
        # answers its ARP.  Offloads: veth's defaults in both hosts (the lab leaves them)
        lab["igw"].run(["ip", "route", "replace", "default", "via", "198.51.100.1", "dev", "eth0"], check=True)
        switch = Switch(net.compile(), lab.attachments, network=net, neighbours=NEIGHBOURS)
        switch.start()
        try:
            yield Live(lab, switch, net)
        finally:
            switch.close()


def test_the_outside_host_is_plain(outside: Live) -> None:
    """Nothing is forced on it: a kernel MAC, ARP on, checksum and segmentation offload on."""
    host = outside["igw"]
    link = host.run(["ip", "-o", "link", "show", "eth0"], check=True).stdout
    assert "NOARP" not in link, link
    assert host.mac and host.mac.lower() != outside.net.find("igw").mac.lower()
    assert all(host.mac.lower() != str(s.gateway_mac).lower() for s in outside.net.subnets)
    feats = host.run(["ethtool", "-k", "eth0"], check=True).stdout
    for feat in ("tx-checksumming", "tcp-segmentation-offload", "generic-segmentation-offload"):
        assert re.search(rf"^{feat}: on", feats, re.M), feats


def test_vm_pings_the_outside_host_first(outside: Live) -> None:
    """Nothing learned yet: the switch resolves the outside host with ARP, holds the first echo
    request meanwhile, and sends it with the gateway's MAC to the host's own MAC."""
    res = ping(outside["w1"], OUTSIDE_IP)
    assert res.returncode == 0 and " 0% packet loss" in res.stdout, res.stdout + res.stderr
    assert outside.switch.neighbours is not None
    port = outside.net.find("igw").port
    assert (OUTSIDE_IP, outside["igw"].mac.lower(), "reachable") in outside.switch.neighbours.entries(port)
    nb = outside.switch.counters()["neighbours"]
    assert nb["arp_requests"] >= 1 and nb["released"] >= 1 and nb["unresolved"] == 0, nb


def test_outside_host_pings_the_public_ip(outside: Live) -> None:
    host = outside["igw"]
    res = ping(host, PUBLIC_IP)
    assert res.returncode == 0 and " 0% packet loss" in res.stdout, res.stdout + res.stderr
    # its default router resolved to the internet gateway's MAC
    neigh = host.run(["ip", "neigh", "show", "198.51.100.1"], check=True).stdout
    assert outside.net.find("igw").mac.lower() in neigh.lower(), neigh


def _tcp(server_ns: object, bind: str, port: int, client_ns: object, dst: str, size: int) -> str:
    seed = 20261204 + port
    server = server_ns.popen([sys.executable, "-c", TCP_SERVER, bind, str(port)])  # type: ignore[attr-defined]
    assert server.stdout is not None
    assert server.stdout.readline().strip() == "ready"
    client = client_ns.run([sys.executable, "-c", TCP_CLIENT, dst, str(port), str(seed), str(size)],  # type: ignore[attr-defined]
                           timeout=40)
    assert client.returncode == 0, client.stderr
    out, err = server.communicate(timeout=30)
    n, digest, peer = out.split()
    assert (int(n), digest) == (size, hashlib.sha256(random.Random(seed).randbytes(size)).hexdigest()), err
    return str(peer)


def test_tcp_both_ways_with_default_offloads(outside: Live) -> None:
    w1, host = outside["w1"], outside["igw"]
    before = outside.switch.counters()
    # in: the outside host connects to the public IP; the VM sees the outside host's address
    assert _tcp(w1, "0.0.0.0", 443, host, PUBLIC_IP, 300_000) == OUTSIDE_IP
    # out: the VM connects to the outside host, which sees the VM's public IP (#30)
    assert _tcp(host, OUTSIDE_IP, 8080, w1, OUTSIDE_IP, 300_000) == PUBLIC_IP
    after = outside.switch.counters()
    # segments came with partial checksums (completed) and as TSO packets (cut), none too long
    assert after["rx_csum_completed"] > before["rx_csum_completed"], after
    assert after["rx_segmented"] > before["rx_segmented"], after
    assert after["rx_truncated"] == before["rx_truncated"], after


SPOOFER = textwrap.dedent(r"""
    import random, socket, struct, sys
    gw_mac, count = bytes.fromhex(sys.argv[1].replace(":", "")), int(sys.argv[2])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("eth0", 0))
    rng = random.Random(5)
    for i in range(count):
        ip = struct.pack("!I", rng.randrange(0x01000000, 0xE0000000))
        mac = b"\x02" + struct.pack("!I", i) + b"\x01"
        arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + b"\0" * 6 + bytes([198, 51, 100, 1])
        s.send(b"\xff" * 6 + mac + b"\x08\x06" + arp + b"\0" * 18)
    print("sent", count)
""")


def test_spoofed_sources_keep_the_table_bounded(outside: Live) -> None:
    """(b) A flood of ARP from made-up sources on the outside link fills at most the interface's
    table; the real outside host is learned again as soon as it talks."""
    host = outside["igw"]
    assert outside.switch.neighbours is not None
    port = outside.net.find("igw").port
    before = outside.switch.counters()["neighbours"]["evicted"]
    res = host.run([sys.executable, "-c", SPOOFER, outside.net.find("igw").mac, "3000"], check=True)
    assert "sent 3000" in res.stdout
    deadline = time.monotonic() + 5
    while outside.switch.counters()["neighbours"]["evicted"] < before + 3000 - NEIGHBOURS \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(outside.switch.neighbours.entries(port)) <= NEIGHBOURS
    assert outside.switch.counters()["neighbours"]["evicted"] >= before + 3000 - NEIGHBOURS
    res = ping(host, PUBLIC_IP)
    assert res.returncode == 0 and " 0% packet loss" in res.stdout, res.stdout + res.stderr
    res = ping(outside["w1"], OUTSIDE_IP)
    assert res.returncode == 0 and " 0% packet loss" in res.stdout, res.stdout + res.stderr


@pytest.mark.parametrize("direction", ["vm-to-outside", "outside-to-vm"])
def test_fragmented_pings_arrive_whole_both_ways(outside: Live, direction: str) -> None:
    """`ping -s 3000` is three fragments each way: the groups judge each datagram by its first fragment (the
    request by the echo rule, the reply by the tracked flow) and pass the rest, so Linux reassembles every
    echo (docs/forwarding-model.md §3b).  Before, every fragment after the first was SG_INGRESS."""
    if direction == "vm-to-outside":
        src, dst = outside["w1"], OUTSIDE_IP
    else:
        src, dst = outside["igw"], PUBLIC_IP
    res = ping(src, dst, "-s", "3000", "-M", "dont")
    assert res.returncode == 0 and " 0% packet loss" in res.stdout, res.stdout + res.stderr
    assert "3008 bytes from" in res.stdout, res.stdout
