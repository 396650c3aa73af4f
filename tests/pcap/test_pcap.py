"""pcap / pcapng reading and pcap writing.

Oracles: files built byte by byte with ``struct`` here (both byte orders, every
timestamp resolution), scapy and dpkt readers/writers, and tcpdump/tshark (Debian packages
``tcpdump`` and ``tshark``; without them those tests skip naming the tool, and fail under
FASTVPC_REQUIRE_ALL=1 as in CI).
"""

from __future__ import annotations

import io
import struct
import subprocess
import warnings
from decimal import Decimal
from pathlib import Path

import dpkt
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import require_tool
from fastvpc import pcap
from fastvpc.batch import FrameBatch
from fastvpc.errors import FastVpcError
from fastvpc.pcap import (
    PcapError,
    PcapSkippedWarning,
    PcapTruncatedWarning,
    PcapWriter,
    iter_pcap,
    read_pcap,
    write_pcap,
)

NS = 10**9


# ----------------------------------------------------------------------------- file builders

def eth(i: int, size: int = 60) -> bytes:
    """A plausible Ethernet/IPv4 frame of ``size`` bytes (>= 34) whose bytes depend on i."""
    hdr = bytes.fromhex("020000000001") + bytes([2, 0, 0, 0, 0, i & 0xFF]) + b"\x08\x00"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size - 14, i & 0xFFFF, 0, 64, 17, 0,
                     bytes([10, 0, 1, 10]), bytes([10, 0, 2, i & 0xFF]))
    body = bytes((i + k) & 0xFF for k in range(size - 34))
    return hdr + ip + body


FRAMES = [eth(i, 34 + 7 * i) for i in range(12)]
TS = [1_700_000_000 * NS + i * 123_456_789 for i in range(12)]
TS_US = [t // 1000 * 1000 for t in TS]  # what a microsecond file keeps


def classic(frames, ts_ns, *, be=False, nsec=False, snaplen=65535, network=1, caplens=None, origlens=None,
            version=(2, 4)) -> bytes:
    e = ">" if be else "<"
    out = [struct.pack(e + "IHHiIII", 0xA1B23C4D if nsec else 0xA1B2C3D4, version[0], version[1], 0, 0,
                       snaplen, network)]
    for k, (f, t) in enumerate(zip(frames, ts_ns)):
        sec, frac = divmod(t, NS)
        if not nsec:
            frac //= 1000
        cap = len(f) if caplens is None else caplens[k]
        orig = len(f) if origlens is None else origlens[k]
        out.append(struct.pack(e + "IIII", sec, frac, cap, orig) + f)
    return b"".join(out)


def pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def block(e: str, btype: int, body: bytes, *, total=None, trailer=None) -> bytes:
    body = pad4(body)
    n = 12 + len(body) if total is None else total
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n if trailer is None else trailer)


def opt(e: str, code: int, value: bytes) -> bytes:
    return struct.pack(e + "HH", code, len(value)) + pad4(value)


def shb(e: str, options: bytes = b"", major: int = 1) -> bytes:
    return block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, major, 0, -1) + options)


def idb(e: str, linktype: int = 1, snaplen: int = 0, tsresol: int | None = None, tsoffset: int | None = None,
        extra: bytes = b"") -> bytes:
    opts = extra
    if tsresol is not None:
        opts += opt(e, 9, bytes([tsresol]))
    if tsoffset is not None:
        opts += opt(e, 14, struct.pack(e + "q", tsoffset))
    if opts:
        opts += opt(e, 0, b"")
    return block(e, 1, struct.pack(e + "HHI", linktype, 0, snaplen) + opts)


def epb(e: str, iface: int, units: int, data: bytes, origlen: int | None = None, caplen: int | None = None,
        options: bytes = b"") -> bytes:
    body = struct.pack(e + "IIIII", iface, units >> 32, units & 0xFFFFFFFF,
                       len(data) if caplen is None else caplen, len(data) if origlen is None else origlen)
    return block(e, 6, body + pad4(data) + options)


