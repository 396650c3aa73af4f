"""The seed VPC in ns.py: a few VMs and an internet host around one fastvpc switch.

    python examples/ns_py_seed.py

The seed VPC (``fastvpc.examples.seed_vpc``: web, app and db subnets; web routes to the internet
gateway, db to the VPN gateway, app is local only) becomes one ``fastvpc.sim.NsPySwitch`` whose
ports are the ENIs and the gateways.  Every VM is a small ns.py element: it records what the switch
delivers to it and answers requests (a UDP echo on port 7, a TCP SYN with a SYN-ACK), so traffic
flows both ways.  An internet host sits behind the internet gateway's port and answers too; an
on-premises host behind the VPN gateway only listens.  ns.py ``Wire`` elements put one microsecond
of propagation delay on every link into the switch.

Several VMs send at the same instants: the switch pushes each instant's frames through one
``process()`` call (printed at the end: frames vs process() calls), with ``now`` = the simulated
clock.  When the installed data plane tracks connections the switch has its own FlowTable, so the
internet host's replies are admitted as replies of flows web1 opened.

The script prints every frame the switch saw with its verdict, what each host received, and the
counters.
"""

from __future__ import annotations

import ipaddress
import struct
import sys
from typing import Any

import simpy
from ns.port.wire import Wire

import fastvpc as fv
from fastvpc.examples import seed_vpc
from fastvpc.sim import NsPySwitch, SimHost

US = 1e-6          # ns.py scripts count seconds; the switch is told so (ns_per_unit=1e9)
INTERNET_HOST = "198.51.100.7"
ON_PREM_HOST = "192.168.1.5"
WEB1_PUBLIC = "203.0.113.10"


def describe(frame: bytes) -> str:
    """A one-line reading of a frame: ``udp 10.0.1.10:4000 > 10.0.1.20:7``."""
    if len(frame) < 14:
        return f"{len(frame)}-byte runt"
    et = struct.unpack("!H", frame[12:14])[0]
    if et == 0x0806 and len(frame) >= 42:
        op = "who-has" if frame[21] == 1 else "is-at"
        return f"arp {op} {ipaddress.IPv4Address(frame[38:42])} (from {ipaddress.IPv4Address(frame[28:32])})"
    if et != 0x0800 or len(frame) < 34:
        return f"ethertype 0x{et:04x}"
    ihl = (frame[14] & 15) * 4
    proto = frame[23]
    src, dst = ipaddress.IPv4Address(frame[26:30]), ipaddress.IPv4Address(frame[30:34])
    l4 = frame[14 + ihl:]
    if proto in (6, 17) and len(l4) >= 4:
        sp, dp = struct.unpack("!HH", l4[:4])
        name = "udp" if proto == 17 else "tcp"
        flags = ""
        if proto == 6 and len(l4) >= 14:
            f = l4[13]
            flags = " " + ("SYN-ACK" if f & 0x12 == 0x12 else "SYN" if f & 0x02 else "ACK" if f & 0x10 else f"flags {f:#x}")
        return f"{name} {src}:{sp} > {dst}:{dp}{flags}"
    if proto == 1 and l4:
        kind = {8: "echo request", 0: "echo reply"}.get(l4[0], f"type {l4[0]}")
        return f"icmp {kind} {src} > {dst}"
    return f"ip proto {proto} {src} > {dst}"


class VmElement:
    """An ns.py element for a host: records what arrives and answers requests through ``reply_to``."""

    def __init__(self, env: Any, host: SimHost, log: list[str], answer: bool = True) -> None:
        self.env = env
        self.host = host
        self.log = log
        self.answer = answer
        self.received: list[tuple[float, str]] = []
        self.out: Any = None        # where this host sends: a Wire into the switch

    def put(self, packet: Any) -> None:
        frame = packet.payload
        what = describe(frame)
        self.received.append((self.env.now, what))
        self.log.append(f"{self.env.now / US:8.1f} us  {self.host.name:<13} got  {what}")
        if not self.answer or len(frame) < 34 or frame[12:14] != b"\x08\x00":
            return
        ihl = (frame[14] & 15) * 4
        proto, src, dst = frame[23], ipaddress.IPv4Address(frame[26:30]), ipaddress.IPv4Address(frame[30:34])
        l4 = frame[14 + ihl:]
        sp, dp = struct.unpack("!HH", l4[:4])
        if proto == 17 and dp == 7:              # UDP echo: the payload back
            reply = self.host.udp(src, 7, sp, l4[8:20], src=dst)
        elif proto == 6 and l4[13] == 0x02:      # a SYN: SYN-ACK
            seq = struct.unpack("!I", l4[4:8])[0]
            reply = self.host.tcp(src, dp, sp, flags=0x12, seq=9000, ack=seq + 1, src=dst)
        else:
            return
        self.env.process(self._send_later(reply))

    def _send_later(self, frame: bytes) -> Any:
        yield self.env.timeout(2 * US)           # the host takes 2 us to answer
        self.out.put(self.host.packet(self.env, frame))

    def send(self, frame: bytes) -> None:
        self.out.put(self.host.packet(self.env, frame))


