"""Typed errors.  Every message names the offending object and value."""

from __future__ import annotations

__all__ = ["FastVpcError", "TopologyError", "TopologyFileError", "FrameBatchError", "LpmError", "PcapError",
           "LiveError", "LivePermissionError"]


class FastVpcError(Exception):
    """Base of every error fastvpc raises on purpose."""


class TopologyError(FastVpcError, ValueError):
    """A topology breaks a VPC configuration rule (size, overlap, reserved address, ...).

    ``obj`` is the name of the object at fault (or None) and ``value`` the bad value.
    """

    def __init__(self, message: str, *, obj: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.obj = obj
        self.value = value


class TopologyFileError(TopologyError):
    """A topology file cannot be read: names the file, the place in it and the bad value."""

    def __init__(self, path: str, where: str, message: str, *, value: object = None) -> None:
        super().__init__(f"{path}: at {where}: {message}", obj=where, value=value)
        self.path = path
        self.where = where


class FrameBatchError(FastVpcError, ValueError):
    """A FrameBatch's arrays are inconsistent (offsets not monotonic, past the buffer, ...)."""


class LpmError(FastVpcError, ValueError):
    """A prefix set cannot be built: duplicate prefix, host bits set, bad length, ..."""


class PcapError(FastVpcError, ValueError):
    """A pcap/pcapng file cannot be read: bad magic, truncated or corrupt record, unsupported linktype.

    ``offset`` is the byte offset of the bad header, record or block (or None) and ``path``
    the file's name when known; both also appear in the message.
    """

    def __init__(self, message: str, *, offset: int | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.offset = offset
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_pcap_error, (self.args[0] if self.args else "", self.offset, self.path))


def _rebuild_pcap_error(message: str, offset: int | None, path: str | None) -> PcapError:
    return PcapError(message, offset=offset, path=path)


class LiveError(FastVpcError, OSError):
    """An interface cannot be attached or used (missing interface, socket failure, ...)."""


class LivePermissionError(LiveError, PermissionError):
    """Not permitted to open a raw packet socket: ``CAP_NET_RAW`` is missing."""
