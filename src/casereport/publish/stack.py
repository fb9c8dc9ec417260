"""Publish the rendered site to Amazon S3 as a static website, with Pulumi.

One Pulumi program, :func:`site_program`, runs two ways:

- ``casereport publish`` drives it with Pulumi's Automation API as an inline program. The
  project lives in ``.casereport/pulumi`` (``Pulumi.yaml`` and ``Pulumi.<stack>.yaml``) with
  a local ``file://`` backend in the same directory; ``PULUMI_BACKEND_URL`` selects another.
- A plain Pulumi project whose ``__main__.py`` calls :func:`pulumi_main`, for people who run
  ``pulumi up`` themselves.

Resources (pulumi_aws v7)::

    aws.s3.Bucket                            the bucket (none with existingBucket)
    ├── aws.s3.BucketWebsiteConfiguration    index.html; error page 404.html, else index.html
    ├── aws.s3.BucketPublicAccessBlock       public policies allowed, ACLs still blocked
    ├── aws.s3.BucketPolicy                  s3:GetObject on <prefix>* for anyone (after the block)
    └── aws.s3.BucketObjectv2 × files        content type, cache control, and source_hash (sha256)
                                             so unchanged files are not uploaded again

Stack outputs: ``bucket_name`` and ``website_url``. Object resources are named after their
key, so a file removed from the site removes its object, and the others stay put.

Stack config, namespace ``casereport`` (``casereport publish`` saves its --bucket,
--existing-bucket, --region and --prefix there, so the next run publishes to the same place;
an unsaved bucket name would otherwise change, and Pulumi would replace the bucket)::

    bucket          name of the bucket to create (default: a name Pulumi generates once)
    existingBucket  upload into this bucket; its website, access and policy stay yours
    region          AWS region of the resources (default: the provider's, aws:region)
    prefix          key prefix such as "reports/" (default: the bucket's root)
    tags            tags of the created bucket (an object)
    workspace       plain projects: the casereport workspace, for its site and state (".")
    allowDemoData   plain projects: publish a site rendered from the emulator (false)

Before Pulumi runs, the site is checked against the state: a site rendered from emulator
data is refused unless allowed, and so is a site whose files do not match the output hashes
the state recorded (it is older than the state: ``casereport render`` first).

pulumi and pulumi_aws are an optional extra (``casereport[publish]``) and slow to import,
so they are imported inside the functions that use them. The Automation API runs the
``pulumi`` CLI, which must be on PATH; the unit tests use Pulumi's mocks and need no CLI.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from casereport.errors import PublishError
from casereport.settings import did_you_mean, load_settings
from casereport.state.model import State, file_sha256, load_state, state_dir_gitignore

if TYPE_CHECKING:
    import pulumi
    import pulumi_aws
    from pulumi import automation

__all__ = [
    "CONFIG_KEYS",
    "DEFAULT_STACK",
    "EXTRA_HINT",
    "PULUMI_INSTALL_URL",
    "Deployment",
    "DeploymentSpec",
    "PublishConfig",
    "PublishOutcome",
    "PublishRequest",
    "SiteFile",
    "SiteStack",
    "check_site",
    "config_from_pulumi",
    "config_from_values",
    "list_site",
    "object_resource_name",
    "public_read_policy",
    "publish",
    "pulumi_main",
    "require_cli",
    "require_extra",
    "site_program",
]

PROJECT_NAME = "casereport-site"
DEFAULT_STACK = "site"
CONFIG_NAMESPACE = "casereport"
CONFIG_KEYS = (
    "bucket",
    "existingBucket",
    "region",
    "prefix",
    "tags",
    "workspace",
    "allowDemoData",
)
PULUMI_DIR = Path(".casereport") / "pulumi"
EXTRA_HINT = "pip install 'casereport[publish]'"
PULUMI_INSTALL_URL = "https://www.pulumi.com/docs/install/"
OUTPUT_BUCKET = "bucket_name"
OUTPUT_URL = "website_url"
INDEX_DOCUMENT = "index.html"
ERROR_DOCUMENT = "404.html"
MANAGED_BY_TAGS = {"managed-by": "casereport"}

# An explicit table rather than `mimetypes`, whose answers depend on the machine's
# /etc/mime.types: the same site must publish the same way everywhere.
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".xml": "application/xml",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".pdf": "application/pdf",
    ".woff2": "font/woff2",
}
_DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Pages change with every apply under the same name: browsers revalidate them each time
# (cheap, S3 answers 304 on an unchanged ETag). Other files may be cached for an hour.
_PAGE_SUFFIXES = frozenset({".html", ".htm", ".md", ".txt", ".csv", ".json", ".xml"})
PAGE_CACHE_CONTROL = "no-cache"
ASSET_CACHE_CONTROL = "public, max-age=3600"

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+\Z")
_KEY_RE = re.compile(r"[A-Za-z0-9._~/-]+\Z")


# -- the site's files -------------------------------------------------------------------


@dataclass(frozen=True)
class SiteFile:
    """One file of the site as it is uploaded."""

    path: str  # site-relative, with "/" separators; the object key is prefix + path
    source: Path
    content_type: str
    cache_control: str
    sha256: str


def content_type(name: str) -> str:
    """The Content-Type of a site file, from its suffix."""
    return _CONTENT_TYPES.get(Path(name).suffix.lower(), _DEFAULT_CONTENT_TYPE)


def cache_control(name: str) -> str:
    """The Cache-Control of a site file: pages revalidate, other files keep an hour."""
    suffix = Path(name).suffix.lower()
    return PAGE_CACHE_CONTROL if suffix in _PAGE_SUFFIXES else ASSET_CACHE_CONTROL


def list_site(site_dir: Path) -> tuple[SiteFile, ...]:
    """Every file of the site, sorted by path; hidden files (``.*``, partial writes) skipped."""
    if not site_dir.is_dir():
        raise PublishError(f"no site at {site_dir}: run `casereport apply` first")
    files = []
    for path in site_dir.rglob("*"):
        relative = path.relative_to(site_dir)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        name = relative.as_posix()
        digest = file_sha256(path)
        if digest is None:  # removed while we looked
            continue
        files.append(
            SiteFile(
                path=name,
                source=path.resolve(),
                content_type=content_type(name),
                cache_control=cache_control(name),
                sha256=digest,
            )
        )
    return tuple(sorted(files, key=lambda f: f.path))


def object_resource_name(key: str) -> str:
    """The Pulumi resource name of the object at ``key``: stable, and distinct per key."""
    if _KEY_RE.match(key):
        return f"file/{key}"
    safe = re.sub(r"[^A-Za-z0-9._~/-]", "_", key)
    return f"file/{safe}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def public_read_policy(bucket_arn: str, prefix: str) -> dict[str, Any]:
    """The bucket policy: anyone may read the objects under ``prefix``, and nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicReadCasereportSite",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"{bucket_arn}/{prefix}*",
            }
        ],
    }


