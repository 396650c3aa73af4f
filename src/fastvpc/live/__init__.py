"""Live mode: real Linux interfaces attached to the data plane's ports.

``Switch(dataplane, {eni: "ifname", igw: "ifname2", ...})`` opens one AF_PACKET socket per
attached interface (bound to that interface only, frames the host sends itself ignored),
reads frames in batches (``recvmmsg``, compiled, without the GIL), pushes each batch
through ``dataplane.process`` and sends the results back out:

* ``DELIVER`` out of the interface attached to the receiving ENI (``egress``),
* ``REPLY`` (ARP and echo replies) out of the interface the request came in on,
* ``FORWARD`` out of the interface attached to the route target, if any,
* anything without an attached egress interface is counted (``tx_unattached``).

``dataplane`` is anything with a ``process(batch)`` method returning an object with
``action``, ``reason``, ``egress`` arrays and ``frames`` (a :class:`fastvpc.FrameBatch`),
i.e. a compiled ``Dataplane`` or the pure-Python reference forwarder.

Opening sockets needs ``CAP_NET_RAW`` in the network namespace of the interfaces; without
it :class:`LivePermissionError` says so.  The namespace harness used by the tests and the
benchmark is :mod:`fastvpc.live.netns`.

Inside: :mod:`~fastvpc.live.switch` (``Switch``), :mod:`~fastvpc.live.sockets` (the socket
openers), and the compiled I/O engines ``_mmsg`` (``BatchIO``: ``recvmmsg``/``sendmmsg``) and
``_rings`` (``RxRing``/``TxRing``: ``TPACKET_V3``/``TPACKET_V2`` mmap rings) over the Linux
declarations of ``_linux.pxd``; the errors live in :mod:`fastvpc.errors`.
"""

from __future__ import annotations

from fastvpc.errors import LiveError, LivePermissionError
from fastvpc.live._mmsg import STATS_LEN as STATS_LEN
from fastvpc.live._mmsg import BatchIO as BatchIO
from fastvpc.live._rings import RxRing as RxRing
from fastvpc.live._rings import TxRing as TxRing
from fastvpc.live.sockets import ETH_P_ALL as ETH_P_ALL
from fastvpc.live.sockets import PACKET_IGNORE_OUTGOING as PACKET_IGNORE_OUTGOING
from fastvpc.live.sockets import PACKET_QDISC_BYPASS as PACKET_QDISC_BYPASS
from fastvpc.live.sockets import SOL_PACKET as SOL_PACKET
from fastvpc.live.sockets import open_packet_socket, open_tx_socket
from fastvpc.live.switch import Switch

__all__ = ["LiveError", "LivePermissionError", "Switch", "open_packet_socket", "open_tx_socket"]
