"""Fuzz target ``forward``: the frame parser and the forwarding pass, both engines compared.

The input is a seed byte string read front to back (:class:`Draw`): its first bytes
build a random topology with the public ``fastvpc.topology`` API (1-3 VPCs, secondary CIDRs,
subnets, ENIs with secondary IPs and source/dest check on or off, gateways, route tables with
random prefixes and targets, peerings, a transit gateway, main-table swaps, deletions), the rest
gives 1-24 frames: templates aimed at the topology (ARP, ICMP, UDP, TCP, other protocols, to
ENIs, routers, reserved and outside addresses) patched with fuzzer bytes, truncated, padded, or
raw fuzzer bytes, each on a chosen port.

Checked for every input:

* ``Dataplane.process`` (compiled) and ``fastvpc.reference.ReferenceForwarder`` agree on
  action, reason, egress, route and every output byte, in both ARP modes, with ``copy=True``
  and in place;
* ``fastvpc.classify`` agrees with a plain-Python reading of its documented field table
  (``fastvpc/dataplane/classify.py``'s docstring), field by field;
* nothing raises but the control plane's own ``TopologyError`` (an invalid build step is skipped).

    python tools/fuzz/fuzz_forward.py [libFuzzer options] [corpus dirs]
"""

from __future__ import annotations

import ipaddress
import struct
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Finding, instrumented_import, main  # noqa: E402

fv = instrumented_import()

import numpy as np  # noqa: E402

import fastvpc.topology as topo  # noqa: E402
from fastvpc.dataplane import classify as C  # noqa: E402
from fastvpc.errors import TopologyError  # noqa: E402
from fastvpc.reference import ReferenceForwarder  # noqa: E402
from fastvpc.verdicts import Action, DropReason  # noqa: E402

IP = ipaddress.IPv4Address


class Draw:
    """Choices read front to back from the fuzzer's bytes (a short input still builds something:
    past its end every choice is its lowest value).  ``int(lo, hi)`` reads just enough bytes for
    the range, so :class:`Recorder` (make_corpus.py) can write seeds that decode to chosen values."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    @staticmethod
    def width(lo: int, hi: int) -> int:
        return max(1, ((hi - lo).bit_length() + 7) // 8)

    def int(self, lo: int, hi: int) -> int:
        w = self.width(lo, hi)
        chunk = self.data[self.pos:self.pos + w]
        self.pos += w
        return lo + int.from_bytes(chunk, "little") % (hi - lo + 1) if chunk else lo

    def bool(self) -> bool:
        return bool(self.int(0, 1))

    def pick(self, seq: list[Any] | tuple[Any, ...]) -> Any:
        return seq[self.int(0, len(seq) - 1)]

    def bytes(self, n: int) -> bytes:
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk


class Recorder(Draw):
    """A Draw that makes its choices with ``random`` (or takes them from ``forced``) and records the
    bytes that make :class:`Draw` choose the same: the corpus generator's input writer."""

    def __init__(self, seed: int) -> None:
        import random
        super().__init__(b"")
        self.rng = random.Random(seed)
        self.out = bytearray()
        self.forced: list[Any] = []

    def int(self, lo: int, hi: int) -> int:
        v = self.forced.pop(0) if self.forced else self.rng.randint(lo, hi)
        self.out += (v - lo).to_bytes(self.width(lo, hi), "little")
        return int(v)

    def bytes(self, n: int) -> bytes:
        b = self.forced.pop(0) if self.forced else bytes(self.rng.randrange(256) for _ in range(n))
        b = bytes(b[:n])
        self.out += b
        return b


