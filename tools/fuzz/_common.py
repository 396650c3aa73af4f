"""Shared plumbing of the atheris fuzz targets in tools/fuzz (see README.md there).

Every target is a script ``fuzz_<name>.py`` that defines ``one_input(data: bytes)`` and calls
:func:`main`.  ``one_input`` raises :class:`Finding` (or lets any unexpected exception out) when
the code under test misbehaves; atheris/libFuzzer then prints the traceback, writes the input to
``<artifact_prefix>crash-<sha1>`` and exits non-zero.  A memory error inside a compiled kernel is
caught by AddressSanitizer (when the sanitizer build is installed and the runtime preloaded), a
hang by libFuzzer's per-input ``-timeout``.

Known crashes that other branches are fixing (issue 15) would stop every campaign at its first
minute and hide anything new, so each known issue has a *probe* (a cheap, safe check of whether
the installed fastvpc still has the bug) and a *filter* the targets consult: with
``--known=auto`` (default) an issue whose probe says "still there" is skipped, one that is fixed is
fuzzed like everything else; ``--known=report`` skips nothing (every known bug is a finding again);
``--known=skip`` skips every known issue without probing.
"""

from __future__ import annotations

import os
import pickle
import re
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


class Finding(AssertionError):
    """The code under test misbehaved on this input (wrong answer, wrong exception type, ...)."""


# --------------------------------------------------------------------------- the sanitizer build

def sanitizer_state() -> str:
    """'asan' when the installed fastvpc's extensions are ASan-instrumented and an ASan runtime is
    loaded (atheris' asan_with_fuzzer.so or gcc's libasan), 'asan-not-loaded' when they are
    instrumented but Python was started without the preload (they would not import), 'none' for a
    release/debug build."""
    import importlib.util
    spec = importlib.util.find_spec("fastvpc._kernels.forward")
    if spec is None or spec.origin is None:
        return "none"
    try:
        so = Path(spec.origin).read_bytes()
    except OSError:
        return "none"
    if b"__asan_init" not in so:
        return "none"
    maps = Path("/proc/self/maps").read_text() if Path("/proc/self/maps").exists() else ""
    return "asan" if "libasan" in maps or "asan_with_fuzzer" in maps else "asan-not-loaded"


# --------------------------------------------------------------------------- known issues

class Known:
    """One known bug (issue 15): ``probe()`` says whether the installed fastvpc still has it."""

    def __init__(self, name: str, what: str, probe: Callable[[], bool]) -> None:
        self.name, self.what, self._probe = name, what, probe
        self.active = False

    def probe(self) -> bool:
        try:
            return bool(self._probe())
        except Exception as exc:  # a probe that cannot tell assumes the bug is there
            print(f"[known] probe {self.name} raised {type(exc).__name__}: {exc}; assuming active", flush=True)
            return True


def _probe_dataplane_unvalidated() -> bool:
    """Unpickling a Dataplane whose ingress table names a subnet far out of range is accepted."""
    import numpy as np

    import fastvpc as fv
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16")
    vpc.add_subnet("10.0.1.0/24").add_eni("10.0.1.10")
    dp = net.compile()
    red = dp.__reduce__()
    state = dict(red[1][0])
    from fastvpc.dataplane import _validate
    pe = np.frombuffer(bytes(state["port_eni"]), dtype=_validate.ARRAY_DTYPES["port_eni"]).copy()
    # the per-port ingress records' subnet index far out of range (what process() reads first)
    pe["subnet"][pe["subnet"] >= 0] = 1 << 26
    state["port_eni"] = pe
    try:
        red[0](state)
    except fv.FastVpcError:
        return False
    return True


def _probe_poptrie_unpickle() -> bool:
    """A RouteTables with a poptrie table is refused on unpickle (operator precedence bug)."""
    import numpy as np

    from fastvpc.lpm import RouteTables
    rng = np.random.default_rng(1)
    n = 300
    pre = (rng.integers(0, 1 << 32, n, dtype=np.uint64) & 0xFFFFFF00).astype(np.uint32)
    pre = np.unique(pre)
    # two tables: the bug shows on a table whose arrays do not start at offset 0
    rt = RouteTables.from_arrays(np.repeat(np.arange(2, dtype=np.int32), pre.size), np.tile(pre, 2),
                                 np.full(2 * pre.size, 24, np.uint8), np.arange(2 * pre.size, dtype=np.int32),
                                 structure="poptrie")
    if "poptrie" not in rt.table_kind(1):
        return False
    try:
        pickle.loads(pickle.dumps(rt))
    except Exception:
        return True
    return False


