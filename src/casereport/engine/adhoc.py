"""Ad-hoc queries (``casereport query``): one aggregate call, printed as a table or JSON."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casereport.api.client import aggregate_sync
from casereport.api.messages import AggregateRequest, AggregateResult
from casereport.api.settings import ClientSettings, Credentials
from casereport.definitions.fields import check_query_fields, known_fields
from casereport.definitions.load import check_group, check_query
from casereport.errors import ConfigError
from casereport.numbers import format_number
from casereport.settings import load_settings, read_settings

if TYPE_CHECKING:
    from casereport.emulator.config import EmulatorConfig

# The emulator accepts any keys unless started with its own; these only satisfy the protocol.
# Keys are scrubbed from every message, so they are words no message otherwise holds (keys
# named "emulator" turned "the emulator rejected ..." into "the *** rejected ...").
EMULATOR_CREDENTIALS = Credentials(
    api_key="casereport-emulator-api-key", app_key="casereport-emulator-app-key", bearer_token=None
)


# A count is an aggregate's total: grouping by a field every case has, one group at most.
_COUNT_GROUPS = ("status",)


def query_request(
    query_filter: str,
    groups: Sequence[str],
    limit: int,
    *,
    attributes: Collection[str] = (),
    warn: Callable[[str], None] | None = None,
) -> AggregateRequest:
    """The request for ``casereport query``, its query checked here first: a typo is
    reported at its column without a request (the same parser as ``validate``), and an
    unknown field or undocumented syntax is a warning passed to ``warn`` (``attributes``:
    the workspace's declared ones). Without ``groups`` the request only counts (see
    :func:`format_count`)."""
    problem = check_query(query_filter)
    if problem is not None:
        reason, position = problem
        error = ConfigError(
            f"invalid query at column {position + 1}: {reason}: {query_filter!r}; "
            "fix it (Case Management search syntax: field:value, AND, OR, -, parentheses)"
        )
        error.argument = (query_filter, position)
        raise error
    if warn is not None:
        known = known_fields(attributes)
        for message, position in check_query_fields(query_filter, known):
            warn(f"warning: at column {position + 1}: {message}")
        for group in groups:
            found = check_group(group, known)
            if found is not None and found[0] == "warning":  # an error is the API's to tell
                warn(f"warning: {found[1]}")
    if not groups:
        return AggregateRequest(query_filter=query_filter, groups=_COUNT_GROUPS, limit=1)
    return AggregateRequest(query_filter=query_filter, groups=tuple(groups), limit=limit)


@contextlib.contextmanager
def api_settings(
    *,
    use_emulator: bool,
    env: Mapping[str, str] | None = None,
    emulator: EmulatorConfig | None = None,
) -> Iterator[ClientSettings]:
    """Client settings from the environment, or for a local emulator started for the block
    (``emulator``: its ``EmulatorConfig``, the default one when None; with a ``url``, the
    emulator already running there)."""
    if not use_emulator:
        yield ClientSettings.from_env(env)
        return
    if emulator is not None and emulator.url is not None:
        yield _emulator_settings(emulator.url)
        return
    from casereport.emulator.server import EmulatorConfig, running_emulator

    config = EmulatorConfig(port=0) if emulator is None else replace(emulator, port=0)
    with running_emulator(config) as running:
        yield _emulator_settings(running.url)


def _emulator_settings(url: str) -> ClientSettings:
    return ClientSettings(base_url=url, site="emulator", credentials=EMULATOR_CREDENTIALS)


def run_query(
    request: AggregateRequest,
    *,
    use_emulator: bool,
    env: Mapping[str, str] | None = None,
    notice: Callable[[str], None] | None = None,
    timeout: float | None = None,
    max_rate_limit_wait: float | None = None,
) -> AggregateResult:
    """Run one aggregate request against Datadog (from the environment) or the emulator.

    ``timeout`` and ``max_rate_limit_wait`` default to the workspace's ``casereport.toml``.
    """
    if timeout is None or max_rate_limit_wait is None:
        workspace = load_settings(Path("."))
        timeout = workspace.timeout if timeout is None else timeout
        if max_rate_limit_wait is None:
            max_rate_limit_wait = workspace.max_rate_limit_wait
    with api_settings(use_emulator=use_emulator, env=env) as settings:
        settings = replace(settings, timeout=timeout, max_rate_limit_wait=max_rate_limit_wait)
        if use_emulator and notice is not None:
            notice(f"Using the local emulator at {settings.base_url} (demo data).")
        return aggregate_sync(settings, request)


def result_as_json(result: AggregateResult) -> dict[str, Any]:
    """The result in the API's response shape."""
    return {
        "data": {
            "id": result.id,
            "type": "aggregate",
            "attributes": {
                "total": result.total,
                "groups": [{"group": g.group, "value": list(g.value)} for g in result.groups],
            },
        }
    }


def _number(value: float) -> str:
    return format_number(float(value))  # as pages write it: 12,345


def format_table(request: AggregateRequest, result: AggregateResult) -> str:
    """A plain-text table: one row per group with its count(s) and share of the total."""
    header = (" / ".join(request.groups).upper(), "COUNT", "SHARE")
    rows = []
    for group in result.groups:
        counts = ", ".join(_number(v) for v in group.value) or "-"
        first = group.value[0] if group.value else 0.0
        share = f"{first / result.total:.1%}" if result.total and group.value else "-"
        rows.append((group.group, counts, share))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    lines = [
        f"Query: {request.query_filter or '(all cases)'}   "
        f"group by: {', '.join(request.groups)}   limit: {request.limit}",
        "",
        f"{header[0]:<{widths[0]}}  {header[1]:>{widths[1]}}  {header[2]:>{widths[2]}}",
    ]
    lines += [f"{g:<{widths[0]}}  {c:>{widths[1]}}  {s:>{widths[2]}}" for g, c, s in rows]
    if not rows:
        lines.append("(no groups: no matching case has this field)")
    cases = "case" if result.total == 1 else "cases"
    groups = "group" if len(rows) == 1 else "groups"
    lines += ["", f"Total: {_number(result.total)} {cases} in {len(rows)} {groups} shown"]
    return "\n".join(lines)


def format_count(query_filter: str, result: AggregateResult, *, as_json: bool) -> str:
    """How many cases match (a query without ``--group-by``), as text or JSON."""
    total = int(result.total) if float(result.total).is_integer() else result.total
    if as_json:
        return json.dumps({"query_filter": query_filter, "total": total}, indent=2)
    cases = "case" if total == 1 else "cases"
    return f"Query: {query_filter or '(all cases)'}\n\n{_number(result.total)} {cases}"


def format_json(result: AggregateResult) -> str:
    """The raw API shape, indented and key-sorted (stable output)."""
    return json.dumps(result_as_json(result), indent=2, sort_keys=True)


def workspace_attributes(root: Path = Path(".")) -> tuple[str, ...]:
    """The case attributes ``casereport.toml`` declares (none when it cannot be read: the
    query still runs, and ``validate`` reports the settings file)."""
    settings, _ = read_settings(root)
    return settings.attributes


def environment() -> Mapping[str, str]:
    """The process environment (a seam for tests)."""
    return os.environ
