"""AWS ``describe-*`` import: ``from_aws(folder)`` / ``import_aws(folder)`` and the import report.

The importer lives in :mod:`fastvpc.aws.importer`; this face keeps the ``fastvpc.aws`` path.
"""

from fastvpc.aws.importer import *  # noqa: F401,F403
from fastvpc.aws.importer import __all__  # noqa: F401
