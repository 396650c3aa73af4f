"""Live mode: the compiled data plane between real Linux network namespaces.

Each ENI of the seed VPC is a namespace (a VM) with the ENI's MAC and IP and a default
route to its subnet's router; the internet gateway is a namespace too.  The switch runs in
a thread of this process.  Every verdict is judged by the kernel's own tools inside the
namespaces: ping, arping, ``ip neigh``, and small Python socket programs.

As root the lab uses ``ip netns``.  Otherwise the whole file is run again inside
``unshare --user --map-root-user --net`` (test_user_namespace); when neither is possible, or
``ip``/``ethtool``/``ping``/``arping`` is missing, the tests skip saying what is missing (and fail
under FASTVPC_REQUIRE_ALL=1, as in CI).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest

import fastvpc.examples as examples
from conftest import missing, require_root_namespaces
from fastvpc.live import Switch
from fastvpc.live.netns import Lab, LabUnavailable, VmNamespace, cleanup_leftovers, lab_mode, userns_argv

pytestmark = [pytest.mark.live, pytest.mark.requires_tool("ip", "ethtool", "ping", "arping")]

IGW_ADDR = "203.0.113.1/24"   # TEST-NET-3: exists only inside the lab's igw namespace
IGW_IP = IGW_ADDR.split("/")[0]

# A UDP receiver: prints "ready", then every datagram (data, source, TTL) until one whose
# payload is "END" arrives or the timeout passes, then one JSON line.
UDP_RECEIVER = textwrap.dedent(r"""
    import json, socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_RECVTTL", 12), 1)   # Linux value
    s.bind((sys.argv[1], int(sys.argv[2])))
    s.settimeout(float(sys.argv[3]))
    print("ready", flush=True)
    got = []
    try:
        while True:
            data, anc, _, addr = s.recvmsg(65535, 64)
            ttl = None
            for level, kind, value in anc:
                if level == socket.IPPROTO_IP and kind == socket.IP_TTL:
                    ttl = int.from_bytes(value[:4], sys.byteorder)
            got.append({"data": data.decode(errors="replace"), "src": addr[0], "ttl": ttl})
            if data == b"END":
                break
    except socket.timeout:
        pass
    print(json.dumps(got), flush=True)
""")

# A UDP sender: argv[1] is a JSON list of {dst, port, data, src?, ttl?}.
UDP_SENDER = textwrap.dedent(r"""
    import json, socket, sys
    for m in json.loads(sys.argv[1]):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if m.get("src"):
            s.bind((m["src"], 0))
        if m.get("ttl"):
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, m["ttl"])
        s.sendto(m["data"].encode(), (m["dst"], m["port"]))
        s.close()
""")

TCP_SERVER = textwrap.dedent(r"""
    import hashlib, socket, sys
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((sys.argv[1], int(sys.argv[2])))
    srv.listen(1)
    srv.settimeout(20)
    print("ready", flush=True)
    conn, addr = srv.accept()
    conn.settimeout(20)
    h, n = hashlib.sha256(), 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    print(n, h.hexdigest(), addr[0], flush=True)
""")

TCP_CLIENT = textwrap.dedent(r"""
    import random, socket, sys
    data = random.Random(int(sys.argv[3])).randbytes(int(sys.argv[4]))
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)
    c.close()
