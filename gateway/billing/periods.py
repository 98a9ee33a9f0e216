"""Billing periods: calendar months in UTC, named ``YYYY-MM``."""

from __future__ import annotations

import re
from datetime import datetime, timezone

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def period_of(moment: datetime) -> str:
    """The period a moment falls in."""
    moment = moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return f"{moment.year:04d}-{moment.month:02d}"


def bounds(period: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of a period.

    Raises:
        ValueError: Not a ``YYYY-MM`` period.
    """
    match = _PERIOD.match(period)
    if not match:
        raise ValueError("periods are written YYYY-MM")
    year, month = int(match.group(1)), int(match.group(2))
    start = datetime(year, month, 1, tzinfo=timezone.utc)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=timezone.utc)
    return start, end
