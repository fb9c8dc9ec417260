"""``casereport emulator serve|export``, added to the command line by ``cli`` (kept apart
from it, which is at its size limit). As in ``cli``, each command parses its options and
calls one library function; the emulator's numpy and uvicorn are imported inside them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """``--now``: an ISO 8601 date and time (naive means UTC), e.g. 2026-06-25T09:00Z."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date and time like 2026-06-25T09:00Z", ctx, param
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_NOW_HELP = (
    "Simulated clock: the synthetic cases as they have evolved by TIME (ISO 8601, e.g. "
    "2026-06-25T09:00Z); without it, the fixed snapshot. See `casereport demo`."
)


@click.group("emulator")
def emulator_group() -> None:
    """A local emulator of the Case Management API (offline demo data, tests).

    \b
    Example:
      casereport emulator export --cases 5 -o five-cases.json
    """


@emulator_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=int, default=8710, show_default=True, help="Port (0 picks a free one)."
)
@click.option(
    "--cases", type=int, default=5000, show_default=True, help="Synthetic cases to generate."
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the synthetic set.")
@click.option("--now", metavar="TIME", callback=_moment, help=_NOW_HELP)
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Serve these cases instead: a GET /api/v2/cases response (JSON) or NDJSON.",
)
@click.option("--api-key", envvar="CASEREPORT_EMULATOR_API_KEY", help="Accept only this API key.")
@click.option(
    "--app-key", envvar="CASEREPORT_EMULATOR_APP_KEY", help="Accept only this application key."
)
@click.option(
    "--bearer-token",
    envvar="CASEREPORT_EMULATOR_BEARER_TOKEN",
    help="Accept this OAuth bearer token (Authorization: Bearer ...) too.",
)
@click.option(
    "--latency-ms", type=float, default=0.0, show_default=True, help="Delay every API response."
)
@click.option(
    "--error-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Answer this share of requests (0 to 1) with 500/503.",
)
@click.option(
    "--rate-limit",
    type=int,
    help="Requests allowed per --rate-period (without it: 100,000 per 60 s, as good as none).",
)
@click.option(
    "--rate-period",
    type=int,
    default=1,
    show_default=True,
    help="Seconds per window of --rate-limit (only with --rate-limit).",
)
def emulator_serve(
    host: str,
    port: int,
    cases: int,
    seed: int,
    now: datetime | None,
    data: Path | None,
    api_key: str | None,
    app_key: str | None,
    bearer_token: str | None,
    latency_ms: float,
    error_rate: float,
    rate_limit: int | None,
    rate_period: int,
) -> None:
    """Serve the Case Management API on loopback until Ctrl-C.

    \b
    Example:
      casereport emulator serve --cases 100000 --latency-ms 50 --rate-limit 100
      curl -s localhost:8710/api/v2/cases/aggregate -H 'DD-API-KEY: x' \\
        -H 'DD-APPLICATION-KEY: y' -H 'Content-Type: application/json' \\
        -d '{"data":{"type":"aggregate","attributes":{"query_filter":"service:case-api",
             "group_by":{"groups":["status"],"limit":14}}}}'
    """
    from casereport.emulator.server import EmulatorConfig, serve

    config = EmulatorConfig(
        host=host,
        port=port,
        cases=cases,
        seed=seed,
        now=now,
        data=data,
        api_key=api_key,
        app_key=app_key,
        bearer_token=bearer_token,
        latency_ms=latency_ms,
        error_rate=error_rate,
        rate_limit=rate_limit,
        rate_period=rate_period,
    )
    serve(config, announce=lambda line: click.echo(line))


@emulator_group.command("export")
@click.option(
    "--cases", type=int, default=5000, show_default=True, help="Synthetic cases to generate."
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the synthetic set.")
@click.option("--now", metavar="TIME", callback=_moment, help=_NOW_HELP)
@click.option("--ndjson", is_flag=True, help="One case object per line instead of one document.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write here (atomically) instead of standard output.",
)
def emulator_export(
    cases: int, seed: int, now: datetime | None, ndjson: bool, output: Path | None
) -> None:
    """Write the synthetic case set in the shape of GET /api/v2/cases.

    The file can be edited and served back with `emulator serve --data FILE`.

    \b
    Example:
      casereport emulator export --cases 200 --seed 3 -o cases.json
      casereport emulator export --now 2026-06-25T09:00Z --ndjson -o june-25.ndjson
    """
    from casereport.emulator.server import export_synthetic

    export_synthetic(output, cases=cases, seed=seed, now=now, ndjson=ndjson)
