"""Testing helpers: run the compiled data plane and the reference forwarder side by side.

fastvpc has two engines behind one protocol (:class:`fastvpc.dataplane.Forwarder`): the compiled
:class:`fastvpc.Dataplane` and the readable :class:`fastvpc.reference.ReferenceForwarder`, written
from the contract and used as the oracle.  This module is what fastvpc's own test suite uses to hold
them together, and it is public so that anyone building on fastvpc (a simulator, a topology tool, a
new pipeline stage) can do the same::

    from fastvpc.testing import assert_same_verdicts, engines, run

    kernel, reference = engines(net)                 # two Forwarders over the same Network
    assert_same_verdicts(kernel, reference, batch)   # or (kernel, net, [(frame, port), ...])
    v = run(reference, [(frame, eni.port)])[0]       # one fastvpc.reference.Verdict per frame

* :func:`engines` / :func:`engine` / :data:`ENGINE_NAMES`: the two engines as Forwarders (for a
  ``pytest`` fixture: ``@pytest.fixture(params=ENGINE_NAMES)``).
* :func:`run` and :func:`verdicts`: frames through a Forwarder, as :class:`fastvpc.reference.Verdict`
  records (action, reason, egress, route, output frame).
* :func:`assert_same_verdicts`: both engines on one batch; action, reason, egress, route and every
  output byte must agree, else an ``AssertionError`` naming the first differing frame, what each
  engine said, the first differing byte and the network's routes.
* Hypothesis strategies (hypothesis is optional: it is imported only when a strategy is asked for):
  :func:`networks` (random multi-VPC topologies), :func:`frames` (one ``(frame, port)`` aimed at
  interesting places, or mutated), :func:`frame_lists` and :func:`scenarios` (a network, a list of
  frames and an ARP mode)::

      from hypothesis import given
      from fastvpc.testing import assert_same_verdicts, scenarios

      @given(scenarios())
      def test_engines_agree(scenario):
          net, items, arp_mode = scenario
          assert_same_verdicts(net.compile(arp_mode=arp_mode), net, items)
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from fastvpc import packets as pk
from fastvpc.batch import FrameBatch
from fastvpc.errors import TopologyError
from fastvpc.reference import ReferenceFlowTable, ReferenceForwarder, Verdict
from fastvpc.topology import BLACKHOLE, Endpoint, Eni, Network, Vpc
from fastvpc.verdicts import Action, DropReason

if TYPE_CHECKING:  # the protocol lives with Dataplane; importing it at run time would load the kernel early
    from fastvpc.dataplane import Forwarder

__all__ = ["EDGE_PUBLIC_IPS", "ENGINE_NAMES", "Engines", "States", "assert_same_verdicts", "compile_network",
           "edge_frames", "edge_networks", "edge_scenarios", "engine", "engines",
           "filter_networks", "filters_of", "flow_rows", "frame_lists", "frames", "fresh_state", "fresh_states", "nat_frames", "nat_rows", "nat_scenarios",
           "interesting_ips", "networks", "run", "scenarios", "state_for", "stateful_scenarios", "verdicts"]

#: the engine names :func:`engine` knows, in the order tests list them
ENGINE_NAMES = ("reference", "kernel")

Items = Sequence[tuple[bytes, int]]


# =========================================================================== engines

class Engines(NamedTuple):
    """The two engines over one network: ``kernel`` (the compiled Dataplane) and ``reference``."""

    kernel: Forwarder
    reference: Forwarder


def compile_network(net: Network, arp_mode: str = "target", filters: bool = True, edge: bool = True) -> Any:
    """``net.compile(arp_mode=..., filters=..., edge=...)`` (``filters=False, edge=False``: the routing
    view of DESIGN.md §1)."""
    return net.compile(arp_mode=arp_mode, filters=filters, edge=edge)


def filters_of(forwarder: Any) -> bool:
    """Whether ``forwarder`` runs the filter stages: its ``filters`` attribute (the reference, a Dataplane),
    else its compiled tables' (``_compiled.filters``); a Dataplane without either never filters."""
    f = getattr(forwarder, "filters", None)
    if f is None:
        f = getattr(getattr(forwarder, "_compiled", None), "filters", None)
    return bool(f)


def engines(net: Network, arp_mode: str = "target", filters: bool = True, edge: bool = True) -> Engines:
    """``net`` compiled (``net.compile(arp_mode=..., filters=..., edge=...)``) and the reference forwarder
    over it, with the same stages."""
    return Engines(compile_network(net, arp_mode, filters, edge),
                   ReferenceForwarder(net, arp_mode=arp_mode, filters=filters, edge=edge))


def engine(net: Network, name: str, arp_mode: str = "target", filters: bool = True, edge: bool = True) -> Forwarder:
    """One engine by name: ``"kernel"`` (compiles ``net``) or ``"reference"``."""
    if name == "kernel":
        dp: Forwarder = compile_network(net, arp_mode, filters, edge)
        return dp
    if name == "reference":
        return ReferenceForwarder(net, arp_mode=arp_mode, filters=filters, edge=edge)
    raise ValueError(f"engine {name!r} must be one of {', '.join(ENGINE_NAMES)}")


def fresh_state(forwarder: Any, capacity: int = 1_000_000) -> Any:
    """A new, empty connection-tracking state for ``forwarder``: a :class:`ReferenceFlowTable` for the
    reference forwarder, a ``fastvpc.FlowTable`` for the compiled Dataplane."""
    if isinstance(forwarder, ReferenceForwarder):
        return ReferenceFlowTable(capacity)
    from fastvpc.dataplane.state import FlowTable

    return FlowTable(capacity)


def _batch(frames: FrameBatch | Items) -> FrameBatch:
    if isinstance(frames, FrameBatch):
        return frames
    items = list(frames)
    return FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items])


def verdicts(res: Any) -> list[Verdict]:
    """A ``process()`` result (:class:`fastvpc.dataplane.ResultLike`) as one Verdict per frame."""
    return [Verdict(Action(int(res.action[i])), DropReason(int(res.reason[i])), int(res.egress[i]),
                    int(res.route[i]), res.frames.frame(i)) for i in range(len(res.action))]


def run(forwarder: Forwarder, frames: FrameBatch | Items, copy: bool = False, *, state: Any = None,
        now: int | None = None) -> list[Verdict]:
    """Push ``frames`` (a FrameBatch, or ``(frame_bytes, port)`` pairs) through ``forwarder.process``.

    A list of pairs is packed into a new batch, processed in place; pass ``copy=True`` to leave a
    batch you give untouched.  ``state``/``now``: a stateful pass (the forwarder's own kind of table,
    :func:`fresh_state`); they are passed only when given.
    """
    return verdicts(_process(forwarder, _batch(frames), copy, state, now))


def _process(forwarder: Any, batch: FrameBatch, copy: bool, state: Any, now: int | None) -> Any:
    if state is None and now is None:
        return forwarder.process(batch, copy=copy)
    return forwarder.process(batch, copy=copy, state=state, now=now)


class States(NamedTuple):
    """One connection-tracking state per engine, carried across batches by :func:`assert_same_verdicts`."""

    kernel: Any                      # fastvpc.FlowTable
    reference: ReferenceFlowTable


