"""Transaction history (ListGiftCardTransactions) and a card's balance check.

The history pages forward by transaction id, like the card listing (same cursor rules and page
limits), so transactions added meanwhile only ever appear further on. Each row carries the card's
balance before and after it; the available balance belongs to the moment a mutation answers, so
history rows leave it out. A card's available balance is its balance minus open, unexpired debit
holds. A filter that finds a card asks what finding it asks: by member ListGiftCards, by code
FindGiftCardByCode and the code type's Use… permission.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from app.auth.throttle import Throttle
from app.domain.attempts import code_attempt
from app.domain.codes import CodeVault, validate_code
from app.domain.identifiers import check_text, parse_card_id, validate_member_id
from app.domain.listing import created_range, decode_cursor, encode_cursor, page_size
from app.domain.views import PageCursors
from app.entities import Transaction
from app.enums import CodeType, TransStatus, TransType
from app.errors import BadUserInputError, ForbiddenError
from app.policy import Permission, Policy, Principal
from app.store import history as store
from app.store import ledger as ledger_store
from app.store.history import EntryCriteria

TRANSACTION_CURSOR = "gt:"
CARD_TRANSACTIONS_DEFAULT = 10


@dataclass(frozen=True)
class TransactionFilter:
    """Which transactions to list; None leaves a condition out."""

    giftcard_id: str | None = None
    member_id: str | None = None  # the card's member
    code: str | None = None  # with code_type: the card that holds this live code
    code_type: CodeType | None = None
    status: TransStatus | None = None
    trans_type: TransType | None = None
    source_id: str | None = None
    ref_no: str | None = None
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class TransactionEdge:
    cursor: str  # opaque; pass it as `after` to continue behind this transaction
    transaction: Transaction


@dataclass(frozen=True, slots=True)
class TransactionPage(PageCursors):
    edges: tuple[TransactionEdge, ...]
    has_next_page: bool
    has_previous_page: bool


def list_transactions(
    engine: Engine,
    vault: CodeVault,
    policy: Policy,
    principal: Principal,
    throttle: Throttle,
    *,
    first: int | None = None,
    after: str | None = None,
    transaction_filter: TransactionFilter | None = None,
) -> TransactionPage:
    principal.require(Permission.LIST_TRANSACTIONS)
    limit = page_size(first, "transactions")
    after_id = None if after is None else decode_cursor(after, prefix=TRANSACTION_CURSOR)
    given = transaction_filter or TransactionFilter()
    now = datetime.now(UTC)
    criteria = dataclasses.replace(_criteria(given, after_id, vault, policy, principal), now=now)
    if criteria.code_lookup_hashes is None:
        found = store.list_entries(engine, criteria, limit)
    else:
        # A hit is a page with rows, or a live code (new, or paged past its last row).
        with code_attempt(throttle, principal) as attempt:
            found = store.list_entries(engine, criteria, limit)
            assert criteria.code_type is not None
            if (
                found.entries
                or ledger_store.live_code(engine, criteria.code_lookup_hashes, criteria.code_type) is not None
            ):
                attempt.hit()
    return TransactionPage(
        edges=tuple(
            TransactionEdge(encode_cursor(row.id, TRANSACTION_CURSOR), _view(row, now))
            for row in found.entries
        ),
        has_next_page=found.more,
        has_previous_page=after is not None,  # pages only go forward
    )


def card_transactions(
    engine: Engine, principal: Principal, card_id: int, first: int | None = CARD_TRANSACTIONS_DEFAULT
) -> tuple[Transaction, ...]:
    """The card's newest transactions, newest first."""
    principal.require(Permission.LIST_TRANSACTIONS)
    limit = page_size(first, "transactions", default=CARD_TRANSACTIONS_DEFAULT)
    now = datetime.now(UTC)
    return tuple(_view(row, now) for row in store.latest_entries(engine, card_id, limit))


def open_authorizations(
    engine: Engine, principal: Principal, card_id: int, now: datetime
) -> tuple[Transaction, ...]:
    """The card's AUTHORIZED transactions whose hold has not expired, oldest first."""
    principal.require(Permission.LIST_TRANSACTIONS)
    return tuple(_view(row, now) for row in store.open_authorizations(engine, card_id, now))


def available_balance(engine: Engine, card_id: int, now: datetime) -> int:
    """Minor units the card can spend now: its balance minus open, unexpired debit holds.

    Whoever may see the card's balance may see this; it needs no permission of its own.
    """
    return store.available_balance(engine, card_id, now)


def _criteria(
    transaction_filter: TransactionFilter,
    after_id: int | None,
    vault: CodeVault,
    policy: Policy,
    principal: Principal,
) -> EntryCriteria:
    given = transaction_filter
    card_id = None if given.giftcard_id is None else parse_card_id(given.giftcard_id, "giftcardId")
    member_id = None
    if given.member_id is not None:
        # As `giftcard(memberId:)`: the rows would tell which cards, and balances, a member has.
        _require_for_filter(principal, Permission.LIST_GIFT_CARDS, "memberId", "by member")
        member_id = validate_member_id(given.member_id)
    lookup_hashes = None
    if given.code is not None or given.code_type is not None:
        lookup_hashes = _code_hashes(given.code, given.code_type, vault, policy, principal)
    # What a transaction can hold, so a filter outside it is a mistake, not an empty page.
    check_text(given.source_id, "sourceId", 128)
    check_text(given.ref_no, "refNo", 128)
    created_from, created_before = created_range(given.created_after, given.created_before)
    return EntryCriteria(
        after_id=after_id,
        giftcard_id=card_id,
        member_id=member_id,
        code_lookup_hashes=lookup_hashes,
        code_type=None if given.code_type is None else given.code_type.value,
        status=None if given.status is None else given.status.value,
        trans_type=None if given.trans_type is None else given.trans_type.value,
        source_id=given.source_id,
        ref_no=given.ref_no,
        created_from=created_from,
        created_before=created_before,
    )


def _require_for_filter(principal: Principal, permission: Permission, field: str, what: str) -> None:
    if not principal.has(permission):
        raise ForbiddenError(
            f"{field}: filtering {what} needs the {permission.value} permission", field=field
        )


def _code_hashes(
    code: str | None,
    code_type: CodeType | None,
    vault: CodeVault,
    policy: Policy,
    principal: Principal,
) -> tuple[bytes, ...]:
    """The lookup hashes of a code filter, checked as `giftcard(code:, codeType:)` checks a lookup.

    The history would tell which card holds the code, so it needs what finding the card needs.
    """
    _require_for_filter(principal, Permission.FIND_BY_CODE, "code", "by code")
    if code is None or code_type is None:
        missing = "code" if code is None else "codeType"
        raise BadUserInputError(f"{missing}: give both codeType and code", field=missing)
    policy.require_code_type(principal, code_type)
    return vault.lookup_hashes(validate_code(code, "code"))


def _view(transaction: Transaction, now: datetime) -> Transaction:
    """A lapsed hold shows as EXPIRED: it holds nothing and can no longer be captured."""
    expires = transaction.hold_expires_at
    if transaction.status is TransStatus.AUTHORIZED and expires is not None and expires <= now:
        return dataclasses.replace(transaction, status=TransStatus.EXPIRED)
    return transaction
