# NAT gateway bindings kept in a FlowTable (docs/edge.md §4; DESIGN §6): a region of the FlowTable
# object of its own (fastvpc.dataplane.nattable.NatRegion owns the arrays), so the conntrack entries
# (dataplane/_flowtable.pyx) are untouched.  The kernel's nat stage (_kernels/stages/nat.pxd) reads and
# writes it in the table pass, serially and in frame order.
#
# The semantics are fastvpc.reference_edge.NatTable / FragmentTable exactly (the same stored set at
# every step, so the same ports are allocated):
#   * a binding is keyed by its inside tuple (nat, proto, inside IP, inside port, remote IP, remote
#     port) and by its outside tuple (nat, proto, NAT IP, NAT port, remote IP, remote port); one
#     record, two open-addressing hashes of record indices (linear probing, backward-shift deletion);
#   * a binding idle >= idle_ns is expired; it is removed when a lookup meets it, when a port
#     candidate's holder is expired, or by a sweep when the destination limit or the capacity is
#     reached (lazy reclamation, as the reference);
#   * per destination (nat, NAT IP, remote IP, remote port, proto) a count of stored bindings, for
#     the 55,000 limit;
#   * UDP first fragments: a ring of NAT_FRAGS entries (oldest evicted first), scanned linearly
#     (later fragments are rare).
# Records live in dense arrays (a removal moves the last record into the hole), so a sweep is a
# scan of the held records only.  Nothing is allocated here: the arrays are made (once, lazily) by
# the Python side before a pass.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t


