"""``casereport demo``, added to the command line by ``cli`` (kept apart from it, which is
near its size limit). As in ``cli``, the command parses its options and calls one library
function (``casereport.engine.demo.build_demo``)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Seed of the simulated cases; the same seed builds the same site, byte for byte.",
)
@click.option(
    "--cases",
    type=click.IntRange(0),
    default=5000,
    show_default=True,
    help="Cases in the simulated year and a quarter (fewer exist at the earlier runs).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Build in a DIRECTORY that is not empty: the demo's casereport.toml, .gitignore, "
    "reports/, schema/, templates/, site/ and .casereport/ replace any already there.",
)
def demo_command(directory: Path, seed: int, cases: int, force: bool) -> None:
    """Build a workspace with six weeks of history: changes and trends at once.

    Creates DIRECTORY (new or empty) with `casereport init`'s example report and a
    weekly support report, then applies them 13 times, as if on Mondays and Thursdays at
    09:00 UTC from 1 June to 13 July 2026: each run is an ordinary apply against the
    local emulator, whose cases evolve between runs (arrivals, work, a P1 incident, a
    clean-up), with the clock pinned to the run's time. Nothing is sent to Datadog;
    every page carries the demo-data banner.

    \b
    Example:
      casereport demo demo-reports && cd demo-reports && casereport plan --emulator
    """
    from casereport.engine.demo import build_demo

    result = build_demo(
        directory, seed=seed, cases=cases, force=force, notice=lambda line: click.echo(line)
    )
    first, last = result.runs[0], result.runs[-1]
    click.echo(
        f"Built a demo workspace in {directory}: {len(result.runs)} simulated runs from "
        f"{first:%a %d %b} to {last:%a %d %b %Y} (seed {result.seed}), demo data only."
    )
    click.echo(f"Site: {result.site_index}")
    where = "" if directory == Path(".") else f"cd {directory} && "
    click.echo(f"Next: {where}casereport plan --emulator")
