"""Embed the VPC data plane in discrete-event simulators: ns.py and SimPy (DESIGN.md §8).

* :class:`NsPySwitch`: an ns.py element (``put(packet)``, ``outs`` keyed by port), packets carry
  Ethernet frames in ``payload``;
* :class:`SimPySwitch`: ports with ``send(frame)`` events and ``inbox`` stores, for SimPy processes;
* :class:`SimHost`: the frames a VM (or an outside host behind a gateway) sends, MACs resolved from
  the topology, so a simulated host needs no ARP logic.

Both switches push every frame put at one simulated instant through one ``Dataplane.process()``
call, with ``now`` = the simulator's clock in ns, through a zero-delay event that SimPy runs after
every other event of the instant (timing is unchanged; what the results make the simulation put at
that instant is a later call at the same instant: :mod:`fastvpc.sim._core`);
one :class:`fastvpc.FlowTable` per switch when the data plane tracks connections; verdict counters
(``counts``, ``by_action``, ``by_reason``); an optional flow log (``log=``).  ``ns.py`` and ``simpy``
come with the ``sim`` extra: ``pip install 'fastvpc[sim]'``.
"""

from __future__ import annotations

from fastvpc.sim._core import SimError, SwitchCore, Verdict, process_keywords
from fastvpc.sim.hosts import SimHost
from fastvpc.sim.nspy import NsPySwitch
from fastvpc.sim.simpy_adapter import SimPyPort, SimPySwitch

__all__ = ["NsPySwitch", "SimError", "SimHost", "SimPyPort", "SimPySwitch", "SwitchCore", "Verdict",
           "process_keywords"]
