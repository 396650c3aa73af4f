"""An ns.py element for the VPC data plane: ``NsPySwitch``.

ns.py (``pip install ns.py``) elements are plain objects with ``put(packet)``; forwarding elements
keep their downstream elements in ``out`` / ``outs``.  ``NsPySwitch`` is one: packets carry the
bytes of an Ethernet frame in ``packet.payload`` (ns.py's field for real bytes); ``outs`` maps a
port number (``Eni.port``, ``InternetGateway.port``...) to the element that receives what leaves on
that port.  A DELIVER or FORWARD leaves on ``outs[egress]``; a REPLY (ARP reply, echo reply from
the subnet router) goes back to ``outs[ingress]``, the sender; a DROP goes to ``drop`` (an optional
element, a ``PacketSink`` say).  Every packet leaves with ``payload`` = the processed frame, ``size``
its length, and ``packet.vpc_verdict`` = a :class:`fastvpc.sim.Verdict`.

The ingress port of a packet is the element it was put into: connect a host's ``out`` to
``switch.ingress(port)``; ``switch.put(packet)`` itself reads the port with ``port_of(packet)``
(default: ``packet.src`` when it is a port number, which :meth:`fastvpc.sim.SimHost.packet` sets).

Frames put at one simulated instant go through one ``process()`` call, after every other event of
the instant (an element or process woken later in the instant still joins the batch); what the
call's outputs make the elements put back into the switch at once is a later call at the same
instant (see :mod:`fastvpc.sim._core`); the switch is not a timed element (it adds no delay), as
ns.py's demux elements are not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastvpc.sim._core import _ACTIONS, _REASONS, SimError, SwitchCore
from fastvpc.sim._core import Verdict as _Verdict
from fastvpc.verdicts import Action

__all__ = ["NsPySwitch"]

_DROP = int(Action.DROP)
_REPLY = int(Action.REPLY)


def _src_port(packet: Any) -> Any:
    return packet.src


class _Ingress:
    """``switch.ingress(port)``: an element whose ``put(packet)`` enters the switch on ``port``."""

    __slots__ = ("switch", "port")

    def __init__(self, switch: NsPySwitch, port: int) -> None:
        self.switch = switch
        self.port = port

    def put(self, packet: Any) -> None:
        sw = self.switch
        payload = packet.payload if sw._frame_of is None else None
        sw.submit(payload if type(payload) is bytes else sw.frame_of(packet), self.port, packet)

    def __repr__(self) -> str:
        return f"<ingress of port {self.port}>"


class NsPySwitch(SwitchCore):
    """A VPC hypervisor switch as an ns.py element (see the module doc).

    ``NsPySwitch(env, dp, outs={port: element}, drop=None, port_of=None, frame_of=None, **core)``;
    ``core`` are :class:`fastvpc.sim.SwitchCore`'s keywords (``stateful``, ``flow_table``,
    ``capacity``, ``log``, ``ns_per_unit``, ``batching``).  ``frame_of(packet)`` gives the frame bytes
    of a packet (default: ``packet.payload``): pass one to build frames from ns.py's own fields.
    ``on_verdict(packet, ingress_port, verdict)`` is called for every frame before it leaves (the
    packet's payload is then already the processed frame).
    """

    def __init__(self, env: Any, dp: Any, outs: Mapping[int, Any] | None = None, *, drop: Any = None,
                 port_of: Callable[[Any], Any] | None = None, frame_of: Callable[[Any], Any] | None = None,
                 on_verdict: Callable[[Any, int, Any], None] | None = None, **core: Any) -> None:
        super().__init__(env, dp, **core)
        self.outs: dict[int, Any] = {}
        for p, element in (outs or {}).items():
            self.connect(p, element)
        self.drop = drop
        self._port_of = port_of or _src_port
        self._frame_of = frame_of
        self._ingress: dict[int, _Ingress] = {}
        #: called as ``on_verdict(packet, ingress_port, verdict)`` for every frame, before it leaves
        self.on_verdict = on_verdict

    # ------------------------------------------------------------------ wiring
    def connect(self, port: int, element: Any) -> None:
        """``outs[port] = element``, refusing a port the switch does not have or an element without put()."""
        p = self.check_port(port, "connect: an element")
        if not callable(getattr(element, "put", None)):
            raise SimError(f"connect: the element for port {p} has no put(packet) method "
                           f"({type(element).__name__})", value=element)
        self.outs[p] = element

    def ingress(self, port: int) -> _Ingress:
        """The element a sender on ``port`` puts its packets into (``host.out = switch.ingress(p)``)."""
        p = self.check_port(port, "ingress: packets")
        ing = self._ingress.get(p)
        if ing is None:
            ing = self._ingress[p] = _Ingress(self, p)
        return ing

    # ------------------------------------------------------------------ input
    def frame_of(self, packet: Any) -> bytes:
        if self._frame_of is not None:
            return self.frame_bytes(self._frame_of(packet), f"frame_of(packet {getattr(packet, 'packet_id', '?')})")
        payload = getattr(packet, "payload", None)
        if type(payload) is bytes:
            return payload
        return self.frame_bytes(payload, f"packet {getattr(packet, 'packet_id', '?')}'s payload")

    def put(self, packet: Any) -> None:
        """Receive ``packet`` on the port ``port_of(packet)`` says (default ``packet.src``)."""
        port = self._port_of(packet)
        if type(port) is not int or port not in self.ports:   # the fast test first; the message from check_port
            port = self.check_port(port, f"packet {getattr(packet, 'packet_id', '?')}")
        payload = getattr(packet, "payload", None) if self._frame_of is None else None
        self.submit(payload if type(payload) is bytes else self.frame_of(packet), port, packet)

    # ------------------------------------------------------------------ output
    def emit(self, packet: Any, ingress: int, action: int, reason: int, egress: int, frame: bytes) -> None:
        packet.payload = frame
        packet.size = len(frame)
        v = packet.vpc_verdict = _Verdict(_ACTIONS[action], _REASONS[reason], egress, frame)
        if self.on_verdict is not None:
            self.on_verdict(packet, ingress, v)
        if action == _DROP:
            if self.drop is not None:
                self.drop.put(packet)
            return
        element = self.outs.get(ingress if action == _REPLY else egress)
        if element is None:
            self.unconnected[egress] += 1
            return
        element.put(packet)

    def __repr__(self) -> str:
        return f"<NsPySwitch {len(self.ports)} ports, {len(self.outs)} connected, {self.frames} frames>"
