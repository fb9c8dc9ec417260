"""Publishing: the Pulumi program under Pulumi's mocks, the site checks, config, the driver.

The program tests run inside ``@pulumi.runtime.test`` with the mocks set once in
``conftest.py`` (``pulumi_mocks``); their assertions run inside ``Output.apply``, and each
test also asserts that its check ran, so an unresolved output cannot pass silently.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from casereport.cli import cli
from casereport.errors import PublishError
from casereport.publish.config import (
    PublishConfig,
    config_from_pulumi,
    config_from_values,
    normalise_prefix,
)
from casereport.publish.deploy import DeploymentSpec, PublishRequest, first_error_line, publish
from casereport.publish.files import (
    ASSET_CACHE_CONTROL,
    PAGE_CACHE_CONTROL,
    check_site,
    list_site,
    object_resource_name,
)
from casereport.publish.program import public_read_policy
from casereport.state.model import ReportState, Source, State, file_sha256, load_state, write_state

pulumi = pytest.importorskip("pulumi")

# pulumi_aws defines its deprecated V2 aliases with a DeprecationWarning at import time.
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated in favor of:DeprecationWarning")

BUCKET = "aws:s3/bucket:Bucket"
WEBSITE = "aws:s3/bucketWebsiteConfiguration:BucketWebsiteConfiguration"
ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"

HTML = "text/html; charset=utf-8"
MARKDOWN = "text/markdown; charset=utf-8"

PAGES = {
    "index.html": "<!doctype html><title>Reports</title>",
    "index.md": "# Reports\n",
    "support-weekly.html": "<!doctype html><title>Support</title>",
    "support-weekly.md": "# Support\n",
}


# -- fixtures -------------------------------------------------------------------------


def write_workspace(root: Path, *, kind: str = "datadog", pages: Mapping[str, str] = PAGES) -> Path:
    """A workspace whose site matches its state: what `casereport apply` leaves behind."""
    site = root / "site"
    site.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (site / name).write_text(text, encoding="utf-8")
    hashes = {name: file_sha256(site / name) or "" for name in pages}
    source = Source(kind, "emulator" if kind == "emulator" else "datadoghq.eu", "demo")
    report = ReportState(
        name="support-weekly",
        definition_hash="d",
        template_hash="t",
        data_hash="h",
        outputs={n: h for n, h in hashes.items() if n.startswith("support-weekly")},
    )
    state = State(
        lineage="00000000-0000-4000-8000-000000000000",
        source=source,
        reports={"support-weekly": report},
        site_outputs={n: h for n, h in hashes.items() if n.startswith("index")},
    )
    path = root / ".casereport" / "state.json"
    write_state(path, state, load_state(path))  # over the state it read, as apply writes
    return site


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site dir of real data, in step with its state, plus an asset."""
    site = write_workspace(tmp_path)
    (site / "assets").mkdir()
    (site / "assets" / "chart.svg").write_text("<svg/>", encoding="utf-8")
    return site


@pytest.fixture
def mocks(pulumi_mocks: Any) -> Any:
    import asyncio

    asyncio.set_event_loop(pulumi_mocks.loop)
    pulumi_mocks.reset()
    return pulumi_mocks


def registered(mocks: Any, typ: str) -> list[tuple[str, dict[str, Any]]]:
    return [(name, inputs) for t, name, inputs in mocks.resources if t == typ]


def run_program(
    config: PublishConfig, check: Callable[[Any, dict[str, Any]], None], files: Any = None
) -> list[bool]:
    """Run site_program under the mocks; ``check(stack, outputs)`` runs inside ``apply``,
    once the stack outputs and every object and the policy are resolved."""
    from casereport.publish.program import site_program

    ran: list[bool] = []

    @pulumi.runtime.test
    def program() -> Any:
        stack = site_program(config, files)
        others = [resource.source_hash for resource in stack.objects.values()]
        if stack.policy is not None:
            others.append(stack.policy.policy)

        def resolved(values: dict[str, Any]) -> None:
            check(stack, values)
            ran.append(True)

        return pulumi.Output.all(
            bucket_name=stack.bucket_name,
            website_url=stack.website_url,
            others=pulumi.Output.all(*others),
        ).apply(resolved)

    program()
    return ran


