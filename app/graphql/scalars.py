"""The Date and DateTime scalars: Strawberry's own, parsed and serialized exactly as before (ISO 8601),
with a description of the format and the specification they follow (``@specifiedBy``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime

from strawberry.schema.types.base_scalars import DateDefinition, DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

LOCAL_DATE_SPECIFICATION = "https://scalars.graphql.org/andimarek/local-date"
DATE_TIME_SPECIFICATION = "https://scalars.graphql.org/andimarek/date-time"

DATE_DESCRIPTION = (
    'A calendar date with no time or time zone, "YYYY-MM-DD" (RFC 3339 full-date), e.g. "2027-12-31".'
)
DATE_TIME_DESCRIPTION = (
    "An instant: an RFC 3339 date-time with its offset from UTC, e.g. "
    '"2027-01-01T09:30:00+02:00" or "2027-01-01T07:30:00Z". A time without an offset is refused. '
    'Answers carry their offset too, e.g. "2027-01-01T07:30:00+00:00", and fractional seconds '
    'when there are any ("2027-01-01T07:30:00.250000+00:00").'
)

# For StrawberryConfig.scalar_map: the Python types mapped onto the described scalars.
SCALARS: Mapping[object, ScalarDefinition] = {
    date: dataclasses.replace(
        DateDefinition, description=DATE_DESCRIPTION, specified_by_url=LOCAL_DATE_SPECIFICATION
    ),
    datetime: dataclasses.replace(
        DateTimeDefinition, description=DATE_TIME_DESCRIPTION, specified_by_url=DATE_TIME_SPECIFICATION
    ),
}
