"""``fastvpc demo``: a mixed batch through the seed VPC, then the throughput on a large batch."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastvpc import packets as pk
from fastvpc.batch import FrameBatch
from fastvpc.examples import seed_vpc
from fastvpc.cli.show import table
from fastvpc.topology import Eni, Network
from fastvpc.verdicts import Action, DropReason

__all__ = ["DemoCase", "add_parser", "demo_cases", "run_demo"]


def add_parser(sub: Any) -> None:
    from fastvpc.cli import command
    from fastvpc.cli._common import positive_int

    p = sub.add_parser("demo", help="push a mixed batch through the built-in seed VPC and time it")
    p.add_argument("--frames", type=_frame_count, default=1_000_000,
                   help=f"frames in the throughput batch (default 1M, at most {MAX_DEMO_FRAMES:,})")
    p.add_argument("--threads", type=positive_int, default=None, help="n_threads for the throughput run (default: all)")
    p.add_argument("--write", metavar="DIR", help="write the starter files instead: topology.yaml, topology.json "
                                                  "(the seed VPC), in.pcap (the demo's frames), aws_configs/")
    p.add_argument("--force", action="store_true", help="with --write: overwrite files that exist")
    p.set_defaults(func=command("demo", _run))


def _run(args: Any) -> int:
    if args.write is not None:
        return _write(args.write, force=args.force)
    return run_demo(n_frames=args.frames, n_threads=args.threads)


def _write(folder: str, *, force: bool) -> int:
    import os

    from fastvpc.cli._common import UsageError
    from fastvpc.examples import seed_aws_describe, write_starter_files

    names = ["topology.yaml", "topology.json", "in.pcap"] + [os.path.join("aws_configs", n)
                                                             for n in seed_aws_describe()]
    there = [n for n in names if os.path.exists(os.path.join(folder, n))]
    if there and not force:
        raise UsageError(f"{folder} already holds {', '.join(there[:3])}{', ...' if len(there) > 3 else ''}: "
                         "nothing written (--force overwrites them)")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"--write {folder!r} is a file, not a folder")
    out = write_starter_files(folder)
    print(f"wrote the starter files into {folder}:")
    for what, path in out.items():
        print(f"  {path}")
    print(f"""
try, in {folder}:
  fastvpc show topology.yaml
  fastvpc trace topology.yaml --from web1 --to 8.8.8.8 --proto tcp --port 443
  fastvpc import-aws aws_configs -o imported.json
  fastvpc trace --aws aws_configs --from web1 --to 10.0.2.10
  fastvpc replay topology.yaml in.pcap -o out.pcap --drops drops.pcap --json summary.json""")
    return 0


@dataclass(frozen=True)
class DemoCase:
    what: str
    frame: bytes
    port: int


def demo_cases(net: Network) -> list[DemoCase]:
    """One frame per behaviour worth seeing, sent by the seed VPC's VMs."""
    f = net.find
    web1, web2, app1, db1, db2 = f("web1"), f("web2"), f("app1"), f("db1"), f("db2")
    web, app, db = f("web"), f("app"), f("db")

    def ip_frame(src_eni: Eni, dst_mac: pk.MacLike, packet: bytes) -> bytes:
        return pk.ethernet(dst_mac, src_eni.mac, pk.ETH_IPV4, packet)

    c = DemoCase
    return [
        c("web1 -> web2  UDP, same subnet", ip_frame(web1, web2.mac, pk.udp(web1.ip, web2.ip, 4000, 53)), web1.port),
        c("web1 -> app1  ping, across subnets", ip_frame(web1, web.gateway_mac, pk.icmp_echo(web1.ip, app1.ip)),
          web1.port),
        c("db2 -> db1's secondary IP, TCP", ip_frame(db2, db1.mac, pk.tcp(db2.ip, "10.0.3.11", 40000, 5432)),
          db2.port),
        c("web1 -> 8.8.8.8  TCP (internet)", ip_frame(web1, web.gateway_mac, pk.tcp(web1.ip, "8.8.8.8", 40000, 443)),
          web1.port),
        c("db1 -> 192.168.50.5  (on-premises)",
          ip_frame(db1, db.gateway_mac, pk.tcp(db1.ip, "192.168.50.5", 40001, 1521)), db1.port),
        c("app1 -> 8.8.8.8  (app has no default route)",
          ip_frame(app1, app.gateway_mac, pk.tcp(app1.ip, "8.8.8.8", 40002, 443)), app1.port),
        c("web1 ARP who-has 10.0.1.1 (own gateway)", pk.arp_request(web1.mac, web1.ip, web.router_ip), web1.port),
        c("web1 ARP who-has 10.0.2.10 (VM in app)", pk.arp_request(web1.mac, web1.ip, app1.ip), web1.port),
        c("web1 ARP who-has 10.0.1.99 (unassigned)", pk.arp_request(web1.mac, web1.ip, "10.0.1.99"), web1.port),
        c("web1 ping 10.0.1.1 (own gateway)", ip_frame(web1, web.gateway_mac, pk.icmp_echo(web1.ip, web.router_ip)),
          web1.port),
        c("web1 ping 10.0.2.1 (app's gateway)",
          ip_frame(web1, web.gateway_mac, pk.icmp_echo(web1.ip, app.router_ip)), web1.port),
        c("web1 TCP to 10.0.1.1:22 (own gateway)",
          ip_frame(web1, web.gateway_mac, pk.tcp(web1.ip, web.router_ip, 40003, 22)), web1.port),
        c("web1 UDP to 10.0.1.255 (subnet broadcast)",
          ip_frame(web1, web.gateway_mac, pk.udp(web1.ip, "10.0.1.255", 137, 137)), web1.port),
        c("web1 UDP to ff:ff:ff:ff:ff:ff", ip_frame(web1, pk.BROADCAST_MAC, pk.udp(web1.ip, web2.ip, 68, 67)),
          web1.port),
        c("web1 OSPF hello to 224.0.0.5 (multicast)",
          ip_frame(web1, web.gateway_mac, pk.ipv4(web1.ip, "224.0.0.5", 89, b"\0" * 24, ttl=1)), web1.port),
        c("web1 IPv6 to fe80::1", pk.ethernet(web.gateway_mac, web1.mac, pk.ETH_IPV6,
                                              pk.ipv6_udp("fe80::2", "fe80::1")), web1.port),
        c("web1 spoofs source 10.9.9.9", ip_frame(web1, web.gateway_mac, pk.udp("10.9.9.9", app1.ip, 1, 2)),
          web1.port),
        c("12 bytes of garbage", b"\xde\xad\xbe\xef" * 3, web1.port),
    ]