def opb(e: str, iface: int, units: int, data: bytes) -> bytes:
    body = struct.pack(e + "HHIIII", iface, 0, units >> 32, units & 0xFFFFFFFF, len(data), len(data))
    return block(e, 2, body + pad4(data))


def spb(e: str, data: bytes, origlen: int | None = None) -> bytes:
    return block(e, 3, struct.pack(e + "I", len(data) if origlen is None else origlen) + pad4(data))


def write(tmp_path: Path, content: bytes, name: str = "f.pcap") -> Path:
    p = tmp_path / name
    p.write_bytes(content)
    return p


def require(tool: str) -> str:
    # skips naming the tool (fails in CI, FASTVPC_REQUIRE_ALL=1): see tests/conftest.py
    return require_tool(tool)


# ----------------------------------------------------------------------------- classic pcap

@pytest.mark.parametrize("be", [False, True])
@pytest.mark.parametrize("nsec", [False, True])
def test_classic_both_orders_and_resolutions(tmp_path, be, nsec):
    p = write(tmp_path, classic(FRAMES, TS, be=be, nsec=nsec))
    b = read_pcap(p)
    assert list(b) == FRAMES
    want = TS if nsec else [t // 1000 * 1000 for t in TS]
    assert b.timestamp.tolist() == want
    assert b.port.tolist() == [-1] * len(FRAMES)
    assert b.writeable and b.data.size == sum(map(len, FRAMES))
    b5 = FrameBatch.from_pcap(p, port=5)
    assert b5.port.tolist() == [5] * len(FRAMES) and list(b5) == FRAMES


def test_classic_empty_file_with_header_only(tmp_path):
    b = read_pcap(write(tmp_path, classic([], [])))
    assert len(b) == 0 and b.timestamp is not None and b.timestamp.size == 0


def test_snaplen_zero_means_unlimited_and_full_32bit_seconds(tmp_path):
    t = [(2**32 - 1) * NS + 999_999_000]
    b = read_pcap(write(tmp_path, classic([FRAMES[3]], t, snaplen=0)))
    assert b.timestamp.tolist() == t and list(b) == [FRAMES[3]]


def test_many_tiny_frames_grow_the_index(tmp_path):
    # 1-byte frames: 17-byte records, more than the first index chunk holds
    frames = [bytes([i & 0xFF]) for i in range(5000)]
    b = read_pcap(write(tmp_path, classic(frames, range(5000), nsec=True)))
    assert list(b) == frames and b.timestamp.tolist() == list(range(5000))


def test_file_objects(tmp_path):
    content = classic(FRAMES, TS, nsec=True)
    b = read_pcap(io.BytesIO(content))
    assert list(b) == FRAMES
    out = io.BytesIO()
    write_pcap(out, b, nanosecond=True)
    assert out.getvalue() == content.replace(struct.pack("<I", 65535), struct.pack("<I", 262144), 1)
    with open(write(tmp_path, content), "rb") as f:
        assert read_pcap(f) == b


# ----------------------------------------------------------------------------- pcapng

def test_pcapng_sections_interfaces_resolutions(tmp_path):
    L, B = "<", ">"
    f = FRAMES
    content = b"".join([
        shb(L, opt(L, 4, b"test-app") + opt(L, 0, b"")),
        idb(L),                                   # iface 0: default us
        idb(L, tsresol=9, snaplen=1000),          # iface 1: ns
        block(L, 0x0BAD, b"custom stuff"),        # unknown block: skipped
        epb(L, 0, 1_700_000_000_123_456, f[0]),
        epb(L, 1, 1_700_000_000_123_456_789, f[1], options=opt(L, 1, b"comment") + opt(L, 0, b"")),
        spb(L, f[2]),                             # iface 0, no timestamp
        block(L, 5, b"\0" * 12),                  # interface statistics: skipped
        opb(L, 1, 42, f[3]),                      # obsolete packet block
        shb(B),                                   # second section, big-endian: interfaces reset
        idb(B, tsresol=0x80 | 20, tsoffset=100),  # 2^-20 s units, +100 s
        idb(B, tsresol=3),                        # ms
        block(B, 4, b"\0" * 4),                   # name resolution block: skipped
        epb(B, 0, (5 << 20) | (1 << 19), f[4]),   # 5.5 s
        epb(B, 1, 1234, f[5]),                    # 1.234 s
        spb(B, f[6]),
    ])
    b = read_pcap(write(tmp_path, content, "f.pcapng"))
    assert list(b) == f[:7]
    assert b.timestamp.tolist() == [1_700_000_000_123_456_000, 1_700_000_000_123_456_789, -1, 42,
                                    105_500_000_000, 1_234_000_000, -1]


def test_pcapng_spb_caplen_from_snaplen_and_origlen(tmp_path):
    L = "<"
    frame = eth(1, 100)
    content = shb(L) + idb(L, snaplen=64) + spb(L, frame[:64], origlen=100) + spb(L, frame[:50] + b"\0\0", origlen=50)
    b = read_pcap(write(tmp_path, content, "f.pcapng"))
    assert list(b) == [frame[:64], frame[:50]]


def test_pcapng_binary_resolution_rounding(tmp_path):
    L = "<"
    # 2^-40 s units (finer than ns): 3 s + 2^39 units = 3.5 s; and 1 unit -> 0 ns
    content = shb(L) + idb(L, tsresol=0x80 | 40) + epb(L, 0, (3 << 40) | (1 << 39), FRAMES[0]) + epb(L, 0, 1, FRAMES[1])
    b = read_pcap(write(tmp_path, content, "f.pcapng"))
    assert b.timestamp.tolist() == [3_500_000_000, 0]
    content = shb(L) + idb(L, tsresol=12) + epb(L, 0, 7_000_000_001_999, FRAMES[0])  # ps -> ns, truncated
    assert read_pcap(write(tmp_path, content, "g.pcapng")).timestamp.tolist() == [7_000_000_001]


def test_pcapng_many_interfaces_grow_table(tmp_path):
    L = "<"
    content = shb(L) + b"".join(idb(L, tsresol=9) for _ in range(40)) + b"".join(
        epb(L, i, i, FRAMES[i % 12]) for i in range(40))
    b = read_pcap(write(tmp_path, content, "f.pcapng"))
    assert b.timestamp.tolist() == list(range(40)) and len(b) == 40


# ----------------------------------------------------------------------------- linktypes

def test_classic_other_linktype(tmp_path):
    p = write(tmp_path, classic(FRAMES, TS, network=101))
    for on_error in ("raise", "stop"):
        with pytest.raises(PcapError, match=r"unsupported linktype 101 \(LINKTYPE_RAW\)") as ei:
            read_pcap(p, on_error=on_error)
        assert ei.value.offset == 20
    with pytest.warns(PcapSkippedWarning, match="linktype 101"):
        b = read_pcap(p, skip_other_linktypes=True)
    assert len(b) == 0
    with pytest.raises(PcapError, match="FCS"):
        read_pcap(write(tmp_path, classic(FRAMES, TS, network=1 | 0x10000000 | 0x20000000), "fcs.pcap"))


def test_pcapng_mixed_linktypes(tmp_path):
    L = "<"
    content = shb(L) + idb(L) + idb(L, linktype=113) + epb(L, 0, 1, FRAMES[0]) + epb(L, 1, 2, b"sll-frame") + \
        epb(L, 0, 3, FRAMES[1]) + epb(L, 1, 4, b"another")
    p = write(tmp_path, content, "f.pcapng")
    off = len(shb(L) + idb(L) + idb(L, linktype=113) + epb(L, 0, 1, FRAMES[0]))
    with pytest.raises(PcapError, match=f"byte offset {off} .*linktype 113 \\(LINKTYPE_LINUX_SLL\\)") as ei:
        read_pcap(p)
    assert ei.value.offset == off
    with pytest.raises(PcapError, match="linktype 113"):
        read_pcap(p, on_error="stop")
    with pytest.warns(PcapSkippedWarning, match="skipped 2 packets"):
        b = read_pcap(p, skip_other_linktypes=True)
    assert list(b) == [FRAMES[0], FRAMES[1]] and b.timestamp.tolist() == [1000, 3000]


# ----------------------------------------------------------------------------- damage

def _classic_cases():
    good = classic(FRAMES[:3], TS[:3])
    r0 = 24
    r1 = r0 + 16 + len(FRAMES[0])
    r2 = r1 + 16 + len(FRAMES[1])
    zero = classic(FRAMES[:2] + [b""], TS[:3])
    return [
        ("bad magic", b"\x00\x01\x02\x03" + good[4:], 0, "bad magic 0x00010203", 0),
        ("short file", good[:3], 0, "truncated file header", 0),
        ("short header", good[:20], 0, "truncated pcap file header", 0),
        ("bad version", classic(FRAMES[:1], TS[:1], version=(3, 0)), 4, "unsupported pcap version 3.0", 0),
        ("truncated data", good[:-5], r2, f"caplen {len(FRAMES[2])} but only {len(FRAMES[2]) - 5} bytes left", 2),
        ("truncated header", good[: r2 + 9], r2, "truncated record header .* 9 bytes left, 16 needed", 2),
        ("caplen > snaplen", classic(FRAMES[:3], TS[:3], snaplen=40), r1, "caplen 41 is larger than snaplen 40", 1),
        ("zero length", zero, r2, "zero-length record", 2),
        ("huge caplen", classic(FRAMES[:2], TS[:2], caplens=[len(FRAMES[0]), 2**32 - 1], snaplen=0), r1,
         "caplen 4294967295 but only", 1),
        ("garbage tail", good + b"garbage", len(good), "7 bytes left", 3),
    ]


@pytest.mark.parametrize("name, content, offset, match, n_before", _classic_cases(), ids=lambda v: str(v)[:20])
def test_classic_damage(tmp_path, name, content, offset, match, n_before):
    p = write(tmp_path, content)
    with pytest.raises(PcapError, match=f"byte offset {offset}") as ei:
        read_pcap(p)
    assert ei.value.offset == offset
    assert ei.value.path == str(p)
    assert isinstance(ei.value, FastVpcError) and isinstance(ei.value, ValueError)
    import re
    assert re.search(match, str(ei.value)), str(ei.value)
    with pytest.warns(PcapTruncatedWarning, match=f"byte offset {offset}"):
        b = read_pcap(p, on_error="stop")
    assert list(b) == FRAMES[:n_before]


def _ng_cases():
    L = "<"
    head = shb(L) + idb(L, snaplen=200)
    e0 = epb(L, 0, 1, FRAMES[0])
    p1 = len(head) + len(e0)
    good_next = epb(L, 0, 2, FRAMES[1])
    bad_len = struct.pack(L + "II", 6, 30) + good_next[8:]
    return [
        ("block len not multiple of 4", head + e0 + bad_len, p1, "bad total length 30", 1),
        ("trailer mismatch", head + e0 + epb(L, 0, 2, FRAMES[1])[:-4] + struct.pack(L + "I", 8), p1,
         "trailing total length 8 differs", 1),
        ("truncated block", head + e0 + good_next[:-1], p1, "total length 76 but only 75 bytes left", 1),
        ("truncated block header", head + e0 + good_next[:7], p1, "7 bytes left, 12 needed", 1),
        ("caplen past block", head + e0 + epb(L, 0, 2, FRAMES[1], caplen=200), p1, "caplen 200 is larger than the block", 1),
        ("caplen > snaplen", shb(L) + idb(L, snaplen=40) + epb(L, 0, 1, FRAMES[3]), len(shb(L) + idb(L, snaplen=40)),
         "caplen 55 is larger than snaplen", 0),
        ("zero length", head + e0 + epb(L, 0, 2, b""), p1, "zero-length block", 1),
        ("unknown interface", head + e0 + epb(L, 3, 2, FRAMES[1]), p1, "names interface 3", 1),
        ("spb without idb", shb(L) + spb(L, FRAMES[0]), len(shb(L)), "names interface 0", 0),
        ("bad bom", head + e0 + block(L, 0x0A0D0D0A, struct.pack(L + "IHHq", 0x11223344, 1, 0, -1)), p1,
         "bad byte-order magic bytes 44332211", 1),
        ("bad version", head + e0 + shb(L, major=2), p1, "unsupported major version 2", 1),
        ("option overrun", head + e0 + block(L, 1, struct.pack(L + "HHI", 1, 0, 0) + struct.pack(L + "HH", 9, 200)),
         p1 + 16, "option length 200", 1),
        ("bad tsresol", head + e0 + idb(L, tsresol=19), p1 + 16, "if_tsresol 0x13", 1),
        ("short epb", head + e0 + block(L, 6, b"\0" * 12), p1, "bad total length 24", 1),
        ("garbage tail", head + e0 + b"\x01\x02\x03\x04\x05", p1, "5 bytes left", 1),
    ]


@pytest.mark.parametrize("name, content, offset, match, n_before", _ng_cases(), ids=lambda v: str(v)[:24])
def test_pcapng_damage(tmp_path, name, content, offset, match, n_before):
    import re
    p = write(tmp_path, content, "f.pcapng")
    with pytest.raises(PcapError, match=f"byte offset {offset}") as ei:
        read_pcap(p)
    assert ei.value.offset == offset
    assert re.search(match, str(ei.value)), str(ei.value)
    with pytest.warns(PcapTruncatedWarning, match=f"byte offset {offset}"):
        b = read_pcap(p, on_error="stop")
    assert list(b) == FRAMES[:n_before]


def test_empty_file(tmp_path):
    p = write(tmp_path, b"")
    with pytest.raises(PcapError, match="truncated file header at byte offset 0: 0 bytes"):
        read_pcap(p)
    with pytest.warns(PcapTruncatedWarning, match="byte offset 0"):
        assert len(read_pcap(p, on_error="stop")) == 0


def test_on_error_validated(tmp_path):
    p = write(tmp_path, classic(FRAMES, TS))
    with pytest.raises(ValueError, match="on_error"):
        read_pcap(p, on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        next(iter_pcap(p, 0))


# ----------------------------------------------------------------------------- fuzz

def _assert_sane(content: bytes, tmp_path: Path) -> None:
    """Reading never crashes; 'stop' never raises for damage; frames are substrings of the file."""
    src = io.BytesIO(content)
    try:
        b = read_pcap(src)
    except PcapError as exc:
        assert exc.offset is not None and 0 <= exc.offset <= len(content)
        b = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PcapTruncatedWarning)
        try:
            s = read_pcap(io.BytesIO(content), on_error="stop")
        except PcapError as exc:
            assert "linktype" in str(exc) or "FCS" in str(exc)
            return
    if b is not None:
        assert s == b
    for f in s:
        assert 0 < len(f) and f in content


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from([b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00", b"\xa1\xb2\x3c\x4d\x00\x02\x00\x04",
                               b"\x0a\x0d\x0d\x0a", b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a", b""]),
       body=st.binary(max_size=300))
def test_fuzz_random_bytes(tmp_path, prefix, body):
    _assert_sane(prefix + body, tmp_path)


def _valid_files() -> list[bytes]:
    L, B = "<", ">"
    return [
        classic(FRAMES[:4], TS[:4]),
        classic(FRAMES[:4], TS[:4], be=True, nsec=True),
        shb(L) + idb(L, tsresol=9) + epb(L, 0, 5, FRAMES[0]) + spb(L, FRAMES[1]) + shb(B) + idb(B) + epb(B, 0, 9, FRAMES[2]),
    ]


def test_every_truncation_of_valid_files(tmp_path):
    for content in _valid_files():
        full = list(read_pcap(io.BytesIO(content)))
        for cut in range(len(content)):
            _assert_sane(content[:cut], tmp_path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PcapTruncatedWarning)
                got = list(read_pcap(io.BytesIO(content[:cut]), on_error="stop"))
            assert got == full[: len(got)]  # a prefix of the real frames


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 2), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1,
                                                   max_size=6))
