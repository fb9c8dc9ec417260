"""The object store under a remote state (``state.objects``), against moto's S3 server.

What a user relies on beyond a plain apply: where the objects land for every shape of
``[backend] url``, how long a failing store is retried before the one-line error, and what
that line says when the endpoint is AWS's own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from casereport.errors import BackendError
from casereport.settings import BackendSettings
from casereport.state.objects import Bucket, _short
from s3_server import S3_ENV, S3Bucket, free_port, s3_bucket, s3_server

__all__ = ["s3_bucket", "s3_server"]  # fixtures


def bucket_at(s3_bucket: S3Bucket, url: str) -> Bucket:
    return Bucket(BackendSettings(url=url, endpoint_url=s3_bucket.endpoint))


@pytest.mark.parametrize(
    ("suffix", "key"),
    [
        ("/casereport/", "casereport/x"),  # a trailing slash
        ("//deep/er//", "deep/er/x"),  # slashes round the prefix
        ("/Xdeep/erX", "Xdeep/erX/x"),  # its own letters kept
        ("", "x"),  # no prefix: the bucket's top level
        ("/", "x"),
    ],
)
def test_each_shape_of_url_puts_the_objects_under_its_prefix(
    s3_bucket: S3Bucket, suffix: str, key: str
) -> None:
    bucket = bucket_at(s3_bucket, f"s3://{s3_bucket.name}{suffix}")
    bucket.put("x", b"one", expected=None)
    assert s3_bucket.keys() == [key]
    stored = bucket.read("x")
    assert stored is not None and stored.data == b"one"


def test_a_trailing_slash_is_not_doubled_in_what_the_messages_name(s3_bucket: S3Bucket) -> None:
    bucket = bucket_at(s3_bucket, f"s3://{s3_bucket.name}/casereport/")
    assert bucket.url == f"s3://{s3_bucket.name}/casereport"
    assert bucket.where("state.json") == f"s3://{s3_bucket.name}/casereport/state.json"
    ending_in_x = bucket_at(s3_bucket, f"s3://{s3_bucket.name}/reportX")
    assert ending_in_x.where("state.json") == f"s3://{s3_bucket.name}/reportX/state.json"


def test_a_region_is_passed_to_the_store(s3_bucket: S3Bucket) -> None:
    settings = BackendSettings(
        url=s3_bucket.url(), endpoint_url=s3_bucket.endpoint, region="eu-west-3"
    )
    bucket = Bucket(settings)
    assert bucket._store.config["region"] == "eu-west-3"
    bucket.put("x", b"one", expected=None)
    assert s3_bucket.keys() == ["casereport/x"]


class _Unavailable(BaseHTTPRequestHandler):
    """Answers every request with 503, counting them."""

    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(f"{self.command} {self.path}")
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_HEAD = do_DELETE = do_GET

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering with ``handler``; yields its endpoint."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def unavailable(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[str]]]:
    """An endpoint on 127.0.0.1 whose every answer is 503; yields it and its requests."""
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    hits: list[str] = []
    with serving(type("Handler", (_Unavailable,), {"hits": hits})) as endpoint:
        yield endpoint, hits


def test_a_failing_store_is_tried_four_times_then_named_in_one_line(
    unavailable: tuple[str, list[str]],
) -> None:
    endpoint, hits = unavailable
    bucket = Bucket(BackendSettings(url="s3://some-bucket/x", endpoint_url=endpoint))
    with pytest.raises(BackendError) as failed:
        bucket.read("state.json")
    assert failed.value.message == (
        f"s3://some-bucket/x/state.json: cannot reach the object store at {endpoint}: "
        "Generic S3 error: Server returned non-2xx status code: 503 Service Unavailable; "
        "check [backend] endpoint_url, region and the network"
    )
    # The first try and three retries, not the library's ten.
    assert hits == ["GET /some-bucket/x/state.json"] * 4


@pytest.mark.parametrize(
    ("key", "action"),
    [
        ("state.json", lambda bucket: bucket.read("state.json")),
        ("state.json", lambda bucket: bucket.put("state.json", b"x", expected='"e"')),
        ("state.json", lambda bucket: bucket.copy("state.json", "state.json.backup")),
        ("state.json.lock", lambda bucket: bucket.delete("state.json.lock")),
        ("workspaces", lambda bucket: bucket.folders("workspaces", "state.json")),
    ],
)
def test_each_request_to_a_failing_store_names_its_object(
    unavailable: tuple[str, list[str]], key: str, action: Callable[[Bucket], object]
) -> None:
    endpoint, _ = unavailable
    bucket = Bucket(BackendSettings(url="s3://some-bucket/x", endpoint_url=endpoint))
    with pytest.raises(BackendError) as failed:
        action(bucket)
    assert failed.value.message.startswith(
        f"s3://some-bucket/x/{key}: cannot reach the object store at {endpoint}: "
    )


class _BreaksOff(BaseHTTPRequestHandler):
    """Answers a GET with the headers of 1000 bytes, sends 3 and closes."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.send_header("ETag", '"e1"')
        self.send_header("Last-Modified", "Mon, 07 Dec 2026 00:00:00 GMT")
        self.end_headers()
        self.wfile.write(b"abc")
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


def test_a_download_that_breaks_off_is_one_line_naming_the_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    with serving(_BreaksOff) as endpoint:
        bucket = Bucket(BackendSettings(url="s3://some-bucket/x", endpoint_url=endpoint))
        with pytest.raises(BackendError) as failed:
            bucket.read("state.json")
    assert failed.value.message.startswith(
        f"s3://some-bucket/x/state.json: cannot reach the object store at {endpoint}: "
    )


