"""Delivery at the end of ``apply`` and by ``casereport notify``: the engine's side (the
workspace, the lock, the state), around ``casereport.notify``, which builds and sends.

A workspace without ``[notify.NAME]`` targets imports nothing of delivery. After an
apply the state is already written; delivering never changes it but to record what was
sent (``notified``), so a failed delivery leaves it as the apply wrote it. Failures are
returned as lines, one per target: the apply itself succeeded, and says so (exit 0, with
the lines as warnings); ``casereport notify``, whose only job is sending, exits 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from casereport.checks.results import CheckResult
from casereport.engine.checks import workspace_results
from casereport.engine.workspace import Notice, Options, Workspace, load_workspace
from casereport.errors import CaseReportError, ConfigError
from casereport.state import journal
from casereport.state.model import State

if TYPE_CHECKING:
    from casereport.notify.deliver import Delivered, Delivery

Sleep = Callable[[float], None]


@dataclass
class NotifyOutcome:
    """What ``casereport notify`` did: messages described (dry run), sent, failed."""

    described: list[str] = field(default_factory=list)
    sent: dict[str, dict[str, str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def sent_count(self) -> int:
        return sum(len(reports) for reports in self.sent.values())

    def sent_line(self) -> str:
        """``Sent 2 messages: team (a, b).``, or that there was nothing to send."""
        if not self.sent:
            return "Nothing sent."
        where = "; ".join(f"{t} ({', '.join(sorted(r))})" for t, r in sorted(self.sent.items()))
        count = self.sent_count
        return f"Sent {count} {'message' if count == 1 else 'messages'}: {where}."


def _due(
    workspace: Workspace, state: State, check_results: Sequence[CheckResult], *, force: bool
) -> list[Delivery]:
    from casereport.notify.deliver import due_deliveries

    return due_deliveries(
        workspace.settings.notify,
        workspace.reports,
        state,
        check_results,
        site_url=workspace.settings.site_url,
        force=force,
    )


def _deliver(
    workspace: Workspace,
    state: State,
    check_results: Sequence[CheckResult],
    *,
    force: bool,
    sleep: Sleep | None,
) -> Delivered:
    from casereport.notify.deliver import Delivered, record_sent, send_all

    deliveries = _due(workspace, state, check_results, force=force)
    done = Delivered()
    try:
        send_all(deliveries, workspace.site_dir, state, sleep=sleep, done=done)
    finally:
        # Even when stopped half-way (Ctrl-C): what went out is recorded, never sent twice.
        try:
            record_sent(workspace.state_path, state, done.sent)
        except CaseReportError as exc:
            done.failures.append(
                f"sent, but not recorded in state ({exc.message}): a later run may send it again"
            )
    return done


def notify_after_apply(
    workspace: Workspace,
    state: State,
    check_results: Sequence[CheckResult],
    *,
    sleep: Sleep | None = None,
) -> NotifyOutcome:
    """Send what the apply's run calls for (the caller holds the lock; state is written)."""
    if not workspace.settings.notify:
        return NotifyOutcome()
    done = _deliver(workspace, state, check_results, force=False, sleep=sleep)
    return NotifyOutcome(sent=done.sent, failures=done.failures)


def run_notify(
    options: Options,
    *,
    dry_run: bool = False,
    force: bool = False,
    notice: Notice | None = None,
    sleep: Sleep | None = None,
) -> NotifyOutcome:
    """``casereport notify``: send (or with ``dry_run`` describe) what the last run calls for."""
    workspace = load_workspace(options, notice)
    if not workspace.settings.notify:
        raise ConfigError(
            "no delivery targets: add a [notify.NAME] table to casereport.toml (docs/notify.md)"
        )
    if dry_run:
        state = journal.load_with_journal(workspace.state_path)
        if state is None:
            raise CaseReportError(_no_state(workspace))
        from casereport.notify.deliver import describe

        deliveries = _due(workspace, state, _check_results(workspace, state), force=force)
        return NotifyOutcome(described=[describe(d, workspace.site_dir, state) for d in deliveries])
    from casereport.state.lock import state_lock

    with state_lock(workspace.state_path, "notify", timeout=options.lock_timeout, notice=notice):
        state = journal.recover(workspace.state_path)
        if state is None:
            raise CaseReportError(_no_state(workspace))
        check_results = _check_results(workspace, state)
        done = _deliver(workspace, state, check_results, force=force, sleep=sleep)
    return NotifyOutcome(sent=done.sent, failures=done.failures)


def _check_results(workspace: Workspace, state: State) -> Sequence[CheckResult]:
    """The reports' checks, evaluated from ``state`` (never the API)."""
    return workspace_results(workspace, state)


def _no_state(workspace: Workspace) -> str:
    return f"no state at {workspace.state_path}: nothing to send yet; run `casereport apply`"
