"""Carrying a message to its target: an HTTP POST (Slack, webhooks: httpx) or SMTP (the
standard library's ``smtplib``, imported only when an email is sent), and the retries
around either.

A failure is a ``DeliveryFailed`` whose reason is one line fit to show: hosts only,
never a URL (a Slack webhook's URL is its secret) or a password. Failures that trying
again cannot mend (HTTP 4xx but 408 and 429, SMTP 5xx, a missing variable) are
``permanent`` and not retried; the rest are retried with ``backoff`` seconds before the
second attempt, doubling each time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from casereport import __version__
from casereport.settings_notify import NotifyTarget

if TYPE_CHECKING:
    from email.message import EmailMessage

__all__ = [
    "SMTP_PASSWORD_ENV",
    "SMTP_USER_ENV",
    "DeliveryFailed",
    "host_of",
    "post",
    "send_mail",
    "with_retries",
]

SMTP_USER_ENV = "CASEREPORT_SMTP_USER"
SMTP_PASSWORD_ENV = "CASEREPORT_SMTP_PASSWORD"
#: Seconds one attempt may take: connecting, sending, reading the answer.
TIMEOUT = 10.0
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


class DeliveryFailed(Exception):
    """A message did not arrive; ``reason`` is one line, free of secrets."""

    def __init__(self, reason: str, *, permanent: bool = False, attempts: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.attempts = attempts


def with_retries(
    send: Callable[[], None],
    attempts: int,
    backoff: float,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Call ``send`` until it succeeds, at most ``attempts`` times; return the attempts it
    took, or raise the last ``DeliveryFailed`` (with ``attempts`` set)."""
    for attempt in range(1, attempts + 1):
        try:
            send()
        except DeliveryFailed as failure:
            if failure.permanent or attempt == attempts:
                failure.attempts = attempt
                raise
            sleep(backoff * 2 ** (attempt - 1))
        else:
            return attempt
    raise AssertionError("unreachable: attempts >= 1")


def host_of(url: str) -> str:
    """The host (and port) of ``url``: what messages may show of it."""
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] or "?"


def is_loopback(url: str) -> bool:
    """Whether ``url`` names this machine (a local relay or a test's receiver)."""
    try:
        return urlsplit(url).hostname in _LOOPBACK
    except ValueError:  # a malformed URL: httpx refuses it when it is sent
        return False


def post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float = TIMEOUT) -> None:
    """POST ``body``; any answer but 2xx, or none, is a ``DeliveryFailed``."""
    import httpx

    host = host_of(url)
    try:
        response = httpx.post(
            url,
            content=body,
            headers={"User-Agent": f"casereport/{__version__}", **headers},
            timeout=timeout,
        )
    except httpx.InvalidURL:
        # Its text may quote the URL, whose path is the secret of a Slack webhook.
        raise DeliveryFailed(
            f"the URL of {host} is not one httpx can send to (a stray space or newline "
            "in the variable that holds it?)",
            permanent=True,
        ) from None
    except httpx.HTTPError as exc:
        reason = " ".join(str(exc).replace(url, host).split()) or type(exc).__name__
        raise DeliveryFailed(f"cannot reach {host}: {reason}") from None
    code = response.status_code
    if not 200 <= code < 300:
        permanent = 400 <= code < 500 and code not in (408, 429)
        raise DeliveryFailed(f"{host} answered HTTP {code}", permanent=permanent)


def send_mail(target: NotifyTarget, message: EmailMessage, *, timeout: float = TIMEOUT) -> None:
    """Send ``message`` through the target's SMTP server (a login from the environment)."""
    import smtplib
    import ssl

    host, port = target.smtp_host, target.smtp_port
    where = f"{host}:{port}"
    user = os.environ.get(SMTP_USER_ENV)
    implicit_tls = port == 465
    if user and not (target.starttls or implicit_tls) and host not in _LOOPBACK:
        raise DeliveryFailed(
            f"{SMTP_USER_ENV} is set but starttls = false: the password would cross the "
            f"network to {where} unencrypted; set starttls = true (or port 465)",
            permanent=True,
        )
    try:
        if implicit_tls:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            if target.starttls and not implicit_tls:
                smtp.starttls(context=ssl.create_default_context())
            if user:
                smtp.login(user, os.environ.get(SMTP_PASSWORD_ENV, ""))
            smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        text = (
            exc.smtp_error.decode("utf-8", "replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        raise DeliveryFailed(
            f"{where} refused it: {exc.smtp_code} {' '.join(text.split())}",
            permanent=exc.smtp_code >= 500,
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise DeliveryFailed(f"{where}: {exc}", permanent=True) from None
    except (smtplib.SMTPException, OSError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DeliveryFailed(f"cannot send through {where}: {reason}") from None
