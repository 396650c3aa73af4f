"""A compiled snapshot stays safe and unchanged whatever happens to the arrays around it.

Regressions for two memory-safety holes found in review: offsets changed after a FrameBatch
was built (the kernels read frame spans from them), and a snapshot's LPM tables replaced
by hand (the kernel's raw view pointed into arrays that replace() could free).
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

import fastvpc as fv
from fastvpc import packets as pk


@pytest.fixture()
def seed():
    net = fv.examples.seed_vpc()
    w1, web = net.find("web1"), net.find("web")
    frames = [pk.ethernet(web.gateway_mac, w1.mac, pk.ETH_IPV4, pk.tcp(w1.ip, "8.8.8.8", 1, 443)),
              pk.ethernet(web.gateway_mac, w1.mac, pk.ETH_IPV4, pk.icmp_echo(w1.ip, "10.0.2.10"))]
    return net, fv.FrameBatch.from_frames(frames * 32, port=w1.port)


@pytest.mark.parametrize("bad", [-(1 << 40), 1 << 40, -1])
@pytest.mark.parametrize("where", [0, 1, -1])
def test_offsets_changed_after_construction_raise_instead_of_reading_wild_memory(seed, bad, where):
    net, batch = seed
    dp = net.compile()
    batch.offsets[where] = bad  # the batch wraps this array: it can change after the checks in FrameBatch()
    for call in (lambda: dp.process(batch), lambda: fv.classify(batch)):
        with pytest.raises(fv.FrameBatchError, match=r"offsets\["):
            call()


def test_a_snapshots_lpm_cannot_be_replaced_in_place(seed):
    net, batch = seed
    dp = net.compile()
    before = dp.process(batch, copy=True)
    with pytest.raises(fv.LpmError, match="immutable snapshot"):
        dp.lpm.replace(1, np.array([0], np.uint32), np.array([0], np.uint8), np.array([7], np.uint32))
    # modified copies are still possible, and leave the snapshot alone
    copies = [dp.lpm.replaced(1, np.array([0], np.uint32), np.array([0], np.uint8), np.array([i], np.uint32))
              for i in range(300)]
    gc.collect()
    assert int(copies[-1].lookup(np.array([1]), np.array([0x08080808], np.uint32))[0]) == 299
    after = dp.process(batch, copy=True)
    for name in ("action", "reason", "egress", "route"):
        assert np.array_equal(getattr(before, name), getattr(after, name)), name
    assert after.frames == before.frames
    again = net.compile().process(batch, copy=True)  # the next compile comes from the topology
    assert np.array_equal(again.route, before.route) and np.array_equal(again.action, before.action)


def test_the_kernel_keeps_the_lpm_arrays_it_reads_alive(seed):
    """Even a RouteTables replaced in place under a live Tables view must not be freed under it."""
    from fastvpc._kernels import forward as _fw

    net, batch = seed
    dp = net.compile()
    a = dp.lpm.arrays()  # an ordinary, replaceable copy of the snapshot's tables
    rts = fv.lpm.RouteTables.from_packed(a["header"], a["meta"], a["data"])
    before = dp.process(batch, copy=True)
    tables = _fw.Tables(dp._compiled._replace(lpm=rts))  # the snapshot's tables, this LPM
    for i in range(2000):
        rts.replace(1, np.array([0], np.uint32), np.array([0], np.uint8), np.array([i], np.uint32))
        if i % 200 == 0:
            _junk = [bytearray(4096) for _ in range(200)]
            gc.collect()
    out = [np.empty(len(batch), t) for t in (np.uint8, np.uint8, np.int32, np.int32)]
    work = batch.copy()
    _fw.forward_batch(tables, work.data, work.offsets, work.port, *out, 1)
    assert np.array_equal(out[0], before.action) and np.array_equal(out[3], before.route)