def expected_objects(site: Path, prefix: str) -> dict[str, tuple[str, str, str]]:
    """key -> (content type, cache control, sha256) for every file of the site."""
    expected = {}
    for path in sorted(p for p in site.rglob("*") if p.is_file()):
        name = path.relative_to(site).as_posix()
        kind = {".html": HTML, ".md": MARKDOWN, ".svg": "image/svg+xml"}[path.suffix]
        cache = ASSET_CACHE_CONTROL if path.suffix == ".svg" else PAGE_CACHE_CONTROL
        expected[prefix + name] = (kind, cache, file_sha256(path) or "")
    return expected


def objects_check(
    mocks: Any, site: Path, expected: Mapping[str, tuple[str, str, str]], bucket: str
) -> Callable[[Any, dict[str, Any]], None]:
    def check(stack: Any, outputs: dict[str, Any]) -> None:
        objects = registered(mocks, OBJECT)
        assert len(objects) == len(expected)
        seen = {}
        for name, inputs in objects:
            assert name == object_resource_name(inputs["key"])
            assert inputs["bucket"] == bucket
            source = Path(inputs["source"].path)
            assert source.is_file() and source.is_relative_to(site.resolve())
            seen[inputs["key"]] = (
                inputs["contentType"],
                inputs["cacheControl"],
                inputs["sourceHash"],
            )
        assert seen == dict(expected), "the objects differ from the expectation"
        assert sorted(stack.objects) == sorted(expected)

    return check


# -- the program, under mocks -------------------------------------------------------------


def test_one_object_per_site_file_with_key_type_cache_and_hash(mocks: Any, site: Path) -> None:
    config = PublishConfig(site_dir=site, bucket="acme-reports", prefix="reports/")
    expected = expected_objects(site, "reports/")
    assert sorted(expected) == [
        "reports/assets/chart.svg",
        "reports/index.html",
        "reports/index.md",
        "reports/support-weekly.html",
        "reports/support-weekly.md",
    ]
    ran = run_program(config, objects_check(mocks, site, expected, "acme-reports"))
    assert ran == [True]


def test_negative_control_the_object_checks_fail_on_a_wrong_expectation(
    mocks: Any, site: Path
) -> None:
    """The same check as above, given wrong expectations, must fail inside the mocked run."""
    config = PublishConfig(site_dir=site, bucket="acme-reports", prefix="reports/")
    right = expected_objects(site, "reports/")
    wrong_prefix = expected_objects(site, "")
    wrong_type = {
        **right,
        "reports/index.md": (HTML, PAGE_CACHE_CONTROL, right["reports/index.md"][2]),
    }
    wrong_hash = {**right, "reports/index.html": (HTML, PAGE_CACHE_CONTROL, "0" * 64)}
    for wrong in (wrong_prefix, wrong_type, wrong_hash):
        mocks.reset()
        with pytest.raises(AssertionError, match="the objects differ from the expectation"):
            run_program(config, objects_check(mocks, site, wrong, "acme-reports"))
    mocks.reset()
    assert run_program(config, objects_check(mocks, site, right, "acme-reports")) == [True]


def test_website_public_access_policy_and_outputs(mocks: Any, site: Path) -> None:
    config = PublishConfig(
        site_dir=site,
        bucket="acme-reports",
        region="eu-west-1",
        prefix="reports/",
        tags={"team": "support"},
    )

    def check(stack: Any, outputs: dict[str, Any]) -> None:
        [(bucket_name, bucket)] = registered(mocks, BUCKET)
        assert bucket_name == "casereport-site"
        assert bucket["bucket"] == "acme-reports"
        assert bucket["region"] == "eu-west-1"
        assert bucket["tags"] == {"managed-by": "casereport", "team": "support"}

        [(_, website)] = registered(mocks, WEBSITE)
        assert website["bucket"] == "acme-reports"
        assert website["indexDocument"] == {"suffix": "index.html"}
        assert website["errorDocument"] == {"key": "reports/index.html"}

        [(access_name, access)] = registered(mocks, ACCESS)
        assert access["bucket"] == "acme-reports"
        assert access["blockPublicAcls"] is True
        assert access["ignorePublicAcls"] is True
        assert access["blockPublicPolicy"] is False
        assert access["restrictPublicBuckets"] is False

        [(policy_name, policy)] = registered(mocks, POLICY)
        assert json.loads(policy["policy"]) == {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublicReadCasereportSite",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::acme-reports/reports/*",
                }
            ],
        }
        # The policy waits for the access block, or S3 refuses a public policy.
        assert any(urn.endswith(f"::{access_name}") for urn in mocks.dependencies[policy_name])
        assert all(inputs["region"] == "eu-west-1" for _, inputs in registered(mocks, OBJECT))

        assert outputs["bucket_name"] == "acme-reports"
        url = "http://acme-reports.s3-website-eu-west-1.amazonaws.com/reports/"
        assert outputs["website_url"] == url
        assert mocks.calls == []

    assert run_program(config, check) == [True]


