"""Dataplane.process() refuses a bad argument with a typed error naming it, before any frame is touched."""

from __future__ import annotations

import numpy as np
import pytest

import fastvpc as fv
from fastvpc import packets as P


def _batch(net):
    w1, w2 = net.find("web1"), net.find("web2")
    frame = P.ethernet(w2.mac, w1.mac, 0x0800, P.udp(str(w1.ip), str(w2.ip), 4000, 7))
    return fv.FrameBatch.from_frames([frame], port=[w1.port]), frame


@pytest.mark.parametrize("copy", ["yes", None, 1, 0.0, [True]])
def test_copy_must_be_a_bool(seed_net, seed_dp, copy):
    batch, frame = _batch(seed_net)
    with pytest.raises(TypeError, match="copy must be True or False") as info:
        seed_dp.process(batch, copy=copy)
    assert repr(copy) in str(info.value)
    assert batch.frame(0) == frame          # refused before anything was rewritten


@pytest.mark.parametrize("copy", [True, False, np.bool_(True)])
def test_copy_takes_python_and_numpy_bools(seed_net, seed_dp, copy):
    batch, frame = _batch(seed_net)
    res = seed_dp.process(batch, copy=copy)
    assert res.action.tolist() == [fv.Action.DELIVER]
    assert (res.frames is batch) == (not copy)
