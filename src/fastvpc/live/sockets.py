"""Opening the AF_PACKET sockets the live switch reads and writes, with typed errors.

``open_packet_socket(ifname)`` is a receive-and-send socket bound to one interface that ignores
the frames the host sends itself; ``open_tx_socket(ifname)`` only sends (for a transmit ring).
Both need ``CAP_NET_RAW`` in the interface's network namespace and say so
(:class:`~fastvpc.errors.LivePermissionError`) when it is missing.
"""

from __future__ import annotations

import errno
import socket

from fastvpc.errors import LiveError, LivePermissionError

__all__ = ["ETH_P_ALL", "PACKET_AUXDATA", "PACKET_IGNORE_OUTGOING", "PACKET_QDISC_BYPASS", "SOL_PACKET",
           "open_packet_socket", "open_tx_socket"]

#: ``ETH_P_ALL`` (every protocol); Python exports it only from 3.12.
ETH_P_ALL = 0x0003
#: ``SOL_PACKET`` and ``PACKET_IGNORE_OUTGOING`` (Linux >= 4.20); Python exports neither.
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
#: ``PACKET_AUXDATA``: each ``recvmsg`` gets a ``tpacket_auxdata`` with the frame's ``tp_status``
#: (``TP_STATUS_CSUMNOTREADY``: its TCP/UDP checksum is partial); the rings have it in their headers.
PACKET_AUXDATA = 8
#: ``PACKET_QDISC_BYPASS`` (Linux >= 3.14): sent frames skip the qdisc layer (veth has none anyway).
PACKET_QDISC_BYPASS = 20


def _permission_message(ifname: str, exc: OSError) -> str:
    return (f"cannot open an AF_PACKET raw socket for interface {ifname!r}: {exc.strerror or exc}. "
            "Live mode needs the CAP_NET_RAW capability in the interface's network namespace: run as root, "
            "grant it to the interpreter (setcap cap_net_raw+ep on the python binary), or run inside "
            "`unshare --user --map-root-user --net` with the interfaces created there")


def _new_packet_socket(ifname: str) -> socket.socket:
    """An unbound AF_PACKET/SOCK_RAW socket for ``ifname`` (name checked), with typed errors.

    Protocol 0: it receives nothing until bound, so no frame of another interface slips in.
    """
    if not isinstance(ifname, str) or not ifname or len(ifname) > 15 or "/" in ifname:
        raise LiveError(f"interface name {ifname!r} is not a valid Linux interface name (1-15 characters)")
    try:
        return socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError as exc:
        raise LivePermissionError(_permission_message(ifname, exc)) from None
    except OSError as exc:
        raise LiveError(f"cannot open an AF_PACKET socket for interface {ifname!r}: {exc}") from None


def open_packet_socket(ifname: str, *, rcvbuf: int = 8 << 20, sndbuf: int = 8 << 20) -> socket.socket:
    """An AF_PACKET/SOCK_RAW socket bound to ``ifname`` only, ignoring outgoing frames.

    Raises :class:`LivePermissionError` without ``CAP_NET_RAW`` and :class:`LiveError`
    when the interface does not exist.
    """
    sock = _new_packet_socket(ifname)
    try:
        try:
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        except OSError:
            pass  # kernel < 4.20: the compiled receiver drops PACKET_OUTGOING frames itself
        try:
            sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
        except OSError:
            pass
        try:
            sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        except OSError:
            pass  # never seen: without it the recvmmsg path cannot tell partial checksums
        for opt, force, size in ((socket.SO_RCVBUF, 33, rcvbuf), (socket.SO_SNDBUF, 32, sndbuf)):
            try:
                sock.setsockopt(socket.SOL_SOCKET, force, size)   # SO_RCVBUFFORCE / SO_SNDBUFFORCE
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, opt, size)
        try:
            sock.bind((ifname, ETH_P_ALL))
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENXIO):
                raise LiveError(f"no network interface named {ifname!r} in this network namespace") from None
            if exc.errno in (errno.EPERM, errno.EACCES):
                raise LivePermissionError(_permission_message(ifname, exc)) from None
            raise LiveError(f"cannot bind an AF_PACKET socket to interface {ifname!r}: {exc}") from None
    except BaseException:
        sock.close()
        raise
    return sock


def open_tx_socket(ifname: str, *, sndbuf: int = 8 << 20) -> socket.socket:
    """An AF_PACKET/SOCK_RAW socket that only sends, out of ``ifname``: bound with protocol 0,
    so it never receives; ``PACKET_QDISC_BYPASS``.  For a ``PACKET_TX_RING``.  Errors as
    :func:`open_packet_socket`."""
    sock = _new_packet_socket(ifname)
    try:
        try:
            sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
        except OSError:
            pass
        try:
            sock.setsockopt(socket.SOL_SOCKET, 32, sndbuf)   # SO_SNDBUFFORCE
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        try:
            sock.bind((ifname, 0))
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENXIO):
                raise LiveError(f"no network interface named {ifname!r} in this network namespace") from None
            raise LiveError(f"cannot bind an AF_PACKET socket to interface {ifname!r}: {exc}") from None
    except BaseException:
        sock.close()
        raise
    return sock