def nat_rows(state: Any) -> set[tuple[int, ...]]:
    """The NAT gateway bindings a state holds (a ``fastvpc.FlowTable`` or a :class:`ReferenceFlowTable`), as
    (proto, inside ip, inside port, remote ip, remote port, nat ip, nat port, first seen, last seen) rows:
    both engines hold the same ones (live, or expired and not yet reclaimed) after the same frames."""
    if isinstance(state, ReferenceFlowTable):
        got = getattr(state, "_nat_bindings", None)
        if got is None:
            return set()
        return {(b.proto, b.inside_ip, b.inside_port, b.remote_ip, b.remote_port, b.nat_ip, b.nat_port, b.first_seen,
                 b.last_seen) for b in got[0].bindings()}
    rows = state.nat_bindings()
    return {tuple(int(r[f]) for f in ("proto", "inside_ip", "inside_port", "remote_ip", "remote_port", "nat_ip",
                                      "nat_port", "first_seen", "last_seen")) for r in rows}


def fresh_states(capacity: int = 1_000_000, *, nat_max_per_destination: int | None = None) -> States:
    """A new, empty ``fastvpc.FlowTable`` and :class:`ReferenceFlowTable` of the same capacity (and, when
    given, the same NAT gateway limit of bindings per destination: a small one reaches exhaustion)."""
    from fastvpc.dataplane.state import FlowTable

    if nat_max_per_destination is None:
        return States(FlowTable(capacity), ReferenceFlowTable(capacity))
    ref = ReferenceFlowTable(capacity)
    ref.nat_max_per_destination = nat_max_per_destination  # type: ignore[attr-defined]  # ReferenceForwarder.nat_tables
    return States(FlowTable(capacity, nat_max_per_destination=nat_max_per_destination), ref)


def state_for(name: str, capacity: int = 1_000_000) -> Any:
    """A fresh state for the engine named ``name`` (:data:`ENGINE_NAMES`)."""
    if name == "reference":
        return ReferenceFlowTable(capacity)
    if name == "kernel":
        from fastvpc.dataplane.state import FlowTable

        return FlowTable(capacity)
    raise ValueError(f"engine {name!r} must be one of {', '.join(ENGINE_NAMES)}")


def flow_rows(state: Any, now: int | None = None) -> list[tuple[int, ...]]:
    """The flows of either kind of table live at ``now`` (default: the table's clock), without the ENI
    (the kernel keys by 32-bit identities, the reference by names), sorted: (zone, proto, src, dst,
    sport, dport, state, first_seen, last_seen, packets, bytes, timeout)."""
    at = now if now is not None else state.clock
    rows: list[tuple[int, ...]]
    if isinstance(state, ReferenceFlowTable):
        rows = [(f.zone, f.proto, f.src, f.dst, f.sport, f.dport, int(f.state), f.first_seen, f.last_seen,
                 f.packets, f.bytes, f.timeout) for f in state.flows(at)]
    else:
        fl = state.flows(now=at) if at is not None else state.flows()
        rows = [tuple(int(r[k]) for k in ("zone", "proto", "src", "dst", "sport", "dport", "state", "first_seen",
                                          "last_seen", "packets", "bytes", "timeout")) for r in fl]
    return sorted(rows)


# =========================================================================== the comparison

def _describe(res: Any, i: int) -> str:
    return (f"{Action(int(res.action[i])).name}/{DropReason(int(res.reason[i])).name} "
            f"egress={int(res.egress[i])} route={int(res.route[i])}")


def _differs(ker: Any, ref: Any, i: int) -> list[str]:
    fields = [name for name in ("action", "reason", "egress", "route")
              if int(getattr(ker, name)[i]) != int(getattr(ref, name)[i])]
    if ker.frames.frame(i) != ref.frames.frame(i):
        fields.append("frame")
    return fields


def _first_byte_diff(a: bytes, b: bytes) -> str:
    for k, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"first differing byte at offset {k}: reference 0x{x:02x}, kernel 0x{y:02x}"
    return f"lengths differ: reference {len(a)} bytes, kernel {len(b)} bytes"


def assert_same_verdicts(dp: Forwarder, reference_or_net: Forwarder | Network, batch: FrameBatch | Items,
                         *, arp_mode: str | None = None, state: States | None = None,
                         now: int | None = None) -> None:
    """Both engines on ``batch`` must give the same action, reason, egress, route and output frames.

    ``dp``: the engine under test (usually a :class:`fastvpc.Dataplane`).  ``reference_or_net``: the
    oracle, a Forwarder or a :class:`fastvpc.Network` (a ``ReferenceForwarder`` over it is built, in
    ``arp_mode``, by default ``dp.arp_mode``).  ``batch``: a FrameBatch (left untouched: both engines
    run with ``copy=True``) or ``(frame_bytes, port)`` pairs.  On a disagreement, raises
    ``AssertionError`` naming the first differing frame (index, port, input bytes), each engine's
    verdict, the fields that differ, the first differing output byte and the network's routes.

    ``state``: a :class:`States` pair (:func:`fresh_states`): both engines run statefully, the kernel
    on ``state.kernel``, the reference on ``state.reference``, at ``now`` (or the batch's timestamps);
    call again with the same pair for the next batch.  After the batch the two tables must hold the
    same flows (:func:`flow_rows`).
    """
    net: Network | None = None
    if isinstance(reference_or_net, Network):
        net = reference_or_net
        mode = str(arp_mode or getattr(dp, "arp_mode", "target"))
        reference: Forwarder = ReferenceForwarder(net, arp_mode=mode, filters=filters_of(dp))
    else:
        reference = reference_or_net
        net = getattr(reference, "net", None)
        mode = str(arp_mode or getattr(reference, "arp_mode", None) or getattr(dp, "arp_mode", "?"))
    frames = _batch(batch)
    n = len(frames)
    ref = _process(reference, frames, True, None if state is None else state.reference, now)
    ker = _process(dp, frames, True, None if state is None else state.kernel, now)
    for name in ("action", "reason", "egress", "route"):
        for who, res in (("reference", ref), ("kernel", ker)):
            shape = getattr(getattr(res, name), "shape", None)
            assert shape == (n,), f"{who}: {name} has shape {shape}, not ({n},)"
    bad = [i for i in range(n) if _differs(ker, ref, i)]
    if not bad:
        if state is not None:
            want, got = flow_rows(state.reference), flow_rows(state.kernel, state.reference.clock)
            if want != got:
                raise AssertionError("kernel and reference agree on every verdict but their flow tables differ "
                                     f"after the batch:\n  reference only: {sorted(set(want) - set(got))[:10]}\n"
                                     f"  kernel only:    {sorted(set(got) - set(want))[:10]}\n  (zone, proto, src, "
                                     "dst, sport, dport, state, first, last, packets, bytes, timeout)")
            want_n, got_n = nat_rows(state.reference), nat_rows(state.kernel)
            if want_n != got_n:
                raise AssertionError("kernel and reference agree on every verdict but their NAT gateway bindings "
                                     f"differ after the batch:\n  reference only: {sorted(want_n - got_n)[:10]}\n"
                                     f"  kernel only:    {sorted(got_n - want_n)[:10]}\n  (proto, inside ip, "
                                     "inside port, remote ip, remote port, nat ip, nat port, first, last)")
        return
    i = bad[0]
    got, want = ker.frames.frame(i), ref.frames.frame(i)
    lines = [f"kernel and reference disagree on {len(bad)} of {n} frames (arp_mode={mode}); first: frame {i} "
             f"on port {int(frames.port[i])}",
             f"  input:     {frames.frame(i).hex()}",
             f"  reference: {_describe(ref, i)}",
             f"  kernel:    {_describe(ker, i)}",
             f"  differs in: {', '.join(_differs(ker, ref, i))}"]
    if got != want:
        lines += [f"  {_first_byte_diff(want, got)}", f"  reference frame: {want.hex()}",
                  f"  kernel frame:    {got.hex()}"]
    if len(bad) > 1:
        lines.append(f"  other differing frames: {bad[1:21]}{' ...' if len(bad) > 21 else ''}")
    if net is not None:
        lines.append("  routes (index: route): " + "; ".join(f"{k}: {r!r}" for k, r in enumerate(net.routes())))
    raise AssertionError("\n".join(lines))


