"""Batched packet I/O for the live switch: ``recvmmsg``/``sendmmsg`` on AF_PACKET sockets.

``BatchIO(capacity, slot)`` owns the ``mmsghdr``/``iovec``/``sockaddr_ll`` arrays for up to
``capacity`` frames, allocated once; every call reuses them, runs without the GIL and
allocates nothing.  Sockets are plain file descriptors opened (and owned) by Python.

Receiving: ``recv`` polls the sockets, reads up to ``capacity`` frames in one ``recvmmsg``
per ready socket into fixed slots of ``slot`` bytes, then packs them back to back (Arrow-style
offsets, as :class:`fastvpc.FrameBatch` wants) and writes each frame's ingress port.
Frames longer than ``slot`` are dropped and counted; frames the host itself sent
(``PACKET_OUTGOING``) are dropped too, in case ``PACKET_IGNORE_OUTGOING`` is unavailable.

Sending: ``send`` picks each frame's output socket from the verdict (DELIVER/FORWARD: the
socket attached to ``egress``; REPLY: the ingress socket; DROP: none), tallies the verdicts,
and sends each socket's frames with ``sendmmsg``, retrying briefly when the socket's
queue is full.
"""
cimport cython
import numpy as np
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from libc.stdlib cimport calloc, free
from libc.string cimport memmove

from fastvpc.live._linux cimport (
    EAGAIN, EINTR, EMSGSIZE, ENOBUFS, EWOULDBLOCK, FV_AUX_SPACE, MSG_DONTWAIT, MSG_TRUNC, PACKET_OUTGOING, POLLERR, POLLIN,
    POLLOUT, TP_STATUS_CSUMNOTREADY, errno, fv_aux_status, fv_aux_vlan, iovec, mmsghdr, nfds_t, poll, pollfd, recvmmsg,
    sendmmsg, sockaddr_ll,
)
from fastvpc.live._common cimport (
    _MAX_SOCKETS, _SEG_MTU, _ST_ROUNDS, _ST_RX, _ST_RX_CSUM, _ST_RX_ERRORS, _ST_RX_OUTGOING, _ST_RX_SEGMENTED,
    _ST_RX_TRUNCATED, _ST_RX_VLAN, _ST_TX, _ST_TX_ERRORS, _ST_TX_REFUSED, _ST_TX_UNATTACHED, _STATS_LEN, _check_hold,
    _check_send_args, _complete_l4_csum, _must_cut, _put_tagged, _span_ok, _tcp_split, _verdict_port,
)


#: Largest number of sockets one BatchIO, RxRing or TxRing serves.
MAX_SOCKETS = _MAX_SOCKETS

# Indices into the ``stats`` array every recv/send updates (``int64``, at least STATS_LEN
# entries); the meaning of each is in _common.pxd.
ST_RX = _ST_RX
ST_RX_TRUNCATED = _ST_RX_TRUNCATED
ST_RX_OUTGOING = _ST_RX_OUTGOING
ST_RX_ERRORS = _ST_RX_ERRORS
ST_TX = _ST_TX
ST_TX_ERRORS = _ST_TX_ERRORS
ST_TX_UNATTACHED = _ST_TX_UNATTACHED
ST_ROUNDS = _ST_ROUNDS
ST_RX_CSUM = _ST_RX_CSUM
ST_RX_SEGMENTED = _ST_RX_SEGMENTED
ST_TX_REFUSED = _ST_TX_REFUSED
ST_RX_VLAN = _ST_RX_VLAN
STATS_LEN = _STATS_LEN
#: The IP MTU of the segments a TSO/GSO packet is cut into (receive ring path).
SEG_MTU = _SEG_MTU


def must_cut(int64_t frame_len) -> bool:
    """Does the receive ring cut (TCP/IPv4) frames of ``frame_len`` bytes: longer than the MTU, slot or not."""
    return _must_cut(frame_len)


