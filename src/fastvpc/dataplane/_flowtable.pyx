"""fastvpc connection tracking table: a compiled open-addressing hash table of tracked flows.

The C API a kernel stage cimports is declared in ``_flowtable.pxd`` (read its header first); the
public Python class is :class:`fastvpc.dataplane.state.FlowTable`, a subclass of ``FlowTableCore``.

Layout.  One flat array of 48-byte ``FtEntry`` slots, 64-byte aligned, linear probing from
``home = (hash * n_slots) >> 64``, an empty slot (``state == 0``) ends every probe.  ``n_slots`` is
``capacity / 0.76`` (rounded up, at least ``capacity + 1``), so a full table is at load 0.76 and
costs ``48 / 0.76 = 63.2`` bytes per tracked flow (issue 10 asks for <= 64).  A probe that hits
reads 2.6 slots on average at full load (one or two cache lines, both prefetched).  Deletion is
backward-shift (no tombstones), so probes never get longer with churn.

Semantics (layout-independent, which is what the tests check against a dict model):
- an entry is *live* at ``now`` while ``now <= last_seen + timeout`` (timeout from the state and the
  ENI's ``FtTimeouts`` as of the entry's last packet); an expired entry behaves as absent and its slot
  is reused when needed;
- a new entry can be made while fewer than ``capacity`` entries are live; otherwise ``FT_FULL``.
  Physically: an expired entry on the probe path is reused, else the empty slot while fewer than
  ``capacity`` are held, else (when ``now`` has passed the table's lower bound of all expiries) one
  sweep reclaims every expired entry; only when nothing is expired is the answer ``FT_FULL``.

TCP follows Linux nf_conntrack's state table (``tcp_conntracks`` in
net/netfilter/nf_conntrack_proto_tcp.c, the [dir][flag class][state] table of the 3.x kernels):
flag class RST > SYN(+ACK) > FIN > ACK > none, as ``get_conntrack_index``; a SYN opens SYN_SENT, a
plain ACK opens ESTABLISHED (``nf_conntrack_tcp_loose = 1``, Linux's default); a SYN-ACK, FIN, RST or a
flagless packet opens nothing.  Transitions Linux calls INVALID or IGNORE keep the state (the packet
still belongs to the flow and refreshes it: AWS's idle timer counts any packet either way).  An
original-direction SYN on a TIME_WAIT or CLOSE flow ends it and is handled as the first packet of a
new flow (Linux: ``nf_ct_kill`` + ``NF_REPEAT``; Linux also checks that the close was initiated, which
it always is in those two states except after a lone RST).  Not modelled: window/sequence tracking
and the 300 s RETRANS/UNACK timeout clamps (the stage passes no sequence numbers).

UDP: UNREPLIED (no reply yet), REPLIED (one request-response exchange), STREAM (a second exchange
completed: a reply-direction packet after an original-direction one, after the first reply) -- AWS's
"more than one request-response" stream class.  ICMP: query types (echo 8/0, timestamp 13/14,
information 15/16, address mask 17/18) are tracked by (requester, responder, identifier, query type);
a request opens ICMP_UNREPLIED, its reply moves it to ICMP_REPLIED; replies open nothing; every other
ICMP type (errors included: AWS admits no "related" ICMP) is never tracked.  Every other protocol is
tracked by (addresses, protocol).
"""
cimport cython
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t, INT64_MAX
from libc.string cimport memset, memcpy

import numpy as np

