"""Memory-mapped packet rings for the live switch: ``TPACKET_V3`` receive, ``TPACKET_V2`` transmit.

``RxRing`` copies frames out of the kernel's receive blocks straight into a
:class:`fastvpc.FrameBatch` buffer with no system call while blocks are ready; ``TxRing`` copies
each outgoing frame into its port's transmit ring and hands a whole batch to the kernel with one
``send()``.  Both run without the GIL and allocate nothing per call; the verdict rules, tallies
and ``stats`` indices are those of :class:`fastvpc.live._mmsg.BatchIO` (shared in _common.pxd).
"""
cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy

from fastvpc.live._linux cimport (
    EAGAIN, EINTR, ENOBUFS, EWOULDBLOCK, FV_TX_DATA_OFF, MAP_FAILED, MAP_SHARED, MSG_DONTWAIT, PACKET_OUTGOING,
    POLLIN, POLLOUT, PROT_READ, PROT_WRITE, TP_STATUS_AVAILABLE, TP_STATUS_KERNEL, TP_STATUS_SEND_REQUEST,
    TP_STATUS_USER, c_send, errno, fv_blk_first, fv_blk_num_pkts, fv_blk_status, fv_load_acquire_u32,
    fv_pkt_len, fv_pkt_mac, fv_pkt_next, fv_pkt_snaplen, fv_pkt_status, fv_pkt_type, fv_pkt_vlan, TP_STATUS_CSUMNOTREADY, fv_setup_rx_ring, fv_setup_tx_ring,
    fv_store_release_u32, fv_tx_set_len, fv_tx_status, fv_tx_vnet_hdr, mmap, munmap, nfds_t, poll, pollfd,
)
from fastvpc.live._common cimport (
    _MAX_SOCKETS, _SEG_MTU, _ST_ROUNDS, _ST_RX, _ST_RX_CSUM, _ST_RX_ERRORS, _ST_RX_OUTGOING, _ST_RX_SEGMENTED,
    _ST_RX_TRUNCATED, _ST_RX_VLAN, _ST_TX, _ST_TX_ERRORS, _ST_TX_REFUSED, _ST_TX_UNATTACHED, _STATS_LEN, _check_hold,
    _check_send_args, _complete_l4_csum, _must_cut, _put_tagged, _span_ok, _tcp_split, _verdict_port,
)


cdef struct _Ring:
    int fd
    int32_t port
    uint8_t *map
    size_t map_len
    int64_t block_size
    int nblocks
    int cur          # block being read (or next to become ready)
    uint32_t left    # frames of block ``cur`` not yet read; 0: block not opened yet
    uint8_t *pkt     # next frame header in block ``cur``


