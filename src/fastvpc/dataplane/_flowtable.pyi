from typing import Any

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

__test__: dict[str, str]
__pyx_capi__: dict[str, Any]

@disjoint_base
class FlowTableCore:
    @property
    def _buf(self) -> Any: ...
    def __reduce__(self) -> Any: ...
    def _attach(self, buf: npt.NDArray[np.uint8], capacity: int, n_slots: int) -> None: ...
    def _acquire(self) -> bool: ...
    def _release(self) -> None: ...
    def _stats(self) -> tuple[int, int, int, int, int, int]: ...
    def _expire(self, now: int) -> int: ...
    def _clear(self) -> None: ...
    def _first_backwards(self, now: npt.NDArray[np.int64]) -> int: ...
    def _load(self, rows: npt.NDArray[np.uint8], clock: int, n_reclaimed: int) -> int: ...
    def _track(
        self,
        eni: npt.NDArray[np.uint32],
        zone: npt.NDArray[np.uint8],
        proto: npt.NDArray[np.uint8],
        src: npt.NDArray[np.uint32],
        dst: npt.NDArray[np.uint32],
        sport: npt.NDArray[np.uint16],
        dport: npt.NDArray[np.uint16],
        l4flags: npt.NDArray[np.uint8],
        length: npt.NDArray[np.uint32],
        now: npt.NDArray[np.int64],
        admitted: npt.NDArray[np.uint8],
        timeouts: npt.NDArray[np.uint8],
        tidx: npt.NDArray[np.uint32],
        code: npt.NDArray[np.uint8],
        direction: npt.NDArray[np.uint8],
        state: npt.NDArray[np.uint8],
    ) -> None: ...

def flow_hash_batch(
    proto: npt.NDArray[np.uint8],
    src: npt.NDArray[np.uint32],
    dst: npt.NDArray[np.uint32],
    sport: npt.NDArray[np.uint16],
    dport: npt.NDArray[np.uint16],
    out: npt.NDArray[np.uint64],
) -> None: ...
def default_timeouts() -> bytes: ...
def _layout() -> dict[str, Any]: ...
