"""Closed vocabularies shared by every layer (stored as their string values)."""

from __future__ import annotations

from enum import StrEnum


class CodeType(StrEnum):
    PHYSICAL = "PHYSICAL"
    PERSONAL = "PERSONAL"
    EXTERNAL = "EXTERNAL"
    SHORT_PERSONAL = "SHORT_PERSONAL"


class CardState(StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    BLOCKED = "BLOCKED"
    DEACTIVATED = "DEACTIVATED"


class TransType(StrEnum):
    ADD = "ADD"
    USE = "USE"
    ADJUST = "ADJUST"
    EXTERNAL = "EXTERNAL"
    IMPORT = "IMPORT"


class TransStatus(StrEnum):
    AUTHORIZED = "AUTHORIZED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"  # shown for an AUTHORIZED hold past holdExpiresAt; never stored


class ExpiryKind(StrEnum):
    """When a program's cards expire (DESIGN §11)."""

    NONE = "NONE"
    AFTER_ISSUE = "AFTER_ISSUE"  # a period after the card was issued
    AFTER_ACTIVITY = "AFTER_ACTIVITY"  # a period after its last transaction


class GiftCardOrder(StrEnum):
    """The order of the card listing: by creation (card ids are time-ordered, app.ids)."""

    CREATED_ASC = "CREATED_ASC"  # oldest first, the default
    CREATED_DESC = "CREATED_DESC"  # newest first


class Operation(StrEnum):
    """What a caller asked the server to change. The values are what audit events and idempotency
    keys store (the API's mutation names when the trail began), so they never change."""

    CREATE_CARD = "giftcardAdd"
    EDIT_CARD = "giftcardEdit"
    BLOCK_CARD = "giftcardBlock"
    UNBLOCK_CARD = "giftcardUnblock"
    DEACTIVATE_CARD = "giftcardDeactivate"
    RESERVE_CODES = "giftcardReserveCodes"
    ADD_TRANSACTION = "giftcardTransAdd"
    TOKENIZE = "giftcardTokenize"
    CAPTURE = "giftcardTransCapture"
    CANCEL = "giftcardTransCancel"
    ADD_PROGRAM = "giftcardProgramAdd"
    EDIT_PROGRAM = "giftcardProgramEdit"
