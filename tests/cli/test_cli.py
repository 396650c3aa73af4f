"""The command line never loses data, never falls back silently, never shows a traceback.

Every subcommand gets a table of bad arguments: each must give exit 2 and one line on stderr
naming the option (or path) and the value, before any work (no output file appears).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastvpc as fv
from fastvpc.cli import main
from fastvpc.examples import seed_instance_id, seed_vpc, write_starter_files
from fastvpc.files import load, save
from fastvpc.pcap import read_pcap


@pytest.fixture()
def starter(tmp_path: Path) -> Path:
    write_starter_files(tmp_path / "lab")
    return tmp_path / "lab"


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


# (argv with {d} for the starter folder, text the one error line must contain)
BAD = [
    (["demo", "--frames", "0"], "--frames"),
    (["demo", "--threads", "0"], "--threads"),
    (["demo", "--frames", "lots"], "'lots'"),
    (["demo", "--frames", "3000000000"], "more than 20,000,000 frames"),
    (["show", "{d}/topology.yaml", "--format", "svg", "-o", "{d}/map.png"], "--format is svg"),
    (["show", "{d}/topology.yaml", "--format", "json", "-o", "{d}/map.svg"], "--format is json"),
    (["show"], "topology file is needed"),
    (["show", "{d}/nope.yaml"], "nope.yaml"),
    (["show", "{d}/topology.yaml", "--format", "jpeg"], "--format"),
    (["show", "{d}/topology.yaml", "-o", "{d}/pic.bmp"], "pic.bmp"),
    (["show", "{d}/topology.yaml", "-o", "{d}/missing/pic.svg", "--format", "svg"], "does not exist"),
    (["show", "{d}/in.pcap"], "in.pcap"),
    (["trace", "--from", "web1", "--to", "8.8.8.8"], "topology file is needed"),
    (["trace", "{d}/topology.yaml", "--from", "web1", "--to", "8.8.8"], "--to"),
    (["trace", "{d}/topology.yaml", "--from", "web1", "--to", "8.8.8.8", "--src-ip", "10.0.1"], "--src-ip"),
    (["trace", "{d}/topology.yaml", "--from", "web1", "--to", "8.8.8.8", "--proto", "gre"], "--proto"),
    (["trace", "{d}/topology.yaml", "--from", "web1", "--to", "8.8.8.8", "--proto", "tcp", "--port", "70000"],
     "--port"),
    (["trace", "{d}/topology.yaml", "--from", "web1", "--to", "8.8.8.8", "--port", "22"], "--port"),
    (["trace", "{d}/topology.yaml", "--from", "wbe1", "--to", "8.8.8.8"], "did you mean web1"),
    # options by their full names only: --src is not read as --src-ip
    (["trace", "{d}/topology.yaml", "--src", "web1", "--from", "web1", "--to", "8.8.8.8"], "--src"),
    (["trace", "{d}/topology.yaml", "--from", "web", "--to", "8.8.8.8"], "Subnet"),
    (["trace", "{d}/topology.yaml", "--from", "web1", "--to", "8.8.8.8", "--json", "{d}/t.txt"], "t.txt"),
    (["trace", "--aws", "{d}/nothere", "--from", "web1", "--to", "8.8.8.8"], "nothere"),
    (["import-aws", "{d}/nothere"], "nothere"),
    (["import-aws", "{d}/topology.yaml"], "no VPC found"),   # no describe-* JSON in it: one line too
    (["import-aws", "{d}/aws_configs", "-o", "{d}/topo.xml"], "topo.xml"),
    (["import-aws", "{d}/aws_configs", "-o", "{d}/no/topo.json"], "does not exist"),
    (["import-aws", "{d}/aws_configs", "-o", "{d}/aws_configs/Vpcs.json"], "inside the AWS folder"),
    (["replay", "{d}/topology.yaml", "{d}/in.pcap", "-o", "{d}/out.pcap", "--batch-size", "0"], "--batch-size"),
    (["replay", "{d}/topology.yaml", "{d}/in.pcap", "-o", "{d}/out.pcap", "--threads", "0"], "--threads"),
    (["replay", "{d}/topology.yaml", "{d}/in.pcap", "-o", "{d}/out.txt"], "out.txt"),
    (["replay", "{d}/topology.yaml", "{d}/in.pcap", "-o", "{d}/in.pcap"], "input capture"),
    (["replay", "{d}/topology.yaml", "{d}/in.pcap", "-o", "{d}/x.pcap", "--drops", "{d}/x.pcap"], "also"),
    (["replay", "{d}/topology.yaml", "{d}/in.pcap", "-o", "{d}/x.pcap", "--json", "{d}/x.pcap"], "--json"),
    (["replay", "{d}/topology.yaml", "{d}/nothere.pcap", "-o", "{d}/x.pcap"], "nothere.pcap"),
    (["replay", "{d}/topology.yaml", "{d}/in.pcap", "-o", "{d}/no/x.pcap"], "does not exist"),
    (["replay", "{d}/topology.yaml", "{d}/in.pcap", "-o", "{d}/x.pcap", "--ingress", "web"], "not an ENI or an internet"),
    (["replay", "{d}/topology.yaml", "{d}/in.pcap", "-o", "{d}/x.pcap", "--ingress", "nobody"], "nobody"),
    (["replay", "{d}/topology.yaml", "{d}/in.pcap", "--on-error", "maybe"], "--on-error"),
    (["replay", "{d}/topology.yaml", "{d}/topology.yaml", "-o", "{d}/x.pcap"], "topology.yaml"),
    (["live", "{d}/topology.yaml", "--attach", "web1=veth0", "--duration", "-1"], "--duration"),
    (["live", "{d}/topology.yaml", "--attach", "web1=veth0", "--duration", "nan"], "--duration"),
    (["live", "{d}/topology.yaml", "--attach", "web1=veth0", "--batch-size", "0"], "--batch-size"),
    # the Switch's ranges, checked when the options are parsed: the line names the option, the value, the range
    (["live", "{d}/topology.yaml", "--attach", "web1=veth0", "--batch-size", "99999999"],
     "argument --batch-size: '99999999' is not a whole number in 1..65536"),
    (["live", "{d}/topology.yaml", "--attach", "web1=veth0", "--snaplen", "10"],
     "argument --snaplen: '10' is not a whole number in 64..262144"),
    (["live", "{d}/topology.yaml", "--attach", "web1=veth0", "--snaplen", "262145"], "argument --snaplen"),
    (["live", "{d}/topology.yaml", "--attach", "web1=veth0", "--flow-capacity", "0"],
     "argument --flow-capacity: '0' is not a whole number in 1..16777216"),
    (["live", "{d}/topology.yaml", "--attach", "web1=veth0", "--flow-capacity", "16777217"],
     "argument --flow-capacity: '16777217' is not a whole number in 1..16777216"),
    (["lab", "up", "{d}/topology.yaml", "--flow-capacity", "lots"],
     "argument --flow-capacity: 'lots' is not a whole number in 1..16777216"),
    (["live", "{d}/topology.yaml", "--attach", "web1"], "--attach"),
    (["live", "{d}/topology.yaml"], "nothing attached"),
    (["nosuch"], "nosuch"),
]


@pytest.mark.parametrize("argv, needle", BAD, ids=[" ".join(a[:1] + a[-2:]) for a, _ in BAD])
def test_bad_arguments_one_line_exit_2(starter, capsys, argv, needle):
    before = set(os.listdir(starter))
    argv = [a.replace("{d}", str(starter)) for a in argv]
    code, out, err = run_cli(argv, capsys)
    assert code == 2, (code, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert needle in lines[0], lines[0]
    assert "Traceback" not in err
    assert set(os.listdir(starter)) == before     # no work done: nothing written


# an output that is the topology (or the capture, or inside the AWS folder) the command reads: refused
# before any work, the input untouched
OVER_INPUT = [
    ["show", "{d}/topology.json", "-o", "{d}/topology.json"],
    ["trace", "{d}/topology.json", "--from", "web1", "--to", "10.0.2.10", "--json", "{d}/topology.json"],
    ["trace", "--aws", "{d}/aws_configs", "--from", "web1", "--to", "10.0.2.10", "--json", "{d}/aws_configs/t.json"],
    ["replay", "{d}/topology.json", "{d}/in.pcap", "-o", "{d}/o.pcap", "--json", "{d}/topology.json"],
    ["replay", "{d}/topology.yaml", "{d}/in.pcap", "-o", "{d}/o.pcap", "--flow-log", "{d}/./topology.yaml"],
    ["live", "{d}/topology.json", "--attach", "web1=lo", "--json", "{d}/topology.json"],
    ["live", "{d}/topology.yaml", "--attach", "web1=lo", "--flow-log", "{d}/topology.yaml"],
]


@pytest.mark.parametrize("argv", OVER_INPUT, ids=lambda a: " ".join(a[:1] + a[-2:]))
def test_no_output_over_an_input(starter, capsys, argv):
    before = {p: p.read_bytes() for p in starter.rglob("*") if p.is_file()}
    code, out, err = run_cli([a.replace("{d}", str(starter)) for a in argv], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, (code, err)
    assert ("it would be overwritten" in err or "inside the AWS folder" in err) and "Traceback" not in err, err
    assert {p: p.read_bytes() for p in starter.rglob("*") if p.is_file()} == before


def test_no_traceback_from_a_real_process_either(starter):
    res = subprocess.run([sys.executable, "-m", "fastvpc", "replay", str(starter / "topology.yaml"),
                          str(starter / "in.pcap"), "-o", str(starter / "in.pcap")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr and len(res.stderr.splitlines()) == 1


def test_seed_only_when_asked(capsys):
    code, out, _ = run_cli(["show", "seed"], capsys)
    assert code == 0 and "rt-web" in out
    code, _, err = run_cli(["show"], capsys)
    assert code == 2 and "'seed'" in err


# --------------------------------------------------------------------------- replay

def test_replay_damaged_capture_leaves_no_partial_output(starter, capsys):
    bad = starter / "bad.pcap"
    bad.write_bytes((starter / "in.pcap").read_bytes()[:-7])
    code, _, err = run_cli(["replay", "seed", str(bad), "-o", str(starter / "o.pcap"),
                            "--drops", str(starter / "d.pcap")], capsys)
    assert code == 2
    assert "byte offset" in err and "removed" in err
    assert not [p for p in os.listdir(starter) if p.startswith(("o.pcap", "d.pcap"))]


def test_replay_on_error_stop_keeps_what_is_whole_and_warns(starter, capsys):
    bad = starter / "bad.pcap"
    good = read_pcap(starter / "in.pcap")
    bad.write_bytes((starter / "in.pcap").read_bytes()[:-7])
    code, out, err = run_cli(["replay", "seed", str(bad), "-o", str(starter / "o.pcap"), "--drops",
                              str(starter / "d.pcap"), "--on-error", "stop", "--json", "-"], capsys)
    assert code == 0
    summary = json.loads(out)
    assert summary["frames"] == len(good) - 1
    assert summary["warnings"] and "byte offset" in summary["warnings"][0]
    assert "warning:" in err and "byte offset" in err            # the text went to stderr
    emitted, dropped = read_pcap(starter / "o.pcap"), read_pcap(starter / "d.pcap")
    assert len(emitted) + len(dropped) == len(good) - 1


def test_replay_json_dash_is_stdout_and_text_goes_to_stderr(starter, capsys):
    code, out, err = run_cli(["replay", str(starter / "topology.yaml"), str(starter / "in.pcap"),
                              "--json", "-"], capsys)
    assert code == 0
    assert json.loads(out)["frames"] == len(read_pcap(starter / "in.pcap"))
    assert "frames in" in err


def test_replay_ingress_puts_every_frame_on_one_eni(starter, capsys):
    from fastvpc.replay import replay

    s = replay(seed_vpc(), starter / "in.pcap", ingress="web1")
    assert s.unmapped == 0 and set(s.per_eni) == {"web1"}
    # by source MAC, db1/db2/app1 sent some of the demo's frames
    s2 = replay(seed_vpc(), starter / "in.pcap")
    assert {"web1", "db1", "db2", "app1"} <= set(s2.per_eni)


# --------------------------------------------------------------------------- trace

def test_trace_exit_codes(capsys):
    assert run_cli(["trace", "seed", "--from", "web1", "--to", "10.0.2.10"], capsys)[0] == 0        # DELIVER
    assert run_cli(["trace", "seed", "--from", "web1", "--to", "8.8.8.8"], capsys)[0] == 0          # FORWARD igw
    assert run_cli(["trace", "seed", "--from", "web1", "--to", "10.0.1.1"], capsys)[0] == 0         # REPLY
    assert run_cli(["trace", "seed", "--from", "app1", "--to", "8.8.8.8"], capsys)[0] == 1          # NO_ROUTE
    assert run_cli(["trace", "seed", "--from", "web1", "--to", "10.0.1.99"], capsys)[0] == 1        # NO_SUCH_HOST


def test_trace_json_to_file_keeps_text_on_stdout(tmp_path, capsys):
    dest = tmp_path / "t.json"
    code, out, _ = run_cli(["trace", "seed", "--from", "app1", "--to", "8.8.8.8", "--json", str(dest)], capsys)
    assert code == 1 and out.startswith("trace 10.0.2.10 (app1)")
    assert json.loads(dest.read_text())["reason"] == "NO_ROUTE"


# --------------------------------------------------------------------------- import-aws

def test_import_aws_keeps_instance_ids_and_name_tags(starter, capsys):
    topo = starter / "imported.yaml"
    code, _, _ = run_cli(["import-aws", str(starter / "aws_configs"), "-o", str(topo)], capsys)
    assert code == 0
    iid = seed_instance_id("web1")
    code, out, _ = run_cli(["trace", str(topo), "--from", iid, "--to", "10.0.2.10"], capsys)
    assert code == 0 and "DELIVER" in out.splitlines()[0]
    code, out, _ = run_cli(["trace", str(topo), "--from", "db1", "--to", "192.168.1.1"], capsys)  # Name tag
    assert code == 0 and "FORWARD" in out.splitlines()[0]


def test_import_aws_unparseable_file_exits_1_with_the_report(starter, capsys):
    (starter / "aws_configs" / "Broken.json").write_text("{ not json")
    code, out, err = run_cli(["import-aws", str(starter / "aws_configs"), "-o", str(starter / "t.json")], capsys)
    assert code == 1
    assert "Broken.json" in out                 # the report is printed
    assert "could not be parsed" in err and "Broken.json" in err
    assert (starter / "t.json").exists()        # and what could be read is written


def test_import_aws_warns_about_several_snapshots(starter, tmp_path, capsys):
    import shutil

    both = tmp_path / "both"
    for snap in ("monday", "tuesday"):
        shutil.copytree(starter / "aws_configs", both / snap / "aws_configs")
    code, _, err = run_cli(["import-aws", str(both)], capsys)
    assert "2 snapshots" in err and "monday" in err and "tuesday" in err
    # region folders are one snapshot, not several
    regions = tmp_path / "regions"
    shutil.copytree(starter / "aws_configs", regions / "us-east-1")
    shutil.copytree(starter / "aws_configs", regions / "eu-west-1")
    run_cli(["import-aws", str(regions)], capsys)
    assert "snapshots" not in capsys.readouterr().err


def test_trace_summary_and_detailed(capsys):
    code, out, _ = run_cli(["trace", "seed", "--from", "web1", "--to", "8.8.8.8", "--summary"], capsys)
    assert code == 0 and out.strip().splitlines() == ["trace 10.0.1.10 (web1) -> 8.8.8.8 icmp: FORWARD"]
    code, out, _ = run_cli(["trace", "seed", "--from", "web1", "--to", "8.8.8.8", "--detailed"], capsys)
    lines = out.splitlines()
    at = lines.index("  routes of rt-web (longest prefix first; * covers 8.8.8.8):")
    # rt-web: the local route and 0.0.0.0/0 -> igw, numbered within the table, the covering one marked
    assert [ln.split()[-4:] for ln in lines[at + 1:at + 3]] == [["10.0.0.0/16", "->", "local", "local"],
                                                               ["0.0.0.0/0", "->", "igw", "static"]]
    assert lines[at + 2].lstrip().startswith("*") and " 2. 0.0.0.0/0" in lines[at + 2]
    code, out, err = run_cli(["trace", "seed", "--from", "app1", "--to", "8.8.8.8", "--detailed", "--json", "-"],
                             capsys)
    d = json.loads(out)
    assert code == 1 and [r["destination"] for r in d["route_table_routes"]] == ["10.0.0.0/16"]
    assert "hint: no route of rt-main covers 8.8.8.8" in err        # the text went to stderr


def test_aliases_round_trip_and_bad_alias_is_named(tmp_path):
    from fastvpc.errors import FastVpcError
    from fastvpc.files import load

    net = seed_vpc()
    net.aliases = {"i-0abc": ["web1"], "Web Server": ["web1", "web2"]}
    net.save(tmp_path / "t.yaml")
    assert load(tmp_path / "t.yaml").aliases == net.aliases
    text = (tmp_path / "t.yaml").read_text().replace("[web1, web2]", "[web1, webX]")
    assert "webX" in text
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(FastVpcError, match="webX"):
        load(tmp_path / "bad.yaml")


def test_the_starter_aws_folder_forwards_as_the_seed_does(starter):
    """aws_configs/ is the seed as describe-* JSON (README): imported, every VM's packet to every VM, the
    internet and on-premises gets the seed's verdict -- web1's and web2's public IPs included."""
    from fastvpc import packets as pk
    from fastvpc.aws import from_aws
    from fastvpc.verdicts import Action, DropReason

    seed, imported = seed_vpc(), from_aws(starter / "aws_configs")
    assert {str(e.ip): e.public_ip for e in imported.enis if e.public_ip} == \
        {str(e.ip): e.public_ip for e in seed.enis if e.public_ip} != {}

    def verdicts(net):
        dp, out = net.compile(), []
        for e in sorted(net.enis, key=lambda e: str(e.ip)):
            for dst in [*sorted(str(x.ip) for x in net.enis), "8.8.8.8", "192.168.1.1"]:
                f = pk.ethernet(e.subnet.gateway_mac, e.mac, pk.ETH_IPV4, pk.udp(e.ip, dst, 40000, 53, b"q"))
                r = dp.process(fv.FrameBatch.from_frames([f], port=[e.port]), copy=True)
                out.append((str(e.ip), dst, Action(int(r.action[0])), DropReason(int(r.reason[0]))))
        return out

    got, want = verdicts(imported), verdicts(seed)
    assert got == want
    assert (("10.0.1.10", "8.8.8.8", Action.FORWARD, DropReason.NONE)) in got


