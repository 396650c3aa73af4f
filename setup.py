"""Build the compiled parts of fastvpc.

Every compiled module is listed below by name (``CYTHON_MODULES``, ``PYBIND_MODULES``); the
build fails when a ``.pyx`` or pybind11 ``.cpp`` under ``src/`` is not listed, so a stray file
never becomes a module and a new one is never silently left out.

Cython directives live here, once, for every kernel.  ``FASTVPC_DEBUG_BUILD=1`` turns
bounds and wraparound checks back on (and -O1 -g), so the test suite can run against a
build where an out-of-bounds index raises instead of reading stray memory.  Release builds
drop debug information at link time (the interpreter's own CFLAGS often carry ``-g``), so
wheels and installs ship small binaries; the symbol table stays, so ``perf`` still names
functions.
``FASTVPC_SANITIZE=1`` builds every extension with AddressSanitizer and UndefinedBehaviorSanitizer
(``-fsanitize=address,undefined -fno-omit-frame-pointer -O1 -g``, Cython checks left as in a
release build so the sanitizers see what release code does) into its own build tree; it is the
build the fuzz targets in ``tools/fuzz`` run against.  No sanitizer runtime is linked: Python
must be started with one preloaded (tools/fuzz/README.md), else the modules do not import.

Modules are cythonized and compiled in parallel: ``FASTVPC_BUILD_JOBS`` processes (default:
the CPUs this process may use).

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
from Cython.Compiler import Options as CythonOptions
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

#: Cython modules, by dotted name; the source is the matching ``src/<name>.pyx``.
CYTHON_MODULES = [
    "fastvpc._kernels._omp",
    "fastvpc._kernels.classify",
    "fastvpc._kernels.forward",
    "fastvpc._batchops",
    "fastvpc._pcapindex",
    "fastvpc.lpm._lookup",
    "fastvpc.live._mmsg",
    "fastvpc.live._neigh",
    "fastvpc.live._rings",
    "fastvpc.compiler._hash",
    "fastvpc.dataplane._flowtable",
    "fastvpc.dataplane._flowlogs",
    "fastvpc.dataplane._ports",
    "fastvpc.drivers._replayops",
    "fastvpc.drivers._shardops",
]
#: pybind11 modules, by dotted name; the source is the matching ``src/<name>.cpp``.
PYBIND_MODULES = [
    "fastvpc.lpm._build",
]
#: Listed modules whose source may not exist yet (being added on other branches): built when
#: present, skipped when not.  Every other listed module must exist.
PENDING: set[str] = set()

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
    # Not yet audited for free-threaded CPython (3.13t): importing a module there re-enables the
    # GIL with a warning instead of running unaudited code without it.
    "freethreading_compatible": False,
}

if "freethreading_compatible" not in CythonOptions.directive_types:   # Cython < 3.1
    del DIRECTIVES["freethreading_compatible"]


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


JOBS = int(os.environ.get("FASTVPC_BUILD_JOBS", "0")) or _cpus()


def _compiler_accepts(*flags: str, program: str = "int main(void){return 0;}\n") -> bool:
    """Whether the C compiler accepts ``flags`` (checked by compiling ``program``)."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "t.c"
        src.write_text(program)
        try:
            res = subprocess.run([cc, *flags, "-Werror", str(src), "-o", str(Path(tmp) / "t")],
                                 capture_output=True, check=False)
        except OSError:
            return False
        return res.returncode == 0


USE_OPENMP = os.environ.get("FASTVPC_NO_OPENMP", "") in ("", "0") and sys.platform.startswith("linux") \
    and _compiler_accepts("-fopenmp", program="#include <omp.h>\nint main(void){return omp_get_max_threads() < 0;}\n")
