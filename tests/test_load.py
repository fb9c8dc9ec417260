"""Loading report files: the broken-file corpus, the fast YAML path, positions, models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casereport.definitions import yamlnodes
from casereport.definitions.expand import expand_workspace
from casereport.definitions.load import check_group, load_report, load_reports
from casereport.definitions.models import Diagnostic, SourceString, diagnostics_json
from casereport.definitions.yamlnodes import MapNode, ScalarNode, SeqNode, YamlSyntaxError

ROOT = Path(__file__).resolve().parent.parent
BROKEN = Path(__file__).resolve().parent / "definitions" / "broken"
CORPUS = sorted(BROKEN.glob("*.yaml"))


def validate_copy(tmp_path: Path, *files: Path) -> list[str]:
    """Copy files into a fresh workspace's reports/ and validate it; diagnostics as lines,
    paths relative to the workspace."""
    reports = tmp_path / "reports"
    reports.mkdir(exist_ok=True)
    for file in files:
        shutil.copy(file, reports / file.name)
    _, expansion = expand_workspace(tmp_path)
    return [str(d).replace(f"{tmp_path}/", "") for d in expansion.diagnostics]


# --------------------------------------------------------------------------- the corpus


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30
    for file in CORPUS:
        assert file.with_suffix(".expected").is_file(), f"{file.name} has no .expected"


@pytest.mark.parametrize("file", CORPUS, ids=[f.stem for f in CORPUS])
def test_broken_file_gives_exact_diagnostics(tmp_path: Path, file: Path) -> None:
    expected = file.with_suffix(".expected").read_text().splitlines()
    assert expected, "every corpus file expects at least one diagnostic"
    assert validate_copy(tmp_path, file) == expected


def test_every_error_of_every_file_in_one_run(tmp_path: Path) -> None:
    expected: list[str] = []
    for file in CORPUS:
        expected += file.with_suffix(".expected").read_text().splitlines()
    got = validate_copy(tmp_path, *CORPUS)
    assert sorted(got) == sorted(expected)
    assert len(got) == len(expected)


def test_diagnostics_have_the_shape_path_line_col_severity_message(tmp_path: Path) -> None:
    lines = validate_copy(tmp_path, *CORPUS)
    for line in lines:
        path, row, column, rest = line.split(":", 3)
        assert path.startswith("reports/") and path.endswith(".yaml")
        assert int(row) >= 1 and int(column) >= 1
        assert rest.startswith((" error: ", " warning: "))
        assert "\n" not in line and "Traceback" not in line


# --------------------------------------------------------------------------- examples


def test_example_reports_validate_without_warnings() -> None:
    _, expansion = expand_workspace(ROOT)
    assert expansion.diagnostics == ()
    names = [report.name for report in expansion.reports]
    assert len(names) >= 3
    assert {"support-backlog", "service-health", "security-cases"} <= set(names)
    assert any(len(spec.groups) > 1 for spec in expansion.aggregations)
    assert any(spec.key is not None for spec in expansion.aggregations)


def test_example_reports_point_editors_at_the_schema() -> None:
    for file in sorted((ROOT / "reports").glob("*.yaml")):
        first = file.read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schema/report.schema.json"


# --------------------------------------------------------------------------- models

GOOD = """\
# yaml-language-server: $schema=../schema/report.schema.json
title: Support ${var.service}
description: Open work.
owner: "@support"
refresh: 6h
formats: [html]
template: weekly
vars:
  service: case-api
  threshold: 5
aggregations:
  by_status:
    title: Cases by status
    query_filter: "service:${var.service}"
    group_by: [status]
    limit: 14
  open_by_priority:
    for_each:
      api: case-api
      bill: billing
    query_filter: service:${each.value} status:open
    group_by:
      - priority
      - team
    limit: 6
