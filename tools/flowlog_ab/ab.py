"""A/B: FlowLog.observe of a reference commit (old) vs the installed fastvpc (new) on the stateful flow-log
benchmark's traffic, in one run, alternating which goes first; the pass alone timed in the same rounds.

    mkdir tools/flowlog_ab/old && cd tools/flowlog_ab/old
    git show main:src/fastvpc/dataplane/_flowlogs.pyx > _flowlogs.pyx
    git show main:src/fastvpc/dataplane/flowlogs.py > flowlogs_old.py
    python ../setup_old.py            # builds old/_flowlogs*.so against this checkout's src/ headers
    cd ../../.. && python tools/flowlog_ab/ab.py 24
"""
import sys, time, types, importlib.util
import numpy as np
HERE = __import__("pathlib").Path(__file__).resolve().parent
OLD = HERE / "old"
exec(open(HERE / "workload.py").read().split("tp, to, grows")[0])
spec = importlib.util.spec_from_file_location("flold._flowlogs", str(next(OLD.glob("_flowlogs*.so"))))
oldk = importlib.util.module_from_spec(spec); spec.loader.exec_module(oldk)
pkg = types.ModuleType("flold"); pkg._flowlogs = oldk; sys.modules["flold"] = pkg; sys.modules["flold._flowlogs"] = oldk
src = open(OLD / "flowlogs_old.py").read().replace("from fastvpc.dataplane import _flowlogs as _fl", "from flold import _flowlogs as _fl")
oldm = types.ModuleType("flold.flowlogs"); oldm.__file__ = "flowlogs_old.py"; sys.modules["flold.flowlogs"] = oldm
exec(compile(src, "flowlogs_old.py", "exec"), oldm.__dict__)
OldLog = oldm.FlowLog
logs = {"old": OldLog(window=600), "new": FlowLog(window=600)}
T = {"pass": [], "old": [], "new": []}
C = {"pass": [], "old": [], "new": []}
R = int(sys.argv[1]) if len(sys.argv) > 1 else 20
for r in range(R):
    prep()
    t = time.perf_counter(); c = time.process_time()
    filt.dp.process(work, out=out, n_threads=1, state=flows, now=now[0])
    T["pass"].append(time.perf_counter() - t); C["pass"].append(time.process_time() - c)
    order = ("old", "new") if r % 2 == 0 else ("new", "old")
    for k in order:
        t = time.perf_counter(); c = time.process_time()
        logs[k].observe(filt.dp, work, out, now=now[0])
        T[k].append(time.perf_counter() - t); C[k].append(time.process_time() - c)
assert len(logs["old"]) == len(logs["new"]), (len(logs["old"]), len(logs["new"]))
assert logs["old"].text() == logs["new"].text() if R <= 6 else True
skip = 2
for name, D in (("wall", T), ("cpu", C)):
    m = {k: float(np.median(v[skip:])) for k, v in D.items()}
    print(f"{name}: pass {m['pass']*1e3:.1f} ms, observe old {m['old']*1e3:.1f} ms new {m['new']*1e3:.1f} ms; "
          f"ratio with/without log: old {m['pass']/(m['pass']+m['old']):.3f} new {m['pass']/(m['pass']+m['new']):.3f}; "
          f"observe new/old {m['new']/m['old']:.2f}")
print("records", len(logs["new"]))
