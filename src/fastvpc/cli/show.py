"""``fastvpc show``: a network as readable, aligned plain-text tables.

:func:`render` is self-contained: give it a :class:`fastvpc.topology.Network`, print
the string it returns.  Output is plain ASCII text (names are printed as given).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastvpc.topology import BLACKHOLE, Network, Route, Subnet, Vpc

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


def _gateway_rows(vpc: Vpc) -> list[list[object]]:
    rows: list[list[object]] = []
    for g in vpc.internet_gateways:
        rows.append([g.name, "internet gateway", g.port, ""])
    for v in vpc.vpn_gateways:
        rows.append([v.name, "VPN gateway", v.port, ""])
    for n in vpc.nat_gateways:
        rows.append([n.name, "NAT gateway", n.port, f"subnet {n.subnet.name}" if n.subnet is not None else ""])
    for e in vpc.endpoints:
        detail = e.endpoint_type + (f" {e.service}" if e.service else "")
        rows.append([e.name, "endpoint", e.port, detail])
    for t in vpc.network.transit_gateways:
        if vpc in t.attachments:
            rows.append([t.name, "transit gateway", t.port, "attached"])
    for p in vpc.peerings:
        rows.append([p.name, "peering", p.port, f"to VPC {p.peer_of(vpc).name}"])
    return rows


def _render_vpc(vpc: Vpc) -> list[str]:
    out = [f"VPC {vpc.name}  CIDRs {', '.join(map(str, vpc.cidrs))}  main route table {vpc.main_route_table.name}"]

    out.append("")
    out.append("  Subnets")
    out.append(table(
        ["NAME", "CIDR", "ROUTER IP", "GATEWAY MAC", "ROUTE TABLE", "ENIS", "USABLE"],
        [[s.name, s.cidr, s.router_ip, s.gateway_mac, _association(s), len(s.enis), s.usable_count]
         for s in vpc.subnets],
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
        out.append(head)
        out.append(table(["DESTINATION", "TARGET", "ORIGIN", "STATE"],
                         [[r.destination, _target(r), r.origin, r.state] for r in rt.routes], indent="      "))

    out.append("")
    out.append("  ENIs")
    enis = vpc.enis
    out.append(table(
        ["NAME", "PORT", "IP", "SECONDARY IPS", "MAC", "SUBNET", "SRC/DST CHECK"],
        [[e.name, e.port, e.ip, ", ".join(map(str, e.secondary_ips)), e.mac, e.subnet.name,
          "on" if e.source_dest_check else "off"] for e in enis],
        indent="    ") if enis else "    (none)")

    out.append("")
    out.append("  Gateways and peerings")
    rows = _gateway_rows(vpc)
    out.append(table(["NAME", "KIND", "PORT", "DETAILS"], rows, indent="    ") if rows else "    (none)")
    return out


def render(net: Network) -> str:
    """The whole network as text: per VPC its subnets, route tables, ENIs and gateways; then
    peerings and transit gateways.  Ends with a newline."""
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
    out.append("Transit gateways")
    out.append(table(["NAME", "PORT", "ATTACHMENTS"],
                     [[t.name, t.port, ", ".join(v.name for v in t.attachments)] for t in net.transit_gateways])
               if net.transit_gateways else "  (none)")
    return "\n".join(out) + "\n"

