"""``fastvpc show``: a network as readable, aligned plain-text tables.

:func:`render` is self-contained: give it a :class:`fastvpc.topology.Network`, print
the string it returns.  Output is plain ASCII text (names are printed as given).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastvpc.topology import (BLACKHOLE, InternetGateway, NatGateway, Network, NetworkAcl, Route, SecurityGroup,
                              Subnet, Vpc, VpnGateway)
from fastvpc.topology.edge import ElasticIp
from fastvpc.topology.filters import PrefixList, SecurityGroupRule, protocol_label

__all__ = ["render", "table"]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "  ") -> str:
    """Columns padded to their widest cell; ``-`` under each header; no trailing spaces."""
    cells = [[str(h) for h in headers]] + [[("-" if c is None or c == "" else str(c)) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, r in enumerate(cells):
        lines.append((indent + "  ".join(c.ljust(w) for c, w in zip(r, widths))).rstrip())
        if k == 0:
            lines.append((indent + "  ".join("-" * w for w in widths)).rstrip())
    return "\n".join(lines)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _target(r: Route) -> str:
    if r.target is BLACKHOLE and r.deleted_target:
        return f"blackhole (was {r.deleted_target})"
    return r.target.name


def _association(s: Subnet) -> str:
    rt = s.route_table
    return f"{rt.name} (explicit)" if s.explicit_route_table is not None else f"{rt.name} (main)"


def _acl_association(s: Subnet) -> str:
    acl = s.network_acl
    return f"{acl.name} (explicit)" if s.explicit_network_acl is not None else f"{acl.name} (default)"


def _gateway_rows(vpc: Vpc) -> list[list[object]]:
    rows: list[list[object]] = []
    for g in vpc.internet_gateways:
        rows.append([g.name, "internet gateway", g.port, g.mac, _ingress_table(g)])
    for v in vpc.vpn_gateways:
        rows.append([v.name, "VPN gateway", v.port, v.mac, _ingress_table(v)])
    for n in vpc.nat_gateways:
        rows.append([n.name, "NAT gateway", n.port, n.mac, _nat_details(n)])
    for e in vpc.endpoints:
        detail = e.endpoint_type + (f" {e.service}" if e.service else "")
        rows.append([e.name, "endpoint", e.port, e.mac, detail])
    for t in vpc.network.transit_gateways:
        if vpc in t.attachments:
            rows.append([t.name, "transit gateway", t.port, t.mac, "attached"])
    for p in vpc.peerings:
        rows.append([p.name, "peering", p.port, p.mac, f"to VPC {p.peer_of(vpc).name}"])
    return rows


def _ingress_table(g: InternetGateway | VpnGateway) -> str:
    rt = g.route_table
    return f"gateway route table {rt.name}" if rt is not None else "ingress: local"


def _nat_details(n: NatGateway) -> str:
    parts = [n.connectivity]
    if n.subnet is not None:
        parts.append(f"subnet {n.subnet.name}")
    if n.ip is not None:
        parts.append(f"private IP {n.ip}")
    if n.address is not None:
        parts.append(f"Elastic IP {n.address.name} {n.address.public_ip}")
    elif n.connectivity == "public":
        parts.append("no Elastic IP")
    return ", ".join(parts)


def _ports(ports: tuple[int, int] | None, icmp: tuple[int, int] | None) -> str:
    if ports is not None:
        return "all" if ports == (0, 65535) else (str(ports[0]) if ports[0] == ports[1] else f"{ports[0]}-{ports[1]}")
    if icmp is not None:
        t, c = icmp
        return "all" if t == -1 else f"type {t}" + ("" if c == -1 else f" code {c}")
    return "all"


def _rule_row(r: SecurityGroupRule) -> list[object]:
    peer = r.peer_name
    if isinstance(r.peer, SecurityGroup):
        peer = f"group {peer}" + (" (stale)" if r.is_stale else "")
    elif isinstance(r.peer, tuple):
        peer = f"[{peer}]"
    elif isinstance(r.peer, PrefixList):
        peer = f"prefix list {peer}"
    return [r.direction, protocol_label(r.protocol), _ports(r.ports, r.icmp), peer]


def _render_groups(vpc: Vpc) -> list[str]:
    out = ["", "  Security groups"]
    for g in vpc.security_groups:
        members = [e.name for e in g.members]
        head = f"    {g.name}"
        if g.is_default:
            head += " (default group)"
        elif g.group_name != g.name:
            head += f" (group name {g.group_name})"
        head += "  ENIs " + (", ".join(members) if members else "none")
        out.append(head)
        rows = [_rule_row(r) for r in (*g.ingress, *g.egress)]
        out.append(table(["DIRECTION", "PROTOCOL", "PORTS", "PEER"], rows, indent="      ") if rows
                   else "      (no rules: denies everything)")
    return out


def _render_acl(acl: NetworkAcl) -> list[str]:
    subnets = [s.name for s in acl.subnets]
    head = f"    {acl.name}" + (" (default NACL)" if acl.is_default else "")
    head += "  subnets " + (", ".join(subnets) if subnets else "none")
    rows: list[list[object]] = []
    for d in ("ingress", "egress"):
        for e in acl.entries_for(d):
            rows.append([d, e.number, e.action, protocol_label(e.protocol), _ports(e.ports, e.icmp), e.cidr])
        # the implicit final entry: "*" as the console shows it (RuleNumber 32767 in the API)
        rows.append([d, "*", "deny", "all", "all", "0.0.0.0/0"])
    return [head, table(["DIRECTION", "RULE", "ACTION", "PROTOCOL", "PORTS", "CIDR"], rows, indent="      ")]


def _render_vpc(vpc: Vpc) -> list[str]:
    out = [f"VPC {vpc.name}  CIDRs {', '.join(map(str, vpc.cidrs))}  main route table {vpc.main_route_table.name}"]

    out.append("")
    out.append("  Subnets")
    out.append(table(
        ["NAME", "CIDR", "ROUTER IP", "GATEWAY MAC", "ROUTE TABLE", "NETWORK ACL", "ENIS", "USABLE"],
        [[s.name, s.cidr, s.router_ip, s.gateway_mac, _association(s), _acl_association(s), len(s.enis),
          s.usable_count] for s in vpc.subnets],
        indent="    ") if vpc.subnets else "    (none)")

    out.append("")
    out.append("  Route tables")
    for rt in vpc.route_tables:
        explicit = [s.name for s in vpc.subnets if s.explicit_route_table is rt]
        implicit = [s.name for s in vpc.subnets if s.explicit_route_table is None] if rt.is_main else []
        assoc = []
        if explicit:
            assoc.append("explicit: " + ", ".join(explicit))
        if implicit:
            assoc.append("implicit: " + ", ".join(implicit))
        head = f"    {rt.name}" + (" (main)" if rt.is_main else "")
        head += "  subnets " + ("; ".join(assoc) if assoc else "none")
        if rt.gateways:
            head += "  gateways " + ", ".join(g.name for g in rt.gateways) + " (gateway route table)"
        out.append(head)
        out.append(table(["DESTINATION", "TARGET", "ORIGIN", "STATE"],
                         [[r.destination, _target(r), r.origin, r.state] for r in rt.routes], indent="      "))

    out.append("")
    out.append("  ENIs")
    enis = vpc.enis
    out.append(table(
        ["NAME", "PORT", "IP", "SECONDARY IPS", "MAC", "SUBNET", "SRC/DST CHECK", "PUBLIC IP", "SECURITY GROUPS"],
        [[e.name, e.port, e.ip, ", ".join(map(str, e.secondary_ips)), e.mac, e.subnet.name,
          "on" if e.source_dest_check else "off",
          f"{e.public_ip} ({e.address.name})" if e.address is not None else "",
          ", ".join(g.name for g in e.security_groups)] for e in enis],
        indent="    ") if enis else "    (none)")
    tuned = [(e.name, e.tracking.changes()) for e in enis if e.tracking.changes()]
    if tuned:   # connection-tracking timeouts (s) that differ from AWS's defaults
        out.append("    connection tracking timeouts (s) other than the defaults: " + "; ".join(
            f"{name} " + ", ".join(f"{k}={v}" for k, v in ch.items()) for name, ch in tuned))

    out.extend(_render_groups(vpc))
    out.append("")
    out.append("  Network ACLs")
    for acl in vpc.network_acls:
        out.extend(_render_acl(acl))

    out.append("")
    out.append("  Gateways and peerings")
    rows = _gateway_rows(vpc)
    out.append(table(["NAME", "KIND", "PORT", "MAC", "DETAILS"], rows, indent="    ") if rows else "    (none)")
    return out


def _owner(a: ElasticIp) -> str:
    o = a.association
    if o is None:
        return ""
    return f"NAT gateway {o.name}" if isinstance(o, NatGateway) else f"ENI {o.name}"


def render(net: Network) -> str:
    """The whole network as text: per VPC its subnets, route tables (with their gateway
    associations), ENIs (with their public IPs), security groups (rules, members), network ACLs
    (entries, subnets) and gateways (MACs, gateway route tables, NAT gateways' connectivity,
    private IP and Elastic IP); then peerings, Elastic IPs, prefix lists and transit gateways.
    Ends with a newline."""
    out = [f"Network: {_plural(len(net.vpcs), 'VPC')}, {_plural(len(net.subnets), 'subnet')}, "
           f"{_plural(len(net.enis), 'ENI')}, {_plural(len(net.peerings), 'peering')}, "
           f"{_plural(len(net.transit_gateways), 'transit gateway')}"]
    for vpc in net.vpcs:
        out.append("")
        out.extend(_render_vpc(vpc))
    out.append("")
    out.append("Peerings")
    out.append(table(["NAME", "PORT", "REQUESTER", "ACCEPTER"],
                     [[p.name, p.port, p.requester.name, p.accepter.name] for p in net.peerings])
               if net.peerings else "  (none)")
    out.append("")
    out.append("Elastic IPs")
    out.append(table(["NAME", "PUBLIC IP", "ASSOCIATED WITH", "PRIVATE IP"],
                     [[a.name, a.public_ip, _owner(a), a.private_ip] for a in net.addresses])
               if net.addresses else "  (none)")
    if net.prefix_lists:
        out.append("")
        out.append("Prefix lists")
        out.append(table(["NAME", "MAX ENTRIES", "CIDRS"],
                         [[p.name, p.max_entries, ", ".join(map(str, p.cidrs))] for p in net.prefix_lists]))
    out.append("")
    out.append("Transit gateways")
    out.append(table(["NAME", "PORT", "ATTACHMENTS"],
                     [[t.name, t.port, ", ".join(v.name for v in t.attachments)] for t in net.transit_gateways])
               if net.transit_gateways else "  (none)")
    return "\n".join(out) + "\n"

