"""What the A/B tools (ab_forward.py, ab_filters.py, ab_nat.py) share: loading a copy of a compiled
module from a ``.so`` path beside the installed one, and the summary of alternated timed rounds."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import statistics
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType


def load_extension(path: str, name: str, register: bool = False) -> ModuleType:
    """Load the extension module at ``path`` as ``name``; its last dotted part must be the module's own
    (the init symbol is ``PyInit_<last part>``).  ``register``: put it in ``sys.modules`` first, so that
    modules imported afterwards that import ``name`` get this copy."""
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    if spec is None:
        raise ImportError(f"cannot load {path!r} as {name}")
    mod = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = mod
    loader.exec_module(mod)
    return mod


def load_so(path: str, alias: str) -> ModuleType:
    """A copy of the ``forward`` extension from ``path``, as ``<alias>.forward``."""
    return load_extension(path, f"{alias}.forward")


def summary(times: Mapping[str, Sequence[float]], n: int, indent: str = "", extra: Mapping[str, str] | None = None,
            ) -> list[str]:
    """Lines for the timed rounds (seconds per round, per build; ``n`` frames a round): each build's
    median and best rate, and with both an "old" and a "new" build the ratios of the medians, of the
    bests and the median of the per-round ratios (rounds alternate, so a pair shares the machine's state)."""
    med = {k: n / statistics.median(v) / 1e6 for k, v in times.items()}
    best = {k: n / min(v) / 1e6 for k, v in times.items()}
    lines = []
    for k, v in times.items():
        tail = f" ({extra[k]})" if extra and k in extra else ""
        lines.append(f"{indent}{k}: median {med[k]:.2f} M frames/s ({statistics.median(v) * 1e3:.2f} ms), "
                     f"best {best[k]:.2f} M frames/s, {len(v)} rounds{tail}")
    if "old" in times and "new" in times:
        pair = statistics.median(o / w for o, w in zip(times["old"], times["new"]))
        lines.append(f"{indent}new/old: medians {med['new'] / med['old']:.3f}, best {best['new'] / best['old']:.3f}, "
                     f"median of per-round ratios {pair:.3f}")
    return lines
