"""``n_threads`` resolution, the way scikit-learn resolves it, bounded by the machine.

``None`` means every usable core (or ``OMP_NUM_THREADS`` when set, never more than the cores);
a positive int asks for that many threads; a negative ``n`` means ``cpus + 1 + n`` (so ``-1`` is
all, ``-2`` all but one; never fewer than 1).  Whatever is asked, the result is at most the cores
this process may run on and, when the caller says how many chunks of work there are, at most that:
more OpenMP threads than cores only add contention, and asking libgomp for millions of threads
aborts the process.  ``0``, a non-integer, or a magnitude above :data:`MAX_N_THREADS` (no machine
has that many cores: it is a mistake, not a request) raise.  Without OpenMP every value resolves to 1.
"""

from __future__ import annotations

import operator
import os

from fastvpc._kernels._omp import openmp_enabled

__all__ = ["MAX_N_THREADS", "resolve_n_threads", "usable_cpus"]

#: The largest ``|n_threads|`` accepted (and then capped at the usable cores).
MAX_N_THREADS = 1 << 16


def usable_cpus() -> int:
    """Cores this process may run on (affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def resolve_n_threads(n_threads: int | None, chunks: int | None = None) -> int:
    """Turn a user's ``n_threads`` into a thread count in ``1..min(usable_cpus(), chunks)``.

    ``chunks`` (optional) is how many independent pieces the work splits into.
    """
    if n_threads is not None:
        if isinstance(n_threads, bool):
            raise TypeError(f"n_threads must be an int or None, not {n_threads!r}")
        try:
            n_threads = operator.index(n_threads)  # ints and numpy integers, not floats or strings
        except TypeError:
            raise TypeError(f"n_threads must be an int or None, not {n_threads!r:.40}") from None
        if n_threads == 0:
            raise ValueError("n_threads=0 is invalid: use None, a positive or a negative int")
        if abs(n_threads) > MAX_N_THREADS:
            raise ValueError(f"n_threads={n_threads} is absurd (more than {MAX_N_THREADS} threads): use None "
                             f"for every core, or a count up to the {usable_cpus()} usable cores")
    if not openmp_enabled():
        return 1
    cpus = usable_cpus()
    if n_threads is None:
        env = os.environ.get("OMP_NUM_THREADS")
        n = int(env) if env and env.isdigit() and len(env) <= 6 and int(env) > 0 else cpus
    elif n_threads < 0:
        n = cpus + 1 + n_threads
    else:
        n = n_threads
    n = max(1, min(n, cpus))
    if chunks is not None:
        n = max(1, min(n, int(chunks)))
    return n
