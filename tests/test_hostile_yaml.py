"""Hostile YAML stays small: aliases are bounded by what they expand to (values and
characters), nesting by depth, on every path (libyaml, the pure-Python fallback, ``fmt``
through ruamel.yaml, ``validate`` and ``plan``); every refusal is one located line."""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from casereport.cli import cli
from casereport.definitions.fmt import format_text
from casereport.definitions.yamlnodes import (
    MAX_ALIAS_CHARS,
    MAX_FLOW_DEPTH,
    MAX_NODES,
    MapNode,
    YamlSyntaxError,
    compose,
    iter_strings,
)

AGGREGATION = (
    "aggregations:\n  a:\n    query_filter: status:open\n    group_by: [status]\n    limit: 3\n"
)
TOO_MANY_CHARS = (
    f"invalid YAML: aliases repeat more than {MAX_ALIAS_CHARS} characters "
    "(use fewer aliases of this value, or shorter ones)"
)
TOO_DEEP = f"invalid YAML: nested more than {MAX_FLOW_DEPTH} levels deep"


def doubling(levels: int, size: int) -> str:
    """A "billion laughs" with only two aliases a level: a ``size``-character value
    doubled ``levels`` times (2**levels copies, far fewer values than MAX_NODES)."""
    lines = [f'l0: &l0 "{"x" * size}"']
    lines += [f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def wide(copies: int, size: int) -> str:
    """One long value, aliased ``copies`` times."""
    items = "".join("  - *w\n" for _ in range(copies))
    return f'w: &w "{"y" * size}"\nall:\n{items}'


def deep_block(levels: int) -> str:
    """Block sequences and mappings in turn, ``levels`` deep (the document's own mapping
    is the first level)."""
    text, indent = "x:\n", 2
    for level in range(levels - 1):
        text += " " * indent + ("k:\n" if level % 2 else "-\n")
        indent += 2
    return text + " " * indent + "v\n"


# --------------------------------------------------------------------------- characters


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        (doubling(10, 2_000), 1, 5),  # 2 MB from a 2 KB file, 2,047 values
        (doubling(40, 10), 1, 5),  # a trillion copies of a short value
        (wide(12, 10_000), 1, 4),  # 120 KB from one 10 KB value
        (wide(2_000, 100), 1, 4),  # 200 KB from many aliases of a short value
    ],
    ids=["doubling", "doubling-short", "wide", "wide-many"],
)
def test_aliases_that_repeat_too_much_text_are_one_error(
    yaml_loader: str, text: str, line: int, column: int
) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(YamlSyntaxError) as caught:
            compose(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (caught.value.line, caught.value.column, caught.value.message) == (
        line,
        column,
        TOO_MANY_CHARS,
    )
    assert time.perf_counter() - started < 5
    assert peak < 20 * len(text) + 4_000_000  # nothing close to what it would expand to


def test_aliases_within_the_character_limit_are_followed(yaml_loader: str) -> None:
    # Each alias repeats the value's source text, quotes included (1,002 characters);
    # the value where it is written is not a repeat.
    copies = MAX_ALIAS_CHARS // 1_002
    root = compose(wide(copies, 1_000))
    assert isinstance(root, MapNode)
    assert sum(1 for _ in iter_strings(root)) == 3 + copies  # w, its value, all, and the copies
    with pytest.raises(YamlSyntaxError) as caught:
        compose(wide(copies + 1, 1_000))
    assert caught.value.message == TOO_MANY_CHARS


def test_the_count_of_values_still_holds_for_short_values(yaml_loader: str) -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        compose(doubling(20, 1).replace('"x"', "[x]"))  # 2**21 values of 1 character
    assert caught.value.message == (
        f"invalid YAML: more than {MAX_NODES} values once aliases are expanded"
    )


# --------------------------------------------------------------------------- depth


@pytest.mark.parametrize(
    "text",
    [
        "x: " + "[" * 100_000 + "]" * 100_000,
        "x: " + "{a: " * 20_000 + "1" + "}" * 20_000,
        "? " + "[" * 5_000 + "]" * 5_000 + "\n: 1\n",  # in a key
        deep_block(700),
        "x:\n" + "".join(" " * (2 * i + 2) + "-\n" for i in range(3_000)),
        "x: &d " + "[" * 60 + "]" * 60 + "\ny: " + "[" * 60 + "*d" + "]" * 60 + "\n",
        "%YAML 1.1\n---\nx: " + "[" * 2_000 + "]" * 2_000 + "\n",
    ],
    ids=["flow-lists", "flow-maps", "key", "block", "block-lists", "alias-of-deep", "yaml-1.1"],
)
def test_deep_nesting_is_one_error_on_every_path(yaml_loader: str, text: str) -> None:
    for parse in (compose, format_text):
        with pytest.raises(YamlSyntaxError) as caught:
            parse(text)
        assert caught.value.message == TOO_DEEP
        assert caught.value.line >= 1 and caught.value.column >= 1


def test_the_pure_python_composer_stops_soon_past_the_limit(
    without_libyaml: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PyYAML's composer recurses once per level: a host that raised the recursion limit
    # must not let it recurse thousands of levels deep (seconds of scanning, or a crash).
    compose_node = yaml.composer.Composer.compose_node
    active, deepest = 0, 0

    def counted(self: Any, parent: Any, index: Any) -> Any:
        nonlocal active, deepest
        active += 1
        deepest = max(deepest, active)
        try:
            return compose_node(self, parent, index)
        finally:
            active -= 1

    monkeypatch.setattr(yaml.composer.Composer, "compose_node", counted)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(40_000)
    try:
        with pytest.raises(YamlSyntaxError) as caught:
            compose("x: " + "[" * 5_000 + "]" * 5_000 + "\n")
    finally:
        sys.setrecursionlimit(limit)
    assert (caught.value.line, caught.value.column, caught.value.message) == (1, 103, TOO_DEEP)
    assert deepest <= 2 * MAX_FLOW_DEPTH + 2


def test_fmt_rewrites_documents_nested_up_to_the_limit(yaml_loader: str) -> None:
    for text in (
        "x: " + "[" * (MAX_FLOW_DEPTH - 1) + "]" * (MAX_FLOW_DEPTH - 1) + "\n",
        deep_block(MAX_FLOW_DEPTH - 1),
        "x: &d " + "[" * 49 + "]" * 49 + "\ny: " + "[" * 49 + "*d" + "]" * 49 + "\n",
    ):
        formatted = format_text(text)
        assert format_text(formatted) == formatted


# --------------------------------------------------------------------------- commands

HOSTILE = {
    "laughs": doubling(12, 1_000) + "title: T\n" + AGGREGATION,
    "wide": 'title: &t "'
    + "t" * 50_000
    + '"\ndescription: *t\nvars:\n'
    + "".join(f"  v{i}: *t\n" for i in range(4))
    + AGGREGATION,
    "deep": "title: T\n" + AGGREGATION + "x: " + "[" * 50_000 + "]" * 50_000 + "\n",
    "deepblock": "title: T\n" + AGGREGATION + deep_block(400),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("command", [["validate"], ["plan", "--emulator"], ["fmt", "--check"]])
def test_commands_refuse_hostile_files_in_one_line(
    yaml_loader: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    command: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / f"{name}.yaml").write_text(HOSTILE[name])
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if ": error: " in line]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output and "RecursionError" not in result.output
    where, message = errors[0].split(": error: ")
    assert where.removeprefix("Error: ").startswith(f"reports/{name}.yaml:")
    _, line, column = where.rsplit(":", 2)
    assert int(line) >= 1 and int(column) >= 1
    assert message.startswith((TOO_MANY_CHARS, TOO_DEEP))
