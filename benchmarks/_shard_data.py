"""A large replay capture built fast: 4096 distinct 64-byte frames (many flows) tiled N times.

The frames are the seed VPC's VMs talking to each other, to the internet and to on-premises (many
source ports, so many flows: sharding by flow has something to balance), plus broadcasts (dropped);
classic pcap, nanosecond timestamps 1 us apart.  Building 20M frames takes a few seconds: the
records are made with numpy, not one Python call per frame.
"""

from __future__ import annotations

import struct

import numpy as np

from fastvpc import packets as pk
from fastvpc.examples import seed_vpc

TEMPLATES = 4096


def templates(n: int = TEMPLATES, seed: int = 7) -> list[bytes]:
    net = seed_vpc()
    f = net.find
    enis = [f(x) for x in ("web1", "web2", "app1", "app2", "db1", "db2")]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = enis[int(rng.integers(len(enis)))]
        k = int(rng.integers(10))
        sport = int(rng.integers(1024, 65535))
        if k < 4:      # inside the VPC
            d = enis[int(rng.integers(len(enis)))]
            mac = d.mac if d.subnet is s.subnet else s.subnet.gateway_mac
            fr = pk.ethernet(mac, s.mac, pk.ETH_IPV4, pk.udp(s.ip, d.ip, sport, 53))
        elif k < 8:    # out through the gateways (web: internet, db: VPN; app has no route: dropped)
            dst = f"198.51.100.{int(rng.integers(1, 255))}"
            fr = pk.ethernet(s.subnet.gateway_mac, s.mac, pk.ETH_IPV4, pk.tcp(s.ip, dst, sport, 443))
        elif k < 9:    # a subnet broadcast: dropped
            fr = pk.ethernet(s.subnet.gateway_mac, s.mac, pk.ETH_IPV4, pk.udp(s.ip, s.subnet.broadcast_ip, sport, 53))
        else:          # ping the subnet router: a REPLY
            fr = pk.ethernet(s.subnet.gateway_mac, s.mac, pk.ETH_IPV4,
                             pk.icmp_echo(s.ip, s.subnet.router_ip, ident=sport, payload=b"fastvpc!"))
        out.append(fr + b"\0" * (64 - len(fr)))
    return out


def write_capture(path: str, n: int, chunk: int = 1 << 20) -> None:
    """``n`` 64-byte frames in a classic nanosecond pcap at ``path``."""
    tmpl = np.frombuffer(b"".join(templates()), np.uint8).reshape(TEMPLATES, 64)
    t0 = 1_700_000_000 * 10**9
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            rec = np.empty((m, 80), np.uint8)
            ts = t0 + (np.arange(start, start + m, dtype=np.int64) * 1000)
            hdr = np.empty((m, 4), "<u4")
            hdr[:, 0] = ts // 10**9
            hdr[:, 1] = ts % 10**9
            hdr[:, 2] = 64
            hdr[:, 3] = 64
            rec[:, :16] = hdr.view(np.uint8).reshape(m, 16)
            rec[:, 16:] = tmpl[np.arange(start, start + m) % TEMPLATES]
            fh.write(rec.tobytes())