def test_error_page_is_404_html_when_the_site_has_one(mocks: Any, site: Path) -> None:
    (site / "404.html").write_text("<!doctype html><title>Not found</title>", encoding="utf-8")
    config = PublishConfig(site_dir=site, bucket="acme-reports")

    def check(stack: Any, outputs: dict[str, Any]) -> None:
        [(_, website)] = registered(mocks, WEBSITE)
        assert website["errorDocument"] == {"key": "404.html"}
        assert "404.html" in stack.objects

    assert run_program(config, check) == [True]


def test_existing_bucket_creates_no_bucket_and_manages_only_objects(mocks: Any, site: Path) -> None:
    config = PublishConfig(site_dir=site, existing_bucket="shared-bucket", region="us-west-2")
    expected = expected_objects(site, "")
    check_objects = objects_check(mocks, site, expected, "shared-bucket")

    def check(stack: Any, outputs: dict[str, Any]) -> None:
        check_objects(stack, outputs)
        types = {typ for typ, _, _ in mocks.resources}
        assert types == {OBJECT}
        assert stack.bucket is None and stack.website is None and stack.policy is None
        assert mocks.calls == [
            ("aws:s3/getBucket:getBucket", {"bucket": "shared-bucket", "region": "us-west-2"})
        ]
        assert outputs["bucket_name"] == "shared-bucket"
        url = "http://shared-bucket.s3-website-us-west-2.amazonaws.com/"
        assert outputs["website_url"] == url

    assert run_program(config, check) == [True]


def test_without_a_bucket_name_pulumi_names_the_bucket(mocks: Any, site: Path) -> None:
    config = PublishConfig(site_dir=site)

    def check(stack: Any, outputs: dict[str, Any]) -> None:
        [(_, bucket)] = registered(mocks, BUCKET)
        assert "bucket" not in bucket  # autonamed by Pulumi, then kept in the stack's state
        assert outputs["bucket_name"] == "casereport-site-0a1b2c3"
        assert {inputs["bucket"] for _, inputs in registered(mocks, OBJECT)} == {
            "casereport-site-0a1b2c3"
        }

    assert run_program(config, check) == [True]


def test_a_removed_file_drops_its_object_and_keeps_the_other_names(mocks: Any, site: Path) -> None:
    config = PublishConfig(site_dir=site, bucket="acme-reports")
    before: list[str] = []
    run_program(config, lambda *_: before.extend(n for n, _ in registered(mocks, OBJECT)))
    (site / "support-weekly.md").unlink()
    mocks.reset()
    after: list[str] = []
    run_program(config, lambda *_: after.extend(n for n, _ in registered(mocks, OBJECT)))
    assert sorted(set(before) - set(after)) == ["file/support-weekly.md"]
    assert set(after) < set(before)


def test_config_from_pulumi_reads_the_stack_config(mocks: Any, site: Path) -> None:
    pulumi.runtime.set_all_config(
        {
            "casereport:bucket": "acme-reports",
            "casereport:region": "eu-central-1",
            "casereport:prefix": "/weekly",
            "casereport:tags": json.dumps({"team": "support", "public": True}),
        }
    )
    try:
        config = config_from_pulumi(site)
    finally:
        pulumi.runtime.set_all_config({})
    assert config == PublishConfig(
        site_dir=site,
        bucket="acme-reports",
        region="eu-central-1",
        prefix="weekly/",
        tags={"public": "true", "team": "support"},
    )


