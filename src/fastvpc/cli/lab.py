"""``fastvpc lab up TOPOLOGY [--duration S] [--flow-capacity N]`` and ``fastvpc lab down``: a lab in one command.

``up`` builds, with :class:`fastvpc.live.netns.Lab`, one network namespace per ENI (``eth0``
with the ENI's MAC, its IPs, a default route via the subnet router, veth's default offloads) and
one per gateway (an outside host with a TEST-NET address that the topology does not use, and a
default route), starts :class:`fastvpc.live.Switch` between
them, prints how to enter each host (``ip netns exec NAME ...``) and forwards until Ctrl-C,
SIGTERM, ``--duration`` or ``fastvpc lab down``; then it deletes everything it made.

``down`` stops every lab that ``up`` started (SIGTERM to its process, found in the state
folder ``$FASTVPC_LAB_DIR``, default ``/run/fastvpc/labs``) and removes what labs whose process
is gone (killed, crashed) left behind (:func:`fastvpc.live.netns.cleanup_leftovers`).

Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_NET_RAW) and ``iproute2``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import sys
import time
from typing import Any

from fastvpc.live.netns import _pid_alive as _alive

#: Exit status when namespaces cannot be made here (not root, tools missing), as ``live``.
EXIT_UNAVAILABLE = 77

# outside hosts: one documentation (TEST-NET) address per gateway, by kind; when a block has no address the
# topology leaves free, the next of these
_OUTSIDE = {"igw": "203.0.113.0/24", "vgw": "198.51.100.0/24"}
_OTHER = "192.0.2.0/24"
_TEST_NETS = ("203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24")


def state_dir() -> str:
    return os.environ.get("FASTVPC_LAB_DIR", "/run/fastvpc/labs")


def add_parser(sub: Any) -> None:
    from fastvpc.cli import command
    from fastvpc.cli._common import add_flow_capacity_option, positive_float

    p = sub.add_parser("lab", help="build namespaces for a topology's ENIs and gateways, run the switch "
                                   "between them (root)",
                       description="lab up TOPOLOGY: a namespace per ENI and per gateway, wired to the "
                                   "compiled data plane; lab down: stop labs and remove leftovers.")
    lsub = p.add_subparsers(dest="lab_command", metavar="up|down")
    lsub.required = True
    up = lsub.add_parser("up", help="build the lab and forward until Ctrl-C / SIGTERM / lab down")
    up.add_argument("topology", help="topology file (JSON/YAML), or 'seed' for the built-in example")
    up.add_argument("--duration", type=positive_float, default=None, metavar="S", help="stop after S seconds")
    up.add_argument("--no-gateways", action="store_true", help="no outside host per gateway")
    add_flow_capacity_option(up)
    up.set_defaults(func=command("lab up", _up))
    down = lsub.add_parser("down", help="stop every running lab and remove what crashed labs left behind")
    down.set_defaults(func=command("lab down", _down))


def topology_addresses(net: Any) -> tuple[set[ipaddress.IPv4Address], list[ipaddress.IPv4Network]]:
    """(addresses, blocks) the topology uses, which no outside host may own: the public IPs of ENIs, every
    Elastic IP (associated or not), the NAT gateways' Elastic and private IPs, the ENIs' private IPs; and
    every VPC's CIDR blocks (a VPC may use public space)."""
    addrs: set[ipaddress.IPv4Address] = set()
    blocks: list[ipaddress.IPv4Network] = []
    addrs.update(eip.public_ip for eip in net.addresses)
    for vpc in net.vpcs:
        blocks.extend(vpc.cidrs)
        for nat in vpc.nat_gateways:
            addrs.update(ip for ip in (nat.public_ip, nat.ip) if ip is not None)
    for eni in net.enis:
        addrs.update(eni.ips)
        if eni.public_ip is not None:
            addrs.add(eni.public_ip)
    return addrs, blocks


def gateway_addresses(net: Any) -> dict[str, str]:
    """Gateway name -> ``ip/len`` of its outside host: the lowest address of its kind's TEST-NET
    (internet gateways 203.0.113.0/24, VPN gateways 198.51.100.0/24) that the topology does not use
    (:func:`topology_addresses`) and no earlier gateway took; the next TEST-NET when that one has none."""
    used, blocks = topology_addresses(net)
    out: dict[str, str] = {}
    for vpc in net.vpcs:
        for kind, gws in (("igw", vpc.internet_gateways), ("vgw", vpc.vpn_gateways)):
            for gw in gws:
                first = _OUTSIDE.get(kind, _OTHER)
                order = [first, *(b for b in _TEST_NETS if b != first)]
                addr = next((f"{ip}/{block.prefixlen}" for block in map(ipaddress.IPv4Network, order)
                             for ip in block.hosts() if ip not in used and not any(ip in b for b in blocks)), None)
                if addr is None:
                    raise ValueError(f"no documentation address (TEST-NET: {', '.join(order)}) is free for the outside "
                                     f"host of {gw.name}: the topology uses them all")
                used.add(ipaddress.IPv4Address(addr.split("/")[0]))
                out[gw.name] = addr
    return out


