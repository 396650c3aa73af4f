"""The live switch's neighbour tables for the interfaces attached to gateways (DESIGN §6, live mode).

An interface attached to an internet, VPN or transit gateway is the outside world.  The data
plane answers ARP there with the gateway's MAC; what it FORWARDs to the gateway keeps the Ethernet
header ``process()`` gave it (the VM's MAC to its subnet's gateway MAC), which no outside host
accepts.  ``Neighbours`` does what the gateway's router would do on that link:

* **learn** (before ``process()``, per batch): from every frame an outside host sends to the
  gateway's MAC or to broadcast, the sender's IP -> MAC: an ARP packet's sender fields, an IPv4
  packet's source IP and source MAC (so a remote address behind an outside router maps to that
  router's MAC, and replies reach it);
* **resolve** (after ``process()``): each IPv4 frame FORWARDed out of a gateway interface gets
  source MAC := the gateway's MAC, destination MAC := the entry of its destination IP.  No entry
  (or one still being resolved): the frame is *held* (the send paths tally it but do not send
  it), copied into a small queue, and an ARP request for the destination is sent from the
  gateway's MAC, its sender IP the frame's source IP (as Linux's ``arp_solicit`` picks the
  packet's own source address); unanswered, it is repeated every second, three times in all,
  then the queued frames are dropped (``unresolved``), as a router's ARP does;
* **drain**: the frames to send now: ARP requests, and queued frames whose next hop became known.

Bounded: each gateway interface has its own table of ``capacity`` entries, set-associative
(8 ways per bucket; a new address takes a free way or the way least recently confirmed), so a
flood of spoofed sources on one interface evicts only that interface's entries and never grows
memory.  The queue holds at most ``queue`` frames for all interfaces (a frame that finds it
full is dropped, ``queue_full``).  An entry unconfirmed for 30 s is re-probed (one ARP request,
at most one a second) while it is still used.  Everything runs without the GIL and allocates
nothing per call.
"""
cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset

from fastvpc._kernels.verdicts cimport ACT_FORWARD

cdef enum:
    _WAYS = 8
    _ARP_OUT = 64          # ARP requests waiting to be sent, at most
    _ARP_LEN = 42          # Ethernet + ARP for IPv4
    _MAX_PROBES = 3

cdef enum:
    _EMPTY = 0
    _INCOMPLETE = 1
    _REACHABLE = 2

#: An entry is used as is this long after it was last confirmed; after, re-probed (ns).
REACHABLE_NS = 30_000_000_000
#: Time between ARP requests for one address (ns), and how many before giving up.
RETRANS_NS = 1_000_000_000
MAX_PROBES = _MAX_PROBES
#: Ways per bucket of a table.
WAYS = _WAYS

cdef int64_t _REACHABLE_NS = REACHABLE_NS
cdef int64_t _RETRANS_NS = RETRANS_NS

# Indices of the counters array (Python: counters()).
cdef enum:
    _C_LEARNED = 0         # entries created or changed (a new IP, or a new MAC for one)
    _C_EVICTED = 1         # entries pushed out by a new address (the table is bounded)
    _C_ARP = 2             # ARP requests sent
    _C_QUEUED = 3          # frames held waiting for their next hop
    _C_RELEASED = 4        # held frames sent once it was resolved
    _C_UNRESOLVED = 5      # held frames dropped: no answer to the ARP requests (or the entry evicted)
    _C_QUEUE_FULL = 6      # frames dropped at once: the queue was full
    _C_REWRITTEN = 7       # frames sent straight away with the gateway's MAC and the learned one
    _NCOUNT = 8

_COUNTER_NAMES = ("learned", "evicted", "arp_requests", "queued", "released", "unresolved", "queue_full",
                  "rewritten")


cdef struct _Entry:
    uint32_t ip            # host byte order; meaningful when state != EMPTY
    uint8_t mac[6]
    uint8_t state
    uint8_t probes         # ARP requests sent while INCOMPLETE
    int64_t updated        # when confirmed (REACHABLE) or created (INCOMPLETE)
    int64_t probed         # when the last ARP request for it was sent
    uint32_t sip           # sender IP for its ARP requests


