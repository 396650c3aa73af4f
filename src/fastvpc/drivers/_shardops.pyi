import numpy as np
import numpy.typing as npt
__test__: dict[str, str]


def shard_frames(
    data: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    ports: npt.NDArray[np.int32],
    is_eni: npt.NDArray[np.uint8],
    inside_lo: npt.NDArray[np.uint32],
    inside_hi: npt.NDArray[np.uint32],
    n_shards: int,
    first: int,
    out: npt.NDArray[np.uint16],
    nat_keys: npt.NDArray[np.uint32] | None = None,
) -> int: ...
def select_shard(
    data: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    ports: npt.NDArray[np.int32],
    ts: npt.NDArray[np.int64],
    is_eni: npt.NDArray[np.uint8],
    inside_lo: npt.NDArray[np.uint32],
    inside_hi: npt.NDArray[np.uint32],
    n_shards: int,
    k: int,
    first: int,
    out_offsets: npt.NDArray[np.int64],
    out_ports: npt.NDArray[np.int32],
    out_ts: npt.NDArray[np.int64],
    out_position: npt.NDArray[np.int64],
    nat_keys: npt.NDArray[np.uint32] | None = None,
) -> int: ...
def merge_records(
    srcs: list[npt.NDArray[np.uint8]],
    pos: npt.NDArray[np.int32],
    pos_start: npt.NDArray[np.int64],
    out: npt.NDArray[np.uint8],
) -> int: ...