def test_a_plain_pulumi_project_publishes_the_workspace_named_in_its_config(
    mocks: Any, tmp_path: Path
) -> None:
    from casereport.publish.program import pulumi_main

    site = write_workspace(tmp_path)
    ran: list[bool] = []

    @pulumi.runtime.test
    def program() -> Any:
        stack = pulumi_main()

        def check(keys: list[str]) -> None:
            assert sorted(keys) == ["r/" + name for name in sorted(PAGES)]
            assert {inputs["bucket"] for _, inputs in registered(mocks, OBJECT)} == {"acme-x"}
            sources = {Path(inputs["source"].path) for _, inputs in registered(mocks, OBJECT)}
            assert sources == {(site / name).resolve() for name in PAGES}
            ran.append(True)

        return pulumi.Output.all(*[o.key for o in stack.objects.values()]).apply(check)

    pulumi.runtime.set_all_config(
        {
            "casereport:workspace": str(tmp_path),
            "casereport:bucket": "acme-x",
            "casereport:prefix": "r",
        }
    )
    try:
        program()
        assert ran == [True]
        write_workspace(tmp_path, kind="emulator")
        with pytest.raises(PublishError, match="was rendered from demo data"):
            program()
    finally:
        pulumi.runtime.set_all_config({})


# -- pure pieces ---------------------------------------------------------------------


def test_list_site_types_cache_control_and_hashes(site: Path) -> None:
    (site / ".index.html.abc.tmp").write_text("partial", encoding="utf-8")
    (site / "report.pdf").write_bytes(b"%PDF-1.7")
    (site / "data.bin").write_bytes(b"\0")
    files = {f.path: f for f in list_site(site)}
    assert sorted(files) == [
        "assets/chart.svg",
        "data.bin",
        "index.html",
        "index.md",
        "report.pdf",
        "support-weekly.html",
        "support-weekly.md",
    ]
    assert {name: f.content_type for name, f in files.items()} == {
        "assets/chart.svg": "image/svg+xml",
        "data.bin": "application/octet-stream",
        "index.html": HTML,
        "index.md": MARKDOWN,
        "report.pdf": "application/pdf",
        "support-weekly.html": HTML,
        "support-weekly.md": MARKDOWN,
    }
    assert files["index.html"].cache_control == "no-cache"
    assert files["report.pdf"].cache_control == "public, max-age=3600"
    assert files["index.md"].sha256 == file_sha256(site / "index.md")
    assert files["index.md"].source == (site / "index.md").resolve()


def test_object_resource_names_are_stable_and_distinct() -> None:
    assert object_resource_name("reports/index.html") == "file/reports/index.html"
    odd = object_resource_name("a b.html")
    assert odd == object_resource_name("a b.html")
    assert odd.startswith("file/a_b.html-") and odd != object_resource_name("a_b.html")
    assert object_resource_name("a b.html") != object_resource_name("a+b.html")


def test_public_read_policy_covers_only_the_prefix() -> None:
    policy = public_read_policy("arn:aws:s3:::b", "reports/")
    assert policy["Statement"][0]["Resource"] == "arn:aws:s3:::b/reports/*"
    assert policy["Statement"][0]["Action"] == "s3:GetObject"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", ""), ("/", ""), ("reports", "reports/"), ("/a/b/", "a/b/"), ("weekly-1/", "weekly-1/")],
)
def test_normalise_prefix(text: str, expected: str) -> None:
    assert normalise_prefix(text) == expected


@pytest.mark.parametrize("text", ["a/../b", "a//b", "a b", "./x"])
def test_normalise_prefix_refuses_odd_prefixes(text: str) -> None:
    with pytest.raises(ValueError, match="invalid prefix"):
        normalise_prefix(text)


