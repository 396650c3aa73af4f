"""The import report: what an AWS import skipped, changed or does not model, and its result."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from fastvpc.topology import Network

__all__ = ["STATUSES", "AwsImport", "ImportReport", "ReportEntry"]


# --------------------------------------------------------------------------- the report

#: Kinds of report entries.
STATUSES = ("skipped", "blackholed", "changed", "not modelled", "note")


@dataclasses.dataclass(frozen=True)
class ReportEntry:
    """One line of the import report.

    ``element``: the AWS id (or the describe key for summary lines); ``file``: the JSON
    file it came from, relative to the imported folder; ``status``: one of
    ``skipped`` (not imported), ``blackholed`` (a route imported as a blackhole),
    ``changed`` (imported, but not as given), ``not modelled`` (summary of data fastvpc
    does not model), ``note`` (imported as documented, worth knowing); ``why``: the reason.
    """

    element: str
    file: str
    status: str
    why: str

    def __str__(self) -> str:
        where = f" [{self.file}]" if self.file else ""
        return f"{self.status:<12} {self.element}{where}: {self.why}"

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


class ImportReport(Sequence[ReportEntry]):
    """What the import skipped, changed or does not model, and what it imported.

    A sequence of :class:`ReportEntry`; ``str()`` is readable, ``to_dict()`` is JSON-able.
    ``counts`` maps each imported kind (``vpcs``, ``subnets`` ...) to how many were imported.
    """

    def __init__(self, source: str = "") -> None:
        self.source = source
        self.entries: list[ReportEntry] = []
        self.counts: dict[str, int] = {}
        self.files: list[str] = []

    def add(self, element: str, file: str, status: str, why: str) -> None:
        assert status in STATUSES, status
        self.entries.append(ReportEntry(str(element), file, status, why))

    def __getitem__(self, i: Any) -> Any:
        return self.entries[i]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[ReportEntry]:
        return iter(self.entries)

    def by_status(self, status: str) -> list[ReportEntry]:
        return [e for e in self.entries if e.status == status]

    def about(self, element: str) -> list[ReportEntry]:
        """Entries whose element is ``element`` or mentions it."""
        return [e for e in self.entries if e.element == element or element in e.element or element in e.why]

    def summary(self) -> str:
        parts = [f"{n} {kind}" for kind, n in self.counts.items() if n]
        by = Counter(e.status for e in self.entries)
        issues = ", ".join(f"{n} {s}" for s, n in sorted(by.items())) or "no entries"
        return (f"AWS import of {self.source or '?'} ({len(self.files)} files): "
                f"{', '.join(parts) or 'nothing'}; report: {issues}")

    def __str__(self) -> str:
        lines = [self.summary()]
        order = {s: i for i, s in enumerate(STATUSES)}
        for e in sorted(self.entries, key=lambda e: order.get(e.status, 99)):
            lines.append("  " + str(e))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "files": list(self.files), "counts": dict(self.counts),
                "entries": [e.to_dict() for e in self.entries]}


@dataclasses.dataclass
class AwsImport:
    """The result of :func:`import_aws`: the network, the report, and the instance -> ENI map."""

    network: Network
    report: ImportReport
    #: instance id -> names of its imported ENIs, by device index (primary first).
    instances: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: AWS id (instance, ENI, subnet, VPC, ...) -> its ``Name`` tag, where it has one.
    names: dict[str, str] = dataclasses.field(default_factory=dict)

    def __iter__(self) -> Iterator[Any]:  # allows ``net, report = from_aws(..., report=True)``
        return iter((self.network, self.report))
