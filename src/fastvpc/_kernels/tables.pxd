# The compiled tables the forwarding pass reads (built by fastvpc/compiler, all read-only): the
# record structs, declared here once (fastvpc/compiler/layout.py builds its numpy dtypes from the
# offsets the kernel reports: forward.record_layouts()), the exact-match hash tables and the
# helpers every stage uses to read them.
#
#   enis     EniRec[n_eni]      32-byte records (compiler.ENI_DTYPE), Network.enis order
#   subnets  SubnetRec[n_sub]   32-byte records (compiler.SUBNET_DTYPE), Network.subnets order
#   routes   RouteRec[n_route]  16-byte records (compiler.ROUTE_DTYPE), index = Network.routes() order
#   port_eni IngRec[max_port+1] 16-byte records (compiler.PORT_DTYPE): what the ingress checks need of
#                               each port's ENI (subnet -1: the port is no ENI), dense case; else empty
#   deliv    DelivRec[n_eni]    16-byte records (compiler.DELIV_DTYPE): what delivery to an ENI needs
#   ip/mac hash  uint64[2*cap]  exact-match hash (key, value) pairs, encodings below
#   lpm      fastvpc.lpm.RouteTables, table id = route table index, value = index within the table;
#            the global route index is table_base[table] + value
# Filters (compile(filters=True), built by fastvpc/compiler/filters.py; all empty otherwise):
#   eni_filt    FiltRec[n_eni]      per ENI: security-group set, stable identity, timeout record
#   port_filt   FiltRec[max_port+1] the same per port (dense ports; empty when ports are hashed)
#   port_both   PortFilt[max_port+1] not compiled: made by forward.Tables from port_eni and port_filt, one
#               32-byte record a port in one cache line, what the filtered variants read of the sender
#   subnet_filt SubnetFilt[n_sub]   per subnet: network ACL index, the VPC's Amazon DNS address
#   sg_dirs     AclDir[2*n_set]     per (SG set, direction): the rule range of each protocol class
#   sg_rules    AclRule[]           the rules (acl.pxd evaluates them)
#   sg_members  uint64[2*cap]       (group index << 32 | IP) -> 0: the members' IPs of referenced groups
#   nacl_dirs   AclDir[2*n_nacl]    per (NACL, direction): the entry range of each protocol class
#                                   (NACLs with the same entries share one pair of rows)
#   nacl_rules  AclRule[]           the entries, by number
#   sg_index, nacl_index  uint32[]  the port index of the class lists (compiler/filters.py, acl.pxd)
#   ct_timeouts FtTimeouts[]        distinct tracking timeouts (dataplane/_flowtable.pxd)
# Edge (compile(edge=True), built by fastvpc/compiler/edge.py; empty otherwise):
#   gws         GwRec[n_gw]         internet, VPN and transit gateways: MAC, kind, VPC, gateway route table
#   gw_cidrs    EdgeCidr[]          the VPC CIDRs a VPN / transit gateway's frames may enter
#   edt         uint64[2*cap]       public IP maps both ways, gateway ports (HK_PUB_OUT / HK_PUB_IN / HK_GWPORT)

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t

from fastvpc.lpm._lookup cimport RtsView

# --- route target kinds (fastvpc.compiler ROUTE_* mirror these) ---------------
cdef enum:
    RK_LOCAL = 0
    RK_ENI = 1
    RK_PEERING = 2
    RK_FORWARD = 3
    RK_BLACKHOLE = 4
    RK_IGW = 5            # compile(edge=True) only: out through an internet gateway (stages/edge_egress.pxd)
    RK_NAT = 6            # compile(edge=True) only: to a NAT gateway, arg = its index (stages/nat.pxd)