""")


# --------------------------------------------------------------------------- fixtures

def _require_lab() -> None:
    """Skip naming what is missing when no lab can be built at all (a failure under
    FASTVPC_REQUIRE_ALL=1, as in CI: see tests/conftest.py)."""
    if require_root_namespaces() == "userns-available":
        pytest.skip("not root: this file runs again inside a user namespace (test_user_namespace)")


class Live:
    """The shared lab: namespaces, the switch and its network."""

    def __init__(self, lab: Lab, switch: Switch, net: Any) -> None:
        self.lab, self.switch, self.net = lab, switch, net

    def __getitem__(self, name: str) -> VmNamespace:
        return self.lab[name]

    def drops(self, reason: str) -> int:
        return int(self.switch.counters()["by_reason"].get(reason, 0))

    def wait_drops(self, reason: str, at_least: int, timeout: float = 3.0) -> int:
        deadline = time.monotonic() + timeout
        while self.drops(reason) < at_least and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.drops(reason)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    _require_lab()
    cleanup_leftovers()
    net = examples.seed_vpc()
    dp = net.compile()
    with Lab(net, gateways={"igw": IGW_ADDR}) as lab:
        switch = Switch(dp, lab.attachments, network=net)
        switch.start()
        try:
            yield Live(lab, switch, net)
        finally:
            switch.close()


def udp_receiver(ns: VmNamespace, port: int, bind: str = "0.0.0.0", timeout: float = 5.0) -> subprocess.Popen[str]:
    proc = ns.popen([sys.executable, "-c", UDP_RECEIVER, bind, str(port), str(timeout)])
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", f"receiver in {ns.name} did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}"
    return proc


def received(proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, f"receiver failed: {err}"
    result: list[dict[str, Any]] = json.loads(out.strip().splitlines()[-1])
    return result


def udp_send(ns: VmNamespace, messages: list[dict[str, Any]]) -> None:
    ns.run([sys.executable, "-c", UDP_SENDER, json.dumps(messages)], check=True)


def ping(ns: VmNamespace, dst: str, *extra: str, count: int = 2) -> subprocess.CompletedProcess[str]:
    return ns.run(["ping", *extra, "-n", "-c", str(count), "-i", "0.2", "-W", "1", dst], timeout=20)


# --------------------------------------------------------------------------- tests

def test_ping_own_gateway(live: Live) -> None:
    web1, web = live["web1"], live.net.find("web")
    res = ping(web1, str(web.router_ip))
    assert res.returncode == 0 and " 0% packet loss" in res.stdout, res.stdout + res.stderr
    neigh = web1.run(["ip", "neigh", "show", str(web.router_ip)], check=True).stdout
    assert web.gateway_mac.lower() in neigh.lower(), f"gateway {web.gateway_mac} not in `ip neigh`: {neigh!r}"


def test_ping_vm_in_other_subnet_keeps_ttl(live: Live) -> None:
    web1, app1 = live["web1"], live["app1"]
    res = ping(web1, app1.ip)
    assert res.returncode == 0 and " 0% packet loss" in res.stdout, res.stdout + res.stderr
    # echo replies come back with the responder's initial TTL: no hop was counted
    assert "ttl=64" in res.stdout, res.stdout
    # and the receiver sees exactly the TTL the sender chose
    rx = udp_receiver(app1, 5101)
    udp_send(web1, [{"dst": app1.ip, "port": 5101, "data": "ttl", "ttl": 37},
                    {"dst": app1.ip, "port": 5101, "data": "END"}])
    got = received(rx)
    assert [m["data"] for m in got] == ["ttl", "END"], got
    assert got[0]["ttl"] == 37 and got[0]["src"] == web1.ip, got


def test_ping_other_subnets_gateway_is_lost(live: Live) -> None:
    before = live.drops("ROUTER_NOT_OWN_SUBNET")
    res = ping(live["web1"], str(live.net.find("app").router_ip))
    assert res.returncode != 0 and "100% packet loss" in res.stdout, res.stdout + res.stderr
    assert live.wait_drops("ROUTER_NOT_OWN_SUBNET", before + 2) >= before + 2


def test_arping_unassigned_address_gets_no_reply(live: Live) -> None:
    before = live.drops("ARP_NO_ENTRY")
    res = live["web1"].run(["arping", "-c", "2", "-w", "2", "-I", "eth0", "10.0.1.99"], timeout=10)
    assert res.returncode != 0, res.stdout
    assert "reply from" not in res.stdout.lower(), res.stdout
    assert live.wait_drops("ARP_NO_ENTRY", before + 2) >= before + 2


def test_arping_vm_of_other_subnet_gets_its_mac(live: Live) -> None:
    app1 = live["app1"]
    res = live["web1"].run(["arping", "-c", "1", "-w", "3", "-I", "eth0", app1.ip], timeout=10)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"[{app1.mac}]" in res.stdout.lower(), res.stdout


def test_udp_broadcast_not_received(live: Live) -> None:
    web1, web2, app1 = live["web1"], live["web2"], live["app1"]
    rx_web2 = udp_receiver(web2, 5201)
    rx_app1 = udp_receiver(app1, 5201)
    udp_send(web1, [{"dst": "10.0.1.255", "port": 5201, "data": "subnet-broadcast"},
                    {"dst": "255.255.255.255", "port": 5201, "data": "limited-broadcast"},
                    {"dst": web2.ip, "port": 5201, "data": "END"},
                    {"dst": app1.ip, "port": 5201, "data": "END"}])
    assert [m["data"] for m in received(rx_web2)] == ["END"]
    assert [m["data"] for m in received(rx_app1)] == ["END"]


def test_ipv6_not_delivered(live: Live) -> None:
    web1, web2 = live["web1"], live["web2"]
    before = live.drops("NON_IPV4")
    try:
        for ns, addr in ((web1, "fd00:1::a/64"), (web2, "fd00:1::14/64")):
            ns.run(["sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6"], check=True)
            ns.run(["ip", "-6", "addr", "add", addr, "dev", "eth0", "nodad"], check=True)
        # no neighbour discovery needed: the request goes straight to web2's MAC
        web1.run(["ip", "-6", "neigh", "replace", "fd00:1::14", "lladdr", web2.mac, "dev", "eth0"], check=True)
        res = ping(web1, "fd00:1::14", "-6")
        assert res.returncode != 0 and "100% packet loss" in res.stdout, res.stdout + res.stderr
        assert live.wait_drops("NON_IPV4", before + 2) >= before + 2
    finally:
        for ns in (web1, web2):
            ns.run(["sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6"])


def test_internet_gateway_reached_from_web_only(live: Live) -> None:
    web1, app1, igw = live["web1"], live["app1"], live["igw"]
    before = live.drops("NO_ROUTE")
    rx = udp_receiver(igw, 5301, bind=IGW_IP, timeout=4)
    udp_send(app1, [{"dst": IGW_IP, "port": 5301, "data": "from-app"}])
    assert live.wait_drops("NO_ROUTE", before + 1) >= before + 1
    udp_send(web1, [{"dst": IGW_IP, "port": 5301, "data": "from-web"},
                    {"dst": IGW_IP, "port": 5301, "data": "END"}])
    got = received(rx)
    # out through the internet gateway with web1's public IP (#30): the outside host never sees 10.0.1.10
    pub = str(live.net.find("web1").public_ip)
    assert [(m["data"], m["src"]) for m in got] == [("from-web", pub), ("END", pub)], got


def test_tcp_one_megabyte_between_subnets(live: Live) -> None:
    web1, db1 = live["web1"], live["db1"]
    size, seed = 1 << 20, 20240605
    server = db1.popen([sys.executable, "-c", TCP_SERVER, db1.ip, "5401"])
    assert server.stdout is not None
    assert server.stdout.readline().strip() == "ready"
    client = web1.run([sys.executable, "-c", TCP_CLIENT, db1.ip, "5401", str(seed), str(size)], timeout=30)
    assert client.returncode == 0, client.stderr
    out, err = server.communicate(timeout=30)
    n, digest, peer = out.split()
    expected = hashlib.sha256(random.Random(seed).randbytes(size)).hexdigest()
    assert (int(n), digest, peer) == (size, expected, web1.ip), err


def test_spoofed_source_does_not_arrive(live: Live) -> None:
    web1, web2 = live["web1"], live["web2"]
    before = live.drops("SRC_DST_CHECK")
    spoofed = "10.0.1.77"   # no ENI owns it
    web1.run(["ip", "addr", "add", f"{spoofed}/32", "dev", "eth0"], check=True)
    try:
        rx = udp_receiver(web2, 5501)
        udp_send(web1, [{"dst": web2.ip, "port": 5501, "data": "spoofed", "src": spoofed},
                        {"dst": web2.ip, "port": 5501, "data": "END", "src": web1.ip}])
        got = received(rx)
        assert [(m["data"], m["src"]) for m in got] == [("END", web1.ip)], got
        assert live.wait_drops("SRC_DST_CHECK", before + 1) >= before + 1
    finally:
        web1.run(["ip", "addr", "del", f"{spoofed}/32", "dev", "eth0"])


def test_no_stray_frames_from_the_lab(live: Live) -> None:
    """The harness's own promise: nothing IPv6 (RS, NS, MLD) leaks from idle namespaces."""
    before = live.drops("NON_IPV4")
    time.sleep(0.5)
    assert live.drops("NON_IPV4") == before


