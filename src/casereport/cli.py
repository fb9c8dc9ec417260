"""The ``casereport`` command line: a thin click layer over the library.

Each command parses its options and calls one library function. Heavy modules (the
emulator's numpy and uvicorn, pulumi) are imported inside the commands that use them,
so ``casereport --help`` and ``--version`` start fast.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click

from casereport import __version__
from casereport.errors import CaseReportError


class CaseReportGroup(click.Group):
    """A click group that turns unexpected exceptions into one line unless ``--debug``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            if ctx.meta.get("casereport.debug"):
                traceback.print_exc()
            raise
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as exc:
            if ctx.meta.get("casereport.debug"):
                raise
            raise CaseReportError(
                f"internal error: {type(exc).__name__}: {exc} "
                "(re-run with --debug for the traceback, and please report it)"
            ) from exc


@click.group(cls=CaseReportGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="casereport")
@click.option(
    "--debug",
    is_flag=True,
    envvar="CASEREPORT_DEBUG",
    help="Show tracebacks for errors (also CASEREPORT_DEBUG=1).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Declarative, reviewable reports on Datadog Case Management.

    \b
    Example:
      casereport query 'status:open' --group-by priority --emulator
    """
    ctx.meta["casereport.debug"] = debug


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="casereport")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