cdef extern from *:
    """
    #include <string.h>
    #include <stdint.h>
    #include "fv_hash.h"      /* fv_mix64: the one mix of every fastvpc hash table */
    #define NAT_FRAGS 4096
    #define NAT_PORT_MIN 1024
    #define NAT_PORT_MAX 65535
    /* meta[] slots */
    #define NM_COUNT 0        /* held bindings */
    #define NM_NDEST 1        /* held destination records */
    #define NM_CAP 2          /* most bindings held at once (the FlowTable's capacity) */
    #define NM_MAXDEST 3      /* most bindings per destination (55,000) */
    #define NM_IDLE 4         /* idle timeout, ns */
    #define NM_FHEAD 5        /* fragment ring: oldest entry */
    #define NM_FCOUNT 6       /* fragment ring: entries */
    #define NM_NEXTEXP 7      /* no held binding expires before this (a sweep before it finds nothing) */
    #define NM_HMASK 8        /* hash slots - 1 */
    #define NM_N 16

    typedef struct {          /* 40 bytes */
        uint32_t nat, inside_ip, remote_ip, nat_ip;
        uint16_t inside_port, remote_port, nat_port;
        uint8_t proto, pad;
        int64_t first_seen, last_seen;
    } NatB;

    typedef struct {          /* 24 bytes */
        uint32_t nat, nat_ip, remote_ip;
        uint16_t remote_port;
        uint8_t proto, pad;
        uint32_t count, pad2;
    } NatDest;

    typedef struct {          /* 32 bytes: a UDP first fragment's (src, dst, IP id) -> the binding's outside key */
        uint32_t src, dst;
        uint16_t ipid, pad;
        uint32_t nat, nat_ip, remote_ip;
        uint16_t nat_port, remote_port;
        uint8_t proto, pad2, pad3, pad4;
    } NatFrag;

    typedef struct {
        NatB* b;
        int32_t* hin;         /* inside-key hash: record index, -1 empty */
        int32_t* hout;        /* outside-key hash */
        NatDest* d;
        int32_t* hd;          /* destination hash */
        NatFrag* fr;          /* NAT_FRAGS ring */
        int64_t* meta;
        uint64_t mask;
    } NatView;

    static inline uint64_t nat_h5(uint32_t nat, uint8_t proto, uint32_t a, uint16_t pa, uint32_t r, uint16_t pr) {
        return fv_mix64(((uint64_t)nat << 32 | a) ^ fv_mix64(((uint64_t)r << 32) | ((uint64_t)pa << 16) | pr)
                       ^ ((uint64_t)proto << 56));
    }
    static inline uint64_t nat_hin(const NatB* b) {
        return nat_h5(b->nat, b->proto, b->inside_ip, b->inside_port, b->remote_ip, b->remote_port);
    }
    static inline uint64_t nat_hout(const NatB* b) {
        return nat_h5(b->nat ^ 0x5bd1e995u, b->proto, b->nat_ip, b->nat_port, b->remote_ip, b->remote_port);
    }
    static inline uint64_t nat_hdest(uint32_t nat, uint32_t nip, uint32_t rip, uint16_t rport, uint8_t proto) {
        return nat_h5(nat ^ 0x27d4eb2fu, proto, nip, 0, rip, rport);
    }

    /* the slot holding record i in hash h (whose hash of record i is hv); -1 when absent (a bug) */
    static inline int64_t nat_slot_of(const int32_t* h, uint64_t mask, uint64_t hv, int32_t i) {
        uint64_t s = hv & mask;
        while (h[s] >= 0) { if (h[s] == i) return (int64_t)s; s = (s + 1) & mask; }
        return -1;
    }
    /* backward-shift deletion of slot s; home(x) = hash of record x */
    #define NAT_DELETE(h, mask, s0, HOME) do {                                   \
        uint64_t i_ = (uint64_t)(s0), j_ = i_, k_;                               \
        for (;;) {                                                                \
            j_ = (j_ + 1) & (mask);                                               \
            if ((h)[j_] < 0) break;                                               \
            k_ = (HOME((h)[j_])) & (mask);                                        \
            if ((j_ > i_ && (k_ <= i_ || k_ > j_)) || (j_ < i_ && (k_ <= i_ && k_ > j_))) { \
                (h)[i_] = (h)[j_]; i_ = j_;                                       \
            }                                                                     \
        }                                                                         \
        (h)[i_] = -1;                                                             \
    } while (0)
    static inline void nat_hash_insert(int32_t* h, uint64_t mask, uint64_t hv, int32_t i) {
        uint64_t s = hv & mask;
        while (h[s] >= 0) s = (s + 1) & mask;
        h[s] = i;
    }

    static inline int32_t nat_find_in(const NatView* v, uint32_t nat, uint8_t proto, uint32_t iip, uint16_t iport,
                                      uint32_t rip, uint16_t rport) {
        uint64_t s = nat_h5(nat, proto, iip, iport, rip, rport) & v->mask;
        int32_t k; const NatB* b;
        while ((k = v->hin[s]) >= 0) {
            b = &v->b[k];
            if (b->nat == nat && b->proto == proto && b->inside_ip == iip && b->inside_port == iport
                    && b->remote_ip == rip && b->remote_port == rport) return k;
            s = (s + 1) & v->mask;
        }
        return -1;
    }
    static inline int32_t nat_find_out(const NatView* v, uint32_t nat, uint8_t proto, uint32_t nip, uint16_t nport,
                                       uint32_t rip, uint16_t rport) {
        uint64_t s = nat_h5(nat ^ 0x5bd1e995u, proto, nip, nport, rip, rport) & v->mask;
        int32_t k; const NatB* b;
        while ((k = v->hout[s]) >= 0) {
            b = &v->b[k];
            if (b->nat == nat && b->proto == proto && b->nat_ip == nip && b->nat_port == nport
                    && b->remote_ip == rip && b->remote_port == rport) return k;
            s = (s + 1) & v->mask;
        }
        return -1;
    }
    static inline int32_t nat_find_dest(const NatView* v, uint32_t nat, uint32_t nip, uint32_t rip, uint16_t rport,
                                        uint8_t proto) {
        uint64_t s = nat_hdest(nat, nip, rip, rport, proto) & v->mask;
        int32_t k; const NatDest* d;
        while ((k = v->hd[s]) >= 0) {
            d = &v->d[k];
            if (d->nat == nat && d->nat_ip == nip && d->remote_ip == rip && d->remote_port == rport
                    && d->proto == proto) return k;
            s = (s + 1) & v->mask;
        }
        return -1;
    }

    /* the home slots of a record (the view is the caller's local v) */
    #define NAT_HOME_IN(x) nat_hin(&v->b[(x)])
    #define NAT_HOME_OUT(x) nat_hout(&v->b[(x)])
    #define NAT_HOME_D(x) nat_hdest(v->d[(x)].nat, v->d[(x)].nat_ip, v->d[(x)].remote_ip, \
                                    v->d[(x)].remote_port, v->d[(x)].proto)

    /* remove binding i (its hash slots, its destination count; the last record moves into i) */
    static void nat_remove(NatView* v, int32_t i) {
        NatB* b = &v->b[i];
        int64_t n = v->meta[NM_COUNT], s;
        int32_t last = (int32_t)(n - 1), di;
        NatDest* d;
        s = nat_slot_of(v->hin, v->mask, nat_hin(b), i);
        if (s >= 0) NAT_DELETE(v->hin, v->mask, s, NAT_HOME_IN);
        s = nat_slot_of(v->hout, v->mask, nat_hout(b), i);
        if (s >= 0) NAT_DELETE(v->hout, v->mask, s, NAT_HOME_OUT);
        di = nat_find_dest(v, b->nat, b->nat_ip, b->remote_ip, b->remote_port, b->proto);
        if (di >= 0) {
            d = &v->d[di];
            if (d->count > 1) {
                d->count -= 1;
            } else {
                int32_t dl = (int32_t)(v->meta[NM_NDEST] - 1);
                s = nat_slot_of(v->hd, v->mask, NAT_HOME_D(di), di);
                if (s >= 0) NAT_DELETE(v->hd, v->mask, s, NAT_HOME_D);
                if (di != dl) {
                    s = nat_slot_of(v->hd, v->mask, NAT_HOME_D(dl), dl);
                    v->d[di] = v->d[dl];
                    if (s >= 0) v->hd[s] = di;
                }
                v->meta[NM_NDEST] = dl;
            }
        }
        if (i != last) {
            int64_t s1 = nat_slot_of(v->hin, v->mask, nat_hin(&v->b[last]), last);
            int64_t s2 = nat_slot_of(v->hout, v->mask, nat_hout(&v->b[last]), last);
            v->b[i] = v->b[last];
            if (s1 >= 0) v->hin[s1] = i;
            if (s2 >= 0) v->hout[s2] = i;
        }
        v->meta[NM_COUNT] = n - 1;
    }

    /* remove every expired binding (the reference's NatTable.expire); returns how many */
    static int64_t nat_sweep(NatView* v, int64_t now) {
        int64_t i, got = 0, idle = v->meta[NM_IDLE], lo = INT64_MAX;
        if (now < v->meta[NM_NEXTEXP]) return 0;      /* nothing held can have expired yet */
        for (i = v->meta[NM_COUNT] - 1; i >= 0; i--) {
            if (now - v->b[i].last_seen >= idle) { nat_remove(v, (int32_t)i); got++; }
        }
        for (i = 0; i < v->meta[NM_COUNT]; i++) {
            if (v->b[i].last_seen + idle < lo) lo = v->b[i].last_seen + idle;
        }
        v->meta[NM_NEXTEXP] = lo;
        return got;
    }

    /* a live binding or -1; an expired one met here is removed (the reference's _live) */
    static inline int32_t nat_live(NatView* v, int32_t k, int64_t now) {
        if (k < 0) return -1;
        if (now - v->b[k].last_seen >= v->meta[NM_IDLE]) { nat_remove(v, k); return -1; }
        return k;
    }

    static inline int32_t nat_dest_count(const NatView* v, uint32_t nat, uint32_t nip, uint32_t rip, uint16_t rport,
                                         uint8_t proto) {
        int32_t di = nat_find_dest(v, nat, nip, rip, rport, proto);
        return di < 0 ? 0 : (int32_t)v->d[di].count;
    }

    #define NAT_OK 0
    #define NAT_RST 1
    #define NAT_NOBIND 2
    #define NAT_EXHAUSTED 3
    #define NAT_FULL 4

    /* NatTable.outbound: OUT *bi the binding (NAT_OK) */
    static int nat_outbound(NatView* v, uint32_t nat, uint32_t nip, uint8_t proto, uint32_t iip, uint16_t iport,
                            uint32_t rip, uint16_t rport, int64_t now, uint8_t tcp_flags, int32_t* bi) {
        int32_t k = nat_live(v, nat_find_in(v, nat, proto, iip, iport, rip, rport), now);
        int64_t used, span = NAT_PORT_MAX - NAT_PORT_MIN + 1, j, start;
        int32_t port = -1, h, di;
        NatB* b;
        NatDest* d;
        if (k >= 0) { v->b[k].last_seen = now; *bi = k; return NAT_OK; }
        if (proto == 6 && (tcp_flags & 0x04)) return NAT_NOBIND;
        if (proto == 6 && (tcp_flags & 0x12) != 0x02) return NAT_RST;
        used = nat_dest_count(v, nat, nip, rip, rport, proto);
        if (used >= v->meta[NM_MAXDEST] || v->meta[NM_COUNT] >= v->meta[NM_CAP]) {
            nat_sweep(v, now);
            used = nat_dest_count(v, nat, nip, rip, rport, proto);
        }
        if (used >= v->meta[NM_MAXDEST]) return NAT_EXHAUSTED;
        start = (iport >= NAT_PORT_MIN) ? iport : NAT_PORT_MIN;
        for (j = 0; j < span; j++) {
            int32_t p = (int32_t)(NAT_PORT_MIN + (start - NAT_PORT_MIN + j) % span);
            h = nat_find_out(v, nat, proto, nip, (uint16_t)p, rip, rport);
            if (h >= 0 && now - v->b[h].last_seen >= v->meta[NM_IDLE]) { nat_remove(v, h); h = -1; }
            if (h < 0) { port = p; break; }
        }
        if (port < 0) return NAT_EXHAUSTED;
        if (v->meta[NM_COUNT] >= v->meta[NM_CAP]) return NAT_FULL;
        k = (int32_t)v->meta[NM_COUNT];
        b = &v->b[k];
        b->nat = nat; b->proto = proto; b->pad = 0;
        b->inside_ip = iip; b->inside_port = iport; b->remote_ip = rip; b->remote_port = rport;
        b->nat_ip = nip; b->nat_port = (uint16_t)port; b->first_seen = now; b->last_seen = now;
        nat_hash_insert(v->hin, v->mask, nat_hin(b), k);
        nat_hash_insert(v->hout, v->mask, nat_hout(b), k);
        v->meta[NM_COUNT] = k + 1;
        if (now + v->meta[NM_IDLE] < v->meta[NM_NEXTEXP]) v->meta[NM_NEXTEXP] = now + v->meta[NM_IDLE];
        di = nat_find_dest(v, nat, nip, rip, rport, proto);
        if (di < 0) {
            di = (int32_t)v->meta[NM_NDEST];
            d = &v->d[di];
            memset(d, 0, sizeof(NatDest));
            d->nat = nat; d->nat_ip = nip; d->remote_ip = rip; d->remote_port = rport; d->proto = proto;
            nat_hash_insert(v->hd, v->mask, nat_hdest(nat, nip, rip, rport, proto), di);
            v->meta[NM_NDEST] = di + 1;
        }
        v->d[di].count += 1;
        *bi = k;
        return NAT_OK;
    }

    /* NatTable.inbound: the live binding of the outside tuple (its idle time reset), or -1 */
    static inline int32_t nat_inbound(NatView* v, uint32_t nat, uint8_t proto, uint32_t nip, uint16_t nport,
                                      uint32_t rip, uint16_t rport, int64_t now) {
        int32_t k = nat_live(v, nat_find_out(v, nat, proto, nip, nport, rip, rport), now);
        if (k >= 0) v->b[k].last_seen = now;
        return k;
    }

    /* FragmentTable.remember / get */
    static void nat_frag_remember(NatView* v, uint32_t src, uint32_t dst, uint16_t ipid, const NatB* b) {
        int64_t n = v->meta[NM_FCOUNT], head = v->meta[NM_FHEAD], i;
        NatFrag* e = NULL;
        for (i = 0; i < n; i++) {
            NatFrag* x = &v->fr[(head + i) % NAT_FRAGS];
            if (x->src == src && x->dst == dst && x->ipid == ipid) { e = x; break; }
        }
        if (e == NULL) {
            if (n >= NAT_FRAGS) {           /* the oldest goes; the new one is the newest */
                e = &v->fr[head];
                v->meta[NM_FHEAD] = (head + 1) % NAT_FRAGS;
            } else {
                e = &v->fr[(head + n) % NAT_FRAGS];
                v->meta[NM_FCOUNT] = n + 1;
            }
            memset(e, 0, sizeof(NatFrag));
            e->src = src; e->dst = dst; e->ipid = ipid;
        }
        e->nat = b->nat; e->nat_ip = b->nat_ip; e->remote_ip = b->remote_ip;
        e->nat_port = b->nat_port; e->remote_port = b->remote_port; e->proto = b->proto;
    }
    static inline const NatFrag* nat_frag_get(const NatView* v, uint32_t src, uint32_t dst, uint16_t ipid) {
        int64_t n = v->meta[NM_FCOUNT], head = v->meta[NM_FHEAD], i;
        for (i = 0; i < n; i++) {
            const NatFrag* x = &v->fr[(head + i) % NAT_FRAGS];
            if (x->src == src && x->dst == dst && x->ipid == ipid) return x;
        }
        return NULL;
    }
    """
    enum: NAT_FRAGS
    enum: NM_COUNT
    enum: NM_NDEST
    enum: NM_CAP
    enum: NM_MAXDEST
    enum: NM_IDLE
    enum: NM_FHEAD
    enum: NM_FCOUNT
    enum: NM_NEXTEXP
    enum: NM_HMASK
    enum: NM_N
    enum: NAT_OK
    enum: NAT_RST
    enum: NAT_NOBIND
    enum: NAT_EXHAUSTED
    enum: NAT_FULL
    ctypedef struct NatB:
        uint32_t nat, inside_ip, remote_ip, nat_ip
        uint16_t inside_port, remote_port, nat_port
        uint8_t proto
        int64_t first_seen, last_seen
    ctypedef struct NatDest:
        uint32_t nat, nat_ip, remote_ip
        uint16_t remote_port
        uint8_t proto
        uint32_t count
    ctypedef struct NatFrag:
        uint32_t src, dst
        uint16_t ipid
        uint32_t nat, nat_ip, remote_ip
        uint16_t nat_port, remote_port
        uint8_t proto
    ctypedef struct NatView:
        NatB* b
        int32_t* hin
        int32_t* hout
        NatDest* d
        int32_t* hd
        NatFrag* fr
        int64_t* meta
        uint64_t mask
    uint64_t nat_h5(uint32_t nat, uint8_t proto, uint32_t a, uint16_t pa, uint32_t r, uint16_t pr) noexcept nogil
    int nat_outbound(NatView* v, uint32_t nat, uint32_t nip, uint8_t proto, uint32_t iip, uint16_t iport,
                     uint32_t rip, uint16_t rport, int64_t now, uint8_t tcp_flags, int32_t* bi) noexcept nogil
    int32_t nat_inbound(NatView* v, uint32_t nat, uint8_t proto, uint32_t nip, uint16_t nport, uint32_t rip,
                        uint16_t rport, int64_t now) noexcept nogil
    int64_t nat_sweep(NatView* v, int64_t now) noexcept nogil
    void nat_frag_remember(NatView* v, uint32_t src, uint32_t dst, uint16_t ipid, const NatB* b) noexcept nogil
    const NatFrag* nat_frag_get(const NatView* v, uint32_t src, uint32_t dst, uint16_t ipid) noexcept nogil


