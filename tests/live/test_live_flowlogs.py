"""``fastvpc live ... --flow-log FILE`` and ``Switch(..., flow_log=)``: the records of real traffic
between namespaces (ping web1 -> app1: the request's and the reply's records on both ENIs), the
file written when the run ends, and the arguments refused before any interface is opened."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import fastvpc.examples as examples
from conftest import require_root_namespaces
from fastvpc.dataplane.flowlogs import FlowLog
from fastvpc.errors import LiveError
from fastvpc.live import Switch

CLI = ("import argparse, sys\n"
       "from fastvpc.cli import live as cli_live\n"
       "p = argparse.ArgumentParser(prog='fastvpc')\n"
       "cli_live.add_parser(p.add_subparsers())\n"
       "a = p.parse_args(sys.argv[1:])\n"
       "sys.exit(a.func(a))\n")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLI, "live", *args], capture_output=True, text=True, timeout=60)


def test_switch_takes_a_flowlog_only_with_the_compiled_dataplane() -> None:
    from fastvpc.reference import ReferenceForwarder

    net = examples.seed_vpc()
    web1 = net.find("web1")
    with pytest.raises(TypeError, match="flow_log must be a fastvpc.FlowLog, not dict"):
        Switch(net.compile(), {web1.port: "lo"}, network=net, flow_log={})
    with pytest.raises(LiveError, match="needs the compiled data plane"):
        Switch(ReferenceForwarder(net), {web1.port: "lo"}, network=net, flow_log=FlowLog())
    sw = Switch(net.compile(), {web1.port: "lo"}, network=net, flow_log=FlowLog())
    # the log's clock: the monotonic one anchored to the epoch (now, give or take the test's time)
    assert abs(sw._epoch_offset + time.monotonic_ns() - time.time_ns()) < 5 * 10**9


def test_cli_flow_log_arguments_are_checked_first(tmp_path) -> None:
    r = _cli("seed", "--attach", "web1=nosuchif0", "--flow-log-format", "${version}")
    assert r.returncode == 2 and "--flow-log-format needs --flow-log" in r.stderr
    r = _cli("seed", "--attach", "web1=nosuchif0", "--reference", "--flow-log", str(tmp_path / "f.log"))
    assert r.returncode == 2 and "--reference" in r.stderr
    r = _cli("seed", "--attach", "web1=nosuchif0", "--flow-log", str(tmp_path / "f.log"),
             "--flow-log-format", "${version} ${nosuch}")
    assert r.returncode == 2 and "nosuch" in r.stderr
    r = _cli("seed", "--attach", "web1=nosuchif0", "--flow-log", str(tmp_path / "no" / "f.log"))
    assert r.returncode == 2
    assert not (tmp_path / "f.log").exists()


@pytest.mark.live
@pytest.mark.requires_tool("ip", "ethtool", "ping")
def test_cli_writes_the_flow_log_of_a_ping_on_exit(tmp_path) -> None:
    if require_root_namespaces() == "userns-available":
        pytest.skip("not root: the namespace lab needs root here")
    from fastvpc.live.netns import Lab, cleanup_leftovers

    cleanup_leftovers()
    net = examples.seed_vpc()
    out = tmp_path / "flows.log"
    fields = "${interface-id} ${srcaddr} ${dstaddr} ${protocol} ${packets} ${action} ${flow-direction} ${start}"
    with Lab(net, enis=["web1", "app1"]) as lab:
        web1, app1 = lab["web1"], lab["app1"]
        cmd = [sys.executable, "-c", CLI, "live", "seed", "--attach", f"web1={web1.host_if}",
               "--attach", f"app1={app1.host_if}", "--duration", "60", "--flow-log", str(out),
               "--flow-log-format", fields, "--flow-log-window", "60"]
        t0 = int(time.time())
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            banner = proc.stderr.readline()
            assert "forwarding" in banner, banner + proc.stderr.read()
            assert not out.exists()                     # written when the run ends
            res = web1.run(["ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", app1.ip], timeout=20)
            proc.terminate()
            stdout, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        t1 = int(time.time())
    assert res.returncode == 0, res.stdout + res.stderr
    assert proc.returncode == 0, err
    assert "flow log" in stdout
    lines = out.read_text().splitlines()
    assert lines[0] == fields.replace("${", "").replace("}", "")
    recs = [x.split() for x in lines[1:]]
    icmp = sorted(tuple(r[:7]) for r in recs if r[3] == "1")
    # windows may split the 3 pings in two: count the packets per (interface, direction, addresses)
    got: dict[tuple[str, ...], int] = {}
    for r in recs:
        if r[3] == "1":
            got[(r[0], r[1], r[2], r[6])] = got.get((r[0], r[1], r[2], r[6]), 0) + int(r[4])
    assert got == {("web1", "10.0.1.10", "10.0.2.10", "egress"): 3, ("app1", "10.0.1.10", "10.0.2.10", "ingress"): 3,
                   ("app1", "10.0.2.10", "10.0.1.10", "egress"): 3, ("web1", "10.0.2.10", "10.0.1.10", "ingress"): 3}, icmp
    assert all(r[5] == "ACCEPT" for r in recs if r[3] == "1")
    assert all(t0 - 1 <= int(r[7]) <= t1 + 1 for r in recs)   # epoch seconds, from the anchored clock
