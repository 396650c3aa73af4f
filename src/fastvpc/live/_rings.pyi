import numpy as np
from typing_extensions import disjoint_base
import numpy.typing as npt

@disjoint_base
class RxRing:
    capacity: int
    slot: int
    def __init__(
        self,
        fds: npt.NDArray[np.int32],
        ports: npt.NDArray[np.int32],
        capacity: int = 256,
        slot: int = 2048,
        block_size: int = 262144,
        block_count: int = 16,
        retire_ms: int = 1,
    ) -> None: ...
    def close(self) -> None: ...
    @property
    def buffer_size(self) -> int: ...
    def recv(
        self,
        data: npt.NDArray[np.uint8],
        offsets: npt.NDArray[np.int64],
        port: npt.NDArray[np.int32],
        stats: npt.NDArray[np.int64],
        timeout_ms: int = 100,
        spin: int = 0,
    ) -> int: ...

@disjoint_base
class TxRing:
    frame_size: int
    frame_count: int
    linear: bool
    def __init__(
        self, port_fd: npt.NDArray[np.int32], frame_size: int = 2048, frame_count: int = 1024, linear: bool = True
    ) -> None: ...
    def close(self) -> None: ...
    def send(
        self,
        data: npt.NDArray[np.uint8],
        offsets: npt.NDArray[np.int64],
        in_port: npt.NDArray[np.int32],
        action: npt.NDArray[np.uint8],
        reason: npt.NDArray[np.uint8],
        egress: npt.NDArray[np.int32],
        counts: npt.NDArray[np.int64],
        nreason: int,
        stats: npt.NDArray[np.int64],
        hold: npt.NDArray[np.uint8] | None = None,
    ) -> int: ...
    def blast(
        self,
        port: int,
        frame: npt.NDArray[np.uint8],
        count: int,
        batch: int,
        stats: npt.NDArray[np.int64],
    ) -> int: ...