cdef inline int nat_view_init(NatView* v, object region) except -1:
    """Point ``v`` at the arrays of a fastvpc.dataplane.nattable.NatRegion (the caller keeps it alive)."""
    cdef uint8_t[::1] b = region.b
    cdef int32_t[::1] hin = region.hin
    cdef int32_t[::1] hout = region.hout
    cdef uint8_t[::1] d = region.d
    cdef int32_t[::1] hd = region.hd
    cdef uint8_t[::1] fr = region.fr
    cdef int64_t[::1] meta = region.meta
    cdef int64_t cap = meta[NM_CAP]
    cdef int64_t nh = hin.shape[0]
    if meta.shape[0] != NM_N or cap < 1 or nh < 2 * cap or (nh & (nh - 1)) or hout.shape[0] != nh \
            or hd.shape[0] != nh or b.shape[0] != cap * sizeof(NatB) or d.shape[0] != cap * sizeof(NatDest) \
            or fr.shape[0] != NAT_FRAGS * sizeof(NatFrag) or meta[NM_HMASK] != nh - 1:
        raise ValueError("NAT region: inconsistent arrays")
    v.b = <NatB*>&b[0]
    v.hin = &hin[0]
    v.hout = &hout[0]
    v.d = <NatDest*>&d[0]
    v.hd = &hd[0]
    v.fr = <NatFrag*>&fr[0]
    v.meta = &meta[0]
    v.mask = <uint64_t>(nh - 1)
    return 0
