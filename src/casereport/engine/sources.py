"""The data source of a run, and when a run may switch the state to another one.

A state records one source (a Datadog site, an API URL, or the emulator). A run against
another source puts the state's results aside and fetches everything anew (``switch_source``
in ``state.model`` keeps them for a switch back), so the switch is never made unnoticed:
an apply nobody watches (``--auto-approve``, or a saved plan) refuses it unless
``--allow-source-change`` is given. The usual causes are a missing CI secret (``make
report`` falls back to the emulator's demo data without ``DD_API_KEY``), a changed
``DD_SITE`` or a mistyped ``CASEREPORT_API_URL``, and the refusal says which.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from casereport.engine.plan import Plan
from casereport.errors import ConfigError, PlanError
from casereport.state.model import Source

if TYPE_CHECKING:
    from casereport.emulator.config import EmulatorConfig


def source_for(
    use_emulator: bool,
    env: Mapping[str, str] | None = None,
    *,
    emulator: EmulatorConfig | None = None,
) -> Source:
    """The data source a run will use, known before anything is started or called
    (``emulator``: the emulator's settings when not the default ones)."""
    if use_emulator:
        from casereport.emulator.config import EmulatorConfig

        config = EmulatorConfig(port=0) if emulator is None else emulator
        return Source("emulator", "emulator", config.describe_data())
    env = os.environ if env is None else env
    url = env.get("CASEREPORT_API_URL")
    if url:
        from casereport.api.settings import check_api_url

        # Refused here, before a plan or state could record it, if it carries credentials.
        return Source("datadog", check_api_url(url))
    from casereport.api.settings import SITES

    site = env.get("DD_SITE") or "datadoghq.com"
    if site not in SITES:
        raise ConfigError(f"DD_SITE={site!r} is not a Datadog site; use one of {', '.join(SITES)}")
    return Source("datadog", site)


def require_credentials(source: Source, env: Mapping[str, str] | None = None) -> None:
    """Before planning against Datadog: its keys are set and well-formed, or one line
    names DD_API_KEY and DD_APP_KEY (or DD_BEARER_TOKEN) and --emulator. A plan made
    without them would only fail at the apply, after a review of the plan."""
    if source.kind != "datadog":
        return
    from casereport.api.settings import ClientSettings

    ClientSettings.from_env(os.environ if env is None else env)


def _missing_secrets(env: Mapping[str, str]) -> list[str]:
    """The Datadog secrets a run without them falls back to the emulator for."""
    if env.get("DD_API_KEY"):
        return []
    missing = ["DD_API_KEY"]
    if not (env.get("DD_APP_KEY") or env.get("DD_APPLICATION_KEY")):
        missing.append("DD_APP_KEY")
    return missing


def check_source_change(
    plan: Plan, state_path: Path, *, allowed: bool, env: Mapping[str, str] | None = None
) -> None:
    """Refuse an unwatched switch of the state to another data source (one line)."""
    previous = plan.previous_source
    if previous is None or allowed:
        return
    env = os.environ if env is None else env
    missing = _missing_secrets(env)
    if plan.source.kind == "datadog" and missing and not env.get("DD_BEARER_TOKEN"):
        return  # no credentials: the apply stops on them before it changes anything
    if previous.kind == "datadog" and plan.source.kind == "emulator" and missing:
        names = " and ".join(missing)
        raise PlanError(
            f"{names} {'is' if len(missing) == 1 else 'are'} not set, so this run would "
            f"replace the {previous.describe()} results in {state_path} with the emulator's "
            f"demo data; set {names} (the CI secrets), or pass --allow-source-change to "
            "switch to demo data"
        )
    raise PlanError(
        f"the data source would change from {previous.describe()} (the source of "
        f"{state_path}) to {plan.source.describe()}; check DD_SITE and CASEREPORT_API_URL, "
        "or pass --allow-source-change to switch (the old results are kept for a switch back)"
    )
