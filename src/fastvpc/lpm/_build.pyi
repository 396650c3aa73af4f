import numpy as np
import numpy.typing as npt

MISS: int
HDR_WORDS: int
KIND_EMPTY: int
KIND_BTREE: int
KIND_POPTRIE: int
BTREE_MAX_INTERVALS: int
META_COLS: int
ROUTES_OFFSETS_ABOVE: int

def build_tables(
    table_id: npt.NDArray[np.uint32],
    prefix: npt.NDArray[np.uint32],
    length: npt.NDArray[np.uint8],
    value: npt.NDArray[np.uint32],
    n_tables: int,
    normalize: bool = False,
    max_btree_intervals: int = 39304,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64], npt.NDArray[np.uint8]]: ...
def intervals(
    prefix: npt.NDArray[np.uint32], length: npt.NDArray[np.uint8], value: npt.NDArray[np.uint32]
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]: ...
