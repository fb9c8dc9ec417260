"""Which messages a run sends, sending them, and recording what was sent.

For every target (``[notify.NAME]``) and every report that chooses it (``notify:``; by
default every report chooses every target), a report's latest run (its rendered data,
``ReportState.data_hash``) is sent when it was not sent to that target before and one of
the target's ``on`` triggers fires:

- ``always``: every run;
- ``change``: the run changed a number a reader sees (``digest.run_changed``): since the
  run this target was last sent (``notified_at``), or since the previous run;
- ``check_failed``: one of the report's checks did not pass (error or warn).

A report never rendered has no run to send. ``force`` sends every report's latest run to
every target that it chooses, whatever was sent and whatever ``on`` says.

Sending is in target order, then report order; a target that fails one report (after its
retries) is not tried for the rest in this run, and its failure is one line. What was
sent is written to state (``notified``) by the caller of ``record_sent``, after the
apply's own write: a failed delivery leaves that state exactly as the apply wrote it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from casereport.checks.results import CheckResult
from casereport.definitions.expand import ReportSpec
from casereport.notify.digest import Digest, make_digest, run_changed
from casereport.notify.send import (
    DeliveryFailed,
    host_of,
    is_loopback,
    post,
    send_mail,
    with_retries,
)
from casereport.settings_notify import NotifyTarget
from casereport.state.history import epoch
from casereport.state.model import State, file_sha256, write_state
from casereport.state.notified import was_sent, with_sent

__all__ = ["Delivered", "Delivery", "describe", "due_deliveries", "record_sent", "send_all"]


@dataclass(frozen=True)
class Delivery:
    """One message: a report's run, for one target."""

    target: NotifyTarget
    digest: Digest


