"""Workspace settings (``casereport.toml``) and the duration syntax shared with reports.

A workspace is a directory holding ``reports/``; it may also hold one optional settings
file, ``casereport.toml``, at its root. Every key is optional; these are the defaults::

    # casereport.toml
    reports_dir = "reports"                  # report definitions, reports/<name>.yaml
    templates_dir = "templates"              # template overrides, searched before the built-ins
    site_dir = "site"                        # where apply/render write the site
    state_path = ".casereport/state.json"    # the state file
    refresh = "1h"                           # default age after which a result is re-fetched
    parallelism = 16                         # concurrent API requests during apply
    timeout = 30                             # seconds one API attempt may take, all told
    max_rate_limit_wait = 120                # longest rate-limit reset (s) worth waiting for
    attributes = []                          # case attributes queries and group_by may name
    strict = false                           # warnings fail validate, plan and apply
    fail_on_checks = false                   # a failing error check fails apply (exit 1)
    site_title = "Case reports"              # the site's name: page titles, headers, the index
    pdf_page_size = "A4"                     # paper of PDF pages (formats: [pdf]): "A4" or "Letter"
    history = 30                             # earlier results kept: a run count, or "90d"
    site_url = "https://reports.example.com" # where the site is published: links in messages

    [vars]                                   # variables for every report, as ${var.NAME}
    service = "case-api"

    [backend]                                # where the state lives (docs/state.md)
    url = "local"                            # or "s3://bucket/prefix"
    endpoint_url = "http://127.0.0.1:9000"   # an S3-compatible store (MinIO, R2), optional
    region = "eu-west-1"                     # optional; else the AWS chain's region

    [notify.team]                            # a delivery target (docs/notify.md)
    type = "slack"                           # slack, email or webhook
    webhook_url_env = "SLACK_WEBHOOK_URL"    # the variable that holds the secret URL
    on = ["change", "check_failed"]          # when to send: always, change, check_failed

``attributes`` lists the custom case attributes the reports use (``["region", "tier"]``):
a field in a ``query_filter`` or ``group_by`` that is neither a known case field nor declared
here gets a warning, so a typo (``staus``) does not quietly count nothing. ``strict = true``
(or ``validate --strict``) makes every warning an error, for CI.

Relative paths are relative to the workspace root. Command-line flags override the file;
for variables, a report's own ``vars`` override ``[vars]`` and ``--var NAME=VALUE`` overrides
both. Unknown keys are errors (with a "did you mean" hint), so a typo never goes unnoticed.

``history`` is how many earlier results each aggregation keeps, for changes, comparisons
and trends: a run count from 1 to ``MAX_HISTORY_RUNS`` (``history = 60``), or a duration
(``history = "90d"``): the results fetched within that long before the newest one, never
more than ``MAX_HISTORY_RUNS``, and always the one just before it.

Durations (``refresh`` here and in reports, ``history``) are a positive whole number and a
unit, ``s``, ``m``, ``h``, ``d`` or ``w``, optionally chained (``1h30m``); ``refresh`` also
takes the word ``always`` (re-fetch on every apply). ``tomllib`` (standard library) reads
the file.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casereport.errors import ConfigError

if TYPE_CHECKING:  # parsed only when a settings file has [notify] tables
    from casereport.settings_notify import NotifyTarget

__all__ = [
    "DEFAULT_HISTORY",
    "DEFAULT_MAX_RATE_LIMIT_WAIT",
    "DEFAULT_PARALLELISM",
    "DEFAULT_PDF_PAGE_SIZE",
    "DEFAULT_REFRESH",
    "DEFAULT_SITE_TITLE",
    "DEFAULT_TIMEOUT",
    "MAX_HISTORY_RUNS",
    "PDF_PAGE_SIZES",
    "SETTINGS_FILE",
    "VAR_NAME_RE",
    "BackendSettings",
    "Refresh",
    "Retention",
    "Settings",
    "SettingsProblem",
    "did_you_mean",
    "load_settings",
    "parse_duration",
    "parse_history",
    "parse_refresh",
    "parse_var_assignments",
    "read_settings",
]

SETTINGS_FILE = "casereport.toml"
DEFAULT_PARALLELISM = 16
MAX_PARALLELISM = 64
#: Seconds one API attempt may take as a whole: connecting, sending, reading the answer.
DEFAULT_TIMEOUT = 30.0
#: The longest ``X-RateLimit-Reset`` worth waiting for; a longer one fails the request.
DEFAULT_MAX_RATE_LIMIT_WAIT = 120.0
DEFAULT_SITE_TITLE = "Case reports"
#: Paper sizes a PDF page may have (CSS ``@page`` size names, as Chromium prints them).
PDF_PAGE_SIZES = ("A4", "Letter")
DEFAULT_PDF_PAGE_SIZE = "A4"
SITE_TITLE_MAX = 100
VAR_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# A case attribute a query can name: a search field name (see definitions.query), 100 at most.
ATTRIBUTE_NAME_RE = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.\-]{0,99}\Z")

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_RE = re.compile(r"(?:[0-9]+[smhdw])+\Z")
_DURATION_PART_RE = re.compile(r"([0-9]+)([smhdw])")


@dataclass(frozen=True)
class Refresh:
    """How old a result may get before ``apply`` fetches it again.

    ``seconds`` is 0 for ``always`` (every apply re-fetches); ``text`` is the spelling the
    user wrote, kept for messages and plans.
    """

    seconds: int
    text: str

    @property
    def always(self) -> bool:
        """True for ``refresh: always``."""
        return self.seconds == 0

    def is_stale(self, age_seconds: float) -> bool:
        """Whether a result fetched ``age_seconds`` ago must be fetched again."""
        return self.always or age_seconds >= self.seconds


def parse_refresh(text: str) -> Refresh:
    """Parse ``30m``, ``6h``, ``1d``, ``1h30m`` or ``always``; raise ``ValueError`` with a
    one-line message otherwise."""
    if text == "always":
        return Refresh(0, text)
    seconds = parse_duration(text)
    if seconds is None:
        raise ValueError(
            f'invalid duration "{text}": use a whole number and a unit s, m, h, d or w '
            '(e.g. 30m, 6h, 1d), or "always"'
        )
    if seconds == 0:
        raise ValueError(f'invalid duration "{text}": it must be longer than 0 (or "always")')
    return Refresh(seconds, text)


def parse_duration(text: str) -> int | None:
    """The seconds of a duration such as ``30m``, ``6h`` or ``1h30m`` (whole numbers and
    units ``s``, ``m``, ``h``, ``d``, ``w``, chained), or None when ``text`` is not one."""
    if not _DURATION_RE.match(text):
        return None
    return sum(
        int(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART_RE.findall(text)
    )


DEFAULT_REFRESH = Refresh(3600, "1h")

#: The most earlier results an aggregation keeps, whatever ``history`` says: 1,000 runs of
#: 10,000 aggregations is already a state of hundreds of megabytes.
MAX_HISTORY_RUNS = 1000


@dataclass(frozen=True)
class Retention:
    """How much history each aggregation keeps (``history`` in ``casereport.toml``).

    ``runs``: the newest earlier results kept, at most. ``seconds`` (a duration was given):
    also drop those fetched more than that long before the newest result, except the one
    just before it. ``text`` is what the user wrote, for messages.
    """

    runs: int
    seconds: int | None = None
    text: str = ""


DEFAULT_HISTORY = Retention(30, None, "30")


def parse_history(value: object) -> Retention:
    """``history = 60`` (runs) or ``history = "90d"`` (a duration); raise ``ValueError``
    with a one-line message otherwise."""
    if isinstance(value, str):
        seconds = parse_duration(value)
        if not seconds:
            raise ValueError(
                f'"history" duration "{value}" is not valid: use a whole number and a unit '
                's, m, h, d or w (e.g. history = "90d"), or a number of runs (history = 60)'
            )
        return Retention(MAX_HISTORY_RUNS, seconds, value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            '"history" must be a number of runs (e.g. history = 60) or a duration '
            f'(e.g. history = "90d"), got {value!r}'
        )
    if not 1 <= value <= MAX_HISTORY_RUNS:
        raise ValueError(
            f'"history" must keep from 1 to {MAX_HISTORY_RUNS:,} runs '
            f'(or a duration, e.g. history = "90d"), got {value}'
        )
    return Retention(value, None, str(value))


def did_you_mean(word: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str:
    """A ``' (did you mean "x"?)'`` suffix for the closest choice, or ``""``."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return f' (did you mean "{matches[0]}"?)' if matches else ""


