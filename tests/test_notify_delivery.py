"""Delivery against real servers on 127.0.0.1: Slack and webhook payloads over HTTP (the
HMAC verifies), email through an SMTP server (aiosmtpd), retries, a dead target, and the
record in state that keeps a run from being sent twice."""

from __future__ import annotations

import hashlib
import hmac
import json
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from tests.cli_workspace import example_workspace, run
from tests.notify_receivers import (
    HttpReceiver,
    SmtpReceiver,
    closed_port,
    http_receiver,
    smtp_receiver,
)

from casereport.state.model import load_state

__all__ = ["http_receiver", "smtp_receiver"]  # fixtures, used by name

STATE = Path(".casereport/state.json")
REPORTS = ["security-cases", "service-health", "support-backlog"]


def workspace(root: Path, monkeypatch: pytest.MonkeyPatch, toml: str) -> Path:
    example_workspace(root, monkeypatch)
    (root / "casereport.toml").write_text(toml, encoding="utf-8")
    return root


def only_security_cases(root: Path) -> None:
    """The example workspace with one report left: one message per run and target."""
    (root / "reports" / "service-health.yaml").unlink()
    (root / "reports" / "support-backlog.yaml").unlink()


# A Slack target sent every run, tried up to three times without waiting.
SLACK_WITH_RETRIES = (
    '[notify.team]\ntype = "slack"\nwebhook_url_env = "TEST_SLACK_URL"\non = ["always"]\n'
    "attempts = 3\nbackoff = 0\n"
)


def apply() -> str:
    result = run("apply", "--emulator", "--auto-approve")
    assert result.exit_code == 0, result.output
    return result.output


def test_slack_gets_a_block_kit_message_per_report_labelled_demo_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_receiver: HttpReceiver
) -> None:
    workspace(
        tmp_path,
        monkeypatch,
        'site_url = "https://reports.example.com/"\n'
        '[notify.team]\ntype = "slack"\nwebhook_url_env = "TEST_SLACK_URL"\non = ["always"]\n',
    )
    monkeypatch.setenv("TEST_SLACK_URL", f"{http_receiver.url}/services/T0/B0/SECRETTOKEN")
    output = apply()
    assert "Sent 3 messages: team (security-cases, service-health, support-backlog)." in output
    assert "SECRETTOKEN" not in output
    assert [r.path for r in http_receiver.requests] == ["/services/T0/B0/SECRETTOKEN"] * 3
    messages = [json.loads(r.body) for r in http_receiver.requests]
    first = messages[0]
    assert first["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "[demo data] Security cases"},
    }
    assert "Demo data — local emulator" in first["blocks"][1]["elements"][0]["text"]
    headline = first["blocks"][2]["text"]["text"]
    assert headline.startswith("*Cases from security signals by status*: ")
    assert first["blocks"][-1]["elements"][0]["url"] == (
        "https://reports.example.com/security-cases.html"
    )
    assert all(m["text"].startswith("[demo data] ") for m in messages)
    state = load_state(STATE)
    assert state is not None
    assert state.notified == {"team": {n: state.reports[n].data_hash for n in REPORTS}}


def test_a_webhook_gets_the_data_file_and_checks_signed_with_hmac_sha256(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_receiver: HttpReceiver
) -> None:
    workspace(
        tmp_path,
        monkeypatch,
        f'[notify.ops]\ntype = "webhook"\nurl = "{http_receiver.url}/hook"\n'
        'secret_env = "TEST_HOOK_SECRET"\non = ["always"]\n',
    )
    monkeypatch.setenv("TEST_HOOK_SECRET", "s3cret-key")
    apply()
    assert len(http_receiver.requests) == 3
    for request in http_receiver.requests:
        expected = hmac.new(b"s3cret-key", request.body, hashlib.sha256).hexdigest()
        assert request.headers["x-casereport-signature"] == f"sha256={expected}"
        assert request.headers["content-type"] == "application/json"
        body = json.loads(request.body)
        report = body["report"]
        on_disk = json.loads((tmp_path / "site" / f"{report}.json").read_text(encoding="utf-8"))
        assert body["data"] == on_disk  # the same data file as site/<report>.json
        assert body["demo_data"] is True
        assert body["triggers"] == ["always"]
        assert body["checks"] == []
        assert body["target"] == "ops"
    # A wrong key does not verify.
    wrong = hmac.new(b"other", http_receiver.requests[0].body, hashlib.sha256).hexdigest()
    assert http_receiver.requests[0].headers["x-casereport-signature"] != f"sha256={wrong}"


