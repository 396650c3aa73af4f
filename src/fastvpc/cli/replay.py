"""``fastvpc replay TOPOLOGY IN.pcap -o OUT.pcap [--drops DROPS.pcap] [--json SUMMARY|-] [--flow-log FLOWS.log]``.

Outputs ending in ``.pcapng`` are pcapng: one interface per egress port (the drops: per
ingress port), the verdict and reason as each packet's comment.  Every path is checked before
a frame is read; outputs appear under their names only when the replay ends (an error leaves
none, and says so).  ``--on-error stop`` replays the frames before damage in the capture and
warns where it stopped (exit 0); the default stops with exit 2 and writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fastvpc.cli._common import (UsageError, add_flow_log_options, check_writable, flow_log_from_args,
                                 human_stream, output_path, positive_int, same_file, write_json)

_CAPTURE = (".pcap", ".pcapng")


def add_parser(sub: Any) -> None:
    from fastvpc.cli import command

    p = sub.add_parser("replay", help="push a pcap/pcapng capture through a topology; write what comes out",
                       description="Map every frame of a capture to the ENI that sent it, push the frames "
                                   "through the compiled data plane, write the emitted and the dropped frames, "
                                   "print the counts.")
    p.add_argument("topology", help="topology file (JSON/YAML), or 'seed' for the built-in example")
    p.add_argument("input", help="capture to replay (pcap or pcapng, Ethernet)")
    p.add_argument("-o", "--output", type=output_path(*_CAPTURE),
                   help="capture (.pcap or .pcapng) of the frames the data plane emits (rewritten)")
    p.add_argument("--drops", type=output_path(*_CAPTURE), help="capture of the dropped frames, as they came")
    p.add_argument("--json", dest="json_path", type=output_path(".json"), metavar="FILE",
                   help="write the counts as JSON to FILE ('-': stdout, the text then goes to stderr)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--port-by", choices=["src-mac", "src-ip"], default="src-mac",
                     help="how a frame is mapped to its sending ENI (default: source MAC)")
    how.add_argument("--ingress", metavar="NAME",
                     help="every frame enters on this ENI (a capture of what one VM sent, tcpdump -Q out), or on "
                          "this internet, VPN or transit gateway's port (what outside hosts sent in)")
    p.add_argument("--arp-mode", choices=["target", "single_mac"], default="target")
    p.add_argument("--batch-size", type=positive_int, default=65536, help="frames per batch (default 65536)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads for the data plane (default: every usable core)")
    p.add_argument("--on-error", choices=["raise", "stop"], default="raise",
                   help="damaged capture: stop with an error and write nothing (raise, default), or replay the "
                        "frames before the damage and warn (stop)")
    p.add_argument("--no-progress", action="store_true", help="no progress line (it shows only on a terminal)")
    p.add_argument("--stateless", action="store_true",
                   help="no connection tracking: judge every packet by the rules alone, as the first of its flow "
                        "(default: one flow table across the capture, its clock the capture's timestamps)")
    add_flow_log_options(p, "write VPC Flow Log records of the replay to FILE: AWS's text format (.gz: compressed), "
                            "or Parquet for a name ending in .parquet (needs pyarrow)")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="replay on a Dask cluster: N worker processes on this machine (or N shards on --scheduler's "
                        "cluster); the output is the serial replay's, byte for byte (needs fastvpc[dask])")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="an existing Dask scheduler (tcp://host:8786) to replay on; the capture and the outputs must "
                        "be at the same paths on its workers")
    p.set_defaults(func=command("replay", run))


def run(args: argparse.Namespace) -> int:
    from fastvpc.cli._common import load_topology
    from fastvpc.drivers.replay import check_paths, replay

    json_path = args.json_path
    if json_path is not None:
        # (one that is the capture: cli._common.outputs_clear_of_inputs, for every command)
        if any(same_file(json_path, o) for o in (args.output, args.drops) if o):
            raise UsageError(f"--json {json_path!r} is also another output")
        check_writable(json_path, "--json")
    try:
        check_paths(args.input, {"--output": args.output, "--drops": args.drops})
    except Exception as exc:
        raise UsageError(str(exc)) from None
    flow_log = _flow_log(args)
    net = load_topology(args)
    if args.workers is not None or args.scheduler is not None:
        from fastvpc.drivers.sharded import replay_sharded

        summary = replay_sharded(net, args.input, args.output, drops_path=args.drops, workers=args.workers,
                                 scheduler=args.scheduler, port_by=args.port_by, ingress=args.ingress,
                                 batch_size=args.batch_size, arp_mode=args.arp_mode, on_error=args.on_error,
                                 progress=not args.no_progress and sys.stderr.isatty(), flow_log=flow_log,
                                 stateful=not args.stateless)
    else:
        summary = replay(net, args.input, args.output, drops_path=args.drops, port_by=args.port_by,
                         ingress=args.ingress, batch_size=args.batch_size, arp_mode=args.arp_mode,
                         progress=not args.no_progress and sys.stderr.isatty(), on_error=args.on_error,
                         n_threads=args.threads, flow_log=flow_log, stateful=not args.stateless)
    if flow_log is not None:
        # a sharded replay's log is the shards' logs merged: the serial replay's records, written alike
        flow_log.write(args.flow_log)
        summary.outputs[f"flow log ({len(flow_log):,} records)"] = args.flow_log
    print(summary, file=human_stream(json_path), flush=True)
    if json_path is not None:
        write_json(json_path, summary.to_dict())
    return 0


def _flow_log(args: argparse.Namespace) -> Any:
    """The FlowLog asked for by --flow-log*, its path checked before any frame is read; or None."""
    path = args.flow_log
    if path is None:
        if args.flow_log_format is not None:
            raise UsageError("--flow-log-format needs --flow-log FILE")
        return None
    if any(same_file(path, o) for o in (args.output, args.drops, args.json_path) if o):
        raise UsageError(f"--flow-log {path!r} is also another output")
    return flow_log_from_args(args)
