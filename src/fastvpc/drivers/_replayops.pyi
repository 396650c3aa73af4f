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
