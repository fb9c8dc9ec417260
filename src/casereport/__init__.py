"""casereport: Terraform-style declarative reports on Datadog Case Management.

The package follows the pipeline, one subpackage per stage::

  reports/*.yaml ─▶ definitions ─▶ engine.plan ─▶ engine.apply ─▶ api ─▶ state ─▶ render ─▶ publish
                                      ▲                                    │
                                      └──────────── state ◀────────────────┘

Layers, lowest first. A module imports only from its own layer or a lower one, and never
from a module that imports it back (``tests/test_layout.py`` checks both):

    errors, clock, fsutil, settings, site   shared by every stage
    definitions/   report files: load, expand, query language, fmt, schema, init
    state/         the state file and its history, the apply journal, the lock, state commands
    api/           the Datadog client and its rate limiting    ┐ independent of
    emulator/      a local server that speaks the same API     │ one another
    render/        state to pages, and writing the site        ┘
    engine/        plan (a plain data model and its views), then apply: fetch through
                   api/ (or a started emulator) and render through render/
    publish/       the rendered site online with Pulumi
    cli            the click layer, one library call per command
"""

__version__ = "0.1.0"
