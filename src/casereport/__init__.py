"""casereport: Terraform-style declarative reports on Datadog Case Management.

The package follows the pipeline, one subpackage per stage::

    reports/*.yaml ─load─▶ definitions ─expand─▶ requests ─┐
                                                            ├─plan─▶ Plan ─apply─▶ api ─▶ state
    .casereport/state.json ─────────── state ──────────────┘                        │
                                                      publish ◀─ site/ ◀─ render ◀─┘

Layers, lowest first. A module imports only from its own layer or a lower one, and never
from a module that imports it back (``make lint`` checks both with import-linter; the
contracts are in pyproject.toml):

    errors, clock, fsutil, settings, site   shared by every stage (settings_notify: the
                   [notify.NAME] targets, read only when a settings file has them)
    definitions/   report files: load, expand, query language, fmt, schema, init
    state/         the state file and its history, the apply journal, the lock, state commands
    checks/        CEL assertions over an aggregation's numbers, evaluated from state
    api/           the Datadog client and its rate limiting    ┐ independent of
    emulator/      a local server that speaks the same API     │ one another
    render/        state to pages, and writing the site        ┘
    notify/        delivery of a run to Slack, email and webhooks, after state is written
    engine/        plan (a plain data model and its views), then apply: fetch through
                   api/ (or a started emulator) and render through render/
    publish/       the rendered site online with Pulumi
    cli            the click layer, one library call per command
"""

__version__ = "0.1.0"
