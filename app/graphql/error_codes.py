"""The ``ErrorCode`` enum of the schema: every value an error's ``extensions.code`` takes, described.

Errors carry their code as a string; the enum publishes the set, so that a client can see
(and generate code for) every answer it has to handle. It mirrors :class:`app.errors.ErrorCode`.
"""

from __future__ import annotations

from enum import Enum
from typing import cast

import strawberry

from app.errors import ERROR_CODE_DESCRIPTIONS, ErrorCode

_MEMBERS = {
    code.name: strawberry.enum_value(code.value, description=ERROR_CODE_DESCRIPTIONS[code])
    for code in ErrorCode
}
# The functional API builds the class from the members above (mypy sees an instance).
GraphQLErrorCode = strawberry.enum(
    cast("type[Enum]", Enum("ErrorCode", _MEMBERS)),
    description="The values of `extensions.code` on errors. An error raised by a field carries the "
    "field's `path`: that field is null, and the data of every other field stands (partial results).",
)
