"""Fixtures of the driver tests: one local Dask cluster for every sharded-replay test that needs one."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="package")
def client():
    """A ``distributed.Client`` on a LocalCluster of 2 single-threaded worker processes (as
    ``fastvpc replay --workers 2`` starts), shared by the package's tests and closed after them."""
    distributed = pytest.importorskip("distributed", reason="the test extra installs dask[distributed]")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = distributed.Client(cluster, set_as_default=False)
    yield c
    c.close()
    cluster.close()