OMP_FLAGS = ["-fopenmp"] if USE_OPENMP else []
# Per-module flags, used when the compiler takes them.  The forwarding driver inlines every stage
# into its chunk loops (one function per mode); GCC's default inliner limits stop short of that and
# leave stage calls in the per-frame loop.  Other compilers get the default limits.
_INLINE_ALL = ["--param=max-inline-insns-single=2000", "--param=large-function-growth=1000",
               "--param=inline-unit-growth=1000"]
MODULE_FLAGS = {"fastvpc._kernels.forward": _INLINE_ALL if _compiler_accepts(*_INLINE_ALL) else []}
OPT_FLAGS = (["-O1", "-g"] if DEBUG or SANITIZE else ["-O3"]) + SAN_FLAGS
# GNU ld and lld: drop DWARF, keep the symbol table.  (The debug and sanitizer builds keep everything.)
STRIP_FLAGS = [] if DEBUG or SANITIZE or not sys.platform.startswith("linux") else ["-Wl,--strip-debug"]
# numpy>=1.24 is the runtime floor (pyproject.toml): no API deprecated by then, and binaries
# built against numpy 2 headers still load on 1.24.
MACROS = [("NPY_NO_DEPRECATED_API", "NPY_1_24_API_VERSION"), ("NPY_TARGET_VERSION", "NPY_1_24_API_VERSION")]
if DEBUG:
    MACROS.append(("FASTVPC_DEBUG_BUILD", "1"))


def _source(name: str, suffix: str) -> Path:
    return SRC.joinpath(*name.split(".")).with_suffix(suffix)


def _dotted(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts)


def _present(names: list[str], suffix: str) -> list[str]:
    """The listed modules to build: all of them, less pending ones not there yet."""
    missing = [n for n in names if not _source(n, suffix).exists() and n not in PENDING]
    if missing:
        raise SystemExit(f"setup.py lists modules whose source is missing: {', '.join(missing)}")
    return [n for n in names if _source(n, suffix).exists()]


def _check_unlisted() -> None:
    """Fail on a compiled source nobody listed (a .pyx, or a .cpp defining a pybind11 module)."""
    found = {_dotted(p) for p in SRC.rglob("*.pyx")}
    found |= {_dotted(p) for p in SRC.rglob("_*.cpp") if "PYBIND11_MODULE" in p.read_text()}
    unlisted = sorted(found - set(CYTHON_MODULES) - set(PYBIND_MODULES))
    if unlisted:
        raise SystemExit(f"compiled sources not listed in setup.py: {', '.join(unlisted)} "
                         "(add them to CYTHON_MODULES / PYBIND_MODULES, or delete them)")


def cython_extensions() -> list[Extension]:
    exts = [Extension(
        name,
        [str(_source(name, ".pyx").relative_to(ROOT))],
        include_dirs=[np.get_include(), str(SRC / "fastvpc" / "_kernels")],
        define_macros=list(MACROS),
        extra_compile_args=OPT_FLAGS + OMP_FLAGS + ["-fno-strict-aliasing"] + MODULE_FLAGS.get(name, []),
        extra_link_args=OMP_FLAGS + STRIP_FLAGS,
    ) for name in _present(CYTHON_MODULES, ".pyx")]
    return cythonize(exts, compiler_directives=DIRECTIVES, build_dir=f"{BUILD_BASE}/cython",
                     include_path=[str(SRC)], nthreads=JOBS if JOBS > 1 else 0)


def pybind_extensions() -> list[Extension]:
    return [Pybind11Extension(
        name,
        [str(_source(name, ".cpp").relative_to(ROOT))],
        include_dirs=[np.get_include()],
        define_macros=list(MACROS),
        cxx_std=17,
        extra_compile_args=OPT_FLAGS,
        extra_link_args=STRIP_FLAGS,
    ) for name in _present(PYBIND_MODULES, ".cpp")]


_check_unlisted()
setup(
    ext_modules=cython_extensions() + pybind_extensions(),
    # build_ext --parallel: compile the extensions JOBS at a time (pip install . included)
    options={"build": {"build_base": BUILD_BASE}, "build_ext": {"parallel": JOBS}},
)