@pytest.mark.parametrize("command", ["demo", "trace seed --from web1 --to 8.8.8.8", "show seed",
                                     "replay seed in.pcap"])
def test_an_unknown_option_is_the_subcommands_usage_error(command, capsys):
    """One line naming the subcommand and its own --help, where its options are listed (exit 2)."""
    name = command.split()[0]
    code, out, err = run_cli([*command.split(), "--bogus", "7"], capsys)
    assert code == 2 and out == ""
    assert err == f"fastvpc {name}: error: unrecognized arguments: --bogus 7 (see fastvpc {name} --help)\n", err


def test_trace_from_an_eni_the_import_skipped_says_why(starter, capsys):
    """--from names an ENI the AWS import left out: the error quotes the import report's line about it and lists
    only what a trace can start from (ENIs, their Name tags, gateways), labelled."""
    folder = starter / "aws_configs"
    doc = json.loads((folder / "Subnets.json").read_text())
    doc["Subnets"] = [s for s in doc["Subnets"] if s["Tags"][0]["Value"] != "web"]
    (folder / "Subnets.json").write_text(json.dumps(doc))
    eni = "eni-0web1000000000000"
    assert eni in (folder / "NetworkInterfaces.json").read_text()
    code, out, err = run_cli(["trace", "--aws", str(folder), "--from", eni, "--to", "8.8.8.8"], capsys)
    assert code == 2 and out == ""
    line = err.strip().splitlines()[-1]
    assert f"--from {eni!r} is neither" in line
    assert "the import report: skipped its subnet 'subnet-0web" in line and "is not in the data" in line, line


