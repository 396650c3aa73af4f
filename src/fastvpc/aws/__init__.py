"""AWS ``describe-*`` import: ``from_aws(folder)`` / ``import_aws(folder)`` and the import report.

Split by concern: :mod:`fastvpc.aws.reader` (which files and keys are read, de-duplication),
:mod:`fastvpc.aws.report` (``ImportReport``, ``ReportEntry``, ``AwsImport``),
:mod:`fastvpc.aws.filters` (security groups, ENI groups, network ACLs) and
:mod:`fastvpc.aws.importer` (the passes and the entry points).  This face keeps the
``fastvpc.aws`` path.
"""

from fastvpc.aws.importer import *  # noqa: F401,F403
from fastvpc.aws.importer import __all__  # noqa: F401
