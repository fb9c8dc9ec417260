"""The object store holding a remote state (``[backend] url = "s3://bucket/prefix"``).

obstore (the Rust ``object_store`` crate behind a small Python package) was chosen for
its conditional writes: ``mode="create"`` sends ``If-None-Match: *`` (the lock object) and
an ``UpdateVersion`` sends ``If-Match: ETAG`` (compare-and-swap on the state), exactly the
two primitives a lock and a lost-update check need, with the AWS credential chain read
from the environment. It is imported here only, and this module only when a remote
backend is configured: a local state never loads it.

Every failure of the store becomes one ``BackendError`` line naming the URL and what to
do: a missing bucket, refused credentials, an unreachable endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import obstore
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    NotModifiedError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)
from obstore.store import S3Store

from casereport.errors import BackendError
from casereport.settings import BACKEND_URL_RE, BackendSettings

_T = TypeVar("_T")

# Retries with backoff for transient failures, but bounded: an unreachable endpoint is
# reported within seconds, not after the library's three-minute default.
_RETRY = {"max_retries": 3, "retry_timeout": timedelta(seconds=20)}
_CLIENT = {"connect_timeout": "5s", "timeout": "60s"}
_CODE_RE = re.compile(r"<Code>([A-Za-z]+)</Code>")


@dataclass(frozen=True)
class Stored:
    """An object's bytes and the version they were read at (the ETag)."""

    data: bytes
    version: str


class Conflict(Exception):
    """A conditional write found the object not as expected (someone else wrote it)."""


NOT_MODIFIED = object()


class Bucket:
    """The objects under ``s3://bucket/prefix``; keys are relative to the prefix."""

    def __init__(self, settings: BackendSettings) -> None:
        match = BACKEND_URL_RE.fullmatch(settings.url)
        if match is None:  # settings and --backend checked it already
            raise BackendError(f"backend url {settings.url!r} is not s3://BUCKET/PREFIX")
        self.url = settings.url.rstrip("/")
        self.bucket = match["bucket"]
        self.endpoint = settings.endpoint_url
        config: dict[str, Any] = {}
        if settings.endpoint_url:
            config["endpoint"] = settings.endpoint_url
        if settings.region:
            config["region"] = settings.region
        client: dict[str, Any] = dict(_CLIENT)
        if settings.endpoint_url and settings.endpoint_url.startswith("http://"):
            client["allow_http"] = True  # a local MinIO or test server
        self._store = S3Store(
            self.bucket,
            prefix=(match["prefix"] or "").strip("/") or None,
            client_options=client,  # type: ignore[arg-type]
            retry_config=_RETRY,  # type: ignore[arg-type]
            **config,
        )

    def where(self, key: str) -> str:
        return f"{self.url}/{key}"

    def _call(self, key: str, action: Callable[[], _T]) -> _T:
        try:
            return action()
        except (Conflict, FileNotFoundError, AlreadyExistsError, PreconditionError):
            raise
        except NotModifiedError:
            raise
        except (PermissionDeniedError, UnauthenticatedError) as exc:
            code = _CODE_RE.search(str(exc))
            reason = f" ({code[1]})" if code else ""
            raise BackendError(
                f"{self.where(key)}: the object store refused access{reason}; check the AWS "
                "credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE or the CI role) and the bucket policy"
            ) from None
        except (BaseError, OSError) as exc:  # GenericError and kin: network, DNS, TLS, 5xx
            # A listing's 404 is not mapped to FileNotFoundError: a missing bucket is told
            # apart by the store's error code.
            self._missing(key, exc)
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            endpoint = self.endpoint or "the AWS endpoint"
            raise BackendError(
                f"{self.where(key)}: cannot reach the object store at {endpoint}: "
                f"{_short(first)}; check [backend] endpoint_url, region and the network"
            ) from None

    def _missing(self, key: str, exc: Exception) -> None:
        """Raise for a missing bucket; return for a missing object."""
        if "NoSuchBucket" in str(exc):
            raise BackendError(
                f"{self.where(key)}: the bucket {self.bucket!r} does not exist (or is not "
                "visible with these credentials); create it, or fix [backend] url"
            ) from None

    def get(self, key: str, *, if_changed_from: str | None = None) -> Stored | object | None:
        """The object, None when absent, or ``NOT_MODIFIED`` when its ETag still is
        ``if_changed_from`` (a conditional GET: an unchanged state is not downloaded)."""
        options: dict[str, Any] = {}
        if if_changed_from is not None:
            options["if_none_match"] = if_changed_from
        try:
            result = self._call(key, lambda: obstore.get(self._store, key, options=options))  # type: ignore[arg-type]
            data = self._call(key, lambda: bytes(result.bytes()))
        except NotModifiedError:
            return NOT_MODIFIED
        except FileNotFoundError as exc:
            self._missing(key, exc)
            return None
        return Stored(data, result.meta["e_tag"] or "")

    def read(self, key: str) -> Stored | None:
        found = self.get(key)
        assert found is not NOT_MODIFIED
        return found  # type: ignore[return-value]

    def put(self, key: str, data: bytes, *, expected: str | None) -> str:
        """Write ``data`` if the object is still at version ``expected`` (None: if absent);
        raise ``Conflict`` otherwise. Returns the new ETag."""
        mode: Any = "create" if expected is None else {"e_tag": expected}
        try:
            result = self._call(key, lambda: obstore.put(self._store, key, data, mode=mode))
        except (AlreadyExistsError, PreconditionError):
            raise Conflict(key) from None
        except FileNotFoundError as exc:
            self._missing(key, exc)
            raise
        return result["e_tag"] or ""

    def copy(self, source: str, destination: str) -> None:
        try:
            self._call(source, lambda: obstore.copy(self._store, source, destination))
        except FileNotFoundError as exc:
            self._missing(source, exc)

    def delete(self, key: str) -> None:
        try:
            self._call(key, lambda: obstore.delete(self._store, key))
        except FileNotFoundError as exc:
            self._missing(key, exc)

    def folders(self, prefix: str, holding: str) -> list[str]:
        """The names of the "folders" directly under ``prefix`` that hold an object named
        ``holding`` (a workspace's folder holding only a lock, which a killed ``workspace
        new`` leaves, is not a workspace)."""
        under = prefix.strip("/")
        paths = self._call(
            prefix,
            lambda: [meta["path"] for batch in obstore.list(self._store, under) for meta in batch],
        )
        names = set()
        for path in paths:
            folder, _, name = path.removeprefix(f"{under}/").partition("/")
            if name == holding:
                names.add(folder)
        return sorted(names)


def _short(text: str) -> str:
    """The reason in an obstore message, without its request dump."""
    text = re.sub(r"Error performing \w+ \S+ in [^-]+- ", "", text)
    return text[:200].rstrip(" :")
