"""``checks:`` entries: CEL assertions over a report's numbers, like Terraform ``check`` blocks.

A report lists them at report level (over ``aggregations["id"]``) or in an aggregation (over
its ``total``, ``groups``, ``compared``, ``change``, ``change_ratio`` and ``limit``; a
``for_each`` aggregation checks each of its keys)::

    checks:
      - name: few-p1
        assert: 'groups["P1"] == 0'
        severity: warn                 # error (default) or warn
        message: No open P1 cases

Loading checks each entry's shape here (``parse_checks``); the CEL text itself is checked
by ``casereport.checks.validate``, which needs the CEL library and so runs only where
checks exist. Evaluation is ``casereport.checks.evaluate``.
"""

from __future__ import annotations

from typing import Literal

from casereport.definitions.checker import NodeChecker
from casereport.definitions.models import CheckDefinition
from casereport.definitions.yamlnodes import MapNode, Node, ScalarNode, SeqNode, node_kind
from casereport.settings import did_you_mean

__all__ = ["CHECK_KEYS", "CHECK_SEVERITIES", "parse_checks"]

CHECK_KEYS = ("name", "assert", "severity", "message")
CHECK_SEVERITIES = ("error", "warn")
_STR = "tag:yaml.org,2002:str"


def parse_checks(checker: NodeChecker, node: Node) -> tuple[CheckDefinition, ...]:
    """A ``checks:`` list, each entry's shape checked (errors at their place); an entry
    with an error is left out."""
    if not isinstance(node, SeqNode):
        checker.at(
            node, f'"checks" must be a list of {{name, assert}} entries, not {node_kind(node)}'
        )
        return ()
    checks: list[CheckDefinition] = []
    seen: dict[str, int] = {}
    for item in node.items:
        if not isinstance(item, MapNode):
            checker.at(item, 'a "checks" entry must be a mapping: {name: NAME, assert: CEL}')
            continue
        fields = checker.mapping(item, CHECK_KEYS, "in a check")
        suggested = checker.suggested
        missing = [k for k in ("name", "assert") if k not in fields and k not in suggested]
        for key in missing:
            what = "a name" if key == "name" else "an assert (a CEL expression such as total <= 50)"
            checker.at(item, f'a check needs "{key}": {what}')
        name = checker.string(fields["name"][1], 'a check\'s "name"') if "name" in fields else None
        assertion = None
        if "assert" in fields:
            assertion = checker.string(fields["assert"][1], 'a check\'s "assert"')
        severity = _severity(checker, fields["severity"][1]) if "severity" in fields else "error"
        message = ""
        if "message" in fields:
            found = checker.string(fields["message"][1], 'a check\'s "message"', allow_empty=True)
            message = found.value if found is not None else ""
        if name is not None and name.value in seen:
            checker.at(
                fields["name"][1],
                f'duplicate check name "{name.value}" (first at line {seen[name.value]})',
            )
            continue
        if name is None or assertion is None or severity is None:
            continue
        seen[name.value] = name.line
        checks.append(
            CheckDefinition(
                name.value, assertion, severity, message, item.line + 1, item.column + 1
            )
        )
    return tuple(checks)


def _severity(checker: NodeChecker, node: Node) -> Literal["error", "warn"] | None:
    if isinstance(node, ScalarNode) and node.tag == _STR and node.value in CHECK_SEVERITIES:
        return "warn" if node.value == "warn" else "error"
    if isinstance(node, ScalarNode) and node.tag == _STR:
        hint = did_you_mean(node.value, CHECK_SEVERITIES)
        checker.at(node, f'unknown severity "{node.value}"' + (hint or ": use error or warn"))
    else:
        checker.at(node, f'"severity" must be error or warn, not {node_kind(node)}')
    return None
