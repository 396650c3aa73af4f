"""Live mode with the filters: security groups, network ACLs and connection tracking judged by
Linux's own TCP stack and ping in network namespaces (the setup of tests/live/test_live.py).

web1 (10.0.1.10, sg-web: no ingress rule at all, egress all) and app1 (10.0.2.10, sg-app: tcp 8080
and 7000-7001 from sg-web, ICMP echo from the web subnet).  The app subnet's NACL denies tcp 7000 in
entry 100 and allows everything in entry 110.  The switch passes its FlowTable and the monotonic
clock into every process() call, so the SYN-ACKs and echo replies back to web1 pass only because
the forward packets were tracked.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
import pytest

import fastvpc as fv
from conftest import require_root_namespaces
from fastvpc.live import Switch
from fastvpc.live.netns import Lab, VmNamespace, cleanup_leftovers

pytestmark = [pytest.mark.live, pytest.mark.requires_tool("ip", "ethtool", "ping")]

TCP_ECHO_SERVER = textwrap.dedent(r"""
    import socket, sys
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(sys.argv[2])))
    s.listen(8)
    s.settimeout(float(sys.argv[3]))
    print("ready", flush=True)
    try:
        while True:
            c, _ = s.accept()
            c.sendall(c.recv(1024).upper())
            c.close()
    except socket.timeout:
        pass
""")

TCP_CLIENT = textwrap.dedent(r"""
    import socket, sys
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
        c.sendall(b"hello")
        print(c.recv(1024).decode())
    except socket.timeout:
        print("timeout")
    except ConnectionRefusedError:
        print("refused")
""")


def topology() -> fv.Network:
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="prod")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    app = vpc.add_subnet("10.0.2.0/24", name="app")
    sg_web = vpc.add_security_group(name="sg-web")
    sg_app = vpc.add_security_group(name="sg-app")
    sg_app.authorize_ingress("tcp", 8080, sg_web)
    sg_app.authorize_ingress("tcp", (7000, 7001), sg_web)
    sg_app.authorize_ingress("icmp", (8, -1), "10.0.1.0/24")
    acl = vpc.add_network_acl(name="acl-app")
    acl.add_entry(100, "ingress", "deny", "tcp", 7000, "0.0.0.0/0")
    acl.add_entry(110, "ingress", "allow", "all", None, "0.0.0.0/0")
    acl.add_entry(100, "egress", "allow", "all", None, "0.0.0.0/0")
    app.associate_network_acl(acl)
    web.add_eni("10.0.1.10", name="web1", security_groups=[sg_web])
    app.add_eni("10.0.2.10", name="app1", security_groups=[sg_app])
    return net


class Live:
    def __init__(self, lab: Lab, switch: Switch, net: fv.Network) -> None:
        self.lab, self.switch, self.net = lab, switch, net

    def __getitem__(self, name: str) -> VmNamespace:
        return self.lab[name]

    def drops(self, reason: str) -> int:
        return int(self.switch.counters()["by_reason"].get(reason, 0))


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    if require_root_namespaces() == "userns-available":
        pytest.skip("not root: the live filter tests need ip netns")
    cleanup_leftovers()
    net = topology()
    with Lab(net) as lab:
        switch = Switch(net.compile(), lab.attachments, network=net)
        assert isinstance(switch.state, fv.FlowTable)          # stateful: a table and the monotonic clock
        switch.start()
        try:
            yield Live(lab, switch, net)
        finally:
            switch.close()


def connect(client: VmNamespace, server: VmNamespace, port: int, timeout: float = 1.5) -> str:
    """Start an echo server in ``server`` on ``port``; connect from ``client``: its answer, or
    "timeout" / "refused"."""
    srv = server.popen([sys.executable, "-c", TCP_ECHO_SERVER, server.ip, str(port), str(timeout + 3)])
    assert srv.stdout is not None and srv.stdout.readline().strip() == "ready"
    try:
        out = client.run([sys.executable, "-c", TCP_CLIENT, server.ip, str(port), str(timeout)], timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()
    finally:
        srv.kill()
        srv.wait()


def ping(ns: VmNamespace, dst: str) -> bool:
    return ns.run(["ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", dst], timeout=20).returncode == 0


def test_tcp_to_an_allowed_port_completes_thanks_to_tracking(live: Live) -> None:
    # sg-web admits nothing inbound: app1's SYN-ACK reaches web1 only as part of the tracked flow
    import fastvpc.packets as pk
    from fastvpc.reference import ReferenceForwarder

    app1, web1 = live.net.find("app1"), live.net.find("web1")
    synack = pk.ethernet(app1.subnet.gateway_mac, app1.mac, pk.ETH_IPV4,
                         pk.tcp(app1.ip, web1.ip, 8080, 40000, flags=0x12), pad_to=60)
    assert ReferenceForwarder(live.net).forward(synack, app1.port).reason == fv.DropReason.SG_INGRESS
    assert connect(live["web1"], live["app1"], 8080) == "HELLO"
    assert len(live.switch.state) >= 2                           # tracked at web1 and at app1


def test_tcp_the_other_way_is_refused(live: Live) -> None:
    before = live.drops("SG_INGRESS")
    assert connect(live["app1"], live["web1"], 8080) == "timeout"   # the SYN is dropped: no RST either
    assert live.drops("SG_INGRESS") > before


def test_a_port_the_group_does_not_allow_times_out(live: Live) -> None:
    before = live.drops("SG_INGRESS")
    assert connect(live["web1"], live["app1"], 9090) == "timeout"
    assert live.drops("SG_INGRESS") > before


def test_ping_works_one_way_only(live: Live) -> None:
    assert ping(live["web1"], "10.0.2.10")                       # the echo reply: tracked
    before = live.drops("SG_INGRESS")
    assert not ping(live["app1"], "10.0.1.10")                   # sg-web admits no ICMP
    assert live.drops("SG_INGRESS") > before


def test_a_nacl_entry_blocks_one_port_and_the_next_allows_the_rest(live: Live) -> None:
    before = live.drops("NACL_INGRESS")
    assert connect(live["web1"], live["app1"], 7000) == "timeout"
    assert live.drops("NACL_INGRESS") > before
    assert connect(live["web1"], live["app1"], 7001) == "HELLO"
