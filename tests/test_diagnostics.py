"""Source snippets under diagnostics (casereport.diagnostics): golden files for validate's
text and JSON over the broken-definitions corpus, the span rules, and the terminal path
for one-line errors (a real pseudo-terminal: colour, NO_COLOR, --no-color).

Regenerate the golden files with

    CASEREPORT_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_diagnostics.py

and read ``git diff tests/golden/diagnostics`` before committing.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from casereport.cli import cli
from casereport.definitions.expand import expand_workspace, validation_output
from casereport.definitions.models import Diagnostic
from casereport.diagnostics import Span, annotate, argument_snippet, infer_span, snippet

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden" / "diagnostics"
BROKEN = HERE / "definitions" / "broken"
UPDATE_GOLDEN = os.environ.get("CASEREPORT_UPDATE_GOLDEN") == "1"
SRC = HERE.parent / "src"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing; see this module's docstring to create it"
    assert text == path.read_text(encoding="utf-8")


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace holding the whole broken corpus and its broken templates."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    for file in sorted(BROKEN.glob("*.yaml")):
        shutil.copy(file, tmp_path / "reports" / file.name)
    shutil.copytree(BROKEN / "templates", tmp_path / "templates")
    return tmp_path


def test_validate_text_golden(broken: Path) -> None:
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 1
    check_golden("validate.txt", result.output)


def test_validate_json_golden(broken: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    for diagnostic in data["diagnostics"]:
        span = diagnostic["span"]
        if diagnostic["line"] is None:
            assert span is None
            continue
        assert span["start"] == {"line": diagnostic["line"], "column": diagnostic["column"] or 1}
        assert span["end"]["column"] > span["start"]["column"]
    check_golden("validate.json", result.output)


def test_validate_colour_golden(broken: Path) -> None:
    from casereport.render.check import check_templates

    settings, expansion = expand_workspace(Path("."))
    problems = check_templates(expansion.every_report, settings.templates_dir)
    diagnostics = (*expansion.diagnostics, *problems)
    from dataclasses import replace

    text = validation_output(replace(expansion, diagnostics=diagnostics), colour=True)
    assert "\x1b[31m" in text
    check_golden("validate-colour.txt", text)


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("line", "column", "marked"),
    [
        ('  query_filter: "status:open AND x"  # why', 17, '"status:open AND x"'),
        ("  query_filter: 'it''s open' # no", 17, "'it''s open'"),
        ("  limt: 3", 3, "limt"),
        ("  query_filter: status:open priority:P1  # comment", 17, "status:open priority:P1"),
        ("  group_by: [status, statuz]", 22, "statuz"),
        ("timeout = 0", 1, "timeout"),
        ("timeout = 0", 11, "0"),
        ("  key:", 3, "key"),
    ],
)
def test_inferred_spans(tmp_path: Path, line: str, column: int, marked: str) -> None:
    file = write(tmp_path / "f.yaml", f"first: line\n{line}\n")
    span = infer_span(file, 2, column)
    assert line[span.column - 1 : span.end_column - 1] == marked


def test_a_line_without_column_marks_the_line(tmp_path: Path) -> None:
    file = write(tmp_path / "t.j2", "a\n   {{ bad( }}  \n")
    assert infer_span(file, 2, None) == Span(2, 4, 2, 14)
    assert snippet(infer_span(file, 2, None), file) == ("  |\n2 |    {{ bad( }}\n  |    ^^^^^^^^^^")


def test_a_known_end_wins_and_a_tab_or_escape_is_shown_escaped(tmp_path: Path) -> None:
    file = write(tmp_path / "f.yaml", 'title: "a\tb \x1b[2J" x\n')
    diagnostic = Diagnostic("error", "bad", file, 1, 10, end_column=11)
    shown = diagnostic.with_snippet()
    first, _, marked, carets = shown.split("\n")
    assert first == f"{file}:1:10: error: bad"
    assert "\x1b" not in shown
    assert marked == '1 | title: "a\\u0009b \\u001b[2J" x'
    assert carets.index("^") == marked.index("\\u0009")
    assert carets.count("^") == len("\\u0009")


def test_annotate_keeps_every_line_and_skips_what_it_cannot_read(tmp_path: Path) -> None:
    file = write(tmp_path / "casereport.toml", "timeout = 0\nrefresh = 'x'\n")
    message = (
        f'{file}:1:11: error: "timeout" must be more than 0\n'
        f"{file}:2:1: error: bad refresh\n"
        "nowhere.yaml:3:4: error: gone"
    )
    out = annotate(message).split("\n")
    assert [line for line in out if "error:" in line] == message.split("\n")
    assert out[1:4] == ["  |", "1 | timeout = 0", "  |           ^"]
    assert out[5:8] == ["  |", "2 | refresh = 'x'", "  | ^^^^^^^"]
    assert out[-1] == "nowhere.yaml:3:4: error: gone"


def test_a_render_error_naming_its_report_first_gets_its_template_line(tmp_path: Path) -> None:
    # RenderError: "report NAME: templates/x.j2:3: error: ..." (the report first).
    file = write(tmp_path / "report.html.j2", "a\nb\n{{ x | nosuchfilter }}\n")
    message = f"report support: {file}:3: error: No filter named 'nosuchfilter'."
    assert annotate(message).split("\n") == [
        message,
        "  |",
        "3 | {{ x | nosuchfilter }}",
        "  | ^^^^^^^^^^^^^^^^^^^^^^",
    ]


def test_a_diagnostic_without_a_place_has_no_snippet_or_span() -> None:
    diagnostic = Diagnostic("warning", "no report files (*.yaml) found", "reports")
    assert diagnostic.with_snippet() == "reports: warning: no report files (*.yaml) found"
    assert diagnostic.to_json()["span"] is None


# -- the terminal path: one-line errors from plan ------------------------------------------


BAD_QUERY = """\
title: One
aggregations:
  a:
    title: A
    query_filter: "status:open )"
    group_by: [status]
    limit: 3