@cython.auto_pickle(False)
cdef class RxRing:
    """``TPACKET_V3`` receive rings (``PACKET_RX_RING``, mmap) on AF_PACKET sockets.

    ``RxRing(fds, ports, capacity, slot, block_size, block_count, retire_ms)`` turns each
    socket into a ring reader: the kernel copies frames into blocks of shared memory (in the
    sender's softirq) and :meth:`recv` walks ready blocks and copies up to ``capacity``
    frames straight into a ``FrameBatch`` buffer, with no system call while blocks are
    ready.  A block is handed over when full or ``retire_ms`` after its first frame.
    Raises ``OSError`` when a ring cannot be set up (old kernel, locked memory limit, a
    socket that already has a ring); the sockets are then unusable for rings and the
    caller should fall back to :class:`BatchIO` ``recv`` on fresh sockets.
    Sockets stay owned by the caller; :meth:`close` unmaps the rings (call it before
    closing the sockets).
    """

    cdef _Ring *rings
    cdef int nring
    cdef readonly int capacity
    cdef readonly int slot
    cdef int next_start

    def __cinit__(self, *args, **kwargs):
        self.rings = NULL
        self.nring = 0

    def __init__(self,
                 const int32_t[::1] fds,      # IN: bound AF_PACKET sockets (at most MAX_SOCKETS)
                 const int32_t[::1] ports,    # IN: the port each socket feeds
                 int capacity=256,            # IN: frames per recv at most
                 int slot=2048,               # IN: longest frame accepted (longer: rx_truncated)
                 int block_size=1 << 18,      # IN: ring block bytes (power of two >= page size)
                 int block_count=16,          # IN: blocks per ring
                 int retire_ms=1,             # IN: a partly filled block is handed over after this
                 ):
        cdef int i, err
        cdef void *m
        cdef size_t ln
        if self.rings != NULL:
            raise RuntimeError("RxRing is already initialised")
        if capacity < 1 or capacity > 65536:
            raise ValueError(f"capacity {capacity} must be in 1..65536")
        if slot < 64 or slot > 262144:
            raise ValueError(f"slot {slot} must be in 64..262144 bytes")
        if fds.shape[0] != ports.shape[0]:
            raise ValueError(f"fds has {fds.shape[0]} entries, ports {ports.shape[0]}")
        if fds.shape[0] < 1 or fds.shape[0] > _MAX_SOCKETS:
            raise ValueError(f"{fds.shape[0]} sockets: need 1..{_MAX_SOCKETS}")
        if block_size < 4096 or block_size > (1 << 24) or (block_size & (block_size - 1)):
            raise ValueError(f"block_size {block_size} must be a power of two in 4096..16 MiB")
        if block_count < 2 or block_count > 1024:
            raise ValueError(f"block_count {block_count} must be in 2..1024")
        if retire_ms < 1 or retire_ms > 1000:
            raise ValueError(f"retire_ms {retire_ms} must be in 1..1000")
        self.capacity = capacity
        self.slot = slot
        self.next_start = 0
        self.rings = <_Ring *>calloc(fds.shape[0], sizeof(_Ring))
        if self.rings == NULL:
            raise MemoryError("RxRing: cannot allocate ring table")
        for i in range(fds.shape[0]):
            err = fv_setup_rx_ring(fds[i], <unsigned>block_size, <unsigned>block_count, 2048,
                                   <unsigned>retire_ms)
            if err != 0:
                self.close()
                raise OSError(err, f"cannot set up a TPACKET_V3 receive ring on fd {fds[i]}")
            ln = <size_t>block_size * <size_t>block_count
            m = mmap(NULL, ln, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0)
            if m == MAP_FAILED:
                err = errno
                self.close()
                raise OSError(err, f"cannot mmap the receive ring of fd {fds[i]}")
            self.rings[i].fd = fds[i]
            self.rings[i].port = ports[i]
            self.rings[i].map = <uint8_t *>m
            self.rings[i].map_len = ln
            self.rings[i].block_size = block_size
            self.rings[i].nblocks = block_count
            self.rings[i].cur = 0
            self.rings[i].left = 0
            self.rings[i].pkt = NULL
            self.nring = i + 1

    def close(self) -> None:
        """Unmap the rings (idempotent); :meth:`recv` then raises."""
        cdef int i
        if self.rings != NULL:
            for i in range(self.nring):
                if self.rings[i].map != NULL:
                    munmap(self.rings[i].map, self.rings[i].map_len)
            free(self.rings)
        self.rings = NULL
        self.nring = 0

    def __dealloc__(self):
        self.close()

    @property
    def buffer_size(self) -> int:
        """Bytes the ``data`` array passed to :meth:`recv` must hold: ``capacity * slot``."""
        return <Py_ssize_t>self.capacity * self.slot

    cdef int _ready(self) noexcept nogil:
        """Is a frame waiting in any ring?"""
        cdef int i
        cdef _Ring *r
        for i in range(self.nring):
            r = &self.rings[i]
            if r.left > 0:
                return 1
            if fv_load_acquire_u32(fv_blk_status(r.map + r.cur * r.block_size)) & TP_STATUS_USER:
                return 1
        return 0

    cdef int _drain(self, _Ring *r, uint8_t *data, int64_t *offsets, int32_t *port, int n,
                    int64_t *pos, int64_t *stats) noexcept nogil:
        """Copy frames of ring ``r`` into the batch from index ``n``; returns the new count."""
        cdef int cap = self.capacity
        cdef uint8_t *blk
        cdef uint8_t *h
        cdef uint32_t snap, ln, vlan
        cdef int64_t slot = self.slot
        cdef int64_t total = <int64_t>cap * slot, used = 0
        cdef int k, j, whole
        while n < cap:
            blk = r.map + r.cur * r.block_size
            if r.left == 0:
                if not (fv_load_acquire_u32(fv_blk_status(blk)) & TP_STATUS_USER):
                    break
                r.left = fv_blk_num_pkts(blk)
                r.pkt = blk + fv_blk_first(blk)
                if r.left == 0:
                    fv_store_release_u32(fv_blk_status(blk), TP_STATUS_KERNEL)
                    r.cur = (r.cur + 1) % r.nblocks
                    continue
            h = r.pkt
            snap = fv_pkt_snaplen(h)
            ln = fv_pkt_len(h)
            vlan = fv_pkt_vlan(h) if snap >= 12 else 0   # a tag the kernel stripped: put back below
            whole = 1
            if (_must_cut(ln) and snap == ln and vlan == 0 and fv_pkt_type(h) != PACKET_OUTGOING
                    and fv_pkt_mac(h) + <int64_t>snap <= r.block_size):
                # longer than the MTU: a TSO/GSO packet (a veth with segmentation offload on hands it
                # over whole, of any size from two segments with a short tail, under the slot, up to
                # 64 KB): cut it into MTU-sized segments as the sender's NIC would.  Left whole, the
                # egress veth drops it (over its MTU) and the transmit ring retries it forever.
                # Too big for what is left of this batch: it waits for the next one
                k = _tcp_split(h + fv_pkt_mac(h), ln, _SEG_MTU, data + pos[0], total - pos[0], cap - n,
                               offsets + n, pos[0], &used)
                if k == 0 and n > 0:
                    break
                if k > 0:
                    whole = 0
                    for j in range(k):
                        port[n + j] = r.port
                    n += k
                    pos[0] += used
                    stats[_ST_RX_SEGMENTED] += 1
                elif k == 0 or ln > slot:
                    whole = 0
                    stats[_ST_RX_TRUNCATED] += 1
                # else not TCP/IPv4 and within the slot: handed on whole, as before
            if not whole:
                pass
            elif ln > slot or snap < ln or (vlan and ln + 4 > slot):
                stats[_ST_RX_TRUNCATED] += 1
            elif fv_pkt_type(h) == PACKET_OUTGOING:
                stats[_ST_RX_OUTGOING] += 1
            elif fv_pkt_mac(h) + <int64_t>snap > r.block_size:
                stats[_ST_RX_ERRORS] += 1   # corrupt header: never read past the block
            else:
                offsets[n] = pos[0]
                port[n] = r.port
                if vlan:
                    pos[0] += _put_tagged(data + pos[0], h + fv_pkt_mac(h), snap, vlan)
                    stats[_ST_RX_VLAN] += 1
                else:
                    memcpy(data + pos[0], h + fv_pkt_mac(h), snap)
                    if fv_pkt_status(h) & TP_STATUS_CSUMNOTREADY:
                        # the sender left the checksum to "hardware" (CHECKSUM_PARTIAL): complete it here
                        stats[_ST_RX_CSUM] += _complete_l4_csum(data + pos[0], snap)
                    pos[0] += snap
                n += 1
            r.left -= 1
            if r.left == 0:
                fv_store_release_u32(fv_blk_status(blk), TP_STATUS_KERNEL)
                r.cur = (r.cur + 1) % r.nblocks
            else:
                r.pkt = h + fv_pkt_next(h)
                if r.pkt < blk or r.pkt >= blk + r.block_size:
                    # corrupt offset: give the block back rather than read out of it
                    stats[_ST_RX_ERRORS] += 1
                    r.left = 0
                    fv_store_release_u32(fv_blk_status(blk), TP_STATUS_KERNEL)
                    r.cur = (r.cur + 1) % r.nblocks
        return n

    cdef int _recv(self, uint8_t *data, int64_t *offsets, int32_t *port, int64_t *stats,
                   int timeout_ms, int64_t spin) noexcept nogil:
        cdef pollfd pfd[_MAX_SOCKETS]
        cdef int i, k, n = 0, start
        cdef int64_t pos = 0, s
        if not self._ready():
            s = 0
            while s < spin and not self._ready():
                s += 1
            if s >= spin:
                for i in range(self.nring):
                    pfd[i].fd = self.rings[i].fd
                    pfd[i].events = POLLIN
                    pfd[i].revents = 0
                if poll(pfd, <nfds_t>self.nring, timeout_ms) <= 0:
                    return 0
        start = self.next_start % self.nring
        self.next_start = start + 1
        for k in range(self.nring):
            i = (start + k) % self.nring
            n = self._drain(&self.rings[i], data, offsets, port, n, &pos, stats)
            if n >= self.capacity:
                break
        offsets[n] = pos
        stats[_ST_RX] += n
        if n > 0:
            stats[_ST_ROUNDS] += 1
        return n

    def recv(self,
             uint8_t[::1] data,          # OUT: frames, back to back (needs capacity*slot bytes)
             int64_t[::1] offsets,       # OUT: Arrow-style offsets, capacity+1 entries
             int32_t[::1] port,          # OUT: ingress port of each frame, capacity entries
             int64_t[::1] stats,         # IN/OUT: counters, STATS_LEN entries (ST_* indices)
             int timeout_ms=100,         # IN: poll timeout in ms when no block is ready (0, -1: forever)
             int64_t spin=0,             # IN: ring checks before falling back to poll()
             ) -> int:
        """Copy up to ``capacity`` frames out of the rings; wait up to ``timeout_ms`` when none is
        ready.  Frame ``i`` is ``data[offsets[i]:offsets[i+1]]`` and entered on ``port[i]``."""
        cdef int n
        if self.rings == NULL:
            raise RuntimeError("RxRing is closed")
        if data.shape[0] < <Py_ssize_t>self.capacity * self.slot:
            raise ValueError(f"data holds {data.shape[0]} bytes, needs capacity*slot = "
                             f"{<Py_ssize_t>self.capacity * self.slot}")
        if offsets.shape[0] < self.capacity + 1 or port.shape[0] < self.capacity:
            raise ValueError(f"offsets needs {self.capacity + 1} entries (has {offsets.shape[0]}), "
                             f"port {self.capacity} (has {port.shape[0]})")
        if stats.shape[0] < _STATS_LEN:
            raise ValueError(f"stats needs {_STATS_LEN} entries, has {stats.shape[0]}")
        if spin < 0:
            raise ValueError(f"spin {spin} must be >= 0")
        with nogil:
            n = self._recv(&data[0], &offsets[0], &port[0], &stats[0], timeout_ms, spin)
        return n



