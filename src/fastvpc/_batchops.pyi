import numpy as np
import numpy.typing as npt

def check_offsets(offsets: npt.NDArray[np.int64], data_len: int) -> int: ...
def gather_spans(
    src: npt.NDArray[np.uint8] | bytes | memoryview,
    start: npt.NDArray[np.int64],
    length: npt.NDArray[np.int64],
    dst: npt.NDArray[np.uint8],
    dst_offsets: npt.NDArray[np.int64],
) -> int: ...
