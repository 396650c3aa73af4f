"""Deprecated path: the batch classifier moved to :mod:`fastvpc.dataplane.classify`.

``fv.classify`` and every name below keep working from here.
"""

from fastvpc.dataplane.classify import *  # noqa: F401,F403
from fastvpc.dataplane.classify import __all__  # noqa: F401
