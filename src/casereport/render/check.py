"""Templates checked before any API call: ``validate`` and ``plan`` render every template
in use against complete synthetic data, so a typo fails the pull request's plan with its
file and line instead of the scheduled apply.

Each template a report names (and the index) is rendered twice, with the names undefined
anywhere an error (``StrictUndefined``): once for a report whose every aggregation was
fetched, with earlier runs to compare with (tables, changes, trends, notes), and once for
a report never fetched (the empty states), so both sides of the templates' ``if``s run.
One report per template and set of formats is enough: a template sees the same names
for every report of the same formats (a PDF's HTML page is rendered, not printed).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from casereport.definitions.expand import AggregationSpec, ReportSpec
from casereport.definitions.models import Diagnostic
from casereport.errors import RenderError
from casereport.render.pages import render_index, render_report
from casereport.render.templates import TemplateProblem, environment
from casereport.state.model import AggregationState, Source

__all__ = ["check_templates"]

_SOURCE = Source("emulator", "emulator", "synthetic data for a template check")
_STAMPS = ("2026-01-05T06:00:00Z", "2026-01-06T06:00:00Z", "2026-01-07T06:00:00Z")
_VALUES = ("OPEN", "IN_PROGRESS", "CLOSED")


def check_templates(reports: Sequence[ReportSpec], templates_dir: Path | None) -> list[Diagnostic]:
    """An error per template problem (file, line, message), each once; none when every
    template in use renders."""
    env = environment(templates_dir)
    found: dict[str, Diagnostic] = {}
    chosen = _one_report_per_template(reports)
    for report in chosen:
        fetched = {spec.address: _fetched(spec) for spec in report.aggregations}
        for states in (fetched, {}):
            render = functools.partial(render_report, report, states, _SOURCE, env, printed=False)
            _record(found, render)
    if chosen:
        # The index of the chosen reports: the same names as that of every report.
        everything = {spec.address: _fetched(spec) for r in chosen for spec in r.aggregations}
        for states in (everything, {}):
            _record(found, functools.partial(render_index, chosen, states, _SOURCE, env))
    return list(found.values())


def _one_report_per_template(reports: Iterable[ReportSpec]) -> list[ReportSpec]:
    """The first report of each template and set of formats: a template sees its report's
    formats (``report.files``, ``links``), and renders only in those, so a template only
    Markdown reports use needs no HTML file, nor one only HTML or PDF reports use a
    Markdown file."""
    chosen: dict[tuple[str, frozenset[str]], ReportSpec] = {}
    for report in reports:
        chosen.setdefault((report.template, frozenset(report.formats)), report)
    return list(chosen.values())


def _fetched(spec: AggregationSpec) -> AggregationState:
    """``spec`` as fetched three times, its groups' counts moving between runs."""
    request = spec.request()
    labels = [" / ".join([value] * len(spec.groups)) for value in _VALUES[: spec.limit]]
    counts = [float(3 * (len(labels) - i)) for i in range(len(labels))]
    history = [
        {
            "fetched_at": stamp,
            "total": sum(counts) + run,
            "groups": {label: count - run for label, count in zip(labels, counts, strict=True)},
        }
        for run, stamp in enumerate(_STAMPS[:-1])
    ]
    return AggregationState(
        address=spec.address,
        report=spec.report,
        title=spec.title,
        request=request,
        fingerprint=spec.fingerprint,
        result={
            "id": "template-check",
            "total": sum(counts) + 1,
            "groups": [
                {"group": label, "value": [count]}
                for label, count in zip(labels, counts, strict=True)
            ],
        },
        fetched_at=_STAMPS[-1],
        history=history,
    )


def _record(found: dict[str, Diagnostic], render: Callable[[], object]) -> None:
    """Render; a problem becomes a diagnostic, once however many renders meet it."""
    try:
        render()
    except TemplateProblem as problem:
        found.setdefault(
            str(problem),
            Diagnostic(
                "error", problem.problem.removeprefix("error: "), problem.file, problem.line
            ),
        )
    except RenderError as error:  # a template missing, not UTF-8: no line to point at
        found.setdefault(str(error), Diagnostic("error", error.message))