def _state_file(tag: str) -> str:
    return os.path.join(state_dir(), f"{tag}.json")


def _up(args: argparse.Namespace) -> int:
    from fastvpc.cli._common import load_topology
    from fastvpc.live import LiveError, Switch
    from fastvpc.live.netns import Lab, LabUnavailable, cleanup_leftovers, lab_mode

    if lab_mode() != "netns":
        print("fastvpc lab up: error: a lab needs root (namespaces, veth pairs, raw sockets): run it with sudo",
              file=sys.stderr)
        return EXIT_UNAVAILABLE
    net = load_topology(args)
    if not net.enis:
        print("fastvpc lab up: error: the topology has no ENI: nothing to build", file=sys.stderr)
        return 2
    cleanup_leftovers()
    gws = {} if args.no_gateways else gateway_addresses(net)
    lab = Lab(net, gateways=gws)
    stop = {"signal": False}

    def on_signal(*_: Any) -> None:
        stop["signal"] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            lab.build()
        except LabUnavailable as exc:
            print(f"fastvpc lab up: error: {exc}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        os.makedirs(state_dir(), exist_ok=True)
        state = {"tag": lab.tag, "pid": os.getpid(), "topology": args.topology,
                 "namespaces": {n: ns.name for n, ns in {**lab.vms, **lab.gateways}.items()}}
        with open(_state_file(lab.tag), "w") as fh:
            json.dump(state, fh, indent=1)
        try:
            switch = Switch(net.compile(), lab.attachments, network=net, flow_capacity=args.flow_capacity)
            switch.open()
        except LiveError as exc:
            print(f"fastvpc lab up: error: {exc}", file=sys.stderr)
            return 2
        with switch:
            _print_hosts(lab)
            until = f"for {args.duration:g} s" if args.duration is not None else \
                "until Ctrl-C, SIGTERM or `fastvpc lab down`"
            print(f"fastvpc lab: switch running {until}", flush=True)
            if not stop["signal"]:   # Switch.run puts its own SIGINT/SIGTERM handlers in while it runs
                switch.run(args.duration)
        print(switch.format_counters(), flush=True)
        return 0
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        lab.close()
        try:
            os.unlink(_state_file(lab.tag))
        except OSError:
            pass
        print(f"fastvpc lab: {lab.tag} torn down", file=sys.stderr, flush=True)


def _print_hosts(lab: Any) -> None:
    print(f"fastvpc lab {lab.tag}: {len(lab.vms)} VMs, {len(lab.gateways)} outside hosts", flush=True)
    hosts = [*lab.vms.items(), *lab.gateways.items()]
    width = max(len(n) for n, _ in hosts)
    aw = max(len(" ".join(ns.addrs)) for _, ns in hosts)
    for name, ns in hosts:
        outside = "   (outside host)" if name in lab.gateways else ""
        print(f"  {name:<{width}}  {' '.join(ns.addrs):<{aw}}  {ns.mac}  ip netns exec {ns.name} bash{outside}",
              flush=True)
    first = next(iter(lab.vms.values()))
    print(f"try: ip netns exec {first.name} ping -c 2 {first.gateway}", flush=True)


def _running_labs() -> list[dict[str, Any]]:
    folder = state_dir()
    labs = []
    if os.path.isdir(folder):
        for fn in sorted(os.listdir(folder)):
            if fn.endswith(".json"):
                try:
                    with open(os.path.join(folder, fn)) as fh:
                        labs.append(json.load(fh))
                except (OSError, ValueError):
                    continue
    return labs


def _down(args: argparse.Namespace) -> int:
    from fastvpc.live.netns import cleanup_leftovers

    stopped = []
    for st in _running_labs():
        pid, tag = int(st.get("pid", 0)), str(st.get("tag", "?"))
        if pid > 0 and _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                print(f"fastvpc lab down: {tag} (pid {pid}) did not stop; killing it", file=sys.stderr)
                os.kill(pid, signal.SIGKILL)
                time.sleep(0.2)
            stopped.append(tag)
        try:
            os.unlink(_state_file(tag))
        except OSError:
            pass
    nss, links = cleanup_leftovers()
    print(f"fastvpc lab down: stopped {len(stopped)} lab(s){': ' + ', '.join(stopped) if stopped else ''}; "
          f"removed {len(nss)} leftover namespace(s) and {len(links)} link(s)")
    return 0