def _try(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except TopologyError:
        return None


# --------------------------------------------------------------------------- topology

def build_network(d: Draw) -> topo.Network:
    net = topo.Network()
    vpcs: list[topo.Vpc] = []
    for i in range(d.int(1, 3)):
        vpc = net.add_vpc(f"10.{i}.0.0/{d.pick([16, 16, 20, 24, 28])}", name=f"v{i}")
        if d.bool():
            _try(vpc.add_cidr, d.pick([f"10.{100 + i}.0.0/16", f"172.{16 + i}.0.0/20", f"192.168.{i * 16}.0/28"]))
        vpcs.append(vpc)
        for cidr in vpc.cidrs:
            for _ in range(d.int(0 if cidr != vpc.cidr else 1, 3)):
                plen = max(d.pick([cidr.prefixlen, 20, 24, 24, 26, 28]), cidr.prefixlen)
                k = d.int(0, min(2 ** (plen - cidr.prefixlen) - 1, 40))
                _try(vpc.add_subnet, ipaddress.IPv4Network((int(cidr.network_address) + k * 2 ** (32 - plen), plen)))
        for subnet in list(vpc.subnets):
            hosts = subnet.cidr.num_addresses
            for _ in range(d.pick([0, 1, 2, 2, 3])):
                off = d.int(4, max(4, min(hosts - 2, 300)))
                port = d.pick([None, None, None, 70_000 + off, 50_000_000 + off, 2**31 - 1 - off])
                eni = _try(subnet.add_eni, subnet.cidr.network_address + off, source_dest_check=d.bool(), port=port)
                if eni is not None:
                    for _ in range(d.pick([0, 0, 1, 2])):
                        _try(eni.add_secondary_ip, subnet.cidr.network_address + d.int(4, max(4, min(hosts - 2, 300))))
        if d.bool():
            vpc.add_internet_gateway()
        if d.bool():
            vpc.add_vpn_gateway()
        for _ in range(d.int(0, 2)):
            vpc.add_nat_gateway(subnet=d.pick(vpc.subnets) if vpc.subnets and d.bool() else None)
        if d.bool():
            vpc.add_endpoint(endpoint_type=d.pick(sorted(topo.Endpoint.KINDS)))
    for i in range(len(vpcs)):
        for j in range(i + 1, len(vpcs)):
            if d.bool():
                _try(net.add_peering, vpcs[i], vpcs[j])
    if len(vpcs) > 1 and d.bool():
        tgw = net.add_transit_gateway()
        for v in vpcs:
            if d.bool():
                _try(tgw.attach, v)
    for vpc in vpcs:
        tables = [vpc.main_route_table] + [vpc.add_route_table() for _ in range(d.int(0, 2))]
        targets: list[Any] = [*vpc.gateways, *vpc.enis, *vpc.peerings, topo.BLACKHOLE]
        hosts = [ip for e in net.enis for ip in e.ips] + [s.router_ip for s in net.subnets]
        for rt in tables:
            for _ in range(d.int(0, 6)):
                how = d.int(0, 4)
                if how == 0:
                    dest = ipaddress.IPv4Network("0.0.0.0/0")
                elif how == 1 and hosts:
                    dest = ipaddress.IPv4Network((int(d.pick(hosts)), d.int(8, 32)), strict=False)
                elif how == 2 and net.subnets:
                    dest = d.pick(net.subnets).cidr
                elif how == 3:
                    dest = d.pick([c for v in net.vpcs for c in v.cidrs])
                else:
                    dest = ipaddress.IPv4Network((d.int(0, 2**32 - 1), d.int(0, 32)), strict=False)
                _try(rt.add_route, dest, d.pick(targets))
            for p in vpc.peerings:
                if d.bool():
                    for c in p.peer_of(vpc).cidrs:
                        _try(rt.add_route, c, p)
            if vpc.enis and d.int(0, 5) == 0:
                _try(rt.replace_route, vpc.cidr, d.pick(vpc.enis))
        for s in vpc.subnets:
            if d.bool():
                _try(s.associate, d.pick(tables))
        if len(tables) > 1 and d.bool():
            _try(vpc.set_main_route_table, d.pick(tables))
    for _ in range(d.int(0, 2)):
        cands = list(net.targets)
        if cands:
            _try(d.pick(cands).delete)
    return net


# --------------------------------------------------------------------------- frames

def _csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def _mac(m: str) -> bytes:
    return bytes.fromhex(m.replace(":", ""))


def fix_ip_checksum(f: bytearray) -> None:
    if len(f) >= 34 and f[12:14] == b"\x08\x00":
        ihl = (f[14] & 15) * 4
        if ihl >= 20 and 14 + ihl <= len(f):
            f[24:26] = b"\0\0"
            f[24:26] = _csum(bytes(f[14:14 + ihl])).to_bytes(2, "big")


def _ips(net: topo.Network) -> list[IP]:
    ips = [IP("8.8.8.8"), IP("255.255.255.255"), IP("224.0.0.5"), IP("169.254.169.254"), IP("169.254.169.253"),
           IP("169.254.170.2"), IP("0.0.0.0"), IP("127.0.0.1")]
    for s in net.subnets:
        ips += list(s.reserved_ips) + [s.cidr.network_address + 77]
    for v in net.vpcs:
        for c in v.cidrs:
            ips += [c.network_address + 1, c.broadcast_address]
    return ips + [ip for e in net.enis for ip in e.ips]


def make_frame(d: Draw, net: topo.Network) -> tuple[bytes, int]:
    kind = d.int(0, 9)  # kind and literal bytes first: make_corpus.py forces them to write literal frames
    lit = d.bytes(d.int(0, 1600)) if kind >= 7 else None
    enis = net.enis
    ports = [e.port for e in enis] + [t.port for t in net.targets if not isinstance(t, topo.Eni)] + [-1, 99999]
    sender = d.pick(enis) if enis and d.int(0, 9) else None
    port = sender.port if sender is not None else d.pick(ports + [d.int(-(2**31), 2**31 - 1)])
    if lit is not None:  # literal bytes (from the corpus or the fuzzer), optionally aimed at the topology
        f = bytearray(lit)
        aim = d.int(0, 31)
        if aim & 1 and len(f) >= 6:
            f[0:6] = _mac(d.pick([s.gateway_mac for s in net.subnets] + [e.mac for e in enis] + ["ff:ff:ff:ff:ff:ff"]))
        if aim & 2 and len(f) >= 12 and sender is not None:
            f[6:12] = _mac(sender.mac)
        arp = f[12:14] == b"\x08\x06"
        if aim & 4 and len(f) >= (42 if arp else 34):
            f[(38 if arp else 30):(42 if arp else 34)] = d.pick(_ips(net)).packed
        if aim & 8 and len(f) >= (32 if arp else 30) and sender is not None:
            f[(28 if arp else 26):(32 if arp else 30)] = d.pick(list(sender.ips)).packed
            if arp:
                f[22:28] = _mac(sender.mac)
        if aim & 16:
            fix_ip_checksum(f)
        return bytes(f), port
    src_mac = _mac(sender.mac) if sender is not None else b"\x02\xaa\xbb\xcc\xdd\xee"
    ips = _ips(net)
    dst_ip = d.pick(ips) if d.int(0, 7) else IP(d.int(0, 2**32 - 1))
    src_ip = d.pick(list(sender.ips)) if sender is not None and d.int(0, 7) else d.pick(ips)
    macs = [s.gateway_mac for s in net.subnets] + [e.mac for e in enis] + ["ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:05"]
    if sender is not None and d.int(0, 5):
        dst_mac = _mac(d.pick([sender.subnet.gateway_mac] + [e.mac for e in sender.subnet.enis]))
    else:
        dst_mac = _mac(d.pick(macs))
    if kind in (0, 1):  # ARP
        op = d.pick([1, 1, 1, 2, 3])
        sip = d.pick([src_ip, src_ip, IP("0.0.0.0"), dst_ip])
        eth_dst = b"\xff" * 6 if d.int(0, 3) else dst_mac
        body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, src_mac, sip.packed, b"\0" * 6, dst_ip.packed)
        f = bytearray(eth_dst + src_mac + b"\x08\x06" + body)
    else:
        if sender is not None and d.int(0, 6) == 0:
            dst_ip = sender.subnet.router_ip
        proto = {2: 1, 3: 1, 4: 17, 5: 6}.get(kind, d.int(0, 255))
        payload = d.bytes(d.int(0, 40))
        if proto == 1:
            l4 = bytearray(struct.pack("!BBHHH", d.pick([8, 8, 0, 3, 13]), d.pick([0, 0, 1]), 0,
                                       d.int(0, 65535), d.int(0, 65535)) + payload)
            l4[2:4] = _csum(bytes(l4)).to_bytes(2, "big")
        elif proto == 17:
            l4 = bytearray(struct.pack("!HHHH", d.int(0, 65535), d.int(0, 65535), 8 + len(payload), 0) + payload)
        elif proto == 6:
            l4 = bytearray(struct.pack("!HHIIBBHHH", d.int(0, 65535), d.int(0, 65535), 0, 0, 0x50, 2, 8192, 0, 0)
                           + payload)
        else:
            l4 = bytearray(payload)
        opts = b"\x01" * d.pick([0, 0, 0, 4, 8])
        ihl = 5 + len(opts) // 4
        frag = d.pick([0, 0, 0, 0x2000, d.int(1, 100)])
        hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 4 * ihl + len(l4), d.int(0, 65535), frag,
                                    d.pick([0, 1, 64, 255]), proto, 0, src_ip.packed, dst_ip.packed) + opts)
        f = bytearray(dst_mac + src_mac + b"\x08\x00" + hdr + l4)
        fix_ip_checksum(f)
    # patch with fuzzer bytes: overwrite at positions, truncate, pad
    for _ in range(d.pick([0, 0, 0, 1, 2, 4])):
        if f:
            at = d.int(0, len(f) - 1)
            chunk = d.bytes(d.int(1, 4))
            f[at:at + len(chunk)] = chunk
        if d.bool():
            fix_ip_checksum(f)
    if d.int(0, 5) == 0:
        f = f[:d.int(0, len(f))]
    if d.int(0, 4) == 0:
        f += d.bytes(d.int(1, 30))
    return bytes(f), port


