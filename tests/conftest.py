"""Shared pytest fixtures.

``emulator`` starts real emulators on free loopback ports (in-process, in a background
thread) and stops every one of them at teardown.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from casereport.emulator.server import EmulatorConfig, RunningEmulator, running_emulator

EmulatorFactory = Callable[..., RunningEmulator]


@pytest.fixture
def emulator() -> Iterator[EmulatorFactory]:
    """Factory: ``emulator(cases=2000, seed=7, ...) -> handle`` with ``.url`` and ``.stats()``."""
    with contextlib.ExitStack() as stack:

        def start(
            cases: int = 2000,
            seed: int = 7,
            data: Path | None = None,
            api_key: str | None = None,
            app_key: str | None = None,
            bearer_token: str | None = None,
            latency_ms: float = 0.0,
            error_rate: float = 0.0,
            rate_limit: int | None = None,
            rate_period: int = 1,
            **extra: Any,
        ) -> RunningEmulator:
            config = EmulatorConfig(
                port=0,
                cases=cases,
                seed=seed,
                data=data,
                api_key=api_key,
                app_key=app_key,
                bearer_token=bearer_token,
                latency_ms=latency_ms,
                error_rate=error_rate,
                rate_limit=rate_limit,
                rate_period=rate_period,
                **extra,
            )
            return stack.enter_context(running_emulator(config))

        yield start
