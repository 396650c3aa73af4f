# cython: freethreading_compatible=False
"""What the OpenMP shim was built with (see omp_shim.h)."""
from fastvpc._kernels._omp cimport FASTVPC_HAVE_OPENMP, omp_get_max_threads


def openmp_enabled() -> bool:
    """True when the kernels were compiled with OpenMP (parallel ``prange``)."""
    return FASTVPC_HAVE_OPENMP == 1


def max_threads() -> int:
    """OpenMP's default team size (1 without OpenMP)."""
    return omp_get_max_threads()
