__test__: dict[str, str]

import numpy as np
import numpy.typing as npt

def build_hash(keys: npt.NDArray[np.uint64], values: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint64] | int: ...