@dataclass(frozen=True)
class Settings:
    """Resolved workspace settings; paths are already joined to the workspace root."""

    root: Path = Path(".")
    reports_dir: Path = Path("reports")
    templates_dir: Path = Path("templates")
    site_dir: Path = Path("site")
    state_path: Path = Path(".casereport/state.json")
    refresh: Refresh = DEFAULT_REFRESH
    parallelism: int = DEFAULT_PARALLELISM
    timeout: float = DEFAULT_TIMEOUT
    max_rate_limit_wait: float = DEFAULT_MAX_RATE_LIMIT_WAIT
    vars: Mapping[str, str] = field(default_factory=dict)
    attributes: tuple[str, ...] = ()
    strict: bool = False
    fail_on_checks: bool = False
    site_title: str = DEFAULT_SITE_TITLE
    pdf_page_size: str = DEFAULT_PDF_PAGE_SIZE
    backend: BackendSettings = field(default_factory=lambda: BackendSettings())
    history: Retention = DEFAULT_HISTORY
    site_url: str | None = None  # the published site, for links in notifications
    notify: tuple[NotifyTarget, ...] = ()  # [notify.NAME] tables, by name
    # The settings file that was read, if any (for messages).
    source: Path | None = None

    def with_overrides(
        self,
        *,
        reports_dir: Path | None = None,
        templates_dir: Path | None = None,
        site_dir: Path | None = None,
        state_path: Path | None = None,
        refresh: Refresh | None = None,
        parallelism: int | None = None,
        timeout: float | None = None,
        max_rate_limit_wait: float | None = None,
    ) -> Settings:
        """A copy with command-line values applied (``None`` keeps the file's value)."""
        changes: dict[str, Any] = {
            "reports_dir": reports_dir,
            "templates_dir": templates_dir,
            "site_dir": site_dir,
            "state_path": state_path,
            "refresh": refresh,
            "parallelism": parallelism,
            "timeout": timeout,
            "max_rate_limit_wait": max_rate_limit_wait,
        }
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class SettingsProblem:
    """One error in the settings file; ``line`` and ``column`` are 1-based."""

    path: Path
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: error: {self.message}"


