"""The live switch's compiled helpers for outside links, without sockets (no root needed):
the gateway neighbour tables (``fastvpc.live._neigh.Neighbours``: learning, the MAC rewrite,
ARP resolution with a bounded queue, the bounded table), the checksum completion the
receive paths apply to frames the kernel marks checksum-not-ready, and the cutting of TSO/GSO
packets into MTU-sized segments."""

from __future__ import annotations

import ipaddress
import random
import struct

import numpy as np
import pytest

import fastvpc.packets as pk
from fastvpc.live._mmsg import SEG_MTU, complete_checksum, must_cut, split_tcp
from fastvpc.live._neigh import MAX_PROBES, RETRANS_NS, Neighbours
from fastvpc.verdicts import Action

GW_PORT, OTHER_GW_PORT, VM_PORT = 7, 9, 1
GW_MAC = "1e:00:00:00:00:07"
OTHER_MAC = "1e:00:00:00:00:09"
HOST_MAC = "ce:cd:37:a8:3f:05"
HOST_IP = "198.51.100.7"
PUBLIC_IP = "203.0.113.10"
SEC = 1_000_000_000


def _macs(*macs: str) -> np.ndarray:
    return np.frombuffer(b"".join(pk.mac_bytes(m) for m in macs), dtype=np.uint8).reshape(len(macs), 6).copy()


def table(capacity: int = 1024, queue: int = 64) -> Neighbours:
    return Neighbours(np.array([GW_PORT, OTHER_GW_PORT], dtype=np.int32), _macs(GW_MAC, OTHER_MAC),
                      capacity=capacity, queue=queue)


def batch(frames: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    data = np.frombuffer(b"".join(frames) or b"\0", dtype=np.uint8).copy()
    offsets = np.zeros(len(frames) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(f) for f in frames])
    return data, offsets


def learn(nb: Neighbours, frames: list[bytes], port: int, now: int) -> int:
    data, offsets = batch(frames)
    return nb.learn(data, offsets, np.full(len(frames), port, dtype=np.int32), now)


def forwarded(dst: str, src: str = PUBLIC_IP) -> bytes:
    """A frame as process() FORWARDs it to the gateway: the VM's header, the translated source."""
    return pk.ethernet("06:00:0a:00:01:00", "02:00:0a:00:01:0a", pk.ETH_IPV4, pk.icmp_echo(src, dst))


def resolve(nb: Neighbours, frames: list[bytes], egress: int, now: int) -> tuple[list[bytes], np.ndarray]:
    data, offsets = batch(frames)
    n = len(frames)
    hold = np.full(n, 9, dtype=np.uint8)
    nb.resolve(data, offsets, np.full(n, int(Action.FORWARD), dtype=np.uint8), np.full(n, egress, dtype=np.int32),
               hold, now)
    return [bytes(data[offsets[i]:offsets[i + 1]]) for i in range(n)], hold


def drain(nb: Neighbours, now: int) -> list[tuple[int, bytes]]:
    out = np.zeros(nb.drain_buffer_size, dtype=np.uint8)
    offsets = np.zeros(nb.drain_capacity + 1, dtype=np.int64)
    port = np.zeros(nb.drain_capacity, dtype=np.int32)
    k = nb.drain(out, offsets, port, now)
    return [(int(port[i]), bytes(out[offsets[i]:offsets[i + 1]])) for i in range(k)]


def test_learns_from_arp_and_ip_and_rewrites_both_macs() -> None:
    nb = table()
    # the outside host asks for its default router (broadcast), then sends to the gateway's MAC
    learn(nb, [pk.arp_request(HOST_MAC, HOST_IP, "198.51.100.1"),
               pk.ethernet(GW_MAC, "aa:bb:cc:00:00:01", pk.ETH_IPV4, pk.icmp_echo("8.8.8.8", PUBLIC_IP))],
          GW_PORT, 1)
    assert sorted(nb.entries(GW_PORT)) == [("198.51.100.7", HOST_MAC, "reachable"),
                                           ("8.8.8.8", "aa:bb:cc:00:00:01", "reachable")]
    assert nb.entries(OTHER_GW_PORT) == []          # per interface
    out, hold = resolve(nb, [forwarded(HOST_IP), forwarded("8.8.8.8")], GW_PORT, 2)
    assert hold.tolist() == [0, 0]
    assert out[0][:12] == pk.mac_bytes(HOST_MAC) + pk.mac_bytes(GW_MAC)
    assert out[1][:12] == pk.mac_bytes("aa:bb:cc:00:00:01") + pk.mac_bytes(GW_MAC)
    assert out[0][12:] == forwarded(HOST_IP)[12:]   # nothing else touched
    assert nb.counters()["rewritten"] == 2 and nb.pending == 0


