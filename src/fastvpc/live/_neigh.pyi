import numpy as np
from typing_extensions import disjoint_base
import numpy.typing as npt

REACHABLE_NS: int
RETRANS_NS: int
MAX_PROBES: int
WAYS: int

@disjoint_base
class Neighbours:
    capacity: int
    queue_capacity: int
    slot: int
    def __init__(
        self,
        ports: npt.NDArray[np.int32],
        macs: npt.NDArray[np.uint8],
        capacity: int = 1024,
        queue: int = 64,
        slot: int = 2048,
    ) -> None: ...
    def learn(
        self,
        data: npt.NDArray[np.uint8],
        offsets: npt.NDArray[np.int64],
        port: npt.NDArray[np.int32],
        now: int,
    ) -> int: ...
    def resolve(
        self,
        data: npt.NDArray[np.uint8],
        offsets: npt.NDArray[np.int64],
        action: npt.NDArray[np.uint8],
        egress: npt.NDArray[np.int32],
        hold: npt.NDArray[np.uint8],
        now: int,
    ) -> int: ...
    @property
    def pending(self) -> int: ...
    @property
    def drain_capacity(self) -> int: ...
    @property
    def drain_buffer_size(self) -> int: ...
    def drain(
        self,
        out: npt.NDArray[np.uint8],
        offsets: npt.NDArray[np.int64],
        port: npt.NDArray[np.int32],
        now: int,
    ) -> int: ...
    def counters(self) -> dict[str, int]: ...
    def entries(self, port: int) -> list[tuple[str, str, str]]: ...
