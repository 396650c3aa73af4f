"""A SimPy process adapter: ``SimPySwitch``.

For a simulation written as SimPy processes (no ns.py): every port of the switch is a
:class:`SimPyPort` with ``send(frame)``, an event that fires — at the same simulated instant — with
the :class:`fastvpc.sim.Verdict`, and ``inbox``, a ``simpy.Store`` of the frames that leave the
switch on that port (``(frame, ingress_port)`` pairs: delivered or forwarded to it, or a REPLY to
what it sent).  A host process is then::

    def host(env, port):
        verdict = yield port.send(frame)            # same instant: the switch batches the instant
        frame, came_from = yield port.inbox.get()   # what the switch delivers to this port

Frames sent at one instant go through one ``process()`` call, ``now`` = ``env.now`` in ns: also
those sent by a process woken later in the instant (after a ``timeout(0)``, a ``Store`` hand-off);
the call comes after every other event of the instant.  A frame sent at that instant because of the
call's results (a host answering what its inbox got, or sending again on its verdict) is in a later
call at the same instant (:mod:`fastvpc.sim._core`).
"""

from __future__ import annotations

from typing import Any

from fastvpc.sim._core import SwitchCore
from fastvpc.verdicts import Action

__all__ = ["SimPyPort", "SimPySwitch"]

_DROP = int(Action.DROP)
_REPLY = int(Action.REPLY)


class SimPyPort:
    """One port of a :class:`SimPySwitch`: ``send(frame)`` and ``inbox``."""

    def __init__(self, switch: SimPySwitch, port: int) -> None:
        import simpy

        self.switch = switch
        self.port = port
        self.inbox = simpy.Store(switch.env)

    def send(self, frame: Any) -> Any:
        """An event that succeeds, at this instant, with the Verdict of ``frame`` entering here."""
        sw = self.switch
        ev = sw.env.event()
        sw.submit(sw.frame_bytes(frame, f"frame sent on port {self.port}"), self.port, ev)
        return ev

    def __repr__(self) -> str:
        return f"<SimPyPort {self.port}: {len(self.inbox.items)} frames waiting>"


class SimPySwitch(SwitchCore):
    """A VPC hypervisor switch for SimPy processes (see the module doc); keywords as
    :class:`fastvpc.sim.SwitchCore`.  ``port(p)`` gives the port ``p`` (made once, refused when the
    switch has no port ``p``); ``send(port, frame)`` is ``port(p).send(frame)``."""

    def __init__(self, env: Any, dp: Any, **core: Any) -> None:
        super().__init__(env, dp, **core)
        self._ports_made: dict[int, SimPyPort] = {}

    def port(self, port: int) -> SimPyPort:
        p = self.check_port(port, "port(): frames")
        sp = self._ports_made.get(p)
        if sp is None:
            sp = self._ports_made[p] = SimPyPort(self, p)
        return sp

    def send(self, port: int, frame: Any) -> Any:
        return self.port(port).send(frame)

    def emit(self, event: Any, ingress: int, action: int, reason: int, egress: int, frame: bytes) -> None:
        if action != _DROP:
            dest = ingress if action == _REPLY else egress
            sp = self._ports_made.get(dest)
            if sp is None:
                self.unconnected[dest] += 1
            else:
                sp.inbox.put((frame, ingress))
        event.succeed(self.verdict(action, reason, egress, frame))

    def __repr__(self) -> str:
        return f"<SimPySwitch {len(self.ports)} ports, {self.frames} frames>"