_PATH_KEYS = ("reports_dir", "templates_dir", "site_dir", "state_path")
_SECONDS_KEYS = ("timeout", "max_rate_limit_wait")
_KEYS = (
    *_PATH_KEYS,
    "refresh",
    "parallelism",
    *_SECONDS_KEYS,
    "attributes",
    "strict",
    "fail_on_checks",
    "site_title",
    "pdf_page_size",
    "history",
    "vars",
    "backend",
    "site_url",
    "notify",
)
_TOML_POSITION_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END_RE = re.compile(r"\s*\(at end of document\)\s*$")


def read_settings(root: Path = Path(".")) -> tuple[Settings, tuple[SettingsProblem, ...]]:
    """Read ``<root>/casereport.toml`` if it exists; every problem is collected.

    Keys with problems keep their defaults, so callers can still report on the reports.
    """
    path = root / SETTINGS_FILE
    if not path.is_file():
        return Settings(root=root, **_join(root, {})), ()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        message = f"cannot read settings: {exc}"
        return Settings(root=root, **_join(root, {})), (SettingsProblem(path, 1, 1, message),)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return Settings(root=root, **_join(root, {})), (_decode_problem(path, text, exc),)

    problems: list[SettingsProblem] = []
    lines = text.splitlines()

    def problem(key: str, message: str, table: str | None = None) -> None:
        line, column = _key_position(lines, key, table)
        problems.append(SettingsProblem(path, line, column, message))

    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _KEYS:
            # A typo seldom changes the first letter: "variables" means "vars", although
            # its letters are closer to "attributes".
            same_start = [known for known in _KEYS if known[:1] == key[:1]]
            hint = did_you_mean(key, same_start) or did_you_mean(key, _KEYS)
            problem(key, f'unknown setting "{key}"{hint}')
        elif key in _PATH_KEYS:
            if isinstance(value, str) and value.strip():
                values[key] = Path(value)
            else:
                problem(key, f'"{key}" must be a non-empty string (a path)')
        elif key == "refresh":
            if not isinstance(value, str):
                problem(key, '"refresh" must be a string such as "1h" or "always"')
            else:
                try:
                    values[key] = parse_refresh(value)
                except ValueError as exc:
                    problem(key, f"refresh: {exc}")
        elif key == "parallelism":
            if isinstance(value, bool) or not isinstance(value, int):
                problem(key, '"parallelism" must be a whole number')
            elif not 1 <= value <= MAX_PARALLELISM:
                problem(key, f'"parallelism" must be between 1 and {MAX_PARALLELISM}, got {value}')
            else:
                values[key] = value
        elif key in _SECONDS_KEYS:
            wrong = _seconds_problem(key, value)
            if wrong:
                problem(key, wrong)
            else:
                values[key] = float(value)
        elif key == "attributes":
            attributes, wrong = _attributes(value)
            if wrong:
                problem(key, wrong)
            else:
                values[key] = attributes
        elif key in ("strict", "fail_on_checks"):
            if isinstance(value, bool):
                values[key] = value
            else:
                problem(key, f'"{key}" must be true or false, got {value!r}')
        elif key in _PAGE_KEYS:
            wrong = _page_problem(key, value)
            if wrong:
                problem(key, wrong)
            else:
                values[key] = value.strip() if key == "site_title" else value
        elif key == "backend":
            values[key] = _backend_settings(value, problem)
        elif key == "history":
            try:
                values[key] = parse_history(value)
            except ValueError as exc:
                problem(key, str(exc))
        elif key in ("site_url", "notify"):
            from casereport.settings_notify import notify_targets, site_url_problem

            if key == "notify":
                values[key] = notify_targets(value, problem)
            elif wrong := site_url_problem(value):
                problem(key, wrong)
            else:
                values[key] = str(value).rstrip("/")
        elif not isinstance(value, dict):
            problem(key, '"vars" must be a table ([vars] with NAME = "value" lines)')
        else:
            variables: dict[str, str] = {}
            for name, raw in value.items():
                if not VAR_NAME_RE.match(name):
                    problem(name, f'invalid variable name "{name}": {_VAR_NAME_RULE}', "vars")
                elif isinstance(raw, bool):
                    variables[name] = "true" if raw else "false"
                elif isinstance(raw, int | float | str):
                    variables[name] = str(raw)
                else:
                    problem(name, f'variable "{name}" must be a string, number or boolean', "vars")
            values["vars"] = variables
    joined = _join(root, values)
    return Settings(root=root, source=path, **joined), tuple(problems)


