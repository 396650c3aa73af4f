"""``fastvpc show`` lists each ENI's connection-tracking timeouts that differ from AWS's defaults."""

from __future__ import annotations

import fastvpc as fv
from fastvpc.cli.show import render


def test_show_names_tuned_tracking_timeouts() -> None:
    net = fv.Network()
    s = net.add_vpc("10.0.0.0/16", name="v").add_subnet("10.0.1.0/24", name="s")
    s.add_eni("10.0.1.10", name="a", tracking=fv.Tracking(udp=60, tcp_established=350))
    s.add_eni("10.0.1.20", name="b")
    text = render(net)
    line = next(x for x in text.splitlines() if "connection tracking" in x)
    assert "a tcp_established=350, udp=60" in line and " b " not in line
    net.find("a").tracking = None
    assert "connection tracking" not in render(net)
