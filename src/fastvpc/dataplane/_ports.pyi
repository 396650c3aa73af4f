import numpy as np
import numpy.typing as npt

__test__: dict[str, str]

def map_ports(
    data: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    slot_key: npt.NDArray[np.uint64],
    slot_port: npt.NDArray[np.int32],
    mult: int,
    shift: int,
    by_ip: bool,
    out: npt.NDArray[np.int32],
) -> int: ...