def _attributes(value: object) -> tuple[tuple[str, ...], str | None]:
    """The declared attributes, or why ``value`` is not a list of attribute names."""
    if not isinstance(value, list):
        return (), '"attributes" must be a list of case attribute names, e.g. ["region"]'
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or not ATTRIBUTE_NAME_RE.match(item):
            return (), (
                f'"attributes" lists {item!r}: a case attribute name is 1 to 100 letters, '
                'digits or _ . - (not starting with "-")'
            )
        if item in names:
            return (), f'"attributes" lists "{item}" twice'
        names.append(item)
    return tuple(names), None


_PAGE_KEYS = ("site_title", "pdf_page_size")


def _page_problem(key: str, value: object) -> str | None:
    """Why ``value`` cannot be ``site_title`` or ``pdf_page_size``, or None when it can."""
    if key == "pdf_page_size":
        if value in PDF_PAGE_SIZES:
            return None
        # "a4" and "letter" are the usual slips: say the spelling that works.
        hint = next(
            (f' (did you mean "{s}"?)' for s in PDF_PAGE_SIZES if s.lower() == str(value).lower()),
            "",
        )
        return f'"pdf_page_size" must be "A4" or "Letter", got {value!r}{hint}'
    if not isinstance(value, str) or not value.strip():
        return '"site_title" must be a non-empty string, e.g. site_title = "Support reports"'
    if len(value.strip()) > SITE_TITLE_MAX or "\n" in value or "\r" in value:
        return f'"site_title" must be one line of at most {SITE_TITLE_MAX} characters'
    return None


