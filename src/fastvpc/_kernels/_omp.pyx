"""How the kernels were built: OpenMP (see omp_shim.h) and the bounds-checked debug switch."""
from fastvpc._kernels._omp cimport FASTVPC_HAVE_OPENMP, FASTVPC_IS_DEBUG_BUILD, omp_get_max_threads


def openmp_enabled() -> bool:
    """True when the kernels were compiled with OpenMP (parallel ``prange``)."""
    return FASTVPC_HAVE_OPENMP == 1


def max_threads() -> int:
    """OpenMP's default team size (1 without OpenMP)."""
    return omp_get_max_threads()


def debug_build() -> bool:
    """True for a ``FASTVPC_DEBUG_BUILD=1`` build (bounds and wraparound checks on)."""
    return FASTVPC_IS_DEBUG_BUILD == 1
