"""fastvpc.drivers.sharded: replay on a Dask cluster gives the serial replay's outputs and counts, byte
for byte; survives a worker killed mid-run; says clearly what is wrong with a missing Dask, an
unreachable scheduler or a bad capture; shards both directions of a flow together."""

from __future__ import annotations

import filecmp
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason="the test extra installs dask[distributed]")

from fastvpc import packets as pk  # noqa: E402
from fastvpc.batch import FrameBatch  # noqa: E402
from fastvpc.cli import main  # noqa: E402
from fastvpc.drivers import sharded as sh  # noqa: E402
from fastvpc.drivers.replay import replay  # noqa: E402
from fastvpc.errors import PcapError  # noqa: E402
from fastvpc.examples import seed_vpc  # noqa: E402

import drivers.sharded_frames as sf  # noqa: E402


_frames, _write, _ctx = sf.frames, sf.write, sf.ctx


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    d = tmp_path_factory.mktemp("sharded")
    path = d / "in.pcap"
    _write(path, _frames(6000))
    return path


def _serial(tmp_path, capture, suffix=".pcap", **kw):
    net = seed_vpc()
    s = replay(net, capture, tmp_path / f"serial{suffix}", drops_path=tmp_path / f"serial-drops{suffix}", **kw)
    return s


def _same_summary(a, b):
    da, db = a.to_dict(), b.to_dict()
    for k in ("seconds", "outputs"):
        da.pop(k)
        db.pop(k)
    assert da == db


@pytest.mark.parametrize("shard_by", ["auto", "flow"])
def test_sharded_pcap_is_the_serial_replay_byte_for_byte(tmp_path, capture, client, shard_by):
    serial = _serial(tmp_path, capture)
    got = sh.replay_sharded(seed_vpc(), capture, tmp_path / "out.pcap", drops_path=tmp_path / "drops.pcap",
                            workers=2, client=client, chunk_frames=700, batch_size=256, shard_by=shard_by)
    assert filecmp.cmp(tmp_path / "serial.pcap", tmp_path / "out.pcap", shallow=False)
    assert filecmp.cmp(tmp_path / "serial-drops.pcap", tmp_path / "drops.pcap", shallow=False)
    _same_summary(serial, got)
    assert got.frames == 6000 and got.outputs == {"output": str(tmp_path / "out.pcap"),
                                                  "drops": str(tmp_path / "drops.pcap")}
    # nothing left behind: no partial files, no scratch folder
    assert sorted(os.listdir(tmp_path)) == ["drops.pcap", "out.pcap", "serial-drops.pcap", "serial.pcap"]


def test_sharded_pcapng_and_three_shards(tmp_path, capture, client):
    serial = _serial(tmp_path, capture, ".pcapng")
    got = sh.replay_sharded(seed_vpc(), capture, tmp_path / "out.pcapng", drops_path=tmp_path / "drops.pcapng",
                            workers=3, client=client, chunk_frames=1000)
    assert filecmp.cmp(tmp_path / "serial.pcapng", tmp_path / "out.pcapng", shallow=False)
    assert filecmp.cmp(tmp_path / "serial-drops.pcapng", tmp_path / "drops.pcapng", shallow=False)
    _same_summary(serial, got)


def test_sharded_counts_only_and_by_source_ip_and_ingress(tmp_path, capture, client):
    net = seed_vpc()
    for kw in ({"port_by": "src-ip"}, {"ingress": "web2"}, {"ingress": "igw"}):
        serial = replay(net, capture, **kw)
        got = sh.replay_sharded(net, capture, workers=2, client=client, chunk_frames=900, **kw)
        _same_summary(serial, got)


def test_a_dataplane_is_taken_as_it_is(tmp_path, capture, client):
    net = seed_vpc()
    serial = replay(net, capture, tmp_path / "a.pcap", arp_mode="single_mac")
    got = sh.replay_sharded(net.compile(arp_mode="single_mac"), capture, tmp_path / "b.pcap", workers=2,
                            client=client, chunk_frames=2000)
    assert filecmp.cmp(tmp_path / "a.pcap", tmp_path / "b.pcap", shallow=False)
    _same_summary(serial, got)


