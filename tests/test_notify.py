"""Delivery without servers: targets in casereport.toml, `notify:` in reports, the
triggers (`change`, `check_failed`), the message formats, retries and the state record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from casereport.checks.results import CheckResult
from casereport.definitions.expand import ReportSpec, expand_workspace
from casereport.errors import StateError
from casereport.notify.deliver import due_deliveries, record_sent
from casereport.notify.digest import make_digest, run_changed
from casereport.notify.send import DeliveryFailed, with_retries
from casereport.notify.slack import slack_message
from casereport.settings import read_settings
from casereport.settings_notify import NotifyTarget
from casereport.state.model import (
    ReportState,
    Source,
    State,
    load_state,
    new_state,
    parse_state,
    serialise,
    with_result,
    write_state,
)

REPORT = """\
title: Support
aggregations:
  by_status:
    query_filter: "service:case-api"
    group_by: [status]
    limit: 5
"""
DATADOG = Source("datadog", "datadoghq.com")
EMULATOR = Source("emulator", "emulator")


def settings_problems(root: Path, toml: str) -> list[str]:
    (root / "casereport.toml").write_text(toml, encoding="utf-8")
    return [str(p).replace(f"{root}/", "") for p in read_settings(root)[1]]


def test_targets_take_their_defaults(tmp_path: Path) -> None:
    (tmp_path / "casereport.toml").write_text(
        'site_url = "https://reports.example.com/"\n'
        '[notify.team]\ntype = "slack"\nwebhook_url_env = "SLACK_URL"\n'
        '[notify.leads]\ntype = "email"\nsmtp_host = "smtp.example.com"\n'
        'from = "r@example.com"\nto = ["l@example.com"]\non = ["always"]\n',
        encoding="utf-8",
    )
    settings, problems = read_settings(tmp_path)
    assert problems == ()
    assert settings.site_url == "https://reports.example.com"
    assert settings.notify == (
        NotifyTarget("team", "slack", webhook_url_env="SLACK_URL"),
        NotifyTarget(
            "leads",
            "email",
            on=("always",),
            smtp_host="smtp.example.com",
            sender="r@example.com",
            to=("l@example.com",),
        ),
    )
    team = settings.notify[0]
    assert (team.on, team.attempts, team.backoff) == (("change", "check_failed"), 3, 2.0)
    assert (settings.notify[1].smtp_port, settings.notify[1].starttls) == (587, True)


def test_every_target_problem_is_one_line_at_its_key(tmp_path: Path) -> None:
    secret = "https://hooks.slack.com/services/T0/B0/XYZ"
    problems = settings_problems(
        tmp_path,
        'site_url = "reports.example.com"\n'
        f'[notify.team]\ntype = "slack"\nwebhook_url_env = "{secret}"\non = ["chnage"]\n'
        '[notify.mail]\ntype = "email"\nsmtp_host = "smtp.example.com"\nto = ["a@b.c"]\n'
        'url = "https://x"\n'
        '[notify.hook]\ntype = "webhok"\n'
        "[notify.Bad]\n"
        '[notify.ops]\ntype = "webhook"\nurl = "https://h.example.com"\nsecret_env = "S"\n'
        "atempts = 2\n",
    )
    assert problems == [
        'casereport.toml:1:1: error: "site_url" must be the http(s) address of the published '
        'site, e.g. "https://reports.example.com"',
        'casereport.toml:4:1: error: [notify.team] "webhook_url_env" must name an environment '
        'variable, e.g. webhook_url_env = "SLACK_WEBHOOK_URL" (the secret itself stays out of '
        "files)",
        'casereport.toml:5:1: error: [notify.team] "on" lists "chnage": use always, change or '
        'check_failed (did you mean "change"?)',
        'casereport.toml:10:1: error: unknown key "url" in [notify.mail] of type "email" (url is '
        "for webhook targets)",
        'casereport.toml:6:1: error: [notify.mail] (type "email") needs "from"',
        'casereport.toml:12:1: error: [notify.hook] needs type = "slack", "email" or "webhook", '
        "got 'webhok' (did you mean \"webhook\"?)",
        'casereport.toml:13:1: error: invalid notify target name "Bad": 1 to 64 lowercase '
        "letters, digits, - or _",
        'casereport.toml:18:1: error: unknown key "atempts" in [notify.ops] of type "webhook" '
        '(did you mean "attempts"?)',
    ]
    assert not any("XYZ" in p for p in problems)  # a secret in the wrong place is not echoed


def workspace(root: Path, toml: str, report: str = REPORT) -> tuple[Any, Any]:
    (root / "reports").mkdir(exist_ok=True)
    (root / "reports" / "support.yaml").write_text(report, encoding="utf-8")
    (root / "casereport.toml").write_text(toml, encoding="utf-8")
    return expand_workspace(root)


def test_an_unknown_target_in_notify_is_a_validate_error_at_its_place(tmp_path: Path) -> None:
    toml = '[notify.team]\ntype = "slack"\nwebhook_url_env = "U"\n'
    _, expansion = workspace(tmp_path, toml, REPORT + "notify: [team, taem]\n")
    assert [str(d).replace(f"{tmp_path}/", "") for d in expansion.diagnostics] == [
        'reports/support.yaml:7:16: error: unknown notify target "taem" (did you mean "team"?); '
        "casereport.toml defines: team"
    ]
    _, none = workspace(tmp_path, "", REPORT + "notify:\n  - team\n")
    assert [str(d).replace(f"{tmp_path}/", "") for d in none.diagnostics] == [
        'reports/support.yaml:8:5: error: unknown notify target "team"; casereport.toml defines '
        "no [notify.NAME] target"
    ]
    _, shape = workspace(tmp_path, toml, REPORT + "notify: [team, team, 3]\n")
    assert [d.summary for d in shape.diagnostics] == [
        '"notify" lists "team" twice',
        '"notify" entries must be target names (strings)',
    ]


def test_notify_chooses_targets_and_is_not_in_the_definition_hash(tmp_path: Path) -> None:
    toml = '[notify.team]\ntype = "slack"\nwebhook_url_env = "U"\n'
    _, every = workspace(tmp_path, toml)
    _, chosen = workspace(tmp_path, toml, REPORT + "notify: [team]\n")
    _, none = workspace(tmp_path, toml, REPORT + "notify: []\n")
    assert [r.notify for r in (*every.reports, *chosen.reports, *none.reports)] == [
        None,
        ("team",),
        (),
    ]
    assert every.reports[0].definition_hash == none.reports[0].definition_hash


def result(total: float, **groups: float) -> dict[str, Any]:
    return {
        "id": "x",
        "total": total,
        "groups": [{"group": name, "value": [n]} for name, n in groups.items()],
    }


def report_spec(root: Path) -> ReportSpec:
    _, expansion = workspace(root, "")
    spec: ReportSpec = expansion.reports[0]
    return spec


def fetched(spec: ReportSpec, *results: dict[str, Any], query: str | None = None) -> Any:
    """The aggregation after fetching ``results`` in turn (one a day)."""
    aggregation = spec.aggregations[0]
    entry = None
    for day, answer in enumerate(results, start=1):
        fingerprint = aggregation.fingerprint
        if query is not None and day == len(results):
            fingerprint = "changed"
        entry = with_result(
            entry,
            address=aggregation.address,
            report=spec.name,
            title=aggregation.title,
            request=aggregation.request(),
            fingerprint=fingerprint,
            result=answer,
            fetched_at=f"2027-01-{day:02d}T08:00:00Z",
        )
    return {aggregation.address: entry}


def test_change_means_a_number_differs_from_the_previous_run(tmp_path: Path) -> None:
    spec = report_spec(tmp_path)
    assert run_changed(spec, fetched(spec, result(5, OPEN=3, CLOSED=2)))  # the first run
    assert not run_changed(
        spec, fetched(spec, result(5, OPEN=3, CLOSED=2), result(5, OPEN=3, CLOSED=2))
    )
    assert run_changed(
        spec, fetched(spec, result(5, OPEN=3, CLOSED=2), result(6, OPEN=4, CLOSED=2))
    )
    # The same total, groups moved.
    assert run_changed(
        spec, fetched(spec, result(5, OPEN=3, CLOSED=2), result(5, OPEN=2, CLOSED=3))
    )
    # A group gone to 0 is the same as a group with 0 cases.
    assert not run_changed(spec, fetched(spec, result(5, OPEN=5, CLOSED=0), result(5, OPEN=5)))
    # Against the previous run, not an older one.
    assert not run_changed(
        spec, fetched(spec, result(9, OPEN=9), result(5, OPEN=5), result(5, OPEN=5))
    )
    # A changed query starts afresh: every number it shows is new.
    same = result(5, OPEN=5)
    assert run_changed(spec, fetched(spec, same, same, query="changed"))
    assert not run_changed(spec, {})  # nothing fetched: nothing shown


def test_change_since_a_run_sent_compares_with_what_that_run_showed(tmp_path: Path) -> None:
    # Runs on 2027-01-01, -02, -03 (08:00); the target was last sent the first one.
    spec = report_spec(tmp_path)
    first_sent = "2027-01-01T08:00:00Z"
    a, b = result(5, OPEN=5), result(6, OPEN=6)
    # Changed on the 2nd (that message failed), unchanged on the 3rd: still a change.
    assert not run_changed(spec, fetched(spec, a, b, b))
    assert run_changed(spec, fetched(spec, a, b, b), first_sent)
    # Changed on the 2nd and back on the 3rd: the target saw these numbers already.
    assert run_changed(spec, fetched(spec, a, b, a))
    assert not run_changed(spec, fetched(spec, a, b, a), first_sent)
    # The result sent is still the latest one: nothing new to tell.
    assert not run_changed(spec, fetched(spec, a, b), "2027-01-02T09:00:00Z")
    # Sent before any result the history still holds (trimmed, or a new query): all new.
    assert run_changed(spec, fetched(spec, a, a), "2026-12-01T08:00:00Z")
    assert run_changed(spec, fetched(spec, a, a, a, query="changed"), first_sent)
    # Fetched in the very second of the run sent: compared with the previous result.
    assert not run_changed(spec, fetched(spec, a, a), "2027-01-02T08:00:00Z")
    assert run_changed(spec, fetched(spec, a, b), "2027-01-02T08:00:00Z")


def rendered_state(spec: ReportSpec, aggregations: Any, source: Source = DATADOG) -> State:
    return replace(
        new_state(),
        source=source,
        aggregations=aggregations,
        reports={spec.name: ReportState(spec.name, "d", "t", "run-1", {})},
    )


def check(passed: bool, severity: str = "error") -> CheckResult:
    return CheckResult(
        report="support",
        address="support.by_status",
        name="few_open",
        severity=severity,  # type: ignore[arg-type]
        assertion='groups["OPEN"] <= 2',
        message="At most two open cases",
        passed=passed,
        values={'groups["OPEN"]': 3},
    )


def test_triggers_choose_what_is_sent_and_a_run_is_sent_once(tmp_path: Path) -> None:
    spec = report_spec(tmp_path)
    same = result(5, OPEN=3)
    state = rendered_state(spec, fetched(spec, same, same))  # no change
    targets = [
        NotifyTarget("changes", "slack", on=("change",), webhook_url_env="U"),
        NotifyTarget("failures", "slack", on=("check_failed",), webhook_url_env="U"),
        NotifyTarget("both", "slack", webhook_url_env="U"),
        NotifyTarget("every", "slack", on=("always",), webhook_url_env="U"),
    ]

    def due(checks: list[CheckResult], state: State = state, force: bool = False) -> list[Any]:
        found = due_deliveries(targets, [spec], state, checks, site_url=None, force=force)
        return [(d.target.name, d.digest.triggers) for d in found]

    assert due([check(True)]) == [("every", ("always",))]
    assert due([check(False, "warn")]) == [
        ("failures", ("check_failed",)),
        ("both", ("check_failed",)),
        ("every", ("always",)),
    ]
    changed = rendered_state(spec, fetched(spec, same, result(6, OPEN=4)))
    assert due([], changed) == [
        ("changes", ("change",)),
        ("both", ("change",)),
        ("every", ("always",)),
    ]
    # Once sent (recorded in state), a run is not sent again; --force sends it to every target.
    sent = replace(state, notified={t.name: {"support": "run-1"} for t in targets})
    assert due([check(False)], sent) == []
    assert [name for name, _ in due([], sent, force=True)] == [t.name for t in targets]
    # A new run (another data hash) is.
    newer = replace(sent, reports={"support": replace(sent.reports["support"], data_hash="run-2")})
    assert due([], newer) == [("every", ("always",))]
    # A change a target was not sent (its message failed) still fires with a later run
    # that changed nothing since: compared with what that target was last sent.
    later = rendered_state(spec, fetched(spec, same, result(6, OPEN=4), result(6, OPEN=4)))
    later = replace(
        later,
        notified={t.name: {"support": "run-0"} for t in targets},
        notified_at={
            "changes": {"support": "2027-01-01T08:00:00Z"},  # sent the first run
            "both": {"support": "2027-01-02T08:00:00Z"},  # sent the second
        },
    )
    assert due([], later) == [("changes", ("change",)), ("every", ("always",))]
    # Reports that choose no target, and reports never rendered, send nothing.
    assert due_deliveries(targets, [replace(spec, notify=())], state, [], site_url=None) == []
    assert due_deliveries(targets, [spec], replace(state, reports={}), [], site_url=None) == []


def test_slack_escapes_what_comes_from_the_data_and_lists_failing_checks(tmp_path: Path) -> None:
    spec = report_spec(tmp_path)
    state = rendered_state(spec, fetched(spec, result(3, OPEN=1), result(4, **{"<!channel>": 2})))
    digest = make_digest(
        spec,
        state.aggregations,
        state.source,
        run="run-1",
        triggers=("change",),
        checks=[check(False), check(True)],
        site_url="https://r.example.com",
    )
    message = slack_message(digest)
    text = json.dumps(message)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert message["text"] == "Support: 1 group changed, 1 failing check"
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert sections[0] == "*by_status*: 4 (+1)"
    assert (
        sections[1]
        == "*Changes since the compared run*\n• by_status · &lt;!channel&gt;: 0 → 2 (+2)"
    )
    assert sections[2] == (
        "*Failing checks*\n• :x: error: support.by_status: few_open: At most two open cases "
        '(saw groups["OPEN"] = 3)'
    )
    assert message["blocks"][1]["elements"][0]["text"] == "Source: Datadog (datadoghq.com)"
    assert message["blocks"][-1]["elements"][0]["url"] == "https://r.example.com/support.html"


def test_retries_back_off_and_stop_at_a_permanent_failure() -> None:
    waits: list[float] = []
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise DeliveryFailed("h answered HTTP 500")

    assert with_retries(flaky, 4, 0.5, waits.append) == 3
    assert waits == [0.5, 1.0]

    def refused() -> None:
        calls.append(1)
        raise DeliveryFailed("h answered HTTP 404", permanent=True)

    calls.clear()
    with pytest.raises(DeliveryFailed) as failed:
        with_retries(refused, 4, 0.5, waits.append)
    assert (len(calls), failed.value.attempts) == (1, 1)

    def down() -> None:
        raise DeliveryFailed("cannot reach h")

    with pytest.raises(DeliveryFailed) as gave_up:
        with_retries(down, 3, 0, lambda _: None)
    assert gave_up.value.attempts == 3


def test_the_record_of_runs_sent_round_trips_and_older_states_read_as_before(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.json"
    first = write_state(path, new_state(), None)
    assert '"notified"' not in path.read_text(encoding="utf-8")
    recorded = record_sent(path, first, {"team": {"b": "run-b", "a": "run-a"}})
    assert recorded.serial == first.serial + 1
    loaded = load_state(path)
    assert loaded is not None and loaded.notified == {"team": {"a": "run-a", "b": "run-b"}}
    assert '"notified": {\n    "team": {\n      "a": "run-a",' in path.read_text(encoding="utf-8")
    assert record_sent(path, loaded, {}) is loaded  # nothing sent: nothing written
    document = json.loads(serialise(loaded))
    document["notified"] = {"team": ["a"]}
    with pytest.raises(StateError) as caught:
        parse_state(path, json.dumps(document))
    assert f"{path}: malformed: notified is not an object of target -> report -> run; " in str(
        caught.value.message
    )
    document = json.loads(serialise(loaded))
    document["notified_at"] = {"team": {"a": 7}}
    with pytest.raises(StateError) as caught:
        parse_state(path, json.dumps(document))
    assert f"{path}: malformed: notified_at is not an object of target -> report -> time; " in (
        caught.value.message
    )


def test_when_a_run_sent_was_fetched_is_recorded_beside_it(tmp_path: Path) -> None:
    spec = report_spec(tmp_path)
    path = tmp_path / "state.json"
    state = write_state(path, rendered_state(spec, fetched(spec, result(1), result(2))), None)
    recorded = record_sent(path, state, {"team": {"support": "run-1"}})
    loaded = load_state(path)
    assert loaded is not None and loaded == recorded
    assert loaded.notified_at == {"team": {"support": "2027-01-02T08:00:00Z"}}
    text = path.read_text(encoding="utf-8")
    assert '"notified_at": {\n    "team": {\n      "support": "2027-01-02T08:00:00Z"' in text
    # A report with no result has no time to record; its run is recorded all the same.
    empty = record_sent(path, loaded, {"ops": {"support": "run-1", "gone": "run-9"}})
    assert empty.notified_at["ops"] == {"support": "2027-01-02T08:00:00Z"}
    assert empty.notified["ops"] == {"support": "run-1", "gone": "run-9"}


def test_no_delivery_module_is_imported_to_plan_without_targets(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom casereport.cli import cli\n"
        "try:\n    cli(['plan', '--emulator'])\nexcept SystemExit:\n    pass\n"
        "loaded = [m for m in sys.modules if m.startswith(('casereport.notify', "
        "'casereport.settings_notify', 'casereport.engine.delivery', 'smtplib', 'email.'))]\n"
        "assert not loaded, loaded\n"
    )
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "support.yaml").write_text(REPORT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_emulator_data_is_labelled_in_the_subject_and_text(tmp_path: Path) -> None:
    from casereport.notify.mail import email_message

    spec = report_spec(tmp_path)
    state = rendered_state(spec, fetched(spec, result(3, OPEN=3)), EMULATOR)
    digest = make_digest(
        spec, state.aggregations, state.source, run="r", triggers=(), checks=(), site_url=None
    )
    target = NotifyTarget("m", "email", smtp_host="h", sender="a@b.c", to=("d@e.f",))
    message = email_message(digest, target, None)
    assert message["Subject"] == "[demo data] Support"
    html = message.get_body(("html",))
    assert html is not None and "Demo data — local emulator" in html.get_content()


def test_a_failing_target_is_one_line_that_names_a_few_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from casereport.notify.deliver import Delivery, send_all

    monkeypatch.delenv("UNSET_SLACK_URL", raising=False)
    spec = report_spec(tmp_path)
    state = rendered_state(spec, fetched(spec, result(3, OPEN=3)))
    digest = make_digest(
        spec, state.aggregations, state.source, run="r", triggers=(), checks=(), site_url=None
    )
    target = NotifyTarget("team", "slack", webhook_url_env="UNSET_SLACK_URL")
    deliveries = [Delivery(target, replace(digest, report=f"r{i}")) for i in range(7)]
    done = send_all(deliveries, tmp_path, state, sleep=lambda _: None)
    assert done.sent == {}
    assert done.failures == [
        'notify target "team" (slack): $UNSET_SLACK_URL is not set (the Slack incoming-webhook '
        "URL) (after 1 attempt); not sent: r0, r1, r2, r3, r4, and 2 more; `casereport notify` "
        "tries again"
    ]
