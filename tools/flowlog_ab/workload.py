"""The stateful flow-log benchmark's workload (benchmarks/test_bench_flowlogs.py), standalone: exec'd by ab.py."""
import sys, time, importlib.util
from pathlib import Path
import numpy as np
B = Path(__file__).resolve().parents[2] / "benchmarks"
def load(name, file):
    spec = importlib.util.spec_from_file_location(name, B / file)
    m = importlib.util.module_from_spec(spec); sys.modules[name] = m; spec.loader.exec_module(m); return m
fd = load("_forward_data", "_forward_data.py")
bf = load("bf", "test_bench_filters.py")
from fastvpc.dataplane import Result
from fastvpc.dataplane.flowlogs import FlowLog
t=time.perf_counter()
big = fd.Big() if hasattr(fd, "Big") else None
print("big", time.perf_counter()-t, flush=True)
filt = bf.Filtered(big)
batch, new = filt.batch()
flows = filt.warm()
work = batch.copy(); out = Result(batch.port.size)
log = FlowLog(window=600)
now = [10**9]; rnd=[0]
def prep():
    np.copyto(work.data, batch.data); rnd[0]+=1
    sp = (1024 + (rnd[0] * 7919 + np.arange(new.size) * 13) % 8000).astype(np.uint16)
    rows = work.data.reshape(-1, 64); rows[new, 34] = sp >> 8; rows[new, 35] = sp & 0xFF
    now[0] += 10**6
tp, to, grows = [], [], []
for r in range(int(sys.argv[1]) if len(sys.argv)>1 else 30):
    prep()
    t=time.perf_counter(); filt.dp.process(work, out=out, n_threads=1, state=flows, now=now[0]); t1=time.perf_counter()
    ns = log._core.n_slots
    log.observe(filt.dp, work, out, now=now[0]); t2=time.perf_counter()
    tp.append(t1-t); to.append(t2-t1); grows.append(log._core.n_slots != ns)
tp=np.array(tp); to=np.array(to)
print("pass med ms", np.median(tp)*1e3, "observe med ms", np.median(to)*1e3, "obs no-grow med", np.median(to[~np.array(grows)])*1e3, "ratio", np.median(tp)/(np.median(tp)+np.median(to)), "records", len(log), "slots", log._core.n_slots)
print("observe per round ms", np.round(to*1e3,1).tolist())