def test_fuzz_mutated_valid_files(tmp_path, which, flips):
    content = bytearray(_valid_files()[which])
    for pos, val in flips:
        content[pos % len(content)] = val
    _assert_sane(bytes(content), tmp_path)


# ----------------------------------------------------------------------------- streaming

@pytest.mark.parametrize("size", [1, 5, 12, 100])
def test_iter_pcap_chunks(tmp_path, size):
    for name, content in [("a.pcap", classic(FRAMES, TS, nsec=True)),
                          ("b.pcapng", shb("<") + idb("<", tsresol=9) + b"".join(
                              epb("<", 0, t, f) for f, t in zip(FRAMES, TS)))]:
        p = write(tmp_path, content, name)
        chunks = list(iter_pcap(p, size, port=3))
        assert [len(c) for c in chunks] == [min(size, 12 - k) for k in range(0, 12, size)]
        assert FrameBatch.concat(chunks) == read_pcap(p, port=3)


def test_iter_pcap_raises_after_good_chunks(tmp_path):
    p = write(tmp_path, classic(FRAMES, TS)[:-3])
    got = []
    with pytest.raises(PcapError, match="truncated record"):
        for c in iter_pcap(p, 4):
            got.extend(c)
    assert got == FRAMES[:11]  # the frames before the damage were yielded first
    with pytest.warns(PcapTruncatedWarning):
        got = [f for c in iter_pcap(p, 4, on_error="stop") for f in c]
    assert got == FRAMES[:11]