def _probe_yaml_aliases() -> bool:
    """YAML alias expansion is not bounded (billion laughs)."""
    import fastvpc.files as files
    try:
        files._yaml_module()
    except Exception:
        return False
    doc = "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n" \
          "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nschema_version: *c\n"
    try:
        files.loads(doc, "yaml")
    except files.TopologyFileError as exc:
        return "alias" not in str(exc).lower()
    except Exception:
        return True
    return True


def _probe_yaml_tag_values() -> bool:
    """A YAML value with an explicit tag it does not fit (``!!float s``) raises a bare ValueError from
    PyYAML's constructor out of loads (found by fuzz_files, FINDINGS.md F1)."""
    import fastvpc.files as files
    try:
        files._yaml_module()
    except Exception:
        return False
    try:
        files.loads("fastvpc: !!float s\nvpcs: []\n", "yaml")
    except files.TopologyFileError:
        return False
    except ValueError:
        return True
    return False


def _probe_surrogates() -> bool:
    """A name with a lone surrogate is accepted by loads (save/dumps then fail)."""
    import fastvpc as fv
    import fastvpc.files as files
    net = fv.Network()
    net.add_vpc("10.0.0.0/16", name="v")
    text = files.dumps(net).replace('"v"', '"\\ud800"', 1)
    try:
        files.loads(text)
    except fv.TopologyError:
        return False
    return True


def _probe_big_ints() -> bool:
    """A 5,000-digit integer in a topology file raises a bare ValueError."""
    import fastvpc.files as files
    try:
        files.loads('{"schema_version": 1' + "0" * 5000 + "}")
    except files.TopologyFileError:
        return False
    except ValueError:
        return True
    return False


def _probe_lpm_load() -> bool:
    """LpmTable.load on a damaged .npz raises something other than LpmError."""
    import fastvpc.lpm as lpm
    from fastvpc.errors import LpmError
    t = lpm.LpmTable.from_cidrs([("10.0.0.0/8", 1)])
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "t.npz"
        t.save(p)
        p.write_bytes(p.read_bytes()[:40])
        try:
            lpm.LpmTable.load(p)
        except LpmError:
            return False
        except Exception:
            return True
    return False


def _probe_lpm_host_bits() -> bool:
    """A packed table whose stored route has host bits set is accepted by from_packed."""
    import numpy as np

    import fastvpc.lpm as lpm
    from fastvpc.errors import LpmError
    t = lpm.LpmTable.from_cidrs([("10.0.0.0/8", 1)])
    a = {k: np.array(v) for k, v in t.arrays().items()}
    ro = int(a["meta"][0, 3])
    pfx = a["data"][ro:ro + 4].view(np.uint32)
    if int(pfx[0]) != 0x0A000000:
        return False  # layout changed: cannot tell; assume fixed
    pfx[0] |= 1
    try:
        lpm.LpmTable.from_packed(a["header"], a["meta"], a["data"])
    except LpmError:
        return False
    return True


def _probe_lpm_route_count() -> bool:
    """A packed table whose route count is edited to ~2^61 is not refused with LpmError: the size
    check ``4 * n + ...`` wraps around in int64 (found by fuzz_pickle, FINDINGS.md P1)."""
    import numpy as np

    import fastvpc.lpm as lpm
    from fastvpc.errors import LpmError
    rng = np.random.default_rng(3)
    pfx = np.unique(rng.integers(0, 1 << 24, 400, dtype=np.uint64).astype(np.uint32) << np.uint32(8))
    t = lpm.LpmTable.from_arrays(pfx, np.full(pfx.size, 24, np.uint8), np.arange(pfx.size, dtype=np.uint32),
                                 structure="poptrie")
    a = {k: np.array(v) for k, v in t.arrays().items()}
    a["meta"][0, 2] += np.int64(0x1817161400000000)
    try:
        lpm.LpmTable.from_packed(a["header"], a["meta"], a["data"])
    except LpmError:
        return False
    except Exception:
        return True
    return True


