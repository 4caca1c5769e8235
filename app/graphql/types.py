"""GraphQL output and input types, and the mapping from domain views onto them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from datetime import date, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

import strawberry

from app.domain.history import CARD_TRANSACTIONS_DEFAULT
from app.domain.masking import ShownCard
from app.domain.money import format_amount
from app.domain.pages import MAX_PAGE_SIZE, Page
from app.entities import Transaction
from app.enums import CardState, CodeType, TransStatus, TransType
from app.graphql.context import Context
from app.policy import Permission

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

D = TypeVar("D", bound="DataclassInstance")

# Registered with Strawberry here, so the domain's enums stay free of GraphQL.
strawberry.enum(CodeType, description="The kinds of code a card can be reached by.")
strawberry.enum(CardState, description="Lifecycle state of a card.")
strawberry.enum(
    TransType, description="ADD (positive), USE (negative), ADJUST / EXTERNAL / IMPORT (either sign)."
)
strawberry.enum(TransStatus, description="AUTHORIZED holds funds until captured or cancelled.")


@strawberry.type(description="One ledger entry, with the card's balances before and after it.")
class GiftCardTransaction:
    id: strawberry.ID
    giftcard_id: strawberry.ID
    trans_type: TransType
    status: TransStatus
    amount: str = strawberry.field(description="Decimal string; for a partial debit, what was debited.")
    currency: str
    balance: str = strawberry.field(description="The card's balance after this transaction.")
    available_balance: str | None = strawberry.field(
        description="The card's balance minus open debit holds, after this transaction. Given only "
        "in mutation responses; null in history (see GiftCard.availableBalance)."
    )
    balance_before: str
    balance_after: str
    authorized_amount: str | None
    hold_expires_at: datetime | None
    partial: bool = strawberry.field(description="True when allowPartial debited less than asked.")
    source_id: str | None
    ref_no: str | None
    note: str | None
    created_at: datetime
    settled_at: datetime | None


@strawberry.type(description="One code of a card, as the caller may see it.")
class GiftCardCode:
    id: strawberry.ID
    code_type: CodeType
    code: str = strawberry.field(
        description="The code in full, or masked to its last four characters (see isMasked)."
    )
    expires_on: date | None
    is_masked: bool


@strawberry.type(description="A gift card: one balance, reached through several codes.")
class GiftCard:
    id: strawberry.ID
    member_id: str | None
    currency: str
    state: CardState
    balance: str = strawberry.field(description='Decimal string in the card\'s currency, e.g. "25.00".')
    created_at: datetime
    updated_at: datetime
    usable_from: datetime | None = strawberry.field(
        description="The card takes no transaction before this time (null: no limit)."
    )
    expires_at: datetime | None = strawberry.field(
        description="The card takes no transaction from this time on (null: never). Codes have "
        "their own expiry."
    )
    source_id: str | None = strawberry.field(description="External reference: the source system.")
    ref_no: str | None = strawberry.field(description="External reference: its number for the card.")
    shown: strawberry.Private[ShownCard]  # the domain's card, its id as the database has it

    # Fields with a resolver are nullable: one that fails (a permission, the database) is null
    # with its own error and never discards the card around it, e.g. a mutation's answer.
    @strawberry.field(description="The token subject that created the card (ListGiftCards).")
    def created_by(self, info: strawberry.Info[Context]) -> str | None:
        info.context.principal.require(Permission.LIST_GIFT_CARDS)
        return self.shown.created_by

    @strawberry.field(description="Internal note for operators (ListGiftCards).")
    def note(self, info: strawberry.Info[Context]) -> str | None:
        info.context.principal.require(Permission.LIST_GIFT_CARDS)
        return self.shown.note

    codes: list[GiftCardCode] = strawberry.field(
        description="Live codes of types the caller may use, masked as its permissions say; revoked codes "
        "are never listed. In the response of the mutation that created them, codes are shown in full."
    )

    # Balance check. Resolved only when asked for, so lookups that do not ask pay nothing.
    @strawberry.field(
        description="What the card can spend now: its balance minus open, unexpired debit "
        "authorizations (read when asked, so it may be newer than `balance`)."
    )
    def available_balance(self, info: strawberry.Info[Context]) -> str | None:
        return format_amount(info.context.services.history.available_balance(self.shown.id), self.currency)

    @strawberry.field(
        description="AUTHORIZED transactions whose hold has not expired, debits and credits, oldest "
        "first (ListGiftCardTransactions)."
    )
    def open_authorizations(self, info: strawberry.Info[Context]) -> list[GiftCardTransaction] | None:
        views = info.context.services.history.open_authorizations(info.context.principal, self.shown.id)
        return [transaction_type(view) for view in views]

    @strawberry.field(
        description=f"The card's latest transactions, newest first (ListGiftCardTransactions). "
        f"`first`: 1 to {MAX_PAGE_SIZE}. Page through all of them with giftcardTransactions."
    )
    def transactions(
        self, info: strawberry.Info[Context], first: int | None = CARD_TRANSACTIONS_DEFAULT
    ) -> list[GiftCardTransaction] | None:
        views = info.context.services.history.latest(info.context.principal, self.shown.id, first)
        return [transaction_type(view) for view in views]


@strawberry.type(description="Result of a giftcard lookup.")
class GiftCardSearchResult:
    limited_by_permission: bool = strawberry.field(
        description="True when a code was left out or masked because of the caller's permissions."
    )
    results: list[GiftCard]


@strawberry.input(description="A new gift card. Give at least one code; the balance starts at zero.")
class GiftCardAddInput:
    physical_code: str | None = None
    physical_pin: str | None = strawberry.field(
        default=None, description="4 to 12 digits; needed later to transact with the PHYSICAL code."
    )
    physical_code_expires_on: date | None = None
    external_code: str | None = None
    external_code_expires_on: date | None = None
    add_personal_code: bool = strawberry.field(
        default=False,
        description="Generate a PERSONAL code (needs memberId). It is shown in full only in this response.",
    )
    personal_code_expires_on: date | None = None
    member_id: str | None = None
    currency: str | None = strawberry.field(
        default=None, description="ISO 4217 code; the server's default currency when left out."
    )
    usable_from: datetime | None = None
    expires_at: datetime | None = None
    note: str | None = strawberry.field(default=None, description="Internal note, up to 1,000 characters.")
    source_id: str | None = None
    ref_no: str | None = None


@strawberry.input(description="Changes to a card. Fields left out stay as they are.")
class GiftCardEditInput:
    id: strawberry.ID
    physical_code: str | None = strawberry.field(
        default=None, description="Add a PHYSICAL code, replacing the card's current one."
    )
    physical_pin: str | None = None
    physical_code_expires_on: date | None = None
    revoke_physical_code: bool = False
    external_code: str | None = strawberry.field(
        default=None, description="Add an EXTERNAL code, replacing the card's current one."
    )
    external_code_expires_on: date | None = None
    revoke_external_code: bool = False
    add_personal_code: bool = strawberry.field(
        default=False,
        description="Generate a PERSONAL code (needs memberId, the card's member if "
        "it has one), replacing the current one. Shown in full only in this response.",
    )
    personal_code_expires_on: date | None = None
    revoke_personal_code: bool = False
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
    usable_from: datetime | None = None
    expires_at: datetime | None = None
    note: str | None = None
    source_id: str | None = None
    ref_no: str | None = None


@cache
def _copied(shape: type[Any], given: tuple[str, ...]) -> tuple[str, ...]:
    """The fields of ``shape`` a build copies when ``given`` are given."""
    return tuple(field.name for field in fields(shape) if field.init and field.name not in given)


def build(shape: type[D], source: object, **given: Any) -> D:
    """A ``shape`` (a dataclass or a Strawberry type) made of ``given`` and, for each of its other
    fields, the attribute of ``source`` of the same name: one shape copied onto another."""
    return shape(**{name: getattr(source, name) for name in _copied(shape, tuple(given))}, **given)


# Amounts in minor units, shown as decimal strings in the card's currency.
_AMOUNTS = ("amount", "balance", "available_balance", "balance_before", "balance_after", "authorized_amount")


def transaction_type(view: Transaction) -> GiftCardTransaction:
    return build(
        GiftCardTransaction,
        view,
        id=strawberry.ID(str(view.id)),
        giftcard_id=strawberry.ID(str(view.giftcard_id)),
        **{
            name: None if (minor := getattr(view, name)) is None else format_amount(minor, view.currency)
            for name in _AMOUNTS
        },
    )


def card_type(view: ShownCard) -> GiftCard:
    return build(
        GiftCard,
        view,
        id=strawberry.ID(str(view.id)),
        balance=format_amount(view.balance, view.currency),
        shown=view,
        codes=[build(GiftCardCode, code, id=strawberry.ID(str(code.id))) for code in view.codes],
    )


@strawberry.type(description="Where a page sits in the listing.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(
        description="True when the page was asked for behind a cursor (pages only go forward)."
    )
    start_cursor: str | None
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` for the next page; null on an empty page."
    )


def connection(shape: type[D], edge: Callable[..., Any], page: Page[Any], node: Callable[[Any], Any]) -> D:
    """``page`` as a ``shape`` connection: each of its items mapped by ``node`` into an ``edge``."""
    edges = [edge(cursor=item.cursor, node=node(item.node)) for item in page.edges]
    return build(shape, page, edges=edges, page_info=build(PageInfo, page))
