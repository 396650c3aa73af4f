import numpy as np
from typing_extensions import disjoint_base
import numpy.typing as npt

MAX_SOCKETS: int
ST_RX: int
ST_RX_TRUNCATED: int
ST_RX_OUTGOING: int
ST_RX_ERRORS: int
ST_TX: int
ST_TX_ERRORS: int
ST_TX_UNATTACHED: int
ST_ROUNDS: int
ST_RX_CSUM: int
ST_RX_SEGMENTED: int
ST_TX_REFUSED: int
ST_RX_VLAN: int
STATS_LEN: int
SEG_MTU: int

def complete_checksum(frame: npt.NDArray[np.uint8]) -> bool: ...
def must_cut(frame_len: int) -> bool: ...
def split_tcp(frame: npt.NDArray[np.uint8], mtu: int = 1500) -> list[bytes]: ...

@disjoint_base
class BatchIO:
    capacity: int
    slot: int
    def __init__(self, capacity: int = 256, slot: int = 2048) -> None: ...
    @property
    def buffer_size(self) -> int: ...
    def recv(
        self,
        fds: npt.NDArray[np.int32],
        ports: npt.NDArray[np.int32],
        data: npt.NDArray[np.uint8],
        offsets: npt.NDArray[np.int64],
        port: npt.NDArray[np.int32],
        stats: npt.NDArray[np.int64],
        timeout_ms: int = 100,
    ) -> int: ...
    def send(
        self,
        port_fd: npt.NDArray[np.int32],
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
        fd: int,
        frame: npt.NDArray[np.uint8],
        count: int,
        stats: npt.NDArray[np.int64],
    ) -> int: ...
