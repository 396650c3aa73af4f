"""Import every AWS describe-* snapshot in the shared data, compile it, and trace through it.

    python tools/check_aws_snapshots.py [AWS_JSON_DIR]      (default: ../shared/aws-json)

For each snapshot folder: import (fastvpc.aws.import_aws), compile, then trace from every
ENI to every other ENI's IPs, its own router, and 8.8.8.8, checking that every trace's
explanation agrees with Dataplane.process.  The single-entity files of ``unit/`` are
imported one by one (each must import without raising).  Prints one line per snapshot
and exits 1 if anything raised or disagreed; skips cleanly (exit 0) when the data is absent.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

from fastvpc.errors import TopologyFileError
from fastvpc.aws import import_aws
from fastvpc.trace import trace_packet

HERE = Path(__file__).resolve().parent
DEFAULT = HERE.parent.parent / "shared" / "aws-json"


def check_snapshot(folder: Path) -> tuple[bool, str]:
    t0 = time.perf_counter()
    imp = import_aws(folder)
    net = imp.network
    dp = net.compile()
    t_import = time.perf_counter() - t0
    verdicts: Counter[str] = Counter()
    bad = []
    for eni in net.enis:
        dsts = [str(ip) for other in eni.vpc.enis for ip in other.ips if other is not eni]
        dsts += [str(ip) for p in eni.vpc.peerings for other in p.peer_of(eni.vpc).enis for ip in other.ips]
        dsts += [str(eni.subnet.router_ip), "8.8.8.8"]
        for dst in dsts:
            t = trace_packet(dp, eni, dst, network=net)
            verdicts[t.verdict] += 1
            if not t.agrees:
                bad.append(str(t))
    # the imported network, filters included, round-trips through a topology file
    from fastvpc.files import dumps, loads

    text = dumps(net)
    if loads(text) != net or dumps(loads(text)) != text:
        bad.append("the topology file of the import does not load back equal")
    statuses = Counter(e.status for e in imp.report)
    c = imp.report.counts
    line = (f"{folder.name:<40} OK  {c['VPCs']} VPCs, {c['subnets']} subnets, {c['route tables']} tables, "
            f"{c['routes']} routes, {c['ENIs']} ENIs, {c['security groups']} SGs with {c['security group rules']} rules, "
            f"{c['network ACLs']} NACLs with {c['NACL entries']} entries; report {dict(sorted(statuses.items()))}; "
            f"{sum(verdicts.values())} traces {dict(sorted(verdicts.items()))}; import+compile {t_import * 1e3:.0f} ms")
    if bad:
        return False, line.replace(" OK ", " BAD") + "\n" + "\n".join(bad[:3])
    return True, line


def _add_vpcs_for_filters(f: Path, tmp: Path) -> bool:
    """For a unit file of security groups or NACLs: a Vpcs.json with each VpcId it names, so
    that its filters are imported (a unit file alone holds no VPC)."""
    try:
        doc = json.loads(f.read_text(encoding="utf-8"))
    except ValueError:
        return False
    if not isinstance(doc, dict) or not ({"SecurityGroups", "NetworkAcls"} & set(doc)):
        return False
    ids = sorted({el.get("VpcId") for key in ("SecurityGroups", "NetworkAcls") for el in doc.get(key, [])
                  if isinstance(el, dict) and isinstance(el.get("VpcId"), str)})
    vpcs = [{"VpcId": v, "CidrBlock": f"10.{k}.0.0/16"} for k, v in enumerate(ids)]
    (tmp / "Vpcs.json").write_text(json.dumps({"Vpcs": vpcs}), encoding="utf-8")
    return bool(vpcs)


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(os.environ.get("FASTVPC_AWS_JSON", DEFAULT))
    snaps = root / "snapshots"
    if not snaps.is_dir():
        print(f"skipped: no AWS snapshots at {snaps}")
        return 0
    ok_all = True
    n = 0
    for folder in sorted(p for p in snaps.iterdir() if p.is_dir()):
        n += 1
        try:
            ok, line = check_snapshot(folder)
        except Exception:  # noqa: BLE001 - the point is to report any crash
            ok, line = False, f"{folder.name:<40} CRASH\n{traceback.format_exc()}"
        ok_all &= ok
        print(line)
    unit = root / "unit"
    if unit.is_dir():
        n_unit, crashes, counted, filt = 0, [], Counter(), []
        for f in sorted(unit.glob("*.json")):
            n_unit += 1
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / f.name).write_bytes(f.read_bytes())
                with_vpcs = _add_vpcs_for_filters(f, Path(tmp))
                try:
                    imp = import_aws(tmp)
                    imp.network.compile()
                    counted.update(e.status for e in imp.report)
                    if with_vpcs:
                        c = imp.report.counts
                        filt.append(f"{f.name}: {c['security groups']} SGs, {c['security group rules']} rules, "
                                    f"{c['network ACLs']} NACLs, {c['NACL entries']} entries")
                except TopologyFileError as exc:  # a file without any VPC: the typed, explained refusal
                    if "no VPC found" not in str(exc):
                        crashes.append(f"{f.name}: {exc}")
                    counted["refused: no VPC in the file"] += 1
                except Exception:  # noqa: BLE001
                    crashes.append(f"{f.name}: {traceback.format_exc()}")
        ok_all &= not crashes
        print(f"unit/ ({n_unit} single-call files, each imported alone): "
              f"{'OK' if not crashes else 'CRASH'}; report entries {dict(sorted(counted.items()))}")
        for c in crashes:
            print(c)
        for line in filt:
            print(f"  unit/{line} (imported with a synthetic VPC for each VpcId)")
    print(f"{n} snapshots: {'all imported, compiled and traced consistently' if ok_all else 'FAILURES above'}")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
