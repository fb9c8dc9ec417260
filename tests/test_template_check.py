"""Templates checked before the API is called (render.check, used by validate and plan)."""

from __future__ import annotations

from pathlib import Path

import pytest

from casereport.definitions.expand import expand_workspace
from casereport.render.check import check_templates

REPORT = """title: Report
aggregations:
  by_status:
    title: Cases by status
    query_filter: status:open
    group_by: [status, priority]
    limit: 5
"""


def _problems(tmp_path: Path, templates: dict[str, str]) -> list[str]:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "r.yaml").write_text(REPORT)
    (tmp_path / "templates").mkdir()
    for name, text in templates.items():
        (tmp_path / "templates" / name).write_text(text)
    settings, expansion = expand_workspace(tmp_path)
    assert expansion.ok, expansion.diagnostics
    return [str(d) for d in check_templates(expansion.reports, settings.templates_dir)]


def test_the_built_in_templates_render_on_every_path(tmp_path: Path) -> None:
    assert _problems(tmp_path, {}) == []


def test_a_typo_on_the_never_fetched_side_is_found(tmp_path: Path) -> None:
    template = (
        "{% for agg in aggregations %}{% if not agg.fetched %}\n"
        "{{ agg.titel }}\n{% endif %}{% endfor %}\n"
    )
    problems = _problems(tmp_path, {"report.md.j2": template})
    assert problems == [
        f"{tmp_path}/templates/report.md.j2:2: error: 'dict object' has no attribute 'titel' "
        '(did you mean "title"?)'
    ]


def test_the_index_is_checked_and_a_problem_is_listed_once(tmp_path: Path) -> None:
    problems = _problems(tmp_path, {"index.html.j2": "<p>\n{{ reprots }}</p>\n"})
    assert problems == [
        f"{tmp_path}/templates/index.html.j2:2: error: 'reprots' is undefined "
        '(did you mean "reports"?)'
    ]


def test_plan_and_apply_stop_on_a_template_typo_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from casereport.cli import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "r.yaml").write_text(REPORT)
    run = CliRunner().invoke
    assert run(cli, ["apply", "--emulator", "--auto-approve"]).exit_code == 0
    state = (tmp_path / ".casereport" / "state.json").read_bytes()
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "report.md.j2").write_text(
        "# {{ report.title }}\n{{ reprot.name }}\n"
    )
    expected = (
        "Error: templates/report.md.j2:2: error: 'reprot' is undefined (did you mean \"report\"?)\n"
    )
    for command in (["plan", "--emulator"], ["apply", "--emulator", "--auto-approve"]):
        result = run(cli, command)
        assert result.exit_code == 1, result.output
        assert result.stderr == expected
    assert (tmp_path / ".casereport" / "state.json").read_bytes() == state


def _reports_of_template(
    tmp_path: Path, formats: dict[str, str], templates: dict[str, str] | None = None
) -> list[str]:
    """Reports named after ``formats`` (report -> its ``formats:``), each with
    ``template: mine``, and ``templates`` (by default only ``mine.md.j2``): the problems."""
    (tmp_path / "reports").mkdir(parents=True)
    for name, listed in formats.items():
        text = REPORT.replace(
            "title: Report\n", f"title: Report\ntemplate: mine\nformats: {listed}\n"
        )
        (tmp_path / "reports" / f"{name}.yaml").write_text(text)
    (tmp_path / "templates").mkdir()
    for file, text in (templates or {"mine.md.j2": "# {{ report.title }}\n"}).items():
        (tmp_path / "templates" / file).write_text(text)
    settings, expansion = expand_workspace(tmp_path)
    assert expansion.ok, expansion.diagnostics
    return [str(d) for d in check_templates(expansion.reports, settings.templates_dir)]


def _missing(name: str) -> str:
    return (
        f"error: template {name} not found in the workspace templates/ or the built-in "
        "ones; create it or fix the report's `template:`"
    )


def test_only_the_formats_in_use_of_a_template_are_required(tmp_path: Path) -> None:
    # A Markdown-only report's template needs no HTML file (render never asks for one).
    assert _reports_of_template(tmp_path / "md", {"a": "[markdown]", "b": "[markdown]"}) == []
    # Any report of the template that is rendered as HTML (or printed as PDF) needs it.
    for listed in ("[html]", "[pdf]"):
        found = _reports_of_template(tmp_path / listed[1:-1], {"a": "[markdown]", "b": listed})
        assert found == [_missing("mine.html.j2")]
    # And an HTML (or PDF) only template needs no Markdown file, while a Markdown report of
    # it does.
    html_only = {"mine.html.j2": "<h1>{{ report.title }}</h1>\n"}
    both = {"a": "[html]", "b": "[pdf]"}
    assert _reports_of_template(tmp_path / "html-only", both, html_only) == []
    mixed = {"a": "[html]", "b": "[markdown, html]"}
    assert _reports_of_template(tmp_path / "mixed", mixed, html_only) == [_missing("mine.md.j2")]


def test_a_pdf_only_report_is_checked_with_its_own_formats(tmp_path: Path) -> None:
    # A PDF-only report's page has no HTML file of its own (``report.files.html`` is
    # undefined), though its HTML template is rendered to print it.
    template = '<h1>{{ report.title }}</h1>\n<a href="{{ report.files.html }}">page</a>\n'
    assert (
        _reports_of_template(tmp_path / "html", {"a": "[html]"}, {"mine.html.j2": template}) == []
    )
    problems = _reports_of_template(
        tmp_path / "pdf", {"a": "[html]", "b": "[pdf]"}, {"mine.html.j2": template}
    )
    assert problems == [
        f"{tmp_path}/pdf/templates/mine.html.j2:2: error: 'dict object' has no attribute 'html'"
    ]


def test_validate_passes_a_markdown_only_template_that_render_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from casereport.cli import cli

    monkeypatch.chdir(tmp_path)
    assert _reports_of_template(tmp_path, {"r": "[markdown]"}) == []
    run = CliRunner().invoke
    for command in (["validate"], ["apply", "--emulator", "--auto-approve"]):
        result = run(cli, command)
        assert result.exit_code == 0, result.output
    assert (tmp_path / "site" / "r.md").read_text() == "# Report\n"
    assert not (tmp_path / "site" / "r.html").exists()
