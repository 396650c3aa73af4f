"""fastvpc: the Amazon VPC data plane as compiled, batch numpy kernels.

Public names only; see DESIGN.md for the contract and docs/forwarding-model.md for the
exact per-frame algorithm.
"""

from fastvpc import examples, packets
from fastvpc.batch import FrameBatch
from fastvpc.errors import FastVpcError, FrameBatchError, LpmError, TopologyError, TopologyFileError
from fastvpc.topology import (
    BLACKHOLE,
    LOCAL,
    Endpoint,
    Eni,
    InternetGateway,
    NatGateway,
    Network,
    PeeringConnection,
    Route,
    RouteTable,
    Subnet,
    Target,
    TransitGateway,
    Vpc,
    VpnGateway,
)
from fastvpc.verdicts import RA_CODES, Action, DropReason

__version__ = "0.1.0"

__all__ = [
    "BLACKHOLE",
    "LOCAL",
    "RA_CODES",
    "Action",
    "DropReason",
    "Endpoint",
    "Eni",
    "FastVpcError",
    "FrameBatch",
    "FrameBatchError",
    "InternetGateway",
    "LpmError",
    "NatGateway",
    "Network",
    "PeeringConnection",
    "Route",
    "RouteTable",
    "Subnet",
    "Target",
    "TopologyError",
    "TopologyFileError",
    "TransitGateway",
    "Vpc",
    "VpnGateway",
    "__version__",
    "examples",
    "packets",
]