def test_damage_stop_matches_serial_and_raise_writes_nothing(tmp_path, capture, client):
    data = capture.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])          # the last record is truncated
    serial = replay(seed_vpc(), cut, tmp_path / "s.pcap", on_error="stop")
    got = sh.replay_sharded(seed_vpc(), cut, tmp_path / "o.pcap", workers=2, client=client, chunk_frames=800,
                            on_error="stop")
    assert filecmp.cmp(tmp_path / "s.pcap", tmp_path / "o.pcap", shallow=False)
    assert got.warnings == serial.warnings and got.warnings
    _same_summary(serial, got)

    class NoCluster:   # a bad capture fails before any task reaches the cluster
        def __getattr__(self, name):
            raise AssertionError(f"the cluster was used ({name}) for a damaged capture")

    with pytest.raises(PcapError, match="truncated record at byte offset"):
        sh.replay_sharded(seed_vpc(), cut, tmp_path / "x.pcap", workers=2, client=NoCluster(), chunk_frames=800)
    assert not (tmp_path / "x.pcap").exists() and not (tmp_path / "x.pcap.partial").exists()


def test_time_going_back_behind_another_shards_frame_stops_as_the_serial_replay(tmp_path, client):
    """One FlowTable sees every frame's time in the serial replay: a frame 1 ns before the frame ahead of
    it, which another shard takes, stops the sharded replay too, naming the same frames in the same words."""
    from fastvpc.errors import FastVpcError
    from fastvpc.pcap import write_pcap

    net = seed_vpc()
    frames = _frames(3000)
    batch = FrameBatch.from_frames(frames, port=-1)
    ctx = _ctx(net, 2)
    shard = sh.shard_of_frames(batch, ctx.ports_for(batch), ctx)
    i = next(j for j in range(1500, 3000) if shard[j] != shard[j - 1])
    ts = 1_700_000_000 * 10**9 + np.arange(3000, dtype=np.int64) * 1000
    ts[i] = ts[i - 1] - 1          # still after every earlier frame of its own shard
    path = tmp_path / "back.pcap"
    write_pcap(str(path), FrameBatch.from_frames(frames, port=-1, timestamp=ts), nanosecond=True)
    with pytest.raises(FastVpcError) as serial:
        replay(net, path, tmp_path / "s.pcap", batch_size=1000)
    assert f"frame {i - 1000 * (i // 1000)}'s timestamp {ts[i]} ns goes backwards" in str(serial.value)
    with pytest.raises(FastVpcError) as sharded:
        sh.replay_sharded(net, path, tmp_path / "o.pcap", workers=2, client=client, chunk_frames=2000,
                          batch_size=1000)
    # the same words (the serial replay had begun its output, and says it removed it)
    assert str(serial.value).startswith(str(sharded.value) + " (nothing written: partial output")
    assert not (tmp_path / "o.pcap").exists()


def test_not_a_capture_fails_before_any_worker_starts(tmp_path, monkeypatch):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x00" * 100)
    started = []
    monkeypatch.setattr(sh, "_client", lambda *a, **k: started.append(a) or (_ for _ in ()).throw(AssertionError))
    with pytest.raises(PcapError, match="bad magic"):
        sh.replay_sharded(seed_vpc(), bad, tmp_path / "o.pcap", workers=2)
    assert started == []
    assert os.listdir(tmp_path) == ["bad.pcap"]


def test_a_killed_worker_is_retried_and_the_output_is_complete(tmp_path, capture):
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster, set_as_default=False)
    try:
        pids = client.run(os.getpid)
        killed = []

        def progress(stage, done, total, frames):
            if not killed:   # the first task is done: the others are queued or running; kill one worker
                victim = sorted(pids.values())[0]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        _serial(tmp_path, capture)
        for shard_by in ("auto", "flow"):
            killed.clear()
            pids = client.run(os.getpid)
            got = sh.replay_sharded(seed_vpc(), capture, tmp_path / "out.pcap", drops_path=tmp_path / "drops.pcap",
                                    workers=2, client=client, chunk_frames=300, batch_size=100, progress=progress,
                                    shard_by=shard_by)
            assert killed, "no worker was killed"
            assert got.frames == 6000
            assert filecmp.cmp(tmp_path / "serial.pcap", tmp_path / "out.pcap", shallow=False)
            assert filecmp.cmp(tmp_path / "serial-drops.pcap", tmp_path / "drops.pcap", shallow=False)
            client.wait_for_workers(2, timeout=60)
    finally:
        client.close()
        cluster.close()


