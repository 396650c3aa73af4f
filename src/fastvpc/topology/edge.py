"""The VPC edge's control plane: Elastic IPs, NAT gateway addressing, gateway route tables (DESIGN §6).

Pure Python, like :mod:`fastvpc.topology.core` and :mod:`fastvpc.topology.filters`: every
mutating call validates at once and raises :class:`fastvpc.TopologyError` naming the object and
the bad value.  Names follow the EC2 API and boto3 (``allocate_address``, ``associate_address``,
``PublicIp``, ``ConnectivityType``, gateway route table associations).

What lives here:

* :class:`ElasticIp` (also exported as ``Address``, boto3's ``ec2.VpcAddress``): a public IPv4
  address allocated to the network, associated with at most one ENI or NAT gateway.
* :func:`is_public` / :func:`check_public_ip`: DESIGN §6's definition of a public address.
* :func:`check_gateway_route` / :func:`check_gateway_table`: what a gateway route table may hold
  (rows #40-#41 of vpc-behaviour.md; aws-behaviour-more.md §4).

The methods users call sit on the objects (``Network.allocate_address``,
``Eni.associate_address``, ``Subnet.add_nat_gateway``, ``RouteTable.associate_gateway``) and call
into this module, as the filter methods call into :mod:`fastvpc.topology.filters`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

from fastvpc.errors import TopologyError
from fastvpc.topology.core import IPv4Address, IPv4Network, _addr, _Named

if TYPE_CHECKING:  # pragma: no cover
    from fastvpc.topology.core import Eni, NatGateway, Network, Route, RouteTable, Target

__all__ = ["NON_PUBLIC_RANGES", "Address", "ElasticIp", "is_public"]

#: Ranges that are not public (DESIGN §6): "this network", RFC 1918, shared address space
#: (RFC 6598), loopback, link-local, and multicast with the reserved class E and broadcast.
#: The documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) are *not* listed:
#: they count as public so that examples and tests can use them.
NON_PUBLIC_RANGES = tuple(IPv4Network(c) for c in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.168.0.0/16", "224.0.0.0/3"))

#: The two NAT gateway connectivity types (``ConnectivityType`` of CreateNatGateway).
CONNECTIVITY_TYPES = ("public", "private")


def is_public(ip: IPv4Address | str) -> bool:
    """Whether ``ip`` is a public IPv4 address in DESIGN §6's sense."""
    a = ip if isinstance(ip, IPv4Address) else IPv4Address(ip)
    return not any(a in r for r in NON_PUBLIC_RANGES)


def check_public_ip(value: object, who: str, obj: str | None = None) -> IPv4Address:
    """``value`` as a public IPv4 address, else a TopologyError naming ``who`` and the value."""
    a = _addr(value, f"{who}: public IP", obj=obj)
    for r in NON_PUBLIC_RANGES:
        if a in r:
            raise TopologyError(f"{who}: {a} is not a public address (it lies in {r}); an Elastic IP must be a "
                                "public unicast IPv4 address", obj=obj, value=str(a))
    return a


AddressOwner = Union["Eni", "NatGateway"]


class ElasticIp(_Named):
    """A public IPv4 address allocated to the network (AllocateAddress).

    ``association`` is the ENI or NAT gateway it is associated with, or None.  The public IP is
    never seen by the VM (#17): the internet gateway translates it 1:1 to the private IP.
    """

    kind = "eip"

    def __init__(self, network: Network, name: str, public_ip: IPv4Address) -> None:
        self.network, self.name, self.public_ip = network, name, public_ip
        self._association: AddressOwner | None = None

    @property
    def association(self) -> AddressOwner | None:
        """The ENI or NAT gateway this address is associated with (None: unassociated)."""
        return self._association

    @property
    def private_ip(self) -> IPv4Address | None:
        """The private IP the internet gateway maps this address to (None when unassociated)."""
        owner = self._association
        return None if owner is None else owner.ip

    def release(self) -> None:
        """ReleaseAddress: refused while the address is associated."""
        self.network.remove(self)

    def __repr__(self) -> str:
        return f"<ElasticIp {self.name} {self.public_ip}>"


#: boto3 calls an Elastic IP of a VPC an ``Address`` (``ec2.VpcAddress``); both names work.
Address = ElasticIp


# --------------------------------------------------------------------------- allocation, association

def allocate(net: Network, public_ip: object, name: str | None) -> ElasticIp:
    """``Network.allocate_address``: a new unassociated address; refuses private and taken IPs."""
    label = name or str(public_ip)
    ip = check_public_ip(public_ip, f"Elastic IP {label}", obj=name)
    other = net._public_ips.get(ip)
    if other is not None:
        raise TopologyError(f"Elastic IP {label}: {ip} is already allocated as {other.name}",
                            obj=name, value=str(ip))
    eip = ElasticIp(net, net._claim_name(name, "eip"), ip)
    net.addresses.append(eip)
    net._public_ips[ip] = eip
    net._register(eip)
    return eip


