"""Flow logs of a sharded replay (``replay_sharded(..., flow_log=)``, ``fastvpc replay --workers N
--flow-log FILE``): every task's log merged is the serial replay's log, and the file it writes is the
serial one's, byte for byte -- records of one flow split over chunks (and shards) summed, start/end
min/max, tcp-flags OR-ed, in the serial order."""

from __future__ import annotations

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason="the test extra installs dask[distributed]")

from fastvpc import packets as pk  # noqa: E402
from fastvpc.batch import FrameBatch  # noqa: E402
from fastvpc.cli import main  # noqa: E402
from fastvpc.dataplane.flowlogs import FIELDS, FlowLog  # noqa: E402
from fastvpc.drivers import sharded as sh  # noqa: E402
from fastvpc.drivers.replay import replay  # noqa: E402
from fastvpc.examples import seed_vpc  # noqa: E402
from fastvpc.pcap import write_pcap  # noqa: E402

ALL = " ".join(f"${{{f}}}" for f in FIELDS)
T0 = 1_700_000_000 * 10**9


def _flow_frames(n: int, seed: int = 5) -> list[bytes]:
    """``n`` frames of 30 flows that come back again and again (so one record's packets are spread
    over many chunks and, by position, shards), TCP flags of every kind, both directions, frames to
    gateways, dropped ones (a broadcast, a non-IPv4 frame, an unknown host) and not-logged ones."""
    net = seed_vpc()
    enis = [net.find(x) for x in ("web1", "web2", "app1", "app2", "db1", "db2")]
    rng = np.random.default_rng(seed)
    dsts = [str(e.ip) for e in enis] + ["8.8.8.8", "10.0.9.9", "10.0.0.2", "169.254.169.254"]
    flows = [(enis[int(rng.integers(6))], dsts[int(rng.integers(len(dsts)))], int(rng.integers(3)),
              int(rng.integers(30000, 30004))) for _ in range(30)]
    out = []
    for _ in range(n):
        s, d, kind, sport = flows[int(rng.integers(len(flows)))]
        if d == str(s.ip):
            d = "8.8.8.8"
        gw = s.subnet.gateway_mac
        if kind == 0:
            flags = int(rng.choice([0x02, 0x12, 0x10, 0x18, 0x11, 0x04]))
            fr = pk.ethernet(gw, s.mac, pk.ETH_IPV4, pk.tcp(s.ip, d, sport, 443, b"x" * int(rng.integers(40)),
                                                            flags=flags))
        elif kind == 1:
            fr = pk.ethernet(gw, s.mac, pk.ETH_IPV4, pk.udp(s.ip, d, sport, 53, b"q" * int(rng.integers(20))))
        else:
            fr = pk.ethernet(gw, s.mac, pk.ETH_IPV4, pk.icmp_echo(s.ip, d, ident=sport))
        if rng.integers(50) == 0:
            fr = pk.arp_request(s.mac, s.ip, d)
        out.append(fr)
    return out


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """4000 frames over ~27 minutes: 28 one-minute windows, 3 ten-minute ones."""
    path = tmp_path_factory.mktemp("sharded-fl") / "in.pcap"
    frames = _flow_frames(4000)
    ts = T0 + np.arange(len(frames), dtype=np.int64) * 400_000_000
    write_pcap(str(path), FrameBatch.from_frames(frames, port=-1, timestamp=ts), nanosecond=True)
    return path


def _serial_log(capture, window, fields=None):
    log = FlowLog(window=window, fields=fields)
    replay(seed_vpc(), capture, flow_log=log, batch_size=300)
    return log


@pytest.mark.parametrize("shard_by,workers,window", [("auto", 2, 60), ("flow", 2, 600), ("flow", 3, 60)])
def test_sharded_flow_log_is_the_serial_one_byte_for_byte(tmp_path, capture, client, shard_by, workers, window):
    serial = _serial_log(capture, window, ALL)
    serial.write(tmp_path / "serial.log")
    log = FlowLog(window=window, fields=ALL)
    got = sh.replay_sharded(seed_vpc(), capture, tmp_path / "out.pcap", workers=workers, client=client,
                            chunk_frames=350, batch_size=128, shard_by=shard_by, flow_log=log)
    log.write(tmp_path / "sharded.log")
    assert (tmp_path / "sharded.log").read_bytes() == (tmp_path / "serial.log").read_bytes()
    assert got.frames == 4000 and len(log) == len(serial) > 100
    assert log.packets_logged == serial.packets_logged
    # the capture's flows really were cut: some record has more packets than a chunk could give it
    rec = log.records()
    assert int(rec["packets"].max()) > 10 and (rec["start"] < rec["end"]).any()


def test_sharded_flow_log_joins_what_the_log_already_had(tmp_path, capture, client):
    """A log that already holds records (an earlier replay): the sharded replay adds to its open
    records and orders the new ones after them, as feeding the serial replay the same log does."""
    serial = _serial_log(capture, 600)
    replay(seed_vpc(), capture, flow_log=serial, batch_size=500)
    log = _serial_log(capture, 600)
    sh.replay_sharded(seed_vpc(), capture, workers=2, client=client, chunk_frames=600, flow_log=log)
    assert log.text() == serial.text()
    assert int(log.records()["packets"].sum()) == int(serial.records()["packets"].sum())


def test_sharded_flow_log_refuses_a_non_flowlog(tmp_path, capture, client):
    with pytest.raises(sh.FastVpcError, match="flow_log must be a fastvpc.FlowLog, not dict"):
        sh.replay_sharded(seed_vpc(), capture, workers=2, client=client, flow_log={})


def test_cli_workers_and_flow_log_write_the_serial_file(tmp_path, capture, capsys):
    args = ["replay", "seed", str(capture), "--no-progress", "--flow-log-window", "60"]
    assert main(args + ["--flow-log", str(tmp_path / "serial.log")]) == 0
    assert main(args + ["--flow-log", str(tmp_path / "w.log"), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "flow log" in out and "w.log" in out
    assert (tmp_path / "w.log").read_bytes() == (tmp_path / "serial.log").read_bytes()
    assert len((tmp_path / "w.log").read_bytes().splitlines()) > 100
