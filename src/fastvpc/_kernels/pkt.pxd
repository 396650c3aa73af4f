# The per-frame context of the forwarding pass: every stage (stages/*.pxd) reads and writes one Pkt,
# and only these do:
#   * the driver (forward.pyx run_chunk) fills the frame span, port, ingress record and hash value,
#     and the route index after the batch LPM;
#   * a stage returns the next node (NEXT_*: the driver routes the frame by it, VPP's next index) and
#     leaves its decision in the pending verdict (action, reason, out_eni / out_port, route) through
#     drop() / deliver_to() / forward_to() / reply();
#   * only the rewrite stage writes the frame, and only commit() writes the output arrays.
# A Pkt lives in the chunk's on-stack scratch (forward.pyx: Pkt pk[FV_CHUNK]); nothing is allocated.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t

from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.headers cimport Hdr
from fastvpc._kernels.tables cimport IngRec

# --- next nodes (the stage order: forward.stage_names(), ReferenceForwarder.STAGES) ---------------
cdef enum:
    NEXT_ARP = 1            # ARP request handling (stages/arp.pxd)
    NEXT_ROUTER = 2         # the VPC router's own addresses and link-local (stages/router.pxd)
    NEXT_LOCAL = 3          # same-subnet delivery (stages/local.pxd)
    NEXT_ROUTE = 4          # the batch LPM, then the route's target (stages/route.pxd)
    NEXT_REWRITE = 5        # frame rewrite (stages/rewrite.pxd), then commit
    NEXT_COMMIT = 6         # verdict final, frame untouched: commit
    NEXT_EDGE = 7           # a frame on a gateway's port, compile(edge=True) (stages/edge_ingress.pxd)


cdef struct Pkt:
    uint8_t* f              # frame bytes (read by every stage, written by rewrite only)
    int64_t L               # frame length (0 when the span was outside the buffer)
    uint64_t key            # (VPC, dst) hash key, FV_HT_EMPTY when there is none (driver, prefetch)
    IngRec er               # ingress record of the port (subnet -1: no ENI's port)
    Hdr h                   # parsed headers (headers.pxd: parse_headers in ingress, parse_l4 lazily)
    int32_t port            # ingress port
    uint32_t hv             # hash value of (ingress VPC, dst), FV_HV_NONE when absent
    uint32_t table          # LPM table id (local -> route)
    int32_t route           # global route index that decided, -1 when none
    int32_t out_eni         # DELIVER: receiving ENI index; ARP REPLY: the ENI whose MAC answers, -1 the gateway
    int32_t out_port        # egress port (FORWARD, REPLY; DELIVER: set by rewrite), -1 for DROP
    uint8_t action          # pending ACT_*
    uint8_t reason          # pending R_*


# --- the filter stages' per-frame context (compile(filters=True) only) ---------------------------
# Kept beside Pkt, not in it, so that the unfiltered pass's scratch (Pkt pk[FV_CHUNK]) does not grow:
# the driver's filtered variants hold a parallel Flt fx[FV_CHUNK].
cdef enum:
    CT_FILT = 0x01          # the filters apply to this frame (it met sg_egress; not to the Amazon DNS)
    CT_E = 0x02             # stateful: the sender's table step is pending (adm_e)
    CT_I = 0x04             # stateful: the receiver's table step is pending (adm_i)
    CT_N = 0x08             # stateful: the frame waits for the NAT step (stages/nat.pxd): from a gateway's port,
                            # or (CT_N alone) to the Amazon DNS address, which a route may send to a NAT gateway
    CT_FRAG = 0x10          # a non-first fragment: the security groups pass it (stages/sg_egress.pxd)

cdef struct Flt:
    uint32_t l4             # the rules' l4 key: TCP/UDP destination port, ICMP type << 8 | code, L4_NONE
    int32_t s_eni           # sender ENI index
    uint8_t ct              # CT_*
    uint8_t adm_e           # stateful: FT_DENY / FT_ADMIT / FT_ADMIT_UNTRACKED of the sender's egress rules
    uint8_t adm_i           # stateful: the same of the receiver's ingress rules
    uint8_t pad


# --- pending-verdict helpers (a stage ends with ``return drop(p, R_X)`` and so on) -----------------

cdef inline int drop(Pkt* p, uint8_t why) noexcept nogil:
    p.action = ACT_DROP
    p.reason = why
    p.out_port = -1
    return NEXT_COMMIT


cdef inline int deliver_to(Pkt* p, int32_t eni) noexcept nogil:
    """DELIVER to ENI index ``eni``: the rewrite stage writes the MACs and the egress port."""
    p.action = ACT_DELIVER
    p.reason = R_NONE
    p.out_eni = eni
    return NEXT_REWRITE


cdef inline int forward_to(Pkt* p, int32_t port) noexcept nogil:
    """FORWARD to a gateway's port, frame untouched."""
    p.action = ACT_FORWARD
    p.reason = R_NONE
    p.out_port = port
    return NEXT_COMMIT


cdef inline int reply(Pkt* p) noexcept nogil:
    """REPLY out of the ingress port (ARP reply or ICMP echo reply, built by the rewrite stage)."""
    p.action = ACT_REPLY
    p.reason = R_NONE
    p.out_port = p.port
    return NEXT_REWRITE


cdef inline int nat_needs(Pkt* p, uint32_t code) noexcept nogil:
    """The frame meets NAT gateway ``code >> 1`` (``code & 1``: the reply direction, to its private IP):
    DROP(NAT_NEEDS_STATE), unless the stateful table pass takes it over (stages/nat.pxd nat_pass)."""
    p.out_eni = <int32_t>code
    return drop(p, R_NAT_NEEDS_STATE)


cdef inline int goto(Pkt* p, int nxt) noexcept nogil:
    """Hand the frame on to node ``nxt`` (no verdict yet)."""
    return nxt


cdef inline void unpark(Pkt* q, const Pkt* s) noexcept nogil:
    """Frame ``s`` of the chunk's scratch as the frame in flight ``q`` of a pass after the batch LPM
    (route, rewrite, commit): the fields those passes read, field by field, so that the compiler
    loads only those it uses (a whole-struct copy is a 112-byte memcpy through the stack).  A stage
    that runs after the LPM and reads another field adds it here."""
    q.f = s.f
    q.L = s.L
    q.port = s.port
    q.er.mac = s.er.mac
    q.er.ip0 = s.er.ip0
    q.er.subnet = s.er.subnet
    q.hv = s.hv
    q.h.src = s.h.src
    q.h.dst = s.h.dst
    q.h.ethertype = s.h.ethertype
    q.h.proto = s.h.proto         # the ingress filters (dead in the unfiltered variant)
    q.h.hl = s.h.hl
    q.h.tl = s.h.tl
    q.route = s.route
    q.out_eni = s.out_eni
    q.out_port = s.out_port
    q.action = s.action
    q.reason = s.reason


cdef inline void commit(const Pkt* p, int64_t i,
                        uint8_t* action, uint8_t* reason, int32_t* egress, int32_t* route,   # OUT [i]
                        ) noexcept nogil:
    """The one place that writes a frame's verdict to the output arrays (docs/forwarding-model.md §5)."""
    # all four read before the first store: a store through uint8_t* may alias *p (and the build has
    # -fno-strict-aliasing), which would make the compiler reload every later field
    cdef uint8_t a = p.action
    cdef uint8_t r = p.reason
    cdef int32_t e = p.out_port
    cdef int32_t rt = p.route
    action[i] = a
    reason[i] = r
    egress[i] = e
    route[i] = rt
