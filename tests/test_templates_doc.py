"""``docs/templates.md`` lists every name the built-in templates use.

The built-in templates are the first templates people copy; a name they use that the
reference does not list is a name a template author cannot find. Names are read from the
templates' Jinja2 syntax trees: the variables a template does not set itself, every
attribute read (``agg.total``) and every filter.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
from jinja2 import meta, nodes

from casereport.render.filters import FILTERS
from casereport.render.templates import BUILTIN_TEMPLATES, environment

DOC = Path(__file__).resolve().parent.parent / "docs" / "templates.md"
# Jinja2's own names, not the context's.
JINJA_NAMES = frozenset({"loop", "super", "self", "caller", "varargs", "kwargs"})
JINJA_ATTRIBUTES = frozenset({"index", "index0", "first", "last", "length", "revindex"})
JINJA_FILTERS = frozenset(jinja2.Environment().filters)


def _documented() -> set[str]:
    return set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", DOC.read_text(encoding="utf-8")))


def _template_names() -> list[str]:
    return sorted(
        str(path.relative_to(BUILTIN_TEMPLATES)) for path in BUILTIN_TEMPLATES.rglob("*.j2")
    )


def _used_names(env: jinja2.Environment, source: str) -> tuple[set[str], set[str], set[str]]:
    """The context variables, attributes and filters a template's source uses."""
    tree = env.parse(source)
    variables = meta.find_undeclared_variables(tree) - JINJA_NAMES
    attributes = {node.attr for node in tree.find_all(nodes.Getattr)} - JINJA_ATTRIBUTES
    # ``a["key"]`` reads a name too.
    attributes |= {
        node.arg.value
        for node in tree.find_all(nodes.Getitem)
        if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str)
    }
    filters = {node.name for node in tree.find_all(nodes.Filter)}
    return variables, attributes, filters


def _undocumented(env: jinja2.Environment, source: str) -> list[str]:
    variables, attributes, filters = _used_names(env, source)
    return sorted((variables | attributes | (filters - JINJA_FILTERS)) - _documented())


def test_the_reference_lists_every_name_the_built_in_templates_use() -> None:
    env = environment(None)
    missing = {}
    for name in _template_names():
        absent = _undocumented(env, (BUILTIN_TEMPLATES / name).read_text(encoding="utf-8"))
        if absent:
            missing[name] = absent
    assert missing == {}, f"add these names to {DOC}: {missing}"


def test_the_check_reads_the_templates() -> None:
    """The check sees the names the templates really use, and flags an unlisted one."""
    env = environment(None)
    source = (BUILTIN_TEMPLATES / "partials/aggregations.html.j2").read_text(encoding="utf-8")
    _, attributes, filters = _used_names(env, source)
    assert {"total", "table_html", "svg_html"} <= attributes
    assert "number" in filters
    assert _undocumented(env, "{{ report.title }}") == []
    assert _undocumented(env, "{% for row in rows %}{{ row.label }}{% endfor %}") == []
    env.filters["no_such_filter"] = str  # a filter must exist for Jinja2 to compile it
    assert _undocumented(env, "{{ report.no_such_name | no_such_filter }} {{ nobody }}") == [
        "no_such_filter",
        "no_such_name",
        "nobody",
    ]


def test_every_filter_is_documented() -> None:
    assert sorted(set(FILTERS) - _documented()) == []
