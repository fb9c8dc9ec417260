"""``casereport init``: scaffold a working workspace in a new or existing directory.

It writes an example report, ``casereport.toml`` with every setting at its default, the
report JSON Schema (so editors validate the example at once), an empty ``templates/``
with a README, and ``.gitignore`` lines for ``site/`` and ``.casereport/``. It never
overwrites a file: if any would be replaced, it writes nothing and names them. An existing
``.gitignore`` only gets the lines it lacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from casereport.definitions.schema import SCHEMA_COMMENT, SCHEMA_PATH, schema_json
from casereport.errors import ConfigError
from casereport.settings import SETTINGS_FILE

__all__ = ["EXAMPLE_REPORT", "InitResult", "init_workspace"]

EXAMPLE_REPORT = "reports/open-cases.yaml"
GITIGNORE_LINES = ("site/", ".casereport/")

_SETTINGS = """\
# casereport workspace settings. Every key is optional: the values below are the
# defaults. Command-line flags override them; relative paths are from this directory.

# Report definitions: one report per file, reports/<name>.yaml.
reports_dir = "reports"
# Template overrides, searched before the built-in templates.
templates_dir = "templates"
# Where apply and render write the site.
site_dir = "site"
# Last results and output hashes (keep it out of Git; see .gitignore).
state_path = ".casereport/state.json"
# Results older than this are fetched again by apply: 30m, 6h, 1d, ... or "always".
# A report's own `refresh:` overrides it.
refresh = "1h"
# How many API requests apply runs at once.
parallelism = 16
# Seconds one API attempt may take, all told; the longest rate-limit reset (seconds)
# worth waiting for (a longer one fails the run, naming it).
timeout = 30
max_rate_limit_wait = 120
# Custom case attributes the reports search or group by, e.g. ["region"]: any other field
# that is not a known case field is a warning, so a typo does not quietly count 0.
attributes = []
# true: every warning is an error in validate, plan and apply (for CI).
strict = false
# true: a failing check of severity error fails apply (exit 1) once the site is written.
fail_on_checks = false
# The site's name (page titles, headers, the index), and the paper of PDF pages
# (reports with `formats: [pdf]`): "A4" or "Letter".
site_title = "Case reports"
pdf_page_size = "A4"
# Where the site is published, for links in notifications (none by default):
# site_url = "https://reports.example.com"
# Earlier results each aggregation keeps, for changes, comparisons and trends: a run count
# (1 to 1000), or a duration such as "90d" (what was fetched within it, at most 1000 runs).
# A report that compares with a week ago (`compare: 7d`) needs a week of runs and more.
history = 30

# Variables for every report, used as ${var.NAME} (none by default; this one is used by
# the example report). A report's own vars override these; --var NAME=VALUE overrides both.
[vars]
environment = "prod"

# Keep the state in a bucket, shared by CI runners and locked (docs/state.md):
# [backend]
# url = "s3://my-bucket/casereport"
#
# Send each run's reports to Slack, email or a webhook (docs/notify.md):
# [notify.team]
# type = "slack"
# webhook_url_env = "SLACK_WEBHOOK_URL"
# on = ["change", "check_failed"]
"""

_REPORT = f"""\
{SCHEMA_COMMENT}
# An example report. Edit it, then run `casereport validate` and `casereport plan`.
# Each aggregation is one request to Datadog's case aggregate API.
title: Open cases (${{var.environment}})
description: Open cases by priority and service, in the ${{var.environment}} environment.
owner: "@my-team"
refresh: 1h
formats: [markdown, html]
aggregations:
  by_status:
    title: All cases by status
    query_filter: env:${{var.environment}}
    group_by: [status]
    limit: 3
  open_by_priority:
    title: Open cases by priority
    query_filter: env:${{var.environment}} status:open
    group_by: [priority]
    limit: 6
    # How the numbers read: the change against the run nearest to a week ago (default:
    # the previous run), fewer open cases is good, and what "NOT_DEFINED" is called.
    compare: 7d
    better: lower
    labels:
      NOT_DEFINED: No priority
  open_on_service:
    # One aggregation per service: open-cases.open_on_service["billing"], ...
    for_each: [case-api, billing, checkout]
    title: Open cases on ${{each.key}} by priority
    query_filter: service:${{each.value}} env:${{var.environment}} status:open
    group_by: [priority]
    limit: 6
"""

_TEMPLATES_README = """\
Template overrides go here: a file named like a built-in template (report.md.j2,
report.html.j2, index.html.j2, partials/...) replaces it for this workspace.
"""


@dataclass(frozen=True, slots=True)
class InitResult:
    """What ``init`` did: files created, and an existing ``.gitignore`` it added to."""

    directory: Path
    created: tuple[Path, ...]
    updated: tuple[Path, ...]


def init_workspace(directory: Path) -> InitResult:
    """Create the workspace files in ``directory`` (created if missing)."""
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"cannot init {directory}: it exists and is not a directory")
    files = {
        SETTINGS_FILE: _SETTINGS,
        EXAMPLE_REPORT: _REPORT,
        SCHEMA_PATH: schema_json(),
        "templates/README.md": _TEMPLATES_README,
    }
    existing = sorted(name for name in files if (directory / name).exists())
    if existing:
        raise ConfigError(
            f"refusing to overwrite existing files in {directory}: {', '.join(existing)} "
            "(nothing was written: move them away, or run init in another directory)"
        )
    gitignore = directory / ".gitignore"
    if gitignore.exists() and not gitignore.is_file():
        raise ConfigError(f"cannot init {directory}: .gitignore is not a file")
    created: list[Path] = []
    updated: list[Path] = []
    try:
        for name, text in files.items():
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("x", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            created.append(path)
        if gitignore.is_file():
            current = gitignore.read_text(encoding="utf-8")
            have = {line.strip() for line in current.splitlines()}
            missing = [line for line in GITIGNORE_LINES if line not in have]
            if missing:
                separator = "" if not current or current.endswith("\n") else "\n"
                with gitignore.open("a", encoding="utf-8", newline="\n") as handle:
                    handle.write(separator + "# casereport\n" + "\n".join(missing) + "\n")
                updated.append(gitignore)
        else:
            with gitignore.open("x", encoding="utf-8", newline="\n") as handle:
                handle.write("# casereport\n" + "\n".join(GITIGNORE_LINES) + "\n")
            created.append(gitignore)
    except OSError as exc:
        raise ConfigError(f"cannot init {directory}: {exc.strerror}: {exc.filename}") from exc
    return InitResult(directory, tuple(created), tuple(updated))
