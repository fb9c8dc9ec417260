"""A digest as a webhook's JSON body, and its signature.

The body carries the report's data file (``data``: what ``site/<report>.json`` holds,
from the same ``render.data.report_data``) and its check results, with what the message
is about: the target, the run, why it is sent, whether the data is the emulator's demo
data, and the published page::

    {"format_version": 1, "event": "casereport.report_run", "target": "ops",
     "report": "support-weekly", "run": "<data hash>", "triggers": ["change"],
     "demo_data": false, "page_url": "https://.../support-weekly.html",
     "data": {...}, "checks": [{...}]}

``X-Casereport-Signature: sha256=<hex>`` is the HMAC-SHA256 of the body's exact bytes
under the secret named by ``secret_env``, as GitHub signs its webhooks: a receiver
computes it over the raw body and compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac

import orjson

from casereport.notify.digest import Digest

__all__ = ["SIGNATURE_HEADER", "WEBHOOK_FORMAT_VERSION", "signature", "webhook_body"]

WEBHOOK_FORMAT_VERSION = 1
SIGNATURE_HEADER = "X-Casereport-Signature"


def webhook_body(digest: Digest, target: str) -> bytes:
    """The POST body: compact JSON, UTF-8."""
    body = {
        "format_version": WEBHOOK_FORMAT_VERSION,
        "event": "casereport.report_run",
        "target": target,
        "report": digest.report,
        "run": digest.run,
        "triggers": list(digest.triggers),
        "demo_data": digest.demo,
        "page_url": digest.page_url,
        "data": digest.data,
        "checks": [check.as_json() for check in digest.checks],
    }
    return orjson.dumps(body)


def signature(body: bytes, secret: str) -> str:
    """The header's value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
