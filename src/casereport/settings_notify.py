"""Delivery targets in ``casereport.toml``: ``[notify.NAME]`` tables and ``site_url``.

Read by ``casereport.settings`` only when the file has them, so a workspace without
targets imports nothing of this::

    site_url = "https://reports.example.com"   # links in messages: <site_url>/<report>.html

    [notify.team]
    type = "slack"
    webhook_url_env = "SLACK_WEBHOOK_URL"      # the NAME of the variable holding the URL
    on = ["change", "check_failed"]            # the default; or ["always"]

    [notify.leads]
    type = "email"
    smtp_host = "smtp.example.com"
    smtp_port = 587                            # the default; 465 is TLS from the start
    starttls = true                            # the default
    from = "casereport@example.com"
    to = ["leads@example.com"]

    [notify.ops]
    type = "webhook"
    url = "https://hooks.example.com/casereport"
    secret_env = "CASEREPORT_WEBHOOK_SECRET"   # the HMAC key's variable

Every target also takes ``attempts`` (deliveries tried, 1 to 10, default 3) and
``backoff`` (seconds before the second attempt, doubling after it; default 2).

Secrets never sit in the file: a Slack URL and a webhook's key are named by environment
variable, and so are the SMTP login (``CASEREPORT_SMTP_USER``/``_PASSWORD``). A value that
looks like the secret itself where a variable name belongs is refused without repeating it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_NOTIFY_ON",
    "NOTIFY_TRIGGERS",
    "NOTIFY_TYPES",
    "NotifyTarget",
    "notify_targets",
    "site_url_problem",
]

NOTIFY_TYPES = ("slack", "email", "webhook")
NOTIFY_TRIGGERS = ("always", "change", "check_failed")
DEFAULT_NOTIFY_ON = ("change", "check_failed")
TARGET_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ADDRESS_RE = re.compile(r"[^@\s<>,]+@[^@\s<>,]+\Z")
_HOST_RE = re.compile(r"[A-Za-z0-9.-]{1,253}\Z|\[[0-9A-Fa-f:.]+\]\Z")
_URL_RE = re.compile(r"https?://[^\s/?#]+[^\s]*\Z")
MAX_ATTEMPTS = 10

_COMMON_KEYS = ("type", "on", "attempts", "backoff")
_TYPE_KEYS: Mapping[str, tuple[str, ...]] = {
    "slack": ("webhook_url_env",),
    "email": ("smtp_host", "smtp_port", "starttls", "from", "to"),
    "webhook": ("url", "secret_env"),
}
_REQUIRED: Mapping[str, tuple[str, ...]] = {
    "slack": ("webhook_url_env",),
    "email": ("smtp_host", "from", "to"),
    "webhook": ("url", "secret_env"),
}


@dataclass(frozen=True)
class NotifyTarget:
    """One ``[notify.NAME]`` table, checked. Secrets are named here, never held."""

    name: str
    type: str
    on: tuple[str, ...] = DEFAULT_NOTIFY_ON
    attempts: int = 3
    backoff: float = 2.0
    webhook_url_env: str = ""  # slack
    smtp_host: str = ""  # email
    smtp_port: int = 587
    starttls: bool = True
    sender: str = ""  # ``from``
    to: tuple[str, ...] = ()
    url: str = ""  # webhook
    secret_env: str = ""


def _hint(word: str, choices: tuple[str, ...]) -> str:
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{matches[0]}"?)' if matches else ""


def site_url_problem(value: object) -> str | None:
    """Why ``value`` cannot be ``site_url``, or None when it can."""
    if isinstance(value, str) and _URL_RE.match(value):
        return None
    return '"site_url" must be the http(s) address of the published site, e.g. "https://reports.example.com"'


Problem = Callable[..., None]  # problem(key, message, table)


def notify_targets(value: object, problem: Problem) -> tuple[NotifyTarget, ...]:
    """Every ``[notify.NAME]`` table that checks out; each problem goes to ``problem``."""
    if not isinstance(value, dict):
        problem("notify", '"notify" must hold tables: [notify.NAME] with type = "slack", ...')
        return ()
    targets = []
    for name, table in value.items():
        where = f"notify.{name}"
        if not TARGET_NAME_RE.match(name):
            problem(
                where,
                f'invalid notify target name "{name}": 1 to 64 lowercase letters, digits, - or _',
            )
        elif not isinstance(table, dict):
            problem(where, f'"notify.{name}" must be a table ([notify.{name}] with type = ...)')
        else:
            target = _target(name, table, _Placed(problem, where))
            if target is not None:
                targets.append(target)
    return tuple(targets)


@dataclass(frozen=True)
class _Placed:
    """Reports a problem of one ``[notify.NAME]`` table at a key of it, or at its header."""

    report: Problem
    table: str

    def __call__(self, key: str, message: str) -> None:
        self.report(key, message, self.table)

    def header(self, message: str) -> None:
        self.report(self.table, message)


def _target(name: str, table: dict[str, Any], problem: _Placed) -> NotifyTarget | None:
    """The target of one table, or None when it has a problem (each one reported)."""
    table_problem = problem.header
    kind = table.get("type")
    if kind not in NOTIFY_TYPES:
        needs = f'[notify.{name}] needs type = "slack", "email" or "webhook"'
        if "type" not in table:
            table_problem(needs)
        else:
            hint = _hint(kind, NOTIFY_TYPES) if isinstance(kind, str) else ""
            problem("type", f"{needs}, got {kind!r}{hint}")
        return None
    allowed = (*_COMMON_KEYS, *_TYPE_KEYS[kind])
    values: dict[str, Any] = {"name": name, "type": kind}
    ok = True
    for key, raw in table.items():
        if key == "type":
            continue
        if key not in allowed:
            other = next((t for t, keys in _TYPE_KEYS.items() if key in keys), None)
            why = f" ({key} is for {other} targets)" if other else _hint(key, allowed)
            problem(key, f'unknown key "{key}" in [notify.{name}] of type "{kind}"{why}')
            ok = False
            continue
        field, parsed, wrong = _field(key, raw)
        if wrong is not None:
            problem(key, f"[notify.{name}] {wrong}")
            ok = False
        else:
            values[field] = parsed
    for key in _REQUIRED[kind]:
        if key not in table:
            table_problem(f'[notify.{name}] (type "{kind}") needs "{key}"')
            ok = False
    return NotifyTarget(**values) if ok else None


def _env_name(key: str, raw: object, example: str) -> str | None:
    """Why ``raw`` is not an environment variable's name (without repeating a secret)."""
    if isinstance(raw, str) and _ENV_NAME_RE.match(raw):
        return None
    return (
        f'"{key}" must name an environment variable, e.g. {key} = "{example}" '
        "(the secret itself stays out of files)"
    )


