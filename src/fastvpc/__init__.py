"""fastvpc: the Amazon VPC data plane as compiled, batch numpy kernels.

Public names only; see DESIGN.md for the contract.
"""

from fastvpc.errors import FastVpcError, FrameBatchError, LpmError, TopologyError, TopologyFileError

__version__ = "0.1.0"

__all__ = [
    "FastVpcError",
    "FrameBatchError",
    "LpmError",
    "TopologyError",
    "TopologyFileError",
    "__version__",
]