def resolve_address(net: Network, value: object, who: str) -> ElasticIp:
    """An ElasticIp of ``net`` from an object, its name or its public IP text."""
    if isinstance(value, ElasticIp):
        net._check_owned(value, "Elastic IP")
        return value
    if isinstance(value, str):
        obj = net._by_name.get(value)
        if isinstance(obj, ElasticIp):
            return obj
        try:
            ip = IPv4Address(value.strip())
        except ValueError:
            ip = None
        if ip is not None and ip in net._public_ips:
            return net._public_ips[ip]
    raise TopologyError(f"{who}: {value!r} is not an Elastic IP of this network (allocate it with "
                        "net.allocate_address first)", obj=who, value=getattr(value, "name", value))


def associate(owner: AddressOwner, eip: object, who: str) -> ElasticIp:
    """Associate ``eip`` with ``owner`` (an ENI or a NAT gateway): each side at most once."""
    net = owner.network
    address = resolve_address(net, eip, who)
    if address._association is owner:
        return address  # associating the same pair again changes nothing (AWS answers with the same id)
    if address._association is not None:
        raise TopologyError(f"{who}: Elastic IP {address.name} ({address.public_ip}) is already associated with "
                            f"{address._association.name}", obj=owner.name, value=address.name)
    if owner._address is not None:
        raise TopologyError(f"{who}: already has Elastic IP {owner._address.name} ({owner._address.public_ip}); "
                            "disassociate it first", obj=owner.name, value=address.name)
    address._association = owner
    owner._address = address
    return address


def disassociate(owner: AddressOwner) -> ElasticIp | None:
    """Drop ``owner``'s address (it stays allocated); returns it, or None when there was none."""
    address = owner._address
    if address is not None:
        address._association = None
        owner._address = None
    return address


def remove_address(net: Network, eip: ElasticIp) -> None:
    """``Network.remove`` for an address: refused while associated (AWS's InvalidIPAddress.InUse)."""
    if eip._association is not None:
        raise TopologyError(f"Elastic IP {eip.name} ({eip.public_ip}) is associated with {eip._association.name}; "
                            "disassociate it before releasing it", obj=eip.name, value=eip._association.name)
    net.addresses.remove(eip)
    net._public_ips.pop(eip.public_ip, None)


def check_connectivity(value: object, who: str, obj: str | None = None) -> str:
    if isinstance(value, str) and value.lower() in CONNECTIVITY_TYPES:
        return value.lower()
    raise TopologyError(f"{who}: connectivity {value!r} must be 'public' or 'private'", obj=obj, value=value)


# --------------------------------------------------------------------------- gateway route tables

def _is_gwlbe(t: Any) -> bool:
    from fastvpc.topology.core import Endpoint

    return isinstance(t, Endpoint) and t.endpoint_type == "gatewayloadbalancer"


def check_gateway_route(rt: RouteTable, route_dest: IPv4Network, origin: str, prefix_list: str | None,
                        target: Target | Any, gateways: list[Any]) -> None:
    """Refuse a route a gateway route table cannot hold (#41): only a VPC CIDR (the ``local``
    route, pointed at an appliance or left local) or a whole subnet CIDR as destination; only
    ``local``, an ENI or a GWLB endpoint as target (not a GWLB endpoint in a VGW's table); no
    propagated or prefix-list routes.  A blackhole (a deleted target) is what AWS shows and stays."""
    from fastvpc.topology.core import BLACKHOLE, LOCAL, Eni, VpnGateway

    names = ", ".join(g.name for g in gateways)
    where = f"route {route_dest} -> {target.name} in gateway route table {rt.name} (associated with {names})"
    if origin == "propagated":
        raise TopologyError(f"{where}: a gateway route table takes no propagated routes", obj=rt.name,
                            value=str(route_dest))
    if prefix_list is not None or origin == "prefix-list":
        raise TopologyError(f"{where}: a gateway route table takes no prefix-list routes", obj=rt.name,
                            value=prefix_list or str(route_dest))
    vpc = rt.vpc
    whole_vpc = route_dest in vpc.cidrs
    whole_subnet = any(s.cidr == route_dest for s in vpc.subnets)
    if not (whole_vpc or whole_subnet):
        raise TopologyError(f"{where}: the destination must be a CIDR of VPC {vpc.name} or the CIDR of one of its "
                            "subnets", obj=rt.name, value=str(route_dest))
    if target is LOCAL or target is BLACKHOLE or isinstance(target, Eni):
        return
    if _is_gwlbe(target):
        if any(isinstance(g, VpnGateway) for g in gateways):
            raise TopologyError(f"{where}: a VPN gateway's route table cannot target a Gateway Load Balancer "
                                "endpoint", obj=rt.name, value=target.name)
        return
    raise TopologyError(f"{where}: the target must be local, an ENI or a Gateway Load Balancer endpoint",
                        obj=rt.name, value=target.name)


def check_gateway_table(rt: RouteTable, gateways: list[Any]) -> None:
    """Every route of ``rt`` must suit a gateway route table (checked when associating)."""
    if rt.is_main:
        raise TopologyError(f"route table {rt.name} is the main table of VPC {rt.vpc.name}: a main table cannot "
                            "be associated with a gateway", obj=rt.name, value=rt.name)
    for r in rt.routes:
        check_gateway_route(rt, r.destination, r.origin, r.prefix_list, r.target, gateways)