BURST_SENDER = textwrap.dedent(r"""
    import json, socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for size in json.loads(sys.argv[3]):
        s.sendto(bytes((size + i) % 251 for i in range(size)), (sys.argv[1], int(sys.argv[2])))
""")

BURST_RECEIVER = textwrap.dedent(r"""
    import hashlib, json, socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    s.bind(("0.0.0.0", int(sys.argv[1])))
    s.settimeout(float(sys.argv[2]))
    print("ready", flush=True)
    got = []
    try:
        while len(got) < int(sys.argv[3]):
            got.append(hashlib.sha1(s.recv(65535)).hexdigest())
    except socket.timeout:
        pass
    print(json.dumps(got), flush=True)
""")


@pytest.mark.parametrize("mode", ["rings", "recvmmsg+sendmmsg", "rings-unavailable", "rx-ring+sendmmsg"])
def test_small_batches_every_io_mode(live: Live, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bursts of datagrams of many sizes through a switch reading 5 frames per round (so ring
    blocks are left half read between rounds): with both rings (the default), with
    recvmmsg/sendmmsg, with the fallback when no ring can be set up, and with the receive ring
    plus sendmmsg: every datagram arrives, intact, in order."""
    import hashlib

    import fastvpc.live.switch as live_mod   # the module whose RxRing/TxRing Switch.open uses

    web1, app1 = live["web1"], live["app1"]
    if mode == "rings-unavailable":
        def no_ring(*args: Any, **kwargs: Any) -> Any:
            raise OSError(12, "no ring today")
        monkeypatch.setattr(live_mod, "RxRing", no_ring)
        monkeypatch.setattr(live_mod, "TxRing", no_ring)
    want_rx = "ring" if mode in ("rings", "rx-ring+sendmmsg") else "recvmmsg"
    want_tx = "ring" if mode == "rings" else "sendmmsg"
    rng = random.Random(5)
    sizes = [rng.choice([1, 17, 64, 300, 1000, 1472]) for _ in range(150)]
    live.switch.close()     # a fresh switch, so no frame of the test is forwarded twice
    try:
        kw = {"rx_ring": False, "tx_ring": False} if mode == "recvmmsg+sendmmsg" else \
            {"tx_ring": False} if mode == "rx-ring+sendmmsg" else {}
        sw = Switch(live.net.compile(), live.lab.attachments, network=live.net, batch_size=5, **kw)
        with sw:
            assert (sw.rx_mode, sw.tx_mode) == (want_rx, want_tx), (sw.rx_ring_error, sw.tx_ring_error)
            assert (sw.rx_ring_error is not None) == (mode == "rings-unavailable")
            assert (sw.tx_ring_error is not None) == (mode == "rings-unavailable")
            sw.start()
            rx = app1.popen([sys.executable, "-c", BURST_RECEIVER, "5202", "3", str(len(sizes))])
            assert rx.stdout is not None and rx.stdout.readline().strip() == "ready"
            for part in (sizes[:50], sizes[50:]):
                web1.run([sys.executable, "-c", BURST_SENDER, app1.ip, "5202", json.dumps(part)], check=True)
            out, err = rx.communicate(timeout=20)
            sw.stop()
            c = sw.counters()
        got = json.loads(out.strip().splitlines()[-1])
        want = [hashlib.sha1(bytes((n + i) % 251 for i in range(n))).hexdigest() for n in sizes]
        assert got == want, (f"{mode}: {len(got)} of {len(want)} datagrams, first difference at "
                             f"{next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)}; {c}")
        assert c["rx_truncated"] == 0 and c["rx_errors"] == 0 and c["by_action"]["DELIVER"] >= len(sizes), c
        assert c["rounds"] >= c["rx"] / 5, c
    finally:
        monkeypatch.undo()
        live.switch.start()
    assert (live.switch.rx_mode, live.switch.tx_mode) == ("ring", "ring")


# Sends, from the namespace's eth0 through a packet socket, argv[2]'s frames: a UDP datagram to
# argv[1]:9000 with an 802.1Q tag (VID 5) and an ARP request for argv[1] with one, then the same
# datagram untagged ("PLAIN"), all to the router's MAC argv[3] from argv[4] (the VM's MAC and IP).
VLAN_SENDER = textwrap.dedent(r"""
    import socket, struct, sys
    dst, gw_mac, mac, src = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), \
        bytes.fromhex(sys.argv[3].replace(":", "")), sys.argv[4]

    def csum(b):
        s = sum(struct.unpack(f"!{len(b) // 2}H", b))
        s = (s >> 16) + (s & 0xFFFF)
        return ~(s + (s >> 16)) & 0xFFFF

    def udp(payload):
        u = struct.pack("!HHHH", 40000, 9000, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(u), 1, 0, 64, 17, 0, socket.inet_aton(src),
                         socket.inet_aton(dst))
        return ip[:10] + struct.pack("!H", csum(ip)) + ip[12:] + u

    tag = b"\x81\x00" + struct.pack("!H", 5)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, socket.inet_aton(src), b"\0" * 6,
                      socket.inet_aton(dst))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("eth0", 0))
    s.send(gw_mac + mac + tag + b"\x08\x00" + udp(b"TAGGED"))
    s.send(b"\xff" * 6 + mac + tag + b"\x08\x06" + arp)
    s.send(gw_mac + mac + b"\x08\x00" + udp(b"PLAIN"))
