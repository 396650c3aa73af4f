"""The IPv4 header checksum verdict (CF_CSUM_OK) of the shared parse, against a 16-bit big-endian
one's-complement fold written here, for headers of every length with valid, both zero encodings and
off-by-some checksums (the kernel decides it by a divisibility test on a 32-bit-word sum)."""

from __future__ import annotations

import struct

import numpy as np

from fastvpc.batch import FrameBatch
from fastvpc.dataplane.classify import FLAG_CSUM_OK, FLAG_IPV4, classify


def fold16(hdr: bytes) -> int:
    s = sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def frames_and_expected(seed: int, n: int) -> tuple[list[bytes], list[bool]]:
    rng = np.random.default_rng(seed)
    frames, want = [], []
    for i in range(n):
        ihl = int(rng.integers(5, 16))
        hl = ihl * 4
        hdr = bytearray(rng.integers(0, 256, hl, dtype=np.uint8).tobytes())
        if i % 7 == 0:                       # large words: sums far past 2^16 and 2^32 carries
            hdr[2:] = b"\xff" * (hl - 2)
        hdr[0] = 0x40 | ihl
        hdr[2:4] = struct.pack("!H", hl)     # total length = the header (CF_IP_LEN_OK holds)
        hdr[10:12] = b"\0\0"
        good = (~fold16(bytes(hdr))) & 0xFFFF
        kind = i % 4
        if kind == 0:
            c = good
        elif kind == 1:                      # the other encoding of the same value, when there is one
            c = 0xFFFF if good == 0 else (0 if good == 0xFFFF else good)
        elif kind == 2:
            c = (good + int(rng.integers(1, 0xFFFF))) & 0xFFFF
        else:
            c = int(rng.choice([0x0000, 0xFFFF]))
        hdr[10:12] = struct.pack("!H", c)
        frames.append(b"\x02" + b"\0" * 11 + b"\x08\x00" + bytes(hdr))
        want.append(fold16(bytes(hdr)) == 0xFFFF)
    return frames, want


def test_checksum_verdict_matches_the_fold() -> None:
    frames, want = frames_and_expected(seed=5, n=4000)
    c = classify(FrameBatch.from_frames(frames, port=0))
    got = [bool(c.flags[i] & FLAG_CSUM_OK) for i in range(len(frames))]
    assert all(c.flags[i] & FLAG_IPV4 for i in range(len(frames)))
    bad = [i for i in range(len(frames)) if got[i] != want[i]]
    assert not bad, [(i, frames[i].hex()) for i in bad[:3]]
    assert 500 < sum(want) < 3500          # both verdicts are exercised
