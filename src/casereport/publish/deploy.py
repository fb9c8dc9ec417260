"""``casereport publish``: check the site, then preview and update its stack.

:func:`publish` drives the program of ``publish.program`` with Pulumi's Automation API as
an inline program. The project lives in ``.casereport/pulumi`` (``Pulumi.yaml`` and
``Pulumi.<stack>.yaml``) with a local ``file://`` backend in the same directory;
``PULUMI_BACKEND_URL`` selects another. The options given are saved into the stack config
(``publish.config``), a preview is shown and confirmed, then the stack is updated.

The stack is reached through the :class:`Deployment` protocol, so tests hand in a fake;
:func:`open_automation_stack` is the real one. The Automation API runs the ``pulumi`` CLI,
which must be on PATH, and pulumi is imported inside the functions that use it. Failures
become one-line PublishErrors; a passphrase asked for is passed in a private file, never in
arguments, printed environments or messages.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from casereport.errors import PublishError
from casereport.numbers import count_of
from casereport.publish.config import CONFIG_NAMESPACE, PublishConfig, config_from_values
from casereport.publish.files import check_site
from casereport.publish.program import OUTPUT_BUCKET, OUTPUT_URL, site_program
from casereport.settings import load_settings
from casereport.state.model import load_state, state_dir_gitignore

if TYPE_CHECKING:
    from pulumi import automation

__all__ = [
    "DEFAULT_STACK",
    "EXTRA_HINT",
    "PULUMI_INSTALL_URL",
    "Deployment",
    "DeploymentSpec",
    "PublishOutcome",
    "PublishRequest",
    "first_error_line",
    "open_automation_stack",
    "publish",
    "require_cli",
    "require_extra",
]

PROJECT_NAME = "casereport-site"
DEFAULT_STACK = "site"
PULUMI_DIR = Path(".casereport") / "pulumi"
EXTRA_HINT = "pip install 'casereport[publish]'"
PULUMI_INSTALL_URL = "https://www.pulumi.com/docs/install/"


# -- tooling --------------------------------------------------------------------------


def require_extra() -> None:
    """Fail with the install command unless pulumi and pulumi-aws v7 are importable."""
    try:
        import pulumi  # noqa: F401
        import pulumi_aws  # noqa: F401
    except ImportError as exc:
        missing = exc.name or "pulumi"
        raise PublishError(
            f"publishing needs the optional Pulumi packages ({missing} is not installed): "
            f"{EXTRA_HINT}"
        ) from None
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("pulumi-aws")
    except PackageNotFoundError:  # importable but not installed as a distribution
        return
    if not installed.split(".", 1)[0].isdigit() or int(installed.split(".", 1)[0]) < 7:
        raise PublishError(
            f"publishing needs pulumi-aws v7, not {installed}: {EXTRA_HINT} --upgrade"
        )


def require_cli(env: Mapping[str, str]) -> str:
    """The path of the ``pulumi`` CLI on PATH, or a PublishError with the install hint."""
    found = shutil.which("pulumi", path=env.get("PATH", os.defpath))
    if found is None:
        raise PublishError(
            "the Pulumi CLI (`pulumi`) is not on PATH; the Automation API runs it: "
            f"install it ({PULUMI_INSTALL_URL}) and run `casereport publish` again"
        )
    return found


# -- the driver -----------------------------------------------------------------------


@dataclass(frozen=True)
class PublishRequest:
    """What ``casereport publish`` was asked; None falls back to stack config or settings."""

    root: Path = Path(".")
    stack: str = DEFAULT_STACK
    site_dir: Path | None = None
    state_path: Path | None = None
    bucket: str | None = None
    existing_bucket: str | None = None
    region: str | None = None
    prefix: str | None = None
    allow_demo_data: bool = False
    preview_only: bool = False
    yes: bool = False
    colour: bool = False

    def config_changes(self) -> tuple[dict[str, str], set[str]]:
        """Stack config to set and keys to remove, from the options given."""
        if self.bucket is not None and self.existing_bucket is not None:
            raise PublishError("pass --bucket or --existing-bucket, not both")
        updates: dict[str, str] = {}
        removals: set[str] = set()
        if self.bucket is not None:
            updates["bucket"] = self.bucket
            removals.add("existingBucket")
        if self.existing_bucket is not None:
            updates["existingBucket"] = self.existing_bucket
            removals.add("bucket")
        if self.region is not None:
            updates["region"] = self.region
        if self.prefix is not None:
            if self.prefix.strip().strip("/"):
                updates["prefix"] = self.prefix
            else:
                removals.add("prefix")
        return updates, removals


@dataclass(frozen=True)
class PublishOutcome:
    """What a publish did: ``published``, ``previewed``, ``unchanged`` or ``cancelled``."""

    status: str
    config: PublishConfig
    files: int
    outputs: Mapping[str, Any] = field(default_factory=dict)
    changes: Mapping[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        url = self.outputs.get(OUTPUT_URL) or ""
        where = f"s3://{self.outputs.get(OUTPUT_BUCKET) or '?'}/{self.config.prefix}"
        if self.status == "published":
            files = count_of(self.files, "file")
            return f"Published {files} to {where}" + (f": {url}" if url else "")
        if self.status == "unchanged":
            return "No changes. The published site is up to date" + (f": {url}" if url else ".")
        if self.status == "cancelled":
            return "Publish cancelled."
        return (
            f"Preview of {count_of(self.files, 'file')} to {self.config.describe()}: "
            "nothing was changed. "
            "Publish with `casereport publish`."
        )


@dataclass(frozen=True)
class DeploymentSpec:
    """How to reach the stack: its name, project directory, backend and extra environment."""

    stack: str
    work_dir: Path
    backend_url: str
    env: Mapping[str, str]
    colour: bool = False


Program = Callable[[], None]
Echo = Callable[[str], None]  # prints one line of Pulumi's output


class Deployment(Protocol):
    """One stack of the site's project: the Automation API, or a fake in tests."""

    def read_config(self) -> dict[str, str]:
        """The stack's ``casereport:`` config, keys without the namespace."""
        ...

    def write_config(self, values: Mapping[str, str], remove: Iterable[str]) -> None:
        """Save ``values`` into the stack's ``casereport:`` config and drop ``remove``."""
        ...

    def preview(self, program: Program, out: Echo) -> dict[str, int]:
        """Run a preview, streaming its lines to ``out``; changes counted by operation."""
        ...

    def up(self, program: Program, out: Echo) -> tuple[dict[str, Any], dict[str, int]]:
        """Run an update; its stack outputs and changes counted by operation."""
        ...

    def outputs(self) -> dict[str, Any]:
        """The stack outputs of the last update."""
        ...


