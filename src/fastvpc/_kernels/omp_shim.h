/* OpenMP shim: the kernels call these names whether or not the compiler has OpenMP.
 * Without -fopenmp the prange loops are serial and these report one thread. */
#ifndef FASTVPC_OMP_SHIM_H
#define FASTVPC_OMP_SHIM_H
#ifdef _OPENMP
#include <omp.h>
#define FASTVPC_HAVE_OPENMP 1
#else
#define FASTVPC_HAVE_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_procs(void) { return 1; }
#endif

/* setup.py defines FASTVPC_DEBUG_BUILD for the bounds-checked build */
#ifdef FASTVPC_DEBUG_BUILD
#define FASTVPC_IS_DEBUG_BUILD 1
#else
#define FASTVPC_IS_DEBUG_BUILD 0
#endif
#endif