""")


@pytest.mark.parametrize("rx_ring", [True, False])
def test_vlan_tagged_frames_are_dropped_in_every_rx_mode(live: Live, rx_ring: bool) -> None:
    """DESIGN §1: a VLAN-tagged frame is DROP(NON_IPV4).  A veth strips the tag into the packet's
    metadata (rx-vlan-offload, on by default), so the switch puts it back into the frame: before, a
    tagged datagram reached app1 and a tagged ARP request was answered."""
    web1, app1 = live["web1"], live["app1"]
    web = live.net.find("web")
    live.switch.close()     # a fresh switch: its counters are this test's
    try:
        with Switch(live.net.compile(), live.lab.attachments, network=live.net, rx_ring=rx_ring) as sw:
            assert sw.rx_mode == ("ring" if rx_ring else "recvmmsg")
            sw.start()
            rx = udp_receiver(app1, 9000, timeout=3)
            web1.run([sys.executable, "-c", VLAN_SENDER, app1.ip, str(web.gateway_mac), web1.mac, web1.ip],
                     check=True)
            got = received(rx)
            deadline = time.monotonic() + 3
            while sw.counters()["by_reason"].get("NON_IPV4", 0) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            sw.stop()
            c = sw.counters()
        assert [m["data"] for m in got] == ["PLAIN"], got
        assert c["by_reason"].get("NON_IPV4", 0) == 2 and c["rx_vlan_tagged"] == 2, c
    finally:
        live.switch.start()


# --------------------------------------------------------------------------- the harness itself

SMOKE = textwrap.dedent(r"""
    import fastvpc.examples as examples
    from fastvpc.live import Switch
    from fastvpc.live.netns import Lab, lab_mode
    net = examples.seed_vpc()
    with Lab(net, enis=["web1", "app1"]) as lab:
        with Switch(net.compile(), lab.attachments, network=net) as sw:
            sw.start()
            res = lab["web1"].run(["ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "10.0.2.10"])
            sw.stop()
        print(lab_mode(), lab.tag, res.returncode, sw.counters()["by_action"]["DELIVER"], flush=True)
""")


def test_user_namespace() -> None:
    """Without root, the lab runs inside ``unshare --user --map-root-user --net``.

    Not root: this whole file runs again in there.  Root: a small lab is built in there
    to show the unprivileged path works.  Inside: the same small lab, in process.
    """
    mode = lab_mode()
    if mode == "userns":
        res = subprocess.run([sys.executable, "-c", SMOKE], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and res.stdout.split()[0] == "userns", res.stdout + res.stderr
        return
    try:
        wrap = userns_argv
        if mode == "none":
            argv = wrap([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", os.path.abspath(__file__)])
        else:
            argv = wrap([sys.executable, "-c", SMOKE])
    except LabUnavailable as exc:
        missing(f"live tests cannot run here: {exc}")
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    if mode == "netns":
        fields = res.stdout.split()
        assert fields[0] == "userns" and fields[2] == "0" and int(fields[3]) >= 4, res.stdout + res.stderr
        # the child's lab is gone with its namespaces; and it never touched ours
        assert fields[1] not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


# --------------------------------------------------------------------------- the command

CLI = ("import argparse, sys\n"
       "from fastvpc.cli import live as cli_live\n"
       "p = argparse.ArgumentParser(prog='fastvpc')\n"
       "cli_live.add_parser(p.add_subparsers())\n"
       "a = p.parse_args(sys.argv[1:])\n"
       "sys.exit(a.func(a))\n")


def test_cli_forwards_and_stops_on_sigterm() -> None:
    _require_lab()
    net = examples.seed_vpc()
    with Lab(net, enis=["web1", "app1"]) as lab:
        web1, app1 = lab["web1"], lab["app1"]
        cmd = [sys.executable, "-c", CLI, "live", "seed", "--attach", f"web1={web1.host_if}",
               "--attach", f"app1={app1.host_if}", "--duration", "60"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            banner = proc.stderr.readline()
            assert "forwarding" in banner, banner + proc.stderr.read()
            res = web1.run(["ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", app1.ip], timeout=20)
            proc.terminate()
            out, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert res.returncode == 0, res.stdout + res.stderr
        assert proc.returncode == 0, err
        lines = dict(line.split() for line in out.splitlines() if line.startswith("  ") and len(line.split()) == 2)
        assert int(lines["DELIVER"]) == 4 and int(lines["REPLY"]) >= 2, out


@pytest.mark.requires_tool("setpriv")
def test_cli_names_missing_capability() -> None:
    _require_lab()
    # the same user, without CAP_NET_RAW (dropped from the bounding set for the child)
    cmd = ["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", "--",
           sys.executable, "-c", CLI, "live", "seed", "--attach", "web1=lo", "--duration", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert res.returncode == 77, res.stdout + res.stderr
    assert "CAP_NET_RAW" in res.stderr and "'lo'" in res.stderr, res.stderr


def test_cli_unknown_interface_is_named() -> None:
    _require_lab()
    res = subprocess.run([sys.executable, "-c", CLI, "live", "seed", "--attach", "web1=fvnosuchif0"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "fvnosuchif0" in res.stderr, res.stderr


def test_leftovers_of_a_killed_run_are_removed() -> None:
    _require_lab()
    code = ("import os, fastvpc.examples as e\n"
            "from fastvpc.live.netns import Lab\n"
            "lab = Lab(e.seed_vpc(), enis=['web1']).build()\n"
            "print(lab.tag, lab['web1'].host_if, flush=True)\n"
            "os.kill(os.getpid(), 9)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    tag, host_if = res.stdout.split()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert host_if in links, "the killed run should have left its link behind"
    removed_ns, removed_links = cleanup_leftovers()
    assert host_if in removed_links
    if lab_mode() == "netns":
        assert f"{tag}-web1" in removed_ns
        assert tag not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert host_if not in subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