cdef inline uint32_t _ip_at(const uint8_t *p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline bint _usable_ip(uint32_t ip) noexcept nogil:
    """A unicast host address: not 0.0.0.0/8, multicast, reserved or the limited broadcast."""
    return (ip >> 24) != 0 and (ip >> 28) < 14


@cython.auto_pickle(False)
cdef class Neighbours:
    """IP -> MAC tables for the interfaces attached to gateways, with the ARP resolution a router does.

    ``Neighbours(ports, macs, capacity=1024, queue=64, slot=2048)``: ``ports[k]`` is the port of a
    gateway whose interface is attached, ``macs[k]`` (6 bytes) its MAC.  ``capacity``: entries per
    interface (rounded up to a power of two, at least 8); ``queue``: frames held at most, all
    interfaces together; ``slot``: longest frame held (longer ones are dropped as ``queue_full``).
    """

    cdef _Entry *tab
    cdef int nif
    cdef readonly int capacity
    cdef int nbucket
    cdef int32_t *if_of_port
    cdef int32_t nport
    cdef uint8_t *gwmac        # nif * 6
    cdef int32_t *gwport
    # the queue of held frames
    cdef readonly int queue_capacity
    cdef readonly int slot
    cdef uint8_t *qbuf
    cdef int64_t *qlen         # 0: free slot
    cdef int32_t *qif
    cdef uint32_t *qip
    cdef int64_t *qtime
    cdef int nqueued
    # ARP requests to send
    cdef int32_t arp_if[_ARP_OUT]
    cdef uint32_t arp_tip[_ARP_OUT]
    cdef uint32_t arp_sip[_ARP_OUT]
    cdef int narp
    cdef int64_t count[_NCOUNT]

    def __cinit__(self, *args, **kwargs):
        self.tab = NULL
        self.if_of_port = NULL
        self.gwmac = NULL
        self.gwport = NULL
        self.qbuf = NULL
        self.qlen = NULL
        self.qif = NULL
        self.qip = NULL
        self.qtime = NULL
        self.nif = 0
        self.nqueued = 0
        self.narp = 0
        memset(self.count, 0, sizeof(self.count))

    def __init__(self, const int32_t[::1] ports, const uint8_t[:, ::1] macs, int capacity=1024,
                 int queue=64, int slot=2048):
        cdef int k, cap
        cdef int32_t p, maxp = -1
        if self.tab != NULL:
            raise RuntimeError("Neighbours is already initialised")
        if ports.shape[0] < 1 or ports.shape[0] > 64:
            raise ValueError(f"{ports.shape[0]} gateway interfaces: need 1..64")
        if macs.shape[0] != ports.shape[0] or macs.shape[1] != 6:
            raise ValueError(f"macs must be {ports.shape[0]} x 6 bytes, is {macs.shape[0]} x {macs.shape[1]}")
        if capacity < 1 or capacity > (1 << 20):
            raise ValueError(f"capacity {capacity} must be in 1..{1 << 20}")
        if queue < 0 or queue > 65536:
            raise ValueError(f"queue {queue} must be in 0..65536")
        if slot < 64 or slot > 262144:
            raise ValueError(f"slot {slot} must be in 64..262144")
        for k in range(ports.shape[0]):
            if ports[k] < 0 or ports[k] >= (1 << 20):
                raise ValueError(f"port {ports[k]} out of range")
            if ports[k] > maxp:
                maxp = ports[k]
        cap = _WAYS
        while cap < capacity:
            cap *= 2
        self.nif = <int>ports.shape[0]
        self.capacity = cap
        self.nbucket = cap // _WAYS
        self.nport = maxp + 1
        self.queue_capacity = queue
        self.slot = slot
        self.tab = <_Entry *>calloc(<size_t>self.nif * cap, sizeof(_Entry))
        self.if_of_port = <int32_t *>calloc(self.nport, sizeof(int32_t))
        self.gwmac = <uint8_t *>calloc(self.nif, 6)
        self.gwport = <int32_t *>calloc(self.nif, sizeof(int32_t))
        self.qbuf = <uint8_t *>calloc(<size_t>(queue if queue else 1) * slot, 1)
        self.qlen = <int64_t *>calloc(queue if queue else 1, sizeof(int64_t))
        self.qif = <int32_t *>calloc(queue if queue else 1, sizeof(int32_t))
        self.qip = <uint32_t *>calloc(queue if queue else 1, sizeof(uint32_t))
        self.qtime = <int64_t *>calloc(queue if queue else 1, sizeof(int64_t))
        if (self.tab == NULL or self.if_of_port == NULL or self.gwmac == NULL or self.gwport == NULL
                or self.qbuf == NULL or self.qlen == NULL or self.qif == NULL or self.qip == NULL
                or self.qtime == NULL):
            raise MemoryError("Neighbours: cannot allocate its tables")
        for p in range(self.nport):
            self.if_of_port[p] = -1
        for k in range(self.nif):
            if self.if_of_port[ports[k]] >= 0:
                raise ValueError(f"port {ports[k]} is listed twice")
            self.if_of_port[ports[k]] = k
            self.gwport[k] = ports[k]
            memcpy(self.gwmac + 6 * k, &macs[k, 0], 6)

    def __dealloc__(self):
        free(self.tab)
        free(self.if_of_port)
        free(self.gwmac)
        free(self.gwport)
        free(self.qbuf)
        free(self.qlen)
        free(self.qif)
        free(self.qip)
        free(self.qtime)

    # ------------------------------------------------------------------ the table
    cdef inline _Entry *_bucket(self, int k, uint32_t ip) noexcept nogil:
        cdef uint32_t h = <uint32_t>((<uint64_t>ip * 0x9E3779B1u) >> 16)
        return self.tab + (<size_t>k * self.capacity) + (<size_t>(h & <uint32_t>(self.nbucket - 1)) * _WAYS)

    cdef _Entry *_find(self, int k, uint32_t ip) noexcept nogil:
        cdef _Entry *b = self._bucket(k, ip)
        cdef int w
        for w in range(_WAYS):
            if b[w].state != _EMPTY and b[w].ip == ip:
                return &b[w]
        return NULL

    cdef _Entry *_slot_for(self, int k, uint32_t ip) noexcept nogil:
        """The way a new entry for ``ip`` takes: a free one, else the one confirmed longest ago."""
        cdef _Entry *b = self._bucket(k, ip)
        cdef _Entry *victim = &b[0]
        cdef int w
        for w in range(_WAYS):
            if b[w].state == _EMPTY:
                return &b[w]
            if b[w].updated < victim.updated:
                victim = &b[w]
        self.count[_C_EVICTED] += 1
        return victim

    cdef void _learn_one(self, int k, uint32_t ip, const uint8_t *mac, int64_t now) noexcept nogil:
        cdef _Entry *e
        if not _usable_ip(ip):
            return
        e = self._find(k, ip)
        if e == NULL:
            e = self._slot_for(k, ip)
            e.ip = ip
            e.state = _EMPTY
        if e.state != _REACHABLE or e.mac[0] != mac[0] or e.mac[1] != mac[1] or e.mac[2] != mac[2] \
                or e.mac[3] != mac[3] or e.mac[4] != mac[4] or e.mac[5] != mac[5]:
            self.count[_C_LEARNED] += 1
        memcpy(e.mac, mac, 6)
        e.state = _REACHABLE
        e.probes = 0
        e.updated = now

    cdef int _learn(self, const uint8_t *data, int64_t dlen, const int64_t *offsets, const int32_t *port,
                    Py_ssize_t n, int64_t now) noexcept nogil:
        cdef Py_ssize_t i
        cdef int k, learned = 0
        cdef int32_t p
        cdef int64_t ln
        cdef const uint8_t *f
        cdef const uint8_t *gm
        cdef int et
        cdef bint bcast
        for i in range(n):
            p = port[i]
            if p < 0 or p >= self.nport:
                continue
            k = self.if_of_port[p]
            if k < 0 or not (0 <= offsets[i] <= offsets[i + 1] <= dlen):
                continue
            f = data + offsets[i]
            ln = offsets[i + 1] - offsets[i]
            if ln < 34:
                continue
            gm = self.gwmac + 6 * k
            bcast = (f[0] & f[1] & f[2] & f[3] & f[4] & f[5]) == 0xFF
            if not bcast and (f[0] != gm[0] or f[1] != gm[1] or f[2] != gm[2] or f[3] != gm[3]
                              or f[4] != gm[4] or f[5] != gm[5]):
                continue          # not for the gateway: another host's frame on a shared link
            if (f[6] & 1) or (f[6] | f[7] | f[8] | f[9] | f[10] | f[11]) == 0:
                continue          # a group or null source MAC is no host's
            if (f[6] == gm[0] and f[7] == gm[1] and f[8] == gm[2] and f[9] == gm[3] and f[10] == gm[4]
                    and f[11] == gm[5]):
                continue
            et = (f[12] << 8) | f[13]
            if et == 0x0800:
                if (f[14] >> 4) != 4:
                    continue
                self._learn_one(k, _ip_at(f + 26), f + 6, now)
                learned += 1
            elif et == 0x0806 and ln >= 42:
                # Ethernet/IPv4 ARP (request or reply): the sender's fields
                if f[14] != 0 or f[15] != 1 or f[16] != 0x08 or f[17] != 0 or f[18] != 6 or f[19] != 4:
                    continue
                if (f[22] & 1) or (f[22] | f[23] | f[24] | f[25] | f[26] | f[27]) == 0:
                    continue
                self._learn_one(k, _ip_at(f + 28), f + 22, now)
                learned += 1
        return learned

    # ------------------------------------------------------------------ resolution
    cdef void _want_arp(self, int k, _Entry *e, int64_t now) noexcept nogil:
        """Queue an ARP request for ``e`` (when none went out within RETRANS_NS)."""
        if e.probed != 0 and now - e.probed < _RETRANS_NS:
            return
        if self.narp >= _ARP_OUT:
            return                # sent on a later round: probed stays as it was
        self.arp_if[self.narp] = k
        self.arp_tip[self.narp] = e.ip
        self.arp_sip[self.narp] = e.sip
        self.narp += 1
        e.probed = now if now != 0 else 1
        if e.state == _INCOMPLETE:
            e.probes += 1

    cdef int _enqueue(self, int k, uint32_t ip, const uint8_t *f, int64_t ln, int64_t now) noexcept nogil:
        cdef int q
        if ln > self.slot or self.nqueued >= self.queue_capacity:
            self.count[_C_QUEUE_FULL] += 1
            return 0
        for q in range(self.queue_capacity):
            if self.qlen[q] == 0:
                memcpy(self.qbuf + <size_t>q * self.slot, f, <size_t>ln)
                self.qlen[q] = ln
                self.qif[q] = k
                self.qip[q] = ip
                self.qtime[q] = now
                self.nqueued += 1
                self.count[_C_QUEUED] += 1
                return 1
        self.count[_C_QUEUE_FULL] += 1
        return 0

    cdef int _resolve(self, uint8_t *data, int64_t dlen, const int64_t *offsets, const uint8_t *action,
                      const int32_t *egress, uint8_t *hold, Py_ssize_t n, int64_t now) noexcept nogil:
        cdef Py_ssize_t i
        cdef int k, held = 0
        cdef int32_t p
        cdef int64_t ln
        cdef uint8_t *f
        cdef uint32_t dst
        cdef _Entry *e
        for i in range(n):
            hold[i] = 0
            if action[i] != ACT_FORWARD:
                continue
            p = egress[i]
            if p < 0 or p >= self.nport:
                continue
            k = self.if_of_port[p]
            if k < 0 or not (0 <= offsets[i] <= offsets[i + 1] <= dlen):
                continue
            f = data + offsets[i]
            ln = offsets[i + 1] - offsets[i]
            if ln < 34 or f[12] != 0x08 or f[13] != 0x00:
                continue
            dst = _ip_at(f + 30)
            e = self._find(k, dst)
            if e != NULL and e.state == _REACHABLE:
                memcpy(f, e.mac, 6)
                memcpy(f + 6, self.gwmac + 6 * k, 6)
                self.count[_C_REWRITTEN] += 1
                if now - e.updated > _REACHABLE_NS:
                    e.sip = _ip_at(f + 26)
                    self._want_arp(k, e, now)      # still used; re-confirmed when it answers
                continue
            # unknown next hop: hold the frame, resolve it
            hold[i] = 1
            held += 1
            if e == NULL:
                if not _usable_ip(dst):
                    self.count[_C_UNRESOLVED] += 1
                    continue
                e = self._slot_for(k, dst)
                memset(e, 0, sizeof(_Entry))
                e.ip = dst
                e.state = _INCOMPLETE
                e.updated = now
            e.sip = _ip_at(f + 26)
            if e.probes < _MAX_PROBES:
                self._want_arp(k, e, now)
            self._enqueue(k, dst, f, ln, now)
        return held

    cdef int _drain(self, uint8_t *out, int64_t outlen, int64_t *offsets, int32_t *port, int cap,
                    int64_t now) noexcept nogil:
        cdef int q, a, c = 0, k
        cdef int64_t pos = 0, ln
        cdef _Entry *e
        cdef uint8_t *f
        cdef const uint8_t *gm
        # held frames: send the resolved, retry or give up the others
        for q in range(self.queue_capacity):
            if self.nqueued == 0:
                break
            ln = self.qlen[q]
            if ln == 0:
                continue
            k = self.qif[q]
            e = self._find(k, self.qip[q])
            if e != NULL and e.state == _REACHABLE:
                if c >= cap or pos + ln > outlen:
                    continue          # next round
                f = out + pos
                memcpy(f, self.qbuf + <size_t>q * self.slot, <size_t>ln)
                memcpy(f, e.mac, 6)
                memcpy(f + 6, self.gwmac + 6 * k, 6)
                offsets[c] = pos
                port[c] = self.gwport[k]
                pos += ln
                c += 1
                self.count[_C_RELEASED] += 1
            elif e != NULL and (e.probes < _MAX_PROBES or now - e.probed < _RETRANS_NS):
                if e.probes < _MAX_PROBES:
                    self._want_arp(k, e, now)
                continue
            else:
                # no answer to MAX_PROBES requests (or the entry was pushed out): drop, forget
                if e != NULL:
                    e.state = _EMPTY
                self.count[_C_UNRESOLVED] += 1
            self.qlen[q] = 0
            self.nqueued -= 1
        # ARP requests
        a = 0
        while a < self.narp and c < cap and pos + _ARP_LEN <= outlen:
            k = self.arp_if[a]
            gm = self.gwmac + 6 * k
            f = out + pos
            memset(f, 0xFF, 6)
            memcpy(f + 6, gm, 6)
            f[12] = 0x08; f[13] = 0x06
            f[14] = 0; f[15] = 1; f[16] = 0x08; f[17] = 0; f[18] = 6; f[19] = 4
            f[20] = 0; f[21] = 1                                   # request
            memcpy(f + 22, gm, 6)
            f[28] = <uint8_t>(self.arp_sip[a] >> 24); f[29] = <uint8_t>(self.arp_sip[a] >> 16)
            f[30] = <uint8_t>(self.arp_sip[a] >> 8); f[31] = <uint8_t>self.arp_sip[a]
            memset(f + 32, 0, 6)
            f[38] = <uint8_t>(self.arp_tip[a] >> 24); f[39] = <uint8_t>(self.arp_tip[a] >> 16)
            f[40] = <uint8_t>(self.arp_tip[a] >> 8); f[41] = <uint8_t>self.arp_tip[a]
            offsets[c] = pos
            port[c] = self.gwport[k]
            pos += _ARP_LEN
            c += 1
            a += 1
            self.count[_C_ARP] += 1
        if a:
            for q in range(a, self.narp):
                self.arp_if[q - a] = self.arp_if[q]
                self.arp_tip[q - a] = self.arp_tip[q]
                self.arp_sip[q - a] = self.arp_sip[q]
            self.narp -= a
        offsets[c] = pos
        return c

    # ------------------------------------------------------------------ Python entry points
    def learn(self,
              const uint8_t[::1] data,      # IN: the received frames' buffer
              const int64_t[::1] offsets,   # IN: Arrow-style offsets, n+1 entries
              const int32_t[::1] port,      # IN: ingress port of each frame, n entries
              int64_t now,                  # IN: monotonic time, ns
              ) -> int:
        """Learn sender IP -> MAC from the frames that entered on gateway interfaces; returns how
        many frames taught something (refreshing an entry counts)."""
        cdef Py_ssize_t n = port.shape[0]
        cdef int r
        if offsets.shape[0] < n + 1:
            raise ValueError(f"offsets has {offsets.shape[0]} entries for {n} frames")
        if n == 0:
            return 0
        with nogil:
            r = self._learn(&data[0] if data.shape[0] else NULL, data.shape[0], &offsets[0], &port[0], n, now)
        return r

    def resolve(self,
                uint8_t[::1] data,            # IN/OUT: the processed frames' buffer (MACs rewritten)
                const int64_t[::1] offsets,   # IN: Arrow-style offsets, n+1 entries
                const uint8_t[::1] action,    # IN: fastvpc.Action per frame, n entries
                const int32_t[::1] egress,    # IN: egress port per frame, n entries
                uint8_t[::1] hold,            # OUT: 1 for a frame held (queued or dropped), else 0
                int64_t now,                  # IN: monotonic time, ns
                ) -> int:
        """Give each frame FORWARDed out of a gateway interface the gateway's source MAC and its
        next hop's MAC; hold (and queue) those whose next hop is not known yet.  Returns frames held."""
        cdef Py_ssize_t n = action.shape[0]
        cdef int r
        if offsets.shape[0] < n + 1 or egress.shape[0] < n or hold.shape[0] < n:
            raise ValueError(f"arrays are shorter than the {n} frames of action (offsets {offsets.shape[0]}, "
                             f"egress {egress.shape[0]}, hold {hold.shape[0]})")
        if n == 0:
            return 0
        with nogil:
            r = self._resolve(&data[0] if data.shape[0] else NULL, data.shape[0], &offsets[0], &action[0],
                              &egress[0], &hold[0], n, now)
        return r

    @property
    def pending(self) -> int:
        """Frames held plus ARP requests waiting: :meth:`drain` has work when nonzero."""
        return self.nqueued + self.narp

    @property
    def drain_capacity(self) -> int:
        """Frames one :meth:`drain` may return at most (size its ``offsets``/``port`` arrays from it)."""
        return self.queue_capacity + _ARP_OUT

    @property
    def drain_buffer_size(self) -> int:
        """Bytes the ``out`` array of :meth:`drain` should hold to take everything in one call."""
        return <Py_ssize_t>self.queue_capacity * self.slot + _ARP_OUT * _ARP_LEN

    def drain(self,
              uint8_t[::1] out,             # OUT: frames to send, back to back
              int64_t[::1] offsets,         # OUT: Arrow-style offsets (returned count + 1 entries used)
              int32_t[::1] port,            # OUT: the gateway port each leaves by
              int64_t now,                  # IN: monotonic time, ns
              ) -> int:
        """Frames to send now: held frames whose next hop became known (MACs written), then ARP
        requests; retries and gives up resolutions on the way.  Returns how many."""
        cdef int cap = <int>min(port.shape[0], offsets.shape[0] - 1)
        cdef int r
        if cap < 1:
            raise ValueError("drain needs room for at least one frame")
        with nogil:
            r = self._drain(&out[0] if out.shape[0] else NULL, out.shape[0], &offsets[0], &port[0], cap, now)
        return r

    def counters(self) -> dict[str, int]:
        """learned, evicted, arp_requests, queued, released, unresolved, queue_full, rewritten."""
        return {name: int(self.count[i]) for i, name in enumerate(_COUNTER_NAMES)}

    def entries(self, int port) -> list[tuple[str, str, str]]:
        """The table of gateway ``port``'s interface: (ip, mac, "reachable" | "incomplete") per entry."""
        cdef int k, w, j
        cdef _Entry *e
        if port < 0 or port >= self.nport or self.if_of_port[port] < 0:
            raise KeyError(f"port {port} is not a gateway interface of this table")
        k = self.if_of_port[port]
        out = []
        for w in range(self.capacity):
            e = &self.tab[<size_t>k * self.capacity + w]
            if e.state == _EMPTY:
                continue
            ip = f"{e.ip >> 24}.{(e.ip >> 16) & 255}.{(e.ip >> 8) & 255}.{e.ip & 255}"
            octets = []
            for j in range(6):
                octets.append(f"{e.mac[j]:02x}")
            mac = ":".join(octets)
            out.append((ip, mac, "reachable" if e.state == _REACHABLE else "incomplete"))
        return out
