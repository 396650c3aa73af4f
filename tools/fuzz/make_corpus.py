"""Write the seed corpora of the fuzz targets into tools/fuzz/corpus/<target>/ (deterministic).

    python tools/fuzz/make_corpus.py [--out tools/fuzz/corpus]

Everything is built here or by the tests' own builders (tests/frames.py on scapy, the pcap
tests' byte-by-byte pcap/pcapng writers, the AWS tests' describe-* documents, the topology file
examples of the tests and docs); nothing is fetched and nothing is read from /work/shared.  Needs
the test extras (scapy, dpkt, hypothesis, pytest, pyyaml) and an importable fastvpc.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import pickle
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
os.environ["FASTVPC_FUZZ_NO_INSTRUMENT"] = "1"
sys.path[:0] = [str(HERE), str(ROOT / "tests")]

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import frames as F  # tests/frames.py

import fastvpc as fv  # noqa: E402
from fastvpc import files  # noqa: E402


def _put(out: Path, target: str, content: bytes, counts: dict[str, int]) -> None:
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(content).hexdigest()[:16]).write_bytes(content)
    counts[target] = counts.get(target, 0) + 1


def forward_seeds() -> list[bytes]:
    import fuzz_forward as T
    seeds = []
    net0 = fv.examples.seed_vpc()
    e = net0.enis
    web = e[0].subnet
    lit = [
        F.arp_request(e[0], e[0].ip, e[1].ip),
        F.arp_request(e[0], e[0].ip, web.router_ip),
        F.arp_frame(e[0], e[0].ip, e[1].ip, op=2),
        F.icmp_echo(e[0], e[1].ip, web),
        F.icmp_echo(e[0], "8.8.8.8", web),
        F.udp_frame(e[0], e[2].ip, web, dport=53),
        F.tcp_frame(e[0], e[3].ip, web, dport=443),
        F.ipv4_frame(e[0], e[1].ip, web, b"xyz", proto=47),
        F.icmp_echo(e[0], e[1].ip, web, options=[F.IPOption_NOP()] * 4),
        F.udp_frame(e[0], e[2].ip, web, dport=53, flags="MF"),
        F.pad(F.icmp_echo(e[0], web.router_ip, web), 64),
        F.tcp_frame(e[0], "169.254.169.254", web, dport=80),
        F.raw(F.Ether(src=e[0].mac, dst=web.gateway_mac) / F.Dot1Q(vlan=5) / F.IP(src=str(e[0].ip), dst=str(e[1].ip))),
    ]
    for k in range(24):
        r = T.Recorder(1000 + k)
        net = T.build_network(r)
        n = r.rng.randint(4, 16)
        r.forced = [n]
        r.int(1, 24)
        for i in range(n):
            if k % 2 == 0 and r.rng.random() < 0.6:
                f = lit[(i + k) % len(lit)]
                r.forced = [r.rng.randint(7, 9), len(f), f]
            T.make_frame(r, net)
        r.int(0, 3)
        r.int(0, 1)
        seeds.append(bytes(r.out))
    return seeds


def pcap_seeds() -> list[bytes]:
    sys.path.insert(0, str(ROOT / "tests" / "pcap"))
    import test_pcap as P
    L, B = "<", ">"
    fr, ts = P.FRAMES, P.TS
    out = [
        P.classic(fr[:4], ts[:4]),
        P.classic(fr[:4], ts[:4], be=True, nsec=True),
        P.classic(fr[:2], ts[:2], snaplen=0),
        P.classic(fr[:3], ts[:3], network=101),
        P.classic([], []),
        P.shb(L) + P.idb(L, tsresol=9) + P.epb(L, 0, 5, fr[0]) + P.spb(L, fr[1]) + P.shb(B) + P.idb(B)
        + P.epb(B, 0, 9, fr[2]),
        P.shb(L) + P.idb(L, tsresol=0x80 | 20, tsoffset=7) + P.epb(L, 0, 1 << 40, fr[3]) + P.opb(L, 0, 3, fr[4]),
        P.shb(L) + P.idb(L, linktype=113) + P.idb(L) + P.epb(L, 1, 2, fr[5]) + P.epb(L, 0, 2, fr[6]),
        P.shb(B, P.opt(B, 1, b"comment") + P.opt(B, 0, b"")) + P.idb(B, snaplen=40) + P.spb(B, fr[7], origlen=999),
    ]
    batch = fv.FrameBatch.from_frames([F.icmp_echo("02:00:00:00:00:01", "10.0.0.1", "02:00:00:00:00:02", src_ip="10.0.0.5"),
                                       F.arp_request("02:00:00:00:00:01", "10.0.0.5", "10.0.0.1")], port=0)
    for nsec in (False, True):
        buf = io.BytesIO()
        fv.pcap.write_pcap(buf, batch, nanosecond=nsec, byteorder="big" if nsec else "little")
        out.append(buf.getvalue())
    return out


def files_seeds() -> list[bytes]:
    import fuzz_forward as T
    nets = [fv.examples.seed_vpc()] + [T.build_network(T.Recorder(50 + k)) for k in range(4)]
    out = []
    for k, net in enumerate(nets):
        out.append(b"\x00" + files.dumps(net, "json").encode())  # loads, JSON
        out.append(b"\x01" + files.dumps(net, "yaml").encode())  # loads, YAML
        if k == 0:
            out.append(bytes([2 | 4]) + files.dumps(net, "json").encode())   # load, .json
            out.append(bytes([2 | 3 << 2 | 1]) + files.dumps(net, "yaml").encode())  # load, .yml
            out.append(bytes([2]) + files.dumps(net, "yaml").encode())       # load, sniffed
    # YAML anchors/aliases and merge keys, JSON escapes: legal features the fuzzer should start from
    out.append(b"\x01" + b"""fastvpc: 1