def website_url(endpoint: str, prefix: str) -> str:
    """The site's address on an S3 website endpoint (HTTP only; HTTPS needs CloudFront)."""
    return f"http://{endpoint}/{prefix}" if endpoint else ""


# -- safety checks ----------------------------------------------------------------------


def check_site(
    state: State | None, site_dir: Path, state_path: Path, *, allow_demo_data: bool
) -> tuple[SiteFile, ...]:
    """The site's files once it is fit to publish; otherwise a PublishError naming why.

    Refused: no state or no data in it, data from the emulator (unless ``allow_demo_data``),
    and a site older than its state: a file the state recorded that is missing or whose
    content hash differs (rendered before the last apply, or edited by hand).
    """
    if state is None:
        raise PublishError(
            f"no state at {state_path}: nothing to publish yet; run `casereport apply` first"
        )
    if state.source is None:
        raise PublishError(f"{state_path} holds no data yet; run `casereport apply` first")
    if state.source.kind == "emulator" and not allow_demo_data:
        raise PublishError(
            f"{site_dir} was rendered from demo data ({state.source.describe()}); "
            "apply against Datadog first (DD_API_KEY, DD_APP_KEY), or pass --allow-demo-data "
            "(casereport:allowDemoData in a Pulumi project) to publish it anyway"
        )
    expected: dict[str, str] = {}
    for report in state.reports.values():
        expected.update(report.outputs)
    expected.update(state.site_outputs)
    stale = []
    for name in sorted(expected):
        actual = file_sha256(site_dir / name)
        if actual != expected[name]:
            stale.append((name, "is missing" if actual is None else "does not match the state"))
    if stale:
        name, problem = stale[0]
        more = f" (and {len(stale) - 1} more)" if len(stale) > 1 else ""
        raise PublishError(
            f"the site is older than its state: {site_dir / name} {problem}{more}; "
            "run `casereport render` first"
        )
    files = list_site(site_dir)
    if INDEX_DOCUMENT not in {f.path for f in files}:
        raise PublishError(f"{site_dir / INDEX_DOCUMENT} is missing; run `casereport render` first")
    return files


