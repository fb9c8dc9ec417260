"""``fmt``: one canonical style, comments kept, idempotent, broken files untouched."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from casereport.definitions import fmt
from casereport.definitions.yamlnodes import YamlSyntaxError

ROOT = Path(__file__).resolve().parent.parent

UGLY = """\
# yaml-language-server: $schema=../schema/report.schema.json
# header comment


title:   "Support backlog"   # trailing
owner: '@support'
description: |
  Multi line
  # not a comment, keep its indentation
     text here.
formats:
- markdown
- html
vars: {project: SUP, n: "12"}
aggregations:
    by_status:   # the status one
            # about the title
        title: 'Cases: by status'
        query_filter: "project:${var.project} \\"quoted text\\""



        group_by:
            - status   # why
            - priority
        limit: 3
    other:
        for_each: {a: b, c: d}
        query_filter: 'x'
        group_by: [a,b]
        limit: 10
    long:
        for_each: [case-api, billing, checkout, auth, search, payments, notifications, web]
        query_filter: "it's"
        group_by: ["true", "12", "a b"]
        limit: 10
# trailing comment

"""

CANONICAL = """\
# yaml-language-server: $schema=../schema/report.schema.json
# header comment

title: Support backlog  # trailing
owner: "@support"
description: |
  Multi line
  # not a comment, keep its indentation
     text here.
formats: [markdown, html]
vars:
  project: SUP
  n: "12"
aggregations:
  by_status:  # the status one
    # about the title
    title: "Cases: by status"
    query_filter: project:${var.project} "quoted text"

    group_by:
      - status  # why
      - priority
    limit: 3
  other:
    for_each:
      a: b
      c: d
    query_filter: x
    group_by: [a, b]
    limit: 10
  long:
    for_each:
      - case-api
      - billing
      - checkout
      - auth
      - search
      - payments
      - notifications
      - web
    query_filter: it's
    group_by: ["true", "12", a b]
    limit: 10