@dataclass
class Delivered:
    """What sending did: runs sent (target -> report -> run), and a line per failed target."""

    sent: dict[str, dict[str, str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def _triggers(target: NotifyTarget, changed: Callable[[], bool], failing: bool) -> list[str]:
    fired = []
    for trigger in target.on:
        if (
            trigger == "always"
            or (trigger == "check_failed" and failing)
            or (trigger == "change" and changed())
        ):
            fired.append(trigger)
    return fired


def due_deliveries(
    targets: Sequence[NotifyTarget],
    reports: Sequence[ReportSpec],
    state: State,
    check_results: Sequence[CheckResult],
    *,
    site_url: str | None,
    force: bool = False,
) -> list[Delivery]:
    """The messages the state's latest runs call for (see the module docstring)."""
    digests: dict[str, Digest] = {}
    changes: dict[tuple[str, str | None], bool] = {}
    deliveries = []
    for target in targets:
        for report in sorted(reports, key=lambda r: r.name):
            rendered = state.reports.get(report.name)
            if rendered is None or (report.notify is not None and target.name not in report.notify):
                continue
            run = rendered.data_hash
            if not force and was_sent(state.notified, target.name, report.name, run):
                continue
            checks = [c for c in check_results if c.report == report.name]

            # Compared with what this target was last sent of the report, if anything.
            since = state.notified_at.get(target.name, {}).get(report.name)

            def changed(report: ReportSpec = report, since: str | None = since) -> bool:
                key = (report.name, since)
                if key not in changes:
                    changes[key] = run_changed(report, state.aggregations, since)
                return changes[key]

            fired = _triggers(target, changed, any(not c.passed for c in checks))
            if not fired and not force:
                continue
            if report.name not in digests:
                digests[report.name] = make_digest(
                    report,
                    state.aggregations,
                    state.source,
                    run=run,
                    triggers=(),
                    checks=checks,
                    site_url=site_url,
                )
            digest = replace(digests[report.name], triggers=tuple(fired or ["forced"]))
            deliveries.append(Delivery(target, digest))
    return deliveries


def _page(site_dir: Path, state: State, report: str) -> str | None:
    """The report's HTML page as the apply wrote it (None: none, or edited since)."""
    name = f"{report}.html"
    recorded = state.reports[report].outputs.get(name) if report in state.reports else None
    path = site_dir / name
    if recorded is None or file_sha256(path) != recorded:
        return None
    return path.read_text(encoding="utf-8")


def _secret(name: str, what: str) -> str:
    # A value pasted with its line end (`export X="$(cat file)"`, a CI secret) is meant
    # without it: no URL or key ends in whitespace.
    value = os.environ.get(name, "").strip()
    if not value:
        raise DeliveryFailed(f"${name} is not set ({what})", permanent=True)
    return value


def send_one(delivery: Delivery, site_dir: Path, state: State) -> Callable[[], None]:
    """A function that makes one attempt at ``delivery``."""
    target, digest = delivery.target, delivery.digest
    if target.type == "slack":
        from casereport.notify.slack import slack_message

        body = json.dumps(slack_message(digest), ensure_ascii=False).encode("utf-8")

        def slack() -> None:
            url = _secret(target.webhook_url_env, "the Slack incoming-webhook URL")
            if not url.startswith(("https://", "http://")):
                raise DeliveryFailed(
                    f"${target.webhook_url_env} does not hold an http(s) URL", permanent=True
                )
            if url.startswith("http://") and not is_loopback(url):
                # The URL is the webhook's only credential: over plain http it would cross
                # the network readable (Slack's own are https; http is for a local relay).
                raise DeliveryFailed(
                    f"${target.webhook_url_env} holds an http:// URL to {host_of(url)}: the "
                    "URL is the webhook's secret and would cross the network unencrypted; "
                    "use its https:// address",
                    permanent=True,
                )
            post(url, body, {"Content-Type": "application/json"})

        return slack
    if target.type == "webhook":
        from casereport.notify.webhook import SIGNATURE_HEADER, signature, webhook_body

        payload = webhook_body(digest, target.name)

        def webhook() -> None:
            secret = _secret(target.secret_env, "the webhook's signing key")
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: signature(payload, secret),
            }
            post(target.url, payload, headers)

        return webhook
    from casereport.notify.mail import email_message

    message = email_message(digest, target, _page(site_dir, state, digest.report))
    return lambda: send_mail(target, message)


#: Reports a failure line names (a workspace may have a thousand).
_NAMED = 5


def _attempt(delivery: Delivery, site_dir: Path, state: State) -> Callable[[], None]:
    """``send_one``'s attempt, with any other error made a ``DeliveryFailed`` that does not
    quote it: a value httpx or smtplib refuses (a URL, a password they cannot encode)
    would otherwise end the apply as an internal error, and its text may hold a secret."""
    send = send_one(delivery, site_dir, state)

    def attempt() -> None:
        try:
            send()
        except DeliveryFailed:
            raise
        except Exception as exc:
            raise DeliveryFailed(
                f"failed with {type(exc).__name__} (its text is not shown: it may hold a secret)",
                permanent=True,
            ) from exc

    return attempt


def send_all(
    deliveries: Sequence[Delivery],
    site_dir: Path,
    state: State,
    *,
    sleep: Callable[[float], None] | None = None,
    done: Delivered | None = None,
) -> Delivered:
    """Send every delivery (each with its target's retries); see the module docstring.

    ``done`` (returned) records each run as soon as it is sent, so a caller stopped
    half-way (Ctrl-C) still knows what went out."""
    import time

    done = Delivered() if done is None else done
    failed: set[str] = set()
    by_target: dict[str, list[Delivery]] = {}
    for delivery in deliveries:
        by_target.setdefault(delivery.target.name, []).append(delivery)
    for name, batch in by_target.items():
        for index, delivery in enumerate(batch):
            target = delivery.target
            try:
                with_retries(
                    _attempt(delivery, site_dir, state),
                    target.attempts,
                    target.backoff,
                    sleep or time.sleep,
                )
            except DeliveryFailed as failure:
                failed.add(name)
                left = [d.digest.report for d in batch[index:]]
                if len(left) > _NAMED:
                    left = [*left[:_NAMED], f"and {len(left) - _NAMED} more"]
                tries = f"{failure.attempts} {'attempt' if failure.attempts == 1 else 'attempts'}"
                done.failures.append(
                    f'notify target "{name}" ({target.type}): {failure.reason} (after {tries}); '
                    f"not sent: {', '.join(left)}; `casereport notify` tries again"
                )
                break
            done.sent.setdefault(name, {})[delivery.digest.report] = delivery.digest.run
    return done


def record_sent(state_path: Path, state: State, sent: Mapping[str, Mapping[str, str]]) -> State:
    """Write the runs just sent, and when they were fetched, into state (the caller holds
    the lock); return it."""
    if not sent:
        return state
    reports = {report for runs in sent.values() for report in runs}
    newest: dict[str, tuple[float, str]] = {}
    for entry in state.aggregations.values():
        if entry.report in reports:
            when = (epoch(entry.fetched_at), entry.fetched_at)
            newest[entry.report] = max(newest.get(entry.report, when), when)
    fetched = {
        target: {report: newest[report][1] for report in runs if report in newest}
        for target, runs in sent.items()
    }
    updated = replace(
        state,
        notified=with_sent(state.notified, sent),
        notified_at=with_sent(state.notified_at, fetched),
    )
    return write_state(state_path, updated, state)


def describe(delivery: Delivery, site_dir: Path, state: State) -> str:
    """What ``delivery`` would send, for ``notify --dry-run`` (no secret is read)."""
    target, digest = delivery.target, delivery.digest
    why = ", ".join(digest.triggers)
    if target.type == "slack":
        from casereport.notify.slack import slack_message

        head = f"Slack message to ${target.webhook_url_env}"
        body = json.dumps(slack_message(digest), ensure_ascii=False, indent=2)
    elif target.type == "webhook":
        from casereport.notify.webhook import SIGNATURE_HEADER, webhook_body

        head = f"POST to {host_of(target.url)}, {SIGNATURE_HEADER} signed with ${target.secret_env}"
        body = json.dumps(
            json.loads(webhook_body(digest, target.name)), ensure_ascii=False, indent=2
        )
    else:
        from casereport.notify.mail import email_message, email_text

        page = _page(site_dir, state, digest.report)
        message = email_message(digest, target, page)
        head = f"email through {target.smtp_host}:{target.smtp_port}"
        html = f"the page {digest.report}.html" if page is not None else "the text as HTML"
        body = (
            f"Subject: {message['Subject']}\nFrom: {message['From']}\nTo: {message['To']}\n\n"
            f"{email_text(digest)}\n[HTML part: {html}]"
        )
    return f'-- notify target "{target.name}": {head}: report {digest.report} ({why})\n{body}\n'
