"""GraphQL output and input types, and the mapping from domain views onto them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import fields
from datetime import date, datetime
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import strawberry

from app.domain.history import CARD_TRANSACTIONS_DEFAULT
from app.domain.masking import ShownCard
from app.domain.money import format_amount
from app.domain.pages import MAX_PAGE_SIZE, Page
from app.entities import Transaction
from app.graphql.context import Context
from app.graphql.descriptions import (
    AMOUNT,
    BALANCE_AFTER,
    BALANCE_BEFORE,
    CARD_ID,
    CURRENCY,
    EXPIRES_AT,
    EXPIRES_ON,
    INITIAL_VALUE,
    LOCATION_ID,
    REF_NO,
    SOURCE_ID,
    STORE_ID,
    TRANSACTION_ID,
    USABLE_FROM,
    LatestCount,
)
from app.graphql.enums import CardState, CodeType, TransStatus, TransType
from app.policy import Permission

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from app.graphql.programs import GiftCardProgram

D = TypeVar("D", bound="DataclassInstance")


@strawberry.type(description="One ledger entry, with the card's balances before and after it.")
class GiftCardTransaction:
    id: strawberry.ID = strawberry.field(description=TRANSACTION_ID)
    giftcard_id: strawberry.ID = strawberry.field(description="The card's id.")
    trans_type: TransType = strawberry.field(description="What kind of transaction it is.")
    status: TransStatus = strawberry.field(description="Where it stands (EXPIRED: a hold that lapsed).")
    amount: str = strawberry.field(description=f"{AMOUNT} For a partial debit, what was debited.")
    currency: str = strawberry.field(description=CURRENCY)
    balance: str = strawberry.field(
        description="The card's balance when this answer was given; in history, its balance after "
        "this transaction."
    )
    available_balance: str | None = strawberry.field(
        description="The card's balance minus open debit holds, after this transaction. Given only "
        "in mutation responses; null in history (see GiftCard.availableBalance)."
    )
    balance_before: str = strawberry.field(description=BALANCE_BEFORE)
    balance_after: str = strawberry.field(description=BALANCE_AFTER)
    authorized_amount: str | None = strawberry.field(
        description="For an authorization, the amount authorized (a capture may settle less); else null."
    )
    hold_expires_at: datetime | None = strawberry.field(
        description="For an authorization, when its hold lapses unless captured first; else null."
    )
    partial: bool = strawberry.field(description="True when allowPartial debited less than asked.")
    source_id: str | None = strawberry.field(description=SOURCE_ID)
    ref_no: str | None = strawberry.field(description=REF_NO)
    location_id: str | None = strawberry.field(description=f"{LOCATION_ID} Null: not given.")
    store_id: strawberry.ID = strawberry.field(description=f"The card's store. {STORE_ID}")
    note: str | None = strawberry.field(description="Free text given with the transaction.")
    created_at: datetime = strawberry.field(description="When it was created (authorized, for holds).")
    settled_at: datetime | None = strawberry.field(
        description="When it was completed or cancelled; null while AUTHORIZED."
    )
    auth_code: str | None = strawberry.field(
        default=None,
        description="The authorization's code (the REST API's AuthCode): 26 letters and digits, random "
        "and unique, to give giftcardTransCapture or giftcardTransCancel instead of `id`. Shown only in the "
        "answer to the authorization (and its idempotent replay); null everywhere else.",
    )
    creator: strawberry.Private[str | None] = None

    @strawberry.field(description="The token subject that made the transaction (ListGiftCards).")
    def created_by(self, info: strawberry.Info[Context]) -> str | None:
        info.context.principal.require(Permission.LIST_GIFT_CARDS)
        return self.creator


@strawberry.type(description="One code of a card, as the caller may see it.")
class GiftCardCode:
    id: strawberry.ID = strawberry.field(description="The code's internal id (not the code).")
    code_type: CodeType = strawberry.field(description="The code's type.")
    code: str = strawberry.field(
        description="The code in full, or masked to its last four characters (see isMasked)."
    )
    expires_on: date | None = strawberry.field(description=EXPIRES_ON)
    is_masked: bool = strawberry.field(
        description="True when `code` is masked because the caller lacks the type's unmask permission."
    )


@strawberry.type(description="A gift card: one balance, reached through several codes.")
class GiftCard:
    id: strawberry.ID = strawberry.field(description=CARD_ID)
    member_id: str | None = strawberry.field(description="The member the card belongs to, if any.")
    currency: str = strawberry.field(description=CURRENCY)
    state: CardState = strawberry.field(description="Where the card is in its lifecycle.")
    balance: str = strawberry.field(
        description="The sum of the card's completed transactions: a decimal string in its currency, "
        'e.g. "25.00".'
    )
    created_at: datetime = strawberry.field(description="When the card was created.")
    updated_at: datetime = strawberry.field(
        description="When the card last changed: an edit, a state change or a balance change."
    )
    usable_from: datetime | None = strawberry.field(description=USABLE_FROM)
    expires_at: datetime | None = strawberry.field(description=EXPIRES_AT)
    source_id: str | None = strawberry.field(description=SOURCE_ID)
    ref_no: str | None = strawberry.field(description=REF_NO)
    initial_value: str | None = strawberry.field(description=INITIAL_VALUE)
    store_id: strawberry.ID = strawberry.field(description=f"The store the card belongs to. {STORE_ID}")
    location_id: str | None = strawberry.field(
        description=f"Where the card was issued: {LOCATION_ID} Null: not given."
    )
    shown: strawberry.Private[ShownCard]  # the domain's card, its id as the database has it

    # Fields with a resolver are nullable: one that fails (a permission, the database) is null
    # with its own error and never discards the card around it, e.g. a mutation's answer.
    @strawberry.field(description="The token subject that created the card (ListGiftCards).")
    def created_by(self, info: strawberry.Info[Context]) -> str | None:
        info.context.principal.require(Permission.LIST_GIFT_CARDS)
        return self.shown.created_by

    @strawberry.field(
        description="The token subject that made the card's last change (ListGiftCards): its creation, an "
        "edit, a block, unblock or deactivation. Transactions leave it as it is: a balance change is in "
        "the ledger, with its author. Null for a card last changed before it was recorded."
    )
    def updated_by(self, info: strawberry.Info[Context]) -> str | None:
        info.context.principal.require(Permission.LIST_GIFT_CARDS)
        return self.shown.updated_by

    @strawberry.field(description="Internal note for operators (ListGiftCards).")
    def note(self, info: strawberry.Info[Context]) -> str | None:
        info.context.principal.require(Permission.LIST_GIFT_CARDS)
        return self.shown.note

    codes: list[GiftCardCode] = strawberry.field(
        description="Live codes of types the caller may use, masked as its permissions say; revoked codes "
        "are never listed. In the response of the mutation that created them, codes are shown in full."
    )
    # loaded and used, filled by the first of the two fields asked for
    totals_read: strawberry.Private[list[tuple[int, int]]] = dataclasses.field(
        default_factory=list, init=False
    )

    # Balance check. Resolved only when asked for, so lookups that do not ask pay nothing.
    @strawberry.field(
        description="What the card can spend now: its balance minus open, unexpired debit "
        "authorizations (read when asked, so it may be newer than `balance`)."
    )
    def available_balance(self, info: strawberry.Info[Context]) -> str | None:
        return format_amount(info.context.services.history.available_balance(self.shown.id), self.currency)

    @strawberry.field(
        description="What the card's completed transactions loaded onto it: the sum of its credits (the "
        "initial value, loads and positive corrections), as a decimal string in its currency."
    )
    def loaded(self, info: strawberry.Info[Context]) -> str | None:
        return format_amount(self._totals(info)[0], self.currency)

    @strawberry.field(
        description="What the card's completed transactions took off it: the sum of its debits, as a "
        "positive decimal string in its currency (balance = loaded - used)."
    )
    def used(self, info: strawberry.Info[Context]) -> str | None:
        return format_amount(self._totals(info)[1], self.currency)

    def _totals(self, info: strawberry.Info[Context]) -> tuple[int, int]:
        """Loaded and used, read once for both fields (one statement)."""
        if not self.totals_read:
            self.totals_read.append(info.context.services.history.totals(self.shown.id))
        return self.totals_read[0]

    @strawberry.field(
        description="The program whose rules the card follows (ListGiftCards); null when it follows none."
    )
    def program(
        self, info: strawberry.Info[Context]
    ) -> Annotated[GiftCardProgram, strawberry.lazy("app.graphql.programs")] | None:
        from app.graphql.programs import program_type

        found = info.context.services.programs.of_card(info.context.principal, self.shown)
        return None if found is None else program_type(found)

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
        self, info: strawberry.Info[Context], first: LatestCount = CARD_TRANSACTIONS_DEFAULT
    ) -> list[GiftCardTransaction] | None:
        views = info.context.services.history.latest(info.context.principal, self.shown.id, first)
        return [transaction_type(view) for view in views]


@strawberry.type(description="Result of a giftcard lookup.")
class GiftCardSearchResult:
    limited_by_permission: bool = strawberry.field(
        description="True when a code was left out or masked because of the caller's permissions."
    )
    results: list[GiftCard] = strawberry.field(description="The cards found; empty when none.")


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
        creator=view.created_by,
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
        initial_value=None
        if view.initial_value is None
        else format_amount(view.initial_value, view.currency),
        shown=view,
        codes=[build(GiftCardCode, code, id=strawberry.ID(str(code.id))) for code in view.codes],
    )


@strawberry.type(description="Where a page sits in the listing.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="True when another page follows this one.")
    has_previous_page: bool = strawberry.field(
        description="True when items come before the page's first one. Listings that page only "
        "forward (the transaction history, the audit trail) say true whenever the page was asked for "
        "behind a cursor."
    )
    start_cursor: str | None = strawberry.field(
        description="The cursor of the page's first item: pass as `before` for the page before it, "
        "where the listing pages backward."
    )
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` for the next page; null on an empty page."
    )


def connection(shape: type[D], edge: Callable[..., Any], page: Page[Any], node: Callable[[Any], Any]) -> D:
    """``page`` as a ``shape`` connection: each of its items mapped by ``node`` into an ``edge``."""
    edges = [edge(cursor=item.cursor, node=node(item.node)) for item in page.edges]
    return build(shape, page, edges=edges, page_info=build(PageInfo, page))
