"""GraphQL input types of the card mutations (giftcardAdd, giftcardEdit)."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from app.graphql.descriptions import (
    CARD_ID,
    CODE,
    CODE_EXPIRES_ON,
    EXPIRES_AT,
    LOCATION_ID,
    MEMBER_ID,
    NOTE,
    REF_NO,
    REVOKE,
    SOURCE_ID,
    USABLE_FROM,
)

# The edit's operator fields: three ways to give one.
CLEARS = "Left out: kept as it is; null: cleared."


@strawberry.input(
    description="A new gift card. Give at least one code; the balance starts at zero unless "
    "initialValue is given."
)
class GiftCardAddInput:
    physical_code: str | None = strawberry.field(default=None, description=f"A PHYSICAL code: {CODE}")
    physical_pin: str | None = strawberry.field(
        default=None,
        description='4 to 12 digits, e.g. "1234"; needed later to transact with the PHYSICAL code.',
    )
    physical_code_expires_on: date | None = strawberry.field(default=None, description=CODE_EXPIRES_ON)
    external_code: str | None = strawberry.field(default=None, description=f"An EXTERNAL code: {CODE}")
    external_code_expires_on: date | None = strawberry.field(default=None, description=CODE_EXPIRES_ON)
    add_personal_code: bool = strawberry.field(
        default=False,
        description="Generate a PERSONAL code (needs memberId). It is shown in full only in this response.",
    )
    personal_code_expires_on: date | None = strawberry.field(default=None, description=CODE_EXPIRES_ON)
    member_id: str | None = strawberry.field(
        default=None, description=f"The member the card belongs to: {MEMBER_ID}"
    )
    currency: str | None = strawberry.field(
        default=None, description='ISO 4217 code, e.g. "EUR"; the server\'s default currency when left out.'
    )
    usable_from: datetime | None = strawberry.field(default=None, description=USABLE_FROM)
    expires_at: datetime | None = strawberry.field(
        default=None, description=f"{EXPIRES_AT} Later than usableFrom."
    )
    note: str | None = strawberry.field(default=None, description=NOTE)
    source_id: str | None = strawberry.field(
        default=None, description=f"{SOURCE_ID} With initialValue, also on its ADD transaction."
    )
    ref_no: str | None = strawberry.field(default=None, description=REF_NO)
    initial_value: str | None = strawberry.field(
        default=None,
        description='Issue the card funded: a decimal string in its currency, e.g. "25.00", greater than '
        "zero and within the maximum balance (GiftCardTransAdd as well). The card is created, funded by an "
        "ADD and ACTIVE at once, or nothing is written.",
    )
    store_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The store the card belongs to: one of the token's stores (any with AllStores); left "
        "out: the token's only store. Its codes need only be unique within it.",
    )
    program_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The program whose rules the card follows (currency, allowed values, expiry, limits), "
        "in the card's store; left out: the store's default program, if it has one. With no code given, "
        "the program generates a PHYSICAL code in its format (shown in full, as PHYSICAL codes are).",
    )
    location_id: str | None = strawberry.field(
        default=None,
        description=f"Where the card is issued (Square's location of a new card): {LOCATION_ID} Also on "
        "the ADD transaction of initialValue.",
    )
    enabled: bool | None = strawberry.field(
        default=None,
        description="false: issue the card BLOCKED (needs BlockGiftCard as well; giftcardEdit's enabled: "
        "true or giftcardUnblock makes it usable). true or left out: issued as usual.",
    )


@strawberry.input(
    description="Changes to a card. Fields left out stay as they are; the operator fields "
    "(usableFrom, expiresAt, note, sourceId, refNo) are cleared by null. All or nothing is changed."
)
class GiftCardEditInput:
    id: strawberry.ID = strawberry.field(description=f"The card to change. {CARD_ID}")
    physical_code: str | None = strawberry.field(
        default=None,
        description="Add a PHYSICAL code, replacing the card's current one; the card's own code "
        f"given again keeps it and takes the new PIN or expiry. The code: {CODE}",
    )
    physical_pin: str | None = strawberry.field(
        default=None, description="4 to 12 digits: the PIN of physicalCode (only with it)."
    )
    physical_code_expires_on: date | None = strawberry.field(default=None, description=CODE_EXPIRES_ON)
    revoke_physical_code: bool = strawberry.field(default=False, description=REVOKE)
    external_code: str | None = strawberry.field(
        default=None,
        description=f"Add an EXTERNAL code, replacing the card's current one. The code: {CODE}",
    )
    external_code_expires_on: date | None = strawberry.field(default=None, description=CODE_EXPIRES_ON)
    revoke_external_code: bool = strawberry.field(default=False, description=REVOKE)
    add_personal_code: bool = strawberry.field(
        default=False,
        description="Generate a PERSONAL code (needs memberId, the card's member if "
        "it has one), replacing the current one. Shown in full only in this response.",
    )
    personal_code_expires_on: date | None = strawberry.field(default=None, description=CODE_EXPIRES_ON)
    revoke_personal_code: bool = strawberry.field(default=False, description=REVOKE)
    member_id: str | None = strawberry.field(
        default=None,
        description="Link this member to a card that has none. A card's member never "
        "changes to another one; unlink first.",
    )
    unlink_member: bool = strawberry.field(
        default=False, description="Unlink the card's member; its PERSONAL codes are revoked."
    )
    unlock_physical_pin: bool = strawberry.field(
        default=False,
        description="End the PHYSICAL code's PIN lockout after too many wrong PINs "
        "(giving a new physicalPin for the card's own code ends it too).",
    )
    enabled: bool | None = strawberry.field(
        default=None,
        description="true: unblock the card, as giftcardUnblock (ACTIVE if it was ever funded, else "
        "PENDING); false: block it, as giftcardBlock. Needs BlockGiftCard as well. A card already in "
        "that state is left as it is.",
    )
    usable_from: datetime | None = strawberry.field(
        default=strawberry.UNSET, description=f"{USABLE_FROM} {CLEARS}"
    )
    expires_at: datetime | None = strawberry.field(
        default=strawberry.UNSET,
        description=f"{EXPIRES_AT} For a card of a program, not sooner than GIFTCARDS_MIN_EXPIRY_DAYS from "
        f"now, as on issue. {CLEARS}",
    )
    note: str | None = strawberry.field(default=strawberry.UNSET, description=f"{NOTE} {CLEARS}")
    source_id: str | None = strawberry.field(default=strawberry.UNSET, description=f"{SOURCE_ID} {CLEARS}")
    ref_no: str | None = strawberry.field(default=strawberry.UNSET, description=f"{REF_NO} {CLEARS}")
