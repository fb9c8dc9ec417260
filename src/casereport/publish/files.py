"""The site's files as they are uploaded, and the check that the site is fit to publish.

Each file under the site directory becomes one S3 object: its key is the prefix plus the
file's site-relative path, with a content type and cache control from an explicit table
(pages revalidate, other files keep an hour) and the file's sha256, so an unchanged file is
not uploaded again. Hidden files (``.*``, partial writes) are skipped.

Before Pulumi runs, the site is checked against the state: a site rendered from emulator
data is refused unless allowed, and so is a site whose files do not match the output hashes
the state recorded (it is older than the state: ``casereport render`` first).

Apart from the Pulumi program because none of it needs Pulumi: it reads the site and the
state only, and both ``casereport publish`` and a plain Pulumi project run it first.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from casereport.errors import PublishError
from casereport.state.model import State, file_sha256

__all__ = [
    "ASSET_CACHE_CONTROL",
    "ERROR_DOCUMENT",
    "INDEX_DOCUMENT",
    "OBJECT_KEY_RE",
    "PAGE_CACHE_CONTROL",
    "SiteFile",
    "cache_control",
    "check_site",
    "content_type",
    "list_site",
    "object_resource_name",
]

INDEX_DOCUMENT = "index.html"
ERROR_DOCUMENT = "404.html"

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

# Object keys (prefix + site path) made of these characters only are used as they are.
OBJECT_KEY_RE = re.compile(r"[A-Za-z0-9._~/-]+\Z")


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
    if OBJECT_KEY_RE.match(key):
        return f"file/{key}"
    safe = re.sub(r"[^A-Za-z0-9._~/-]", "_", key)
    return f"file/{safe}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


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
