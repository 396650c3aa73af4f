"""The control plane: VPCs, subnets, route tables, ENIs, gateways, peerings, and the filters.

Split by feature (architecture review §5.2): :mod:`fastvpc.topology.core` holds the network,
VPCs, subnets, route tables, ENIs and targets; :mod:`fastvpc.topology.filters` the security
groups, network ACLs and connection-tracking timeouts; :mod:`fastvpc.topology.edge` the
Elastic IPs and the rules of gateway route tables.  Every public name is re-exported
here, so ``fastvpc.topology`` stays the path to import from.
"""

from fastvpc.topology.core import *  # noqa: F401,F403
from fastvpc.topology.core import (  # noqa: F401  (public helpers outside core's __all__)
    FORBIDDEN_VPC_RANGES,
    MAX_PORT,
    MAX_PREFIXLEN,
    MAX_VPC_CIDRS,
    MIN_PREFIXLEN,
    RESERVED_SERVICE_RANGE,
    int_to_mac,
    mac_to_int,
)
from fastvpc.topology.core import __all__ as _core_all
from fastvpc.topology.filters import *  # noqa: F401,F403
from fastvpc.topology.filters import (  # noqa: F401
    ALL_PORTS,
    DEFAULT_TRACKING,
    MAX_NACL_ENTRIES_PER_DIRECTION,
    MAX_RULE_NUMBER,
    MIN_RULE_NUMBER,
    PROTOCOL_NAMES,
)
from fastvpc.topology.filters import __all__ as _filters_all
from fastvpc.topology.edge import *  # noqa: F401,F403
from fastvpc.topology.edge import CONNECTIVITY_TYPES  # noqa: F401
from fastvpc.topology.edge import __all__ as _edge_all

__all__ = [*_core_all, *_filters_all, *_edge_all]