def _field(key: str, raw: object) -> tuple[str, Any, str | None]:
    """``(field name, value, None)``, or ``(..., why not)`` for one key of a target."""
    if key == "on":
        if not isinstance(raw, list) or not raw or not all(isinstance(t, str) for t in raw):
            return key, None, '"on" must be a list: ["always"], ["change"], ["check_failed"]'
        for trigger in raw:
            if trigger not in NOTIFY_TRIGGERS:
                hint = _hint(trigger, NOTIFY_TRIGGERS)
                return (
                    key,
                    None,
                    f'"on" lists "{trigger}": use always, change or check_failed{hint}',
                )
        return key, tuple(dict.fromkeys(raw)), None
    if key == "attempts":
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_ATTEMPTS:
            return key, None, f'"attempts" must be a whole number from 1 to {MAX_ATTEMPTS}'
        return key, raw, None
    if key == "backoff":
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 300:
            return key, None, '"backoff" must be a number of seconds from 0 to 300'
        return key, float(raw), None
    if key in ("webhook_url_env", "secret_env"):
        example = "SLACK_WEBHOOK_URL" if key == "webhook_url_env" else "CASEREPORT_WEBHOOK_SECRET"
        return key, raw, _env_name(key, raw, example)
    if key == "smtp_host":
        ok = isinstance(raw, str) and _HOST_RE.match(raw)
        return key, raw, None if ok else '"smtp_host" must be a host name, e.g. "smtp.example.com"'
    if key == "smtp_port":
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 65535:
            return key, None, '"smtp_port" must be a port number from 1 to 65535'
        return key, raw, None
    if key == "starttls":
        return key, raw, None if isinstance(raw, bool) else '"starttls" must be true or false'
    if key == "from":
        ok = isinstance(raw, str) and _ADDRESS_RE.match(raw)
        return "sender", raw, None if ok else '"from" must be an email address'
    if key == "to":
        if (
            not isinstance(raw, list)
            or not raw
            or not all(isinstance(a, str) and _ADDRESS_RE.match(a) for a in raw)
        ):
            return key, None, '"to" must be a list of email addresses, e.g. ["leads@example.com"]'
        return key, tuple(raw), None
    # url (webhook): in the file, so not a secret; the signing key is.
    ok = isinstance(raw, str) and _URL_RE.match(raw)
    return key, raw, None if ok else '"url" must be an http(s) address'
