"""YAML text → positioned nodes: agreement with ruamel.yaml, positions, limits, errors."""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from casereport.definitions import yamlnodes
from casereport.definitions.models import SourceString
from casereport.definitions.yamlnodes import (
    MAX_FLOW_DEPTH,
    MAX_NODES,
    MapNode,
    ScalarNode,
    SeqNode,
    YamlSyntaxError,
    compose,
    iter_strings,
    value_positions,
    yaml_syntax_error,
)

STR = "tag:yaml.org,2002:str"


# --------------------------------------------------------------------------- positions


def located(text: str) -> SourceString:
    """The SourceString of the `q:` value in ``text``."""
    root = compose(text)
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


# --------------------------------------------------------------------------- generated documents

# Scalars of the kind reports are written with (so nested documents are often valid).
TYPICAL = [
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
SCALARS = st.sampled_from(
    [
        *TYPICAL,
        "-3",
        "+4",
        "1.5",
        "False",
        "@team",
        "a: b",
        "a #b",
        "- a",
        "? x",
        ":x",
        "'q'",
        '"dq"',
        '"a\\u00e9"',
        "'open",
        '"open',
        "[a, b]",
        "[a,]",
        "[a, [b]]",
        "[a: b]",
        "{a: 1}",
        "&anchor x",
        "*alias",
        "!tag x",
        "|",
        "'q' # comment",
        "[a] # comment",
        "'q'x",
        "%x",
        "`x",
        "a\tb",
    ]
)
TYPICAL_SCALARS = st.sampled_from(TYPICAL)
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
                lines.append(f"{pad}{key}: {draw(st.one_of(TYPICAL_SCALARS, SCALARS))}{comment}")
                continue
            lines.append(f"{pad}{key}:{comment}")
            inner = indent + draw(st.sampled_from([1, 2, 4]))
            if shape == "map":
                lines += mapping(inner, depth + 1)
            else:
                item_pad = " " * (inner if shape == "seq" else indent)
                scalars = st.one_of(TYPICAL_SCALARS, SCALARS)
                for item in draw(st.lists(scalars, min_size=1, max_size=3)):
                    lines += noise()
                    lines.append(f"{item_pad}- {item}")
        return lines

    return "\n".join(mapping(draw(st.sampled_from([0, 0, 2])), 0)) + "\n"


def flat(node: object) -> object:
    """A node tree as plain tuples; an empty plain scalar's place is left out (ruamel.yaml
    puts it where the next token starts, PyYAML just after the ":" or "-")."""
    if node is None:
        return None
    if isinstance(node, ScalarNode):
        if node.raw == "" and node.style == "":
            return ("scalar", node.value, node.tag, "", "", "empty")
        return ("scalar", node.value, node.tag, node.style, node.raw, node.line, node.column)
    if isinstance(node, MapNode):
        return ("map", node.line, node.column, [(flat(k), flat(v)) for k, v in node.pairs])
    assert isinstance(node, SeqNode)
    return ("seq", node.line, node.column, [flat(i) for i in node.items])


def ruamel_flat(node: Any, text: str) -> object:
    """ruamel.yaml's node tree (what loading used before) in the shape of ``flat``."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    mark = node.start_mark
    tag = str(node.tag.value if hasattr(node.tag, "value") else node.tag)
    if isinstance(node, MappingNode):
        pairs = [(ruamel_flat(k, text), ruamel_flat(v, text)) for k, v in node.value]
        return ("map", mark.line, mark.column, pairs)
    if isinstance(node, SequenceNode):
        return ("seq", mark.line, mark.column, [ruamel_flat(i, text) for i in node.value])
    raw = text[mark.index : node.end_mark.index]
    style = node.style or ""
    if raw == "" and style == "":
        return ("scalar", node.value, tag, "", "", "empty")
    return ("scalar", node.value, tag, style, raw, mark.line, mark.column)


REJECTED = "rejected"


def ruamel_compose(text: str) -> object:
    """ruamel.yaml's tree, or its error as loading worded it before."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ReusedAnchorWarning
        try:
            node = YAML(typ="safe", pure=True).compose(text)
        except YAMLError as exc:
            error = yaml_syntax_error(exc, text)
            # ruamel.yaml wrote "but found ('<block mapping start>',)": a tuple, by mistake.
            message = re.sub(r"\(('[^']*'),\)", r"\1", error.message)
            return (REJECTED, error.line, error.column, message)
    return None if node is None else ruamel_flat(node, text)


def rejected(result: object) -> bool:
    return isinstance(result, tuple) and result[0] == REJECTED


def ours(text: str) -> object:
    try:
        return flat(compose(text))
    except YamlSyntaxError as exc:
        return (REJECTED, exc.line, exc.column, exc.message)


def agrees_with_ruamel_yaml(text: str) -> bool:
    """Both accept ``text`` and compose the same tree (values, tags, styles, source text,
    positions), or both reject it with the same message at the same place; unless they
    differ for a known reason. True when both accepted it."""
    expected, got = ruamel_compose(text), ours(text)
    if rejected(got) and "duplicate anchor" in str(got):
        # ruamel.yaml only warned about an anchor defined twice, and read on: it accepted
        # the file, or refused it further on.
        assert not rejected(expected) or tuple(expected)[1:3] >= tuple(got)[1:3], expected
    elif not rejected(expected) and rejected(got):
        raise AssertionError(got)
    elif rejected(expected) and not rejected(got):
        # Valid YAML that ruamel.yaml refused: a tab inside a plain scalar (libyaml reads
        # it), a block scalar whose first line is blank, a second "..." (ruamel.yaml read
        # an empty document after it).
        assert "\t" in text or "|" in text or text.count("...") > 1, got
    elif "%" not in text and "..." not in text and "|" not in text:
        # (ruamel.yaml worded errors after a directive or "..." its own way, and made
        # more of the indentation of a block scalar.)
        assert got == expected
    return not rejected(got) and not rejected(expected)


def test_composed_trees_agree_with_ruamel_yaml_on_nested_documents(yaml_loader: str) -> None:
    both = 0

    @settings(max_examples=500, deadline=None)
    @given(tree_documents())
    def check(text: str) -> None:
        nonlocal both
        both += agrees_with_ruamel_yaml(text)

    check()
    assert both >= 100  # the comparison is not vacuous


def test_composed_trees_agree_with_ruamel_yaml(yaml_loader: str) -> None:
    @settings(max_examples=400, deadline=None)
    @given(documents())
    def check(text: str) -> None:
        agrees_with_ruamel_yaml(text)

    check()


def test_example_reports_compose_as_with_ruamel_yaml() -> None:
    from pathlib import Path

    for file in sorted((Path(__file__).resolve().parent.parent / "reports").glob("*.yaml")):
        text = file.read_text()
        assert ours(text) == ruamel_compose(text) != REJECTED


def test_an_alias_is_the_anchored_node_again() -> None:
    assert flat(compose("a: &x 1\nb: *x\n")) == (
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


# --------------------------------------------------------------------------- positions in the text


def offset(text: str, line: int, column: int) -> int:
    """The index in ``text`` of a 0-based line and column (a byte order mark is not a
    column)."""
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
    return starts[line] + column + (1 if line == 0 and text.startswith("\ufeff") else 0)


WORDS = st.sampled_from(["a", "status:open", "b-c", "x", "(P1", "OR", "é", "😀", "1"])
ESCAPES = st.sampled_from(["", '\\"', "\\\\", "\\t", "\\u00e9", "\\x41", "\\n", "\\/"])


@st.composite
def scalar_documents(draw: st.DrawFn) -> str:
    """``q: <scalar>`` in every style, over one or more lines, with escapes, after an
    optional byte order mark and with any line ends."""
    words = draw(st.lists(WORDS, min_size=1, max_size=6))
    style = draw(st.sampled_from(["plain", "'", '"', "|", ">", "|-", ">+"]))
    breaks = draw(st.lists(st.sampled_from([" ", "\n  ", "\n\n  "]), min_size=len(words)))
    if style == "plain":
        body = "".join(w + b for w, b in zip(words, breaks, strict=False)).rstrip(" \n")
        value = body
    elif style == "'":
        body = "".join(w.replace("(", "'") + b for w, b in zip(words, breaks, strict=False))
        value = "'" + body.rstrip(" \n").replace("'", "''") + "'"
    elif style == '"':
        parts = [w + draw(ESCAPES) for w in words]
        body = "".join(p + b for p, b in zip(parts, breaks, strict=False)).rstrip(" \n")
        value = '"' + body.replace("\n\n", "\\\n") + '"'  # and an escaped line break
    else:
        lines = " ".join(words).split(" ")
        value = style + "\n" + "\n".join("  " + line for line in lines)
    text = f"q: {value}\nz: 1\n"
    text = draw(st.sampled_from(["", "\ufeff"])) + text
    return text.replace("\n", draw(st.sampled_from(["\n", "\r\n"])))


def check_positions(text: str, root: yamlnodes.Node | None) -> int:
    """Every scalar starts where its source text is, and every character of its value is
    where ``SourceString.location_of`` says; the number of characters checked."""
    checked = 0
    for node in iter_strings(root):
        if not node.raw:
            continue
        assert text[offset(text, node.line, node.column) :].startswith(node.raw)
        source = SourceString(node.value, node.line + 1, node.column + 1, node.style, node.raw)
        if (
            value_positions(node.value, node.raw, node.style, node.line + 1, node.column + 1)
            is None
        ):
            # Not rebuilt (errors then point at the scalar's start): an empty block scalar,
            # an anchor or a tag before it, a tab, a "\r\n" inside it.
            odd = node.raw[0] in "&!" or "\t" in node.raw or "\r" in node.raw
            assert odd or not node.value, node.raw
            continue
        for index, char in enumerate(node.value):
            line, column = source.location_of(index)
            written = text[offset(text, line - 1, column - 1)]
            if char in " \n" or (node.style == '"' and written == "\\"):
                continue  # a folded line break, or an escape
            assert written == char, (node.value, index, line, column)
            checked += 1
    return checked


@settings(max_examples=400, deadline=None)
@given(scalar_documents())
def test_every_character_of_a_value_is_where_its_position_says(text: str) -> None:
    root = compose(text)
    assert check_positions(text, root) >= 1
    assert ours(text) == ruamel_compose(text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(documents(), tree_documents()))
def test_every_scalar_is_where_its_position_says(text: str) -> None:
    try:
        root = compose(text)
    except YamlSyntaxError:
        return
    check_positions(text, root)


# --------------------------------------------------------------------------- tags


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("yes", "str"),  # YAML 1.2, as ruamel.yaml read it (PyYAML alone: a boolean)
        ("on", "str"),
        ("True", "bool"),
        ("0o17", "int"),
        ("0x1F", "int"),
        ("1_000", "int"),
        ("-3", "int"),
        ("1e3", "float"),
        (".inf", "float"),
        ("~", "null"),
        ("", "null"),
        ("2024-01-01", "timestamp"),
        ("=", "value"),
        ("<<", "merge"),
        ("'12'", "str"),
        ("!!str 12", "str"),
        ("!custom x", "!custom"),
    ],
)
def test_plain_scalars_resolve_as_yaml_1_2(yaml_loader: str, value: str, tag: str) -> None:
    root = compose(f"a: {value}\n")
    assert isinstance(root, MapNode)
    got = root.pairs[0][1]
    assert isinstance(got, ScalarNode)
    assert got.tag == (tag if tag.startswith("!") else f"tag:yaml.org,2002:{tag}")


