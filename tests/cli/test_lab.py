"""``fastvpc lab up`` / ``lab down`` as a user runs them: a real process, Linux's ping between
two of the lab's hosts, teardown on ``down``, and after a crash (SIGKILL) too."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.live, pytest.mark.requires_root, pytest.mark.requires_tool("ip", "ethtool", "ping")]


def _need_real_root() -> None:
    from conftest import missing
    from fastvpc.live.netns import lab_mode

    if lab_mode() != "netns":
        missing("fastvpc lab needs real root (ip netns)")


def _start(tmp_path, *extra: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    env = dict(os.environ, FASTVPC_LAB_DIR=str(tmp_path / "labs"))
    proc = subprocess.Popen([sys.executable, "-m", "fastvpc", "lab", "up", "seed", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    hosts: dict[str, str] = {}
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"^\s+(\S+)\s.*ip netns exec (\S+) bash", line)
        if m:
            hosts[m.group(1)] = m.group(2)
        if "switch running" in line:
            return proc, hosts
    proc.kill()
    raise AssertionError(f"lab up did not start: {proc.stderr.read() if proc.stderr else ''}")


def _down(tmp_path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FASTVPC_LAB_DIR=str(tmp_path / "labs"))
    return subprocess.run([sys.executable, "-m", "fastvpc", "lab", "down"], capture_output=True, text=True,
                          env=env, timeout=60)


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_lab_up_ping_between_hosts_then_down(tmp_path):
    _need_real_root()
    proc, hosts = _start(tmp_path)
    try:
        assert {"web1", "app1", "db1", "igw", "vgw"} <= set(hosts)
        assert all(ns in _namespaces() for ns in hosts.values())
        res = subprocess.run(["ip", "netns", "exec", hosts["web1"], "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2",
                              "10.0.2.10"], capture_output=True, text=True, timeout=30)
        assert res.returncode == 0 and " 0% packet loss" in res.stdout, res.stdout + res.stderr
        # the VM's own address and MAC are the ENI's
        addr = subprocess.run(["ip", "netns", "exec", hosts["db1"], "ip", "-o", "addr", "show", "eth0"],
                              capture_output=True, text=True).stdout
        assert "10.0.3.10/24" in addr and "10.0.3.11/24" in addr
        down = _down(tmp_path)
        assert down.returncode == 0 and "stopped 1 lab" in down.stdout, down.stdout + down.stderr
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "DELIVER" in out and "torn down" in err
        assert not any(ns in _namespaces() for ns in hosts.values())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_lab_down_cleans_up_after_a_crash(tmp_path):
    _need_real_root()
    proc, hosts = _start(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)      # no chance to clean up
    proc.wait()
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    assert any(ns in _namespaces() for ns in hosts.values())
    down = _down(tmp_path)
    assert down.returncode == 0, down.stderr
    assert not any(ns in _namespaces() for ns in hosts.values())
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    tag = next(iter(hosts.values())).split("-")[0]
    assert tag not in links


def test_lab_up_needs_root_says_so(tmp_path):
    from fastvpc.live.netns import lab_mode

    if lab_mode() == "none":
        res = subprocess.run([sys.executable, "-m", "fastvpc", "lab", "up", "seed"], capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 77 and "root" in res.stderr
        return
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", sys.executable]
    env = dict(os.environ, FASTVPC_LAB_DIR=str(tmp_path))
    probe = subprocess.run(nobody + ["-c", "import fastvpc"], capture_output=True, text=True, timeout=60, env=env)
    if probe.returncode != 0:
        # this interpreter's packages are not readable by an unprivileged user (a venv in a 0700
        # temporary folder, as CI makes): run the command as root with the euid check answering as
        # it does for an ordinary user, so the refusal path is still the one tested
        code = ("import os, sys; os.geteuid = lambda: 65534; from fastvpc.cli import main; "
                "sys.exit(main(['lab', 'up', 'seed']))")
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    else:
        res = subprocess.run(nobody + ["-m", "fastvpc", "lab", "up", "seed"], capture_output=True, text=True,
                             timeout=60, env=env)
    assert res.returncode == 77 and "root" in res.stderr, res.stderr


def test_lab_up_names_that_look_alike_get_their_own_namespaces(tmp_path):
    """``web/1`` and ``web_1`` (and two names alike in their first 40 characters) were one namespace
    name: ``lab up`` failed in ``ip -batch`` with exit 77 and left a namespace behind."""
    _need_real_root()
    import fastvpc as fv
    from fastvpc.files import save

    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v")
    sub = vpc.add_subnet("10.0.1.0/24", name="s")
    names = ["web/1", "web_1", "n" * 45 + "a", "n" * 45 + "b"]
    for i, name in enumerate(names):
        sub.add_eni(f"10.0.1.{10 + i}", name=name)
    save(net, tmp_path / "alike.json")
    env = dict(os.environ, FASTVPC_LAB_DIR=str(tmp_path / "labs"))
    res = subprocess.run([sys.executable, "-m", "fastvpc", "lab", "up", str(tmp_path / "alike.json"),
                          "--duration", "0.5"], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    hosts = dict(re.findall(r"^\s+(\S+)\s.*ip netns exec (\S+) bash", res.stdout, re.MULTILINE))
    assert sorted(hosts) == sorted(names) and len(set(hosts.values())) == 4, res.stdout
    assert not any(ns in _namespaces().split() for ns in hosts.values())


def test_a_failed_namespace_batch_leaves_nothing_behind():
    """What ``ip -batch`` made before the line that failed is deleted by close() too."""
    _need_real_root()
    from fastvpc.examples import seed_vpc
    from fastvpc.live.netns import Lab, LabUnavailable

    lab = Lab(seed_vpc(), enis=["web1", "app1", "db1"])
    made = lab["web1"].name
    lab["app1"].name = made        # the second `netns add` of the batch fails: File exists
    try:
        with pytest.raises(LabUnavailable, match="File exists"):
            lab.build()
        assert made not in _namespaces().split()
    finally:
        if made in _namespaces().split():
            subprocess.run(["ip", "netns", "del", made], capture_output=True, check=False)


def test_lab_up_flow_capacity_is_one_table_for_all_enis(tmp_path):
    """--flow-capacity sizes the switch's one connection-tracking table: web1's UDP to 20 ports of app1
    fills a table of 8 flows, and db1's ping of app1, a new flow of another VM, is FLOW_TABLE_FULL."""
    _need_real_root()
    proc, hosts = _start(tmp_path, "--flow-capacity", "8", "--no-gateways")
    try:
        scan = ("import socket, sys\n"
                "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                "for port in range(5000, 5020):\n"
                "    s.sendto(b'x', (sys.argv[1], port))\n")
        subprocess.run(["ip", "netns", "exec", hosts["web1"], sys.executable, "-c", scan, "10.0.2.10"],
                       capture_output=True, text=True, timeout=30, check=True)
        ping = subprocess.run(["ip", "netns", "exec", hosts["db1"], "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1",
                               "10.0.2.10"], capture_output=True, text=True, timeout=30, check=False)
        assert ping.returncode != 0 and "100% packet loss" in ping.stdout, ping.stdout + ping.stderr
        assert _down(tmp_path).returncode == 0
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        full = re.search(r"^\s+FLOW_TABLE_FULL\s+(\d+)$", out, re.MULTILINE)
        assert full is not None and int(full.group(1)) >= 2 + 12, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_lab_up_outside_host_never_takes_a_public_ip_of_the_topology(tmp_path):
    """web1's Elastic IP is 203.0.113.1, the address the internet gateway's outside host had: that host
    answered web1's pings itself. Now it takes the next free address and web1 pings it."""
    _need_real_root()
    from fastvpc.examples import seed_vpc
    from fastvpc.files import save

    net = seed_vpc()
    web1 = net.find("web1")
    web1.disassociate_address()
    web1.associate_address(net.allocate_address("203.0.113.1", name="eip-one"))
    save(net, tmp_path / "eip.json")
    env = dict(os.environ, FASTVPC_LAB_DIR=str(tmp_path / "labs"))
    proc = subprocess.Popen([sys.executable, "-m", "fastvpc", "lab", "up", str(tmp_path / "eip.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        lines = []
        while not lines or "switch running" not in lines[-1]:
            lines.append(proc.stdout.readline())
            assert lines[-1], "".join(lines) + (proc.stderr.read() if proc.stderr else "")
        igw = next(line for line in lines if line.split()[:1] == ["igw"])
        assert igw.split()[1] == "203.0.113.2/24", igw
        ns = dict(re.findall(r"^\s+(\S+)\s.*ip netns exec (\S+) bash", "".join(lines), re.MULTILINE))
        ping = subprocess.run(["ip", "netns", "exec", ns["web1"], "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2",
                               "203.0.113.2"], capture_output=True, text=True, timeout=30, check=False)
        assert ping.returncode == 0 and " 0% packet loss" in ping.stdout, ping.stdout + ping.stderr
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