def _seconds_problem(key: str, value: object) -> str | None:
    """Why ``value`` is not a number of seconds for ``key``, or None when it is."""
    # A timeout of 0 would fail every request; a cap of 0 means "never wait for a reset".
    positive = key == "timeout"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or (value <= 0 if positive else value < 0)
    ):
        need = "more than 0" if positive else "0 or more"
        return f'"{key}" must be a number of seconds, {need} (e.g. {key} = 30), got {value!r}'
    return None


def load_settings(root: Path = Path(".")) -> Settings:
    """Read the settings; raise ``ConfigError`` listing every problem, one per line."""
    settings, problems = read_settings(root)
    if problems:
        raise ConfigError("\n".join(str(p) for p in problems))
    return settings


_VAR_NAME_RULE = 'names start with a letter or "_" and hold only letters, digits and "_"'


def parse_var_assignments(assignments: Iterable[str]) -> dict[str, str]:
    """Parse ``--var NAME=VALUE`` options (a later one wins); raise ``ConfigError``."""
    result: dict[str, str] = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f'invalid --var "{item}": use --var NAME=VALUE')
        if not VAR_NAME_RE.match(name):
            raise ConfigError(f'invalid --var name "{name}": {_VAR_NAME_RULE}')
        result[name] = value
    return result


def _join(root: Path, values: Mapping[str, Any]) -> dict[str, Any]:
    joined = dict(values)
    for key in _PATH_KEYS:
        default: Path = getattr(Settings, key)
        joined[key] = root / values.get(key, default)
    return joined


def _decode_problem(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> SettingsProblem:
    message = str(exc)
    match = _TOML_POSITION_RE.search(message)
    if match:
        line, column = int(match.group(1)), int(match.group(2))
        message = message[: match.start()]
    else:
        lines = text.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
        message = _TOML_END_RE.sub("", message)
    return SettingsProblem(path, line, column, f"invalid TOML: {message}")


def _key_position(lines: list[str], key: str, table: str | None) -> tuple[int, int]:
    """Best-effort 1-based position of ``key`` (tomllib reports no positions)."""
    current: str | None = None
    pattern = re.compile(rf"""\s*(["']?){re.escape(key)}\1\s*=""")
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            current = stripped.strip("[] ")
            if table is None and current == key:
                return number, line.index("[") + 1
            continue
        if current == table:
            match = pattern.match(line)
            if match:
                return number, len(line) - len(line.lstrip()) + 1
    return 1, 1


# -- [backend] (issue 14: remote state) -------------------------------------------------
#
# Kept apart from the settings above: parsed here, used by ``casereport.state.location``.

BACKEND_URL_RE = re.compile(
    r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?"
)
_BACKEND_KEYS = ("url", "endpoint_url", "region")


@dataclass(frozen=True)
class BackendSettings:
    """Where the state lives: ``local`` (the state file) or ``s3://bucket/prefix``."""

    url: str = "local"
    endpoint_url: str | None = None
    region: str | None = None


def backend_url_problem(url: str) -> str | None:
    """Why ``url`` is not a backend URL, or None when it is one."""
    if url == "local" or BACKEND_URL_RE.fullmatch(url):
        return None
    return (
        f'backend url "{url}" is neither "local" nor "s3://BUCKET/PREFIX" '
        "(S3 and S3-compatible stores such as MinIO or R2)"
    )


def _backend_settings(value: object, problem: Any) -> BackendSettings:
    """The ``[backend]`` table; each problem is reported through ``problem(key, message)``."""
    if not isinstance(value, dict):
        problem("backend", '"backend" must be a table ([backend] with url = "s3://...")')
        return BackendSettings()
    values: dict[str, str] = {}
    for key, raw in value.items():
        if key not in _BACKEND_KEYS:
            problem(
                key, f'unknown backend setting "{key}"{did_you_mean(key, _BACKEND_KEYS)}', "backend"
            )
        elif not isinstance(raw, str) or not raw.strip():
            problem(key, f'backend "{key}" must be a non-empty string', "backend")
        elif key == "url" and (wrong := backend_url_problem(raw)):
            problem(key, wrong, "backend")
        else:
            values[key] = raw
    return BackendSettings(**values)
