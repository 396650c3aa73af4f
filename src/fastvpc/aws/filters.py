"""Security groups, network ACLs and ENI group membership from ``describe-*`` JSON.

``SecurityGroups`` (``describe-security-groups``): each group is named by its ``GroupId``
(``GroupName`` kept as ``group_name``); the VPC's ``default`` group is its default group.
Each ``IpPermissions`` / ``IpPermissionsEgress`` element is one protocol and port range (or
ICMP type in ``FromPort``, code in ``ToPort``, -1 = any) with several peers: every
``IpRanges`` CIDR, ``UserIdGroupPairs`` group and ``PrefixListIds`` list is one rule.
``NetworkAcls`` (``describe-network-acls``): ``Entries`` (``RuleNumber``, ``Egress``,
``RuleAction``, ``Protocol``, ``PortRange``, ``IcmpTypeCode``, ``CidrBlock``), the
``Associations`` with subnets, and ``IsDefault``.

Structurally malformed data (a field of the wrong JSON type, an unknown protocol, a port
out of range) raises :class:`fastvpc.TopologyFileError` naming the file, the place
(``SecurityGroups[sg-0123].IpPermissions[0].FromPort``) and the value.  Valid AWS data that
fastvpc does not model (IPv6 rules and entries, references to groups not in the data) goes
into the import report.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from fastvpc.errors import TopologyError, TopologyFileError
from fastvpc.topology import Eni, NetworkAcl, PrefixList, SecurityGroup, Subnet, Vpc
from fastvpc.topology.filters import (
    IMPLICIT_DENY_NUMBER,
    MAX_GROUPS_PER_ENI,
    PORT_PROTOCOLS,
    PROTOCOL_NAMES,
    Tracking,
)

if TYPE_CHECKING:  # pragma: no cover
    from fastvpc.aws.importer import _Importer

__all__ = ["FilterImporter"]

#: An ENI's ``ConnectionTrackingConfiguration`` (describe-network-interfaces) -> Tracking fields.
_TRACKING_KEYS = (("TcpEstablishedTimeout", "tcp_established"), ("UdpStreamTimeout", "udp_stream"),
                  ("UdpTimeout", "udp"))

#: Protocol names describe-* JSON uses beyond fastvpc's own (icmpv6 is protocol 58).
_AWS_PROTOCOLS = {**PROTOCOL_NAMES, "icmpv6": 58}


class _BadValue(Exception):
    """A well-formed field whose value AWS would not hold: that rule or entry is skipped."""

    def __init__(self, where: str, message: str, value: Any) -> None:
        super().__init__(message)
        self.where, self.message, self.value = where, message, value


class FilterImporter:
    """The SG/NACL passes of one import (state: the groups' origin, counts for the report)."""

    def __init__(self, imp: _Importer) -> None:
        self.imp = imp
        self.counts: Counter[str] = Counter()
        self.n_v6_rules = 0
        self.n_v6_entries = 0
        self._pls: dict[str, PrefixList] = {}
        self._groups_seen: set[str] = set()

    # names of the defaults, known before the VPCs are created ---------------------------
    def default_names(self) -> tuple[dict[str, str], dict[str, str]]:
        """VPC id -> id of its ``default`` group, and VPC id -> id of its default NACL."""
        sgs: dict[str, str] = {}
        for el, _ in self.imp.items("SecurityGroups"):
            if el.get("GroupName") == "default" and isinstance(el.get("VpcId"), str):
                sgs.setdefault(el["VpcId"], el["GroupId"])
        acls: dict[str, str] = {}
        for el, _ in self.imp.items("NetworkAcls"):
            if el.get("IsDefault") is True and isinstance(el.get("VpcId"), str):
                acls.setdefault(el["VpcId"], el["NetworkAclId"])
        return sgs, acls

    # helpers ----------------------------------------------------------------------------
    @staticmethod
    def _fail(rel: str, where: str, message: str, value: Any) -> TopologyFileError:
        return TopologyFileError(rel, where, f"{message} (value {value!r})", value=value)

    def _list(self, el: dict[str, Any], key: str, rel: str, where: str) -> list[Any]:
        v = el.get(key)
        if v is None:
            return []
        if not isinstance(v, list):
            raise self._fail(rel, f"{where}.{key}", f"{key} must be a list, not {type(v).__name__}", v)
        return v

    def _obj(self, v: Any, rel: str, where: str, what: str) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self._fail(rel, where, f"{what} must be an object, not {type(v).__name__}", v)
        return v

    def _int(self, d: dict[str, Any], key: str, rel: str, where: str, lo: int, hi: int,
             default: int | None = None) -> int:
        """An integer field: not an integer is malformed JSON (raised); out of ``lo..hi`` is a
        value AWS would not hold (the rule or entry is skipped and reported)."""
        v = d.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self._fail(rel, f"{where}.{key}", f"{key} must be an integer {lo}-{hi}", v)
        if not lo <= v <= hi:
            raise _BadValue(f"{where}.{key}", f"{key} must be {lo}-{hi}", v)
        return v

    def _protocol(self, v: Any, rel: str, where: str) -> int:
        if isinstance(v, str) and v.strip().lower() in _AWS_PROTOCOLS:
            return _AWS_PROTOCOLS[v.strip().lower()]
        if isinstance(v, str) and v.strip().isdigit() and v.isascii() and int(v) <= 255:
            return int(v)
        if isinstance(v, int) and not isinstance(v, bool) and (v == -1 or 0 <= v <= 255):
            return v
        raise self._fail(rel, where, "the protocol must be tcp, udp, icmp, icmpv6, -1 or a number 0-255", v)

    def _ports(self, proto: int, d: dict[str, Any], rel: str, where: str, lo_key: str, hi_key: str) -> Any:
        """The ``ports`` argument of the topology API from a permission or an entry's range."""
        if proto in PORT_PROTOCOLS:
            if lo_key not in d and hi_key not in d:
                return None
            lo = self._int(d, lo_key, rel, where, 0, 65535)
            hi = self._int(d, hi_key, rel, where, 0, 65535)
            if lo > hi:
                raise _BadValue(f"{where}.{lo_key}", f"{lo_key} {lo} is above {hi_key} {hi}", [lo, hi])
            return (lo, hi)
        if proto == 1:
            t = self._int(d, lo_key, rel, where, -1, 255, -1)
            c = self._int(d, hi_key, rel, where, -1, 255, -1)
            return (t, c)
        return None  # AWS: other protocols allow every port whatever the range says

    # security groups ------------------------------------------------------------------------
    def security_groups(self) -> None:
        """Create every group (rules come in :meth:`security_group_rules`)."""
        imp = self.imp
        for el, rel in imp.items("SecurityGroups"):
            gid = el["GroupId"]
            where = f"SecurityGroups[{gid}]"
            vpc = imp.vpc(el.get("VpcId"))
            if vpc is None:
                imp.add(gid, rel, "skipped", f"its VPC {el.get('VpcId')!r} is not in the data (EC2-Classic groups "
                        "have none)")
                continue
            gname = el.get("GroupName", gid)
            if not isinstance(gname, str) or not gname:
                raise self._fail(rel, f"{where}.GroupName", "GroupName must be a non-empty string", gname)
            desc = el.get("Description", "")
            if not isinstance(desc, str):
                raise self._fail(rel, f"{where}.Description", "Description must be a string", desc)
            if gname == "default" and vpc.default_security_group.name == gid:
                vpc.default_security_group.description = desc
            else:
                if gname == "default":
                    gname = f"default ({gid})"
                    imp.add(gid, rel, "changed", f"a second 'default' group of VPC {vpc.name} (the default is "
                            f"{vpc.default_security_group.name}): imported as a group named {gname!r}")
                try:
                    vpc.add_security_group(gid, group_name=gname, description=desc)
                except TopologyError as exc:
                    imp.add(gid, rel, "skipped", str(exc))
                    continue
            self._groups_seen.add(gid)

    def security_group_rules(self) -> None:
        imp = self.imp
        for el, rel in imp.items("SecurityGroups"):
            gid = el["GroupId"]
            if gid not in self._groups_seen:
                continue
            group = imp.net.find(gid)
            where = f"SecurityGroups[{gid}]"
            for key, direction in (("IpPermissions", "ingress"), ("IpPermissionsEgress", "egress")):
                if key not in el:
                    continue  # not in the data: AWS's defaults of the group stay
                perms = self._list(el, key, rel, where)
                group.clear_rules(direction)
                for k, raw in enumerate(perms):
                    self._permission(group, direction, raw, rel, f"{where}.{key}[{k}]")
            self.counts["security groups"] += 1
            self.counts["security group rules"] += len(group.ingress) + len(group.egress)

    def _permission(self, group: SecurityGroup, direction: str, raw: Any, rel: str, where: str) -> None:
        imp = self.imp
        perm = self._obj(raw, rel, where, "a permission")
        if "IpProtocol" not in perm:
            raise self._fail(rel, where, "a permission has no IpProtocol", None)
        proto = self._protocol(perm["IpProtocol"], rel, f"{where}.IpProtocol")
        label = f"{group.name} {direction}"
        try:
            ports = self._ports(proto, perm, rel, where, "FromPort", "ToPort")
        except _BadValue as bad:
            imp.add(label, rel, "skipped", f"at {bad.where}: {bad.message} (value {bad.value!r}): the permission "
                    "is left out")
            return
        peers: list[tuple[str, Any]] = []
        for k, r in enumerate(self._list(perm, "IpRanges", rel, where)):
            r = self._obj(r, rel, f"{where}.IpRanges[{k}]", "an IpRanges element")
            cidr = r.get("CidrIp")
            if not isinstance(cidr, str):
                raise self._fail(rel, f"{where}.IpRanges[{k}].CidrIp", "CidrIp must be a CIDR string", cidr)
            peers.append((cidr, cidr))
        v6 = self._list(perm, "Ipv6Ranges", rel, where)
        self.n_v6_rules += len(v6)
        for k, p in enumerate(self._list(perm, "PrefixListIds", rel, where)):
            p = self._obj(p, rel, f"{where}.PrefixListIds[{k}]", "a PrefixListIds element")
            pl_id = p.get("PrefixListId")
            if not isinstance(pl_id, str) or not pl_id:
                raise self._fail(rel, f"{where}.PrefixListIds[{k}].PrefixListId", "PrefixListId must be a string",
                                 pl_id)
            pl = self._prefix_list(pl_id)
            if pl is None:
                imp.add(f"{label} {pl_id}", rel, "skipped", f"prefix list {pl_id} is not in PrefixLists data (or "
                        "has no IPv4 CIDRs): the rule is left out")
                continue
            peers.append((pl_id, pl))
        for k, pair in enumerate(self._list(perm, "UserIdGroupPairs", rel, where)):
            pair = self._obj(pair, rel, f"{where}.UserIdGroupPairs[{k}]", "a UserIdGroupPairs element")
            ref = pair.get("GroupId")
            if not isinstance(ref, str) or not ref:
                raise self._fail(rel, f"{where}.UserIdGroupPairs[{k}].GroupId", "GroupId must be a string", ref)
            target = imp._find(ref)
            if not isinstance(target, SecurityGroup):
                imp.add(f"{label} {ref}", rel, "skipped", f"group {ref} (account {pair.get('UserId', '?')}) is not "
                        "in the data: the rule is left out (AWS would show it as stale if deleted)")
                continue
            if target.vpc is not group.vpc and not any(target.vpc in p.vpcs for p in group.vpc.peerings):
                imp.add(f"{label} {ref}", rel, "note", f"group {ref} is in VPC {target.vpc.name}, which is not peered "
                        f"with {group.vpc.name} in the data: imported as a stale reference (it matches nothing)")
            peers.append((ref, target))
        for text, peer in peers:
            try:
                group.authorize(direction, proto, ports, peer, allow_stale=True)
            except TopologyError as exc:
                imp.add(f"{label} {text}", rel, "skipped", str(exc))

    def _prefix_list(self, pl_id: str) -> PrefixList | None:
        if pl_id in self._pls:
            return self._pls[pl_id]
        cidrs = self.imp.prefix_lists.get(pl_id)
        if not cidrs:
            return None
        try:
            pl = self.imp.net.add_prefix_list(cidrs, name=pl_id)
        except TopologyError:
            return None
        self._pls[pl_id] = pl
        return pl

    def eni_groups(self, eni: Eni, el: dict[str, Any], rel: str) -> None:
        """Set an imported ENI's groups from its ``Groups``."""
        imp = self.imp
        raw = el.get("Groups")
        if raw is None:
            return
        where = f"NetworkInterfaces[{eni.name}]"
        groups: list[SecurityGroup] = []
        for k, g in enumerate(self._list(el, "Groups", rel, where)):
            g = self._obj(g, rel, f"{where}.Groups[{k}]", "a Groups element")
            gid = g.get("GroupId")
            if not isinstance(gid, str) or not gid:
                raise self._fail(rel, f"{where}.Groups[{k}].GroupId", "GroupId must be a string", gid)
            obj = imp._find(gid)
            if not isinstance(obj, SecurityGroup) or obj.vpc is not eni.vpc:
                imp.add(eni.name, rel, "changed", f"security group {gid} is not in the data (or not in VPC "
                        f"{eni.vpc.name}): left out of the ENI's groups")
                continue
            if obj not in groups:
                groups.append(obj)
        if len(groups) > MAX_GROUPS_PER_ENI:
            imp.add(eni.name, rel, "changed", f"{len(groups)} security groups, more than fastvpc's "
                    f"{MAX_GROUPS_PER_ENI}: only {', '.join(g.name for g in groups[:MAX_GROUPS_PER_ENI])} kept")
            groups = groups[:MAX_GROUPS_PER_ENI]
        if not groups:
            if raw:
                imp.add(eni.name, rel, "changed", f"none of its groups is in the data: it is in the default group "
                        f"{eni.vpc.default_security_group.name}")
            return
        eni.security_groups = groups

    def eni_tracking(self, eni: Eni, el: dict[str, Any], rel: str) -> None:
        """Set an imported ENI's idle timeouts from its ``ConnectionTrackingConfiguration``
        (``TcpEstablishedTimeout``, ``UdpStreamTimeout``, ``UdpTimeout``, seconds); a value
        outside AWS's range keeps the default and is reported."""
        raw = el.get("ConnectionTrackingConfiguration")
        if raw is None:
            return
        where = f"NetworkInterfaces[{eni.name}].ConnectionTrackingConfiguration"
        cfg = self._obj(raw, rel, where, "ConnectionTrackingConfiguration")
        kw: dict[str, int] = {}
        for key, field in _TRACKING_KEYS:
            if cfg.get(key) is None:
                continue
            lo, hi = Tracking.RANGES[field]
            try:
                kw[field] = self._int(cfg, key, rel, where, lo, hi)
            except _BadValue as exc:
                self.imp.add(eni.name, rel, "changed", f"{exc.where} {exc.value!r}: {exc.message}; the default "
                             f"{getattr(Tracking(), field)} s is kept")
        if kw:
            eni.tracking = Tracking(**kw)

    # network ACLs ---------------------------------------------------------------------------
    def network_acls(self) -> None:
        imp = self.imp
        for el, rel in imp.items("NetworkAcls"):
            aid = el["NetworkAclId"]
            where = f"NetworkAcls[{aid}]"
            vpc = imp.vpc(el.get("VpcId"))
            if vpc is None:
                imp.add(aid, rel, "skipped", f"its VPC {el.get('VpcId')!r} is not in the data")
                continue
            is_default = el.get("IsDefault", False)
            if not isinstance(is_default, bool):
                raise self._fail(rel, f"{where}.IsDefault", "IsDefault must be true or false", is_default)
            if is_default and vpc.default_network_acl.name == aid:
                acl = vpc.default_network_acl
            else:
                if is_default:
                    imp.add(aid, rel, "note", f"a second default NACL of VPC {vpc.name}: imported as a custom NACL")
                try:
                    acl = vpc.add_network_acl(aid)
                except TopologyError as exc:
                    imp.add(aid, rel, "skipped", str(exc))
                    continue
            if "Entries" in el:
                entries = self._list(el, "Entries", rel, where)
                acl.clear_entries()
                for k, raw in enumerate(entries):
                    self._entry(acl, raw, rel, f"{where}.Entries[{k}]")
            for k, a in enumerate(self._list(el, "Associations", rel, where)):
                a = self._obj(a, rel, f"{where}.Associations[{k}]", "an association")
                self._associate(acl, vpc, a, rel)
            self.counts["network ACLs"] += 1
            self.counts["NACL entries"] += len(acl.entries)

    def _entry(self, acl: NetworkAcl, raw: Any, rel: str, where: str) -> None:
        e = self._obj(raw, rel, where, "an entry")
        try:
            self._entry_checked(acl, e, rel, where)
        except _BadValue as bad:
            self.imp.add(f"{acl.name} entry", rel, "skipped", f"at {bad.where}: {bad.message} (value {bad.value!r}): "
                         "the entry is left out")

    def _entry_checked(self, acl: NetworkAcl, e: dict[str, Any], rel: str, where: str) -> None:
        number = self._int(e, "RuleNumber", rel, where, 1, 32768)
        egress = e.get("Egress")
        if not isinstance(egress, bool):
            raise self._fail(rel, f"{where}.Egress", "Egress must be true or false", egress)
        action = e.get("RuleAction")
        if action not in ("allow", "deny"):
            raise self._fail(rel, f"{where}.RuleAction", "RuleAction must be allow or deny", action)
        proto = self._protocol(e.get("Protocol"), rel, f"{where}.Protocol")
        if "Ipv6CidrBlock" in e and "CidrBlock" not in e:
            self.n_v6_entries += 1
            return
        if number >= IMPLICIT_DENY_NUMBER:  # the implicit deny-all (32767; 32768 for IPv6): not an entry
            if action != "deny":
                self.imp.add(f"{acl.name} entry {number}", rel, "changed", "the final entry is always deny-all")
            return
        cidr = e.get("CidrBlock")
        if not isinstance(cidr, str):
            raise self._fail(rel, f"{where}.CidrBlock", "CidrBlock must be a CIDR string", cidr)
        if proto in PORT_PROTOCOLS:
            pr = e.get("PortRange")
            ports = None if pr is None else self._ports(proto, self._obj(pr, rel, f"{where}.PortRange", "PortRange"),
                                                        rel, f"{where}.PortRange", "From", "To")
        elif proto == 1:
            ic = e.get("IcmpTypeCode")
            ports = None if ic is None else self._ports(proto, self._obj(ic, rel, f"{where}.IcmpTypeCode",
                                                                          "IcmpTypeCode"),
                                                        rel, f"{where}.IcmpTypeCode", "Type", "Code")
        else:
            ports = None
        direction = "egress" if egress else "ingress"
        try:
            acl.add_entry(number, direction, action, proto, ports, cidr)
        except TopologyError as exc:
            self.imp.add(f"{acl.name} {direction} entry {number}", rel, "skipped", str(exc))

    def _associate(self, acl: NetworkAcl, vpc: Vpc, a: dict[str, Any], rel: str) -> None:
        sid = a.get("SubnetId")
        subnet = self.imp._find(sid)
        if not isinstance(subnet, Subnet) or subnet.vpc is not vpc:
            self.imp.add(acl.name, rel, "skipped", f"association with subnet {sid!r}, which is not in VPC {vpc.name}")
            return
        if subnet.explicit_network_acl is not None and subnet.explicit_network_acl is not acl:
            self.imp.add(acl.name, rel, "skipped", f"subnet {sid} is already associated with "
                         f"{subnet.explicit_network_acl.name}")
            return
        subnet.associate_network_acl(acl)

    # the report -------------------------------------------------------------------------------
    def summarise(self) -> None:
        imp = self.imp
        if self.n_v6_rules:
            imp.add("SecurityGroups", "", "not modelled", f"{self.n_v6_rules} IPv6 rule(s) (Ipv6Ranges) left out: "
                    "IPv6 is not modelled")
        if self.n_v6_entries:
            imp.add("NetworkAcls", "", "not modelled", f"{self.n_v6_entries} IPv6 NACL entr(y/ies) "
                    "(Ipv6CidrBlock) left out: IPv6 is not modelled")
        if imp.items("NetworkInterfaces") or imp.eni_items:
            missing = [v.name for v in imp.net.vpcs if v.default_security_group.name not in self._groups_seen]
            if missing and not imp.items("SecurityGroups"):
                imp.add("SecurityGroups", "", "note", "no SecurityGroups data: every ENI is in its VPC's default "
                        "group with AWS's default rules (ingress only from the group's members)")