# --- exact-match hash table (fastvpc.compiler builds it) ------------------------
# Keys (uint64): kind in bits 56..63.
#   HK_IP:   (HK_IP << 56)   | (vpc index << 32) | ipv4
#   HK_MAC:  (HK_MAC << 56)  | mac48
#   HK_PORT: (HK_PORT << 56) | port            (only when ports are too sparse for a dense array)
# Values (uint32): tag in bits 30..31, index below.
#   HV_ENI | eni index, HV_ROUTER | subnet index, HV_BCAST | subnet index, HV_GWMAC | subnet index
# Slots: uint64 pairs (key, value) in one array of 2*cap; empty key = HT_EMPTY; linear probing.
cdef enum:
    HK_IP = 0
    HK_MAC = 1
    HK_PORT = 2
    # the edge hash (compile(edge=True), compiler/edge.py), values uint32:
    HK_PUB_OUT = 3        # (HK_PUB_OUT << 56) | (vpc << 32) | private IP -> its public IP
    HK_PUB_IN = 4         # (HK_PUB_IN << 56) | (vpc << 32) | public IP -> its private IP
    HK_GWPORT = 5         # (HK_GWPORT << 56) | port -> index into gws (an internet, VPN or transit gateway)
    HK_NATIP = 6          # (HK_NATIP << 56) | (vpc << 32) | private IP -> NAT gateway index (one with a subnet)
    HK_NATSUB = 7         # (HK_NATSUB << 56) | NAT gateway index -> its subnet index (absent: no subnet)
    HK_NATADDR = 8        # (HK_NATADDR << 56) | NAT gateway index -> its private IP
    HK_NATID = 9          # (HK_NATID << 56) | NAT gateway index -> its stable 32-bit identity (the bindings' key)
    HK_NATPORT = 10       # (HK_NATPORT << 56) | NAT gateway index -> its port (Result.nat_gw, for the flow log)

# gateway kinds (GwRec.kind)
cdef enum:
    GW_IGW = 1
    GW_VGW = 2
    GW_TGW = 3

cdef enum:
    HV_TAG_SHIFT = 30

cdef extern from *:
    """
    #define FV_HT_EMPTY 0xFFFFFFFFFFFFFFFFULL
    #define FV_HV_NONE 0xFFFFFFFFu
    #define FV_HV_INDEX_MASK 0x3FFFFFFFu
    #define FV_HV_ENI 0x00000000u
    #define FV_HV_ROUTER 0x40000000u
    #define FV_HV_BCAST 0x80000000u
    #define FV_HV_GWMAC 0xC0000000u
    #define FV_HT_MULT 0x9E3779B97F4A7C15ULL
    /* A prefetch the compiler must keep.  GCC treats __builtin_prefetch as free of side effects: a
       small prefetch helper that its function splitting cuts into "bounds check" + "prefetch part"
       (prefetch_port.part.0) or that is not inlined early is then found pure and its call deleted,
       so the port record prefetches of loop 1 were not in the compiled pass at all (BENCHMARKS.md
       "Filters", the ctspeed round).  An asm volatile is a side effect. */
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    #define fv_prefetch(p) __asm__ __volatile__("prefetcht0 %0" : : "m"(*(const char*)(p)))
    #elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
    #define fv_prefetch(p) __asm__ __volatile__("prfm pldl1keep, %0" : : "Q"(*(const char*)(p)))
    #elif defined(__GNUC__) || defined(__clang__)
    #define fv_prefetch(p) __builtin_prefetch((const void*)(p), 0, 3)
    #else
    #define fv_prefetch(p) ((void)(p))
    #endif
    """
    const uint64_t FV_HT_EMPTY
    const uint32_t FV_HV_NONE
    const uint32_t FV_HV_INDEX_MASK
    const uint32_t FV_HV_ENI
    const uint32_t FV_HV_ROUTER
    const uint32_t FV_HV_BCAST
    const uint32_t FV_HV_GWMAC
    const uint64_t FV_HT_MULT
    void fv_prefetch(const void* p) noexcept nogil


# --- records ------------------------------------------------------------------
cdef packed struct EniRec:
    uint64_t mac          # 48-bit MAC
    uint32_t ip0          # primary IP
    int32_t subnet        # subnet index
    int32_t port          # port number
    uint32_t sdc          # 1 = source/dest check on
    uint32_t vpc          # VPC index
    uint32_t pad

cdef packed struct SubnetRec:
    uint32_t base         # network address
    uint32_t mask         # netmask
    uint32_t router       # base + 1
    uint32_t bcast        # last address
    uint64_t gwmac        # gateway (router) MAC
    int32_t vpc           # VPC index
    uint32_t table        # route table index (LPM table id)

cdef packed struct RouteRec:
    uint32_t kind         # RK_*
    int32_t port          # target port (FORWARD), else -1
    int32_t arg           # ENI index (RK_ENI), peer VPC index (RK_PEERING), else -1
    uint32_t pad

