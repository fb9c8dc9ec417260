"""A digest as a Slack incoming-webhook message in Block Kit: a header, the source (demo
data said so), headline numbers, the changes since the compared run, failing checks and a
button to the published page.

Everything from the data is escaped as Slack's ``mrkdwn`` asks (``&``, ``<``, ``>``), so a
group named ``<!channel>`` is shown, never sent as a mention. Slack's limits (a header of
150 characters, 3,000 per text block, 10 fields) are kept by cutting with an ellipsis.
"""

from __future__ import annotations

from typing import Any

from casereport.notify.digest import Digest, check_line, delta, number

__all__ = ["slack_message"]

_HEADER_MAX = 150
_TEXT_MAX = 3000


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, _TEXT_MAX)}}


def slack_message(digest: Digest) -> dict[str, Any]:
    """The JSON body of the message (``text`` is the notification's fallback)."""
    header = ("[demo data] " if digest.demo else "") + digest.title
    source = (
        ":warning: *Demo data — local emulator*, not real cases"
        if digest.demo
        else f"Source: {_escape(digest.source)}"
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(header, _HEADER_MAX)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": source}]},
    ]
    lines = [
        f"*{_escape(h.title)}*: {number(h.total)}"
        + (f" ({change})" if (change := delta(h.total, h.compared)) else "")
        for h in digest.headlines
    ]
    if digest.more_headlines:
        lines.append(f"… and {digest.more_headlines} more on the page")
    if lines:
        blocks.append(_section("\n".join(lines)))
    if digest.changes:
        changes = [
            f"• {_escape(c.aggregation)} · {_escape(c.label)}: {number(c.before)} → "
            f"{number(c.after)} ({delta(c.after, c.before)})"
            for c in digest.changes
        ]
        if digest.more_changes:
            changes.append(f"… and {digest.more_changes} more")
        blocks.append(_section("*Changes since the compared run*\n" + "\n".join(changes)))
    if digest.failing:
        failing = [f"• :x: {_escape(check_line(c))}" for c in digest.failing[:10]]
        if len(digest.failing) > 10:
            failing.append(f"… and {len(digest.failing) - 10} more")
        blocks.append(_section("*Failing checks*\n" + "\n".join(failing)))
    if digest.page_url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open the report"},
                        "url": digest.page_url,
                    }
                ],
            }
        )
    return {"text": _cut(digest.summary(), _TEXT_MAX), "blocks": blocks}