# --------------------------------------------------------------------------- classify oracle

def classify_one(f: bytes) -> dict[str, int]:
    """The documented field table of fastvpc.classify, read one frame at a time."""
    r = dict(ethertype=0, dst_mac=0, src_mac=0, ip_src=0, ip_dst=0, proto=0, ttl=0, ip_len=0, sport=0, dport=0,
             icmp_type=255, icmp_code=255, arp_op=0, flags=0)
    n = len(f)
    if n < 14:
        return r
    flags = C.FLAG_ETH
    r["dst_mac"] = int.from_bytes(f[0:6], "big")
    r["src_mac"] = int.from_bytes(f[6:12], "big")
    if f[0] & 1:
        flags |= C.FLAG_GROUP_MAC
    et = int.from_bytes(f[12:14], "big")
    r["ethertype"] = et
    if et == 0x0806 and n >= 42 and f[14:20] == b"\x00\x01\x08\x00\x06\x04":
        flags |= C.FLAG_ARP
        r["arp_op"] = int.from_bytes(f[20:22], "big")
        r["ip_src"] = int.from_bytes(f[28:32], "big")
        r["ip_dst"] = int.from_bytes(f[38:42], "big")
    elif et == 0x0800 and n >= 15 and f[14] >> 4 == 4 and (f[14] & 15) >= 5 and 14 + (f[14] & 15) * 4 <= n:
        ihl = (f[14] & 15) * 4
        flags |= C.FLAG_IPV4
        tot = int.from_bytes(f[16:18], "big")
        r.update(ip_len=tot, ttl=f[22], proto=f[23], ip_src=int.from_bytes(f[26:30], "big"),
                 ip_dst=int.from_bytes(f[30:34], "big"))
        if _csum(f[14:14 + ihl]) == 0:
            flags |= C.FLAG_CSUM_OK
        fr = int.from_bytes(f[20:22], "big")
        if fr & 0x3FFF:
            flags |= C.FLAG_FRAGMENT
        if ihl <= tot and 14 + tot <= n:
            flags |= C.FLAG_IP_LEN_OK
            l4 = 14 + ihl
            room = tot - ihl
            if fr & 0x1FFF == 0:
                p = f[23]
                if p == 6 and room >= 20 or p == 17 and room >= 8:
                    flags |= C.FLAG_L4
                    r["sport"] = int.from_bytes(f[l4:l4 + 2], "big")
                    r["dport"] = int.from_bytes(f[l4 + 2:l4 + 4], "big")
                elif p == 1 and room >= 8:
                    flags |= C.FLAG_L4
                    r["icmp_type"], r["icmp_code"] = f[l4], f[l4 + 1]
    r["flags"] = flags
    return r