# -- configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishConfig:
    """Where the site goes: from the stack config, overridden by command-line options."""

    site_dir: Path
    bucket: str | None = None
    existing_bucket: str | None = None
    region: str | None = None
    prefix: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """``s3://bucket/prefix`` for messages."""
        return f"s3://{self.existing_bucket or self.bucket or '<generated name>'}/{self.prefix}"


def normalise_prefix(text: str) -> str:
    """``"/reports"`` -> ``"reports/"``; ``""`` and ``"/"`` -> ``""`` (the bucket's root)."""
    stripped = text.strip().strip("/")
    if not stripped:
        return ""
    parts = stripped.split("/")
    if not _KEY_RE.match(stripped) or any(part in ("", ".", "..") for part in parts):
        raise ValueError(
            f'invalid prefix "{text}": use letters, digits, ".", "_", "-" and "~" '
            'in "/"-separated parts (e.g. reports/weekly)'
        )
    return stripped + "/"


def config_from_values(site_dir: Path, values: Mapping[str, Any]) -> PublishConfig:
    """Validate stack config values (keys without the ``casereport:`` namespace).

    Every problem is collected into one PublishError; ``tags`` may be an object or its JSON.
    """
    problems: list[str] = []
    for key in values:
        if key not in CONFIG_KEYS:
            problems.append(
                f"unknown setting {CONFIG_NAMESPACE}:{key}{did_you_mean(key, CONFIG_KEYS)}"
            )

    def text(key: str) -> str | None:
        value = values.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            problems.append(f"{CONFIG_NAMESPACE}:{key} must be a string")
            return None
        return value.strip() or None

    bucket, existing, region = text("bucket"), text("existingBucket"), text("region")
    for key, name in (("bucket", bucket), ("existingBucket", existing)):
        if name is not None and (not _BUCKET_RE.match(name) or ".." in name):
            problems.append(
                f'invalid bucket name "{name}" ({CONFIG_NAMESPACE}:{key}): 3 to 63 lowercase '
                "letters, digits, dots and hyphens, starting and ending with a letter or digit"
            )
    if bucket is not None and existing is not None:
        problems.append(
            f"both {CONFIG_NAMESPACE}:bucket and {CONFIG_NAMESPACE}:existingBucket are set; "
            "keep one (--bucket creates a bucket, --existing-bucket uploads into one)"
        )
    if region is not None and not _REGION_RE.match(region):
        problems.append(
            f'invalid region "{region}" ({CONFIG_NAMESPACE}:region): an AWS region such as '
            "eu-west-1"
        )
    prefix = ""
    raw_prefix = values.get("prefix")
    if raw_prefix is not None:
        if isinstance(raw_prefix, str):
            try:
                prefix = normalise_prefix(raw_prefix)
            except ValueError as exc:
                problems.append(f"{exc} ({CONFIG_NAMESPACE}:prefix)")
        else:
            problems.append(f"{CONFIG_NAMESPACE}:prefix must be a string")
    tags = _tags(values.get("tags"), problems)
    if problems:
        raise PublishError("; ".join(problems))
    return PublishConfig(
        site_dir=site_dir,
        bucket=bucket,
        existing_bucket=existing,
        region=region,
        prefix=prefix,
        tags=tags,
    )


def _tags(raw: Any, problems: list[str]) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raw = None
    if not isinstance(raw, dict):
        problems.append(
            f"{CONFIG_NAMESPACE}:tags must be an object of names to values "
            f"(pulumi config set --path {CONFIG_NAMESPACE}:tags.team support)"
        )
        return {}
    tags = {}
    for name, value in raw.items():
        if isinstance(value, dict | list) or value is None:
            problems.append(f"{CONFIG_NAMESPACE}:tags.{name} must be a string")
        else:
            tags[str(name)] = str(value).lower() if isinstance(value, bool) else str(value)
    return dict(sorted(tags.items()))


def config_from_pulumi(site_dir: Path) -> PublishConfig:
    """The publish config from the running stack's config (``pulumi config``)."""
    import pulumi

    config = pulumi.Config(CONFIG_NAMESPACE)
    values: dict[str, Any] = {}
    for key in ("bucket", "existingBucket", "region", "prefix"):
        value = config.get(key)
        if value is not None:
            values[key] = value
    tags = config.get_object("tags")
    if tags is not None:
        values["tags"] = tags
    return config_from_values(site_dir, values)


# -- the Pulumi program -------------------------------------------------------------------


