# The verdict numbers compiled into every kernel: fastvpc.Action (ACT_*) and fastvpc.DropReason (R_*).
# fastvpc/verdicts.py is the one source (append-only numbering); tests/kernels/test_kernel_types.py
# checks that these match it.  cimport this (not a copy) wherever a kernel writes verdicts.

# --- fastvpc.Action -----------------------------------------------------------
cdef enum:
    ACT_DROP = 0
    ACT_DELIVER = 1
    ACT_FORWARD = 2
    ACT_REPLY = 3

# --- fastvpc.DropReason -------------------------------------------------------
cdef enum:
    R_NONE = 0
    R_MALFORMED = 1
    R_NON_IPV4 = 2
    R_ARP_NO_ENTRY = 3
    R_ARP_IGNORED = 4
    R_L2_BROADCAST = 5
    R_BROADCAST = 6
    R_MULTICAST = 7
    R_SRC_DST_CHECK = 8
    R_ROUTER_UNSUPPORTED = 9
    R_ROUTER_NOT_OWN_SUBNET = 10
    R_NO_SUCH_HOST = 11
    R_BLACKHOLE = 12
    R_NO_ROUTE = 13
    R_UNKNOWN_MAC = 14
    R_UNKNOWN_PORT = 15
    R_LINK_LOCAL_SERVICE = 16
    R_SG_EGRESS = 17
    R_NACL_EGRESS = 18
    R_NACL_INGRESS = 19
    R_SG_INGRESS = 20
    R_FLOW_TABLE_FULL = 21
    R_NO_PUBLIC_IP = 22
    R_NO_SUCH_PUBLIC_IP = 23
    R_NAT_NEEDS_STATE = 24
    R_NAT_UNSUPPORTED = 25
    R_NAT_NO_BINDING = 26
    R_NAT_PORTS_EXHAUSTED = 27