cdef packed struct IngRec:
    uint64_t mac          # 48-bit MAC; bit 63: source/dest check on
    uint32_t ip0          # primary IP
    int32_t subnet        # subnet index; -1: the port is no ENI's

cdef packed struct DelivRec:
    uint64_t mac          # 48-bit MAC
    int32_t port          # port number
    int32_t subnet        # subnet index


# --- filter records (compile(filters=True)) ------------------------------------
cdef packed struct FiltRec:
    int32_t sgset         # security-group set index (AclDir rows 2*sgset + direction)
    uint32_t ident        # stable 32-bit ENI identity (the FlowTable key)
    uint32_t tmo          # index into ct_timeouts
    int32_t eni           # ENI index (-1: the port is no ENI's)

cdef packed struct PortFilt:
    IngRec ing            # port_eni's record of the port
    FiltRec filt          # port_filt's record of the port

cdef packed struct SubnetFilt:
    int32_t nacl          # the NACL's row pair (AclDir rows 2*nacl + direction; shared by equal NACLs)
    uint32_t dns          # the subnet's VPC's Amazon DNS resolver (primary CIDR base + 2): never filtered

cdef packed struct AclDir:
    uint32_t off[4]       # first rule of protocol class c (ACL_C_*)
    uint16_t n[4]         # rule count of class c
    uint32_t flags        # SG: ACL_UT_TCP / ACL_UT_UDP (the other direction allows 0.0.0.0/0 on all ports)
    uint32_t pad

cdef packed struct AclRule:
    uint32_t addr         # peer / entry network; RF_GROUP: the referenced group's index
    uint32_t mask         # netmask
    uint16_t lo           # RF_L4: the l4 key range (TCP/UDP: destination port; ICMP: type << 8 | code)
    uint16_t hi
    uint8_t proto         # protocol (unless RF_ANYPROTO)
    uint8_t flags         # RF_*
    uint16_t number       # NACL entry number (0 for SG rules)


# --- edge records (compile(edge=True), compiler/edge.py) ---------------------------
cdef packed struct GwRec:
    uint64_t mac          # the gateway's MAC (frames from outside must be addressed to it; ARP answers)
    int32_t kind          # GW_*
    int32_t vpc           # internet gateway: its VPC index (VPN / transit: -1, see gw_cidrs)
    int32_t table         # LPM table id of its gateway route table, -1: none (local routes)
    uint32_t off          # VPN / transit gateway: first row of its VPCs' CIDRs in gw_cidrs
    uint32_t n            # their count
    uint32_t pad

cdef packed struct EdgeCidr:
    uint32_t base         # a CIDR of a VPC the gateway enters (VPN: its VPC; transit: the attachments, in order)
    uint32_t mask
    int32_t vpc           # the VPC index
    uint32_t pad


cdef struct HashTab:
    const uint64_t* slots      # 2*cap uint64: (key, value) pairs
    uint64_t mask              # cap - 1
    int shift                  # 64 - log2(cap)


cdef struct FwdTables:
    const EniRec* enis
    int64_t n_enis
    const SubnetRec* subnets
    int64_t n_subnets
    const RouteRec* routes
    int64_t n_routes
    const uint32_t* table_base
    int64_t n_tables
    const IngRec* port_eni     # per port: what the ingress checks need of the port's ENI (subnet -1: none)
    int64_t n_port_dense
    int port_hashed
    const DelivRec* deliv      # per ENI: what delivery to it needs
    HashTab ipt                # (VPC, IP) -> ENI / router / broadcast
    HashTab mact               # MAC -> ENI / gateway; sparse ports
    int single_mac
    RtsView lpm
    # filters (compile(filters=True)); filters = 0: none of these is read
    int filters
    const FiltRec* eni_filt
    const FiltRec* port_filt
    int64_t n_port_filt
    const PortFilt* port_both  # n_port_filt records, 32-byte aligned: the sender's two records in one line
    const SubnetFilt* subnet_filt
    const AclDir* sg_dirs
    const AclRule* sg_rules
    HashTab sgm                # sg_members
    const AclDir* nacl_dirs
    const AclRule* nacl_rules
    const uint32_t* sg_index   # port index of the sg_dirs class lists (acl.pxd acl_candidates)
    const uint32_t* nacl_index
    const void* ct_timeouts    # FtTimeouts[] (dataplane/_flowtable.pxd; the driver casts: tables.pxd stays free of it)
    # the edge (compile(edge=True)); edge = 0: none of these is read
    int edge
    HashTab edt                # public IP maps, gateway ports (HK_PUB_OUT / HK_PUB_IN / HK_GWPORT)
    const GwRec* gws
    int64_t n_gws
    const EdgeCidr* gw_cidrs
    const void* edge_in        # the driver's edge_ingress_call (forward.pyx): called through this pointer so that
                               # the compiler cannot inline the rare gateway-port path into the hot loop


