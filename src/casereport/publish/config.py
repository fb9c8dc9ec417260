"""Where the site goes: the stack config of the site's Pulumi project, validated.

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

Every value is checked field by field and every problem reported together, in one
PublishError. Apart from the program and the driver because both read the config the same
way: the driver from the Automation API's stack config, a plain project from
``pulumi.Config`` (imported inside :func:`config_from_pulumi` only).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casereport.errors import PublishError
from casereport.publish.files import OBJECT_KEY_RE
from casereport.settings import did_you_mean

__all__ = [
    "CONFIG_KEYS",
    "CONFIG_NAMESPACE",
    "PublishConfig",
    "config_from_pulumi",
    "config_from_values",
    "normalise_prefix",
]

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

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+\Z")


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
    if not OBJECT_KEY_RE.match(stripped) or any(part in ("", ".", "..") for part in parts):
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
