"""Transaction history (ListGiftCardTransactions) and a card's balance check.

The history pages forward by transaction id (see :mod:`app.domain.pages`). Rows leave out the
available balance: it belongs to the moment a mutation answers. A filter that finds a card asks
what finding it asks: by member ListGiftCards, by code FindGiftCardByCode and the type's Use….
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime

from app.auth.throttle import Throttle
from app.domain.attempts import code_attempt
from app.domain.code_filters import code_filter
from app.domain.codes import CodeVault
from app.domain.identifiers import check_location_id, check_text, parse_card_id, validate_member_id
from app.domain.pages import Page, created_range, decode_cursor, edges, page_size
from app.domain.scoping import narrow
from app.entities import Transaction
from app.enums import CodeType, TransStatus, TransType
from app.errors import BadUserInputError, ForbiddenError
from app.policy import Permission, Policy, Principal
from app.store.history import EntryCriteria, EntrySlice, HistoryStore

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
    location_id: str | None = None  # exactly this location
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    store_id: str | None = None  # only this one of the caller's stores


class History:
    def __init__(self, store: HistoryStore, vault: CodeVault, policy: Policy, throttle: Throttle) -> None:
        self._store = store
        self._vault = vault
        self._policy = policy
        self._throttle = throttle  # code filters by callers without ListGiftCards

    def list(
        self,
        principal: Principal,
        *,
        first: int | None = None,
        after: str | None = None,
        transaction_filter: TransactionFilter | None = None,
    ) -> Page[Transaction]:
        """The transactions the filter finds, page by page in id order."""
        principal.require(Permission.LIST_TRANSACTIONS)
        transaction_filter = transaction_filter or TransactionFilter()
        principal = narrow(principal, transaction_filter.store_id)
        limit = page_size(first, "transactions")
        after_id = None if after is None else decode_cursor(after, TRANSACTION_CURSOR)
        now = datetime.now(UTC)
        criteria = self._criteria(transaction_filter, after_id, principal, now)
        found = self._entries(principal, criteria, limit)
        return Page(
            edges((_expire_if_lapsed(row, now) for row in found.entries), TRANSACTION_CURSOR),
            has_next_page=found.more,
            has_previous_page=after is not None,  # pages only go forward
        )

    def latest(
        self, principal: Principal, card_id: int, first: int | None = CARD_TRANSACTIONS_DEFAULT
    ) -> tuple[Transaction, ...]:
        """The card's newest transactions, newest first."""
        principal.require(Permission.LIST_TRANSACTIONS)
        limit = page_size(first, "transactions", default=CARD_TRANSACTIONS_DEFAULT)
        now = datetime.now(UTC)
        return tuple(_expire_if_lapsed(row, now) for row in self._store.latest(card_id, limit))

    def open_authorizations(self, principal: Principal, card_id: int) -> tuple[Transaction, ...]:
        """The card's AUTHORIZED transactions whose hold has not expired, oldest first."""
        principal.require(Permission.LIST_TRANSACTIONS)
        now = datetime.now(UTC)
        return tuple(_expire_if_lapsed(row, now) for row in self._store.open_authorizations(card_id, now))

    def available_balance(self, card_id: int) -> int:
        """Minor units the card can spend now: its balance minus open, unexpired debit holds.
        Whoever may see the card's balance may see this; it needs no permission of its own."""
        return self._store.available_balance(card_id, datetime.now(UTC))

    def totals(self, card_id: int) -> tuple[int, int]:
        """Minor units the card's completed transactions loaded and used (credits, debits). Whoever
        may see the card's balance may see these."""
        return self._store.totals(card_id)

    def _entries(self, principal: Principal, criteria: EntryCriteria, limit: int) -> EntrySlice:
        hashes, code_type = criteria.code_lookup_hashes, criteria.code_type
        if hashes is None:
            return self._store.entries(criteria, limit)
        # A hit is a page with rows, or a live code (new, or paged past its last row).
        with code_attempt(self._throttle, principal) as attempt:
            found = self._store.entries(criteria, limit)
            assert code_type is not None
            if found.entries or self._store.has_live_code(hashes, code_type, criteria.stores):
                attempt.hit()
        return found

    def _criteria(
        self, given: TransactionFilter, after_id: int | None, principal: Principal, now: datetime
    ) -> EntryCriteria:
        card_id = None if given.giftcard_id is None else parse_card_id(given.giftcard_id, "giftcard_id")
        member_id = None
        if given.member_id is not None:
            # As `giftcard(memberId:)`: the rows would tell which cards, and balances, a member has.
            _require_for_filter(principal, Permission.LIST_GIFT_CARDS, "member_id", "by member")
            member_id = validate_member_id(given.member_id)
        lookup_hashes = None
        if given.code is not None or given.code_type is not None:
            lookup_hashes = self._code_hashes(given.code, given.code_type, principal)
        # What a transaction can hold, so a filter outside it is a mistake, not an empty page.
        check_text(given.source_id, "source_id", 128)
        check_text(given.ref_no, "ref_no", 128)
        check_location_id(given.location_id)
        created_from, created_before = created_range(given.created_after, given.created_before)
        return EntryCriteria(
            stores=principal.store_ids(),
            after_id=after_id,
            giftcard_id=card_id,
            member_id=member_id,
            code_lookup_hashes=lookup_hashes,
            code_type=None if given.code_type is None else given.code_type.value,
            status=None if given.status is None else given.status.value,
            trans_type=None if given.trans_type is None else given.trans_type.value,
            source_id=given.source_id,
            ref_no=given.ref_no,
            location_id=given.location_id,
            created_from=created_from,
            created_before=created_before,
            now=now,
        )

    def _code_hashes(
        self, code: str | None, code_type: CodeType | None, principal: Principal
    ) -> tuple[bytes, ...]:
        """The lookup hashes of a code filter, checked as `giftcard(code:, codeType:)` checks a lookup:
        the history would tell which card holds the code."""
        _require_for_filter(principal, Permission.FIND_BY_CODE, "code", "by code")
        if code is None or code_type is None:
            missing = "code" if code is None else "code_type"
            raise BadUserInputError(f"{missing}: give both code_type and code", field=missing)
        return code_filter(self._vault, self._policy, principal, code, code_type).lookup_hashes


def _require_for_filter(principal: Principal, permission: Permission, field: str, what: str) -> None:
    if not principal.has(permission):
        raise ForbiddenError(
            f"{field}: filtering {what} needs the {permission.value} permission", field=field
        )


def _expire_if_lapsed(transaction: Transaction, now: datetime) -> Transaction:
    """A lapsed hold shows as EXPIRED: it holds nothing and can no longer be captured."""
    expires = transaction.hold_expires_at
    if transaction.status is TransStatus.AUTHORIZED and expires is not None and expires <= now:
        return dataclasses.replace(transaction, status=TransStatus.EXPIRED)
    return transaction