DeploymentOpener = Callable[[DeploymentSpec], contextlib.AbstractContextManager[Deployment]]


def publish(
    request: PublishRequest,
    *,
    interactive: bool,
    confirm: Callable[[], bool],
    ask_passphrase: Callable[[], str],
    out: Echo,
    env: Mapping[str, str] | None = None,
    open_deployment: DeploymentOpener | None = None,
) -> PublishOutcome:
    """``casereport publish``: check the site, then preview and/or update the stack.

    ``interactive`` says whether a person can answer ``confirm`` (asked after a preview
    unless ``request.yes``) and ``ask_passphrase`` (when the backend needs a passphrase and
    the environment has none). ``open_deployment`` defaults to the Automation API.
    """
    env = os.environ if env is None else env
    require_extra()
    settings = load_settings(request.root)
    site_dir = request.site_dir or settings.site_dir
    state_path = request.state_path or settings.state_path
    files = check_site(
        load_state(state_path), site_dir, state_path, allow_demo_data=request.allow_demo_data
    )
    updates, removals = request.config_changes()
    if not (request.preview_only or request.yes or interactive):
        raise PublishError(
            "publish needs approval: run it on a terminal, pass --yes, or only look with --preview"
        )
    if open_deployment is None:
        require_cli(env)
        open_deployment = open_automation_stack
    work_dir = request.root / PULUMI_DIR
    backend_url = env.get("PULUMI_BACKEND_URL") or work_dir.resolve().as_uri()
    with contextlib.ExitStack() as stack:
        extra_env = stack.enter_context(
            _passphrase_env(backend_url, env, interactive=interactive, ask=ask_passphrase)
        )
        spec = DeploymentSpec(
            stack=request.stack,
            work_dir=work_dir,
            backend_url=backend_url,
            env=extra_env,
            colour=request.colour,
        )
        deployment = stack.enter_context(open_deployment(spec))
        stored = deployment.read_config()
        merged = {k: v for k, v in stored.items() if k not in removals} | updates
        config = config_from_values(site_dir.resolve(), merged)

        def program() -> None:
            site_program(config, files)

        if request.preview_only or not request.yes:
            changes = deployment.preview(program, out)
            if request.preview_only:
                return PublishOutcome("previewed", config, len(files), changes=changes)
            if not _has_changes(changes) and merged == stored:
                outputs = deployment.outputs()
                return PublishOutcome("unchanged", config, len(files), outputs, changes)
            if not confirm():
                return PublishOutcome("cancelled", config, len(files), changes=changes)
        if merged != stored:
            deployment.write_config(updates, removals & set(stored))
        outputs, changes = deployment.up(program, out)
        return PublishOutcome("published", config, len(files), outputs, changes)


