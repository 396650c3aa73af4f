"""FrameBatch refuses buffers it cannot wrap with FrameBatchError naming the argument.

Regression: a non-contiguous memoryview raised a bare BufferError (or NotImplementedError)."""

from __future__ import annotations

import array

import numpy as np
import pytest

import fastvpc as fv


def _non_contiguous():
    base = np.arange(40, dtype=np.uint8)
    yield memoryview(base)[::2]
    yield memoryview(base.reshape(5, 8)[:, 2:])
    yield memoryview(bytearray(40))[1::3]
    yield memoryview(base.reshape(5, 8)).T if hasattr(memoryview, "T") else memoryview(base)[::-1]


@pytest.mark.parametrize("buf", list(_non_contiguous()))
def test_a_non_contiguous_buffer_is_refused_naming_data(buf):
    with pytest.raises(fv.FrameBatchError, match="data") as info:
        fv.FrameBatch(buf, [0, 4], [1])
    assert isinstance(info.value, ValueError)
    assert "contiguous" in str(info.value)


def test_contiguous_buffers_of_every_kind_are_wrapped():
    raw = bytes(range(20))
    for buf in (raw, bytearray(raw), memoryview(raw), memoryview(bytearray(raw)), array.array("B", raw),
                np.frombuffer(raw, np.uint8)):
        b = fv.FrameBatch(buf, [0, 8, 20], [1, 2])
        assert b.frame(1) == raw[8:]
