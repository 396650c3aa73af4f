"""Fuzz target ``pickle``: ``LpmTable`` / ``RouteTables`` / ``Dataplane`` unpickling and ``.load``.

Input: a mode byte, then the rest.  Modes (``mode % 4``):

0. **structured**: the rest picks one of the base objects built below (small and big B-tree
   ``LpmTable``, poptrie ``LpmTable``, mixed ``RouteTables``, compiled ``Dataplane``\\s, a
   ``Dataplane`` whose route tables are re-packed as poptries) and a list of edits to the
   arrays of its pickled state (set an aligned 1/2/4/8-byte word to an interesting or given
   value, flip a byte, truncate an array); the edited state is rebuilt the way ``pickle.loads``
   would.  Only a :class:`fastvpc.FastVpcError` may come out.
1. **raw pickle**: the rest is a pickle, loaded with an unpickler that only resolves ``fastvpc``,
   ``numpy`` and a few harmless builtins (a fuzzer must not be able to call ``os.system``).  An
   exception raised by the pickle machinery itself is the pickle's fault and fine; one raised
   inside fastvpc must be a ``FastVpcError``.
2. **npz**: the rest is written as ``t.npz`` and read with ``LpmTable.load`` and
   ``RouteTables.load``: only ``LpmError`` (a ``FastVpcError``) may come out.
3. **edited npz**: a base table saved, its bytes edited as in mode 0, then loaded.

Whatever loads is then used: lookups of random and edge addresses on every table (checked
against the table's own ``routes()`` by a plain longest-prefix match), ``covering``; a
``Dataplane`` processes a batch of frames aimed at its ENIs and routers.  A crash (ASan), a hang
(``-timeout``) or an untyped exception is a finding; so is a lookup that disagrees with the
routes of an unedited table.  An *edited* table that loads and answers differently from its own
route list is only counted (``[silent]`` lines on stderr; fatal with
``FASTVPC_FUZZ_STRICT_LOOKUP=1``): ``from_packed`` checks bounds, not meaning (FINDINGS.md).

Known issues (skipped while present; ``--known=report`` to see them): ``dataplane-unvalidated``
(a ``Dataplane`` whose own arrays were edited is not asked to ``process``),
``poptrie-unpickle`` (``LpmError ... out of order`` ignored), ``lpm-load-errors`` (bare
exceptions from ``.load`` ignored), ``lpm-host-bits`` (a loaded route with host bits refused
later by ``covering``: ignored).

    python tools/fuzz/fuzz_pickle.py [libFuzzer options] [corpus dirs]
"""

from __future__ import annotations

import io
import os
import pickle
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Finding, finding, instrumented_import, known, main  # noqa: E402

fv = instrumented_import()

import numpy as np  # noqa: E402

from fastvpc.dataplane import Dataplane  # noqa: E402
from fastvpc.dataplane import _validate as _VALIDATE  # noqa: E402
from fastvpc.errors import FastVpcError  # noqa: E402
from fastvpc.lpm import LpmTable, RouteTables  # noqa: E402

KNOWN = ["dataplane-unvalidated", "poptrie-unpickle", "lpm-load-errors", "lpm-host-bits", "lpm-route-count",
         "lpm-lengths"]