# =========================================================================== hypothesis strategies

def _hypothesis() -> Any:
    try:
        from hypothesis import strategies as st
    except ImportError as exc:  # pragma: no cover - hypothesis is a test dependency
        raise ImportError("fastvpc.testing's strategies need hypothesis (pip install hypothesis)") from exc
    return st


def _try(fn: Any, *args: Any, **kw: Any) -> Any:
    """Run a control-plane call; an invalid one (TopologyError) is simply not applied."""
    try:
        return fn(*args, **kw)
    except TopologyError:
        return None


def networks(max_vpcs: int = 3) -> Any:
    """Random networks: 1..``max_vpcs`` VPCs (10.i.0.0/16, sometimes a secondary CIDR), /16../28 subnets,
    ENIs with secondary IPs, source/dest check on or off and sparse ports, gateways of every kind, custom
    route tables with random prefixes from /0 to /32, more-specific-than-local subnet routes, peerings with
    routes on both sides, a transit gateway, main-table swaps, and deleted targets that leave blackholes.
    Invalid draws (refused by validation) are skipped, so every network drawn is valid."""
    st = _hypothesis()

    @st.composite
    def _networks(draw: Any) -> Network:
        net = Network()
        n_vpcs = draw(st.integers(1, max_vpcs))
        vpcs: list[Vpc] = []
        for i in range(n_vpcs):
            vpc = net.add_vpc(f"10.{i}.0.0/16", name=f"v{i}")
            if draw(st.booleans()):
                vpc.add_cidr(draw(st.sampled_from([f"10.{100 + i}.0.0/16", f"172.{16 + i}.0.0/20",
                                                   f"192.168.{i * 16}.0/28"])))
            vpcs.append(vpc)
            # subnets: aligned blocks so that most draws are valid; some /28s to reach broadcast/reserved
            for cidr in vpc.cidrs:
                for _ in range(draw(st.integers(0 if cidr != vpc.cidr else 1, 3))):
                    plen = draw(st.sampled_from([cidr.prefixlen, 20, 24, 24, 26, 28]))
                    plen = max(plen, cidr.prefixlen)
                    n_blocks = 2 ** (plen - cidr.prefixlen)
                    k = draw(st.integers(0, min(n_blocks - 1, 40)))
                    block = ipaddress.IPv4Network((int(cidr.network_address) + k * 2 ** (32 - plen), plen))
                    _try(vpc.add_subnet, block)
            for subnet in list(vpc.subnets):
                hosts = subnet.cidr.num_addresses
                for _ in range(draw(st.sampled_from([0, 1, 2, 2, 3]))):
                    off = draw(st.integers(4, min(hosts - 2, 300)))
                    secs = [subnet.cidr.network_address + draw(st.integers(4, min(hosts - 2, 300)))
                            for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2])))]
                    port = draw(st.sampled_from([None, None, None, None, 70_000 + off, 50_000_000 + off]))
                    eni = _try(subnet.add_eni, subnet.cidr.network_address + off,
                               source_dest_check=draw(st.booleans()), port=port)
                    if eni is not None:
                        for s in secs:
                            _try(eni.add_secondary_ip, s)
            if draw(st.booleans()):
                vpc.add_internet_gateway()
            if draw(st.booleans()):
                vpc.add_vpn_gateway()
            for _ in range(draw(st.integers(0, 2))):
                vpc.add_nat_gateway(subnet=draw(st.sampled_from(vpc.subnets)) if vpc.subnets else None)
            if draw(st.booleans()):
                vpc.add_endpoint(endpoint_type=draw(st.sampled_from(list(Endpoint.KINDS))))
        # peerings (only between non-overlapping VPCs: all are)
        for i in range(n_vpcs):
            for j in range(i + 1, n_vpcs):
                if draw(st.booleans()):
                    net.add_peering(vpcs[i], vpcs[j])
        if n_vpcs > 1 and draw(st.booleans()):
            tgw = net.add_transit_gateway()
            for v in vpcs:
                if draw(st.booleans()):
                    tgw.attach(v)
        # route tables and routes
        for vpc in vpcs:
            tables = [vpc.main_route_table] + [vpc.add_route_table() for _ in range(draw(st.integers(0, 2)))]
            targets: list[Any] = [*vpc.gateways, *vpc.enis, *vpc.peerings, BLACKHOLE]
            for rt in tables:
                for _ in range(draw(st.integers(0, 5))):
                    dest = draw(_destinations(net))
                    tgt = draw(st.sampled_from(targets))
                    _try(rt.add_route, dest, tgt)
                # peering routes towards the peer's CIDRs, both sides (when a peering exists)
                for p in vpc.peerings:
                    if draw(st.booleans()):
                        for c in p.peer_of(vpc).cidrs:
                            _try(rt.add_route, c, p)
                if vpc.enis and draw(st.integers(0, 5)) == 0:
                    _try(rt.replace_route, vpc.cidr, draw(st.sampled_from(vpc.enis)))  # #21
            for s in vpc.subnets:
                if draw(st.booleans()):
                    s.associate(draw(st.sampled_from(tables)))
            if len(tables) > 1 and draw(st.booleans()):
                vpc.set_main_route_table(draw(st.sampled_from(tables)))
        # deletions: routes to a deleted target turn into blackholes; a deleted ENI's port is unknown
        for _ in range(draw(st.integers(0, 2))):
            cands = list(net.targets)
            if cands:
                _try(draw(st.sampled_from(cands)).delete)
        return net

    return _networks()