def test_a_yaml_1_1_document_resolves_as_yaml_1_1() -> None:
    root = compose("# old\n%YAML 1.1\n---\na: yes\nb: 0o17\n")
    assert isinstance(root, MapNode)
    assert [v.tag for _, v in root.pairs if isinstance(v, ScalarNode)] == [
        "tag:yaml.org,2002:bool",
        STR,
    ]


# --------------------------------------------------------------------------- limits


def nested_mappings(levels: int) -> str:
    return "".join(" " * level + "k:\n" for level in range(levels)) + " " * levels + "k: v\n"


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("[" * 10_000 + "]" * 10_000, 1, MAX_FLOW_DEPTH + 1),
        ("{" * 10_000 + "}" * 10_000, 1, MAX_FLOW_DEPTH + 1),
        ("[" * 10_000, 1, MAX_FLOW_DEPTH + 1),  # unclosed too
        ("- " * 10_000 + "x\n", 1, 2 * MAX_FLOW_DEPTH + 1),
        ("a: " + "[" * 150 + "]" * 150, 1, MAX_FLOW_DEPTH + 3),
        (nested_mappings(150), MAX_FLOW_DEPTH + 1, MAX_FLOW_DEPTH + 1),
        (nested_mappings(2_000), MAX_FLOW_DEPTH + 1, MAX_FLOW_DEPTH + 1),
    ],
    ids=["flow-lists", "flow-maps", "unclosed", "block-lists", "in-a-map", "block-maps", "deep"],
)
def test_nesting_deeper_than_the_limit_is_one_error(
    yaml_loader: str, text: str, line: int, column: int
) -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        compose(text)
    message = f"invalid YAML: nested more than {MAX_FLOW_DEPTH} levels deep"
    assert (caught.value.line, caught.value.column, caught.value.message) == (
        line,
        column,
        message,
    )