TMP = Path(tempfile.mkdtemp(prefix="fastvpc-fuzz-pickle-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
SRC = str(Path(fv.__file__).resolve().parent)

_rng = np.random.default_rng(7)


def _random_routes(n: int, n_tables: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ln = _rng.integers(0, 33, n).astype(np.uint8)
    pfx = _rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    mask = np.where(ln == 0, 0, (0xFFFFFFFF << (32 - ln.astype(np.uint64))) & 0xFFFFFFFF).astype(np.uint32)
    pfx &= mask
    tid = _rng.integers(0, n_tables, n).astype(np.uint32)
    key = np.unique(np.stack([tid, pfx, ln.astype(np.uint32)], 1), axis=0)
    return key[:, 0], key[:, 1], key[:, 2].astype(np.uint8), np.arange(key.shape[0], dtype=np.uint32)


def _bases() -> list[Any]:
    out: list[Any] = []
    t, p, ln, v = _random_routes(40)
    out.append(LpmTable.from_arrays(p, ln, v))
    t, p, ln, v = _random_routes(3000)
    out.append(LpmTable.from_arrays(p, ln, v))
    t, p, ln, v = _random_routes(300)
    out.append(LpmTable.from_arrays(p, ln, v, structure="poptrie"))
    t, p, ln, v = _random_routes(400, 4)
    out.append(RouteTables.from_arrays(t, p, ln, v, n_tables=5))
    t, p, ln, v = _random_routes(400, 3)
    rt = RouteTables.from_arrays(t, p, ln, v, n_tables=3, structure="poptrie")
    out.append(rt)
    seed = fv.examples.seed_vpc()
    out.append(seed.compile())
    out.append(seed.compile(arp_mode="single_mac"))
    # a Dataplane whose route tables are poptries (same routes, so the snapshot is valid)
    dp = seed.compile()
    red = dp.__reduce__()
    state = dict(red[1][0])
    lpm = state["lpm"]
    rows = [(tid, *lpm.routes(tid)) for tid in range(len(lpm))]
    tid = np.concatenate([np.full(r[1].size, r[0], np.uint32) for r in rows])
    state["lpm"] = RouteTables.from_arrays(tid, np.concatenate([r[1] for r in rows]),
                                           np.concatenate([r[2] for r in rows]),
                                           np.concatenate([r[3] for r in rows]), n_tables=len(lpm),
                                           structure="poptrie")
    out.append(state)  # rebuilt per input (a state dict, see _rebuild_dp)
    return out


BASES = _bases()


def _check_bases() -> None:
    """Every unedited base object must survive a pickle round trip (a valid snapshot refused is a
    finding too: it cannot be sent to a worker process)."""
    from _common import KNOWN as _K
    if "poptrie-unpickle" in _K and not _K["poptrie-unpickle"].active:
        _K["poptrie-unpickle"].active = _K["poptrie-unpickle"].probe()  # main() has not run yet
    for b in BASES:
        if isinstance(b, dict):
            fn, arrays, other = _state_of(b)
            try:
                _rebuild(fn, arrays, other)
            except FastVpcError as exc:
                if not _poptrie_known(exc):
                    raise finding("an unedited Dataplane state with poptrie tables is refused", exc) from exc
            continue
        try:
            pickle.loads(pickle.dumps(b))
        except FastVpcError as exc:
            if not _poptrie_known(exc):
                raise finding(f"an unedited {b!r} does not survive pickling", exc) from exc
# every record array a Dataplane pickle stores (as raw bytes), filters and edge included: an array left
# out stays bytes in the state, and the digest re-made over it no longer matches what __reduce__ wrote
_DP_ARRAYS = tuple(_VALIDATE.ARRAY_DTYPES)
INTERESTING = (0, 1, 2, 3, 7, 8, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 31,
               (1 << 63) - 1, 1 << 63, (1 << 64) - 1)


def _state_of(obj: Any) -> tuple[Any, dict[str, np.ndarray], dict[str, Any]]:
    """(rebuild function, arrays by name, other state) of a base object."""
    if isinstance(obj, dict):
        from fastvpc.dataplane import _rebuild
        from fastvpc.dataplane._validate import ARRAY_DTYPES
        st = dict(obj)
        st.pop("digest", None)  # re-made by _rebuild after the edits (see there)
        # __reduce__ stores the record arrays as raw bytes of a known record dtype
        arrays = {k: (np.frombuffer(bytes(v), dtype=ARRAY_DTYPES[k]).copy() if isinstance(v, (bytes, bytearray))
                      else np.array(v)) for k, v in ((k, st.pop(k)) for k in _DP_ARRAYS)}
        lp = st.pop("lpm").arrays()
        arrays.update({f"lpm.{k}": np.array(v) for k, v in lp.items()})
        return _rebuild, arrays, st
    if isinstance(obj, Dataplane):
        return _state_of(dict(obj.__reduce__()[1][0]))
    # the packed arrays an LPM pickle holds (as raw bytes since the issue-15 fixes), rebuilt through the
    # same checked constructor the unpickler calls
    a = obj.arrays()
    return type(obj).from_packed, {"header": np.array(a["header"]), "meta": np.array(a["meta"]),
                                   "data": np.array(a["data"])}, {}


def _rebuild(fn: Any, arrays: dict[str, np.ndarray], other: dict[str, Any]) -> Any:
    if other:  # a Dataplane
        st = dict(other)
        st.update({k: v for k, v in arrays.items() if not k.startswith("lpm.")})
        st["lpm"] = RouteTables.from_packed(arrays["lpm.header"], arrays["lpm.meta"], arrays["lpm.data"])
        # a fresh digest over the edited state: otherwise every edit is refused by the digest alone
        # and the structural checks (what keeps the kernel inside its arrays) would never be fuzzed
        from fastvpc.dataplane._validate import digest
        st["digest"] = digest(st)
        return fn(st)
    return fn(arrays["header"], arrays["meta"], arrays["data"])


def _edit(d: Any, arrays: dict[str, np.ndarray]) -> set[str]:
    """Apply fuzzer-chosen edits; returns the names of the arrays changed."""
    names = sorted(arrays)
    changed: set[str] = set()
    for _ in range(d.ConsumeIntInRange(1, 6)):
        name = names[d.ConsumeIntInRange(0, len(names) - 1)]
        a = arrays[name]
        raw = a.reshape(-1).view(np.uint8) if a.size else np.zeros(0, np.uint8)
        how = d.ConsumeIntInRange(0, 9)
        if how == 9 and a.ndim >= 1 and a.shape[0]:  # truncate (or drop the last rows)
            arrays[name] = a[:d.ConsumeIntInRange(0, a.shape[0] - 1)].copy()
            changed.add(name)
            continue
        if raw.size == 0:
            continue
        raw = raw.copy()
        w = (1, 2, 4, 8)[d.ConsumeIntInRange(0, 3)]
        if raw.size < w:
            w = 1
        at = d.ConsumeIntInRange(0, raw.size // w - 1) * w
        if how < 4:
            val = INTERESTING[d.ConsumeIntInRange(0, len(INTERESTING) - 1)]
        elif how < 6:  # small deltas of the current value (off-by-one indices)
            cur = int.from_bytes(raw[at:at + w].tobytes(), "little")
            val = cur + d.ConsumeIntInRange(-3, 3)
        elif how < 8:
            val = d.ConsumeIntInRange(0, (1 << (8 * w)) - 1)
        else:
            raw[at] ^= 1 << d.ConsumeIntInRange(0, 7)
            val = None
        if val is not None:
            raw[at:at + w] = np.frombuffer((val % (1 << (8 * w))).to_bytes(w, "little"), np.uint8)
        arrays[name] = raw.view(a.dtype).reshape(a.shape) if a.dtype.itemsize and raw.size % a.dtype.itemsize == 0 \
            else raw
        changed.add(name)
    return changed


# --------------------------------------------------------------------------- using what loaded

def _lpm_ref(pfx: np.ndarray, ln: np.ndarray, val: np.ndarray, addrs: np.ndarray) -> np.ndarray:
    """Longest-prefix match by brute force; -1 (as uint32 0xFFFFFFFF-agnostic) for a miss."""
    out = np.full(addrs.size, -1, np.int64)
    best = np.full(addrs.size, -1, np.int64)
    for p, m, v in zip(pfx.tolist(), ln.tolist(), val.tolist()):
        mask = 0 if m == 0 else (0xFFFFFFFF << (32 - m)) & 0xFFFFFFFF
        hit = ((addrs & mask) == p) & (m > best)
        out[hit] = v
        best[hit] = m
    return out


def _addrs(tables: Any, d: Any) -> np.ndarray:
    extra = [0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0x0A000001]
    for tid in range(min(len(tables), 4)):
        p, ln, _ = tables.routes(tid)
        for k in range(0, p.size, max(1, p.size // 8)):
            extra += [int(p[k]), int(p[k]) | ((1 << (32 - int(ln[k]))) - 1 if ln[k] < 32 else 0)]
    rnd = np.frombuffer(d.ConsumeBytes(64).ljust(64, b"\0"), np.uint32)
    return np.concatenate([np.array(extra, np.uint64) & 0xFFFFFFFF, rnd.astype(np.uint64)]).astype(np.uint32)


STRICT = bool(os.environ.get("FASTVPC_FUZZ_STRICT_LOOKUP"))
SILENT = {"n": 0}


def _silent(msg: str) -> None:
    """An edited lookup structure that loads and answers differently from its own route list:
    from_packed checks bounds, not meaning, so this is expected (FINDINGS.md); counted, the first
    few printed, fatal only with FASTVPC_FUZZ_STRICT_LOOKUP=1."""
    SILENT["n"] += 1
    if SILENT["n"] <= 3 or SILENT["n"] % 1000 == 0:
        print(f"[silent] {SILENT['n']} edited tables answered differently from their routes(); e.g. {msg}",
              file=sys.stderr, flush=True)


def use_tables(obj: Any, d: Any, edited: bool = True) -> None:
    tables = obj.route_tables if isinstance(obj, LpmTable) else obj
    addrs = _addrs(tables, d)
    for tid in range(min(len(tables), 6)):
        p, ln, v = tables.routes(tid)
        if ln.size and int(ln.max()) > 32:
            if known("lpm-lengths"):
                return
            raise Finding(f"table {tid} loaded with a route of length /{int(ln.max())} (> 32)")
        if p.size > 600:
            p, ln, v = p[:0], ln[:0], v[:0]  # brute force too slow: lookups only, no check
            check = False
        else:
            check = True
        got = tables.lookup(np.full(addrs.size, tid, np.uint32), addrs, n_threads=1)
        if check:
            want = _lpm_ref(p.astype(np.int64), ln.astype(np.int64), v.astype(np.int64), addrs.astype(np.int64))
            miss = np.int64(np.asarray(got).dtype.type(-1)) if np.asarray(got).dtype.kind == "i" else \
                np.int64(np.iinfo(np.asarray(got).dtype).max)
            g = np.asarray(got).astype(np.int64)
            g[g == miss] = -1
            if not np.array_equal(g, want):
                i = int(np.flatnonzero(g != want)[0])
                msg = f"table {tid}: lookup({addrs[i]:#x}) = {g[i]}, its routes() say {want[i]}"
                if edited and not STRICT:
                    _silent(msg)
                else:
                    raise Finding(msg)
        if p.size:
            try:
                tables.covering(tid, f"{int(p[0]) >> 24 & 255}.{int(p[0]) >> 16 & 255}.{int(p[0]) >> 8 & 255}."
                                     f"{int(p[0]) & 255}/{int(ln[0])}")
            except FastVpcError as exc:
                if not (known("lpm-host-bits") and "host bits" in str(exc)):
                    raise
    if isinstance(obj, LpmTable):
        obj.lookup(addrs, n_threads=1)


def use_dataplane(dp: Dataplane, d: Any, edited: bool = True) -> None:
    use_tables(dp.lpm, d, edited)
    frames = []
    ports = []
    enis = np.asarray(dp.enis)
    subnets = np.asarray(dp.subnets)
    for k in range(min(len(enis), 8)):
        e = enis[k]
        dst = int(subnets[k % len(subnets)]["router"]) if len(subnets) else 0
        for dst_ip in (int(enis[(k + 1) % len(enis)]["ip"]), dst, 0x08080808):
            ip = bytearray(b"\x45\x00\x00\x1c\x00\x00\x00\x00\x40\x01\x00\x00" + int(e["ip"]).to_bytes(4, "big")
                           + dst_ip.to_bytes(4, "big") + b"\x08\x00\xf7\xff\x00\x00\x00\x00")
            gw = int(subnets[int(e["subnet"]) % max(1, len(subnets))]["base"]) if len(subnets) else 0
            frames.append(b"\x02\x00\x00\x00\x00\x01" + int(e["mac"]).to_bytes(8, "big")[2:] + b"\x08\x00"
                          + bytes(ip) + gw.to_bytes(4, "big"))
            ports.append(int(e["port"]))
        frames.append(b"\xff" * 6 + int(e["mac"]).to_bytes(8, "big")[2:] + b"\x08\x06\x00\x01\x08\x00\x06\x04\x00\x01"
                      + int(e["mac"]).to_bytes(8, "big")[2:] + int(e["ip"]).to_bytes(4, "big") + b"\0" * 6
                      + int(enis[(k + 1) % len(enis)]["ip"]).to_bytes(4, "big"))
        ports.append(int(e["port"]))
    frames.append(d.ConsumeBytes(80))
    ports.append(d.ConsumeIntInRange(-2, 1 << 20))
    batch = fv.FrameBatch.from_frames(frames, port=ports)
    res = dp.process(batch, copy=True, n_threads=1)
    if len(res.action) != len(frames):
        raise Finding("process() returned the wrong number of verdicts")


# --------------------------------------------------------------------------- the modes

_SAFE_GLOBALS = {("builtins", n) for n in ("tuple", "list", "dict", "set", "frozenset", "bytes", "bytearray",
                                            "str", "int", "float", "bool", "complex", "slice", "range")}
_SAFE_GLOBALS |= {("collections", "OrderedDict"), ("_codecs", "encode"), ("copyreg", "_reconstructor")}


class SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS or module.split(".")[0] in ("fastvpc", "numpy"):
            if module.split(".")[0] == "numpy" and name in ("load", "save", "fromfile", "memmap", "loadtxt",
                                                               "savez", "genfromtxt", "tofile"):
                raise pickle.UnpicklingError(f"refused {module}.{name}")
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused {module}.{name}")


def _raised_in_fastvpc(exc: BaseException) -> bool:
    return any(f.filename.startswith(SRC) for f in traceback.extract_tb(exc.__traceback__))


def _allowed(exc: BaseException) -> bool:
    if isinstance(exc, FastVpcError):
        return True
    return False


def _tables_known(exc: BaseException) -> bool:
    """The kernel's own Tables() checks raise a bare ValueError: part of the unvalidated Dataplane
    unpickling (known issue) while it is there."""
    return known("dataplane-unvalidated") and type(exc) is ValueError and str(exc).startswith("Tables:")


def _route_count_known(exc: BaseException) -> bool:
    """A bare IndexError/ValueError out of the packed-array check (P1) while that bug is there."""
    if not known("lpm-route-count") or type(exc) not in (IndexError, ValueError, OverflowError):
        return False
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(SRC)]
    return bool(frames) and frames[-1].name in ("_check_packed", "__init__", "_route_layout", "lengths", "values")


def _poptrie_known(exc: BaseException) -> bool:
    return known("poptrie-unpickle") and "out of order" in str(exc)


def _use(obj: Any, d: Any, arrays_changed: bool, edited: bool = True) -> None:
    """``arrays_changed``: a Dataplane's own arrays were edited; ``edited``: anything may have been."""
    if isinstance(obj, Dataplane):
        if arrays_changed and known("dataplane-unvalidated"):
            use_tables(obj.lpm, d, edited)
            return
        use_dataplane(obj, d, edited)
    elif isinstance(obj, (LpmTable, RouteTables)):
        use_tables(obj, d, edited)


CHECKED: list[bool] = []


def mode_structured(d: Any) -> None:
    base = BASES[d.ConsumeIntInRange(0, len(BASES) - 1)]
    fn, arrays, other = _state_of(base)
    orig = {k: v for k, v in arrays.items()}
    changed = _edit(d, arrays)
    changed = {k for k in changed if arrays[k].shape != orig[k].shape or
               not np.array_equal(arrays[k].reshape(-1).view(np.uint8), orig[k].reshape(-1).view(np.uint8))}
    try:
        obj = _rebuild(fn, arrays, other)
    except FastVpcError as exc:
        if not changed and not _poptrie_known(exc):
            raise finding("an unedited pickled state is refused", exc) from exc
        return
    except Exception as exc:
        if _poptrie_known(exc) or _tables_known(exc) or _route_count_known(exc):
            return
        raise finding(f"rebuilding a pickle whose {sorted(changed)} were edited raised {type(exc).__name__}: {exc}",
                      exc) from exc
    _use(obj, d, any(not k.startswith("lpm.") for k in changed) and bool(other))


def mode_raw(d: Any) -> None:
    blob = d.ConsumeBytes(d.remaining_bytes())
    try:
        obj = SafeUnpickler(io.BytesIO(blob)).load()
    except FastVpcError:
        return
    except RecursionError:
        return
    except Exception as exc:
        if _poptrie_known(exc) or not _raised_in_fastvpc(exc):
            return  # the pickle machinery's own complaint about a malformed pickle
        if _tables_known(exc) or _route_count_known(exc):
            return
        raise finding(f"unpickling raised {type(exc).__name__} inside fastvpc: {exc}", exc) from exc
    if isinstance(obj, Dataplane):
        ref = BASES[5] if obj.arp_mode == "target" else BASES[6]
        same = all(np.array_equal(np.asarray(getattr(obj, k)).view(np.uint8), np.asarray(getattr(ref, k)).view(np.uint8))
                   if np.asarray(getattr(obj, k)).nbytes == np.asarray(getattr(ref, k)).nbytes else False
                   for k in _DP_ARRAYS)
        _use(obj, d, not same)
    else:
        _use(obj, d, False)


def _load_npz(path: Path, d: Any) -> None:
    for cls in (LpmTable, RouteTables):
        try:
            obj = cls.load(path)
        except FastVpcError:
            continue
        except Exception as exc:
            if known("lpm-load-errors") or _poptrie_known(exc) or _route_count_known(exc):
                continue
            raise finding(f"{cls.__name__}.load raised {type(exc).__name__}: {exc}", exc) from exc
        _use(obj, d, False)


def mode_npz(d: Any) -> None:
    p = TMP / "t.npz"
    p.write_bytes(d.ConsumeBytes(d.remaining_bytes()))
    _load_npz(p, d)


def mode_npz_edited(d: Any) -> None:
    base = BASES[d.ConsumeIntInRange(0, 4)]
    p = TMP / "t.npz"
    base.save(p)
    raw = bytearray(p.read_bytes())
    for _ in range(d.ConsumeIntInRange(1, 8)):
        at = d.ConsumeIntInRange(0, len(raw) - 1)
        raw[at] = d.ConsumeIntInRange(0, 255)
    if d.ConsumeBool():
        raw = raw[:d.ConsumeIntInRange(0, len(raw))]
    p.write_bytes(bytes(raw))
    _load_npz(p, d)


def one_input(data: bytes) -> None:
    import atheris
    if not CHECKED:
        CHECKED.append(True)
        _check_bases()
    if not data:
        return
    d = atheris.FuzzedDataProvider(data[1:])
    (mode_structured, mode_raw, mode_npz, mode_npz_edited)[data[0] % 4](d)


if __name__ == "__main__":
    main(one_input, KNOWN)