def test_email_is_multipart_alternative_with_the_html_page_and_a_text_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_receiver: SmtpReceiver
) -> None:
    workspace(
        tmp_path,
        monkeypatch,
        '[notify.leads]\ntype = "email"\nsmtp_host = "127.0.0.1"\n'
        f"smtp_port = {smtp_receiver.port}\nstarttls = false\n"
        'from = "casereport@example.com"\nto = ["a@example.com", "b@example.com"]\n'
        'on = ["always"]\n',
    )
    monkeypatch.delenv("CASEREPORT_SMTP_USER", raising=False)
    apply()
    assert len(smtp_receiver.messages) == 3
    sender, recipients, raw = smtp_receiver.messages[0]
    assert sender == "casereport@example.com"
    assert recipients == ["a@example.com", "b@example.com"]
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "[demo data] Security cases"
    assert message["X-Casereport-Demo-Data"] == "true"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    # (SMTP carries lines ending in CRLF)
    text = parts[0].get_content().replace("\r\n", "\n")
    assert text.startswith("Security cases\n")
    assert "Demo data — local emulator, not real cases." in text
    page = (tmp_path / "site" / "security-cases.html").read_text(encoding="utf-8")
    assert parts[1].get_content().replace("\r\n", "\n") == page  # the page, inline


def test_a_receiver_that_fails_twice_then_succeeds_gets_exactly_one_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_receiver: HttpReceiver
) -> None:
    workspace(
        tmp_path,
        monkeypatch,
        SLACK_WITH_RETRIES,
    )
    only_security_cases(tmp_path)
    monkeypatch.setenv("TEST_SLACK_URL", f"{http_receiver.url}/hook")
    http_receiver.statuses = [500, 503]
    output = apply()
    assert [r.status for r in http_receiver.requests] == [500, 503, 200]
    assert len(http_receiver.accepted) == 1
    assert "Sent 1 message: team (security-cases)." in output
    # What was sent is recorded: the run, and when it was fetched (its newest result).
    state = load_state(STATE)
    assert state is not None
    newest = max(a.fetched_at for a in state.aggregations.values() if a.report == "security-cases")
    assert state.notified == {"team": {"security-cases": state.reports["security-cases"].data_hash}}
    assert state.notified_at == {"team": {"security-cases": newest}}
    # Sent once per run: neither a re-run of apply nor `notify` sends it again.
    assert apply().endswith("No changes. Reports are up to date.\n")
    result = run("notify")
    assert result.exit_code == 0, result.output
    assert result.output == "Nothing sent.\n"
    assert len(http_receiver.requests) == 3
    # --force does.
    assert run("notify", "--force").output == "Sent 1 message: team (security-cases).\n"
    assert len(http_receiver.accepted) == 2


def test_a_dead_target_gives_one_line_and_leaves_the_state_as_apply_wrote_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    workspace(
        tmp_path,
        monkeypatch,
        f'[notify.ops]\ntype = "webhook"\nurl = "http://127.0.0.1:{port}/hook"\n'
        'secret_env = "TEST_HOOK_SECRET"\nattempts = 2\nbackoff = 0\n',
    )
    monkeypatch.setenv("TEST_HOOK_SECRET", "key")
    result = run("apply", "--emulator", "--auto-approve")
    assert result.exit_code == 0, result.output  # the apply itself succeeded
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        f'warning: notify target "ops" (webhook): cannot reach 127.0.0.1:{port}: '
        "[Errno 111] Connection refused (after 2 attempts); not sent: security-cases, "
        "service-health, support-backlog; `casereport notify` tries again"
    ]
    state = load_state(STATE)
    assert state is not None and state.serial == 1 and state.notified == state.notified_at == {}
    assert set(state.reports) == set(REPORTS)
    written = STATE.read_bytes()
    # `casereport notify` tries again, fails the same way, exits 1 and writes nothing.
    again = run("notify")
    assert again.exit_code == 1
    assert again.output.splitlines()[-1].startswith('notify target "ops" (webhook): cannot reach')
    assert STATE.read_bytes() == written
    assert "key" not in written.decode()


