"""Frames per second through the live switch between two namespaces.

    sudo python tools/bench_live.py [--count 1000000] [--size 64] [--rate 0] [--repeat 3]
                                         [--variant 'rx=ring,tx=ring,sender=ring,sink=drop,batch=1024' ...]

Builds a lab of two VMs of the seed VPC (web1 in the web subnet, app1 in the app subnet) and, for
each variant in turn (``--repeat`` times, alternating), runs the switch in this process (pinned to
CPU 0) and a bounded sender inside web1 (pinned to CPU 1): ``--count`` copies of one pre-built UDP
frame web1 -> app1 (to the web subnet's gateway MAC, as the VM's own stack would send it), written
to a raw packet socket with PACKET_QDISC_BYPASS by ``sendmmsg`` or through a PACKET_TX_RING, at most
``--rate`` frames/s (0: as fast as it can).  Every frame is DELIVERed (MACs rewritten) out of
app1's interface.  Variant keys:

* ``rx=ring|recvmmsg``, ``tx=ring|ringpages|sendmmsg|none``, ``batch=N``, ``spin=N``: the switch's I/O
  (``none``: receive and process only; ``ringpages``: TX ring attaching ring pages to the skb);
* ``sender=ring|ringpages|sendmmsg``: how the sender writes;
* ``sink=drop|udp|read``: app1 drops every frame at its netdev ingress hook (nftables), or its
  kernel takes each frame up to a bound, never-read UDP socket, or a UDP application reads them;
* ``rps=1``: app1's ingress runs on the sender's CPU; ``hostrps=1``: the host end's on the switch's.

Printed per run: frames/s (frames the switch sent / time from its first to its last frame), frames
app1's eth0 counted (rx_packets, counted before the ingress hook), frames the kernel dropped on the
switch's sockets (ring or queue full), CPU time per frame of the switch thread and the sender, and
how busy the switch thread was (CPU / wall time); then medians per variant.
``--python`` measures a plain Python recv/send loop for comparison.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import subprocess
import sys
import time
from typing import Any

import numpy as np

from fastvpc.packets import checksum

SOL_PACKET, PACKET_STATISTICS = 263, 6
SINK = ("import socket, time, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)\n"
        "s.bind((sys.argv[1], 9))\n"
        "print('ready', flush=True)\n"
        "time.sleep(3600)\n")


# A UDP application in app1 (sink=read): reads every datagram to port 10 (8 MiB socket buffer)
# until 1 s passes without one, then prints how many it read.
READER = ("import socket, sys\n"
          "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
          "s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)\n"
          "s.bind((sys.argv[1], 10))\n"
          "s.settimeout(20)\n"
          "buf = bytearray(2048)\n"
          "n = 0\n"
          "print('ready', flush=True)\n"
          "try:\n"
          "    s.recv_into(buf)\n"
          "    n = 1\n"
          "    s.settimeout(1)\n"
          "    while True:\n"
          "        s.recv_into(buf)\n"
          "        n += 1\n"
          "except socket.timeout:\n"
          "    pass\n"
          "print(n, flush=True)\n")


def udp_frame(src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, size: int, dport: int = 9) -> bytes:
    """An Ethernet/IPv4/UDP frame of ``size`` bytes (>= 42) with valid checksums."""
    payload = bytes(max(0, size - 42))
    udp_len = 8 + len(payload)
    sip, dip = socket.inet_aton(src_ip), socket.inet_aton(dst_ip)
    pseudo = sip + dip + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", 40000, dport, udp_len, 0) + payload
    ucs = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", ucs) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 1, 0, 64, 17, 0, sip, dip)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    eth = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", "")) + b"\x08\x00"
    return eth + ip + udp


def socket_drops(sock: socket.socket) -> int:
    """Frames the kernel dropped on this packet socket since the last call (queue full)."""
    raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
    _packets, drops = struct.unpack("II", raw)
    return int(drops)


def run_sender(ifname: str, frame_hex: str, count: int, rate: float, cpu: int, how: str) -> None:
    """Inside the sending VM: ``count`` copies of the frame, at most ``rate``/s, with sendmmsg
    (``how="sendmmsg"``) or through a PACKET_TX_RING, one send() per 256 frames (``"ring"``);
    both with PACKET_QDISC_BYPASS."""
    from fastvpc.live import open_packet_socket, open_tx_socket
    from fastvpc.live._mmsg import STATS_LEN, BatchIO
    from fastvpc.live._rings import TxRing

    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})
    frame = np.frombuffer(bytes.fromhex(frame_hex), dtype=np.uint8)
    stats = np.zeros(STATS_LEN, dtype=np.int64)
    if how in ("ring", "ringpages"):
        sock = open_tx_socket(ifname)
        ring = TxRing(np.array([sock.fileno()], dtype=np.int32), 2048, 1024, how == "ring")

        def blast(n: int) -> int:
            return ring.blast(0, frame, n, 256, stats)
    else:
        sock = open_packet_socket(ifname)
        io = BatchIO(256, 2048)

        def blast(n: int) -> int:
            return io.blast(sock.fileno(), frame, n, stats)
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    sent = 0
    chunk = 1 << 16 if rate <= 0 else max(1, min(256, int(rate / 1000)))
    while sent < count:
        n = min(chunk, count - sent)
        blast(n)
        sent += n
        if rate > 0:
            ahead = sent / rate - (time.perf_counter() - t0)
            if ahead > 0:
                time.sleep(ahead)
    dt = time.perf_counter() - t0
    print(f"{int(stats[4])} {int(stats[5])} {dt:.6f} {time.process_time() - cpu0:.6f}", flush=True)


def python_loop(lab: Any, count: int) -> tuple[int, float]:
    """A plain Python recv/send loop (no data plane at all), for comparison."""
    from fastvpc.live import open_packet_socket

    a = open_packet_socket(lab["web1"].host_if)
    b = open_packet_socket(lab["app1"].host_if)
    a.settimeout(1.0)
    n, t_first, t_last = 0, 0.0, 0.0
    try:
        while n < count:
            try:
                f = a.recv(2048)
            except socket.timeout:
                break
            if n == 0:
                t_first = time.perf_counter()
            b.send(f)
            n += 1
            t_last = time.perf_counter()
    finally:
        a.close()
        b.close()
    return n, t_last - t_first


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def parse_variant(text: str) -> dict[str, str]:
    """``"rx=ring,sink=drop"`` -> options of one measured configuration."""
    keys: dict[str, tuple[str, ...]] = {"rx": ("ring", "recvmmsg"), "tx": ("sendmmsg", "ring", "ringpages", "none"),
                                        "sender": ("sendmmsg", "ring", "ringpages"), "sink": ("udp", "drop", "read"),
                                        "spin": (), "batch": (), "rps": ("0", "1"), "hostrps": ("0", "1")}
    out = {"rx": "ring", "tx": "ring", "sender": "ring", "sink": "udp", "spin": "0", "batch": "1024", "rps": "0", "hostrps": "0"}
    for part in filter(None, (p.strip() for p in text.split(","))):
        k, _, v = part.partition("=")
        if k not in keys or (keys[k] and v not in keys[k]) or not v:
            raise SystemExit(f"bad variant item {part!r}: keys rx=ring|recvmmsg, tx=sendmmsg|ring|ringpages|none, "
                             "sender=sendmmsg|ring|ringpages, sink=udp|drop|read, spin=N, batch=N, rps=0|1, hostrps=0|1")
        out[k] = v
    return out


def _steal() -> float:
    """Seconds of CPU time the hypervisor gave to others (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def rx_packets(ns: Any) -> int:
    """app1's eth0 rx counter (veth counts a frame when it is handed to the namespace, before tc ingress)."""
    r = ns.run(["cat", "/sys/class/net/eth0/statistics/rx_packets"], check=True)
    return int(r.stdout.strip())


def set_sink(ns: Any, mode: str) -> None:
    """``drop``: app1's eth0 drops every frame at its netdev ingress hook (nftables, policy drop:
    its IP/UDP stack never runs); ``udp``: no filter, app1's kernel takes each frame up to the
    UDP socket lookup.  (tc's matchall/gact are often not built, so nftables it is.)"""
    ns.run(["nft", "delete", "table", "netdev", "fvsink"], check=False)
    if mode == "drop":
        ns.run(["nft", "add", "table", "netdev", "fvsink"], check=True)
        ns.run(["nft", "add", "chain", "netdev", "fvsink", "in",
                "{ type filter hook ingress device eth0 priority 0; policy drop; }"], check=True)


class _NoSend:
    """Stands in for BatchIO when the switch should not send (``tx=none``): receives through it."""

    def __init__(self, io: Any) -> None:
        self.recv = io.recv

    def send(self, *args: Any) -> int:
        return 0


def one_run(lab: Any, net: Any, dp: Any, frame: bytes, v: dict[str, str], count: int, rate: float,
            sw_cpu: int, tx_cpu: int) -> dict[str, Any]:
    from fastvpc.live import Switch

    set_sink(lab["app1"], v["sink"])
    # rps=1: app1's kernel takes its frames on the sender's CPU (receive packet steering), not on
    # the switch's CPU, where veth would otherwise run them inside the switch's send
    mask = format(1 << tx_cpu, "x") if v["rps"] == "1" and tx_cpu >= 0 else "0"
    lab["app1"].run(["sh", "-c", f"echo {mask} > /sys/class/net/eth0/queues/rx-0/rps_cpus"], check=True)
    # hostrps=1: the frames web1 sends are taken off the host end of its veth (into the switch's
    # receive ring) on the switch's CPU instead of inside the sender's send
    mask = format(1 << sw_cpu, "x") if v["hostrps"] == "1" and sw_cpu >= 0 else "0"
    with open(f"/sys/class/net/{lab['web1'].host_if}/queues/rx-0/rps_cpus", "w") as f:
        f.write(mask + "\n")
    reader = None
    if v["sink"] == "read":
        reader = lab["app1"].popen([sys.executable, "-c", READER, lab["app1"].ip])
        assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
        frame = frame[:36] + struct.pack("!H", 10) + frame[38:40] + struct.pack("!H", 0) + frame[42:]  # port 10, no UDP csum
    sender = lab["web1"].popen([sys.executable, os.path.abspath(__file__), "--sender", "eth0", frame.hex(),
                                str(count), str(rate), str(tx_cpu), v["sender"]], stdin=subprocess.PIPE)
    assert sender.stdout is not None and sender.stdin is not None
    if sender.stdout.readline().strip() != "ready":
        raise SystemExit(sender.communicate()[1])
    switch = Switch(dp, lab.attachments, network=net, batch_size=int(v["batch"]),
                    rx_ring=v["rx"] == "ring", tx_ring=v["tx"] in ("ring", "ringpages"), spin=int(v["spin"]))
    with switch:
        if v["tx"] == "ringpages" and switch._txring is not None:   # zero-copy ring pages
            port_fd = np.full(max(lab.attachments) + 1, -1, dtype=np.int32)
            for (port, _), sk in zip(lab.attachments.items(), switch._txsocks):
                port_fd[port] = sk.fileno()
            switch._txring.close()
            for sk in switch._txsocks:
                sk.close()
            from fastvpc.live import open_tx_socket
            from fastvpc.live._rings import TxRing
            switch._txsocks = [open_tx_socket(ifn) for ifn in lab.attachments.values()]
            port_fd[:] = -1
            for port, sk in zip(lab.attachments, switch._txsocks):
                port_fd[port] = sk.fileno()
            switch._txring = TxRing(port_fd, 2048, 1024, False)
        if v["tx"] == "none":        # measure receive + process alone: nothing is sent
            switch._io = _NoSend(switch._io)   # type: ignore[assignment]
        socks = list(switch._socks)
        for s in socks:
            socket_drops(s)
        rx0 = rx_packets(lab["app1"])
        sender.stdin.write("go\n")
        sender.stdin.flush()
        t_first = t_last = 0.0
        steal0 = _steal()
        cpu0 = time.thread_time()
        idle_since = time.perf_counter()
        while True:
            n = switch.poll_once(20)
            now = time.perf_counter()
            if n:
                if t_first == 0.0:
                    t_first = now
                t_last = now
                idle_since = now
                if switch.rx >= count:
                    break
            elif (t_first and now - idle_since > 0.5) or now - idle_since > 10:
                break
        cpu = time.thread_time() - cpu0
        steal = _steal() - steal0
        drops = sum(socket_drops(s) for s in socks)
        c = switch.counters()
        mode = f"{switch.rx_mode}/{switch.tx_mode}"
    out, _ = sender.communicate(timeout=60)
    delivered = rx_packets(lab["app1"]) - rx0
    read = -1
    if reader is not None:
        rout, _ = reader.communicate(timeout=60)
        read = int(rout.split()[-1])
    sent_s, tx_err, tx_time, sender_cpu = out.split()
    dt = t_last - t_first
    return {"variant": v, "rx_mode": mode, "offered": int(sent_s), "tx_time": float(tx_time),
            "sender_cpu": float(sender_cpu), "tx_err": int(tx_err), "rx": c["rx"], "tx": c["tx"],
            "deliver": c["by_action"]["DELIVER"], "drops": drops, "tx_errors": c["tx_errors"],
            "rounds": c["rounds"], "cpu": cpu, "dt": dt, "steal": steal / max(1e-9, dt) / max(1, os.cpu_count() or 1), "delivered": delivered,
            "fps": (c["tx"] if v["tx"] != "none" else c["rx"]) / dt if dt > 0 else 0.0, "dfps": delivered / dt if dt > 0 else 0.0, "read": read,
            "rfps": read / dt if dt > 0 and read >= 0 else float("nan")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=2_000_000, help="frames the sender sends per run (default 2M)")
    ap.add_argument("--size", type=int, default=64, help="frame size in bytes (default 64)")
    ap.add_argument("--rate", type=float, default=0, help="sender rate limit, frames/s (0: none)")
    ap.add_argument("--variant", action="append", default=[],
                    help="a configuration to measure, e.g. 'rx=recvmmsg,tx=sendmmsg,sender=sendmmsg,sink=drop,batch=256'; "
                         "defaults rx=ring,tx=ring,sender=ring,sink=udp,spin=0,batch=1024 (repeat for an A/B)")
    ap.add_argument("--repeat", type=int, default=1, help="alternate the variants this many times (default 1)")
    ap.add_argument("--reference", action="store_true", help="use the pure-Python reference forwarder")
    ap.add_argument("--python", action="store_true", help="measure a plain Python recv/send loop instead")
    ap.add_argument("--sender", nargs=6, metavar=("IF", "FRAME", "COUNT", "RATE", "CPU", "HOW"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sender:
        ifname, frame_hex, count, rate, cpu, how = args.sender
        run_sender(ifname, frame_hex, int(count), float(rate), int(cpu), how)
        return 0

    import fastvpc.examples as examples
    from fastvpc.live.netns import Lab

    variants = [parse_variant(t) for t in (args.variant or [""])]
    net = examples.seed_vpc()
    web1, app1, web = net.find("web1"), net.find("app1"), net.find("web")
    frame = udp_frame(web1.mac, web.gateway_mac, str(web1.ip), str(app1.ip), args.size)
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    ncpu = len(os.sched_getaffinity(0))
    sw_cpu, tx_cpu = (0, 1) if ncpu >= 2 else (-1, -1)
    if args.reference:
        from fastvpc.reference import ReferenceForwarder
        dp: Any = ReferenceForwarder(net)
    else:
        dp = net.compile()
    with Lab(net, enis=["web1", "app1"]) as lab:
        # app1 has a socket on the port (never read, tiny buffer): its kernel drops the datagrams
        # after the UDP lookup instead of answering each with an ICMP port unreachable
        sink = lab["app1"].popen([sys.executable, "-c", SINK, str(app1.ip)])
        assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
        if args.python:
            sender = lab["web1"].popen([sys.executable, os.path.abspath(__file__), "--sender", "eth0", frame.hex(),
                                        str(args.count), str(args.rate), str(tx_cpu), "sendmmsg"], stdin=subprocess.PIPE)
            assert sender.stdout is not None and sender.stdin is not None
            assert sender.stdout.readline().strip() == "ready"
            sender.stdin.write("go\n")
            sender.stdin.flush()
            n, dt = python_loop(lab, args.count)
            sender.communicate(timeout=60)
            print(f"python recv/send loop: {n} of {args.count} frames in {dt:.3f} s: {n / dt / 1e6:.3f} M frames/s")
            return 0
        if sw_cpu >= 0:
            os.sched_setaffinity(0, {sw_cpu})
        print(f"load average before: {load}; switch on CPU {sw_cpu}, sender on CPU {tx_cpu}; "
              f"{args.count} frames of {args.size} bytes per run, {'reference' if args.reference else 'compiled'} data plane")
        results: list[dict[str, Any]] = []
        for rep in range(args.repeat):
            for v in variants:
                r = one_run(lab, net, dp, frame, v, args.count, args.rate, sw_cpu, tx_cpu)
                results.append(r)
                tag = ",".join(f"{k}={x}" for k, x in v.items())
                print(f"[{rep}] {tag:<40} {r['fps'] / 1e6:6.3f} M/s switch, {r['dfps'] / 1e6:6.3f} M/s delivered "
                      f"(rx_mode {r['rx_mode']}; offered {r['offered'] / r['tx_time'] / 1e6:.2f} M/s, sender "
                      f"{r['sender_cpu'] / max(1, r['offered']) * 1e9:.0f} ns/frame; switch rx {r['rx']}, tx {r['tx']}, "
                      f"socket drops {r['drops']}, tx errors {r['tx_errors']}, app1 rx_packets +{r['delivered']}, "
                      f"{'' if r['read'] < 0 else 'read by the UDP application ' + str(r['read']) + ', '}"
                      f"mean batch {r['rx'] / max(1, r['rounds']):.0f}, switch CPU "
                      f"{r['cpu'] / max(1, r['rx']) * 1e9:.0f} ns/frame, busy {r['cpu'] / max(1e-9, r['dt']):.0%}, "
                      f"steal {r['steal']:.0%})", flush=True)
    print(f"load average after: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    print("medians:")
    for v in variants:
        rs = [r for r in results if r["variant"] is v]
        tag = ",".join(f"{k}={x}" for k, x in v.items())
        print(f"  {tag:<40} switch {_median([r['fps'] for r in rs]) / 1e6:.3f} M frames/s, delivered "
              f"{_median([r['dfps'] for r in rs]) / 1e6:.3f} M/s, read by the application "
              f"{_median([r['rfps'] for r in rs]) / 1e6:.3f} M/s, switch busy {_median([r['cpu'] / r['dt'] for r in rs]):.0%}, "
              f"switch CPU "
              f"{_median([r['cpu'] / max(1, r['rx']) for r in rs]) * 1e9:.0f} ns/frame, sender "
              f"{_median([r['sender_cpu'] / max(1, r['offered']) for r in rs]) * 1e9:.0f} ns/frame "
              f"(runs: {', '.join(format(r['fps'] / 1e6, '.3f') for r in rs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
