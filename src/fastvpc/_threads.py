"""``n_threads`` resolution, the way scikit-learn resolves it.

``None`` means every usable core (or ``OMP_NUM_THREADS`` when set); a positive
int is honoured as asked; a negative ``n`` means ``cpus + 1 + n`` (so ``-1`` is all, ``-2`` all but one).  ``0`` is an error.
Without OpenMP every value resolves to 1.
"""

from __future__ import annotations

import os

from fastvpc._kernels._omp import openmp_enabled

__all__ = ["resolve_n_threads", "usable_cpus"]


def usable_cpus() -> int:
    """Cores this process may run on (affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def resolve_n_threads(n_threads: int | None) -> int:
    """Turn a user's ``n_threads`` into a positive thread count."""
    if n_threads is not None:
        if not isinstance(n_threads, int) or isinstance(n_threads, bool):
            raise TypeError(f"n_threads must be an int or None, not {n_threads!r}")
        if n_threads == 0:
            raise ValueError("n_threads=0 is invalid: use None, a positive or a negative int")
    if not openmp_enabled():
        return 1
    if n_threads is None:
        env = os.environ.get("OMP_NUM_THREADS")
        if env and env.isdigit() and int(env) > 0:
            return min(int(env), usable_cpus())
        return usable_cpus()
    if n_threads < 0:
        return max(1, usable_cpus() + 1 + n_threads)
    return n_threads