def test_nesting_up_to_the_limit_is_fine(yaml_loader: str) -> None:
    root = compose("[" * MAX_FLOW_DEPTH + "]" * MAX_FLOW_DEPTH)
    for _ in range(MAX_FLOW_DEPTH - 1):
        assert isinstance(root, SeqNode) and len(root.items) == 1
        root = root.items[0]
    assert isinstance(root, SeqNode) and root.items == []
    assert isinstance(compose(nested_mappings(MAX_FLOW_DEPTH - 1)), MapNode)


def test_aliases_are_followed_within_the_limits(yaml_loader: str) -> None:
    text = "a: &a [1, 2]\nb: &b [*a, *a, *a]\nc: [*b, *b]\n"
    root = compose(text)
    assert sum(1 for _ in iter_strings(root)) == 3 + 2 + 6 + 12
    with pytest.raises(YamlSyntaxError) as caught:
        compose("a: &a [x, *a]\n")
    assert (caught.value.line, caught.value.column) == (1, 4)
    assert caught.value.message == "invalid YAML: recursive alias"


def test_a_document_with_a_star_counts_its_values_as_ever(yaml_loader: str) -> None:
    # A "*" but no anchor: nothing is expanded, yet the count held since aliases were
    # first followed still refuses a document of too many values, at the same value.
    many = ",".join(["1"] * (MAX_NODES + 10))
    with pytest.raises(YamlSyntaxError) as caught:
        compose(f'a: "*"\nb: [{many}]\n')
    # Value MAX_NODES + 1: after the mapping, its 3 scalars and the list, the list's item
    # MAX_NODES - 4, at column 5 + 2 * (MAX_NODES - 5).
    assert (caught.value.line, caught.value.column) == (2, 2 * MAX_NODES - 5)
    assert caught.value.message == (
        f"invalid YAML: more than {MAX_NODES} values once aliases are expanded"
    )
    assert isinstance(compose(f"b: [{many}]\n"), MapNode)  # (no "*": never counted)
    # Whichever comes first is refused: the count, or nesting too deep.
    deep = "[" * (MAX_FLOW_DEPTH + 5) + "]" * (MAX_FLOW_DEPTH + 5)
    fewer = ",".join(["1"] * (MAX_NODES - 10))
    with pytest.raises(YamlSyntaxError) as caught:
        compose(f'a: "*"\nb: [{fewer}]\nc: {deep}\n')
    assert (caught.value.line, caught.value.column) == (3, 8)
    with pytest.raises(YamlSyntaxError) as caught:
        compose(f'a: "*"\nc: {deep}\nb: [{fewer}]\n')
    assert caught.value.message == f"invalid YAML: nested more than {MAX_FLOW_DEPTH} levels deep"