# ----------------------------------------------------------------------------- writing

def test_write_round_trip_and_options(tmp_path):
    b = FrameBatch.from_frames(FRAMES, port=1, timestamp=TS)
    for be in (False, True):
        for nsec in (False, True):
            p = tmp_path / f"o{be}{nsec}.pcap"
            b.to_pcap(p, nanosecond=nsec, byteorder="big" if be else "little")
            raw = p.read_bytes()
            assert raw == classic(FRAMES, TS, be=be, nsec=nsec, snaplen=262144)
            r = read_pcap(p, port=1)
            assert list(r) == FRAMES
            assert r.timestamp.tolist() == (TS if nsec else [t // 1000 * 1000 for t in TS])


def test_write_snaplen_cuts_frames_keeps_origlen(tmp_path):
    b = FrameBatch.from_frames(FRAMES, port=1, timestamp=TS)
    p = tmp_path / "s.pcap"
    write_pcap(p, b, snaplen=50, nanosecond=True)
    assert p.read_bytes() == classic([f[:50] for f in FRAMES], TS, nsec=True, snaplen=50,
                                     origlens=[len(f) for f in FRAMES])
    assert list(read_pcap(p)) == [f[:50] for f in FRAMES]


def test_write_timestamps_edge_cases(tmp_path):
    p = tmp_path / "t.pcap"
    FrameBatch.from_frames(FRAMES[:2], port=0).to_pcap(p)  # no timestamps: 0
    assert read_pcap(p).timestamp.tolist() == [0, 0]
    FrameBatch.from_frames(FRAMES[:2], port=0, timestamp=[-1, 5]).to_pcap(p, nanosecond=True)
    assert read_pcap(p).timestamp.tolist() == [0, 5]
    with pytest.raises(PcapError, match=f"frame 1 cannot be written: timestamp {2**32 * NS}"):
        FrameBatch.from_frames(FRAMES[:2], port=0, timestamp=[0, 2**32 * NS]).to_pcap(p)


def test_write_argument_checks(tmp_path):
    b = FrameBatch.from_frames(FRAMES, port=1)
    with pytest.raises(ValueError, match="byteorder"):
        b.to_pcap(tmp_path / "x.pcap", byteorder="middle")
    with pytest.raises(ValueError, match="snaplen"):
        b.to_pcap(tmp_path / "x.pcap", snaplen=0)
    with pytest.raises(TypeError, match="FrameBatch"):
        write_pcap(tmp_path / "x.pcap", [b"x"])  # type: ignore[arg-type]


def test_writer_streams_batches_in_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(pcap, "_WRITE_CHUNK", 5)
    b1 = FrameBatch.from_frames(FRAMES[:7], port=0, timestamp=TS[:7])
    b2 = FrameBatch.from_frames(FRAMES[7:], port=0, timestamp=TS[7:]).select([0, 1, 2, 3, 4])
    p = tmp_path / "w.pcap"
    with PcapWriter(p, nanosecond=True) as w:
        w.write(b1)
        w.write(FrameBatch.empty())
        w.write(b2)
    assert w.frames_written == 12
    r = read_pcap(p, port=0)
    assert r == FrameBatch.from_frames(FRAMES, port=0, timestamp=TS)


def test_write_batch_with_offset_base(tmp_path):
    data = np.frombuffer(b"JUNK" + b"".join(FRAMES[:3]) + b"TAIL", np.uint8)
    offs = np.array([4, 4 + len(FRAMES[0]), 4 + len(FRAMES[0]) + len(FRAMES[1]),
                     4 + sum(map(len, FRAMES[:3]))])
    b = FrameBatch(data, offs, [0, 0, 0])
    p = tmp_path / "o.pcap"
    b.to_pcap(p)
    assert list(read_pcap(p)) == FRAMES[:3]


# ----------------------------------------------------------------------------- scapy and dpkt as oracles

def _scapy_packets():
    from scapy.layers.l2 import Ether
    pkts = []
    for i, f in enumerate(FRAMES):
        p = Ether(f)
        p.time = Decimal(TS_US[i]) / NS  # exact microseconds: writers round differently
        pkts.append(p)
    return pkts


def test_scapy_written_files_read_identically(tmp_path):
    from scapy.utils import PcapNgWriter, PcapWriter as SPcapWriter
    pkts = _scapy_packets()
    for nano in (False, True):
        p = tmp_path / f"s{nano}.pcap"
        with SPcapWriter(str(p), nano=nano, linktype=1) as w:
            for k in pkts:
                w.write(k)
        b = read_pcap(p)
        assert list(b) == FRAMES
        assert b.timestamp.tolist() == TS_US
    p = tmp_path / "s.pcapng"
    w = PcapNgWriter(str(p))
    for k in pkts:
        w.write(k)
    w.close()
    b = read_pcap(p)
    assert list(b) == FRAMES
    assert b.timestamp.tolist() == [t // 1000 * 1000 for t in TS]


@pytest.mark.parametrize("be", [False, True])
@pytest.mark.parametrize("nsec", [False, True])
def test_files_we_write_read_by_scapy(tmp_path, be, nsec):
    from scapy.utils import RawPcapReader
    b = FrameBatch.from_frames(FRAMES, port=0, timestamp=TS)
    p = tmp_path / "o.pcap"
    b.to_pcap(p, nanosecond=nsec, byteorder="big" if be else "little", snaplen=60)
    got = []
    with RawPcapReader(str(p)) as r:
        for data, meta in r:
            got.append((data, meta.sec * NS + meta.usec * (1 if nsec else 1000), meta.wirelen))
    assert got == [(f[:60], t if nsec else t // 1000 * 1000, len(f)) for f, t in zip(FRAMES, TS)]


def test_dpkt_written_files_read_identically(tmp_path):
    for nano in (False, True):
        p = tmp_path / f"d{nano}.pcap"
        with open(p, "wb") as fh:
            w = dpkt.pcap.Writer(fh, nano=nano, snaplen=65535)
            for f, t in zip(FRAMES, TS if nano else TS_US):
                w.writepkt(f, ts=Decimal(t) / NS)
        b = read_pcap(p)
        assert list(b) == FRAMES
        assert b.timestamp.tolist() == (TS if nano else TS_US)
    p = tmp_path / "d.pcapng"
    with open(p, "wb") as fh:
        w = dpkt.pcapng.Writer(fh, snaplen=65535)
        for f, t in zip(FRAMES, TS):
            w.writepkt(f, ts=(t // 1000) / 1e6)  # dpkt's pcapng writer takes floats
    b = read_pcap(p)
    assert list(b) == FRAMES
    assert b.timestamp.tolist() == [t // 1000 * 1000 for t in TS]


@pytest.mark.parametrize("be", [False, True])
def test_files_we_write_read_by_dpkt(tmp_path, be):
    b = FrameBatch.from_frames(FRAMES, port=0, timestamp=TS)
    for nsec in (False, True):
        p = tmp_path / f"o{nsec}.pcap"
        b.to_pcap(p, nanosecond=nsec, byteorder="big" if be else "little")
        with open(p, "rb") as fh:
            r = dpkt.pcap.Reader(fh)
            assert r.datalink() == dpkt.pcap.DLT_EN10MB
            got = [(bytes(buf), Decimal(ts)) for ts, buf in r]
        assert [g[0] for g in got] == FRAMES
        want = [Decimal(t if nsec else t // 1000 * 1000) / NS for t in TS]
        assert [round(g[1], 9 if nsec else 6) for g in got] == want


# ----------------------------------------------------------------------------- tcpdump and tshark

def _tcpdump_frames(path: Path) -> list[tuple[int, bytes]]:
    out = subprocess.run([require("tcpdump"), "-r", str(path), "-nn", "-tt", "--time-stamp-precision=nano",
                          "-xx"], capture_output=True, text=True, check=True).stdout
    pkts: list[tuple[int, bytearray]] = []
    for line in out.splitlines():
        if line.startswith("\t0x"):
            hexpart = line.split(":", 1)[1].split()
            pkts[-1][1].extend(bytes.fromhex("".join(hexpart)))
        elif line.strip():
            sec, frac = line.split()[0].split(".")
            pkts.append((int(sec) * NS + int(frac), bytearray()))
    return [(t, bytes(b)) for t, b in pkts]


def _tshark_fields(path: Path) -> list[tuple[int, int, int]]:
    out = subprocess.run([require("tshark"), "-r", str(path), "-T", "fields", "-e", "frame.time_epoch",
                          "-e", "frame.cap_len", "-e", "frame.len"], capture_output=True, text=True,
                         check=True).stdout
    rows = []
    for line in out.splitlines():
        t, cap, ln = line.split("\t")
        rows.append((int(Decimal(t) * NS), int(cap), int(ln)))
    return rows


@pytest.mark.parametrize("be", [False, True])
@pytest.mark.parametrize("nsec", [False, True])
def test_tcpdump_and_tshark_read_our_files(tmp_path, be, nsec):
    b = FrameBatch.from_frames(FRAMES, port=0, timestamp=TS)
    p = tmp_path / "o.pcap"
    b.to_pcap(p, nanosecond=nsec, byteorder="big" if be else "little", snaplen=70)
    want_ts = TS if nsec else [t // 1000 * 1000 for t in TS]
    assert _tcpdump_frames(p) == [(t, f[:70]) for t, f in zip(want_ts, FRAMES)]
    assert _tshark_fields(p) == [(t, min(len(f), 70), len(f)) for t, f in zip(want_ts, FRAMES)]


def test_tshark_and_tcpdump_written_files_read_identically(tmp_path):
    b = FrameBatch.from_frames(FRAMES, port=-1, timestamp=TS)
    p = tmp_path / "o.pcap"
    b.to_pcap(p, nanosecond=True)
    ng = tmp_path / "t.pcapng"
    subprocess.run([require("tshark"), "-r", str(p), "-F", "pcapng", "-w", str(ng)], capture_output=True,
                   check=True)
    assert read_pcap(ng) == b
    td = tmp_path / "td.pcap"
    subprocess.run([require("tcpdump"), "-r", str(p), "-w", str(td)], capture_output=True, check=True)
    assert list(read_pcap(td)) == FRAMES