cdef struct _TxRing:
    int fd
    uint8_t *map
    size_t map_len
    int64_t frame_size
    int nframes
    int head         # next frame to fill
    int pending      # frames marked SEND_REQUEST since the last kick


@cython.auto_pickle(False)
cdef class TxRing:
    """``TPACKET_V2`` transmit rings (``PACKET_TX_RING``, mmap) on AF_PACKET sockets.

    ``TxRing(port_fd, frame_size, frame_count)``: ``port_fd[p]`` is the socket sending out of
    port ``p`` (-1: none).  :meth:`send` copies each outgoing frame into the next free slot of
    its port's ring and, per ring, hands the whole batch to the kernel with one ``send()``.
    A slot is free again once the kernel has freed the frame's buffer (for veth: once the
    receiving namespace is done with it).  Raises ``OSError`` when a ring cannot be set up.
    """

    cdef _TxRing *rings
    cdef int nring
    cdef int32_t *ring_of_port
    cdef Py_ssize_t nport
    cdef readonly int frame_size
    cdef readonly int frame_count
    cdef readonly bint linear

    def __cinit__(self, *args, **kwargs):
        self.rings = NULL
        self.ring_of_port = NULL
        self.nring = 0

    def __init__(self,
                 const int32_t[::1] port_fd,   # IN: socket sending out of each port, -1 where none
                 int frame_size=2048,          # IN: slot bytes (largest frame: frame_size - 32)
                 int frame_count=1024,         # IN: slots per ring
                 bint linear=True,             # IN: kernel copies each frame into the skb (PACKET_VNET_HDR
                                               #     with hdr_len = frame length); False: the skb points
                                               #     at the ring's pages (no copy, a page reference per frame)
                 ):
        cdef Py_ssize_t p, q
        cdef int i, err, per_block
        cdef int64_t block
        cdef void *m
        cdef size_t ln
        if self.rings != NULL:
            raise RuntimeError("TxRing is already initialised")
        if frame_size < 128 or frame_size > 65536 or (frame_size & (frame_size - 1)):
            raise ValueError(f"frame_size {frame_size} must be a power of two in 128..65536")
        if frame_count < 8 or frame_count > 65536:
            raise ValueError(f"frame_count {frame_count} must be in 8..65536")
        if port_fd.shape[0] < 1 or port_fd.shape[0] > 1 << 20:
            raise ValueError(f"port_fd has {port_fd.shape[0]} entries: need 1..{1 << 20}")
        self.frame_size = frame_size
        self.frame_count = frame_count
        self.linear = linear
        self.nport = port_fd.shape[0]
        self.ring_of_port = <int32_t *>calloc(self.nport, sizeof(int32_t))
        self.rings = <_TxRing *>calloc(_MAX_SOCKETS, sizeof(_TxRing))
        if self.rings == NULL or self.ring_of_port == NULL:
            self.close()
            raise MemoryError("TxRing: cannot allocate ring tables")
        block = frame_size if frame_size >= 4096 else 4096
        per_block = <int>(block // frame_size)
        frame_count = ((frame_count + per_block - 1) // per_block) * per_block
        self.frame_count = frame_count
        for p in range(self.nport):
            self.ring_of_port[p] = -1
            if port_fd[p] < 0:
                continue
            for q in range(p):        # a socket serving two ports gets one ring
                if port_fd[q] == port_fd[p]:
                    self.ring_of_port[p] = self.ring_of_port[q]
                    break
            if self.ring_of_port[p] >= 0:
                continue
            if self.nring >= _MAX_SOCKETS:
                self.close()
                raise ValueError(f"more than {_MAX_SOCKETS} sockets")
            err = fv_setup_tx_ring(port_fd[p], <unsigned>block, <unsigned>(frame_count // per_block),
                                   <unsigned>frame_size, 1 if linear else 0)
            if err != 0:
                self.close()
                raise OSError(err, f"cannot set up a TPACKET_V2 transmit ring on fd {port_fd[p]}")
            ln = <size_t>frame_size * <size_t>frame_count
            m = mmap(NULL, ln, PROT_READ | PROT_WRITE, MAP_SHARED, port_fd[p], 0)
            if m == MAP_FAILED:
                err = errno
                self.close()
                raise OSError(err, f"cannot mmap the transmit ring of fd {port_fd[p]}")
            i = self.nring
            self.rings[i].fd = port_fd[p]
            self.rings[i].map = <uint8_t *>m
            self.rings[i].map_len = ln
            self.rings[i].frame_size = frame_size
            self.rings[i].nframes = frame_count
            self.rings[i].head = 0
            self.rings[i].pending = 0
            self.ring_of_port[p] = i
            self.nring = i + 1

    def close(self) -> None:
        """Unmap the rings (idempotent); :meth:`send` then raises."""
        cdef int i
        if self.rings != NULL:
            for i in range(self.nring):
                if self.rings[i].map != NULL:
                    munmap(self.rings[i].map, self.rings[i].map_len)
            free(self.rings)
        free(self.ring_of_port)
        self.rings = NULL
        self.ring_of_port = NULL
        self.nring = 0

    def __dealloc__(self):
        self.close()

    cdef int _kick(self, _TxRing *r, int64_t *stats) noexcept nogil:
        """Hand the ring's pending frames to the kernel with one send(); returns 0, or 1 when the
        socket's send buffer is full (EAGAIN: the frames stay queued in the ring, pending)."""
        cdef int tries = 0
        cdef ssize_t rc
        while r.pending > 0:
            rc = c_send(r.fd, NULL, 0, MSG_DONTWAIT)
            if rc >= 0:
                r.pending = 0
                return 0
            if errno == EINTR:
                continue
            if errno == EAGAIN or errno == EWOULDBLOCK:
                return 1
            if errno == ENOBUFS and self._skip_refused(r):
                # the device refused one frame (veth: over its peer's MTU, peer down): dropped
                stats[_ST_TX_REFUSED] += 1
                continue
            # a hard error (interface down or gone): count it, try the rest again
            stats[_ST_TX_ERRORS] += 1
            tries += 1
            if tries >= 4:
                r.pending = 0
                return 0
        return 0

    cdef bint _skip_refused(self, _TxRing *r) noexcept nogil:
        """After send() failed with ENOBUFS: make the kernel skip the frame its driver refused.

        tpacket_snd puts a frame the driver dropped (NET_XMIT_DROP) back to SEND_REQUEST and
        stops there without moving its head, so every later send() would try that frame again and
        the port would send nothing more.  The refused frame is the first of this ring's pending
        slots still in SEND_REQUEST (the kernel takes them in ring order and only this thread sends
        on the socket).  Its length is set to 0, a malformed frame the kernel skips and frees
        under PACKET_LOSS.  Returns whether such a slot was found."""
        cdef int k, idx
        cdef uint8_t *f
        idx = r.head - r.pending
        if idx < 0:
            idx += r.nframes
        for k in range(r.pending):
            f = r.map + idx * r.frame_size
            if fv_load_acquire_u32(fv_tx_status(f)) == TP_STATUS_SEND_REQUEST:
                fv_tx_set_len(f, 0)
                return True
            idx = idx + 1 if idx + 1 < r.nframes else 0
        return False

    cdef void _flush(self, _TxRing *r, int64_t *stats) noexcept nogil:
        """Kick until the kernel took every pending frame, waiting up to ~50 ms for room."""
        cdef int tries = 0
        cdef pollfd pfd
        while self._kick(r, stats) and tries < 50:
            tries += 1
            pfd.fd = r.fd
            pfd.events = POLLOUT
            pfd.revents = 0
            poll(&pfd, 1, 1)

    cdef uint8_t *_slot(self, _TxRing *r, int64_t *stats) noexcept nogil:
        """The next free slot of ``r`` (waiting up to ~50 ms for the kernel), or NULL."""
        cdef uint8_t *f = r.map + r.head * r.frame_size
        cdef int tries = 0
        cdef pollfd pfd
        while fv_load_acquire_u32(fv_tx_status(f)) != TP_STATUS_AVAILABLE:
            if tries >= 50:
                return NULL
            if r.pending > 0:
                self._kick(r, stats)
                if fv_load_acquire_u32(fv_tx_status(f)) == TP_STATUS_AVAILABLE:
                    break
            tries += 1
            pfd.fd = r.fd
            pfd.events = POLLOUT
            pfd.revents = 0
            poll(&pfd, 1, 1)
        return f

    cdef int _put(self, _TxRing *r, const uint8_t *frame, int64_t ln, int64_t *stats) noexcept nogil:
        cdef uint8_t *f
        cdef int64_t hdr = 10 if self.linear else 0
        if ln < 14 or ln > r.frame_size - <int64_t>FV_TX_DATA_OFF - hdr or ln > 65535:
            stats[_ST_TX_ERRORS] += 1
            return 0
        f = self._slot(r, stats)
        if f == NULL:
            stats[_ST_TX_ERRORS] += 1
            return 0
        if hdr:
            fv_tx_vnet_hdr(f + FV_TX_DATA_OFF, <uint32_t>ln)
        memcpy(f + FV_TX_DATA_OFF + hdr, frame, <size_t>ln)
        fv_tx_set_len(f, <uint32_t>(ln + hdr))
        fv_store_release_u32(fv_tx_status(f), TP_STATUS_SEND_REQUEST)
        r.head = r.head + 1 if r.head + 1 < r.nframes else 0
        r.pending += 1
        if r.pending >= r.nframes // 2:
            self._kick(r, stats)     # EAGAIN is fine here: the frames stay pending
        return 1

    cdef int _send(self, const uint8_t *data, int64_t dlen, const int64_t *offsets, const int32_t *in_port,
                   const uint8_t *action, const uint8_t *reason, const int32_t *egress, const uint8_t *hold,
                   Py_ssize_t n, int64_t *counts, Py_ssize_t ncount, int nreason, int64_t *stats) noexcept nogil:
        cdef Py_ssize_t i
        cdef int32_t out, ri
        cdef int sent = 0
        for i in range(n):
            out = _verdict_port(i, action, reason, egress, in_port, counts, ncount, nreason)
            if out < 0 or (hold != NULL and hold[i]):
                continue
            ri = self.ring_of_port[out] if out < self.nport else -1
            if ri < 0:
                stats[_ST_TX_UNATTACHED] += 1
                continue
            if not _span_ok(offsets, i, dlen):
                stats[_ST_TX_ERRORS] += 1
                continue
            sent += self._put(&self.rings[ri], data + offsets[i], offsets[i + 1] - offsets[i], stats)
        for ri in range(self.nring):
            self._flush(&self.rings[ri], stats)
        return sent

    def send(self,
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
        """Like :meth:`BatchIO.send` (same verdict rules and tallies), through the rings.
        Returns frames the interfaces took; refused ones are in ``stats[ST_TX_REFUSED]``, failed
        sends in ``stats[ST_TX_ERRORS]``."""
        cdef Py_ssize_t n = action.shape[0]
        cdef int sent
        cdef const uint8_t *hp = NULL
        if self.rings == NULL:
            raise RuntimeError("TxRing is closed")
        _check_send_args(n, offsets, in_port, reason, egress, stats, nreason)
        if hold is not None:
            _check_hold(n, hold)
        if n == 0:
            return 0
        if hold is not None:
            hp = &hold[0]
        cdef int64_t refused0 = stats[_ST_TX_REFUSED]
        with nogil:
            sent = self._send(&data[0] if data.shape[0] else NULL, data.shape[0], &offsets[0], &in_port[0],
                              &action[0], &reason[0], &egress[0], hp, n, &counts[0], counts.shape[0], nreason,
                              &stats[0])
        # a frame the interface refused was not sent (it is in ST_TX_REFUSED)
        sent -= <int>(stats[_ST_TX_REFUSED] - refused0)
        stats[_ST_TX] += sent
        return sent

    def blast(self,
              int port,                   # IN: port whose ring sends
              const uint8_t[::1] frame,   # IN: one frame, sent again and again
              int64_t count,              # IN: how many copies to send
              int batch,                  # IN: frames per send() call
              int64_t[::1] stats,         # IN/OUT: counters (ST_TX, ST_TX_ERRORS)
              ) -> int:
        """Send ``count`` copies of ``frame`` out of ``port`` (a bounded load generator)."""
        cdef int64_t done = 0, tried = 0
        cdef int j, c
        cdef _TxRing *r
        if self.rings == NULL:
            raise RuntimeError("TxRing is closed")
        if not 0 <= port < self.nport or self.ring_of_port[port] < 0:
            raise ValueError(f"port {port} has no transmit ring")
        if frame.shape[0] == 0:
            raise ValueError("frame is empty")
        if batch < 1:
            raise ValueError(f"batch {batch} must be >= 1")
        if stats.shape[0] < _STATS_LEN:
            raise ValueError(f"stats needs {_STATS_LEN} entries, has {stats.shape[0]}")
        r = &self.rings[self.ring_of_port[port]]
        cdef int64_t refused0 = stats[_ST_TX_REFUSED]
        with nogil:
            while tried < count:
                c = batch if count - tried > batch else <int>(count - tried)
                for j in range(c):
                    done += self._put(r, &frame[0], frame.shape[0], &stats[0])
                tried += c
                self._flush(r, &stats[0])
        done -= stats[_ST_TX_REFUSED] - refused0
        stats[_ST_TX] += done
        return done
