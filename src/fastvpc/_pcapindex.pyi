import numpy as np
import numpy.typing as npt

S_POS: int
S_ERR: int
S_ERRPOS: int
S_ERRVAL: int
S_BE: int
S_NIF: int
S_SKIPPED: int
S_SECTION: int
N_STATE: int

ERR_NONE: int
ERR_TRUNC_HEADER: int
ERR_TRUNC_DATA: int
ERR_CAPLEN_SNAPLEN: int
ERR_ZERO_LEN: int
ERR_BLOCK_LEN: int
ERR_TRAILER: int
ERR_BOM: int
ERR_LINKTYPE: int
ERR_IFACE: int
ERR_IFACE_FULL: int
ERR_OPTION: int
ERR_VERSION: int
ERR_TSRESOL: int
ERR_NO_SECTION: int
ERR_CAPLEN_BLOCK: int

IF_LINKTYPE: int
IF_SNAPLEN: int
IF_TSKIND: int
IF_TSEXP: int
IF_TSOFFSET: int
N_IFCOL: int

def index_pcap(
    buf: npt.NDArray[np.uint8] | bytes | memoryview,
    out_off: npt.NDArray[np.int64],
    out_len: npt.NDArray[np.int64],
    out_ts: npt.NDArray[np.int64],
    state: npt.NDArray[np.int64],
    big_endian: bool,
    nanosecond: bool,
    snaplen: int,
) -> int: ...
def index_pcapng(
    buf: npt.NDArray[np.uint8] | bytes | memoryview,
    out_off: npt.NDArray[np.int64],
    out_len: npt.NDArray[np.int64],
    out_ts: npt.NDArray[np.int64],
    ifaces: npt.NDArray[np.int64],
    state: npt.NDArray[np.int64],
    skip_other: bool,
) -> int: ...
def pack_pcap(
    data: npt.NDArray[np.uint8] | bytes | memoryview,
    offsets: npt.NDArray[np.int64],
    ts: npt.NDArray[np.int64],
    out: npt.NDArray[np.uint8],
    big_endian: bool,
    nanosecond: bool,
    snaplen: int,
) -> int: ...
def compact_pcap(
    buf: npt.NDArray[np.uint8],
    end: int,
    offsets: npt.NDArray[np.int64],
    out_ts: npt.NDArray[np.int64],
    state: npt.NDArray[np.int64],
    big_endian: bool,
    nanosecond: bool,
    snaplen: int,
) -> int: ...
def copy_within(buf: npt.NDArray[np.uint8], dst: int, src: int, n: int) -> None: ...
