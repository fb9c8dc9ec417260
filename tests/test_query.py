"""Search-query parser and printer (``casereport.definitions.query``)."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from casereport.definitions.query import (
    And,
    MatchAll,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    Term,
    fields,
    is_plainly_valid,
    parse,
    to_string,
)
from query_strategies import nodes


def t(field: str | None, value: str, quoted: bool = False) -> Term:
    return Term(field, value, quoted)


def w(value: str) -> Term:
    """A bare free-text word."""
    return Term(None, value)


# --- parsing -----------------------------------------------------------------------------

PARSES: list[tuple[str, Node]] = [
    # The examples of Datadog's API reference.
    (
        "status:open (team:case-management OR team:event-management)",
        And(
            (
                t("status", "open"),
                Or((t("team", "case-management"), t("team", "event-management"))),
            )
        ),
    ),
    ("service:case-api", t("service", "case-api")),
    ("status:open priority:P1", And((t("status", "open"), t("priority", "P1")))),
    ("status:closed", t("status", "closed")),
    ('creation_source:"Event Management"', t("creation_source", "Event Management", True)),
    ('"kubernetes pods"', t(None, "kubernetes pods", True)),
    ("priority:(P2 OR P3)", Or((t("priority", "P2"), t("priority", "P3")))),
    ("project:SEC", t("project", "SEC")),
    # The reference also writes this unquoted; spaces end a value, so quotes are needed.
    (
        "creation_source:Event Management",
        And((t("creation_source", "Event"), w("Management"))),
    ),
    # Empty queries.
    ("", MatchAll()),
    ("   \t\n ", MatchAll()),
    # Terms.
    ("foo", w("foo")),
    ("  foo  ", w("foo")),
    ("a_b.c-d:x", t("a_b.c-d", "x")),
    ("url:http://example.com/a", t("url", "http://example.com/a")),
    ("title:a:b", t("title", "a:b")),
    ("status:-open", t("status", "-open")),
    ("status:AND", t("status", "AND")),
    ("AND:x", t("AND", "x")),
    ('title:""', t("title", "", True)),
    ('""', t(None, "", True)),
    ("a+b:c", w("a+b:c")),
    (":x", w(":x")),
    ("foo-bar", w("foo-bar")),
    ("a-", w("a-")),
    ("é:x", w("é:x")),
    # Wildcards stay in the value; quoted, '*' is literal (the flag tells the evaluator).
    ("title:kube*", t("title", "kube*")),
    ("*", w("*")),
    ('title:"kube*"', t("title", "kube*", True)),
    # Escapes outside quotes.
    (r"title:a\:b", t("title", "a:b")),
    (r"title:a\ b", t("title", "a b")),
    (r"\(", w("(")),
    (r"a\)b", w("a)b")),
    (r"a\:b", w("a:b")),
    (r"title\:x", w("title:x")),
    (r"\-foo", w("-foo")),
    (r"\AND", w("AND")),
    (r"A\ND", w("AND")),
    (r"\\", w("\\")),
    (r"a\"b", w('a"b')),
    (r"title:\(x\)", t("title", "(x)")),
    (r"kube\*", w("kube*")),
    # Escapes inside quotes: only \" and \\; any other backslash is literal.
    (r'"say \"hi\""', t(None, 'say "hi"', True)),
    (r'"a\\b"', t(None, "a\\b", True)),
    (r'"C:\temp"', t(None, "C:\\temp", True)),
    (r'title:"\\"', t("title", "\\", True)),
    ('"(a OR b)"', t(None, "(a OR b)", True)),
    # Adjacent terms are ANDed; explicit AND is the same.
    ("a b c", And((w("a"), w("b"), w("c")))),
    ("a AND b", And((w("a"), w("b")))),
    ("a AND b c", And((w("a"), w("b"), w("c")))),
    ('"a"b', And((t(None, "a", True), w("b")))),
    ('title:"a"b', And((t("title", "a", True), w("b")))),
    ("foo(bar)", And((w("foo"), w("bar")))),
    # Case-sensitive operators.
    ("a and b", And((w("a"), w("and"), w("b")))),
    ("a or b", And((w("a"), w("or"), w("b")))),
    ("not a", And((w("not"), w("a")))),
    ("a Or b", And((w("a"), w("Or"), w("b")))),
    # OR, and precedence NOT > AND > OR.
    ("a OR b", Or((w("a"), w("b")))),
    ("a OR b OR c", Or((w("a"), w("b"), w("c")))),
    ("a b OR c", Or((And((w("a"), w("b"))), w("c")))),
    ("a OR b c", Or((w("a"), And((w("b"), w("c")))))),
    ("a AND b OR c AND d", Or((And((w("a"), w("b"))), And((w("c"), w("d")))))),
    ("NOT a b", And((Not(w("a")), w("b")))),
    ("-a OR b", Or((Not(w("a")), w("b")))),
    ("(a OR b) c", And((Or((w("a"), w("b"))), w("c")))),
    # Exclusion.
    ("-status:closed", Not(t("status", "closed"))),
    ("NOT status:closed", Not(t("status", "closed"))),
    ('-"a b"', Not(t(None, "a b", True))),
    ("-(a OR b)", Not(Or((w("a"), w("b"))))),
    ("NOT(a OR b)", Not(Or((w("a"), w("b"))))),
    ("a -b", And((w("a"), Not(w("b"))))),
    ("NOT NOT x", Not(Not(w("x")))),
    ("--x", Not(Not(w("x")))),
    ("NOT -x", Not(Not(w("x")))),
    # Parentheses: flattened, single operands collapse.
    ("(a)", w("a")),
    ("((a))", w("a")),
    ("(a b) c", And((w("a"), w("b"), w("c")))),
    ("a (b c)", And((w("a"), w("b"), w("c")))),
    ("(a OR b) OR c", Or((w("a"), w("b"), w("c")))),
    ("a OR (b OR c)", Or((w("a"), w("b"), w("c")))),
    ("((a OR b) c) d", And((Or((w("a"), w("b"))), w("c"), w("d")))),
    ("( a )", w("a")),
    # Value groups: the field distributes to every value.
    ("priority:(P2)", t("priority", "P2")),
    (
        "priority:(P1 OR P2 OR P3)",
        Or((t("priority", "P1"), t("priority", "P2"), t("priority", "P3"))),
    ),
    ("tag:(a b)", And((t("tag", "a"), t("tag", "b")))),
    ("tag:(a AND b)", And((t("tag", "a"), t("tag", "b")))),
    ("tag:(a OR b c)", Or((t("tag", "a"), And((t("tag", "b"), t("tag", "c")))))),
    ("tag:(-a)", Not(t("tag", "a"))),
    ("tag:(NOT a)", Not(t("tag", "a"))),
    (
        'tag:(a -(b OR "c d") e)',
        And(
            (
                t("tag", "a"),
                Not(Or((t("tag", "b"), t("tag", "c d", True)))),
                t("tag", "e"),
            )
        ),
    ),
    ('title:("a b" OR c*)', Or((t("title", "a b", True), t("title", "c*")))),
    (r"title:(a\:b)", t("title", "a:b")),
    ("tag:(a OR b) c", And((Or((t("tag", "a"), t("tag", "b"))), w("c")))),
    ("tag:(a b) c", And((t("tag", "a"), t("tag", "b"), w("c")))),
    ("-tag:(a OR b)", Not(Or((t("tag", "a"), t("tag", "b"))))),
    ("tag:(a) OR tag:(b)", Or((t("tag", "a"), t("tag", "b")))),
]


@pytest.mark.parametrize(("query", "tree"), PARSES, ids=[q or "<empty>" for q, _ in PARSES])
def test_parse(query: str, tree: Node) -> None:
    assert parse(query) == tree


# --- errors ------------------------------------------------------------------------------

ERRORS: list[tuple[str, str, int]] = [
    # Unbalanced parentheses.
    ("(a", "unbalanced '('", 0),
    ("a (b", "unbalanced '('", 2),
    ("((a)", "unbalanced '('", 0),
    ("(", "unbalanced '('", 0),
    ("a)", "unbalanced ')'", 1),
    (")", "unbalanced ')'", 0),
    ("(a))", "unbalanced ')'", 3),
    ("a ) b", "unbalanced ')'", 2),
    ("tag:(a)) b", "unbalanced ')'", 7),
    # Unterminated quotes.
    ('"abc', "unterminated quoted string", 0),
    ('a "b', "unterminated quoted string", 2),
    ('title:"abc', "unterminated quoted string", 6),
    (r'"abc\"', "unterminated quoted string", 0),
    ('"a" "', "unterminated quoted string", 4),
    # Dangling operators.
    ("status:open AND", "expected a term after 'AND'", 12),
    ("a OR", "expected a term after 'OR'", 2),
    ("NOT", "expected a term after 'NOT'", 0),
    ("a NOT", "expected a term after 'NOT'", 2),
    ("-", "expected a term after '-'", 0),
    ("a -", "expected a term after '-'", 2),
    ("a - b", "expected a term after '-'", 2),
    ("(-)", "expected a term after '-'", 1),
    ("-AND b", "expected a term after '-'", 0),
    ("a AND OR b", "expected a term after 'AND'", 2),
    ("a OR OR b", "expected a term after 'OR'", 2),
    ("a AND AND b", "expected a term after 'AND'", 2),
    ("(a OR)", "expected a term after 'OR'", 3),
    ("(a OR", "expected a term after 'OR'", 3),
    ("NOT OR a", "expected a term after 'NOT'", 0),
    ("OR x", "expected a term before 'OR'", 0),
    ("AND x", "expected a term before 'AND'", 0),
    ("(OR a)", "expected a term before 'OR'", 1),
    ("tag:(AND a)", "expected a term before 'AND'", 5),
    # Missing values.
    ("status:", "missing value after 'status:'", 0),
    ("status: open", "missing value after 'status:'", 0),
    ("a status:", "missing value after 'status:'", 2),
    ("(status:)", "missing value after 'status:'", 1),
    # Empty groups.
    ("()", "empty parentheses", 0),
    ("a ( ) b", "empty parentheses", 2),
    ("tag:()", "empty value group after 'tag:'", 4),
    ("tag:( )", "empty value group after 'tag:'", 4),
    # Unterminated value groups.
    ("tag:(", "unbalanced '(' after 'tag:'", 4),
    ("tag:(a OR b", "unbalanced '(' after 'tag:'", 4),
    ("tag:(a (b)", "unbalanced '(' after 'tag:'", 4),
    # Fields inside value groups.
    ("a:(b:c)", "nested field 'b:' inside the value group of 'a:'", 3),
    ('a:(x OR b:"c")', "nested field 'b:' inside the value group of 'a:'", 8),
    ("a:(x b:(c))", "nested field 'b:' inside the value group of 'a:'", 5),
    # A trailing backslash escapes nothing.
    ("a\\", "expected a character after '\\'", 1),
    ("\\", "expected a character after '\\'", 0),
    # Depth limit.
    ("(" * 51 + "a" + ")" * 51, "query nests more than 50 levels deep", 50),
    ("-" * 51 + "a", "query nests more than 50 levels deep", 50),
    ("NOT " * 51 + "a", "query nests more than 50 levels deep", 200),
    ("tag:" + "(" * 51 + "a" + ")" * 51, "query nests more than 50 levels deep", 54),
]


@pytest.mark.parametrize(("query", "reason", "position"), ERRORS, ids=[q for q, _, _ in ERRORS])
def test_parse_error(query: str, reason: str, position: int) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(query)
    assert (caught.value.reason, caught.value.position) == (reason, position)
    assert caught.value.query == query


def test_error_message_names_the_column() -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse("status:open AND")
    assert caught.value.message == "invalid query at column 13: expected a term after 'AND'"


def test_nesting_up_to_the_limit_parses() -> None:
    assert parse("(" * 50 + "a" + ")" * 50) == w("a")
    tree: Node = w("a")
    for _ in range(50):
        tree = Not(tree)
    assert parse("-" * 50 + "a") == tree


# --- printing ----------------------------------------------------------------------------

PRINTS: list[tuple[Node, str]] = [
    (MatchAll(), ""),
    (t("status", "open"), "status:open"),
    (w("foo"), "foo"),
    (t(None, "kubernetes pods", True), '"kubernetes pods"'),
    (t("creation_source", "Event Management", True), 'creation_source:"Event Management"'),
    (t("status", "open", True), 'status:"open"'),
    (t("title", "", True), 'title:""'),
    (t("title", 'say "hi" \\o/', True), r'title:"say \"hi\" \\o/"'),
    (t("title", "kube*"), "title:kube*"),
    # Unquoted values keep quoted=False by escaping instead of quoting.
    (t("title", "a b"), r"title:a\ b"),
    (t("title", "(x)"), r"title:\(x\)"),
    (t("title", 'a"b\\c'), r"title:a\"b\\c"),
    (t("title", "a:b"), "title:a:b"),
    (t("title", "-x"), "title:-x"),
    (t("title", "AND"), "title:AND"),
    (w("a:b"), r"a\:b"),
    (w("-x"), r"\-x"),
    (w("a-"), "a-"),
    (w("AND"), r"\AND"),
    (w("OR"), r"\OR"),
    (w("NOT"), r"\NOT"),
    (w("and"), "and"),
    (w("a\tb"), "a\\\tb"),
    (And((w("a"), w("b"), t("c", "d"))), "a b c:d"),
    (Or((w("a"), w("b"))), "a OR b"),
    (Or((And((w("a"), w("b"))), w("c"))), "a b OR c"),
    (And((Or((w("a"), w("b"))), w("c"))), "(a OR b) c"),
    (Not(w("a")), "-a"),
    (Not(t("status", "closed")), "-status:closed"),
    (Not(Not(w("a"))), "--a"),
    (Not(And((w("a"), w("b")))), "-(a b)"),
    (Not(Or((w("a"), w("b")))), "-(a OR b)"),
    (Not(w("-a")), r"-\-a"),
    (Or((Not(w("a")), And((w("b"), Not(Or((w("c"), w("d")))))))), "-a OR b -(c OR d)"),
    # Not normalised, still printable: parse flattens what these print.
    (And((w("a"),)), "a"),
    (And((And((w("a"), w("b"))), w("c"))), "a b c"),
]


@pytest.mark.parametrize(("tree", "text"), PRINTS, ids=[text or "<empty>" for _, text in PRINTS])
def test_to_string(tree: Node, text: str) -> None:
    assert to_string(tree) == text


@pytest.mark.parametrize(
    ("query", "canonical"),
    [
        ("priority:(P2 OR P3)", "priority:P2 OR priority:P3"),
        ("a AND b", "a b"),
        ("NOT status:closed", "-status:closed"),
        ("((a OR b)) AND c", "(a OR b) c"),
        ("  a   b  ", "a b"),
        (r'"C:\temp"', r'"C:\\temp"'),
        (r"\a\b", "ab"),
        ("tag:(a OR b) c", "(tag:a OR tag:b) c"),
    ],
)
def test_canonical_form(query: str, canonical: str) -> None:
    assert to_string(parse(query)) == canonical
    assert parse(canonical) == parse(query)


@pytest.mark.parametrize(
    ("tree", "reason"),
    [
        (t("title", ""), "an empty value must be quoted"),
        (w(""), "an empty value must be quoted"),
        (t("a b", "x"), "'a b' is not a field name"),
        (t("-a", "x"), "'-a' is not a field name"),
        (t("", "x"), "'' is not a field name"),
        (And((MatchAll(), w("a"))), "MatchAll can only be printed as a whole query"),
        (Not(MatchAll()), "MatchAll can only be printed as a whole query"),
        (And(()), "cannot print an empty And"),
        (Or(()), "cannot print an empty Or"),
    ],
)
def test_to_string_rejects_trees_parse_cannot_produce(tree: Node, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        to_string(tree)


# --- fields ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("", frozenset()),
        ('foo "bar baz"', frozenset()),
        ("status:open", frozenset({"status"})),
        (
            "status:open (team:a OR -priority:(P1 P2)) NOT status:closed x",
            frozenset({"status", "team", "priority"}),
        ),
    ],
)
def test_fields(query: str, names: frozenset[str]) -> None:
    assert fields(parse(query)) == names


# --- properties --------------------------------------------------------------------------


@settings(max_examples=500)
@given(nodes())
def test_round_trip(tree: Node) -> None:
    assert parse(to_string(tree)) == tree


@settings(max_examples=300)
@given(nodes(fields=["status", "priority", None], values=["open", "P*", "a b", "OR"]))
def test_round_trip_with_given_fields_and_values(tree: Node) -> None:
    assert parse(to_string(tree)) == tree
    assert fields(tree) <= {"status", "priority"}


@settings(max_examples=300)
@given(nodes())
def test_printing_is_idempotent(tree: Node) -> None:
    text = to_string(tree)
    assert to_string(parse(text)) == text


# Characters of the syntax, to make random text hit the grammar more often than st.text().
_SYNTAX_TEXT = st.lists(
    st.sampled_from([*'ab:()"\\-* \t', "AND", "OR", "NOT", "x:", "é"]), max_size=30
).map("".join)


@settings(max_examples=1000)
@given(st.one_of(st.text(), _SYNTAX_TEXT))
@example("(" * 10_000)
@example("-" * 10_000 + "a")
@example("a:(" * 5_000)
def test_parse_only_raises_query_syntax_error(text: str) -> None:
    try:
        tree = parse(text)
    except QuerySyntaxError as error:
        assert 0 <= error.position <= len(text)
        assert error.reason
    else:
        # Whatever parses prints canonically, and the canonical text means the same tree.
        assert parse(to_string(tree)) == tree


# -- the plain shape ------------------------------------------------------------------

PLAIN = [
    "",
    "  ",
    "service:case-api -status:closed project:P10",
    "project:SUP service:case-api status:(open OR in_progress) env:prod team:team-5",
    'project:SUP -status:closed priority:(P1 OR P2) title:"disk full"',
    "a OR b AND -c",
    'tag:(a -b "c d")',
    "url:http://x a:b:c NOTx :x",
]
# Besides every query of ERRORS: errors close to the plain shape, and valid queries that
# only the parser reads.
NOT_PLAIN = [
    "tag:(a:b OR c)",
    'tag:(a "b\\")',
    'a "\\" b',
    "a: b",
    "(a OR b) c",
    "--a",
    "a NOT b",
    "a\\ b",
    'tag:(a)b "a"b',
    "a+b:",
]


@pytest.mark.parametrize("text", PLAIN)
def test_plain_queries_are_valid_without_a_tree(text: str) -> None:
    assert is_plainly_valid(text)
    parse(text)


@pytest.mark.parametrize("text", [query for query, _, _ in ERRORS] + NOT_PLAIN)
def test_errors_and_other_queries_are_left_to_the_parser(text: str) -> None:
    assert not is_plainly_valid(text)


@settings(max_examples=2000)
@given(st.one_of(st.text(), _SYNTAX_TEXT, nodes().map(to_string)))
@example(" " * 50_000 + "(")  # linear time: whitespace is never matched two ways
@example("x:(a" + " " * 50_000 + "(")
@example("a " * 20_000 + "a:")
def test_a_plainly_valid_query_parses(text: str) -> None:
    if is_plainly_valid(text):
        parse(text)