def split_tcp(const uint8_t[::1] frame, int mtu=_SEG_MTU) -> list[bytes]:
    """The segments (Ethernet frames) the receive ring cuts a TCP/IPv4 packet longer than the MTU
    into, each at most ``mtu`` IP bytes; [] when the frame is not a whole TCP/IPv4 packet."""
    cdef int64_t ln = frame.shape[0], used = 0
    cdef int k, maxseg = <int>(ln // 8 + 1)
    out = np.zeros(maxseg * 128 + 2 * ln, dtype=np.uint8)
    offs = np.zeros(maxseg + 1, dtype=np.int64)
    cdef uint8_t[::1] o = out
    cdef int64_t[::1] of = offs
    if ln == 0:
        return []
    with nogil:
        k = _tcp_split(&frame[0], ln, mtu, &o[0], o.shape[0], maxseg, &of[0], 0, &used)
    if k <= 0:
        return []
    offs[k] = used
    return [bytes(out[offs[j]:offs[j + 1]]) for j in range(k)]


def complete_checksum(uint8_t[::1] frame) -> bool:
    """Write the full TCP/UDP checksum of one Ethernet/IPv4 frame in place, as the receive paths
    do for frames the kernel marks checksum-not-ready; False (frame untouched) when it is not a
    whole IPv4 TCP/UDP packet."""
    cdef int r
    if frame.shape[0] == 0:
        return False
    with nogil:
        r = _complete_l4_csum(&frame[0], frame.shape[0])
    return r != 0


@cython.auto_pickle(False)
cdef class BatchIO:
    """Reusable ``recvmmsg``/``sendmmsg`` state for up to ``capacity`` frames of ``slot`` bytes."""

    cdef mmsghdr *msgs
    cdef iovec *iov
    cdef sockaddr_ll *addrs
    cdef int32_t *order
    cdef uint8_t *cbuf       # one PACKET_AUXDATA control buffer per message
    cdef readonly int capacity
    cdef readonly int slot
    cdef int next_start

    def __cinit__(self, *args, **kwargs):
        self.msgs = NULL
        self.iov = NULL
        self.addrs = NULL
        self.order = NULL
        self.cbuf = NULL

    def __init__(self, int capacity=256, int slot=2048):
        if capacity < 1 or capacity > 65536:
            raise ValueError(f"capacity {capacity} must be in 1..65536")
        if slot < 64 or slot > 262144:
            raise ValueError(f"slot {slot} must be in 64..262144 bytes")
        if self.msgs != NULL:
            raise RuntimeError("BatchIO is already initialised")
        self.capacity = capacity
        self.slot = slot
        self.next_start = 0
        self.msgs = <mmsghdr *>calloc(capacity, sizeof(mmsghdr))
        self.iov = <iovec *>calloc(capacity, sizeof(iovec))
        self.addrs = <sockaddr_ll *>calloc(capacity, sizeof(sockaddr_ll))
        self.order = <int32_t *>calloc(capacity, sizeof(int32_t))
        self.cbuf = <uint8_t *>calloc(capacity, FV_AUX_SPACE)
        if (self.msgs == NULL or self.iov == NULL or self.addrs == NULL or self.order == NULL
                or self.cbuf == NULL):
            raise MemoryError("BatchIO: cannot allocate message arrays")

    def __dealloc__(self):
        free(self.msgs)
        free(self.iov)
        free(self.addrs)
        free(self.order)
        free(self.cbuf)

    @property
    def buffer_size(self) -> int:
        """Bytes the ``data`` array passed to :meth:`recv` must hold: ``capacity * slot``."""
        return <Py_ssize_t>self.capacity * self.slot

    cdef int _recv(self, const int32_t[::1] fds, const int32_t[::1] ports, uint8_t[::1] data,
                   int64_t[::1] offsets, int32_t[::1] port, int64_t[::1] stats,
                   int timeout_ms) noexcept nogil:
        cdef pollfd pfd[_MAX_SOCKETS]
        cdef int nfd = <int>fds.shape[0]
        cdef int i, k, j, r, n = 0, want, got, start
        cdef int cap = self.capacity
        cdef int64_t pos = 0, ln
        cdef uint32_t vlan
        cdef int64_t slot = self.slot
        cdef int32_t p
        cdef int flags
        if nfd <= 0:
            return 0
        for i in range(nfd):
            pfd[i].fd = fds[i]
            pfd[i].events = POLLIN
            pfd[i].revents = 0
        r = poll(pfd, <nfds_t>nfd, timeout_ms)
        if r <= 0:
            return 0
        # round-robin start so that a busy socket cannot starve the others
        start = self.next_start % nfd
        self.next_start = start + 1
        for k in range(nfd):
            if n >= cap:
                break
            i = (start + k) % nfd
            if not (pfd[i].revents & (POLLIN | POLLERR)):
                continue
            want = cap - n
            for j in range(want):
                self.iov[n + j].iov_base = <void *>&data[(n + j) * slot]
                self.iov[n + j].iov_len = <size_t>slot
                self.msgs[n + j].msg_hdr.msg_name = <void *>&self.addrs[n + j]
                self.msgs[n + j].msg_hdr.msg_namelen = sizeof(sockaddr_ll)
                self.msgs[n + j].msg_hdr.msg_iov = &self.iov[n + j]
                self.msgs[n + j].msg_hdr.msg_iovlen = 1
                # PACKET_AUXDATA (set by open_packet_socket) puts the frame's tp_status here
                self.msgs[n + j].msg_hdr.msg_control = <void *>(self.cbuf + (n + j) * FV_AUX_SPACE)
                self.msgs[n + j].msg_hdr.msg_controllen = FV_AUX_SPACE
                self.msgs[n + j].msg_hdr.msg_flags = 0
                self.msgs[n + j].msg_len = 0
            got = recvmmsg(fds[i], &self.msgs[n], <unsigned int>want, MSG_DONTWAIT | MSG_TRUNC, NULL)
            if got < 0:
                if errno != EAGAIN and errno != EWOULDBLOCK and errno != EINTR:
                    stats[_ST_RX_ERRORS] += 1
                continue
            for j in range(got):
                self.order[n + j] = i
            n += got
        # pack the slots back to back; frame j moves down (pos <= j*slot, each packed frame at most a
        # slot long, a tagged one with its tag too), in order
        k = 0
        for j in range(n):
            ln = self.msgs[j].msg_len
            # a tag the kernel stripped into the metadata (rx-vlan-offload) goes back into the frame
            vlan = fv_aux_vlan(&self.msgs[j].msg_hdr) if ln >= 12 else 0
            if ln > slot or (self.msgs[j].msg_hdr.msg_flags & MSG_TRUNC) or (vlan and ln + 4 > slot):
                stats[_ST_RX_TRUNCATED] += 1
                continue
            if self.addrs[j].sll_pkttype == PACKET_OUTGOING:
                stats[_ST_RX_OUTGOING] += 1
                continue
            offsets[k] = pos
            port[k] = ports[self.order[j]]
            if vlan:
                pos += _put_tagged(&data[pos], &data[j * slot], ln, vlan)
                stats[_ST_RX_VLAN] += 1
                k += 1
                continue
            if pos != j * slot and ln > 0:
                memmove(&data[pos], &data[j * slot], <size_t>ln)
            if ln > 0 and fv_aux_status(&self.msgs[j].msg_hdr) & TP_STATUS_CSUMNOTREADY:
                stats[_ST_RX_CSUM] += _complete_l4_csum(&data[pos], ln)
            pos += ln
            k += 1
        offsets[k] = pos
        stats[_ST_RX] += k
        if k > 0:
            stats[_ST_ROUNDS] += 1
        return k

    def recv(self,
             const int32_t[::1] fds,     # IN: socket file descriptors (at most MAX_SOCKETS)
             const int32_t[::1] ports,   # IN: the port each socket feeds (same length as fds)
             uint8_t[::1] data,          # OUT: frames, back to back (needs capacity*slot bytes)
             int64_t[::1] offsets,       # OUT: Arrow-style offsets, capacity+1 entries
             int32_t[::1] port,          # OUT: ingress port of each frame, capacity entries
             int64_t[::1] stats,         # IN/OUT: counters, STATS_LEN entries (ST_* indices)
             int timeout_ms=100,         # IN: poll timeout in ms (0: do not wait, -1: forever)
             ) -> int:
        """Wait up to ``timeout_ms`` for frames, read up to ``capacity``; returns how many.

        Frame ``i`` is ``data[offsets[i]:offsets[i+1]]`` and entered on ``port[i]``.
        Returns 0 on timeout or when interrupted by a signal.
        """
        cdef int n
        if self.msgs == NULL:
            raise RuntimeError("BatchIO is not initialised")
        if fds.shape[0] != ports.shape[0]:
            raise ValueError(f"fds has {fds.shape[0]} entries, ports {ports.shape[0]}")
        if fds.shape[0] > _MAX_SOCKETS:
            raise ValueError(f"{fds.shape[0]} sockets: at most {_MAX_SOCKETS}")
        if data.shape[0] < <Py_ssize_t>self.capacity * self.slot:
            raise ValueError(f"data holds {data.shape[0]} bytes, needs capacity*slot = "
                             f"{<Py_ssize_t>self.capacity * self.slot}")
        if offsets.shape[0] < self.capacity + 1 or port.shape[0] < self.capacity:
            raise ValueError(f"offsets needs {self.capacity + 1} entries (has {offsets.shape[0]}), "
                             f"port {self.capacity} (has {port.shape[0]})")
        if stats.shape[0] < _STATS_LEN:
            raise ValueError(f"stats needs {_STATS_LEN} entries, has {stats.shape[0]}")
        with nogil:
            n = self._recv(fds, ports, data, offsets, port, stats, timeout_ms)
        return n

    cdef int _flush(self, int fd, int count, int64_t[::1] stats) noexcept nogil:
        """sendmmsg ``msgs[0:count]`` on ``fd``; retry while the queue is full (bounded)."""
        cdef int done = 0, r, tries = 0
        cdef pollfd pfd
        while done < count:
            r = sendmmsg(fd, &self.msgs[done], <unsigned int>(count - done), MSG_DONTWAIT)
            if r > 0:
                done += r
                tries = 0
                continue
            if r < 0 and errno == EINTR:
                continue
            # EAGAIN: the socket's send buffer is full, wait a little for room
            if r < 0 and (errno == EAGAIN or errno == EWOULDBLOCK) and tries < 50:
                tries += 1
                pfd.fd = fd
                pfd.events = POLLOUT
                pfd.revents = 0
                poll(&pfd, 1, 1)
                continue
            # EMSGSIZE: over this interface's MTU; ENOBUFS: the device dropped it (veth: over its
            # peer's MTU, peer down).  Either way the frame is refused: skip it, never wait for it.
            if r < 0 and (errno == EMSGSIZE or errno == ENOBUFS):
                stats[_ST_TX_REFUSED] += 1
            else:
                # a hard error (interface down or gone): skip this one frame and go on
                stats[_ST_TX_ERRORS] += 1
            done += 1
            tries = 0
        return done

    cdef int _send(self, const int32_t[::1] port_fd, const uint8_t[::1] data, const int64_t[::1] offsets,
                   const int32_t[::1] in_port, const uint8_t[::1] action, const uint8_t[::1] reason,
                   const int32_t[::1] egress, int64_t[::1] counts, int nreason,
                   int64_t[::1] stats, const uint8_t *hold) noexcept nogil:
        cdef Py_ssize_t n = action.shape[0], i
        cdef Py_ssize_t nport = port_fd.shape[0]
        cdef Py_ssize_t ncount = counts.shape[0]
        cdef int64_t dlen = data.shape[0]
        cdef int fds[_MAX_SOCKETS]
        cdef int nfds = 0, f, c, cap = self.capacity
        cdef int32_t out
        cdef int fd
        cdef int sent = 0
        # pass 1: output fd per frame into order[], tallies, list of distinct fds
        for i in range(n):
            self.order[i] = -1
            out = _verdict_port(i, &action[0], &reason[0], &egress[0], &in_port[0], &counts[0], ncount, nreason)
            if out < 0 or (hold != NULL and hold[i]):
                continue
            fd = port_fd[out] if out < nport else -1
            if fd < 0:
                stats[_ST_TX_UNATTACHED] += 1
                continue
            if not _span_ok(&offsets[0], i, dlen):
                stats[_ST_TX_ERRORS] += 1
                continue
            self.order[i] = fd
            for f in range(nfds):
                if fds[f] == fd:
                    break
            else:
                if nfds < _MAX_SOCKETS:
                    fds[nfds] = fd
                    nfds += 1
        # pass 2: per socket, gather its frames (in order) and sendmmsg them
        for f in range(nfds):
            fd = fds[f]
            c = 0
            for i in range(n):
                if self.order[i] != fd:
                    continue
                self.iov[c].iov_base = <void *>&data[offsets[i]]
                self.iov[c].iov_len = <size_t>(offsets[i + 1] - offsets[i])
                self.msgs[c].msg_hdr.msg_name = NULL
                self.msgs[c].msg_hdr.msg_namelen = 0
                self.msgs[c].msg_hdr.msg_iov = &self.iov[c]
                self.msgs[c].msg_hdr.msg_iovlen = 1
                self.msgs[c].msg_hdr.msg_control = NULL
                self.msgs[c].msg_hdr.msg_controllen = 0
                self.msgs[c].msg_hdr.msg_flags = 0
                c += 1
                if c == cap:
                    sent += self._flush(fd, c, stats)
                    c = 0
            if c:
                sent += self._flush(fd, c, stats)
        return sent

    def send(self,
             const int32_t[::1] port_fd,   # IN: socket fd attached to each port, -1 where none
             const uint8_t[::1] data,      # IN: the processed frames' buffer
             const int64_t[::1] offsets,   # IN: Arrow-style offsets, n+1 entries
             const int32_t[::1] in_port,   # IN: ingress port of each frame, n entries
             const uint8_t[::1] action,    # IN: fastvpc.Action per frame, n entries
             const uint8_t[::1] reason,    # IN: fastvpc.DropReason per frame, n entries
             const int32_t[::1] egress,    # IN: egress port per frame, n entries
             int64_t[::1] counts,          # IN/OUT: tally, counts[action * nreason + reason] += 1
             int nreason,                  # IN: row length of counts (number of DropReason values)
             int64_t[::1] stats,           # IN/OUT: counters, STATS_LEN entries (ST_* indices)
             const uint8_t[::1] hold=None, # IN: optional, n entries: nonzero = tally the verdict, do not send
             ) -> int:
        """Send every DELIVER/FORWARD frame out of its egress port's socket and every REPLY
        out of its ingress port's socket; tally all verdicts.  Returns frames the interfaces took
        (those they refused are in ``stats[ST_TX_REFUSED]``, failed sends in ``stats[ST_TX_ERRORS]``).  Frames with ``hold[i]`` set
        are tallied but not sent (the gateway neighbour table queued them until their next hop
        is resolved).
        """
        cdef Py_ssize_t n = action.shape[0]
        cdef int sent
        cdef const uint8_t *hp = NULL
        if self.msgs == NULL:
            raise RuntimeError("BatchIO is not initialised")
        if n > self.capacity:
            raise ValueError(f"{n} frames: this BatchIO holds at most {self.capacity}")
        _check_send_args(n, offsets, in_port, reason, egress, stats, nreason)
        if hold is not None:
            _check_hold(n, hold)
            if n:
                hp = &hold[0]
        cdef int64_t refused0 = stats[_ST_TX_REFUSED]
        with nogil:
            sent = self._send(port_fd, data, offsets, in_port, action, reason, egress, counts, nreason, stats, hp)
        # a frame the interface refused was not sent (it is in ST_TX_REFUSED)
        sent -= <int>(stats[_ST_TX_REFUSED] - refused0)
        stats[_ST_TX] += sent
        return sent

    def blast(self,
              int fd,                     # IN: a bound AF_PACKET socket
              const uint8_t[::1] frame,   # IN: one frame, sent again and again
              int64_t count,              # IN: how many copies to send
              int64_t[::1] stats,         # IN/OUT: counters (ST_TX, ST_TX_ERRORS)
              ) -> int:
        """Send ``count`` copies of ``frame`` on ``fd`` with sendmmsg (a bounded load generator)."""
        cdef int64_t left = count, total = 0
        cdef int c, j, cap = self.capacity
        if self.msgs == NULL:
            raise RuntimeError("BatchIO is not initialised")
        if frame.shape[0] == 0:
            raise ValueError("frame is empty")
        if stats.shape[0] < _STATS_LEN:
            raise ValueError(f"stats needs {_STATS_LEN} entries, has {stats.shape[0]}")
        cdef int64_t refused0 = stats[_ST_TX_REFUSED]
        with nogil:
            for j in range(cap):
                self.iov[j].iov_base = <void *>&frame[0]
                self.iov[j].iov_len = <size_t>frame.shape[0]
            while left > 0:
                c = cap if left > cap else <int>left
                for j in range(c):
                    self.msgs[j].msg_hdr.msg_name = NULL
                    self.msgs[j].msg_hdr.msg_namelen = 0
                    self.msgs[j].msg_hdr.msg_iov = &self.iov[j]
                    self.msgs[j].msg_hdr.msg_iovlen = 1
                    self.msgs[j].msg_hdr.msg_control = NULL
                    self.msgs[j].msg_hdr.msg_controllen = 0
                    self.msgs[j].msg_hdr.msg_flags = 0
                total += self._flush(fd, c, stats)
                left -= c
        total -= stats[_ST_TX_REFUSED] - refused0
        stats[_ST_TX] += total
        return total