def _probe_lpm_lengths() -> bool:
    """A packed table whose stored route lengths say /128 is accepted (FINDINGS.md P2)."""
    import numpy as np

    import fastvpc.lpm as lpm
    from fastvpc.errors import LpmError
    t = lpm.LpmTable.from_cidrs([("10.0.0.0/8", 1), ("10.1.0.0/16", 2)])
    a = {k: np.array(v) for k, v in t.arrays().items()}
    n, ro, nd = (int(x) for x in a["meta"][0, 2:5])
    from fastvpc.lpm._packed import _route_layout
    *_, lens, _ = _route_layout(n, nd)
    if lens < 0:
        return False
    a["data"][ro + lens + n - 1] = 128
    try:
        lpm.LpmTable.from_packed(a["header"], a["meta"], a["data"])
    except LpmError:
        return False
    return True


KNOWN: dict[str, Known] = {k.name: k for k in [
    Known("dataplane-unvalidated", "Dataplane unpickling checks no index: process() reads out of bounds or hangs",
          _probe_dataplane_unvalidated),
    Known("poptrie-unpickle", "valid poptrie tables are refused on unpickle ('arrays out of order')",
          _probe_poptrie_unpickle),
    Known("yaml-aliases", "YAML alias expansion unbounded (billion laughs: minutes, MemoryError)", _probe_yaml_aliases),
    Known("yaml-tag-values", "NEW (fuzz F1): '!!float s', '!!int x', '!!timestamp 2020-99-99' in YAML raise a bare "
          "ValueError from PyYAML out of loads", _probe_yaml_tag_values),
    Known("surrogates", "lone surrogates in names accepted by load; dumps/save then crash", _probe_surrogates),
    Known("big-ints", "5,000-digit integers in topology files raise bare ValueError", _probe_big_ints),
    Known("lpm-host-bits", "a stored route with host bits is accepted on load (refused later, by covered())",
          _probe_lpm_host_bits),
    Known("lpm-route-count", "NEW (fuzz P1): a route count near 2^61 wraps _check_packed's size check -> "
          "bare IndexError", _probe_lpm_route_count),
    Known("lpm-lengths", "NEW (fuzz P2): stored route lengths are not checked on load (a /128 route loads)",
          _probe_lpm_lengths),
    Known("lpm-load-errors", "LpmTable/RouteTables.load raise EOFError/BadZipFile/KeyError/... not LpmError",
          _probe_lpm_load),
]}


def known(name: str) -> bool:
    """Whether known issue ``name`` is to be skipped in this run."""
    return KNOWN[name].active


def _setup_known(mode: str, names: list[str]) -> None:
    for name in names:
        k = KNOWN[name]
        if mode == "report":
            k.active = False
        elif mode == "skip":
            k.active = True
        else:
            k.active = k.probe()
        print(f"[known] {name}: {'SKIPPED (still present)' if k.active else 'fuzzed'} - {k.what}", flush=True)


# --------------------------------------------------------------------------- findings, once each

def signature(exc: BaseException) -> str:
    """What makes two findings the same: the exception type, its message with numbers blanked, and
    the innermost fastvpc frame it came from."""
    where = ""
    for fr in traceback.extract_tb(exc.__traceback__):
        if "/fastvpc/" in fr.filename:
            where = f"{Path(fr.filename).name}:{fr.name}"
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, Finding) and cause is not None:
        for fr in traceback.extract_tb(cause.__traceback__):
            if "/fastvpc/" in fr.filename:
                where = f"{Path(fr.filename).name}:{fr.name}"
    msg = re.sub(r"0x[0-9a-f]+|\d+", "N", str(exc).splitlines()[0] if str(exc) else "")
    msg = re.sub(r"'[^']*'|\"[^\"]*\"", "S", msg)
    return f"{type(exc).__name__}: {msg[:140]} @ {where}"


def finding(msg: str, exc: BaseException | None = None) -> Finding:
    """A Finding whose message carries the innermost lines of ``exc``'s traceback (libFuzzer's
    report shows only the last exception of a chain)."""
    if exc is not None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])
        msg = f"{msg}\n  caused by:\n{tb}"
    return Finding(msg)