def build(net: fv.Network | None = None) -> fv.Network:
    """The seed VPC; web1 gets the public IP 203.0.113.10 when this fastvpc models public IPs."""
    net = net or seed_vpc()
    web1 = net.find("web1")
    if getattr(web1, "public_ip", None) is None and hasattr(net, "allocate_address"):
        web1.associate_address(net.allocate_address(WEB1_PUBLIC, name="eip-web1"))
    return net


def run(out: Any = sys.stdout) -> dict[str, Any]:
    """Build, simulate 40 us, print; returns what happened (for tests)."""
    net = build()
    dp = net.compile()
    env = simpy.Environment()
    seen: list[str] = []
    drops: list[tuple[float, str, str]] = []

    class DropSink:
        def put(self, packet: Any) -> None:
            v = packet.vpc_verdict
            drops.append((env.now, describe(packet.payload), v.reason.name))

    # the record of every verdict, printed in order (the frame as it came, before the rewrite)
    verdicts: list[tuple[float, str, str, str]] = []
    sent: dict[int, str] = {}

    def on_verdict(packet: Any, ingress: int, v: Any) -> None:
        verdict = f"DROP {v.reason.name}" if v.action == fv.Action.DROP else v.action.name
        verdicts.append((env.now, dp.port_names.get(ingress, str(ingress)), sent.pop(id(packet)), verdict))

    def frame_of(packet: Any) -> bytes:
        sent[id(packet)] = describe(packet.payload)
        return packet.payload

    switch = NsPySwitch(env, dp, drop=DropSink(), ns_per_unit=1e9, on_verdict=on_verdict, frame_of=frame_of)
    names = ("web1", "web2", "app1", "db1")
    hosts = {n: SimHost(n, net) for n in names}
    igw, vgw = net.find("igw"), net.find("vgw")
    hosts["internet"] = SimHost.outside(igw, INTERNET_HOST, name="internet-host")
    hosts["on-prem"] = SimHost.outside(vgw, ON_PREM_HOST, name="on-prem-host")
    vms: dict[str, VmElement] = {}
    for key, host in hosts.items():
        vm = VmElement(env, host, seen, answer=key != "on-prem")
        wire = Wire(env, delay_dist=lambda: 1 * US)
        wire.out = switch.ingress(host.port)    # what the host sends enters the switch on its port
        vm.out = wire
        switch.connect(host.port, vm)           # what leaves the switch on that port reaches the host
        vms[key] = vm


    w1, w2, a1, d1 = (hosts[n] for n in names)
    web, app = net.find("web"), net.find("app")
    internet_dst = WEB1_PUBLIC if hasattr(w1.eni, "associate_address") else str(w1.ip)

    def traffic() -> Any:
        # t = 0: four VMs send at the same instant: one process() call takes them all
        vms["web1"].send(w1.udp(w2.ip, 4000, 7, b"hello web2"))          # same subnet
        vms["web2"].send(w2.tcp(a1.ip, 4100, 8080))                        # web -> app
        vms["app1"].send(a1.udp("8.8.8.8", 4200, 53))                      # app has no route out
        vms["db1"].send(d1.udp(ON_PREM_HOST, 4300, 514, b"syslog"))        # db -> VPN
        yield env.timeout(10 * US)
        vms["web1"].send(w1.tcp(INTERNET_HOST, 40000, 443))                # web1 -> the internet
        vms["web1"].send(w1.ping(web.router_ip))                           # the subnet router answers
        vms["web2"].send(w2.udp(web.broadcast_ip, 4000, 7))                # a subnet broadcast
        vms["app1"].send(a1.ping(app.router_ip))
        yield env.timeout(10 * US)
        # an unsolicited packet from the internet to web1
        vms["internet"].send(hosts["internet"].tcp(internet_dst, 51000, 22))

    env.process(traffic())
    env.run(until=40 * US)

    print("verdicts (time, ingress, frame, verdict):", file=out)
    for t, port, what, verdict in verdicts:
        print(f"{t / US:8.1f} us  {port:<6} {what:<52} {verdict}", file=out)
    print("\ndelivered:", file=out)
    for line in seen:
        print(line, file=out)
    print("\ndropped:", file=out)
    for t, what, reason in drops:
        print(f"{t / US:8.1f} us  {what:<52} {reason}", file=out)
    print(f"\n{switch.summary()}", file=out)
    tracking = "one FlowTable" if switch.flows is not None else "stateless (no connection tracking installed)"
    print(f"connection tracking: {tracking}", file=out)
    return {"switch": switch, "verdicts": verdicts, "received": {k: v.received for k, v in vms.items()},
            "drops": drops, "network": net, "dp": dp}


if __name__ == "__main__":
    run()
