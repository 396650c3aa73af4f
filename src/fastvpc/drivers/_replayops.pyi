import numpy as np
import numpy.typing as npt

__test__: dict[str, str]

def count_verdicts(
    port: npt.NDArray[np.int32],
    action: npt.NDArray[np.uint8],
    reason: npt.NDArray[np.uint8],
    by_port: npt.NDArray[np.int64],
    by_reason: npt.NDArray[np.int64],
) -> int: ...
def pack_selected(
    data: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    ts: npt.NDArray[np.int64],
    action: npt.NDArray[np.uint8],
    drops: bool,
    out: npt.NDArray[np.uint8],
    snaplen: int,
) -> tuple[int, int]: ...

I_EMIT_BYTES: int
I_EMIT_FRAMES: int
I_DROP_BYTES: int
I_DROP_FRAMES: int
I_STATUS: int
N_INFO: int
ST_OK: int
ST_COUNT: int
ST_TIMESTAMP: int
ST_SPACE: int
ST_LENGTHS: int

def emit_records(
    data: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    ts: npt.NDArray[np.int64],
    port: npt.NDArray[np.int32],
    action: npt.NDArray[np.uint8],
    reason: npt.NDArray[np.uint8],
    by_port: npt.NDArray[np.int64],
    by_reason: npt.NDArray[np.int64],
    out_emit: npt.NDArray[np.uint8],
    want_emit: bool,
    out_drop: npt.NDArray[np.uint8],
    want_drop: bool,
    snaplen: int,
    info: npt.NDArray[np.int64],
) -> int: ...
