"""``casereport output``: a report's data file (``render.data``) printed from state.

Read only: no API call, no lock, nothing written. The state is read as ``show`` reads it
(with an interrupted apply's journal folded in, in memory), the report's definition from
its file (titles, ``compare:``, ``order:`` and ``labels:`` are the definitions'): what
``casereport render`` would write as ``site/<report>.json`` or ``.csv`` now, byte for byte.
"""

from __future__ import annotations

from casereport.engine.workspace import Notice, Options, load_workspace
from casereport.errors import CaseReportError, StateError
from casereport.render.data import data_files
from casereport.settings import did_you_mean
from casereport.state import journal

__all__ = ["DATA_FORMATS", "report_output"]

#: What ``output`` prints: the data file with this suffix.
DATA_FORMATS = ("json", "csv")


def report_output(
    options: Options, name: str, data_format: str, notice: Notice | None = None
) -> str:
    """The text of ``<name>.<data_format>`` as rendered from the state now."""
    workspace = load_workspace(options, notice)
    reports = {report.name: report for report in workspace.reports}
    report = reports.get(name)
    if report is None:
        raise CaseReportError(
            f"output: no report named {name!r}{did_you_mean(name, reports)}; a report is "
            f"the name of a file in {workspace.settings.reports_dir} (without .yaml)"
        )
    state = journal.load_with_journal(workspace.state_path)
    if state is None:
        raise StateError(
            f"no state at {workspace.state_path}: nothing to output yet; run `casereport apply`"
        )
    return data_files(report, state.aggregations, state.source)[f"{name}.{data_format}"]
