"""Simulated hosts: the frames a VM (or a host outside the VPC) would send, MACs already resolved.

A VM sends an IP packet in a frame to the MAC its ARP cache gives for the next hop: the peer's MAC
when the destination is in its own subnet, the subnet router's (the gateway MAC) otherwise.  In a
VPC every ARP answer comes from the hypervisor and is fixed by the topology (DESIGN.md §1), so a
:class:`SimHost` reads those MACs from the topology and never needs an ARP exchange: its frames are
the ones a VM sends once its ARP cache is warm.  ``host.arp(ip)`` builds the request itself for
simulations that want to see the switch answer it.

An *outside* host (``SimHost.outside(gateway, ip)``) sits behind a gateway's port (an internet host
behind the internet gateway, an on-premises host behind the VPN gateway): its frames enter on the
gateway's port, addressed to the gateway's MAC.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from fastvpc import packets as pk
from fastvpc.sim._core import SimError

__all__ = ["SimHost"]

#: the MAC of outside hosts that are not given one (locally administered)
OUTSIDE_MAC = "02:00:5e:00:00:01"
#: a gateway's MAC when the installed topology gives gateways none (before the edge model)
_NO_GATEWAY_MAC = "02:00:5e:ff:ff:ff"


class SimHost:
    """The sending side of a VM on ENI ``eni`` (an :class:`fastvpc.Eni`, or its name with ``network=``).

    ``port``, ``ip``, ``mac``; ``frame(packet_bytes)`` wraps an IPv4 packet in the frame the VM would
    send (next-hop MAC from the topology); ``udp``, ``tcp``, ``ping`` build the packet and the frame;
    ``packet(env, frame)`` makes an ns.py ``Packet`` carrying it (``src`` = this host's port).
    """

    def __init__(self, eni: Any, network: Any = None) -> None:
        if isinstance(eni, str):
            if network is None:
                raise SimError(f"SimHost({eni!r}): a name needs network= to find the ENI", value=eni)
            eni = network.find(eni)
        if getattr(eni, "kind", None) != "eni":
            raise SimError(f"SimHost wants an ENI, not {type(eni).__name__} {getattr(eni, 'name', eni)!r}; "
                           "a host behind a gateway is SimHost.outside(gateway, ip)", value=eni)
        self.eni = eni
        self.name: str = eni.name
        self.port: int = int(eni.port)
        self.ip = ipaddress.IPv4Address(eni.ip)
        self.mac: str = eni.mac
        subnet = eni.subnet
        self._subnet = subnet.cidr
        self._gateway_mac: str = subnet.gateway_mac
        # same-subnet neighbours answer ARP with their own MAC; everything else is the router's
        self._neighbours = {ip: e.mac for e in subnet.enis for ip in e.ips}
        self._outside = False
        self._packet_ids = 0

    @classmethod
    def outside(cls, gateway: Any, ip: Any, mac: str = OUTSIDE_MAC, name: str | None = None) -> SimHost:
        """A host behind ``gateway`` (an InternetGateway, VpnGateway...): its frames enter on the
        gateway's port and are addressed to the gateway's MAC."""
        if getattr(gateway, "kind", None) in (None, "eni") or not hasattr(gateway, "port"):
            raise SimError(f"SimHost.outside wants a gateway, not {type(gateway).__name__} "
                           f"{getattr(gateway, 'name', gateway)!r}", value=gateway)
        self = object.__new__(cls)
        self.eni = None
        self.name = name or f"{gateway.name}-host-{ip}"
        self.port = int(gateway.port)
        self.ip = ipaddress.IPv4Address(ip)
        pk.mac_bytes(mac)   # a bad MAC is refused here, naming it
        self.mac = mac
        self._subnet = ipaddress.IPv4Network(f"{self.ip}/32")
        self._gateway_mac = getattr(gateway, "mac", None) or _NO_GATEWAY_MAC
        self._neighbours = {}
        self._outside = True
        self._packet_ids = 0
        return self

    # ------------------------------------------------------------------ frames
    def next_hop_mac(self, dst: Any) -> str:
        """The MAC this host's ARP cache holds for ``dst``'s next hop."""
        d = ipaddress.IPv4Address(dst)
        if not self._outside and d in self._subnet:
            mac = self._neighbours.get(d)
            if mac is not None:
                return mac
        return self._gateway_mac

    def frame(self, ip_packet: bytes, *, pad_to: int = 60) -> bytes:
        """``ip_packet`` (an IPv4 packet) in the Ethernet frame this host would send."""
        if len(ip_packet) < 20 or ip_packet[0] >> 4 != 4:
            raise SimError(f"{self.name}: frame() wants an IPv4 packet", value=ip_packet[:20])
        dst = ipaddress.IPv4Address(ip_packet[16:20])
        return pk.ethernet(self.next_hop_mac(dst), self.mac, pk.ETH_IPV4, ip_packet, pad_to=pad_to)

    def udp(self, dst: Any, sport: int, dport: int, payload: bytes = b"", *, src: Any = None) -> bytes:
        return self.frame(pk.udp(src or self.ip, dst, sport, dport, payload))

    def tcp(self, dst: Any, sport: int, dport: int, payload: bytes = b"", *, flags: int = 0x02, seq: int = 1,
            ack: int = 0, src: Any = None) -> bytes:
        return self.frame(pk.tcp(src or self.ip, dst, sport, dport, payload, flags=flags, seq=seq, ack=ack))

    def ping(self, dst: Any, *, ident: int = 1, seq: int = 1, reply: bool = False, src: Any = None) -> bytes:
        return self.frame(pk.icmp_echo(src or self.ip, dst, ident=ident, seq=seq, request=not reply))

    def arp(self, target: Any) -> bytes:
        """Who-has ``target``: the request the VM sends with a cold cache (the switch answers it)."""
        return pk.arp_request(self.mac, self.ip, target)

    # ------------------------------------------------------------------ ns.py
    def packet(self, env: Any, frame: bytes, *, flow_id: Any = 0, dst: Any = None) -> Any:
        """An ns.py ``Packet`` carrying ``frame`` (``payload``), sent now from this host's port."""
        import importlib

        Packet = importlib.import_module("ns.packet.packet").Packet   # ns.py: the sim extra (no type stubs)
        self._packet_ids += 1
        return Packet(env.now, len(frame), self._packet_ids, src=self.port, dst=dst, flow_id=flow_id,
                      payload=frame)

    def __repr__(self) -> str:
        where = "outside" if self._outside else "eni"
        return f"<SimHost {self.name} ({where}) port {self.port} {self.ip} {self.mac}>"