def test_config_from_values_collects_every_problem(tmp_path: Path) -> None:
    with pytest.raises(PublishError) as caught:
        config_from_values(
            tmp_path,
            {
                "bucket": "Acme_Reports",
                "existingBucket": "shared",
                "region": "Europe",
                "prefix": "a/../b",
                "tags": "[1]",
                "bukcet": "x",
            },
        )
    assert caught.value.message == (
        'unknown setting casereport:bukcet (did you mean "bucket"?); '
        'invalid bucket name "Acme_Reports" (casereport:bucket): 3 to 63 lowercase letters, '
        "digits, dots and hyphens, starting and ending with a letter or digit; "
        "both casereport:bucket and casereport:existingBucket are set; keep one "
        "(--bucket creates a bucket, --existing-bucket uploads into one); "
        'invalid region "Europe" (casereport:region): an AWS region such as eu-west-1; '
        'invalid prefix "a/../b": use letters, digits, ".", "_", "-" and "~" in "/"-separated '
        "parts (e.g. reports/weekly) (casereport:prefix); "
        "casereport:tags must be an object of names to values "
        "(pulumi config set --path casereport:tags.team support)"
    )


def test_config_from_values_defaults(tmp_path: Path) -> None:
    assert config_from_values(tmp_path, {}) == PublishConfig(site_dir=tmp_path)
    assert config_from_values(tmp_path, {"bucket": "  ", "prefix": "/"}) == PublishConfig(
        site_dir=tmp_path
    )


def test_first_error_line_picks_the_error_from_the_cli_output() -> None:
    text = (
        "\n code: 255\n stdout: Previewing update (site):\n"
        " stderr: warning: A new version of Pulumi is available.\n"
        "error: getting secrets manager: passphrase must be set with "
        "PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables"
    )
    assert first_error_line(text).startswith("getting secrets manager: passphrase must be set")


# -- the site checks ----------------------------------------------------------------------


def test_demo_data_is_refused_unless_allowed(tmp_path: Path) -> None:
    site = write_workspace(tmp_path, kind="emulator")
    state_path = tmp_path / ".casereport" / "state.json"
    state = load_state(state_path)
    with pytest.raises(PublishError) as caught:
        check_site(state, site, state_path, allow_demo_data=False)
    assert caught.value.message == (
        f"{site} was rendered from demo data (local emulator, demo); apply against Datadog "
        "first (DD_API_KEY, DD_APP_KEY), or pass --allow-demo-data (casereport:allowDemoData "
        "in a Pulumi project) to publish it anyway"
    )
    files = check_site(state, site, state_path, allow_demo_data=True)
    assert [f.path for f in files] == sorted(PAGES)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda site: (site / "support-weekly.md").write_text("edited\n"), "does not match"),
        (lambda site: (site / "index.html").unlink(), "is missing"),
    ],
)
def test_a_site_older_than_its_state_is_refused(
    tmp_path: Path, change: Callable[[Path], Any], problem: str
) -> None:
    site = write_workspace(tmp_path)
    state_path = tmp_path / ".casereport" / "state.json"
    change(site)
    with pytest.raises(PublishError) as caught:
        check_site(load_state(state_path), site, state_path, allow_demo_data=False)
    name = "index.html" if problem == "is missing" else "support-weekly.md"
    expected_problem = problem if problem == "is missing" else "does not match the state"
    assert caught.value.message == (
        f"the site is older than its state: {site / name} {expected_problem}; "
        "run `casereport render` first"
    )


def test_no_state_is_refused(tmp_path: Path) -> None:
    state_path = tmp_path / "state.json"
    with pytest.raises(PublishError, match=r"no state at .*: nothing to publish yet"):
        check_site(None, tmp_path, state_path, allow_demo_data=False)


# -- the driver, with a fake deployment ---------------------------------------------------


class FakeDeployment:
    def __init__(self, stored: Mapping[str, str], changes: Mapping[str, int]) -> None:
        self.stored = dict(stored)
        self.changes = dict(changes)
        self.calls: list[Any] = []
        self.spec: DeploymentSpec | None = None
        self.passphrase_seen: str | None = None

    def opener(self, spec: DeploymentSpec) -> contextlib.AbstractContextManager[FakeDeployment]:
        self.spec = spec
        name = spec.env.get("PULUMI_CONFIG_PASSPHRASE_FILE")
        if name is not None:
            self.passphrase_seen = Path(name).read_text(encoding="utf-8")
            assert (os.stat(name).st_mode & 0o777) == 0o600
        return contextlib.nullcontext(self)

    def read_config(self) -> dict[str, str]:
        return dict(self.stored)

    def write_config(self, values: Mapping[str, str], remove: Any) -> None:
        self.calls.append(("write_config", dict(values), sorted(remove)))

    def preview(self, program: Any, out: Callable[[str], None]) -> dict[str, int]:
        self.calls.append("preview")
        out("Previewing update (site)")
        return dict(self.changes)

    def up(self, program: Any, out: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, int]]:
        self.calls.append("up")
        out("Updating (site)")
        outputs = {"bucket_name": "acme-reports", "website_url": "http://acme/"}
        return outputs, dict(self.changes)

    def outputs(self) -> dict[str, Any]:
        return {"bucket_name": "acme-reports", "website_url": "http://acme/"}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    write_workspace(tmp_path)
    return tmp_path