cdef extern from *:
    """
    #include <stdint.h>
    #if defined(__GNUC__) || defined(__clang__)
    static inline int ft_atomic_take(int* f) { return __atomic_exchange_n(f, 1, __ATOMIC_ACQUIRE); }
    static inline void ft_atomic_give(int* f) { __atomic_store_n(f, 0, __ATOMIC_RELEASE); }
    #else
    #include <intrin.h>
    static inline int ft_atomic_take(int* f) { return (int)_InterlockedExchange((volatile long*)f, 1); }
    static inline void ft_atomic_give(int* f) { _InterlockedExchange((volatile long*)f, 0); }
    #endif
    /* ft_range, ft_prefetch_w: _flowtable.pxd; the mix and FV_HMUL: _kernels/fv_hash.h (the hashing is inline) */
    /* ft_tcp_next, ft_tmo_field, FT_NS, FT_BYTES_MASK, FT_IV, FT_IG: _flowtable.pxd (ft_step is inline there) */
    #define FT_CHUNK 256
    #ifndef FT_DIST
    #define FT_DIST 16
    #endif
    """
    int ft_atomic_take(int* f) noexcept nogil
    void ft_atomic_give(int* f) noexcept nogil
    enum: CHUNK "FT_CHUNK"      # packets per ft_make_pkt / ft_track_batch round in track() (on the stack)
    enum: DIST "FT_DIST"        # prefetch distance (packets) in ft_track_batch: ~16 misses in flight

# ----------------------------------------------------------------------------- hashing

# _mix, _tuple_hash, ft_flow_hash, _slot_hash: _flowtable.pxd (inline, so that a kernel stage's key
# making compiles into its loop)

cdef inline uint64_t _entry_hash(const FtEntry* e) noexcept nogil:
    cdef uint64_t fh
    if e.proto == 1:
        if e.a <= e.b:
            fh = _tuple_hash(1, e.a, e.b, e.pa, 0)
        else:
            fh = _tuple_hash(1, e.b, e.a, e.pa, 0)
    else:
        fh = _tuple_hash(e.proto, e.a, e.b, e.pa, e.pb)    # stored normalised already
    return _slot_hash(fh, e.zone)

# ----------------------------------------------------------------------------- packets

# _icmp_request_of, ft_make_pkt: _flowtable.pxd (inline)

# ----------------------------------------------------------------------------- table internals

# _key_eq, _expiry, _next, _probe, _timeout_of, _touch, _tcp_class, _open_state: _flowtable.pxd (inline,
# so that ft_step compiles into a kernel stage's loop)

cdef void ft_delete(FtView* v, uint64_t i) noexcept nogil:
    """Remove slot i (backward-shift deletion: later members of its cluster move up so every
    remaining entry stays reachable from its home without tombstones)."""
    cdef FtEntry* s = v.slots
    cdef uint64_t n = v.n_slots
    cdef uint64_t j = i
    cdef uint64_t k
    while True:
        j = _next(j, n)
        if s[j].state == 0:
            break
        k = ft_range(_entry_hash(&s[j]), n)
        # entry j may stay when its home k lies cyclically in (i, j]
        if (i <= j and i < k and k <= j) or (i > j and (i < k or k <= j)):
            continue
        memcpy(&s[i], &s[j], sizeof(FtEntry))
        i = j
    memset(&s[i], 0, sizeof(FtEntry))
    v.hdr.count -= 1


# ----------------------------------------------------------------------------- C API

cdef int ft_view_init(FtView* v, object table) except -1:
    cdef FlowTableCore c = <FlowTableCore?>table
    if c.slots == NULL:
        raise ValueError("FlowTable has no storage (not initialised)")
    v.slots = c.slots
    v.n_slots = c.n_slots
    v.capacity = c.cap
    v.hdr = &c.hdr
    return 0


cdef int ft_acquire(FtView* v) noexcept nogil:
    return 0 if ft_atomic_take(&v.hdr.busy) == 0 else -1


cdef void ft_release(FtView* v) noexcept nogil:
    ft_atomic_give(&v.hdr.busy)


