"""fastvpc: the Amazon VPC data plane as compiled, batch numpy kernels.

Public names only; see DESIGN.md for the contract and docs/forwarding-model.md for the
exact per-frame algorithm.
"""

import os as _os

# OpenMP's default wait policy keeps a thread that finished its part of a parallel region spinning on
# the barrier (libgomp: ~300k spins) so the next region starts a few microseconds sooner.  Every
# multi-threaded pass here is one region of milliseconds, so that gain is nil, while on a machine
# whose cores are busy the spinning thread takes the core the other one needs: replay with two
# threads ran 2-3x slower than with one at load 3.5 on 2 cores, and as fast as one with PASSIVE
# (BENCHMARKS.md, Replay).  The policy is read once, when the OpenMP runtime loads, so it is set here
# before the first compiled module is imported; a policy the user set is left alone.
if not any(k in _os.environ for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")):
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

from fastvpc import examples, lpm, packets  # noqa: E402
from fastvpc.aws import from_aws
from fastvpc.batch import FrameBatch
from fastvpc.dataplane.classify import Classified, classify
from fastvpc.dataplane import Dataplane, Result
from fastvpc.dataplane.flowlogs import FlowLog
from fastvpc.dataplane.state import FlowTable
from fastvpc.errors import (FastVpcError, FrameBatchError, LpmError, PcapError, SnapshotError, TopologyError,
                             TopologyFileError)
from fastvpc.files import load
from fastvpc.topology import (
    BLACKHOLE,
    LOCAL,
    Endpoint,
    Eni,
    InternetGateway,
    NatGateway,
    Network,
    NetworkAcl,
    NetworkAclEntry,
    PeeringConnection,
    PrefixList,
    Route,
    RouteTable,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
    Target,
    Tracking,
    TransitGateway,
    Vpc,
    VpnGateway,
)
from fastvpc.trace import Hop, Trace
from fastvpc.verdicts import RA_CODES, Action, DropReason

__version__ = "0.1.0"

__all__ = [
    "BLACKHOLE",
    "LOCAL",
    "RA_CODES",
    "Action",
    "Classified",
    "Dataplane",
    "DropReason",
    "Endpoint",
    "Eni",
    "FastVpcError",
    "FlowLog",
    "FlowTable",
    "FrameBatch",
    "FrameBatchError",
    "Hop",
    "InternetGateway",
    "LpmError",
    "NatGateway",
    "Network",
    "NetworkAcl",
    "NetworkAclEntry",
    "PcapError",
    "SnapshotError",
    "PeeringConnection",
    "PrefixList",
    "Result",
    "Route",
    "RouteTable",
    "SecurityGroup",
    "SecurityGroupRule",
    "Subnet",
    "Target",
    "TopologyError",
    "TopologyFileError",
    "Trace",
    "Tracking",
    "TransitGateway",
    "Vpc",
    "VpnGateway",
    "__version__",
    "classify",
    "examples",
    "from_aws",
    "load",
    "lpm",
    "packets",
]
