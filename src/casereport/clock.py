"""The current time, pinned by ``SOURCE_DATE_EPOCH`` for reproducible runs and tests."""

from __future__ import annotations

import os
from datetime import UTC, datetime


def now() -> datetime:
    """Now in UTC, to the second; ``SOURCE_DATE_EPOCH`` (seconds since 1970) pins it."""
    pinned = os.environ.get("SOURCE_DATE_EPOCH")
    if pinned:
        try:
            return datetime.fromtimestamp(int(pinned), UTC)
        except ValueError:
            from casereport.errors import ConfigError

            raise ConfigError(
                f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got {pinned!r}"
            ) from None
    return datetime.now(UTC).replace(microsecond=0)
