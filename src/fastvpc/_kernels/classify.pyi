import numpy as np
import numpy.typing as npt

def classify_batch(
    data: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    ethertype: npt.NDArray[np.uint16],
    dst_mac: npt.NDArray[np.uint64],
    src_mac: npt.NDArray[np.uint64],
    ip_src: npt.NDArray[np.uint32],
    ip_dst: npt.NDArray[np.uint32],
    proto: npt.NDArray[np.uint8],
    ttl: npt.NDArray[np.uint8],
    ip_len: npt.NDArray[np.uint16],
    sport: npt.NDArray[np.uint16],
    dport: npt.NDArray[np.uint16],
    icmp_type: npt.NDArray[np.uint8],
    icmp_code: npt.NDArray[np.uint8],
    arp_op: npt.NDArray[np.uint16],
    flags: npt.NDArray[np.uint8],
    n_threads: int,
) -> None: ...
def _constants() -> dict[str, int]: ...