def _has_changes(changes: Mapping[str, int]) -> bool:
    return any(count for op, count in changes.items() if op not in ("same", "read"))


def _needs_passphrase(backend_url: str) -> bool:
    """DIY backends (file, s3, gs, azblob, postgres) encrypt secrets with a passphrase."""
    return not backend_url.startswith(("https://", "http://"))


@contextlib.contextmanager
def _passphrase_env(
    backend_url: str, env: Mapping[str, str], *, interactive: bool, ask: Callable[[], str]
) -> Iterator[dict[str, str]]:
    """Extra environment for the CLI: a prompted passphrase, passed in a private file.

    The passphrase never goes into arguments, environment mappings that get printed
    (a workspace's repr shows its env_vars) or messages; the file is removed afterwards.
    """
    if not _needs_passphrase(backend_url) or (
        "PULUMI_CONFIG_PASSPHRASE" in env or "PULUMI_CONFIG_PASSPHRASE_FILE" in env
    ):
        yield {}
        return
    if not interactive:
        raise PublishError(
            f"the stack's secrets provider needs a passphrase ({backend_url} is a local or "
            "self-managed backend): set PULUMI_CONFIG_PASSPHRASE or "
            "PULUMI_CONFIG_PASSPHRASE_FILE (in CI, from a secret)"
        )
    passphrase = ask()
    fd, name = tempfile.mkstemp(prefix="casereport-pulumi-", suffix=".passphrase")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(passphrase)
        yield {"PULUMI_CONFIG_PASSPHRASE_FILE": name}
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


# -- the Automation API ---------------------------------------------------------------


