"""``notify:`` in a report: the delivery targets (``[notify.NAME]`` in ``casereport.toml``)
its runs are sent to::

    notify: [team, leads]     # only these targets
    notify: []                # none
                              # (no key: every target)

Loading checks the list's shape (``parse_notify``); the workspace check
(``check_notify``) that every name is a target ``casereport.toml`` defines.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from casereport.definitions.checker import NodeChecker
from casereport.definitions.models import Diagnostic, NotifyName, ReportDefinition
from casereport.definitions.yamlnodes import Node, ScalarNode, SeqNode
from casereport.settings import did_you_mean

__all__ = ["check_notify", "parse_notify"]


def parse_notify(checker: NodeChecker, node: Node) -> tuple[NotifyName, ...] | None:
    """The report's ``notify:`` list, each name's shape checked (errors at their place)."""
    from casereport.settings_notify import TARGET_NAME_RE  # (only where a report has one)

    if not isinstance(node, SeqNode):
        checker.at(node, '"notify" must be a list of target names, e.g. [team]')
        return None
    names: list[NotifyName] = []
    for item in node.items:
        if not isinstance(item, ScalarNode) or not item.tag.endswith(":str"):
            checker.at(item, '"notify" entries must be target names (strings)')
        elif not TARGET_NAME_RE.match(item.value):
            checker.at(
                item,
                f'invalid notify target name "{item.value}": 1 to 64 lowercase letters, '
                "digits, - or _ (as in [notify.NAME])",
            )
        elif any(name.name == item.value for name in names):
            checker.at(item, f'"notify" lists "{item.value}" twice')
        else:
            names.append(NotifyName(item.value, item.line + 1, item.column + 1))
    return tuple(names)


def check_notify(reports: Sequence[ReportDefinition], targets: Collection[str]) -> list[Diagnostic]:
    """Every name a report's ``notify:`` lists is a defined target; errors located."""
    diagnostics = []
    defined = sorted(targets)
    known = (
        f"casereport.toml defines: {', '.join(defined)}"
        if defined
        else "casereport.toml defines no [notify.NAME] target"
    )
    for report in reports:
        for name in report.notify or ():
            if name.name not in targets:
                hint = did_you_mean(name.name, defined)
                diagnostics.append(
                    Diagnostic(
                        "error",
                        f'unknown notify target "{name.name}"{hint}; {known}',
                        str(report.path),
                        name.line,
                        name.column,
                    )
                )
    return diagnostics