def drive(
    root: Path,
    fake: FakeDeployment,
    *,
    interactive: bool = False,
    answer: bool = True,
    env: Mapping[str, str] | None = None,
    passphrase: str = "correct horse battery staple",
    **options: Any,
) -> tuple[Any, list[str], list[str]]:
    lines: list[str] = []
    asked: list[str] = []

    def confirm() -> bool:
        asked.append("confirm")
        return answer

    def ask_passphrase() -> str:
        asked.append("passphrase")
        return passphrase

    outcome = publish(
        PublishRequest(root=root, **options),
        interactive=interactive,
        confirm=confirm,
        ask_passphrase=ask_passphrase,
        out=lines.append,
        env={"PULUMI_CONFIG_PASSPHRASE": ""} if env is None else env,
        open_deployment=fake.opener,
    )
    return outcome, lines, asked


def test_preview_only_changes_nothing(workspace: Path) -> None:
    fake = FakeDeployment({}, {"create": 9})
    outcome, lines, asked = drive(workspace, fake, preview_only=True, bucket="acme-reports")
    assert fake.calls == ["preview"]  # no config written, no update
    assert asked == []
    assert lines == ["Previewing update (site)"]
    assert outcome.status == "previewed"
    assert outcome.summary() == (
        "Preview of 4 files to s3://acme-reports/: nothing was changed. "
        "Publish with `casereport publish`."
    )


def test_on_a_terminal_it_previews_asks_then_saves_config_and_updates(workspace: Path) -> None:
    fake = FakeDeployment({"bucket": "old-bucket", "region": "eu-west-1"}, {"create": 9})
    outcome, lines, asked = drive(
        workspace, fake, interactive=True, existing_bucket="shared-bucket", prefix="/r"
    )
    assert asked == ["confirm"]
    assert lines == ["Previewing update (site)", "Updating (site)"]  # streamed as they come
    assert fake.calls == [
        "preview",
        ("write_config", {"existingBucket": "shared-bucket", "prefix": "/r"}, ["bucket"]),
        "up",
    ]
    assert outcome.config == PublishConfig(
        site_dir=(workspace / "site").resolve(),
        existing_bucket="shared-bucket",
        region="eu-west-1",
        prefix="r/",
    )
    assert outcome.summary() == "Published 4 files to s3://acme-reports/r/: http://acme/"


def test_declining_changes_nothing(workspace: Path) -> None:
    fake = FakeDeployment({}, {"create": 9})
    outcome, _, asked = drive(workspace, fake, interactive=True, answer=False, bucket="acme-x")
    assert asked == ["confirm"]
    assert fake.calls == ["preview"]
    assert outcome.summary() == "Publish cancelled."


def test_no_changes_no_question(workspace: Path) -> None:
    fake = FakeDeployment({"bucket": "acme-reports"}, {"same": 9})
    outcome, _, asked = drive(workspace, fake, interactive=True)
    assert asked == []
    assert fake.calls == ["preview"]
    assert outcome.summary() == "No changes. The published site is up to date: http://acme/"


def test_yes_updates_without_a_preview(workspace: Path) -> None:
    fake = FakeDeployment({"bucket": "acme-reports"}, {"update": 1, "same": 8})
    outcome, _, asked = drive(workspace, fake, yes=True)
    assert (asked, fake.calls, outcome.status) == ([], ["up"], "published")


def test_without_a_terminal_it_needs_yes_or_preview(workspace: Path) -> None:
    fake = FakeDeployment({}, {})
    with pytest.raises(PublishError) as caught:
        drive(workspace, fake)
    assert caught.value.message == (
        "publish needs approval: run it on a terminal, pass --yes, or only look with --preview"
    )
    assert fake.spec is None


