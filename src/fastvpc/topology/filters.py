"""Security groups, network ACLs, prefix lists and connection-tracking timeouts (DESIGN §5).

Pure Python, like :mod:`fastvpc.topology.core`: every mutating call validates at once and
raises :class:`fastvpc.TopologyError` naming the object and the bad value.  Names follow the
EC2 API and boto3 (``authorize_ingress``, ``revoke_egress``, ``NetworkAclEntry``,
``RuleNumber``, ``Egress`` ...).

The evaluation helpers at the bottom (:meth:`SecurityGroupRule.matches`,
:func:`security_groups_admit`, :meth:`NetworkAcl.evaluate`, :func:`flow_is_untracked`) are
the plain-Python statement of AWS's rule semantics (rows #45-#56 of vpc-behaviour.md) that
the reference forwarder's SG/NACL stages call and the compiled stages are tested against.
They judge one packet by the rules alone; connection tracking lives in ``FlowTable``.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Union

from fastvpc.errors import TopologyError
from fastvpc.topology.core import IPv4Address, IPv4Network, _addr, _Named, _net

if TYPE_CHECKING:  # pragma: no cover
    from fastvpc.topology.core import Eni, Network, Vpc

__all__ = [
    "DIRECTIONS",
    "NetworkAcl",
    "NetworkAclEntry",
    "PrefixList",
    "SecurityGroup",
    "SecurityGroupRule",
    "Tracking",
    "flow_is_untracked",
    "security_groups_admit",
]

#: The two directions of a rule or an entry (boto3: ``IpPermissions`` / ``IpPermissionsEgress``,
#: ``Egress: false`` / ``Egress: true``).
DIRECTIONS = ("ingress", "egress")
#: NACL rule actions (``RuleAction``).
ACTIONS = ("allow", "deny")
#: Protocol names accepted wherever a protocol is given, and their numbers (-1 = all).
PROTOCOL_NAMES = {"all": -1, "-1": -1, "tcp": 6, "udp": 17, "icmp": 1}
#: Canonical names written back for these numbers.
PROTOCOL_LABELS = {-1: "all", 6: "tcp", 17: "udp", 1: "icmp"}
#: Protocols whose rules carry a port range (TCP, UDP) or an ICMP type/code (ICMP).
PORT_PROTOCOLS = (6, 17)
ICMP = 1
ALL_PORTS = (0, 65535)

#: Quotas AWS enforces (QUOTA in aws-behaviour-more.md §1.2, §2).
MAX_GROUPS_PER_ENI = 5
MAX_RULES_PER_DIRECTION = 60
#: NACL entries per direction: AWS's default quota is 20 and it can be raised to 40.
MAX_NACL_ENTRIES_PER_DIRECTION = 40
MIN_RULE_NUMBER, MAX_RULE_NUMBER = 1, 32766
#: The number AWS shows for the implicit final deny-all entry of IPv4 (``*`` in the console).
IMPLICIT_DENY_NUMBER = 32767
#: Largest number of CIDRs in one customer-managed prefix list.
MAX_PREFIX_LIST_ENTRIES = 1000

ANY_IPV4 = IPv4Network("0.0.0.0/0")


# --------------------------------------------------------------------------- parsing rule parts

def _integer(value: object) -> int | None:
    """``value`` as an int when it is an integer (numpy integers included, bool excluded)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


def _direction(value: object, who: str, obj: str | None = None) -> str:
    if isinstance(value, str) and value.lower() in DIRECTIONS:
        return value.lower()
    raise TopologyError(f"{who}: direction {value!r} must be 'ingress' or 'egress'", obj=obj, value=value)


