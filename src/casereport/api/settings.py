"""Where and how the client calls Datadog: the site, the base URL, the credentials.

    settings = ClientSettings.from_env()             # DD_SITE, DD_API_KEY, DD_APP_KEY, ...
    settings = ClientSettings.from_env(site="datadoghq.eu", parallelism=4)

Apart from the client because it is plain validated configuration: it reads the
environment and checks sites and URLs, and its messages name the variable to set. Nothing
here opens a connection. :class:`Credentials` never shows a key or token in its ``repr``.

Secrets have one way in, the ``DD_*`` variables, and no way out: a base URL carrying
credentials (``http://user:pass@host``) is refused rather than stripped, since the URL is
recorded in state and plans and shown in messages, and a stripped URL would send requests
without the credentials its author meant a proxy to get; a key or token holding a control
or non-ASCII character (a stray line break, an escape code) is refused before it reaches
an HTTP header, whose error would echo it in a form redaction cannot recognise. Neither
message shows the value.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import httpx

from casereport.errors import ConfigError
from casereport.settings import DEFAULT_MAX_RATE_LIMIT_WAIT, DEFAULT_TIMEOUT

__all__ = [
    "DEFAULT_SITE",
    "SITES",
    "ClientSettings",
    "Credentials",
    "check_api_url",
]

SITES: tuple[str, ...] = (
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "uk1.datadoghq.com",
    "datadoghq.eu",
    "ddog-gov.com",
    "us2.ddog-gov.com",
)
DEFAULT_SITE = "datadoghq.com"
AGGREGATE_PATH = "/api/v2/cases/aggregate"
#: The largest response body read (on the wire and decompressed alike): a full aggregate
#: of 1000 groups is a few hundred kilobytes, so this leaves ample room and bounds memory.
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
_NO_CREDENTIALS = (
    "no Datadog credentials: set DD_API_KEY and DD_APP_KEY (or DD_BEARER_TOKEN), or use --emulator"
)


_SECRET_VARIABLES = {
    "api_key": "DD_API_KEY",
    "app_key": "DD_APP_KEY",
    "bearer_token": "DD_BEARER_TOKEN",
}


@dataclass(frozen=True, repr=False)
class Credentials:
    """API and application keys, or an OAuth bearer token; never shown by ``repr``."""

    api_key: str | None = None
    app_key: str | None = None
    bearer_token: str | None = None

    def __post_init__(self) -> None:
        # from_env has checked these already, naming the variable; this guards the others.
        for name, variable in _SECRET_VARIABLES.items():
            value = getattr(self, name)
            if value is not None:
                _check_secret(value, variable)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={'None' if getattr(self, name) is None else '***'}"
            for name in ("api_key", "app_key", "bearer_token")
        )
        return f"Credentials({shown})"

    @property
    def complete(self) -> bool:
        """Both keys, or a token."""
        return bool(self.api_key and self.app_key) or bool(self.bearer_token)

    def secrets(self) -> tuple[str, ...]:
        """The values to keep out of every message."""
        return tuple(s for s in (self.api_key, self.app_key, self.bearer_token) if s)

    def headers(self) -> dict[str, str]:
        """Authentication headers: the keys when both are set, else the token if any."""
        if self.bearer_token and not (self.api_key and self.app_key):
            return {"Authorization": f"Bearer {self.bearer_token}"}
        headers = {}
        if self.api_key:
            headers["DD-API-KEY"] = self.api_key
        if self.app_key:
            headers["DD-APPLICATION-KEY"] = self.app_key
        return headers


@dataclass(frozen=True)
class ClientSettings:
    """Where and how to call the API.

    ``timeout`` bounds one attempt as a whole (connect, send, read every byte); ``deadline``
    bounds one request, retries and waits included; ``max_retry_wait`` caps a backoff wait;
    ``max_rate_limit_wait`` is the longest rate-limit reset waited for (a longer one fails
    the request at once); ``max_response_bytes`` caps a response body, before and after
    decompression.
    """

    base_url: str
    site: str
    credentials: Credentials
    timeout: float = DEFAULT_TIMEOUT
    max_attempts: int = 6
    deadline: float = 300.0
    max_retry_wait: float = 60.0
    max_rate_limit_wait: float = DEFAULT_MAX_RATE_LIMIT_WAIT
    parallelism: int = 16
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", check_api_url(self.base_url, "base_url"))
        for name, minimum, strict in (
            ("timeout", 0.0, True),
            ("deadline", 0.0, True),
            ("max_retry_wait", 0.0, False),
            ("max_rate_limit_wait", 0.0, False),
        ):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or (value <= minimum if strict else value < minimum)
            ):
                need = "a positive number" if strict else "0 or more"
                raise ConfigError(f"client setting {name} must be {need} of seconds, got {value!r}")
        for name in ("max_attempts", "parallelism", "max_response_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"client setting {name} must be an integer of 1 or more, got {value!r}"
                )

    @property
    def aggregate_url(self) -> str:
        """The URL of the aggregate endpoint."""
        return self.base_url + AGGREGATE_PATH

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        require_credentials: bool = True,
        **overrides: Any,
    ) -> ClientSettings:
        """Settings from ``DD_SITE``, ``DD_API_KEY``, ``DD_APP_KEY`` (or ``DD_APPLICATION_KEY``),
        ``DD_BEARER_TOKEN`` and ``CASEREPORT_API_URL``; ``overrides`` win over the environment.

        Raises ``ConfigError`` for an unknown site, a malformed URL or, when
        ``require_credentials``, missing keys (naming the variables to set).
        """
        env = os.environ if env is None else env
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown client settings: {', '.join(sorted(unknown))}")

        def read(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        def read_secret(name: str) -> str | None:
            value = read(name)
            if value is not None:
                _check_secret(value, name)
            return value

        if "base_url" in overrides:
            base_url = check_api_url(str(overrides["base_url"]), "base_url")
            site = str(overrides.get("site", base_url))
        elif api_url := read("CASEREPORT_API_URL"):
            base_url = check_api_url(api_url, "CASEREPORT_API_URL")
            site = str(overrides.get("site", base_url))
        elif "site" in overrides:
            site = _check_site(str(overrides["site"]), "site")
            base_url = f"https://api.{site}"
        else:
            site = _check_site(read("DD_SITE"), "DD_SITE")
            base_url = f"https://api.{site}"

        app_name = "DD_APP_KEY" if read("DD_APP_KEY") else "DD_APPLICATION_KEY"
        credentials: Credentials = overrides.get("credentials") or Credentials(
            api_key=read_secret("DD_API_KEY"),
            app_key=read_secret(app_name),
            bearer_token=read_secret("DD_BEARER_TOKEN"),
        )
        if require_credentials and not credentials.complete:
            raise ConfigError(_missing_credentials(credentials, app_name))
        values = {**overrides, "base_url": base_url, "site": site, "credentials": credentials}
        return cls(**values)


def _check_site(raw: str | None, name: str) -> str:
    if raw is None:
        return DEFAULT_SITE
    site = raw.lower().rstrip("/")
    if site in SITES:
        return site
    hint = ""
    bare = re.sub(r"^(https?://)?(app\.|api\.)?", "", site)
    if bare in SITES:
        hint = f" (did you mean {bare!r}?)"
    raise ConfigError(f"unknown {name} {raw!r}{hint}: use one of {', '.join(SITES)}")


# The user-info part of a URL (``user:pass@``), as written: masked before any message.
_USERINFO = re.compile(r"(?<=://)[^/?#]*@")


def _shown_url(raw: str) -> str:
    """``raw`` fit for a message: user info and anything after ``?`` or ``#`` masked."""
    shown = _USERINFO.sub("***@", raw.strip())
    return re.sub(r"([?#]).*", r"\1***", shown, flags=re.DOTALL)