@dataclass(frozen=True)
class SiteStack:
    """What :func:`site_program` declared: its stack outputs, and the resources (for tests)."""

    bucket_name: pulumi.Output[str]
    website_url: pulumi.Output[str]
    objects: Mapping[str, pulumi_aws.s3.BucketObjectv2]  # object key -> resource
    bucket: pulumi_aws.s3.Bucket | None = None
    website: pulumi_aws.s3.BucketWebsiteConfiguration | None = None
    public_access: pulumi_aws.s3.BucketPublicAccessBlock | None = None
    policy: pulumi_aws.s3.BucketPolicy | None = None


def site_program(config: PublishConfig, files: Sequence[SiteFile] | None = None) -> SiteStack:
    """Declare the site's resources and stack outputs; call it inside a Pulumi program.

    ``files`` defaults to every file under ``config.site_dir``.
    """
    import pulumi
    import pulumi_aws as aws

    files = list_site(config.site_dir) if files is None else tuple(files)
    prefix, region = config.prefix, config.region
    names = {f.path for f in files}
    error_page = ERROR_DOCUMENT if ERROR_DOCUMENT in names else INDEX_DOCUMENT

    bucket = website = public_access = policy = None
    bucket_name: pulumi.Output[str]
    url: pulumi.Output[str]
    if config.existing_bucket is not None:
        # The bucket and its website, access and policy are managed elsewhere: only read.
        bucket_name = pulumi.Output.from_input(config.existing_bucket)
        existing = aws.s3.get_bucket_output(bucket=config.existing_bucket, region=region)
        url = existing.website_endpoint.apply(lambda endpoint: website_url(endpoint, prefix))
    else:
        bucket = aws.s3.Bucket(
            "casereport-site",
            bucket=config.bucket,
            region=region,
            tags={**MANAGED_BY_TAGS, **config.tags},
        )
        website = aws.s3.BucketWebsiteConfiguration(
            "casereport-site-website",
            bucket=bucket.id,
            region=region,
            index_document=aws.s3.BucketWebsiteConfigurationIndexDocumentArgs(
                suffix=INDEX_DOCUMENT
            ),
            error_document=aws.s3.BucketWebsiteConfigurationErrorDocumentArgs(
                key=prefix + error_page
            ),
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            "casereport-site-public-access",
            bucket=bucket.id,
            region=region,
            block_public_acls=True,
            ignore_public_acls=True,
            block_public_policy=False,
            restrict_public_buckets=False,
        )
        # S3 rejects a public policy while the account's default block is on: wait for ours.
        policy = aws.s3.BucketPolicy(
            "casereport-site-public-read",
            bucket=bucket.id,
            region=region,
            policy=bucket.arn.apply(
                lambda arn: json.dumps(public_read_policy(arn, prefix), sort_keys=True)
            ),
            opts=pulumi.ResourceOptions(depends_on=[public_access]),
        )
        bucket_name = bucket.bucket
        url = website.website_endpoint.apply(lambda endpoint: website_url(endpoint, prefix))

    objects = {}
    for site_file in files:
        key = prefix + site_file.path
        objects[key] = aws.s3.BucketObjectv2(
            object_resource_name(key),
            bucket=bucket.id if bucket is not None else bucket_name,
            key=key,
            region=region,
            source=pulumi.FileAsset(str(site_file.source)),
            content_type=site_file.content_type,
            cache_control=site_file.cache_control,
            source_hash=site_file.sha256,
        )
    pulumi.export(OUTPUT_BUCKET, bucket_name)
    pulumi.export(OUTPUT_URL, url)
    return SiteStack(
        bucket_name=bucket_name,
        website_url=url,
        objects=objects,
        bucket=bucket,
        website=website,
        public_access=public_access,
        policy=policy,
    )


def pulumi_main() -> SiteStack:
    """The program of a plain Pulumi project (``__main__.py``); config from the stack.

    ``casereport:workspace`` names the casereport workspace (default: the project
    directory), whose settings give the site and the state; the same checks as
    ``casereport publish`` run first.
    """
    import pulumi

    config = pulumi.Config(CONFIG_NAMESPACE)
    settings = load_settings(Path(config.get("workspace") or "."))
    files = check_site(
        load_state(settings.state_path),
        settings.site_dir,
        settings.state_path,
        allow_demo_data=config.get_bool("allowDemoData") or False,
    )
    return site_program(config_from_pulumi(settings.site_dir.resolve()), files)


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
            return f"Published {self.files} files to {where}" + (f": {url}" if url else "")
        if self.status == "unchanged":
            return "No changes. The published site is up to date" + (f": {url}" if url else ".")
        if self.status == "cancelled":
            return "Publish cancelled."
        return (
            f"Preview of {self.files} files to {self.config.describe()}: nothing was changed. "
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