def _destinations(net: Network) -> Any:
    """Route destinations: /0, /32s of interesting hosts, subnet CIDRs (more specific than local),
    VPC CIDRs, and random prefixes of any length."""
    st = _hypothesis()
    IP = ipaddress.IPv4Address
    hosts = [e_ip for e in net.enis for e_ip in e.ips] + [s.router_ip for s in net.subnets] + [IP("8.8.8.8")]
    subnets = [s.cidr for s in net.subnets]
    cidrs = [c for v in net.vpcs for c in v.cidrs]
    random_net = st.builds(lambda a, n: ipaddress.IPv4Network((a, n), strict=False),
                           st.integers(0, 2**32 - 1), st.integers(0, 32))
    around = st.builds(lambda h, n: ipaddress.IPv4Network((int(h), n), strict=False),
                       st.sampled_from(hosts), st.integers(8, 32))
    return st.one_of(st.just(ipaddress.IPv4Network("0.0.0.0/0")),
                     st.sampled_from(hosts).map(lambda h: ipaddress.IPv4Network((int(h), 32))),
                     st.sampled_from(subnets) if subnets else st.nothing(),
                     st.sampled_from(cidrs), random_net, around)


#: addresses outside any VPC where the model decides something: outside, broadcast, multicast, link-local
_SPECIAL_IPS = [ipaddress.IPv4Address(a) for a in (
    "8.8.8.8", "1.1.1.1", "255.255.255.255", "224.0.0.5", "239.255.0.1", "169.254.169.254", "169.254.169.253",
    "169.254.170.2", "169.254.1.1", "0.0.0.0", "127.0.0.1", "192.168.50.5")]


def interesting_ips(net: Network) -> list[ipaddress.IPv4Address]:
    """Addresses where the forwarding model decides something: ENI IPs, routers, reserved and broadcast
    addresses, VPC CIDR edges, multicast, link-local services, outside addresses."""
    ips = list(_SPECIAL_IPS)
    for s in net.subnets:
        ips += list(s.reserved_ips) + [s.cidr.network_address + 77]
    for v in net.vpcs:
        for c in v.cidrs:
            ips += [c.network_address + 1, c.broadcast_address, c.network_address + 300 % c.num_addresses]
    for e in net.enis:
        ips += list(e.ips)
    return ips


def _macs(net: Network) -> list[str]:
    return ([s.gateway_mac for s in net.subnets] + [e.mac for e in net.enis] +
            [pk.BROADCAST_MAC, "01:00:5e:00:00:05", "02:00:00:00:00:99", "00:00:00:00:00:00"])


def _fix_ip_checksum(frame: bytearray) -> None:
    """Recompute the IPv4 header checksum of a mutated frame (to get past step 9 to later checks)."""
    if len(frame) >= 34 and frame[12:14] == b"\x08\x00":
        ihl = (frame[14] & 15) * 4
        if ihl >= 20 and 14 + ihl <= len(frame):
            frame[24:26] = b"\x00\x00"
            frame[24:26] = struct.pack("!H", pk.checksum(bytes(frame[14:14 + ihl])))


def frames(net: Network, mutate: bool = True) -> Any:
    """One ``(frame_bytes, port)``: mostly a well-formed frame from an ENI of ``net`` (ARP requests,
    replies, probes and gratuitous ARP; ICMP echo and other types, UDP, TCP, other protocols; IP options,
    fragments, Ethernet padding; to the gateway MAC, ENI MACs or group MACs; from the ENI's own or a foreign
    source IP), sometimes on a gateway's or an unknown port; with ``mutate``, one in four is then damaged
    (bit flips, truncation, lying header fields, another ethertype, random bytes)."""
    st = _hypothesis()
    IP = ipaddress.IPv4Address

    @st.composite
    def _valid(draw: Any) -> tuple[bytes, int]:
        enis = net.enis
        ports = ([e.port for e in enis] + [t.port for t in net.targets if not isinstance(t, Eni)]
                 + [-1, 99999, 2**31 - 1, -(2**31)])
        sender = draw(st.sampled_from(enis)) if enis and draw(st.integers(0, 9)) else None
        port = sender.port if sender is not None else draw(st.sampled_from(ports))
        src_mac = sender.mac if sender is not None else "02:aa:bb:cc:dd:ee"
        ips = interesting_ips(net)
        eni_ips = [ip for e in enis for ip in e.ips] or ips
        routers = [s.router_ip for s in net.subnets] or ips
        dst_ip = draw(st.one_of(st.sampled_from(eni_ips), st.sampled_from(eni_ips), st.sampled_from(ips),
                                st.sampled_from(routers), st.sampled_from(_SPECIAL_IPS),
                                st.integers(0, 2**32 - 1).map(IP)))
        if sender is not None and draw(st.integers(0, 9)):
            src_ip = draw(st.sampled_from(sender.ips))
        else:
            src_ip = draw(st.one_of(st.sampled_from(ips), st.integers(0, 2**32 - 1).map(IP)))
        kind = draw(st.sampled_from(["arp", "arp", "icmp", "icmp", "udp", "tcp", "raw"]))
        if kind == "arp":
            op = draw(st.sampled_from([1, 1, 1, 1, 2, 3]))
            spa = draw(st.sampled_from([src_ip, src_ip, src_ip, src_ip, IP("0.0.0.0"), dst_ip]))
            eth_dst = draw(st.sampled_from([pk.BROADCAST_MAC, *_macs(net)[:4]]))
            body = (struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + pk.mac_bytes(src_mac) + spa.packed
                    + b"\x00" * 6 + dst_ip.packed)
            frame = pk.ethernet(eth_dst, src_mac, pk.ETH_ARP, body)
        else:
            if sender is not None and draw(st.integers(0, 7)):
                dst_mac = draw(st.sampled_from([sender.subnet.gateway_mac] + [e.mac for e in sender.subnet.enis]))
            else:
                dst_mac = draw(st.sampled_from(_macs(net)))
            if sender is not None and draw(st.integers(0, 6)) == 0:
                dst_ip = sender.subnet.router_ip  # the own router (#57, #59)
            payload = draw(st.binary(max_size=40))
            ttl = draw(st.sampled_from([0, 1, 64, 255]))
            options = b"\x01" * draw(st.sampled_from([4, 8])) if draw(st.integers(0, 6)) == 0 else b""
            flags_frag = 0x4000
            if draw(st.integers(0, 8)) == 0:
                flags_frag = 0x2000                                    # more fragments
            elif draw(st.integers(0, 8)) == 0:
                flags_frag = draw(st.integers(1, 100))                 # a later fragment
            if kind == "icmp":
                icmp_type = draw(st.sampled_from([8, 8, 8, 0, 3, 13]))
                code = draw(st.sampled_from([0, 0, 0, 1]))
                body = struct.pack("!BBHHH", icmp_type, code, 0, draw(st.integers(0, 65535)),
                                   draw(st.integers(0, 65535))) + payload
                l4, proto = body[:2] + struct.pack("!H", pk.checksum(body)) + body[4:], 1
            elif kind == "udp":
                l4, proto = pk.udp(src_ip, dst_ip, 49152, draw(st.integers(0, 65535)), payload)[20:], 17
            elif kind == "tcp":
                l4, proto = pk.tcp(src_ip, dst_ip, 49152, draw(st.integers(0, 65535)), payload)[20:], 6
            else:
                l4, proto = payload, draw(st.integers(0, 255))
            packet = pk.ipv4(src_ip, dst_ip, proto, l4, ttl=ttl, flags_frag=flags_frag, options=options)
            frame = pk.ethernet(dst_mac, src_mac, pk.ETH_IPV4, packet)
        if draw(st.integers(0, 4)) == 0:
            frame = frame + draw(st.binary(min_size=1, max_size=30))  # Ethernet padding
        return frame, port

    @st.composite
    def _mutated(draw: Any) -> tuple[bytes, int]:
        frame, port = draw(_valid())
        buf = bytearray(frame)
        how = draw(st.sampled_from(["flip", "truncate", "field", "field", "ethertype", "random"]))
        if how == "flip" and buf:
            for _ in range(draw(st.integers(1, 4))):
                i = draw(st.integers(0, len(buf) - 1))
                buf[i] ^= 1 << draw(st.integers(0, 7))
            if draw(st.booleans()):
                _fix_ip_checksum(buf)
        elif how == "truncate":
            buf = buf[:draw(st.integers(0, len(buf)))]
        elif how == "field" and len(buf) >= 42:
            # lying length / header fields at the offsets the model reads
            at = draw(st.sampled_from([14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 34, 35, 0]))
            buf[at] = draw(st.integers(0, 255))
            if draw(st.booleans()):
                _fix_ip_checksum(buf)
        elif how == "ethertype" and len(buf) >= 14:
            buf[12:14] = draw(st.sampled_from([b"\x86\xdd", b"\x81\x00", b"\x88\xcc", b"\x08\x06", b"\x08\x00"]))
        else:
            buf = bytearray(draw(st.binary(max_size=80)))
        return bytes(buf), port

    if not mutate:
        return _valid()
    return st.one_of(_valid(), _valid(), _valid(), _mutated())


