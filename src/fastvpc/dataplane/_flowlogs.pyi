from typing import Any

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

__test__: dict[str, str]

def reason_log_kinds() -> bytes: ...
def _zeroed(n_slots: int) -> npt.NDArray[np.uint8]: ...
def text_row_bound(fixed_len: int, max_str: int) -> int: ...
def _format_text(
    rows: npt.NDArray[np.uint8],
    fields: npt.NDArray[np.uint8],
    version: npt.NDArray[np.uint8],
    account: npt.NDArray[np.uint8],
    strings: npt.NDArray[np.uint8],
    str_off: npt.NDArray[np.int64],
    iface_ip: npt.NDArray[np.uint32],
    out: npt.NDArray[np.uint8],
) -> int: ...
def format_ipv4(
    ips: npt.NDArray[np.uint32],
    data: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    fixed: npt.NDArray[np.uint8],
) -> int: ...

@disjoint_base
class FlowLogCore:
    @property
    def _buf(self) -> Any: ...
    @property
    def count(self) -> int: ...
    @property
    def n_slots(self) -> int: ...
    @property
    def next_seq(self) -> int: ...
    @property
    def max_ok(self) -> int: ...
    @property
    def n_skip(self) -> int: ...
    def _set_max_ok(self, k: int) -> None: ...
    def __reduce__(self) -> Any: ...
    def _init(self, n_slots: int) -> None: ...
    def _set_next_seq(self, s: int) -> None: ...
    def _grow(self) -> None: ...
    def _rows(self) -> npt.NDArray[np.uint8]: ...
    def _take(self, cut: int) -> npt.NDArray[np.uint8]: ...
    def _load(self, rows: npt.NDArray[np.uint8]) -> int: ...
    def _observe(
        self,
        data: npt.NDArray[np.uint8],
        offsets: npt.NDArray[np.int64],
        port: npt.NDArray[np.int32],
        ts: npt.NDArray[np.int64],
        ordinal: npt.NDArray[np.int64],
        now: int,
        action: npt.NDArray[np.uint8],
        reason: npt.NDArray[np.uint8],
        egress: npt.NDArray[np.int32],
        route: npt.NDArray[np.int32],
        port_eni: npt.NDArray[np.int32],
        sp_port: npt.NDArray[np.int32],
        sp_eni: npt.NDArray[np.int32],
        eni_iface: npt.NDArray[np.uint32],
        eni_ip: npt.NDArray[np.uint32],
        eni_vpc: npt.NDArray[np.int32],
        vpc_dns: npt.NDArray[np.uint32],
        route_kind: npt.NDArray[np.uint8],
        route_arg: npt.NDArray[np.int32],
        route_vpc: npt.NDArray[np.int32],
        route_path: npt.NDArray[np.uint8],
        ip_hash: npt.NDArray[np.uint64],
        port_info: npt.NDArray[np.uint32],
        dns_sorted: npt.NDArray[np.uint32],
        gw_iface: npt.NDArray[np.uint32],
        gw_ip: npt.NDArray[np.uint32],
        nat_gw: npt.NDArray[np.int32],
        nat_ip: npt.NDArray[np.uint32],
        nat_l4: npt.NDArray[np.uint16],
        nat_dir: npt.NDArray[np.uint8],
        sent_src: npt.NDArray[np.uint32],
        in_dst: npt.NDArray[np.uint32],
        in_vpc: npt.NDArray[np.int32],
        window: int,
        start: int,
    ) -> tuple[int, int]: ...

def sent_sources(
    data: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64], out: npt.NDArray[np.uint32]
) -> None: ...
def _layout() -> dict[str, Any]: ...
