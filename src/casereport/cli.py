"""The ``casereport`` command line: a thin click layer over the library.

Each command parses its options and calls one library function. Heavy modules (the
emulator's numpy and uvicorn, pulumi) are imported inside the commands that use them,
so ``casereport --help`` and ``--version`` start fast.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

import click

from casereport import __version__
from casereport.cli_backend import (
    BACKEND_OPTIONS,
    LOCK_TIMEOUT_OPTION,
    REPORTS_DIR_OPTION,
    STATE_OPTION,
    VAR_OPTION,
    backend_options,
    located_state,
    located_values,
    remote_force_unlock,
    warn_if_still_running,
    workspace_group,
)
from casereport.cli_check import ChecksSeen, check_command
from casereport.cli_demo import demo_command
from casereport.cli_emulator import emulator_group
from casereport.cli_notify import echo_delivery, notify_command
from casereport.cli_output import output_command
from casereport.cli_state import state_group, state_options
from casereport.cli_version import add_no_color, completion_command, version_command
from casereport.errors import CaseReportError
from casereport.terminal import clean, clean_output, disable_colour, raw, use_colour


class CaseReportGroup(click.Group):
    """A click group that turns unexpected exceptions into one line unless ``--debug``,
    and shows control characters in anything printed as visible escapes
    (``casereport.terminal``)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        disable_colour(False)  # (a test runs many commands in one process)
        return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with clean_output():
                return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort) as exc:
            if isinstance(exc, click.ClickException):
                # click prints it once this returns (its stubs mark it Final; it is not)
                exc.message = clean(exc.message)  # type: ignore[misc]
                tty = sys.stderr.isatty()
                if isinstance(exc, CaseReportError) and (tty or ctx.meta.get("casereport.lines")):
                    from casereport.diagnostics import with_source

                    # The file's line under each "path:line:col: error:" (its first line kept).
                    exc.message = with_source(exc, colour=use_colour(tty))  # type: ignore[misc]
            if ctx.meta.get("casereport.debug"):
                traceback.print_exc()
            raise
        except KeyboardInterrupt:
            raise click.Abort() from None
        except BrokenPipeError:
            # The reader went away (`casereport query ... | head`): click ends quietly.
            raise
        except Exception as exc:
            if ctx.meta.get("casereport.debug"):
                raise
            raise CaseReportError(
                clean(
                    f"internal error: {type(exc).__name__}: {exc} "
                    "(re-run with --debug for the traceback, and please report it)"
                )
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


# -- query ---------------------------------------------------------------------------


def _client_options(function: Any) -> Any:
    """How long API calls may take (flags override casereport.toml): query and apply."""
    decorators = [
        click.option(
            "--timeout",
            type=click.FloatRange(0, min_open=True),
            metavar="SECONDS",
            help="Longest one API attempt may take, all told (timeout in casereport.toml; 30).",
        ),
        click.option(
            "--max-rate-limit-wait",
            type=click.FloatRange(0),
            metavar="SECONDS",
            help="Longest rate-limit reset to wait for; a longer one fails the request at "
            "once (max_rate_limit_wait in casereport.toml; 120).",
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


@cli.command("query")
@click.argument("query_filter", metavar="QUERY")
@click.option(
    "--group-by",
    "-g",
    "groups",
    multiple=True,
    help="Case field to group by (repeatable, e.g. -g status -g priority); "
    "without it, only the number of matching cases.",
)
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="Groups at most."
)
@click.option("--json", "as_json", is_flag=True, help="Print the raw API response shape.")
@click.option(
    "--emulator", is_flag=True, help="Start a local emulator for this command (demo data)."
)
@_client_options
def query_command(
    query_filter: str,
    groups: tuple[str, ...],
    limit: int,
    as_json: bool,
    emulator: bool,
    timeout: float | None,
    max_rate_limit_wait: float | None,
) -> None:
    """Run one ad-hoc aggregate over cases and print the groups.

    QUERY uses the Case Management search syntax ('' for all cases); it is checked here
    before anything is sent. Without --group-by, prints how many cases match.

    \b
    Examples:
      casereport query 'service:case-api' --group-by status --limit 14 --emulator
      casereport query 'status:open priority:(P1 OR P2)' -g services --json
      casereport query 'status:open' -g team --timeout 10 --max-rate-limit-wait 300
      casereport query 'status:open priority:P1' --emulator   # a count
    """
    from casereport.engine import adhoc

    attributes = adhoc.workspace_attributes()
    request = adhoc.query_request(query_filter, groups, limit, attributes=attributes, warn=_notice)
    result = adhoc.run_query(
        request,
        use_emulator=emulator,
        env=adhoc.environment(),
        notice=lambda line: click.echo(line, err=True),
        timeout=timeout,
        max_rate_limit_wait=max_rate_limit_wait,
    )
    if not groups:
        click.echo(adhoc.format_count(query_filter, result, as_json=as_json))
    else:
        click.echo(adhoc.format_json(result) if as_json else adhoc.format_table(request, result))


cli.add_command(emulator_group)  # in its own module, like `state mv`: cli_emulator
cli.add_command(demo_command)  # in its own module: cli_demo
cli.add_command(output_command)  # in its own module: cli_output
cli.add_command(version_command)  # in its own module, with completion: cli_version
cli.add_command(completion_command)
cli.add_command(check_command)  # in its own module: cli_check


# -- report definitions: validate, fmt, schema, init ---------------------------------

_REPORTS_DIR_HELP = "Directory of report files (default: reports_dir in casereport.toml, reports/)."


@cli.command("validate")
@click.option(
    "--reports-dir", type=click.Path(path_type=Path), default=None, help=_REPORTS_DIR_HELP
)
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set ${var.NAME} in every report (repeatable; overrides vars: and casereport.toml).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the diagnostics as JSON.")
@click.option("--strict", is_flag=True, help="Warnings are errors (as strict = true does).")
@click.pass_context
def validate_command(
    ctx: click.Context, /, reports_dir: Path | None, variables: tuple[str, ...], **flags: bool
) -> None:
    """Check every report definition offline: YAML, schema, variables, queries, templates.

    Prints one line per problem (path:line:col: error: message) and a summary; exits 0
    when valid (warnings allowed, unless --strict or strict = true) and 1 otherwise.

    \b
    Examples:
      casereport validate
      casereport validate --strict   # in CI: a warning fails the build
      casereport validate --reports-dir reports --var environment=staging --json
    """
    from dataclasses import replace

    from casereport.checks.validate import with_check_diagnostics
    from casereport.definitions.expand import expand_workspace, validation_output
    from casereport.render.check import check_templates
    from casereport.settings import parse_var_assignments

    ctx.meta["casereport.lines"] = True  # casereport.toml's errors too show their line
    cli_vars = parse_var_assignments(variables)
    settings, expansion = expand_workspace(Path("."), reports_dir=reports_dir, cli_vars=cli_vars)
    expansion = with_check_diagnostics(expansion)
    # The templates of every report, with the rest of the problems: one run.
    problems = check_templates(expansion.every_report, settings.templates_dir)
    expansion = replace(expansion, diagnostics=(*expansion.diagnostics, *problems))
    if flags["strict"] or settings.strict:
        expansion = expansion.strict()
    colour = use_colour(sys.stdout.isatty())  # (the snippets' carets in red, on a terminal)
    text = validation_output(expansion, as_json=flags["as_json"], colour=colour)
    click.echo(text, nl=False, file=raw(sys.stdout) if colour else None)
    if not expansion.ok:
        ctx.exit(1)


@cli.command("fmt")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--check", is_flag=True, help="Write nothing; list unformatted files, exit 1.")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff of each change.")
@click.option(
    "--reports-dir", type=click.Path(path_type=Path), default=None, help=_REPORTS_DIR_HELP
)
@click.pass_context
def fmt_command(
    ctx: click.Context,
    files: tuple[Path, ...],
    check: bool,
    show_diff: bool,
    reports_dir: Path | None,
) -> None:
    """Rewrite report files in the canonical style, keeping comments and key order.

    FILES default to every reports/*.yaml (a directory stands for its *.yaml files).
    Files that do not parse are reported and left untouched.

    \b
    Examples:
      casereport fmt
      casereport fmt --check --diff reports/support-backlog.yaml
    """
    from casereport.definitions import fmt
    from casereport.settings import load_settings

    if reports_dir is None and not files:
        reports_dir = load_settings(Path(".")).reports_dir
    code = fmt.run(
        files,
        reports_dir=reports_dir or Path("reports"),
        check=check,
        diff=show_diff,
        out=click.echo,
        err=lambda line: click.echo(line, err=True),
    )
    ctx.exit(code)


@cli.command("schema")
@click.option("--data-file", is_flag=True, help="The schema of site/REPORT.json instead.")
@click.option("--apply-json", is_flag=True, help="The schema of a line of `apply --json` instead.")
def schema_command(data_file: bool, apply_json: bool) -> None:
    """Print the JSON Schema (draft 2020-12) of a report file (or a data file, or an event).

    Editors that understand `# yaml-language-server: $schema=...` use it to check and
    complete report files.

    \b
    Examples:
      casereport schema > schema/report.schema.json
      casereport schema --data-file > schema/data-file.schema.json
      casereport schema --apply-json > schema/apply-json.schema.json
    """
    if apply_json:
        from casereport.engine.events_schema import events_schema_json

        click.echo(events_schema_json(), nl=False)
        return
    if data_file:
        from casereport.render.data_schema import data_schema_json

        click.echo(data_schema_json(), nl=False)
        return
    from casereport.definitions.schema import schema_json

    click.echo(schema_json(), nl=False)


@cli.command("init")
@click.argument("directory", type=click.Path(path_type=Path), default=".", required=False)
def init_command(directory: Path) -> None:
    """Create a workspace: an example report, casereport.toml, schema/, templates/, .gitignore.

    DIRECTORY (default: the current one) is created if missing. It need not be empty:
    other files are left alone, and an existing .gitignore gets the lines it lacks
    appended. If a file init would write exists already, it writes nothing and names it.

    \b
    Example:
      casereport init my-reports && cd my-reports && casereport validate
    """
    from casereport.definitions.scaffold import init_workspace

    result = init_workspace(directory)
    for path in result.created:
        click.echo(f"created {path}")
    for path in result.updated:
        click.echo(f"updated {path}")
    where = "" if directory == Path(".") else f"cd {directory} && "
    click.echo(f"Next: {where}casereport validate && casereport apply --emulator")


# -- plan, apply, render ---------------------------------------------------------------


def _workspace_options(function: Any) -> Any:
    """Options shared by plan, apply and render (flags override casereport.toml)."""
    decorators = [
        REPORTS_DIR_OPTION,
        STATE_OPTION,
        click.option(
            "--site-dir", type=click.Path(file_okay=False, path_type=Path), help="Site (site/)."
        ),
        VAR_OPTION,
        LOCK_TIMEOUT_OPTION,
        *BACKEND_OPTIONS,
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def _selection_options(function: Any) -> Any:
    """Options that shape a plan: targets, refresh, data source, parallelism."""
    decorators = [
        click.option(
            "--target",
            "targets",
            multiple=True,
            metavar="ADDR",
            help="Only this report or aggregation address (repeatable).",
        ),
        click.option("--refresh", "refresh_all", is_flag=True, help="Treat every result as stale."),
        click.option(
            "--emulator",
            "use_emulator",
            is_flag=True,
            help="Use a local emulator (demo data), not Datadog.",
        ),
        click.option(
            "--parallelism", type=click.IntRange(1, 256), help="Concurrent API requests (16)."
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def _notice(line: str) -> None:
    click.echo(line, err=True)


def _options(**values: Any) -> Any:
    from casereport.engine.workspace import Options
    from casereport.settings import parse_var_assignments

    variables = values.pop("variables", ())
    return Options(cli_vars=parse_var_assignments(variables), **values)


@cli.command("plan")
@_workspace_options
@_selection_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Save the plan.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as versioned JSON.")
@click.option("--markdown", is_flag=True, help="Print a concise plan for a pull request.")
@click.option(
    "--max-chars",
    type=click.IntRange(1),
    default=65_536,
    show_default=True,
    help="Longest --markdown plan: past it, rows are summarised (GitHub's comment limit).",
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 0 without changes, 2 with changes, 1 on error."
)
def plan_command(
    out: Path | None,
    as_json: bool,
    markdown: bool,
    max_chars: int,
    detailed_exitcode: bool,
    **values: Any,
) -> None:
    """Show what apply would fetch, re-render and remove. Never calls the API.

    \b
    Examples:
      casereport plan --emulator
      casereport plan --out plan.json && casereport apply plan.json
      casereport plan --markdown > plan.md   # for a pull-request comment
    """
    from casereport.engine import views
    from casereport.engine.apply import run_plan

    warnings: list[str] = []  # for the pull-request comment, which the CI log is not

    def notice(line: str) -> None:
        _notice(line)
        if ": warning: " in line:
            warnings.append(line)

    with located_values(values, None) as values:
        plan = run_plan(_options(**values), out=out, notice=notice)
    if as_json:
        click.echo(views.render_json(plan), nl=False)
    elif markdown:
        click.echo(views.render_markdown(plan, max_chars=max_chars, warnings=warnings), nl=False)
    else:
        colour = views.use_colour(sys.stdout.isatty())
        # (the view escapes what it shows, and its colour must stay)
        click.echo(views.render_human(plan, colour=colour), nl=False, file=raw(sys.stdout))
        if out is not None:
            click.echo(f"\nSaved the plan to {out}. Apply exactly it with: casereport apply {out}")
    if detailed_exitcode and plan.has_changes:
        sys.exit(2)


@cli.command("apply")
@click.argument(
    "plan_file", required=False, type=click.Path(dir_okay=False, path_type=Path), metavar="[PLAN]"
)
@_workspace_options
@_selection_options
@_client_options
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--allow-source-change",
    is_flag=True,
    help="Let an unattended apply switch the state to another data source.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object per event, as lines (docs/apply-json.md); needs "
    "--auto-approve or PLAN.",
)
@click.option(
    "--fail-on-checks", is_flag=True, help="Exit 1 when an error check fails (fail_on_checks)."
)
def apply_command(
    plan_file: Path | None, auto_approve: bool, as_json: bool, fail_on_checks: bool, **values: Any
) -> None:
    """Fetch what the plan needs, record state and render the site.

    Without PLAN it plans first, shows the plan and asks for confirmation (on a terminal;
    elsewhere pass --auto-approve). With PLAN (from `plan --out`) it applies exactly that
    plan, and refuses it if the state or the definitions changed since. A change of data
    source (another DD_SITE or API URL, or the emulator) is refused without a confirmation
    unless --allow-source-change is given; the old results are kept for a switch back.
    Checks (checks: in report files) are evaluated at the end and their failures listed;
    they fail the apply only with --fail-on-checks or fail_on_checks = true.

    \b
    Examples:
      casereport apply --emulator --auto-approve
      casereport apply plan.json
      casereport apply --auto-approve --timeout 10 --max-rate-limit-wait 300
      casereport apply --emulator --auto-approve --json > apply.jsonl
    """
    from casereport import cli_events
    from casereport.engine import views
    from casereport.engine.apply import run_apply

    cli_events.require_approval(as_json, auto_approve, plan_file is not None)
    colour = views.use_colour(sys.stdout.isatty())
    stdin_tty = sys.stdin.isatty()

    def approve(plan: Any) -> bool:
        if as_json:  # (with --auto-approve: the plan is its `planned` event)
            return True
        if not auto_approve and not stdin_tty:
            raise CaseReportError(
                "apply needs approval: run it on a terminal, pass --auto-approve, "
                "or apply a saved plan (`casereport plan --out plan.json`)"
            )
        click.echo(views.render_human(plan, colour=colour), file=raw(sys.stdout))
        if auto_approve:
            return True
        answer = click.prompt(
            "Do you want to perform these actions? Only 'yes' will be accepted",
            default="",
            show_default=False,
        )
        if answer != "yes":
            click.echo("Apply cancelled.")
            return False
        return True

    checks_seen = ChecksSeen(fail_on_checks)
    with cli_events.view_for("apply", as_json=as_json) as view:
        try:
            with located_values(values, "apply", view.notice) as values:
                plan, outcome = run_apply(
                    _options(**values),
                    plan_file,
                    approve=approve,
                    listener=view,
                    notice=view.notice,
                    auto_approve=auto_approve,
                    on_checks=checks_seen.record,
                )
        except KeyboardInterrupt:
            raise cli_events.interrupted() from None
        if as_json and outcome is not None:  # delivery came before the summary
            echo_delivery(outcome.notified, view.notice)
        code = cli_events.apply_summary(view, plan, outcome, failing_checks=checks_seen.failing)
    if not as_json and outcome is not None:
        echo_delivery(outcome.notified)  # a failed delivery warns: the apply itself succeeded
    checks_seen.report(quiet=as_json)
    if code:
        sys.exit(code)


# In its own module (cli_notify), with the options plan, apply and render take.
cli.add_command(_workspace_options(notify_command))


@cli.command("render")
@_workspace_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object per event (docs/apply-json.md)."
)
def render_command(as_json: bool, **values: Any) -> None:
    """Re-render every report page from state, without calling the API.

    \b
    Examples:
      casereport render --site-dir public
      casereport render --json
    """
    from casereport import cli_events
    from casereport.engine.apply import run_render

    checks_seen = ChecksSeen()
    with cli_events.view_for("render", as_json=as_json, waiting="preparing") as view:
        with located_values(values, "render", view.notice) as values:
            rendered = run_render(
                _options(**values), notice=view.notice, listener=view, on_checks=checks_seen.record
            )
        cli_events.render_summary(view, rendered)
    checks_seen.report(quiet=as_json)  # (render never fails on checks)


@cli.command("show")
@click.argument(
    "plan_file", required=False, type=click.Path(dir_okay=False, path_type=Path), metavar="[PLAN]"
)
@STATE_OPTION
@click.option(
    "--json", "as_json", is_flag=True, help="As JSON: the saved plan, or the state's content."
)
@backend_options
def show_command(plan_file: Path | None, state_path: Path | None, as_json: bool, **at: Any) -> None:
    """Show a saved plan, or without PLAN the current state in brief.

    With --json and no PLAN, prints the state's whole content as JSON (its shape is
    versioned: see docs/state.md).

    \b
    Examples:
      casereport show
      casereport show --json
      casereport show plan.json
    """
    from casereport.engine import views

    if plan_file is not None:
        from casereport.engine.apply import read_plan

        plan = read_plan(plan_file)
        click.echo(views.render_json(plan) if as_json else views.render_human(plan), nl=False)
        return
    from casereport.state.ops import describe_state, state_json

    with located_state(state_path, at["backend"], at["workspace"], None) as path:
        if as_json:
            click.echo(state_json(path, __version__), nl=False)
        else:
            click.echo(describe_state(path))


# In their own modules (this one is at its size limit): cli_state, cli_backend.
cli.add_command(state_group)
cli.add_command(workspace_group)


@cli.command("force-unlock")
@click.argument("lock_id", metavar="ID")
@state_options
def force_unlock_command(lock_id: str, state_path: Path | None, **at: Any) -> None:
    """Remove a stuck state lock. Only when its run is really gone or hung.

    \b
    Example:
      casereport force-unlock 0f5b2c1e-8d7a-4c2e-9a51-3c6f7e2d9b10
    """
    from casereport.state.ops import unlock

    if state_path is None and remote_force_unlock(lock_id, at["backend"], at["workspace"]):
        return
    with located_state(state_path, at["backend"], at["workspace"], None) as path:
        info = unlock(path, lock_id)
    click.echo(f"Removed the lock {info.describe()}.")
    warn_if_still_running(info)


# -- publish ---------------------------------------------------------------------------


@cli.command("publish")
@click.option("--stack", default="site", show_default=True, help="Pulumi stack to update.")
@click.option("--preview", "preview_only", is_flag=True, help="Only show what would change.")
@click.option("--yes", is_flag=True, help="Publish without asking (CI).")
@click.option("--allow-demo-data", is_flag=True, help="Publish a site of emulator data.")
@click.option("--site-dir", type=click.Path(file_okay=False, path_type=Path), help="Site (site/).")
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="State file (.casereport/state.json).",
)
@click.option("--bucket", help="Create and publish to this bucket (saved in the stack).")
@click.option("--region", help="AWS region, e.g. eu-west-1 (saved in the stack).")
@click.option("--prefix", help="Key prefix, e.g. reports/ ('' for the root; saved).")
@click.option("--existing-bucket", help="Upload into this bucket instead; it is not managed.")
def publish_command(**values: Any) -> None:
    """Publish the rendered site to S3 as a static website, with Pulumi.

    Needs the extra (pip install 'casereport[publish]'), the Pulumi CLI and AWS
    credentials. On a terminal it previews and asks; elsewhere pass --yes (or --preview).
    Pulumi's state lives in .casereport/pulumi unless PULUMI_BACKEND_URL says otherwise.

    \b
    Examples:
      casereport publish --bucket acme-case-reports --region eu-west-1
      casereport publish --preview
      PULUMI_CONFIG_PASSPHRASE=... casereport publish --yes   # in CI
    """
    from casereport.engine import views
    from casereport.publish.deploy import PublishRequest, publish

    request = PublishRequest(colour=views.use_colour(sys.stdout.isatty()), **values)

    def confirm() -> bool:
        answer = click.prompt(
            "Do you want to publish these changes? Only 'yes' will be accepted",
            default="",
            show_default=False,
        )
        return bool(answer == "yes")

    def ask_passphrase() -> str:
        return str(
            click.prompt("Passphrase of the Pulumi stack's secrets", hide_input=True, default="")
        )

    outcome = publish(
        request,
        interactive=sys.stdin.isatty(),
        confirm=confirm,
        ask_passphrase=ask_passphrase,
        out=click.echo,
    )
    click.echo(outcome.summary())


add_no_color(cli)  # on every command: after the last is added


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="casereport")


if __name__ == "__main__":  # pragma: no cover
    main()
