"""Shared pytest fixtures.

``emulator`` starts real emulators on free loopback ports (in-process, in a background
thread) and stops every one of them at teardown.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from casereport.emulator.server import EmulatorConfig, RunningEmulator, running_emulator

EmulatorFactory = Callable[..., RunningEmulator]

# Tests never assert wall-clock times: Hypothesis's per-example deadline (200 ms) is one,
# and on a loaded CI runner it fails examples that take 0.03 ms when run again; so is the
# "too slow" health check.
settings.register_profile("casereport", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("casereport")

# A suite started in the background by a shell without job control (``pytest &``, nohup)
# inherits SIGINT ignored, and so would every CLI it starts: the Ctrl-C tests would then
# see an apply or render that never stops. A handler here is reset to the default in each
# child at exec, as from a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Every session starts with SIGTERM's default action.

    A process that runs pytest in itself may leave a SIGTERM handler of its own: mutmut's
    fork server (`make mutate`) runs each mutant's tests in a child forked from it, and its
    handler SIGKILLs every other mutant's worker. The processes the tests fork without exec
    (render workers) inherit it, and a pool whose worker died ends the others with SIGTERM:
    the handler then killed an unrelated mutant's run, which mutmut reported as a
    "segfault". Not at import: the fork server installs its handler after collecting.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


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


# -- YAML without libyaml (tests/test_load.py, tests/test_yamlnodes.py) -------------------


@pytest.fixture
def without_libyaml(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """PyYAML as it is when libyaml is missing (no ``CSafeLoader``): loading falls back to
    the pure-Python parser."""
    import yaml

    from casereport.definitions import yamlnodes

    monkeypatch.delattr(yaml, "CSafeLoader")
    yamlnodes._loader.cache_clear()
    yield
    monkeypatch.undo()
    yamlnodes._loader.cache_clear()


@pytest.fixture(params=["libyaml", "pure-python"])
def yaml_loader(request: pytest.FixtureRequest) -> str:
    """Each test runs with libyaml, then with PyYAML's pure-Python parser."""
    if request.param == "pure-python":
        request.getfixturevalue("without_libyaml")
    return str(request.param)


# -- Pulumi mocks (tests/test_publish.py) --------------------------------------------


@pytest.fixture(scope="session")
def pulumi_mocks() -> Iterator[Any]:
    """Pulumi's mocks, set once for the session; they record every resource and invoke.

    ``.resources`` lists ``(type, name, inputs)``, ``.dependencies`` maps a resource name to
    the URNs it waits for, ``.calls`` lists ``(token, args)``; ``.reset()`` clears them.
    ``.loop`` is the event loop the mocks' root stack lives on: tests make it current again,
    since ``asyncio.run`` elsewhere in the suite leaves the main thread without one.
    pulumi is imported here, not at the top, so the rest of the suite needs no Pulumi.
    """
    import asyncio

    pulumi = pytest.importorskip("pulumi")
    from pulumi.runtime.mocks import MockMonitor

    class SiteMocks(pulumi.runtime.Mocks):
        def __init__(self) -> None:
            self.resources: list[tuple[str, str, dict[str, Any]]] = []
            self.dependencies: dict[str, list[str]] = {}
            self.calls: list[tuple[str, dict[str, Any]]] = []

        def reset(self) -> None:
            self.resources.clear()
            self.dependencies.clear()
            self.calls.clear()

        def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
            inputs = dict(args.inputs)
            self.resources.append((args.typ, args.name, inputs))
            state = dict(inputs)
            region = inputs.get("region") or "us-east-1"
            if args.typ == "aws:s3/bucket:Bucket":
                name = inputs.get("bucket") or f"{args.name}-0a1b2c3"
                state.update(bucket=name, arn=f"arn:aws:s3:::{name}")
                return name, state
            if args.typ.endswith(":BucketWebsiteConfiguration"):
                state["websiteEndpoint"] = f"{inputs['bucket']}.s3-website-{region}.amazonaws.com"
            return f"{args.name}-id", state

        def call(self, args: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
            self.calls.append((args.token, dict(args.args)))
            if args.token == "aws:s3/getBucket:getBucket":
                name = args.args["bucket"]
                region = args.args.get("region") or "us-east-1"
                return {
                    "bucket": name,
                    "arn": f"arn:aws:s3:::{name}",
                    "region": region,
                    "websiteEndpoint": f"{name}.s3-website-{region}.amazonaws.com",
                }, []
            return {}, []

    class RecordingMonitor(MockMonitor):
        def RegisterResource(self, request: Any) -> Any:
            mocks.dependencies[request.name] = list(request.dependencies)
            return super().RegisterResource(request)

    mocks = SiteMocks()
    mocks.loop = asyncio.new_event_loop()
    asyncio.set_event_loop(mocks.loop)
    pulumi.runtime.set_mocks(
        mocks,
        project="casereport-site",
        stack="test",
        preview=False,
        monitor=RecordingMonitor(mocks),
    )
    yield mocks
    asyncio.set_event_loop(None)
    mocks.loop.close()