def test_dry_run_prints_what_would_be_sent_and_sends_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_receiver: HttpReceiver
) -> None:
    workspace(
        tmp_path,
        monkeypatch,
        '[notify.team]\ntype = "slack"\nwebhook_url_env = "TEST_SLACK_URL"\n',
    )
    monkeypatch.delenv("TEST_SLACK_URL", raising=False)
    output = apply()  # a first run changes every number: sent, but the URL is not set
    assert (
        'warning: notify target "team" (slack): $TEST_SLACK_URL is not set (the Slack '
        "incoming-webhook URL) (after 1 attempt); not sent: security-cases, service-health, "
        "support-backlog; `casereport notify` tries again"
    ) in output
    written = STATE.read_bytes()
    result = run("notify", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        '-- notify target "team": Slack message to $TEST_SLACK_URL: report security-cases '
        "(change)\n{\n"
    )
    assert result.output.count("-- notify target") == 3
    assert STATE.read_bytes() == written
    assert http_receiver.requests == []
    monkeypatch.setenv("TEST_SLACK_URL", f"{http_receiver.url}/x")
    assert run("notify").output == (
        "Sent 3 messages: team (security-cases, service-health, support-backlog).\n"
    )
    assert run("notify", "--dry-run").output.startswith("Nothing to send: ")


def test_reports_choose_their_targets_with_notify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_receiver: HttpReceiver
) -> None:
    workspace(
        tmp_path,
        monkeypatch,
        '[notify.team]\ntype = "slack"\nwebhook_url_env = "TEST_SLACK_URL"\non = ["always"]\n'
        '[notify.ops]\ntype = "webhook"\nurl = "' + http_receiver.url + '/ops"\n'
        'secret_env = "TEST_HOOK_SECRET"\non = ["always"]\n',
    )
    reports = tmp_path / "reports"
    for name, notify in (("security-cases", "[ops]"), ("service-health", "[]")):
        path = reports / f"{name}.yaml"
        path.write_text(path.read_text(encoding="utf-8") + f"notify: {notify}\n", encoding="utf-8")
    monkeypatch.setenv("TEST_SLACK_URL", f"{http_receiver.url}/team")
    monkeypatch.setenv("TEST_HOOK_SECRET", "k")
    output = apply()
    assert (
        "Sent 3 messages: ops (security-cases, support-backlog); team (support-backlog)." in output
    )
    assert sorted(r.path for r in http_receiver.requests) == ["/ops", "/ops", "/team"]


def test_without_targets_notify_says_how_to_add_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example_workspace(tmp_path, monkeypatch)
    result = run("notify")
    assert result.exit_code == 1
    assert result.output == (
        "Error: no delivery targets: add a [notify.NAME] table to casereport.toml "
        "(docs/notify.md)\n"
    )


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_the_smtp_login_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    logins: list[tuple[bytes, bytes]] = []
    received: list[bytes] = []

    def authenticator(
        server: object, session: object, envelope: object, mechanism: str, data: object
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"pa55")

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            received.append(bytes(envelope.original_content))  # type: ignore[attr-defined]
            return "250 OK"

    port = closed_port()
    # No TLS on a test server: casereport sends a password without it only to loopback.
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        workspace(
            tmp_path,
            monkeypatch,
            f'[notify.leads]\ntype = "email"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
            'starttls = false\nfrom = "r@example.com"\nto = ["l@example.com"]\non = ["always"]\n',
        )
        only_security_cases(tmp_path)
        monkeypatch.setenv("CASEREPORT_SMTP_USER", "casereport")
        monkeypatch.setenv("CASEREPORT_SMTP_PASSWORD", "pa55")
        output = apply()
    finally:
        controller.stop()
    assert logins == [(b"casereport", b"pa55")]
    assert len(received) == 1
    assert "pa55" not in output


