"""Build the compiled parts of fastvpc.

Cython directives live here, once, for every kernel.  ``FASTVPC_DEBUG_BUILD=1`` turns
bounds and wraparound checks back on (and -O1 -g), so the test suite can run against a
build where an out-of-bounds index raises instead of reading stray memory.
``FASTVPC_SANITIZE=1`` builds every extension with AddressSanitizer and UndefinedBehaviorSanitizer
(``-fsanitize=address,undefined -fno-omit-frame-pointer -O1 -g``, Cython checks left as in a
release build so the sanitizers see what release code does) into its own build tree; it is the
build the fuzz targets in ``tools/fuzz`` run against.  No sanitizer runtime is linked: Python
must be started with one preloaded (tools/fuzz/README.md), else the modules do not import.

Cython modules are discovered: every ``src/fastvpc/**/*.pyx`` becomes an extension
module of the same dotted name.  pybind11 modules are every ``src/fastvpc/**/_*.cpp``
that carries a ``PYBIND11_MODULE`` marker.

OpenMP is used only when the compiler accepts ``-fopenmp``; without it the ``prange``
loops compile to plain serial loops and ``fastvpc._kernels._omp.openmp_enabled()`` says
so.  No ``-march=native``: wheels must run on any x86-64 / aarch64 machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from pybind11.setup_helpers import Pybind11Extension
from setuptools import Extension, setup

ROOT = Path(__file__).parent
SRC = ROOT / "src"
DEBUG = os.environ.get("FASTVPC_DEBUG_BUILD", "") not in ("", "0")
SANITIZE = os.environ.get("FASTVPC_SANITIZE", "") not in ("", "0")
# Release, debug and sanitizer builds keep their generated C and objects apart, so switching
# modes always recompiles (timestamps alone would let one mode reuse the other's objects).
BUILD_BASE = "build/debug" if DEBUG else "build/sanitize" if SANITIZE else "build/release"
if DEBUG and SANITIZE:
    BUILD_BASE = "build/debug-sanitize"
# Instrumented, but no sanitizer runtime linked in: the runtime is preloaded into Python
# (tools/fuzz/README.md), either atheris' asan_with_fuzzer.so (clang's ASan+UBSan+libFuzzer: the
# fuzzers' coverage then works) or gcc's "libasan.so libubsan.so".  Linking gcc's libasan would
# load a second ASan runtime next to atheris' and shadow libFuzzer's coverage hooks.  -fno-sanitize=vptr:
# that check needs a C++ UBSan runtime neither preload provides (and fastvpc has no virtual classes).
SAN_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize=vptr", "-fno-omit-frame-pointer"] if SANITIZE else []

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}


def _compiler_accepts(flag: str) -> bool:
    """Whether the C compiler accepts ``flag`` (checked by compiling a tiny program)."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "t.c"
        src.write_text("#include <omp.h>\nint main(void){return omp_get_max_threads() < 0;}\n")
        try:
            res = subprocess.run([cc, flag, str(src), "-o", str(Path(tmp) / "t")],
                                 capture_output=True, check=False)
        except OSError:
            return False
        return res.returncode == 0


USE_OPENMP = os.environ.get("FASTVPC_NO_OPENMP", "") in ("", "0") and sys.platform.startswith("linux") \
    and _compiler_accepts("-fopenmp")
OMP_FLAGS = ["-fopenmp"] if USE_OPENMP else []
OPT_FLAGS = (["-O1", "-g"] if DEBUG or SANITIZE else ["-O3"]) + SAN_FLAGS
MACROS = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if DEBUG:
    MACROS.append(("FASTVPC_DEBUG_BUILD", "1"))


def _dotted(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts)


def cython_extensions() -> list[Extension]:
    exts = []
    for pyx in sorted(SRC.rglob("*.pyx")):
        exts.append(Extension(
            _dotted(pyx),
            [str(pyx.relative_to(ROOT))],
            include_dirs=[np.get_include(), str(SRC / "fastvpc" / "_kernels")],
            define_macros=list(MACROS),
            extra_compile_args=OPT_FLAGS + OMP_FLAGS + ["-fno-strict-aliasing"],
            extra_link_args=OMP_FLAGS,
        ))
    return cythonize(exts, compiler_directives=DIRECTIVES, build_dir=f"{BUILD_BASE}/cython",
                     include_path=[str(SRC)], nthreads=int(os.environ.get("FASTVPC_BUILD_JOBS", "0")))


def pybind_extensions() -> list[Extension]:
    exts = []
    for cpp in sorted(SRC.rglob("_*.cpp")):
        if "PYBIND11_MODULE" not in cpp.read_text():
            continue
        exts.append(Pybind11Extension(
            _dotted(cpp),
            [str(cpp.relative_to(ROOT))],
            include_dirs=[np.get_include()],
            define_macros=list(MACROS),
            cxx_std=17,
            extra_compile_args=OPT_FLAGS,
        ))
    return exts


setup(ext_modules=cython_extensions() + pybind_extensions(), options={"build": {"build_base": BUILD_BASE}})
