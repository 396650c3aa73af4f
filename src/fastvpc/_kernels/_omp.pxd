# Shared OpenMP shim declarations: cimport these instead of openmp so that a build
# without -fopenmp still compiles (see omp_shim.h).
cdef extern from "omp_shim.h" nogil:
    int FASTVPC_HAVE_OPENMP
    int FASTVPC_IS_DEBUG_BUILD
    int omp_get_max_threads()
    int omp_get_thread_num()
    int omp_get_num_procs()
