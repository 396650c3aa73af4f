"""examples/ns_py_seed.py runs: the seed VPC in ns.py, traffic both ways, verdicts printed."""

from __future__ import annotations

import importlib.util
import io
import pathlib

import pytest

pytest.importorskip("ns", reason="the test extra installs ns.py")

import fastvpc as fv  # noqa: E402

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "ns_py_seed.py"


def _load():
    spec = importlib.util.spec_from_file_location("ns_py_seed", EXAMPLE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_example_runs_and_prints_what_happened():
    mod = _load()
    out = io.StringIO()
    got = mod.run(out)
    text = out.getvalue()
    sw, dp = got["switch"], got["dp"]
    verdicts = {(port, what): v for _, port, what, v in got["verdicts"]}
    # every frame the hosts sent has its verdict, and the counters agree with the list
    assert sw.frames == len(got["verdicts"]) == sum(sw.counts.values())
    # each instant's frames went through one process() call (four VMs sent at t = 0)
    assert sw.batches < sw.frames
    assert verdicts[("web1", "udp 10.0.1.10:4000 > 10.0.1.20:7")] == "DELIVER"
    assert verdicts[("web2", "udp 10.0.1.20:7 > 10.0.1.10:4000")] == "DELIVER"      # the echo's answer
    assert verdicts[("app1", "udp 10.0.2.10:4200 > 8.8.8.8:53")] == "DROP NO_ROUTE"
    assert verdicts[("web2", "udp 10.0.1.20:4000 > 10.0.1.255:7")] == "DROP BROADCAST"
    assert verdicts[("web1", "icmp echo request 10.0.1.10 > 10.0.1.1")] == "REPLY"
    assert verdicts[("db1", "udp 10.0.3.10:4300 > 192.168.1.5:514")] == "FORWARD"
    # what arrived where, at the simulated time it was sent plus the 1 us wire (the switch adds none)
    rx = got["received"]
    assert (pytest.approx(1e-6), "udp 10.0.1.10:4000 > 10.0.1.20:7") in rx["web2"]
    assert (pytest.approx(1e-6), "udp 10.0.3.10:4300 > 192.168.1.5:514") in rx["on-prem"]
    assert any(w == "icmp echo reply 10.0.1.1 > 10.0.1.10" for _, w in rx["web1"])
    assert any("tcp 203.0.113.10:40000 > 198.51.100.7:443 SYN" in w for _, w in rx["internet"])   # web1 seen by its public IP (#30)
    # traffic from the internet host entered on the internet gateway's port and got a verdict
    from_igw = [(w, v) for _, port, w, v in got["verdicts"] if port == "igw"]
    assert len(from_igw) == 2
    # the drops printed are the switch's drops
    assert [r for _, _, r in got["drops"]] == [v.split()[1] for _, _, _, v in got["verdicts"] if v.startswith("DROP")]
    for line in ("verdicts (time, ingress, frame, verdict):", "delivered:", "dropped:", "process() calls",
                 "DROP NO_ROUTE", "DROP BROADCAST"):
        assert line in text
    from fastvpc.sim import process_keywords

    assert (sw.flows is not None) == ("state" in process_keywords(dp))
