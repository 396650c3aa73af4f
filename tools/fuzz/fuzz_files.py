"""Fuzz target ``files``: topology files (``fastvpc.files.loads`` / ``load``).

Input: one selector byte, then the file's bytes.  The selector picks JSON or YAML and whether the
text goes through ``loads`` (decoded here, undecodable bytes passed as ``bytes``) or ``load``
(written to a temporary ``.json``/``.yaml``/extension-less file: format from the extension or
sniffed).  Allowed: a ``Network`` or ``TopologyFileError``/``TopologyError``.  A network that
loads must then compile, save (``dumps``) as JSON (and as YAML when it was YAML) and load back
equal (``==``) to itself.  Anything else (another exception, a crash, a hang past ``-timeout``) is a finding.

Known issues skipped while their probe says they are still there (``--known=report`` to see
them): ``yaml-aliases`` (inputs with both ``&`` and ``*`` are not parsed as YAML),
``big-ints`` (a bare ``ValueError`` about integer digits is let through), ``yaml-tag-values``
(a bare ``ValueError`` out of PyYAML's constructors is let through), ``surrogates`` (a
``UnicodeEncodeError`` when saving a network that loaded is let through).

    python tools/fuzz/fuzz_files.py [libFuzzer options] [corpus dirs]
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Finding, instrumented_import, known, main  # noqa: E402

fv = instrumented_import()

from fastvpc import files  # noqa: E402
from fastvpc.errors import TopologyError  # noqa: E402

TMP = Path(tempfile.mkdtemp(prefix="fastvpc-fuzz-files-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
KNOWN = ["yaml-aliases", "big-ints", "surrogates", "yaml-tag-values"]


def _is_big_int_error(exc: BaseException) -> bool:
    if type(exc) is ValueError and "digits" in str(exc) and known("big-ints"):
        return True
    # F1: a bad value under an explicit YAML tag, raised by PyYAML's own constructor
    return isinstance(exc, ValueError) and known("yaml-tag-values") and any(
        f.filename.endswith("yaml/constructor.py") for f in traceback.extract_tb(exc.__traceback__))


def round_trip(net: fv.Network, fmt_in: str) -> None:
    net.compile()
    for fmt in ("json", "yaml") if fmt_in == "yaml" else ("json",):  # pure-Python YAML is slow
        try:
            text = files.dumps(net, fmt)
        except UnicodeEncodeError:
            if known("surrogates"):
                return
            raise
        back = files.loads(text, fmt)
        if back != net:
            raise Finding(f"dumps({fmt}) then loads gives another network:\n{text[:2000]}")


def one_input(data: bytes) -> None:
    if not data:
        return
    sel, body = data[0], data[1:]
    fmt = "yaml" if sel & 1 else "json"
    if b"&" in body and b"*" in body and known("yaml-aliases") and (fmt == "yaml" or sel & 2):
        return
    try:
        if sel & 2:
            ext = ("", ".json", ".yaml", ".yml")[(sel >> 2) & 3]
            p = TMP / f"t{ext}"
            p.write_bytes(body)
            if b"&" in body and b"*" in body and known("yaml-aliases"):
                return  # the format may be sniffed as YAML
            net = files.load(p, fmt if sel & 16 else None)
        else:
            try:
                text: str | bytes = body.decode("utf-8")
            except UnicodeDecodeError:
                text = body
            net = files.loads(text, fmt)
    except TopologyError:
        return
    except ValueError as exc:
        if _is_big_int_error(exc):
            return
        raise
    try:
        round_trip(net, fmt)
    except ValueError as exc:
        if _is_big_int_error(exc):
            return
        raise


if __name__ == "__main__":
    main(one_input, KNOWN)