def test_ignores_what_is_not_an_outside_hosts_own() -> None:
    nb = table()
    learn(nb, [pk.ethernet("02:00:00:00:00:99", HOST_MAC, pk.ETH_IPV4, pk.icmp_echo(HOST_IP, PUBLIC_IP)),  # not to us
               pk.ethernet(GW_MAC, "01:00:5e:00:00:01", pk.ETH_IPV4, pk.icmp_echo(HOST_IP, PUBLIC_IP)),  # group MAC
               pk.ethernet(GW_MAC, HOST_MAC, pk.ETH_IPV4, pk.icmp_echo("0.0.0.0", PUBLIC_IP)),
               pk.ethernet(GW_MAC, HOST_MAC, pk.ETH_IPV4, pk.icmp_echo("224.0.0.5", PUBLIC_IP))], GW_PORT, 1)
    learn(nb, [pk.arp_request(HOST_MAC, HOST_IP, "198.51.100.1")], VM_PORT, 1)   # not a gateway interface
    assert nb.entries(GW_PORT) == [] and nb.entries(OTHER_GW_PORT) == []
    # frames that are not FORWARDs out of a gateway interface are left alone
    data, offsets = batch([forwarded(HOST_IP)])
    hold = np.zeros(1, dtype=np.uint8)
    for action, egress in ((Action.DELIVER, GW_PORT), (Action.FORWARD, VM_PORT), (Action.DROP, GW_PORT)):
        nb.resolve(data, offsets, np.array([int(action)], np.uint8), np.array([egress], np.int32), hold, 1)
        assert hold[0] == 0 and bytes(data) == forwarded(HOST_IP)
    assert nb.pending == 0


def test_unknown_next_hop_is_resolved_by_arp_and_the_held_frame_released() -> None:
    nb = table()
    frame = forwarded(HOST_IP)
    out, hold = resolve(nb, [frame], GW_PORT, 10 * SEC)
    assert hold.tolist() == [1] and nb.pending == 2       # the frame and one ARP request
    sent = drain(nb, 10 * SEC)
    # a broadcast who-has HOST_IP from the gateway's MAC, telling the frame's source address
    assert sent == [(GW_PORT, pk.arp_request(GW_MAC, PUBLIC_IP, HOST_IP, pad_to=0))]
    assert nb.entries(GW_PORT) == [(HOST_IP, "00:00:00:00:00:00", "incomplete")]
    assert drain(nb, 10 * SEC + 1000) == []                # within a second: no second request
    learn(nb, [pk.arp_reply(HOST_MAC, HOST_IP, GW_MAC, PUBLIC_IP)], GW_PORT, 10 * SEC + 2000)
    sent = drain(nb, 10 * SEC + 3000)
    assert sent == [(GW_PORT, pk.mac_bytes(HOST_MAC) + pk.mac_bytes(GW_MAC) + frame[12:])]
    c = nb.counters()
    assert (c["arp_requests"], c["queued"], c["released"], c["unresolved"], nb.pending) == (1, 1, 1, 0, 0)


def test_unanswered_arp_is_repeated_then_the_frames_dropped() -> None:
    nb = table()
    t = 5 * SEC
    resolve(nb, [forwarded(HOST_IP), forwarded(HOST_IP)], GW_PORT, t)
    requests = 0
    for step in range(MAX_PROBES + 2):
        requests += sum(1 for _, f in drain(nb, t + step * RETRANS_NS) if f[12:14] == b"\x08\x06")
    assert requests == MAX_PROBES
    c = nb.counters()
    assert (c["queued"], c["unresolved"], c["released"]) == (2, 2, 0)
    assert nb.pending == 0 and nb.entries(GW_PORT) == []    # forgotten: the next frame starts again


def test_the_queue_is_bounded() -> None:
    nb = table(queue=4)
    _, hold = resolve(nb, [forwarded(f"198.51.100.{i}") for i in range(10, 20)], GW_PORT, SEC)
    assert hold.sum() == 10
    c = nb.counters()
    assert (c["queued"], c["queue_full"]) == (4, 6)
    assert nb.pending == 4 + 10                            # 4 frames, one ARP request per destination


