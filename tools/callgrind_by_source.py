"""Instructions a frame per Cython source line (and per .pyx/.pxd file) from a callgrind run.

The kernels' cost is spread over inline functions from many ``.pxd`` files, all compiled into one C
file, so callgrind's per-function view says only "run_chunk".  This maps each line of the generated C
(``callgrind_annotate`` with debug info) to the Cython line its ``/* "file.pxd":N`` comment names and
sums.  An inline function's cost lands on the lines of its body; code GCC moved or merged lands on
the nearest preceding comment, so read small differences with care.

Build with line tables and no stripping (a worktree, not main: the flags change the build only):

    sed -i 's/else \\["-O3"\\])/else ["-O3", "-g"])/; s/^STRIP_FLAGS = .*/STRIP_FLAGS = []/' setup.py
    python setup.py build_ext --inplace -j 2
    PYTHONPATH=$PWD/src valgrind --tool=callgrind --dump-line=yes --instr-atstart=no \\
        --toggle-collect='*forward_batch*' --callgrind-out-file=/tmp/cg.out \\
        python tools/ab_filters.py --only new --mode state --rounds 2 --settle 20 &
    # when it prints "timing in 20 s": callgrind_control -i on
    python tools/callgrind_by_source.py /tmp/cg.out build/release/cython/src/fastvpc/_kernels/forward.c \\
        --frames 131072
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path

_ORIGIN = re.compile(r'^\s*/\* "(fastvpc/[^"]+)":(\d+)')
_MARK = re.compile(r"-- line (\d+) -")
_COST = re.compile(r"\s*([\d,]+) \(")


def origins(c_file: Path) -> list[str | None]:
    """For each line of the generated C (index = line number), the Cython ``file:line`` it came from."""
    out: list[str | None] = [None]
    cur: str | None = None
    for line in c_file.read_text(errors="replace").split("\n"):
        m = _ORIGIN.match(line)
        if m:
            cur = f"{m.group(1).rsplit('/', 1)[-1]}:{m.group(2)}"
        out.append(cur)
    return out


def costs(annotated: str, c_file: Path, origin: list[str | None]) -> collections.Counter[str]:
    """Self cost per Cython line from ``callgrind_annotate --auto=yes --context=0`` output."""
    agg: collections.Counter[str] = collections.Counter()
    inside = False
    line: int | None = None
    for text in annotated.split("\n"):
        if text.startswith("-- Auto-annotated source:"):
            inside = text.split(":", 1)[1].strip().endswith(str(c_file)) or Path(
                text.split(":", 1)[1].strip()).name == c_file.name
            line = None
            continue
        if not inside:
            continue
        m = _MARK.match(text)
        if m:
            line = int(m.group(1))
            continue
        # "=>" lines are calls (inclusive costs); the summary after the last file is no source line
        skip = "=>" in text or "events annotated" in text or "PROGRAM TOTALS" in text
        m = None if skip else _COST.match(text)
        if m and line is not None:
            key = origin[line] if line < len(origin) and origin[line] else f"C:{line}"
            agg[key] += int(m.group(1).replace(",", ""))
            line += 1
    return agg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("profile", type=Path, help="callgrind.out file (recorded with --dump-line=yes)")
    ap.add_argument("c_file", type=Path, help="the generated C file of the profiled extension")
    ap.add_argument("--frames", type=int, default=1, help="divide by this many frames")
    ap.add_argument("--top", type=int, default=40, help="lines to list")
    a = ap.parse_args(argv)
    if a.frames < 1 or a.top < 0:
        ap.error(f"--frames must be >= 1 and --top >= 0 (got {a.frames}, {a.top})")
    for p in (a.profile, a.c_file):
        if not p.is_file():
            ap.error(f"no such file: {p}")
    ann = subprocess.run(["callgrind_annotate", "--auto=yes", "--context=0",
                          f"--include={a.c_file.parent}", str(a.profile)],
                         capture_output=True, text=True, check=True).stdout
    agg = costs(ann, a.c_file, origins(a.c_file))
    if not agg:
        print(f"no annotated lines of {a.c_file} in {a.profile} (built with -g? recorded with "
              "--dump-line=yes?)", file=sys.stderr)
        return 1
    n = a.frames
    print(f"total in {a.c_file.name}: {sum(agg.values()) / n:.1f} a frame")
    by_file: collections.Counter[str] = collections.Counter()
    for k, v in agg.items():
        by_file[k.split(":")[0]] += v
    print("\nby source file:")
    for k, v in by_file.most_common():
        print(f"{v / n:8.1f}  {k}")
    print(f"\nthe {a.top} costliest lines:")
    for k, v in agg.most_common(a.top):
        print(f"{v / n:8.1f}  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
