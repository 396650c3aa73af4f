"""fastvpc: the Amazon VPC data plane as compiled, batch numpy kernels.

Public names only; see DESIGN.md for the contract and docs/forwarding-model.md for the
exact per-frame algorithm.
"""

from fastvpc import examples, lpm, packets
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