def test_the_learned_table_is_bounded_per_interface() -> None:
    """A flood of spoofed sources fills at most the table of its own interface; memory never grows."""
    nb = table(capacity=64)
    learn(nb, [pk.arp_request(OTHER_MAC.replace("1e", "02"), "192.0.2.9", "192.0.2.1")], OTHER_GW_PORT, 1)
    rng = random.Random(7)
    frames = []
    for i in range(5000):
        ip = str(ipaddress.IPv4Address(rng.randrange(0x01000000, 0xE0000000)))
        mac = "02:" + ":".join(f"{b:02x}" for b in struct.pack("!I", i)) + ":01"
        frames.append(pk.ethernet(GW_MAC, mac, pk.ETH_IPV4, pk.udp(ip, PUBLIC_IP, 1, 2)) if i % 2 else
                      pk.arp_request(mac, ip, "198.51.100.1"))
    for k in range(0, len(frames), 500):
        learn(nb, frames[k:k + 500], GW_PORT, 2 + k)
    assert nb.capacity == 64
    assert len(nb.entries(GW_PORT)) <= 64
    assert nb.counters()["evicted"] >= 5000 - 64
    assert nb.entries(OTHER_GW_PORT) == [("192.0.2.9", OTHER_MAC.replace("1e", "02"), "reachable")]
    # the host that keeps talking is found again at once
    learn(nb, [pk.arp_request(HOST_MAC, HOST_IP, "198.51.100.1")], GW_PORT, 10 * SEC)
    assert (HOST_IP, HOST_MAC, "reachable") in nb.entries(GW_PORT)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        Neighbours(np.array([3, 3], np.int32), _macs(GW_MAC, OTHER_MAC))
    with pytest.raises(ValueError, match="x 6"):
        Neighbours(np.array([3], np.int32), np.zeros((1, 5), np.uint8))
    with pytest.raises(KeyError):
        table().entries(VM_PORT)


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_partial_checksum_is_completed(proto: str) -> None:
    """What a veth with checksum offload hands the switch: the L4 checksum field holds only the
    pseudo-header sum (CHECKSUM_PARTIAL); complete_checksum writes the full one."""
    src, dst, payload = "198.51.100.7", "203.0.113.10", bytes(range(251))   # odd length
    ip = pk.tcp(src, dst, 40000, 443, payload, flags="PA") if proto == "tcp" else pk.udp(src, dst, 40000, 53, payload)
    good = pk.ethernet(GW_MAC, HOST_MAC, pk.ETH_IPV4, ip)
    off = 14 + 20 + (16 if proto == "tcp" else 6)
    pseudo = pk._ip(src) + pk._ip(dst) + struct.pack("!BBH", 0, 6 if proto == "tcp" else 17, len(ip) - 20)
    partial_sum = (~pk.checksum(pseudo)) & 0xFFFF        # the folded pseudo-header sum, not complemented
    partial = bytearray(good)
    partial[off:off + 2] = struct.pack("!H", partial_sum)
    frame = np.frombuffer(bytes(partial) + b"\0" * 6, dtype=np.uint8).copy()   # Ethernet padding after it
    assert complete_checksum(frame)
    assert bytes(frame[:len(good)]) == good
    # not touched: ICMP, a fragment, ARP, a truncated packet
    for other in (pk.ethernet(GW_MAC, HOST_MAC, pk.ETH_IPV4, pk.icmp_echo(src, dst)),
                  pk.ethernet(GW_MAC, HOST_MAC, pk.ETH_IPV4, pk.ipv4(src, dst, 17, ip[20:], flags_frag=0x2000)),
                  pk.arp_request(HOST_MAC, src, dst), good[:-10]):
        arr = np.frombuffer(other, dtype=np.uint8).copy()
        assert not complete_checksum(arr) and bytes(arr) == other