"""


def _on_a_terminal(
    cwd: Path, *args: str, env: dict[str, str] | None = None, stdout: bool = False, code: int = 1
) -> str:
    """Run casereport with stderr (or stdout) on a pseudo-terminal; what it wrote there."""
    primary, secondary = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    environment |= {"PYTHONPATH": str(SRC), "TERM": "xterm", **(env or {})}
    try:
        process = subprocess.run(
            [sys.executable, "-m", "casereport", *args],
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=secondary if stdout else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL if stdout else secondary,
            timeout=120,
            check=False,
        )
        os.close(secondary)
        secondary = -1
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
        if secondary >= 0:
            os.close(secondary)
    assert process.returncode == code
    return b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.fixture
def bad_query(tmp_path: Path) -> Path:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "one.yaml").write_text(BAD_QUERY, encoding="utf-8")
    return tmp_path


def test_a_one_line_error_gets_its_snippet_in_colour_on_a_terminal(bad_query: Path) -> None:
    shown = _on_a_terminal(bad_query, "plan", "--emulator")
    lines = shown.splitlines()
    assert lines[0] == "Error: reports/one.yaml:5:32: error: invalid query_filter: unbalanced ')'"
    assert "\x1b[31m^\x1b[0m" in shown
    plain = shown.replace("\x1b[34m", "").replace("\x1b[1m", "").replace("\x1b[31m", "")
    plain = plain.replace("\x1b[0m", "")
    assert plain.splitlines()[1:] == [
        "  |",
        '5 |     query_filter: "status:open )"',
        "  |                                ^",
    ]


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("plan", "--emulator", "--no-color"), {}),
        (("--no-color", "plan"), {}),
        (("plan",), {"NO_COLOR": "1"}),
    ],
)
def test_no_colour_when_asked(bad_query: Path, args: tuple[str, ...], env: dict[str, str]) -> None:
    shown = _on_a_terminal(bad_query, *args, env=env)
    assert "\x1b" not in shown
    assert shown.splitlines()[1:] == [
        "  |",
        '5 |     query_filter: "status:open )"',
        "  |                                ^",
    ]


@pytest.mark.parametrize(
    ("args", "env", "coloured"),
    [
        (("plan", "--emulator"), {}, True),
        (("plan", "--emulator", "--no-color"), {}, False),
        (("--no-color", "plan", "--emulator"), {}, False),
        (("plan", "--emulator"), {"NO_COLOR": "1"}, False),
    ],
)
def test_the_plan_is_coloured_on_a_terminal_unless_told_not(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], coloured: bool
) -> None:
    shutil.copytree(HERE.parent / "reports", tmp_path / "reports")
    shown = _on_a_terminal(tmp_path, *args, env=env, stdout=True, code=0)
    assert "Plan: 19 to fetch" in shown
    assert ("\x1b[" in shown) is coloured


def test_a_query_typed_on_the_command_line_gets_a_caret_on_a_terminal(tmp_path: Path) -> None:
    query = "status:open AND (priority:P1"
    shown = _on_a_terminal(tmp_path, "--no-color", "query", query, "--emulator")
    assert shown.splitlines() == [
        f"Error: invalid query at column 17: unbalanced '(': {query!r}; fix it (Case "
        "Management search syntax: field:value, AND, OR, -, parentheses)",
        " |",
        " | status:open AND (priority:P1",
        " |                 ^",
    ]
    off = CliRunner().invoke(cli, ["query", query, "--emulator"])
    assert off.exit_code == 1
    assert off.output.count("\n") == 1  # off a terminal: the one line alone


def test_an_arguments_caret_sits_under_escaped_and_wide_characters() -> None:
    assert argument_snippet("team:支援 \x1b)", 9).splitlines() == [
        " |",
        " | team:支援 \\u001b)",
        " |" + " " * 17 + "^",  # the wide characters take two columns each
    ]
    assert argument_snippet("a\x1b", 1).splitlines()[2] == " |  ^^^^^^"  # all of the escape
    assert argument_snippet("status:", 7).splitlines()[2] == " |        ^"  # past the end


def test_no_snippet_off_a_terminal(bad_query: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(bad_query)
    result = CliRunner().invoke(cli, ["plan", "--emulator"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: reports/one.yaml:5:32: error: invalid query_filter: unbalanced ')'\n"
    )


QUOTING = """\
title: Quoting
aggregations:
  plain:
    title: Plain
    query_filter: status:open )
    group_by: [status]
    limit: 3
  single:
    title: Single
    query_filter: 'it''s:x status:open )'
    group_by: [status]
    limit: 3
  double:
    title: Double
    query_filter: "\\u0041:x \\"q\\" )"
    group_by: [status]
    limit: 3
  folded:
    title: Folded
    query_filter: >-
      status:open
      priority:P1 )
    group_by: [status]
    limit: 3