def _once(one_input: Callable[[bytes], None]) -> Callable[[bytes], None]:
    """Wrap a target so that each distinct finding (by :func:`signature`) stops the run only the
    first time: with ``FASTVPC_FUZZ_SEEN=<file>`` (run_all.sh -k sets it) signatures already in the
    file are counted and the campaign goes on, so one frequent bug does not hide the next."""
    seen_path = os.environ.get("FASTVPC_FUZZ_SEEN")
    seen: set[str] = set()
    if seen_path and Path(seen_path).exists():
        seen = set(Path(seen_path).read_text().splitlines())
    dups: dict[str, int] = {}

    def wrapped(data: bytes) -> None:
        try:
            one_input(data)
        except Exception as exc:
            sig = signature(exc)
            if sig in seen:
                dups[sig] = dups.get(sig, 0) + 1
                if dups[sig] in (1, 10, 100, 1000):
                    print(f"[dup x{dups[sig]}] {sig}", file=sys.stderr, flush=True)
                return
            if seen_path:
                with open(seen_path, "a") as fh:
                    fh.write(sig + "\n")
            # save the input and exit here: atheris' own exception path sometimes dies of libFuzzer's
            # SIGALRM watchdog before it writes the crash file
            import hashlib
            art = Path(f"{ARTIFACT_PREFIX[0]}finding-{hashlib.sha1(data).hexdigest()}")
            try:
                art.write_bytes(data)
            except OSError:
                art = Path("(not saved)")
            traceback.print_exc()
            print(f"[finding] {sig}\n[finding] input saved as {art}", file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(77)
    return wrapped


ARTIFACT_PREFIX = ["./"]


# --------------------------------------------------------------------------- driver

def main(one_input: Callable[[bytes], None], known_issues: list[str], *,
         instrument: tuple[str, ...] = ("fastvpc",)) -> None:
    """Parse our options (``--known=auto|skip|report``, ``--replay FILE...``), then hand the rest of
    ``argv`` to libFuzzer (corpus directories, ``-max_total_time``, ``-timeout``, ...)."""
    argv = list(sys.argv)
    mode = "auto"
    replay: list[str] | None = None
    rest = [argv[0]]
    i = 1
    while i < len(argv):
        a = argv[i]
        if a.startswith("--known="):
            mode = a.split("=", 1)[1]
        elif a == "--replay":
            replay = argv[i + 1:]
            break
        else:
            rest.append(a)
        i += 1
    if mode not in ("auto", "skip", "report"):
        sys.exit(f"--known must be auto, skip or report, not {mode!r}")
    state = sanitizer_state()
    print(f"[fuzz] sanitizer build: {state}", flush=True)
    if os.environ.get("FASTVPC_FUZZ_REQUIRE_ASAN") and state != "asan":
        sys.exit("FASTVPC_FUZZ_REQUIRE_ASAN is set but the installed fastvpc is not the ASan build "
                 "(or libasan is not preloaded); see tools/fuzz/README.md")
    _setup_known(mode, known_issues)
    if replay is not None:  # run given inputs once, without libFuzzer (reproducing a crash file)
        for name in replay:
            print(f"[fuzz] replaying {name}", flush=True)
            one_input(Path(name).read_bytes())
        print("[fuzz] replay finished without a finding", flush=True)
        return
    for a in rest:
        if a.startswith("-artifact_prefix="):
            ARTIFACT_PREFIX[0] = a.split("=", 1)[1]
    import atheris
    atheris.Setup(rest, _once(one_input))
    atheris.Fuzz()


def instrumented_import() -> Any:
    """Import fastvpc with atheris' Python coverage instrumentation (the compiled kernels get none:
    gcc has no libFuzzer coverage; their bugs are caught by ASan/UBSan, not steered to)."""
    import numpy  # noqa: F401  (not instrumented: too big, not ours)
    try:
        import atheris
    except ImportError:
        atheris = None
    if atheris is None or "--replay" in sys.argv or os.environ.get("FASTVPC_FUZZ_NO_INSTRUMENT"):
        import fastvpc
        return fastvpc
    # lpm._packed is not instrumented: its checks are whole-array numpy comparisons (little for coverage
    # to steer by), and atheris' comparison hook keeps a reference to the result of every instrumented
    # ndarray comparison: the poptrie check alone held ~1 MB per input, and the pickle target reached
    # libFuzzer's 3 GB RSS limit after ~4,000 inputs (tracemalloc: the arrays of _check_poptrie)
    with atheris.instrument_imports(include=["fastvpc"], exclude=["fastvpc.lpm._packed"]):
        import fastvpc
        import fastvpc.aws.importer  # noqa: F401
        import fastvpc.compiler  # noqa: F401
        import fastvpc.dataplane  # noqa: F401
        import fastvpc.files  # noqa: F401
        import fastvpc.lpm  # noqa: F401
        import fastvpc.pcap  # noqa: F401
        import fastvpc.reference  # noqa: F401
    return fastvpc
