"""Fuzz target ``aws``: ``fastvpc.from_aws`` on a folder of ``aws ec2 describe-*`` JSON files.

Input: a folder serialisation (see :func:`unpack`): entries ``\\n@@ <relative path>\\n<content>``,
the first entry's header may be omitted (then it is ``Vpcs.json``).  Paths are cleaned (only
``[A-Za-z0-9_.-]`` per part, at most 4 parts, no ``..``), so the fuzzer reaches every layout the
importer knows (region folders, ``accounts/<id>/<region>/``, ``aws_configs/``).  Only regular
files are created.  Allowed: a ``Network`` / ``AwsImport`` or ``TopologyFileError`` /
``TopologyError``.  A network that imports must compile, round-trip through the topology file
format (``dumps`` / ``loads``, equal), and importing twice must give equal networks and reports
(the import is deterministic).  Anything else is a finding.

    python tools/fuzz/fuzz_aws.py [libFuzzer options] [corpus dirs]
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Finding, instrumented_import, known, main  # noqa: E402

fv = instrumented_import()

from fastvpc import files  # noqa: E402
from fastvpc.errors import TopologyError  # noqa: E402

TMP = Path(tempfile.mkdtemp(prefix="fastvpc-fuzz-aws-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
SEP = b"\n@@ "
_PART = re.compile(r"[^A-Za-z0-9_.-]")
KNOWN = ["surrogates", "big-ints"]


def unpack(data: bytes) -> list[tuple[str, bytes]]:
    """The (path, content) entries of a serialised folder."""
    out: list[tuple[str, bytes]] = []
    chunks = data.split(SEP)
    for k, chunk in enumerate(chunks):
        if k == 0:
            name, content = "Vpcs.json", chunk
            if not chunk.strip():
                continue
        else:
            head, _, content = chunk.partition(b"\n")
            name = head.decode("latin-1")
        parts = [_PART.sub("_", p)[:40] for p in name.split("/") if p not in ("", ".", "..")][:4]
        if parts:
            out.append(("/".join(parts), content))
    return out


def pack(entries: list[tuple[str, bytes]]) -> bytes:
    """The inverse of :func:`unpack` (used by make_corpus.py)."""
    return b"".join(SEP + name.encode() + b"\n" + content for name, content in entries)


def build(data: bytes) -> Path:
    root = TMP / "snap"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    for name, content in unpack(data)[:64]:
        p = root / name
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            if p.is_dir():
                continue
            p.write_bytes(content)
        except (NotADirectoryError, FileExistsError, IsADirectoryError):
            continue  # a path under a file: the folder cannot hold both
    return root


def one_input(data: bytes) -> None:
    root = build(data)
    try:
        imp = fv.aws.import_aws(root)
    except TopologyError:
        return
    except ValueError as exc:
        if type(exc) is ValueError and "digits" in str(exc) and known("big-ints"):
            return
        raise
    net = imp.network
    net.compile()
    try:
        text = files.dumps(net)
    except UnicodeEncodeError:
        if known("surrogates"):
            return
        raise
    if files.loads(text) != net:
        raise Finding(f"an imported network does not round-trip through the file format:\n{text[:2000]}")
    again = fv.from_aws(root, report=True)
    if again.network != net or [str(e) for e in again.report] != [str(e) for e in imp.report]:
        raise Finding("importing the same folder twice gives different networks or reports")


if __name__ == "__main__":
    main(one_input, KNOWN)