#: The largest --frames: the batch is built in memory (about 70 bytes a frame, 1.4 GB at this bound).
MAX_DEMO_FRAMES = 20_000_000


def _frame_count(text: str) -> int:
    import argparse

    from fastvpc.cli._common import positive_int

    n = positive_int(text)
    if n > MAX_DEMO_FRAMES:
        raise argparse.ArgumentTypeError(f"{text!r} is more than {MAX_DEMO_FRAMES:,} frames (the batch is built in "
                                         "memory; BENCHMARKS.md has the large runs)")
    return n


def run_demo(*, n_frames: int = 1_000_000, n_threads: int | None = None, print_fn: Callable[[str], object] = print) -> int:
    """Print the verdict table for the seed VPC, then frames/s on a batch of ``n_frames``."""
    net = seed_vpc()
    dp = net.compile()
    cases = demo_cases(net)
    batch = FrameBatch.from_frames([c.frame for c in cases], port=[c.port for c in cases])
    res = dp.process(batch, copy=True)
    names = {t.port: t.name for t in net.targets}
    routes = net.routes()
    rows = []
    for i, c in enumerate(cases):
        act = Action(int(res.action[i]))
        reason = DropReason(int(res.reason[i]))
        eg = int(res.egress[i])
        r = int(res.route[i])
        route = f"{routes[r].destination} -> {routes[r].target.name} ({routes[r].route_table.name})" if r >= 0 else ""
        rows.append([str(i), c.what, act.name, reason.name if act == Action.DROP else "",
                     names.get(eg, "") if eg >= 0 else "", route])
    print_fn("fastvpc demo: the seed VPC 10.0.0.0/16 -- web -> igw, db -> vgw, app local only\n")
    print_fn(table(["#", "frame", "action", "reason", "egress", "route"], rows, indent=""))

    # Throughput: the forwarding cases (unicast across subnets and to gateways) plus ARP and drops.
    mix = [0, 1, 1, 2, 3, 3, 4, 5, 6, 9, 13, 16]
    reps = max(1, n_frames // len(mix))
    big = FrameBatch.from_frames([cases[i].frame for i in mix] * reps, port=[cases[i].port for i in mix] * reps)
    work = big.copy()
    out = dp.process(work, copy=False)  # warm-up, and gives arrays to reuse
    best = float("inf")
    for _ in range(5):
        np.copyto(work.data, big.data)
        t0 = time.perf_counter()
        dp.process(work, copy=False, out=out, n_threads=n_threads)
        best = min(best, time.perf_counter() - t0)
    n = len(big)
    counts = np.bincount(out.action, minlength=4)
    print_fn(f"\nthroughput: {n:,} frames ({int(big.offsets[-1]) / n:.0f} bytes avg) in {best * 1e3:.1f} ms "
             f"= {n / best / 1e6:.1f} M frames/s "
             f"(n_threads={'all' if n_threads is None else n_threads}; "
             + ", ".join(f"{Action(a).name} {int(counts[a]):,}" for a in range(4)) + ")")
    print_fn(f"measured on the seed VPC above ({len(net.vpcs)} VPC, {len(net.subnets)} subnets, "
             f"{len(net.enis)} ENIs, {len(net.routes())} routes); BENCHMARKS.md has the rates on large "
             "networks (100k ENIs, 10,000 route tables) and against dpkt/scapy")
    return 0
