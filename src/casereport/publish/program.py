"""The Pulumi program that declares the site on Amazon S3 as a static website.

One program, :func:`site_program`, runs two ways:

- ``casereport publish`` drives it with Pulumi's Automation API as an inline program
  (``publish.deploy``).
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

pulumi and pulumi_aws are an optional extra (``casereport[publish]``) and slow to import,
so they are imported inside the functions that use them; the unit tests run the program
under Pulumi's mocks and need no CLI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casereport.publish.config import CONFIG_NAMESPACE, PublishConfig, config_from_pulumi
from casereport.publish.files import (
    ERROR_DOCUMENT,
    INDEX_DOCUMENT,
    SiteFile,
    check_site,
    list_site,
    object_resource_name,
)
from casereport.settings import load_settings
from casereport.state.model import load_state

if TYPE_CHECKING:
    import pulumi
    import pulumi_aws

__all__ = [
    "OUTPUT_BUCKET",
    "OUTPUT_URL",
    "SiteStack",
    "public_read_policy",
    "pulumi_main",
    "site_program",
    "website_url",
]

OUTPUT_BUCKET = "bucket_name"
OUTPUT_URL = "website_url"
MANAGED_BY_TAGS = {"managed-by": "casereport"}


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
