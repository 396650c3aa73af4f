"""Push many random and mutated frames through Dataplane.process() and classify(); count verdicts.

    python tools/fuzz_forward.py [--frames 10000000] [--batch 200000] [--seed 1] [--debug-build]

``--debug-build`` first builds a copy of the package with ``FASTVPC_DEBUG_BUILD=1`` (bounds and
wraparound checks on, -O1 -g) in a temporary directory and re-runs this script against it.
Frames come from valid templates (every verdict path of a small topology) mutated in bulk with
numpy: byte flips in the headers (IPv4 checksum re-fixed for half of them so that deeper checks
are reached), truncations, lying total lengths, random IHL/version, fully random frames with an
IPv4/ARP ethertype, zero-length frames; ports mostly valid ENIs, some unknown.  Every batch is
checked for consistent verdicts (action/reason/egress agree; dropped and forwarded frames are
untouched; delivered frames change only their MACs).  Exit status 1 on any inconsistency; a crash
is a fault by definition.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def debug_build_and_rerun(argv: list[str]) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="fastvpc-debug-"))
    try:
        shutil.copytree(ROOT / "src", tmp / "src", ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))
        for name in ("setup.py", "pyproject.toml"):
            shutil.copy2(ROOT / name, tmp / name)
        env = dict(os.environ, FASTVPC_DEBUG_BUILD="1")
        print(f"building the debug copy in {tmp} ...", flush=True)
        subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"], cwd=tmp, env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env = dict(os.environ, PYTHONPATH=str(tmp / "src"), FASTVPC_FUZZ_CHILD="1")
        return subprocess.run([sys.executable, __file__, *[a for a in argv if a != "--debug-build"]],
                              env=env, check=False).returncode
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def topology():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from _forward_data import Big
    return Big(n_vpc=2, subnets_per_vpc=6, enis_per_subnet=8, routes_per_table=12, seed=3)


def templates(big, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """(rows uint8[T, 128], lengths, ports) of valid frames of every kind, 64 bytes each."""
    from _forward_data import mixed_frames
    b = mixed_frames(big, 4096, seed=int(rng.integers(1 << 30)))
    rows = np.zeros((len(b), 128), dtype=np.uint8)
    rows[:, :64] = b.data.reshape(-1, 64)
    return rows, np.full(len(b), 64, dtype=np.int64), b.port.copy()


def fix_ip_checksum(rows: np.ndarray, which: np.ndarray) -> None:
    sel = which & (rows[:, 12] == 8) & (rows[:, 13] == 0) & (rows[:, 14] == 0x45)
    r = rows[sel]
    r[:, 24:26] = 0
    w = r[:, 14:34].astype(np.uint32).reshape(-1, 10, 2)
    s = (w[:, :, 0] << 8 | w[:, :, 1]).sum(axis=1)
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    c = ~s & 0xFFFF
    r[:, 24] = c >> 8
    r[:, 25] = c & 0xFF
    rows[sel] = r


def make_batch(tmpl: tuple[np.ndarray, np.ndarray, np.ndarray], n: int, rng: np.random.Generator,
               eni_ports: np.ndarray):  # type: ignore[no-untyped-def]
    from fastvpc.batch import FrameBatch
    trows, tlen, tport = tmpl
    pick = rng.integers(0, len(trows), size=n)
    rows = trows[pick].copy()
    lens = tlen[pick].copy()
    ports = tport[pick].copy()
    kind = rng.integers(0, 8, size=n)
    # 0: untouched; 1: byte flips; 2: truncation; 3: lying total length; 4: IHL/version;
    # 5: random bytes with IPv4/ARP ethertype; 6: longer frame with random tail; 7: zero/tiny length
    flips = np.flatnonzero(kind == 1)
    for _ in range(3):
        rows[flips, rng.integers(0, 64, size=flips.size)] = rng.integers(0, 256, size=flips.size)
    fix_ip_checksum(rows, (kind == 1) & (rng.integers(0, 2, size=n) == 0))
    k = kind == 2
    lens[k] = rng.integers(0, 65, size=int(k.sum()))
    k = np.flatnonzero(kind == 3)
    rows[k, 16] = rng.integers(0, 256, size=k.size)
    rows[k, 17] = rng.integers(0, 256, size=k.size)
    fix_ip_checksum(rows, kind == 3)
    k = np.flatnonzero(kind == 4)
    rows[k, 14] = np.where(rng.integers(0, 2, size=k.size) == 0, rng.integers(0, 256, size=k.size),
                           0x40 | rng.integers(0, 16, size=k.size))
    fix_ip_checksum(rows, kind == 4)
    k = np.flatnonzero(kind == 5)
    rows[k] = rng.integers(0, 256, size=(k.size, 128), dtype=np.uint8)
    rows[k, 12] = 8
    rows[k, 13] = np.where(rng.integers(0, 2, size=k.size) == 0, 0, 6)
    lens[k] = rng.integers(0, 129, size=k.size)
    k = np.flatnonzero(kind == 6)
    rows[k, 64:] = rng.integers(0, 256, size=(k.size, 64), dtype=np.uint8)
    lens[k] = rng.integers(64, 129, size=k.size)
    k = kind == 7
    lens[k] = rng.integers(0, 15, size=int(k.sum()))
    bad_port = rng.integers(0, 16, size=n) == 0
    ports[bad_port] = rng.integers(-5, int(eni_ports.max()) + 50, size=int(bad_port.sum()))
    mask = np.arange(128)[None, :] < lens[:, None]
    data = rows[mask]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    return FrameBatch(data, offsets, ports.astype(np.int32))


def check(before, res) -> int:  # type: ignore[no-untyped-def]
    """Number of inconsistent rows."""
    act, why, eg = res.action, res.reason, res.egress
    bad = (act > 3) | (why > 16) | ((act == 0) != (eg == -1)) | ((act == 0) != (why != 0))
    bad |= (act == 3) & (eg != before.port)
    lens = np.diff(before.offsets)
    # untouched frames: compare per frame via a changed-bytes map
    changed = before.data != res.frames.data
    idx = np.repeat(np.arange(len(before)), lens)
    n_changed = np.bincount(idx[changed], minlength=len(before))
    bad |= ((act == 0) | (act == 2)) & (n_changed > 0)
    # delivered frames: only the first 12 bytes may change
    pos = np.arange(before.data.size) - np.repeat(before.offsets[:-1], lens)
    late = np.bincount(idx[changed & (pos >= 12)], minlength=len(before))
    bad |= (act == 1) & (late > 0)
    return int(np.count_nonzero(bad))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10_000_000)
    ap.add_argument("--batch", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--debug-build", action="store_true")
    args = ap.parse_args(argv)
    if args.debug_build and not os.environ.get("FASTVPC_FUZZ_CHILD"):
        return debug_build_and_rerun(argv)
    import fastvpc
    from fastvpc.classification import classify
    from fastvpc.verdicts import Action, DropReason

    print(f"fastvpc from {Path(fastvpc.__file__).parent}", flush=True)
    big = topology()
    dp = big.dp
    dp_single = big.net.compile(arp_mode="single_mac")
    rng = np.random.default_rng(args.seed)
    tmpl = templates(big, rng)
    counts = np.zeros((4, 17), dtype=np.int64)
    total = bad = 0
    t0 = time.perf_counter()
    while total < args.frames:
        n = min(args.batch, args.frames - total)
        b = make_batch(tmpl, n, rng, big.eni_port)
        d = dp_single if rng.integers(0, 4) == 0 else dp
        res = d.process(b, copy=True, n_threads=int(rng.integers(1, args.threads + 1)))
        bad += check(b, res)
        classify(b)
        np.add.at(counts, (res.action, res.reason), 1)
        total += n
    dt = time.perf_counter() - t0
    print(f"{total:,} frames in {dt:.1f} s ({total / dt / 1e6:.2f} M frames/s incl. generation and checks), "
          f"{bad} inconsistent verdicts, 0 faults")
    for a in range(4):
        for r in range(17):
            if counts[a, r]:
                print(f"  {Action(a).name:8s} {DropReason(r).name:22s} {counts[a, r]:>12,}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
