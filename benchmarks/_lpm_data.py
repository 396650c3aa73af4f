"""Readers for the real BGP tables in /work/shared/data (used by the LPM benchmark and check)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("FASTVPC_DATA", "/work/shared/data"))
ROUTEVIEWS_2014 = DATA / "ipasn_20140513.dat.gz"
CAIDA_2016 = DATA / "routeviews-rv2-20160202-1200.pfx2as.gz"


def _ip(s: str) -> int:
    a, b, c, d = (int(x) for x in s.split("."))
    if not all(0 <= x <= 255 for x in (a, b, c, d)):
        raise ValueError(s)
    return (a << 24) | (b << 16) | (c << 8) | d


def read_table(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """(prefix uint32, length uint8, value uint32) of a pyasn/pfx2as file, and counts of odd lines.

    Lines are ``prefix<TAB>len<TAB>asn`` or ``prefix/len<TAB>asn`` (``;`` comments).  Multi-origin ASNs (``1_2`` or
    ``1,2``) keep the first; AS sets ``{..}`` too.  Host bits are cleared; a repeated prefix
    keeps its first value.  Lines that cannot be read are counted and skipped.
    """
    pfx, lens, vals = [], [], []
    seen: set[tuple[int, int]] = set()
    stats = {"lines": 0, "comments": 0, "bad": 0, "duplicates": 0, "host_bits": 0, "multi_origin": 0}
    with gzip.open(path, "rt", encoding="ascii", errors="replace") as f:
        for line in f:
            stats["lines"] += 1
            line = line.strip()
            if not line or line.startswith(";") or line.startswith("#"):
                stats["comments"] += 1
                continue
            parts = line.split()
            if parts and "/" in parts[0]:  # pyasn .dat: prefix/len<TAB>asn
                parts = parts[0].split("/", 1) + parts[1:]
            try:
                p = _ip(parts[0])
                ln = int(parts[1])
                asn_s = parts[2].strip("{}")
                if any(ch in asn_s for ch in "_,"):
                    stats["multi_origin"] += 1
                    asn_s = asn_s.replace(",", "_").split("_")[0]
                asn = int(asn_s)
                if not 0 <= ln <= 32 or not 0 <= asn < 0xFFFFFFFF:
                    raise ValueError(line)
            except (ValueError, IndexError):
                stats["bad"] += 1
                continue
            mask = (0xFFFFFFFF << (32 - ln)) & 0xFFFFFFFF if ln else 0
            if p & ~mask & 0xFFFFFFFF:
                stats["host_bits"] += 1
                p &= mask
            if (p, ln) in seen:
                stats["duplicates"] += 1
                continue
            seen.add((p, ln))
            pfx.append(p)
            lens.append(ln)
            vals.append(asn)
    return (np.array(pfx, dtype=np.uint32), np.array(lens, dtype=np.uint8), np.array(vals, dtype=np.uint32), stats)


def in_table_addrs(prefix: np.ndarray, length: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    """n addresses drawn inside random prefixes of the table."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, prefix.size, n)
    span = (np.uint64(1) << (np.uint64(32) - length[i].astype(np.uint64)))
    off = (rng.random(n) * span.astype(np.float64)).astype(np.uint64)
    return (prefix[i].astype(np.uint64) + np.minimum(off, span - np.uint64(1))).astype(np.uint32)


def vpc_tables(n_tables: int, routes_per_table: int = 50, seed: int = 7
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """VPC-like route tables: (table_id, prefix, length, value), ``routes_per_table`` each.

    Each table: its VPC CIDR (10.x.0.0/16, local), a default route, then a mix of peering and
    on-premises routes (/16 in 10/172/192 space, /17../24 in 10/8), subnet routes to middleboxes
    (/20../28 inside the VPC CIDR) and /32 host routes: distinct prefixes, nested and sparse.
    """
    rng = np.random.default_rng(seed)
    k = routes_per_table * 2  # candidates per table; duplicates are dropped, then the first k kept
    t = np.repeat(np.arange(n_tables, dtype=np.int64), k)
    base = (10 << 24) | (rng.integers(0, 256, n_tables) << 16)
    r = rng.random(t.size)
    ln = np.where(r < 0.1, 16, np.where(r < 0.3, rng.integers(17, 25, t.size),
                                        np.where(r < 0.85, rng.integers(20, 29, t.size), 32)))
    top = rng.choice(np.array([10, 172, 192]), t.size) << 24
    p = np.where(r < 0.1, top | (rng.integers(0, 256, t.size) << 16),
                 np.where(r < 0.3, (10 << 24) | rng.integers(0, 1 << 24, t.size),
                          np.where(r < 0.85, base[t] | rng.integers(0, 1 << 16, t.size),
                                   rng.integers(0, 1 << 32, t.size))))
    p &= (0xFFFFFFFF << (32 - ln)) & 0xFFFFFFFF
    ln[::k], p[::k] = 16, base          # the VPC CIDR
    ln[1::k], p[1::k] = 0, 0            # the default route
    key = (t << 38) | (p << 6) | ln
    _, first = np.unique(key, return_index=True)
    first.sort()                        # keep generation order (VPC CIDR and default first)
    t, p, ln = t[first], p[first], ln[first]
    rank = np.arange(t.size) - np.searchsorted(t, t)
    keep = rank < routes_per_table
    t, p, ln = t[keep], p[keep], ln[keep]
    v = rng.integers(1, 1 << 20, t.size)
    return t.astype(np.uint32), p.astype(np.uint32), ln.astype(np.uint8), v.astype(np.uint32)


def vpc_queries(tid: np.ndarray, prefix: np.ndarray, length: np.ndarray, n_tables: int, n: int,
                seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Random (table, address) pairs: half uniform addresses, half inside one of that table's routes."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, n_tables, n).astype(np.uint32)
    a = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    half = rng.random(n) < 0.5
    starts = np.searchsorted(tid, np.arange(n_tables + 1))
    cnt = np.diff(starts)
    pick = starts[t] + (rng.random(n) * cnt[t]).astype(np.int64)
    inside = in_table_addrs(prefix[pick], length[pick], n, seed + 1)
    a[half] = inside[half]
    return t, a