cdef Py_ssize_t ft_first_backwards(const FtView* v, const int64_t* now, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef int64_t prev = v.hdr.clock
    for i in range(n):
        if now[i] < prev:
            return i
        prev = now[i]
    return -1


cdef int64_t ft_lookup(const FtView* v, const FtPkt* p, int64_t now) noexcept nogil:
    cdef int64_t found, reuse, empty
    if p.kind == FT_K_ICMP_OTHER:
        return -1
    _probe(v, p, now, False, &found, &reuse, &empty)
    return found


cdef uint8_t ft_insert_or_update(FtView* v, const FtPkt* p, uint32_t length, int64_t now,
                                 uint8_t admitted, const FtTimeouts* t, uint8_t* direction,
                                 uint8_t* state) noexcept nogil:
    return _ft_step_full(v, p, length, now, admitted, t, direction, state)


# ft_step (the live-entry path, then this), _ft_step_full: _flowtable.pxd (inline)


cdef void ft_track_batch(FtView* v, const FtPkt* pkts, const uint32_t* lengths, const int64_t* now,
                         const uint8_t* admitted, const FtTimeouts* timeouts, const uint32_t* timeout_idx,
                         uint8_t* code, uint8_t* direction, uint8_t* state, Py_ssize_t n) noexcept nogil:
    """ft_insert_or_update on pkts[0..n) in order (exact sequential semantics), with the home slots of
    the next DIST packets prefetched so ~DIST cache misses are in flight at once.  timeout_idx may be
    NULL (every packet uses timeouts[0])."""
    cdef Py_ssize_t i
    cdef const FtTimeouts* t
    for i in range(n if n < DIST else DIST):
        ft_prefetch(v, pkts[i].hash)
    for i in range(n):
        if i + DIST < n:
            ft_prefetch(v, pkts[i + DIST].hash)
        t = timeouts if timeout_idx == NULL else timeouts + timeout_idx[i]
        code[i] = ft_step(v, &pkts[i], lengths[i], now[i], admitted[i], t, &direction[i], &state[i])


cdef uint64_t ft_expire(FtView* v, int64_t now) noexcept nogil:
    """Reclaim every entry expired at now; recompute the exact lower bound of the remaining expiries."""
    cdef FtEntry* s = v.slots
    cdef uint64_t n = v.n_slots
    cdef uint64_t start = 0
    cdef uint64_t i, steps = 0, got = 0
    cdef int64_t lo = INT64_MAX
    cdef int64_t ex
    if now > v.hdr.clock:
        v.hdr.clock = now
    if v.hdr.count == 0:
        v.hdr.min_expiry = INT64_MAX
        return 0
    while s[start].state != 0:           # an empty slot exists: n_slots > capacity >= count
        start += 1
    # Visit every other slot once, from just after an empty one: a deletion only moves entries not
    # yet visited (later in their cluster, which ends before `start`) into the slot being looked at.
    i = _next(start, n)
    while steps < n - 1:
        if s[i].state != 0:
            ex = _expiry(&s[i])
            if now > ex:
                ft_delete(v, i)
                got += 1
                continue
            if ex < lo:
                lo = ex
        i = _next(i, n)
        steps += 1
    v.hdr.min_expiry = lo
    v.hdr.n_reclaimed += got
    return got


cdef void ft_default_timeouts(FtTimeouts* t) noexcept nogil:
    memset(t, 0, sizeof(FtTimeouts))
    # Linux nf_conntrack defaults (net/netfilter/nf_conntrack_proto_tcp.c tcp_timeouts[], also the
    # nf_conntrack_tcp_timeout_* sysctls in Documentation/networking/nf_conntrack-sysctl.rst) for the
    # TCP states AWS does not document; AWS's own figures where it gives one (EC2 UG "Security group
    # connection tracking", idle timeouts; ConnectionTrackingConfiguration API).
    t.tcp_syn_sent = 120          # Linux SYN_SENT 2 min
    t.tcp_syn_recv = 60           # Linux SYN_RECV 60 s
    t.tcp_established = 432000    # AWS TcpEstablishedTimeout default, 5 days (also Linux's 5 days)
    t.tcp_fin_wait = 120          # Linux FIN_WAIT 2 min
    t.tcp_close_wait = 60         # Linux CLOSE_WAIT 60 s
    t.tcp_last_ack = 30           # Linux LAST_ACK 30 s
    t.tcp_time_wait = 120         # Linux TIME_WAIT 2 min
    t.tcp_close = 10              # Linux CLOSE 10 s
    t.tcp_syn_sent2 = 120         # Linux SYN_SENT2 2 min
    t.udp = 30                    # AWS UdpTimeout default 30 s (Linux nf_conntrack_udp_timeout 30 s)
    t.udp_stream = 180            # AWS UdpStreamTimeout default 180 s (Linux's stream timeout is 120 s)
    t.icmp = 30                   # Linux nf_conntrack_icmp_timeout 30 s (AWS: not documented)
    t.other = 600                 # AWS: other protocols, 600 s (Linux nf_conntrack_generic_timeout 600 s)

cdef int _check_key_layout() except -1:
    """_key_eq compares FtEntry's bytes 0..17 with FtPkt's bytes 8..25: the key fields in one order."""
    cdef FtEntry e
    cdef FtPkt k
    cdef size_t be = <size_t>&e, bk = <size_t>&k
    got = (<size_t>&e.eni - be, <size_t>&e.a - be, <size_t>&e.b - be, <size_t>&e.pa - be, <size_t>&e.pb - be,
           <size_t>&e.proto - be, <size_t>&e.zone - be,
           <size_t>&k.eni - bk - 8, <size_t>&k.a - bk - 8, <size_t>&k.b - bk - 8, <size_t>&k.pa - bk - 8,
           <size_t>&k.pb - bk - 8, <size_t>&k.proto - bk - 8, <size_t>&k.zone - bk - 8)
    if got != (0, 4, 8, 12, 14, 16, 17) * 2:
        raise ImportError(f"fastvpc.dataplane._flowtable: key field offsets {got} are not the ones _key_eq reads")
    return 0


_check_key_layout()

# ----------------------------------------------------------------------------- the object

cdef class FlowTableCore:
    """Storage and compiled operations of a FlowTable (use :class:`fastvpc.FlowTable`)."""

    cdef FtHeader hdr
    cdef FtEntry* slots
    cdef uint64_t n_slots
    cdef uint64_t cap
    cdef readonly object _buf

    def __cinit__(self, *args, **kwargs):
        memset(&self.hdr, 0, sizeof(FtHeader))
        self.hdr.clock = -1
        self.hdr.min_expiry = INT64_MAX
        self.slots = NULL
        self.n_slots = 0
        self.cap = 0

    def __reduce__(self):
        # FlowTable (the Python subclass) pickles its flows; the bare core holds raw pointers
        raise TypeError("a bare FlowTableCore cannot be pickled (fastvpc.FlowTable can)")

    def _attach(self, object buf, uint64_t capacity, uint64_t n_slots) -> None:
        """Use ``buf`` (a zeroed, 64-byte aligned uint8 array of n_slots * 48 bytes) as the slots."""
        cdef uint8_t[::1] b = buf
        if self.slots != NULL:
            raise ValueError("FlowTable storage is already attached")
        if capacity < 1 or n_slots <= capacity or <uint64_t>b.shape[0] != n_slots * sizeof(FtEntry):
            raise ValueError(f"bad FlowTable storage: capacity {capacity}, {n_slots} slots, {b.shape[0]} bytes")
        if (<size_t>&b[0]) % 64:
            raise ValueError("FlowTable storage must be 64-byte aligned")
        self._buf = buf
        self.slots = <FtEntry*>&b[0]
        self.n_slots = n_slots
        self.cap = capacity

    def _acquire(self) -> bool:
        """Take the one-pass-at-a-time flag; False when another pass holds it."""
        return ft_atomic_take(&self.hdr.busy) == 0

    def _release(self) -> None:
        ft_atomic_give(&self.hdr.busy)

    def _stats(self) -> tuple:
        """(count, clock, min_expiry, n_reclaimed, n_slots, capacity)."""
        return (self.hdr.count, self.hdr.clock, self.hdr.min_expiry, self.hdr.n_reclaimed,
                self.n_slots, self.cap)

    def _expire(self, int64_t now) -> int:
        cdef FtView v
        cdef uint64_t got
        ft_view_init(&v, self)
        with nogil:
            got = ft_expire(&v, now)
        return got

    def _clear(self) -> None:
        cdef uint8_t[::1] b = self._buf
        with nogil:
            memset(&b[0], 0, b.shape[0])
        self.hdr.count = 0
        self.hdr.clock = -1
        self.hdr.min_expiry = INT64_MAX
        self.hdr.n_reclaimed = 0

    def _first_backwards(self, const int64_t[::1] now) -> int:
        cdef FtView v
        ft_view_init(&v, self)
        if now.shape[0] == 0:
            return -1
        return ft_first_backwards(&v, &now[0], now.shape[0])

    def _load(self, const uint8_t[:, ::1] rows, int64_t clock, uint64_t n_reclaimed) -> int:
        """Insert validated raw rows into an empty table; -1, or the index of the first row whose key
        repeats an earlier row's (the table is then left empty)."""
        cdef FtView v
        cdef Py_ssize_t r, n = rows.shape[0]
        cdef const FtEntry* src
        cdef FtEntry* e
        cdef uint64_t i
        cdef int64_t lo = INT64_MAX
        cdef int64_t ex
        cdef Py_ssize_t dup = -1
        ft_view_init(&v, self)
        if rows.shape[1] != sizeof(FtEntry):
            raise ValueError(f"rows must be {sizeof(FtEntry)} bytes wide")
        if self.hdr.count != 0:
            raise ValueError("can only load into an empty FlowTable")
        if <uint64_t>n > self.cap:
            raise ValueError(f"{n} rows exceed capacity {self.cap}")
        with nogil:
            for r in range(n):
                src = <const FtEntry*>&rows[r, 0]
                i = ft_range(_entry_hash(src), v.n_slots)
                while v.slots[i].state != 0:
                    e = &v.slots[i]
                    if (e.eni == src.eni and e.a == src.a and e.b == src.b and e.pa == src.pa
                            and e.pb == src.pb and e.proto == src.proto and e.zone == src.zone):
                        dup = r
                        break
                    i = _next(i, v.n_slots)
                if dup >= 0:
                    break
                memcpy(&v.slots[i], src, sizeof(FtEntry))
                v.hdr.count += 1
                ex = _expiry(src)
                if ex < lo:
                    lo = ex
        if dup >= 0:
            self._clear()
            return dup
        self.hdr.clock = clock
        self.hdr.min_expiry = lo
        self.hdr.n_reclaimed = n_reclaimed
        return -1

    def _track(self,
               const uint32_t[::1] eni,        # IN: stable ENI identity per packet
               const uint8_t[::1] zone,        # IN
               const uint8_t[::1] proto,       # IN
               const uint32_t[::1] src,        # IN: host-order IPv4
               const uint32_t[::1] dst,        # IN
               const uint16_t[::1] sport,      # IN (ICMP: identifier)
               const uint16_t[::1] dport,      # IN
               const uint8_t[::1] l4flags,     # IN: TCP flags / ICMP type
               const uint32_t[::1] length,     # IN: bytes
               const int64_t[::1] now,         # IN: ns, non-decreasing, >= the table's clock (checked by caller)
               const uint8_t[::1] admitted,    # IN: FT_DENY / FT_ADMIT / FT_ADMIT_UNTRACKED
               const uint8_t[::1] timeouts,    # IN: k FtTimeouts records (k * 64 bytes)
               const uint32_t[::1] tidx,       # IN: record index per packet (< k), or empty: record 0
               uint8_t[::1] code,              # OUT: FT_* result per packet
               uint8_t[::1] direction,         # OUT: FT_ORIGINAL / FT_REPLY
               uint8_t[::1] state) -> None:    # OUT: state after (0 = no entry)
        """Validation-free batch tracking (fastvpc.dataplane.state.FlowTable.track checks the inputs and
        holds the table's flag); packets in chunks of CHUNK keys made on the stack."""
        cdef FtView v
        cdef FtPkt pk[CHUNK]
        cdef Py_ssize_t n = eni.shape[0]
        cdef Py_ssize_t c0, j, m
        cdef const FtTimeouts* T
        cdef const uint32_t* ti = NULL
        ft_view_init(&v, self)
        if n == 0:
            return
        if timeouts.shape[0] < <Py_ssize_t>sizeof(FtTimeouts) or timeouts.shape[0] % sizeof(FtTimeouts):
            raise ValueError("timeouts must hold whole 64-byte records")
        T = <const FtTimeouts*>&timeouts[0]
        if tidx.shape[0] == n:
            ti = &tidx[0]
        with nogil:
            c0 = 0
            while c0 < n:
                m = n - c0
                if m > CHUNK:
                    m = CHUNK
                for j in range(m):
                    ft_make_pkt(&pk[j], eni[c0 + j], zone[c0 + j], proto[c0 + j], src[c0 + j], dst[c0 + j],
                              sport[c0 + j], dport[c0 + j], l4flags[c0 + j])
                ft_track_batch(&v, pk, &length[c0], &now[c0], &admitted[c0], T,
                               ti + c0 if ti != NULL else NULL, &code[c0], &direction[c0], &state[c0], m)
                c0 += m


def flow_hash_batch(const uint8_t[::1] proto,     # IN
                    const uint32_t[::1] src,      # IN
                    const uint32_t[::1] dst,      # IN
                    const uint16_t[::1] sport,    # IN
                    const uint16_t[::1] dport,    # IN
                    uint64_t[::1] out) -> None:   # OUT: ft_flow_hash per packet
    cdef Py_ssize_t i, n = proto.shape[0]
    with nogil:
        for i in range(n):
            out[i] = ft_flow_hash(proto[i], src[i], dst[i], sport[i], dport[i])


def default_timeouts() -> bytes:
    """The default FtTimeouts record (64 bytes, native order)."""
    cdef FtTimeouts t
    ft_default_timeouts(&t)
    return (<char*>&t)[:sizeof(FtTimeouts)]


def _layout() -> dict:
    """Sizes and constants the Python side mirrors (tests check the mirrors)."""
    return {
        "entry_size": sizeof(FtEntry), "timeouts_size": sizeof(FtTimeouts), "pkt_size": sizeof(FtPkt),
        "max_timeout": FT_MAX_TIMEOUT, "bytes_bits": FT_BYTES_BITS, "chunk": CHUNK, "dist": DIST,
        "codes": {"MISS": FT_MISS, "HIT": FT_HIT, "NEW": FT_NEW, "FULL": FT_FULL, "PASS": FT_PASS},
        "states": {
            "TCP_SYN_SENT": FT_S_TCP_SYN_SENT, "TCP_SYN_RECV": FT_S_TCP_SYN_RECV,
            "TCP_ESTABLISHED": FT_S_TCP_ESTABLISHED, "TCP_FIN_WAIT": FT_S_TCP_FIN_WAIT,
            "TCP_CLOSE_WAIT": FT_S_TCP_CLOSE_WAIT, "TCP_LAST_ACK": FT_S_TCP_LAST_ACK,
            "TCP_TIME_WAIT": FT_S_TCP_TIME_WAIT, "TCP_CLOSE": FT_S_TCP_CLOSE,
            "TCP_SYN_SENT2": FT_S_TCP_SYN_SENT2, "UDP_UNREPLIED": FT_S_UDP_UNREPLIED,
            "UDP_REPLIED": FT_S_UDP_REPLIED, "UDP_STREAM": FT_S_UDP_STREAM,
            "ICMP_UNREPLIED": FT_S_ICMP_UNREPLIED, "ICMP_REPLIED": FT_S_ICMP_REPLIED,
            "OTHER_UNREPLIED": FT_S_OTHER_UNREPLIED, "OTHER_REPLIED": FT_S_OTHER_REPLIED,
        },
        "flags": {"ORIG_HI": FT_F_ORIG_HI, "LAST_REPLY": FT_F_LAST_REPLY, "MASK": FT_F_MASK},
    }
