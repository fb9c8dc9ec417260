"""What the emulator is told: data, credentials, rate limit and faults.

Kept apart from the server (numpy, uvicorn) so a plan can describe the emulator's data
source without importing either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from casereport.errors import EmulatorError

if TYPE_CHECKING:
    from casereport.emulator.app import EmulatorSettings

DEFAULT_HOST = "127.0.0.1"
# Not 8125/8126: a local Datadog Agent listens there.
DEFAULT_PORT = 8710
DEFAULT_CASES = 5000
DEFAULT_SEED = 1


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything ``casereport emulator serve`` can be told."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    cases: int = DEFAULT_CASES
    seed: int = DEFAULT_SEED
    data: Path | None = None
    api_key: str | None = None
    app_key: str | None = None
    bearer_token: str | None = None
    latency_ms: float = 0.0
    error_rate: float = 0.0
    rate_limit: int | None = None
    rate_period: int = 60
    # A simulated clock: the synthetic set as it has evolved by then (``emulator.evolution``);
    # None: the fixed snapshot, as always.
    now: datetime | None = None
    # The URL of an emulator already serving this data (``casereport demo`` keeps one for
    # all its runs): a command told to start one uses it instead.
    url: str | None = None

    def __post_init__(self) -> None:
        if self.cases < 0:
            raise EmulatorError(f"--cases must be 0 or more, got {self.cases}")
        if not 0.0 <= self.error_rate <= 1.0:
            raise EmulatorError(f"--error-rate must be between 0 and 1, got {self.error_rate}")
        if self.latency_ms < 0:
            raise EmulatorError(f"--latency-ms must be 0 or more, got {self.latency_ms}")
        if self.rate_limit is not None and self.rate_limit < 1:
            raise EmulatorError(f"--rate-limit must be at least 1, got {self.rate_limit}")
        if self.rate_period < 1:
            raise EmulatorError(f"--rate-period must be at least 1 second, got {self.rate_period}")

    def settings(self) -> EmulatorSettings:
        """The app's behaviour; with no ``rate_limit``, a generous advertised limit."""
        from casereport.emulator.app import EmulatorSettings

        limit = self.rate_limit if self.rate_limit is not None else EmulatorSettings.rate_limit
        period = self.rate_period if self.rate_limit is not None else EmulatorSettings.rate_period
        return EmulatorSettings(
            api_key=self.api_key,
            app_key=self.app_key,
            bearer_token=self.bearer_token,
            rate_limit=limit,
            rate_period=period,
            latency_ms=self.latency_ms,
            error_rate=self.error_rate,
            fault_seed=self.seed,
        )

    def describe_data(self) -> str:
        """One phrase naming the data set, for banners and state."""
        if self.data is not None:
            return f"cases from {self.data}"
        if self.now is not None:
            return (
                f"synthetic cases over simulated time (seed {self.seed}), "
                f"as of {self.now:%Y-%m-%d %H:%M} UTC"
            )
        return f"{self.cases} synthetic cases (seed {self.seed})"
