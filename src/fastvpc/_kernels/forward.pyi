from typing import Any

from typing_extensions import Self, disjoint_base

import numpy as np
import numpy.typing as npt

@disjoint_base
class Tables:
    def __new__(
        cls,
        enis: npt.NDArray[np.uint8],
        subnets: npt.NDArray[np.uint8],
        routes: npt.NDArray[np.uint8],
        table_base: npt.NDArray[np.uint32],
        port_eni: npt.NDArray[np.uint8],
        port_hashed: bool,
        deliv: npt.NDArray[np.uint8],
        ip_hash: npt.NDArray[np.uint64],
        mac_hash: npt.NDArray[np.uint64],
        lpm: Any,
        single_mac: bool,
    ) -> Self: ...
    def ip_lookup(self, key: int) -> int: ...
    def mac_lookup(self, key: int) -> int: ...

def ingress_sizes() -> tuple[int, int]: ...
def record_sizes() -> tuple[int, int, int]: ...
def chunk_size() -> int: ...
def forward_batch(
    tables: Tables,
    data: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    port: npt.NDArray[np.int32],
    action: npt.NDArray[np.uint8],
    reason: npt.NDArray[np.uint8],
    egress: npt.NDArray[np.int32],
    route: npt.NDArray[np.int32],
    n_threads: int,
) -> None: ...
def build_hash(keys: npt.NDArray[np.uint64], values: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint64] | int: ...
