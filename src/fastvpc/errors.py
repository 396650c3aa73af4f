"""Typed errors.  Every message names the offending object and value."""

from __future__ import annotations

from typing import Any

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
    """A topology file cannot be read: names the file, the place in it and the bad value.

    ``report``: from ``from_aws`` on a folder that gave no VPC, the import report (its skipped lines say
    what could not be read); else None."""

    def __init__(self, path: str, where: str, message: str, *, value: object = None) -> None:
        super().__init__(f"{path}: at {where}: {message}", obj=where, value=value)
        self.path = path
        self.where = where
        self.report: Any = None


class FrameBatchError(FastVpcError, ValueError):
    """A FrameBatch's arrays are inconsistent (offsets not monotonic, past the buffer, ...)."""


class LpmError(FastVpcError, ValueError):
    """A prefix set cannot be built: duplicate prefix, host bits set, bad length, ...; or packed
    arrays / a ``.npz`` file cannot be loaded (names the file and the member)."""


class SnapshotError(FastVpcError, ValueError):
    """A pickled :class:`fastvpc.Dataplane` is corrupt or does not match this version of fastvpc.

    Raised while unpickling, before the kernel sees any array.  ``field`` names the array or
    attribute at fault (``"enis.subnet"``, ``"ip_hash"``, ...); it also starts the message.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"Dataplane snapshot: {field}: {message}")
        self.field = field

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_snapshot_error, (self.field, self.args[0] if self.args else ""))


def _rebuild_snapshot_error(field: str, message: str) -> SnapshotError:
    err = SnapshotError(field, "")
    err.args = (message,)
    return err


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


__all__ += ["SnapshotError"]
