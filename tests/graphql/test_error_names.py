"""The GraphQL edge writes the domain's field names as the schema does, and nothing else."""

from __future__ import annotations

import pytest
from graphql import GraphQLError
from strawberry.types import ExecutionResult

from app.errors import BadUserInputError, LimitExceededError, RateLimitedError
from app.graphql.schema import api_names, format_result


@pytest.mark.parametrize(
    ("domain", "api"),
    [
        ("expires_at: must be later than usable_from", "expiresAt: must be later than usableFrom"),
        ("trans.source_id", "trans.sourceId"),
        ("code,member_id", "code,memberId"),
        ("physical_code_expires_on", "physicalCodeExpiresOn"),
        ("giftcard_edit with unlock_physical_pin ends it", "giftcardEdit with unlockPhysicalPin ends it"),
        # Already the API's, or not a field name: left as it is.
        ("idempotencyKey", "idempotencyKey"),
        (
            "the token lacks the UseShortPersonalGiftCardCodes permission",
            "the token lacks the UseShortPersonalGiftCardCodes permission",
        ),
        ("a SHORT_PERSONAL code", "a SHORT_PERSONAL code"),
        ("amount: a card may hold at most 1000.00 EUR", "amount: a card may hold at most 1000.00 EUR"),
        ("_private and trailing_", "_private and trailing_"),
    ],
)
def test_domain_names_take_the_schema_spelling(domain, api):
    assert api_names(domain) == api


def _answered(error: Exception) -> dict[str, object]:
    located = GraphQLError(str(error), path=["giftcardAdd"], original_error=error)
    body = format_result(ExecutionResult(data={"giftcardAdd": None}, errors=[located]))
    [answer] = body["errors"]
    return answer


def test_a_domain_error_reaches_the_client_in_api_names_with_its_code_first():
    answer = _answered(BadUserInputError("expires_at: must be later than usable_from", field="expires_at"))
    assert answer == {
        "message": "expiresAt: must be later than usableFrom",
        "path": ["giftcardAdd"],
        "extensions": {"code": "BAD_USER_INPUT", "field": "expiresAt"},
    }
    assert list(answer["extensions"]) == ["code", "field"]  # type: ignore[call-overload]


def test_a_limit_is_named_as_the_readme_names_it_and_other_extensions_stay():
    limit = _answered(LimitExceededError("amount: too much", field="amount", limit="max_balance"))
    assert limit["extensions"] == {"code": "LIMIT_EXCEEDED", "field": "amount", "limit": "maxBalance"}
    throttled = _answered(RateLimitedError("too many code attempts", retry_after=7))
    assert throttled["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 7}