@contextlib.contextmanager
def open_automation_stack(spec: DeploymentSpec) -> Iterator[Deployment]:
    """Create or select the stack of an inline program in ``spec.work_dir``."""
    from importlib.metadata import PackageNotFoundError, version

    from pulumi import automation as auto

    spec.work_dir.mkdir(parents=True, exist_ok=True)
    state_dir_gitignore(spec.work_dir)  # .casereport/.gitignore: keep it all out of Git
    project = auto.ProjectSettings(
        name=PROJECT_NAME,
        runtime="python",
        description="The casereport site, published by `casereport publish`",
        backend=auto.ProjectBackend(url=spec.backend_url),
    )
    options = auto.LocalWorkspaceOptions(
        work_dir=str(spec.work_dir),
        project_settings=project,
        secrets_provider="passphrase" if _needs_passphrase(spec.backend_url) else None,
        env_vars={"PULUMI_SKIP_UPDATE_CHECK": "true", **spec.env},
    )
    with _pulumi_errors("stack select", spec):
        stack = auto.create_or_select_stack(
            spec.stack, project_name=PROJECT_NAME, program=lambda: None, opts=options
        )
        # Explicit, so a first run in CI fails here, clearly, if it cannot download it.
        with contextlib.suppress(PackageNotFoundError):
            stack.workspace.install_plugin("aws", f"v{version('pulumi-aws')}")
    yield _AutomationDeployment(stack, spec)


class _AutomationDeployment:
    """A :class:`Deployment` over an Automation API stack."""

    def __init__(self, stack: automation.Stack, spec: DeploymentSpec) -> None:
        self._stack = stack
        self._spec = spec
        self._color = "always" if spec.colour else "never"

    def read_config(self) -> dict[str, str]:
        namespace = f"{CONFIG_NAMESPACE}:"
        with _pulumi_errors("config", self._spec):
            values = self._stack.get_all_config()
        return {
            key[len(namespace) :]: str(value.value)
            for key, value in values.items()
            if key.startswith(namespace)
        }

    def write_config(self, values: Mapping[str, str], remove: Iterable[str]) -> None:
        from pulumi.automation import ConfigValue

        with _pulumi_errors("config set", self._spec):
            for key in sorted(remove):
                self._stack.remove_config(f"{CONFIG_NAMESPACE}:{key}")
            if values:
                self._stack.set_all_config(
                    {f"{CONFIG_NAMESPACE}:{k}": ConfigValue(value=v) for k, v in values.items()}
                )

    def preview(self, program: Program, out: Echo) -> dict[str, int]:
        self._stack.workspace.program = program
        with _pulumi_errors("preview", self._spec):
            result = self._stack.preview(on_output=out, color=self._color)
        return _op_counts(result.change_summary)

    def up(self, program: Program, out: Echo) -> tuple[dict[str, Any], dict[str, int]]:
        self._stack.workspace.program = program
        with _pulumi_errors("up", self._spec):
            result = self._stack.up(on_output=out, color=self._color)
        outputs = {name: value.value for name, value in result.outputs.items()}
        return outputs, _op_counts(result.summary.resource_changes or {})

    def outputs(self) -> dict[str, Any]:
        with _pulumi_errors("stack output", self._spec):
            return {name: value.value for name, value in self._stack.outputs().items()}


def _op_counts(changes: Mapping[Any, int]) -> dict[str, int]:
    return {str(getattr(op, "value", op)): int(count) for op, count in changes.items()}


@contextlib.contextmanager
def _pulumi_errors(action: str, spec: DeploymentSpec) -> Iterator[None]:
    """Turn Automation API failures into one-line PublishErrors."""
    from pulumi.automation import errors

    try:
        yield
    except errors.ConcurrentUpdateError:
        raise PublishError(
            f"stack {spec.stack} is being updated by another run; wait for it to finish "
            f"(a killed run leaves its lock in the backend, {spec.backend_url})"
        ) from None
    except errors.CommandError as exc:
        raise PublishError(f"pulumi {action} failed: {first_error_line(str(exc))}") from None
    except errors.InvalidVersionError as exc:
        raise PublishError(f"{exc}; install a newer Pulumi CLI ({PULUMI_INSTALL_URL})") from None


def first_error_line(text: str) -> str:
    """The most telling line of a Pulumi CLI failure (its output was already streamed)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    _, _, stderr = text.partition(" stderr: ")
    for line in [*stderr.splitlines(), *lines]:
        if "error:" in line:
            return line.strip().split("error:", 1)[1].strip() or line.strip()
    return lines[-1] if lines else "no error message (see the output above)"