vpcs:
  - name: prod
    cidr: 10.0.0.0/16
    subnets:
      - &s {name: web, cidr: 10.0.1.0/24, enis: [{name: w1, ip: 10.0.1.10}]}
      - {<<: *s, name: app, cidr: 10.0.2.0/24, enis: []}
    route_tables: [&rt {name: rt-main}]
    internet_gateways: [{name: igw}]
""")
    out.append(b"\x00" + files.dumps(nets[0], "json").replace('"web"', '"w\\u00e9b"', 1).encode())
    mini = (ROOT / "tests" / "files" / "test_files.py").read_text()
    start = mini.index('text = """\nfastvpc: 1') + len('text = """')
    out.append(b"\x01" + mini[start:mini.index('"""', start)].encode())
    doc = (ROOT / "docs" / "topology-files.md").read_text()
    if "```yaml" in doc:
        a = doc.index("```yaml") + len("```yaml")
        out.append(b"\x01" + doc[a:doc.index("```", a)].encode())
    return out


def aws_seeds() -> list[bytes]:
    sys.path.insert(0, str(ROOT / "tests" / "aws"))
    import fuzz_aws as T
    import test_aws as A
    docs = A.base_docs()
    two = A._two_vpcs()

    def entries(d: dict, prefix: str = "") -> list[tuple[str, bytes]]:
        return [(prefix + name, (doc if isinstance(doc, str) else json.dumps(doc)).encode()) for name, doc in d.items()]

    out = [T.pack(entries(docs)), T.pack(entries(two)), T.pack(entries(docs, "us-east-1/")),
           T.pack(entries(docs, "accounts/111111111111/eu-west-1/")),
           T.pack(entries(docs, "aws_configs/us-west-2/") + [("hosts/h1.json", b'{"Vpcs": "not aws"}')])]
    # one describe call per seed, the smallest inputs that import something
    vpcs = json.dumps(docs["Vpcs.json"]).encode()
    for name, doc in docs.items():
        if name != "Vpcs.json":
            out.append(T.pack([("Vpcs.json", vpcs), (name, json.dumps(doc).encode())]))
    return out


def pickle_seeds() -> list[bytes]:
    import fuzz_pickle as T
    out = []
    for k in range(len(T.BASES)):  # structured: base k, then edits
        out.append(bytes([0, k % 256]) + bytes(range(k, k + 24)))
    for b in T.BASES:
        obj = b if not isinstance(b, dict) else None
        if obj is not None and len(pickle.dumps(obj)) < 60_000:
            out.append(bytes([1]) + pickle.dumps(obj))
    with tempfile.TemporaryDirectory() as tmp:
        for b in T.BASES[:5]:
            p = Path(tmp) / "t.npz"
            b.save(p)
            if p.stat().st_size < 60_000:
                out.append(bytes([2]) + p.read_bytes())
    for k in range(5):
        out.append(bytes([3, k]) + bytes(range(40, 60)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "corpus")
    args = ap.parse_args()
    counts: dict[str, int] = {}
    for target, fn in (("forward", forward_seeds), ("pcap", pcap_seeds), ("files", files_seeds),
                       ("aws", aws_seeds), ("pickle", pickle_seeds)):
        shutil.rmtree(args.out / target, ignore_errors=True)
        for content in fn():
            _put(args.out, target, content, counts)
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(", ".join(f"{t}: {n}" for t, n in counts.items()), f"({total:,} bytes) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