# --------------------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("a: 1\n- b\n", 2, 1, "bad indentation: this line does not line up with the lines "
         "above (while parsing a block mapping started at line 1, column 1)"),
        ("a: b\n c: d\n", 2, 3, 'unexpected ":": quote a value that contains ": "'),
        ("a:\n\t- b\n", 2, 1, "tab character: indent with spaces"),
        ("a: @x\n", 1, 4, "found character '@' that cannot start any token "
         "(while scanning for the next token)"),
        ("a: [b\n", 2, 1, "expected ',' or ']', but got '<stream end>' "
         "(while parsing a flow sequence started at line 1, column 4)"),
        ("a: {b: 1\n", 2, 1, "expected ',' or '}', but got '<stream end>' "
         "(while parsing a flow mapping started at line 1, column 4)"),
        ("a: *x\n", 1, 4, "found undefined alias 'x'"),
        ('a: "\\q"\n', 1, 6, "found unknown escape character 'q' "
         "(while scanning a double-quoted scalar)"),
        ("a: 1\nb\nc: 2\n", 3, 1, "could not find expected ':' "
         "(while scanning a simple key started at line 2, column 1)"),
        ("a: !e!x 1\n", 1, 4, "found undefined tag handle '!e!' (while parsing a node)"),
        ("a: 1\n---\nb: 2\n", 2, 1, "expected a single document in the stream, but found "
         "another document"),
        ("a: &x 1\nb: &x 2\n", 2, 4, "duplicate anchor 'x' (first defined at line 1)"),
        ("a: b\x07\n", 1, 5, "unacceptable character U+0007: special characters are not "
         "allowed"),
        ("\ufeffa: [b\n", 2, 1, "expected ',' or ']', but got '<stream end>' "
         "(while parsing a flow sequence started at line 1, column 4)"),
        ("a: 1\r\nb: [c\r\n", 3, 1, "expected ',' or ']', but got '<stream end>' "
         "(while parsing a flow sequence started at line 2, column 4)"),
        ("a: 1\rb: 'c\r", 3, 1, "found unexpected end of stream "
         "(while scanning a quoted scalar started at line 2, column 4)"),
    ],
)  # fmt: skip
def test_syntax_errors_are_worded_and_placed_as_before(
    yaml_loader: str, text: str, line: int, column: int, message: str
) -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        compose(text)
    got = caught.value
    assert (got.line, got.column, got.message) == (line, column, f"invalid YAML: {message}")


def test_an_error_only_libyaml_finds_keeps_its_wording() -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        compose("%YAML 1.3\n---\na: 1\n")  # (PyYAML's own parser accepts any 1.x)
    got = caught.value
    assert (got.line, got.column, got.message) == (
        1,
        1,
        "invalid YAML: found incompatible YAML document",
    )


def test_with_libyaml_no_notice(capsys: pytest.CaptureFixture[str]) -> None:
    yamlnodes._loader.cache_clear()
    assert isinstance(compose("a: 1\n"), MapNode)
    assert yamlnodes._loader() is not yamlnodes._PyLoader
    assert capsys.readouterr().err == ""


def test_without_libyaml_a_notice_says_so_once(
    without_libyaml: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert isinstance(compose("a: 1\n"), MapNode)
    assert isinstance(compose("b: 2\n"), MapNode)
    assert yamlnodes._loader() is yamlnodes._PyLoader
    assert capsys.readouterr().err == (
        "casereport: libyaml is not available, so YAML is read by PyYAML's slower "
        "pure-Python parser\n"
    )