def frame_lists(net: Network, min_size: int = 4, max_size: int = 32) -> Any:
    """Lists of ``(frame_bytes, port)`` from :func:`frames`."""
    return _hypothesis().lists(frames(net), min_size=min_size, max_size=max_size)


def scenarios(max_vpcs: int = 3) -> Any:
    """``(network, [(frame, port), ...], arp_mode)``: what :func:`assert_same_verdicts` is run on."""
    st = _hypothesis()

    @st.composite
    def _scenarios(draw: Any) -> tuple[Network, list[tuple[bytes, int]], str]:
        net = draw(networks(max_vpcs))
        items = draw(frame_lists(net))
        return net, items, draw(st.sampled_from(["target", "target", "target", "single_mac"]))

    return _scenarios()


# =========================================================================== filters and stateful traffic

#: destination ports the random rules and the random traffic share (so that rules do match sometimes)
FILTER_PORTS = (22, 53, 80, 443, 8080, 49152)
_RULE_PORTS: tuple[Any, ...] = (None, 22, 53, 80, 443, 8080, (1024, 65535), (80, 443), (0, 1023))
_ICMP_RULES: tuple[Any, ...] = (None, (8, -1), (0, -1), (8, 0), (3, -1), (-1, -1))
#: short timeouts (AWS's minimums where AWS bounds them), so that scenarios cross them
SHORT_TRACKING = dict(tcp_established=60, udp=30, udp_stream=60, other=10, icmp=5, tcp_syn_sent=5,
                      tcp_syn_recv=5, tcp_fin_wait=5, tcp_close_wait=5, tcp_last_ack=5, tcp_time_wait=5, tcp_close=2)
