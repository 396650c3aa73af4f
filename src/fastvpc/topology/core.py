"""The control plane: VPCs, subnets, route tables, ENIs, gateways and peerings.

Pure Python.  Every mutating call validates at once and raises
:class:`fastvpc.TopologyError` naming the object and the bad value, so a
``Network`` is always a valid VPC configuration (rows #12-#16, #18-#19, #21 and
#23 of vpc-behaviour.md).  ``Network.compile()`` turns it into an immutable
``Dataplane`` of numpy arrays.

Ports: every ENI and every route target (gateways, peerings, endpoints) gets a
small integer ``.port`` from one network-wide counter.  Ports are never reused,
so a port number names one object for the life of the network.

Route numbering: ``Network.routes()`` lists every route of every table in a fixed
order (VPCs in creation order, their tables in creation order, each table's routes
in order, the ``local`` routes first).  ``Dataplane.process()`` reports the index
into that list as ``route``.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Union

from fastvpc.errors import TopologyError
from fastvpc.topology.identities import TrackingIdentities

if TYPE_CHECKING:  # pragma: no cover
    from fastvpc.dataplane import Dataplane
    from fastvpc.topology.edge import ElasticIp
    from fastvpc.topology.filters import NetworkAcl, PrefixList, SecurityGroup, Tracking

__all__ = [
    "BLACKHOLE",
    "LOCAL",
    "Endpoint",
    "Eni",
    "InternetGateway",
    "NatGateway",
    "Network",
    "PeeringConnection",
    "Route",
    "RouteTable",
    "Subnet",
    "Target",
    "TransitGateway",
    "Vpc",
    "VpnGateway",
]

IPv4Network = ipaddress.IPv4Network
IPv4Address = ipaddress.IPv4Address

#: Largest number of IPv4 CIDR blocks per VPC (AWS's default quota).
MAX_VPC_CIDRS = 5
#: Smallest and largest prefix length of a VPC CIDR block or a subnet.
MIN_PREFIXLEN, MAX_PREFIXLEN = 16, 28
#: The link-local range that hosts IMDS, DNS and Time Sync: routes into it are refused (#16).
RESERVED_SERVICE_RANGE = IPv4Network("169.254.168.0/22")
#: Ranges a VPC CIDR block may not overlap (AWS refuses them: "this", loopback, link-local,
#: multicast and the reserved class E with the limited broadcast address).
FORBIDDEN_VPC_RANGES = tuple(IPv4Network(c) for c in ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16",
                                                         "224.0.0.0/4", "240.0.0.0/4"))
#: Largest port number (ports are int32 in the data plane's arrays).
MAX_PORT = 2**31 - 2

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


# --------------------------------------------------------------------------- helpers

def _net(value: object, what: str, *, strict: bool, obj: str | None = None) -> IPv4Network:
    """Parse an IPv4 CIDR; ``strict`` refuses host bits under the mask."""
    if isinstance(value, IPv4Network):
        return value
    if isinstance(value, (ipaddress.IPv6Network, ipaddress.IPv6Address)):
        raise TopologyError(f"{what} {value} is IPv6: only IPv4 is modelled", obj=obj, value=value)
    if not isinstance(value, str):
        raise TopologyError(f"{what} must be a CIDR string, not {value!r}", obj=obj, value=value)
    try:
        net = IPv4Network(value.strip(), strict=strict)
    except ValueError as exc:
        raise TopologyError(f"{what} {value!r} is not a valid IPv4 CIDR ({exc})", obj=obj, value=value) from None
    if "/" not in value:
        raise TopologyError(f"{what} {value!r} has no prefix length (write it as a.b.c.d/n)", obj=obj, value=value)
    return net


def _addr(value: object, what: str, obj: str | None = None) -> IPv4Address:
    if isinstance(value, IPv4Address):
        return value
    if isinstance(value, str):
        try:
            return IPv4Address(value.strip())
        except ValueError:
            pass
    raise TopologyError(f"{what} {value!r} is not a valid IPv4 address", obj=obj, value=value)


def _mac(value: object, what: str, obj: str | None = None) -> str:
    if isinstance(value, (bytes, bytearray)) and len(value) == 6:
        value = int_to_mac(int.from_bytes(value, "big"))
    if not isinstance(value, str):
        raise TopologyError(f"{what} {value!r} is not a MAC address", obj=obj, value=value)
    mac = value.strip().lower().replace("-", ":")
    if not _MAC_RE.match(mac):
        raise TopologyError(f"{what} {value!r} is not a MAC address (want xx:xx:xx:xx:xx:xx)", obj=obj, value=value)
    if int(mac[:2], 16) & 1:
        raise TopologyError(f"{what} {value!r} is a group (multicast/broadcast) address, not a unicast MAC",
                            obj=obj, value=value)
    if mac == "00:00:00:00:00:00":
        raise TopologyError(f"{what} {value!r} is the all-zero MAC", obj=obj, value=value)
    return mac


def mac_to_int(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


def int_to_mac(value: int) -> str:
    raw = f"{value:012x}"
    return ":".join(raw[i:i + 2] for i in range(0, 12, 2))


def _check_text(value: str, what: str) -> None:
    """Refuse text that cannot be written as UTF-8 (lone surrogates): it could not be saved."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise TopologyError(f"{what} {value!r} is not valid Unicode text (it holds a lone surrogate)",
                            obj=None, value=value) from None


_DEFAULT_TRACKING: list[Tracking] = []


def _default_tracking() -> Tracking:
    """AWS's default timeouts (one shared, immutable object)."""
    if not _DEFAULT_TRACKING:
        from fastvpc.topology.filters import DEFAULT_TRACKING

        _DEFAULT_TRACKING.append(DEFAULT_TRACKING)
    return _DEFAULT_TRACKING[0]