def check_api_url(raw: str, name: str = "CASEREPORT_API_URL") -> str:
    """``raw`` as a base URL (no trailing slash); ``ConfigError`` naming ``name`` when it is
    not an http(s) URL or carries credentials, a query or a fragment (never shown)."""
    url = raw.strip().rstrip("/")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(
            f"{name} must be an http(s) URL such as http://127.0.0.1:8710, got {_shown_url(raw)!r}"
        )
    if parsed.userinfo or _USERINFO.search(url):
        raise ConfigError(
            f"{name} must not carry credentials (user:password@), since the URL is recorded "
            f"in state and plans: remove them from {_shown_url(raw)!r} and set DD_API_KEY and "
            "DD_APP_KEY (or DD_BEARER_TOKEN) instead"
        )
    if parsed.query or parsed.fragment or "?" in url or "#" in url:
        raise ConfigError(
            f"{name} must be a base URL without a query or fragment, such as "
            f"https://api.datadoghq.com, got {_shown_url(raw)!r}"
        )
    return url


def _check_secret(value: str, name: str) -> None:
    """Refuse a key or token that no HTTP header can carry, without showing it."""
    for char in value:
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            what = "a control character (a line break, NUL or escape code?)"
        elif code == 0x20:
            what = "a space"
        elif code > 0x7E:
            what = "a non-ASCII character"
        else:
            continue
        raise ConfigError(
            f"{name} holds {what}, which no Datadog key or token has: set {name} to the "
            "key alone (check how it was pasted or read from a file)"
        )


def _missing_credentials(credentials: Credentials, app_name: str) -> str:
    if credentials.api_key and not credentials.app_key:
        return (
            "incomplete Datadog credentials: DD_API_KEY is set but DD_APP_KEY is not; "
            "set DD_APP_KEY (or DD_APPLICATION_KEY), or DD_BEARER_TOKEN, or use --emulator"
        )
    if credentials.app_key and not credentials.api_key:
        return (
            f"incomplete Datadog credentials: {app_name} is set but DD_API_KEY is not; "
            "set DD_API_KEY, or DD_BEARER_TOKEN, or use --emulator"
        )
    return _NO_CREDENTIALS