_NS = 1_000_000_000
#: time steps between batches (ns): within and across every timeout class
_DT = (0, 1, _NS // 2, _NS, 4 * _NS, 6 * _NS, 29 * _NS, 31 * _NS, 61 * _NS, 200 * _NS, 601 * _NS, 6 * 86_400 * _NS)


def _peers(draw: Any, st: Any, net: Network, vpc: Vpc) -> Any:
    """A rule's peer: 0.0.0.0/0, a subnet, an ENI's /32, the VPC, a group (this VPC or a peered one),
    a prefix list or an inline list of CIDRs."""
    kind = draw(st.sampled_from(["any", "any", "subnet", "host", "vpc", "group", "group", "pl", "list"]))
    subnets = [s for v in net.vpcs for s in v.subnets]
    enis = [e for v in net.vpcs for e in v.enis]
    if kind == "subnet" and subnets:
        return draw(st.sampled_from(subnets)).cidr
    if kind == "host" and enis:
        e = draw(st.sampled_from(enis))
        return f"{draw(st.sampled_from(e.ips))}/32"
    if kind == "vpc":
        return draw(st.sampled_from(net.vpcs)).cidr
    if kind == "group":
        pool = [g for v in net.vpcs if v is vpc or any(v in p.vpcs for p in vpc.peerings) for g in v.security_groups]
        return draw(st.sampled_from(pool))
    if kind in ("pl", "list") and subnets:
        cidrs = sorted({str(s.cidr) for s in draw(st.lists(st.sampled_from(subnets), min_size=1, max_size=3))})
        if draw(st.booleans()):
            cidrs.append(f"{draw(st.sampled_from(enis)).ip}/32" if enis else "8.8.8.8/32")
        return net.add_prefix_list(cidrs) if kind == "pl" else cidrs
    return "0.0.0.0/0"


def _rule_parts(draw: Any, st: Any) -> tuple[Any, Any]:
    proto = draw(st.sampled_from(["tcp", "tcp", "udp", "udp", "icmp", "all", 47]))
    if proto in ("tcp", "udp"):
        return proto, draw(st.sampled_from(_RULE_PORTS))
    if proto == "icmp":
        return proto, draw(st.sampled_from(_ICMP_RULES))
    return proto, None


def _add_filters(draw: Any, st: Any, net: Network) -> None:
    """Random security groups (references, prefix lists, inline lists, revoked egress), ENI group sets,
    custom and edited default NACLs, and per-ENI timeouts, on ``net``."""
    from fastvpc.topology.filters import Tracking

    for vpc in net.vpcs:
        for _ in range(draw(st.integers(0, 3))):
            vpc.add_security_group()
    for vpc in net.vpcs:
        for g in vpc.security_groups:
            if draw(st.integers(0, 3)) == 0:
                g.revoke_egress("all", None, "0.0.0.0/0")
            for _ in range(draw(st.integers(0, 5))):
                proto, ports = _rule_parts(draw, st)
                direction = draw(st.sampled_from(["ingress", "ingress", "egress"]))
                _try(g.authorize, direction, proto, ports, _peers(draw, st, net, vpc))
        for e in vpc.enis:
            if draw(st.booleans()):
                sets = draw(st.lists(st.sampled_from(vpc.security_groups), min_size=1, max_size=3, unique=True))
                e.security_groups = sets
            if draw(st.integers(0, 2)) == 0:
                e.tracking = Tracking(**SHORT_TRACKING)
        acls = [vpc.default_network_acl] + [vpc.add_network_acl() for _ in range(draw(st.integers(0, 2)))]
        for acl in acls:
            n_entries = draw(st.integers(0, 5)) if not acl.is_default else draw(st.sampled_from([0, 0, 1, 2]))
            for _ in range(n_entries):
                proto, ports = _rule_parts(draw, st)
                number = draw(st.sampled_from([1, 10, 50, 90, 99, 110, 200, 32766]))
                cidr = _peers(draw, st, net, vpc)
                if not isinstance(cidr, (str, ipaddress.IPv4Network)):
                    cidr = "0.0.0.0/0"
                _try(acl.add_entry, number, draw(st.sampled_from(["ingress", "egress"])),
                     draw(st.sampled_from(["allow", "allow", "deny"])), proto, ports, cidr)
            # each direction's allow-all tail independently: one open way out and a closed way in is
            # what makes a receiver's NACL_INGRESS (and the reverse a sender's NACL_EGRESS)
            if not acl.is_default and draw(st.booleans()):
                _try(acl.add_entry, 32000, "ingress", "allow", "all", None, "0.0.0.0/0")
            if not acl.is_default and draw(st.booleans()):
                _try(acl.add_entry, 32000, "egress", "allow", "all", None, "0.0.0.0/0")
        # a custom NACL on half the subnets (the deny-all tail of one without entries makes NACL drops
        # common enough that every strategy-reach test meets both NACL reasons)
        for s in vpc.subnets:
            if draw(st.booleans()):
                s.associate_network_acl(draw(st.sampled_from(acls[1:] or acls)))


def filter_networks(max_vpcs: int = 2) -> Any:
    """:func:`networks` with random security groups (group references across peerings, prefix lists,
    inline CIDR lists, revoked egress), ENIs in 1-3 groups, custom NACLs (with and without an allow-all
    tail entry) associated with random subnets, an edited default NACL, and short timeouts on some ENIs."""
    st = _hypothesis()

    @st.composite
    def _filter_networks(draw: Any) -> Network:
        net = draw(networks(max_vpcs))
        _add_filters(draw, st, net)
        return net

    return _filter_networks()


class Step(NamedTuple):
    """One step of a stateful scenario: a batch (``items`` at ``now``, or at ``timestamps`` when now is
    None) or, when ``change`` is set, a control-plane change applied before the next batch (and a
    recompile: a FlowTable survives it)."""

    items: list[tuple[bytes, int]]
    now: int | None
    timestamps: list[int] | None
    change: Any = None
    text: str = ""


def _flow_frame(sender: Eni, dst: ipaddress.IPv4Address, proto: int, sport: int, dport: int, flags: int,
                shape: str) -> bytes:
    """A frame from ``sender`` to ``dst``: TCP with ``flags``, UDP, ICMP type ``flags`` (identifier ``sport``),
    or protocol ``proto``; ``shape`` "whole", "fragment" (a non-first fragment) or "short" (a truncated L4)."""
    s = sender.subnet
    mac = s.gateway_mac
    if dst in s.cidr:
        for e in s.enis:
            if dst in e.ips:
                mac = e.mac
    if proto == 6:
        l4 = pk.tcp(sender.ip, dst, sport, dport, flags=flags)[20:]
    elif proto == 17:
        l4 = pk.udp(sender.ip, dst, sport, dport, b"x" * (sport % 7))[20:]
    elif proto == 1:
        body = struct.pack("!BBHHH", flags, 0, 0, sport, 1) + b"fastvpc"
        l4 = body[:2] + struct.pack("!H", pk.checksum(body)) + body[4:]
    else:
        l4 = b"\x00\x00\x08\x00payload"
    frag = 0x4000
    if shape == "fragment":
        frag = 0x2000 | 3
    elif shape == "short":
        l4 = l4[:4]
    return pk.ethernet(mac, sender.mac, pk.ETH_IPV4, pk.ipv4(sender.ip, dst, proto, l4, flags_frag=frag), pad_to=60)


_TCP_FLAGS = (0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01, 0x00)


def _change(draw: Any, st: Any, net: Network) -> tuple[Any, str]:
    """A random control-plane change between batches (as a callable on ``net``) and its description."""
    groups = [g for v in net.vpcs for g in v.security_groups]
    kind = draw(st.sampled_from(["revoke", "authorize", "regroup", "acl", "tracking"]))
    if kind == "revoke":
        rules = [r for g in groups for r in (*g.ingress, *g.egress)]
        if rules:
            r = draw(st.sampled_from(rules))
            peer = r.peer if not isinstance(r.peer, tuple) else [str(c) for c in r.peer]
            ports = r.ports if r.protocol in (6, 17) else (r.icmp if r.protocol == 1 else None)
            return (lambda _n: r.group.revoke(r.direction, r.protocol, ports, peer)), f"revoke {r.group.name} " \
                f"{r.direction} {r.describe()}"
    if kind == "authorize" and groups:
        g = draw(st.sampled_from(groups))
        proto, ports = _rule_parts(draw, st)
        direction = draw(st.sampled_from(["ingress", "egress"]))
        peer = _peers(draw, st, net, g.vpc)
        return (lambda _n: _try(g.authorize, direction, proto, ports, peer)), f"authorize {g.name} {direction} " \
            f"{proto} {ports} {getattr(peer, 'name', peer)}"
    if kind == "regroup":
        enis = [e for e in net.enis if e.vpc.security_groups]
        if enis:
            e = draw(st.sampled_from(enis))
            sets = draw(st.lists(st.sampled_from(e.vpc.security_groups), min_size=1, max_size=3, unique=True))
            return (lambda _n: setattr(e, "security_groups", sets)), f"{e.name} groups := {[g.name for g in sets]}"
    if kind == "acl" and net.subnets:
        s = draw(st.sampled_from(net.subnets))
        proto, ports = _rule_parts(draw, st)
        number = draw(st.integers(1, 32766))
        direction, action = draw(st.sampled_from(["ingress", "egress"])), draw(st.sampled_from(["allow", "deny"]))
        return (lambda _n: _try(s.network_acl.add_entry, number, direction, action, proto, ports, "0.0.0.0/0")), \
            f"{s.network_acl.name} {direction} entry {number} {action} {proto} {ports}"
    if kind == "tracking" and net.enis:
        from fastvpc.topology.filters import Tracking

        e = draw(st.sampled_from(net.enis))
        t = Tracking(**SHORT_TRACKING) if draw(st.booleans()) else Tracking()
        return (lambda _n: setattr(e, "tracking", t)), f"{e.name} tracking := {t.changes()}"
    return (lambda _n: None), "no change"


def stateful_scenarios(max_vpcs: int = 2, max_batches: int = 6) -> Any:
    """``(network, steps, capacity)`` for :func:`check_stateful`: a :func:`filter_networks` network and
    batches of flows between its ENIs (and to outside addresses and the VPC's DNS resolver), in both
    directions -- TCP handshakes, data, FIN/RST, lone SYN-ACKs; UDP requests and replies; ICMP echo
    requests and replies by identifier, errors; another protocol; a few non-first fragments and
    truncated headers -- with time advancing across every timeout class, frames sometimes timed by
    batch timestamps, rule changes between batches, and small table capacities that fill up."""
    st = _hypothesis()

    @st.composite
    def _scenarios(draw: Any) -> tuple[Network, list[Step], int]:
        net = draw(filter_networks(max_vpcs))
        enis = net.enis
        steps: list[Step] = []
        capacity = draw(st.sampled_from([1, 3, 6, 1000, 1000, 1000]))
        if not enis:
            return net, steps, capacity
        outside = [ipaddress.IPv4Address("8.8.8.8")] + [v.cidr.network_address + 2 for v in net.vpcs]
        flows = []
        for _ in range(draw(st.integers(1, 5))):
            a = draw(st.sampled_from(enis))
            b = draw(st.one_of(st.sampled_from(enis), st.sampled_from(enis), st.sampled_from(outside)))
            proto = draw(st.sampled_from([6, 6, 17, 17, 1, 47]))
            flows.append((a, b, proto, draw(st.sampled_from(FILTER_PORTS)), draw(st.sampled_from(FILTER_PORTS))))
        t = 0
        for _ in range(draw(st.integers(1, max_batches))):
            if steps and draw(st.integers(0, 3)) == 0:
                fn, text = _change(draw, st, net)
                steps.append(Step([], None, None, fn, text))
            items: list[tuple[bytes, int]] = []
            for _ in range(draw(st.integers(1, 12))):
                a, b, proto, sport, dport = draw(st.sampled_from(flows))
                reverse = isinstance(b, Eni) and draw(st.booleans())
                sender, dst = (b, a.ip) if reverse else (a, b.ip if isinstance(b, Eni) else b)
                sp, dp_ = (dport, sport) if reverse else (sport, dport)
                if proto == 6:
                    flags = draw(st.sampled_from(_TCP_FLAGS))
                elif proto == 1:
                    flags = draw(st.sampled_from([0, 0, 8, 8, 3, 13, 14]))
                    sp = sport                      # the identifier, both ways
                else:
                    flags = 0
                shape = draw(st.sampled_from(["whole"] * 12 + ["fragment", "short"]))
                assert isinstance(sender, Eni)
                items.append((_flow_frame(sender, dst, proto, sp, dp_, flags, shape), sender.port))
            t += draw(st.sampled_from(_DT))
            if draw(st.booleans()):
                steps.append(Step(items, t, None))
            else:
                stamps = []
                for _ in items:
                    t += draw(st.sampled_from([0, 0, 1, _NS]))
                    stamps.append(t)
                steps.append(Step(items, None, stamps))
        return net, steps, capacity

    return _scenarios()


def check_stateful(net: Network, steps: Sequence[Step], capacity: int = 1_000_000, arp_mode: str = "target") -> None:
    """Run a stateful scenario on both engines (a fresh :class:`States` pair of ``capacity``): each batch
    through :func:`assert_same_verdicts` with the states; each change applied to ``net`` and the kernel
    recompiled (the tables carry over, as a FlowTable survives a recompile)."""
    states = fresh_states(capacity)
    dp = compile_network(net, arp_mode)
    ref = ReferenceForwarder(net, arp_mode=arp_mode)
    for k, step in enumerate(steps):
        if step.change is not None:
            step.change(net)
            dp = compile_network(net, arp_mode)
            continue
        batch = _batch(step.items)
        if step.timestamps is not None:
            batch = FrameBatch(batch.data, batch.offsets, batch.port, timestamp=step.timestamps)
        try:
            assert_same_verdicts(dp, ref, batch, state=states, now=step.now)
        except AssertionError as exc:
            done = "; ".join(s.text for s in steps[:k] if s.change is not None)
            raise AssertionError(f"step {k} (time {step.now if step.now is not None else step.timestamps}; changes "
                                 f"so far: {done or 'none'}):\n{exc}") from None


# =========================================================================== the edge (docs/edge.md)

#: public addresses the edge strategies hand out (documentation ranges count as public, DESIGN §6)
EDGE_PUBLIC_IPS = tuple(ipaddress.IPv4Address(f"203.0.113.{i}") for i in range(1, 40)) + \
    tuple(ipaddress.IPv4Address(f"198.51.100.{i}") for i in range(1, 10))


def _add_edge(draw: Any, st: Any, net: Network) -> None:
    """Elastic IPs on random ENIs and NAT gateways (some allocated and left unassociated), gateway
    route tables on internet and VPN gateways (local, an ENI, a GWLB endpoint, a blackhole)."""
    from fastvpc.topology import InternetGateway, NatGateway, VpnGateway

    free = list(EDGE_PUBLIC_IPS)
    for eni in list(net.enis):
        if free and draw(st.integers(0, 2)):
            eip = _try(net.allocate_address, free.pop(0))
            if eip is not None:
                _try(eni.associate_address, eip)
    for vpc in net.vpcs:
        for g in vpc.gateways:
            if g.kind == "nat" and free and draw(st.booleans()):
                eip = _try(net.allocate_address, free.pop(0))
                if eip is not None and isinstance(g, NatGateway):
                    _try(g.associate_address, eip)
    if free and draw(st.booleans()):
        _try(net.allocate_address, free.pop(0))
    for vpc in net.vpcs:
        gws = [g for g in vpc.gateways if isinstance(g, (InternetGateway, VpnGateway))]
        for g in gws:
            if not draw(st.integers(0, 2)):
                continue
            rt = vpc.add_route_table()
            if _try(rt.associate_gateway, g) is None and not rt.is_gateway_table:
                continue
            dests = [*vpc.cidrs, *(s.cidr for s in vpc.subnets)]
            for _ in range(draw(st.integers(0, 3))):
                dest = draw(st.sampled_from(dests))
                tgt = draw(st.sampled_from([*vpc.enis, BLACKHOLE, *[e for e in vpc.gateways if e.kind == "vpce"]]
                                           or [BLACKHOLE]))
                if _try(rt.add_route, dest, tgt) is None:
                    _try(rt.replace_route, dest, tgt)


def edge_networks(max_vpcs: int = 2) -> Any:
    """:func:`networks` with the edge: Elastic IPs on ENIs and NAT gateways, gateway route tables."""
    st = _hypothesis()

    @st.composite
    def _edge_networks(draw: Any) -> Network:
        net = draw(networks(max_vpcs))
        _add_edge(draw, st, net)
        return net

    return _edge_networks()


def edge_frames(net: Network) -> Any:
    """One ``(frame_bytes, port)`` entering on a gateway's port (internet, VPN, transit gateway): ARP
    requests, probes and replies, TCP / UDP / ICMP to public IPs of the network, VPC addresses and
    outside addresses, mostly to the gateway's MAC; fragments and UDP checksums of 0 sometimes; or,
    one in three, :func:`frames` (ENI traffic, some of it out through an internet gateway)."""
    st = _hypothesis()
    IP = ipaddress.IPv4Address
    gws = [t for t in net.targets if t.kind in ("igw", "vgw", "tgw")]

    @st.composite
    def _outside(draw: Any) -> tuple[bytes, int]:
        gw = draw(st.sampled_from(gws))
        src_mac = "02:99:00:00:00:01"
        ips = [a.public_ip for a in net.addresses] + interesting_ips(net)
        dst_ip = draw(st.one_of(st.sampled_from(ips), st.integers(0, 2**32 - 1).map(IP)))
        src_ip = draw(st.sampled_from([IP("8.8.8.8"), IP("192.0.2.1"), IP("10.0.1.10"), *ips[:3]]))
        dst_mac = gw.mac if draw(st.integers(0, 7)) else draw(st.sampled_from(_macs(net)))
        kind = draw(st.sampled_from(["arp", "icmp", "udp", "tcp", "tcp", "raw"]))
        if kind == "arp":
            op = draw(st.sampled_from([1, 1, 1, 2]))
            spa = draw(st.sampled_from([src_ip, src_ip, IP("0.0.0.0"), dst_ip]))
            body = (struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + pk.mac_bytes(src_mac) + spa.packed
                    + b"\x00" * 6 + dst_ip.packed)
            return pk.ethernet(pk.BROADCAST_MAC, src_mac, pk.ETH_ARP, body), gw.port
        payload = draw(st.binary(max_size=24))
        flags_frag = draw(st.sampled_from([0x4000, 0x4000, 0x4000, 0x2000, 0x0003]))
        if kind == "icmp":
            body = struct.pack("!BBHHH", draw(st.sampled_from([0, 8, 3])), 0, 0, draw(st.integers(0, 65535)),
                               1) + payload
            l4, proto = body[:2] + struct.pack("!H", pk.checksum(body)) + body[4:], 1
        elif kind == "udp":
            l4, proto = pk.udp(src_ip, dst_ip, draw(st.sampled_from(FILTER_PORTS)),
                               draw(st.sampled_from(FILTER_PORTS)), payload)[20:], 17
            if draw(st.integers(0, 3)) == 0:
                l4 = l4[:6] + b"\x00\x00" + l4[8:]            # no UDP checksum sent (RFC 768)
        elif kind == "tcp":
            l4, proto = pk.tcp(src_ip, dst_ip, draw(st.sampled_from(FILTER_PORTS)),
                               draw(st.sampled_from(FILTER_PORTS)), payload)[20:], 6
        else:
            l4, proto = payload, draw(st.sampled_from([47, 50, 132]))
        packet = pk.ipv4(src_ip, dst_ip, proto, l4, flags_frag=flags_frag)
        return pk.ethernet(dst_mac, src_mac, pk.ETH_IPV4, packet), gw.port

    if not gws:
        return frames(net)
    return st.one_of(_outside(), _outside(), frames(net))


def edge_scenarios(max_vpcs: int = 2) -> Any:
    """``(network, [(frame, port), ...])`` with the edge (:func:`edge_networks`, :func:`edge_frames`)."""
    st = _hypothesis()

    @st.composite
    def _scenarios(draw: Any) -> tuple[Network, list[tuple[bytes, int]]]:
        net = draw(edge_networks(max_vpcs))
        return net, draw(st.lists(edge_frames(net), min_size=1, max_size=24))

    return _scenarios()


def _add_nat(draw: Any, st: Any, net: Network) -> None:
    """Per VPC with two subnets or more: an internet gateway (0.0.0.0/0 in the main table, unless one is
    there), a NAT gateway in one subnet (public with an Elastic IP, public without one, or private) and a
    route table sending 0.0.0.0/0 of the other subnets to it (sometimes its own subnet too)."""
    from fastvpc.topology import InternetGateway

    spare = [ip for ip in EDGE_PUBLIC_IPS if all(a.public_ip != ip for a in net.addresses)]
    for vpc in net.vpcs:
        if len(vpc.subnets) < 2:
            continue
        if not any(isinstance(g, InternetGateway) for g in vpc.gateways):
            igw = _try(vpc.add_internet_gateway)
            if igw is not None:
                _try(vpc.main_route_table.add_route, "0.0.0.0/0", igw)
        home = draw(st.sampled_from(vpc.subnets))
        kind = draw(st.sampled_from(["eip", "eip", "eip", "none", "private"]))
        if kind == "private":
            nat = _try(home.add_nat_gateway, connectivity="private")
        elif kind == "eip" and spare:
            nat = _try(home.add_nat_gateway, address=_try(net.allocate_address, spare.pop()))
        else:
            nat = _try(home.add_nat_gateway)
        if nat is None:
            continue
        rt = vpc.add_route_table()
        if _try(rt.add_route, "0.0.0.0/0", nat) is None:
            continue
        for s in vpc.subnets:
            if s is not home or not draw(st.integers(0, 5)):
                _try(s.associate, rt)


def nat_frames(net: Network) -> Any:
    """One ``(frame_bytes, port)`` from an ENI to an outside address through whatever its table says (NAT
    gateways mostly): TCP SYN / ACK / RST / FIN, UDP (some with checksum 0, some fragments), ICMP echo and
    errors, another protocol; few remote addresses and ports, so that bindings collide and limits bite; or,
    one in four, :func:`edge_frames`."""
    st = _hypothesis()
    IP = ipaddress.IPv4Address
    enis = list(net.enis)
    remotes = [IP("8.8.8.8"), IP("8.8.4.4"), IP("192.0.2.9")]

    @st.composite
    def _out(draw: Any) -> tuple[bytes, int]:
        e = draw(st.sampled_from(enis))
        dst = draw(st.sampled_from(remotes))
        sport = draw(st.sampled_from([1024, 1025, 7, 40000, 65535, 50000]))
        dport = draw(st.sampled_from([53, 443, 80]))
        kind = draw(st.sampled_from(["syn", "ack", "rst", "fin", "udp", "udp", "icmp", "icmperr", "gre", "frag"]))
        if kind in ("syn", "ack", "rst", "fin"):
            flags = {"syn": 0x02, "ack": 0x10, "rst": 0x04, "fin": 0x11}[kind]
            packet = pk.tcp(e.ip, dst, sport, dport, b"d" * draw(st.integers(0, 3)), flags=flags,
                            seq=draw(st.integers(0, 2**32 - 1)), ack=draw(st.integers(0, 2**32 - 1)))
        elif kind == "udp":
            packet = pk.udp(e.ip, dst, sport, dport, b"u")
            if draw(st.booleans()):
                packet = packet[:26] + b"\x00\x00" + packet[28:]
        elif kind in ("icmp", "icmperr"):
            packet = pk.icmp_echo(e.ip, dst, ident=sport, seq=1, payload=b"p")
            if kind == "icmperr":
                body = b"\x03\x01\x00\x00" + packet[24:]
                packet = pk.ipv4(e.ip, dst, 1, body[:2] + struct.pack("!H", pk.checksum(body)) + body[4:])
        elif kind == "gre":
            packet = pk.ipv4(e.ip, dst, 47, b"g" * 8)
        else:
            first = draw(st.booleans())
            l4 = pk.udp(e.ip, dst, sport, dport, b"f" * 8)[20:] if first else b"f" * 16
            packet = pk.ipv4(e.ip, dst, 17, l4, ident=sport, flags_frag=0x2000 if first else 0x0002)
        return pk.ethernet(e.subnet.gateway_mac, e.mac, pk.ETH_IPV4, packet), e.port

    if not enis:
        return edge_frames(net)
    return st.one_of(_out(), _out(), _out(), edge_frames(net))


def nat_scenarios(max_vpcs: int = 2) -> Any:
    """``(network, [(frame, port), ...])`` with NAT gateways (:func:`edge_networks` plus :func:`_add_nat`,
    :func:`nat_frames`)."""
    st = _hypothesis()

    @st.composite
    def _scenarios(draw: Any) -> tuple[Network, list[tuple[bytes, int]]]:
        net = draw(edge_networks(max_vpcs))
        _add_nat(draw, st, net)
        return net, draw(st.lists(nat_frames(net), min_size=1, max_size=24))

    return _scenarios()