def test_invalid_options_are_refused_before_anything_is_written(workspace: Path) -> None:
    fake = FakeDeployment({"bucket": "acme-reports"}, {})
    with pytest.raises(PublishError, match=r'invalid region "Europe"'):
        drive(workspace, fake, yes=True, region="Europe")
    assert fake.calls == []
    with pytest.raises(PublishError, match="pass --bucket or --existing-bucket, not both"):
        drive(workspace, fake, yes=True, bucket="a-b-c", existing_bucket="d-e-f")


def test_local_backend_by_default_and_pulumi_backend_url_respected(workspace: Path) -> None:
    fake = FakeDeployment({}, {})
    drive(workspace, fake, preview_only=True, stack="prod")
    assert fake.spec is not None
    assert fake.spec.stack == "prod"
    assert fake.spec.work_dir == workspace / ".casereport" / "pulumi"
    assert fake.spec.backend_url == (workspace / ".casereport" / "pulumi").resolve().as_uri()
    assert fake.spec.backend_url.startswith("file:///")

    env = {"PULUMI_BACKEND_URL": "s3://acme-pulumi-state", "PULUMI_CONFIG_PASSPHRASE": "x"}
    drive(workspace, fake, preview_only=True, env=env)
    assert fake.spec.backend_url == "s3://acme-pulumi-state"


def test_a_prompted_passphrase_goes_through_a_private_file_and_is_never_printed(
    workspace: Path,
) -> None:
    secret = "correct horse battery staple"
    fake = FakeDeployment({}, {"create": 9})
    outcome, lines, asked = drive(
        workspace, fake, interactive=True, env={}, passphrase=secret, bucket="acme-reports"
    )
    assert asked == ["passphrase", "confirm"]
    assert fake.passphrase_seen == secret
    assert fake.spec is not None
    name = fake.spec.env["PULUMI_CONFIG_PASSPHRASE_FILE"]
    assert not Path(name).exists()  # removed afterwards
    printed = "\n".join([*lines, outcome.summary(), repr(fake.spec), repr(outcome)])
    assert secret not in printed


def test_without_a_terminal_a_missing_passphrase_is_a_clear_error(workspace: Path) -> None:
    fake = FakeDeployment({}, {})
    with pytest.raises(PublishError) as caught:
        drive(workspace, fake, yes=True, env={})
    assert caught.value.message.startswith("the stack's secrets provider needs a passphrase")
    assert "set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE" in caught.value.message
    # The Pulumi Cloud keeps secrets itself: no passphrase asked for.
    outcome, _, asked = drive(
        workspace, fake, yes=True, env={"PULUMI_BACKEND_URL": "https://api.pulumi.com"}
    )
    assert asked == [] and outcome.status == "published"


def test_the_automation_api_adapter_translates_config_changes_and_errors(
    tmp_path: Path,
) -> None:
    from pulumi.automation import CommandError, ConfigValue, OpType
    from pulumi.automation._cmd import CommandResult

    from casereport.publish.deploy import _AutomationDeployment

    class Stack:
        def __init__(self) -> None:
            self.workspace = type("Workspace", (), {"program": None})()
            self.config = {
                "casereport:bucket": ConfigValue("acme-reports"),
                "casereport:tags": ConfigValue('{"team":"support"}'),
                "aws:region": ConfigValue("eu-west-1"),
            }
            self.calls: list[Any] = []

        def get_all_config(self) -> dict[str, Any]:
            return self.config

        def remove_config(self, key: str) -> None:
            self.calls.append(("remove", key))

        def set_all_config(self, values: dict[str, Any]) -> None:
            self.calls.append(("set", {k: v.value for k, v in values.items()}))

        def preview(self, on_output: Any, color: str) -> Any:
            self.calls.append(("preview", color))
            on_output("+ aws:s3:Bucket casereport-site create")
            return type("Preview", (), {"change_summary": {OpType.CREATE: 9}})()

        def up(self, on_output: Any, color: str) -> Any:
            result = CommandResult(
                stdout="Updating (site):",
                stderr="error: creating S3 Bucket (acme-reports): BucketAlreadyExists",
                code=255,
            )
            raise CommandError(result)

    stack = Stack()
    spec = DeploymentSpec("site", tmp_path, tmp_path.as_uri(), {}, colour=True)
    deployment = _AutomationDeployment(stack, spec)
    assert deployment.read_config() == {"bucket": "acme-reports", "tags": '{"team":"support"}'}
    deployment.write_config({"existingBucket": "shared"}, ["bucket"])
    assert stack.calls == [
        ("remove", "casereport:bucket"),
        ("set", {"casereport:existingBucket": "shared"}),
    ]
    lines: list[str] = []

    def program() -> None:
        pass

    assert deployment.preview(program, lines.append) == {"create": 9}
    assert stack.workspace.program is program
    assert lines == ["+ aws:s3:Bucket casereport-site create"]
    assert stack.calls[-1] == ("preview", "always")
    with pytest.raises(PublishError) as caught:
        deployment.up(program, lines.append)
    assert caught.value.message == (
        "pulumi up failed: creating S3 Bucket (acme-reports): BucketAlreadyExists"
    )


