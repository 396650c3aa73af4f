"""Verdicts: what the data plane did with a frame, and why it dropped it.

The numbers are the values stored in ``Result.action`` / ``Result.reason``; they are
part of the contract (arrays written to disk keep their meaning), so values are
only ever appended.  Reason names follow AWS Reachability Analyzer's explanation
codes where one exists (``RA_CODES``).
"""

from __future__ import annotations

import enum

__all__ = ["Action", "DropReason", "RA_CODES"]


class Action(enum.IntEnum):
    """What happened to a frame."""

    DROP = 0      #: discarded; ``reason`` says why
    DELIVER = 1   #: handed to an ENI (``egress`` is its port); MACs rewritten
    FORWARD = 2   #: handed to a route target: gateway, transit gateway, endpoint (``egress`` is its port)
    REPLY = 3     #: answered by the vswitch/router itself (ARP reply, ICMP echo reply), sent back out of the ingress


class DropReason(enum.IntEnum):
    """Why a frame was dropped (``NONE`` unless the action is ``DROP``)."""

    NONE = 0
    MALFORMED = 1               #: truncated frame or header, bad IPv4 version/IHL/length/checksum, bad ARP
    NON_IPV4 = 2                #: ethertype neither ARP nor IPv4: IPv6, VLAN tags, LLDP... (#1)
    ARP_NO_ENTRY = 3            #: ARP request for an unassigned, reserved or outside-the-VPC address (#7)
    ARP_IGNORED = 4             #: ARP reply, gratuitous ARP or probe: never learned
    L2_BROADCAST = 5            #: IPv4 to a group (broadcast/multicast) MAC (#4)
    BROADCAST = 6               #: IPv4 to 255.255.255.255 or a subnet's last address (#2)
    MULTICAST = 7               #: IPv4 to 224.0.0.0/4 (#3)
    SRC_DST_CHECK = 8           #: source/destination check (#43); RA ENI_SOURCE_DEST_CHECK_RESTRICTION
    ROUTER_UNSUPPORTED = 9      #: traffic to the own router other than ICMP echo (#59)
    ROUTER_NOT_OWN_SUBNET = 10  #: traffic to another subnet's router address (#58)
    NO_SUCH_HOST = 11           #: destination inside the VPC (or peer) owned by no ENI
    BLACKHOLE = 12              #: matched route's target was deleted (#28); RA BAD_STATE_ROUTE
    NO_ROUTE = 13               #: no route matches (#27); RA NO_ROUTE_TO_DESTINATION
    UNKNOWN_MAC = 14            #: unicast IPv4 to a MAC that is neither the gateway's nor an ENI's of the subnet (#11)
    UNKNOWN_PORT = 15           #: frame entered on a port that is no ENI of the compiled network
    LINK_LOCAL_SERVICE = 16     #: to 169.254.168.0/22 (IMDS, DNS, Time Sync): never routed (#16)
    # --- filters and flow state (DESIGN.md §5), in path order
    SG_EGRESS = 17              #: no rule of the sender's security groups admits it, nor a tracked flow (#45)
    NACL_EGRESS = 18            #: the sender subnet's network ACL denies it on the way out (#52)
    NACL_INGRESS = 19           #: the receiving subnet's network ACL denies it on the way in (#52)
    SG_INGRESS = 20             #: no rule of the receiver's security groups admits it, nor a tracked flow (#45)
    FLOW_TABLE_FULL = 21        #: it needed a new connection-tracking entry and the FlowTable is full
    # --- the edge (DESIGN.md §6)
    NO_PUBLIC_IP = 22           #: out through an internet gateway from an ENI with no public IP (#30)
    NO_SUCH_PUBLIC_IP = 23      #: in from an internet gateway to an address that is no public IP of the VPC
    NAT_NEEDS_STATE = 24        #: through a NAT gateway without ``state=``: its bindings live in a FlowTable
    NAT_UNSUPPORTED = 25        #: through a NAT gateway: not TCP/UDP/ICMP, or a TCP/ICMP fragment (#65)
    NAT_NO_BINDING = 26         #: in to a NAT gateway on no flow it opened (unsolicited inbound)
    NAT_PORTS_EXHAUSTED = 27    #: a NAT gateway has no free port for this destination (55,000 flows)


#: Reachability Analyzer explanation code for each reason, where AWS has one.
RA_CODES: dict[DropReason, str] = {
    DropReason.NO_ROUTE: "NO_ROUTE_TO_DESTINATION",
    DropReason.BLACKHOLE: "BAD_STATE_ROUTE",
    DropReason.SRC_DST_CHECK: "ENI_SOURCE_DEST_CHECK_RESTRICTION",
    DropReason.SG_EGRESS: "ENI_SG_RULES_MISMATCH",
    DropReason.SG_INGRESS: "ENI_SG_RULES_MISMATCH",
    DropReason.NACL_EGRESS: "SUBNET_ACL_RESTRICTION",
    DropReason.NACL_INGRESS: "SUBNET_ACL_RESTRICTION",
    DropReason.NO_PUBLIC_IP: "IGW_PUBLIC_IP_ASSOCIATION_FOR_EGRESS",
    DropReason.NO_SUCH_PUBLIC_IP: "IGW_PRIVATE_IP_ASSOCIATION_FOR_INGRESS",
    DropReason.NAT_UNSUPPORTED: "PROTOCOL_RESTRICTION",
    DropReason.NAT_PORTS_EXHAUSTED: "REMAP_EPHEMERAL_PORT",
}