def test_live_help_states_the_ranges(capsys):
    from fastvpc.cli.live import BATCH_SIZES, SNAPLENS
    from fastvpc.live.switch import BATCH_SIZE_MAX, SNAPLEN_MAX, SNAPLEN_MIN

    assert BATCH_SIZES == (1, BATCH_SIZE_MAX) and SNAPLENS == (SNAPLEN_MIN, SNAPLEN_MAX)   # the Switch's own
    assert main(["live", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--batch-size N frames per round at most, 1..65536 (default 1024)" in text, text
    assert "--snaplen BYTES largest frame accepted, 64..262144 bytes (default 2048)" in text, text


def _edge_topology(path: Path) -> Path:
    from nat_net import seed_with_nat_and_peering

    save(seed_with_nat_and_peering(), path)
    return path


@pytest.mark.parametrize("name, what", [("nat", "NAT gateway"), ("pcx", "peering connection")])
@pytest.mark.parametrize("by_port", [False, True], ids=["by name", "by port"])
def test_live_refuses_a_port_without_a_wire(tmp_path, capsys, name, what, by_port):
    """A NAT gateway's port (the data plane carries frames through the NAT gateway itself) and a peering's
    carry nothing: every frame on them is DROP(UNKNOWN_PORT), none is sent out.  Refused, naming it and why,
    before any interface is opened (this one does not exist)."""
    topo = _edge_topology(tmp_path / "edge.json")
    key = str(load(topo).find(name).port) if by_port else name
    code, out, err = run_cli(["live", str(topo), "--attach", "web1=fvnosuchif0", "--attach", f"{key}=fvnosuchif1",
                              "--duration", "1"], capsys)
    assert code == 2 and out == "", (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"fastvpc live: error: cannot attach {name}: it is a {what}"), err
    assert "has no wire" in lines[0] and "UNKNOWN_PORT" in lines[0] and "fvnosuchif" not in lines[0], err


def test_live_attaches_the_gateways_that_have_a_wire(tmp_path, capsys):
    """Internet, VPN and transit gateways and endpoints pass the check: the error is the missing interface."""
    net = seed_vpc()
    vpc = net.vpcs[0]
    vpc.add_transit_gateway(name="tgw")
    vpc.add_endpoint(name="vpce", endpoint_type="gateway")
    save(net, tmp_path / "t.json")
    for name in ("igw", "vgw", "tgw", "vpce"):
        code, _, err = run_cli(["live", str(tmp_path / "t.json"), "--attach", f"{name}=fvnosuchif0",
                                  "--duration", "1"], capsys)
        assert code in (2, 77) and "fvnosuchif0" in err and "no wire" not in err, (name, code, err)


@pytest.mark.parametrize("command", [["live"], ["lab", "up"]])
def test_flow_capacity_option_states_the_default_and_the_sharing(command, capsys):
    from fastvpc.cli._common import DEFAULT_FLOW_CAPACITY
    from fastvpc.live.switch import LIVE_FLOW_CAPACITY

    assert DEFAULT_FLOW_CAPACITY == LIVE_FLOW_CAPACITY
    assert main([*command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--flow-capacity N flows the switch's connection-tracking table holds, one table for all ENIs" in text
    assert "1..16777216 (default 262144, about 16.6 MB" in text, text


@pytest.mark.parametrize("extra, want", [([], 262_144), (["--flow-capacity", "5000"], 5000)])
def test_live_flow_capacity_reaches_the_switch(monkeypatch, capsys, extra, want):
    import fastvpc.live as live
    from fastvpc.errors import LiveError

    made = {}

    class Recorder(live.Switch):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made["capacity"] = self.state.capacity
            raise LiveError("recorded")

    monkeypatch.setattr(live, "Switch", Recorder)
    code, _, err = run_cli(["live", "seed", "--attach", "web1=fvnosuchif0", *extra], capsys)
    assert code == 2 and "recorded" in err and made == {"capacity": want}, err


def test_outside_hosts_of_a_lab_skip_every_address_the_topology_uses():
    """lab up's outside hosts (203.0.113.0/24 for internet gateways, 198.51.100.0/24 for VPN gateways): never
    an address of the topology, here an ENI's public IP, an unassociated Elastic IP, a NAT gateway's and a
    VPC whose CIDR is in the VPN gateways' block."""
    from fastvpc.cli.lab import gateway_addresses

    assert gateway_addresses(seed_vpc()) == {"igw": "203.0.113.1/24", "vgw": "198.51.100.1/24"}
    net = seed_vpc()
    web1 = net.find("web1")
    web1.disassociate_address()
    web1.associate_address(net.allocate_address("203.0.113.1", name="eip-one"))
    net.allocate_address("203.0.113.2", name="eip-loose")
    net.find("web").add_nat_gateway(name="nat", address=net.allocate_address("203.0.113.3", name="eip-nat"))
    net.add_vpc("198.51.100.0/28", name="public").add_subnet("198.51.100.0/28", name="p").add_eni("198.51.100.4")
    want = {"igw": "203.0.113.4/24", "vgw": "198.51.100.16/24"}
    assert gateway_addresses(net) == want
    assert gateway_addresses(net) == want            # deterministic
    for i in range(4, 255):                          # the internet gateways' block used up: the next TEST-NET
        if net.address_for(f"203.0.113.{i}") is None:
            net.allocate_address(f"203.0.113.{i}")
    assert gateway_addresses(net) == {"igw": "198.51.100.16/24", "vgw": "198.51.100.17/24"}