"""


def test_carets_point_at_the_character_whatever_the_quoting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "q.yaml").write_text(QUOTING, encoding="utf-8")
    _, expansion = expand_workspace(Path("."))
    shown = {}
    for diagnostic in expansion.diagnostics:
        assert diagnostic.summary == "invalid query_filter: unbalanced ')'"
        _, _, source, carets = diagnostic.with_snippet().split("\n")
        shown[diagnostic.line] = source[carets.index("^") : carets.rindex("^") + 1]
        assert carets.count("^") == 1
    # Each caret is under the ")" in the file, past '' and \" escapes and a folded line.
    assert shown == {5: ")", 10: ")", 15: ")", 22: ")"}


def test_carets_under_wide_characters(tmp_path: Path) -> None:
    file = write(tmp_path / "w.yaml", "title: 日本 )\n")
    shown = snippet(Span(1, 11, 1, 12), file)
    assert shown.split("\n")[2] == "  |" + " " * (1 + len("title: ") + 4 + 1) + "^"


def test_an_api_error_never_shows_a_file(tmp_path: Path) -> None:
    from casereport.diagnostics import with_source
    from casereport.errors import BadRequestError, DefinitionError

    file = write(tmp_path / "secret.txt", "token = s3cr3t\n")
    message = f"400 from the server\n{file}:1:1: error: x"
    assert with_source(BadRequestError(message, status=400)) == message
    assert "s3cr3t" in with_source(DefinitionError(message))


def test_a_secret_pasted_where_a_variable_name_belongs_is_never_shown(tmp_path: Path) -> None:
    # The error names the key without repeating the value; the snippet would print it.
    (tmp_path / "reports").mkdir()
    (tmp_path / "casereport.toml").write_text(
        '[notify.team]\ntype = "slack"\n'
        'webhook_url_env = "https://hooks.slack.com/services/T0/B0/SECRETTOKEN"\n'
        '[notify.hook]\ntype = "webhook"\nurl = "https://example.com/hook"\n'
        'secret_env = "s3cr3t-hmac-key-value"\n'
    )
    with_cwd = subprocess.run(
        [sys.executable, "-m", "casereport", "validate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )
    shown = with_cwd.stdout + with_cwd.stderr
    assert with_cwd.returncode == 1, shown
    assert "webhook_url_env" in shown and "secret_env" in shown  # the keys are named
    assert "SECRETTOKEN" not in shown and "s3cr3t" not in shown