def test_a_tso_packet_is_cut_as_a_nic_would() -> None:
    """A 64 KB TCP packet (a veth with TSO on hands it over whole) becomes MTU-sized segments:
    sequence numbers advance by the payload, IP IDs by one, FIN/PSH only on the last segment,
    CWR only on the first, every IP and TCP checksum valid, the payload intact in order."""
    src, dst = "198.51.100.7", "203.0.113.10"
    payload = random.Random(3).randbytes(60_001)
    seg = struct.pack("!HHIIBBHHH", 40000, 443, 0xFFFFF000, 77, 5 << 4, 0x80 | 0x10 | 0x08 | 0x01, 501, 0, 0)
    big = pk.ethernet(GW_MAC, HOST_MAC, pk.ETH_IPV4, pk.ipv4(src, dst, 6, seg + payload, ident=0xFFFE))
    # the TCP checksum of a TSO packet is partial: whatever it holds must not matter
    parts = split_tcp(np.frombuffer(big, dtype=np.uint8).copy())
    mss = SEG_MTU - 40
    assert len(parts) == -(-len(payload) // mss)
    got = b""
    for j, f in enumerate(parts):
        ip, tcp = f[14:34], f[34:54]
        assert len(f) - 14 <= SEG_MTU and struct.unpack("!H", ip[2:4])[0] == len(f) - 14
        assert pk.checksum(ip) == 0
        assert struct.unpack("!H", ip[4:6])[0] == (0xFFFE + j) & 0xFFFF
        assert struct.unpack("!I", tcp[4:8])[0] == (0xFFFFF000 + j * mss) & 0xFFFFFFFF
        flags = tcp[13]
        assert bool(flags & 0x09) == (j == len(parts) - 1) and bool(flags & 0x80) == (j == 0) and flags & 0x10
        pseudo = pk._ip(src) + pk._ip(dst) + struct.pack("!BBH", 0, 6, len(f) - 34)
        assert pk.checksum(pseudo + f[34:]) == 0
        got += f[54:]
    assert got == payload
    # not TCP/IPv4, or not whole: not cut
    assert split_tcp(np.frombuffer(pk.ethernet(GW_MAC, HOST_MAC, pk.ETH_IPV4, pk.udp(src, dst, 1, 2, payload[:3000])),
                                   dtype=np.uint8).copy()) == []
    assert split_tcp(np.frombuffer(big[:-1], dtype=np.uint8).copy()) == []


def test_a_two_segment_tso_packet_under_the_slot_is_cut() -> None:
    """The end of a 1 MiB transfer: one MSS plus a 224-byte tail with FIN/PSH and timestamps, sent as one
    GSO packet (a 1738-byte frame, under the receive ring's 2048-byte slot).  The ring must cut it
    too: handed on whole, the egress veth drops it (over its MTU, ENOBUFS) and the transmit ring
    retries it forever, stalling the connection (seen live: tx_errors 36, the FIN never arrives)."""
    src, dst = "10.0.1.10", "10.0.3.10"
    mss = SEG_MTU - 20 - 32
    payload = random.Random(5).randbytes(mss + 224)
    opts = bytes([1, 1, 8, 10]) + struct.pack("!II", 3276791497, 3486002186)
    seg = struct.pack("!HHIIBBHHH", 59328, 5401, 1046904, 1, 8 << 4, 0x10 | 0x08 | 0x01, 63, 0, 0) + opts
    big = pk.ethernet(GW_MAC, HOST_MAC, pk.ETH_IPV4, pk.ipv4(src, dst, 6, seg + payload, ident=0x1234))
    assert len(big) == 1738
    # the receive ring's rule: any frame over the MTU is cut, not only those over its slot
    assert must_cut(len(big)) and not must_cut(14 + SEG_MTU) and must_cut(15 + SEG_MTU)
    parts = split_tcp(np.frombuffer(big, dtype=np.uint8).copy())
    assert [len(f) - 14 for f in parts] == [SEG_MTU, 20 + 32 + 224]
    for j, f in enumerate(parts):
        ip, tcp = f[14:34], f[34:66]
        assert struct.unpack("!H", ip[2:4])[0] == len(f) - 14 and pk.checksum(ip) == 0
        assert struct.unpack("!H", ip[4:6])[0] == 0x1234 + j
        assert struct.unpack("!I", tcp[4:8])[0] == 1046904 + j * mss
        assert tcp[12] >> 4 == 8 and tcp[20:32] == opts             # options copied to every segment
        assert tcp[13] == (0x19 if j == 1 else 0x10)                 # FIN/PSH only on the last
        pseudo = pk._ip(src) + pk._ip(dst) + struct.pack("!BBH", 0, 6, len(f) - 34)
        assert pk.checksum(pseudo + f[34:]) == 0
    assert parts[0][66:] + parts[1][66:] == payload
