"""What one evaluated check says: the shape shared by pages, data files, `check` and delivery.

Checks are evaluated from state, so a result carries everything a reader needs without the
definitions at hand: where the check is written (for annotations and diagnostics), whether it
passed, and the values it saw (so a badge can say "total = 52, wanted total <= 50").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warn"]


@dataclass(frozen=True)
class CheckResult:
    """One check of one aggregation (or one report) after evaluation."""

    report: str  # the report's name
    address: str  # the aggregation's address, or the report's name for a report-level check
    name: str
    severity: Severity
    assertion: str  # the CEL text of `assert`, as written
    message: str  # the check's `message` ("" when none)
    passed: bool
    values: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"total": 52}
    error: str | None = None  # why it could not be evaluated (no data yet, bad type); fails it
    file: str | None = None  # the report file and the position of the `assert` string
    line: int | None = None
    column: int | None = None

    @property
    def blocking(self) -> bool:
        """True when this result fails the run: an error-severity check that did not pass."""
        return not self.passed and self.severity == "error"

    def as_json(self) -> dict[str, Any]:
        """The result as plain JSON, as `casereport check --json` and webhooks carry it."""
        return {
            "report": self.report,
            "address": self.address,
            "name": self.name,
            "severity": self.severity,
            "assert": self.assertion,
            "message": self.message,
            "passed": self.passed,
            "values": dict(self.values),
            "error": self.error,
            "file": self.file,
            "line": self.line,
            "column": self.column,
        }