# -- the command line ---------------------------------------------------------------------


def test_help_does_not_import_pulumi() -> None:
    code = (
        "import sys\n"
        "from casereport.cli import cli\n"
        "for args in (['--help'], ['publish', '--help']):\n"
        "    try:\n"
        "        cli.main(args, standalone_mode=False)\n"
        "    finally:\n"
        "        print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pulumi', 'pulumi_aws', 'grpc')), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stderr.splitlines() == ["[]", "[]"]
    assert "casereport publish --bucket" in result.stdout


def test_without_the_extra_publish_says_what_to_install(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pulumi", None)
    monkeypatch.chdir(workspace)
    result = CliRunner().invoke(cli, ["publish", "--yes"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: publishing needs the optional Pulumi packages (pulumi is not installed): "
        "pip install 'casereport[publish]'\n"
    )


def test_without_the_pulumi_cli_publish_says_how_to_install_it(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("PATH", str(workspace / "no-bin"))
    result = CliRunner().invoke(cli, ["publish", "--yes"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: the Pulumi CLI (`pulumi`) is not on PATH; the Automation API runs it: install "
        "it (https://www.pulumi.com/docs/install/) and run `casereport publish` again\n"
    )


def test_publish_refuses_demo_data_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = write_workspace(tmp_path, kind="emulator")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["publish", "--yes"])
    assert result.exit_code == 1
    assert result.output.startswith(
        f"Error: {site.relative_to(tmp_path)} was rendered from demo data (local emulator"
    )
    assert "--allow-demo-data" in result.output


# -- a real preview, when Pulumi and AWS are at hand ----------------------------------


def _aws_credentials() -> str | None:
    """Where AWS credentials would come from, or None (only presence is checked)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        if os.environ.get(name):
            return name
    for name in ("credentials", "config"):
        if (Path.home() / ".aws" / name).is_file():
            return f"~/.aws/{name}"
    return None


@pytest.fixture
def real_pulumi() -> Iterator[None]:
    if shutil.which("pulumi") is None:
        pytest.skip(
            "real `pulumi preview` skipped: the Pulumi CLI is not on PATH "
            "(https://www.pulumi.com/docs/install/)"
        )
    if _aws_credentials() is None:
        pytest.skip(
            "real `pulumi preview` skipped: no AWS credentials (AWS_ACCESS_KEY_ID, "
            "AWS_PROFILE, AWS_WEB_IDENTITY_TOKEN_FILE or ~/.aws)"
        )
    yield


@pytest.mark.slow
def test_real_preview_against_a_local_backend(
    real_pulumi: None, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "casereport-test")
    monkeypatch.setenv("AWS_REGION", os.environ.get("AWS_REGION", "us-east-1"))
    lines: list[str] = []
    outcome = publish(
        PublishRequest(root=workspace, stack="test", preview_only=True),
        interactive=False,
        confirm=lambda: False,
        ask_passphrase=lambda: "",
        out=lines.append,
    )
    assert outcome.status == "previewed"
    assert outcome.changes.get("create", 0) >= 4 + 4  # bucket, website, access, policy, files
    assert (workspace / ".casereport" / "pulumi" / "Pulumi.yaml").is_file()
    assert (workspace / ".casereport" / "pulumi" / ".pulumi").is_dir()  # the file backend
