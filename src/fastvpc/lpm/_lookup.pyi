from typing import Any

import numpy as np
import numpy.typing as npt

__pyx_capi__: dict[str, Any]

def lookup_table(
    rts: Any, table_id: int, addrs: npt.NDArray[np.uint32], out: npt.NDArray[np.uint32], n_threads: int
) -> None: ...
def lookup_pairs(
    rts: Any,
    table_ids: npt.NDArray[np.uint32],
    addrs: npt.NDArray[np.uint32],
    out: npt.NDArray[np.uint32],
    n_threads: int,
) -> None: ...
def lookup_one(rts: Any, table_id: int, addr: int) -> int: ...
def kernel_variant() -> str: ...
def _force_baseline(force: bool) -> str: ...