def test_unreachable_scheduler_is_one_clear_error(tmp_path, capture):
    with pytest.raises(sh.SchedulerUnreachableError, match=r"tcp://127\.0\.0\.1:9") as e:
        sh.replay_sharded(seed_vpc(), capture, tmp_path / "o.pcap", scheduler="tcp://127.0.0.1:9",
                          connect_timeout=0.5)
    assert e.value.address == "tcp://127.0.0.1:9"
    assert not (tmp_path / "o.pcap").exists()


class _FakePeers:
    """Servers on 127.0.0.1 that are not Dask schedulers: ``silent`` accepts and says nothing,
    ``garbage`` answers an HTTP error, ``closer`` accepts and hangs up at once; ``closed`` is a
    port nothing listens on, ``bad`` no address at all."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._servers: list[socket.socket] = []
        self.addr = {name: self._serve(name) for name in ("silent", "garbage", "closer")}
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.addr["closed"] = f"tcp://127.0.0.1:{s.getsockname()[1]}"
        s.close()
        self.addr["bad"] = "notanaddress"

    def _serve(self, kind: str) -> str:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        srv.settimeout(0.1)
        self._servers.append(srv)

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    c, _ = srv.accept()
                except OSError:
                    continue
                if kind == "garbage":
                    c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 4)
                if kind == "closer":
                    c.close()
                else:
                    self._held.append(c)   # held open until the end of the module

        threading.Thread(target=loop, daemon=True).start()
        return f"tcp://127.0.0.1:{srv.getsockname()[1]}"

    def close(self) -> None:
        self._stop.set()
        for s in self._held + self._servers:
            s.close()


@pytest.fixture(scope="module")
def peers():
    p = _FakePeers()
    yield p.addr
    p.close()


#: (peer, words the error must have): every one is a SchedulerUnreachableError naming the address
_NOT_SCHEDULERS = [("silent", "nothing answered Dask's handshake"), ("garbage", "not Dask's protocol"),
                   ("closer", "closed the connection"), ("closed", "cannot reach"),
                   ("bad", "not a Dask scheduler address")]


@pytest.mark.parametrize("kind,words", _NOT_SCHEDULERS)
def test_no_scheduler_at_the_address_is_one_error_in_bounded_time(tmp_path, capture, peers, kind, words):
    address = peers[kind]
    t0 = time.monotonic()
    with pytest.raises(sh.SchedulerUnreachableError) as e:
        sh.replay_sharded(seed_vpc(), capture, tmp_path / "o.pcap", scheduler=address, connect_timeout=1.0)
    took = time.monotonic() - t0
    assert e.value.address == address and repr(address) in str(e.value) and words in str(e.value), str(e.value)
    assert took < 4.0, took     # the connect timeout, and a quarter of it for a silent peer's handshake
    assert not (tmp_path / "o.pcap").exists() and not (tmp_path / "o.pcap.partial").exists()


def test_a_client_whose_connect_fails_is_closed_and_says_nothing_at_exit(peers):
    """Without the probe, the Client's own failure: the half-made Client is closed at once (left to its
    ``__del__`` at interpreter exit, it waited twice the timeout and printed a traceback)."""
    code = ("import distributed\n"
            "from fastvpc.drivers import sharded as sh\n"
            "sh._probe_scheduler = lambda *a: None\n"
            f"for addr in ('notanaddress', {peers['garbage']!r}):\n"
            "    try:\n"
            "        sh._connect(distributed, addr, 1.0)\n"
            "    except sh.SchedulerUnreachableError as e:\n"
            "        print(e.address)\n")
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0 and res.stdout.split() == ["notanaddress", peers["garbage"]], (res.stdout, res.stderr)
    assert res.stderr == "", res.stderr
    assert time.monotonic() - t0 < 20


def test_missing_dask_names_the_extra(tmp_path, capture, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)   # import distributed -> ImportError
    with pytest.raises(sh.DaskMissingError, match=r"pip install 'fastvpc\[dask\]'"):
        sh.replay_sharded(seed_vpc(), capture, tmp_path / "o.pcap", workers=2)


def test_bad_arguments_are_refused(tmp_path, capture):
    for kw, match in (({"workers": 0}, "workers"), ({"chunk_frames": 0}, "chunk_frames"),
                      ({"shard_by": "eni"}, "shard_by"), ({"on_error": "skip"}, "on_error"),
                      ({"batch_size": -1}, "batch_size")):
        with pytest.raises(Exception, match=match):
            sh.replay_sharded(seed_vpc(), capture, tmp_path / "o.pcap", **kw)
    with pytest.raises(Exception, match="is the input capture"):
        sh.replay_sharded(seed_vpc(), capture, capture, workers=2)


# --------------------------------------------------------------------------- the shard key

def _shards(net, frames_ports):
    ctx = _ctx(net)
    b = FrameBatch.from_frames([f for f, _ in frames_ports], port=[p for _, p in frames_ports])
    return sh.shard_of_frames(b, b.port.copy(), ctx).tolist()


def test_both_directions_of_a_flow_get_one_shard():
    net = seed_vpc()
    f = net.find
    w1, a1, web, app, igw = f("web1"), f("app1"), f("web"), f("app"), f("igw")
    rng = np.random.default_rng(0)
    for _ in range(50):
        sp, dp_ = (int(x) for x in rng.integers(1, 65535, 2))
        there = pk.ethernet(web.gateway_mac, w1.mac, pk.ETH_IPV4, pk.tcp(w1.ip, a1.ip, sp, dp_))
        back = pk.ethernet(app.gateway_mac, a1.mac, pk.ETH_IPV4, pk.tcp(a1.ip, w1.ip, dp_, sp, flags=0x12))
        u1 = pk.ethernet(web.gateway_mac, w1.mac, pk.ETH_IPV4, pk.udp(w1.ip, a1.ip, sp, dp_))
        u2 = pk.ethernet(app.gateway_mac, a1.mac, pk.ETH_IPV4, pk.udp(a1.ip, w1.ip, dp_, sp))
        i1 = pk.ethernet(web.gateway_mac, w1.mac, pk.ETH_IPV4, pk.icmp_echo(w1.ip, a1.ip, ident=sp))
        i2 = pk.ethernet(app.gateway_mac, a1.mac, pk.ETH_IPV4, pk.icmp_echo(a1.ip, w1.ip, ident=sp, request=False))
        # out through a translation (IGW 1:1 or a NAT gateway): the inside address and port change,
        # the outside ones do not; the reply enters on the gateway's port
        out = pk.ethernet(web.gateway_mac, w1.mac, pk.ETH_IPV4, pk.tcp(w1.ip, "198.51.100.9", sp, 443))
        reply = pk.ethernet("02:00:00:00:00:99", "02:00:5e:00:00:01", pk.ETH_IPV4,
                            pk.tcp("198.51.100.9", "203.0.113.10", 443, (sp * 7) % 65535 + 1, flags=0x12))
        s = _shards(net, [(there, w1.port), (back, a1.port), (u1, w1.port), (u2, a1.port), (i1, w1.port),
                          (i2, a1.port), (out, w1.port), (reply, igw.port)])
        assert s[0] == s[1] and s[2] == s[3] and s[4] == s[5] and s[6] == s[7], s


def test_flows_spread_over_the_shards():
    net = seed_vpc()
    f = net.find
    w1, a1, web = f("web1"), f("app1"), f("web")
    frames = [(pk.ethernet(web.gateway_mac, w1.mac, pk.ETH_IPV4, pk.udp(w1.ip, a1.ip, 1024 + i, 53)), w1.port)
              for i in range(4000)]
    counts = np.bincount(_shards(net, frames), minlength=64)
    assert counts.min() > 0.5 * 4000 / 64 and counts.max() < 1.5 * 4000 / 64, counts


# --------------------------------------------------------------------------- the command line

def test_cli_workers_gives_the_serial_output(tmp_path, capture, capsys):
    assert main(["replay", "seed", str(capture), "-o", str(tmp_path / "serial.pcap"), "--no-progress"]) == 0
    serial_text = capsys.readouterr().out
    assert main(["replay", "seed", str(capture), "-o", str(tmp_path / "w.pcap"), "--workers", "2",
                 "--no-progress", "--json", str(tmp_path / "w.json")]) == 0
    text = capsys.readouterr().out
    assert filecmp.cmp(tmp_path / "serial.pcap", tmp_path / "w.pcap", shallow=False)
    # the same counts (the first line has the time, the last the output's name)
    assert serial_text.splitlines()[1:-1] == text.splitlines()[1:-1]
    assert text.splitlines()[-1].endswith("w.pcap")


def test_cli_unreachable_scheduler_is_one_line(tmp_path, capture, capsys):
    assert main(["replay", "seed", str(capture), "-o", str(tmp_path / "w.pcap"), "--scheduler",
                 "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tcp://127.0.0.1:9" in err[0] and "Dask scheduler" in err[0]


def test_cli_no_scheduler_is_one_line_from_a_real_process(tmp_path, capture, peers):
    """The command in a process of its own (what the audit ran), for every kind of wrong address at
    once: exit 2, one line on stderr naming the address, no traceback (also none from a Client's
    ``__del__`` at exit), within the CLI's 5 s connect timeout and its grace."""
    t0 = time.monotonic()
    procs = {kind: subprocess.Popen([sys.executable, "-m", "fastvpc", "replay", "seed", str(capture), "-o",
                                     str(tmp_path / f"{kind}.pcap"), "--workers", "2", "--scheduler", peers[kind]],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for kind, _ in _NOT_SCHEDULERS}
    for kind, words in _NOT_SCHEDULERS:
        _, err = procs[kind].communicate(timeout=60)
        lines = err.splitlines()
        assert procs[kind].returncode == 2, (kind, procs[kind].returncode, err)
        assert len(lines) == 1 and "Traceback" not in err, (kind, err)
        assert lines[0].startswith("fastvpc replay: error: ") and peers[kind] in lines[0] and words in lines[0], lines
        assert not (tmp_path / f"{kind}.pcap").exists()
    assert time.monotonic() - t0 < 45


# --------------------------------------------------------------------------- connection tracking

def _tracked_reference(net, capture, out_path):
    """The serial replay with one FlowTable for the whole capture, written as the replay writes."""
    from fastvpc.dataplane.ports import PortMap
    from fastvpc.dataplane.state import FlowTable
    from fastvpc.drivers.pcapout import PcapOut
    from fastvpc.pcap import iter_pcap

    dp = net.compile()
    pmap = PortMap.for_network(net)
    flows = FlowTable(1_000_000)
    out = PcapOut(out_path)
    counts = {}
    for batch in iter_pcap(capture):
        pmap.ports_for(batch, out=batch.port)
        res = dp.process(batch, state=flows)
        out.write_by_action(batch, res.action, False)
        for a, r in zip(res.action.tolist(), res.reason.tolist()):
            counts[(a, r)] = counts.get((a, r), 0) + 1
    out.commit()
    return counts


def test_tracked_replay_is_one_flowtable_per_flow(tmp_path, capture, client):
    """With connection tracking (``stateful=True``) the frames are sharded by flow, one FlowTable per
    shard, and the output is the serial tracked replay's; a fastvpc whose process() takes no state=
    says so instead."""
    from fastvpc.errors import FastVpcError
    from fastvpc.sim import process_keywords

    net = seed_vpc()
    if "state" not in process_keywords(net.compile()):
        with pytest.raises(FastVpcError, match="takes no state="):
            sh.replay_sharded(net, capture, tmp_path / "o.pcap", workers=2, client=client, stateful=True)
        return
    counts = _tracked_reference(net, capture, str(tmp_path / "serial.pcap"))
    got = sh.replay_sharded(net, capture, tmp_path / "o.pcap", workers=3, client=client, chunk_frames=700,
                            stateful=True)
    assert filecmp.cmp(tmp_path / "serial.pcap", tmp_path / "o.pcap", shallow=False)
    assert got.frames == sum(counts.values())


def _dead_pid():
    import subprocess
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_scratch_of_a_killed_client_is_swept_from_shm_and_only_that(tmp_path):
    """A client killed with SIGKILL leaves its ``/dev/shm`` scratch folder (memory until reboot); the
    next sharded replay removes folders whose client pid is gone, and nothing else."""
    root = tmp_path / "shm"
    root.mkdir()
    dead = root / f"{sh._SCRATCH_PREFIX}{_dead_pid()}-abc"
    live = root / f"{sh._SCRATCH_PREFIX}{os.getpid()}-def"
    odd = root / f"{sh._SCRATCH_PREFIX}xyz"
    other = root / "someone-elses"
    for d in (dead, live, odd, other):
        d.mkdir()
        (d / "out-0.rec").write_bytes(b"x" * 100)
    assert sh._sweep_shm(str(root)) == [str(dead)]
    assert not dead.exists() and live.exists() and odd.exists() and other.exists()
    assert sh._sweep_shm(str(tmp_path / "missing")) == []


def test_a_replay_on_shm_sweeps_dead_scratch_and_leaves_none_of_its_own(tmp_path, capture, client, monkeypatch):
    shm = tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setattr(sh, "_SHM", str(shm))
    stale = shm / f"{sh._SCRATCH_PREFIX}{_dead_pid()}-old"
    stale.mkdir()
    (stale / "out-0.rec").write_bytes(b"x" * 1000)
    seen = []
    real = sh.tempfile.mkdtemp

    def spy(*a, **kw):
        seen.append(kw.get("dir"))
        return real(*a, **kw)

    monkeypatch.setattr(sh.tempfile, "mkdtemp", spy)
    s = sh.replay_sharded(seed_vpc(), capture, tmp_path / "out.pcap", client=client)
    assert seen == [str(shm)], "the local cluster's scratch went to the (patched) /dev/shm"
    assert s.frames == 6000
    assert not stale.exists()
    assert list(shm.iterdir()) == []


def _fragmented_capture(path, n_flows=40):
    """The seed VPC plus a public NAT gateway for the app subnet: per flow, between web and app VMs (tracked),
    a UDP request (fragmented for every 4th flow) and a 3,000-byte answer in three fragments; and from an app
    VM through the NAT gateway to an internet host, a request and a 3,000-byte datagram in three fragments
    (the later ones translated by the binding the first found).  A capture holds what VMs send (replay maps
    frames to ENIs by source MAC): the internet hosts' answers are not in it."""
    net = seed_vpc()
    vpc = net.vpcs[0]
    nat = net.find("web").add_nat_gateway(name="nat", address=net.allocate_address("203.0.113.30"))
    net.find("app").associate(vpc.add_route_table(name="rt-app", routes=[("0.0.0.0/0", nat)]))
    f = net.find
    web1, app1, app2 = f("web1"), f("app1"), f("app2")
    web1.security_groups = [vpc.add_security_group(name="web-sg")]      # no ingress rule: answers need tracking
    vpc.default_security_group.authorize_ingress("udp", 5353, "10.0.1.0/24")

    def frags(src, dst, l4, ident):
        return [pk.ipv4(src, dst, 17, l4[o:o + 1480], ident=ident, flags_frag=(0x2000 if o + 1480 < len(l4) else 0)
                        | o // 8) for o in range(0, len(l4), 1480)]

    def udp_l4(src, dst, sp, dp_, size):
        return pk.udp(src, dst, sp, dp_, bytes(i % 251 for i in range(size)))[20:]

    def eth(e, p):
        return pk.ethernet(e.subnet.gateway_mac, e.mac, pk.ETH_IPV4, p)

    frames = []
    for i in range(n_flows):
        sp = 20000 + i
        w, a = str(web1.ip), str(app1.ip)
        req = [pk.udp(w, a, sp, 5353, b"q")] if i % 4 else frags(w, a, udp_l4(w, a, sp, 5353, 2000), 100 + i)
        frames += [eth(web1, p) for p in req]
        frames += [eth(app1, p) for p in frags(a, w, udp_l4(a, w, 5353, sp, 3000), 1000 + i)]
        host = f"198.51.100.{1 + i % 7}"
        frames.append(eth(app2, pk.udp(app2.ip, host, sp, 53, b"q")))
        frames += [eth(app2, p) for p in frags(str(app2.ip), host, udp_l4(str(app2.ip), host, sp, 53, 3000),
                                               2000 + i)]       # the same flow: its binding, its NAT port
    ts = np.int64(10**9) + np.arange(len(frames), dtype=np.int64) * 1000
    from fastvpc.pcap import write_pcap
    write_pcap(str(path), FrameBatch.from_frames(frames, port=-1, timestamp=ts), nanosecond=True)
    return net


def test_fragmented_flows_and_nat_fragments_shard_as_the_serial_replay(tmp_path, client):
    """A first fragment meets its flow's table entries (its ports are in the key), and every fragment of a
    datagram through a NAT gateway meets the binding its first fragment made (the outside address is the
    key): the sharded replay equals the serial one byte for byte, and nothing is dropped."""
    net = _fragmented_capture(tmp_path / "in.pcap")
    serial = replay(net, tmp_path / "in.pcap", tmp_path / "serial.pcap", drops_path=tmp_path / "serial-drops.pcap")
    assert serial.to_dict()["by_action"].get("DROP", 0) == 0, serial.to_dict()
    got = sh.replay_sharded(net, tmp_path / "in.pcap", tmp_path / "out.pcap", drops_path=tmp_path / "drops.pcap",
                            workers=2, client=client, chunk_frames=97, batch_size=64)
    assert filecmp.cmp(tmp_path / "serial.pcap", tmp_path / "out.pcap", shallow=False)
    assert filecmp.cmp(tmp_path / "serial-drops.pcap", tmp_path / "drops.pcap", shallow=False)
    _same_summary(serial, got)


def test_a_private_nat_gateway_between_inside_addresses_shards_as_the_serial_replay(tmp_path, client):
    """A route more specific than local sends subnet c to a private NAT gateway: the flows from b and the
    answers to the NAT gateway's address meet on one shard (keyed by the far side, nat_keys), so every
    answer finds its binding, as in the serial replay."""
    net, a, b, c, nat = sf.private_nat_net()
    vpc = net.vpcs[0]
    for g in vpc.security_groups:
        g.authorize_ingress("all", None, "0.0.0.0/0")
    srcs = [b.add_eni(f"10.0.1.{10 + i}") for i in range(24)]
    far = c.add_eni("10.0.2.10")
    from fastvpc.dataplane.state import FlowTable

    dp = net.compile()
    fwd = [pk.ethernet(b.gateway_mac, e.mac, pk.ETH_IPV4, pk.udp(e.ip, far.ip, 40000 + i, 53, b"q"))
           for i, e in enumerate(srcs)]
    res = dp.process(FrameBatch.from_frames(fwd, port=[e.port for e in srcs]), copy=True, state=FlowTable(100),
                     now=10**9)
    back = [pk.ethernet(c.gateway_mac, far.mac, pk.ETH_IPV4,
                        pk.udp(far.ip, str(nat.ip), 53, int.from_bytes(res.frames.frame(i)[34:36], "big"), b"a"))
            for i in range(len(fwd))]
    frames = fwd + back
    from fastvpc.pcap import write_pcap
    write_pcap(str(tmp_path / "in.pcap"), FrameBatch.from_frames(frames, port=-1, timestamp=10**9 + np.arange(
        len(frames), dtype=np.int64)), nanosecond=True)
    serial = replay(net, tmp_path / "in.pcap", tmp_path / "serial.pcap")
    assert serial.to_dict()["by_action"] == {"DELIVER": 2 * len(srcs)}, serial.to_dict()
    got = sh.replay_sharded(net, tmp_path / "in.pcap", tmp_path / "out.pcap", workers=2, client=client,
                            chunk_frames=11, batch_size=8)
    assert filecmp.cmp(tmp_path / "serial.pcap", tmp_path / "out.pcap", shallow=False)
    assert got.to_dict()["by_action"] == serial.to_dict()["by_action"]