class _Forbidden(BaseHTTPRequestHandler):
    """Answers every request with 403 and no body: no error code to show."""

    def do_GET(self) -> None:
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_refusal_without_an_error_code_is_one_line_without_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    with serving(_Forbidden) as endpoint:
        bucket = Bucket(BackendSettings(url="s3://some-bucket/x", endpoint_url=endpoint))
        with pytest.raises(BackendError) as refused:
            bucket.read("state.json")
    assert refused.value.message == (
        "s3://some-bucket/x/state.json: the object store refused access; check the AWS "
        "credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE or the CI role) and the bucket policy"
    )


def test_the_aws_endpoint_is_named_as_such_when_no_endpoint_url_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    # The credential chain's own endpoint variable, at a port where nothing listens.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    bucket = Bucket(BackendSettings(url="s3://some-bucket/x"))
    with pytest.raises(BackendError) as failed:
        bucket.read("state.json")
    message = failed.value.message
    assert message.startswith(
        "s3://some-bucket/x/state.json: cannot reach the object store at the AWS endpoint: "
    )
    assert message.endswith("; check [backend] endpoint_url, region and the network")


def test_the_reason_is_kept_without_the_request_dump_and_bounded() -> None:
    dump = "Error performing GET http://127.0.0.1:9/b/x/state.json in 1.2s - "
    assert _short(f"Generic S3 error: {dump}tcp connect error: refused") == (
        "Generic S3 error: tcp connect error: refused"
    )
    assert _short("Generic S3 error: timed out : ") == "Generic S3 error: timed out"
    assert _short("Generic S3 error: code XX") == "Generic S3 error: code XX"
    long = "a" * 300
    assert _short(long) == "a" * 200
    assert _short("a" * 199 + " :") == "a" * 199


def test_a_url_that_is_not_s3_is_refused_by_the_store_too() -> None:
    # settings and --backend refuse it first; the store does not rely on that.
    with pytest.raises(BackendError) as refused:
        Bucket(BackendSettings(url="gs://bucket/x"))
    assert refused.value.message == "backend url 'gs://bucket/x' is not s3://BUCKET/PREFIX"


def test_the_folders_directly_under_a_prefix_holding_an_object(s3_bucket: S3Bucket) -> None:
    bucket = bucket_at(s3_bucket, s3_bucket.url())
    keys = ("a/b/one/z", "a/b/two/x/z", "a/b/z", "a/c/three/z", "a/b/oneX/z", "a/b/lock/z.lock")
    for key in (*keys, "a/b/space /z", "a/bX/q/z", "a/b /r/z", "a/b/one/z.backup"):
        bucket.put(key, b"x", expected=None)
    # "two" holds z only deeper, "lock" only z.lock: neither holds z.
    assert bucket.folders("a/b", "z") == ["one", "oneX", "space "]
    assert bucket.folders("a/bX", "z") == ["q"]
    assert bucket.folders("a/b ", "z") == ["r"]
    assert bucket.folders("a/b/", "z") == bucket.folders("a/b", "z")
    assert bucket.folders("/a/b/", "z") == bucket.folders("a/b", "z")
    assert bucket.folders("a/b", "z.lock") == ["lock"]
    assert bucket.folders("a", "z") == ["b"]  # a/b/z
    assert bucket.folders("nothing", "z") == []


def test_a_missing_bucket_is_named_when_listing_too(s3_bucket: S3Bucket) -> None:
    bucket = bucket_at(s3_bucket, "s3://no-such-bucket-here/x")
    with pytest.raises(BackendError) as failed:
        bucket.folders("workspaces", "state.json")
    assert failed.value.message == (
        "s3://no-such-bucket-here/x/workspaces: the bucket 'no-such-bucket-here' does not "
        "exist (or is not visible with these credentials); create it, or fix [backend] url"
    )
    for key, action in (
        ("state.json", lambda: bucket.copy("state.json", "state.json.backup")),
        ("state.json.lock", lambda: bucket.delete("state.json.lock")),
        ("state.json", lambda: bucket.put("state.json", b"x", expected=None)),
        ("state.json", lambda: bucket.get("state.json", if_changed_from='"x"')),
    ):
        with pytest.raises(BackendError) as missing:
            action()
        assert missing.value.message == (
            f"s3://no-such-bucket-here/x/{key}: the bucket 'no-such-bucket-here' does not "
            "exist (or is not visible with these credentials); create it, or fix [backend] url"
        )


def test_copy_and_delete_of_a_missing_object_do_nothing(s3_bucket: S3Bucket) -> None:
    bucket = bucket_at(s3_bucket, s3_bucket.url())
    bucket.copy("state.json", "state.json.backup")
    bucket.delete("state.json")
    assert s3_bucket.keys() == []


def test_a_failure_without_a_message_is_named_by_its_kind() -> None:
    bucket = Bucket(BackendSettings(url="s3://some-bucket/x", endpoint_url="http://127.0.0.1:9"))

    def reset() -> None:
        raise ConnectionResetError

    with pytest.raises(BackendError) as failed:
        bucket._call("state.json", reset)
    assert failed.value.message == (
        "s3://some-bucket/x/state.json: cannot reach the object store at http://127.0.0.1:9: "
        "ConnectionResetError; check [backend] endpoint_url, region and the network"
    )
