"""Times callers pass in: a time zone required, UTC out, the calendar's last day at either end refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.domain.times import EARLIEST, LATEST, to_utc
from app.errors import BadUserInputError

PLUS_14 = timezone(timedelta(hours=14))
MINUS_14 = timezone(timedelta(hours=-14))


def test_times_come_back_in_utc():
    in_kiribati = datetime(2027, 1, 1, 9, 30, tzinfo=PLUS_14)
    assert to_utc(in_kiribati, "at") == datetime(2026, 12, 31, 19, 30, tzinfo=UTC)
    assert to_utc(None, "at") is None


def test_the_ends_of_the_range_are_accepted():
    assert to_utc(EARLIEST, "at") == EARLIEST
    assert to_utc(LATEST.astimezone(MINUS_14), "at") == LATEST


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=PLUS_14),  # before year 1 in UTC
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=MINUS_14),  # after year 9999 in UTC
        EARLIEST - timedelta(microseconds=1),
        LATEST + timedelta(microseconds=1),
        datetime(2027, 1, 1),  # no time zone
    ],
)
def test_refused_times_name_the_field(moment):
    with pytest.raises(BadUserInputError) as caught:
        to_utc(moment, "createdAfter")
    assert caught.value.field == "createdAfter"
    assert caught.value.message.startswith("createdAfter: ")
