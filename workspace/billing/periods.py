"""Budget periods, always cut at midnight in the organisation's time zone (``TIME_ZONE``).

A member in Auckland whose monthly budget resets "on the 1st" expects it to reset at midnight
Auckland time, not at midnight UTC, so every period boundary is computed on the local calendar
and then converted to an aware UTC datetime. Weeks start on Monday (ISO 8601). Because every
boundary is a local midnight, a period is also a whole number of local days, which is what lets
the daily rollups answer "spent this period" exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models
from django.utils.timesince import timeuntil


class Period(models.TextChoices):
    DAY = "day", "Day"
    WEEK = "week", "Week"
    MONTH = "month", "Calendar month"
    NONE = "none", "No reset (lifetime)"


# The start of the one period a "no reset" budget ever has.
NO_RESET_START = datetime(1970, 1, 1, tzinfo=UTC)

ADJECTIVES = {
    Period.DAY: "daily",
    Period.WEEK: "weekly",
    Period.MONTH: "monthly",
    Period.NONE: "lifetime",
}


def org_timezone() -> ZoneInfo:
    return ZoneInfo(str(settings.TIME_ZONE))


def local_date(moment: datetime) -> date:
    """The organisation's calendar date of an aware datetime."""
    return moment.astimezone(org_timezone()).date()


def local_midnight(day: date) -> datetime:
    """Midnight at the start of ``day`` in the organisation's time zone, as an aware UTC time."""
    return datetime.combine(day, time(0), tzinfo=org_timezone()).astimezone(UTC)


@dataclass(frozen=True)
class Bounds:
    start: datetime
    end: datetime | None  # None: the period never ends

    @property
    def first_day(self) -> date:
        return date.min if self.end is None else local_date(self.start)

    @property
    def end_day(self) -> date | None:
        """The first local day after the period (exclusive bound), None when it never ends."""
        return None if self.end is None else local_date(self.end)

    def contains(self, moment: datetime) -> bool:
        return moment >= self.start and (self.end is None or moment < self.end)

    def resets_in(self, now: datetime) -> str:
        """ "6 days", "3 hours", … until the next period; "" for a period that never ends."""
        if self.end is None:
            return ""
        return timeuntil(self.end, now, depth=1)


def period_bounds(period: str, at: datetime) -> Bounds:
    """The period of kind ``period`` that contains the moment ``at``."""
    if period == Period.NONE:
        return Bounds(start=NO_RESET_START, end=None)
    today = local_date(at)
    if period == Period.DAY:
        first, after = today, today + timedelta(days=1)
    elif period == Period.WEEK:
        first = today - timedelta(days=today.weekday())
        after = first + timedelta(days=7)
    elif period == Period.MONTH:
        first = today.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"Unknown budget period {period!r}.")
    return Bounds(start=local_midnight(first), end=local_midnight(after))