"""


def test_good_file_loads_into_a_model() -> None:
    report, diagnostics = load_report(Path("reports/support-weekly.yaml"), GOOD)
    assert diagnostics == []
    assert report is not None
    assert report.name == "support-weekly"
    assert report.title.value == "Support ${var.service}"
    assert report.owner == "@support"
    assert report.refresh is not None and report.refresh.seconds == 6 * 3600
    assert report.formats == ("html",)
    assert report.template == "weekly"
    assert [(v.name, v.value) for v in report.vars] == [("service", "case-api"), ("threshold", "5")]
    first, second = report.aggregations
    assert (first.id, first.limit, first.line, first.column) == ("by_status", 14, 12, 3)
    assert [g.value for g in first.group_by] == ["status"]
    assert first.query_filter.value == "service:${var.service}"
    assert first.query_filter.style == '"'
    assert second.for_each is not None
    assert [(i.key, i.value) for i in second.for_each.items] == [
        ("api", "case-api"),
        ("bill", "billing"),
    ]
    assert [g.value for g in second.group_by] == ["priority", "team"]


def test_defaults_when_optional_keys_are_absent() -> None:
    text = "title: T\naggregations:\n  a:\n    query_filter: ''\n    group_by: [status]\n"
    text += "    limit: 1\n"
    report, diagnostics = load_report(Path("minimal.yaml"), text)
    assert diagnostics == [] and report is not None
    assert report.formats == ("markdown", "html")
    assert report.template == "report"
    assert report.refresh is None and report.description is None and report.vars == ()
    assert report.aggregations[0].title is None


def test_broken_aggregation_is_dropped_but_the_report_stays() -> None:
    text = GOOD.replace("limit: 6", "limit: 6000")
    report, diagnostics = load_report(Path("r.yaml"), text)
    assert [d.summary for d in diagnostics] == ['"limit" must be from 1 to 1000, got 6000']
    assert report is not None
    assert [a.id for a in report.aggregations] == ["by_status"]


def test_missing_directory_is_one_error(tmp_path: Path) -> None:
    result = load_reports(tmp_path / "nope")
    assert not result.ok
    assert [str(d) for d in result.diagnostics] == [
        f"{tmp_path}/nope: error: reports directory does not exist (create it, pass "
        "--reports-dir, or set reports_dir in casereport.toml)"
    ]


def test_empty_directory_and_yml_files_are_warnings(tmp_path: Path) -> None:
    assert [d.summary for d in load_reports(tmp_path).diagnostics] == [
        "no report files (*.yaml) found"
    ]
    (tmp_path / "old.yml").write_text("title: x\n")
    result = load_reports(tmp_path)
    assert result.ok
    assert [str(d) for d in result.diagnostics] == [
        f'{tmp_path}/old.yml: warning: ignored: report files end in ".yaml" (rename it to old.yaml)'
    ]


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"title: caf\xe9\n")
    report, diagnostics = load_report(path)
    assert report is None
    assert [(d.line, d.column, d.summary) for d in diagnostics] == [
        (1, 1, "not UTF-8 text: invalid continuation byte")
    ]


def test_diagnostics_json_shape() -> None:
    diagnostics = [
        Diagnostic("error", "bad", "reports/a.yaml", 3, 5, "more"),
        Diagnostic("warning", "hmm", "reports/b.yaml", 1, 1),
    ]
    assert diagnostics_json(diagnostics) == {
        "valid": False,
        "error_count": 1,
        "warning_count": 1,
        "diagnostics": [
            {
                "severity": "error",
                "summary": "bad",
                "detail": "more",
                "file": "reports/a.yaml",
                "line": 3,
                "column": 5,
            },
            {
                "severity": "warning",
                "summary": "hmm",
                "detail": "",
                "file": "reports/b.yaml",
                "line": 1,
                "column": 1,
            },
        ],
    }
    assert str(Diagnostic("warning", "x", "--var")) == "--var: warning: x"


def test_group_fields() -> None:
    assert check_group("status") is None
    assert check_group("services") is None and check_group("service") is None
    assert check_group("region") is None  # any attribute key
    assert check_group("priorty") == (
        "warning",
        'group_by field "priorty" is not a known case field, so it is read from the case '
        'attributes (did you mean "priority"?)',
    )
    problem = check_group("has space")
    assert problem is not None and problem[0] == "error"


# --------------------------------------------------------------------------- positions


def located(text: str) -> SourceString:
    """The SourceString of the `q:` value in ``text``."""
    root = yamlnodes.compose(text)
    assert isinstance(root, MapNode)
    node = root.pairs[0][1]
    assert isinstance(node, ScalarNode)
    return SourceString(node.value, node.line + 1, node.column + 1, node.style, node.raw)


@pytest.mark.parametrize(
    ("text", "index", "position"),
    [
        ("q: abc def\n", 4, (1, 8)),
        ("q: 'it''s x'\n", 6, (1, 12)),  # after the doubled quote
        ('q: "a\\"b c"\n', 4, (1, 10)),  # after the escaped quote
        ('q: "\\u00e9t\\u00e9 x"\n', 4, (1, 19)),
        ("q: |\n  one\n  two three\n", 8, (3, 7)),
        ("q: >-\n  one\n  two\n", 6, (3, 5)),
        ("q: one\n  two\n", 5, (2, 4)),  # a plain scalar folded over two lines
        ("q: 'one\n\n  two'\n", 5, (3, 4)),  # an empty line folds to a newline
        ('q: "one\\\n  two"\n', 4, (2, 4)),  # an escaped line break joins the lines
        ("q: abc\n", 3, (1, 7)),  # just past the end
    ],
)
def test_location_of_a_character_in_each_scalar_style(
    text: str, index: int, position: tuple[int, int]
) -> None:
    assert located(text).location_of(index) == position


def test_location_falls_back_to_the_scalar_start_when_unsure() -> None:
    source = SourceString("abc", 4, 9, '"', '"xyz"')  # a raw text that does not match
    assert source.location_of(2) == (4, 9)


# --------------------------------------------------------------------------- fast YAML path


def flat(node: object) -> object:
    if node is None:
        return None
    if isinstance(node, ScalarNode):
        return ("scalar", node.value, node.tag, node.style, node.raw, node.line, node.column)
    if isinstance(node, MapNode):
        return ("map", node.line, node.column, [(flat(k), flat(v)) for k, v in node.pairs])
    assert isinstance(node, SeqNode)
    return ("seq", node.line, node.column, [flat(i) for i in node.items])


def slow(text: str) -> object:
    try:
        return flat(yamlnodes._ruamel_compose(text))
    except YamlSyntaxError as exc:
        return ("error", exc.line, exc.column, exc.message)


def fast(text: str) -> object:
    try:
        return flat(yamlnodes._FastComposer(text).compose())
    except yamlnodes._Unsupported:
        return "unsupported"


SCALARS = st.sampled_from(
    [
        "abc",
        "case-api",
        "status:open priority:(P1 OR P2)",
        "${var.service}",
        "12",
        "0x1F",
        "1_000",
        "-3",
        "+4",
        "1e3",
        "1.5",
        ".inf",
        "true",
        "False",
        "yes",
        "null",
        "~",
        "2024-01-01",
        "@team",
        "a: b",
        "a:b",
        "a #b",
        "a#b",
        "- a",
        "-a",
        "? x",
        ":x",
        "'q'",
        "'it''s'",
        '"dq"',
        '"a\\"b"',
        '"a\\u00e9"',
        "'open",
        '"open',
        "[a, b]",
        "[a, 'b c', \"d\"]",
        "[]",
        "[a,]",
        "[a, [b]]",
        "[a: b]",
        "{a: 1}",
        "&anchor x",
        "*alias",
        "!tag x",
        "|",
        "x  # comment",
        "'q' # comment",
        "[a] # comment",
        "'q'x",
        "%x",
        "`x",
        "a\tb",
    ]
)
# Scalars the fast path reads (so nested documents take it often).
FAST_SCALARS = st.sampled_from(
    [
        "abc",
        "case-api",
        "status:open priority:(P1 OR P2)",
        "${var.service}",
        "12",
        "0x1F",
        "1_000",
        "1e3",
        ".inf",
        "true",
        "yes",
        "null",
        "~",
        "2024-01-01",
        "a:b",
        "a#b",
        "-a",
        "'it''s'",
        '"a\\"b"',
        "[a, 'b c', \"d\"]",
        "[]",
        "x  # comment",
    ]
)
KEYS = st.sampled_from(["a", "title", "group_by", "b c", "1", "true", "x-y", "k.e/y", "-k", "'k'"])
INDENTS = st.sampled_from(["", " ", "  ", "    "])


@st.composite
def documents(draw: st.DrawFn) -> str:
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 8))):
        indent = draw(INDENTS)
        kind = draw(st.sampled_from(["pair", "pair", "key", "item", "comment", "blank", "raw"]))
        if kind == "pair":
            lines.append(f"{indent}{draw(KEYS)}: {draw(SCALARS)}")
        elif kind == "key":
            lines.append(f"{indent}{draw(KEYS)}:" + draw(st.sampled_from(["", "  # c", " "])))
        elif kind == "item":
            lines.append(f"{indent}- {draw(SCALARS)}")
        elif kind == "comment":
            lines.append(f"{indent}# note")
        elif kind == "blank":
            lines.append("")
        else:
            lines.append(draw(st.sampled_from(["---", "...", "%YAML 1.2", "-", "key:value"])))
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


@st.composite
def tree_documents(draw: st.DrawFn) -> str:
    """Mostly well-formed block documents: nested mappings and lists, comments, blanks."""

    def noise() -> list[str]:
        return draw(st.sampled_from([[], [], [""], ["  "], [draw(INDENTS) + "# c"]]))

    def mapping(indent: int, depth: int) -> list[str]:
        lines: list[str] = []
        pad = " " * indent
        for key in draw(st.lists(KEYS, min_size=1, max_size=4)):
            lines += noise()
            shapes = ["scalar", "scalar", "map", "seq", "flat-seq"] if depth < 3 else ["scalar"]
            shape = draw(st.sampled_from(shapes))
            comment = draw(st.sampled_from(["", "", "  # c", " #c"]))
            if shape == "scalar":
                lines.append(f"{pad}{key}: {draw(st.one_of(FAST_SCALARS, SCALARS))}{comment}")
                continue
            lines.append(f"{pad}{key}:{comment}")
            inner = indent + draw(st.sampled_from([1, 2, 4]))
            if shape == "map":
                lines += mapping(inner, depth + 1)
            else:
                item_pad = " " * (inner if shape == "seq" else indent)
                scalars = st.one_of(FAST_SCALARS, SCALARS)
                for item in draw(st.lists(scalars, min_size=1, max_size=3)):
                    lines += noise()
                    lines.append(f"{item_pad}- {item}")
        return lines

    return "\n".join(mapping(draw(st.sampled_from([0, 0, 2])), 0)) + "\n"


@settings(max_examples=1000, deadline=None)
@given(tree_documents())
def test_fast_composer_agrees_with_ruamel_yaml_on_nested_documents(text: str) -> None:
    quick = fast(text)
    if quick == "unsupported":
        return
    assert quick == slow(text)


@settings(max_examples=800, deadline=None)
@given(documents())
def test_fast_composer_agrees_with_ruamel_yaml(text: str) -> None:
    quick = fast(text)
    if quick == "unsupported":
        return
    assert quick == slow(text)


def test_fast_composer_handles_the_example_reports() -> None:
    for file in sorted((ROOT / "reports").glob("*.yaml")):
        text = file.read_text()
        if "|" in text:  # block scalars are left to ruamel.yaml
            continue
        assert fast(text) == slow(text) != "unsupported"


def test_fast_composer_leaves_block_scalars_and_anchors_to_ruamel() -> None:
    assert fast("a: |\n  x\n") == "unsupported"
    assert fast("a: &x 1\nb: *x\n") == "unsupported"
    # An anchored scalar starts at its anchor; an alias is the same node again.
    assert slow("a: &x 1\nb: *x\n") == (
        "map",
        0,
        0,
        [
            (
                ("scalar", "a", "tag:yaml.org,2002:str", "", "a", 0, 0),
                ("scalar", "1", "tag:yaml.org,2002:int", "", "&x 1", 0, 3),
            ),
            (
                ("scalar", "b", "tag:yaml.org,2002:str", "", "b", 1, 0),
                ("scalar", "1", "tag:yaml.org,2002:int", "", "&x 1", 0, 3),
            ),
        ],
    )


def test_generated_documents_exercise_the_fast_path() -> None:
    """Guard for the agreement test above: many generated documents take the fast path."""
    taken = 0

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(tree_documents())
    def count(text: str) -> None:
        nonlocal taken
        if fast(text) != "unsupported":
            taken += 1

    count()
    assert taken >= 60
