"""A digest as an email: ``multipart/alternative`` with a plain-text part and the report's
HTML page inline (the page ``apply`` wrote, self-contained: inline CSS and SVG).

A report without an HTML page (``formats: [markdown]``), or whose page on disk is not the
one state recorded, gets a short HTML version of the text instead. Emulator data says
so in the subject and in both parts. The standard library's ``email`` package builds the
message; it is imported here, and this module only when an email is made.
"""

from __future__ import annotations

import html
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from casereport.notify.digest import Digest, check_line, delta, number
from casereport.settings_notify import NotifyTarget

__all__ = ["DEMO_LINE", "email_message", "email_text"]

DEMO_LINE = "Demo data — local emulator, not real cases."


def _one_line(text: str) -> str:
    return " ".join(text.split())


def email_text(digest: Digest) -> str:
    """The plain-text part."""
    lines = [digest.title, "=" * min(len(digest.title), 72), ""]
    if digest.demo:
        lines += [DEMO_LINE, ""]
    else:
        lines += [f"Source: {digest.source}", ""]
    for headline in digest.headlines:
        change = delta(headline.total, headline.compared)
        lines.append(
            f"{headline.title}: {number(headline.total)}" + (f" ({change})" if change else "")
        )
    if digest.more_headlines:
        lines.append(f"... and {digest.more_headlines} more on the page")
    if digest.changes:
        lines += ["", "Changes since the compared run:"]
        lines += [
            f"- {c.aggregation} / {c.label}: {number(c.before)} -> {number(c.after)} "
            f"({delta(c.after, c.before)})"
            for c in digest.changes
        ]
        if digest.more_changes:
            lines.append(f"- ... and {digest.more_changes} more")
    if digest.failing:
        lines += ["", "Failing checks:"]
        lines += [f"- {check_line(check)}" for check in digest.failing]
    if digest.page_url:
        lines += ["", f"The report: {digest.page_url}"]
    return "\n".join(lines) + "\n"


def _fallback_html(text: str, digest: Digest) -> str:
    title = html.escape(digest.title)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"</head><body><pre>{html.escape(text)}</pre></body></html>\n"
    )


def email_message(digest: Digest, target: NotifyTarget, page: str | None) -> EmailMessage:
    """The message to send; ``page``: the report's HTML page as written, if any."""
    message = EmailMessage()
    message["Subject"] = _one_line(digest.summary())
    message["From"] = target.sender
    message["To"] = ", ".join(target.to)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="casereport.invalid")
    message["X-Casereport-Report"] = digest.report
    message["X-Casereport-Run"] = digest.run
    if digest.demo:
        message["X-Casereport-Demo-Data"] = "true"
    text = email_text(digest)
    message.set_content(text)
    message.add_alternative(
        page if page is not None else _fallback_html(text, digest), subtype="html"
    )
    return message