class _Named:
    """Base of every topology object: a unique ``name`` in its network."""

    kind = "object"
    name: str
    network: Network

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class _Special:
    """A route target that is not an object: ``LOCAL`` and ``BLACKHOLE``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.kind = name
        self.port = -1

    def __repr__(self) -> str:
        return f"fastvpc.{self.name.upper()}"

    def __reduce__(self) -> str:
        return self.name.upper()


#: Target of the ``local`` route of each VPC CIDR.
LOCAL = _Special("local")
#: Target of a route whose target was deleted: matching traffic is dropped (#28).
BLACKHOLE = _Special("blackhole")


# --------------------------------------------------------------------------- targets

class Target(_Named):
    """Anything a route can point at; has a port number."""

    kind = "target"
    port: int

    def delete(self) -> None:
        """Remove this target; routes that name it become blackholes (#28)."""
        self.network.remove(self)


class _GatewayMac:
    """The MAC of a gateway (every route target but an ENI): the address the outside hosts on its
    port see, and the one the switch answers ARP with there (DESIGN §6).  Auto-assigned, unique
    in the network; assigning another validates it as ``add_eni(mac=...)`` does."""

    _mac: str
    name: str
    network: Network

    @property
    def mac(self) -> str:
        return self._mac

    @mac.setter
    def mac(self, value: str) -> None:
        net = self.network
        mac = _mac(value, f"{self.kind} {self.name}: MAC", obj=self.name)  # type: ignore[attr-defined]
        if mac == self._mac:
            return
        net._check_mac_free(mac, self.name)
        if net._macs.get(self._mac) == self.name:
            del net._macs[self._mac]
        self._mac = mac
        if net._holds(self):
            net._macs[mac] = self.name


class _RouteTableGateway(_GatewayMac):
    """An internet or VPN gateway: may have a gateway route table (edge association, #40)."""

    _route_table: RouteTable | None = None

    @property
    def route_table(self) -> RouteTable | None:
        """The gateway route table that routes traffic entering the VPC here (None: ``local``)."""
        return self._route_table


class InternetGateway(_RouteTableGateway, Target):
    kind = "igw"

    def __init__(self, vpc: Vpc, name: str, port: int) -> None:
        self.vpc, self.network, self.name, self.port = vpc, vpc.network, name, port


class VpnGateway(_RouteTableGateway, Target):
    kind = "vgw"

    def __init__(self, vpc: Vpc, name: str, port: int) -> None:
        self.vpc, self.network, self.name, self.port = vpc, vpc.network, name, port


class NatGateway(_GatewayMac, Target):
    """A NAT gateway (#33).  In a subnet it has a private IP of that subnet and a MAC, as AWS gives
    it an ENI; ``connectivity`` is ``public`` (its Elastic IP in ``address``) or ``private``."""

    kind = "nat"

    def __init__(self, vpc: Vpc, name: str, port: int, subnet: Subnet | None, connectivity: str = "public",
                 ip: IPv4Address | None = None, network_interface_id: str | None = None) -> None:
        self.vpc, self.network, self.name, self.port, self.subnet = vpc, vpc.network, name, port, subnet
        self.connectivity = connectivity
        #: The private IP (of its subnet) it translates sources to; None when it has no subnet.
        self.ip = ip
        #: The id of the network interface AWS gave it (``NetworkInterfaceId`` of its primary
        #: address, ``eni-…``): the ``interface-id`` of its flow log records.  None: its name is used.
        self.network_interface_id = network_interface_id
        self._address: ElasticIp | None = None

    @property
    def address(self) -> ElasticIp | None:
        """The Elastic IP of a public NAT gateway (None: private, or none associated yet)."""
        return self._address

    @property
    def public_ip(self) -> IPv4Address | None:
        return None if self._address is None else self._address.public_ip

    def associate_address(self, address: ElasticIp | str) -> ElasticIp:
        """Give a public NAT gateway that has none its Elastic IP (AssociateNatGatewayAddress)."""
        from fastvpc.topology.edge import associate

        if self.connectivity == "private":
            raise TopologyError(f"NAT gateway {self.name} is private: it takes no Elastic IP",
                                obj=self.name, value=getattr(address, "name", address))
        return associate(self, address, f"NAT gateway {self.name}")


class Endpoint(_GatewayMac, Target):
    """A VPC endpoint used as a route target (gateway endpoint or GWLB endpoint)."""

    kind = "vpce"
    KINDS = ("gateway", "gatewayloadbalancer", "interface")

    def __init__(self, vpc: Vpc, name: str, port: int, endpoint_type: str, service: str | None) -> None:
        self.vpc, self.network, self.name, self.port = vpc, vpc.network, name, port
        self.endpoint_type, self.service = endpoint_type, service


class TransitGateway(_GatewayMac, Target):
    """A regional transit gateway; routes to it need an attachment in the table's VPC."""

    kind = "tgw"

    def __init__(self, network: Network, name: str, port: int) -> None:
        self.network, self.name, self.port = network, name, port
        self.attachments: list[Vpc] = []

    def attach(self, vpc: Vpc) -> None:
        self.network._check_owned(vpc, "VPC")
        if vpc in self.attachments:
            raise TopologyError(f"transit gateway {self.name} is already attached to VPC {vpc.name}",
                                obj=self.name, value=vpc.name)
        self.attachments.append(vpc)


class PeeringConnection(_GatewayMac, Target):
    """An active VPC peering connection.  Routes on both sides are still needed (#36)."""

    kind = "pcx"

    def __init__(self, network: Network, name: str, port: int, requester: Vpc, accepter: Vpc) -> None:
        self.network, self.name, self.port = network, name, port
        self.requester, self.accepter = requester, accepter

    @property
    def vpcs(self) -> tuple[Vpc, Vpc]:
        return (self.requester, self.accepter)

    def peer_of(self, vpc: Vpc) -> Vpc:
        """The VPC on the other side of this peering from ``vpc``."""
        if vpc is self.requester:
            return self.accepter
        if vpc is self.accepter:
            return self.requester
        raise TopologyError(f"peering {self.name} does not join VPC {vpc.name}", obj=self.name, value=vpc.name)


# --------------------------------------------------------------------------- ENI

class Eni(Target):
    """An elastic network interface: a VM's port into its subnet."""

    kind = "eni"

    def __init__(self, subnet: Subnet, name: str, port: int, ip: IPv4Address, mac: str,
                 secondary_ips: list[IPv4Address], source_dest_check: bool,
                 security_groups: list[SecurityGroup], tracking: Tracking) -> None:
        self.subnet = subnet
        self.vpc = subnet.vpc
        self.network = subnet.network
        self.name, self.port = name, port
        self.ip = ip
        self.mac = mac
        self.secondary_ips = secondary_ips
        self.source_dest_check = bool(source_dest_check)
        self._security_groups = security_groups
        self._tracking = tracking
        self._address: ElasticIp | None = None

    @property
    def address(self) -> ElasticIp | None:
        """The Elastic IP associated with this ENI's primary private IP, or None."""
        return self._address

    @property
    def public_ip(self) -> IPv4Address | None:
        """The public IPv4 address the internet gateway maps to :attr:`ip` (#17, #30), or None.
        The VM never sees it: it sends and receives with its private IP."""
        return None if self._address is None else self._address.public_ip

    def associate_address(self, address: ElasticIp | str) -> ElasticIp:
        """AssociateAddress: map the Elastic IP (object, name or public IP) to the primary private IP.
        Refused when the address is associated elsewhere or this ENI already has one."""
        from fastvpc.topology.edge import associate

        return associate(self, address, f"ENI {self.name}")

    def disassociate_address(self) -> ElasticIp | None:
        """DisassociateAddress: the ENI keeps no public IP; the address stays allocated (returned)."""
        from fastvpc.topology.edge import disassociate

        return disassociate(self)

    @property
    def security_groups(self) -> list[SecurityGroup]:
        """The ENI's 1-5 security groups (a copy); assigning replaces them, as
        ModifyNetworkInterfaceAttribute ``--groups`` does."""
        return list(self._security_groups)

    @security_groups.setter
    def security_groups(self, groups: Iterable[SecurityGroup]) -> None:
        from fastvpc.topology.filters import check_security_groups

        self._security_groups = check_security_groups(self.name, self.vpc, groups)

    @property
    def tracking(self) -> Tracking:
        """Connection-tracking idle timeouts of this ENI (AWS's ConnectionTrackingSpecification)."""
        return self._tracking

    @tracking.setter
    def tracking(self, tracking: Tracking | None) -> None:
        from fastvpc.topology.filters import check_tracking

        self._tracking = check_tracking(self.name, tracking)

    @property
    def ips(self) -> tuple[IPv4Address, ...]:
        """Primary first, then the secondary private IPs."""
        return (self.ip, *self.secondary_ips)

    def add_secondary_ip(self, ip: str | IPv4Address) -> IPv4Address:
        addr = self.subnet._check_assignable(ip, self.name)
        self.secondary_ips.append(addr)
        self.vpc._ip_owner[addr] = self
        return addr


# --------------------------------------------------------------------------- routes

TargetLike = Union[Target, _Special, str]


class Route:
    """One route: destination CIDR -> target.  ``origin`` is local, static, propagated or prefix-list."""

    ORIGINS = ("local", "static", "propagated", "prefix-list")

    def __init__(self, route_table: RouteTable, destination: IPv4Network, target: Target | _Special,
                 origin: str, prefix_list: str | None = None) -> None:
        self.route_table = route_table
        self.destination = destination
        self.target = target
        self.origin = origin
        self.prefix_list = prefix_list
        #: Name of the deleted target when this route became a blackhole.
        self.deleted_target: str | None = None

    @property
    def is_local(self) -> bool:
        return self.origin == "local"

    @property
    def state(self) -> str:
        return "blackhole" if self.target is BLACKHOLE else "active"

    def __repr__(self) -> str:
        return f"<Route {self.destination} -> {self.target.name} ({self.origin}) in {self.route_table.name}>"


class RouteTable(_Named):
    """A VPC route table.  Always holds one ``local`` route per VPC CIDR (#13, #21)."""

    kind = "rtb"

    def __init__(self, vpc: Vpc, name: str) -> None:
        self.vpc, self.network, self.name = vpc, vpc.network, name
        self.routes: list[Route] = [Route(self, c, LOCAL, "local") for c in vpc.cidrs]

    @property
    def is_main(self) -> bool:
        return self.vpc.main_route_table is self

    @property
    def subnets(self) -> list[Subnet]:
        """Subnets that use this table (explicitly, or implicitly when it is the main table)."""
        return [s for s in self.vpc.subnets if s.route_table is self]

    @property
    def gateways(self) -> list[InternetGateway | VpnGateway]:
        """The internet/VPN gateways this table is associated with (edge associations, #40)."""
        out: list[InternetGateway | VpnGateway] = [g for g in self.vpc.internet_gateways if g._route_table is self]
        out += [g for g in self.vpc.vpn_gateways if g._route_table is self]
        return out

    @property
    def is_gateway_table(self) -> bool:
        return bool(self.gateways)

    def associate_gateway(self, gateway: InternetGateway | VpnGateway) -> None:
        """Associate this table with an internet or VPN gateway of its VPC: traffic entering the VPC
        through the gateway is routed by it (#40).  Refused when a route does not suit a gateway
        table (#41), when the table is main, or when the gateway already has another table."""
        from fastvpc.topology.edge import check_gateway_table

        if not isinstance(gateway, (InternetGateway, VpnGateway)):
            raise TopologyError(f"route table {self.name}: {getattr(gateway, 'name', gateway)!r} is not an internet "
                                "or VPN gateway (only they take a gateway route table)", obj=self.name,
                                value=getattr(gateway, "name", gateway))
        self.network._check_owned(gateway, "gateway")
        if gateway.vpc is not self.vpc:
            raise TopologyError(f"route table {self.name}: gateway {gateway.name} belongs to VPC {gateway.vpc.name}, "
                                f"not {self.vpc.name}", obj=self.name, value=gateway.name)
        if gateway._route_table is self:
            return
        if gateway._route_table is not None:
            raise TopologyError(f"route table {self.name}: gateway {gateway.name} is already associated with route "
                                f"table {gateway._route_table.name}; disassociate it first", obj=self.name,
                                value=gateway.name)
        check_gateway_table(self, [*self.gateways, gateway])
        gateway._route_table = self

    def disassociate_gateway(self, gateway: InternetGateway | VpnGateway | None = None) -> None:
        """Drop the association with ``gateway`` (default: with every gateway of this table)."""
        for g in self.gateways:
            if gateway is None or g is gateway:
                g._route_table = None

    def route(self, destination: str | IPv4Network) -> Route:
        """The route whose destination is exactly ``destination``; KeyError if none."""
        dest = _net(destination, f"route table {self.name}: route destination", strict=False, obj=self.name)
        for r in self.routes:
            if r.destination == dest:
                return r
        raise KeyError(f"route table {self.name} has no route for {dest}")

    def add_route(self, destination: str | IPv4Network, target: TargetLike, *,
                  origin: str = "static", prefix_list: str | None = None) -> Route:
        """Add ``destination -> target``.  Validates #16, #23, unknown targets and duplicates."""
        dest = _net(destination, f"route table {self.name}: route destination", strict=True, obj=self.name)
        if origin not in ("static", "propagated", "prefix-list"):
            raise TopologyError(f"route {dest} in {self.name}: origin {origin!r} must be static, propagated "
                                "or prefix-list", obj=self.name, value=origin)
        if prefix_list is not None:
            if not isinstance(prefix_list, str):
                raise TopologyError(f"route {dest} in {self.name}: prefix_list {prefix_list!r} must be a string",
                                    obj=self.name, value=prefix_list)
            _check_text(prefix_list, f"route {dest} in {self.name}: prefix_list")
        tgt = self._resolve_target(target, dest)
        if tgt is LOCAL:
            raise TopologyError(f"route {dest} in {self.name}: only the VPC creates local routes, one per VPC CIDR",
                                obj=self.name, value="local")
        for r in self.routes:
            if r.destination == dest:
                raise TopologyError(f"route table {self.name} already has a route for {dest} "
                                    f"(to {r.target.name}); use replace_route", obj=self.name, value=str(dest))
        self._check_destination(dest, tgt)
        self._check_gateway_rules(dest, origin, prefix_list, tgt)
        route = Route(self, dest, tgt, origin, prefix_list)
        self.routes.append(route)
        return route

    def _check_gateway_rules(self, dest: IPv4Network, origin: str, prefix_list: str | None,
                             tgt: Target | _Special) -> None:
        gateways = self.gateways
        if gateways:
            from fastvpc.topology.edge import check_gateway_route

            check_gateway_route(self, dest, origin, prefix_list, tgt, gateways)

    def replace_route(self, destination: str | IPv4Network, target: TargetLike) -> Route:
        """Point an existing route at a new target (the ``local`` route may be pointed at an ENI and back, #21)."""
        route = self._existing(destination)
        tgt = self._resolve_target(target, route.destination)
        if route.is_local:
            gwlbe = isinstance(tgt, Endpoint) and tgt.endpoint_type == "gatewayloadbalancer"
            if tgt is not LOCAL and not isinstance(tgt, Eni) and not gwlbe:
                raise TopologyError(f"the local route {route.destination} in {self.name} can only target an ENI "
                                    f"or a GWLB endpoint, not {tgt.name}", obj=self.name, value=tgt.name)
        else:
            if tgt is LOCAL:
                raise TopologyError(f"route {route.destination} in {self.name}: only a VPC CIDR route can be local",
                                    obj=self.name, value=str(route.destination))
            self._check_destination(route.destination, tgt)
        self._check_gateway_rules(route.destination, route.origin, route.prefix_list, tgt)
        route.target = tgt
        route.deleted_target = None
        return route

    def remove_route(self, destination: str | IPv4Network) -> None:
        route = self._existing(destination)
        if route.is_local:
            raise TopologyError(f"the local route {route.destination} of route table {self.name} cannot be removed",
                                obj=self.name, value=str(route.destination))
        self.routes.remove(route)

    def _existing(self, destination: str | IPv4Network) -> Route:
        dest = _net(destination, f"route table {self.name}: route destination", strict=False, obj=self.name)
        for r in self.routes:
            if r.destination == dest:
                return r
        raise TopologyError(f"route table {self.name} has no route for {dest}", obj=self.name, value=str(dest))

    def _resolve_target(self, target: TargetLike, dest: IPv4Network) -> Target | _Special:
        net = self.network
        if isinstance(target, str):
            low = target.lower()
            if low == "local":
                return LOCAL
            if low == "blackhole":
                return BLACKHOLE
            try:
                target = net.find(target)
            except KeyError:
                raise TopologyError(f"route {dest} in {self.name}: unknown target {target!r}",
                                    obj=self.name, value=target) from None
        if target is BLACKHOLE or target is LOCAL:
            return target
        if not isinstance(target, Target) or target.network is not net or not net._holds(target):
            name = getattr(target, "name", target)
            raise TopologyError(f"route {dest} in {self.name}: unknown target {name!r}", obj=self.name, value=name)
        vpc = self.vpc
        if isinstance(target, PeeringConnection):
            if vpc not in target.vpcs:
                raise TopologyError(f"route {dest} in {self.name}: peering {target.name} does not join VPC "
                                    f"{vpc.name}", obj=self.name, value=target.name)
        elif isinstance(target, TransitGateway):
            if vpc not in target.attachments:
                raise TopologyError(f"route {dest} in {self.name}: transit gateway {target.name} has no attachment "
                                    f"in VPC {vpc.name}", obj=self.name, value=target.name)
        elif getattr(target, "vpc", None) is not vpc:
            raise TopologyError(f"route {dest} in {self.name}: target {target.name} belongs to VPC "
                                f"{target.vpc.name}, not {vpc.name}", obj=self.name, value=target.name)  # type: ignore[attr-defined]
        return target

    def _check_destination(self, dest: IPv4Network, tgt: Target | _Special) -> None:
        if dest.subnet_of(RESERVED_SERVICE_RANGE):
            raise TopologyError(f"route {dest} in {self.name}: routes into {RESERVED_SERVICE_RANGE} (IMDS, DNS, "
                                "Time Sync) cannot be added", obj=self.name, value=str(dest))
        for cidr in self.vpc.cidrs:
            if dest == cidr:
                raise TopologyError(f"route {dest} in {self.name} duplicates the local route for VPC CIDR {cidr}",
                                    obj=self.name, value=str(dest))
            if dest.subnet_of(cidr):
                # More specific than local: only a whole subnet, only to an ENI, NAT gateway or GWLB endpoint (#23).
                whole = any(s.cidr == dest for s in self.vpc.subnets)
                if not whole:
                    raise TopologyError(f"route {dest} in {self.name} is more specific than the local route {cidr} "
                                        "but is not the CIDR of a whole subnet", obj=self.name, value=str(dest))
                ok = (isinstance(tgt, (Eni, NatGateway))
                      or (isinstance(tgt, Endpoint) and tgt.endpoint_type == "gatewayloadbalancer")
                      or tgt is BLACKHOLE)
                if not ok:
                    raise TopologyError(f"route {dest} in {self.name} is more specific than the local route {cidr}: "
                                        f"its target must be an ENI, NAT gateway or GWLB endpoint, not {tgt.name}",
                                        obj=self.name, value=tgt.name)

    def delete(self) -> None:
        self.network.remove(self)


# --------------------------------------------------------------------------- subnet

class Subnet(_Named):
    """A subnet: /16-/28 inside a VPC CIDR; five reserved addresses; one route table."""

    kind = "subnet"

    def __init__(self, vpc: Vpc, cidr: IPv4Network, name: str, gateway_mac: str) -> None:
        self.vpc, self.network, self.name = vpc, vpc.network, name
        self.cidr = cidr
        self.gateway_mac = gateway_mac
        self.enis: list[Eni] = []
        self.nat_gateways: list[NatGateway] = []
        self.explicit_route_table: RouteTable | None = None
        #: The NACL associated explicitly; None: the VPC's default NACL (#51).
        self.explicit_network_acl: NetworkAcl | None = None

    # addresses ---------------------------------------------------------
    @property
    def router_ip(self) -> IPv4Address:
        """The implicit VPC router's address in this subnet: base + 1."""
        return self.cidr.network_address + 1

    @property
    def dns_ip(self) -> IPv4Address:
        return self.cidr.network_address + 2

    @property
    def broadcast_ip(self) -> IPv4Address:
        return self.cidr.broadcast_address

    @property
    def reserved_ips(self) -> tuple[IPv4Address, ...]:
        """The five addresses that can never be assigned (#14): base, +1 router, +2 DNS, +3, last."""
        base = self.cidr.network_address
        return (base, base + 1, base + 2, base + 3, self.cidr.broadcast_address)

    @property
    def usable_count(self) -> int:
        return self.cidr.num_addresses - 5

    # route table ------------------------------------------------------
    @property
    def route_table(self) -> RouteTable:
        """The table in use: the explicit association, else the VPC's main table (#18)."""
        return self.explicit_route_table or self.vpc.main_route_table

    def associate(self, route_table: RouteTable) -> None:
        if not isinstance(route_table, RouteTable):
            raise TopologyError(f"subnet {self.name}: {route_table!r} is not a route table (use disassociate() "
                                "to follow the main table)", obj=self.name, value=route_table)
        self.network._check_owned(route_table, "route table")
        if route_table.vpc is not self.vpc:
            raise TopologyError(f"subnet {self.name}: route table {route_table.name} belongs to VPC "
                                f"{route_table.vpc.name}, not {self.vpc.name}", obj=self.name, value=route_table.name)
        self.explicit_route_table = route_table

    def disassociate(self) -> None:
        """Drop the explicit association: the subnet follows the main table again."""
        self.explicit_route_table = None

    # network ACL ------------------------------------------------------
    @property
    def network_acl(self) -> NetworkAcl:
        """The NACL in use: the explicit association, else the VPC's default NACL (#51)."""
        return self.explicit_network_acl or self.vpc.default_network_acl

    def associate_network_acl(self, acl: NetworkAcl) -> None:
        """Associate ``acl`` with this subnet, replacing the previous association
        (ReplaceNetworkAclAssociation); associating the default NACL returns to it."""
        from fastvpc.topology.filters import NetworkAcl

        if not isinstance(acl, NetworkAcl):
            raise TopologyError(f"subnet {self.name}: {acl!r} is not a network ACL", obj=self.name, value=acl)
        self.network._check_owned(acl, "network ACL")
        if acl.vpc is not self.vpc:
            raise TopologyError(f"subnet {self.name}: network ACL {acl.name} belongs to VPC {acl.vpc.name}, not "
                                f"{self.vpc.name}", obj=self.name, value=acl.name)
        self.explicit_network_acl = None if acl.is_default else acl

    # ENIs -------------------------------------------------------------
    def _check_assignable(self, ip: str | IPv4Address, who: str, what: str = "ENI") -> IPv4Address:
        addr = _addr(ip, f"{what} {who}: IP", obj=who)
        if addr not in self.cidr:
            raise TopologyError(f"{what} {who}: IP {addr} is outside subnet {self.name} ({self.cidr})",
                                obj=who, value=str(addr))
        if addr in self.reserved_ips:
            which = {0: "network address", 1: "VPC router", 2: "DNS", 3: "reserved for future use",
                     4: "broadcast address"}[self.reserved_ips.index(addr)]
            raise TopologyError(f"{what} {who}: IP {addr} is reserved in subnet {self.name} ({which})",
                                obj=who, value=str(addr))
        owner = self.vpc.eni_for_ip(addr)
        if owner is not None:
            raise TopologyError(f"{what} {who}: IP {addr} is already assigned to ENI {owner.name}",
                                obj=who, value=str(addr))
        nat = self.vpc._nat_ips.get(addr) if self.vpc._nat_ips else None  # skip the hash in VPCs without one
        if nat is not None:
            raise TopologyError(f"{what} {who}: IP {addr} is the private IP of NAT gateway {nat.name}",
                                obj=who, value=str(addr))
        return addr

    def add_eni(self, ip: str | IPv4Address, name: str | None = None, *, mac: str | None = None,
                secondary_ips: Iterable[str | IPv4Address] = (), source_dest_check: bool = True,
                port: int | None = None, security_groups: Iterable[SecurityGroup] | None = None,
                tracking: Tracking | None = None, public_ip: str | IPv4Address | ElasticIp | None = None) -> Eni:
        """Attach an ENI with a primary (and optional secondary) private IPs.

        The MAC is auto-assigned (locally administered, unique in the network) unless given.
        ``security_groups``: 1-5 groups of this VPC (default: the VPC's default group);
        ``tracking``: connection-tracking timeouts (default: AWS's);
        ``public_ip``: a public address to allocate and associate (or an unassociated
        :class:`ElasticIp` to associate), as ``net.allocate_address`` + ``associate_address``.
        """
        net = self.network
        label = name or str(ip)
        if security_groups is None and tracking is None:  # the common case: no import, no checks
            groups, track = [self.vpc.default_security_group], _default_tracking()
        else:
            from fastvpc.topology.filters import check_security_groups, check_tracking

            groups = check_security_groups(label, self.vpc, [self.vpc.default_security_group]
                                           if security_groups is None else security_groups)
            track = check_tracking(label, tracking)
        primary = self._check_assignable(ip, label)
        seconds: list[IPv4Address] = []
        for s in secondary_ips:
            a = self._check_assignable(s, label)
            if a == primary or a in seconds:
                raise TopologyError(f"ENI {label}: IP {a} is given twice", obj=label, value=str(a))
            seconds.append(a)
        if mac is None:
            mac_s = net._auto_mac(0x02, int(primary))
        else:
            mac_s = _mac(mac, f"ENI {label}: MAC", obj=label)
            net._check_mac_free(mac_s, label)
        nm = net._claim_name(name, "eni")
        address = None
        pip: IPv4Address | None = None
        if public_ip is not None:  # checked before anything is added, so a refusal leaves no trace
            from fastvpc.topology.edge import ElasticIp, check_public_ip, resolve_address

            if isinstance(public_ip, ElasticIp):
                address = resolve_address(net, public_ip, f"ENI {nm}")
                if address.association is not None:
                    raise TopologyError(f"ENI {nm}: Elastic IP {address.name} ({address.public_ip}) is already "
                                        f"associated with {address.association.name}", obj=nm, value=address.name)
            else:
                pip = check_public_ip(public_ip, f"ENI {nm}", obj=nm)
                if pip in net._public_ips:
                    raise TopologyError(f"ENI {nm}: public IP {pip} is already allocated as "
                                        f"{net._public_ips[pip].name}", obj=nm, value=str(pip))
        eni = Eni(self, nm, net._claim_port(port, nm), primary, mac_s, seconds, source_dest_check, groups, track)
        self.enis.append(eni)
        for a in eni.ips:
            self.vpc._ip_owner[a] = eni
        net._register(eni)
        net._tracking_ids().assign(nm)
        if address is not None:
            eni.associate_address(address)
        elif pip is not None:
            eni.associate_address(net.allocate_address(pip))
        return eni

    def add_nat_gateway(self, name: str | None = None, *, address: ElasticIp | str | None = None,
                        connectivity: str | None = None, ip: str | IPv4Address | None = None,
                        mac: str | None = None, port: int | None = None,
                        network_interface_id: str | None = None) -> NatGateway:
        """A NAT gateway in this subnet (#33): a private IP of this subnet (``ip``, else the
        highest free one) and a MAC, as AWS gives it an ENI (``network_interface_id``: that ENI's
        id, for flow log records).  ``connectivity="public"`` (the default) with its Elastic IP
        ``address``; ``"private"``: no address."""
        return self.vpc.add_nat_gateway(name, subnet=self, address=address, connectivity=connectivity, ip=ip,
                                        mac=mac, port=port, network_interface_id=network_interface_id)

    def _free_ip(self, who: str) -> IPv4Address:
        """The highest assignable address no ENI or NAT gateway holds (AWS picks one at random;
        the top of the subnet keeps clear of the low addresses examples give ENIs)."""
        vpc = self.vpc
        reserved = set(self.reserved_ips)
        top = int(self.cidr.broadcast_address)
        for n in range(top, int(self.cidr.network_address), -1):
            a = IPv4Address(n)
            if a not in reserved and a not in vpc._ip_owner and a not in vpc._nat_ips:
                return a
        raise TopologyError(f"NAT gateway {who}: subnet {self.name} ({self.cidr}) has no free IP address",
                            obj=who, value=self.name)

    def delete(self) -> None:
        self.network.remove(self)


# --------------------------------------------------------------------------- VPC

class Vpc(_Named):
    """A VPC: up to five IPv4 CIDRs (#13), subnets, route tables and its gateways."""

    kind = "vpc"

    def __init__(self, network: Network, name: str, cidr: IPv4Network) -> None:
        self.network, self.name = network, name
        self.cidrs: list[IPv4Network] = [cidr]
        self.subnets: list[Subnet] = []
        self.route_tables: list[RouteTable] = []
        self.internet_gateways: list[InternetGateway] = []
        self.vpn_gateways: list[VpnGateway] = []
        self.nat_gateways: list[NatGateway] = []
        self.endpoints: list[Endpoint] = []
        self.main_route_table: RouteTable = None  # type: ignore[assignment]  # set by Network.add_vpc
        self.security_groups: list[SecurityGroup] = []
        self.network_acls: list[NetworkAcl] = []
        self.default_security_group: SecurityGroup = None  # type: ignore[assignment]  # set by Network.add_vpc
        self.default_network_acl: NetworkAcl = None  # type: ignore[assignment]  # set by Network.add_vpc
        # every private IP of every ENI of this VPC -> its ENI: keeps ENI creation O(1)
        self._ip_owner: dict[IPv4Address, Eni] = {}
        # the private IP of every NAT gateway in a subnet of this VPC -> the NAT gateway
        self._nat_ips: dict[IPv4Address, NatGateway] = {}

    @property
    def cidr(self) -> IPv4Network:
        """The primary CIDR block."""
        return self.cidrs[0]

    @property
    def enis(self) -> list[Eni]:
        return [e for s in self.subnets for e in s.enis]

    @property
    def peerings(self) -> list[PeeringConnection]:
        return [p for p in self.network.peerings if self in p.vpcs]

    def contains(self, ip: IPv4Address) -> bool:
        return any(ip in c for c in self.cidrs)

    def subnet_for_ip(self, ip: IPv4Address) -> Subnet | None:
        for s in self.subnets:
            if ip in s.cidr:
                return s
        return None

    def eni_for_ip(self, ip: IPv4Address) -> Eni | None:
        """The ENI of this VPC that owns ``ip`` (primary or secondary), or None."""
        return self._ip_owner.get(ip)

    def add_cidr(self, cidr: str | IPv4Network) -> IPv4Network:
        """Associate another CIDR block; every route table gets its ``local`` route (#13)."""
        block = _check_vpc_cidr(cidr, self.name)
        if len(self.cidrs) >= MAX_VPC_CIDRS:
            raise TopologyError(f"VPC {self.name} already has {MAX_VPC_CIDRS} CIDR blocks; cannot add {block}",
                                obj=self.name, value=str(block))
        for c in self.cidrs:
            if block.overlaps(c):
                raise TopologyError(f"VPC {self.name}: CIDR {block} overlaps its CIDR {c}", obj=self.name,
                                    value=str(block))
        for p in self.peerings:
            other = p.peer_of(self)
            for c in other.cidrs:
                if block.overlaps(c):
                    raise TopologyError(f"VPC {self.name}: CIDR {block} overlaps {c} of peered VPC {other.name}",
                                        obj=self.name, value=str(block))
        for rt in self.route_tables:
            for r in rt.routes:
                if not r.is_local and r.destination.subnet_of(block):
                    raise TopologyError(f"VPC {self.name}: CIDR {block} would make route {r.destination} in "
                                        f"{rt.name} more specific than local", obj=self.name, value=str(block))
        self.cidrs.append(block)
        for rt in self.route_tables:
            n_local = sum(1 for r in rt.routes if r.is_local)
            rt.routes.insert(n_local, Route(rt, block, LOCAL, "local"))
        return block

    def add_subnet(self, cidr: str | IPv4Network, name: str | None = None, *,
                   route_table: RouteTable | None = None, gateway_mac: str | None = None) -> Subnet:
        """Create a subnet (#12): /16-/28, inside one VPC CIDR, overlapping no other subnet.

        Host bits are normalised away (100.68.0.18/18 -> 100.68.0.0/18), as AWS does.
        """
        label = name or str(cidr)
        block = _net(cidr, f"subnet {label}: CIDR", strict=False, obj=label)
        if not MIN_PREFIXLEN <= block.prefixlen <= MAX_PREFIXLEN:
            raise TopologyError(f"subnet {label}: CIDR {block} must be between /{MIN_PREFIXLEN} and "
                                f"/{MAX_PREFIXLEN}", obj=label, value=str(block))
        if not any(block.subnet_of(c) for c in self.cidrs):
            raise TopologyError(f"subnet {label}: CIDR {block} is not inside any CIDR of VPC {self.name} "
                                f"({', '.join(map(str, self.cidrs))})", obj=label, value=str(block))
        for s in self.subnets:
            if block.overlaps(s.cidr):
                raise TopologyError(f"subnet {label}: CIDR {block} overlaps subnet {s.name} ({s.cidr})",
                                    obj=label, value=str(block))
        net = self.network
        if route_table is not None and (not net._holds(route_table) or route_table.vpc is not self):
            raise TopologyError(f"subnet {label}: route table {getattr(route_table, 'name', route_table)} is not a "
                                f"route table of VPC {self.name}", obj=label, value=getattr(route_table, "name", None))
        if gateway_mac is None:
            gw = net._auto_mac(0x06, int(block.network_address))
        else:
            gw = _mac(gateway_mac, f"subnet {label}: gateway MAC", obj=label)
            net._check_mac_free(gw, label)
        subnet = Subnet(self, block, net._claim_name(name, "subnet"), gw)
        self.subnets.append(subnet)
        net._register(subnet)
        if route_table is not None:
            subnet.associate(route_table)
        return subnet

    def add_route_table(self, name: str | None = None, *, routes: Iterable[tuple[Any, TargetLike]] = (),
                        main: bool = False) -> RouteTable:
        rt = RouteTable(self, self.network._claim_name(name, "rtb"))
        self.route_tables.append(rt)
        self.network._register(rt)
        try:
            for dest, target in routes:
                rt.add_route(dest, target)
        except TopologyError:
            self.route_tables.remove(rt)
            self.network._unregister(rt)
            raise
        if main:
            self.set_main_route_table(rt)
        return rt

    # filters ---------------------------------------------------------------
    def add_security_group(self, name: str | None = None, *, group_name: str | None = None,
                           description: str = "") -> SecurityGroup:
        """A new group: no ingress rule, one egress rule all protocols to 0.0.0.0/0 (#45).

        ``group_name`` is AWS's GroupName (unique in the VPC, ``default`` is reserved);
        it defaults to ``name``.
        """
        from fastvpc.topology.filters import SecurityGroup

        net = self.network
        nm = net._claim_name(name, "sg")
        gname = nm if group_name is None else group_name
        self._check_group_name(gname, nm)
        if not isinstance(description, str):
            raise TopologyError(f"security group {nm}: description {description!r} must be a string",
                                obj=nm, value=description)
        _check_text(description, f"security group {nm}: description")
        sg = SecurityGroup(self, nm, gname, description)
        sg.authorize_egress("all", None, "0.0.0.0/0")
        self.security_groups.append(sg)
        net._register(sg)
        return sg

    def _check_group_name(self, gname: object, who: str) -> None:
        if not isinstance(gname, str) or not gname.strip():
            raise TopologyError(f"security group {who}: group_name {gname!r} must be a non-empty string",
                                obj=who, value=gname)
        _check_text(gname, f"security group {who}: group_name")
        if gname.lower() == "default" and self.default_security_group is not None:
            raise TopologyError(f"security group {who}: group_name 'default' is reserved for the default group "
                                f"of VPC {self.name}", obj=who, value=gname)
        for g in self.security_groups:
            if g.group_name == gname:
                raise TopologyError(f"security group {who}: group_name {gname!r} is already used by {g.name} in "
                                    f"VPC {self.name}", obj=who, value=gname)

    def add_network_acl(self, name: str | None = None) -> NetworkAcl:
        """A new custom NACL: no entries, only the implicit deny-all in each direction (#53)."""
        from fastvpc.topology.filters import NetworkAcl

        net = self.network
        acl = NetworkAcl(self, net._claim_name(name, "acl"))
        self.network_acls.append(acl)
        net._register(acl)
        return acl

    def _add_defaults(self, sg_name: str | None, acl_name: str | None) -> None:
        """The default group (ingress all from itself, egress all) and the default NACL (allow all)."""
        sg = self.add_security_group(sg_name, group_name="default", description="default VPC security group")
        self.default_security_group = sg
        sg.authorize_ingress("all", None, sg)
        acl = self.add_network_acl(acl_name)
        self.default_network_acl = acl
        acl.add_entry(100, "ingress", "allow", "all", None, "0.0.0.0/0")
        acl.add_entry(100, "egress", "allow", "all", None, "0.0.0.0/0")

    def set_main_route_table(self, route_table: RouteTable) -> None:
        """Make another table main: every implicitly associated subnet follows it (#19)."""
        self.network._check_owned(route_table, "route table")
        if route_table.vpc is not self:
            raise TopologyError(f"VPC {self.name}: route table {route_table.name} belongs to VPC "
                                f"{route_table.vpc.name}", obj=self.name, value=route_table.name)
        gws = route_table.gateways
        if gws:
            raise TopologyError(f"VPC {self.name}: route table {route_table.name} is associated with gateway "
                                f"{gws[0].name}; a gateway route table cannot be main", obj=self.name,
                                value=route_table.name)
        self.main_route_table = route_table

    def _one_gateway(self, existing: list[Any], what: str, name: str | None) -> None:
        if existing:
            raise TopologyError(f"VPC {self.name} already has {what} {existing[0].name}; "
                                f"a VPC can have only one (cannot add {name or 'another'})",
                                obj=self.name, value=name)

    def add_internet_gateway(self, name: str | None = None, *, port: int | None = None,
                             mac: str | None = None) -> InternetGateway:
        self._one_gateway(self.internet_gateways, "internet gateway", name)
        net = self.network
        nm = net._claim_name(name, "igw")
        gw = InternetGateway(self, nm, net._claim_port(port, nm))
        net._give_mac(gw, mac)
        self.internet_gateways.append(gw)
        net._register(gw)
        return gw

    def add_vpn_gateway(self, name: str | None = None, *, port: int | None = None,
                        mac: str | None = None) -> VpnGateway:
        self._one_gateway(self.vpn_gateways, "VPN gateway", name)
        net = self.network
        nm = net._claim_name(name, "vgw")
        gw = VpnGateway(self, nm, net._claim_port(port, nm))
        net._give_mac(gw, mac)
        self.vpn_gateways.append(gw)
        net._register(gw)
        return gw

    def add_nat_gateway(self, name: str | None = None, *, subnet: Subnet | None = None,
                        port: int | None = None, address: ElasticIp | str | None = None,
                        connectivity: str | None = None, ip: str | IPv4Address | None = None,
                        mac: str | None = None, network_interface_id: str | None = None) -> NatGateway:
        """A NAT gateway (#33); see :meth:`Subnet.add_nat_gateway`.

        ``connectivity`` ``"public"`` needs ``address`` (an unassociated Elastic IP: object, name or
        public IP); ``"private"`` refuses one.  Left out, it is public; a public NAT gateway made
        without an address (as before the edge was modelled) gets one later with
        ``nat.associate_address``.  Without a subnet there is no private IP (``ip`` refused).
        """
        from fastvpc.topology.edge import check_connectivity, resolve_address

        net = self.network
        label = name or "(unnamed)"
        if subnet is not None and subnet.vpc is not self:
            raise TopologyError(f"NAT gateway {name}: subnet {subnet.name} is not in VPC {self.name}",
                                obj=name, value=subnet.name)
        conn = "public" if connectivity is None else check_connectivity(connectivity, f"NAT gateway {label}", name)
        eip = None
        if address is not None:
            if conn == "private":
                raise TopologyError(f"NAT gateway {label}: a private NAT gateway takes no Elastic IP "
                                    f"({getattr(address, 'name', address)})", obj=name,
                                    value=getattr(address, "name", address))
            eip = resolve_address(net, address, f"NAT gateway {label}")
            if eip.association is not None:
                raise TopologyError(f"NAT gateway {label}: Elastic IP {eip.name} ({eip.public_ip}) is already "
                                    f"associated with {eip.association.name}", obj=name, value=eip.name)
        elif connectivity is not None and conn == "public":
            raise TopologyError(f"NAT gateway {label}: a public NAT gateway needs an Elastic IP (address=...)",
                                obj=name, value="public")
        if network_interface_id is not None:
            if (not isinstance(network_interface_id, str) or not network_interface_id
                    or len(network_interface_id) > 255 or any(c.isspace() for c in network_interface_id)):
                raise TopologyError(f"NAT gateway {label}: network_interface_id {network_interface_id!r} must be a "
                                    "non-empty id without spaces (eni-...)", obj=name, value=network_interface_id)
            _check_text(network_interface_id, f"NAT gateway {label}: network_interface_id")
            clash = net._by_name.get(network_interface_id)
            other = net._nat_with_interface(network_interface_id)
            if clash is not None or other is not None:
                raise TopologyError(f"NAT gateway {label}: network_interface_id {network_interface_id!r} is already "
                                    + ("a name in this network" if clash is not None
                                       else f"the interface of NAT gateway {other.name}")   # type: ignore[union-attr]
                                    + ": flow log records would not tell them apart", obj=name,
                                    value=network_interface_id)
        if subnet is None:
            if ip is not None:
                raise TopologyError(f"NAT gateway {label}: ip {ip!r} needs a subnet", obj=name, value=str(ip))
            private = None
        elif ip is None:
            private = subnet._free_ip(label)
        else:
            private = subnet._check_assignable(ip, label, "NAT gateway")
        nm = net._claim_name(name, "nat")
        gw = NatGateway(self, nm, net._claim_port(port, nm), subnet, conn, private, network_interface_id)
        net._give_mac(gw, mac)
        self.nat_gateways.append(gw)
        if subnet is not None:
            subnet.nat_gateways.append(gw)
        net._register(gw)
        net._tracking_ids().assign_nat(self.name, nm)
        if eip is not None:
            gw.associate_address(eip)
        return gw

    def add_endpoint(self, name: str | None = None, *, endpoint_type: str = "gateway",
                     service: str | None = None, port: int | None = None, mac: str | None = None) -> Endpoint:
        if endpoint_type not in Endpoint.KINDS:
            raise TopologyError(f"endpoint {name}: type {endpoint_type!r} must be one of {', '.join(Endpoint.KINDS)}",
                                obj=name, value=endpoint_type)
        if service is not None:
            if not isinstance(service, str):
                raise TopologyError(f"endpoint {name}: service {service!r} must be a string", obj=name, value=service)
            _check_text(service, f"endpoint {name}: service")
        net = self.network
        nm = net._claim_name(name, "vpce")
        ep = Endpoint(self, nm, net._claim_port(port, nm), endpoint_type, service)
        net._give_mac(ep, mac)
        self.endpoints.append(ep)
        net._register(ep)
        return ep

    def add_transit_gateway(self, name: str | None = None, *, port: int | None = None,
                            mac: str | None = None) -> TransitGateway:
        """Create a transit gateway in the network and attach it to this VPC."""
        tgw = self.network.add_transit_gateway(name, port=port, mac=mac)
        tgw.attach(self)
        return tgw

    @property
    def gateways(self) -> list[Target]:
        out: list[Target] = [*self.internet_gateways, *self.vpn_gateways, *self.nat_gateways, *self.endpoints]
        out += [t for t in self.network.transit_gateways if self in t.attachments]
        return out


def _check_vpc_cidr(cidr: object, who: str) -> IPv4Network:
    block = _net(cidr, f"VPC {who}: CIDR", strict=False, obj=who)
    if not MIN_PREFIXLEN <= block.prefixlen <= MAX_PREFIXLEN:
        raise TopologyError(f"VPC {who}: CIDR {block} must be between /{MIN_PREFIXLEN} and /{MAX_PREFIXLEN}",
                            obj=who, value=str(block))
    for bad in FORBIDDEN_VPC_RANGES:
        if block.overlaps(bad):
            raise TopologyError(f"VPC {who}: CIDR {block} lies in {bad}, which a VPC cannot use",
                                obj=who, value=str(block))
    return block


# --------------------------------------------------------------------------- network

class Network:
    """A region: VPCs, and what joins them (peerings, transit gateways)."""

    def __init__(self) -> None:
        self.vpcs: list[Vpc] = []
        self.peerings: list[PeeringConnection] = []
        self.transit_gateways: list[TransitGateway] = []
        self.prefix_lists: list[PrefixList] = []
        #: Elastic IPs in allocation order (DESIGN §6)
        self.addresses: list[ElasticIp] = []
        self._public_ips: dict[IPv4Address, ElasticIp] = {}
        self._by_name: dict[str, Any] = {}
        self._by_port: dict[int, Target] = {}
        self._macs: dict[str, str] = {}  # mac -> owner name
        self._next_port = 0
        self._counters: dict[str, Iterator[int]] = {}
        #: other names of objects -> their names (AWS instance ids and Name tags from an import);
        #: kept in topology files so ``fastvpc trace --from i-...`` works on a written file
        self.aliases: dict[str, list[str]] = {}
        #: the tracking identity given to each ENI name (fastvpc.topology.identities): kept for
        #: deleted ENIs too, so no other name of this network ever takes one a FlowTable may hold
        self._tracking = TrackingIdentities()

    # tracking identities -------------------------------------------------------
    def _tracking_ids(self) -> TrackingIdentities:
        """The memo of ENI tracking identities (made empty for a network pickled before it existed)."""
        ids = self.__dict__.get("_tracking")
        if ids is None:
            ids = self._tracking = TrackingIdentities()
        return ids

    def _settle_identities(self) -> TrackingIdentities:
        """The memo, with an identity for every ENI and NAT gateway of the network: the ones it has
        none for (a network pickled before the memo existed) get one now, ENIs first, each kind in
        name order (how identities were given before the memo, so such a network keeps them)."""
        ids = self._tracking_ids()
        enis = self.enis
        if len(ids) < len(enis) or any(e.name not in ids for e in enis):
            for name in sorted({e.name for e in enis if e.name not in ids}):
                ids.assign(name)
        nats = [g for v in self.vpcs for g in v.nat_gateways if ids.nat(g.name) is None]
        for g in sorted(nats, key=lambda g: g.name):
            ids.assign_nat(g.vpc.name, g.name)
        return ids

    def _eni_identities(self, enis: Sequence[Eni]) -> list[int]:
        """The tracking identity of each of ``enis`` (see :meth:`_settle_identities`)."""
        ids = self._settle_identities()
        return [ids[e.name] for e in enis]

    # names, ports, MACs --------------------------------------------------------
    def _claim_name(self, name: str | None, prefix: str) -> str:
        if name is None:
            counter = self._counters.setdefault(prefix, itertools.count(1))
            while True:
                cand = f"{prefix}-{next(counter)}"
                if cand not in self._by_name:
                    return cand
        if not isinstance(name, str) or not name.strip():
            raise TopologyError(f"name {name!r} must be a non-empty string", obj=None, value=name)
        _check_text(name, "name")
        if name in self._by_name or name.lower() in ("local", "blackhole"):
            raise TopologyError(f"name {name!r} is already used in this network", obj=name, value=name)
        if self._nat_with_interface(name) is not None:
            raise TopologyError(f"name {name!r} is already the network interface id of a NAT gateway", obj=name,
                                value=name)
        return name

    def _nat_with_interface(self, interface_id: str) -> NatGateway | None:
        """The NAT gateway whose ``network_interface_id`` is ``interface_id``, if any."""
        return next((g for v in self.vpcs for g in v.nat_gateways if g.network_interface_id == interface_id), None)

    def _claim_port(self, port: int | None, who: str) -> int:
        if port is None:
            while self._next_port in self._by_port:
                self._next_port += 1
            if self._next_port > MAX_PORT:  # counted past a user-given high port: take the lowest free one
                return next(p for p in itertools.count() if p not in self._by_port)
            return self._next_port
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= MAX_PORT:
            raise TopologyError(f"{who}: port {port!r} must be an int in 0..{MAX_PORT}", obj=who, value=port)
        if port in self._by_port:
            raise TopologyError(f"{who}: port {port} is already used by {self._by_port[port].name}",
                                obj=who, value=port)
        return port

    def _check_mac_free(self, mac: str, who: str) -> None:
        if mac in self._macs:
            raise TopologyError(f"{who}: MAC {mac} is already used by {self._macs[mac]}", obj=who, value=mac)

    def _check_gateway_mac(self, mac: str | None, who: str) -> str | None:
        """A gateway's MAC as given (validated, free), or None to auto-assign it once the port is known."""
        if mac is None:
            return None
        m = _mac(mac, f"{who}: MAC", obj=who)
        self._check_mac_free(m, who)
        return m

    def _give_mac(self, gw: Any, mac: str | None) -> None:
        """Set a new gateway's MAC (before it is registered): ``mac`` (validated, free), else
        ``1e:00:`` + its port (unique, deterministic; the letter in the first octet keeps YAML
        from reading a hand-copied MAC as a base-60 number)."""
        given = self._check_gateway_mac(mac, gw.name)
        gw._mac = given if given is not None else self._auto_mac(0x1E, gw.port)

    def _auto_mac(self, first: int, seed: int) -> str:
        """A locally administered unicast MAC: first octet, 0x00, then the four bytes of ``seed``."""
        for hi in range(first, 256, 8):  # stays locally administered (bit 1) and unicast (bit 0 clear)
            mac = int_to_mac((hi << 40) | (seed & 0xFFFFFFFF))
            if mac not in self._macs:
                return mac
        for n in itertools.count(1):  # pragma: no cover - 32 collisions on one address
            mac = int_to_mac((0x0A << 40) | n)
            if mac not in self._macs:
                return mac
        raise AssertionError("unreachable")

    def _register(self, obj: Any) -> None:
        self._by_name[obj.name] = obj
        if isinstance(obj, Target):
            self._by_port[obj.port] = obj
            self._next_port = max(self._next_port, obj.port + 1)
        if isinstance(obj, Eni):
            self._macs[obj.mac] = obj.name
        elif isinstance(obj, _GatewayMac):
            self._macs[obj.mac] = obj.name
            if isinstance(obj, NatGateway) and obj.ip is not None:
                obj.vpc._nat_ips[obj.ip] = obj
        if isinstance(obj, Subnet):
            self._macs[obj.gateway_mac] = f"the router of subnet {obj.name}"

    def _unregister(self, obj: Any) -> None:
        self._by_name.pop(obj.name, None)
        if isinstance(obj, Target):
            self._by_port.pop(obj.port, None)
        if isinstance(obj, Eni):
            self._macs.pop(obj.mac, None)
        elif isinstance(obj, _GatewayMac) and self._macs.get(obj.mac) == obj.name:
            self._macs.pop(obj.mac, None)
        if isinstance(obj, NatGateway) and obj.ip is not None and obj.vpc._nat_ips.get(obj.ip) is obj:
            del obj.vpc._nat_ips[obj.ip]
        if isinstance(obj, Subnet):
            self._macs.pop(obj.gateway_mac, None)

    def holds(self, obj: Any) -> bool:
        """Whether ``obj`` is part of this network now (added to it and not deleted)."""
        name = getattr(obj, "name", None)
        return isinstance(name, str) and self._by_name.get(name) is obj

    _holds = holds

    def _check_owned(self, obj: Any, what: str) -> None:
        if not self._holds(obj):
            raise TopologyError(f"{what} {getattr(obj, 'name', obj)!r} is not part of this network",
                                obj=getattr(obj, "name", None), value=getattr(obj, "name", obj))

    # building ------------------------------------------------------------------
    def add_vpc(self, cidr: str | IPv4Network, name: str | None = None, *,
                cidrs: Sequence[str | IPv4Network] = (), main_route_table: str | None = None,
                default_security_group: str | None = None, default_network_acl: str | None = None) -> Vpc:
        """Create a VPC with a main route table holding its ``local`` route, its default
        security group and its default network ACL (named as given, else generated)."""
        label = name or str(cidr)
        block = _check_vpc_cidr(cidr, label)
        vpc = Vpc(self, self._claim_name(name, "vpc"), block)
        self.vpcs.append(vpc)
        self._register(vpc)
        try:
            for extra in cidrs:
                vpc.add_cidr(extra)
            vpc.main_route_table = vpc.add_route_table(main_route_table)
            vpc._add_defaults(default_security_group, default_network_acl)
        except TopologyError:
            self.vpcs.remove(vpc)
            for obj in (*vpc.route_tables, *vpc.security_groups, *vpc.network_acls, vpc):
                self._unregister(obj)
            raise
        return vpc

    def add_peering(self, a: Vpc, b: Vpc, name: str | None = None, *, port: int | None = None,
                    mac: str | None = None) -> PeeringConnection:
        """An active peering between two VPCs with no overlapping CIDRs (#36)."""
        self._check_owned(a, "VPC")
        self._check_owned(b, "VPC")
        label = name or "peering"
        if a is b:
            raise TopologyError(f"peering {label}: a VPC cannot peer with itself ({a.name})", obj=label, value=a.name)
        for ca in a.cidrs:
            for cb in b.cidrs:
                if ca.overlaps(cb):
                    raise TopologyError(f"peering {label}: VPC {a.name} CIDR {ca} overlaps VPC {b.name} CIDR {cb}",
                                        obj=label, value=str(cb))
        for p in self.peerings:
            if {p.requester, p.accepter} == {a, b}:
                raise TopologyError(f"peering {label}: VPCs {a.name} and {b.name} are already peered by {p.name}",
                                    obj=label, value=p.name)
        nm = self._claim_name(name, "pcx")
        pcx = PeeringConnection(self, nm, self._claim_port(port, nm), a, b)
        self._give_mac(pcx, mac)
        self.peerings.append(pcx)
        self._register(pcx)
        return pcx

    def add_prefix_list(self, cidrs: Iterable[str | IPv4Network], name: str | None = None, *,
                        max_entries: int | None = None) -> PrefixList:
        """A named list of CIDRs that security group rules can name as their peer."""
        from fastvpc.topology.filters import make_prefix_list

        pl = make_prefix_list(self, cidrs, name, max_entries)
        self.prefix_lists.append(pl)
        self._register(pl)
        return pl

    def add_transit_gateway(self, name: str | None = None, *, port: int | None = None,
                            mac: str | None = None) -> TransitGateway:
        nm = self._claim_name(name, "tgw")
        tgw = TransitGateway(self, nm, self._claim_port(port, nm))
        self._give_mac(tgw, mac)
        self.transit_gateways.append(tgw)
        self._register(tgw)
        return tgw

    # the edge ------------------------------------------------------------------
    def allocate_address(self, public_ip: str | IPv4Address, name: str | None = None) -> ElasticIp:
        """AllocateAddress: a new Elastic IP (DESIGN §6's public addresses only, each once)."""
        from fastvpc.topology.edge import allocate

        return allocate(self, public_ip, name)

    def release_address(self, address: ElasticIp | str) -> None:
        """ReleaseAddress (object, name or public IP): refused while it is associated."""
        from fastvpc.topology.edge import resolve_address

        self.remove(resolve_address(self, address, "release_address"))

    def address_for(self, public_ip: str | IPv4Address) -> ElasticIp | None:
        """The Elastic IP whose public address is ``public_ip``, or None."""
        return self._public_ips.get(_addr(public_ip, "public IP"))

    # removal -------------------------------------------------------------------
    def remove(self, obj: Any) -> None:
        """Delete an object.  Routes to a deleted target become blackholes (#28).

        Subnets must have no ENIs, route tables no associations and must not be main,
        VPCs must be empty of subnets (AWS's DependencyViolation).
        """
        from fastvpc.topology.edge import ElasticIp, disassociate, remove_address
        from fastvpc.topology.filters import NetworkAcl, PrefixList, SecurityGroup, remove_filter_object

        self._check_owned(obj, "object")
        if isinstance(obj, (SecurityGroup, NetworkAcl, PrefixList)):
            remove_filter_object(self, obj)
        elif isinstance(obj, ElasticIp):
            remove_address(self, obj)
        elif isinstance(obj, Target):
            self._blackhole_routes_to(obj)
            if isinstance(obj, (Eni, NatGateway)):
                disassociate(obj)  # the address stays allocated, as on AWS
            if isinstance(obj, Eni):
                obj.subnet.enis.remove(obj)
                for a in obj.ips:
                    obj.vpc._ip_owner.pop(a, None)
            elif isinstance(obj, InternetGateway):
                obj._route_table = None
                obj.vpc.internet_gateways.remove(obj)
            elif isinstance(obj, VpnGateway):
                obj._route_table = None
                obj.vpc.vpn_gateways.remove(obj)
            elif isinstance(obj, NatGateway):
                obj.vpc.nat_gateways.remove(obj)
                if obj.subnet is not None:
                    obj.subnet.nat_gateways.remove(obj)
            elif isinstance(obj, Endpoint):
                obj.vpc.endpoints.remove(obj)
            elif isinstance(obj, PeeringConnection):
                self.peerings.remove(obj)
            elif isinstance(obj, TransitGateway):
                self.transit_gateways.remove(obj)
        elif isinstance(obj, Subnet):
            if obj.enis:
                raise TopologyError(f"subnet {obj.name} still has ENIs ({', '.join(e.name for e in obj.enis)})",
                                    obj=obj.name, value=obj.enis[0].name)
            for rt in obj.vpc.route_tables:
                for r in rt.routes:
                    if r.destination == obj.cidr and not r.is_local:
                        raise TopologyError(f"subnet {obj.name}: route {r.destination} -> {r.target.name} in "
                                            f"{rt.name} targets its CIDR; remove that route first",
                                            obj=obj.name, value=str(r.destination))
            for nat in list(obj.nat_gateways):
                self.remove(nat)
            obj.vpc.subnets.remove(obj)
        elif isinstance(obj, RouteTable):
            if obj.is_main:
                raise TopologyError(f"route table {obj.name} is the main table of VPC {obj.vpc.name}; "
                                    "make another table main first", obj=obj.name, value=obj.name)
            users = [s.name for s in obj.vpc.subnets if s.explicit_route_table is obj]
            if users:
                raise TopologyError(f"route table {obj.name} is associated with subnet(s) {', '.join(users)}",
                                    obj=obj.name, value=users[0])
            gws = [g.name for g in obj.gateways]
            if gws:
                raise TopologyError(f"route table {obj.name} is associated with gateway(s) {', '.join(gws)}",
                                    obj=obj.name, value=gws[0])
            obj.vpc.route_tables.remove(obj)
        elif isinstance(obj, Vpc):
            if obj.subnets:
                raise TopologyError(f"VPC {obj.name} still has subnets ({', '.join(s.name for s in obj.subnets)})",
                                    obj=obj.name, value=obj.subnets[0].name)
            for v in self.vpcs:
                if v is obj:
                    continue
                for g in v.security_groups:
                    for rule in (*g.ingress, *g.egress):
                        if isinstance(rule.peer, SecurityGroup) and rule.peer.vpc is obj:
                            raise TopologyError(f"VPC {obj.name}: its security group {rule.peer.name} is referenced "
                                                f"by a rule of group {g.name} in VPC {v.name}",
                                                obj=obj.name, value=rule.peer.name)
            for gw in obj.gateways:
                if not isinstance(gw, TransitGateway):
                    self.remove(gw)
            for p in list(obj.peerings):
                self.remove(p)
            for t in self.transit_gateways:
                if obj in t.attachments:
                    t.attachments.remove(obj)
            for o in (*obj.route_tables, *obj.security_groups, *obj.network_acls):
                self._unregister(o)
            self.vpcs.remove(obj)
        else:  # pragma: no cover
            raise TopologyError(f"cannot remove {obj!r}", value=obj)
        self._unregister(obj)

    def _blackhole_routes_to(self, target: Target) -> None:
        for vpc in self.vpcs:
            for rt in vpc.route_tables:
                for r in rt.routes:
                    if r.target is target:
                        if r.is_local:  # a replaced local route is restored, not blackholed (#21)
                            r.target = LOCAL
                        else:
                            r.deleted_target = target.name
                            r.target = BLACKHOLE

    # queries -------------------------------------------------------------------
    def find(self, name: str) -> Any:
        """The object named ``name``; KeyError naming it if there is none."""
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            raise KeyError(f"no object named {name!r} in this network") from None

    def port_owner(self, port: int) -> Target | None:
        """The ENI or target whose port is ``port``, or None (unlike :meth:`by_port`, no KeyError:
        the data plane treats any number as a possible port)."""
        return self._by_port.get(port)

    def by_port(self, port: int) -> Target:
        try:
            return self._by_port[port]
        except KeyError:
            raise KeyError(f"no ENI or target has port {port!r}") from None

    @property
    def subnets(self) -> list[Subnet]:
        return [s for v in self.vpcs for s in v.subnets]

    @property
    def enis(self) -> list[Eni]:
        return [e for v in self.vpcs for s in v.subnets for e in s.enis]

    @property
    def route_tables(self) -> list[RouteTable]:
        return [rt for v in self.vpcs for rt in v.route_tables]

    @property
    def security_groups(self) -> list[SecurityGroup]:
        """Every group: VPCs in order, each VPC's groups in creation order (its default first)."""
        return [g for v in self.vpcs for g in v.security_groups]

    @property
    def network_acls(self) -> list[NetworkAcl]:
        """Every NACL: VPCs in order, each VPC's NACLs in creation order (its default first)."""
        return [a for v in self.vpcs for a in v.network_acls]

    @property
    def targets(self) -> list[Target]:
        """Every object with a port, in port order."""
        return [self._by_port[p] for p in sorted(self._by_port)]

    @property
    def max_port(self) -> int:
        return max(self._by_port, default=-1)

    def routes(self) -> list[Route]:
        """Every route in the fixed order that ``Dataplane`` route indices refer to."""
        return [r for rt in self.route_tables for r in rt.routes]

    def eni_for_ip(self, vpc: Vpc, ip: str | IPv4Address) -> Eni | None:
        return vpc.eni_for_ip(_addr(ip, "IP"))

    # compile, files --------------------------------------------------------------
    def compile(self, arp_mode: str = "target", filters: bool = True, edge: bool = True) -> Dataplane:
        """An immutable, picklable snapshot of this network as numpy arrays (``filters=False``: no
        security groups or network ACLs, as Batfish's ignoreFilters; ``edge=False``: gateways are
        opaque exits, no public-IP translation, frames on gateway ports ``UNKNOWN_PORT``)."""
        from fastvpc.compiler import compile_network

        return compile_network(self, arp_mode=arp_mode, filters=filters, edge=edge)

    def save(self, path: Any, format: str | None = None) -> None:
        """Write this network as a JSON or YAML topology file (by extension, or ``format``)."""
        from fastvpc.files import save

        save(self, path, format=format)

    def to_dict(self) -> dict[str, Any]:
        from fastvpc.files import network_to_dict

        return network_to_dict(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Network):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"<Network {len(self.vpcs)} VPCs, {len(self.subnets)} subnets, {len(self.enis)} ENIs, "
                f"{len(self.peerings)} peerings>")
