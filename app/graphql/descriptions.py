"""Descriptions several schema elements share (ids, money, references, paging arguments), written
once so the schema says the same thing everywhere it means the same thing."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.domain.history import CARD_TRANSACTIONS_DEFAULT
from app.domain.pages import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

CARD_ID = (
    'The card\'s internal id: a 64-bit integer as a string (never a number), e.g. "302" or '
    '"123117819232711558".'
)
TRANSACTION_ID = (
    'The transaction\'s id: a 64-bit integer as a string (never a number), e.g. "1207" or '
    '"123117819273380141".'
)
MEMBER_ID = '1 to 64 letters, digits or . _ : @ -, e.g. "C000000113".'
CURRENCY = 'ISO 4217 code of the card\'s currency, e.g. "USD"; amounts use its decimals.'
AMOUNT = 'A decimal string in the card\'s currency, e.g. "25.00" or "-6.49".'
BALANCE_BEFORE = (
    "The card's balance just before it took effect; for one never completed (AUTHORIZED, EXPIRED, "
    "CANCELLED), when it was authorized."
)
BALANCE_AFTER = (
    "The card's balance just after it took effect; for one never completed, the same as balanceBefore."
)
SOURCE_ID = 'Free reference: the system or channel it came from, up to 128 characters, e.g. "web-shop".'
REF_NO = 'Free reference: that system\'s number for it, up to 128 characters, e.g. "ORDER-1042".'
STORE_ID = "The store's id (its owner's short name for a merchant or brand), e.g. \"default\"."
IN_STORE = (
    "Only in this one of the token's stores: needed when a code is in two of them. A store outside the "
    "token's finds nothing, as one that does not exist."
)
LOCATION_ID = (
    "Where it happened, in the caller's own words (a store, till or terminal; Square's location_id): "
    '1 to 64 characters, no spaces at either end, e.g. "STORE-0042". Compared exactly.'
)
INITIAL_VALUE = (
    'The value the card was issued with: its first ADD, a decimal string in its currency, e.g. "25.00"; '
    "null when it was issued empty."
)
NOTE = "Internal note for operators, up to 1,000 characters (line breaks allowed)."
CODE = '4 to 64 letters and digits, e.g. "G59220000045"; case, spaces and dashes do not matter.'
CODE_EXPIRES_ON = "The last day (UTC) the code can be used; not in the past. Left out: it does not expire."
REVOKE = "Revoke the card's live code of this type: it never matches again."
EXPIRES_ON = "The last day (UTC) the code can be used; null: it does not expire."
USABLE_FROM = "The card takes no transaction before this time (null: no limit)."
EXPIRES_AT = "The card takes no transaction from this time on (null: never). Codes have their own expiry."
CURSOR = "Pass as `after` to continue behind this item."
PAGE_INFO = "Where this page sits: whether another follows, and its cursors."
CREATED_AFTER = "Only those created at or after this time."
CREATED_BEFORE = "Only those created before this time."

First = Annotated[
    int | None,
    strawberry.argument(
        description=f"How many items the page holds: 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})."
    ),
]
After = Annotated[
    str | None,
    strawberry.argument(
        description="The endCursor of the previous page, to continue behind it; left out: the first page."
    ),
]
Last = Annotated[
    int | None,
    strawberry.argument(
        description=f"Page backward: how many items the page holds, the last ones before `before` (or "
        f"of the listing): 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE} when `before` is given)."
    ),
]
Before = Annotated[
    str | None,
    strawberry.argument(
        description="The startCursor of the page after, to page back from it; left out with `last`: the "
        "last page."
    ),
]
LatestCount = Annotated[
    int | None,
    strawberry.argument(
        description=f"How many of the latest: 1 to {MAX_PAGE_SIZE} (default {CARD_TRANSACTIONS_DEFAULT})."
    ),
]