def test_no_password_crosses_the_network_without_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    from email.message import EmailMessage

    from casereport.notify.send import DeliveryFailed, send_mail
    from casereport.settings_notify import NotifyTarget

    monkeypatch.setenv("CASEREPORT_SMTP_USER", "u")
    target = NotifyTarget(
        "m", "email", smtp_host="smtp.example.com", starttls=False, sender="a@b.c", to=("d@e.f",)
    )
    with pytest.raises(DeliveryFailed) as refused:
        send_mail(target, EmailMessage())  # refused before any connection is made
    assert refused.value.permanent
    assert refused.value.reason == (
        "CASEREPORT_SMTP_USER is set but starttls = false: the password would cross the network "
        "to smtp.example.com:587 unencrypted; set starttls = true (or port 465)"
    )


def test_a_url_httpx_refuses_fails_its_target_only_and_what_was_sent_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_receiver: HttpReceiver
) -> None:
    # Found by review: an httpx.InvalidURL escaped delivery, so a finished apply ended
    # with an internal error (exit 1) and the messages sent before it were not recorded,
    # so `casereport notify` sent them again.
    workspace(
        tmp_path,
        monkeypatch,
        f'[notify.alpha]\ntype = "webhook"\nurl = "{http_receiver.url}/hook"\n'
        'secret_env = "TEST_HOOK_SECRET"\non = ["always"]\n'
        '[notify.beta]\ntype = "slack"\nwebhook_url_env = "TEST_SLACK_URL"\non = ["always"]\n'
        "attempts = 1\n",
    )
    monkeypatch.setenv("TEST_HOOK_SECRET", "key\n")  # pasted with its line end: stripped
    monkeypatch.setenv("TEST_SLACK_URL", "https://hooks.example.com/services/SECRET\nTOKEN")
    result = run("apply", "--emulator", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "Apply complete" in result.output and "internal error" not in result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and warnings[0].startswith('warning: notify target "beta" (slack)')
    assert "SECRET" not in result.output
    assert len(http_receiver.requests) == 3
    for request in http_receiver.requests:  # signed with the key, not "key\n"
        expected = hmac.new(b"key", request.body, hashlib.sha256).hexdigest()
        assert request.headers["x-casereport-signature"] == f"sha256={expected}"
    state = load_state(STATE)
    assert state is not None and set(state.notified["alpha"]) == set(REPORTS)
    # Sent once: a later `casereport notify` sends alpha nothing again.
    again = run("notify")
    assert len(http_receiver.requests) == 3, again.output


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("http://hooks.example.com/services/T0/B0/SECRETTOKEN", False),
        ("{receiver}/services/T0/B0/SECRETTOKEN", True),  # http on 127.0.0.1: a local relay
    ],
)
def test_a_slack_url_crosses_the_network_only_over_https(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    http_receiver: HttpReceiver,
    url: str,
    sent: bool,
) -> None:
    workspace(
        tmp_path,
        monkeypatch,
        SLACK_WITH_RETRIES,
    )
    only_security_cases(tmp_path)
    monkeypatch.setenv("TEST_SLACK_URL", url.format(receiver=http_receiver.url))
    result = run("apply", "--emulator", "--auto-approve")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    if sent:
        assert warnings == [] and len(http_receiver.accepted) == 1
        return
    assert warnings == [
        'warning: notify target "team" (slack): $TEST_SLACK_URL holds an http:// URL to '
        "hooks.example.com: the URL is the webhook's secret and would cross the network "
        "unencrypted; use its https:// address (after 1 attempt); not sent: security-cases; "
        "`casereport notify` tries again"
    ]
    assert "SECRETTOKEN" not in result.output
