"""A real S3 API on 127.0.0.1 for the remote-state tests: moto's server, on a free port.

``s3_server`` (session fixture) starts moto's ``ThreadedMotoServer`` once and stops it
after the session; ``s3_bucket`` (per test) creates a fresh bucket in it and points the
AWS credential chain at fake keys, so every test has a backend of its own.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest


def this_machine() -> dict[str, str]:
    """Where a pid of this process's machine names a process (Linux): its boot and PID
    namespace, as a lock taken here records them, read here without casereport's code."""
    return {
        "boot_id": Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
        "pid_namespace": os.readlink("/proc/self/ns/pid"),
    }


def lock_json(
    who: str,
    pid: int,
    lock_id: str = "abc",
    *,
    created: str = "2026-01-01T00:00:00Z",
    where: dict[str, str] | None = None,
) -> bytes:
    """A lock object as a run of ``who`` (``user@host``) would write it; ``where``: the
    boot and PID namespace it names (``this_machine()``), none as an older casereport's."""
    info = {"id": lock_id, "operation": "apply", "who": who, "pid": pid, "created": created}
    return json.dumps({**info, "path": "x", **(where or {})}).encode()


#: The credential chain the S3 client reads; moto's server accepts any keys.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "casereport-test",
    "AWS_SECRET_ACCESS_KEY": "casereport-test-secret",
    "AWS_REGION": "us-east-1",
}
_CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")
_NUMBERS = itertools.count()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_up(url: str) -> None:
    for _ in range(200):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"no S3 server at {url}")


@dataclass(frozen=True)
class S3Bucket:
    """A bucket of the test server: its backend URL and the server's endpoint."""

    endpoint: str
    name: str

    def url(self, prefix: str = "casereport") -> str:
        return f"s3://{self.name}/{prefix}"

    def _store(self) -> Any:
        from obstore.store import S3Store

        return S3Store(
            self.name,
            endpoint=self.endpoint,
            region=S3_ENV["AWS_REGION"],
            access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
            secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
            client_options={"allow_http": True},
        )

    def object(self, key: str) -> bytes | None:
        """An object's bytes, read without casereport (None when absent)."""
        import obstore

        try:
            return bytes(obstore.get(self._store(), key).bytes())
        except FileNotFoundError:
            return None

    def put(self, key: str, data: bytes) -> None:
        """Write an object unconditionally, as another writer would."""
        import obstore

        obstore.put(self._store(), key, data)

    def clear(self) -> None:
        """Delete every object: the bucket as new."""
        import obstore

        for key in self.keys():
            obstore.delete(self._store(), key)

    def keys(self) -> list[str]:
        import obstore

        return sorted(meta["path"] for batch in obstore.list(self._store()) for meta in batch)

    def settings(self, root: Path, prefix: str = "casereport") -> None:
        """A ``casereport.toml`` in ``root`` whose ``[backend]`` is this bucket."""
        (root / "casereport.toml").write_text(
            f'[backend]\nurl = "{self.url(prefix)}"\nendpoint_url = "{self.endpoint}"\n',
            encoding="utf-8",
        )


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(endpoint)
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    name = f"casereport-test-{os.getpid()}-{next(_NUMBERS)}"
    httpx.put(f"{s3_server}/{name}", timeout=10).raise_for_status()
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    for key in _CLEARED:
        monkeypatch.delenv(key, raising=False)
    return S3Bucket(s3_server, name)


@pytest.fixture
def s3_with_auth() -> Iterator[str]:
    """A moto server of its own that checks credentials: every key is unknown to it."""
    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_until_up(endpoint)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)
