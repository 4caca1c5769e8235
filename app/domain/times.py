"""Times callers pass in (card windows, listing filters): with a time zone, kept in UTC (SQLite keeps
no offset). A time beyond the calendar's years 1 and 9999 once in UTC, or within a day of either end
(a session in another time zone would read it back beyond), is refused here, naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.errors import BadUserInputError

# A day inside either end of the calendar: no time zone's offset reaches past it.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)


def to_utc(moment: datetime | None, field: str) -> datetime | None:
    """``moment`` in UTC; refused when it has no time zone or lies outside EARLIEST…LATEST."""
    if moment is None:
        return None
    if moment.utcoffset() is None:
        raise BadUserInputError(f"{field}: give a time zone (e.g. 2027-01-01T00:00:00Z)", field=field)
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # beyond year 1 or 9999 once the offset is taken away
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise BadUserInputError(
            f"{field}: give a time from {EARLIEST.date()} to {LATEST.date()} (UTC)", field=field
        )
    return utc