def _protocol(value: object, who: str, obj: str | None = None) -> int:
    """A protocol as its number: names ``tcp``/``udp``/``icmp``/``all``, ``-1``, or 0..255."""
    if isinstance(value, bool):
        raise TopologyError(f"{who}: protocol {value!r} must be a name (tcp, udp, icmp, all), -1 or 0-255",
                            obj=obj, value=value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in PROTOCOL_NAMES:
            return PROTOCOL_NAMES[low]
        if low.isdigit() and low.isascii():  # the EC2 API and describe-* JSON give numbers as strings
            value = int(low)
        else:
            raise TopologyError(f"{who}: protocol {value!r} must be a name (tcp, udp, icmp, all), -1 or 0-255",
                                obj=obj, value=value)
    n = _integer(value)
    if n is not None and (n == -1 or 0 <= n <= 255):
        return n
    raise TopologyError(f"{who}: protocol {value!r} must be a name (tcp, udp, icmp, all), -1 or 0-255",
                        obj=obj, value=value)


def protocol_label(proto: int) -> str:
    """``tcp``, ``udp``, ``icmp``, ``all`` or the number, as written in files and shown."""
    return PROTOCOL_LABELS.get(proto, str(proto))


def _int_in(value: object, lo: int, hi: int, what: str, who: str, obj: str | None = None) -> int:
    n = _integer(value)
    if n is None or not lo <= n <= hi:
        raise TopologyError(f"{who}: {what} {value!r} must be an integer {lo}-{hi}", obj=obj, value=value)
    return n


def _pair(value: object) -> tuple[object, object] | None:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return value[0], value[1]
    return None


def _ports_and_icmp(proto: int, ports: object, who: str, obj: str | None = None) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """(port range, ICMP (type, code)) of a rule or entry; refuses what AWS refuses.

    TCP/UDP: an int, an inclusive ``(lo, hi)`` or None (all ports, stored as 0-65535).
    ICMP: ``(type, code)`` (-1 = any), an int type (any code) or None (every type).
    Other protocols and ``all`` have no ports: anything but None is refused (AWS would
    silently ignore it; a rule that does not mean what it says is a mistake to report).
    """
    if proto in PORT_PROTOCOLS:
        if ports is None:
            return ALL_PORTS, None
        if _integer(ports) is not None:
            p = _int_in(ports, 0, 65535, "port", who, obj)
            return (p, p), None
        pair = _pair(ports)
        if pair is None:
            raise TopologyError(f"{who}: ports {ports!r} must be a port, an inclusive (from, to) pair or None",
                                obj=obj, value=ports)
        lo = _int_in(pair[0], 0, 65535, "from port", who, obj)
        hi = _int_in(pair[1], 0, 65535, "to port", who, obj)
        if lo > hi:
            raise TopologyError(f"{who}: port range {lo}-{hi} is reversed (from port above to port)",
                                obj=obj, value=ports)
        return (lo, hi), None
    if proto == ICMP:
        if ports is None:
            return None, (-1, -1)
        if _integer(ports) is not None:
            return None, (_int_in(ports, -1, 255, "ICMP type", who, obj), -1)
        pair = _pair(ports)
        if pair is None:
            raise TopologyError(f"{who}: ICMP {ports!r} must be a (type, code) pair (-1 = any), a type or None",
                                obj=obj, value=ports)
        t = _int_in(pair[0], -1, 255, "ICMP type", who, obj)
        c = _int_in(pair[1], -1, 255, "ICMP code", who, obj)
        if t == -1 and c != -1:
            raise TopologyError(f"{who}: ICMP code {c} is given without a type (type -1 = any type)",
                                obj=obj, value=ports)
        return None, (t, c)
    if ports is not None:
        raise TopologyError(f"{who}: protocol {protocol_label(proto)} has no ports, but ports {ports!r} were given "
                            "(use None)", obj=obj, value=ports)
    return None, None


def _cidr(value: object, who: str, obj: str | None = None) -> IPv4Network:
    """A rule's IPv4 CIDR, host bits cleared as AWS canonicalises (100.68.0.18/18 -> 100.68.0.0/18)."""
    if isinstance(value, str) and ":" in value:
        raise TopologyError(f"{who}: CIDR {value!r} is IPv6: only IPv4 rules are modelled", obj=obj, value=value)
    return _net(value, f"{who}: CIDR", strict=False, obj=obj)


def _describe_match(proto: int, ports: tuple[int, int] | None, icmp: tuple[int, int] | None) -> str:
    text = protocol_label(proto)
    if ports is not None:
        text += " all ports" if ports == ALL_PORTS else (f" {ports[0]}" if ports[0] == ports[1]
                                                            else f" {ports[0]}-{ports[1]}")
    if icmp is not None and icmp != (-1, -1):
        text += f" type {icmp[0]}" + ("" if icmp[1] == -1 else f" code {icmp[1]}")
    return text


def _port_matches(ports: tuple[int, int] | None, port: int | None) -> bool:
    if ports is None:
        return True
    if port is None:  # no port known (a non-first fragment): only an all-ports rule can match
        return ports == ALL_PORTS
    return ports[0] <= port <= ports[1]


def _icmp_matches(rule: tuple[int, int] | None, icmp: tuple[int, int] | None) -> bool:
    if rule is None or rule == (-1, -1):
        return True
    if icmp is None:
        return False
    return (rule[0] == -1 or rule[0] == icmp[0]) and (rule[1] == -1 or rule[1] == icmp[1])


def _ip(value: object, who: str) -> IPv4Address:
    n = _integer(value)
    if n is not None and 0 <= n < 2**32:
        return IPv4Address(n)
    return _addr(value, f"{who}: address")


# --------------------------------------------------------------------------- prefix lists

class PrefixList(_Named):
    """A named list of CIDRs usable as a rule's peer (``pl-...`` when imported from AWS).

    ``max_entries`` is what a rule referencing it counts towards a group's 60-rule quota
    (AWS counts a customer-managed list as its maximum entries); it defaults to the
    number of CIDRs.
    """

    kind = "pl"

    def __init__(self, network: Network, name: str, cidrs: tuple[IPv4Network, ...], max_entries: int) -> None:
        self.network, self.name = network, name
        self.cidrs = cidrs
        self.max_entries = max_entries

    def __contains__(self, ip: object) -> bool:
        return any(ip in c for c in self.cidrs)

    def delete(self) -> None:
        self.network.remove(self)


def _prefix_list_cidrs(cidrs: Iterable[object], who: str, obj: str | None = None) -> tuple[IPv4Network, ...]:
    if isinstance(cidrs, (str, bytes)) or not isinstance(cidrs, Iterable):
        raise TopologyError(f"{who}: CIDRs {cidrs!r} must be a list of CIDR strings", obj=obj, value=cidrs)
    out: list[IPv4Network] = []
    for c in cidrs:
        n = _cidr(c, who, obj)
        if n not in out:
            out.append(n)
    if len(out) > MAX_PREFIX_LIST_ENTRIES:
        raise TopologyError(f"{who}: {len(out)} CIDRs is more than a prefix list holds "
                            f"({MAX_PREFIX_LIST_ENTRIES})", obj=obj, value=len(out))
    return tuple(out)


def canonical_cidrs(cidrs: Iterable[IPv4Network]) -> tuple[IPv4Network, ...]:
    """An inline CIDR-list peer as a rule holds it: sorted (address, then prefix length), each CIDR
    once, so the same set of CIDRs in any order is the same rule (authorizing it again is a no-op)."""
    return tuple(sorted(set(cidrs)))


# --------------------------------------------------------------------------- security groups

Peer = Union[IPv4Network, "SecurityGroup", PrefixList, tuple[IPv4Network, ...]]


@dataclasses.dataclass(frozen=True, eq=True)
class SecurityGroupRule:
    """One allow rule: protocol, a port range or an ICMP type/code, and one peer.

    ``peer`` is an ``IPv4Network`` (``CidrIp``), a :class:`SecurityGroup` (a group pair:
    the private IPs of its member ENIs), a :class:`PrefixList`, or a tuple of networks
    (a list of CIDRs given inline, held sorted and without duplicates: its order does not matter).  ``ports`` is an inclusive (from, to) for TCP/UDP and
    None otherwise; ``icmp`` is (type, code) with -1 = any for ICMP and None otherwise.
    Two rules are the same rule (authorizing again is a no-op) exactly when they are equal.
    """

    group: SecurityGroup = dataclasses.field(compare=True, repr=False)
    direction: str
    protocol: int
    ports: tuple[int, int] | None
    icmp: tuple[int, int] | None
    peer: Peer

    def __post_init__(self) -> None:
        if isinstance(self.peer, tuple):   # an inline CIDR list is a set: one order, one rule
            object.__setattr__(self, "peer", canonical_cidrs(self.peer))

    @property
    def peer_name(self) -> str:
        """The peer as written in files, shown and traced: a CIDR, a group or list name, or CIDRs."""
        p = self.peer
        if isinstance(p, IPv4Network):
            return str(p)
        if isinstance(p, (SecurityGroup, PrefixList)):
            return p.name
        return ", ".join(map(str, p))

    def peer_cidrs(self) -> tuple[IPv4Network, ...]:
        """The networks a CIDR, prefix-list or inline-list peer covers; for a group reference,
        its members' private IPs as /32s (none when the reference is stale)."""
        p = self.peer
        if isinstance(p, IPv4Network):
            return (p,)
        if isinstance(p, PrefixList):
            return p.cidrs
        if isinstance(p, tuple):
            return p
        if self.is_stale:
            return ()
        return tuple(IPv4Network(int(ip)) for ip in p.member_ips)

    @property
    def weight(self) -> int:
        """What this rule counts towards the 60-rule quota of its direction."""
        p = self.peer
        if isinstance(p, PrefixList):
            return p.max_entries
        if isinstance(p, tuple):
            return len(p)
        return 1

    @property
    def is_stale(self) -> bool:
        """A group reference whose group is gone or whose VPC is no longer the same or peered:
        it matches nothing (AWS's stale rule)."""
        p = self.peer
        if not isinstance(p, SecurityGroup):
            return False
        net = self.group.network
        return not net._holds(p) or not _reachable(self.group.vpc, p.vpc)

    def describe(self) -> str:
        """``tcp 443 from 0.0.0.0/0``: the rule as one phrase (used in traces)."""
        word = "from" if self.direction == "ingress" else "to"
        return f"{_describe_match(self.protocol, self.ports, self.icmp)} {word} {self.peer_name}"

    def __str__(self) -> str:
        return self.describe()

    def matches(self, proto: int, peer_ip: object, port: int | None = None,
                icmp: tuple[int, int] | None = None, *, peer_eni: Eni | None = None) -> bool:
        """Does this rule admit a packet?

        ``proto``: the IP protocol number; ``peer_ip``: the packet's source for an ingress
        rule, its destination for an egress rule; ``port``: the destination port (TCP/UDP);
        ``icmp``: the (type, code) of an ICMP packet.  For a group reference, ``peer_eni``
        is the ENI at the other end when the caller knows its identity (the sender's ENI
        travels with the packet and is lost through a middlebox); without it the ENI that
        owns ``peer_ip`` in the referenced group's VPC is used (Batfish's model).  Either
        way ``peer_ip`` must be one of that ENI's private IPs.
        """
        if self.protocol != -1 and self.protocol != proto:
            return False
        if self.protocol in PORT_PROTOCOLS and not _port_matches(self.ports, port):
            return False
        if self.protocol == ICMP and not _icmp_matches(self.icmp, icmp):
            return False
        return self._peer_matches(peer_ip, peer_eni)

    def _peer_matches(self, peer_ip: object, peer_eni: Eni | None) -> bool:
        p = self.peer
        ip = _ip(peer_ip, f"security group {self.group.name}")
        if isinstance(p, IPv4Network):
            return ip in p
        if isinstance(p, PrefixList):
            return ip in p
        if isinstance(p, tuple):
            return any(ip in c for c in p)
        if self.is_stale:
            return False
        eni = peer_eni if peer_eni is not None else p.vpc.eni_for_ip(ip)
        return eni is not None and p in eni._security_groups and ip in eni.ips


def _reachable(a: Vpc, b: Vpc) -> bool:
    """Same VPC, or VPCs joined by a peering (group references work across active peerings)."""
    return a is b or any(b in p.vpcs for p in a.peerings)


class SecurityGroup(_Named):
    """A VPC security group: allow-only rules in two directions, a union over an ENI's groups.

    A new group has no ingress rule and one egress rule, all protocols to 0.0.0.0/0 (#45).
    ``group_name`` is AWS's ``GroupName`` (``default`` for the VPC's default group);
    ``name`` is the network-wide unique name (the ``sg-...`` id when imported).
    """

    kind = "sg"

    def __init__(self, vpc: Vpc, name: str, group_name: str, description: str) -> None:
        self.vpc, self.network, self.name = vpc, vpc.network, name
        self.group_name = group_name
        self.description = description
        self._ingress: list[SecurityGroupRule] = []
        self._egress: list[SecurityGroupRule] = []

    @property
    def is_default(self) -> bool:
        return self.vpc.default_security_group is self

    @property
    def members(self) -> list[Eni]:
        """ENIs that use this group."""
        return [e for e in self.vpc.enis if self in e._security_groups]

    @property
    def member_ips(self) -> list[IPv4Address]:
        """Every private IP (primary and secondary) of every member ENI: what a reference to
        this group matches when no sender identity is known (Batfish's expansion)."""
        return [ip for e in self.members for ip in e.ips]

    @property
    def ingress(self) -> list[SecurityGroupRule]:
        """The inbound rules (a copy: change them with authorize_ingress / revoke_ingress, which validate)."""
        return list(self._ingress)

    @property
    def egress(self) -> list[SecurityGroupRule]:
        """The outbound rules (a copy: change them with authorize_egress / revoke_egress)."""
        return list(self._egress)

    def rules(self, direction: str) -> list[SecurityGroupRule]:
        """The rules of ``direction`` ("ingress" / "egress"), a copy."""
        return list(self._rules(direction))

    def _rules(self, direction: str) -> list[SecurityGroupRule]:
        """The group's own list of ``direction``'s rules (what authorize / revoke change)."""
        return self._ingress if _direction(direction, f"security group {self.name}", self.name) == "ingress" else self._egress

    # AWS: AuthorizeSecurityGroupIngress / Egress, RevokeSecurityGroupIngress / Egress
    def authorize_ingress(self, proto: object, ports: object, peer: object) -> SecurityGroupRule:
        """Allow ``proto`` on ``ports`` from ``peer`` (see :meth:`authorize`)."""
        return self.authorize("ingress", proto, ports, peer)

    def authorize_egress(self, proto: object, ports: object, peer: object) -> SecurityGroupRule:
        """Allow ``proto`` on ``ports`` to ``peer`` (see :meth:`authorize`)."""
        return self.authorize("egress", proto, ports, peer)

    def revoke_ingress(self, proto: object, ports: object, peer: object) -> bool:
        return self.revoke("ingress", proto, ports, peer)

    def revoke_egress(self, proto: object, ports: object, peer: object) -> bool:
        return self.revoke("egress", proto, ports, peer)

    def authorize(self, direction: str, proto: object, ports: object, peer: object, *,
                  allow_stale: bool = False) -> SecurityGroupRule:
        """Add a rule; returns it.  Authorizing a rule the group already has is a no-op.

        ``proto``: ``"tcp"``, ``"udp"``, ``"icmp"``, ``"all"``/``"-1"``/-1 or 0..255;
        ``ports``: an int, an inclusive (lo, hi) or None (all) for TCP/UDP, (type, code)
        with -1 = any for ICMP, None for the others; ``peer``: a CIDR, a
        :class:`SecurityGroup` of this VPC or a peered one, a :class:`PrefixList`, or a
        list of CIDRs.  ``allow_stale`` accepts a reference to a group whose VPC is no longer
        peered (a stale rule, as a topology file can hold; it matches nothing).
        """
        rule = self._rule(direction, proto, ports, peer, allow_stale=allow_stale)
        rules = self._rules(rule.direction)
        if rule in rules:
            return rules[rules.index(rule)]
        used = sum(r.weight for r in rules)
        if used + rule.weight > MAX_RULES_PER_DIRECTION:
            raise TopologyError(f"security group {self.name}: {rule.direction} rule {rule.describe()} would make "
                                f"{used + rule.weight} rules, more than {MAX_RULES_PER_DIRECTION} in one direction",
                                obj=self.name, value=rule.describe())
        rules.append(rule)
        return rule

    def revoke(self, direction: str, proto: object, ports: object, peer: object) -> bool:
        """Remove a rule given as it was authorized; True if it was there (a missing rule is no error)."""
        try:
            rule = self._rule(direction, proto, ports, peer, revoking=True)
        except _Missing:
            return False
        rules = self._rules(rule.direction)
        if rule in rules:
            rules.remove(rule)
            return True
        return False

    def _rule(self, direction: str, proto: object, ports: object, peer: object, *,
              revoking: bool = False, allow_stale: bool = False) -> SecurityGroupRule:
        who = f"security group {self.name}"
        d = _direction(direction, who, self.name)
        p = _protocol(proto, who, self.name)
        prange, icmp = _ports_and_icmp(p, ports, who, self.name)
        return SecurityGroupRule(self, d, p, prange, icmp, self._peer(peer, who, revoking or allow_stale, revoking))

    def _peer(self, peer: object, who: str, any_vpc: bool, revoking: bool) -> Peer:
        net = self.network
        if isinstance(peer, SecurityGroup):
            if not net._holds(peer):
                if revoking:  # a rule naming a deleted group cannot be present: nothing to revoke
                    raise _Missing
                raise TopologyError(f"{who}: group {peer.name} is not part of this network",
                                    obj=self.name, value=peer.name)
            if not any_vpc and not _reachable(self.vpc, peer.vpc):
                raise TopologyError(f"{who}: group {peer.name} belongs to VPC {peer.vpc.name}, which is neither "
                                    f"VPC {self.vpc.name} nor peered with it", obj=self.name, value=peer.name)
            return peer
        if isinstance(peer, PrefixList):
            if not net._holds(peer):
                if revoking:
                    raise _Missing
                raise TopologyError(f"{who}: prefix list {peer.name} is not part of this network",
                                    obj=self.name, value=peer.name)
            return peer
        if isinstance(peer, (list, tuple)):
            cidrs = _prefix_list_cidrs(peer, who, self.name)
            if not cidrs:
                raise TopologyError(f"{who}: a list of CIDRs as peer must not be empty", obj=self.name, value=peer)
            return canonical_cidrs(cidrs)
        if peer is None:
            raise TopologyError(f"{who}: a rule needs a peer (a CIDR, a security group, a prefix list or a list "
                                "of CIDRs), not None", obj=self.name, value=peer)
        return _cidr(peer, who, self.name)

    def clear_rules(self, direction: str | None = None) -> None:
        """Remove every rule of ``direction`` (both when None): an empty egress lets nothing out (#45)."""
        for d in DIRECTIONS if direction is None else (_direction(direction, f"security group {self.name}",
                                                                  self.name),):
            self._rules(d).clear()

    def delete(self) -> None:
        """Delete the group (refused for the default group, a group an ENI uses, or one a rule references)."""
        self.network.remove(self)

    def admits(self, direction: str, proto: int, peer_ip: object, port: int | None = None,
               icmp: tuple[int, int] | None = None, *, peer_eni: Eni | None = None) -> SecurityGroupRule | None:
        """The first of this group's rules in ``direction`` that admits the packet, or None."""
        for r in self._rules(direction):
            if r.matches(proto, peer_ip, port, icmp, peer_eni=peer_eni):
                return r
        return None


class _Missing(Exception):
    """Raised inside revoke when the rule cannot exist (its peer is gone)."""


def security_groups_admit(groups: Sequence[SecurityGroup], direction: str, proto: int, peer_ip: object,
                          port: int | None = None, icmp: tuple[int, int] | None = None, *,
                          peer_eni: Eni | None = None) -> SecurityGroupRule | None:
    """The rule that admits a packet under the union of ``groups`` (#46), or None (#45: denied).

    Rules are a union: any allow admits and order does not matter; the rule returned is
    the first in the groups' order, each group's rules in order (for traces).
    """
    d = _direction(direction, "security groups")
    for g in groups:
        r = g.admits(d, proto, peer_ip, port, icmp, peer_eni=peer_eni)
        if r is not None:
            return r
    return None


def flow_is_untracked(groups: Sequence[SecurityGroup], direction: str, proto: int, peer_ip: object,
                      port: int | None = None, *, peer_eni: Eni | None = None) -> bool:
    """AWS's untracked-flow rule for the first packet of a flow, seen at one ENI.

    A TCP or UDP flow is not tracked when a rule admitting it is for all addresses
    (0.0.0.0/0) **and** the other direction has a rule for all addresses and all ports of
    that protocol (aws-behaviour-more.md §1.3: the initiating rule's ports may be narrow,
    only its address side must be "all").  ICMP and other protocols are always tracked.
    ``direction`` is the direction in which the ENI sees the first packet.
    """
    d = _direction(direction, "security groups")
    if proto not in PORT_PROTOCOLS:
        return False
    other = "egress" if d == "ingress" else "ingress"
    wide_admit = any(r.peer == ANY_IPV4 and r.matches(proto, peer_ip, port, peer_eni=peer_eni)
                     for g in groups for r in g._rules(d))
    if not wide_admit:
        return False
    return any(r.peer == ANY_IPV4 and (r.protocol == -1 or (r.protocol == proto and r.ports == ALL_PORTS))
               for g in groups for r in g._rules(other))


# --------------------------------------------------------------------------- network ACLs

@dataclasses.dataclass(frozen=True)
class NetworkAclEntry:
    """One numbered NACL entry (boto3 ``NetworkAclEntry``): the CIDR is the source for
    ingress and the destination for egress; ``ports`` is the destination port range."""

    number: int
    direction: str
    action: str
    protocol: int
    ports: tuple[int, int] | None
    icmp: tuple[int, int] | None
    cidr: IPv4Network

    @property
    def egress(self) -> bool:
        return self.direction == "egress"

    def describe(self) -> str:
        word = "from" if self.direction == "ingress" else "to"
        return f"{self.number} {self.action} {_describe_match(self.protocol, self.ports, self.icmp)} {word} {self.cidr}"

    def __str__(self) -> str:
        return self.describe()

    def matches(self, proto: int, ip: object, port: int | None = None, icmp: tuple[int, int] | None = None) -> bool:
        """Does this entry match a packet (``ip``: its source for ingress, destination for egress)?"""
        if self.protocol != -1 and self.protocol != proto:
            return False
        if self.protocol in PORT_PROTOCOLS and not _port_matches(self.ports, port):
            return False
        if self.protocol == ICMP and not _icmp_matches(self.icmp, icmp):
            return False
        return _ip(ip, "network ACL entry") in self.cidr


class NetworkAcl(_Named):
    """A subnet's stateless filter: numbered entries per direction, lowest first, first match
    final, then the implicit deny (#52).  A new custom NACL denies everything (#53)."""

    kind = "acl"

    def __init__(self, vpc: Vpc, name: str) -> None:
        self.vpc, self.network, self.name = vpc, vpc.network, name
        self._entries: dict[tuple[str, int], NetworkAclEntry] = {}

    @property
    def is_default(self) -> bool:
        return self.vpc.default_network_acl is self

    @property
    def entries(self) -> list[NetworkAclEntry]:
        """Every entry: ingress then egress, each by number."""
        return sorted(self._entries.values(), key=lambda e: (e.direction != "ingress", e.number))

    def entries_for(self, direction: str) -> list[NetworkAclEntry]:
        d = _direction(direction, f"network ACL {self.name}", self.name)
        return sorted((e for e in self._entries.values() if e.direction == d), key=lambda e: e.number)

    @property
    def subnets(self) -> list[Any]:
        """Subnets that use this NACL (explicitly, or implicitly when it is the default)."""
        return [s for s in self.vpc.subnets if s.network_acl is self]

    def entry(self, number: int, direction: str) -> NetworkAclEntry:
        """The entry numbered ``number`` in ``direction``; KeyError if none."""
        d = _direction(direction, f"network ACL {self.name}", self.name)
        try:
            return self._entries[(d, number)]
        except KeyError:
            raise KeyError(f"network ACL {self.name} has no {d} entry {number!r}") from None

    def _make(self, number: object, direction: object, action: object, proto: object, ports: object,
              cidr: object) -> NetworkAclEntry:
        who = f"network ACL {self.name}"
        n = _integer(number)
        if n is None or not MIN_RULE_NUMBER <= n <= MAX_RULE_NUMBER:
            raise TopologyError(f"{who}: entry number {number!r} must be an integer {MIN_RULE_NUMBER}-"
                                f"{MAX_RULE_NUMBER}", obj=self.name, value=number)
        number = n
        d = _direction(direction, who, self.name)
        if not isinstance(action, str) or action.lower() not in ACTIONS:
            raise TopologyError(f"{who}: entry {number} action {action!r} must be 'allow' or 'deny'",
                                obj=self.name, value=action)
        p = _protocol(proto, f"{who} entry {number}", self.name)
        prange, icmp = _ports_and_icmp(p, ports, f"{who} entry {number}", self.name)
        c = _cidr(cidr, f"{who} entry {number}", self.name)
        return NetworkAclEntry(int(number), d, action.lower(), p, prange, icmp, c)

    # AWS: CreateNetworkAclEntry / ReplaceNetworkAclEntry / DeleteNetworkAclEntry
    def add_entry(self, number: int, direction: str, action: str, proto: object, ports: object,
                  cidr: object) -> NetworkAclEntry:
        """Add entry ``number`` (1-32766, unique per direction): ``action`` allow|deny for
        ``proto`` on ``ports`` (destination ports; ICMP (type, code)) from/to ``cidr``."""
        e = self._make(number, direction, action, proto, ports, cidr)
        if (e.direction, e.number) in self._entries:
            old = self._entries[(e.direction, e.number)]
            raise TopologyError(f"network ACL {self.name}: {e.direction} entry number {e.number} is already used "
                                f"({old.describe()}); use replace_entry", obj=self.name, value=e.number)
        if len(self.entries_for(e.direction)) >= MAX_NACL_ENTRIES_PER_DIRECTION:
            raise TopologyError(f"network ACL {self.name}: more than {MAX_NACL_ENTRIES_PER_DIRECTION} "
                                f"{e.direction} entries (cannot add {e.number})", obj=self.name, value=e.number)
        self._entries[(e.direction, e.number)] = e
        return e

    def replace_entry(self, number: int, direction: str, action: str, proto: object, ports: object,
                      cidr: object) -> NetworkAclEntry:
        """Replace the existing entry ``number`` of ``direction``."""
        e = self._make(number, direction, action, proto, ports, cidr)
        if (e.direction, e.number) not in self._entries:
            raise TopologyError(f"network ACL {self.name} has no {e.direction} entry {e.number} to replace",
                                obj=self.name, value=e.number)
        self._entries[(e.direction, e.number)] = e
        return e

    def remove_entry(self, number: int, direction: str) -> None:
        """Delete entry ``number`` of ``direction`` (a missing one is an error, as on AWS)."""
        d = _direction(direction, f"network ACL {self.name}", self.name)
        if (d, number) not in self._entries:
            raise TopologyError(f"network ACL {self.name} has no {d} entry {number!r}", obj=self.name, value=number)
        del self._entries[(d, number)]

    def clear_entries(self) -> None:
        """Remove every entry (only the implicit deny stays)."""
        self._entries.clear()

    def evaluate(self, direction: str, proto: int, ip: object, port: int | None = None,
                 icmp: tuple[int, int] | None = None) -> tuple[bool, int]:
        """(allowed, entry number) for a packet: lowest number first, first match final; the
        implicit deny answers ``(False, 32767)``.  ``ip`` is the packet's source for ingress
        and its destination for egress; ``port`` its destination port."""
        for e in self.entries_for(direction):
            if e.matches(proto, ip, port, icmp):
                return e.action == "allow", e.number
        return False, IMPLICIT_DENY_NUMBER

    def delete(self) -> None:
        """Delete the NACL (refused for the default NACL and for one a subnet uses)."""
        self.network.remove(self)


# --------------------------------------------------------------------------- tracking timeouts

@dataclasses.dataclass(frozen=True)
class Tracking:
    """Connection-tracking idle timeouts of one ENI, in seconds.

    ``tcp_established``, ``udp_stream`` and ``udp`` are AWS's configurable three
    (``ConnectionTrackingSpecification``: TcpEstablishedTimeout 60-432,000, UdpStreamTimeout
    60-180, UdpTimeout 30-60); ``other`` is AWS's 600 s window for other protocols.  The
    other TCP states and ICMP are undocumented by AWS: Linux conntrack's defaults
    (nf_conntrack_tcp_timeout_*, nf_conntrack_icmp_timeout).
    """

    tcp_established: int = 432_000
    udp: int = 30
    udp_stream: int = 180
    other: int = 600
    icmp: int = 30
    tcp_syn_sent: int = 120
    tcp_syn_recv: int = 60
    tcp_fin_wait: int = 120
    tcp_close_wait: int = 60
    tcp_last_ack: int = 30
    tcp_time_wait: int = 120
    tcp_close: int = 10

    #: AWS's accepted ranges for the configurable timeouts.
    RANGES: ClassVar[dict[str, tuple[int, int]]] = {"tcp_established": (60, 432_000), "udp_stream": (60, 180),
                                                     "udp": (30, 60)}

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            lo, hi = self.RANGES.get(f.name, (1, 2**31 - 1))
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise TopologyError(f"Tracking: {f.name}={v!r} must be an integer number of seconds {lo}-{hi}",
                                    obj="Tracking", value=v)

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def changes(self) -> dict[str, int]:
        """Only the fields that differ from the defaults."""
        base = Tracking()
        return {k: v for k, v in self.to_dict().items() if getattr(base, k) != v}


DEFAULT_TRACKING = Tracking()


# --------------------------------------------------------------------------- wiring into core

def check_security_groups(eni_name: str, vpc: Vpc, groups: object) -> list[SecurityGroup]:
    """Validate an ENI's groups: 1-5 distinct groups of the ENI's VPC."""
    if isinstance(groups, SecurityGroup) or isinstance(groups, (str, bytes)) or not isinstance(groups, Iterable):
        raise TopologyError(f"ENI {eni_name}: security_groups {groups!r} must be a list of SecurityGroup",
                            obj=eni_name, value=groups)
    out: list[SecurityGroup] = []
    for g in groups:
        if not isinstance(g, SecurityGroup) or not vpc.network._holds(g):
            raise TopologyError(f"ENI {eni_name}: {getattr(g, 'name', g)!r} is not a security group of this "
                                "network", obj=eni_name, value=getattr(g, "name", g))
        if g.vpc is not vpc:
            raise TopologyError(f"ENI {eni_name}: security group {g.name} belongs to VPC {g.vpc.name}, not "
                                f"{vpc.name}", obj=eni_name, value=g.name)
        if g in out:
            raise TopologyError(f"ENI {eni_name}: security group {g.name} is given twice", obj=eni_name, value=g.name)
        out.append(g)
    if not out:
        raise TopologyError(f"ENI {eni_name}: needs at least one security group", obj=eni_name, value=[])
    if len(out) > MAX_GROUPS_PER_ENI:
        raise TopologyError(f"ENI {eni_name}: {len(out)} security groups, more than {MAX_GROUPS_PER_ENI} "
                            f"({', '.join(g.name for g in out)})", obj=eni_name, value=len(out))
    return out


def check_tracking(eni_name: str, tracking: object) -> Tracking:
    if tracking is None:
        return DEFAULT_TRACKING
    if not isinstance(tracking, Tracking):
        raise TopologyError(f"ENI {eni_name}: tracking {tracking!r} must be a fastvpc.Tracking",
                            obj=eni_name, value=tracking)
    return tracking


def remove_filter_object(net: Network, obj: Any) -> None:
    """``Network.remove`` for groups, NACLs and prefix lists: AWS's refusals (DependencyViolation)."""
    if isinstance(obj, SecurityGroup):
        if obj.is_default:
            raise TopologyError(f"security group {obj.name} is the default group of VPC {obj.vpc.name} and cannot "
                                "be deleted", obj=obj.name, value=obj.name)
        users = obj.members
        if users:
            raise TopologyError(f"security group {obj.name} is used by ENI(s) {', '.join(e.name for e in users)}",
                                obj=obj.name, value=users[0].name)
        for g in all_security_groups(net):
            if g is obj:
                continue
            for r in (*g._ingress, *g._egress):
                if r.peer is obj:
                    raise TopologyError(f"security group {obj.name} is referenced by a rule of group {g.name} "
                                        f"({r.direction} {r.describe()})", obj=obj.name, value=g.name)
        obj.vpc.security_groups.remove(obj)
    elif isinstance(obj, NetworkAcl):
        if obj.is_default:
            raise TopologyError(f"network ACL {obj.name} is the default NACL of VPC {obj.vpc.name} and cannot be "
                                "deleted", obj=obj.name, value=obj.name)
        subnets = [s for s in obj.vpc.subnets if s.explicit_network_acl is obj]
        if subnets:
            raise TopologyError(f"network ACL {obj.name} is associated with subnet(s) "
                                f"{', '.join(s.name for s in subnets)}", obj=obj.name, value=subnets[0].name)
        obj.vpc.network_acls.remove(obj)
    elif isinstance(obj, PrefixList):
        for g in all_security_groups(net):
            for r in (*g._ingress, *g._egress):
                if r.peer is obj:
                    raise TopologyError(f"prefix list {obj.name} is referenced by a rule of group {g.name} "
                                        f"({r.direction} {r.describe()})", obj=obj.name, value=g.name)
        net.prefix_lists.remove(obj)
    else:  # pragma: no cover
        raise TopologyError(f"cannot remove {obj!r}", value=obj)


def all_security_groups(net: Network) -> list[SecurityGroup]:
    return [g for v in net.vpcs for g in v.security_groups]


def make_prefix_list(net: Network, cidrs: Iterable[object], name: str | None,
                     max_entries: int | None) -> PrefixList:
    label = name or "prefix list"
    nets = _prefix_list_cidrs(cidrs, f"prefix list {label}", name)
    if max_entries is None:
        max_entries = max(1, len(nets))
    if isinstance(max_entries, bool) or not isinstance(max_entries, int) or \
            not max(1, len(nets)) <= max_entries <= MAX_PREFIX_LIST_ENTRIES:
        raise TopologyError(f"prefix list {label}: max_entries {max_entries!r} must be an integer from the number of "
                            f"CIDRs ({len(nets)}) to {MAX_PREFIX_LIST_ENTRIES}", obj=name, value=max_entries)
    return PrefixList(net, net._claim_name(name, "pl"), nets, max_entries)


__all__ += ["ACTIONS", "IMPLICIT_DENY_NUMBER", "MAX_GROUPS_PER_ENI", "MAX_RULES_PER_DIRECTION", "protocol_label"]