# trailing comment
"""


def test_canonical_style() -> None:
    assert fmt.format_text(UGLY) == CANONICAL


def test_canonical_text_is_a_fixed_point() -> None:
    assert fmt.format_text(CANONICAL) == CANONICAL


def test_formatting_keeps_the_data() -> None:
    safe = YAML(typ="safe", pure=True)
    assert safe.load(fmt.format_text(UGLY)) == safe.load(UGLY)


def test_example_reports_are_formatted() -> None:
    for file in sorted((ROOT / "reports").glob("*.yaml")):
        text = file.read_text()
        assert fmt.format_text(text) == text, f"{file.name} is not in canonical style"


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("title: 'open\n", 2, 1, "invalid YAML: found unexpected end of stream"),
        ("a: 1\na: 2\n", 2, 1, 'duplicate key "a" (first defined at line 1)'),
        ("a:\n  b: 1\n  b: 2\n", 3, 3, 'duplicate key "b" (first defined at line 2)'),
        ("a:\n\t- b\n", 2, 1, "invalid YAML: tab character: indent with spaces"),
    ],
)
def test_unparseable_text_raises_a_located_error(
    text: str, line: int, column: int, message: str
) -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        fmt.format_text(text)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert caught.value.message.startswith(message)


def test_empty_and_comment_only_files() -> None:
    assert fmt.format_text("") == ""
    assert fmt.format_text("\n\n# just a note  \n\n") == "# just a note\n"


def test_run_writes_only_changed_files_and_keeps_broken_ones(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "ugly.yaml").write_text(UGLY)
    (reports / "good.yaml").write_text(CANONICAL)
    (reports / "broken.yaml").write_text("title: 'open\n")
    (reports / "ugly.yaml").chmod(0o640)
    out: list[str] = []
    err: list[str] = []

    def run(**options: Any) -> int:
        out.clear()
        err.clear()
        return fmt.run([], reports_dir=reports, out=out.append, err=err.append, **options)

    assert run(check=True, diff=False) == 1
    assert out == [str(reports / "ugly.yaml")]
    assert err == [
        f"{reports}/broken.yaml:2:1: error: invalid YAML: found unexpected end of stream "
        "(while scanning a quoted scalar started at line 1, column 8) (file left unchanged)",
        "1 file of 3 needs formatting: run casereport fmt",
    ]
    assert (reports / "ugly.yaml").read_text() == UGLY  # --check writes nothing

    assert run(check=True, diff=True) == 1
    assert out[1].startswith(f"--- a/{reports}/ugly.yaml\n+++ b/{reports}/ugly.yaml\n@@ ")
    assert "+formats: [markdown, html]" in out[1].splitlines()

    assert run(check=False, diff=False) == 1  # the broken file is still an error
    assert (reports / "ugly.yaml").read_text() == CANONICAL
    assert (reports / "ugly.yaml").stat().st_mode & 0o777 == 0o640
    assert (reports / "broken.yaml").read_text() == "title: 'open\n"
    (reports / "broken.yaml").unlink()
    assert run(check=True, diff=False) == 0
    assert out == [] and err == []


def test_named_files_and_directories(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a:   1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text("b: [x,y]\n")
    targets, problems = fmt.target_files(
        [tmp_path / "a.yaml", tmp_path / "sub", tmp_path / "missing.yaml"], tmp_path / "unused"
    )
    assert targets == [tmp_path / "a.yaml", tmp_path / "sub" / "b.yaml"]
    assert [str(p) for p in problems] == [
        f"{tmp_path}/missing.yaml: error: no such file or directory"
    ]


# --------------------------------------------------------------------------- properties

WORDS = st.sampled_from(
    [
        "status",
        "case-api",
        "Open cases",
        "a: b",
        "it's",
        'say "hi"',
        "${var.service}",
        "service:${each.value} status:open",
        "#hash",
        "x #y",
        "12",
        "true",
        "null",
        "",
        "@team",
        "back\\slash",
        "trailing ",
        "[x]",
        "é",
    ]
)
KEYS = st.sampled_from(["title", "query_filter", "group_by", "limit", "for_each", "vars", "x"])


def quote(text: str, style: str) -> str:
    if style == "single":
        return "'" + text.replace("'", "''") + "'"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def scalar(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["word", "word", "int", "plain"]))
    if kind == "int":
        return str(draw(st.integers(0, 2000)))
    if kind == "plain":
        return draw(st.sampled_from(["status", "case-api", "Open cases", "P1"]))
    return quote(draw(WORDS), draw(st.sampled_from(["single", "double"])))


@st.composite
def report_texts(draw: st.DrawFn) -> str:
    """Valid YAML in many styles, with comments and blank lines in many places."""
    counter = iter(range(1000))

    def comment() -> str:
        return draw(st.sampled_from(["", "", f"  # c{next(counter)}", f" #c{next(counter)}"]))

    def noise(pad: str) -> list[str]:
        choice = draw(st.sampled_from(["", "", "blank", "comment", "both"]))
        lines = []
        if choice in ("blank", "both"):
            lines += [""] * draw(st.integers(1, 3))
        if choice in ("comment", "both"):
            lines.append(draw(st.sampled_from([pad, "", "      "])) + f"# note {next(counter)}")
        return lines

    def mapping(indent: int, depth: int) -> list[str]:
        pad = " " * indent
        lines: list[str] = []
        keys = draw(st.lists(KEYS, min_size=1, max_size=4, unique=True))
        for key in keys:
            lines += noise(pad)
            shape = draw(
                st.sampled_from(["scalar", "list", "map"] if depth < 2 else ["scalar", "list"])
            )
            if shape == "scalar":
                lines.append(f"{pad}{key}: {scalar(draw)}{comment()}")
            elif shape == "map":
                lines.append(f"{pad}{key}:{comment()}")
                lines += mapping(indent + draw(st.sampled_from([2, 4])), depth + 1)
            else:
                items = [scalar(draw) for _ in range(draw(st.integers(0, 6)))]
                style = draw(st.sampled_from(["flow", "block", "indentless"]))
                if style == "flow" or not items:
                    lines.append(f"{pad}{key}: [{', '.join(items)}]{comment()}")
                else:
                    lines.append(f"{pad}{key}:{comment()}")
                    item_pad = pad if style == "indentless" else pad + "  "
                    for item in items:
                        lines += noise(item_pad)
                        lines.append(f"{item_pad}- {item}{comment()}")
        return lines

    header = draw(st.sampled_from([[], ["# yaml-language-server: $schema=x.json"]]))
    return "\n".join(header + mapping(0, 0) + noise("")) + draw(st.sampled_from(["\n", ""]))


def comments(text: str) -> list[str]:
    return re.findall(r"#(?:c|note )\d+", text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(report_texts())
def test_fmt_is_idempotent_and_keeps_comments_and_data(text: str) -> None:
    once = fmt.format_text(text)
    assert fmt.format_text(once) == once
    assert sorted(comments(once)) == sorted(comments(text))
    safe = YAML(typ="safe", pure=True)
    assert safe.load(once) == safe.load(text)
    assert once.endswith("\n") and not once.endswith("\n\n")
    assert "\n\n\n" not in once
