"""Run mypy.stubtest on every compiled module of the installed fastvpc (each has a .pyi)."""
import pathlib
import subprocess
import sys

import fastvpc

root = pathlib.Path(fastvpc.__file__).parent
mods = sorted(
    "fastvpc." + ".".join(so.relative_to(root).parent.parts + (so.name.split(".")[0],))
    for so in root.rglob("*.so")
)
mods = [m.replace("..", ".") for m in mods]
print("stubtest:", " ".join(mods))
allow = pathlib.Path(__file__).with_name("stubtest-allowlist.txt")
cmd = [sys.executable, "-m", "mypy.stubtest", *mods]
if allow.exists():
    cmd += ["--allowlist", str(allow), "--ignore-unused-allowlist"]
sys.exit(subprocess.call(cmd))