# --------------------------------------------------------------------------- the target

def _describe(res: Any, i: int) -> str:
    return (f"{Action(int(res.action[i])).name}/{DropReason(int(res.reason[i])).name} "
            f"egress={int(res.egress[i])} route={int(res.route[i])} frame={res.frames.frame(i).hex()}")


def compare(net: topo.Network, items: list[tuple[bytes, int]], arp_mode: str, in_place: bool) -> None:
    frames = [f for f, _ in items]
    ports = [p for _, p in items]
    batch = fv.FrameBatch.from_frames(frames, port=ports)
    ref = ReferenceForwarder(net, arp_mode=arp_mode).process(batch, copy=True)
    dp = net.compile(arp_mode=arp_mode)
    ker = dp.process(batch if in_place else batch.copy(), copy=not in_place, n_threads=1)
    for i in range(len(items)):
        same = (int(ker.action[i]) == int(ref.action[i]) and int(ker.reason[i]) == int(ref.reason[i])
                and int(ker.egress[i]) == int(ref.egress[i]) and int(ker.route[i]) == int(ref.route[i])
                and ker.frames.frame(i) == ref.frames.frame(i))
        if not same:
            raise Finding(f"engines disagree on frame {i} on port {ports[i]} (arp_mode={arp_mode}): "
                          f"{frames[i].hex()}\n  reference: {_describe(ref, i)}\n  kernel:    {_describe(ker, i)}\n"
                          f"  routes: {net.routes()}")


def check_classify(frames: list[bytes]) -> None:
    batch = fv.FrameBatch.from_frames(frames, port=0)
    got = fv.classify(batch, n_threads=1)
    for i, f in enumerate(frames):
        want = classify_one(f)
        for name, value in want.items():
            if int(getattr(got, name)[i]) != value:
                raise Finding(f"classify disagrees with its documented table on frame {i} ({f.hex()}): "
                              f"{name}={int(getattr(got, name)[i])}, documented {value}")


def one_input(data: bytes) -> None:
    d = Draw(data)
    net = build_network(d)
    items = [make_frame(d, net) for _ in range(d.int(1, 24))]
    check_classify([f for f, _ in items])
    mode = "single_mac" if d.int(0, 3) == 0 else "target"
    compare(net, items, mode, in_place=d.bool())


if __name__ == "__main__":
    main(one_input, [])