cdef enum:
    ACL_C_TCP = 0             # protocol classes of an AclDir (each class holds its protocol's rules and
    ACL_C_UDP = 1             # the all-protocol ones)
    ACL_C_ICMP = 2
    ACL_C_OTHER = 3
    ACL_UT_TCP = 1            # AclDir.flags
    ACL_UT_UDP = 2
    RF_ANYPROTO = 0x01        # AclRule.flags: protocol "all"
    RF_L4 = 0x02              # check the l4 key range
    RF_GROUP = 0x04           # peer = the members of group `addr` (sg_members)
    RF_WIDE = 0x08            # peer is exactly 0.0.0.0/0 (AWS's untracked-flow rule)
    RF_ALLOW = 0x10           # NACL entry action allow
    L4_NONE = 0x10000         # the l4 key of a packet whose port / ICMP type is not known


# --- lookups --------------------------------------------------------------------

cdef inline uint32_t ht_get(const HashTab* t, uint64_t key) noexcept nogil:
    """Value stored under ``key``, or FV_HV_NONE.  Load <= 0.5, so an empty slot always ends the probe."""
    cdef uint64_t slot = (key * FV_HT_MULT) >> t.shift
    cdef uint64_t k
    while True:
        k = t.slots[2 * slot]
        if k == key:
            return <uint32_t>t.slots[2 * slot + 1]
        if k == FV_HT_EMPTY:
            return FV_HV_NONE
        slot = (slot + 1) & t.mask


cdef inline void ht_prefetch(const HashTab* t, uint64_t key) noexcept nogil:
    fv_prefetch(&t.slots[2 * ((key * FV_HT_MULT) >> t.shift)])


cdef inline uint64_t ip_key(uint32_t vpc, uint32_t ip) noexcept nogil:
    return (<uint64_t>HK_IP << 56) | (<uint64_t>vpc << 32) | ip


cdef inline uint64_t edge_key(uint32_t kind, uint32_t vpc, uint32_t v) noexcept nogil:
    return (<uint64_t>kind << 56) | (<uint64_t>vpc << 32) | v


cdef inline uint64_t mac_key(uint64_t mac) noexcept nogil:
    return (<uint64_t>HK_MAC << 56) | mac


cdef inline uint32_t tag_of(uint32_t h) noexcept nogil:
    return h & 0xC0000000u


cdef inline uint64_t mac48(uint64_t m) noexcept nogil:
    return m & 0xFFFFFFFFFFFFULL


cdef inline IngRec ingress_of(const FwdTables* t, int32_t p) noexcept nogil:
    """The ingress record of port ``p`` (subnet -1 when ``p`` is no ENI's port)."""
    cdef uint32_t h
    cdef IngRec r
    cdef const EniRec* er
    if 0 <= p < t.n_port_dense:
        return t.port_eni[p]
    r.mac = 0
    r.ip0 = 0
    r.subnet = -1
    if p >= 0 and t.port_hashed:
        h = ht_get(&t.mact, (<uint64_t>HK_PORT << 56) | <uint32_t>p)
        if h != FV_HV_NONE:
            er = &t.enis[h & FV_HV_INDEX_MASK]
            r.mac = er.mac | ((<uint64_t>(er.sdc != 0)) << 63)
            r.ip0 = er.ip0
            r.subnet = er.subnet
    return r


cdef inline void prefetch_port(const FwdTables* t, int32_t p) noexcept nogil:
    if 0 <= p < t.n_port_dense:
        fv_prefetch(&t.port_eni[p])
